"""Tests for seq2seq_jax.data.text.text_corpora: tsv splits, aligned files, TFDS."""
import dataclasses

import pytest
import tensorflow_datasets as tfds

from seq2seq_jax.data.text import parallel_tokenize
from seq2seq_jax.data.text import splitting
from seq2seq_jax.data.text import text_corpora as tc
from seq2seq_jax.data.text.text_pairs import DataError

FRACTIONS = (0.5, 0.25, 0.25)


def _write_tsv(tmp_path, lines, name="pairs.txt"):
  path = tmp_path / name
  path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
  return str(path)


ENGLISH_FRENCH = [(f"I am number {i}.", f"Je suis le numéro {i}\u202f!")
                  for i in range(40)]


def _tiny_tsv(tmp_path, name="pairs.txt"):
  lines = [f"{en}\t{fr}" for en, fr in ENGLISH_FRENCH]
  lines += ["a line without a tab",
            "They are here.\tIls sont là.\tCC-BY tatoeba"]
  return _write_tsv(tmp_path, lines, name)


@pytest.mark.parametrize("source_language", ["en", "fr"])
def test_tsv_splits_orient_and_cover_every_kept_pair(tmp_path, source_language):
  spec = tc.TsvSpec(path=_tiny_tsv(tmp_path), other_language="fr",
                    source_language=source_language, fractions=FRACTIONS)
  splits, report = tc.tsv_splits(spec)
  assert report.kept == 41 and report.rejected == {"no tab": 1}
  pairs = sorted((s, t) for records in splits.values() for _, s, t in records)
  expected = ENGLISH_FRENCH + [("They are here.", "Ils sont là.")]
  if source_language == "fr":
    expected = [(fr, en) for en, fr in expected]
  assert pairs == sorted(expected)
  assert all(splits[name] for name in splitting.SPLITS)


def test_tsv_tutorial_preset(tmp_path):
  path = _write_tsv(tmp_path, [
      "I'm cold.\tJ'ai froid.", "He's tall.\tIl est grand.",
      "She is my sister.\tC'est ma sœur.", "We're done!\tNous avons fini\u202f!",
      "Go.\tVa\u202f!", "You are much too young to understand this at all.\tTu es trop jeune.",
      "They're here.\tIls sont là."] + [f"I am {n}.\tJ'ai {n} ans." for n in "abcdefgh"])
  spec = dataclasses.replace(tc.tutorial_spec(path), fractions=(0.4, 0.3, 0.3))
  assert (spec.source_language, spec.max_length) == ("fr", 9)
  splits, report = tc.tsv_splits(spec)
  kept = sorted((s, t) for _, s, t in sum(splits.values(), []))
  assert ("j ai froid", "i m cold") in kept and ("ils sont la", "they re here") in kept
  assert ("nous avons fini !", "we re done !") in kept and len(kept) == 13
  assert report.filtered == {"no English prefix": 1, "too long": 1}


def test_tsv_errors(tmp_path):
  tiny = _write_tsv(tmp_path, ["Hello.\tBonjour.", "Bye.\tSalut."])
  with pytest.raises(DataError, match="empty split"):
    tc.tsv_splits(tc.TsvSpec(path=tiny, other_language="fr",
                             source_language="en"))
  with pytest.raises(DataError, match="no pairs left.*too long 2"):
    tc.tsv_splits(tc.TsvSpec(path=tiny, other_language="fr",
                             source_language="en", max_length=0))
  with pytest.raises(DataError, match="cannot read data file"):
    tc.tsv_splits(tc.TsvSpec(path=str(tmp_path / "missing.txt"),
                             other_language="fr", source_language="en"))
  with pytest.raises(DataError, match=r"pairs.txt:41: no tab"):
    tc.tsv_splits(tc.TsvSpec(path=_tiny_tsv(tmp_path), other_language="fr",
                             source_language="en", strict=True))


def test_tsv_splits_keep_file_order_and_line_numbers(tmp_path):
  pairs = [(f"I am number {i}.", f"Je suis le numéro {i}.") for i in range(200)]
  path = _write_tsv(tmp_path, ["a line without a tab"]
                    + [f"{en}\t{fr}" for en, fr in pairs])
  splits, _ = tc.tsv_splits(tc.TsvSpec(path=path, other_language="fr",
                                       source_language="en",
                                       fractions=FRACTIONS))
  for records in splits.values():
    lines = [line for line, _, _ in records]
    assert lines == sorted(lines) and len(lines) > 20
    for line, source, target in records:  # line 1 is the bad one
      assert (source, target) == pairs[line - 2]


def test_worker_processes_split_a_tsv_file_exactly_as_one_process(tmp_path):
  lines = [f"You are {i % 70}.\tTu es {i}." for i in range(300)]
  lines[17] = "a line without a tab"
  path = _write_tsv(tmp_path, lines)
  spec = tc.TsvSpec(path=path, other_language="fr", source_language="fr",
                    fractions=FRACTIONS)
  here, here_report = tc.tsv_splits(spec)
  original_block = tc.TSV_BLOCK
  tc.TSV_BLOCK = 64  # five blocks, so the workers' reports are merged
  try:
    with parallel_tokenize.Workers(0, workers=2) as pool:
      there, there_report = tc.tsv_splits(spec, pool)
  finally:
    tc.TSV_BLOCK = original_block
  assert there == here
  assert there_report.rejected == here_report.rejected == {"no tab": 1}
  assert there_report.examples == {"no tab": [f"{path}:18"]}


def test_pairs_sharing_a_target_stay_in_one_split(tmp_path):
  # Many French sentences per English one (as in the tutorial data), and
  # chains: fr_i_a -> en_i, fr_i_a -> en_i_b.
  lines = []
  for i in range(150):
    lines += [f"You are {i}.\tTu es {i}.", f"You are {i}.\tVous êtes {i}.",
              f"You're {i}.\tTu es {i}."]
  path = _write_tsv(tmp_path, lines)
  spec = tc.TsvSpec(path=path, other_language="fr", source_language="fr",
                    fractions=(0.6, 0.2, 0.2))
  splits, _ = tc.tsv_splits(spec)
  where = {}
  for name, records in splits.items():
    assert records
    for _, source, target in records:
      for key in (("s", source), ("t", target)):
        assert where.setdefault(key, name) == name, key
  assert tc.overlap_text(splits) == (
      "overlap with train (sources/targets): validation 0/0, test 0/0")


def test_held_out_splits_are_bounded_and_unchanged_below_the_bound(tmp_path):
  lines = [f"I am {i}.\tJe suis {i}." for i in range(2_000)]
  path = _write_tsv(tmp_path, lines)
  spec = tc.TsvSpec(path=path, other_language="fr", source_language="en")
  free, _ = tc.tsv_splits(spec)
  assert 60 < len(free["validation"]) < 140  # about 5%
  bounded, _ = tc.tsv_splits(
      tc.TsvSpec(path=path, other_language="fr", source_language="en",
                 max_held_out=30))
  assert len(bounded["validation"]) == len(bounded["test"]) == 30
  for name in ("validation", "test"):  # a subset of the free split's
    assert set(bounded[name]) <= set(free[name])
  assert sum(map(len, bounded.values())) == 2_000
  loose, _ = tc.tsv_splits(tc.TsvSpec(path=path, other_language="fr",
                                      source_language="en",
                                      max_held_out=1_000))
  assert loose == free


def _aligned(tmp_path, counts=(("train", 6), ("val", 3), ("test", 2))):
  directory = tmp_path / "aligned"
  directory.mkdir()
  for stem, count in counts:
    for language, word in [("en", "A dog"), ("de", "Ein Hund")]:
      text = "".join(f"{word} {stem} {i}.\n" for i in range(count))
      (directory / f"{stem}.{language}").write_text(text, encoding="utf-8")
  return directory


def test_aligned_splits_read_each_split_in_file_order(tmp_path):
  directory = _aligned(tmp_path)
  paths = {split: (str(directory / f"{stem}.de"), str(directory / f"{stem}.en"))
           for split, stem in [("train", "train"), ("validation", "val"),
                               ("test", "test")]}
  splits, reports = tc.aligned_splits(paths)
  assert {name: len(pairs) for name, pairs in splits.items()} == {
      "train": 6, "validation": 3, "test": 2}
  assert splits["test"] == [(1, "Ein Hund test 0.", "A dog test 0."),
                            (2, "Ein Hund test 1.", "A dog test 1.")]
  assert reports["train"].kept == 6


def test_aligned_splits_errors_name_the_file_and_line(tmp_path):
  directory = _aligned(tmp_path)
  paths = {"train": (str(directory / "train.de"), str(directory / "train.en"))}
  with open(directory / "train.en", "a", encoding="utf-8") as f:
    f.write("one more line\n")
  with pytest.raises(DataError, match=r"train.de has 6 lines but .*train.en "
                     "has 7"):
    tc.aligned_splits(paths)
  (directory / "train.en").write_bytes(
      b"A dog.\n" * 3 + b"caf\xe9\n" + b"A dog.\n" * 2)
  with pytest.raises(DataError, match=r"train.en:4: invalid UTF-8"):
    tc.aligned_splits(paths, strict=True)
  splits, reports = tc.aligned_splits(paths)
  assert len(splits["train"]) == 5
  assert reports["train"].examples == {
      "invalid UTF-8": [f"{directory / 'train.en'}:4"]}
  with pytest.raises(DataError, match="cannot read data file.*nope.de"):
    tc.aligned_splits({"train": (str(directory / "nope.de"),
                                 str(directory / "train.en"))})


def test_tfds_translation_by_name_under_mock_data(tmp_path):
  data_dir = str(tmp_path / "tfds")
  with tfds.testing.mock_data(num_examples=4, data_dir=data_dir):
    sources = tc.load_tfds_translation("wmt14_translate/de-en",
                                       source_language="en",
                                       target_language="de", data_dir=data_dir)
    raw = tfds.data_source("wmt14_translate/de-en", split="test",
                           data_dir=data_dir)
    assert set(sources) == {"train", "validation", "test"}
    assert len(sources["test"]) == 4
    for i in range(4):
      record = sources["test"][i]
      assert record == {"source": raw[i]["en"], "target": raw[i]["de"],
                        "line": i + 1}
      assert isinstance(record["source"], str) and record["source"]
    with pytest.raises(ValueError, match="no language 'fr'; valid: de, en"):
      tc.load_tfds_translation("wmt14_translate/de-en", source_language="fr",
                               target_language="de", data_dir=data_dir)


class _ListSource:
  """A stand-in data source: TFDS's mock breaks __getitems__, real ones have it."""

  def __init__(self, records):
    self.records = records

  def __len__(self):
    return len(self.records)

  def __getitem__(self, i):
    return self.records[i]

  def __getitems__(self, indices):
    return [self.records[i] for i in indices]


def test_translation_source_renames_and_decodes():
  source = tc.TranslationSource(
      _ListSource([{"de": b"Hallo", "en": b"Hello"},
                   {"de": "Tsch\u00fcss", "en": "Bye"}]),
      source_key="en", target_key="de")
  assert len(source) == 2
  assert source.__getitems__([1, 0]) == [
      {"source": "Bye", "target": "Tschüss", "line": 2},
      {"source": "Hello", "target": "Hallo", "line": 1}]
