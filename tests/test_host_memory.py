"""host_memory: XLA:CPU's per-run buffers stay in the process between runs.

The observable is the number of minor page faults per run of a jitted
function with a 64 MB intermediate: with glibc's defaults every run maps
that buffer afresh and faults each of its 16,384 pages in; with the
"keep" settings the second and later runs reuse it. Each mode runs in its
own interpreter (the settings are process-wide and must precede JAX's
threads); so does the train command, which applies them.
"""
import os
import platform
import subprocess
import sys

import pytest

from seq2seq_jax import host_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = r"""
import resource
from seq2seq_jax import host_memory
applied = host_memory.configure()
import jax, jax.numpy as jnp

@jax.jit
def f(x, w, v):
  return jnp.sum((x @ w) @ v)  # x @ w: a [16384, 1024] float32 temporary

x = jnp.ones((16384, 64)); w = jnp.ones((64, 1024)); v = jnp.ones((1024, 4))
for _ in range(2):
  jax.block_until_ready(f(x, w, v))
runs = 4
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(runs):
  jax.block_until_ready(f(x, w, v))
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(applied, (after - before) / runs)
"""


def _faults_per_run(mode):
  env = dict(os.environ, **{host_memory.ENV_VAR: mode})
  out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env,
                       capture_output=True, text=True, check=True).stdout
  applied, faults = out.split()
  return applied == "True", float(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="the settings are glibc's (mallopt)")
def test_keep_reuses_the_runs_buffers_and_default_does_not():
  applied, faults = _faults_per_run("keep")
  assert applied
  assert faults < 1_000, faults
  applied, faults = _faults_per_run("default")
  assert not applied
  assert faults > 10_000, faults  # why the settings exist: 16,384 pages


def test_default_unless_asked_and_an_unknown_mode_is_an_error(monkeypatch):
  monkeypatch.delenv(host_memory.ENV_VAR, raising=False)
  assert host_memory.requested_mode() == "default"
  assert not host_memory.configure()
  monkeypatch.setenv(host_memory.ENV_VAR, "fast")
  with pytest.raises(ValueError, match="valid values are keep, default"):
    host_memory.requested_mode()


def test_the_train_command_refuses_an_unknown_mode_in_one_line(tmp_path):
  env = dict(os.environ, **{host_memory.ENV_VAR: "fast"})
  result = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.train", "--config=configs/smoke.py",
       f"--workdir={tmp_path}/run"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert f"{host_memory.ENV_VAR}='fast'" in result.stderr
  assert "valid values are keep, default" in result.stderr
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="the settings are glibc's (mallopt)")
def test_the_train_command_keeps_host_memory_and_says_so(tmp_path):
  env = dict(os.environ, **{host_memory.ENV_VAR: "keep"})
  result = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.train", "--config=configs/smoke.py",
       "--config.train.num_steps=2", "--config.train.eval_every=2",
       "--config.train.checkpoint_every=2", f"--workdir={tmp_path}/run"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "host memory: freed buffers kept for reuse" in result.stderr


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="the settings are glibc's (mallopt)")
def test_the_ab_benchmark_reports_both_ratios():
  from benchmarks import host_memory_ab  # pylint: disable=g-import-not-at-top
  result = host_memory_ab.compare(["lstm_h512"], rounds=2, repeats=1,
                                  tiny=True)
  speed, compile_ratio = result["lstm_h512"]
  assert speed > 0 and compile_ratio > 0
