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
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

import numpy as np

from benchmarks import benchmark as bench
from benchmarks import flops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATMUL_SIZE = 2048
RTOL, ATOL = 2e-4, 2e-5

CASES = {
    "lstm_h512": bench.Case(),
    "gru_h512": bench.Case(model={"cell": "gru"}),
    "lstm_h1024": bench.Case(model={"hidden_size": 1024}),
    "bigru256_bahdanau": bench.Case(
        model={"cell": "gru", "hidden_size": 256, "bidirectional": True,
               "bridge": "linear", "attention": "bahdanau",
               "decoder_hidden_size": 256},
        batch_size=128),
    "multi30k_padded": bench.CASES["multi30k_padded"],
}
DECODE_CASES = ("lstm_h512", "gru_h512", "lstm_h1024")


def case_for(name: str, tiny: bool) -> bench.Case:
  if name not in CASES:
    raise ValueError(f"unknown case {name!r}; valid: {', '.join(CASES)}")
  return bench.shrink(CASES[name]) if tiny else CASES[name]


# --- the two sides ------------------------------------------------------------

class JaxSide:
  """The project's train step and decoders for one case (on JAX's default
  backend: the GPU where there is one)."""

  def __init__(self, case: bench.Case, dtype: str = "float32"):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    from seq2seq_jax import optimizer as optimizer_lib  # pylint: disable=g-import-not-at-top
    from seq2seq_jax import steps  # pylint: disable=g-import-not-at-top
    from seq2seq_jax.model import Seq2Seq  # pylint: disable=g-import-not-at-top
    self.jax, self.steps = jax, steps
    self.case = case
    self.settings = bench.settings_for(case)
    if dtype != "float32":
      self.settings = dataclasses.replace(self.settings, train=dataclasses.replace(
          self.settings.train, dtype=dtype))
    self.batch_np = bench.make_batch(case)
    self.batch = {k: jnp.asarray(v) for k, v in self.batch_np.items()}
    model = Seq2Seq(self.settings.model, case.source_vocab_size,
                    case.target_vocab_size)
    self.tx = optimizer_lib.make_optimizer(self.settings.train)
    self.schedule = optimizer_lib.learning_rate_schedule(self.settings.train)
    init_rng, self.rng = jax.random.split(jax.random.PRNGKey(0))
    self.state = steps.create_train_state(
        model, self.tx, steps.StepOptions.from_settings(self.settings.train),
        init_rng, self.batch["source"].shape[1],
        self.batch["target_outputs"].shape[1])
    self.initial_params = jax.device_get(self.state.params)
    start = time.perf_counter()
    self.train = steps.jit_train_step.lower(self.state, self.batch,
                                            self.rng).compile()
    self.compile_s = time.perf_counter() - start
    self._decoders = None

  def train_seconds(self, repeats: int) -> List[float]:
    times = []
    for _ in range(repeats + 1):  # the first warms up after a pause
      start = time.perf_counter()
      self.state, metrics = self.train(self.state, self.batch, self.rng)
      self.jax.block_until_ready(metrics)
      times.append(time.perf_counter() - start)
    return times[1:]

  def decode_seconds(self, what: str, repeats: int) -> List[float]:
    if self._decoders is None:
      # A copy: the train step donates (frees) self.state's buffers.
      state = bench._without_eos(self.jax.tree.map(  # pylint: disable=protected-access
          self.jax.numpy.copy, self.state))
      source = self.batch["source"]
      length = self.batch["target_outputs"].shape[1]
      greedy = self.steps.jit_greedy_predict.lower(
          state, source, max_length=length).compile()
      beam = self.steps.jit_beam_predict.lower(
          state, source, alpha=bench.BEAM_ALPHA, max_length=length,
          beam_size=bench.BEAM_SIZE, nbest=1).compile()
      self._decoders = {
          "greedy": lambda: greedy(state, source),
          "beam5": lambda: beam(state, source, alpha=bench.BEAM_ALPHA)}
    fn = self._decoders[what]
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      self.jax.block_until_ready(fn())
      times.append(time.perf_counter() - start)
    return times[1:]

  def loss_grads_update(self):
    """(loss, grads, new params) of one step from the initial parameters,
    without dropout, in the project's layout (numpy)."""
    jax, jnp = self.jax, self.jax.numpy
    import optax  # pylint: disable=g-import-not-at-top
    from seq2seq_jax import metrics as metrics_lib  # pylint: disable=g-import-not-at-top
    params = jax.tree.map(jnp.asarray, self.initial_params)
    model = self.state.model

    def loss(p):
      logits = model.apply({"params": p}, self.batch["source"],
                           self.batch["target_inputs"], train=False)
      return metrics_lib.sequence_sums(logits, self.batch["target_outputs"])[0]

    value, grads = jax.value_and_grad(loss)(params)
    updates, _ = self.tx.update(grads, self.tx.init(params), params)
    new = optax.apply_updates(params, updates)
    return (float(value), jax.device_get(grads), jax.device_get(new),
            float(self.schedule(0)))


def _reference_kwargs(case: bench.Case, s) -> Dict[str, Any]:
  m = s.model
  return dict(cell=m.cell, source_vocab=case.source_vocab_size,
              target_vocab=case.target_vocab_size,
              embedding=m.embedding_size, hidden=m.hidden_size,
              num_layers=m.num_layers, dropout=m.dropout,
              bidirectional=m.bidirectional, bridge=m.bridge,
              attention=m.attention, decoder_hidden=m.decoder_hidden_size)


class TorchSide:
  """The PyTorch reference's train step and greedy decoder for one case."""

  def __init__(self, case: bench.Case, learning_rate: float = 1e-3,
               dropout: bool = True, device: str = "cpu",
               dtype: str = "float32"):
    import contextlib  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    from benchmarks import torch_reference as ref  # pylint: disable=g-import-not-at-top
    self.torch, self.ref, self.device = torch, ref, device
    # bfloat16: autocast, as a PyTorch user gets mixed precision.
    self.autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)
                     ) if dtype == "bfloat16" else contextlib.nullcontext
    s = bench.settings_for(case)
    kwargs = _reference_kwargs(case, s)
    if not dropout:
      kwargs["dropout"] = 0.0
    torch.manual_seed(0)
    self.model = ref.Seq2Seq(**kwargs).to(device)
    self.optimizer = ref.make_optimizer(self.model, learning_rate)
    self.batch = {k: torch.from_numpy(v.astype(np.int64)).to(device)
                  for k, v in bench.make_batch(case).items()}
    start = time.perf_counter()
    self._step()  # warm-up
    self.compile_s = time.perf_counter() - start

  def _sync(self) -> None:
    if self.device == "cuda":
      self.torch.cuda.synchronize()

  def _step(self) -> None:
    with self.autocast():
      self.ref.train_step(self.model, self.optimizer, self.batch)
    self._sync()

  def train_seconds(self, repeats: int) -> List[float]:
    self.model.train()
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      self._step()
      times.append(time.perf_counter() - start)
    return times[1:]

  def decode_seconds(self, what: str, repeats: int) -> List[float]:
    if what != "greedy":
      raise ValueError("the reference decodes greedily only")
    self.model.eval()
    source = self.batch["source"]
    length = self.batch["target_outputs"].shape[1]
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      with self.autocast():
        self.model.greedy(source, length, bench.BOS_ID)
      self._sync()
      times.append(time.perf_counter() - start)
    return times[1:]


# --- equal work -----------------------------------------------------------------

def check_equal_work(name: str, tiny: bool = True) -> Dict[str, float]:
  """Loss, gradients and one Adam update agree; raises AssertionError if not.

  Returns:
    {"loss": the project's loss, "max_grad_error": the largest
    |difference| / (atol + rtol |value|) over all gradients (<= 1 passes)}.
  """
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference as ref  # pylint: disable=g-import-not-at-top
  case = case_for(name, tiny)
  jax_side = JaxSide(case)
  loss, grads, new_params, learning_rate = jax_side.loss_grads_update()
  torch_side = TorchSide(case, learning_rate=learning_rate, dropout=False)
  model = torch_side.model
  ref.load_project_params(model, jax_side.initial_params)
  model.train()  # dropout is 0 here; train mode as in training
  torch_side.optimizer = ref.make_optimizer(model, learning_rate)
  torch_side.optimizer.zero_grad(set_to_none=True)
  torch_loss = ref.loss_fn(model, torch_side.batch)
  torch_loss.backward()
  want_grads = ref.parameter_map(model, grads)
  skip = {n for n in want_grads if model.cell == "lstm" and "bias_hh" in n}
  worst = 0.0
  for pname, parameter in model.named_parameters():
    if pname in skip:  # the project's LSTM has no recurrent bias
      continue
    got = parameter.grad.detach().numpy()
    want = want_grads[pname].numpy()
    error = np.max(np.abs(got - want) / (ATOL + RTOL * np.abs(want)))
    worst = max(worst, float(error))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL,
                               err_msg=f"{name}: gradient of {pname}")
  np.testing.assert_allclose(float(torch_loss.detach()), loss, rtol=1e-5,
                             err_msg=f"{name}: loss")
  torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
  torch_side.optimizer.step()
  want_params = ref.parameter_map(model, new_params)
  for pname, parameter in model.named_parameters():
    if pname in skip:
      continue
    np.testing.assert_allclose(parameter.detach().numpy(),
                               want_params[pname].numpy(), rtol=RTOL,
                               atol=ATOL, err_msg=f"{name}: updated {pname}")
  return {"loss": loss, "max_grad_error": worst}


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
  sides = {}
  for line in sys.stdin:
    command = json.loads(line)
    op = command["op"]
    if op == "exit":
      return
    if op == "setup":
      case = case_for(command["case"], command["tiny"])
      side = sides[command["case"]] = (
          JaxSide(case, dtype) if framework == "jax"
          else TorchSide(case, device=device, dtype=dtype))
      answer = {"compile_s": side.compile_s}
    elif op == "train":
      answer = {"seconds": sides[command["case"]].train_seconds(
          command["repeats"])}
    elif op == "decode":
      answer = {"seconds": sides[command["case"]].decode_seconds(
          command["what"], command["repeats"])}
    elif op == "matmul":
      answer = {"gflops": _matmul_gflops(framework, command["repeats"],
                                         device, dtype)}
    else:
      answer = {"error": f"unknown op {op!r}"}
    print(json.dumps(answer), flush=True)


class _Worker:
  def __init__(self, framework: str, device: str, dtype: str):
    self.framework = framework
    self.process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.compare_pytorch",
         f"--_worker={framework}", f"--device={device}", f"--dtype={dtype}"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

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


def _tokens(case: bench.Case) -> int:
  return int(np.sum(bench.make_batch(case)["target_outputs"] != 0))


def compare(names: List[str], rounds: int, repeats: int, tiny: bool,
            decode: bool, device: str = "cpu",
            dtype: str = "float32") -> Dict[str, Any]:
  """Interleaved rounds (see the module docstring); returns the results."""
  workers = {f: _Worker(f, device, dtype) for f in ("jax", "torch")}
  try:
    setup = {name: {f: w.ask(op="setup", case=name, tiny=tiny)["compile_s"]
                    for f, w in workers.items()} for name in names}
    samples = {name: {"jax": [], "torch": []} for name in names}
    decode_names = [n for n in names if decode and n in DECODE_CASES]
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
  result.update(device=device, dtype=dtype)
  return result


def _summarize(names, tiny, setup, samples, decoding, peaks, rounds, repeats):
  jax_peak = statistics.median(peaks["jax"])
  torch_peak = statistics.median(peaks["torch"])
  results = []
  for name in names:
    case = case_for(name, tiny)
    s = bench.settings_for(case)
    batch = bench.make_batch(case)
    step_flops = flops.train_step_flops(
        s.model, case.batch_size, batch["source"].shape[1],
        batch["target_outputs"].shape[1], case.target_vocab_size)
    tokens = _tokens(case)
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


def format_table(result: Dict[str, Any]) -> str:
  lines = [f"{result['machine']['cpu']} ({result['machine']['cpus']} CPUs); "
           f"{result.get('device', 'cpu')}, {result.get('dtype', 'float32')}; "
           f"matmul {MATMUL_SIZE}^2: jax {result['jax_matmul_gflops']:.0f}"
           f", torch {result['torch_matmul_gflops']:.0f} GFLOP/s; "
           f"{result['rounds']} rounds x {result['repeats']} steps",
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
  parser.add_argument("--cases", default=",".join(CASES))
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
  parser.add_argument("--json", default="")
  parser.add_argument("--_worker", dest="worker", default="",
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    worker(args.worker, args.device, args.dtype)
    return
  names = [n for n in args.cases.split(",") if n]
  for name in names:
    if name not in CASES:
      parser.error(f"unknown case {name!r}; valid: {', '.join(CASES)}")
  for name in [] if args.skip_check else names:
    checked = check_equal_work(name, tiny=True)
    print(f"equal work: {name}: loss {checked['loss']:.6f}, gradients and "
          f"update agree (worst {checked['max_grad_error']:.3f} of the "
          "tolerance)", file=sys.stderr, flush=True)
  if args.check_only:
    return
  result = compare(names, args.rounds, args.repeats, args.tiny,
                   decode=not args.no_decode, device=args.device,
                   dtype=args.dtype)
  print(format_table(result))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
