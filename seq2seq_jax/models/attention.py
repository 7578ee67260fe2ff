"""Attention over the encoder outputs (Bahdanau et al. 2015; Luong et al. 2015).

Every kind scores each source position against a decoder query and returns a
context vector (the weighted sum of encoder outputs) and the weights. Padded
source positions get exactly zero weight: their scores are replaced by a large
negative number before the softmax (exp underflows to 0.0 in float32) and the
weights are multiplied by the mask, so an all-padding row gives zero context.

  bahdanau       v . tanh(W_m m + W_q q)          (additive)
  luong_dot      m . q                            (sizes must match)
  luong_general  m . (W q)
  luong_concat   v . tanh(W [q; m]) = v . tanh(W_m m + W_q q)

The memory-side projection (W_m m, or m for dot) depends only on the source, so
`keys` computes it once per sentence; each decoder step only projects its query.
"""
from typing import Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

KINDS = ("none", "bahdanau", "luong_dot", "luong_general", "luong_concat")
MASKED_SCORE = -1e9


@jax.checkpoint
def _additive_scores(keys, projected_query, kernel):
  """v . tanh(keys + W_q q) -> [batch, source].

  Checkpointed: the backward pass recomputes the [batch, source, units] tanh
  from the keys (the same at every decoder step) and the small projected
  query, instead of a decoder loop storing it at every step (twice, as
  autodiff of the scan keeps it for both the tanh and the product with v).
  """
  hidden = jnp.tanh(keys + projected_query[:, None, :])
  hidden, kernel = nn.dtypes.promote_dtype(hidden, kernel)
  scores = jax.lax.dot_general(hidden, kernel,
                               (((hidden.ndim - 1,), (0,)), ((), ())))
  return scores[..., 0]


class _ScoreVector(nn.Module):
  """The v of additive attention; the parameter of `nn.Dense(1,
  use_bias=False)` (same name and initialiser), applied by _additive_scores."""

  @nn.compact
  def __call__(self, keys, projected_query):
    kernel = self.param("kernel", nn.linear.default_kernel_init,
                        (keys.shape[-1], 1))
    return _additive_scores(keys, projected_query, kernel)


class Attention(nn.Module):
  """Scores a query against the source.

  Attributes:
    kind: one of KINDS except 'none'.
    units: size of the additive scoring layer (bahdanau, luong_concat).
    memory_size: size of the encoder outputs.
  """
  kind: str
  units: int
  memory_size: int

  def setup(self):
    if self.kind not in KINDS[1:]:
      raise ValueError(f"unknown attention {self.kind!r}; valid: "
                       f"{', '.join(KINDS)}")
    if self.kind in ("bahdanau", "luong_concat"):
      self.memory_projection = nn.Dense(self.units, use_bias=False)
      self.query_projection = nn.Dense(self.units)
      self.score_vector = _ScoreVector()
    elif self.kind == "luong_general":
      self.general_kernel = nn.Dense(self.memory_size, use_bias=False)

  def keys(self, memory: jax.Array) -> jax.Array:
    """The query-independent part of the scores, [batch, source, ...]."""
    if self.kind in ("bahdanau", "luong_concat"):
      return self.memory_projection(memory)
    return memory

  def __call__(self, query: jax.Array, keys: jax.Array, memory: jax.Array,
               mask: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Attends from one query per row.

    Args:
      query: [batch, query_size] decoder state.
      keys: [batch, source, key_size] from `keys(memory)`.
      memory: [batch, source, memory_size] encoder outputs.
      mask: [batch, source] bool, True at real source tokens.

    Returns:
      (context [batch, memory_size], weights [batch, source]).
    """
    if self.kind in ("bahdanau", "luong_concat"):
      scores = self.score_vector(keys, self.query_projection(query))
    elif self.kind == "luong_dot":
      if query.shape[-1] != memory.shape[-1]:
        raise ValueError(f"luong_dot needs equal decoder ({query.shape[-1]}) "
                         f"and encoder output ({memory.shape[-1]}) sizes")
      scores = jnp.einsum("bsd,bd->bs", keys, query)
    else:  # luong_general
      projected = self.general_kernel(query)
      scores = jnp.einsum("bsd,bd->bs", keys, projected)
    scores = jnp.where(mask, scores.astype(jnp.float32), MASKED_SCORE)
    weights = jax.nn.softmax(scores, axis=-1) * mask
    context = jnp.einsum("bs,bsd->bd", weights.astype(memory.dtype), memory)
    return context, weights
