"""Runs a study's runs as Ray tasks, as many at once as the cluster holds.

  python -m experiments.run experiments/<name> --executor=ray
      [--ray_address=ADDRESS] [--cpus_per_run=N] [--gpus_per_run=N]
      [--max_retries=N]

Each (variant, seed) that is not finished is one Ray task that runs the same
trainer command as the local runner, in the same workdir under ROOT
(experiments/ray_task.py), so the runs' files, and the report made from
them, do not depend on the executor. ROOT, the repo and its venv must be at
the same path on every node (a shared disk). An empty ADDRESS starts a Ray
instance on this machine, on 127.0.0.1 alone; `auto` or HOST:PORT joins a
running cluster. A run asks for `cpus_per_run` CPUs (default 1) and
`gpus_per_run` GPUs (default 1 where the cluster has GPUs, else 0): JAX
takes most of a GPU's memory, so runs never share one.

Faults. A trainer killed by a signal (SIGKILL, the OOM killer) or preempted
(exit 75), and a task whose worker process or node died, are tried again,
at most `max_retries` times per run; the trainer resumes from the run's
checkpoint. The retries are this driver's, not Ray's (the tasks have Ray's
max_retries=0): they depend on the trainer's exit code, and a retry must
wait for the attempt before it to let go of the workdir. A trainer that
exits with another code (1 or 2: a bug or a bad config) is reported with
its log's tail and not retried; the other runs go on, then the study fails.
SIGINT or SIGTERM to this driver cancels the tasks: each running trainer
gets SIGTERM, checkpoints and exits 75, and the driver exits 75 once they
all have; rerunning the command continues.
"""
import dataclasses
import logging
import os
import signal
import socket
import time
from typing import Any, Dict, List, Optional, Sequence

from experiments import progress
from experiments import ray_task
from experiments import runner
from experiments import study as study_lib

INSTALL_HINT = ("--executor=ray needs Ray: pip install -r "
                "experiments/requirements-ray.txt")
# A Ray instance on 127.0.0.1 alone: without these, Ray 2.60 advertises the
# machine's other interface and turns on token authentication.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# The driver's variables that reach the trainers on every node; the rest of
# a trainer's environment is its worker's, with the CUDA_VISIBLE_DEVICES that
# Ray gives it (ray_task.trainer_environment).
FORWARDED_PREFIXES = ("JAX_", "XLA_", "SEQ2SEQ_JAX_", "TFDS_", "OMP_")
CONNECT_TIMEOUT_S = 10.0


class SetupError(ValueError):
  """Ray missing, a bad address, or resources the cluster does not have."""


@dataclasses.dataclass(frozen=True)
class Options:
  address: str = ""  # "": a local instance; "auto" or HOST:PORT: a cluster
  cpus_per_run: float = 1.0
  gpus_per_run: Optional[float] = None  # None: 1 if the cluster has GPUs
  max_retries: int = 3


@dataclasses.dataclass
class _Run:
  label: str
  run_dir: str
  argv: List[str]
  retries: int = 0
  started: bool = False  # whether the current attempt's trainer started


def _loopback(address: str) -> bool:
  """Whether ADDRESS is empty (a local instance) or on this machine's
  loopback interface."""
  return not address or address.rsplit(":", 1)[0].strip("[]") in LOOPBACK_HOSTS


def import_ray(address: str):
  """Ray, imported after the loopback settings where the address is local."""
  if _loopback(address):
    for key, value in LOOPBACK_ENV.items():
      os.environ.setdefault(key, value)
  try:
    import ray  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise SetupError(INSTALL_HINT) from None
  return ray


def connect(ray, address: str) -> None:
  """Starts a loopback-only local instance (empty address) or joins one.

  Raises:
    SetupError: nothing answers at the address.
  """
  # Ray's workers import experiments.ray_task from the repo.
  job_config = ray.job_config.JobConfig(code_search_path=[study_lib.REPO_ROOT])
  if not address:
    ray.init(address="local", include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level=logging.WARNING,
             job_config=job_config)
    return
  _check_reachable(ray, address)
  ray.init(address=address, logging_level=logging.WARNING,
           job_config=job_config,
           _node_ip_address="127.0.0.1" if _loopback(address) else None)


def _check_reachable(ray, address: str) -> None:
  """Fails at once where ray.init would retry an address forever."""
  try:  # "auto" -> the address `ray start` recorded on this machine
    resolved = ray._private.services.canonicalize_bootstrap_address_or_die(  # pylint: disable=protected-access
        address)
  except (ConnectionError, ValueError) as e:
    raise SetupError(f"--ray_address={address}: {e}") from None
  host, port = resolved.rsplit(":", 1)
  try:
    socket.create_connection((host.strip("[]"), int(port)),
                             timeout=CONNECT_TIMEOUT_S).close()
  except (OSError, ValueError) as e:
    raise SetupError(f"--ray_address={address}: no Ray cluster answers at "
                     f"{resolved} ({e}); start one with `ray start --head`, "
                     "or leave the address empty for a local instance") from None


def trainer_env_vars(root: str) -> Dict[str, str]:
  """The driver's FORWARDED_PREFIXES variables and the shared compilation
  cache of runner.trainer_environment."""
  forwarded = {k: v for k, v in os.environ.items()
               if k.startswith(FORWARDED_PREFIXES)}
  return runner.trainer_environment(root, base=forwarded)


def resources(nodes: Sequence[Dict[str, Any]], options: Options):
  """(CPUs, GPUs) a run asks for, and how many runs fit at once.

  Args:
    nodes: ray.nodes().

  Raises:
    SetupError: the cluster has no GPU for --gpus_per_run, or no node fits
      one run.
  """
  alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
  total_gpus = sum(r.get("GPU", 0) for r in alive)
  gpus = options.gpus_per_run
  if gpus is None:
    gpus = 1 if total_gpus else 0
  if gpus and not total_gpus:
    raise SetupError(f"--gpus_per_run={options.gpus_per_run:g}, but the Ray "
                     "cluster has no GPUs")
  cpus = options.cpus_per_run

  def fits(r):
    return min(int(r.get("CPU", 0) // cpus) if cpus else 1 << 30,
               int(r.get("GPU", 0) // gpus) if gpus else 1 << 30)
  slots = sum(fits(r) for r in alive)
  if not slots:
    biggest = max(((r.get("CPU", 0), r.get("GPU", 0)) for r in alive),
                  default=(0, 0))
    raise SetupError(f"a run asks for {cpus:g} CPUs and {gpus:g} GPUs, but "
                     f"the largest node has {biggest[0]:g} CPUs and "
                     f"{biggest[1]:g} GPUs")
  return cpus, gpus, slots


def run_all(s: study_lib.Study, root: str, extra_args: Sequence[str] = (),
            options: Options = Options()) -> None:
  """Runs or skips every (variant, seed), several at once, through Ray.

  Raises:
    SetupError: see import_ray, connect and resources.
    runner.Preempted: this driver got SIGINT or SIGTERM; the trainers have
      checkpointed.
    runner.RunFailed: a run failed for good; the others ran to the end.
  """
  runner.check_extra_args(s, extra_args)
  ray = import_ray(options.address)
  began = time.monotonic()
  connect(ray, options.address)
  try:
    cpus, gpus, slots = resources(ray.nodes(), options)
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    print(f"Ray: {'connected' if options.address else 'local instance started'}"
          f" in {time.monotonic() - began:.1f} s; {nodes} node(s); a run "
          f"takes {cpus:g} CPU(s) and {gpus:g} GPU(s); up to {slots} at once",
          flush=True)
    runs = []
    for i, (label, variant, seed, run_dir) in enumerate(runner.runs(s, root)):
      if runner.is_finished(run_dir):
        print(f"{label}: skipped (finished)", flush=True)
      else:
        runs.append((i % len(s.seeds), i, _Run(label, run_dir, runner.command(
            s, variant, seed, run_dir, extra_args))))
    # The first seed of every variant first: the later seeds then find their
    # variant's compiled steps in the shared cache, as they do run by run.
    runs = [run for _, _, run in sorted(runs, key=lambda r: r[:2])]
    _Driver(ray, runs, cpus, gpus, slots, options.max_retries,
            trainer_env_vars(root)).run()
  finally:
    ray.shutdown()


class _Driver:
  """Submits the runs, follows their tasks' events, retries, stops."""

  def __init__(self, ray, runs: List[_Run], cpus: float, gpus: float,
               slots: int, max_retries: int, env_vars: Dict[str, str]):
    self.ray, self.runs, self.max_retries = ray, runs, max_retries
    self.env_vars = env_vars
    self.task = ray.remote(ray_task.attempt).options(
        num_cpus=cpus, num_gpus=gpus, max_retries=0,
        num_returns="streaming")
    self.board = progress.Board(len(runs), slots)
    self.pending: Dict[Any, _Run] = {}  # the task's generator -> its run
    self.failures: List[str] = []
    self.signals: List[int] = []

  def run(self) -> None:
    previous = {sig: signal.signal(sig, self._note)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
      for run in self.runs:
        self._submit(run)
      while self.pending and not self.signals:
        self._step()
      if self.signals:
        self._stop()
    finally:
      for sig, handler in previous.items():
        signal.signal(sig, handler)
    print(self.board.summary(), flush=True)
    if self.failures:
      raise runner.RunFailed(f"{len(self.failures)} run(s) failed: " +
                             ", ".join(self.failures))

  def _note(self, signum, frame):
    del frame
    self.signals.append(signum)

  def _submit(self, run: _Run) -> None:
    run.started = False
    self.board.queued(run.label)
    self.pending[self.task.remote(run.argv, run.run_dir, self.env_vars,
                                  run.retries > 0)] = run

  def _step(self) -> None:
    ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=0.5)
    for generator in ready:
      run = self.pending[generator]
      try:
        event = self.ray.get(next(generator))
      except StopIteration:
        del self.pending[generator]
      except self.ray.exceptions.RayTaskError as e:  # this task's own error
        del self.pending[generator]
        self.board.lost(run.label)
        self._fail(run, f"{run.label}: its Ray task failed: {e}")
      except self.ray.exceptions.RayError as e:  # its worker or node died
        del self.pending[generator]
        seconds = self.board.lost(run.label)
        if run.started:  # its wall time, as the driver saw it
          runner.add_wall_time(run.run_dir, seconds)
        self._retry(run, f"its Ray worker or node died ({type(e).__name__})")
      else:
        if event["event"] != "started":
          del self.pending[generator]
        self._handle(run, event)

  def _handle(self, run: _Run, event: Dict[str, Any]) -> None:
    if event["event"] == "started":
      run.started = True
      self.board.started(run.label, event["node"], event["ip"],
                         event["time"])
    elif event["event"] == "locked":
      self.board.lost(run.label)
      self._fail(run, f"{run.label}: not started again: its workdir "
                 f"{run.run_dir} is still locked by {event['holder']}")
    else:
      self._ended(run, event)

  def _ended(self, run: _Run, event: Dict[str, Any]) -> None:
    code = event["code"]
    finished = runner.is_finished(run.run_dir) if code == 0 else None
    self.board.ended(run.label, event["seconds"], event["time"], finished)
    if code == 0:
      return
    if code == runner.PREEMPTED_EXIT_CODE or code < 0 or code > 128:
      self._retry(run, f"its trainer {_describe(code)}")
    else:
      self._fail(run, runner.failure(run.label, code, run.run_dir))

  def _retry(self, run: _Run, why: str) -> None:
    if run.retries >= self.max_retries:
      self._fail(run, f"{run.label}: {why}; not retried again (retried "
                 f"{run.retries} times, --max_retries={self.max_retries}); "
                 f"workdir {run.run_dir}")
      return
    run.retries += 1
    self.board.retried(run.label, why, run.retries, self.max_retries)
    self._submit(run)

  def _fail(self, run: _Run, message: str) -> None:
    self.failures.append(f"{run.label} ({run.run_dir})")
    self.board.gave_up(run.label, message)

  def _stop(self) -> None:
    """Cancels every task; waits until their trainers have exited."""
    name = signal.Signals(self.signals[0]).name
    running = sum(run.started for run in self.pending.values())
    print(f"{name}: stopping; SIGTERM to {running} running trainer(s), "
          "which checkpoint and exit 75 (a second signal stops them at once)",
          flush=True)
    cancels = 0
    while self.pending:
      if len(self.signals) > cancels:  # each signal: ray.cancel, so SIGTERM
        cancels = len(self.signals)
        for generator in self.pending:
          self.ray.cancel(generator)
      ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=0.5)
      for generator in ready:
        run = self.pending[generator]
        try:
          event = self.ray.get(next(generator))
        except (StopIteration, self.ray.exceptions.RayError):
          event = {"event": "cancelled"}
        if event["event"] == "started":  # it began as the stop did
          run.started = True
          self.board.started(run.label, event["node"], event["ip"],
                             event["time"])
          continue
        del self.pending[generator]
        if event["event"] == "ended" and event["code"] == 0:
          self.board.ended(run.label, event["seconds"], event["time"],
                           runner.is_finished(run.run_dir))
        else:
          self.board.stopped(run.label, runner.is_finished(run.run_dir))
    raise runner.Preempted(
        f"{name}: the running trainers were sent SIGTERM and have exited; "
        "rerun the same command to continue" +
        (f" ({len(self.failures)} run(s) had failed)" if self.failures else ""))


def _describe(code: int) -> str:
  if code == runner.PREEMPTED_EXIT_CODE:
    return "was preempted (exit 75)"
  signum = -code if code < 0 else code - 128
  try:
    name = signal.Signals(signum).name
  except ValueError:
    name = f"signal {signum}"
  return f"was killed by {name}" + (f" (exit {code})" if code > 0 else "")
