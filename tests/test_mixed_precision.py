"""config.train.dtype=bfloat16: bf16 compute, float32 parameters and optimizer
state, a loss close to float32's, and every decoder variant still runs."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from seq2seq_jax import settings
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import steps

VARIANTS = [
    dict(cell="lstm", attention="none", recurrence="fused"),
    dict(cell="gru", attention="bahdanau", bidirectional=True, bridge="linear"),
    dict(cell="lstm", attention="luong_general", input_feeding=True,
         recurrence="scan"),
    dict(cell="gru", attention="luong_dot", teacher_forcing=0.5),
    dict(cell="rnn", attention="luong_concat", input_feeding=True,
         num_layers=2, remat=True),
]


def _state(model_overrides, dtype):
  config = default.get_config()
  config.model.hidden_size = 32
  config.model.embedding_size = 16
  for key, value in model_overrides.items():
    section = config.train if key == "teacher_forcing" else config.model
    section[key] = value
  config.train.dtype = dtype
  s = settings.from_config(config)
  model = Seq2Seq(s.model, 20, 20)
  return steps.create_train_state(
      model, optimizer_lib.make_optimizer(s.train),
      steps.StepOptions.from_settings(s.train), jax.random.PRNGKey(0), 6, 7)


def _batch():
  rng = np.random.default_rng(0)
  source = rng.integers(4, 20, (4, 6))
  source[1, 3:] = 0  # padding
  target = rng.integers(4, 20, (4, 7))
  return {"source": jnp.asarray(source, jnp.int32),
          "target_inputs": jnp.asarray(target, jnp.int32),
          "target_outputs": jnp.asarray(np.roll(target, -1, 1), jnp.int32)}


@pytest.mark.parametrize("overrides", VARIANTS,
                         ids=[f"{v['cell']}_{v['attention']}" for v in VARIANTS])
def test_bfloat16_trains_with_float32_state(overrides):
  batch, rng = _batch(), jax.random.PRNGKey(1)
  losses = {}
  for dtype in ("float32", "bfloat16"):
    state = _state(overrides, dtype)
    if dtype == "bfloat16":  # the matmuls really run in bf16
      jaxpr = str(jax.make_jaxpr(steps.train_step)(state, batch, rng))
      assert re.search(r"bf16\[[0-9,]*\] = dot_general", jaxpr)
    new_state, metrics = steps.jit_train_step(state, batch, rng)
    losses[dtype] = float(metrics["train_loss"])
    floating = [x for x in jax.tree.leaves((new_state.params,
                                            new_state.opt_state))
                if jnp.issubdtype(x.dtype, jnp.floating)]
    assert {x.dtype for x in floating} == {jnp.dtype(jnp.float32)}
    assert int(new_state.nonfinite_total) == 0
    greedy = steps.jit_greedy_predict(new_state, batch["source"], max_length=5)
    tokens, scores = steps.jit_beam_predict(
        new_state, batch["source"], max_length=5, beam_size=3, alpha=0.6,
        nbest=1)
    assert greedy.shape == (4, 5) and tokens.shape == (4, 1, 5)
    assert np.all(np.isfinite(np.asarray(scores)))
  assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.03)


ATTENTIONS = ["none", "bahdanau", "luong_dot", "luong_general", "luong_concat"]
BRIDGES = ["copy", "linear", "zero"]
# Every bridge with every attention; teacher forcing alternates, so each
# attention and each bridge also runs both under full forcing (the batched
# paths) and below it (the step-by-step loop): every pair of the three
# settings is covered in 15 compiles instead of 30.
PAIRWISE = [(bridge, attention, 1.0 if (i + j) % 2 == 0 else 0.5)
            for i, attention in enumerate(ATTENTIONS)
            for j, bridge in enumerate(BRIDGES)]


@pytest.mark.parametrize("bridge,attention,teacher_forcing", PAIRWISE)
def test_one_bfloat16_step_for_every_bridge_attention_and_forcing(
    bridge, attention, teacher_forcing):
  overrides = dict(cell="lstm", bridge=bridge, attention=attention,
                   teacher_forcing=teacher_forcing,
                   input_feeding=attention.startswith("luong"))
  state = _state(overrides, "bfloat16")
  new_state, metrics = steps.jit_train_step(state, _batch(),
                                            jax.random.PRNGKey(1))
  assert np.isfinite(float(metrics["train_loss"]))
  assert int(new_state.nonfinite_total) == 0


def test_unknown_dtype_is_a_config_error():
  config = default.get_config()
  config.train.dtype = "float16"
  with pytest.raises(settings.ConfigError, match="train.dtype.*bfloat16"):
    settings.from_config(config)
