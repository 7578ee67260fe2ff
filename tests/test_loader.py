"""Grain hands the loop exactly the stream's batches, from any step, with a
prefetch thread or with worker processes, from memory or from disk."""
from absl import flags
import numpy as np
import pytest

from seq2seq_jax.data import loader
from seq2seq_jax.data import pipeline
from seq2seq_jax.data.text import token_store
from seq2seq_jax.data.corpus import Split


def _split(n=300, seed=0):
  rng = np.random.default_rng(seed)
  sources = [rng.integers(4, 50, rng.integers(1, 20)).astype(np.int32)
             for _ in range(n)]
  targets = [rng.integers(4, 50, rng.integers(1, 20)).astype(np.int32)
             for _ in range(n)]
  return Split(source_ids=sources, target_ids=targets,
               source_text=[""] * n, target_text=[""] * n,
               lines=list(range(1, n + 1)))


def _assert_same(batches, stream, steps, shard=(0, 1)):
  count = 0
  for step, batch in zip(steps, batches):
    expected = stream.batch(step, shard)
    assert batch.keys() == expected.keys()
    for key in expected:
      np.testing.assert_array_equal(batch[key], expected[key])
    count += 1
  assert count == len(steps)


@pytest.mark.parametrize("bucketing", ["fitted", "quantile", "multiple"])
def test_the_loader_gives_the_streams_batches_from_any_step(bucketing):
  stream = pipeline.TrainStream(_split(), 8, 3, 19, 20, True, pad_multiple=4,
                                bucketing=bucketing)
  # Past the first epoch (37 batches) and resumed mid-way.
  _assert_same(loader.batches(stream, 30, 80), stream, range(30, 80))
  _assert_same(loader.batches(stream, 0, 5, shard=(1, 2)), stream, range(5),
               shard=(1, 2))


def test_a_stored_split_gives_the_batches_of_the_same_split_in_memory(
    tmp_path):
  split = _split()
  writer = token_store.SplitWriter(str(tmp_path), "train")
  writer.write(split.lines, split.source_ids, split.target_ids,
               split.source_text, split.target_text)
  writer.close()
  stored = token_store.StoredSplit(str(tmp_path), "train")
  in_memory = pipeline.TrainStream(split, 8, 3, 19, 20, False,
                                   bucketing="quantile")
  on_disk = pipeline.TrainStream(stored, 8, 3, 19, 20, False,
                                 bucketing="quantile")
  _assert_same(loader.batches(on_disk, 0, 45), in_memory, range(45))


def test_grain_worker_processes_give_the_same_batches(tmp_path):
  flags.FLAGS.mark_as_parsed()  # Grain's workers read absl flags
  split = _split()
  writer = token_store.SplitWriter(str(tmp_path), "train")
  writer.write(split.lines, split.source_ids, split.target_ids,
               split.source_text, split.target_text)
  writer.close()
  stream = pipeline.TrainStream(token_store.StoredSplit(str(tmp_path), "train"),
                                8, 3, 19, 20, False, bucketing="quantile")
  _assert_same(loader.batches(stream, 10, 50, workers=2), stream,
               range(10, 50))
