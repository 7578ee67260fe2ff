"""Cells against an independent NumPy implementation of their equations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.models import cells
from seq2seq_jax.models.recurrent import RecurrentLayer


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(xs, w_i, b_i, w_h, h0, c0):
  h, c, outs = h0, c0, []
  for x in xs.transpose(1, 0, 2):
    z = x @ w_i + b_i + h @ w_h
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    outs.append(h)
  return (c, h), np.stack(outs, 1)


def numpy_gru(xs, w_i, b_i, w_h, b_h, h0):
  h, outs = h0, []
  hidden = h0.shape[-1]
  for x in xs.transpose(1, 0, 2):
    gx = x @ w_i + b_i
    gh = h @ w_h + b_h
    r = sigmoid(gx[:, :hidden] + gh[:, :hidden])
    z = sigmoid(gx[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
    n = np.tanh(gx[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
    h = (1 - z) * n + z * h
    outs.append(h)
  return (h,), np.stack(outs, 1)


def numpy_rnn(xs, w_i, b_i, w_h, h0):
  h, outs = h0, []
  for x in xs.transpose(1, 0, 2):
    h = np.tanh(x @ w_i + b_i + h @ w_h)
    outs.append(h)
  return (h,), np.stack(outs, 1)


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "rnn"])
def test_layer_matches_numpy(cell_name):
  batch, time, features, hidden = 3, 5, 4, 6
  rng = np.random.default_rng(0)
  xs = rng.normal(size=(batch, time, features)).astype(np.float32)
  mask = np.ones((batch, time), bool)
  layer = RecurrentLayer(cell_name, hidden)
  carry0 = tuple(jnp.asarray(rng.normal(size=c.shape).astype(np.float32))
                 for c in layer.zero_carry(batch))
  variables = layer.init(jax.random.PRNGKey(0), carry0, xs, mask)
  # Non-zero biases so a missing bias term would show.
  variables = jax.tree.map(
      lambda p: p + 0.1 * rng.normal(size=p.shape).astype(np.float32), variables)
  carry, outs = layer.apply(variables, carry0, xs, mask)

  p = jax.tree.map(np.asarray, variables["params"])
  w_i, b_i = p["input_projection"]["kernel"], p["input_projection"]["bias"]
  cell = p["scan"]["cell"]
  h0 = [np.asarray(c) for c in carry0]
  if cell_name == "lstm":
    want_carry, want_outs = numpy_lstm(xs, w_i, b_i, cell["recurrent_kernel"],
                                       h0[1], h0[0])
  elif cell_name == "gru":
    want_carry, want_outs = numpy_gru(xs, w_i, b_i, cell["recurrent_kernel"],
                                      cell["recurrent_bias"], h0[0])
  else:
    want_carry, want_outs = numpy_rnn(xs, w_i, b_i, cell["recurrent_kernel"], h0[0])
  np.testing.assert_allclose(outs, want_outs, rtol=1e-5, atol=1e-5)
  for got, want in zip(carry, want_carry):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_unknown_cell_lists_valid_names():
  with pytest.raises(ValueError, match="gru, lstm, rnn"):
    cells.get_cell("transformer")


def test_carry_structure():
  assert len(cells.LSTMCell.zero_carry(2, 3)) == 2
  assert len(cells.GRUCell.zero_carry(2, 3)) == 1
  assert cells.SimpleRNNCell.zero_carry(2, 3)[0].shape == (2, 3)
