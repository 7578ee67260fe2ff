"""Greedy search on a toy step function with a known answer."""
import jax.numpy as jnp
import numpy as np

from seq2seq_jax.decoding import greedy

VOCAB, EOS, BOS = 6, 2, 1


def _chain_step(tokens, carry):
  """Deterministic toy model: after token t it prefers t+1, after 5 EOS.

  The carry counts steps, to check it is threaded through.
  """
  preferred = jnp.where(tokens >= 5, EOS, jnp.maximum(tokens + 1, 3))
  logits = jnp.where(jnp.arange(VOCAB)[None] == preferred[:, None], 1.0, 0.0)
  return logits, carry + 1


def test_greedy_follows_the_argmax_chain_and_stops_at_eos():
  start = jnp.asarray([0, 0], jnp.int32)
  tokens = greedy.greedy_search(_chain_step, start, 2, 6, BOS, EOS)
  # BOS(1) -> 3 -> 4 -> 5 -> EOS, then padding.
  np.testing.assert_array_equal(tokens, [[3, 4, 5, EOS, 0, 0]] * 2)


def test_greedy_respects_max_length():
  tokens = greedy.greedy_search(_chain_step, jnp.zeros(1), 1, 2, BOS, EOS)
  np.testing.assert_array_equal(tokens, [[3, 4]])


def test_finished_rows_emit_padding_while_others_continue():
  def step(tokens, carry):
    # Row 0 ends at once; row 1 runs 3 -> 4 -> EOS.
    row = jnp.arange(tokens.shape[0])
    preferred = jnp.where(row == 0, EOS, jnp.where(tokens == BOS, 3,
                                                   jnp.where(tokens == 3, 4, EOS)))
    return jnp.eye(VOCAB)[preferred], carry
  tokens = greedy.greedy_search(step, jnp.zeros(2), 2, 5, BOS, EOS)
  np.testing.assert_array_equal(tokens, [[EOS, 0, 0, 0, 0], [3, 4, EOS, 0, 0]])


def _content(row, eos):
  """The tokens of a decoded row before its first EOS."""
  row = [int(t) for t in row]
  return row[:row.index(eos)] if eos in row else row


def test_no_search_emits_pad_or_bos_even_when_the_model_prefers_them():
  import jax  # pylint: disable=g-import-not-at-top
  from configs import smoke  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.decoding import sampling  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.training import optimizer as optimizer_lib  # pylint: disable=g-import-not-at-top
  from seq2seq_jax import settings as settings_lib  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.training import steps  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, PAD_ID  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.models.seq2seq import Seq2Seq  # pylint: disable=g-import-not-at-top
  s = settings_lib.from_config(smoke.get_config())
  model = Seq2Seq(s.model, 12, 12)
  state = steps.create_train_state(
      model, optimizer_lib.make_optimizer(s.train), steps.StepOptions(),
      jax.random.PRNGKey(0), 5, 6)
  params = jax.tree_util.tree_map(lambda x: x, state.params)
  bias = params["decoder"]["output_projection"]["bias"]
  # Random weights, and PAD and BOS made the most likely outputs by far.
  params["decoder"]["output_projection"]["bias"] = (
      bias.at[PAD_ID].set(50.0).at[BOS_ID].set(49.0))
  state = state.replace(params=params)
  source = jnp.asarray(np.random.default_rng(0).integers(3, 12, (4, 5)),
                       jnp.int32)
  greedy = steps.greedy_predict(state, source, max_length=6)
  beams, _ = steps.beam_predict(state, source, max_length=6, beam_size=3,
                                alpha=0.6, nbest=3)
  step_fn, carry = steps._decoder(state, source)  # pylint: disable=protected-access
  sampled = sampling.sample(step_fn, carry, 4, 6, BOS_ID, EOS_ID,
                            rng=jax.random.PRNGKey(1))
  rows = list(greedy) + [r for b in beams for r in b] + list(sampled)
  assert len(rows) == 4 + 12 + 4
  for row in rows:
    content = _content(row, EOS_ID)
    assert content, row  # something was emitted instead of PAD
    assert PAD_ID not in content and BOS_ID not in content, row
