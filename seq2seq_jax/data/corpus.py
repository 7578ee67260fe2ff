"""What every data loader returns: tokenized splits with their text, and the reads.

Synthetic and translation loaders both end here, so this module depends on
neither of them (no import circle between the loaders and the registry).
"""
import dataclasses
import functools
from typing import Any, Dict, List, Sequence

import numpy as np

from seq2seq_jax.data.vocabulary import Vocabulary


@dataclasses.dataclass
class Split:
  """One tokenized split. ids lists hold 1-D int32 arrays without BOS/EOS;
  `lines` are the examples' 1-based line numbers in their corpus file."""
  source_ids: List[np.ndarray]
  target_ids: List[np.ndarray]
  source_text: List[str]
  target_text: List[str]
  lines: List[int] = dataclasses.field(default_factory=list)

  def __len__(self):
    return len(self.source_ids)

  # What batching reads of any split, in memory or stored (token_store.py).
  @functools.cached_property
  def source_lengths(self) -> np.ndarray:
    return np.fromiter(map(len, self.source_ids), np.int32, len(self))

  @functools.cached_property
  def target_lengths(self) -> np.ndarray:
    return np.fromiter(map(len, self.target_ids), np.int32, len(self))

  def token_ids(self, indices: Sequence[int]):
    """([source ids], [target ids]) of the examples at `indices`."""
    return ([self.source_ids[i] for i in indices],
            [self.target_ids[i] for i in indices])

  def to_memory(self) -> "Split":
    return self


@dataclasses.dataclass
class Corpus:
  source_vocab: Vocabulary
  target_vocab: Vocabulary
  # 'train', 'validation', 'test': a Split, or a token_store.StoredSplit
  # (the same reads, from disk) for a prepared text dataset's training split
  splits: Dict[str, Any]
  is_text: bool = False  # natural language: report BLEU and chrF
  dataset: str = ""  # the prepared dataset's identity (builder/config:version)


def as_text(value) -> str:
  """TFDS text features come back as bytes; everything here is str."""
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_all(source, chunk: int = 8192) -> List[Dict[str, Any]]:
  """Every record of a TFDS data source (batched reads are ~4x faster)."""
  records = []
  for start in range(0, len(source), chunk):
    records.extend(source.__getitems__(
        list(range(start, min(start + chunk, len(source))))))
  return records


def tokenize(records, source_vocab: Vocabulary,
             target_vocab: Vocabulary) -> Split:
  """Records with 'source', 'target' (and 'line') -> a Split."""
  source_text = [as_text(r["source"]) for r in records]
  target_text = [as_text(r["target"]) for r in records]
  return Split(
      source_ids=[np.asarray(source_vocab.encode(t), np.int32)
                  for t in source_text],
      target_ids=[np.asarray(target_vocab.encode(t), np.int32)
                  for t in target_text],
      source_text=source_text, target_text=target_text,
      lines=[int(r.get("line", i + 1)) for i, r in enumerate(records)])
