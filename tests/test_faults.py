"""Faults: SIGTERM, a corrupt newest checkpoint, non-finite losses."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2seq_jax import settings as settings_lib
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import compact_output
from seq2seq_jax.training import loop
from seq2seq_jax.training import losses
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import reporting
from seq2seq_jax.training import steps
from tests.conftest import ROOT


def _lines(workdir):
  return [json.dumps(r, sort_keys=True) for r in reporting.read(str(workdir))]


@pytest.mark.slow
def test_sigterm_saves_exits_75_and_resumes_exactly(tmp_path, tfds_dir):
  args = [sys.executable, "-m", "seq2seq_jax.train", "--config=configs/smoke.py",
          f"--config.data.tfds_data_dir={tfds_dir}",
          "--config.train.num_steps=400", "--config.train.log_every=5",
          "--config.train.eval_every=400", "--config.train.checkpoint_every=400"]
  straight = tmp_path / "straight"
  subprocess.run(args + [f"--workdir={straight}"], cwd=ROOT, check=True,
                 capture_output=True, timeout=300)
  resumed = tmp_path / "resumed"
  process = subprocess.Popen(args + [f"--workdir={resumed}"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  deadline = time.time() + 240
  while time.time() < deadline:  # wait until training is under way
    path = resumed / "metrics.jsonl"
    if path.exists() and path.read_text().count("\n") >= 2:
      break
    time.sleep(0.05)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == loop.PREEMPTED_EXIT_CODE, stderr.decode()[-2000:]
  stopped = sorted(int(s) for s in os.listdir(resumed / "checkpoints"))
  assert stopped and stopped[-1] < 400  # saved where it stopped
  assert b"preempted: checkpoint written at step" in stderr
  subprocess.run(args + [f"--workdir={resumed}"], cwd=ROOT, check=True,
                 capture_output=True, timeout=300)
  assert _lines(resumed) == _lines(straight)


@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(
    smoke_config, tmp_path, caplog):
  smoke_config.train.num_steps = 20
  smoke_config.train.checkpoint_every = 10
  loop.train_and_evaluate(smoke_config, str(tmp_path / "straight"))
  workdir = tmp_path / "run"
  smoke_config.train.max_steps_per_run = 0
  loop.train_and_evaluate(smoke_config, str(workdir))
  # Damage step 20: truncate every array file of its state.
  for root, _, files in os.walk(workdir / "checkpoints" / "20" / "state"):
    for name in files:
      if "manifest" in name or name.endswith(".zarray") or "ocdbt" in root:
        with open(os.path.join(root, name), "r+b") as f:
          f.truncate(3)
  smoke_config.train.num_steps = 20
  loop.train_and_evaluate(smoke_config, str(workdir))
  assert "is unusable" in caplog.text
  assert "Resuming from the older checkpoint" in caplog.text
  assert _lines(workdir) == _lines(tmp_path / "straight")


@pytest.mark.slow
def test_no_usable_checkpoint_is_an_error_not_a_fresh_start(smoke_config,
                                                             tmp_path):
  smoke_config.train.num_steps = 10
  smoke_config.train.checkpoint_every = 10
  loop.train_and_evaluate(smoke_config, str(tmp_path))
  for root, _, files in os.walk(tmp_path / "checkpoints"):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(0)
  from seq2seq_jax.training import checkpointing  # pylint: disable=g-import-not-at-top
  with pytest.raises(checkpointing.CheckpointError, match="no usable checkpoint"):
    loop.train_and_evaluate(smoke_config, str(tmp_path))


def _tiny_state():
  from configs import smoke  # pylint: disable=g-import-not-at-top
  s = settings_lib.from_config(smoke.get_config())
  model = Seq2Seq(s.model, 20, 20)
  return steps.create_train_state(model, optimizer_lib.make_optimizer(s.train),
                                  steps.StepOptions(), jax.random.PRNGKey(0), 4, 4)


def _poison_the_loss(monkeypatch):
  """Makes every training loss NaN (both loss paths of the train step:
  losses.sequence_sums over all logits, compact_output.sequence_sums over
  the real positions); returns a function that undoes it."""
  patched = []
  for module in (losses, compact_output):
    real = module.sequence_sums
    monkeypatch.setattr(module, "sequence_sums",
                        lambda *a, real=real, **k: (lambda r: (
                            r[0] * jnp.nan, r[1]))(real(*a, **k)))
    patched.append((module, real))
  return lambda: [monkeypatch.setattr(m, "sequence_sums", r)
                  for m, r in patched]


BATCH = {"source": jnp.asarray([[4, 5, 6, 0]]),
         "target_inputs": jnp.asarray([[1, 7, 8, 0]]),
         "target_outputs": jnp.asarray([[7, 8, 2, 0]])}


@pytest.mark.parametrize("branch", [True, False], ids=["cond", "select"])
def test_nonfinite_loss_skips_the_update_and_is_counted(monkeypatch, branch):
  monkeypatch.setattr(steps, "skip_by_branch", lambda: branch)
  state = _tiny_state()
  before = jax.tree.map(np.asarray, state.params)
  restore = _poison_the_loss(monkeypatch)
  state, metrics = steps.train_step(state, BATCH, jax.random.PRNGKey(1))
  state, metrics = steps.train_step(state, BATCH, jax.random.PRNGKey(1))
  assert float(metrics["skipped"]) == 1.0
  assert int(state.nonfinite_consecutive) == 2
  assert int(state.nonfinite_total) == 2
  assert int(state.step) == 2
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(a, b)  # params untouched
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.opt_state)
             if np.issubdtype(np.asarray(x).dtype, np.floating))
  restore()
  state, metrics = steps.train_step(state, BATCH, jax.random.PRNGKey(1))
  assert float(metrics["skipped"]) == 0.0
  assert int(state.nonfinite_consecutive) == 0
  assert int(state.nonfinite_total) == 2
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(before), jax.tree.leaves(state.params)))


@pytest.mark.slow
def test_on_cpu_skipping_is_a_branch_not_a_select_over_the_parameters(
    monkeypatch):
  """On CPU the finite check picks the update or the old state with one
  `cond` (a `where` per leaf is one more pass over the parameters and the
  optimizer moments every step); elsewhere it selects (a GPU conditional
  waits on the host for its predicate)."""
  state = _tiny_state()
  shapes = {tuple(leaf.shape) for leaf in jax.tree.leaves(state.params)}

  def outside_the_branches(branch):
    """(selects of a parameter's shape, conds) in the step, looking into
    inlined jit calls but not into conds, loops or custom derivatives."""
    monkeypatch.setattr(steps, "skip_by_branch", lambda: branch)
    def eqns(jaxpr):
      for eqn in jaxpr.eqns:
        yield eqn
        if eqn.primitive.name in ("pjit", "jit"):
          yield from eqns(eqn.params["jaxpr"].jaxpr)
    # A new function each time: make_jaxpr caches traces by function.
    found = list(eqns(jax.make_jaxpr(lambda *args: steps.train_step(*args))(
        state, BATCH, jax.random.PRNGKey(1)).jaxpr))
    selects = [eqn for eqn in found if eqn.primitive.name == "select_n"
               and tuple(eqn.outvars[0].aval.shape) in shapes]
    return len(selects), sum(eqn.primitive.name == "cond" for eqn in found)

  assert jax.default_backend() != "cpu" or steps.skip_by_branch()
  assert outside_the_branches(True) == (0, 1)
  selects, conds = outside_the_branches(False)
  leaves = len(jax.tree.leaves(state.params))
  assert selects >= 3 * leaves and conds == 0  # params and both moments


def test_training_stops_after_too_many_nonfinite_steps(smoke_config, tmp_path,
                                                       monkeypatch):
  _poison_the_loss(monkeypatch)
  smoke_config.train.max_consecutive_nonfinite = 3
  smoke_config.train.label_smoothing = 0.01  # a fresh trace of train_step
  with pytest.raises(loop.NonFiniteError, match="step 3: 3 consecutive"):
    loop.train_and_evaluate(smoke_config, str(tmp_path))


def test_unwritable_workdir_fails_at_start(smoke_config, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  from seq2seq_jax.training import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(workdir_lib.WorkdirError, match="is not writable"):
    loop.train_and_evaluate(smoke_config, str(blocker / "run"))


@pytest.mark.slow
def test_disk_full_at_save_is_a_clear_error_and_loses_nothing(
    smoke_config, tmp_path, monkeypatch):
  from orbax.checkpoint._src.handlers import json_checkpoint_handler  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.training import checkpointing  # pylint: disable=g-import-not-at-top
  smoke_config.train.num_steps = 30
  smoke_config.train.checkpoint_every = 10
  smoke_config.train.eval_every = 30
  loop.train_and_evaluate(smoke_config, str(tmp_path / "straight"))
  handler = json_checkpoint_handler.JsonCheckpointHandler
  real_save = handler._save_fn  # pylint: disable=protected-access

  async def disk_full_at_step_20(self, item, directory):
    if f"{os.sep}checkpoints{os.sep}20." in str(directory):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))
    return await real_save(self, item, directory)

  monkeypatch.setattr(handler, "_save_fn", disk_full_at_step_20)
  workdir = tmp_path / "run"
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"could not write .*No space left on device"):
    loop.train_and_evaluate(smoke_config, str(workdir))
  monkeypatch.setattr(handler, "_save_fn", real_save)
  assert sorted(os.listdir(workdir / "checkpoints"))[0] == "10"
  loop.train_and_evaluate(smoke_config, str(workdir))  # resumes from 10
  assert _lines(workdir) == _lines(tmp_path / "straight")


def test_logged_learning_rate_is_the_one_applied_when_steps_are_skipped(
    smoke_config, tmp_path, monkeypatch):
  _poison_the_loss(monkeypatch)
  smoke_config.train.max_consecutive_nonfinite = 100
  smoke_config.train.label_smoothing = 0.02  # a fresh trace of train_step
  smoke_config.train.num_steps = 10
  smoke_config.train.log_every = 5
  smoke_config.train.eval_every = 10
  loop.train_and_evaluate(smoke_config, str(tmp_path))
  lines = [r for r in reporting.read(str(tmp_path)) if r["split"] == "train"]
  schedule = optimizer_lib.learning_rate_schedule(
      settings_lib.from_config(smoke_config).train)
  # Every update was skipped: the optimizer never left its first step.
  assert [r["skipped_updates"] for r in lines] == [5, 5]
  assert [r["learning_rate"] for r in lines] == pytest.approx(
      [float(schedule(0))] * 2)
