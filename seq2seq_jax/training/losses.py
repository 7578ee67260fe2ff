"""Masked sequence losses and metrics, returned as sums with denominators.

Sums (not means) make averages exact across padding, uneven last batches and
devices: add the sums up, divide once at the end (`finalize`).
"""
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from seq2seq_jax.data.vocabulary import PAD_ID
from seq2seq_jax.decoding.argmax import first_argmax

Sums = Dict[str, jax.Array]


def token_cross_entropy(logits: jax.Array, targets: jax.Array,
                        label_smoothing: float = 0.0):
  """Per-token (training loss, negative log-likelihood, target is the argmax).

  Plain autodiff: XLA fuses the log-sum-exp, the target gather and their
  gradient (`softmax - target distribution`) into the output layer's passes,
  which measured faster than a hand-written VJP around the same formula
  (docs/performance.md).

  Args:
    logits: [..., vocab], any float dtype (computed in float32).
    targets: [...] int ids in [0, vocab).
    label_smoothing: mass spread uniformly over the vocabulary in the
      training loss (the target gets 1 - label_smoothing + label_smoothing /
      vocab); the NLL is always unsmoothed.

  Returns:
    loss [...], nll [...] and correct [...] (float 0/1: the target is the
    argmax, the first index on ties, as greedy decoding would choose).
  """
  logits = logits.astype(jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  nll = lse - target_logit
  loss = nll
  if label_smoothing:
    loss = (lse - (1.0 - label_smoothing) * target_logit
            - label_smoothing * jnp.mean(logits, axis=-1))
  correct = (first_argmax(logits) == targets).astype(jnp.float32)
  return loss, nll, correct


def sequence_sums(logits: jax.Array, targets: jax.Array,
                  label_smoothing: float = 0.0):
  """Cross-entropy and accuracy over the real (non-padding) target tokens.

  Args:
    logits: [batch, length, vocab].
    targets: [batch, length] int ids, PAD_ID where there is no token.
    label_smoothing: mass spread uniformly over the vocabulary in the
      training loss; the reported NLL and perplexity are always unsmoothed.

  Returns:
    (training loss: smoothed mean over real tokens, sums) where sums holds
    nll_sum, token_count, correct_tokens, correct_sequences, sequence_count.
  """
  weights = (targets != PAD_ID).astype(jnp.float32)
  train_loss_tokens, nll, correct = token_cross_entropy(
      logits, targets, float(label_smoothing))
  token_count = weights.sum()
  train_loss = (train_loss_tokens * weights).sum() / jnp.maximum(token_count, 1.0)
  return train_loss, metric_sums(nll, correct, weights)


def metric_sums(nll: jax.Array, correct: jax.Array, weights: jax.Array) -> Sums:
  """The sums of `sequence_sums` from per-token NLL and correctness
  [batch, length] (finite at padding, where `weights` is 0)."""
  correct = correct * weights
  has_tokens = weights.max(axis=-1)
  sequence_correct = jnp.all((correct == weights), axis=-1) * has_tokens
  return {
      "nll_sum": (nll * weights).sum(),
      "token_count": weights.sum(),
      "correct_tokens": correct.sum(),
      "correct_sequences": sequence_correct.sum(),
      "sequence_count": has_tokens.sum(),
  }


def add(total: Dict[str, float] | None, sums) -> Dict[str, float]:
  """Accumulates sums on the host in float64."""
  sums = {k: float(np.asarray(v, np.float64)) for k, v in sums.items()}
  if total is None:
    return sums
  return {k: total.get(k, 0.0) + v for k, v in sums.items()}


def finalize(total: Dict[str, float]) -> Dict[str, float]:
  """Turns accumulated sums into loss, perplexity and accuracies."""
  tokens = max(total["token_count"], 1.0)
  sequences = max(total["sequence_count"], 1.0)
  loss = total["nll_sum"] / tokens
  return {
      "loss": loss,
      "perplexity": float(np.exp(min(loss, 700.0))),
      "token_accuracy": total["correct_tokens"] / tokens,
      "sequence_accuracy": total["correct_sequences"] / sequences,
  }
