"""The scanned layer against a plain Python loop; padding leaves the carry alone."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.models.cells import get_cell
from seq2seq_jax.models.recurrent import RecurrentLayer

BATCH, TIME, FEATURES, HIDDEN = 2, 6, 3, 5


def _setup(cell_name, reverse=False):
  rng = np.random.default_rng(1)
  xs = jnp.asarray(rng.normal(size=(BATCH, TIME, FEATURES)), jnp.float32)
  layer = RecurrentLayer(cell_name, HIDDEN, reverse=reverse)
  carry0 = layer.zero_carry(BATCH)
  mask = jnp.ones((BATCH, TIME), bool)
  variables = layer.init(jax.random.PRNGKey(0), carry0, xs, mask)
  return layer, variables, carry0, xs


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "rnn"])
def test_scan_equals_python_loop(cell_name):
  layer, variables, carry, xs = _setup(cell_name)
  mask = jnp.ones((BATCH, TIME), bool)
  scan_carry, scan_out = layer.apply(variables, carry, xs, mask)

  params = variables["params"]
  projected = xs @ params["input_projection"]["kernel"] + params[
      "input_projection"]["bias"]
  cell = get_cell(cell_name)(HIDDEN)
  cell_vars = {"params": params["scan"]["cell"]}
  outs = []
  for t in range(TIME):
    carry = cell.apply(cell_vars, carry, projected[:, t])
    outs.append(carry[-1])
  np.testing.assert_allclose(scan_out, jnp.stack(outs, 1), rtol=1e-6, atol=1e-6)
  for a, b in zip(scan_carry, carry):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("reverse", [False, True])
def test_appending_padding_changes_nothing(cell_name, reverse):
  layer, variables, carry0, xs = _setup(cell_name, reverse)
  lengths = np.array([4, 2])
  mask = jnp.asarray(np.arange(TIME)[None] < lengths[:, None])
  carry, out = layer.apply(variables, carry0, xs, mask)
  # Same real steps alone (no padding at all), one row at a time.
  for row, length in enumerate(lengths):
    row_carry0 = tuple(c[row:row + 1] for c in carry0)
    real = xs[row:row + 1, :length]
    want_carry, want_out = layer.apply(variables, row_carry0, real,
                                       jnp.ones((1, length), bool))
    np.testing.assert_allclose(out[row, :length], want_out[0], rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_array_equal(out[row, length:], 0.0)
    for a, b in zip(carry, want_carry):
      np.testing.assert_allclose(a[row], b[0], rtol=1e-6, atol=1e-6)
  # Garbage in padded positions must not leak in either.
  noisy = xs + jnp.where(mask[..., None], 0.0, 1e3)
  carry2, out2 = layer.apply(variables, carry0, noisy, mask)
  np.testing.assert_array_equal(out, out2)
  for a, b in zip(carry, carry2):
    np.testing.assert_array_equal(a, b)


def test_step_equals_first_scan_step():
  layer, variables, carry0, xs = _setup("lstm")
  mask = jnp.ones((BATCH, TIME), bool)
  carry, out = layer.apply(variables, carry0, xs, mask)
  step_carry = carry0
  for t in range(TIME):
    step_carry, step_out = layer.apply(variables, step_carry, xs[:, t],
                                       method=RecurrentLayer.step)
    np.testing.assert_allclose(step_out, out[:, t], rtol=1e-6, atol=1e-6)
  for a, b in zip(step_carry, carry):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
