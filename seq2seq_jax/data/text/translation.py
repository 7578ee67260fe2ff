"""Parallel-text corpora (tsv, multi30k, parallel files, any TFDS
translation dataset): their options, how they are read, and their prepared
token store (preparation.py), the vocabularies built on the training split.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Tuple

from absl import logging

from seq2seq_jax.data.text import preparation
from seq2seq_jax.data.text import splitting
from seq2seq_jax.data.text import text_pairs
from seq2seq_jax.data import tokenizers
from seq2seq_jax.data.text import text_corpora as builders
from seq2seq_jax.data.corpus import Corpus, as_text, read_all
from seq2seq_jax.data.text.text_pairs import DataError
from seq2seq_jax.data.text.text_corpora import NumberedPair
from seq2seq_jax.data.vocabulary import Vocabulary

TEXT_TASKS = ("tsv", "multi30k", "parallel", "tfds")
PRESETS = ("none", "tutorial")
PREFIX_OPTIONS = {"train": "train_prefix", "validation": "validation_prefix",
                  "test": "test_prefix"}


def _other_language(data) -> str:
  return (data.target_language if data.source_language == "en"
          else data.source_language)


def validate(data) -> None:
  """Checks the parallel-text options; ValueError names the option."""
  if data.task in ("tsv", "multi30k"):
    if not data.path:
      raise ValueError(f"config.data.path: task {data.task!r} needs a path "
                       f"({'the pairs file' if data.task == 'tsv' else 'the directory'})")
    exists = os.path.isfile if data.task == "tsv" else os.path.isdir
    if not exists(data.path):
      raise ValueError(f"config.data.path: {data.path!r} does not exist or is "
                       f"not a {'file' if data.task == 'tsv' else 'directory'}")
  if data.task == "parallel":
    for split, option in PREFIX_OPTIONS.items():
      prefix = getattr(data, option)
      if not prefix:
        raise ValueError(f"config.data.{option}: task 'parallel' needs the "
                         f"{split} files' prefix, e.g. /data/wmt14/{split}")
      for language in (data.source_language, data.target_language):
        if language and not os.path.isfile(f"{prefix}.{language}"):
          raise ValueError(f"config.data.{option}: {prefix}.{language} does "
                           "not exist or is not a file")
  if data.task == "tfds" and not data.tfds_name:
    raise ValueError("config.data.tfds_name: task 'tfds' needs a dataset name, "
                     "e.g. 'wmt14_translate/de-en'")
  if not data.source_language or not data.target_language:
    raise ValueError("config.data.source_language / target_language: both are "
                     f"needed for task {data.task!r}")
  if data.source_language == data.target_language:
    raise ValueError("config.data.target_language: equals the source language "
                     f"{data.source_language!r}")
  if data.task == "tsv" and "en" not in (data.source_language,
                                         data.target_language):
    raise ValueError("config.data.source_language: a tsv file is "
                     "english<TAB>other, so one side must be 'en'")
  if data.task == "multi30k":
    for option in ("source_language", "target_language"):
      if getattr(data, option) not in builders.MULTI30K_LANGUAGES:
        raise ValueError(f"config.data.{option}: Multi30k has "
                         f"{', '.join(builders.MULTI30K_LANGUAGES)}, got "
                         f"{getattr(data, option)!r}")
  if data.preset not in PRESETS:
    raise ValueError(f"config.data.preset: unknown preset {data.preset!r}; "
                     f"valid: {', '.join(PRESETS)}")
  if data.preset == "tutorial" and data.task != "tsv":
    raise ValueError("config.data.preset: 'tutorial' applies to task 'tsv' only")
  if data.vocab.kind not in tokenizers.BUILDERS:
    raise ValueError(f"config.data.vocab.kind: unknown kind {data.vocab.kind!r};"
                     f" valid: {', '.join(sorted(tokenizers.BUILDERS))}")
  if data.vocab.kind == "sentencepiece" and data.vocab.size <= 0:
    raise ValueError("config.data.vocab.size: sentencepiece needs a size > 0")
  if data.vocab.size < 0 or data.vocab.min_count < 1:
    raise ValueError("config.data.vocab.size must be >= 0 and "
                     "config.data.vocab.min_count >= 1")
  if data.vocab.sentencepiece_model not in tokenizers.MODEL_TYPES:
    raise ValueError(f"config.data.vocab.sentencepiece_model: unknown "
                     f"{data.vocab.sentencepiece_model!r}; valid: "
                     f"{', '.join(tokenizers.MODEL_TYPES)}")
  if data.min_words < 0 or data.max_words < 0:
    raise ValueError("config.data.min_words / max_words: must be >= 0")


def _read_pairs(source) -> List[NumberedPair]:
  return [(int(r["line"]), as_text(r["source"]), as_text(r["target"]))
          for r in read_all(source)]


def _filter_train(pairs: List[NumberedPair], data) -> List[NumberedPair]:
  """Length filter on the training split only: test sets stay complete."""
  if data.min_words <= 1 and not data.max_words:
    return pairs
  kept, report = text_pairs.filter_indices(
      [(s, t) for _, s, t in pairs], min_length=data.min_words,
      max_length=data.max_words or None)
  logging.info("train length filter: %s", report.summary())
  return [pairs[i] for i in kept]


# What a rejected line most likely means, and what to do about it.
_REJECT_ADVICE = {
    "invalid UTF-8": "the file is probably not UTF-8: convert it, e.g. "
                     "`iconv -f latin1 -t utf-8 FILE > FILE.utf8`",
    "no tab": "the file is probably not tab-separated english<TAB>other",
    "too many tabs": "the file has more than 3 tab-separated columns",
}


def check_rejects(counts: Dict[str, Dict], data, what: str) -> None:
  """Stops when more than data.max_rejected_fraction of the lines of any part
  of the data were malformed: a run on what is left would look fine and
  mean little."""
  for part, part_counts in sorted(counts.items()):
    lines, rejected = part_counts["lines"], part_counts["rejected"]
    total = sum(rejected.values())
    if not lines or total / lines <= data.max_rejected_fraction:
      continue
    reason, count = max(rejected.items(), key=lambda item: item[1])
    scope = "" if part == "all" else f" ({part} split)"
    raise DataError(
        f"{what}{scope}: {total:,} of {lines:,} lines ({total / lines:.0%}) "
        f"were rejected, most as {reason!r} ({count:,}); the limit is "
        f"config.data.max_rejected_fraction={data.max_rejected_fraction:g}. "
        + _REJECT_ADVICE.get(reason, "check the file format")
        + "; config.data.strict=True stops at the first bad line.")


def aligned_paths(data) -> Dict[str, Tuple[str, str]]:
  """{split: (source file, target file)} of a multi30k or parallel task."""
  if data.task == "multi30k":
    prefixes = {split: os.path.join(data.path, stem)
                for split, stem in builders.MULTI30K_FILES.items()}
  else:
    prefixes = {split: getattr(data, option)
                for split, option in PREFIX_OPTIONS.items()}
  return {split: tuple(f"{prefix}.{language}" for language in
                       (data.source_language, data.target_language))
          for split, prefix in prefixes.items()}


def input_files(data) -> List[str]:
  """The files a text task reads (none for 'tfds')."""
  if data.task == "tsv":
    return [data.path]
  if data.task in ("multi30k", "parallel"):
    return [path for pair in aligned_paths(data).values() for path in pair]
  return []


def _tsv_spec(data) -> builders.TsvSpec:
  other = _other_language(data)
  if data.preset == "tutorial":
    spec = builders.tutorial_spec(data.path, other_language=other,
                                  source_language=data.source_language,
                                  strict=data.strict)
  else:
    spec = builders.TsvSpec(
        path=data.path, other_language=other,
        source_language=data.source_language, min_length=data.min_words,
        max_length=data.max_words or None, strict=data.strict)
  return dataclasses.replace(spec, max_held_out=data.max_held_out or None)


def _counts(reports) -> Dict[str, Dict]:
  return {name: {"lines": r.total, "rejected": r.rejected}
          for name, r in reports.items()}


def read_splits(data, pool=None) -> preparation.TextSplits:
  """The corpus as raw text, each split in the order of its file, with what
  its reading kept and rejected; `pool` (parallel_tokenize.Workers) parses
  a tsv file's lines in its workers."""
  validate(data)
  if data.task == "tsv":
    splits, report = builders.tsv_splits(_tsv_spec(data), pool)
    text = preparation.TextSplits(
        splits, f"{data.path}: {report.summary()}; "
        + builders.overlap_text(splits), _counts({"all": report}))
    check_rejects(text.counts, data, data.path)
    return text
  if data.task in ("multi30k", "parallel"):
    splits, reports = builders.aligned_splits(aligned_paths(data),
                                              strict=data.strict)
    report = "\n".join(
        f"{name} ({' + '.join(paths)}): {reports[name].summary()}"
        for name, paths in aligned_paths(data).items())
    counts = _counts(reports)
    check_rejects(counts, data, data.path or data.train_prefix)
  elif data.task == "tfds":
    sources = builders.load_tfds_translation(
        data.tfds_name, source_language=data.source_language,
        target_language=data.target_language,
        data_dir=data.tfds_data_dir or None)
    splits = {split: _read_pairs(src) for split, src in sources.items()}
    report, counts = f"tfds:{data.tfds_name}", {}
  else:
    raise ValueError(f"config.data.task: {data.task!r} is not a text task")
  splits["train"] = _filter_train(splits["train"], data)
  for split, pairs in splits.items():
    if not pairs:
      raise DataError(f"split {split!r} of {data.task} is empty")
  return preparation.TextSplits(
      splits, f"{report}\n{builders.overlap_text(splits)}", counts)


def vocab_options(data) -> dict:
  """What the vocabularies are built with (part of the store's name)."""
  return {"kind": data.vocab.kind, "size": data.vocab.size,
          "min_count": data.vocab.min_count,
          "sentencepiece_model": data.vocab.sentencepiece_model,
          "shared": data.vocab.shared, "sample": data.vocab.sample_sentences,
          "pretokenizer": "whitespace" if data.preset == "tutorial"
                          else "punctuation"}


def dataset_name(data) -> str:
  """The store's content-hashed name: task, direction, options, file bytes.

  Not the files' paths: moved data keeps its name (`evaluate --data_path`).
  """
  validate(data)
  reading = {"task": data.task, "source": data.source_language,
             "target": data.target_language, "strict": data.strict,
             "min_words": data.min_words, "max_words": data.max_words}
  task = data.task
  if data.task == "tsv":
    reading.update(spec=repr(dataclasses.replace(_tsv_spec(data), path="")))
  elif data.task == "tfds":
    task = f"tfds-{builders.slug(data.tfds_name)}"
    reading.update(tfds=builders.tfds_identity(
        data.tfds_name, data.tfds_data_dir or None))
  options = preparation.options_hash(dict(reading, vocab=vocab_options(data)))
  inputs = input_files(data)
  content = preparation.content_hash(inputs) if inputs else "tfds"
  return (f"{task}_{data.source_language}-{data.target_language}"
          f"_o{options}_d{content}")


def load(data, vocabularies: Optional[Tuple[Vocabulary, Vocabulary]] = None,
         workers: Optional[int] = None) -> Corpus:
  """Opens the prepared dataset (preparing it once); returns a Corpus whose
  training split is read from disk and whose held-out splits are in memory.

  `vocabularies` (a run's own) must be the store's: a store is tokenized
  with the vocabularies it was prepared with.
  """
  try:
    name = dataset_name(data)
    size = sum(os.path.getsize(path) for path in input_files(data))
  except OSError as e:
    raise DataError(f"cannot read the data: {e}") from e
  prepared = preparation.prepare(
      name, data.tfds_data_dir, lambda pool: read_splits(data, pool), vocab_options(data),
      input_bytes=size if size else 1 << 30, workers=workers)
  if vocabularies is not None:
    for side, given, stored in zip(("source", "target"), vocabularies,
                                   (prepared.source_vocab,
                                    prepared.target_vocab)):
      if given.fingerprint() != stored.fingerprint():
        raise DataError(
            f"the {side} vocabulary of the run differs from that of the "
            f"prepared data {prepared.directory}: the data or its options "
            "changed since the run was trained")
  splits = {split: prepared.split(split) for split in splitting.SPLITS}
  held_out = {split: splits[split].to_memory() for split in splitting.SPLITS
              if split != "train"}
  return Corpus(source_vocab=prepared.source_vocab,
                target_vocab=prepared.target_vocab,
                splits=dict(splits, **held_out), is_text=True,
                dataset=prepared.name)
