"""Prepares a parallel-text dataset once: read, split, tokenize, store.

The first start with some data and options reads the text, splits it, builds
the vocabularies on the training split, tokenizes every split in worker
processes and writes the token store (token_store.py). Every later start,
a resume included, finds the store by name and opens it: it reads no text
and tokenizes nothing, so its time and memory do not grow with the corpus.

The name is a content hash: the task, every option that changes what is
stored, and the bytes of the input files. Edited data or a changed option
prepares anew; it never reuses a stale store. A store is written in a
temporary folder and renamed into place when complete, under a lock, so two
processes preparing the same data at once never read a half-written one.
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import time
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging

from seq2seq_jax.data.text import parallel_tokenize
from seq2seq_jax.data.text import progress
from seq2seq_jax.data.text import token_store
from seq2seq_jax.data import tokenizers
from seq2seq_jax.data import vocabulary
from seq2seq_jax.data.text.splitting import SPLITS

# Bump when the same inputs and options would now be stored differently.
PREPARATION_VERSION = 1
STORE_FOLDER = "seq2seq_jax"  # under config.data.tfds_data_dir
DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")
SIDES = ("source", "target")
WRITE_BLOCK = 50_000


@dataclasses.dataclass
class TextSplits:
  """What reading a corpus gives: {split: [(line, source, target)]} and its
  report (the build report's text and counts of rejected lines)."""
  splits: Dict[str, List[Tuple[int, str, str]]]
  report: str
  counts: Dict[str, Dict]


@dataclasses.dataclass
class Prepared:
  """A prepared dataset: its folder, manifest and vocabularies."""
  directory: str
  manifest: dict
  source_vocab: vocabulary.Vocabulary
  target_vocab: vocabulary.Vocabulary

  @property
  def name(self) -> str:
    return self.manifest["name"]

  def split(self, name: str) -> token_store.StoredSplit:
    return token_store.StoredSplit(self.directory, name)


def store_root(data_dir: str) -> str:
  return os.path.join(os.path.expanduser(data_dir or DEFAULT_DATA_DIR),
                      STORE_FOLDER)


def content_hash(paths: Sequence[str]) -> str:
  """Short sha256 of the files' bytes (about 1 GB/s)."""
  digest = hashlib.sha256()
  for path in paths:
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 22), b""):
        digest.update(block)
  return digest.hexdigest()[:12]


def options_hash(options: dict) -> str:
  blob = json.dumps(dict(options, preparation_version=PREPARATION_VERSION,
                         format_version=token_store.FORMAT_VERSION),
                    sort_keys=True, default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:10]


@contextlib.contextmanager
def _lock(path: str):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "a+", encoding="utf-8") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)  # waits for another preparation
    yield


def prepare(name: str, data_dir: str, read, vocab_options: dict,
            input_bytes: int, workers: Optional[int] = None) -> Prepared:
  """Opens the store `name`, preparing it first if it does not exist.

  Args:
    name: the content-hashed name (folder) of the store.
    data_dir: config.data.tfds_data_dir ('' = ~/tensorflow_datasets).
    read: (pool) -> TextSplits, called only when the store must be
      prepared; pool: a parallel_tokenize.Workers it may use.
    vocab_options: build_vocabularies' options (kind, size, min_count,
      sentencepiece_model, shared, pretokenizer, sample).
    input_bytes: the size of the input text (workers pay for big inputs).
    workers: tokenizing processes (None: automatic).
  """
  directory = os.path.join(store_root(data_dir), name)
  if token_store.read_manifest(directory) is None:
    with _lock(directory + ".lock"):
      if token_store.read_manifest(directory) is None:
        _build(directory, name, read, vocab_options, input_bytes, workers)
  return open_store(directory)


def open_store(directory: str) -> Prepared:
  manifest = token_store.read_manifest(directory)
  if manifest is None:
    raise ValueError(f"{directory} is not a complete prepared dataset")
  if manifest.get("report"):
    logging.info("%s", manifest["report"])
  vocabs = [tokenizers.load(os.path.join(directory, f"vocab_{side}.json"))
            for side in SIDES]
  return Prepared(directory, manifest, *vocabs)


def _build(directory: str, name: str, read, vocab_options: dict,
           input_bytes: int, workers: Optional[int]) -> None:
  started = time.time()
  # Spawned now, the workers start while the text is read.
  with parallel_tokenize.Workers(input_bytes, workers) as pool:
    text = read(pool)
    read_s = time.time() - started
    vocabs, tokenized = tokenize_splits(text.splits, vocab_options, pool)
    tokenize_s = time.time() - started - read_s
  partial = f"{directory}.partial-{os.getpid()}"
  shutil.rmtree(partial, ignore_errors=True)
  os.makedirs(partial)
  try:
    _write(partial, text, vocabs, tokenized)
    seconds = time.time() - started
    token_store.write_manifest(partial, {
        "name": name, "splits": {s: len(p) for s, p in text.splits.items()},
        "report": text.report, "counts": text.counts,
        "vocab_options": vocab_options,
        "prepared_in_s": {"total": round(seconds, 2), "read": round(read_s, 2),
                          "tokenize": round(tokenize_s, 2),
                          "write": round(seconds - read_s - tokenize_s, 2)},
    })
  except BaseException:  # an error, Ctrl-C: leave nothing half-written
    shutil.rmtree(partial, ignore_errors=True)
    raise
  shutil.rmtree(directory, ignore_errors=True)
  os.replace(partial, directory)
  total = sum(len(pairs) for pairs in text.splits.values())
  logging.info("prepared %s: %s pairs in %.1f s (%.0f pairs/s) in %s", name,
               f"{total:,}", seconds, total / max(seconds, 1e-9), directory)


def _write(folder: str, text: TextSplits, vocabs, tokenized) -> None:
  """The vocabularies and every split's records and lengths, into `folder`."""
  for side, vocab in zip(SIDES, vocabs):
    vocabulary.save(vocab, os.path.join(folder, f"vocab_{side}.json"))
  bar = progress.Bar("writing", sum(map(len, text.splits.values())),
                     unit="pairs")
  for split, pairs in text.splits.items():
    writer = token_store.SplitWriter(folder, split)
    source, target = tokenized[split]
    for start in range(0, len(pairs), WRITE_BLOCK):
      block = range(start, min(start + WRITE_BLOCK, len(pairs)))
      writer.write([pairs[i][0] for i in block],
                   [source.row(i) for i in block],
                   [target.row(i) for i in block],
                   [pairs[i][1] for i in block], [pairs[i][2] for i in block])
      bar.advance(len(block))
    writer.close()
  bar.close()


def tokenize_splits(splits: Dict[str, List[Tuple[int, str, str]]],
                    options: dict, pool: parallel_tokenize.Workers):
  """((source vocab, target vocab), {split: (source Tokenized, target
  Tokenized)}), the vocabularies built on the training split only."""
  texts = {f"{split}/{side}": [pair[1 + k] for pair in pairs]
           for split, pairs in splits.items()
           for k, side in enumerate(SIDES)}
  if options["kind"] == "word":
    groups = ({"shared": ["train/source", "train/target"]}
              if options["shared"] else
              {side: [f"train/{side}"] for side in SIDES})
    vocabs, tokenized = parallel_tokenize.tokenize_words(
        texts, groups, _word_builder(options), options["pretokenizer"], pool)
    vocabs = tuple(vocabs.get("shared") or vocabs[side] for side in SIDES)
  else:
    vocabs = _train_sentencepiece(texts, options)
    tokenized = {}
    for side, vocab in zip(SIDES, vocabs):
      tokenized.update(parallel_tokenize.encode_sentencepiece(
          {key: text for key, text in texts.items()
           if key.endswith("/" + side)}, vocab, pool))
  return vocabs, {split: tuple(tokenized[f"{split}/{side}"] for side in SIDES)
                  for split in splits}


def _word_builder(options: dict):
  def build(counts):
    return tokenizers.WordVocabulary.from_counts(
        counts, min_count=options["min_count"],
        max_size=options["size"] or None, pretokenizer=options["pretokenizer"])
  return build


def _train_sentencepiece(texts: Dict[str, List[str]], options: dict):
  def train(sentences):
    return tokenizers.SentencePieceVocabulary.train(
        parallel_tokenize.sample(sentences, options["sample"]),
        vocab_size=options["size"], model_type=options["sentencepiece_model"])
  if options["shared"]:
    vocab = train(texts["train/source"] + texts["train/target"])
    return vocab, vocab
  return train(texts["train/source"]), train(texts["train/target"])
