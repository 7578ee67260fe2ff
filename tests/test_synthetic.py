"""Synthetic tasks: correct targets, disjoint splits, determinism, TFDS round trip."""
import pytest

from seq2seq_jax.data import synthetic
from seq2seq_jax.data import synthetic_builder


def _spec(task, **overrides):
  values = dict(task=task, min_length=1, max_length=4, num_symbols=8,
                num_train=300, num_validation=50, num_test=50, seed=0)
  values.update(overrides)
  return synthetic.TaskSpec(**values)


@pytest.mark.parametrize("task", ["addition", "copy", "reverse", "sort"])
def test_targets_are_correct_and_splits_disjoint(task):
  splits = synthetic.generate(_spec(task))
  assert {k: len(v) for k, v in splits.items()} == {
      "train": 300, "validation": 50, "test": 50}
  sources = [set(s for s, _ in splits[name]) for name in splits]
  assert not sources[0] & sources[1] and not sources[0] & sources[2]
  assert not sources[1] & sources[2]
  for source, target in splits["train"]:
    if task == "addition":
      a, b = source.split("+")
      assert int(target) == int(a) + int(b)
      assert 1 <= len(a) <= 4 and (len(a) == 1 or a[0] != "0")
    elif task == "copy":
      assert target == source
    elif task == "reverse":
      assert target == source[::-1]
    else:
      assert list(target) == sorted(source)
      assert set(source) <= set(synthetic.SYMBOLS[:8])


def test_generation_is_deterministic_per_seed():
  assert synthetic.generate(_spec("sort")) == synthetic.generate(_spec("sort"))
  assert synthetic.generate(_spec("sort")) != synthetic.generate(
      _spec("sort", seed=1))


def test_impossible_sizes_name_the_options():
  with pytest.raises(ValueError, match="num_train"):
    synthetic.validate(_spec("copy", num_symbols=2, max_length=2))
  with pytest.raises(ValueError, match="num_symbols"):
    synthetic.validate(_spec("copy", num_symbols=100))
  with pytest.raises(ValueError, match="unknown task"):
    synthetic.validate(_spec("multiply"))


def test_tfds_builder_round_trip(tfds_dir):
  spec = _spec("reverse")
  sources = synthetic_builder.prepare(spec, tfds_dir)
  generated = synthetic.generate(spec)
  for split in ("train", "validation", "test"):
    records = [sources[split][i] for i in range(len(sources[split]))]
    pairs = {(r["source"].decode(), r["target"].decode()) for r in records}
    assert pairs == set(generated[split])
