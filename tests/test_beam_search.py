"""Beam search against brute-force enumeration and greedy search; sampling.

The toy model remembers its whole history through an integer code in the
carry, so a beam search that reorders the carry wrongly gets wrong logits:
  code' = (7 * code + previous token) % CODES, logits = table[row, code', step].
Each row of `table` is an independent random model, picked by the carry.
"""
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, PAD_ID
from seq2seq_jax.decoding import beam_search as bs
from seq2seq_jax.decoding import greedy as greedy_lib
from seq2seq_jax.decoding import sampling

CODES = 61


def _table(rows, vocab, max_length, seed):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(rows, CODES, max_length, vocab)).astype(np.float32)


def _model(table):
  """(step_fn, carry for the given table rows) of the toy history model."""
  table = jnp.asarray(table)

  def step_fn(tokens, carry):
    code = (7 * carry["code"] + tokens) % CODES
    step = jnp.minimum(carry["step"], table.shape[2] - 1)
    logits = table[carry["row"], code, step]
    return logits, {"row": carry["row"], "code": code, "step": carry["step"] + 1}

  def carry(rows):
    rows = jnp.asarray(rows, jnp.int32)
    return {"row": rows, "code": jnp.zeros_like(rows),
            "step": jnp.zeros_like(rows)}
  return step_fn, carry


def _logprob(table, row, seq):
  """log p(seq) under the toy model as searches see it (PAD and BOS are
  never emitted, so their mass is excluded), in float64 NumPy."""
  code, prev, total = 0, BOS_ID, 0.0
  for t, token in enumerate(seq):
    code = (7 * code + prev) % CODES
    logits = table[row, code, t].astype(np.float64)
    logits[[PAD_ID, BOS_ID]] = -np.inf
    top = logits.max()
    total += logits[token] - (top + np.log(np.exp(logits - top).sum()))
    prev = token
  return total


def _enumerate(table, row, max_length, alpha, symbols):
  """Every hypothesis, ranked as beam_search ranks them.

  Complete: symbols then EOS, at most max_length tokens in all. Truncated:
  exactly max_length symbols. Complete ones first, each group best first.
  """
  seqs = [body + (EOS_ID,) for n in range(max_length)
          for body in itertools.product(symbols, repeat=n)]
  seqs += list(itertools.product(symbols, repeat=max_length))
  scored = [(seq, _logprob(table, row, seq) / ((5 + len(seq)) / 6) ** alpha)
            for seq in seqs]
  return sorted(scored, key=lambda x: (x[0][-1] != EOS_ID, -x[1]))


def _as_tuple(tokens):
  """[max_length] tokens -> the hypothesis; checks only PAD follows EOS."""
  tokens = [int(t) for t in tokens]
  if EOS_ID not in tokens:
    return tuple(tokens)
  end = tokens.index(EOS_ID) + 1
  assert all(t == PAD_ID for t in tokens[end:]), tokens
  return tuple(tokens[:end])


def _tiny_table(rows, seed):
  """Vocabulary of 5 where the model never emits PAD or BOS: symbols 3, 4."""
  table = _table(rows, 5, 4, seed)
  table[..., [PAD_ID, BOS_ID]] = -np.inf
  return table


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_exhaustive_beam_equals_brute_force(alpha):
  # 2 symbols + EOS, max_length 4: at most 8 * 3 = 24 finite expansions per
  # step, so a beam of 24 keeps every one (a beam of 5, the vocabulary size,
  # would not). 15 complete hypotheses exist, so nbest=20 also checks that
  # the 5 best truncated ones fill the remaining slots, ranked after them.
  table = _tiny_table(3, seed=0)
  step_fn, carry = _model(table)
  tokens, scores = bs.beam_search(step_fn, carry([0, 1, 2]), 3, 4, BOS_ID,
                                  EOS_ID, beam_size=24, alpha=alpha, nbest=20)
  assert tokens.shape == (3, 20, 4) and tokens.dtype == jnp.int32
  for row in range(3):
    expected = _enumerate(table, row, 4, alpha, (3, 4))[:20]
    assert [_as_tuple(t) for t in tokens[row]] == [seq for seq, _ in expected]
    np.testing.assert_allclose(scores[row], [s for _, s in expected],
                               rtol=1e-5)


def test_narrow_beam_returns_correctly_scored_ranked_hypotheses():
  table = _tiny_table(3, seed=1)
  step_fn, carry = _model(table)
  tokens, scores = bs.beam_search(step_fn, carry([0, 1, 2]), 3, 4, BOS_ID,
                                  EOS_ID, beam_size=5, alpha=0.6, nbest=5)
  for row in range(3):
    expected = _enumerate(table, row, 4, 0.6, (3, 4))
    exact = dict(expected)
    seqs = [_as_tuple(t) for t in tokens[row]]
    assert len(set(seqs)) == 5
    np.testing.assert_allclose(scores[row], [exact[seq] for seq in seqs],
                               rtol=1e-5)
    assert all(seq[-1] == EOS_ID for seq in seqs)  # 5 <= 15 complete ones
    assert np.all(np.diff(scores[row]) <= 0)
    # The k-th best found is no better than the k-th best that exists.
    assert np.all(scores[row] <= np.array([s for _, s in expected[:5]]) + 1e-5)


def test_beam_of_one_is_greedy_search():
  table = _table(5, 7, 8, seed=2)
  table[1, ..., EOS_ID] += 5.0   # row 1 ends early
  table[2, ..., EOS_ID] = -1e9   # row 2 never ends: truncated at max_length
  # Row 4: EOS is always a close second, so greedy never ends, and a beam of
  # one must not keep the [EOS] it did not pick.
  others = np.delete(table[4], [PAD_ID, BOS_ID, EOS_ID], axis=-1)
  table[4, ..., EOS_ID] = others.max(axis=-1) - 0.1
  step_fn, carry = _model(table)
  greedy = greedy_lib.greedy_search(step_fn, carry(range(5)), 5, 8, BOS_ID,
                                  EOS_ID)
  tokens, scores = bs.beam_search(step_fn, carry(range(5)), 5, 8, BOS_ID,
                                  EOS_ID, beam_size=1, alpha=0.0)
  np.testing.assert_array_equal(tokens[:, 0], greedy)
  assert EOS_ID in list(greedy[1]) and EOS_ID not in list(greedy[2])
  assert EOS_ID not in list(greedy[4])
  for row in range(5):
    np.testing.assert_allclose(
        scores[row, 0], _logprob(table, row, _as_tuple(greedy[row])),
        rtol=1e-5)


def _decode(step_fn, carry, rows, **kw):
  return bs.beam_search(step_fn, carry(rows), len(rows), 6, BOS_ID, EOS_ID,
                        beam_size=3, alpha=0.6, nbest=3, **kw)


def _late_bloomer(table, row):
  """Makes `row` fill its finished set early with short, poor hypotheses,
  while a confident 3 3 3 3 3 EOS, found last, beats them all."""
  table[row] = 0.0
  table[row, :, :5, 3] = 3.0
  table[row, :, :5, EOS_ID] = 1.0
  table[row, :, 5, EOS_ID] = 10.0


def test_keeps_searching_while_an_alive_hypothesis_can_win():
  table = _table(2, 7, 6, seed=3)
  _late_bloomer(table, 0)
  # Row 1: EOS and 3 tie for steps 0-2, then 3 3 EOS is certain. After step 2
  # the finished set is [EOS], [3 EOS], [3 3 EOS] (worst -2.08 / lp(3) =
  # -1.75) and the best alive, [3 3 3], has log-prob -2.08 < -1.75; only the
  # penalty, -2.08 / lp(6) = -1.45, shows it can still win third place.
  table[1] = -20.0
  table[1, :, :3, [3, EOS_ID]] = 0.0
  table[1, :, 3:5, 3] = 20.0
  table[1, :, 5, EOS_ID] = 20.0
  step_fn, carry = _model(table)
  expected = [[(3, 3, 3, 3, 3, EOS_ID)],
              [(EOS_ID,), (3, EOS_ID), (3, 3, 3, 3, 3, EOS_ID)]]
  for row in range(2):  # one at a time: a neighbour would keep the loop going
    tokens, scores = _decode(step_fn, carry, [row])
    found = [_as_tuple(t) for t in tokens[0]]
    assert found[:len(expected[row])] == expected[row]
    np.testing.assert_allclose(
        scores[0, :len(expected[row])],
        [_logprob(table, row, seq) / ((5 + len(seq)) / 6) ** 0.6
         for seq in expected[row]], rtol=1e-5)


def test_rows_do_not_interact():
  table = _table(6, 7, 6, seed=3)
  table[4, ..., EOS_ID] = -1e9  # a neighbour that keeps the loop running
  _late_bloomer(table, 5)
  step_fn, carry = _model(table)
  together = _decode(step_fn, carry, [0, 1, 2, 3, 5])
  for i, row in enumerate([0, 1, 2, 3, 5]):
    alone = _decode(step_fn, carry, [row])
    np.testing.assert_array_equal(alone[0][0], together[0][i])
    np.testing.assert_allclose(alone[1][0], together[1][i], rtol=1e-6)
  for row, neighbour in ((0, 2), (0, 4), (5, 4)):
    pair = _decode(step_fn, carry, [row, neighbour])
    alone = _decode(step_fn, carry, [row])
    np.testing.assert_array_equal(pair[0][0], alone[0][0])
    np.testing.assert_allclose(pair[1][0], alone[1][0], rtol=1e-6)


def test_finished_hypotheses_are_never_extended():
  table = _table(3, 7, 6, seed=4)
  step_fn, carry = _model(table)

  def tempting_step(tokens, carry):
    # After EOS, token 3 would be certain: a search that extended finished
    # hypotheses would prefer the longer ones alpha > 0 favours.
    logits, carry = step_fn(tokens, carry)
    huge = jnp.where(jnp.arange(7) == 3, 1e4, 0.0)
    return jnp.where((tokens == EOS_ID)[:, None], huge, logits), carry

  tokens, scores = _decode(step_fn, carry, [0, 1, 2])
  tempted = _decode(tempting_step, carry, [0, 1, 2])
  np.testing.assert_array_equal(tempted[0], tokens)
  np.testing.assert_allclose(tempted[1], scores, rtol=1e-6)
  for row_tokens in np.asarray(tokens).reshape(-1, 6):
    _as_tuple(row_tokens)  # asserts only PAD after EOS


def test_stops_once_no_alive_hypothesis_can_win():
  calls = []

  def step_fn(tokens, carry):
    jax.debug.callback(lambda: calls.append(1))
    logits = jnp.where(jnp.arange(5) == EOS_ID, 0.0, -20.0)
    return jnp.broadcast_to(logits, (tokens.shape[0], 5)), carry

  tokens, scores = bs.beam_search(step_fn, jnp.zeros(1), 1, 10, BOS_ID,
                                  EOS_ID, beam_size=2, alpha=0.6)
  # Step 1 finishes [EOS]; step 2 fills the finished set with two [x, EOS]
  # at about -20 / lp(2) = -18.2, and the best alive, about -40, can reach at
  # most -40 / lp(10) = -23.1 < -18.2: nothing can improve, so stop.
  assert len(calls) == 2
  np.testing.assert_array_equal(tokens, [[[EOS_ID] + [PAD_ID] * 9]])
  allowed = jnp.where(jnp.arange(5) == EOS_ID, 0.0, -20.0)
  allowed = allowed.at[jnp.asarray([PAD_ID, BOS_ID])].set(-jnp.inf)
  np.testing.assert_allclose(
      scores, jax.nn.log_softmax(allowed)[None, EOS_ID:EOS_ID + 1], rtol=1e-6)


def test_jit_with_nested_pytree_carry():
  table = _table(2, 7, 6, seed=5)
  step_fn, carry = _model(table)

  def nested_step(tokens, nested):
    (code, step), (row,) = nested["layers"]
    logits, flat = step_fn(tokens, {"row": row, "code": code, "step": step})
    extra = nested["extra"][0] + 1.0  # a rank-3 float leaf rides along
    return logits, {"layers": [(flat["code"], flat["step"]), (flat["row"],)],
                    "extra": (extra,)}

  flat = carry([0, 1])
  nested = {"layers": [(flat["code"], flat["step"]), (flat["row"],)],
            "extra": (jnp.zeros((2, 2, 3)),)}
  search = jax.jit(bs.beam_search, static_argnums=(0, 2, 3, 4, 5),
                   static_argnames=("beam_size", "nbest"))
  jitted = search(nested_step, nested, 2, 6, BOS_ID, EOS_ID, beam_size=3,
                  alpha=0.6, nbest=2)
  eager = bs.beam_search(step_fn, flat, 2, 6, BOS_ID, EOS_ID, beam_size=3,
                         alpha=0.6, nbest=2)
  np.testing.assert_array_equal(jitted[0], eager[0])
  np.testing.assert_allclose(jitted[1], eager[1], rtol=1e-6)


def test_one_top_k_pass_over_the_expansions():
  """Each step reads the [batch, beam * vocab] expansions once, with a top_k
  that XLA:CPU runs as its TopK kernel, not as a full sort of the row."""
  batch, beam, vocab = 2, 4, 1000
  step_fn, carry = _model(_table(batch, vocab, 5, seed=1))
  hlo = jax.jit(bs.beam_search, static_argnums=(0, 2, 3, 4, 5),
                static_argnames=("beam_size", "nbest")).lower(
      step_fn, carry([0, 1]), batch, 5, BOS_ID, EOS_ID, beam_size=beam,
      alpha=0.6, nbest=1).compile().as_text()
  shape_of = dict(re.findall(r"%([\w.-]+) = (\S+) ", hlo))
  row = f"f32[{batch},{beam * vocab}]"
  over_row = {"TopK": 0, "sort": 0}
  for line in hlo.splitlines():
    match = re.search(r"= .*? (custom-call|sort)\(%([\w.-]+)", line)
    if match and shape_of.get(match.group(2), "").startswith(row):
      kind = "TopK" if 'custom_call_target="TopK"' in line else match.group(1)
      over_row[kind] = over_row.get(kind, 0) + 1
  assert over_row == {"TopK": 1, "sort": 0}, over_row


def test_rejects_bad_arguments():
  step_fn, carry = _model(_table(1, 5, 4, seed=0))
  with pytest.raises(ValueError):
    bs.beam_search(step_fn, carry([0]), 1, 4, BOS_ID, EOS_ID, beam_size=2,
                   nbest=3)
  with pytest.raises(ValueError):
    bs.beam_search(step_fn, carry([0]), 1, 4, BOS_ID, EOS_ID, beam_size=2,
                   alpha=-1.0)
  with pytest.raises(ValueError):
    sampling.sample(step_fn, carry([0]), 1, 4, BOS_ID, EOS_ID,
                    rng=jax.random.PRNGKey(0), temperature=0.0)
  with pytest.raises(ValueError):
    sampling.sample(step_fn, carry([0]), 1, 4, BOS_ID, EOS_ID,
                    rng=jax.random.PRNGKey(0), top_k=-1)


def test_sample_at_low_temperature_is_greedy():
  table = _table(4, 7, 8, seed=6)
  table[1, ..., EOS_ID] += 3.0
  step_fn, carry = _model(table)
  greedy = greedy_lib.greedy_search(step_fn, carry(range(4)), 4, 8, BOS_ID,
                                    EOS_ID)
  cold = sampling.sample(step_fn, carry(range(4)), 4, 8, BOS_ID, EOS_ID,
                         rng=jax.random.PRNGKey(0), temperature=1e-4)
  np.testing.assert_array_equal(cold, greedy)


def test_sample_is_reproducible_row_wise_and_pads_after_eos():
  table = _table(4, 7, 8, seed=7)
  table[:, ..., EOS_ID] += 1.0  # most rows end before max_length
  step_fn, carry = _model(table)

  def draw(rows, seed):
    return sampling.sample(step_fn, carry(rows), len(rows), 8, BOS_ID,
                           EOS_ID, rng=jax.random.PRNGKey(seed))

  first = draw(range(4), 0)
  assert first.shape == (4, 8) and first.dtype == jnp.int32
  np.testing.assert_array_equal(draw(range(4), 0), first)
  assert not np.array_equal(draw(range(4), 1), first)
  np.testing.assert_array_equal(draw([0], 0)[0], first[0])
  assert any(EOS_ID in list(row) for row in first)
  for row in first:
    _as_tuple(row)  # asserts only PAD after EOS


def test_top_k_samples_only_the_k_most_likely_tokens():
  """With top_k=1 sampling is greedy at any temperature; with top_k=2 every
  sampled token is one of the two most likely at its step."""
  table = _table(4, 9, 8, seed=8)
  step_fn, carry = _model(table)
  greedy = greedy_lib.greedy_search(step_fn, carry(range(4)), 4, 8, BOS_ID,
                                    EOS_ID)
  top1 = sampling.sample(step_fn, carry(range(4)), 4, 8, BOS_ID, EOS_ID,
                         rng=jax.random.PRNGKey(3), temperature=5.0, top_k=1)
  np.testing.assert_array_equal(top1, greedy)
  top2 = sampling.sample(step_fn, carry(range(4)), 4, 8, BOS_ID, EOS_ID,
                         rng=jax.random.PRNGKey(4), temperature=5.0, top_k=2)
  hot = sampling.sample(step_fn, carry(range(4)), 4, 8, BOS_ID, EOS_ID,
                        rng=jax.random.PRNGKey(4), temperature=5.0)
  assert not np.array_equal(top2, hot)  # the restriction changed something
  for row in range(4):  # replay the row's history to get each step's logits
    state = carry([row])
    last = jnp.asarray([BOS_ID], jnp.int32)
    for i in range(8):
      logits, state = step_fn(last, state)
      allowed = greedy_lib.never_emit(logits, BOS_ID)[0]
      token = int(top2[row, i])
      if token == PAD_ID:
        break
      assert token in set(np.argsort(np.asarray(allowed))[-2:].tolist())
      last = jnp.asarray([token], jnp.int32)
