"""Recurrent cells, looked up by name in `CELLS`.

Each cell is the *recurrent half* of an RNN step: the input-to-hidden products
for all time steps are computed once, outside the time loop, by the layer (one
big matmul instead of T small ones), so a cell only adds `h @ W_hh` and applies
its gate equations. Every carry is a tuple of [batch, hidden] arrays whose last
element is the output h: LSTM `(c, h)`, GRU `(h,)`, RNN `(h,)`.

Equations (gates in this order inside the fused kernels):
  LSTM  i, f, g, o = split(x W_i + b_i + h W_h);  c' = s(f) c + s(i) tanh(g);
        h' = s(o) tanh(c')
  GRU   (PyTorch/cuDNN form) r = s(xr + h W_hr + b_hr), z = s(xz + h W_hz + b_hz),
        n = tanh(xn + r (h W_hn + b_hn));  h' = (1 - z) n + z h
  RNN   h' = tanh(x W_i + b_i + h W_h)
"""
from typing import Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

Carry = Tuple[jax.Array, ...]


def _zeros_bias(key, shape, dtype=jnp.float32):
  return jnp.zeros(shape, dtype)


def _lstm_bias(key, shape, dtype=jnp.float32):
  """Forget-gate bias 1 (Jozefowicz et al. 2015): remember by default."""
  del key
  hidden = shape[0] // 4
  return jnp.zeros(shape, dtype).at[hidden:2 * hidden].set(1.0)


class _Cell(nn.Module):
  """Shared structure: recurrent weights declared in `setup` (so `weights` and
  `__call__` both see them) and the gate equations in a pure `pointwise`."""
  hidden_size: int
  num_gates = 1
  has_recurrent_bias = False
  input_bias_init = staticmethod(_zeros_bias)

  @staticmethod
  def zero_carry(batch_size: int, hidden_size: int) -> Carry:
    return (jnp.zeros((batch_size, hidden_size), jnp.float32),)

  def setup(self):
    width = self.num_gates * self.hidden_size
    self.recurrent_kernel = self.param(
        "recurrent_kernel", nn.initializers.orthogonal(), (self.hidden_size, width))
    if self.has_recurrent_bias:
      self.recurrent_bias = self.param("recurrent_bias", nn.initializers.zeros,
                                       (width,))

  def weights(self):
    """(W_hh, b_hh); b_hh is zeros for cells without a recurrent bias."""
    if self.has_recurrent_bias:
      return self.recurrent_kernel, self.recurrent_bias
    return self.recurrent_kernel, jnp.zeros(self.recurrent_kernel.shape[-1:],
                                            self.recurrent_kernel.dtype)

  def __call__(self, carry: Carry, projected_input: jax.Array) -> Carry:
    w_h, b_h = self.weights()
    h = carry[-1]
    return self.pointwise(carry, projected_input,
                          h @ w_h.astype(h.dtype) + b_h.astype(h.dtype))

  @staticmethod
  def pointwise(carry: Carry, projected_input, hidden_part) -> Carry:
    raise NotImplementedError


class LSTMCell(_Cell):
  """Long short-term memory (Hochreiter & Schmidhuber 1997), fused gates."""
  num_gates = 4
  input_bias_init = staticmethod(_lstm_bias)

  @staticmethod
  def zero_carry(batch_size: int, hidden_size: int) -> Carry:
    zeros = jnp.zeros((batch_size, hidden_size), jnp.float32)
    return (zeros, zeros)

  @staticmethod
  def pointwise(carry: Carry, projected_input, hidden_part) -> Carry:
    c, _ = carry
    i, f, g, o = jnp.split(projected_input + hidden_part, 4, axis=-1)
    new_c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    new_h = jax.nn.sigmoid(o) * jnp.tanh(new_c)
    return (new_c, new_h)


class GRUCell(_Cell):
  """Gated recurrent unit (Cho et al. 2014), reset applied after W_hn."""
  num_gates = 3
  has_recurrent_bias = True

  @staticmethod
  def pointwise(carry: Carry, projected_input, hidden_part) -> Carry:
    (h,) = carry
    x_r, x_z, x_n = jnp.split(projected_input, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(hidden_part, 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return ((1.0 - z) * n + z * h,)


class SimpleRNNCell(_Cell):
  """Elman RNN with tanh."""
  num_gates = 1

  @staticmethod
  def pointwise(carry: Carry, projected_input, hidden_part) -> Carry:
    return (jnp.tanh(projected_input + hidden_part),)


CELLS = {
    "lstm": LSTMCell,
    "gru": GRUCell,
    "rnn": SimpleRNNCell,
}


def get_cell(name: str):
  """Returns the cell class registered as `name`; unknown names list the valid ones."""
  try:
    return CELLS[name]
  except KeyError:
    raise ValueError(
        f"unknown cell type {name!r}; valid: {', '.join(sorted(CELLS))}") from None
