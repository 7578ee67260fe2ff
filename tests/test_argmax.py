"""first_argmax: the same indices as jnp.argmax, ties, infinities and NaN."""
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.decoding.argmax import first_argmax


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_equals_jnp_argmax_on_random_values(dtype):
  values = jnp.asarray(np.random.default_rng(0).normal(size=(3, 64, 501)),
                       dtype)
  np.testing.assert_array_equal(first_argmax(values),
                                jnp.argmax(values, axis=-1))


def test_ties_infinities_and_nan_like_jnp_argmax():
  inf, nan = jnp.inf, jnp.nan
  values = jnp.asarray([
      [1.0, 3.0, 3.0, 0.0],       # tie: the first
      [-inf, -inf, -inf, -inf],   # all -inf (everything forbidden)
      [2.0, inf, 1.0, inf],       # +inf twice
      [0.0, nan, 5.0, nan],       # NaN wins, the first one
      [2.0, 2.0, 2.0, 2.0],
  ])
  expected = jnp.argmax(values, axis=-1)
  np.testing.assert_array_equal(first_argmax(values), expected)
  np.testing.assert_array_equal(expected, [1, 0, 1, 1, 0])
  assert first_argmax(values).dtype == jnp.int32
