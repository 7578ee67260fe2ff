"""Fault injection: SIGKILL a real training process at several points,
including in the middle of writing a checkpoint, and resume each time.

The run that was killed three times must end exactly where an uninterrupted
run ends: identical final parameters (bit for bit, CPU) and metrics lines.
"""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from seq2seq_jax.training import reporting
from tests.conftest import ROOT

NUM_STEPS = 120
CHECKPOINT_EVERY = 40


def _args(tfds_dir, workdir):
  return [sys.executable, "-m", "seq2seq_jax.train", "--config=configs/smoke.py",
          f"--workdir={workdir}", f"--config.data.tfds_data_dir={tfds_dir}",
          f"--config.train.num_steps={NUM_STEPS}",
          "--config.train.log_every=5",
          f"--config.train.eval_every={NUM_STEPS}",
          f"--config.train.checkpoint_every={CHECKPOINT_EVERY}"]


def _finished_checkpoints(workdir):
  directory = workdir / "checkpoints"
  if not directory.exists():
    return []
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _logged_steps(workdir):
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return []
  steps = []
  for line in path.read_text().splitlines():
    try:
      steps.append(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError):
      pass  # a line being written
  return steps


def _kill_when_logged(args, workdir, step, resumes_from=0):
  """Starts training and SIGKILLs it once the log line of `step` is written.

  Lines left by an earlier killed run are ignored: first the restarted run
  must have cut the log back to its checkpoint (`resumes_from`).
  """
  process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
  deadline = time.time() + 300
  truncated = False
  while time.time() < deadline and process.poll() is None:
    logged = _logged_steps(workdir)
    truncated = truncated or max(logged, default=0) <= resumes_from
    if truncated and any(s >= step for s in logged):
      break
    time.sleep(0.005)
  assert process.poll() is None, "training ended before it could be killed"
  process.send_signal(signal.SIGKILL)
  process.communicate(timeout=60)
  assert process.returncode == -signal.SIGKILL


def _final_state(workdir):
  path = workdir / "checkpoints" / str(NUM_STEPS) / "state"
  return ocp.StandardCheckpointer().restore(str(path))


def _records(workdir):
  return [json.dumps(r, sort_keys=True) for r in reporting.read(str(workdir))]


@pytest.mark.slow
def test_sigkill_at_any_point_resumes_to_the_uninterrupted_result(
    tmp_path, tfds_dir):
  straight = tmp_path / "straight"
  subprocess.run(_args(tfds_dir, straight), cwd=ROOT, check=True,
                 capture_output=True, timeout=600)

  workdir = tmp_path / "killed"
  args = _args(tfds_dir, workdir)
  # 1. Killed before its first checkpoint: the rerun starts from step 0.
  _kill_when_logged(args, workdir, 10)
  assert _finished_checkpoints(workdir) == []
  # 2. Killed while writing the checkpoint of step 80 (the files are partial).
  killing = [sys.executable, "-m", "tests.kill_during_save", "80"] + args[3:]
  killed = subprocess.run(killing, cwd=ROOT, capture_output=True, timeout=600)
  assert killed.returncode == -signal.SIGKILL
  assert _finished_checkpoints(workdir) == [40]
  assert any(name.startswith("80.") for name in
             os.listdir(workdir / "checkpoints")), "no partial step-80 write"
  # 3. Killed between checkpoints, after resuming from step 40.
  _kill_when_logged(args, workdir, 45, resumes_from=40)
  assert _finished_checkpoints(workdir) == [40]
  assert max(_logged_steps(workdir)) < 80
  # 4. Runs to the end.
  subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=600)

  assert _records(workdir) == _records(straight)  # no duplicated/missing steps
  final, reference = _final_state(workdir), _final_state(straight)
  final_leaves = jax.tree.leaves(final)
  reference_leaves = jax.tree.leaves(reference)
  assert len(final_leaves) == len(reference_leaves) > 0
  for got, want in zip(final_leaves, reference_leaves):
    np.testing.assert_array_equal(got, want)

