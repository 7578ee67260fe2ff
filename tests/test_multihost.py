"""Multi-host training on one machine: two processes joined by
`jax.distributed` over localhost (CPU collectives over gloo), one CPU device
each, train like one process with two devices: same metrics, one writer,
checkpoints that both processes wrote and a resume that continues them."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import ROOT

STEPS = ["--config.train.num_steps=20", "--config.train.log_every=5",
         "--config.train.eval_every=10", "--config.train.checkpoint_every=10"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(workdir, tfds_dir, *extra):
  return [sys.executable, "-m", "seq2seq_jax.train", "--config=configs/smoke.py",
          f"--workdir={workdir}", f"--config.data.tfds_data_dir={tfds_dir}",
          *STEPS, *extra]


def _env(devices: int):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return env


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def _run_two_processes(workdir, tfds_dir, *extra, timeout=300):
  """Runs both processes to the end; on a timeout kills both (never leaves
  them running) and fails with the tail of each one's log."""
  port = _free_port()
  logs = [tempfile.TemporaryFile() for _ in range(2)]
  processes = [subprocess.Popen(
      _command(workdir, tfds_dir, "--distributed=explicit",
               f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
               f"--process_id={i}", *extra),
      cwd=ROOT, env=_env(1), stdout=subprocess.DEVNULL, stderr=log)
               for i, log in enumerate(logs)]
  deadline = time.monotonic() + timeout
  try:
    for p in processes:
      p.wait(timeout=max(deadline - time.monotonic(), 1))
  except subprocess.TimeoutExpired:
    pass
  finally:
    hung = [i for i, p in enumerate(processes) if p.poll() is None]
    for p in processes:
      if p.poll() is None:
        p.kill()
        p.wait()
  texts = []
  for log in logs:
    log.seek(0)
    texts.append(log.read().decode(errors="replace"))
    log.close()
  assert not hung, (f"processes {hung} still running after {timeout} s; "
                    "killed. Logs:\n" + "\n---\n".join(t[-3000:] for t in texts))
  for p, text in zip(processes, texts):
    assert p.returncode == 0, text[-4000:]
  return texts


@pytest.mark.slow
def test_two_processes_train_like_two_devices(tmp_path, tfds_dir):
  # The reference (also builds the dataset, so the two processes only read it).
  reference = subprocess.run(_command(tmp_path / "one", tfds_dir), cwd=ROOT,
                             env=_env(2), capture_output=True, timeout=600,
                             check=False)
  assert reference.returncode == 0, reference.stderr.decode()[-3000:]

  # Two processes, stopped after 10 steps and resumed: the resume restores
  # the checkpoint both wrote.
  logs = _run_two_processes(tmp_path / "two", tfds_dir,
                            "--config.train.max_steps_per_run=10")
  assert "process 0 of 2" in logs[0] and "process 1 of 2" in logs[1]
  _run_two_processes(tmp_path / "two", tfds_dir)

  want, got = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
  # One writer: every line once, the same lines as the reference.
  assert [(r["step"], r["split"]) for r in got] == [
      (r["step"], r["split"]) for r in want]
  for a, b in zip(want, got):
    for key in ("loss", "token_accuracy", "perplexity"):
      assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a, b)
  assert sorted(os.listdir(tmp_path / "two" / "checkpoints")) == ["10", "20"]
