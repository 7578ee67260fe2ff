"""model.tie_embeddings: one matrix is both the decoder's input embedding
and its output layer (and, with 'all', the encoder's embedding too)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax import settings as settings_lib
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.options import ConfigError
from tests.conftest import SOURCE, TARGET

VOCAB = 17
EMBEDDING = 8


def _model(tie, attention="none", source_vocab=VOCAB, hidden=12):
  settings = settings_lib.ModelSettings(
      cell="gru", num_layers=1, embedding_size=EMBEDDING, hidden_size=hidden,
      attention=attention, tie_embeddings=tie)
  return Seq2Seq(settings, source_vocab_size=source_vocab,
                 target_vocab_size=VOCAB)


def _init(model):
  return model.init(jax.random.PRNGKey(0), SOURCE, TARGET)["params"]


def _paths(params):
  return {jax.tree_util.keystr(path): leaf.shape for path, leaf
          in jax.tree_util.tree_flatten_with_path(params)[0]}


def _count(params):
  return sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong_general"])
def test_decoder_tying_leaves_one_target_matrix(attention):
  untied, tied = _init(_model("none", attention)), _init(_model("decoder",
                                                                attention))
  target_matrices = [p for p, shape in _paths(tied).items()
                     if VOCAB in shape and "encoder" not in p]
  assert target_matrices == ["['decoder']['embedding']['embedding']",
                             "['decoder']['output_bias']"]
  readout = 12 + (12 if attention == "bahdanau" else 0)
  # The [readout, V] output kernel is gone; a [readout, E] projection is new.
  assert _count(untied) - _count(tied) == readout * VOCAB - readout * EMBEDDING


def test_no_projection_where_the_readout_is_the_embedding_size():
  params = _init(_model("decoder", hidden=EMBEDDING))
  assert not any("readout_projection" in p for p in _paths(params))


@pytest.mark.parametrize("attention", ["none", "bahdanau"])
def test_tied_logits_come_from_the_embedding_matrix(attention):
  """Zero one row of the embedding and set its bias: that token's logit is
  the bias at every position, whatever the readout."""
  model = _model("decoder", attention)
  params = _init(model)
  decoder = dict(params["decoder"])
  decoder["embedding"] = {"embedding": decoder["embedding"]["embedding"]
                          .at[7].set(0.0)}
  decoder["output_bias"] = decoder["output_bias"].at[7].set(3.25)
  params = {**params, "decoder": decoder}
  logits = model.apply({"params": params}, SOURCE, TARGET)
  np.testing.assert_array_equal(np.asarray(logits[..., 7]), 3.25)
  assert np.ptp(np.asarray(logits[..., 8])) > 0  # the other logits vary


def test_all_tying_shares_one_matrix_with_the_encoder():
  model = _model("all", "bahdanau")
  params = _init(model)
  matrices = [p for p, shape in _paths(params).items()
              if shape == (VOCAB, EMBEDDING)]
  assert matrices == ["['shared_embedding']['embedding']"]
  # Its gradient gathers the encoder's lookups, the decoder's and the output
  # layer's: a source-only token gets a gradient through the encoder alone.
  source_only = 13
  assert source_only not in TARGET and source_only not in SOURCE
  source = np.where(SOURCE == 9, source_only, SOURCE)

  def loss(p, src):
    return model.apply({"params": p}, src, TARGET).sum()

  grad = jax.grad(loss)(params, source)["shared_embedding"]["embedding"]
  grad_without = jax.grad(loss)(params, SOURCE)["shared_embedding"]["embedding"]
  assert not np.allclose(np.asarray(grad[source_only]),
                         np.asarray(grad_without[source_only]))


def test_all_tying_needs_one_vocabulary():
  with pytest.raises(ValueError, match="one vocabulary"):
    _init(_model("all", source_vocab=VOCAB + 1))
  config = settings_lib.default_config()
  config.model.tie_embeddings = "all"
  with pytest.raises(ConfigError, match="data.vocab.shared"):
    settings_lib.validate(settings_lib.from_config(config))
  config.model.tie_embeddings = "decoder_only"
  with pytest.raises(ConfigError, match="tie_embeddings"):
    settings_lib.validate(settings_lib.from_config(config))


def test_tied_train_step_runs_in_bfloat16():
  from seq2seq_jax.training import optimizer as optimizer_lib
  from seq2seq_jax.training import steps
  train = dataclasses.replace(settings_lib.from_config(
      settings_lib.default_config()).train, dtype="bfloat16")
  state = steps.create_train_state(
      _model("decoder", "bahdanau"), optimizer_lib.make_optimizer(train),
      steps.StepOptions.from_settings(train), jax.random.PRNGKey(0),
      SOURCE.shape[1], TARGET.shape[1])
  batch = {"source": jnp.asarray(SOURCE), "target_inputs": jnp.asarray(TARGET),
           "target_outputs": jnp.asarray(np.roll(TARGET, -1, axis=1))}
  state, metrics = steps.jit_train_step(state, batch, jax.random.PRNGKey(1))
  assert np.isfinite(float(metrics["train_loss"]))
  assert float(metrics["skipped"]) == 0
