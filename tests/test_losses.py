"""Masked sums on hand-computed arrays."""
import jax.numpy as jnp
import numpy as np

from seq2seq_jax.training import losses


def test_sums_ignore_padding_exactly():
  # Row 0: tokens [3, 2]; row 1: [4] then padding. Logits favour 3 everywhere.
  targets = jnp.asarray([[3, 2], [4, 0]])
  logits = jnp.zeros((2, 2, 5)).at[..., 3].set(2.0)
  loss, sums = losses.sequence_sums(logits, targets)
  p_other = 1.0 / (np.exp(2.0) + 4.0)
  p_three = np.exp(2.0) * p_other
  want_nll = -np.log(p_three) - 2 * np.log(p_other)
  np.testing.assert_allclose(sums["nll_sum"], want_nll, rtol=1e-6)
  assert float(sums["token_count"]) == 3.0
  assert float(sums["correct_tokens"]) == 1.0
  assert float(sums["correct_sequences"]) == 0.0
  assert float(sums["sequence_count"]) == 2.0
  np.testing.assert_allclose(loss, want_nll / 3, rtol=1e-6)
  # Changing logits at the padded position changes nothing.
  _, sums2 = losses.sequence_sums(logits.at[1, 1].set(100.0), targets)
  for key in sums:
    np.testing.assert_allclose(sums[key], sums2[key])


def test_sequence_accuracy_counts_whole_rows_and_skips_empty_rows():
  targets = jnp.asarray([[3, 0], [4, 2], [0, 0]])
  logits = jnp.eye(5)[jnp.asarray([[3, 1], [4, 1], [1, 1]])] * 10
  _, sums = losses.sequence_sums(logits, targets)
  assert float(sums["correct_sequences"]) == 1.0
  assert float(sums["sequence_count"]) == 2.0
  final = losses.finalize(losses.add(None, sums))
  assert final["sequence_accuracy"] == 0.5
  assert final["token_accuracy"] == 2 / 3


def test_label_smoothing_changes_the_training_loss_only():
  targets = jnp.asarray([[3, 2]])
  logits = jnp.arange(10.0).reshape(1, 2, 5)
  plain_loss, plain = losses.sequence_sums(logits, targets)
  smooth_loss, smooth = losses.sequence_sums(logits, targets, 0.1)
  assert float(smooth_loss) != float(plain_loss)
  np.testing.assert_allclose(plain["nll_sum"], smooth["nll_sum"])


def test_finalize_perplexity_is_exp_loss():
  final = losses.finalize({"nll_sum": 6.0, "token_count": 3.0,
                            "correct_tokens": 3.0, "correct_sequences": 1.0,
                            "sequence_count": 1.0})
  np.testing.assert_allclose(final["perplexity"], np.exp(2.0))
