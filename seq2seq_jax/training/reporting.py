"""Where figures go: DIR/metrics.jsonl, TensorBoard (tensorboardX) and the terminal.

metrics.jsonl holds one JSON object per line: {"step", "split", metric: value}.
On resume the lines after the restored step are dropped first, so the file
never has duplicated or missing steps: resumed lines replace the lost ones.
"""
import json
import math
import os
import sys
import time
from typing import Dict

from absl import logging

from seq2seq_jax import files


def _tensorboardx_without_torch():
  """tensorboardX, imported without importing PyTorch.

  Why: where PyTorch is installed, tensorboardX imports it at import time,
  only to accept torch tensors (never passed here): 2.7 s of every command's
  start on the 2-core machine. `torch` is hidden during this import only; a
  later `import torch` works as usual.
  """
  hide = "torch" not in sys.modules  # a PyTorch already loaded stays
  if hide:
    sys.modules["torch"] = None  # `import torch` raises ImportError
  try:
    import tensorboardX  # pylint: disable=g-import-not-at-top,redefined-outer-name
  finally:
    if hide:
      del sys.modules["torch"]
  return tensorboardX


tensorboardX = _tensorboardx_without_torch()


class MetricsLog:
  """Appends metric lines; mirrors them to TensorBoard.

  With `writable=False` (every process of a multi-host run but the first)
  it reads the file but writes nothing.
  """

  def __init__(self, workdir: str, writable: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.writable = writable
    self.tensorboard = tensorboardX.SummaryWriter(
        os.path.join(workdir, "tensorboard")) if writable else None

  def truncate_after(self, step: int) -> int:
    """Drops lines with a step > `step` (work lost since the checkpoint)."""
    if not self.writable or not os.path.exists(self.path):
      return 0
    kept, dropped = [], 0
    with open(self.path, encoding="utf-8") as f:
      for line in f:
        try:
          record = json.loads(line)
        except json.JSONDecodeError:
          dropped += 1  # a line cut short by a crash
          continue
        if record.get("step", 0) <= step:
          kept.append(line if line.endswith("\n") else line + "\n")
        else:
          dropped += 1
    files.write_text(self.path, "".join(kept))
    return dropped

  def has(self, step: int, split: str) -> bool:
    """Whether a line for (step, split) was already written."""
    if not os.path.exists(self.path):
      return False
    return any(r.get("step") == step and r.get("split") == split
               for r in read(os.path.dirname(self.path)))

  def last(self, step: int, split: str) -> Dict[str, float]:
    """The metrics of the last line for (step, split), without step/split."""
    records = [r for r in read(os.path.dirname(self.path))
               if r.get("step") == step and r.get("split") == split]
    return {k: v for k, v in records[-1].items() if k not in ("step", "split")}

  def write(self, step: int, split: str, values: Dict[str, float]) -> None:
    if not self.writable:
      return
    record = {"step": int(step), "split": split}
    record.update({k: float(v) for k, v in values.items()})
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")
    for name, value in values.items():
      if math.isfinite(float(value)):
        self.tensorboard.add_scalar(f"{split}/{name}", float(value), step)
    self.tensorboard.flush()

  def write_text(self, step: int, tag: str, text: str) -> None:
    if self.writable:
      self.tensorboard.add_text(tag, text, step)

  def close(self) -> None:
    """Flushes and closes TensorBoard (idempotent)."""
    if self.tensorboard is not None:
      self.tensorboard.close()
      self.tensorboard = None


def read(workdir: str):
  """All records of DIR/metrics.jsonl."""
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


class Progress:
  """Steps/s and ETA for the terminal, measured between log lines."""

  def __init__(self, start_step: int, num_steps: int):
    self.num_steps = num_steps
    self._last_step, self._last_time = start_step, time.perf_counter()

  def pause_until_now(self) -> None:
    """Excludes time spent outside training steps (evaluation, saving)."""
    self._paused_at = time.perf_counter()

  def resume(self) -> None:
    self._last_time += time.perf_counter() - self._paused_at

  def line(self, step: int, values: Dict[str, float]) -> str:
    now = time.perf_counter()
    rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    eta = (self.num_steps - step) / rate if rate > 0 else float("inf")
    shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
    return (f"step {step}/{self.num_steps} {shown} steps/s={rate:.2f} "
            f"eta={_duration(eta)}")


def _duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  minutes, secs = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"


def log(message: str) -> None:
  logging.info("%s", message)


class _DropLibraryChatter:
  """Drops INFO lines from Orbax/TFDS internals (dozens per checkpoint) and
  JAX's note, on every CPU or GPU run, that it found no TPU."""
  noisy = ("orbax", "tensorflow_datasets", "etils", "xla_bridge")

  def filter(self, record) -> bool:
    if record.levelno > 20:  # keep warnings and errors
      # but TFDS's repr of every custom BuilderConfig, at every load
      return not str(record.msg).startswith("Using custom data configuration")
    return not any(part in record.pathname for part in self.noisy)


def quiet_library_logs() -> None:
  """Drops library chatter from the logs; off a terminal, also TFDS's
  progress bars (their escape codes litter redirected logs)."""
  import logging as std_logging  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  std_logging.getLogger().addFilter(_DropLibraryChatter())
  logging.get_absl_handler().addFilter(_DropLibraryChatter())
  if not sys.stderr.isatty():
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    tfds.disable_progress_bar()
