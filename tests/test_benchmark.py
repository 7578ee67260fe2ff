"""benchmarks/benchmark.py and benchmarks/flops.py: schema, batches, FLOP counts.

Speed is never asserted: the machine running the tests may be busy.
"""
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import benchmark
from benchmarks import cases as cases_lib
from benchmarks import flops
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.settings import ModelSettings
from tests.conftest import ROOT


def _model(**overrides) -> ModelSettings:
  fields = dict(cell="lstm", num_layers=1, embedding_size=2, hidden_size=3,
                decoder_hidden_size=0, bidirectional=False, bridge="copy",
                dropout=0.0, attention="none", input_feeding=False)
  return ModelSettings(**{**fields, **overrides})


def test_flops_by_hand_lstm():
  # E=2, H=3, LSTM (4 gates): B=1, S=2, T=1, V=5.
  #   encoder: input 2*(1*2)*12*2 = 96, recurrent 2*(1*2)*12*3 = 144
  #   decoder: input 2*1*12*2 = 48,     recurrent 2*1*12*3 = 72
  #   output projection: 2*1*5*3 = 30
  forward = flops.forward_flops(_model(), 1, 2, 1, 5)
  assert forward == {"encoder": 240, "bridge": 0, "decoder_rnn": 120,
                     "attention": 0, "output_projection": 30}
  assert flops.train_step_flops(_model(), 1, 2, 1, 5) == 3 * 390


def test_flops_by_hand_bahdanau():
  # As above, plus attention over memory M=3 with U=3 units:
  #   decoder input is [embedding; context] = 5: 2*1*12*5 = 120, + 72
  #   keys 2*(1*2)*3*3 = 36; per step: query 2*1*3*3 = 18,
  #   scores 2*(1*2)*1*3 = 12, context 2*1*3*2 = 12
  #   readout [h; context] = 6: 2*1*5*6 = 60
  forward = flops.forward_flops(_model(attention="bahdanau"), 1, 2, 1, 5)
  assert forward == {"encoder": 240, "bridge": 0, "decoder_rnn": 192,
                     "attention": 78, "output_projection": 60}
  assert flops.train_step_flops(_model(attention="bahdanau"), 1, 2, 1, 5) == (
      3 * 570)


@pytest.mark.parametrize("overrides", [
    {},
    {"cell": "gru", "num_layers": 2},
    {"cell": "rnn", "bidirectional": True, "bridge": "linear",
     "decoder_hidden_size": 5},
])
def test_flops_match_the_model_parameters(overrides):
  # Without attention every matmul multiplies activations by one kernel: a
  # kernel of k*n entries costs 2*rows*k*n, rows being B*S in the encoder, B*T
  # in the decoder and B in the bridge. Shapes come from the real model.
  model = _model(embedding_size=4, hidden_size=6, **overrides)
  b, s, t, vocab = 2, 3, 5, 11
  shapes = jax.eval_shape(Seq2Seq(model, 13, vocab).init, jax.random.PRNGKey(0),
                          jnp.ones((1, s), jnp.int32), jnp.ones((1, t), jnp.int32))
  rows = {"encoder": b * s, "decoder": b * t, "bridge": b}
  expected = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(shapes["params"]):
    names = [key.key for key in path]
    if names[-1] in ("kernel", "recurrent_kernel"):
      expected += 2 * rows[names[0]] * int(np.prod(leaf.shape))
  assert flops.train_step_flops(model, b, s, t, vocab) == 3 * expected


def test_padded_batch_layout():
  case = cases_lib.Case(source_vocab_size=50, target_vocab_size=40,
                        batch_size=16, source_lengths=(2, 9),
                        target_lengths=(3, 11), pad_multiple=4)
  batch = cases_lib.make_batch(case)
  source, inputs, outputs = (batch["source"], batch["target_inputs"],
                             batch["target_outputs"])
  assert source.shape[1] % 4 == 0 and outputs.shape[1] % 4 == 0
  source_lengths = (source != 0).sum(1)
  target_lengths = (outputs != 0).sum(1)
  assert source_lengths.min() >= 2 and source_lengths.max() <= 9
  assert target_lengths.min() >= 3 and target_lengths.max() <= 11
  assert source.shape[1] == -(-source_lengths.max() // 4) * 4
  for row in range(16):
    n = target_lengths[row]
    np.testing.assert_array_equal(outputs[row, n:], 0)
    assert outputs[row, n - 1] == EOS_ID and np.all(outputs[row, :n - 1] >= 4)
    np.testing.assert_array_equal(inputs[row, :n],
                                  [BOS_ID] + list(outputs[row, :n - 1]))
    np.testing.assert_array_equal(inputs[row, n:], 0)
  assert np.all(source[source != 0] >= 4) and np.all(source < 50)
  np.testing.assert_array_equal(cases_lib.make_batch(case)["source"], source)


def test_unknown_case_lists_the_valid_ones(capsys):
  with pytest.raises(SystemExit):
    benchmark.main(["--cases=lstm_h512,banana"])
  assert "unknown case 'banana'; valid: config, gru_h512" in (
      capsys.readouterr().err)


@pytest.mark.slow
def test_tiny_run_writes_the_json_schema(tmp_path):
  out = tmp_path / "bench.json"
  # Compile speed only: the figures are checked for shape, never for speed.
  env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1")
  result = subprocess.run(
      [sys.executable, "-m", "benchmarks.benchmark", "--tiny",
       "--cases=lstm_h512,lstm_h512_bahdanau", f"--json={out}"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
      check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(out, encoding="utf-8") as f:
    data = json.load(f)
  assert set(data) == {"matmul_gflops", "cases", "devices", "jax_version"}
  assert isinstance(data["matmul_gflops"], float)
  assert math.isfinite(data["matmul_gflops"]) and data["matmul_gflops"] > 0
  assert data["devices"] and all(isinstance(d, str) for d in data["devices"])
  assert data["jax_version"] == jax.__version__
  assert [c["name"] for c in data["cases"]] == ["lstm_h512",
                                                "lstm_h512_bahdanau"]
  for case in data["cases"]:
    for key in benchmark.REQUIRED_KEYS:
      assert isinstance(case[key], float), (case["name"], key)
      assert math.isfinite(case[key]) and case[key] > 0, (case["name"], key)
    assert case["decode_full_length"]
    assert case["target_tokens"] == 8 * 6
  for name in ("lstm_h512", "lstm_h512_bahdanau"):
    assert name in result.stdout


@pytest.mark.parametrize("case", ["lstm_h512", "bigru256_bahdanau"])
def test_step_profile_reports_every_part(case, capsys, monkeypatch):
  from benchmarks import step_profile  # pylint: disable=import-outside-toplevel
  from seq2seq_jax import host_memory  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv(host_memory.ENV_VAR, "default")
  step_profile.main([f"--case={case}", "--tiny", "--repeats=1"])
  lines = {line.split()[0]: line for line in
           capsys.readouterr().out.splitlines()[1:]}
  parts = ["full_step", "grad_only", "optimizer_only", "recurrent_layer",
           "output_layer", "rest"]
  attention = case.endswith("bahdanau")
  assert sorted(lines) == sorted(parts + ["attention_loop"] * attention)
  for part in ("recurrent_layer", "output_layer") + ("attention_loop",) * attention:
    against = float(lines[part].split("vs kernels")[1].strip().rstrip("%"))
    assert math.isfinite(against) and against > 0, lines[part]
  assert ("- attention_loop" in lines["rest"]) == attention
