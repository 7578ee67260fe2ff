"""Runs every (variant, seed) of a study, one trainer subprocess at a time.

Each run has its own workdir ROOT/<variant>/seed_<seed>/. A run is finished
when its metrics.jsonl has a test line; finished runs are skipped and any
other run is started again on the same workdir, where the trainer resumes
from its own checkpoint. So rerunning the same command after a crash or a
preemption continues the study where it stopped.

The trainers share JAX's persistent compilation cache in
ROOT/.compilation_cache: every seed of a variant (and every restart of a
run) compiles the same step for the same batch shapes, so all but the first
load it instead (the same executable, so the same numbers). Set
JAX_COMPILATION_CACHE_DIR to use another folder, or to nothing to turn it
off.
"""
import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from experiments import study as study_lib

PREEMPTED_EXIT_CODE = 75  # the trainer's (seq2seq_jax.train); EX_TEMPFAIL
CACHE_ENV_VAR = "JAX_COMPILATION_CACHE_DIR"  # read by JAX in the trainer
CACHE_DIR = ".compilation_cache"  # under ROOT, beside the variants' folders
LOG_FILE = "train.log"  # the trainer's stdout and stderr, appended per start
WALL_FILE = "wall_time.json"  # {"wall_s": seconds over all starts, "starts": n}


class RunFailed(RuntimeError):
  """A trainer exited with an error; the message names the run."""


class Preempted(RuntimeError):
  """A trainer (or this runner) was asked to stop; rerun to continue."""


def workdir(root: str, variant: study_lib.Variant, seed: int) -> str:
  return os.path.join(os.path.abspath(root), variant.name, f"seed_{seed}")


def is_finished(run_dir: str) -> bool:
  """Whether the run's metrics.jsonl has its final test line."""
  path = os.path.join(run_dir, "metrics.jsonl")
  if not os.path.exists(path):
    return False
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        if json.loads(line).get("split") == "test":
          return True
      except json.JSONDecodeError:
        continue  # a line cut short by a crash
  return False


def command(s: study_lib.Study, variant: study_lib.Variant, seed: int,
            run_dir: str, extra_args: Sequence[str] = ()) -> List[str]:
  """The trainer command line for one run; cwd must be the repo root."""
  settings = list(s.overrides.items()) + list(variant.values)
  return ([sys.executable, "-m", "seq2seq_jax.train", f"--config={s.base_config}",
           f"--workdir={run_dir}", f"--config.seed={seed}"] +
          [f"--config.{k}={study_lib.format_value(v)}" for k, v in settings] +
          list(extra_args))


def check_extra_args(s: study_lib.Study, extra_args: Sequence[str]) -> None:
  """Extra args may add config keys but not change the study's own ones."""
  owned = {"seed"} | set(s.overrides) | set(s.grid)
  for arg in extra_args:
    if not arg.startswith("--config.") or "=" not in arg:
      raise ValueError(f"extra argument {arg!r}: expected --config.KEY=VALUE")
    key = arg[len("--config."):].split("=", 1)[0]
    if key in owned:
      raise ValueError(f"extra argument {arg!r} changes {key!r}, which the "
                       f"study sets in {s.directory}/spec.py")


def trainer_environment(root: str, base: Optional[Dict[str, str]] = None
                        ) -> Dict[str, str]:
  """`base` (default: this process's environment), plus the shared
  compilation cache (module docstring) unless JAX_COMPILATION_CACHE_DIR is
  already set, even empty."""
  env = dict(os.environ if base is None else base)
  env.setdefault(CACHE_ENV_VAR, os.path.join(os.path.abspath(root), CACHE_DIR))
  return env


def runs(s: study_lib.Study, root: str
         ) -> List[Tuple[str, study_lib.Variant, int, str]]:
  """(label, variant, seed, workdir) of every run, in grid order, then seed
  order; the label, e.g. "[2/4] cell=lstm seed 1", names it in messages."""
  pairs = [(v, seed) for v in s.variants for seed in s.seeds]
  return [(f"[{i}/{len(pairs)}] {v.name} seed {seed}", v, seed,
           workdir(root, v, seed)) for i, (v, seed) in enumerate(pairs, 1)]


def run_all(s: study_lib.Study, root: str,
            extra_args: Sequence[str] = ()) -> None:
  """Runs or skips every (variant, seed) in grid order, then seed order.

  Raises:
    Preempted: a trainer exited with PREEMPTED_EXIT_CODE.
    RunFailed: a trainer exited with any other non-zero code.
  """
  check_extra_args(s, extra_args)
  env = trainer_environment(root)
  for label, variant, seed, run_dir in runs(s, root):
    if is_finished(run_dir):
      print(f"{label}: skipped (finished)", flush=True)
      continue
    print(f"{label}: started in {run_dir}", flush=True)
    code, seconds, signalled = launch(
        command(s, variant, seed, run_dir, extra_args), run_dir, env)
    if code == PREEMPTED_EXIT_CODE or signalled:
      # A signal that reached the trainer before its handler was installed
      # kills it outright; nothing is lost beyond its last checkpoint.
      raise Preempted(f"{label}: preempted after {seconds:.1f} s (trainer exit "
                      f"code {code}, workdir {run_dir}); rerun the same "
                      "command to continue")
    if code != 0:
      raise RunFailed(failure(label, code, run_dir))
    if is_finished(run_dir):
      print(f"{label}: finished in {seconds:.1f} s", flush=True)
    else:  # e.g. train.max_steps_per_run: a segment, not the whole run
      print(f"{label}: stopped after {seconds:.1f} s without its test line "
            "(rerun to continue)", flush=True)


def launch(argv: List[str], run_dir: str,
           env: Optional[Dict[str, str]] = None):
  """Runs the trainer (in `env`, default this process's environment) with
  its output appended to RUN_DIR/train.log.

  SIGTERM and SIGINT sent to this runner are passed on to the trainer, which
  checkpoints and exits 75, instead of killing the runner and orphaning (or,
  via subprocess.run's cleanup, SIGKILLing) a trainer that is saving.

  Returns:
    (exit code, wall seconds, whether this runner got SIGTERM/SIGINT); the
    seconds are also added to RUN_DIR/wall_time.json.
  """
  start_time = time.perf_counter()
  signalled = []
  process = start(argv, run_dir, env)

  def forward(signum, frame):
    del frame
    signalled.append(signum)
    if process.poll() is None:
      process.send_signal(signum)

  previous = {sig: signal.signal(sig, forward)
              for sig in (signal.SIGTERM, signal.SIGINT)}
  try:
    code = process.wait()
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
  seconds = time.perf_counter() - start_time
  add_wall_time(run_dir, seconds)
  return code, seconds, bool(signalled)


def start(argv: List[str], run_dir: str, env: Optional[Dict[str, str]] = None,
          preexec_fn=None) -> subprocess.Popen:
  """Starts the trainer in the repo root with its stdout and stderr appended
  to RUN_DIR/train.log (the file stays open in the trainer alone)."""
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, LOG_FILE), "ab") as log:
    return subprocess.Popen(argv, cwd=study_lib.REPO_ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env=env,
                            preexec_fn=preexec_fn)


def add_wall_time(run_dir: str, seconds: float) -> None:
  """Adds one start of `seconds` to RUN_DIR/wall_time.json (atomically)."""
  path = os.path.join(run_dir, WALL_FILE)
  record = {"wall_s": 0.0, "starts": 0}
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      record = json.load(f)
  record = {"wall_s": round(record["wall_s"] + seconds, 1),
            "starts": record["starts"] + 1}
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(record, f, sort_keys=True)
  os.replace(path + ".tmp", path)


def failure(label: str, code: int, run_dir: str) -> str:
  """What a failed run is reported with: its name, exit code and log tail."""
  log = os.path.join(run_dir, LOG_FILE)
  return (f"{label}: trainer exited with code {code} (workdir {run_dir}); "
          f"log {log}:\n{_tail(log)}")


def _tail(path: str, lines: int = 20) -> str:
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return "".join(f.readlines()[-lines:])
  except OSError:
    return "(no log)"
