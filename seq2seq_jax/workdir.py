"""The run directory: resolved config, vocabularies, and resume compatibility.

A workdir belongs to one experiment. Resuming it with a config that changes
the model or the data is refused with the differing keys listed; keys that do
not change what is being trained (step counts, logging and eval cadence,
decoding length) may change.
"""
import json
import os
from typing import Any, Dict

from seq2seq_jax import settings
from seq2seq_jax.data import vocabulary

CONFIG_FILE = "config.json"
# Keys that may differ between a workdir's first run and a resume.
HARMLESS_KEYS = {
    "train.num_steps", "train.log_every", "train.eval_every",
    "train.checkpoint_every", "train.keep_checkpoints", "train.eval_batch_size",
    "train.num_eval_samples", "train.max_consecutive_nonfinite",
    "train.max_steps_per_run", "train.eval_decode_sentences",
    "decode.max_length", "data.tfds_data_dir",
    # Same function, different implementation (float rounding aside).
    "model.recurrence", "model.remat",
}


class WorkdirError(RuntimeError):
  """The workdir cannot be used (unwritable, or from a different experiment)."""


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


def _flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[prefix + key] = value
  return flat


def check_or_write_config(workdir: str, config: Dict[str, Any]) -> None:
  """Writes config.json, or checks a resumed run's config against it."""
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      previous = _flatten(settings.with_added_keys(json.load(f)))
    current = _flatten(config)
    differing = sorted(
        key for key in set(previous) | set(current)
        if previous.get(key) != current.get(key) and key not in HARMLESS_KEYS)
    if differing:
      lines = [f"  {k}: workdir has {previous.get(k)!r}, config has "
               f"{current.get(k)!r}" for k in differing]
      raise WorkdirError(
          f"{path} was written by a different experiment; refusing to resume "
          "with changed keys:\n" + "\n".join(lines) +
          "\nUse a new --workdir, or restore these values.")
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def check_or_save_vocabularies(workdir: str, source_vocab, target_vocab) -> None:
  """Saves the vocabularies beside the checkpoints, or checks they still match."""
  for side, vocab in (("source", source_vocab), ("target", target_vocab)):
    path = os.path.join(workdir, f"vocab_{side}.json")
    if os.path.exists(path):
      saved = vocabulary.load(path)
      if saved.fingerprint() != vocab.fingerprint():
        raise WorkdirError(
            f"{path} does not match the {side} vocabulary of the data "
            f"(fingerprint {saved.fingerprint()} vs {vocab.fingerprint()}); the "
            "checkpoint was trained on other data. Use a new --workdir.")
    else:
      vocabulary.save(vocab, path)


LIMITS_FILE = "limits.json"


def write_limits(workdir: str, **limits: int) -> None:
  """Records the padded shapes the model was trained with (for translate)."""
  path = os.path.join(workdir, LIMITS_FILE)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(limits, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


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
