"""A recurrent layer: hoisted input projection + `nn.scan` over a cell, masked.

Padding is masked *inside* the scan: at a padded step the carry is passed
through unchanged and the output is zero, so appending padding changes no
output, state or loss. With `reverse=True` the scan runs right to left; since
padding sits at the end, a backward layer starts its real work at the last real
token from its initial state.

Three implementations compute the same function with the same parameters
(tests compare values and gradients): "fused" (default) runs
`fused_recurrence.fused_scan`, whose hand-written backward pass computes the
recurrent weight gradient in one matmul after the loop; "scan" is Flax
`nn.scan` differentiated by JAX; "cudnn" (LSTM on a CUDA GPU) packs the
parameters at call time into cuDNN's layout and runs
`jax.experimental.rnn.lstm` (cudnn_recurrence.py). `remat` trades compute for
memory on long sequences: "scan" wraps its step in `jax.checkpoint`, "fused"
recomputes h @ W_hh in its backward pass (cuDNN keeps its own workspace).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from seq2seq_jax.models import cudnn_recurrence
from seq2seq_jax.models.cells import Carry, get_cell
from seq2seq_jax.models.fused_recurrence import fused_scan, masked_step

IMPLEMENTATIONS = ("fused", "scan", "cudnn")


class _MaskedStep(nn.Module):
  """One time step of `cell`, skipped (carry kept) where `mask` is False."""
  cell_name: str
  hidden_size: int

  @nn.compact
  def __call__(self, carry: Carry, inputs):
    projected_input, mask = inputs
    new_carry = get_cell(self.cell_name)(self.hidden_size, name="cell")(
        carry, projected_input)
    keep = mask[:, None]
    carry = tuple(jnp.where(keep, new, old) for new, old in zip(new_carry, carry))
    return carry, jnp.where(keep, carry[-1], 0.0)


class _Weights(nn.Module):
  """Holds the cell's recurrent weights for the fused path. Named "scan" by
  the layer, so parameter paths are the same for both implementations and
  checkpoints move between them."""
  cell_name: str
  hidden_size: int

  @nn.compact
  def __call__(self):
    return get_cell(self.cell_name)(self.hidden_size, name="cell").weights()


class _DenseParams(nn.Module):
  """The parameters of an `nn.Dense(features)` (same names and initialisers)
  without applying it: the cuDNN kernel does the input projection itself."""
  features: int
  bias_init: object

  @nn.compact
  def __call__(self, in_features: int):
    kernel = self.param("kernel", nn.linear.default_kernel_init,
                        (in_features, self.features))
    bias = self.param("bias", self.bias_init, (self.features,))
    return kernel, bias


class RecurrentLayer(nn.Module):
  """Runs a named cell over a sequence.

  Attributes:
    cell_name: a key of `cells.CELLS`.
    hidden_size: the cell's state size.
    reverse: scan from the last step to the first.
    implementation: "fused" or "scan" (see the module docstring).
    remat: rematerialise the recurrence in the backward pass.
  """
  cell_name: str
  hidden_size: int
  reverse: bool = False
  implementation: str = "fused"
  remat: bool = False

  def zero_carry(self, batch_size: int) -> Carry:
    return get_cell(self.cell_name).zero_carry(batch_size, self.hidden_size)

  @nn.compact
  def __call__(self, carry: Carry, inputs: jax.Array, mask: jax.Array):
    """Scans the cell over time.

    Args:
      carry: initial state, a tuple of [batch, hidden] arrays.
      inputs: [batch, time, features].
      mask: [batch, time] bool, True at real (non-padding) steps.

    Returns:
      (final carry, outputs [batch, time, hidden]); outputs are 0 at padding.
    """
    cell = get_cell(self.cell_name)
    if self.implementation == "cudnn":
      if self.cell_name != "lstm":
        raise ValueError("model.recurrence='cudnn' supports model.cell='lstm' "
                         f"only (jax.experimental.rnn), got {self.cell_name!r}")
      kernel, bias = _DenseParams(
          cell.num_gates * self.hidden_size, cell.input_bias_init,
          name="input_projection")(inputs.shape[-1])
      w_h, _ = _Weights(self.cell_name, self.hidden_size, name="scan")()
      return cudnn_recurrence.lstm_layer(carry, inputs, mask, kernel, bias,
                                         w_h, self.reverse)
    input_projection = nn.Dense(cell.num_gates * self.hidden_size,
                                bias_init=cell.input_bias_init,
                                name="input_projection")
    if self.implementation == "scan":
      step = nn.remat(_MaskedStep) if self.remat else _MaskedStep
      scan = nn.scan(step, variable_broadcast="params",
                     split_rngs={"params": False}, in_axes=1, out_axes=1,
                     reverse=self.reverse)
      return scan(self.cell_name, self.hidden_size, name="scan")(
          carry, (input_projection(inputs), mask))
    if self.implementation != "fused":
      raise ValueError(f"unknown recurrence implementation "
                       f"{self.implementation!r}; valid: {IMPLEMENTATIONS}")
    # Time-major before the projection (the narrow input is cheaper to
    # transpose than the gates), and one 2-D matmul for all steps (a 3-D
    # operand makes XLA:CPU transpose the gate gradients for dW).
    batch, length, features = inputs.shape
    time_major = jnp.swapaxes(inputs, 0, 1).reshape(length * batch, features)
    projected = input_projection(time_major).reshape(length, batch, -1)
    w_h, b_h = _Weights(self.cell_name, self.hidden_size, name="scan")()
    dtype = projected.dtype
    carry = tuple(c.astype(dtype) for c in carry)
    if length == 1:
      # One step (decoding, the attention decoder's loop): no loop to fuse,
      # so no scan of length 1 (a nested loop per step) and no custom VJP;
      # autodiff of the step is the same computation.
      final, output, _ = masked_step(
          cell.pointwise, w_h.astype(dtype), b_h.astype(dtype), carry,
          projected[0], mask[:, :1])
      return final, output[:, None]
    final, outputs = fused_scan(
        cell.pointwise, self.reverse, self.remat, carry, projected,
        jnp.swapaxes(mask, 0, 1), w_h.astype(dtype), b_h.astype(dtype))
    return final, jnp.swapaxes(outputs, 0, 1)

  def step(self, carry: Carry, inputs: jax.Array):
    """One step for inference. inputs: [batch, features] -> (carry, [batch, hidden])."""
    mask = jnp.ones(inputs.shape[:1], bool)
    carry, outputs = self(carry, inputs[:, None], mask[:, None])
    return carry, outputs[:, 0]
