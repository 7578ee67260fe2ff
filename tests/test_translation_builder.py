"""Tests for seq2seq_jax.data.translation_builder: TFDS builds and loaders."""
import dataclasses
import logging
import os

import pytest
import tensorflow_datasets as tfds

from seq2seq_jax.data import splitting
from seq2seq_jax.data import translation_builder as tb
from seq2seq_jax.data.text_pairs import DataError

FRACTIONS = (0.5, 0.25, 0.25)


def _records(source):
  """All records of a data source as (source, target) str tuples."""
  out = []
  for record in source.__getitems__(list(range(len(source)))):
    out.append(tuple(v.decode("utf-8") if isinstance(v, bytes) else v
                     for v in (record["source"], record["target"])))
  return out


def _write_tsv(tmp_path, lines, name="pairs.txt"):
  path = tmp_path / name
  path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
  return str(path)


ENGLISH_FRENCH = [(f"I am number {i}.", f"Je suis le numéro {i}\u202f!") for i in range(40)]


def _tiny_tsv(tmp_path, name="pairs.txt"):
  lines = [f"{en}\t{fr}" for en, fr in ENGLISH_FRENCH]
  lines += ["a line without a tab", "They are here.\tIls sont là.\tCC-BY tatoeba"]
  return _write_tsv(tmp_path, lines, name)


@pytest.mark.parametrize("source_language", ["en", "fr"])
def test_tsv_builds_into_data_sources(tmp_path, source_language):
  spec = tb.TsvSpec(path=_tiny_tsv(tmp_path), other_language="fr",
                    source_language=source_language, fractions=FRACTIONS)
  sources = tb.prepare_tsv(spec, str(tmp_path / "tfds")).sources
  assert set(sources) == {"train", "validation", "test"}
  pairs = ENGLISH_FRENCH + [("They are here.", "Ils sont là.")]
  if source_language == "fr":
    pairs = [(fr, en) for en, fr in pairs]
  got = {name: _records(source) for name, source in sources.items()}
  assert sorted(sum(got.values(), [])) == sorted(pairs)
  for name, records in got.items():
    assert records and all(splitting.split_of(s, FRACTIONS) == name for s, _ in records)


def test_tsv_tutorial_preset(tmp_path):
  path = _write_tsv(tmp_path, [
      "I'm cold.\tJ'ai froid.", "He's tall.\tIl est grand.",
      "She is my sister.\tC'est ma sœur.", "We're done!\tNous avons fini\u202f!",
      "Go.\tVa\u202f!", "You are much too young to understand this at all.\tTu es trop jeune.",
      "They're here.\tIls sont là."] + [f"I am {n}.\tJ'ai {n} ans." for n in "abcdefgh"])
  spec = dataclasses.replace(tb.tutorial_spec(path), fractions=(0.4, 0.3, 0.3))
  assert (spec.source_language, spec.max_length) == ("fr", 9)
  splits, report = tb.tsv_splits(spec)
  kept = sorted((s, t) for _, s, t in sum(splits.values(), []))
  assert ("j ai froid", "i m cold") in kept and ("ils sont la", "they re here") in kept
  assert ("nous avons fini !", "we re done !") in kept and len(kept) == 13
  assert report.filtered == {"no English prefix": 1, "too long": 1}


def test_changed_file_gets_a_new_config_and_fresh_data(tmp_path):
  path = _write_tsv(tmp_path, [f"{en}\t{fr}" for en, fr in ENGLISH_FRENCH])
  spec = tb.TsvSpec(path=path, other_language="fr", source_language="en",
                    fractions=FRACTIONS)
  first = tb.tsv_config(spec).name
  assert first.startswith("pairs-txt_en-fr_none_len1-any_o")
  data_dir = str(tmp_path / "tfds")
  before = tb.prepare_tsv(spec, data_dir).sources
  assert sum(len(s) for s in before.values()) == 40
  _write_tsv(tmp_path, [f"{en}\t{fr}" for en, fr in ENGLISH_FRENCH[:30]])
  assert tb.tsv_config(spec).name != first
  after = tb.prepare_tsv(spec, data_dir).sources
  assert sum(len(s) for s in after.values()) == 30
  other = tb.TsvSpec(path=path, other_language="fr", source_language="en",
                     fractions=(0.6, 0.2, 0.2))
  assert tb.tsv_config(other).name != tb.tsv_config(spec).name


def test_tsv_errors(tmp_path):
  tiny = _write_tsv(tmp_path, ["Hello.\tBonjour.", "Bye.\tSalut."])
  with pytest.raises(DataError, match="empty split"):
    tb.tsv_splits(tb.TsvSpec(path=tiny, other_language="fr", source_language="en"))
  with pytest.raises(DataError, match="no pairs left.*too long 2"):
    tb.tsv_splits(tb.TsvSpec(path=tiny, other_language="fr", source_language="en",
                             max_length=0))
  with pytest.raises(ValueError, match="fraction must be > 0"):
    tb.tsv_splits(tb.TsvSpec(path=tiny, other_language="fr", source_language="en",
                             fractions=(1.0, 0.0, 0.0)))
  with pytest.raises(DataError, match="cannot read"):
    tb.tsv_config(tb.TsvSpec(path=str(tmp_path / "none.txt"), other_language="fr",
                             source_language="en"))


def _tiny_multi30k(tmp_path):
  directory = tmp_path / "multi30k"
  directory.mkdir()
  for stem, count in [("train", 6), ("val", 3), ("test_2016_flickr", 2)]:
    for language, word in [("en", "A dog"), ("de", "Ein Hund"), ("fr", "Un chien")]:
      text = "".join(f"{word} {stem} {i}.\n" for i in range(count))
      (directory / f"{stem}.{language}").write_text(text, encoding="utf-8")
  return str(directory)


def test_multi30k_builds_any_language_pair(tmp_path):
  directory = _tiny_multi30k(tmp_path)
  spec = tb.Multi30kSpec(directory=directory, source_language="de", target_language="en")
  sources = tb.prepare_multi30k(spec, str(tmp_path / "tfds")).sources
  assert {name: len(s) for name, s in sources.items()} == {
      "train": 6, "validation": 3, "test": 2}
  assert _records(sources["validation"]) == [  # in file order
      (f"Ein Hund val {i}.", f"A dog val {i}.") for i in range(3)]
  fr_en, reports = tb.multi30k_splits(tb.Multi30kSpec(directory, "fr", "en"))
  assert reports["test"].kept == 2
  assert fr_en["test"] == [
      (1, "Un chien test_2016_flickr 0.", "A dog test_2016_flickr 0."),
      (2, "Un chien test_2016_flickr 1.", "A dog test_2016_flickr 1.")]


def test_build_report_is_logged_at_every_load_not_only_the_first(tmp_path,
                                                                caplog):
  spec = tb.Multi30kSpec(directory=_tiny_multi30k(tmp_path),
                         source_language="de", target_language="en")
  for _ in range(2):  # builds, then reads the prepared dataset
    caplog.clear()
    with caplog.at_level(logging.INFO):
      tb.prepare_multi30k(spec, str(tmp_path / "tfds"))
    assert "Multi30k train de-en: kept 6" in caplog.text


def test_multi30k_errors(tmp_path):
  directory = _tiny_multi30k(tmp_path)
  with pytest.raises(ValueError, match="valid: en, de, fr"):
    tb.multi30k_config(tb.Multi30kSpec(directory, "cs", "en"))
  os.remove(os.path.join(directory, "val.de"))
  with pytest.raises(DataError, match="val.de"):
    tb.multi30k_splits(tb.Multi30kSpec(directory, "de", "en"))


def test_tfds_translation_by_name_under_mock_data(tmp_path):
  data_dir = str(tmp_path / "tfds")
  with tfds.testing.mock_data(num_examples=4, data_dir=data_dir):
    sources = tb.load_tfds_translation("wmt14_translate/de-en", source_language="en",
                                       target_language="de", data_dir=data_dir)
    raw = tfds.data_source("wmt14_translate/de-en", split="test", data_dir=data_dir)
    assert set(sources) == {"train", "validation", "test"}
    assert len(sources["test"]) == 4
    for i in range(4):
      record = sources["test"][i]
      assert record == {"source": raw[i]["en"], "target": raw[i]["de"],
                        "line": i + 1}
      assert isinstance(record["source"], str) and record["source"]
    with pytest.raises(ValueError, match="no language 'fr'; valid: de, en"):
      tb.load_tfds_translation("wmt14_translate/de-en", source_language="fr",
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
  source = tb.TranslationSource(
      _ListSource([{"de": b"Hallo", "en": b"Hello"}, {"de": "Tsch\u00fcss", "en": "Bye"}]),
      source_key="en", target_key="de")
  assert len(source) == 2
  assert source.__getitems__([1, 0]) == [
      {"source": "Bye", "target": "Tschüss", "line": 2},
      {"source": "Hello", "target": "Hallo", "line": 1}]


def test_splits_keep_file_order_and_line_numbers(tmp_path):
  # 200 pairs: TFDS's shuffling would scramble them; the builder must not.
  pairs = [(f"I am number {i}.", f"Je suis le numéro {i}.") for i in range(200)]
  path = _write_tsv(tmp_path, ["a line without a tab"]
                    + [f"{en}\t{fr}" for en, fr in pairs])
  spec = tb.TsvSpec(path=path, other_language="fr", source_language="en",
                    fractions=FRACTIONS)
  prepared = tb.prepare_tsv(spec, str(tmp_path / "tfds"))
  for source in prepared.sources.values():
    records = source.__getitems__(list(range(len(source))))
    lines = [int(r["line"]) for r in records]
    assert lines == sorted(lines) and len(lines) > 20
    for record, line in zip(records, lines):  # line 1 is the bad one
      assert record["source"].decode() == pairs[line - 2][0]
  assert prepared.name.startswith("tsv_translation/pairs-txt_en-fr") and (
      prepared.name.endswith(":2.0.0"))


def test_pairs_sharing_a_target_stay_in_one_split(tmp_path):
  # Many French sentences per English one (as in the tutorial data), and
  # chains: fr_i_a -> en_i, fr_i_a -> en_i_b.
  lines = []
  for i in range(150):
    lines += [f"You are {i}.\tTu es {i}.", f"You are {i}.\tVous êtes {i}.",
              f"You're {i}.\tTu es {i}."]
  path = _write_tsv(tmp_path, lines)
  spec = tb.TsvSpec(path=path, other_language="fr", source_language="fr",
                    fractions=(0.6, 0.2, 0.2))
  splits, _ = tb.tsv_splits(spec)
  where = {}
  for name, records in splits.items():
    assert records
    for _, source, target in records:
      for key in (("s", source), ("t", target)):
        assert where.setdefault(key, name) == name, key
  overlap = splitting.overlap({n: [(s, t) for _, s, t in r]
                                for n, r in splits.items()})
  assert overlap == {"validation": {"source": 0, "target": 0},
                     "test": {"source": 0, "target": 0}}
  report = tb.prepare_tsv(spec, str(tmp_path / "tfds")).report
  assert "overlap with train (sources/targets): validation 0/0, test 0/0" in report


def test_every_option_is_part_of_the_dataset_identity(tmp_path):
  path = _tiny_tsv(tmp_path)
  spec = tb.TsvSpec(path=path, other_language="fr", source_language="en",
                    fractions=FRACTIONS)
  names = {tb.tsv_config(spec).name}
  for change in [{"strict": True}, {"english_prefixes": ("i am",)},
                 {"normalization": "tutorial"}]:
    names.add(tb.tsv_config(dataclasses.replace(spec, **change)).name)
  assert len(names) == 4
  m30k = tb.Multi30kSpec(_tiny_multi30k(tmp_path), "de", "en")
  assert (tb.multi30k_config(m30k).name !=
          tb.multi30k_config(dataclasses.replace(m30k, strict=True)).name)


def test_a_strict_run_is_not_served_a_cached_lenient_build(tmp_path):
  path = _tiny_tsv(tmp_path)  # has a line without a tab
  spec = tb.TsvSpec(path=path, other_language="fr", source_language="en",
                    fractions=FRACTIONS)
  data_dir = str(tmp_path / "tfds")
  assert tb.prepare_tsv(spec, data_dir).counts["all"]["rejected"] == {"no tab": 1}
  with pytest.raises(DataError, match=r"pairs.txt:41: no tab"):
    tb.prepare_tsv(dataclasses.replace(spec, strict=True), data_dir)
