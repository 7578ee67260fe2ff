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

A run keeps two series, the newest checkpoints and the best one
(`RunCheckpoints`). At most one save is in flight at a time, and in a
multi-host run every save is synchronous: Orbax's cross-process barriers are
device collectives, and two of them issued from background threads (two
managers' commits, or a commit beside the training step's own collectives)
can be entered in different orders on different processes and deadlock. On
the main thread, in program order, every process enters the same barriers in
the same order.
"""
import contextlib
import os
import time
from typing import Any, Dict, Tuple

from absl import logging
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp


LATEST_SUBDIRECTORY = "checkpoints"  # the newest checkpoints of a workdir
BEST_SUBDIRECTORY = "best"  # the best validation checkpoint
AVERAGE_SUBDIRECTORY = "average"  # parameters averaged over checkpoints


class CheckpointError(RuntimeError):
  """No usable checkpoint in a workdir that has checkpoints, or a failed save."""


class Checkpointer:
  """Saves and restores (train state, metadata dict) under DIR/checkpoints."""

  def __init__(self, workdir: str, max_to_keep: int,
               subdirectory: str = LATEST_SUBDIRECTORY,
               asynchronous: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), subdirectory)
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            enable_async_checkpointing=asynchronous,
            # Distinct barrier names per series, so no two ever share a key.
            multiprocessing_options=ocp.options.MultiprocessingOptions(
                barrier_sync_key_prefix=subdirectory)))
    self._closed = False

  def save(self, step: int, state, meta: Dict[str, Any]) -> None:
    """Starts writing `step` in the background (errors surface here or at
    the next save/wait/close, as CheckpointError)."""
    with self._write_errors(f"step {step}"):
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
          force=True)

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
    failures = []
    for step in reversed(steps):
      path = os.path.join(self.directory, str(step))
      try:
        state, meta = self.restore(step, template)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("Checkpoint %s is unusable (%s: %s); trying an older one.",
                        path, type(e).__name__, str(e)[:500])
        failures.append(f"{path}: {type(e).__name__}: {str(e)[:200]}")
        continue
      if failures:
        logging.warning("Resuming from the older checkpoint %s.", path)
        self._set_aside([s for s in steps if s > step])
      return state, meta
    raise CheckpointError(
        "no usable checkpoint in " + self.directory + "; failures:\n  " +
        "\n  ".join(failures) + "\nMove the directory away to start afresh.")

  def restore(self, step: int, template) -> Tuple[Any, Dict[str, Any]]:
    """(state, meta) of `step`, in `template`'s structure (shapes checked)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    _check_shapes(restored["state"], abstract,
                  os.path.join(self.directory, str(step)))
    return restored["state"], dict(restored["meta"])

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
    """Waits for the save in flight, then closes (idempotent)."""
    if self._closed:
      return
    self.wait()
    self.manager.close()
    self._closed = True


class RunCheckpoints:
  """A run's two series: DIR/checkpoints (the newest `keep`) and DIR/best.

  Before either series starts a save, both finish the one in flight, so
  there is never more than one save in progress (see the module docstring).
  """

  def __init__(self, workdir: str, keep: int):
    asynchronous = jax.process_count() == 1
    self.latest = Checkpointer(workdir, keep, asynchronous=asynchronous)
    self.best = Checkpointer(workdir, 1, BEST_SUBDIRECTORY,
                             asynchronous=asynchronous)

  def save_latest(self, step: int, state, meta: Dict[str, Any]) -> None:
    self.best.wait()
    self.latest.save(step, state, meta)

  def save_best(self, step: int, state, meta: Dict[str, Any]) -> None:
    self.latest.wait()
    self.best.save(step, state, meta)

  def close(self) -> None:
    """Waits for the save in flight and closes both series (idempotent)."""
    self.latest.close()
    self.best.close()


def _check_shapes(restored, abstract, path: str) -> None:
  got_leaves = jax.tree_util.tree_flatten_with_path(restored)[0]
  want_leaves = jax.tree_util.tree_flatten_with_path(abstract)[0]
  for (name, got), (_, want) in zip(got_leaves, want_leaves):
    if got.shape != want.shape or got.dtype != want.dtype:
      raise ValueError(
          f"{path}: {jax.tree_util.keystr(name)} is {got.shape}/{got.dtype} "
          f"where the model expects {want.shape}/{want.dtype}")


def _shapes(tree) -> Dict[str, tuple]:
  return {jax.tree_util.keystr(name): tuple(leaf.shape) for name, leaf in
          jax.tree_util.tree_flatten_with_path(tree)[0]}


def _check_parameters(path: str, params) -> None:
  """Compares the checkpoint's stored parameter shapes (its metadata) with
  the model's, naming the first difference."""
  try:
    metadata = ocp.StandardCheckpointer().metadata(os.path.join(path, "state"))
    stored = metadata.item_metadata.tree["params"]
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(f"{path}: cannot read its metadata "
                          f"({type(e).__name__}: {str(e)[:200]}); is it a "
                          "checkpoint of this project?") from None
  got, want = _shapes(stored), _shapes(params)
  for name in sorted(set(got) | set(want)):
    if got.get(name) != want.get(name):
      raise CheckpointError(
          f"{path}: parameter {name} is "
          f"{got.get(name, 'absent')} there and {want.get(name, 'absent')} "
          "in this run's model: a checkpoint of another model")


def restore_path(path: str, template) -> Tuple[Any, Dict[str, Any]]:
  """(state, meta) of the checkpoint at `path`, a step directory such as
  DIR/checkpoints/3000 or DIR/best/2800, of this run or of another run of
  the same model.

  Raises:
    CheckpointError: `path` is not a checkpoint, or holds another model
      (the message names the path and, for a shape, the parameter).
  """
  path = os.path.abspath(path)
  series, step = os.path.dirname(path), os.path.basename(path)
  if not step.isdigit() or not os.path.isdir(path):
    raise CheckpointError(
        f"{path} is not a checkpoint: give a step directory such as "
        "DIR/checkpoints/3000")
  _check_parameters(path, template.params)
  checkpointer = Checkpointer(os.path.dirname(series), 1,
                              os.path.basename(series), asynchronous=False)
  try:
    return checkpointer.restore(int(step), template)
  except CheckpointError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    message = str(e).split("\n")[0][:300]
    raise CheckpointError(
        message if message.startswith(path) else
        f"{path}: cannot restore it into this run's model "
        f"({type(e).__name__}: {message}); is it a checkpoint of another "
        "model?") from None
  finally:
    checkpointer.manager.close()
