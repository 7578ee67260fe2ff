"""Training: loss goes down, seeds reproduce, resume equals an uninterrupted run."""
import importlib.metadata
import json
import os

import numpy as np
import orbax.checkpoint as ocp
import pytest

from seq2seq_jax.training import loop
from seq2seq_jax.training import reporting
from seq2seq_jax.training import workdir as workdir_lib


def _run(config, workdir, **train_overrides):
  for key, value in train_overrides.items():
    config.train[key] = value
  return loop.train_and_evaluate(config, str(workdir))


def _final_params(workdir):
  directory = os.path.join(workdir, "checkpoints")
  manager = ocp.CheckpointManager(directory)
  step = manager.latest_step()
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore()))
  manager.close()
  return step, restored["state"]


def _lines(workdir):
  return [json.dumps(r, sort_keys=True) for r in reporting.read(str(workdir))]


def test_loss_decreases_and_outputs_exist(smoke_config, tmp_path):
  results = _run(smoke_config, tmp_path)
  records = reporting.read(str(tmp_path))
  train_losses = [r["loss"] for r in records if r["split"] == "train"]
  assert train_losses[-1] < train_losses[0] - 0.2
  assert {r["split"] for r in records} == {"train", "eval", "test"}
  last_eval = [r for r in records if r["split"] == "eval"][-1]
  assert last_eval["step"] == 40
  for key in ("loss", "perplexity", "token_accuracy", "sequence_accuracy"):
    assert key in last_eval and key in results
  assert os.path.exists(tmp_path / "config.json")
  assert os.path.exists(tmp_path / "vocab_source.json")
  assert os.listdir(tmp_path / "tensorboard")
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["20", "40"]


def test_fixed_seed_gives_identical_metrics(smoke_config, tmp_path):
  smoke_config.train.num_steps = 20
  _run(smoke_config, tmp_path / "a")
  _run(smoke_config, tmp_path / "b")
  assert _lines(tmp_path / "a") == _lines(tmp_path / "b")
  smoke_config.seed = 1
  _run(smoke_config, tmp_path / "c")
  assert _lines(tmp_path / "a") != _lines(tmp_path / "c")


@pytest.mark.parametrize("overrides", [
    {},  # the smoke model
    {"model.cell": "gru", "model.dropout": 0.3, "train.teacher_forcing": 0.5},
    {"train.batch_tokens": 96, "data.pad_multiple": 2},
])
def test_resume_equals_uninterrupted_run(smoke_config, tmp_path, overrides):
  for key, value in overrides.items():
    section, name = key.split(".")
    smoke_config[section][name] = value
  smoke_config.train.num_steps = 30
  smoke_config.train.checkpoint_every = 20  # the interruption is not aligned
  _run(smoke_config, tmp_path / "straight")
  assert _run(smoke_config, tmp_path / "resumed", max_steps_per_run=13) == {}
  assert _final_params(tmp_path / "resumed")[0] == 13
  _run(smoke_config, tmp_path / "resumed", max_steps_per_run=0)
  step_a, state_a = _final_params(tmp_path / "straight")
  step_b, state_b = _final_params(tmp_path / "resumed")
  assert step_a == step_b == 30
  for a, b in zip(jax_leaves(state_a), jax_leaves(state_b)):
    np.testing.assert_array_equal(a, b)
  assert _lines(tmp_path / "straight") == _lines(tmp_path / "resumed")


def jax_leaves(tree):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.leaves(tree)


def test_resume_with_a_different_model_is_refused(smoke_config, tmp_path):
  smoke_config.train.num_steps = 10
  _run(smoke_config, tmp_path)
  smoke_config.model.hidden_size = 48
  smoke_config.train.num_steps = 20  # harmless
  with pytest.raises(workdir_lib.WorkdirError, match="model.hidden_size"):
    _run(smoke_config, tmp_path)


def test_workdir_from_before_an_added_key_still_resumes(smoke_config,
                                                        tmp_path):
  smoke_config.train.num_steps = 10
  _run(smoke_config, tmp_path)
  path = tmp_path / "config.json"
  old = json.loads(path.read_text())
  del old["train"]["batch_tokens"]  # written before the key existed
  path.write_text(json.dumps(old))
  smoke_config.train.num_steps = 20
  smoke_config.train.schedule_steps = 10  # extends at the final rate
  _run(smoke_config, tmp_path)
  assert max(r["step"] for r in reporting.read(str(tmp_path))) == 20


def test_metrics_after_the_checkpoint_are_replaced_on_resume(smoke_config,
                                                               tmp_path):
  smoke_config.train.num_steps = 20
  smoke_config.train.checkpoint_every = 10
  _run(smoke_config, tmp_path)
  straight = _lines(tmp_path)
  # Simulate a crash after step 20's metrics but before its checkpoint.
  ocp_dir = tmp_path / "checkpoints" / "20"
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(ocp_dir)
  _run(smoke_config, tmp_path)
  assert _lines(tmp_path) == straight


def test_run_info_records_versions_devices_commit_and_restarts(smoke_config,
                                                               tmp_path):
  smoke_config.train.num_steps = 10
  _run(smoke_config, tmp_path)
  smoke_config.train.num_steps = 20
  smoke_config.train.schedule_steps = 10
  _run(smoke_config, tmp_path)
  info = json.loads((tmp_path / "run_info.json").read_text())
  assert info["start_step"] == 10
  assert [h["start_step"] for h in info["history"]] == [0]
  assert info["packages"]["jax"] == importlib.metadata.version("jax")
  assert info["devices"] and info["devices"][0].startswith("cpu")
  assert info["git_commit"] is None or len(info["git_commit"]) == 40
