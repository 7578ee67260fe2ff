"""Temperature (and top-k) sampling over `step_fn(tokens, carry) -> (logits, carry)`.

Same interface as `greedy.greedy_search`, plus a PRNG key: seeded, so the same
key gives the same samples on every run and batch size.
"""
from typing import Any

import jax
import jax.numpy as jnp

from seq2seq_jax.decoding import greedy
from seq2seq_jax.decoding.greedy import StepFn


def sample(step_fn: StepFn, carry: Any, batch_size: int, max_length: int,
           bos_id: int, eos_id: int, *, rng: jax.Array,
           temperature: float = 1.0, top_k: int = 0,
           first_row=0) -> jax.Array:
  """Ancestral sampling from softmax(logits / temperature), jittable.

  Row r at step i draws with fold_in(fold_in(rng, first_row + r), i), so a
  row's sample depends only on rng and its index, not on the batch size or
  on which batch it is in (pass the batch's first index as `first_row`).

  Args:
    step_fn: (tokens [batch], carry) -> (logits [batch, vocab], carry).
    carry: the initial carry, leaves [batch, ...].
    batch_size: rows.
    max_length: most tokens generated per row (EOS included).
    bos_id, eos_id: start and end ids.
    rng: a PRNG key.
    temperature: > 0; towards 0 this approaches greedy search, 1 samples the
      model's distribution.
    top_k: if > 0, each step samples among the k most likely tokens only
      (Fan et al. 2018); 0 samples the whole vocabulary.
    first_row: the index of the batch's first row among all rows sampled.

  Returns:
    [batch, max_length] int32 tokens; EOS is kept, positions after it are PAD.
  """
  if isinstance(temperature, (int, float)) and temperature <= 0:
    raise ValueError(f"temperature must be > 0, got {temperature}")
  if top_k < 0:
    raise ValueError(f"top_k must be >= 0, got {top_k}")
  row_keys = jax.vmap(jax.random.fold_in, (None, 0))(
      rng, first_row + jnp.arange(batch_size))

  def choose(logits, i):
    keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, i)
    logits = logits.astype(jnp.float32) / temperature
    if top_k:
      kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][..., -1:]
      logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.vmap(jax.random.categorical)(keys, logits)

  return greedy.generate(step_fn, carry, batch_size, max_length, bos_id,
                         eos_id, choose)
