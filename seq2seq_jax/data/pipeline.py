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


def round_up(length: int, multiple: int) -> int:
  return -(-length // multiple) * multiple


class TrainStream:
  """Shuffled training batches, indexed by step (see the module docstring).

  With `pad_multiple` > 0 batches are bucketed by length: each epoch's
  permutation is cut into chunks of `BUCKET_CHUNK` batches, each chunk is
  sorted by length and sliced into batches, and the batch order is shuffled;
  a batch is padded to the next multiple of `pad_multiple`, so there are only
  a few shapes (a few compilations) and little padding.
  """
  BUCKET_CHUNK = 50

  def __init__(self, split: Split, batch_size: int, seed: int,
               source_length: int, target_length: int, reverse_source: bool,
               pad_multiple: int = 0):
    if len(split) < batch_size:
      raise ValueError(f"training split has {len(split)} examples, fewer than "
                       f"config.train.batch_size={batch_size}")
    self.split = split
    self.batch_size = batch_size
    self.seed = seed
    self.shape = (source_length, target_length)
    self.reverse_source = reverse_source
    self.pad_multiple = pad_multiple
    self.batches_per_epoch = len(split) // batch_size  # drop the remainder
    self._lengths = np.asarray([len(s) + len(t) for s, t in
                                zip(split.source_ids, split.target_ids)])
    self._epoch, self._batches = None, None

  def _epoch_batches(self, epoch: int) -> np.ndarray:
    """[batches_per_epoch, batch_size] example indices of an epoch."""
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      order = rng.permutation(len(self.split))
      order = order[:self.batches_per_epoch * self.batch_size]
      if self.pad_multiple:
        chunk = self.BUCKET_CHUNK * self.batch_size
        order = np.concatenate([
            part[np.argsort(self._lengths[part], kind="stable")]
            for part in np.split(order, range(chunk, len(order), chunk))])
        batches = order.reshape(self.batches_per_epoch, self.batch_size)
        batches = batches[rng.permutation(self.batches_per_epoch)]
      else:
        batches = order.reshape(self.batches_per_epoch, self.batch_size)
      self._epoch, self._batches = epoch, batches
    return self._batches

  def batch(self, step: int) -> Batch:
    """The batch consumed by training step `step` (0-based)."""
    epoch, position = divmod(step, self.batches_per_epoch)
    indices = self._epoch_batches(epoch)[position]
    source_length, target_length = self.shape
    if self.pad_multiple:
      source_length = min(source_length, round_up(
          max(len(self.split.source_ids[i]) for i in indices), self.pad_multiple))
      target_length = min(target_length, round_up(
          max(len(self.split.target_ids[i]) + 1 for i in indices),
          self.pad_multiple))
    return make_batch(self.split, indices, source_length, target_length,
                      self.reverse_source)


def eval_batches(split: Split, batch_size: int, source_length: int,
                 target_length: int, reverse_source: bool,
                 limit: int | None = None) -> Iterator[Batch]:
  """Every example once, in order, in fixed-shape batches (last one padded)."""
  total = len(split) if limit is None else min(limit, len(split))
  for start in range(0, total, batch_size):
    indices = range(start, min(start + batch_size, total))
    yield make_batch(split, indices, source_length, target_length,
                     reverse_source, batch_size)
