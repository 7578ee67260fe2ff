"""Checkpoint averaging: the mean of the parameters of several checkpoints of
one run (as fairseq's average_checkpoints.py and OpenNMT do), written as
DIR/average/, which `evaluate` and `translate` load with --checkpoint=average.

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


def average(workdir: str, *, last: int = 5, steps: Sequence[int] = ()
            ) -> List[int]:
  """Writes DIR/average/ from the chosen checkpoints; returns their steps."""
  s, _, _, _, template = trained_run.run_template(workdir)
  directory = os.path.join(workdir, checkpointing.LATEST_SUBDIRECTORY)
  if not os.path.isdir(directory):
    raise ValueError(f"no checkpoints in {directory}")
  series = checkpointing.Checkpointer(workdir, s.train.keep_checkpoints)
  chosen = choose_steps(series.steps(), last, steps)
  states = [series.restore(step, template)[0] for step in chosen]
  series.close()
  state = states[-1].replace(params=mean_params([x.params for x in states]))
  output = os.path.join(workdir, checkpointing.AVERAGE_SUBDIRECTORY)
  shutil.rmtree(output, ignore_errors=True)  # one average per run
  writer = checkpointing.Checkpointer(
      workdir, 1, checkpointing.AVERAGE_SUBDIRECTORY, asynchronous=False)
  writer.save(chosen[-1], state, {"step": chosen[-1], "averaged_steps": chosen})
  writer.close()
  return chosen
