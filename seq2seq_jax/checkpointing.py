"""Orbax checkpoints of the train state plus JSON metadata.

Orbax writes each step into a temporary directory and renames it when complete,
so a crash mid-save never leaves a half checkpoint that looks finished. At
restore the newest step is tried first; a checkpoint that fails to load
(truncated file, missing array, wrong shapes) is logged with its path and the
previous one is used. If checkpoints exist but none loads, that is an error:
never a silent fresh start over an existing run.

A failed write (disk full, permissions) raises CheckpointError naming the
directory and the cause; the checkpoints already written stay usable, since
Orbax only renames a step into place once all of it is on disk.
"""
import contextlib
import os
import signal
import time
from typing import Any, Dict, Tuple

from absl import logging
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp


# Fault injection for tests: SIGKILL this process while the checkpoint of the
# step given in this variable is being written (tests/test_crash_recovery.py).
KILL_DURING_SAVE_ENV = "SEQ2SEQ_JAX_TEST_KILL_DURING_SAVE"


class CheckpointError(RuntimeError):
  """No usable checkpoint in a workdir that has checkpoints, or a failed save."""


class Checkpointer:
  """Saves and restores (train state, metadata dict) under DIR/checkpoints."""

  def __init__(self, workdir: str, max_to_keep: int,
               subdirectory: str = "checkpoints"):
    self.directory = os.path.join(os.path.abspath(workdir), subdirectory)
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True))

  def save(self, step: int, state, meta: Dict[str, Any]) -> None:
    """Starts writing `step` in the background (errors surface here or at
    the next save/wait/close, as CheckpointError)."""
    with self._write_errors(f"step {step}"):
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
          force=True)
    if os.environ.get(KILL_DURING_SAVE_ENV) == str(step):
      os.kill(os.getpid(), signal.SIGKILL)  # mid-write: the files are partial

  def wait(self) -> None:
    with self._write_errors("a checkpoint"):
      self.manager.wait_until_finished()

  @contextlib.contextmanager
  def _write_errors(self, what: str):
    """Turns any failure of a write into CheckpointError naming the place."""
    try:
      yield
    except CheckpointError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(
          f"could not write {what} under {self.directory}: "
          f"{type(e).__name__}: {e}. Earlier checkpoints are intact; free "
          "space or fix the directory, then rerun to resume.") from e

  def delete_after(self, step: int) -> None:
    """Drops checkpoints newer than `step` (from work lost before a resume)."""
    for later in [s for s in self.steps() if s > step]:
      self.manager.delete(later)

  def steps(self):
    return sorted(self.manager.all_steps())

  def restore_latest(self, template) -> Tuple[Any, Dict[str, Any]] | None:
    """Restores the newest loadable checkpoint into `template`'s structure.

    Returns:
      (state, meta), or None when the workdir has no checkpoint yet.
    Raises:
      CheckpointError: checkpoints exist but none could be restored.
    """
    steps = self.steps()
    if not steps:
      return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    failures = []
    for step in reversed(steps):
      path = os.path.join(self.directory, str(step))
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract),
            meta=ocp.args.JsonRestore()))
        _check_shapes(restored["state"], abstract, path)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("Checkpoint %s is unusable (%s: %s); trying an older one.",
                        path, type(e).__name__, str(e)[:500])
        failures.append(f"{path}: {type(e).__name__}: {str(e)[:200]}")
        continue
      if failures:
        logging.warning("Resuming from the older checkpoint %s.", path)
        self._set_aside([s for s in steps if s > step])
      return restored["state"], dict(restored["meta"])
    raise CheckpointError(
        "no usable checkpoint in " + self.directory + "; failures:\n  " +
        "\n  ".join(failures) + "\nMove the directory away to start afresh.")

  def _set_aside(self, steps) -> None:
    """Moves unusable checkpoints out of the way (kept for inspection), so
    the resumed run can write those steps again."""
    if jax.process_index() == 0:  # one process moves; all wait for it
      aside = self.directory + "_unusable"
      os.makedirs(aside, exist_ok=True)
      for step in steps:
        target = os.path.join(aside, f"{step}.{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(os.path.join(self.directory, str(step)), target)
        logging.warning("Moved unusable checkpoint %s to %s.", step, target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("checkpoints set aside")
    self.manager.reload()

  def close(self) -> None:
    self.wait()
    self.manager.close()


def _check_shapes(restored, abstract, path: str) -> None:
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(abstract)):
    if got.shape != want.shape or got.dtype != want.dtype:
      raise ValueError(f"{path}: array {got.shape}/{got.dtype} where the model "
                       f"expects {want.shape}/{want.dtype}")
