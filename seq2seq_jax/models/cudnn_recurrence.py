"""An LSTM layer through cuDNN (`jax.experimental.rnn.lstm`), for CUDA GPUs.

Same function and parameters as the other recurrences (recurrent.py): the
project's `input_projection` kernel and bias and the cell's recurrent kernel
are packed at call time into cuDNN's flat layout (W_ih, W_hh, b_ih, b_hh; gates
i, f, g, o in both; the project's LSTM has no recurrent bias, so b_hh is
zero), padding is passed as `seq_lengths` (padding sits at the end, so the
carry at a row's last real token is its final state), and a right-to-left
layer runs on each row's real tokens reversed in place. The packing is
differentiable, so gradients reach the project's parameters.

cuDNN is the only backend of `jax.experimental.rnn.lstm`; elsewhere the layer
raises a clear error (and settings.py refuses the option at start-up). The
tests run this module on CPU with `rnn.lstm` replaced by `rnn.lstm_ref`, the
pure-JAX reference jax ships for the kernel, and check it against the
project's own LSTM.
"""
import jax
import jax.numpy as jnp
from jax.experimental import rnn

from seq2seq_jax.models.cells import Carry


def pack(kernel, bias, recurrent_kernel) -> jax.Array:
  """cuDNN's flat weights for one layer, one direction.

  Args:
    kernel: [input, 4H] input projection; bias: [4H]; recurrent_kernel:
      [H, 4H].
  """
  recurrent_bias = jnp.zeros_like(bias)
  return jnp.concatenate([kernel.T.ravel(), recurrent_kernel.T.ravel(),
                          bias, recurrent_bias])


def reverse_real(x: jax.Array, lengths: jax.Array) -> jax.Array:
  """Reverses each row's first `lengths` steps, padding left at the end.

  x: [batch, time, ...]; lengths: [batch].
  """
  steps = jnp.arange(x.shape[1])[None, :]
  source = jnp.where(steps < lengths[:, None], lengths[:, None] - 1 - steps,
                     steps)
  return jnp.take_along_axis(x, source.reshape(source.shape + (1,) *
                                               (x.ndim - 2)), axis=1)


def backend() -> str:
  return jax.default_backend()


def lstm_layer(carry: Carry, inputs: jax.Array, mask: jax.Array, kernel,
               bias, recurrent_kernel, reverse: bool):
  """One LSTM layer; the interface of `RecurrentLayer.__call__`.

  Args:
    carry: (c, h), each [batch, H] (the project's order).
    inputs: [batch, time, features]; mask: [batch, time] bool, padding at the
      end.
    kernel, bias, recurrent_kernel: the project's parameters.
    reverse: run right to left over each row's real tokens.

  Returns:
    ((c, h) final, outputs [batch, time, H], 0 at padding).
  """
  c0, h0 = carry
  hidden = recurrent_kernel.shape[0]
  dtype = inputs.dtype
  lengths = mask.sum(axis=1).astype(jnp.int32)
  x = reverse_real(inputs, lengths) if reverse else inputs
  initial = (c0, h0)
  empty = lengths == 0  # an all-padding row keeps its initial carry
  lengths = jnp.maximum(lengths, 1)
  weights = pack(kernel, bias, recurrent_kernel).astype(dtype)
  h0, c0 = h0[None].astype(dtype), c0[None].astype(dtype)
  if backend() != "gpu":
    raise ValueError(
        "model.recurrence='cudnn' needs a CUDA GPU: jax.experimental.rnn "
        f"lowers only to cuDNN, and this backend is {backend()!r}; use "
        "model.recurrence='fused'")
  y, h_n, c_n = rnn.lstm(x, h0, c0, weights, lengths, inputs.shape[-1],
                         hidden, 1, 0.0, False)
  y = jnp.where(mask[..., None], y, 0.0)
  if reverse:
    y = reverse_real(y, lengths)
  final = tuple(jnp.where(empty[:, None], start.astype(dtype), end)
                for start, end in zip(initial, (c_n[0], h_n[0])))
  return final, y
