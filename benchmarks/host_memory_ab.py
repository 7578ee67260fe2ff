"""The project's train step with and without SEQ2SEQ_JAX_HOST_MEMORY=keep.

  python -m benchmarks.host_memory_ab [--cases=lstm_h512,multi30k_padded] \
      [--rounds=4] [--repeats=7]

Question: how much faster does a train step run, and how much longer does it
compile, when glibc keeps XLA:CPU's freed buffers (seq2seq_jax/host_memory.py)?

Method: the setting is process-wide and must precede JAX's threads, so each
sample is a fresh interpreter running the given cases (the standard set of
benchmarks/sides.py) in one setting: its compile time and the median of
`--repeats` steps. Rounds alternate keep, default / default, keep; the
reported figures are medians over rounds of the paired ratios. Measure on an
idle machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from benchmarks import sides
from seq2seq_jax import host_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SAMPLE = r"""
import json, statistics, sys
from seq2seq_jax import host_memory
applied = host_memory.configure()
from benchmarks import sides
out = {"applied": applied}
for name in sys.argv[1].split(","):
  side = sides.JaxSide(sides.case_for(name, sys.argv[3] == "tiny"), "float32")
  out[name] = {"compile_s": side.compile_s,
               "step_s": statistics.median(side.train_seconds(int(sys.argv[2])))}
print(json.dumps(out))
"""


def _sample(mode, cases, repeats, tiny):
  env = dict(os.environ, **{host_memory.ENV_VAR: mode})
  out = subprocess.run([sys.executable, "-c", _SAMPLE, ",".join(cases),
                        str(repeats), "tiny" if tiny else "full"], cwd=ROOT,
                       env=env, capture_output=True, text=True,
                       check=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def compare(cases, rounds, repeats, tiny=False):
  """{case: (step speed-up of keep, compile-time ratio keep / default)}."""
  samples = {"keep": [], "default": []}
  for round_index in range(rounds):
    order = ("keep", "default") if round_index % 2 == 0 else ("default", "keep")
    for mode in order:
      samples[mode].append(_sample(mode, cases, repeats, tiny))
  if not all(s["applied"] for s in samples["keep"]):
    raise RuntimeError("the keep setting did not apply (not glibc?)")
  pairs = list(zip(samples["keep"], samples["default"]))
  return {name: (statistics.median(d[name]["step_s"] / k[name]["step_s"]
                                   for k, d in pairs),
                 statistics.median(k[name]["compile_s"] / d[name]["compile_s"]
                                   for k, d in pairs))
          for name in cases}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cases", default=",".join(sides.CASES))
  parser.add_argument("--rounds", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--tiny", action="store_true", help="tiny sizes")
  args = parser.parse_args(argv)
  try:
    cases = sides.case_names(args.cases)
  except ValueError as e:
    parser.error(str(e))
  try:
    result = compare(cases, args.rounds, args.repeats, args.tiny)
  except RuntimeError as e:
    sys.exit(f"error: {e}")
  print(f"{'case':<20} {'step: keep as fast':>19} {'compile: keep as long':>22}")
  for name, (speed, compile_ratio) in result.items():
    print(f"{name:<20} {speed:>18.2f}x {compile_ratio:>21.2f}x")


if __name__ == "__main__":
  main()
