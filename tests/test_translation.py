"""The parallel-text loader: malformed files stop the run, training batches
are sized from the training split, and long training pairs are capped."""
import os

import pytest

from configs import multi30k
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data import pipeline
from seq2seq_jax.data.text import translation
from seq2seq_jax.data.text.text_pairs import DataError
from seq2seq_jax.training import loop
from configs import eng_fra_tutorial


def _tsv_settings(path, tfds_dir, **data):
  config = eng_fra_tutorial.get_config()
  config.data.path = str(path)
  config.data.preset = "none"
  config.data.tfds_data_dir = tfds_dir
  for key, value in data.items():
    config.data[key] = value
  return settings_lib.from_config(config)


def test_a_mostly_rejected_file_stops_with_the_reason_and_the_fix(tmp_path,
                                                                  tfds_dir):
  lines = [f"I am number {i}.\tJe suis le numéro {i}." for i in range(100)]
  path = tmp_path / "latin1.txt"
  # 60 of 100 lines in Latin-1: "é" is not valid UTF-8 there.
  path.write_bytes(b"".join(
      (line.encode("latin-1") if i < 60 else line.encode("utf-8")) + b"\n"
      for i, line in enumerate(lines)))
  s = _tsv_settings(path, tfds_dir)
  with pytest.raises(DataError, match=r"60 of 100 lines \(60%\) were rejected, "
                     r"most as 'invalid UTF-8'.*max_rejected_fraction=0.05.*"
                     r"iconv"):
    translation.read_splits(s.data)
  # A few bad lines are fine, and the limit can be raised.
  lenient = _tsv_settings(path, tfds_dir, max_rejected_fraction=0.7)
  splits = translation.read_splits(lenient.data).splits
  assert sum(len(p) for p in splits.values()) == 40


def _multi30k_dir(directory, test_extra=()):
  os.makedirs(directory)
  rows = {"train": [("ein Hund .", "a dog .")] * 60
                   + [("ein " * 150 + ".", "a " * 150 + ".")],
          "val": [("eine Katze .", "a cat .")] * 10,
          "test_2016_flickr": [("ein Hund .", "a dog .")] * 100
                              + list(test_extra)}
  for stem, pairs in rows.items():
    for index, language in enumerate(("de", "en")):
      with open(os.path.join(directory, f"{stem}.{language}"), "w",
                encoding="utf-8") as f:
        f.writelines(pair[index] + "\n" for pair in pairs)
  return directory


def test_training_shapes_come_from_the_capped_training_split(tmp_path,
                                                             tfds_dir, caplog):
  long_test = ("ein " * 400 + ".", "a " * 400 + ".")
  config = multi30k.get_config()
  config.data.path = _multi30k_dir(str(tmp_path / "m30k"), [long_test] * 3)
  config.data.max_words = 100  # the default; the config's own 50 is lower
  config.data.vocab.min_count = 1
  config.data.tfds_data_dir = tfds_dir
  s = settings_lib.from_config(config)
  os.makedirs(tmp_path / "run")
  with caplog.at_level("WARNING"):
    corpus, train_shapes, _ = loop._set_up_data(s, str(tmp_path / "run"),  # pylint: disable=protected-access
                                                 primary=True)
  assert len(corpus.splits["train"]) == 60  # the 150-word pair was dropped
  assert len(corpus.splits["test"]) == 103  # test sets stay complete
  assert train_shapes == pipeline.max_lengths(corpus.splits["train"])
  assert train_shapes[0] < 10  # not the 401-token test sentences
  assert "test: 3 example(s) have up to 402 tokens" in caplog.text
