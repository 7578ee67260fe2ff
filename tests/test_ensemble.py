"""Ensemble decoding: the members' per-step log-probabilities combined, through
the same greedy, beam and sampling code as one model."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax.decoding import beam_search
from seq2seq_jax.decoding import ensemble
from seq2seq_jax.decoding import greedy
from seq2seq_jax.training import steps
from tests.conftest import SOURCE, tiny_model

VOCAB, BOS, EOS = 7, 1, 2


def _table_step(table):
  """A toy model: the logits after token t are table[t]; the carry counts."""
  table = jnp.asarray(table, jnp.float32)
  return lambda tokens, carry: (table[tokens], carry + 1)


def _random_table(seed):
  return np.random.default_rng(seed).normal(size=(VOCAB, VOCAB)) * 2


def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("combination", ensemble.COMBINATIONS)
def test_greedy_follows_the_combined_distribution(combination):
  """Greedy decoding of two members equals a NumPy walk that picks, each
  step, the argmax of the combined log-probabilities."""
  tables = [_random_table(0), _random_table(1)]
  step_fn, carry = ensemble.combine(
      [(_table_step(t), jnp.zeros(3)) for t in tables], combination)
  got = np.asarray(greedy.greedy_search(step_fn, carry, 3, 6, BOS, EOS))
  logprobs = np.stack([_log_softmax(t) for t in tables])
  if combination == "mean_logprob":
    combined = logprobs.mean(0)
  else:
    combined = np.log(np.exp(logprobs).mean(0))
  combined[:, [0, BOS]] = -np.inf  # never PAD or BOS
  want, token = [], BOS
  for _ in range(6):
    token = int(np.argmax(combined[token]))
    want.append(token)
    if token == EOS:
      break
  want += [0] * (6 - len(want))
  np.testing.assert_array_equal(got, [want] * 3)
  # Each member's carry is threaded through its own step function.
  _, carries = step_fn(jnp.asarray([BOS] * 3), carry)
  assert [int(c[0]) for c in carries] == [1, 1]


def test_the_two_combinations_can_disagree():
  """Member 1 gives tokens 3 and 4 0.6 and 0.4; member 2 gives 3, 4 and 5
  1e-6, 0.2 and 0.8. The mixture takes 5 (0.5 * 0.8 = 0.40 against 0.30 for
  3 and for 4); the product of experts takes 4, the one token both members
  find likely (member 1 gives 5 almost nothing)."""
  first = np.full(VOCAB, -1e3)
  first[3], first[4] = np.log(0.6), np.log(0.4)
  second = np.full(VOCAB, -1e3)
  second[3], second[4], second[5] = np.log(1e-6), np.log(0.2), np.log(0.8)
  tables = [np.tile(first, (VOCAB, 1)), np.tile(second, (VOCAB, 1))]
  chosen = {}
  for combination in ensemble.COMBINATIONS:
    step_fn, carry = ensemble.combine(
        [(_table_step(t), jnp.zeros(1)) for t in tables], combination)
    chosen[combination] = int(greedy.greedy_search(step_fn, carry, 1, 1, BOS,
                                                   EOS)[0, 0])
  assert chosen == {"mean_logprob": 4, "mean_prob": 5}


def test_an_unknown_combination_is_refused():
  with pytest.raises(ValueError, match="mean_logprob"):
    ensemble.combine([(_table_step(_random_table(0)), jnp.zeros(1))],
                     "median")


@pytest.fixture(scope="module")
def tiny_states():
  from seq2seq_jax.training import optimizer as optimizer_lib  # pylint: disable=g-import-not-at-top
  from seq2seq_jax import settings as settings_lib  # pylint: disable=g-import-not-at-top
  train = settings_lib.from_config(settings_lib.default_config()).train
  states = []
  for seed, attention in ((0, "bahdanau"), (1, "none")):
    model = tiny_model(cell="gru", layers=1, attention=attention)
    states.append(steps.create_train_state(
        model, optimizer_lib.make_optimizer(train),
        steps.StepOptions.from_settings(train), jax.random.PRNGKey(seed),
        SOURCE.shape[1], 5))
  return states


def test_one_member_or_two_equal_ones_decode_as_the_model(tiny_states):
  state = tiny_states[0]
  source = jnp.asarray(SOURCE)
  single = steps.jit_greedy_predict(state, source, max_length=6)
  tokens, scores = steps.jit_beam_predict(state, source, max_length=6,
                                          beam_size=3, alpha=0.6, nbest=2)
  for combination in ensemble.COMBINATIONS:
    for members in ((state,), (state, state)):
      group = steps.Ensemble(members, combination)
      sources = (source,) * len(members)
      np.testing.assert_array_equal(
          steps.jit_greedy_predict(group, sources, max_length=6), single)
      got_tokens, got_scores = steps.jit_beam_predict(
          group, sources, max_length=6, beam_size=3, alpha=0.6, nbest=2)
      np.testing.assert_array_equal(got_tokens, tokens)
      np.testing.assert_allclose(got_scores, scores, rtol=1e-5, atol=1e-5)


def test_each_member_reads_its_own_source(tiny_states):
  """Members of different architectures, one fed the source reversed: beam
  search over the ensemble scores the mean of the members' log-probabilities
  of each member's own encoding."""
  source = jnp.asarray(SOURCE)
  reversed_source = jnp.asarray(np.stack([
      np.concatenate([row[row > 0][::-1], row[row == 0]]) for row in SOURCE]))
  group = steps.Ensemble(tuple(tiny_states))
  tokens, scores = steps.jit_beam_predict(
      group, (source, reversed_source), max_length=4, beam_size=2, alpha=0.0,
      nbest=1)
  # Rescore the best hypothesis of row 0 by teacher forcing each member.
  hypothesis = [t for t in np.asarray(tokens)[0, 0] if t]
  inputs = jnp.asarray([[BOS] + hypothesis[:-1]])
  member_logprobs = []
  for state, member_source in zip(tiny_states, (source, reversed_source)):
    logits = state.model.apply({"params": state.params}, member_source[:1],
                               inputs)
    member_logprobs.append(np.asarray(jax.nn.log_softmax(logits[0])))
  combined = np.mean(member_logprobs, axis=0)
  combined[:, [0, BOS]] = -np.inf
  combined = _log_softmax(combined)  # the search renormalises each step
  want = sum(combined[i, t] for i, t in enumerate(hypothesis))
  assert float(scores[0, 0]) == pytest.approx(want, rel=1e-4, abs=1e-4)
  assert hypothesis[-1] == EOS or len(hypothesis) == 4
  # Sampling takes an ensemble too, rows independent of the batch.
  samples = steps.jit_sample_predict(
      group, (source, reversed_source), max_length=4,
      rng=jax.random.PRNGKey(0), temperature=jnp.float32(1.0), top_k=0,
      first_row=jnp.int32(0))
  assert samples.shape == (2, 4)


def test_members_with_other_vocabularies_are_refused(smoke_config, tmp_path):
  from seq2seq_jax.inference import trained_run  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.training import loop  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.training import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  first = str(tmp_path / "first")
  smoke_config.train.num_steps = 2
  smoke_config.train.eval_every = 2
  smoke_config.train.checkpoint_every = 2
  loop.train_and_evaluate(smoke_config, first)
  second = str(tmp_path / "second")
  shutil.copytree(first, second)
  ensemble_run = trained_run.load([first, second])
  assert isinstance(ensemble_run, trained_run.LoadedEnsemble)
  assert ensemble_run.step == [2, 2]
  path = os.path.join(second, "vocab_target.json")
  with open(path, encoding="utf-8") as f:
    vocab = json.load(f)
  vocab["alphabet"] = vocab["alphabet"][::-1]
  with open(path, "w", encoding="utf-8") as f:
    json.dump(vocab, f)
  with pytest.raises(workdir_lib.WorkdirError) as error:
    trained_run.load([first, second])
  assert path in str(error.value)
  assert os.path.join(first, "vocab_target.json") in str(error.value)
