"""The token cross-entropy against optax's one-hot formulation."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from seq2seq_jax.training import losses


def _reference(logits, targets, label_smoothing):
  one_hot = jax.nn.one_hot(targets, logits.shape[-1])
  nll = optax.softmax_cross_entropy(logits, one_hot)
  smooth = optax.smooth_labels(one_hot, label_smoothing)
  loss = optax.softmax_cross_entropy(logits, smooth)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  return loss, nll, correct


def _data(seed=0, shape=(3, 5), vocab=11, scale=3.0):
  rng = np.random.default_rng(seed)
  logits = jnp.asarray(rng.normal(size=shape + (vocab,)) * scale, jnp.float32)
  targets = jnp.asarray(rng.integers(0, vocab, size=shape), jnp.int32)
  return logits, targets


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_values_match_optax(label_smoothing):
  logits, targets = _data()
  got = losses.token_cross_entropy(logits, targets, label_smoothing)
  want = _reference(logits, targets, label_smoothing)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_gradient_matches_autodiff_for_both_outputs(label_smoothing):
  logits, targets = _data(seed=1)
  rng = np.random.default_rng(2)
  w_loss = jnp.asarray(rng.normal(size=targets.shape), jnp.float32)
  w_nll = jnp.asarray(rng.normal(size=targets.shape), jnp.float32)

  def objective(fn):
    def f(x):
      loss, nll, _ = fn(x, targets, label_smoothing)
      return jnp.sum(loss * w_loss) + jnp.sum(nll * w_nll)
    return f

  got = jax.grad(objective(losses.token_cross_entropy))(logits)
  want = jax.grad(objective(_reference))(logits)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert float(jnp.abs(got).max()) > 1e-3  # the check is not vacuous


def test_ties_are_not_all_correct():
  logits = jnp.zeros((2, 5))  # every class ties: argmax is class 0
  _, _, correct = losses.token_cross_entropy(logits, jnp.asarray([0, 3]))
  np.testing.assert_array_equal(correct, [1.0, 0.0])


def test_extreme_logits_stay_finite():
  logits, targets = _data(seed=3, scale=1e4)
  loss, nll, _ = losses.token_cross_entropy(logits, targets, 0.1)
  grad = jax.grad(lambda x: losses.token_cross_entropy(x, targets, 0.1)[0].sum())(
      logits)
  assert np.all(np.isfinite(loss)) and np.all(np.isfinite(nll))
  assert np.all(np.isfinite(grad))


def test_bfloat16_logits_get_a_bfloat16_gradient():
  logits, targets = _data(seed=4)
  grad = jax.grad(lambda x: losses.token_cross_entropy(x, targets)[0].sum())(
      logits.astype(jnp.bfloat16))
  assert grad.dtype == jnp.bfloat16
  want = jax.grad(lambda x: _reference(x, targets, 0.0)[0].sum())(logits)
  np.testing.assert_allclose(grad.astype(jnp.float32), want, atol=2e-2)


def test_padding_gets_zero_gradient_through_sequence_sums():
  logits, targets = _data(seed=5)
  targets = targets.at[:, 3:].set(0)  # PAD_ID
  targets = targets.at[:, :3].set(jnp.maximum(targets[:, :3], 1))
  grad = jax.grad(lambda x: losses.sequence_sums(x, targets, 0.1)[0])(logits)
  assert float(jnp.abs(grad[:, 3:]).max()) == 0.0
  assert float(jnp.abs(grad[:, :3]).min()) > 0.0
