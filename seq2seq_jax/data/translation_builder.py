"""Translation corpora as TFDS datasets (array_record, no TensorFlow).

Two local builders, each with one BuilderConfig per parameter combination,
named after the values, a hash of every option and a hash of the input files'
contents, so a changed option or an edited file never reuses a stale build:
  * TsvTranslation: an `english<TAB>other` file (e.g. eng-fra.txt), split by
    connected groups of pairs (splitting.split_pairs), so that no source or
    target sentence of validation or test occurs in training.
  * Multi30kTranslation: Multi30k's aligned `{train,val,test_2016_flickr}.{lang}`.
Records are {'source': str, 'target': str, 'line': int}, each split in the
order of its file (shuffling off), `line` the pair's 1-based line number, so
hypotheses written in split order line up with the corpus files.
`load_tfds_translation` reads any TFDS translation dataset (e.g.
'wmt14_translate/de-en') in the same shape (`line` = record index + 1).
"""
import dataclasses
import hashlib
import importlib
import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from seq2seq_jax.data import splitting
from seq2seq_jax.data import text_pairs
from seq2seq_jax.data.corpus import as_text
from seq2seq_jax.data.text_pairs import DataError, Pair

_FEATURES = {"source": tfds.features.Text(), "target": tfds.features.Text(),
             "line": tfds.features.Scalar(np.int64)}
VERSION = tfds.core.Version("2.0.0")
RELEASE_NOTES = {
    "1.0.0": "Initial release.",
    "2.0.0": "Splits in file order with line numbers; tsv split by connected "
             "groups (no shared source or target across splits); rejected "
             "line counts and split overlap in the metadata.",
}
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


def tutorial_spec(path: str, *, other_language: str = "fr",
                  source_language: str = "fr", strict: bool = False) -> TsvSpec:
  """The PyTorch tutorial's preset (French -> English by default)."""
  return TsvSpec(path=path, other_language=other_language,
                 source_language=source_language, normalization="tutorial",
                 strict=strict,
                 min_length=0, max_length=text_pairs.TUTORIAL_MAX_LENGTH - 1,
                 english_prefixes=text_pairs.TUTORIAL_ENGLISH_PREFIXES)


@dataclasses.dataclass(frozen=True)
class Multi30kSpec:
  """Multi30k from a directory of `{train,val,test_2016_flickr}.{en,de,fr}`."""
  directory: str
  source_language: str
  target_language: str
  strict: bool = False


MULTI30K_LANGUAGES = ("en", "de", "fr")
MULTI30K_FILES = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


def _require_nonempty(splits: Dict[str, List[Pair]], report, what: str) -> None:
  empty = [name for name, pairs in splits.items() if not pairs]
  if empty:
    sizes = ", ".join(f"{name} {len(pairs):,}" for name, pairs in splits.items())
    raise DataError(f"{what}: empty split(s) {', '.join(empty)} ({sizes}); "
                    f"use more data or other fractions. {report.summary()}")


def tsv_splits(spec: TsvSpec) -> Tuple[Dict[str, List[NumberedPair]],
                                       text_pairs.FilterReport]:
  """Reads, normalizes, filters, orients and splits a TSV corpus.

  The split groups pairs that share a source or a target sentence (after
  normalization) and sends each group to one split.

  Returns:
    ({split: [(line, source, target)] in file order}, report of every line).

  Raises:
    DataError: unreadable file, nothing kept, or an empty split.
  """
  if min(spec.fractions) <= 0:
    raise ValueError(f"every split fraction must be > 0, got {spec.fractions}")
  pairs, report = text_pairs.read_tsv_pairs(spec.path, strict=spec.strict)
  lines = report.kept_lines
  pairs = text_pairs.normalize_pairs(pairs, spec.normalization)
  try:
    kept, filter_report = text_pairs.filter_indices(
        pairs, min_length=spec.min_length, max_length=spec.max_length,
        english_prefixes=spec.english_prefixes or None, english_side=0)
  except DataError as e:
    raise DataError(f"{spec.path}: {e}") from e
  report = report.followed_by(filter_report)
  oriented = text_pairs.orient([pairs[i] for i in kept],
                               source_language=spec.source_language,
                               other_language=spec.other_language)
  lines = [lines[i] for i in kept]
  splits = {name: [(lines[i],) + oriented[i] for i in indices]
            for name, indices in splitting.split_indices(
                oriented, spec.fractions).items()}
  _require_nonempty(splits, report, spec.path)
  return splits, report


def _multi30k_paths(spec: Multi30kSpec) -> Dict[str, Tuple[str, str]]:
  for language in (spec.source_language, spec.target_language):
    if language not in MULTI30K_LANGUAGES:
      raise ValueError(f"unknown Multi30k language {language!r}; valid: "
                       f"{', '.join(MULTI30K_LANGUAGES)}")
  if spec.source_language == spec.target_language:
    raise ValueError(f"source and target language are both {spec.source_language!r}")
  return {split: tuple(os.path.join(spec.directory, f"{stem}.{language}")
                       for language in (spec.source_language, spec.target_language))
          for split, stem in MULTI30K_FILES.items()}


def multi30k_splits(spec: Multi30kSpec) -> Tuple[Dict[str, List[NumberedPair]],
                                                 Dict[str, text_pairs.FilterReport]]:
  """({split: [(line, source, target)] in file order}, {split: its report})."""
  splits, reports = {}, {}
  for split, (source_path, target_path) in _multi30k_paths(spec).items():
    pairs, reports[split] = text_pairs.read_aligned_files(
        source_path, target_path, strict=spec.strict)
    splits[split] = [(line,) + pair for line, pair in
                     zip(reports[split].kept_lines, pairs)]
  return splits, reports


def _content_hash(paths: Sequence[str]) -> str:
  """Short hash of the files' bytes: an edited file gets a new config name."""
  digest = hashlib.sha256()
  for path in paths:
    try:
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          digest.update(block)
    except OSError as e:
      raise DataError(f"cannot read data file {path}: {e.strerror or e}") from e
  return digest.hexdigest()[:10]


def _slug(text: str) -> str:
  return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "data"


@dataclasses.dataclass
class TsvConfig(tfds.core.BuilderConfig):
  spec: TsvSpec = None


@dataclasses.dataclass
class Multi30kConfig(tfds.core.BuilderConfig):
  spec: Multi30kSpec = None


def _options_hash(spec) -> str:
  """Every option of a spec but its path(s): any option that changes the
  prepared dataset (strict included) changes the name."""
  fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
            if f.name not in ("path", "directory")}
  return hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:8]


def tsv_config(spec: TsvSpec) -> TsvConfig:
  """The config named e.g. 'eng-fra-txt_fr-en_tutorial_len0-9_o1a2b3c4_d5e6f7a8b9c'."""
  target = spec.other_language if spec.source_language == "en" else "en"
  longest = "any" if spec.max_length is None else spec.max_length
  name = (f"{_slug(os.path.basename(spec.path))}_{spec.source_language}-{target}"
          f"_{spec.normalization}_len{spec.min_length}-{longest}"
          f"_o{_options_hash(spec)}_d{_content_hash([spec.path])}")
  return TsvConfig(name=name, spec=spec,
                   description=f"Sentence pairs from {spec.path}.")


def multi30k_config(spec: Multi30kSpec) -> Multi30kConfig:
  paths = [path for pair in _multi30k_paths(spec).values() for path in pair]
  name = (f"{spec.source_language}-{spec.target_language}"
          f"_o{_options_hash(spec)}_d{_content_hash(paths)}")
  return Multi30kConfig(name=name, spec=spec,
                        description=f"Multi30k task 1 from {spec.directory}.")


# What the build kept, filtered and rejected, and how the splits overlap, is
# stored with the dataset (metadata.json) and logged at every load, not only
# the first: BUILD_REPORT as text, BUILD_COUNTS as JSON for checks.
BUILD_REPORT = "build_report"
BUILD_COUNTS = "build_counts"


def _dataset_info(builder) -> tfds.core.DatasetInfo:
  return builder.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(_FEATURES),
      supervised_keys=("source", "target"), metadata=tfds.core.MetadataDict(),
      disable_shuffling=True)


def _overlap_text(splits) -> str:
  overlap = splitting.overlap({name: [(s, t) for _, s, t in pairs]
                                for name, pairs in splits.items()})
  return "; overlap with train (sources/targets): " + ", ".join(
      f"{name} {o['source']}/{o['target']}" for name, o in overlap.items())


def _counts(reports: Dict[str, text_pairs.FilterReport]) -> str:
  return json.dumps({name: {"lines": r.total, "rejected": r.rejected}
                     for name, r in reports.items()}, sort_keys=True)


class _LocalTranslation(tfds.core.GeneratorBasedBuilder):
  """Shared by the local builders: features, order, records."""

  VERSION = VERSION
  RELEASE_NOTES = RELEASE_NOTES

  def _info(self) -> tfds.core.DatasetInfo:
    return _dataset_info(self)

  def _generate_examples(self, pairs: Sequence[NumberedPair]):
    for index, (line, source, target) in enumerate(pairs):
      yield index, {"source": source, "target": target, "line": line}


class TsvTranslation(_LocalTranslation):
  """Sentence pairs from a local tab-separated file."""

  def _split_generators(self, dl_manager):
    del dl_manager  # local file
    spec = self.builder_config.spec
    splits, report = tsv_splits(spec)
    self.info.metadata[BUILD_REPORT] = (f"{spec.path}: {report.summary()}"
                                        + _overlap_text(splits))
    self.info.metadata[BUILD_COUNTS] = _counts({"all": report})
    return {name: self._generate_examples(pairs) for name, pairs in splits.items()}


class Multi30kTranslation(_LocalTranslation):
  """Multi30k task 1 from a local directory of raw aligned files."""

  def _split_generators(self, dl_manager):
    del dl_manager  # local files
    spec = self.builder_config.spec
    splits, reports = multi30k_splits(spec)
    self.info.metadata[BUILD_REPORT] = "\n".join(
        f"Multi30k {name} {spec.source_language}-{spec.target_language}: "
        f"{report.summary()}" for name, report in reports.items()
    ) + _overlap_text(splits)
    self.info.metadata[BUILD_COUNTS] = _counts(reports)
    return {name: self._generate_examples(pairs) for name, pairs in splits.items()}


@dataclasses.dataclass
class Prepared:
  """A prepared dataset: its splits and what its build reported."""
  sources: Dict[str, object]  # split -> data source of records
  report: str
  counts: Dict[str, Dict]  # part -> {"lines": n, "rejected": {reason: n}}
  name: str  # "builder/config:version", the dataset's identity


def _prepare(builder) -> Prepared:
  builder.download_and_prepare(file_format="array_record")
  metadata = builder.info.metadata or {}
  report = metadata.get(BUILD_REPORT, "")
  if report:
    logging.info("%s", report)
  return Prepared(
      sources={split: builder.as_data_source(split=split)
               for split in splitting.SPLITS},
      report=report, counts=json.loads(metadata.get(BUILD_COUNTS, "{}")),
      name=f"{builder.name}/{builder.builder_config.name}:{builder.version}")


def prepare_tsv(spec: TsvSpec, data_dir: Optional[str]) -> Prepared:
  """Builds (once per config) the tsv corpus."""
  return _prepare(TsvTranslation(config=tsv_config(spec), data_dir=data_dir or None))


def prepare_multi30k(spec: Multi30kSpec, data_dir: Optional[str]) -> Prepared:
  """Builds (once per config) the Multi30k corpus."""
  return _prepare(Multi30kTranslation(config=multi30k_config(spec),
                                      data_dir=data_dir or None))


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
