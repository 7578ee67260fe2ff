"""The decoder: a stack of recurrent layers started from the bridged context,
optionally attending over the encoder outputs.

Two entry points share one set of parameters: `__call__` runs a whole target
sequence (teacher forcing, optionally scheduled sampling), `step` advances one
token for inference (greedy or beam search). The decoding carry is a dict:
  layers       per-layer cell carries
  memory       encoder outputs [batch, source, features]
  memory_mask  [batch, source] bool
  keys         attention keys precomputed from memory (attention only)
  attention    the last step's attention weights [batch, source] (attention only)
  feed         the last attentional vector (Luong input feeding only)

Attention variants:
  bahdanau  the previous top state queries the source; the context joins the
            embedding as RNN input and the readout [h; context].
  luong_*   the new top state queries the source; h~ = tanh(W [context; h])
            is the readout, and with input feeding also the next step's extra
            input (Luong et al. 2015, section 3.3).
"""
from typing import Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from seq2seq_jax.decoding.argmax import first_argmax
from seq2seq_jax.models.attention import Attention
from seq2seq_jax.models.recurrent import RecurrentLayer

DecodeCarry = Dict[str, object]


def tied_embedding_init(embedding_size: int):
  """N(0, 1/embedding_size) for a matrix that is also the output layer: the
  scale LeCun initialisation gives that layer untied (flax's default N(0, 1)
  for embeddings would make the initial logits sqrt(embedding_size) times
  too large)."""
  return nn.initializers.normal(stddev=embedding_size ** -0.5)


class Decoder(nn.Module):
  """Emits target logits.

  Attributes:
    vocab_size, embedding_size, hidden_size, num_layers: sizes.
    cell_name: a key of `cells.CELLS`.
    dropout: rate on embeddings, between layers and before the projection.
    attention: an `attention.KINDS` name.
    input_feeding: feed h~ of the previous step (Luong attention only).
    memory_size: size of the encoder outputs.
    recurrence, remat: passed to every `RecurrentLayer`.
    tie_embeddings: the output layer is the input embedding's matrix
      (logits = P(readout) E^T + b; P only where readout_size differs from
      embedding_size).
    readout_size: the size of the vector the output layer projects.
    shared_embedding: an `nn.Embed` owned by the parent and shared with the
      encoder (`model.tie_embeddings='all'`); None = the decoder's own.
  """
  vocab_size: int
  embedding_size: int
  hidden_size: int
  num_layers: int
  cell_name: str
  dropout: float = 0.0
  attention: str = "none"
  input_feeding: bool = False
  memory_size: int = 0
  recurrence: str = "fused"
  remat: bool = False
  tie_embeddings: bool = False
  readout_size: int = 0
  shared_embedding: Optional[nn.Module] = None

  def setup(self):
    if self.shared_embedding is None:
      init = (tied_embedding_init(self.embedding_size)
              if self.tie_embeddings else nn.linear.default_embed_init)
      self.embedding = nn.Embed(self.vocab_size, self.embedding_size,
                                embedding_init=init)
    self.layers = [RecurrentLayer(self.cell_name, self.hidden_size,
                                  implementation=self.recurrence,
                                  remat=self.remat)
                   for _ in range(self.num_layers)]
    self.dropout_layer = nn.Dropout(self.dropout)
    if not self.tie_embeddings:
      self.output_projection = nn.Dense(self.vocab_size)
    else:
      self.output_bias = self.param("output_bias", nn.initializers.zeros,
                                    (self.vocab_size,))
      if self.readout_size != self.embedding_size:
        self.readout_projection = nn.Dense(self.embedding_size, use_bias=False)
    if self.attention != "none":
      self.attend = Attention(self.attention, self.hidden_size, self.memory_size)
    if self.attention.startswith("luong"):
      self.attentional = nn.Dense(self.hidden_size)

  def _table(self) -> nn.Embed:
    return (self.embedding if self.shared_embedding is None
            else self.shared_embedding)

  def output_layer(self, readouts: jax.Array) -> jax.Array:
    """[n, readout_size] -> logits [n, vocab]."""
    if not self.tie_embeddings:
      return self.output_projection(readouts)
    if self.readout_size != self.embedding_size:
      readouts = self.readout_projection(readouts)
    logits = self._table().attend(readouts)
    return logits + self.output_bias.astype(logits.dtype)

  def initial_carry(self, layers, memory: jax.Array,
                    memory_mask: jax.Array) -> DecodeCarry:
    """The carry before the first token (see the module docstring)."""
    carry = {"layers": layers, "memory": memory, "memory_mask": memory_mask}
    if self.attention != "none":
      carry["keys"] = self.attend.keys(memory)
      carry["attention"] = jnp.zeros(memory_mask.shape, jnp.float32)
    if self.input_feeding:
      carry["feed"] = jnp.zeros((memory.shape[0], self.hidden_size), memory.dtype)
    return carry

  def __call__(self, carry: DecodeCarry, target_inputs: jax.Array, *,
               train: bool, teacher_forcing: float = 1.0) -> jax.Array:
    """Runs the decoder over a target sequence.

    Args:
      carry: the initial carry (from `initial_carry`).
      target_inputs: [batch, target_length] ids: BOS then the gold tokens.
      train: enables dropout.
      teacher_forcing: probability of feeding the gold token at each step and
        example; below 1 the model's own previous argmax is fed otherwise
        (scheduled sampling; needs the 'sampling' RNG).

    Returns:
      logits: [batch, target_length, vocab].
    """
    if teacher_forcing >= 1.0:
      return self._project_all(self.features(carry, target_inputs, train=train))
    return self._stepwise(carry, target_inputs, train, teacher_forcing)

  def features(self, carry: DecodeCarry, target_inputs: jax.Array, *,
               train: bool) -> jax.Array:
    """Under teacher forcing, what the output layer projects: the readouts
    [batch, target_length, readout_size], after dropout. `__call__` is
    `output_layer` of these; the train step projects only the real
    (non-padding) positions (training/compact_output.py)."""
    if self.attention == "none":
      return self._teacher_forced_readouts(carry["layers"], target_inputs,
                                           train)
    return self.dropout_layer(
        self.attention_readouts(carry, target_inputs, train=train),
        deterministic=not train)

  def _teacher_forced_readouts(self, layer_carries, target_inputs, train):
    # All time steps at once: input projections become one matmul per layer.
    mask = jnp.ones(target_inputs.shape, bool)
    x = self.dropout_layer(self._table()(target_inputs),
                           deterministic=not train)
    for index, layer in enumerate(self.layers):
      if index > 0:
        x = self.dropout_layer(x, deterministic=not train)
      _, x = layer(layer_carries[index], x, mask)
    return self.dropout_layer(x, deterministic=not train)

  def _project_all(self, readouts: jax.Array) -> jax.Array:
    """[batch, length, hidden] -> logits, as one 2-D matmul.

    Why 2-D: with a 3-D operand XLA:CPU lays out the backward pass's weight
    gradient with a transposed copy of the [batch * length, vocab] logit
    gradient (the largest tensor of the step); flattened, it contracts it
    in place.
    """
    batch, length, hidden = readouts.shape
    logits = self.output_layer(readouts.reshape(batch * length, hidden))
    return logits.reshape(batch, length, -1)

  def attention_readouts(self, carry: DecodeCarry, target_inputs: jax.Array,
                         *, train: bool) -> jax.Array:
    """The attention decoder's loop under teacher forcing: readouts [batch,
    target_length, readout_size], before the output layer. Attention needs
    the state of the previous step, so the recurrence runs step by step."""
    def body(module, carry, tokens):
      return module.readout(carry, tokens, train=train)

    scan = nn.scan(body, variable_broadcast="params",
                   split_rngs={"params": False, "dropout": True})
    _, readouts = scan(self, carry, target_inputs.T)
    return jnp.swapaxes(readouts, 0, 1)

  def _stepwise(self, carry, target_inputs, train, teacher_forcing):
    batch_size, length = target_inputs.shape
    # Only below 1 (scheduled sampling): full teacher forcing takes the
    # faster paths above.
    use_gold = jax.random.bernoulli(self.make_rng("sampling"),
                                    teacher_forcing, (length, batch_size))
    use_gold = use_gold.at[0].set(True)  # the first input is always BOS

    def body(module, state, inputs):
      carry, previous_logits = state
      gold, gold_flag = inputs
      predicted = first_argmax(previous_logits).astype(gold.dtype)
      tokens = jnp.where(gold_flag, gold, predicted)
      carry, logits = module.step(carry, tokens, train=train)
      return (carry, logits), logits

    scan = nn.scan(body, variable_broadcast="params",
                   split_rngs={"params": False, "dropout": True})
    # In the compute dtype (bf16 under train.dtype=bfloat16), as step returns.
    initial_logits = jnp.zeros((batch_size, self.vocab_size),
                               carry["memory"].dtype)
    _, logits = scan(self, (carry, initial_logits), (target_inputs.T, use_gold))
    return jnp.swapaxes(logits, 0, 1)

  def step(self, carry: DecodeCarry, tokens: jax.Array, *, train: bool = False):
    """One decoding step.

    Args:
      carry: the decoding carry.
      tokens: [batch] previous tokens.
      train: enables dropout.

    Returns:
      (new carry, logits [batch, vocab]); with attention, the new carry's
      "attention" holds this step's weights [batch, source].
    """
    new_carry, x = self.readout(carry, tokens, train=train)
    x = self.dropout_layer(x, deterministic=not train)
    return new_carry, self.output_layer(x)

  def readout(self, carry: DecodeCarry, tokens: jax.Array, *, train: bool):
    """One step up to the output layer: (new carry, readout [batch, features])."""
    new_carry = dict(carry)
    embedded = self.dropout_layer(self._table()(tokens), deterministic=not train)
    x = embedded
    if self.attention == "bahdanau":
      query = carry["layers"][-1][-1]  # previous top state s_{t-1}
      context, weights = self.attend(query, carry["keys"], carry["memory"],
                                     carry["memory_mask"])
      x = jnp.concatenate([x, context], axis=-1)
    if self.input_feeding:
      x = jnp.concatenate([x, carry["feed"]], axis=-1)
    layer_carries = []
    for index, layer in enumerate(self.layers):
      if index > 0:
        x = self.dropout_layer(x, deterministic=not train)
      layer_carry, x = layer.step(carry["layers"][index], x)
      layer_carries.append(layer_carry)
    new_carry["layers"] = layer_carries
    if self.attention == "bahdanau":
      x = jnp.concatenate([x, context], axis=-1)
    elif self.attention.startswith("luong"):
      context, weights = self.attend(x, carry["keys"], carry["memory"],
                                     carry["memory_mask"])
      x = jnp.tanh(self.attentional(jnp.concatenate([context, x], axis=-1)))
      if self.input_feeding:
        new_carry["feed"] = x
    if self.attention != "none":
      new_carry["attention"] = weights
    return new_carry, x
