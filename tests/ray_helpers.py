"""Process helpers for tests/test_ray_executor.py: a study driver in a
subprocess, the trainers and Ray processes it leaves, their signals and
sockets."""
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

from experiments import runner
from tests.conftest import ROOT

TRAINER = "seq2seq_jax.train"


def ray_processes():
  """This process's descendants that are Ray's."""
  found = []
  for p in psutil.Process().children(recursive=True):
    try:
      if p.name() in ("raylet", "gcs_server") or p.name().startswith("ray::"):
        found.append((p.pid, p.name()))
    except psutil.NoSuchProcess:
      continue
  return found


def driver(study, root, out, env, tfds_dir, *args):
  """Starts `experiments.run` on the study; returns the Popen (output in
  files beside ROOT, read by finish)."""
  os.makedirs(root, exist_ok=True)
  argv = [sys.executable, "-m", "experiments.run", str(study), f"--root={root}",
          f"--out={out}", *args, f"--config.data.tfds_data_dir={tfds_dir}"]
  with open(f"{root}.out", "w") as stdout, open(f"{root}.err", "w") as stderr:
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=stdout,
                            stderr=stderr)


def finish(process, root, timeout=900):
  """(exit code, stdout, stderr) of the driver. The timeout only catches a
  hang: a study of a few seconds' runs took over 300 s with the tests'
  second worker and a training run beside it on 2 cores."""
  try:
    process.wait(timeout=timeout)
  except subprocess.TimeoutExpired:  # SIGTERM: it stops its trainers
    process.terminate()
    process.wait(timeout=120)
    raise
  with open(f"{root}.out") as stdout, open(f"{root}.err") as stderr:
    return process.returncode, stdout.read(), stderr.read()


def live_trainers(root):
  """The live trainer processes whose workdir is under ROOT, by workdir."""
  found = {}
  for p in psutil.process_iter(["cmdline", "status"]):
    cmdline = p.info["cmdline"] or []
    if TRAINER in cmdline and p.info["status"] != psutil.STATUS_ZOMBIE:
      for arg in cmdline:
        if arg.startswith(f"--workdir={root}{os.sep}"):
          found[arg.split("=", 1)[1]] = p
  return found


class Watch(threading.Thread):
  """Polls ROOT's trainers every 0.1 s: the most alive at once, and `act`
  called with them until it returns True. (A scan takes about 8 ms of CPU;
  a trainer lives for seconds, its imports alone taking 3.)"""

  def __init__(self, root, act=lambda trainers: True):
    super().__init__(daemon=True)
    self.root, self.act = root, act
    self.most, self.acted, self.done = 0, False, threading.Event()

  def run(self):
    while not self.done.is_set():
      trainers = live_trainers(self.root)
      self.most = max(self.most, len(trainers))
      if not self.acted:
        self.acted = bool(self.act(trainers))
      time.sleep(0.1)

  def __enter__(self):
    self.start()
    return self

  def __exit__(self, *exc):
    self.done.set()
    self.join()


def checkpointed(run_dir, step=10):
  return os.path.isdir(os.path.join(run_dir, "checkpoints", str(step)))


def read(path):
  with open(path, encoding="utf-8", errors="replace") as f:
    return f.read()


def starts(run_dir):
  return int(re.search(r'"starts": (\d+)', read(
      os.path.join(run_dir, runner.WALL_FILE))).group(1))


def seconds_until_dead(process, timeout=10.0):
  start = time.monotonic()
  while time.monotonic() - start < timeout:
    try:
      if process.status() == psutil.STATUS_ZOMBIE:
        break
    except psutil.NoSuchProcess:
      break
    time.sleep(0.005)
  return time.monotonic() - start


def pending_signals(pid):
  """The signals pending for process PID (Linux /proc)."""
  status = read(f"/proc/{pid}/status")
  bits = (int(re.search(rf"^{field}:\s*([0-9a-f]+)", status, re.M).group(1), 16)
          for field in ("SigPnd", "ShdPnd"))
  mask = 0
  for b in bits:
    mask |= b
  return {s for s in signal.Signals if mask & (1 << (s - 1))}


def listening(pid):
  """(process name, address) of every TCP socket that PID's descendants
  listen on, and every UDP socket they have bound."""
  found = set()
  for p in psutil.Process(pid).children(recursive=True):
    try:
      name = p.name()
      for c in p.net_connections(kind="inet"):
        if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM
                                              and not c.raddr):
          found.add((name, c.laddr.ip))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
      continue
  return found


def loopback(ip):
  address = ipaddress.ip_address(ip.split("%")[0])
  mapped = getattr(address, "ipv4_mapped", None)
  return (mapped or address).is_loopback
