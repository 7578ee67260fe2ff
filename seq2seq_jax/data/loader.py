"""Training batches through Grain, read ahead while the step runs.

Batch k is a pure function of (seed, k) (pipeline.py), so the loader is a
Grain `MapDataset` over the step numbers, mapped to their batches:
`MapDataset.range(start, stop).map(ReadBatch)`. A resumed run starts the
range at its step, and each process reads only its rows. With
`workers` = 0 one background thread reads and pads the next batches
(`prefetch` of them) while the device computes; with `workers` > 0, Grain's
worker processes do (for slow storage or big batches).
"""
from typing import Iterator

import grain

from seq2seq_jax.data.pipeline import Batch, Shard

PREFETCH = 4


class ReadBatch(grain.transforms.Map):
  """step -> the stream's batch for that step (this process's rows)."""

  def __init__(self, stream, shard: Shard):
    self.stream, self.shard = stream, shard

  def map(self, element: int) -> Batch:
    return self.stream.batch(int(element), self.shard)


def batches(stream, start_step: int, stop_step: int, shard: Shard = (0, 1),
            workers: int = 0, prefetch: int = PREFETCH) -> Iterator[Batch]:
  """The batches of steps start_step .. stop_step - 1, in order."""
  dataset = grain.MapDataset.range(start_step, stop_step).map(
      ReadBatch(stream, shard))
  if workers > 0:
    return iter(dataset.to_iter_dataset(
        grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)).mp_prefetch(
            grain.MultiprocessingOptions(num_workers=workers,
                                         per_worker_buffer_size=prefetch)))
  # One thread: the stream caches the current epoch's plan, so the batches
  # are made in step order.
  return iter(dataset.to_iter_dataset(
      grain.ReadOptions(num_threads=1, prefetch_buffer_size=prefetch)))
