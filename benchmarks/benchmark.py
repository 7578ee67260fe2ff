"""Speed benchmark: train-step throughput, compile time, decoding, memory.

Question: how fast is one jitted train step (forward + backward + Adam) of
seq2seq_jax, how close does it get to this machine's matmul peak, how long
does it take to compile, and how fast are greedy and beam-5 decoding?

  python -m benchmarks.benchmark                       # all standard cases
  python -m benchmarks.benchmark --cases=lstm_h512,gru_h512 --repeats=7 \
      --json=/tmp/bench.json
  python -m benchmarks.benchmark --config=configs/multi30k.py  # case "config"
  python -m benchmarks.benchmark --tiny                # seconds; for tests

Cases (float32, Adam, one encoder and one decoder layer, vocabulary 8,000 on
both sides, batch 64, source and target length 20, no padding, dropout 0):
  lstm_h512            embedding 256, LSTM 512
  gru_h512             the same with a GRU
  lstm_h1024           LSTM 1024
  lstm_h512_bahdanau   lstm_h512 with Bahdanau attention
  multi30k_padded      configs/multi30k.py's `model` section as it is (2-layer
                       LSTM 256, dropout 0.3, no attention), vocabularies
                       8,060 / 6,204, batch 128, real source lengths uniform in
                       8..30 and target lengths (EOS included) in 9..32, drawn
                       with numpy seed 0, each side padded to the next
                       multiple of 8 above its longest row (as
                       data.pad_multiple=8 pads).
  *_scan, long_*       extra cases, only with --cases: see EXTRA_CASES in cases.py
                       (the autodiff recurrence; length-200 remat trade-off)
  config               only with --config=FILE: FILE's `model` section (every
                       key, dropout included) at the standard shape above.
                       Without --cases, --config runs this case alone.
The optimizer is configs/default.py's (Adam, global-norm clipping 1.0).
--tiny divides hidden and embedding sizes by 16 (512 -> 32), and uses
vocabulary 100, batch 8, length 6 (padded: 3..6, multiple 2), one repeat
and a 2048 matmul.

Method. Each case runs in its own child process (`--_case=NAME`), one after
the other, so compile caches and peak memory are per case. A child builds the
model, AOT-compiles the step (`compile_s` = trace + lower + XLA compile, i.e.
`jit_train_step.lower(...).compile()`), runs one warm-up step, then times
`--repeats` steps, each ended by `jax.block_until_ready`; every figure is the
median over repeats. `train_tokens_per_s` counts real (non-padding)
`target_outputs` tokens. Decoding is timed the same way on the batch's source,
max length = the target width, beam 5 with alpha 0.6; the output layer's EOS
bias is set to -1e4 first, so an untrained model never stops early and every
run does the full max-length work (`decode_full_length` checks that no EOS
came out). `peak_memory_mb` is the device's `peak_bytes_in_use` where
`memory_stats()` exists (GPU, TPU), else the child's peak RSS
(`peak_memory_source` says which). `matmul_gflops` is the median of repeats of
a jitted float32 `jnp.dot` of two 4096 x 4096 matrices, measured in a child
before the cases, with the backend's default matmul precision (the same one
the model's matmuls get).

FLOPs. `train_fraction_of_peak` = analytic FLOPs per step / median step time /
matmul peak; the analytic count is documented in benchmarks/flops.py (2mnk
per matmul over the padded shapes, backward = 2x forward, elementwise work
ignored). XLA's own `cost_analysis()["flops"]` is reported as
`xla_flops_per_step` where available: it differs, mostly because XLA counts
the body of a `while` loop (each `scan` over time) once, not once per step.

Output: a table on stdout and, with --json=OUT,
  {"matmul_gflops": float, "cases": [{"name", "train_tokens_per_s",
   "train_fraction_of_peak", "compile_s", "greedy_sentences_per_s",
   "beam5_sentences_per_s", "peak_memory_mb", ...extra keys}],
   "devices": [str], "jax_version": str}
Seeds: parameters PRNGKey(0), batch numpy seed 0 (so reruns time the same
work); timings themselves are not deterministic.
"""
import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import cases as cases_lib
from benchmarks import flops
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data.vocabulary import EOS_ID
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import steps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAM_SIZE, BEAM_ALPHA = 5, 0.6
NO_EOS_BIAS = -1e4
REQUIRED_KEYS = ("train_tokens_per_s", "train_fraction_of_peak", "compile_s",
                 "greedy_sentences_per_s", "beam5_sentences_per_s",
                 "peak_memory_mb")

def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _timed(fn: Callable[[], Any]) -> Tuple[Any, float]:
  start = time.perf_counter()
  result = fn()
  return result, time.perf_counter() - start


def _xla_flops(compiled) -> Optional[float]:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per program
    cost = cost[0] if cost else None
  return float(cost["flops"]) if cost and "flops" in cost else None


def _without_eos(state: steps.TrainState) -> steps.TrainState:
  """Output bias of EOS -> -1e4, so decoding always runs to max length."""
  params = dict(state.params)
  decoder = dict(params["decoder"])
  projection = dict(decoder["output_projection"])
  projection["bias"] = projection["bias"].at[EOS_ID].set(NO_EOS_BIAS)
  decoder["output_projection"] = projection
  params["decoder"] = decoder
  return state.replace(params=params)


def _peak_memory() -> Dict[str, Any]:
  max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  max_rss_mb = max_rss / 2**20 if sys.platform == "darwin" else max_rss / 2**10
  stats = jax.devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    return {"peak_memory_mb": stats["peak_bytes_in_use"] / 2**20,
            "peak_memory_source": "device peak_bytes_in_use",
            "max_rss_mb": max_rss_mb}
  return {"peak_memory_mb": max_rss_mb, "peak_memory_source": "process max RSS",
          "max_rss_mb": max_rss_mb}


def run_case(case: cases_lib.Case, repeats: int) -> Dict[str, Any]:
  """Measures one case in this process (see the module docstring)."""
  s = cases_lib.settings_for(case)
  batch = {k: jnp.asarray(v) for k, v in cases_lib.make_batch(case).items()}
  (b, source_length), target_length = (batch["source"].shape,
                                        batch["target_outputs"].shape[1])
  model = Seq2Seq(s.model, case.source_vocab_size, case.target_vocab_size)
  options = steps.StepOptions.from_settings(s.train)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(0))
  state = steps.create_train_state(model, optimizer_lib.make_optimizer(s.train),
                                   options, init_rng, source_length,
                                   target_length)
  lowered, lower_s = _timed(
      lambda: steps.jit_train_step.lower(state, batch, train_rng))
  train_step, xla_compile_s = _timed(lowered.compile)

  def step():
    nonlocal state
    state, metrics = train_step(state, batch, train_rng)
    return state, metrics

  _, first_step_s = _timed(lambda: jax.block_until_ready(step()))
  step_s = _median_seconds(step, repeats)

  state = _without_eos(state)
  source = batch["source"]
  greedy = steps.jit_greedy_predict.lower(
      state, source, max_length=target_length).compile()
  beam = steps.jit_beam_predict.lower(
      state, source, alpha=BEAM_ALPHA, max_length=target_length,
      beam_size=BEAM_SIZE, nbest=1).compile()
  greedy_tokens = jax.block_until_ready(greedy(state, source))
  beam_tokens, _ = jax.block_until_ready(beam(state, source, alpha=BEAM_ALPHA))
  greedy_s = _median_seconds(lambda: greedy(state, source), repeats)
  beam_s = _median_seconds(lambda: beam(state, source, alpha=BEAM_ALPHA),
                           repeats)

  target_tokens = int(np.sum(np.asarray(batch["target_outputs"]) != 0))
  return {
      "train_tokens_per_s": target_tokens / step_s,
      "compile_s": lower_s + xla_compile_s,
      "greedy_sentences_per_s": b / greedy_s,
      "beam5_sentences_per_s": b / beam_s,
      **_peak_memory(),
      "step_s": step_s, "lower_s": lower_s, "xla_compile_s": xla_compile_s,
      "first_step_s": first_step_s, "greedy_s": greedy_s, "beam5_s": beam_s,
      "flops_per_step": flops.train_step_flops(
          s.model, b, source_length, target_length, case.target_vocab_size,
          flops.output_rows_of(batch["target_outputs"])),
      "xla_flops_per_step": _xla_flops(train_step),
      "batch_size": b, "source_length": source_length,
      "target_length": target_length, "target_tokens": target_tokens,
      "padded_target_tokens": b * target_length,
      "decode_full_length": bool(np.all(np.asarray(greedy_tokens) != EOS_ID)
                                 and np.all(np.asarray(beam_tokens) != EOS_ID)),
      "repeats": repeats, "model": dataclasses.asdict(s.model),
      "vocab_sizes": [case.source_vocab_size, case.target_vocab_size],
  }


def run_matmul(size: int, repeats: int) -> Dict[str, Any]:
  """float32 [size, size] @ [size, size] GFLOP/s, plus what machine this is."""
  x, y = jax.random.normal(jax.random.PRNGKey(0), (2, size, size), jnp.float32)
  dot = jax.jit(jnp.dot)
  jax.block_until_ready(dot(x, y))
  seconds = _median_seconds(lambda: dot(x, y), repeats)
  return {"matmul_gflops": flops.matmul(size, size, size) / seconds / 1e9,
          "devices": [f"{d.platform}:{d.id} {d.device_kind}"
                      for d in jax.devices()],
          "jax_version": jax.__version__}


def _child(name: str, args) -> Dict[str, Any]:
  """Runs `--_case=name` in a fresh process and returns its JSON."""
  with tempfile.TemporaryDirectory() as directory:
    out = os.path.join(directory, "case.json")
    command = [sys.executable, "-m", "benchmarks.benchmark", f"--_case={name}",
               f"--_out={out}", f"--repeats={args.repeats}"]
    command += ["--tiny"] if args.tiny else []
    command += [f"--config={args.config}"] if args.config else []
    subprocess.run(command, cwd=ROOT, check=True)
    with open(out, encoding="utf-8") as f:
      return json.load(f)


def format_table(cases: List[Dict[str, Any]]) -> str:
  header = (f"{'case':<20} {'tokens/s':>10} {'% peak':>7} {'compile s':>10} "
            f"{'greedy sent/s':>14} {'beam5 sent/s':>13} {'peak MB':>8}")
  lines = [header, "-" * len(header)]
  for c in cases:
    lines.append(
        f"{c['name']:<20} {c['train_tokens_per_s']:>10,.0f} "
        f"{100 * c['train_fraction_of_peak']:>6.1f}% {c['compile_s']:>10.2f} "
        f"{c['greedy_sentences_per_s']:>14,.1f} "
        f"{c['beam5_sentences_per_s']:>13,.1f} {c['peak_memory_mb']:>8,.0f}")
  return "\n".join(lines)


def _parse(argv):
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks.benchmark",
      description="Train-step and decoding speed (see the module docstring).")
  parser.add_argument("--cases", default="",
                      help="comma-separated case names (default: all standard "
                      "cases, or 'config' alone when --config is given)")
  parser.add_argument("--config", default="",
                      help="config file whose model section is case 'config'")
  parser.add_argument("--repeats", type=int, default=None,
                      help="timed repeats per figure (default 5; 1 with --tiny)")
  parser.add_argument("--json", default="", help="write the results here")
  parser.add_argument("--tiny", action="store_true",
                      help="tiny sizes: seconds, for tests")
  # Internal: the parent runs each case as `--_case=NAME --_out=FILE`.
  parser.add_argument("--_case", dest="child_case", default="",
                      help=argparse.SUPPRESS)
  parser.add_argument("--_out", dest="child_out", default="",
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.repeats is None:
    args.repeats = 1 if args.tiny else 5
  if args.config:
    args.config = os.path.abspath(args.config)
  if args.repeats < 1:
    parser.error(f"--repeats must be >= 1, got {args.repeats}")
  return parser, args


def _run_child(args) -> None:
  if args.child_case == "_matmul":
    result = run_matmul(2048 if args.tiny else 4096, args.repeats)
  else:
    case = cases_lib.get_case(args.child_case, args.config)
    result = run_case(cases_lib.shrink(case) if args.tiny else case, args.repeats)
  with open(args.child_out, "w", encoding="utf-8") as f:
    json.dump(result, f)


def main(argv=None) -> None:
  parser, args = _parse(argv)
  if args.child_case:
    _run_child(args)
    return
  names = ([n for n in args.cases.split(",") if n] if args.cases
           else [cases_lib.CONFIG_CASE] if args.config else list(cases_lib.CASES))
  try:
    for name in names:  # fail on a bad name before minutes of benchmarking
      cases_lib.settings_for(cases_lib.get_case(name, args.config))
  except (ValueError, settings_lib.ConfigError) as e:
    parser.error(str(e))
  machine = _child("_matmul", args)
  cases = []
  for name in names:
    print(f"benchmark: {name} ...", file=sys.stderr, flush=True)
    result = {"name": name, **_child(name, args)}
    result["train_fraction_of_peak"] = (result["flops_per_step"] / result["step_s"]
                                        / (machine["matmul_gflops"] * 1e9))
    if name == cases_lib.CONFIG_CASE:
      result["config_file"] = args.config
    cases.append(result)
  print(f"float32 matmul: {machine['matmul_gflops']:.1f} GFLOP/s on "
        f"{', '.join(machine['devices'])} (jax {machine['jax_version']})")
  print(format_table(cases))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"matmul_gflops": machine["matmul_gflops"], "cases": cases,
                 "devices": machine["devices"],
                 "jax_version": machine["jax_version"]}, f, indent=1)


if __name__ == "__main__":
  main()
