"""Bahdanau attention and a recurrent cell over a teacher-forced target, with
a hand-written backward pass (`jax.custom_vjp`).

Why: attention needs the previous state, so the decoder runs step by step, and
differentiating that loop makes XLA accumulate every weight gradient inside
the backward loop: per step a small matmul each for the recurrent kernel, the
query projection and the context's input projection. Here the backward loop
carries only the state gradient and the key gradient, stacks the per-step
gradients of the pre-activations, and computes each weight gradient as one
[features, time*batch] x [time*batch, out] matmul after the loop. The
embedding's half of the input projection does not depend on the previous step
at all: the caller computes it for every step in one matmul before the loop.

Per step t, from the previous carry (h = its last element):
  q = h W_q + b_q;  a = tanh(keys + q);  scores = a v   (masked, softmax -> w)
  context = w . memory;  x = xe_t + context W_c;  carry' = pointwise(carry, x,
  h W_h + b_h);  outputs h', context
which is `decoder.Decoder.readout` for one layer and Bahdanau attention
(tests compare values and gradients with it).
"""
import functools
from typing import Callable, Tuple

import jax
import jax.numpy as jnp

from seq2seq_jax.attention import MASKED_SCORE

Carry = Tuple[jax.Array, ...]
Pointwise = Callable[[Carry, jax.Array, jax.Array], Carry]


def _attend(h, keys, memory, mask, w_q, b_q, v):
  """(context [B, D], weights [B, S] float32, a = tanh(...) [B, S, U])."""
  a = jnp.tanh(keys + (h @ w_q + b_q)[:, None, :])
  scores = jnp.where(mask, (a @ v).astype(jnp.float32), MASKED_SCORE)
  weights = jax.nn.softmax(scores, axis=-1) * mask
  context = jnp.einsum("bs,bsd->bd", weights.astype(memory.dtype), memory)
  return context, weights, a


def _forward(pointwise, carry0, xe, keys, memory, mask, w_q, b_q, v, w_c,
             w_h, b_h):
  def body(carry, xe_t):
    context, weights, a = _attend(carry[-1], keys, memory, mask, w_q, b_q, v)
    x = xe_t + context @ w_c
    hidden_part = carry[-1] @ w_h + b_h
    new = pointwise(carry, x, hidden_part)
    return new, (new[-1], context, (carry, a, weights, x, hidden_part))
  _, (hs, contexts, residuals) = jax.lax.scan(body, carry0, xe)
  return (hs, contexts), residuals


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def bahdanau_recurrence(pointwise: Pointwise, carry0: Carry, xe: jax.Array,
                        keys: jax.Array, memory: jax.Array, mask: jax.Array,
                        w_q, b_q, v, w_c, w_h, b_h):
  """Runs the attentive recurrence over every target step.

  Args:
    pointwise: the cell's gate equations (`cells._Cell.pointwise`).
    carry0: the initial carry, a tuple of [B, H]; the last element is h.
    xe: [T, B, G] the embedding's input projection of each step, bias included.
    keys: [B, S, U] the memory projection; memory: [B, S, D] encoder outputs;
      mask: [B, S] bool, True at real source tokens.
    w_q [H, U], b_q [U]: the query projection; v [U]: the score vector.
    w_c [D, G]: the context's input projection; w_h [H, G], b_h [G]: the
      recurrent kernel and bias.

  Returns:
    (h' [T, B, H], context [T, B, D]) of every step.
  """
  return _forward(pointwise, carry0, xe, keys, memory, mask, w_q, b_q, v,
                  w_c, w_h, b_h)[0]


def _fwd(pointwise, carry0, xe, keys, memory, mask, w_q, b_q, v, w_c, w_h, b_h):
  outputs, residuals = _forward(pointwise, carry0, xe, keys, memory, mask,
                                w_q, b_q, v, w_c, w_h, b_h)
  return outputs, (residuals, outputs[1], keys, memory, mask, w_q, b_q, v,
                   w_c, w_h, b_h)


def _bwd(pointwise, saved, cotangents):
  residuals, contexts, keys, memory, mask, w_q, b_q, v, w_c, w_h, b_h = saved
  d_hs, d_contexts = cotangents
  w_c_t, w_h_t, w_q_t = w_c.T, w_h.T, w_q.T
  zero_carry = tuple(jnp.zeros_like(c[0]) for c in residuals[0])

  def body(state, inputs):
    d_carry, d_keys = state
    (carry, a, weights, x, hidden_part), d_h, d_context = inputs
    d_new = d_carry[:-1] + (d_carry[-1] + d_h,)
    _, vjp = jax.vjp(pointwise, carry, x, hidden_part)
    d_prev, d_x, d_hidden = vjp(d_new)
    d_context = d_context + d_x @ w_c_t
    d_weights = jnp.einsum("bd,bsd->bs", d_context, memory).astype(jnp.float32)
    d_scores = weights * (d_weights
                          - jnp.sum(weights * d_weights, -1, keepdims=True))
    d_pre = d_scores.astype(a.dtype)[..., None] * v * (1.0 - a * a)
    d_query = d_pre.sum(axis=1)
    d_prev = d_prev[:-1] + (d_prev[-1] + d_hidden @ w_h_t + d_query @ w_q_t,)
    return (d_prev, d_keys + d_pre), (d_x, d_hidden, d_query, d_scores,
                                      d_context)

  (d_carry0, d_keys), (d_xs, d_hidden, d_query, d_scores, d_context) = (
      jax.lax.scan(body, (zero_carry, jnp.zeros_like(keys)),
                   (residuals, d_hs, d_contexts), reverse=True))
  carries, a, weights = residuals[0], residuals[1], residuals[2]
  h_prev = carries[-1]
  # The weight gradients, each one matmul over all steps at once.
  d_w_h = jnp.einsum("tbh,tbg->hg", h_prev, d_hidden)
  d_w_q = jnp.einsum("tbh,tbu->hu", h_prev, d_query)
  d_w_c = jnp.einsum("tbd,tbg->dg", contexts, d_xs)
  d_v = jnp.einsum("tbsu,tbs->u", a, d_scores.astype(a.dtype))
  d_memory = jnp.einsum("tbs,tbd->bsd", weights.astype(memory.dtype), d_context)
  cast = lambda d, like: d.astype(like.dtype)
  return (d_carry0, d_xs, d_keys, cast(d_memory, memory), None,
          cast(d_w_q, w_q), cast(d_query.sum(axis=(0, 1)), b_q), cast(d_v, v),
          cast(d_w_c, w_c), cast(d_w_h, w_h), cast(d_hidden.sum(axis=(0, 1)), b_h))


bahdanau_recurrence.defvjp(_fwd, _bwd)
