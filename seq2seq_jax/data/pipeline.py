"""Batching: padded numpy batches as a pure function of (seed, step).

The training stream is stateless: batch k is the k-th slice of the epoch's
permutation, where epoch = k // batches_per_epoch and the permutation is seeded
by (seed, epoch). The data position is therefore the step count, and a resumed
run continues with the next batch rather than replaying or skipping any.

Multi-host: every process computes the same global batch *indices* and padded
shape (cheap), then reads and pads only its own contiguous block of rows
(`batch(step, shard=(process_index, process_count))`).
"""
from typing import Dict, Iterator, Tuple

from absl import logging
import numpy as np

from seq2seq_jax.data.corpus import Split
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, PAD_ID

Batch = Dict[str, np.ndarray]


def max_lengths(*splits: Split):
  """(source length, target length incl. BOS/EOS) covering every split."""
  source = max(len(ids) for split in splits for ids in split.source_ids)
  target = max(len(ids) for split in splits for ids in split.target_ids) + 1
  return source, target


def warn_about_outliers(splits: Dict[str, Split]) -> None:
  """Warns where a few long examples set a split's padded length.

  Training batches pad to at most the longest training pair (less with
  `data.pad_multiple` buckets); an evaluation split pads to its own longest.
  Either way one outlier can make every batch of a split slow.
  """
  for name, split in splits.items():
    lengths = np.asarray([max(len(s), len(t) + 1) for s, t in
                          zip(split.source_ids, split.target_ids)])
    if len(lengths) < 20:
      continue
    typical = int(np.percentile(lengths, 95))
    longest = int(lengths.max())
    if longest > 4 * typical and longest > 64:
      count = int(np.sum(lengths > 4 * typical))
      logging.warning(
          "%s: %d example(s) have up to %d tokens where 95%% have at most %d; "
          "batches of this split pad to them. Drop them from training with "
          "config.data.max_words, or bucket with config.data.pad_multiple.",
          name, count, longest, typical)


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


Shard = Tuple[int, int]  # (process index, process count)


def shard_rows(global_rows: int, shard: Shard) -> slice:
  """The contiguous block of rows that process `shard[0]` of `shard[1]` reads."""
  index, count = shard
  if global_rows % count:
    raise ValueError(f"a batch of {global_rows} rows does not split over "
                     f"{count} processes")
  per_process = global_rows // count
  return slice(index * per_process, (index + 1) * per_process)


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

  def batch(self, step: int, shard: Shard = (0, 1)) -> Batch:
    """The batch consumed by training step `step` (0-based); with `shard`,
    only that process's rows (the padded shape is the global batch's)."""
    epoch, position = divmod(step, self.batches_per_epoch)
    indices = self._epoch_batches(epoch)[position]
    source_length, target_length = self.shape
    if self.pad_multiple:
      source_length = min(source_length, round_up(
          max(len(self.split.source_ids[i]) for i in indices), self.pad_multiple))
      target_length = min(target_length, round_up(
          max(len(self.split.target_ids[i]) + 1 for i in indices),
          self.pad_multiple))
    return make_batch(self.split, indices[shard_rows(len(indices), shard)],
                      source_length, target_length, self.reverse_source)


class TokenBudgetStream:
  """Shuffled training batches of about `batch_tokens` padded tokens each.

  Each example falls in a length bucket L = its longer side (target with
  BOS/EOS) rounded up to `pad_multiple`; a batch of bucket L has shape
  [rows_L, L, L] with rows_L = batch_tokens // L. Short sentences thus come
  in big batches and long ones in small batches, so every step costs about the
  same, and there is one compiled shape per bucket. With `row_multiple` (the
  device count) a batch gains empty rows up to a multiple of it, so the
  examples of a step never depend on the device count. An epoch visits every example once:
  its permutation (seeded by (seed, epoch)) is split by bucket, cut into
  batches (a bucket's last batch may have empty rows, which weigh nothing),
  and the batch order is shuffled. The number of batches per epoch does not
  depend on the permutation, so the data position is the step count, as in
  TrainStream.
  """

  def __init__(self, split: Split, batch_tokens: int, seed: int,
               source_length: int, target_length: int, reverse_source: bool,
               pad_multiple: int, row_multiple: int = 1):
    if pad_multiple <= 0:
      raise ValueError("config.train.batch_tokens needs length buckets: set "
                       "config.data.pad_multiple > 0")
    self.split = split
    self.seed = seed
    self.reverse_source = reverse_source
    self.row_multiple = row_multiple
    longest = round_up(max(source_length, target_length), pad_multiple)
    lengths = np.asarray([max(len(s), len(t) + 1) for s, t in
                          zip(split.source_ids, split.target_ids)])
    self._bucket_of = np.minimum(
        -(-lengths // pad_multiple) * pad_multiple, longest)
    self.rows = {}
    for length in np.unique(self._bucket_of).tolist():
      rows = batch_tokens // length
      if rows < 1:
        raise ValueError(
            f"config.train.batch_tokens={batch_tokens} cannot hold one "
            f"example of padded length {length}; use at least {length}")
      self.rows[length] = rows
    counts = {length: int(np.sum(self._bucket_of == length))
              for length in self.rows}
    self.batches_per_epoch = sum(-(-counts[length] // rows)
                                 for length, rows in self.rows.items())
    self._epoch, self._batches = None, None

  @property
  def shapes(self):
    """{padded length: rows}: the batch shapes this stream produces."""
    return dict(self.rows)

  def _epoch_batches(self, epoch: int):
    """The epoch's batches: a list of (padded length, example indices)."""
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      order = rng.permutation(len(self.split))
      batches = []
      for length, rows in self.rows.items():
        members = order[self._bucket_of[order] == length]
        batches += [(length, members[start:start + rows])
                    for start in range(0, len(members), rows)]
      self._epoch = epoch
      self._batches = [batches[i] for i in rng.permutation(len(batches))]
    return self._batches

  def batch(self, step: int, shard: Shard = (0, 1)) -> Batch:
    """The batch consumed by training step `step` (0-based); with `shard`,
    only that process's rows. Rows are padded up to a multiple of
    `row_multiple` with empty rows (zero weight), so which examples a step
    sees does not depend on the device count."""
    epoch, position = divmod(step, self.batches_per_epoch)
    length, indices = self._epoch_batches(epoch)[position]
    rows = shard_rows(round_up(self.rows[length], self.row_multiple), shard)
    return make_batch(self.split, indices[rows], length, length,
                      self.reverse_source, rows.stop - rows.start)


def eval_batches(split: Split, batch_size: int, source_length: int,
                 target_length: int, reverse_source: bool,
                 limit: int | None = None) -> Iterator[Batch]:
  """Every example once, in order, in fixed-shape batches (last one padded)."""
  total = len(split) if limit is None else min(limit, len(split))
  for start in range(0, total, batch_size):
    indices = range(start, min(start + batch_size, total))
    yield make_batch(split, indices, source_length, target_length,
                     reverse_source, batch_size)
