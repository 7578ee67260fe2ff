"""model.recurrence=cudnn: the packing into cuDNN's layout, checked on CPU by
running `jax.experimental.rnn.lstm_ref` (the kernel's pure-JAX reference) in
place of the cuDNN call, against the project's own LSTM."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn

from configs import default
from seq2seq_jax import settings
from seq2seq_jax.models import cudnn_recurrence
from seq2seq_jax.models.recurrent import RecurrentLayer

BATCH, TIME, FEATURES, HIDDEN = 4, 6, 3, 5


def _reference_lstm(x, h0, c0, weights, lengths, input_size, hidden,
                    num_layers, dropout, bidirectional):
  w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(
      weights, input_size, hidden, num_layers, bidirectional)
  return rnn.lstm_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, input_size,
                      hidden, num_layers, dropout, bidirectional)


@pytest.fixture
def on_cuda_reference(monkeypatch):
  monkeypatch.setattr(cudnn_recurrence, "backend", lambda: "gpu")
  monkeypatch.setattr(cudnn_recurrence.rnn, "lstm", _reference_lstm)


def _loss(layer, mask):
  def loss(variables, carry0, xs):
    carry, outputs = layer.apply(variables, carry0, xs, mask)
    return (jnp.sum(outputs * jnp.sin(outputs))
            + sum(jnp.sum(jnp.cos(c)) for c in carry))
  return loss


@pytest.mark.parametrize("reverse", [False, True])
def test_cudnn_layout_computes_the_projects_lstm(on_cuda_reference, reverse):
  rng = np.random.default_rng(0)
  xs = jnp.asarray(rng.normal(size=(BATCH, TIME, FEATURES)), jnp.float32)
  lengths = np.array([TIME, 4, 1, 0])  # full, padded, one step, all padding
  mask = jnp.asarray(np.arange(TIME)[None] < lengths[:, None])
  fused = RecurrentLayer("lstm", HIDDEN, reverse=reverse)
  cudnn = RecurrentLayer("lstm", HIDDEN, reverse=reverse,
                         implementation="cudnn")
  carry0 = tuple(jnp.asarray(rng.normal(size=c.shape), jnp.float32)
                 for c in fused.zero_carry(BATCH))
  variables = fused.init(jax.random.PRNGKey(0), carry0, xs, mask)
  assert (jax.tree.structure(variables) ==  # same parameters
          jax.tree.structure(cudnn.init(jax.random.PRNGKey(0), carry0, xs,
                                        mask)))
  want_carry, want_out = fused.apply(variables, carry0, xs, mask)
  got_carry, got_out = cudnn.apply(variables, carry0, xs, mask)
  np.testing.assert_allclose(got_out, want_out, rtol=1e-5, atol=1e-6)
  for got, want in zip(got_carry, want_carry):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  want = jax.grad(_loss(fused, mask), argnums=(0, 1, 2))(variables, carry0, xs)
  got = jax.grad(_loss(cudnn, mask), argnums=(0, 1, 2))(variables, carry0, xs)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_reverse_real_keeps_padding_at_the_end():
  x = jnp.asarray([[1, 2, 3, 0], [4, 5, 0, 0]])
  np.testing.assert_array_equal(
      cudnn_recurrence.reverse_real(x, jnp.asarray([3, 2])),
      [[3, 2, 1, 0], [5, 4, 0, 0]])


def test_cudnn_off_a_gpu_is_a_config_error():
  config = default.get_config()
  config.model.recurrence = "cudnn"
  with pytest.raises(settings.ConfigError, match="needs a CUDA GPU"):
    settings.from_config(config)
  config.model.cell = "gru"
  with pytest.raises(settings.ConfigError, match="LSTM layers only"):
    settings.from_config(config)
