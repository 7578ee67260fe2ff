"""The run directory: its lock, resolved config, vocabularies, dataset identity.

A workdir belongs to one experiment. Resuming it with a config that changes
the model or the data is refused with the differing keys listed; keys that do
not change what is being trained (step counts, logging and eval cadence,
decoding length) may change. The run's identity files are written only once
data and model are set up, and may be rewritten while the workdir holds no
checkpoint: a start that failed (a wrong data path, say) trained nothing, so
the corrected rerun is not refused.
"""
import contextlib
import fcntl
import json
import os
import re
import socket
import time
from typing import Any, Dict, Iterator, Optional

from seq2seq_jax import files
from seq2seq_jax import settings
from seq2seq_jax.data import tokenizers
from seq2seq_jax.data import vocabulary
from seq2seq_jax.training import checkpointing
from seq2seq_jax.training import optimizer as optimizer_lib

CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
LIMITS_FILE = "limits.json"
LOCK_FILE = ".lock"
# The greedy test hypotheses behind metrics.jsonl's test line and their
# references, one sentence a line in the test file's order: what a paired
# significance test between runs reads (experiments/significance.py).
TEST_HYPOTHESES_FILE = "test_hypotheses.txt"
TEST_REFERENCES_FILE = "test_references.txt"


class WorkdirError(RuntimeError):
  """The workdir cannot be used (unwritable, in use, or from a different
  experiment)."""


def prepare(workdir: str) -> None:
  """Creates the workdir and fails early if it cannot be written."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w", encoding="utf-8") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise WorkdirError(f"workdir {workdir!r} is not writable: {e}") from e


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """Holds an exclusive lock on the workdir for the life of a run.

  A second run on the same workdir fails at once, naming the holder. The
  lock is a `flock`, which the kernel releases when its process ends, however
  it ends: a lock left by a killed run never blocks the resume.
  """
  path = os.path.join(workdir, LOCK_FILE)
  handle = open(path, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
  try:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      holder = handle.read().strip() or "a process that has not said who it is"
      raise WorkdirError(f"workdir {workdir!r} is in use by another run "
                         f"({holder}); wait for it to end or use another "
                         "--workdir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    yield
  finally:
    handle.close()  # closing releases the flock


def has_checkpoints(workdir: str) -> bool:
  """Whether any training checkpoint (finished or partial) exists."""
  directory = os.path.join(workdir, checkpointing.LATEST_SUBDIRECTORY)
  return os.path.isdir(directory) and any(
      name.split(".")[0].isdigit() for name in os.listdir(directory))


def _flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[prefix + key] = value
  return flat


def _write_json(path: str, data: Any) -> None:
  """Writes JSON atomically (a temporary file renamed into place)."""
  files.write_json(path, data, indent=2, sort_keys=True)


def schedule_horizon_error(previous: Dict[str, Any],
                           current: Dict[str, Any]) -> Optional[str]:
  """Why resuming would rewrite the learning-rate schedule, or None.

  Cosine and linear decays span `schedule_horizon` steps; a resume that
  changes it (through train.num_steps) would jump to another curve.
  """
  old = settings.from_dict(previous).train
  new = settings.from_dict(current).train
  if old.lr_schedule not in optimizer_lib.HORIZON_SCHEDULES:
    return None
  old_horizon = optimizer_lib.schedule_horizon(old)
  new_horizon = optimizer_lib.schedule_horizon(new)
  if old_horizon == new_horizon:
    return None
  step = min(old_horizon, new_horizon) - 1
  old_rate = float(optimizer_lib.learning_rate_schedule(old)(step))
  new_rate = float(optimizer_lib.learning_rate_schedule(new)(step))
  return (f"config.train.num_steps: this run's {old.lr_schedule} learning-rate "
          f"schedule decays over {old_horizon:,} steps; with "
          f"num_steps={new.num_steps:,} it would decay over {new_horizon:,} "
          f"instead, and the rate at step {step:,} would jump from "
          f"{old_rate:.3g} to {new_rate:.3g}. To train on at the final rate, "
          f"add --config.train.schedule_steps={old_horizon}; for a new "
          "schedule, use a new --workdir.")


def check_or_write_config(workdir: str, config: Dict[str, Any]) -> None:
  """Writes config.json, or checks a resumed run's config against it."""
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(path) and has_checkpoints(workdir):
    with open(path, encoding="utf-8") as f:
      raw = settings.upgrade(json.load(f))
    previous, current = _flatten(raw), _flatten(config)
    differing = sorted(
        key for key in set(previous) | set(current)
        if previous.get(key) != current.get(key) and key not in settings.MAY_CHANGE_ON_RESUME)
    if differing:
      lines = [f"  {k}: workdir has {previous.get(k)!r}, config has "
               f"{current.get(k)!r}" for k in differing]
      raise WorkdirError(
          f"{path} was written by a different experiment; refusing to resume "
          "with changed keys:\n" + "\n".join(lines) +
          "\nUse a new --workdir, or restore these values.")
    error = schedule_horizon_error(raw, config)
    if error:
      raise WorkdirError(error)
  _write_json(path, config)


# Text datasets were once TFDS datasets of text, named e.g.
# 'multi30k_translation/de-en_o..._d...:2.0.0'; they are now token stores.
_TFDS_TEXT_NAME = re.compile(r"^(tsv|multi30k)_translation/")


def _earlier_format(previous: str, name: str, path: str, what: str) -> str:
  return (f"{path}: this run trained on {previous}, text data prepared by an "
          f"earlier version of seq2seq_jax; it now prepares as {name}, "
          f"tokenized once and batched differently, so {what}")


def check_or_write_dataset(workdir: str, name: str, is_text: bool) -> None:
  """Records which prepared dataset (builder, config, version) a run trains
  on; a resume on another one (a new dataset version, edited files) is
  refused, since its batches would not continue the run's."""
  path = os.path.join(workdir, DATASET_FILE)
  if has_checkpoints(workdir):
    if os.path.exists(path):
      previous = read_json(workdir, DATASET_FILE)["name"]
      if previous != name and _TFDS_TEXT_NAME.match(previous):
        raise WorkdirError(_earlier_format(
            previous, name, path, "it cannot resume: train in a new "
            "--workdir (evaluate, translate and export still read it)"))
      if previous != name:
        raise WorkdirError(
            f"{path}: this run trained on {previous}, but the data now "
            f"prepares as {name} (a new dataset version or changed files); "
            "resuming would continue on other batches. Use a new --workdir.")
    elif is_text:
      raise WorkdirError(
          f"{workdir!r} was trained on a text dataset of an older version "
          f"(before {DATASET_FILE} existed; its splits were shuffled), so a "
          "resume would continue on other batches. Evaluate it as it is, or "
          "train in a new --workdir.")
  _write_json(path, {"name": name})


def dataset_mismatch(workdir: str, name: str) -> Optional[str]:
  """Why `name` is not the prepared dataset the run trained on, or None
  (also None for a run from before dataset.json was recorded)."""
  path = os.path.join(workdir, DATASET_FILE)
  if not os.path.exists(path):
    return None
  previous = read_json(workdir, DATASET_FILE)["name"]
  if previous == name:
    return None
  if _TFDS_TEXT_NAME.match(previous):
    return _earlier_format(
        previous, name, path, "its splits cannot be checked against the "
        "run's: score its test files instead, with --source_file and "
        "--reference_file")
  return (f"{path}: this run trained on {previous}, but the data prepares as "
          f"{name} (other files or a new dataset version): its splits are "
          "not the run's")


def check_or_save_vocabularies(workdir: str, source_vocab, target_vocab) -> None:
  """Saves the vocabularies beside the checkpoints, or checks they still match."""
  for side, vocab in (("source", source_vocab), ("target", target_vocab)):
    path = os.path.join(workdir, f"vocab_{side}.json")
    if os.path.exists(path) and has_checkpoints(workdir):
      saved = tokenizers.load(path)
      if saved.fingerprint() != vocab.fingerprint():
        raise WorkdirError(
            f"{path} does not match the {side} vocabulary of the data "
            f"(fingerprint {saved.fingerprint()} vs {vocab.fingerprint()}); the "
            "checkpoint was trained on other data. Use a new --workdir.")
    else:
      vocabulary.save(vocab, path)


def write_limits(workdir: str, **limits: int) -> None:
  """Records the padded shapes the model was trained with (for translate)."""
  _write_json(os.path.join(workdir, LIMITS_FILE), limits)


def read_json(workdir: str, name: str) -> Dict[str, Any]:
  """A JSON file of a finished or running workdir, with a clear error."""
  path = os.path.join(workdir, name)
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise WorkdirError(f"{path} not found: is {workdir!r} a seq2seq_jax "
                       "workdir?") from None
  except (OSError, json.JSONDecodeError) as e:
    raise WorkdirError(f"cannot read {path}: {e}") from e
