"""The first index of the largest value, as two plain reductions.

Why: `jnp.argmax` lowers to one reduction over (value, index) pairs, which
XLA:CPU does not vectorize: over [64, 8,000] logits it took about 0.9 ms
per decoding step on a 2-core Xeon, 15% of greedy decoding. A max, then the
smallest index where the value equals it, gives the same answer (the first
index on ties, NaN counted as the largest as `jnp.argmax` does) in half the
time (docs/performance.md).
"""
import jax
import jax.numpy as jnp


def first_argmax(values: jax.Array) -> jax.Array:
  """`jnp.argmax(values, axis=-1)`, the same indices (int32), faster on CPU.

  Args:
    values: [..., n] floats.

  Returns:
    [...] int32: the first index of the maximum along the last axis; where a
    row holds NaN, the first NaN's index.
  """
  largest = jnp.max(values, axis=-1, keepdims=True)
  index = jax.lax.broadcasted_iota(jnp.int32, values.shape, values.ndim - 1)
  # A NaN makes the max NaN, which equals nothing: match NaNs instead.
  hit = (values == largest) | jnp.isnan(values)
  return jnp.min(jnp.where(hit, index, values.shape[-1]), axis=-1)
