"""seq2seq_jax against PyTorch, side by side: train steps and greedy decoding.

  pip install -r benchmarks/requirements.txt      # PyTorch, CPU wheel
  python -m benchmarks.compare_pytorch            # all standard cases
  python -m benchmarks.compare_pytorch --cases=lstm_h512 --rounds=7 \
      --json=/tmp/compare.json
  python -m benchmarks.compare_pytorch --check_only --tiny   # equal work only

Question: for the same model, batch and Adam step, how many target tokens per
second does the project's jitted `train_step` process, against the PyTorch
reference (benchmarks/torch_reference.py), on this machine, now?

Method.
  * Equal work first: at tiny sizes, each case's reference is loaded with the
    project's parameters and both compute the loss, every gradient and one
    clipped Adam update on the same batch; they must agree (rtol 2e-4,
    atol 2e-5) before anything is timed.
  * Two persistent worker processes, one per framework, so their thread pools
    never compete; each builds every case once (compiling / warming up).
  * Rounds: in each round every case is sampled in both workers back to back,
    A B in odd rounds and B A in even ones, and each worker also times a
    2048 x 2048 float32 matmul (`jnp.dot` / `torch.mm`) for its peak. A sample
    is the median of `--repeats` steps. The reported ratio is the median over
    rounds of the paired ratios (PyTorch step time / project step time, > 1:
    the project is faster); tokens/s are medians over rounds.
  * Both workers run with the same glibc allocator settings: glibc's
    defaults, or with `--host_memory=keep` those of
    `SEQ2SEQ_JAX_HOST_MEMORY=keep` (seq2seq_jax/host_memory.py: freed
    buffers stay in the process instead of being unmapped and page-faulted
    back in every step), which PyTorch's CPU tuning advice reaches with
    jemalloc or tcmalloc. The table's header says what each worker had.
  * Measure on an idle machine: under contention PyTorch's OpenMP pool slows
    by up to 8x and no ratio means anything.

Cases (float32, vocabulary 8,000 both sides, batch 64, lengths 20, Adam,
clipping 1.0, no dropout unless the config has it):
  lstm_h512, gru_h512, lstm_h1024   embedding 256, one layer each side
  bigru256_bahdanau                 bi-GRU 256 encoder, linear bridge, GRU 256
                                    decoder with Bahdanau attention, batch 128
  multi30k_padded                   configs/multi30k.py's model (2-layer LSTM
                                    256, dropout 0.3), padded, bucketed batch
Greedy decoding (plain cases): the project's greedy and beam-5 search against
PyTorch greedy (one `nn.LSTM` step at a time), full length, batch 64.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

from benchmarks import cases as cases_lib
from benchmarks import flops
from benchmarks import sides
from seq2seq_jax import host_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATMUL_SIZE = 2048
# --- workers and rounds ---------------------------------------------------------

def _matmul_gflops(framework: str, repeats: int, device: str,
                   dtype: str) -> float:
  n = MATMUL_SIZE
  if framework == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    x, y = jax.random.normal(jax.random.PRNGKey(0), (2, n, n)).astype(dtype)
    dot = jax.jit(lambda a, b: a @ b)
    run = lambda: jax.block_until_ready(dot(x, y))
  else:
    import torch  # pylint: disable=g-import-not-at-top
    x, y = (torch.randn(n, n, device=device, dtype=getattr(torch, dtype))
            for _ in range(2))

    def run():
      torch.mm(x, y)
      if device == "cuda":
        torch.cuda.synchronize()
  run()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return flops.matmul(n, n, n) / statistics.median(times) / 1e9


def worker(framework: str, device: str, dtype: str) -> None:
  """Reads one JSON command per stdin line, answers one JSON line each."""
  host_memory.configure()  # As `train` does; both workers alike.
  built = {}
  for line in sys.stdin:
    command = json.loads(line)
    op = command["op"]
    if op == "exit":
      return
    if op == "setup":
      case = sides.case_for(command["case"], command["tiny"])
      side = built[command["case"]] = (
          sides.JaxSide(case, dtype) if framework == "jax"
          else sides.TorchSide(case, device=device, dtype=dtype))
      answer = {"compile_s": side.compile_s,
                "host_memory_kept": host_memory.applied()}
    elif op == "train":
      answer = {"seconds": built[command["case"]].train_seconds(
          command["repeats"])}
    elif op == "decode":
      answer = {"seconds": built[command["case"]].decode_seconds(
          command["what"], command["repeats"])}
    elif op == "matmul":
      answer = {"gflops": _matmul_gflops(framework, command["repeats"],
                                         device, dtype)}
    else:
      answer = {"error": f"unknown op {op!r}"}
    print(json.dumps(answer), flush=True)


class _Worker:
  def __init__(self, framework: str, device: str, dtype: str,
               host_memory_mode: str):
    self.framework = framework
    self.process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.compare_pytorch",
         f"--_worker={framework}", f"--device={device}", f"--dtype={dtype}"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, **{host_memory.ENV_VAR: host_memory_mode}))

  def ask(self, **command) -> Dict[str, Any]:
    self.process.stdin.write(json.dumps(command) + "\n")
    self.process.stdin.flush()
    line = self.process.stdout.readline()
    if not line:
      raise RuntimeError(f"the {self.framework} worker died on {command}")
    return json.loads(line)

  def close(self) -> None:
    try:
      self.ask(op="exit")
    except (BrokenPipeError, RuntimeError):
      pass
    self.process.wait(timeout=60)


def compare(names: List[str], rounds: int, repeats: int, tiny: bool,
            decode: bool, device: str = "cpu", dtype: str = "float32",
            host_memory_mode: str = "default") -> Dict[str, Any]:
  """Interleaved rounds (see the module docstring); returns the results."""
  workers = {f: _Worker(f, device, dtype, host_memory_mode)
             for f in ("jax", "torch")}
  try:
    answers = {name: {f: w.ask(op="setup", case=name, tiny=tiny)
                      for f, w in workers.items()} for name in names}
    setup = {name: {f: a["compile_s"] for f, a in by_framework.items()}
             for name, by_framework in answers.items()}
    kept = {f: all(answers[name][f]["host_memory_kept"] for name in names)
            for f in workers}
    samples = {name: {"jax": [], "torch": []} for name in names}
    decode_names = [n for n in names if decode and n in sides.DECODE_CASES]
    decoding = {name: {"jax_greedy": [], "jax_beam5": [], "torch_greedy": []}
                for name in decode_names}
    peaks = {"jax": [], "torch": []}
    for round_index in range(rounds):
      order = ["torch", "jax"] if round_index % 2 == 0 else ["jax", "torch"]
      for framework in order:
        peaks[framework].append(workers[framework].ask(
            op="matmul", repeats=max(repeats, 3))["gflops"])
      for name in names:
        for framework in order:
          seconds = workers[framework].ask(op="train", case=name,
                                           repeats=repeats)["seconds"]
          samples[name][framework].append(statistics.median(seconds))
      for name in decode_names:
        for framework in order:
          whats = ["greedy", "beam5"] if framework == "jax" else ["greedy"]
          for what in whats:
            seconds = workers[framework].ask(op="decode", case=name, what=what,
                                             repeats=repeats)["seconds"]
            decoding[name][f"{framework}_{what}"].append(
                statistics.median(seconds))
  finally:
    for w in workers.values():
      w.close()
  result = _summarize(names, tiny, setup, samples, decoding, peaks, rounds,
                      repeats)
  result.update(device=device, dtype=dtype, host_memory_kept=kept)
  return result


def _summarize(names, tiny, setup, samples, decoding, peaks, rounds, repeats):
  jax_peak = statistics.median(peaks["jax"])
  torch_peak = statistics.median(peaks["torch"])
  results = []
  for name in names:
    case = sides.case_for(name, tiny)
    s = cases_lib.settings_for(case)
    batch = cases_lib.make_batch(case)
    tokens = flops.real_rows(batch["target_outputs"])
    # Both sides project only the real positions (the reference by boolean
    # indexing): the work counted is that.
    step_flops = flops.train_step_flops(
        s.model, case.batch_size, batch["source"].shape[1],
        batch["target_outputs"].shape[1], case.target_vocab_size, tokens)
    jax_s, torch_s = samples[name]["jax"], samples[name]["torch"]
    ratios = [t / j for t, j in zip(torch_s, jax_s)]
    row = {
        "name": name, "ratio": statistics.median(ratios), "ratios": ratios,
        "jax_tokens_per_s": tokens / statistics.median(jax_s),
        "torch_tokens_per_s": tokens / statistics.median(torch_s),
        "jax_fraction_of_peak": step_flops / statistics.median(jax_s)
                                / (jax_peak * 1e9),
        "torch_fraction_of_peak": step_flops / statistics.median(torch_s)
                                  / (torch_peak * 1e9),
        "jax_compile_s": setup[name]["jax"],
        "torch_first_step_s": setup[name]["torch"],
        "flops_per_step": step_flops, "target_tokens": tokens,
    }
    if name in decoding:
      d = decoding[name]
      row.update({
          "greedy_ratio": statistics.median(
              [t / j for t, j in zip(d["torch_greedy"], d["jax_greedy"])]),
          "beam5_over_greedy": statistics.median(
              [b / g for b, g in zip(d["jax_beam5"], d["jax_greedy"])]),
          "jax_greedy_sentences_per_s":
              case.batch_size / statistics.median(d["jax_greedy"]),
          "jax_beam5_sentences_per_s":
              case.batch_size / statistics.median(d["jax_beam5"]),
          "torch_greedy_sentences_per_s":
              case.batch_size / statistics.median(d["torch_greedy"]),
      })
    results.append(row)
  return {"cases": results, "rounds": rounds, "repeats": repeats,
          "jax_matmul_gflops": jax_peak, "torch_matmul_gflops": torch_peak,
          "jax_matmul_gflops_rounds": peaks["jax"],
          "torch_matmul_gflops_rounds": peaks["torch"],
          "machine": _machine()}


def _machine() -> Dict[str, Any]:
  model = ""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      model = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), "")
  except OSError:
    pass
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  return {"cpu": model, "cpus": os.cpu_count(),
          "jax": importlib.metadata.version("jax"),
          "torch": importlib.metadata.version("torch")}


def _kept(result: Dict[str, Any], framework: str) -> str:
  return "yes" if result["host_memory_kept"][framework] else "no"


def format_table(result: Dict[str, Any]) -> str:
  lines = [f"{result['machine']['cpu']} ({result['machine']['cpus']} CPUs); "
           f"{result.get('device', 'cpu')}, {result.get('dtype', 'float32')}; "
           f"matmul {MATMUL_SIZE}^2: jax {result['jax_matmul_gflops']:.0f}"
           f", torch {result['torch_matmul_gflops']:.0f} GFLOP/s; "
           f"{result['rounds']} rounds x {result['repeats']} steps; "
           f"host memory kept (jax, torch): "
           f"{_kept(result, 'jax')}, {_kept(result, 'torch')}",
           f"{'case':<20} {'ratio':>6} {'project tok/s':>14} {'torch tok/s':>12}"
           f" {'project %pk':>11} {'torch %pk':>9}"]
  for c in result["cases"]:
    lines.append(
        f"{c['name']:<20} {c['ratio']:>5.2f}x {c['jax_tokens_per_s']:>14,.0f} "
        f"{c['torch_tokens_per_s']:>12,.0f} "
        f"{100 * c['jax_fraction_of_peak']:>10.1f}% "
        f"{100 * c['torch_fraction_of_peak']:>8.1f}%")
  decoded = [c for c in result["cases"] if "greedy_ratio" in c]
  if decoded:
    lines.append(f"{'decoding, batch 64':<20} {'greedy ratio':>12} "
                 f"{'project greedy':>15} {'torch greedy':>13} "
                 f"{'beam5 / greedy time':>20}")
    for c in decoded:
      lines.append(
          f"{c['name']:<20} {c['greedy_ratio']:>11.2f}x "
          f"{c['jax_greedy_sentences_per_s']:>15,.0f} "
          f"{c['torch_greedy_sentences_per_s']:>13,.0f} "
          f"{c['beam5_over_greedy']:>19.2f}x")
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks.compare_pytorch",
      description="seq2seq_jax vs PyTorch, interleaved (module docstring).")
  parser.add_argument("--cases", default=",".join(sides.CASES))
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--tiny", action="store_true", help="tiny sizes")
  parser.add_argument("--no_decode", action="store_true")
  parser.add_argument("--check_only", action="store_true",
                      help="only the equal-work check")
  parser.add_argument("--skip_check", action="store_true",
                      help="time without the equal-work check (run it once "
                      "in float32 first)")
  parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                      help="PyTorch's device; JAX uses its default backend")
  parser.add_argument("--dtype", default="float32",
                      choices=("float32", "bfloat16"),
                      help="bfloat16: train.dtype=bfloat16 vs torch.autocast")
  parser.add_argument("--host_memory", default="default",
                      choices=host_memory.MODES,
                      help="glibc settings of both workers "
                      "(seq2seq_jax/host_memory.py): keep freed memory or "
                      "glibc's defaults")
  parser.add_argument("--json", default="")
  parser.add_argument("--_worker", dest="worker", default="",
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    worker(args.worker, args.device, args.dtype)
    return
  try:
    names = sides.case_names(args.cases)
  except ValueError as e:
    parser.error(str(e))
  for name in [] if args.skip_check else names:
    checked = sides.check_equal_work(name, tiny=True)
    print(f"equal work: {name}: loss {checked['loss']:.6f}, gradients and "
          f"update agree (worst {checked['max_grad_error']:.3f} of the "
          "tolerance)", file=sys.stderr, flush=True)
  if args.check_only:
    return
  result = compare(names, args.rounds, args.repeats, args.tiny,
                   decode=not args.no_decode, device=args.device,
                   dtype=args.dtype, host_memory_mode=args.host_memory)
  print(format_table(result))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
