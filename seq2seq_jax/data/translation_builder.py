"""Translation corpora as TFDS datasets (array_record, no TensorFlow).

Two local builders, each with one BuilderConfig per parameter combination,
named after the values and a hash of the input files' contents, so a changed
option or an edited file never reuses a stale build:
  * TsvTranslation: an `english<TAB>other` file (e.g. eng-fra.txt), split by
    hashing the source sentence (text_pairs.split_of).
  * Multi30kTranslation: Multi30k's aligned `{train,val,test_2016_flickr}.{lang}`.
Records are {'source': str, 'target': str}. `load_tfds_translation` reads any
TFDS translation dataset (e.g. 'wmt14_translate/de-en') in the same shape.
"""
import dataclasses
import hashlib
import importlib
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging
import tensorflow_datasets as tfds

from seq2seq_jax.data import text_pairs
from seq2seq_jax.data.text_pairs import DataError, Pair

_FEATURES = {"source": tfds.features.Text(), "target": tfds.features.Text()}


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
  fractions: Tuple[float, float, float] = text_pairs.DEFAULT_FRACTIONS
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


def tsv_splits(spec: TsvSpec) -> Tuple[Dict[str, List[Pair]], text_pairs.FilterReport]:
  """Reads, normalizes, filters, orients and splits a TSV corpus.

  The split hashes the final source sentence (after normalization), so pairs
  whose sources normalize alike stay together.

  Returns:
    ({split: [(source, target)]}, report of every line read).

  Raises:
    DataError: unreadable file, nothing kept, or an empty split.
  """
  if min(spec.fractions) <= 0:
    raise ValueError(f"every split fraction must be > 0, got {spec.fractions}")
  pairs, report = text_pairs.read_tsv_pairs(spec.path, strict=spec.strict)
  pairs = text_pairs.normalize_pairs(pairs, spec.normalization)
  try:
    kept, filter_report = text_pairs.filter_pairs(
        pairs, min_length=spec.min_length, max_length=spec.max_length,
        english_prefixes=spec.english_prefixes or None, english_side=0)
  except DataError as e:
    raise DataError(f"{spec.path}: {e}") from e
  report = report.followed_by(filter_report)
  oriented = text_pairs.orient(kept, source_language=spec.source_language,
                               other_language=spec.other_language)
  splits = text_pairs.split_pairs(oriented, spec.fractions)
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


def multi30k_splits(spec: Multi30kSpec) -> Tuple[Dict[str, List[Pair]], str]:
  """({split: [(source, target)]}, each split's reject report as text)."""
  splits, reports = {}, []
  for split, (source_path, target_path) in _multi30k_paths(spec).items():
    splits[split], report = text_pairs.read_aligned_files(
        source_path, target_path, strict=spec.strict)
    reports.append(f"Multi30k {split} {spec.source_language}-"
                   f"{spec.target_language}: {report.summary()}")
  return splits, "\n".join(reports)


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


def tsv_config(spec: TsvSpec) -> TsvConfig:
  """The config named e.g. 'eng-fra-txt_fr-en_tutorial_len0-9_o1a2b3c4_d5e6f7a8b9c'."""
  target = spec.other_language if spec.source_language == "en" else "en"
  # Prefixes and exact fractions are too long to spell out; hash them.
  options = hashlib.sha256(repr((spec.english_prefixes, spec.fractions)).encode())
  longest = "any" if spec.max_length is None else spec.max_length
  name = (f"{_slug(os.path.basename(spec.path))}_{spec.source_language}-{target}"
          f"_{spec.normalization}_len{spec.min_length}-{longest}"
          f"_o{options.hexdigest()[:8]}_d{_content_hash([spec.path])}")
  return TsvConfig(name=name, spec=spec,
                   description=f"Sentence pairs from {spec.path}.")


def multi30k_config(spec: Multi30kSpec) -> Multi30kConfig:
  paths = [path for pair in _multi30k_paths(spec).values() for path in pair]
  name = (f"{spec.source_language}-{spec.target_language}"
          f"_d{_content_hash(paths)}")
  return Multi30kConfig(name=name, spec=spec,
                        description=f"Multi30k task 1 from {spec.directory}.")


# The kept/filtered/rejected counts of the build are stored with the dataset
# (metadata.json) and logged at every load, not only the first.
BUILD_REPORT = "build_report"


def _dataset_info(builder) -> tfds.core.DatasetInfo:
  return builder.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(_FEATURES),
      supervised_keys=("source", "target"), metadata=tfds.core.MetadataDict())


class TsvTranslation(tfds.core.GeneratorBasedBuilder):
  """Sentence pairs from a local tab-separated file."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return _dataset_info(self)

  def _split_generators(self, dl_manager):
    del dl_manager  # local file
    spec = self.builder_config.spec
    splits, report = tsv_splits(spec)
    self.info.metadata[BUILD_REPORT] = f"{spec.path}: {report.summary()}"
    return {name: self._generate_examples(pairs) for name, pairs in splits.items()}

  def _generate_examples(self, pairs: Sequence[Pair]):
    for index, (source, target) in enumerate(pairs):
      yield index, {"source": source, "target": target}


class Multi30kTranslation(tfds.core.GeneratorBasedBuilder):
  """Multi30k task 1 from a local directory of raw aligned files."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return _dataset_info(self)

  def _split_generators(self, dl_manager):
    del dl_manager  # local files
    splits, report = multi30k_splits(self.builder_config.spec)
    self.info.metadata[BUILD_REPORT] = report
    return {name: self._generate_examples(pairs) for name, pairs in splits.items()}

  def _generate_examples(self, pairs: Sequence[Pair]):
    for index, (source, target) in enumerate(pairs):
      yield index, {"source": source, "target": target}


def _prepare(builder) -> Dict[str, object]:
  builder.download_and_prepare(file_format="array_record")
  report = (builder.info.metadata or {}).get(BUILD_REPORT)
  if report:
    logging.info("%s", report)
  return {split: builder.as_data_source(split=split) for split in text_pairs.SPLITS}


def prepare_tsv(spec: TsvSpec, data_dir: Optional[str]) -> Dict[str, object]:
  """Builds (once per config) and returns {split: data source} of records."""
  return _prepare(TsvTranslation(config=tsv_config(spec), data_dir=data_dir or None))


def prepare_multi30k(spec: Multi30kSpec, data_dir: Optional[str]) -> Dict[str, object]:
  """Builds (once per config) and returns {split: data source} of records."""
  return _prepare(Multi30kTranslation(config=multi30k_config(spec),
                                      data_dir=data_dir or None))


def _as_text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class TranslationSource:
  """A TFDS data source with records renamed to {'source', 'target'} str."""

  def __init__(self, source, source_key: str, target_key: str):
    self._source = source
    self._keys = (source_key, target_key)

  def __len__(self) -> int:
    return len(self._source)

  def _rename(self, record) -> Dict[str, str]:
    return {"source": _as_text(record[self._keys[0]]),
            "target": _as_text(record[self._keys[1]])}

  def __getitem__(self, index: int) -> Dict[str, str]:
    return self._rename(self._source[index])

  def __getitems__(self, indices: Sequence[int]) -> List[Dict[str, str]]:
    # One batched read (array_record reads batches several times faster).
    return [self._rename(r) for r in self._source.__getitems__(list(indices))]


def load_tfds_translation(name: str, *, source_language: str, target_language: str,
                          data_dir: Optional[str],
                          tfds_splits: Tuple[str, str, str] = text_pairs.SPLITS,
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
  for split, tfds_split in zip(text_pairs.SPLITS, tfds_splits):
    source = tfds.data_source(name, split=tfds_split, data_dir=data_dir,
                              download=download)
    languages = list(source.dataset_info.features.keys())
    for language in (source_language, target_language):
      if language not in languages:
        raise ValueError(f"{name} has no language {language!r}; valid: "
                         f"{', '.join(languages)}")
    sources[split] = TranslationSource(source, source_language, target_language)
  return sources
