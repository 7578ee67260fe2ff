"""Greedy search on a toy step function with a known answer."""
import jax.numpy as jnp
import numpy as np

from seq2seq_jax import decoding

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
  tokens = decoding.greedy_search(_chain_step, start, 2, 6, BOS, EOS)
  # BOS(1) -> 3 -> 4 -> 5 -> EOS, then padding.
  np.testing.assert_array_equal(tokens, [[3, 4, 5, EOS, 0, 0]] * 2)


def test_greedy_respects_max_length():
  tokens = decoding.greedy_search(_chain_step, jnp.zeros(1), 1, 2, BOS, EOS)
  np.testing.assert_array_equal(tokens, [[3, 4]])


def test_finished_rows_emit_padding_while_others_continue():
  def step(tokens, carry):
    # Row 0 ends at once; row 1 runs 3 -> 4 -> EOS.
    row = jnp.arange(tokens.shape[0])
    preferred = jnp.where(row == 0, EOS, jnp.where(tokens == BOS, 3,
                                                   jnp.where(tokens == 3, 4, EOS)))
    return jnp.eye(VOCAB)[preferred], carry
  tokens = decoding.greedy_search(step, jnp.zeros(2), 2, 5, BOS, EOS)
  np.testing.assert_array_equal(tokens, [[EOS, 0, 0, 0, 0], [3, 4, EOS, 0, 0]])
