"""A stop signal: the loop sees the first; a stuck process still ends."""
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT

# A process that takes SIGTERM as a request to stop, then blocks where a
# Python signal handler cannot help (as in a barrier whose peer is gone).
_STUCK = """
import os, signal, sys, threading
from seq2seq_jax.training import preemption
with preemption.StopSignal(grace_seconds={grace}) as stop:
  print("ready", flush=True)
  threading.Event().wait()
"""


def _start(grace):
  process = subprocess.Popen([sys.executable, "-c", _STUCK.format(grace=grace)],
                             cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  assert process.stdout.readline().strip() == "ready"
  return process


def test_a_second_signal_ends_a_stuck_process_at_once():
  process = _start(grace=600)
  process.send_signal(signal.SIGTERM)
  time.sleep(0.5)
  assert process.poll() is None  # the first one only asks to stop
  start = time.monotonic()
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=30)
  assert time.monotonic() - start < 10
  assert process.returncode == 128 + signal.SIGTERM
  assert "second stop signal" in stderr


def test_a_stuck_graceful_stop_ends_after_the_grace_period():
  process = _start(grace=2)
  start = time.monotonic()
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=60)
  assert 1.5 < time.monotonic() - start < 30
  assert process.returncode == 128 + signal.SIGINT
  assert "graceful stop took longer than 2 s" in stderr


def test_the_loop_sees_the_first_signal():
  from seq2seq_jax.training import preemption  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  before = signal.getsignal(signal.SIGTERM)
  with preemption.StopSignal() as stop:
    assert stop.received is None
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.1)
    assert stop.received == signal.SIGTERM
  assert signal.getsignal(signal.SIGTERM) is before  # restored
