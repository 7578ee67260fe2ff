"""The output layer on real positions only (training/compact_output.py):
the same loss, metrics and gradients as projecting every position."""
import dataclasses

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import compact_output
from seq2seq_jax.training import losses
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import steps

VOCAB = 37
RNGS = {"dropout": jax.random.PRNGKey(1), "sampling": jax.random.PRNGKey(2)}


def _state(label_smoothing=0.0, **model):
  s = settings_lib.from_config(smoke.get_config())
  settings = dataclasses.replace(s.model, **model)
  return steps.create_train_state(
      Seq2Seq(settings, VOCAB, VOCAB), optimizer_lib.make_optimizer(s.train),
      steps.StepOptions(label_smoothing=label_smoothing),
      jax.random.PRNGKey(0), 7, 6)


def _batch(lengths=(6, 3, 1, 0)):
  """Targets of the given lengths (0: a row with no token) in [4, 6]."""
  rng = np.random.default_rng(0)
  outputs = rng.integers(3, VOCAB, (len(lengths), 6))
  outputs[np.arange(6)[None] >= np.asarray(lengths)[:, None]] = 0
  inputs = np.concatenate([np.ones((len(lengths), 1), int), outputs[:, :-1]], 1)
  inputs[outputs == 0] = 0
  return {"source": jnp.asarray(rng.integers(3, VOCAB, (len(lengths), 7))),
          "target_inputs": jnp.asarray(inputs),
          "target_outputs": jnp.asarray(outputs)}


def _all_positions(state, params, batch, label_smoothing):
  logits = steps._apply(state, params, batch["source"],  # pylint: disable=protected-access
                        batch["target_inputs"], train=True, rngs=RNGS)
  return losses.sequence_sums(logits, batch["target_outputs"], label_smoothing)


@pytest.mark.parametrize("model,label_smoothing", [
    ({}, 0.0),
    ({"cell": "gru", "attention": "bahdanau", "bidirectional": True,
      "bridge": "linear"}, 0.0),
    ({"tie_embeddings": "decoder", "attention": "luong_general",
      "input_feeding": True}, 0.1),
    ({"num_layers": 2, "dropout": 0.3}, 0.0),
], ids=["lstm", "bahdanau", "tied_luong_smoothed", "dropout"])
def test_same_loss_metrics_and_gradients_as_all_positions(
    monkeypatch, model, label_smoothing):
  monkeypatch.setattr(compact_output, "CHUNK_ROWS", 4)  # several chunks
  state, batch = _state(label_smoothing, **model), _batch()
  expected = jax.value_and_grad(
      lambda p: _all_positions(state, p, batch, label_smoothing),
      has_aux=True)(state.params)
  got = jax.value_and_grad(
      lambda p: steps._compact_loss(state, p, batch, RNGS),  # pylint: disable=protected-access
      has_aux=True)(state.params)
  (loss, sums), grads = expected
  (got_loss, got_sums), got_grads = got
  np.testing.assert_allclose(got_loss, loss, rtol=1e-6)
  assert got_sums.keys() == sums.keys()
  for key in sums:
    np.testing.assert_allclose(got_sums[key], sums[key], rtol=1e-6)
  assert float(sums["token_count"]) == 10 and float(sums["sequence_count"]) == 3
  for a, b in zip(jax.tree.leaves(got_grads), jax.tree.leaves(grads)):
    np.testing.assert_allclose(a, b, atol=1e-7, rtol=1e-5)


def test_eval_step_sums_match_all_positions(monkeypatch):
  state, batch = _state(), _batch()
  monkeypatch.setattr(compact_output, "applies", lambda teacher_forcing: False)
  expected = steps.eval_step(state, batch)
  monkeypatch.setattr(compact_output, "applies", lambda teacher_forcing: True)
  got = steps.eval_step(state, batch)
  for key in expected:
    np.testing.assert_allclose(got[key], expected[key], rtol=1e-6)


def test_a_batch_without_tokens_has_zero_loss_and_gradient():
  state, batch = _state(), _batch(lengths=(0, 0, 0, 0))
  (loss, sums), grads = jax.value_and_grad(
      lambda p: steps._compact_loss(state, p, batch, RNGS),  # pylint: disable=protected-access
      has_aux=True)(state.params)
  assert float(loss) == 0.0
  assert all(float(v) == 0.0 for v in sums.values())
  assert all(not np.any(g) for g in jax.tree.leaves(grads))


def _logit_shapes(state, batch):
  # A new function each time: a traced train_step would be reused.
  text = str(jax.make_jaxpr(lambda *a: steps.train_step(*a))(
      state, batch, jax.random.PRNGKey(3)))
  return {shape for shape in (f"f32[{n},{VOCAB}]" for n in range(2, 25))
          if shape in text}  # [1, vocab]: the broadcast bias


def test_train_step_projects_chunks_of_real_positions(monkeypatch):
  monkeypatch.setattr(compact_output, "CHUNK_ROWS", 8)
  state, batch = _state(), _batch()
  monkeypatch.setattr(compact_output, "applies", lambda teacher_forcing: True)
  assert _logit_shapes(state, batch) == {"f32[8,37]"}
  monkeypatch.setattr(compact_output, "applies", lambda teacher_forcing: False)
  assert "f32[24,37]" in _logit_shapes(state, batch)  # 4 x 6 positions


def test_only_the_output_layer_parameters_are_its_inputs():
  state, batch = _state(), _batch()
  project = lambda p, x: state.model.apply({"params": p}, x,
                                           method=Seq2Seq.output_layer)
  readouts = jnp.zeros((1, state.params["decoder"]["output_projection"]
                        ["kernel"].shape[0]))
  used = compact_output.used_params(project, state.params, readouts)
  assert set(flax.traverse_util.flatten_dict(used)) == {
      ("decoder", "output_projection", "kernel"),
      ("decoder", "output_projection", "bias")}
  tied = _state(tie_embeddings="decoder")
  used = compact_output.used_params(
      lambda p, x: tied.model.apply({"params": p}, x,
                                    method=Seq2Seq.output_layer),
      tied.params, readouts)
  assert ("decoder", "embedding", "embedding") in set(
      flax.traverse_util.flatten_dict(used))
  assert not any(path[0] == "encoder"
                 for path in flax.traverse_util.flatten_dict(used))
  del batch
