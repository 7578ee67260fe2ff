"""Tests for seq2seq_jax.data.text.text_pairs: reading, reports, filters, splits."""
import collections
import os
import re
import unicodedata

import pytest

from seq2seq_jax.data.text import splitting
from seq2seq_jax.data.text import text_pairs
from seq2seq_jax.data.text import text_corpora
from seq2seq_jax.data.text.text_pairs import DataError

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
ENG_FRA = os.path.join(DATA, "eng-fra", "eng-fra.txt")
MULTI30K = os.path.join(DATA, "multi30k")
needs_eng_fra = pytest.mark.skipif(not os.path.exists(ENG_FRA),
                                   reason="shared eng-fra corpus absent")
needs_multi30k = pytest.mark.skipif(not os.path.isdir(MULTI30K),
                                    reason="shared Multi30k corpus absent")


def _write(tmp_path, name, data: bytes) -> str:
  path = tmp_path / name
  path.write_bytes(data)
  return str(path)


MALFORMED = (b"Go.\tVa !\n"                      # 1 good
             b"no tab here\n"                     # 2 no tab
             b"Hi.\t   \n"                        # 3 empty side
             b"Bad \xff\xfe\tbytes\n"             # 4 invalid UTF-8
             b"\n"                                # 5 empty line
             b"Run!\tCours\xe2\x80\xaf!\tCC-BY 2.0 (France) Attribution\n"  # 6 good
             b"a\tb\tc\td\n"                      # 7 too many tabs
             b"\tVa !\n"                          # 8 empty side
             b"\n")                               # 9 empty line at the end


def test_malformed_lines_counted_with_exact_line_numbers(tmp_path):
  path = _write(tmp_path, "bad.tsv", MALFORMED)
  pairs, report = text_pairs.read_tsv_pairs(path)
  assert pairs == [("Go.", "Va !"), ("Run!", "Cours\u202f!")]
  assert report.kept == 2
  assert report.rejected == {"no tab": 1, "empty side": 2, "invalid UTF-8": 1,
                             "empty line": 2, "too many tabs": 1}
  assert report.examples == {
      "no tab": [f"{path}:2"], "empty side": [f"{path}:3", f"{path}:8"],
      "invalid UTF-8": [f"{path}:4"], "empty line": [f"{path}:5", f"{path}:9"],
      "too many tabs": [f"{path}:7"]}
  assert report.total == 9
  assert report.summary() == (
      "kept 2 pairs; filtered: none; rejected: empty line 2 (bad.tsv:5, "
      "bad.tsv:9), empty side 2 (bad.tsv:3, bad.tsv:8), invalid UTF-8 1 "
      "(bad.tsv:4), no tab 1 (bad.tsv:2), too many tabs 1 (bad.tsv:7)")


def test_examples_are_capped_but_counts_are_not(tmp_path):
  path = _write(tmp_path, "many.tsv", b"ok\tok\n" + b"x\n" * 50)
  _, report = text_pairs.read_tsv_pairs(path)
  assert report.rejected == {"no tab": 50}
  assert report.examples["no tab"] == [f"{path}:{n}" for n in range(2, 22)]
  assert "no tab 50 (many.tsv:2, many.tsv:3, many.tsv:4, ...)" in report.summary()


def test_strict_mode_names_file_line_and_reason(tmp_path):
  path = _write(tmp_path, "bad.tsv", MALFORMED)
  with pytest.raises(DataError, match=re.escape(f"{path}:2: no tab")):
    text_pairs.read_tsv_pairs(path, strict=True)


def test_crlf_and_bom_are_handled(tmp_path):
  path = _write(tmp_path, "win.tsv",
                b"\xef\xbb\xbfHello.\tBonjour.\r\nBye.\tSalut.\r\n")
  pairs, report = text_pairs.read_tsv_pairs(path)
  assert pairs == [("Hello.", "Bonjour."), ("Bye.", "Salut.")]
  assert report.rejected == {} and report.kept == 2


def test_missing_and_empty_files_raise(tmp_path):
  missing = str(tmp_path / "nope.tsv")
  with pytest.raises(DataError, match=re.escape(missing)):
    text_pairs.read_tsv_pairs(missing)
  only_bad = _write(tmp_path, "bad.tsv", b"no tab\n\n")
  with pytest.raises(DataError, match="no usable pairs.*2 lines read.*no tab 1"):
    text_pairs.read_tsv_pairs(only_bad)


def test_aligned_files(tmp_path):
  de = _write(tmp_path, "train.de", b"Ein Hund.\n\nZwei \xff.\nDrei.\nVier.\n")
  en = _write(tmp_path, "train.en", b"A dog.\n\nTwo.\n \nFour.\n")
  pairs, report = text_pairs.read_aligned_files(de, en)
  assert pairs == [("Ein Hund.", "A dog."), ("Vier.", "Four.")]
  assert report.rejected == {"empty line": 1, "invalid UTF-8": 1, "empty side": 1}
  assert report.examples == {"empty line": [f"{de}:2"], "invalid UTF-8": [f"{de}:3"],
                             "empty side": [f"{en}:4"]}
  with pytest.raises(DataError, match=re.escape(f"{de}:2: empty line")):
    text_pairs.read_aligned_files(de, en, strict=True)


def test_aligned_files_with_different_line_counts_raise(tmp_path):
  de = _write(tmp_path, "val.de", b"Eins.\nZwei.\nDrei.\n")
  en = _write(tmp_path, "val.en", b"One.\nTwo.\n")
  with pytest.raises(DataError, match=re.escape(f"{de} has 3 lines but {en} has 2")):
    text_pairs.read_aligned_files(de, en)


def test_filter_pairs_counts_each_reason():
  pairs = [("i am here", "je suis la"),           # kept
           ("he is a very tall man indeed", "il"),  # too long (6 words > 5)
           ("", "rien"),                          # too short (0 words)
           ("you see", "tu vois"),                # no English prefix
           ("ils sont", "they are")]              # prefix looked up on side 1
  kept, report = text_pairs.filter_pairs(
      pairs, min_length=1, max_length=5, english_prefixes=("i am", "they are"))
  assert kept == [("i am here", "je suis la")]
  assert report.filtered == {"too long": 1, "too short": 1, "no English prefix": 2}
  kept, _ = text_pairs.filter_pairs(pairs, min_length=1, max_length=None,
                                    english_prefixes=("they are",), english_side=1)
  assert kept == [("ils sont", "they are")]


def test_empty_after_filter_raises_with_counts():
  pairs = [("a b c", "x"), ("a b c d", "y"), ("hello", "z")]
  with pytest.raises(DataError, match=r"3 pairs: kept 0 pairs; filtered: "
                     r"no English prefix 1, too long 2"):
    text_pairs.filter_pairs(pairs, min_length=1, max_length=2,
                            english_prefixes=("i am",))


def test_report_followed_by_adds_counts_and_keeps_later_kept():
  first = text_pairs.FilterReport(kept=10, rejected={"no tab": 1},
                                  examples={"no tab": ["f:3"]})
  second = text_pairs.FilterReport(kept=7, filtered={"too long": 3})
  both = first.followed_by(second)
  assert (both.kept, both.filtered, both.rejected) == (7, {"too long": 3}, {"no tab": 1})
  assert both.total == 11


def _tutorial_normalize(s):
  """Independent copy of the tutorial's unicodeToAscii + normalizeString."""
  s = "".join(c for c in unicodedata.normalize("NFD", s.lower().strip())
              if unicodedata.category(c) != "Mn")
  s = re.sub(r"([.!?])", r" \1", s)
  s = re.sub(r"[^a-zA-Z!?]+", r" ", s)
  return s.strip()


@pytest.mark.parametrize("text, expected", [
    ("Cours\u202f!", "cours !"),
    ("J'ai 19 ans.", "j ai ans"),
    ("Qu'est-ce que c'est\u202f?", "qu est ce que c est ?"),
    ("  Ça m'a ÉTÉ très utile!  ", "ca m a ete tres utile !"),
    ("I'm   O.K.", "i m o k"),
])
def test_normalize_tutorial_known_lines(text, expected):
  assert text_pairs.normalize_tutorial(text) == expected
  assert _tutorial_normalize(text) == expected


def test_orient_switches_direction():
  pairs = [("Hello.", "Bonjour."), ("Bye.", "Salut.")]
  assert text_pairs.orient(pairs, source_language="en", other_language="fr") == pairs
  assert text_pairs.orient(pairs, source_language="fr", other_language="fr") == [
      ("Bonjour.", "Hello."), ("Salut.", "Bye.")]
  with pytest.raises(ValueError, match="valid: en, fr"):
    text_pairs.orient(pairs, source_language="de", other_language="fr")


def test_split_of_is_deterministic_and_follows_fractions():
  sentences = [f"sentence number {i}" for i in range(20000)]
  splits = [splitting.split_of(s, (0.8, 0.1, 0.1)) for s in sentences]
  assert splits == [splitting.split_of(s, (0.8, 0.1, 0.1)) for s in sentences]
  counts = collections.Counter(splits)
  # Binomial std of the train share is 0.0028; 0.015 is over 5 sigma.
  assert abs(counts["train"] / 20000 - 0.8) < 0.015
  assert abs(counts["test"] / 20000 - 0.1) < 0.015
  assert {splitting.split_of(s, (1.0, 0.0, 0.0)) for s in sentences[:100]} == {"train"}
  assert {splitting.split_of(s, (0.0, 0.0, 1.0)) for s in sentences[:100]} == {"test"}
  assert {splitting.split_of(s, (0.5, 0.5, 0.0)) for s in sentences[:100]} == {
      "train", "validation"}


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1)])
def test_split_of_rejects_bad_fractions(fractions):
  with pytest.raises(ValueError, match="summing to 1"):
    splitting.split_of("x", fractions)


@needs_eng_fra
def test_real_file_reads_every_line():
  pairs, report = text_pairs.read_tsv_pairs(ENG_FRA)
  assert len(pairs) == 135842 and report.rejected == {}
  assert pairs[1] == ("Run!", "Cours\u202f!")


@needs_eng_fra
@pytest.mark.parametrize("source_language", ["en", "fr"])
def test_real_file_splits_are_disjoint_by_source(source_language):
  pairs, _ = text_pairs.read_tsv_pairs(ENG_FRA)
  oriented = text_pairs.orient(pairs, source_language=source_language,
                               other_language="fr")
  splits = {name: [oriented[i] for i in indices] for name, indices in
            splitting.split_indices(oriented).items()}
  assert sum(len(v) for v in splits.values()) == len(pairs)
  where = collections.defaultdict(set)
  for name, split in splits.items():
    for source, _ in split:
      where[source].add(name)
  assert all(len(names) == 1 for names in where.values())
  repeated = [s for s, n in collections.Counter(s for s, _ in oriented).items() if n > 1]
  assert len(repeated) > 1000  # many English sentences have several translations
  if source_language == "en":
    run = [name for name, split in splits.items() for s, _ in split if s == "Run!"]
    assert len(run) == 2 and len(set(run)) == 1  # lines 2 and 3 stay together
  assert 0.88 < len(splits["train"]) / len(pairs) < 0.92


@needs_eng_fra
def test_tutorial_preset_matches_independent_tutorial_code():
  # The tutorial's readLangs('eng', 'fra', reverse=True) + filterPairs, copied
  # independently of text_pairs.
  with open(ENG_FRA, encoding="utf-8") as f:
    lines = f.read().strip().split("\n")
  reference = [list(reversed([_tutorial_normalize(s) for s in line.split("\t")]))
               for line in lines]
  prefixes = ("i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are",
              "you re ", "we are", "we re ", "they are", "they re ")
  reference = [p for p in reference if len(p[0].split(" ")) < 10
               and len(p[1].split(" ")) < 10 and p[1].startswith(prefixes)]
  pairs, _ = text_pairs.read_tsv_pairs(ENG_FRA)
  spec = text_corpora.tutorial_spec(ENG_FRA)  # what the tsv builder uses
  kept, report = text_pairs.filter_pairs(
      text_pairs.normalize_pairs(pairs, spec.normalization),
      min_length=spec.min_length, max_length=spec.max_length,
      english_prefixes=spec.english_prefixes, english_side=0)
  # The tutorial page prints "Trimmed to 11445 sentence pairs".
  assert len(reference) == 11445
  assert [[fr, en] for en, fr in kept] == reference
  assert report.kept == 11445 and report.total == 135842


@needs_multi30k
def test_real_multi30k_train_is_aligned():
  pairs, report = text_pairs.read_aligned_files(
      os.path.join(MULTI30K, "train.de"), os.path.join(MULTI30K, "train.en"))
  assert len(pairs) + sum(report.rejected.values()) == 29000
  assert len(pairs) == 29000
