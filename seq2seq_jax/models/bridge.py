"""The bridge turns the encoder's final states (the context vector) into the
decoder's initial states, layer by layer.

  copy    the decoder starts exactly from the encoder state (for an LSTM both
          h and c); sizes must match, which settings.py checks at start-up.
  linear  a learned projection per layer and state component (tanh on h, none
          on an LSTM's c); needed for a bidirectional encoder or other sizes.
  zero    the decoder starts from zeros (only useful with attention).
Bidirectional states are concatenated [forward; backward] per component.
"""
from typing import List

import flax.linen as nn
import jax.numpy as jnp

from seq2seq_jax.models.cells import Carry, get_cell
from seq2seq_jax.models.encoder import LayerStates


class Bridge(nn.Module):
  """Maps encoder final states to decoder initial carries.

  Attributes:
    kind: copy | linear | zero.
    cell_name: the decoder's cell (defines the carry structure).
    decoder_hidden_size: size of each decoder state component.
  """
  kind: str
  cell_name: str
  decoder_hidden_size: int

  @nn.compact
  def __call__(self, encoder_states: LayerStates) -> List[Carry]:
    carries = []
    for layer, directions in enumerate(encoder_states):
      # Concatenate directions per carry component: tuple of [batch, H * dirs].
      joined = tuple(jnp.concatenate(parts, axis=-1)
                     for parts in zip(*directions))
      batch_size = joined[0].shape[0]
      if self.kind == "copy":
        carries.append(joined)
      elif self.kind == "zero":
        # In the encoder's dtype (bf16 under train.dtype=bfloat16), as the
        # decoder's scan returns it.
        carries.append(tuple(
            c.astype(joined[0].dtype) for c in get_cell(self.cell_name)
            .zero_carry(batch_size, self.decoder_hidden_size)))
      elif self.kind == "linear":
        projected = []
        for index, part in enumerate(joined):
          dense = nn.Dense(self.decoder_hidden_size,
                           name=f"layer_{layer}_state_{index}")(part)
          is_output_state = index == len(joined) - 1
          projected.append(jnp.tanh(dense) if is_output_state else dense)
        carries.append(tuple(projected))
      else:
        raise ValueError(f"unknown bridge {self.kind!r}; valid: copy, linear, zero")
    return carries
