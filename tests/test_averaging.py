"""Checkpoint averaging: the mean of the chosen checkpoints' parameters,
written as DIR/average/ and decoded with --checkpoint=average."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from seq2seq_jax.inference import averaging
from seq2seq_jax.inference import trained_run
from seq2seq_jax.training import checkpointing
from seq2seq_jax.training import loop
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tfds_dir):
  from configs import smoke  # pylint: disable=g-import-not-at-top
  config = smoke.get_config()
  config.data.tfds_data_dir = tfds_dir
  config.train.num_steps = 30
  config.train.checkpoint_every = 10
  config.train.eval_every = 30
  config.train.keep_checkpoints = 3
  path = str(tmp_path_factory.mktemp("avg") / "run")
  loop.train_and_evaluate(config, path)
  return path


def test_choose_steps():
  assert averaging.choose_steps([10, 20, 30], 2, []) == [20, 30]
  assert averaging.choose_steps([10, 20, 30], 0, [30, 10]) == [10, 30]
  with pytest.raises(ValueError, match="keeps 3 checkpoints"):
    averaging.choose_steps([10, 20, 30], 5, [])
  with pytest.raises(ValueError, match=r"no checkpoint for steps \[7\]"):
    averaging.choose_steps([10, 20, 30], 0, [7, 10])


@pytest.mark.slow
def test_average_is_the_mean_and_decodes(workdir):
  assert averaging.average(workdir, last=3) == [
      os.path.join(workdir, "checkpoints", str(step)) for step in (10, 20, 30)]
  _, _, _, _, template = trained_run.run_template(workdir)
  series = checkpointing.Checkpointer(workdir, 3)
  params = [series.restore(step, template)[0].params for step in (10, 20, 30)]
  series.close()
  run = trained_run.load_run(workdir, "average")
  assert run.step == 30
  for got, *each in zip(jax.tree.leaves(run.state.params),
                        *[jax.tree.leaves(p) for p in params]):
    np.testing.assert_allclose(np.asarray(got), np.mean(each, axis=0),
                               rtol=1e-6, atol=1e-7)
  # Not any one checkpoint: the average differs from the newest.
  newest = trained_run.load_run(workdir, "latest")
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(run.state.params), jax.tree.leaves(newest.state.params)))
  (translation,), = trained_run.translate(run, ["12+34"])
  assert isinstance(translation, str)


@pytest.mark.slow
def test_average_command_line(workdir, tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.average", f"--workdir={workdir}",
       "--steps=20,30"], cwd=ROOT, capture_output=True, text=True,
      timeout=180, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "averaged 2 checkpoints" in result.stdout
  assert os.path.join(workdir, "checkpoints", "30") in result.stdout
  bad = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.average", f"--workdir={workdir}",
       "--last=9"], cwd=ROOT, capture_output=True, text=True, timeout=180,
      check=False)
  assert bad.returncode == 2 and "Traceback" not in bad.stderr
  assert "error: --last=9 but the run keeps 3" in bad.stderr
  empty = str(tmp_path / "none")
  os.makedirs(empty)
  with pytest.raises(Exception, match="config.json"):
    trained_run.load_run(empty, "average")
  assert os.listdir(empty) == []  # loading created nothing


def _smoke_run(tfds_dir, path, **model):
  from configs import smoke  # pylint: disable=g-import-not-at-top
  config = smoke.get_config()
  config.data.tfds_data_dir = tfds_dir
  config.train.num_steps = 10
  config.train.checkpoint_every = 10
  config.train.eval_every = 10
  config.seed = 7
  for key, value in model.items():
    config.model[key] = value
  loop.train_and_evaluate(config, path)
  return path


@pytest.mark.slow
def test_checkpoints_of_other_runs_average_and_other_models_are_refused(
    workdir, tfds_dir, tmp_path):
  other = _smoke_run(tfds_dir, str(tmp_path / "seed7"))
  mine = os.path.join(workdir, "checkpoints", "30")
  theirs = os.path.join(other, "checkpoints", "10")
  averaging.average(workdir, paths=[mine, theirs])
  average = trained_run.load_run(workdir, "average")
  one = trained_run.load_run(workdir, mine)  # --checkpoint=PATH
  two = trained_run.load_run(workdir, theirs)
  assert one.step == 30 and two.step == 10 and average.step == 30
  for got, a, b in zip(*(jax.tree.leaves(r.state.params)
                         for r in (average, one, two))):
    np.testing.assert_allclose(np.asarray(got), (np.asarray(a) + b) / 2,
                               rtol=1e-6, atol=1e-7)
  wider = _smoke_run(tfds_dir, str(tmp_path / "wider"), hidden_size=40)
  wrong = os.path.join(wider, "checkpoints", "10")
  with pytest.raises(checkpointing.CheckpointError) as error:
    averaging.average(workdir, paths=[mine, wrong])
  assert str(error.value).startswith(f"{wrong}: parameter [")
  assert "a checkpoint of another model" in str(error.value)
  result = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.evaluate", f"--workdir={workdir}",
       f"--checkpoint={wrong}"], cwd=ROOT, capture_output=True, text=True,
      timeout=180, check=False)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert f"error: {wrong}" in result.stderr
  result = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.average", f"--workdir={workdir}",
       f"--checkpoints={mine},{tmp_path}"], cwd=ROOT, capture_output=True,
      text=True, timeout=180, check=False)
  assert result.returncode == 2 and "is not a checkpoint" in result.stderr
