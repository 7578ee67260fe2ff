"""Beam search over `step_fn(tokens, carry) -> (logits, carry)`.

Same interface as `greedy.greedy_search`: the search knows nothing of the
model, the carry is any pytree whose leaves have a leading batch axis.

What beam search returns (tests/test_beam_search.py checks it against
brute-force enumeration):
  * A hypothesis is *complete* when it ends with EOS. |Y| counts the generated
    tokens, EOS included, BOS not. Its score is log p(Y) / lp(|Y|) with the
    GNMT penalty lp(n) = ((5 + n) / 6) ** alpha; alpha = 0 is log p(Y).
  * A hypothesis that reaches max_length tokens without EOS is *truncated*.
    Truncated ones rank below every complete one: they only fill the nbest
    slots that complete hypotheses could not, so there is always an answer.
    They are scored the same way, with |Y| = max_length.
  * Each step expands every alive hypothesis by every token. Of the
    beam_size best expansions, those ending in EOS enter the finished set
    (which keeps the beam_size best scores); the beam_size best expansions
    not ending in EOS stay alive. Finalising EOS only from the top beam_size
    (as fairseq does, not the top 2 * beam_size of tensor2tensor) makes
    beam_size = 1 exactly greedy search when alpha = 0. With alpha > 0 a beam
    of one may keep going after greedy's EOS, for a longer hypothesis the
    penalty prefers.
  * The search is exhaustive, hence exact, once beam_size is at least the
    number of expansions with finite log-probability at every step (not
    merely the vocabulary size).
"""
from typing import Any, NamedTuple, Tuple

import jax
import jax.numpy as jnp

from seq2seq_jax.data.vocabulary import PAD_ID
from seq2seq_jax.decoding import greedy
from seq2seq_jax.decoding.greedy import StepFn

NEG_INF = -jnp.inf


def length_penalty(length, alpha):
  """GNMT length penalty ((5 + length) / 6) ** alpha; length counts EOS."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


class _BeamState(NamedTuple):
  step: jax.Array            # [] tokens generated so far
  alive_seq: jax.Array       # [batch, beam, max_length] int32, PAD-filled
  alive_logprob: jax.Array   # [batch, beam] float32; -inf marks a dead slot
  finished_seq: jax.Array    # [batch, beam, max_length] int32
  finished_score: jax.Array  # [batch, beam] float32, best first; -inf: empty
  last: jax.Array            # [batch * beam] int32, the alive last tokens
  carry: Any                 # leaves [batch * beam, ...]


def _extend(seq, parent, token, step):
  """Copies the parents' sequences and writes `token` at position `step`.

  Args:
    seq: [batch, beam, max_length] sequences.
    parent: [batch, n] beam index of each new hypothesis's parent.
    token: [batch, n] the token each new hypothesis appends.
    step: scalar position to write.

  Returns:
    [batch, n, max_length] sequences.
  """
  seq = jnp.take_along_axis(seq, parent[:, :, None], axis=1)
  return seq.at[:, :, step].set(token)


def beam_search(step_fn: StepFn, carry: Any, batch_size: int, max_length: int,
                bos_id: int, eos_id: int, *, beam_size: int,
                alpha: float = 0.6,
                nbest: int = 1) -> Tuple[jax.Array, jax.Array]:
  """Batched beam search with the GNMT length penalty (see module docstring).

  Rows never interact: a row's result does not depend on the other rows or on
  the batch size. Jittable with beam_size, max_length and nbest static.

  Args:
    step_fn: (tokens [n], carry) -> (logits [n, vocab], carry), where n is
      batch_size * beam_size here; rows are [row 0 beams, row 1 beams, ...].
    carry: the initial carry, leaves [batch, ...]; tiled to [batch * beam].
    batch_size: rows.
    max_length: most tokens generated per hypothesis (EOS included).
    bos_id, eos_id: start and end ids.
    beam_size: alive (and finished) hypotheses kept per row.
    alpha: length penalty exponent, >= 0; 0 ranks by raw log-probability.
    nbest: hypotheses returned per row, 1 <= nbest <= beam_size.

  Returns:
    tokens: [batch, nbest, max_length] int32, best first; BOS excluded, EOS
      kept, PAD after it (a truncated hypothesis has no EOS).
    scores: [batch, nbest] float32 length-penalised scores; -inf marks a slot
      left empty because the row has fewer than nbest hypotheses at all.
  """
  if beam_size < 1 or max_length < 1 or not 1 <= nbest <= beam_size:
    raise ValueError(f"need beam_size >= 1, max_length >= 1 and 1 <= nbest <= "
                     f"beam_size; got {beam_size}, {max_length}, {nbest}")
  if isinstance(alpha, (int, float)) and alpha < 0:
    # The early-stopping bound assumes longer hypotheses are not penalised more.
    raise ValueError(f"alpha must be >= 0, got {alpha}")
  n = batch_size * beam_size
  rows = jnp.arange(batch_size)[:, None] * beam_size  # [batch, 1]

  def cond(s: _BeamState):
    # An alive hypothesis can only lose log-probability, and (alpha >= 0) its
    # penalty grows at most to lp(max_length): this bounds any score it can
    # still reach. Once it cannot beat a row's worst finished score the row is
    # settled, so running on for other rows changes nothing in it.
    bound = (jnp.max(s.alive_logprob, axis=1)
             / length_penalty(max_length, alpha))
    worst = jnp.min(s.finished_score, axis=1)
    return (s.step < max_length) & jnp.any(bound > worst)

  def body(s: _BeamState) -> _BeamState:
    logits, carry = step_fn(s.last, s.carry)
    if logits.ndim != 2 or logits.shape[0] != n:
      raise ValueError(f"step_fn must return logits [{n}, vocab], "
                       f"got {logits.shape}")
    vocab = logits.shape[-1]
    logprob = jax.nn.log_softmax(
        greedy.never_emit(logits.astype(jnp.float32), bos_id), axis=-1)
    candidates = (s.alive_logprob[:, :, None]
                  + logprob.reshape(batch_size, beam_size, vocab)
                  ).reshape(batch_size, beam_size * vocab)

    # One pass over the [batch, beam * vocab] candidates: each alive
    # hypothesis has one EOS expansion, so the 2 * beam_size best hold the
    # beam_size best (which may end in EOS) and at least beam_size that do
    # not. top_k is stable (equal values in index order), so both selections
    # below equal a top_k of the full row (up to which -inf expansion fills
    # a dead slot). The barrier keeps XLA from folding the slices below into
    # the top_k, which makes it a full sort of the row on CPU (20x slower).
    top_logprob, top_index = jax.lax.optimization_barrier(jax.lax.top_k(
        candidates, min(2 * beam_size, beam_size * vocab)))

    # Finished: the EOS expansions among the beam_size best.
    best_logprob = top_logprob[:, :beam_size]
    best_index = top_index[:, :beam_size]
    ends = best_index % vocab == eos_id
    new_score = jnp.where(
        ends, best_logprob / length_penalty(s.step + 1, alpha), NEG_INF)
    new_seq = _extend(s.alive_seq, best_index // vocab,
                      jnp.full_like(best_index, eos_id), s.step)
    # Old entries come first, so on a tie top_k keeps the old one.
    finished_score, keep = jax.lax.top_k(
        jnp.concatenate([s.finished_score, new_score], axis=1), beam_size)
    finished_seq = jnp.take_along_axis(
        jnp.concatenate([s.finished_seq, new_seq], axis=1), keep[:, :, None],
        axis=1)

    # Alive: the beam_size best expansions that do not end in EOS, so finished
    # hypotheses are never extended.
    alive_logprob, pick = jax.lax.top_k(
        jnp.where(top_index % vocab == eos_id, NEG_INF, top_logprob),
        beam_size)
    alive_index = jnp.take_along_axis(top_index, pick, axis=1)
    parent, token = alive_index // vocab, alive_index % vocab
    alive_seq = _extend(s.alive_seq, parent, token, s.step)
    flat_parent = (rows + parent).reshape(n)
    carry = jax.tree_util.tree_map(lambda x: x[flat_parent], carry)
    return _BeamState(s.step + 1, alive_seq, alive_logprob, finished_seq,
                      finished_score, token.reshape(n).astype(jnp.int32), carry)

  # Only beam 0 starts alive, so the first step does not pick one expansion
  # beam_size times.
  alive_logprob = jnp.where(jnp.arange(beam_size) == 0, 0.0,
                            NEG_INF).astype(jnp.float32)
  empty_seq = jnp.full((batch_size, beam_size, max_length), PAD_ID, jnp.int32)
  init = _BeamState(
      step=jnp.int32(0),
      alive_seq=empty_seq,
      alive_logprob=jnp.tile(alive_logprob, (batch_size, 1)),
      finished_seq=empty_seq,
      finished_score=jnp.full((batch_size, beam_size), NEG_INF, jnp.float32),
      last=jnp.full((n,), bos_id, jnp.int32),
      carry=jax.tree_util.tree_map(
          lambda x: jnp.repeat(x, beam_size, axis=0), carry))
  s = jax.lax.while_loop(cond, body, init)

  # Complete hypotheses first, then truncated alive ones, each best first.
  scores = jnp.concatenate(
      [s.finished_score, s.alive_logprob / length_penalty(s.step, alpha)], 1)
  seqs = jnp.concatenate([s.finished_seq, s.alive_seq], axis=1)
  incomplete = jnp.concatenate(
      [~jnp.isfinite(s.finished_score),
       jnp.ones((batch_size, beam_size), bool)], axis=1)
  order = jnp.lexsort((-scores, incomplete), axis=-1)[:, :nbest]
  return (jnp.take_along_axis(seqs, order[:, :, None], axis=1),
          jnp.take_along_axis(scores, order, axis=1))
