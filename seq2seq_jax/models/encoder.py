"""The encoder: embeddings and a stack of (optionally bidirectional) recurrent layers."""
from typing import List, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from seq2seq_jax.models.cells import Carry
from seq2seq_jax.models.recurrent import RecurrentLayer

# Per layer: (forward carry,) or (forward carry, backward carry).
LayerStates = List[Tuple[Carry, ...]]


class Encoder(nn.Module):
  """Reads the source; its final states are the context vector.

  Attributes:
    vocab_size, embedding_size, hidden_size, num_layers: sizes.
    cell_name: a key of `cells.CELLS`.
    bidirectional: add a right-to-left layer per level and concatenate outputs.
    dropout: rate on embeddings and between layers.
    recurrence, remat: passed to every `RecurrentLayer`.
    shared_embedding: an `nn.Embed` owned by the parent and shared with the
      decoder (`model.tie_embeddings='all'`); None = the encoder's own.
  """
  vocab_size: int
  embedding_size: int
  hidden_size: int
  num_layers: int
  cell_name: str
  bidirectional: bool = False
  dropout: float = 0.0
  recurrence: str = "fused"
  remat: bool = False
  shared_embedding: Optional[nn.Module] = None

  @nn.compact
  def __call__(self, source: jax.Array, source_mask: jax.Array, *, train: bool):
    """Encodes a padded batch.

    Args:
      source: [batch, source_length] int token ids (0 = padding).
      source_mask: [batch, source_length] bool, True at real tokens.
      train: enables dropout.

    Returns:
      outputs: [batch, source_length, hidden * directions], 0 at padding.
      final_states: per layer, a tuple of final carries (one per direction).
    """
    embed = self.shared_embedding
    if embed is None:
      embed = nn.Embed(self.vocab_size, self.embedding_size, name="embedding")
    x = embed(source)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    batch_size = source.shape[0]
    final_states: LayerStates = []
    for layer in range(self.num_layers):
      if layer > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      forward = RecurrentLayer(self.cell_name, self.hidden_size,
                               implementation=self.recurrence, remat=self.remat,
                               name=f"layer_{layer}_forward")
      f_carry, f_out = forward(forward.zero_carry(batch_size), x, source_mask)
      if self.bidirectional:
        backward = RecurrentLayer(self.cell_name, self.hidden_size, reverse=True,
                                  implementation=self.recurrence,
                                  remat=self.remat,
                                  name=f"layer_{layer}_backward")
        b_carry, b_out = backward(backward.zero_carry(batch_size), x, source_mask)
        x = jnp.concatenate([f_out, b_out], axis=-1)
        final_states.append((f_carry, b_carry))
      else:
        x = f_out
        final_states.append((f_carry,))
    return x, final_states
