"""Batching: padded numpy batches as a pure function of (seed, step).

The training stream is stateless: batch k is the k-th slice of the epoch's
permutation, where epoch = k // batches_per_epoch and the permutation is seeded
by (seed, epoch). The data position is therefore the step count, and a resumed
run continues with the next batch rather than replaying or skipping any.

Multi-host: every process computes the same global batch *indices* and padded
shape (cheap), then reads and pads only its own contiguous block of rows
(`batch(step, shard=(process_index, process_count))`).

A split here is anything with `source_lengths`, `target_lengths` (token
counts, without BOS/EOS) and `token_ids(indices)`: a corpus.Split in memory
or a token_store.StoredSplit on disk. Batches are planned from the lengths
alone and read when they are made, so a stored corpus is never in memory.
"""
from typing import Dict, Iterator, Tuple

from absl import logging
import numpy as np

from seq2seq_jax.data.corpus import Split
from seq2seq_jax.data.length_buckets import (fitted_shapes, first_holding,
                                             quantile_boundaries, round_up)
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, PAD_ID

Batch = Dict[str, np.ndarray]


def max_lengths(*splits: Split):
  """(source length, target length incl. BOS/EOS) covering every split."""
  source = max(int(split.source_lengths.max()) for split in splits)
  target = max(int(split.target_lengths.max()) for split in splits) + 1
  return source, target


def warn_about_outliers(splits: Dict[str, Split]) -> None:
  """Warns where a few long examples set a split's padded length.

  Training batches pad to at most the longest training pair (less with
  `data.pad_multiple` buckets); an evaluation split pads to its own longest.
  Either way one outlier can make every batch of a split slow.
  """
  for name, split in splits.items():
    lengths = np.maximum(split.source_lengths, split.target_lengths + 1)
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
  sources, targets = split.token_ids(indices)
  for row, (index, src, tgt) in enumerate(zip(indices, sources, targets)):
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


class TrainStream:
  """Shuffled training batches of `batch_size` sentences, indexed by step
  (see the module docstring).

  Bucketing (`bucketing`):
  * 'fitted': `batch_shapes` (source, target) shapes from `fitted_shapes`;
    every SORT_POOL batches of the epoch's permutation are sorted by (first
    shape that holds the pair, length) and cut into batches, each padded to
    the largest shape among its pairs, and the batch order is shuffled.
  * 'quantile': each side's padded length is the next of its
    `quantile_boundaries`; every SORT_POOL batches of the epoch's permutation
    are sorted by (source bucket, target bucket, length) and cut into
    batches, and the batch order is shuffled. Batches hold sentences of
    similar length on both sides (on Multi30k 92% of the positions the
    recurrences compute are real tokens, against 65% for 'multiple'), in a
    few dozen shapes.
  * 'multiple' with `pad_multiple` > 0: chunks of BUCKET_CHUNK batches are
    sorted by source + target length, and each side is padded to the next
    multiple of `pad_multiple`; with 0, unsorted batches padded to the
    longest training example.
  """
  BUCKET_CHUNK = 50
  SORT_POOL = 1000

  def __init__(self, split: Split, batch_size: int, seed: int,
               source_length: int, target_length: int, reverse_source: bool,
               pad_multiple: int = 0, bucketing: str = "multiple",
               length_buckets: int = 6, batch_shapes: int = 14):
    if len(split) < batch_size:
      raise ValueError(f"training split has {len(split)} examples, fewer than "
                       f"config.train.batch_size={batch_size}")
    self.split = split
    self.batch_size = batch_size
    self.seed = seed
    self.shape = (source_length, target_length)
    self.reverse_source = reverse_source
    self.pad_multiple = pad_multiple
    self.bucketing = bucketing
    self.batches_per_epoch = len(split) // batch_size  # drop the remainder
    self._source = np.asarray(split.source_lengths, np.int32)
    self._target = np.asarray(split.target_lengths, np.int32) + 1  # BOS/EOS
    if bucketing == "fitted":
      self.fitted = fitted_shapes(self._source, self._target, batch_shapes)
      self._shape_of = first_holding(self.fitted, self._source,
                                     self._target).astype(
          np.uint8 if len(self.fitted) < 256 else np.int32)
    if bucketing == "quantile":
      self.boundaries = (quantile_boundaries(self._source, length_buckets),
                         quantile_boundaries(self._target, length_buckets))
      # A byte an example per side where there are under 256 buckets.
      self._buckets = tuple(
          np.searchsorted(bounds, lengths).astype(
              np.uint8 if len(bounds) < 256 else np.int32)
          for bounds, lengths in zip(self.boundaries,
                                     (self._source, self._target)))
    self._epoch, self._batches = None, None

  def _sorted(self, part: np.ndarray) -> np.ndarray:
    if self.bucketing == "fitted":
      return part[np.lexsort((self._source[part] + self._target[part],
                              self._shape_of[part]))]
    if self.bucketing == "quantile":
      return part[np.lexsort((self._source[part] + self._target[part],
                              self._buckets[1][part], self._buckets[0][part]))]
    return part[np.argsort(self._source[part] + self._target[part] - 1,
                           kind="stable")]

  def _epoch_batches(self, epoch: int) -> np.ndarray:
    """[batches_per_epoch, batch_size] example indices of an epoch."""
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      order = rng.permutation(len(self.split)).astype(np.int32)
      order = order[:self.batches_per_epoch * self.batch_size]
      if self.bucketing != "multiple" or self.pad_multiple:
        pool = (self.BUCKET_CHUNK if self.bucketing == "multiple"
                else self.SORT_POOL) * self.batch_size
        order = np.concatenate([
            self._sorted(part)
            for part in np.split(order, range(pool, len(order), pool))])
        batches = order.reshape(self.batches_per_epoch, self.batch_size)
        batches = batches[rng.permutation(self.batches_per_epoch)]
      else:
        batches = order.reshape(self.batches_per_epoch, self.batch_size)
      self._epoch, self._batches = epoch, batches
    return self._batches

  def describe(self) -> str | None:
    """The padded shapes, for the run's log (None for `multiple`)."""
    if self.bucketing == "fitted":
      return ("batch shapes ((source, target) padded lengths): "
              + ", ".join(str(tuple(shape)) for shape in self.fitted.tolist()))
    if self.bucketing == "quantile":
      return ("length buckets (padded lengths): source "
              f"{self.boundaries[0].tolist()}, target "
              f"{self.boundaries[1].tolist()}")
    return None

  def padded_shape(self, indices: np.ndarray) -> Tuple[int, int]:
    """(source, target) padded lengths of a batch of these examples."""
    source_length, target_length = self.shape
    if self.bucketing == "fitted":
      return tuple(int(n) for n in self.fitted[self._shape_of[indices].max()])
    if self.bucketing == "quantile":
      return (int(self.boundaries[0][self._buckets[0][indices].max()]),
              int(self.boundaries[1][self._buckets[1][indices].max()]))
    if self.pad_multiple:
      source_length = min(source_length, round_up(
          int(self._source[indices].max()), self.pad_multiple))
      target_length = min(target_length, round_up(
          int(self._target[indices].max()), self.pad_multiple))
    return source_length, target_length

  def batch(self, step: int, shard: Shard = (0, 1)) -> Batch:
    """The batch consumed by training step `step` (0-based); with `shard`,
    only that process's rows (the padded shape is the global batch's)."""
    epoch, position = divmod(step, self.batches_per_epoch)
    indices = self._epoch_batches(epoch)[position]
    return make_batch(self.split, indices[shard_rows(len(indices), shard)],
                      *self.padded_shape(indices), self.reverse_source)


class TokenBudgetStream:
  """Shuffled training batches of about `batch_tokens` padded tokens each.

  Each example falls in a bucket with a padded shape (S, T): with
  `bucketing='multiple'` both are its longer side (target with BOS/EOS)
  rounded up to `pad_multiple`; with 'quantile' each side is rounded up to
  its own `quantile_boundaries`; with 'fitted' a pair's shape is the first
  of `fitted_shapes` that holds it. A batch of bucket (S, T) has
  rows = batch_tokens // max(S, T). Short sentences thus come
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
               pad_multiple: int, row_multiple: int = 1,
               bucketing: str = "multiple", length_buckets: int = 6,
               batch_shapes: int = 14):
    self.split = split
    self.seed = seed
    self.reverse_source = reverse_source
    self.row_multiple = row_multiple
    source = np.asarray(split.source_lengths, np.int64)
    target = np.asarray(split.target_lengths, np.int64) + 1
    if bucketing == "fitted":
      fitted = fitted_shapes(source, target, batch_shapes)
      shapes = fitted[first_holding(fitted, source, target)]
    elif bucketing == "quantile":
      bounds = (quantile_boundaries(source, length_buckets),
                quantile_boundaries(target, length_buckets))
      shapes = np.stack([bounds[0][np.searchsorted(bounds[0], source)],
                         bounds[1][np.searchsorted(bounds[1], target)]], 1)
    else:
      if pad_multiple <= 0:
        raise ValueError("config.train.batch_tokens needs length buckets: set "
                         "config.data.pad_multiple > 0")
      longest = round_up(max(source_length, target_length), pad_multiple)
      padded = np.minimum(-(-np.maximum(source, target) // pad_multiple)
                          * pad_multiple, longest)
      shapes = np.stack([padded, padded], 1)
    # One bucket id per distinct shape, in increasing shape order.
    unique, self._bucket_of = np.unique(shapes, axis=0, return_inverse=True)
    self._bucket_of = self._bucket_of.reshape(-1)
    self.rows = {}
    for source_length, target_length in unique.tolist():
      longer = max(source_length, target_length)
      rows = batch_tokens // longer
      if rows < 1:
        raise ValueError(
            f"config.train.batch_tokens={batch_tokens} cannot hold one "
            f"example of padded length {longer}; use at least {longer}")
      self.rows[(source_length, target_length)] = rows
    counts = np.bincount(self._bucket_of, minlength=len(unique))
    self.batches_per_epoch = sum(-(-int(count) // rows) for count, rows in
                                 zip(counts, self.rows.values()))
    self._epoch, self._batches = None, None

  @property
  def shapes(self):
    """{(source, target) padded lengths: rows}: the batch shapes."""
    return dict(self.rows)

  def describe(self) -> str:
    """The shapes and their rows, for the run's log."""
    return ("token-budget batches ((source, target) padded lengths: rows): "
            + ", ".join(f"{shape}: {rows}" for shape, rows in self.rows.items())
            + f"; {self.batches_per_epoch} batches per epoch")

  def _epoch_batches(self, epoch: int):
    """The epoch's batches: a list of ((S, T), example indices)."""
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      order = rng.permutation(len(self.split))
      batches = []
      for bucket, (shape, rows) in enumerate(self.rows.items()):
        members = order[self._bucket_of[order] == bucket]
        batches += [(shape, members[start:start + rows])
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
    shape, indices = self._epoch_batches(epoch)[position]
    rows = shard_rows(round_up(self.rows[shape], self.row_multiple), shard)
    return make_batch(self.split, indices[rows], *shape,
                      self.reverse_source, rows.stop - rows.start)


def train_stream(split: Split, data, train, seed: int, shapes: Tuple[int, int],
                 row_multiple: int = 1):
  """The training stream a run's settings ask for: batches of
  `train.batch_size` sentences, or of `train.batch_tokens` tokens (rows a
  multiple of `row_multiple`, e.g. the device count).

  Args:
    data, train: the run's DataSettings and TrainSettings.
    shapes: (source_length, target_length), the longest padded lengths.
  Raises ValueError for settings the data cannot satisfy.
  """
  if not train.batch_tokens:
    return TrainStream(split, train.batch_size, seed, *shapes,
                       data.reverse_source, data.pad_multiple, data.bucketing,
                       data.length_buckets, data.batch_shapes)
  return TokenBudgetStream(
      split, train.batch_tokens, seed, *shapes, data.reverse_source,
      data.pad_multiple, row_multiple=row_multiple, bucketing=data.bucketing,
      length_buckets=data.length_buckets, batch_shapes=data.batch_shapes)


def eval_batches(split: Split, batch_size: int, source_length: int,
                 target_length: int, reverse_source: bool,
                 limit: int | None = None) -> Iterator[Batch]:
  """Every example once, in order, in fixed-shape batches (last one padded)."""
  total = len(split) if limit is None else min(limit, len(split))
  for start in range(0, total, batch_size):
    indices = range(start, min(start + batch_size, total))
    yield make_batch(split, indices, source_length, target_length,
                     reverse_source, batch_size)
