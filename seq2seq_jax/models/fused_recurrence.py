"""A masked recurrence with a hand-written backward pass (`jax.custom_vjp`).

Why: differentiating `lax.scan` makes XLA accumulate the recurrent weight
gradient inside the backward loop, one small [hidden, batch] x [batch, gates]
matmul per step, and keep every gate intermediate alive. Here the backward scan
only carries dh (one `dgates @ W_hh^T` per step, which is unavoidable) and
stacks the per-step gate gradients; dW_hh is then a single
[hidden, time*batch] x [time*batch, gates] matmul after the loop.

The cell is given as `pointwise(carry, projected_input, hidden_part) -> carry`
where `hidden_part = h @ W_hh + b_hh`, so the same gate equations serve the
autodiff path (`recurrent._MaskedStep`) and this one.

Residuals per step: the previous carry and `hidden_part` (or, with
`remat=True`, only the previous carry: `hidden_part` is recomputed in the
backward pass, one extra matmul per step for less memory).
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp

from seq2seq_jax.models.cells import Carry

Pointwise = Callable[[Carry, jax.Array, jax.Array], Carry]


def masked_step(pointwise: Pointwise, w_h, b_h, carry: Carry, x, keep):
  """One masked step; returns (new carry, output, hidden_part)."""
  hidden_part = carry[-1] @ w_h + b_h
  new = pointwise(carry, x, hidden_part)
  new = tuple(jnp.where(keep, n, o) for n, o in zip(new, carry))
  return new, jnp.where(keep, new[-1], 0.0), hidden_part


def _scan_forward(pointwise, reverse, carry0, xs, mask, w_h, b_h):
  def body(carry, inputs):
    x, m = inputs
    new, y, hidden_part = masked_step(pointwise, w_h, b_h, carry, x, m[:, None])
    return new, (y, carry, hidden_part)
  final, (ys, prev_carries, hidden_parts) = jax.lax.scan(
      body, carry0, (xs, mask), reverse=reverse)
  return final, ys, prev_carries, hidden_parts


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def fused_scan(pointwise: Pointwise, reverse: bool, remat: bool,
               carry0: Carry, xs: jax.Array, mask: jax.Array,
               w_h: jax.Array, b_h: jax.Array):
  """Runs the masked recurrence over time-major inputs.

  Args:
    pointwise: the cell's gate equations (see module docstring).
    reverse: scan from the last step to the first.
    remat: recompute `h @ W_hh` in the backward pass instead of storing it.
    carry0: initial carry, a tuple of [batch, hidden]; the last element is h.
    xs: [time, batch, gates * hidden] input projections (bias included).
    mask: [time, batch] bool; at False steps the carry passes through
      unchanged and the output is 0.
    w_h: [hidden, gates * hidden]; b_h: [gates * hidden].

  Returns:
    (final carry, outputs [time, batch, hidden]).
  """
  def body(carry, inputs):
    x, m = inputs
    new, y, _ = masked_step(pointwise, w_h, b_h, carry, x, m[:, None])
    return new, y
  return jax.lax.scan(body, carry0, (xs, mask), reverse=reverse)


def _fused_fwd(pointwise, reverse, remat, carry0, xs, mask, w_h, b_h):
  final, ys, prev_carries, hidden_parts = _scan_forward(
      pointwise, reverse, carry0, xs, mask, w_h, b_h)
  if remat:
    hidden_parts = None
  return (final, ys), (prev_carries, hidden_parts, xs, mask, w_h, b_h)


def _fused_bwd(pointwise, reverse, remat, residuals, cotangents):
  del remat  # Encoded by hidden_parts being None.
  prev_carries, hidden_parts, xs, mask, w_h, b_h = residuals
  d_final, d_ys = cotangents

  def body(d_carry, inputs):
    carry, hidden_part, x, m, d_y = inputs
    if hidden_part is None:
      hidden_part = carry[-1] @ w_h + b_h
    keep = m[:, None]
    # The output y = h_new at real steps: its cotangent joins dh_new.
    d_new = d_carry[:-1] + (d_carry[-1] + jnp.where(keep, d_y, 0.0),)
    _, vjp = jax.vjp(pointwise, carry, x, hidden_part)
    d_prev, d_x, d_hidden = vjp(tuple(jnp.where(keep, d, 0.0) for d in d_new))
    # At padded steps the carry passed straight through.
    d_prev = tuple(dp + jnp.where(keep, 0.0, d) for dp, d in zip(d_prev, d_new))
    d_prev = d_prev[:-1] + (d_prev[-1] + jax.lax.dot_general(
        d_hidden, w_h, (((1,), (1,)), ((), ()))),)
    # Where the cell adds x and h @ W_hh before its gates (LSTM, RNN), the two
    # cotangents are one array: stack it once, not twice.
    return d_prev, (None if d_x is d_hidden else d_x, d_hidden)

  # With remat, hidden_parts is None: an empty pytree that scan passes through.
  d_carry0, (d_xs, d_hidden) = jax.lax.scan(
      body, d_final, (prev_carries, hidden_parts, xs, mask, d_ys),
      reverse=not reverse)
  if d_xs is None:
    d_xs = d_hidden
  # The weight gradients, each one matmul over all steps at once.
  d_w_h = jnp.einsum("tbh,tbg->hg", prev_carries[-1], d_hidden)
  d_b_h = d_hidden.sum(axis=(0, 1))
  return d_carry0, d_xs, None, d_w_h, d_b_h


fused_scan.defvjp(_fused_fwd, _fused_bwd)
