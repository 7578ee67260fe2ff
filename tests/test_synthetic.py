"""Synthetic tasks: correct targets, disjoint splits, determinism, TFDS round trip."""
import fcntl
import os
import threading
import time

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


def _waiting_for_a_flock() -> bool:
  """Whether this process waits for a flock (/proc/locks marks a blocked
  request with "->")."""
  with open("/proc/locks", encoding="utf-8") as f:
    return any(line.split()[1:3] == ["->", "FLOCK"] and
               line.split()[5] == str(os.getpid()) for line in f)


def test_prepare_builds_under_the_datasets_lock(tmp_path):
  spec = _spec("addition")
  directory = os.path.dirname(synthetic_builder.SyntheticTasks(
      config=synthetic_builder.builder_config(spec),
      data_dir=str(tmp_path)).data_dir)
  os.makedirs(directory)
  prepared = {}
  with open(os.path.join(directory, synthetic_builder.PREPARE_LOCK), "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)  # as another process building it would
    thread = threading.Thread(target=lambda: prepared.update(
        synthetic_builder.prepare(spec, str(tmp_path))))
    thread.start()
    deadline = time.monotonic() + 30
    while not _waiting_for_a_flock() and time.monotonic() < deadline:
      time.sleep(0.01)
    assert _waiting_for_a_flock()
    assert os.listdir(directory) == [synthetic_builder.PREPARE_LOCK]
  thread.join(timeout=60)
  assert {k: len(v) for k, v in prepared.items()} == {
      "train": 300, "validation": 50, "test": 50}
