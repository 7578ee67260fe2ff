"""Checkpoint averaging: the mean of the parameters of several checkpoints
(as fairseq's average_checkpoints.py and OpenNMT do), written as DIR/average/,
which `evaluate` and `translate` load with --checkpoint=average.

The checkpoints are the newest N of DIR, named steps of DIR, or step
directories given by path, also of other runs of the same model (seeds of one
config, say); a checkpoint of another model is refused naming its path and
the first parameter whose shape differs.

The mean is taken in float64 and stored in each parameter's own dtype; the
optimizer state and step are the newest averaged checkpoint's (the result is
for decoding, not for resuming).
"""
import os
import shutil
from typing import List, Sequence

import jax
import numpy as np

from seq2seq_jax.inference import trained_run
from seq2seq_jax.training import checkpointing


def choose_steps(available: Sequence[int], last: int,
                 steps: Sequence[int]) -> List[int]:
  """The steps to average: `steps` if given, else the newest `last`."""
  available = sorted(available)
  if steps:
    missing = sorted(set(steps) - set(available))
    if missing:
      raise ValueError(f"no checkpoint for steps {missing}; the run has "
                       f"{available}")
    return sorted(set(steps))
  if last < 1:
    raise ValueError(f"--last must be >= 1, got {last}")
  if len(available) < last:
    raise ValueError(f"--last={last} but the run keeps {len(available)} "
                     f"checkpoints ({available}); raise "
                     "train.keep_checkpoints, or average fewer")
  return available[-last:]


def mean_params(params: Sequence) -> object:
  """Leafwise mean, accumulated in float64, in the first tree's dtypes."""
  def mean(*leaves):
    total = sum(np.asarray(leaf, np.float64) for leaf in leaves)
    return (total / len(leaves)).astype(np.asarray(leaves[0]).dtype)
  return jax.tree.map(mean, *params)


def average(workdir: str, *, last: int = 5, steps: Sequence[int] = (),
            paths: Sequence[str] = ()) -> List[str]:
  """Writes DIR/average/ from the chosen checkpoints.

  Args:
    workdir: the run whose model (and vocabularies) the average is for, and
      where it is written.
    last, steps: the newest `last` checkpoints of DIR/checkpoints, or these
      steps of it.
    paths: instead, these checkpoint step directories (of any run of the
      same model).

  Returns:
    the averaged checkpoints' paths.
  """
  s, _, _, _, template = trained_run.run_template(workdir)
  if paths:
    if len(paths) < 2:
      raise ValueError("--checkpoints: give two or more to average")
    chosen = [os.path.abspath(path) for path in paths]
    states = [checkpointing.restore_path(path, template)[0] for path in chosen]
    step = max(int(state.step) for state in states)
  else:
    directory = os.path.join(workdir, checkpointing.LATEST_SUBDIRECTORY)
    if not os.path.isdir(directory):
      raise ValueError(f"no checkpoints in {directory}")
    series = checkpointing.Checkpointer(workdir, s.train.keep_checkpoints)
    numbers = choose_steps(series.steps(), last, steps)
    states = [series.restore(number, template)[0] for number in numbers]
    series.close()
    chosen = [os.path.join(series.directory, str(n)) for n in numbers]
    step = numbers[-1]
  newest = max(states, key=lambda state: int(state.step))
  state = newest.replace(params=mean_params([x.params for x in states]))
  output = os.path.join(workdir, checkpointing.AVERAGE_SUBDIRECTORY)
  shutil.rmtree(output, ignore_errors=True)  # one average per run
  writer = checkpointing.Checkpointer(
      workdir, 1, checkpointing.AVERAGE_SUBDIRECTORY, asynchronous=False)
  writer.save(step, state, {"step": step, "averaged": chosen})
  writer.close()
  return chosen
