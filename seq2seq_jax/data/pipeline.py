"""Batching: padded numpy batches as a pure function of (seed, step).

The training stream is stateless: batch k is the k-th slice of the epoch's
permutation, where epoch = k // batches_per_epoch and the permutation is seeded
by (seed, epoch). The data position is therefore the step count, and a resumed
run continues with the next batch rather than replaying or skipping any.
"""
from typing import Dict, Iterator

import numpy as np

from seq2seq_jax.data.datasets import Split
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, PAD_ID

Batch = Dict[str, np.ndarray]


def max_lengths(*splits: Split):
  """(source length, target length incl. BOS/EOS) covering every split."""
  source = max(len(ids) for split in splits for ids in split.source_ids)
  target = max(len(ids) for split in splits for ids in split.target_ids) + 1
  return source, target


def make_batch(split: Split, indices, source_length: int, target_length: int,
               reverse_source: bool, batch_size: int | None = None) -> Batch:
  """Pads the examples at `indices` into fixed-shape arrays.

  Args:
    split: tokenized examples.
    indices: which examples; fewer than batch_size leaves all-padding rows,
      which carry zero weight in every metric.
    source_length, target_length: padded lengths (target counts BOS/EOS).
    reverse_source: reverse each source's real tokens (Sutskever et al. 2014);
      padding stays at the end.
    batch_size: rows in the batch (default len(indices)).

  Returns:
    {"source": [B, S], "target_inputs": [B, T] (BOS + y),
     "target_outputs": [B, T] (y + EOS)}, int32, 0 = padding.
  """
  batch_size = batch_size or len(indices)
  source = np.full((batch_size, source_length), PAD_ID, np.int32)
  target_inputs = np.full((batch_size, target_length), PAD_ID, np.int32)
  target_outputs = np.full((batch_size, target_length), PAD_ID, np.int32)
  for row, index in enumerate(indices):
    src = split.source_ids[index]
    tgt = split.target_ids[index]
    if len(src) > source_length or len(tgt) + 1 > target_length:
      raise ValueError(f"example {index} is longer than the padded shape "
                       f"({len(src)}/{len(tgt) + 1} vs {source_length}/"
                       f"{target_length})")
    source[row, :len(src)] = src[::-1] if reverse_source else src
    target_inputs[row, 0] = BOS_ID
    target_inputs[row, 1:len(tgt) + 1] = tgt
    target_outputs[row, :len(tgt)] = tgt
    target_outputs[row, len(tgt)] = EOS_ID
  return {"source": source, "target_inputs": target_inputs,
          "target_outputs": target_outputs}


class TrainStream:
  """Shuffled training batches, indexed by step (see the module docstring)."""

  def __init__(self, split: Split, batch_size: int, seed: int,
               source_length: int, target_length: int, reverse_source: bool):
    if len(split) < batch_size:
      raise ValueError(f"training split has {len(split)} examples, fewer than "
                       f"config.train.batch_size={batch_size}")
    self.split = split
    self.batch_size = batch_size
    self.seed = seed
    self.shape = (source_length, target_length)
    self.reverse_source = reverse_source
    self.batches_per_epoch = len(split) // batch_size  # drop the remainder
    self._epoch, self._order = None, None

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._epoch, self._order = epoch, rng.permutation(len(self.split))
    return self._order

  def batch(self, step: int) -> Batch:
    """The batch consumed by training step `step` (0-based)."""
    epoch, position = divmod(step, self.batches_per_epoch)
    start = position * self.batch_size
    indices = self._permutation(epoch)[start:start + self.batch_size]
    return make_batch(self.split, indices, *self.shape, self.reverse_source)


def eval_batches(split: Split, batch_size: int, source_length: int,
                 target_length: int, reverse_source: bool,
                 limit: int | None = None) -> Iterator[Batch]:
  """Every example once, in order, in fixed-shape batches (last one padded)."""
  total = len(split) if limit is None else min(limit, len(split))
  for start in range(0, total, batch_size):
    indices = range(start, min(start + batch_size, total))
    yield make_batch(split, indices, source_length, target_length,
                     reverse_source, batch_size)
