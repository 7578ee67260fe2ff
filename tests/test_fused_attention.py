"""The fused Bahdanau decoder against the step loop it replaces."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax import fused_attention
from seq2seq_jax.model import Seq2Seq
from seq2seq_jax.settings import ModelSettings

SETTINGS = ModelSettings(cell="gru", num_layers=1, embedding_size=6,
                         hidden_size=10, decoder_hidden_size=9,
                         bidirectional=True, bridge="linear", dropout=0.0,
                         attention="bahdanau", input_feeding=False)


def _batch(seed=0, batch=5, source_length=7, target_length=6):
  rng = np.random.default_rng(seed)
  source = rng.integers(3, 15, size=(batch, source_length)).astype(np.int32)
  target = rng.integers(3, 17, size=(batch, target_length)).astype(np.int32)
  for row, (s_len, t_len) in enumerate([(7, 6), (3, 4), (1, 1), (5, 6), (6, 2)]):
    source[row, s_len:] = 0
    target[row, t_len:] = 0
  target[:, 0] = 1
  return source, target


def _models(**changes):
  fused = Seq2Seq(dataclasses.replace(SETTINGS, recurrence="fused", **changes),
                  source_vocab_size=15, target_vocab_size=17)
  looped = Seq2Seq(dataclasses.replace(SETTINGS, recurrence="scan", **changes),
                   source_vocab_size=15, target_vocab_size=17)
  return fused, looped


def _logits_and_grads(model, variables, source, target):
  weights = jnp.asarray(np.random.default_rng(9).normal(
      size=target.shape + (17,)), jnp.float32)

  def objective(params):
    logits = model.apply({"params": params}, source, target)
    return jnp.sum(logits * weights), logits
  (_, logits), grads = jax.value_and_grad(objective, has_aux=True)(
      variables["params"])
  return logits, grads


@pytest.mark.parametrize("cell,bidirectional", [("gru", True), ("lstm", False),
                                                ("rnn", True)])
def test_values_and_gradients_equal_the_step_loop(cell, bidirectional,
                                                  monkeypatch):
  calls = []
  original = fused_attention.bahdanau_recurrence

  def counted(*args):
    calls.append(1)
    return original(*args)
  monkeypatch.setattr(fused_attention, "bahdanau_recurrence", counted)
  fused, looped = _models(cell=cell, bidirectional=bidirectional,
                          bridge="linear" if bidirectional else "copy",
                          decoder_hidden_size=9 if bidirectional else 0)
  source, target = _batch()
  variables = fused.init(jax.random.PRNGKey(0), source, target)
  assert not calls  # init builds the parameters through the step loop
  got_logits, got = _logits_and_grads(fused, variables, source, target)
  assert calls  # the fused path ran
  want_logits, want = _logits_and_grads(looped, variables, source, target)
  np.testing.assert_allclose(got_logits, want_logits, rtol=1e-5, atol=1e-5)
  for path, g in jax.tree_util.tree_leaves_with_path(got):
    w = _lookup(want, path)
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5,
                               err_msg=jax.tree_util.keystr(path))
  decoder = got["decoder"]
  for name in ("query_projection", "score_vector", "memory_projection"):
    assert float(jnp.abs(jax.tree.leaves(decoder["attend"][name])[0]).max()) > 0


def _lookup(tree, path):
  for key in path:
    tree = tree[key.key]
  return tree


def test_step_decoding_equals_the_fused_sequence():
  fused, _ = _models()
  source, target = _batch(seed=1)
  variables = fused.init(jax.random.PRNGKey(2), source, target)
  logits = fused.apply(variables, source, target)
  carry = fused.apply(variables, source, method=Seq2Seq.encode)
  for t in range(target.shape[1]):
    step_logits, carry = fused.apply(variables, carry, target[:, t],
                                     method=Seq2Seq.decode_step)
    np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)


def test_bfloat16_gradients_are_close_to_float32():
  fused, _ = _models()
  source, target = _batch(seed=3)
  variables = fused.init(jax.random.PRNGKey(4), source, target)
  params16 = jax.tree.map(lambda p: p.astype(jnp.bfloat16), variables["params"])
  _, grads16 = _logits_and_grads(fused, {"params": params16}, source, target)
  _, grads32 = _logits_and_grads(fused, variables, source, target)
  for g16, g32 in zip(jax.tree.leaves(grads16), jax.tree.leaves(grads32)):
    assert g16.dtype == jnp.bfloat16
    scale = float(jnp.abs(g32).max()) + 1e-6
    assert float(jnp.abs(g16.astype(jnp.float32) - g32).max()) < 0.1 * scale
