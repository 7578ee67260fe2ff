"""Data parallelism: 4 CPU devices give the same training as 1."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = """
import json, sys
import jax
from configs import smoke
from seq2seq_jax.training import loop, reporting
config = smoke.get_config()
config.data.tfds_data_dir = sys.argv[2]
config.train.num_steps = 20
config.train.log_every = 5
config.train.eval_every = 20
print("DEVICES", jax.device_count())
loop.train_and_evaluate(config, sys.argv[1])
"""


def _run(workdir, tfds_dir, devices):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  result = subprocess.run([sys.executable, "-c", SCRIPT, str(workdir), tfds_dir],
                          cwd=ROOT, env=env, capture_output=True, timeout=600,
                          check=False)
  assert result.returncode == 0, result.stderr.decode()[-3000:]
  assert f"DEVICES {devices}" in result.stdout.decode()
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


@pytest.mark.slow
def test_four_devices_train_like_one(tmp_path, tfds_dir):
  one = _run(tmp_path / "one", tfds_dir, 1)
  four = _run(tmp_path / "four", tfds_dir, 4)
  assert [(r["step"], r["split"]) for r in one] == [
      (r["step"], r["split"]) for r in four]
  for a, b in zip(one, four):
    for key in ("loss", "token_accuracy", "perplexity"):
      assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a, b)
