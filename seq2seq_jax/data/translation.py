"""Loads parallel-text corpora (tsv, multi30k, any TFDS translation dataset)
into tokenized splits, building the vocabularies on the training split only.
"""
import os
from typing import Dict, List, Optional, Tuple

from absl import logging

from seq2seq_jax.data import text_pairs
from seq2seq_jax.data import tokenizers
from seq2seq_jax.data import translation_builder as builders
from seq2seq_jax.data.corpus import Corpus, as_text, read_all, tokenize
from seq2seq_jax.data.text_pairs import DataError, Pair
from seq2seq_jax.data.translation_builder import NumberedPair
from seq2seq_jax.data.vocabulary import Vocabulary

TEXT_TASKS = ("tsv", "multi30k", "tfds")
PRESETS = ("none", "tutorial")


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


def check_rejects(prepared: builders.Prepared, data, what: str) -> None:
  """Stops when more than data.max_rejected_fraction of the lines of any part
  of the build were malformed: a run on what is left would look fine and
  mean little."""
  for part, counts in sorted(prepared.counts.items()):
    lines, rejected = counts["lines"], counts["rejected"]
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


def read_splits(data) -> Tuple[Dict[str, List[NumberedPair]], str]:
  """({'train'|'validation'|'test': [(line, source, target)]}, dataset name)
  as raw text, each split in the order of its file."""
  validate(data)
  if data.task == "tsv":
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
    prepared = builders.prepare_tsv(spec, data.tfds_data_dir)
    check_rejects(prepared, data, data.path)
    return ({name: _read_pairs(src) for name, src in prepared.sources.items()},
            prepared.name)
  if data.task == "multi30k":
    spec = builders.Multi30kSpec(data.path, data.source_language,
                                 data.target_language, strict=data.strict)
    prepared = builders.prepare_multi30k(spec, data.tfds_data_dir)
    check_rejects(prepared, data, data.path)
    sources, name = prepared.sources, prepared.name
  elif data.task == "tfds":
    sources = builders.load_tfds_translation(
        data.tfds_name, source_language=data.source_language,
        target_language=data.target_language,
        data_dir=data.tfds_data_dir or None)
    name = f"tfds:{data.tfds_name}"
  else:
    raise ValueError(f"config.data.task: {data.task!r} is not a text task")
  splits = {split: _read_pairs(src) for split, src in sources.items()}
  splits["train"] = _filter_train(splits["train"], data)
  return splits, name


def build_vocabularies(data, train: List[Pair]) -> Tuple[Vocabulary, Vocabulary]:
  """(source, target) vocabularies from the training pairs only."""
  pretokenizer = "whitespace" if data.preset == "tutorial" else "punctuation"

  def build(texts):
    return tokenizers.build_vocabulary(
        data.vocab.kind, texts, vocab_size=data.vocab.size or None,
        min_count=data.vocab.min_count,
        model_type=data.vocab.sentencepiece_model,
        pretokenizer=pretokenizer)

  sources = [s for s, _ in train]
  targets = [t for _, t in train]
  if data.vocab.shared:
    shared = build(sources + targets)
    return shared, shared
  return build(sources), build(targets)


def load(data, vocabularies: Optional[Tuple[Vocabulary, Vocabulary]] = None):
  """Reads, (builds vocabularies,) and tokenizes; returns a Corpus."""
  splits, name = read_splits(data)
  for split, pairs in splits.items():
    if not pairs:
      raise DataError(f"split {split!r} of {data.task} is empty")
  source_vocab, target_vocab = vocabularies or build_vocabularies(
      data, [(s, t) for _, s, t in splits["train"]])
  tokenized = {
      split: tokenize(
          [{"line": line, "source": s, "target": t} for line, s, t in pairs],
          source_vocab, target_vocab)
      for split, pairs in splits.items()}
  return Corpus(source_vocab=source_vocab, target_vocab=target_vocab,
                         splits=tokenized, is_text=True, dataset=name)
