"""Tokenizes millions of sentences once, in worker processes.

Word vocabularies need the training counts before any id is known, and
counting means splitting every sentence into words: the expensive part. So a
worker splits each chunk of sentences once and returns *chunk-local* ids (the
chunk's own word list) as one flat array; the main process adds up the
training chunks' counts, builds the vocabulary, and maps each chunk's local
ids to vocabulary ids with one array lookup. SentencePiece models are
trained on a bounded sample first (as `spm_train --input_sentence_size`
does) and then encode the chunks in the workers.

Workers are spawned, not forked: the caller has usually started JAX's
threads, and a fork of a multithreaded process can deadlock.
"""
import collections
import itertools
import multiprocessing
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from seq2seq_jax.data.text import progress
from seq2seq_jax.data import tokenizers

CHUNK_SENTENCES = 50_000  # per task: its words split once (_ChunkIds)
# Below this much text, starting workers (about 2 s) costs more than it saves.
MIN_BYTES_FOR_WORKERS = 16 << 20


class Tokenized:
  """Token ids of a list of sentences, flat: sentence i is
  ids[offsets[i]:offsets[i + 1]]."""

  def __init__(self, ids: np.ndarray, lengths: np.ndarray):
    self.ids = ids
    self.lengths = lengths
    self.offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=self.offsets[1:])

  def __len__(self) -> int:
    return len(self.lengths)

  def row(self, i: int) -> np.ndarray:
    return self.ids[self.offsets[i]:self.offsets[i + 1]]


class _ChunkIds(dict):
  """chunk -> its tokens' local ids, split on first use: most chunks (a word
  with or without punctuation) recur, so each distinct one splits once."""

  def __init__(self, split_chunk):
    super().__init__()
    self.split_chunk = split_chunk
    self.local: Dict[str, int] = {}  # word -> local id, in order of first use

  def __missing__(self, chunk: str):
    ids = self[chunk] = tuple(self.local.setdefault(word, len(self.local))
                              for word in self.split_chunk(chunk))
    return ids


def _split_words(task: Tuple[Sequence[str], str]):
  """(words of the chunk in order of first use, flat local ids, lengths)."""
  texts, pretokenizer = task
  pretokenize = tokenizers.PRETOKENIZERS[pretokenizer]
  chunk_ids = _ChunkIds(pretokenize.split_chunk)
  flatten = itertools.chain.from_iterable
  sentences = [list(flatten(map(chunk_ids.__getitem__,
                                pretokenize.normalize(text).split())))
               for text in texts]
  lengths = np.fromiter(map(len, sentences), np.int32, len(sentences))
  ids = np.fromiter(flatten(sentences), np.int32, int(lengths.sum()))
  return list(chunk_ids.local), ids, lengths


_SENTENCEPIECE = {}


def _encode_pieces(task: Tuple[Sequence[str], bytes]):
  texts, model_proto = task
  if model_proto not in _SENTENCEPIECE:
    _SENTENCEPIECE.clear()
    _SENTENCEPIECE[model_proto] = tokenizers.SentencePieceVocabulary(model_proto)
  encoded = _SENTENCEPIECE[model_proto].encode_many(texts)
  lengths = np.asarray([len(ids) for ids in encoded], np.int32)
  flat = (np.concatenate([np.asarray(ids, np.int32) for ids in encoded])
          if encoded else np.zeros(0, np.int32))
  return flat, lengths


def _chunks(texts: Sequence[str]) -> Iterator[Sequence[str]]:
  for start in range(0, len(texts), CHUNK_SENTENCES):
    yield texts[start:start + CHUNK_SENTENCES]


class Workers:
  """map() over chunks: in spawned worker processes for big inputs, else
  here. Start it early: spawning costs about 2 s, overlapped with reading."""

  def __init__(self, input_bytes: int, workers: Optional[int] = None):
    """input_bytes: the size of the text (decides whether workers pay);
    workers: how many (None: one per core for big inputs, 0: none)."""
    if workers is None:
      workers = (multiprocessing.cpu_count()
                 if input_bytes >= MIN_BYTES_FOR_WORKERS else 0)
    self._pool = (multiprocessing.get_context("spawn").Pool(workers)
                  if workers > 0 else None)

  def map(self, function, tasks):
    if self._pool is None:
      return map(function, tasks)
    return self._pool.imap(function, tasks)

  def close(self):
    if self._pool is not None:
      self._pool.close()
      self._pool.join()
      self._pool = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self._pool is not None and exc[0] is not None:
      self._pool.terminate()
    self.close()


def tokenize_words(texts: Dict[str, Sequence[str]],
                   vocab_groups: Dict[str, Sequence[str]], build,
                   pretokenizer: str, pool: Workers):
  """Builds word vocabularies from training texts and encodes every text.

  Args:
    texts: {key: sentences}, e.g. {'train/source': [...], ...}.
    vocab_groups: {vocabulary name: keys of the training texts it is built
      from}; every text is encoded with the vocabulary of the group its key
      shares a suffix with ('.../source' uses 'source'; a group named
      'shared' serves every key).
    build: counts (collections.Counter) -> a WordVocabulary.
    pretokenizer: tokenizers.PRETOKENIZERS key.
    pool: where the splitting runs.

  Returns:
    ({vocabulary name: vocabulary}, {key: Tokenized}).
  """
  bar = progress.Bar("tokenizing", sum(len(t) for t in texts.values()),
                     unit="sentences")
  split = {key: [] for key in texts}
  tasks = ((key, chunk) for key, sentences in texts.items()
           for chunk in _chunks(sentences))
  keys = [key for key, sentences in texts.items() for _ in _chunks(sentences)]
  try:
    for key, result in zip(keys, pool.map(
        _split_words, ((chunk, pretokenizer) for _, chunk in tasks))):
      split[key].append(result)
      bar.advance(len(result[2]))
  finally:
    bar.close()
  vocabs = {}
  for name, train_keys in vocab_groups.items():
    counts = collections.Counter()
    for key in train_keys:
      for words, ids, _ in split[key]:
        for word, count in zip(words, np.bincount(ids, minlength=len(words))):
          counts[word] += int(count)
    vocabs[name] = build(counts)
  tokenized = {}
  for key, chunks in split.items():
    vocab = vocabs.get("shared") or vocabs[key.rsplit("/", 1)[-1]]
    mapped, lengths = [], []
    for words, ids, chunk_lengths in chunks:
      lookup = np.asarray(vocab.ids_of(words), np.int32)
      mapped.append(lookup[ids] if len(ids) else ids)
      lengths.append(chunk_lengths)
    tokenized[key] = Tokenized(_concatenate(mapped), _concatenate(lengths))
  return vocabs, tokenized


def encode_sentencepiece(texts: Dict[str, Sequence[str]], vocab,
                         pool: Workers) -> Dict[str, Tokenized]:
  """Encodes every key's sentences with a trained SentencePiece model."""
  bar = progress.Bar("tokenizing", sum(len(t) for t in texts.values()),
                     unit="sentences")
  tokenized = {}
  try:
    for key, sentences in texts.items():
      ids, lengths = [], []
      for flat, chunk_lengths in pool.map(
          _encode_pieces, ((chunk, vocab.model_proto)
                           for chunk in _chunks(sentences))):
        ids.append(flat)
        lengths.append(chunk_lengths)
        bar.advance(len(chunk_lengths))
      tokenized[key] = Tokenized(_concatenate(ids), _concatenate(lengths))
  finally:
    bar.close()
  return tokenized


def _concatenate(arrays: List[np.ndarray]) -> np.ndarray:
  return np.concatenate(arrays) if arrays else np.zeros(0, np.int32)


def sample(texts: Sequence[str], limit: int, seed: int = 0) -> List[str]:
  """At most `limit` of `texts`, a fixed function of them (for training a
  SentencePiece model on a bounded sample), in their order."""
  if len(texts) <= limit:
    return list(texts)
  chosen = np.sort(np.random.default_rng(seed).choice(len(texts), limit,
                                                      replace=False))
  return [texts[i] for i in chosen]
