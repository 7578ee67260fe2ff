"""The command-line entry points: one-line errors for user mistakes, quiet
logs that end by saying where the results are."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _run(module, *args, cwd=ROOT, timeout=180):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd,
                        capture_output=True, text=True, timeout=timeout,
                        check=False)


def _assert_one_line_error(result, *fragments):
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines()
            if line.startswith("error: ")]
  assert len(errors) == 1, result.stderr[-3000:]
  for fragment in fragments:
    assert fragment in errors[0], errors[0]


@pytest.mark.parametrize("args,fragments", [
    (["--config=configs/smoke.py", "--config.model.celll=gru"],
     ["--config.model.celll", "no such config key 'celll'",
      "did you mean 'cell'?"]),
    (["--config=configs/no_such_config.py"],
     ["--config=configs/no_such_config.py: no such file"]),
    (["--config=requirements.txt"],
     ["--config=requirements.txt: not a Python config file"]),
    (["--config=configs/__init__.py"], ["defines no get_config()"]),
    (["--config=configs/smoke.py", "--config.train.num_steps=many"],
     ["--config.train.num_steps=many"]),
    (["--config=configs/smoke.py", "--config.data.task=tsv",
      "--config.data.path=/no/such/file.txt"],
     ["config.data.path: '/no/such/file.txt' does not exist"]),
])
def test_user_mistakes_are_one_line_not_a_traceback(tmp_path, args, fragments):
  result = _run("seq2seq_jax.train", *args, f"--workdir={tmp_path}/run")
  _assert_one_line_error(result, *fragments)


def test_traceback_flag_shows_the_traceback(tmp_path):
  result = _run("seq2seq_jax.train", "--config=configs/smoke.py",
                "--config.model.cell=banana", f"--workdir={tmp_path}/run",
                "--traceback")
  assert result.returncode == 2
  assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_a_file_with_no_usable_pairs_is_one_line(tmp_path, tfds_dir):
  path = tmp_path / "pairs.txt"
  path.write_text("no tab here\nnor here\n", encoding="utf-8")
  result = _run("seq2seq_jax.train", "--config=configs/eng_fra_tutorial.py",
                f"--config.data.path={path}", "--config.data.preset=none",
                f"--config.data.tfds_data_dir={tfds_dir}",
                f"--workdir={tmp_path}/run")
  _assert_one_line_error(result, "no usable pairs", "no tab 2")


def test_evaluate_and_translate_errors_are_one_line(tmp_path):
  for module in ("seq2seq_jax.evaluate", "seq2seq_jax.translate"):
    result = _run(module, f"--workdir={tmp_path}/nothing", "a sentence")
    _assert_one_line_error(result, "config.json not found", "a seq2seq_jax workdir?")


@pytest.mark.slow
def test_a_run_log_is_quiet_and_ends_with_where_the_results_are(tmp_path,
                                                                tfds_dir):
  workdir = tmp_path / "run"
  result = _run("seq2seq_jax.train", "--config=configs/smoke.py",
                f"--config.data.tfds_data_dir={tfds_dir}",
                "--config.train.num_steps=10", "--config.train.eval_every=10",
                f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-3000:]
  log = result.stderr
  assert "Unable to initialize backend" not in log
  assert "Using custom data configuration" not in log
  assert "\x1b[" not in log and "\r" not in log  # no progress-bar codes
  last = log.strip().splitlines()[-1]
  assert "training done" in last and f"{workdir}/metrics.jsonl" in last
  assert f"--workdir={workdir}" in last
  # Run again: it says the run is complete instead of "resumed".
  again = _run("seq2seq_jax.train", "--config=configs/smoke.py",
               f"--config.data.tfds_data_dir={tfds_dir}",
               "--config.train.num_steps=10", "--config.train.eval_every=10",
               f"--workdir={workdir}")
  assert again.returncode == 0, again.stderr[-3000:]
  assert "is complete: trained to step 10" in again.stderr
  assert "resumed from step" not in again.stderr


@pytest.mark.slow
def test_commands_run_from_outside_the_repository(tmp_path, tfds_dir):
  config = os.path.join(ROOT, "configs", "smoke.py")
  result = _run("seq2seq_jax.train", f"--config={config}",
                f"--config.data.tfds_data_dir={tfds_dir}",
                "--config.train.num_steps=5", "--config.train.eval_every=5",
                f"--workdir={tmp_path}/run", cwd=tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  result = _run("seq2seq_jax.translate", f"--workdir={tmp_path}/run", "1+2",
                cwd=tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]


def test_the_commands_start_without_importing_pytorch_or_scipy_graphs():
  """tensorboardX would import PyTorch where it is installed (2.7 s of each
  start), and only a preparation needs scipy's graph routines (0.5 s); a
  later `import torch` still works."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  code = ("import sys, seq2seq_jax.train; "
          "print(sorted(m for m in ('torch', 'scipy.sparse.csgraph') "
          "if m in sys.modules))")
  expected = ["[]"]
  if importlib.util.find_spec("torch") is not None:
    code += ("; import torch, tensorboardX; "
             "print(tensorboardX.SummaryWriter is not None, torch.ones(1).item())")
    expected.append("True 1.0")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines() == expected, result.stdout
