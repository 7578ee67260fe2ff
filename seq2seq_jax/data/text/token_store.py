"""Tokenized splits on disk, read by index: what training streams from.

A prepared dataset is one directory:

  manifest.json            written last: the dataset's identity, its splits'
                           sizes, the build report, the length buckets
  vocab_source.json        the vocabularies (vocab_target.json beside it)
  <split>.array_record     one record per example (ArrayRecord, group_size 1,
                           so any example is one read)
  <split>.lengths.npy      [N, 2] uint16: source and target token counts, for
                           bucketing without reading the records

A record holds the example's token ids, its text and its line number:
`encode_record` / `decode_record`. Nothing here holds a split in memory:
`StoredSplit` opens the files and reads the examples a batch asks for, so a
corpus of 30 M pairs costs its lengths (4 bytes a pair) and no more.
"""
import json
import os
import struct
from typing import List, NamedTuple, Sequence

import numpy as np

from seq2seq_jax import files
from seq2seq_jax.data.corpus import Split

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
# line, source tokens, target tokens, source text bytes, target text bytes
_HEADER = struct.Struct("<IIIII")
# Chunks of 16 records, uncompressed: measured on 1 M records of 100 bytes,
# writing takes 0.8 s (group_size:1, Grain's advice, 3.3 s; compressed 2.1 s)
# and a batch of 128 random reads 2-3 ms (group_size:1: 10 ms).
WRITER_OPTIONS = "group_size:16,uncompressed"
READER_OPTIONS = "readahead_buffer_size:0"  # random access, not a scan
MAX_TOKENS = np.iinfo(np.uint16).max - 1  # + BOS/EOS still fits a uint16


class Example(NamedTuple):
  line: int
  source_ids: np.ndarray  # [S] int32, without BOS/EOS
  target_ids: np.ndarray  # [T] int32, without BOS/EOS
  source_text: str
  target_text: str


def encode_record(line: int, source_ids: np.ndarray, target_ids: np.ndarray,
                  source_text: str, target_text: str) -> bytes:
  source_bytes = source_text.encode("utf-8")
  target_bytes = target_text.encode("utf-8")
  return b"".join((
      _HEADER.pack(line, len(source_ids), len(target_ids), len(source_bytes),
                   len(target_bytes)),
      np.asarray(source_ids, "<i4").tobytes(),
      np.asarray(target_ids, "<i4").tobytes(), source_bytes, target_bytes))


def decode_record(blob: bytes) -> Example:
  line, source_length, target_length, source_bytes, target_bytes = (
      _HEADER.unpack_from(blob))
  start = _HEADER.size
  ids = np.frombuffer(blob, "<i4", source_length + target_length, start)
  start += 4 * (source_length + target_length)
  middle = start + source_bytes
  return Example(line, ids[:source_length].astype(np.int32),
                 ids[source_length:].astype(np.int32),
                 blob[start:middle].decode("utf-8"),
                 blob[middle:middle + target_bytes].decode("utf-8"))


def records_path(directory: str, split: str) -> str:
  return os.path.join(directory, f"{split}.array_record")


def lengths_path(directory: str, split: str) -> str:
  return os.path.join(directory, f"{split}.lengths.npy")


class SplitWriter:
  """Appends a split's examples to its ArrayRecord file, then its lengths."""

  def __init__(self, directory: str, split: str):
    # pylint: disable-next=g-import-not-at-top
    from array_record.python.array_record_module import ArrayRecordWriter
    self._directory, self._split = directory, split
    self._writer = ArrayRecordWriter(records_path(directory, split),
                                     WRITER_OPTIONS)
    self._lengths: List[np.ndarray] = []

  def write(self, lines: Sequence[int], source_ids: Sequence[np.ndarray],
            target_ids: Sequence[np.ndarray], source_text: Sequence[str],
            target_text: Sequence[str]) -> None:
    """Appends a block of examples (parallel sequences, in order)."""
    for record in zip(lines, source_ids, target_ids, source_text, target_text):
      self._writer.write(encode_record(*record))
    lengths = np.empty((len(lines), 2), np.int64)
    lengths[:, 0] = [len(ids) for ids in source_ids]
    lengths[:, 1] = [len(ids) for ids in target_ids]
    if lengths.size and lengths.max() > MAX_TOKENS:
      raise ValueError(f"an example of {lengths.max():,} tokens: at most "
                       f"{MAX_TOKENS:,} per side are stored")
    self._lengths.append(lengths.astype(np.uint16))

  def close(self) -> int:
    """Finishes both files; returns the number of examples."""
    self._writer.close()
    lengths = (np.concatenate(self._lengths) if self._lengths
               else np.zeros((0, 2), np.uint16))
    np.save(lengths_path(self._directory, self._split), lengths)
    return len(lengths)


class StoredSplit:
  """One split of a prepared dataset, read by index (nothing held in memory
  but its lengths). Picklable, so Grain's worker processes can read it."""

  def __init__(self, directory: str, split: str):
    self.directory, self.name = directory, split
    lengths = np.load(lengths_path(directory, split))
    # uint16, as stored: 4 bytes a pair in memory.
    self.source_lengths = np.ascontiguousarray(lengths[:, 0])
    self.target_lengths = np.ascontiguousarray(lengths[:, 1])
    self._source = None

  def __getstate__(self):
    return {"directory": self.directory, "name": self.name,
            "source_lengths": self.source_lengths,
            "target_lengths": self.target_lengths, "_source": None}

  def __len__(self) -> int:
    return len(self.source_lengths)

  def _records(self):
    if self._source is None:
      # pylint: disable-next=g-import-not-at-top
      from array_record.python.array_record_module import ArrayRecordReader
      self._source = ArrayRecordReader(records_path(self.directory, self.name),
                                       READER_OPTIONS)
    return self._source

  def examples(self, indices: Sequence[int]) -> List[Example]:
    """The examples at `indices`, in that order (one batched read)."""
    indices = [int(i) for i in indices]
    if not indices:
      return []
    return [decode_record(blob) for blob in self._records().read(indices)]

  def token_ids(self, indices: Sequence[int]):
    """([source ids], [target ids]) of the examples at `indices`."""
    examples = self.examples(indices)
    return ([e.source_ids for e in examples], [e.target_ids for e in examples])


  def to_memory(self, chunk: int = 8192):
    """The whole split as a corpus.Split (for the small held-out splits)."""
    examples = []
    for start in range(0, len(self), chunk):
      examples += self.examples(range(start, min(start + chunk, len(self))))
    return Split(source_ids=[e.source_ids for e in examples],
                 target_ids=[e.target_ids for e in examples],
                 source_text=[e.source_text for e in examples],
                 target_text=[e.target_text for e in examples],
                 lines=[e.line for e in examples])


def write_manifest(directory: str, manifest: dict) -> None:
  files.write_json(os.path.join(directory, MANIFEST_FILE),
                   dict(manifest, format_version=FORMAT_VERSION), indent=1,
                   sort_keys=True, ensure_ascii=False)


def read_manifest(directory: str):
  """The manifest of a complete dataset of this format, or None."""
  path = os.path.join(directory, MANIFEST_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      manifest = json.load(f)
  except (OSError, json.JSONDecodeError):
    return None
  if manifest.get("format_version") != FORMAT_VERSION:
    return None
  return manifest
