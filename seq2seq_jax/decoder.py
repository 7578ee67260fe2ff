"""The decoder: a stack of recurrent layers started from the bridged context.

Two entry points share one set of parameters: `__call__` runs a whole target
sequence (teacher forcing, optionally scheduled sampling), `step` advances one
token for inference (greedy or beam search).
"""
from typing import List

import flax.linen as nn
import jax
import jax.numpy as jnp

from seq2seq_jax.cells import Carry
from seq2seq_jax.recurrent import RecurrentLayer


class Decoder(nn.Module):
  """Emits target logits.

  Attributes:
    vocab_size, embedding_size, hidden_size, num_layers: sizes.
    cell_name: a key of `cells.CELLS`.
    dropout: rate on embeddings, between layers and before the projection.
  """
  vocab_size: int
  embedding_size: int
  hidden_size: int
  num_layers: int
  cell_name: str
  dropout: float = 0.0

  def setup(self):
    self.embedding = nn.Embed(self.vocab_size, self.embedding_size)
    self.layers = [RecurrentLayer(self.cell_name, self.hidden_size)
                   for _ in range(self.num_layers)]
    self.dropout_layer = nn.Dropout(self.dropout)
    self.output_projection = nn.Dense(self.vocab_size)

  def __call__(self, carries: List[Carry], target_inputs: jax.Array, *,
               train: bool, teacher_forcing: float = 1.0) -> jax.Array:
    """Runs the decoder over a target sequence.

    Args:
      carries: initial carry per layer (from the bridge).
      target_inputs: [batch, target_length] ids: BOS then the gold tokens.
      train: enables dropout.
      teacher_forcing: probability of feeding the gold token at each step and
        example; below 1 the model's own previous argmax is fed otherwise
        (scheduled sampling; needs the 'sampling' RNG).

    Returns:
      logits: [batch, target_length, vocab].
    """
    if teacher_forcing >= 1.0:
      return self._teacher_forced(carries, target_inputs, train)
    return self._scheduled_sampling(carries, target_inputs, train,
                                    teacher_forcing)

  def _teacher_forced(self, carries, target_inputs, train):
    # All time steps at once: input projections become one matmul per layer.
    mask = jnp.ones(target_inputs.shape, bool)
    x = self.dropout_layer(self.embedding(target_inputs),
                           deterministic=not train)
    for index, layer in enumerate(self.layers):
      if index > 0:
        x = self.dropout_layer(x, deterministic=not train)
      _, x = layer(carries[index], x, mask)
    x = self.dropout_layer(x, deterministic=not train)
    return self.output_projection(x)

  def _scheduled_sampling(self, carries, target_inputs, train, teacher_forcing):
    batch_size, length = target_inputs.shape
    use_gold = jax.random.bernoulli(self.make_rng("sampling"), teacher_forcing,
                                    (length, batch_size))
    use_gold = use_gold.at[0].set(True)  # the first input is always BOS

    def body(module, state, inputs):
      carries, previous_logits = state
      gold, gold_flag = inputs
      predicted = jnp.argmax(previous_logits, axis=-1).astype(gold.dtype)
      tokens = jnp.where(gold_flag, gold, predicted)
      carries, logits = module.step(carries, tokens, train=train)
      return (carries, logits), logits

    scan = nn.scan(body, variable_broadcast="params",
                   split_rngs={"params": False, "dropout": True})
    initial_logits = jnp.zeros((batch_size, self.vocab_size), jnp.float32)
    _, logits = scan(self, (carries, initial_logits),
                     (target_inputs.T, use_gold))
    return jnp.swapaxes(logits, 0, 1)

  def step(self, carries: List[Carry], tokens: jax.Array, *, train: bool = False):
    """One decoding step.

    Args:
      carries: carry per layer.
      tokens: [batch] previous tokens.
      train: enables dropout.

    Returns:
      (new carries, logits [batch, vocab]).
    """
    x = self.dropout_layer(self.embedding(tokens), deterministic=not train)
    new_carries = []
    for index, layer in enumerate(self.layers):
      if index > 0:
        x = self.dropout_layer(x, deterministic=not train)
      carry, x = layer.step(carries[index], x)
      new_carries.append(carry)
    x = self.dropout_layer(x, deterministic=not train)
    return new_carries, self.output_projection(x)
