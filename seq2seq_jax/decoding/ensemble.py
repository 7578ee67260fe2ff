"""Ensembles of step functions: several models decode as one.

`combine` turns the members' `(step_fn, carry)` pairs into one pair with the
search functions' interface (greedy.py), so greedy search, beam search and
sampling decode an ensemble through the same code as a single model. At each
step every member scores the same previous tokens and the members'
log-probabilities are combined:

  mean_logprob  (1/N) sum_i log p_i(y): a product of experts, renormalised by
                the search (log-linear interpolation; with one member, or N
                equal ones, it is that model exactly).
  mean_prob     log (1/N) sum_i p_i(y): a mixture of the members
                (linear interpolation, what fairseq's ensemble decodes).
"""
import math
from typing import Any, Sequence, Tuple

import jax
import jax.numpy as jnp

from seq2seq_jax.decoding.greedy import StepFn

COMBINATIONS = ("mean_logprob", "mean_prob")


def combine_logprobs(logprobs: jax.Array, combination: str) -> jax.Array:
  """[members, ..., vocab] log-probabilities -> [..., vocab] combined."""
  if combination == "mean_logprob":
    return jnp.mean(logprobs, axis=0)
  if combination == "mean_prob":
    return (jax.nn.logsumexp(logprobs, axis=0)
            - math.log(logprobs.shape[0]))
  raise ValueError(f"unknown ensemble combination {combination!r}; valid: "
                   f"{', '.join(COMBINATIONS)}")


def combine(members: Sequence[Tuple[StepFn, Any]],
            combination: str = "mean_logprob") -> Tuple[StepFn, Tuple]:
  """One (step_fn, carry) from the members' (step_fn, carry) pairs.

  Args:
    members: per model, its step function (tokens [n], carry) -> (logits
      [n, vocab], carry) and its initial carry (leaves [n, ...]). All
      members share one target vocabulary.
    combination: one of COMBINATIONS.

  Returns:
    (step_fn returning combined log-probabilities [n, vocab] in float32, the
    tuple of the members' carries).
  """
  if not members:
    raise ValueError("an ensemble needs at least one member")
  combine_logprobs(jnp.zeros((1, 1)), combination)  # fails early on a bad name
  step_fns = [step_fn for step_fn, _ in members]

  def step_fn(tokens, carries):
    outputs = [fn(tokens, carry) for fn, carry in zip(step_fns, carries)]
    sizes = {logits.shape[-1] for logits, _ in outputs}
    if len(sizes) != 1:
      raise ValueError(f"ensemble members disagree on the vocabulary size: "
                       f"{sorted(sizes)}")
    logprobs = jnp.stack([jax.nn.log_softmax(logits.astype(jnp.float32))
                          for logits, _ in outputs])
    return (combine_logprobs(logprobs, combination),
            tuple(carry for _, carry in outputs))

  return step_fn, tuple(carry for _, carry in members)
