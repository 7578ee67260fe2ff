"""data/length_buckets.py: the padded shapes each bucketing scheme uses."""
import numpy as np

from seq2seq_jax.data.length_buckets import (first_holding, fitted_shapes,
                                             quantile_boundaries)


def test_quantile_boundaries_follow_the_lengths_then_grow_to_the_longest():
  lengths = np.arange(1, 101)  # 1 .. 100, uniform
  np.testing.assert_array_equal(quantile_boundaries(lengths, 4),
                                [26, 51, 76, 99, 100])
  # A long tail steps up by 30% rather than padding to the longest at once.
  tail = np.concatenate([np.full(90, 10), np.arange(11, 61)])
  np.testing.assert_array_equal(quantile_boundaries(tail, 2),
                                [10, 13, 17, 23, 30, 39, 51, 60])
  np.testing.assert_array_equal(quantile_boundaries([3, 3, 3], 6), [3])
  np.testing.assert_array_equal(quantile_boundaries([5, 9], 1), [9])


def _translation_lengths(n, seed=0):
  """Source lengths 1-40 and target lengths that follow them, as in a
  translation corpus."""
  rng = np.random.default_rng(seed)
  source = np.minimum(rng.geometric(0.08, n), 40)
  target = np.clip(source + rng.integers(-3, 4, n), 1, 45)
  return source, target


def test_fitted_shapes_form_a_chain_that_holds_every_pair():
  source, target = _translation_lengths(5_000)
  shapes = fitted_shapes(source, target, 6)
  assert 2 <= len(shapes) <= 6
  assert (np.diff(shapes, axis=0) >= 0).all()  # both sides grow
  np.testing.assert_array_equal(shapes[-1], [source.max(), target.max()])
  first = first_holding(shapes, source, target)
  assert (shapes[first, 0] >= source).all()
  assert (shapes[first, 1] >= target).all()
  # The first holding shape is the smallest in the chain that holds a pair.
  earlier = first > 0
  assert ((shapes[first[earlier] - 1, 0] < source[earlier])
          | (shapes[first[earlier] - 1, 1] < target[earlier])).all()
  np.testing.assert_array_equal(shapes, fitted_shapes(source, target, 6))
  np.testing.assert_array_equal(fitted_shapes(source, target, 1),
                                [[source.max(), target.max()]])


def test_fitted_shapes_pad_less_than_quantile_buckets_with_as_many_shapes():
  source, target = _translation_lengths(5_000, seed=1)
  bounds = [quantile_boundaries(lengths, 4)
            for lengths in (source, target)]
  quantile = np.stack([b[np.searchsorted(b, lengths)]
                       for b, lengths in zip(bounds, (source, target))], 1)
  count = len(np.unique(quantile, axis=0))
  padded = []
  for shapes in (count // 2, count):
    shapes = fitted_shapes(source, target, shapes)
    padded.append(shapes[first_holding(shapes, source, target)].sum())
  assert padded[1] < padded[0]  # more shapes, less padding
  assert padded[1] < 0.95 * quantile.sum()
  assert padded[0] < quantile.sum()  # with half the shapes, still less
