"""Parallel-text corpora as splits of numbered pairs (line, source, target).

  * a tab-separated `english<TAB>other` file (e.g. eng-fra.txt), split by
    connected groups of pairs (splitting.split_indices), so that no source
    or target sentence of validation or test occurs in training;
  * aligned files per split (`train.de` / `train.en`, `newstest2014.*`;
    Multi30k's `{train,val,test_2016_flickr}.{lang}` among them);
  * any TFDS translation dataset (e.g. 'wmt14_translate/de-en') through
    `load_tfds_translation` (`line` = record index + 1).
Each split keeps the order of its file and the pairs' 1-based line numbers,
so hypotheses written in split order line up with the corpus files. What
is read is prepared once into a token store (preparation.py).
"""
import dataclasses
import importlib
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from seq2seq_jax.data.text import splitting
from seq2seq_jax.data.text import text_pairs
from seq2seq_jax.data.corpus import as_text
from seq2seq_jax.data.text.text_pairs import DataError, Pair

NumberedPair = Tuple[int, str, str]  # (line, source, target)


@dataclasses.dataclass(frozen=True)
class TsvSpec:
  """A tab-separated corpus and how to turn it into (source, target) splits.

  Attributes:
    path: the `english<TAB>other[<TAB>attribution]` file.
    other_language: code of the second column, e.g. 'fr'.
    source_language: 'en' or other_language; the other one is the target.
    normalization: text_pairs.NORMALIZERS key, applied to both sides.
    min_length, max_length: words per side, inclusive; max None: no limit.
    english_prefixes: if non-empty, the English side must start with one.
    fractions: (train, validation, test), each > 0, summing to 1.
  """
  path: str
  other_language: str
  source_language: str
  normalization: str = "none"
  min_length: int = 1
  max_length: Optional[int] = None
  english_prefixes: Tuple[str, ...] = ()
  fractions: Tuple[float, float, float] = splitting.DEFAULT_FRACTIONS
  strict: bool = False  # a malformed line is an error, not a counted reject
  max_held_out: Optional[int] = None  # most pairs in validation, and in test


def tutorial_spec(path: str, *, other_language: str = "fr",
                  source_language: str = "fr", strict: bool = False) -> TsvSpec:
  """The PyTorch tutorial's preset (French -> English by default)."""
  return TsvSpec(path=path, other_language=other_language,
                 source_language=source_language, normalization="tutorial",
                 strict=strict,
                 min_length=0, max_length=text_pairs.TUTORIAL_MAX_LENGTH - 1,
                 english_prefixes=text_pairs.TUTORIAL_ENGLISH_PREFIXES)


TSV_BLOCK = 50_000  # lines per task of a worker process
MULTI30K_LANGUAGES = ("en", "de", "fr")
MULTI30K_FILES = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


def _require_nonempty(splits: Dict[str, List[Pair]], report, what: str) -> None:
  empty = [name for name, pairs in splits.items() if not pairs]
  if empty:
    sizes = ", ".join(f"{name} {len(pairs):,}" for name, pairs in splits.items())
    raise DataError(f"{what}: empty split(s) {', '.join(empty)} ({sizes}); "
                    f"use more data or other fractions. {report.summary()}")


def tsv_splits(spec: TsvSpec, pool=None) -> Tuple[
    Dict[str, List[NumberedPair]], text_pairs.FilterReport]:
  """Reads, normalizes, filters, orients and splits a TSV corpus.

  The split groups pairs that share a source or a target sentence (after
  normalization) and sends each group to one split. With `pool` (a
  parallel_tokenize.Workers), blocks of lines are parsed and filtered in its
  worker processes.

  Returns:
    ({split: [(line, source, target)] in file order}, report of every line).

  Raises:
    DataError: unreadable file, nothing kept, or an empty split.
  """
  if min(spec.fractions) <= 0:
    raise ValueError(f"every split fraction must be > 0, got {spec.fractions}")
  raw = text_pairs.read_lines(spec.path)
  options = (spec.path, spec.strict, spec.normalization, spec.min_length,
             spec.max_length, spec.english_prefixes, spec.source_language,
             spec.other_language)
  tasks = ((options, start + 1, raw[start:start + TSV_BLOCK])
           for start in range(0, len(raw), TSV_BLOCK))
  blocks = (pool.map if pool is not None else map)(text_pairs.tsv_block, tasks)
  oriented, report, positions, lines = [], text_pairs.FilterReport(), [], []
  for block_pairs, block_report, block_positions in blocks:
    oriented += block_pairs
    lines += block_report.kept_lines
    block_report.kept_lines = []  # added once, above, not copied per block
    report = report.plus(block_report)
    positions.append(block_positions)
  report.kept_lines = lines
  del raw
  if not report.kept:
    read = report.total - sum(report.rejected.values())
    raise DataError(f"{spec.path}: " + (
        f"no pairs left after filtering {read:,} pairs" if read else
        f"no usable pairs ({report.total:,} lines read)")
        + f": {report.summary()}")
  lines = report.kept_lines
  splits = {name: [(lines[i],) + oriented[i] for i in indices]
            for name, indices in splitting.split_indices(
                oriented, spec.fractions, spec.max_held_out,
                np.concatenate(positions)).items()}
  _require_nonempty(splits, report, spec.path)
  return splits, report



def aligned_splits(paths: Dict[str, Tuple[str, str]], strict: bool = False
                   ) -> Tuple[Dict[str, List[NumberedPair]],
                              Dict[str, text_pairs.FilterReport]]:
  """Splits given as aligned files: {split: (source file, target file)} ->
  ({split: [(line, source, target)] in file order}, {split: its report})."""
  splits, reports = {}, {}
  for split, (source_path, target_path) in paths.items():
    pairs, reports[split] = text_pairs.read_aligned_files(
        source_path, target_path, strict=strict)
    splits[split] = [(line,) + pair for line, pair in
                     zip(reports[split].kept_lines, pairs)]
  return splits, reports


def slug(text: str) -> str:
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "data"


def overlap_text(splits: Dict[str, List[NumberedPair]]) -> str:
  """How many held-out pairs share a sentence with training, per side."""
  overlap = splitting.overlap({name: [(s, t) for _, s, t in pairs]
                                for name, pairs in splits.items()})
  return "overlap with train (sources/targets): " + ", ".join(
      f"{name} {o['source']}/{o['target']}" for name, o in overlap.items())


class TranslationSource:
  """A TFDS data source with records renamed to {'source', 'target'} str."""

  def __init__(self, source, source_key: str, target_key: str):
    self._source = source
    self._keys = (source_key, target_key)

  def __len__(self) -> int:
    return len(self._source)

  def _rename(self, record, index: int) -> Dict[str, object]:
    return {"source": as_text(record[self._keys[0]]),
            "target": as_text(record[self._keys[1]]), "line": index + 1}

  def __getitem__(self, index: int) -> Dict[str, object]:
    return self._rename(self._source[index], index)

  def __getitems__(self, indices: Sequence[int]) -> List[Dict[str, object]]:
    # One batched read (array_record reads batches several times faster).
    indices = list(indices)
    return [self._rename(r, i) for r, i in
            zip(self._source.__getitems__(indices), indices)]


def load_tfds_translation(name: str, *, source_language: str, target_language: str,
                          data_dir: Optional[str],
                          tfds_splits: Tuple[str, str, str] = splitting.SPLITS,
                          download: bool = False) -> Dict[str, TranslationSource]:
  """Any prepared TFDS translation dataset, e.g. 'wmt14_translate/de-en'.

  Args:
    name: TFDS name with config; its features must include both languages.
    source_language, target_language: feature keys, e.g. 'en' and 'de'.
    data_dir: TFDS data directory (None: TFDS's default).
    tfds_splits: the dataset's split names for (train, validation, test).
    download: let TFDS download and prepare it if missing (off by default:
      WMT needs a separate, long `tfds build`).

  Returns:
    {'train'|'validation'|'test': TranslationSource}.
  """
  # Imported here: TFDS takes a second to import, and only this task uses it.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # TFDS registers its built-in translation builders lazily, on this import.
  importlib.import_module("tensorflow_datasets.translate")
  sources = {}
  for split, tfds_split in zip(splitting.SPLITS, tfds_splits):
    source = tfds.data_source(name, split=tfds_split, data_dir=data_dir,
                              download=download)
    languages = list(source.dataset_info.features.keys())
    for language in (source_language, target_language):
      if language not in languages:
        raise ValueError(f"{name} has no language {language!r}; valid: "
                         f"{', '.join(languages)}")
    sources[split] = TranslationSource(source, source_language, target_language)
  return sources


def tfds_identity(name: str, data_dir: Optional[str]) -> str:
  """'name/config:version' of a TFDS dataset (its data never changes within
  a version), part of its token store's name."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  importlib.import_module("tensorflow_datasets.translate")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"config.data.tfds_name: {name!r}: {e}") from e
  config = builder.builder_config.name if builder.builder_config else ""
  return f"{builder.name}/{config}:{builder.version}"
