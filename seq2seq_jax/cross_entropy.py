"""Softmax cross-entropy from integer targets, with a hand-written gradient.

The output layer's loss runs over [batch * length, vocab] logits, the largest
tensor of the step. Autodiff of `log_softmax * one_hot` makes several passes
over it forward and backward (a materialised one-hot, the log-softmax, its
gradient). Here the forward pass keeps only the log-sum-exp per token, and the
backward pass is one elementwise sweep, `softmax - target distribution`, so
the logits are read about three times in all.
"""
import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def cross_entropy(logits: jax.Array, targets: jax.Array,
                  label_smoothing: float = 0.0):
  """Per-token (training loss, negative log-likelihood, target is the argmax).

  Args:
    logits: [..., vocab] float.
    targets: [...] int ids in [0, vocab).
    label_smoothing: mass spread uniformly over the vocabulary in the
      training loss (the target gets 1 - label_smoothing + label_smoothing /
      vocab); the NLL is always unsmoothed.

  Returns:
    loss [...], nll [...] and correct [...] (float 0/1: the target is the
    argmax, the first index on ties). Gradients flow through loss and nll.
  """
  outputs, _ = _forward(logits, targets, label_smoothing)
  return outputs


def _forward(logits, targets, label_smoothing):
  residuals = (logits, targets)
  logits = logits.astype(jnp.float32)
  top = jnp.max(logits, axis=-1)
  lse = top + jnp.log(jnp.sum(jnp.exp(logits - top[..., None]), axis=-1))
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  nll = lse - target_logit
  if label_smoothing:
    mean_logit = jnp.mean(logits, axis=-1)
    loss = (lse - (1.0 - label_smoothing) * target_logit
            - label_smoothing * mean_logit)
  else:
    loss = nll
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return (loss, nll, correct), residuals + (lse,)


def _backward(label_smoothing, residuals, cotangents):
  logits, targets, lse = residuals
  d_loss, d_nll, _ = cotangents
  vocab = logits.shape[-1]
  probs = jnp.exp(logits.astype(jnp.float32) - lse[..., None])
  is_target = jnp.arange(vocab) == targets[..., None]
  d_target = d_loss * (1.0 - label_smoothing) + d_nll
  d_uniform = d_loss * (label_smoothing / vocab)
  d_logits = ((d_loss + d_nll)[..., None] * probs
              - jnp.where(is_target, d_target[..., None], 0.0)
              - d_uniform[..., None])
  return d_logits.astype(logits.dtype), None


cross_entropy.defvjp(_forward, _backward)
