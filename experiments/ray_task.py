"""One attempt of one (variant, seed) run, as a Ray task on whichever node.

The task runs the run's unchanged trainer command as a child process (one
JAX process per run), in the repo root, with its output appended to the
run's train.log and its wall time added to wall_time.json, as the local
runner does (runner.start, runner.add_wall_time). It is a streaming
generator: it yields a "started" event (node, pid) as soon as the trainer
runs and an "ended" event (exit code, seconds) when it has exited.

It polls the trainer instead of blocking in Popen.wait(): `ray.cancel`
raises KeyboardInterrupt in the task only between Python bytecodes. On that
interrupt the task sends the trainer SIGTERM, and waits while it checkpoints
and exits 75; another interrupt sends another SIGTERM, on which the trainer
exits at once (seq2seq_jax/training/preemption.py).

Two attempts of a run never run at once. The trainer dies with the task's
worker process: it starts with PR_SET_PDEATHSIG=SIGKILL (Linux), and Ray
kills a dead worker's process group a second later anyway. A retry starts
its trainer only once the trainer of the attempt before has let go of the
workdir's lock, the `flock` that the trainer holds for its whole life
(seq2seq_jax/training/workdir.py `lock`).

Ray's worker processes import this module and stay up between tasks, so it
imports neither JAX nor the trainer.
"""
import ctypes
import fcntl
import functools
import os
import signal
import sys
import time
from typing import Any, Dict, Iterator, List, Optional

from experiments import runner

POLL_SECONDS = 0.2
# seq2seq_jax.training.workdir.LOCK_FILE (importing it would load JAX into
# every Ray worker); tests/test_ray_executor.py checks that they agree.
TRAINER_LOCK_FILE = ".lock"
# How long a retry waits for the attempt before it to let go of the lock:
# the trainer's graceful stop may take 300 s (preemption.DEFAULT_GRACE_SECONDS).
LOCK_WAIT_SECONDS = 330.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = (ctypes.CDLL(None, use_errno=True)
         if sys.platform.startswith("linux") else None)


def attempt(argv: List[str], run_dir: str, env_vars: Dict[str, str],
            retry: bool) -> Iterator[Dict[str, Any]]:
  """Runs the trainer once; the body of the Ray task (a generator).

  Args:
    argv: the trainer command, runner.command(...).
    run_dir: the run's workdir, on a disk every node shares.
    env_vars: the driver's variables for the trainer (trainer_environment).
    retry: whether an earlier attempt of this run may still hold its lock.

  Yields:
    {"event": "locked", "holder": ...} if the lock stayed taken for
    LOCK_WAIT_SECONDS (and no trainer was started); else
    {"event": "started", "node", "ip", "pid", "time"}, then
    {"event": "ended", "code", "seconds", "time"}; "time" is time.time()
    after the trainer started and after its wall time was recorded.
  """
  import ray  # pylint: disable=g-import-not-at-top  # in a Ray worker
  # ray.cancel interrupts a task through Python's SIGINT handler, which a
  # worker lacks where SIGINT was ignored when Ray started (a driver, or a
  # `ray start`, run in the background by a shell): restore it.
  if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
    signal.signal(signal.SIGINT, signal.default_int_handler)
  if retry:
    holder = wait_for_unlock(run_dir, LOCK_WAIT_SECONDS)
    if holder is not None:
      yield {"event": "locked", "holder": holder}
      return
  start_time = time.perf_counter()
  process = runner.start(argv, run_dir, trainer_environment(env_vars),
                         functools.partial(_in_child, os.getpid()))
  try:
    yield {"event": "started", "node": ray.get_runtime_context().get_node_id(),
           "ip": ray.util.get_node_ip_address(), "pid": process.pid,
           "time": time.time()}
    code = _wait(process)
  except KeyboardInterrupt:  # ray.cancel: the driver is stopping
    _stop(process)
    raise
  finally:
    if process.poll() is None:  # an error of this task's own: no orphan
      process.kill()
      process.wait()
    seconds = time.perf_counter() - start_time
    runner.add_wall_time(run_dir, seconds)
  yield {"event": "ended", "code": code, "seconds": seconds,
         "time": time.time()}


def trainer_environment(env_vars: Dict[str, str]) -> Dict[str, str]:
  """This worker's environment, less the OMP_NUM_THREADS that Ray sets for
  a task (1 for a one-CPU task), plus ENV_VARS from the driver.

  Under OMP_NUM_THREADS=1 a trainer's float results change in their last
  digits on the CPU (its train_loss and grad_norm, measured), so its
  metrics.jsonl would not be the local executor's; a value set in the
  driver's environment comes in ENV_VARS.
  """
  env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
  env.update(env_vars)
  return env


def wait_for_unlock(run_dir: str, timeout: float) -> Optional[str]:
  """Waits until no process holds RUN_DIR's trainer lock.

  Returns:
    None once it is free (or absent); what the holder wrote in it if it is
    still held after `timeout` seconds.
  """
  path = os.path.join(run_dir, TRAINER_LOCK_FILE)
  if not os.path.exists(path):
    return None
  deadline = time.monotonic() + timeout
  # Opened for writing: on NFS an exclusive flock needs a writable file.
  with open(path, "a+", encoding="utf-8", errors="replace") as f:
    while True:
      try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        if time.monotonic() >= deadline:
          f.seek(0)
          return f.read().strip() or "a process that has not said who it is"
        time.sleep(1.0)
        continue
      fcntl.flock(f, fcntl.LOCK_UN)
      return None


def _wait(process) -> int:
  while process.poll() is None:
    time.sleep(POLL_SECONDS)
  return process.returncode


def _stop(process) -> None:
  """SIGTERM, then waits for the trainer to exit; each further interrupt
  sends SIGTERM again."""
  while True:
    try:
      if process.poll() is None:
        process.send_signal(signal.SIGTERM)
      _wait(process)
      return
    except KeyboardInterrupt:
      continue


def _in_child(parent_pid: int) -> None:
  """Between fork and exec of the trainer."""
  # Ray's processes block SIGINT, and a child inherits the mask; the trainer
  # handles SIGINT like SIGTERM, as it does when it runs on its own.
  signal.pthread_sigmask(signal.SIG_SETMASK, [])
  if _LIBC is not None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the worker died before prctl
      os._exit(1)  # pylint: disable=protected-access
