"""Batch layout, exact source reversal, and the resumable training stream."""
import numpy as np
import pytest

from seq2seq_jax.data import pipeline
from seq2seq_jax.data.corpus import Split
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID


def _split(sources, targets):
  return Split(source_ids=[np.asarray(s, np.int32) for s in sources],
               target_ids=[np.asarray(t, np.int32) for t in targets],
               source_text=[str(s) for s in sources],
               target_text=[str(t) for t in targets])


SPLIT = _split([[4, 5, 6], [7, 8], [9]], [[10, 11], [12], [13, 14, 15]])


def test_batch_layout_exact():
  batch = pipeline.make_batch(SPLIT, [0, 1, 2], 4, 4, reverse_source=False)
  np.testing.assert_array_equal(batch["source"],
                                [[4, 5, 6, 0], [7, 8, 0, 0], [9, 0, 0, 0]])
  np.testing.assert_array_equal(
      batch["target_inputs"],
      [[BOS_ID, 10, 11, 0], [BOS_ID, 12, 0, 0], [BOS_ID, 13, 14, 15]])
  np.testing.assert_array_equal(
      batch["target_outputs"],
      [[10, 11, EOS_ID, 0], [12, EOS_ID, 0, 0], [13, 14, 15, EOS_ID]])


def test_reverse_source_reverses_real_tokens_only():
  batch = pipeline.make_batch(SPLIT, [0, 1, 2], 4, 4, reverse_source=True)
  np.testing.assert_array_equal(batch["source"],
                                [[6, 5, 4, 0], [8, 7, 0, 0], [9, 0, 0, 0]])
  plain = pipeline.make_batch(SPLIT, [0, 1, 2], 4, 4, reverse_source=False)
  np.testing.assert_array_equal(batch["target_inputs"], plain["target_inputs"])


def test_too_long_example_is_an_error():
  with pytest.raises(ValueError, match="longer than the padded shape"):
    pipeline.make_batch(SPLIT, [0], 2, 4, reverse_source=False)


def test_eval_batches_pad_last_batch_with_empty_rows():
  batches = list(pipeline.eval_batches(SPLIT, 2, 4, 4, False))
  assert len(batches) == 2
  assert batches[1]["source"].shape == (2, 4)
  np.testing.assert_array_equal(batches[1]["target_outputs"][1], 0)


def test_train_stream_is_a_function_of_seed_and_step():
  split = _split([[i + 4] for i in range(10)], [[i + 4] for i in range(10)])
  a = pipeline.TrainStream(split, 3, seed=7, source_length=1, target_length=2,
                           reverse_source=False)
  b = pipeline.TrainStream(split, 3, seed=7, source_length=1, target_length=2,
                           reverse_source=False)
  # Fetch in a different order: same batches.
  later = b.batch(5)
  np.testing.assert_array_equal(a.batch(5)["source"], later["source"])
  # Each epoch (3 batches of 3, one example dropped) has no repeats.
  for epoch in range(3):
    seen = np.concatenate([a.batch(epoch * 3 + i)["source"][:, 0]
                           for i in range(3)])
    assert len(set(seen.tolist())) == 9
  other_seed = pipeline.TrainStream(split, 3, seed=8, source_length=1,
                                    target_length=2, reverse_source=False)
  assert any(not np.array_equal(a.batch(i)["source"], other_seed.batch(i)["source"])
             for i in range(3))


def test_bucketed_stream_pads_to_multiples_and_covers_the_epoch():
  rng = np.random.default_rng(0)
  lengths = rng.integers(1, 30, size=200)
  split = _split([[4] * n for n in lengths], [[5] * (n // 2 + 1) for n in lengths])
  stream = pipeline.TrainStream(split, 10, seed=3, source_length=29,
                                target_length=16, reverse_source=False,
                                pad_multiple=8)
  shapes, seen, padding, real = set(), [], 0, 0
  for step in range(stream.batches_per_epoch):
    batch = stream.batch(step)
    shapes.add(batch["source"].shape[1])
    assert batch["source"].shape[1] in (8, 16, 24, 29)
    seen.extend(int((row != 0).sum()) for row in batch["source"])
    padding += int((batch["source"] == 0).sum())
    real += int((batch["source"] != 0).sum())
  assert sorted(seen) == sorted(lengths.tolist())  # every example once
  assert len(shapes) <= 4
  # Sorting within chunks keeps padding far below padding to the longest.
  assert padding < 0.25 * real


def _random_split(n, seed=0, longest=30):
  rng = np.random.default_rng(seed)
  sources = [rng.integers(4, 50, rng.integers(1, longest)).tolist()
             for _ in range(n)]
  targets = [rng.integers(4, 50, rng.integers(1, longest)).tolist()
             for _ in range(n)]
  return _split(sources, targets)


def _first_token_signature(batch):
  """(source, target) rows of a batch as tuples, empty rows left out."""
  rows = []
  for source, target in zip(batch["source"], batch["target_outputs"]):
    if target[0]:
      rows.append((tuple(source[source > 0]), tuple(target[target > 0])))
  return rows


def test_token_budget_stream_covers_each_epoch_once_within_budget():
  split = _random_split(300)
  stream = pipeline.TokenBudgetStream(split, batch_tokens=256, seed=3,
                                      source_length=29, target_length=30,
                                      reverse_source=False, pad_multiple=8,
                                      row_multiple=2)
  assert set(stream.shapes) <= {(8, 8), (16, 16), (24, 24), (32, 32)}
  assert all(rows * length <= 256
             for (length, _), rows in stream.shapes.items())
  for epoch in range(2):
    seen = []
    for step in range(epoch * stream.batches_per_epoch,
                      (epoch + 1) * stream.batches_per_epoch):
      batch = stream.batch(step)
      rows, length = batch["source"].shape
      assert batch["target_outputs"].shape == (rows, length)
      assert pipeline.round_up(stream.shapes[(length, length)], 2) == rows
      seen += _first_token_signature(batch)
    expected = [(tuple(s), tuple(t) + (EOS_ID,))
                for s, t in zip(split.source_ids, split.target_ids)]
    assert sorted(seen) == sorted(expected)  # every example exactly once


def test_token_budget_stream_is_a_function_of_seed_and_step():
  split = _random_split(200)
  make = lambda seed: pipeline.TokenBudgetStream(split, 200, seed, 29, 30,
                                                 False, 8)
  stream, again = make(1), make(1)
  for step in [0, 5, stream.batches_per_epoch + 2, 3]:
    for key, value in stream.batch(step).items():
      np.testing.assert_array_equal(value, again.batch(step)[key])
  assert any(not np.array_equal(make(1).batch(s)["source"],
                                make(2).batch(s)["source"]) for s in range(5))


def test_token_budget_batches_do_not_depend_on_the_device_count():
  split = _random_split(300)
  make = lambda devices: pipeline.TokenBudgetStream(
      split, 200, 4, 29, 30, False, 8, row_multiple=devices)
  one, three = make(1), make(3)
  assert one.batches_per_epoch == three.batches_per_epoch
  for step in range(one.batches_per_epoch + 3):
    a, b = one.batch(step), three.batch(step)
    rows = len(a["source"])
    assert len(b["source"]) == pipeline.round_up(rows, 3)
    for key in a:
      np.testing.assert_array_equal(b[key][:rows], a[key])  # same examples
      assert not b[key][rows:].any()  # and empty rows to split evenly
    # Each of 3 processes reads its block of the padded batch.
    blocks = [three.batch(step, shard=(i, 3))["source"] for i in range(3)]
    np.testing.assert_array_equal(np.concatenate(blocks), b["source"])


def test_outliers_are_warned_about(caplog):
  split = _split([[4, 5]] * 50 + [[4] * 300], [[6]] * 51)
  with caplog.at_level("WARNING"):
    pipeline.warn_about_outliers({"test": split, "train": _split(
        [[4, 5]] * 50, [[6]] * 50)})
  assert "test: 1 example(s) have up to 300 tokens where 95% have at most" in (
      caplog.text)
  assert "train:" not in caplog.text


def test_token_budget_too_small_for_the_longest_bucket_is_an_error():
  with pytest.raises(ValueError, match="batch_tokens=20 cannot hold one "
                     "example of padded length 24"):
    pipeline.TokenBudgetStream(_split([[4] * 20], [[5] * 3]), 20, 0, 20, 4,
                               False, 8)


def test_fitted_batches_cover_the_epoch_in_the_fitted_shapes():
  split = _random_split(2_000, longest=40)
  stream = pipeline.TrainStream(split, 16, seed=5, source_length=39,
                                target_length=40, reverse_source=False,
                                bucketing="fitted", batch_shapes=8)
  fitted = {tuple(shape) for shape in stream.fitted.tolist()}
  seen, used = [], set()
  for step in range(stream.batches_per_epoch):
    batch = stream.batch(step)
    used.add((batch["source"].shape[1], batch["target_inputs"].shape[1]))
    seen += _first_token_signature(batch)
  assert used <= fitted and len(fitted) <= 8
  assert sorted(seen) == sorted((tuple(s), tuple(t) + (EOS_ID,)) for s, t in
                                zip(split.source_ids, split.target_ids))
  multiple = pipeline.TrainStream(split, 16, 5, 39, 40, False, pad_multiple=8)
  assert (_real_fraction(stream, stream.batches_per_epoch)
          > _real_fraction(multiple, stream.batches_per_epoch)).all()


def _real_fraction(stream, steps):
  """(source, target) fraction of padded positions that are real tokens."""
  real, padded = np.zeros(2), np.zeros(2)
  for step in range(steps):
    batch = stream.batch(step)
    for side, key in enumerate(("source", "target_outputs")):
      real[side] += (batch[key] != 0).sum()
      padded[side] += batch[key].size
  return real / padded


def test_quantile_buckets_cover_the_epoch_with_little_padding():
  split = _random_split(2_000, longest=40)
  stream = pipeline.TrainStream(split, 16, seed=5, source_length=39,
                                target_length=40, reverse_source=False,
                                bucketing="quantile", length_buckets=6)
  seen = []
  for step in range(stream.batches_per_epoch):
    batch = stream.batch(step)
    source_length, target_length = batch["source"].shape[1], batch[
        "target_inputs"].shape[1]
    assert source_length in stream.boundaries[0]
    assert target_length in stream.boundaries[1]
    seen += _first_token_signature(batch)
  expected = [(tuple(s), tuple(t) + (EOS_ID,))
              for s, t in zip(split.source_ids, split.target_ids)]
  assert len(seen) == 16 * stream.batches_per_epoch == 2_000
  assert sorted(seen) == sorted(expected)
  multiple = pipeline.TrainStream(split, 16, 5, 39, 40, False, pad_multiple=8)
  quantile = _real_fraction(stream, stream.batches_per_epoch)
  assert quantile.min() > 0.8  # lengths drawn independently per side
  assert (quantile > _real_fraction(multiple, stream.batches_per_epoch)).all()


def test_quantile_stream_is_a_function_of_seed_and_step():
  split = _random_split(500)
  make = lambda seed: pipeline.TrainStream(split, 10, seed, 29, 30, False,
                                           bucketing="quantile")
  stream, again = make(4), make(4)
  for step in [0, 7, stream.batches_per_epoch + 1, 3]:
    for key, value in stream.batch(step).items():
      np.testing.assert_array_equal(value, again.batch(step)[key])
  assert any(not np.array_equal(make(4).batch(s)["source"],
                                make(5).batch(s)["source"]) for s in range(5))
  # A process reads its rows of the global batch, padded alike.
  halves = [stream.batch(9, shard=(i, 2))["source"] for i in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves),
                                stream.batch(9)["source"])


@pytest.mark.parametrize("buckets", [{"bucketing": "quantile"},
                                     {"bucketing": "fitted", "batch_shapes": 5}])
def test_token_budget_batches_keep_each_pair_in_its_bucket(buckets):
  split = _random_split(400)
  stream = pipeline.TokenBudgetStream(split, 256, 3, 29, 30, False,
                                      pad_multiple=0, **buckets)
  if buckets["bucketing"] == "fitted":
    assert len(stream.shapes) <= 5
  seen = []
  for step in range(stream.batches_per_epoch):
    batch = stream.batch(step)
    rows, source_length = batch["source"].shape
    target_length = batch["target_inputs"].shape[1]
    assert stream.shapes[(source_length, target_length)] == rows
    assert rows * max(source_length, target_length) <= 256
    seen += _first_token_signature(batch)
  assert sorted(seen) == sorted((tuple(s), tuple(t) + (EOS_ID,)) for s, t in
                                zip(split.source_ids, split.target_ids))
