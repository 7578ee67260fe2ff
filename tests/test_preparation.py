"""A text corpus is prepared once into a token store and reopened by name:
the same data and options reuse it, anything else prepares anew; worker
processes give the same store as one process; the `parallel` task reads
a split per file prefix."""
import filecmp
import json
import os

import numpy as np
import pytest

from configs import eng_fra_tutorial
from configs import multi30k
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data.text import preparation
from seq2seq_jax.data.text import token_store
from seq2seq_jax.data.text import translation
from seq2seq_jax.data.text.text_pairs import DataError
from tests.conftest import tiny_multi30k


def _tsv(tmp_path, count=400, name="pairs.txt"):
  path = tmp_path / name
  path.write_text("".join(f"I see {i % 37} cats, {i}.\tJe vois {i} chats.\n"
                          for i in range(count)), encoding="utf-8")
  return str(path)


def _tsv_data(path, data_dir, **data):
  config = eng_fra_tutorial.get_config()
  config.data.path = str(path)
  config.data.preset = "none"
  config.data.tfds_data_dir = str(data_dir)
  for key, value in data.items():
    node = config.data
    *sections, last = key.split(".")
    for section in sections:
      node = node[section]
    node[last] = value
  return settings_lib.from_config(config).data


def _stores(data_dir):
  root = preparation.store_root(str(data_dir))
  return sorted(n for n in os.listdir(root) if not n.endswith(".lock"))


def test_a_corpus_is_prepared_once_then_opened_without_reading(
    tmp_path, monkeypatch):
  data = _tsv_data(_tsv(tmp_path), tmp_path / "data")
  corpus = translation.load(data)
  assert _stores(tmp_path / "data") == [corpus.dataset]
  assert isinstance(corpus.splits["train"], token_store.StoredSplit)
  assert (len(corpus.splits["train"]) + len(corpus.splits["validation"])
          + len(corpus.splits["test"])) == 400

  def no_reading(*_):
    raise AssertionError("a prepared corpus was read again")
  monkeypatch.setattr(translation, "read_splits", no_reading)
  again = translation.load(data)
  assert again.dataset == corpus.dataset
  assert again.source_vocab.fingerprint() == corpus.source_vocab.fingerprint()
  sample = [0, 5, len(corpus.splits["train"]) - 1]
  for a, b in zip(corpus.splits["train"].examples(sample),
                  again.splits["train"].examples(sample)):
    np.testing.assert_array_equal(a.source_ids, b.source_ids)
  assert again.splits["test"].target_text == corpus.splits["test"].target_text


def test_the_build_report_is_logged_at_every_start(tmp_path, caplog):
  data = _tsv_data(_tsv(tmp_path), tmp_path / "data")
  for _ in range(2):  # prepares, then opens
    caplog.clear()
    with caplog.at_level("INFO"):
      translation.load(data)
    assert "kept 400 pairs; filtered: none; rejected: none" in caplog.text
    assert "overlap with train (sources/targets): validation 0/0" in (
        caplog.text)


def test_the_store_holds_the_tokens_of_the_text(tmp_path):
  corpus = translation.load(_tsv_data(_tsv(tmp_path), tmp_path / "data"))
  train = corpus.splits["train"]
  for example in train.examples(range(len(train))):
    assert example.source_text == f"Je vois {example.line - 1} chats."
    assert list(example.source_ids) == corpus.source_vocab.encode(
        example.source_text)
    assert list(example.target_ids) == corpus.target_vocab.encode(
        example.target_text)
  # The vocabularies were built on the training split only.
  test_only = {corpus.splits["test"].source_text[0].split()[2]}
  assert test_only.isdisjoint(corpus.source_vocab.words)


def test_edited_data_or_a_changed_option_prepares_anew(tmp_path):
  path = _tsv(tmp_path)
  data_dir = tmp_path / "data"
  first = translation.load(_tsv_data(path, data_dir)).dataset
  names = {first}
  for change in [{"vocab.min_count": 2}, {"strict": True},
                 {"max_words": 5}, {"max_held_out": 10},
                 {"vocab.shared": True}]:
    names.add(translation.load(_tsv_data(path, data_dir, **change)).dataset)
  assert len(names) == 6 and len(_stores(data_dir)) == 6
  with open(path, "a", encoding="utf-8") as f:
    f.write("A new line.\tUne nouvelle ligne.\n")
  edited = translation.load(_tsv_data(path, data_dir))
  assert edited.dataset not in names
  assert edited.dataset.split("_d")[0] == first.split("_d")[0]  # same options


def test_worker_processes_write_the_same_store_as_one_process(tmp_path):
  path = _tsv(tmp_path, count=1_500)
  one = translation.load(_tsv_data(path, tmp_path / "one"), workers=0)
  two = translation.load(_tsv_data(path, tmp_path / "two"), workers=2)
  assert one.dataset == two.dataset
  first = os.path.join(preparation.store_root(str(tmp_path / "one")),
                       one.dataset)
  second = os.path.join(preparation.store_root(str(tmp_path / "two")),
                        two.dataset)
  names = sorted(os.listdir(first))
  assert names == sorted(os.listdir(second))
  for name in names:
    if name != token_store.MANIFEST_FILE:
      assert filecmp.cmp(os.path.join(first, name), os.path.join(second, name),
                         shallow=False), name
  manifests = [json.load(open(os.path.join(d, token_store.MANIFEST_FILE),
                              encoding="utf-8")) for d in (first, second)]
  for manifest in manifests:
    del manifest["prepared_in_s"]
  assert manifests[0] == manifests[1]


def test_an_unfinished_preparation_is_not_used(tmp_path):
  data = _tsv_data(_tsv(tmp_path), tmp_path / "data")
  name = translation.dataset_name(data)
  directory = os.path.join(preparation.store_root(data.tfds_data_dir), name)
  os.makedirs(directory)  # a store cut short: files but no manifest
  (tmp_path / "data" / "seq2seq_jax" / name / "train.lengths.npy").write_text("")
  corpus = translation.load(data)
  assert len(corpus.splits["train"]) > 300


def test_a_sentencepiece_store_encodes_with_its_model(tmp_path):
  data = _tsv_data(_tsv(tmp_path), tmp_path / "data", **{
      "vocab.kind": "sentencepiece", "vocab.size": 60, "vocab.shared": True,
      "vocab.sample_sentences": 50})
  corpus = translation.load(data)
  assert corpus.source_vocab is not None
  assert corpus.source_vocab.fingerprint() == corpus.target_vocab.fingerprint()
  train = corpus.splits["train"]
  for example in train.examples([0, 1, 2]):
    assert list(example.target_ids) == corpus.target_vocab.encode(
        example.target_text)


def _parallel_data(directory, data_dir, **data):
  config = multi30k.get_config()
  config.data.task = "parallel"
  config.data.path = ""
  config.data.train_prefix = os.path.join(directory, "train")
  config.data.validation_prefix = os.path.join(directory, "val")
  config.data.test_prefix = os.path.join(directory, "test_2016_flickr")
  config.data.tfds_data_dir = str(data_dir)
  for key, value in data.items():
    config.data[key] = value
  return settings_lib.from_config(config).data


def test_parallel_files_read_like_multi30k(tmp_path):
  directory = tiny_multi30k(str(tmp_path / "corpus"))
  parallel = translation.load(_parallel_data(directory, tmp_path / "data"))
  config = multi30k.get_config()
  config.data.path = directory
  config.data.tfds_data_dir = str(tmp_path / "data")
  m30k = translation.load(settings_lib.from_config(config).data)
  assert parallel.dataset.startswith("parallel_de-en_o")
  assert m30k.dataset.startswith("multi30k_de-en_o")
  for name in ("validation", "test"):
    assert parallel.splits[name].source_text == m30k.splits[name].source_text
    assert parallel.splits[name].lines == m30k.splits[name].lines
  assert len(parallel.splits["train"]) == len(m30k.splits["train"]) == 300


def test_parallel_files_errors_name_the_option_or_the_file(tmp_path):
  directory = tiny_multi30k(str(tmp_path / "corpus"))
  with pytest.raises(settings_lib.ConfigError,
                     match=r"config.data.test_prefix: .*nope.de does not exist"):
    _parallel_data(directory, tmp_path / "data",
                   test_prefix=os.path.join(directory, "nope"))
  with pytest.raises(settings_lib.ConfigError,
                     match="config.data.validation_prefix: task 'parallel' "
                     "needs"):
    _parallel_data(directory, tmp_path / "data", validation_prefix="")
  with open(os.path.join(directory, "val.en"), "a", encoding="utf-8") as f:
    f.write("an extra line\n")
  with pytest.raises(DataError, match=r"val.de has 20 lines but .*val.en has "
                     "21"):
    translation.load(_parallel_data(directory, tmp_path / "data"))


def test_a_tfds_translation_dataset_goes_through_the_same_store(
    tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")
  from seq2seq_jax.data.text import text_corpora  # pylint: disable=g-import-not-at-top
  # TFDS's mock data source breaks batched reads (real ones have them).
  monkeypatch.setattr(text_corpora.TranslationSource, "__getitems__",
                      lambda self, indices: [self[i] for i in indices])
  config = multi30k.get_config()
  config.data.task, config.data.path = "tfds", ""
  config.data.tfds_name = "wmt14_translate/de-en"
  config.data.tfds_data_dir = str(tmp_path / "data")
  config.data.vocab.min_count = 1
  with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path / "data")):
    data = settings_lib.from_config(config).data
    corpus = translation.load(data)
    raw = tfds.data_source("wmt14_translate/de-en", split="test",
                           data_dir=str(tmp_path / "data"))
    assert corpus.dataset.startswith("tfds-wmt14-translate-de-en_de-en_")
    assert isinstance(corpus.splits["train"], token_store.StoredSplit)
    assert corpus.splits["test"].source_text == [
        r["de"].decode() if isinstance(r["de"], bytes) else r["de"]
        for r in (raw[i] for i in range(len(raw)))]
    assert translation.load(data).dataset == corpus.dataset
