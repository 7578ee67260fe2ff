"""Vocabularies map text to ids and back, with fixed special ids.

Every vocabulary in seq2seq_jax reserves the same four ids, so the model and
the decoders never need to ask: PAD=0 (also the mask), BOS=1, EOS=2, UNK=3.
A vocabulary is saved as a JSON file in the workdir beside the checkpoints,
and `fingerprint()` lets a restored checkpoint check it matches the data.
"""
import hashlib
import json
from typing import Iterable, List, Protocol, Sequence

from seq2seq_jax import files

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")


class Vocabulary(Protocol):
  """What the model, the decoders and the workdir use of any vocabulary kind
  (CharVocabulary here; WordVocabulary and SentencePieceVocabulary in
  tokenizers.py, which also holds the registry that loads every kind)."""
  kind: str

  @property
  def size(self) -> int: ...

  def encode(self, text: str) -> List[int]: ...

  def decode(self, ids: Sequence[int]) -> str: ...

  def to_json(self) -> dict: ...

  def fingerprint(self) -> str: ...


class CharVocabulary:
  """One token per character; unknown characters map to UNK.

  Used by the synthetic tasks, where every character is a symbol.
  """
  kind = "char"

  def __init__(self, alphabet: Sequence[str]):
    alphabet = list(alphabet)
    if len(set(alphabet)) != len(alphabet):
      raise ValueError(f"alphabet has repeated symbols: {alphabet}")
    if any(len(symbol) != 1 for symbol in alphabet):
      raise ValueError(f"alphabet symbols must be single characters: {alphabet}")
    self.alphabet = alphabet
    self._tokens = list(SPECIAL_TOKENS) + alphabet
    self._ids = {symbol: i for i, symbol in enumerate(self._tokens)}

  @property
  def size(self) -> int:
    return len(self._tokens)

  def encode(self, text: str) -> List[int]:
    return [self._ids.get(ch, UNK_ID) for ch in text]

  def token(self, i: int) -> str:
    """The symbol of one id (for attention plots)."""
    return self._tokens[i] if 0 <= i < self.size else SPECIAL_TOKENS[UNK_ID]

  def decode(self, ids: Iterable[int]) -> str:
    """Ids to text; stops at EOS, skips PAD and BOS, shows UNK as '?'."""
    out = []
    for i in ids:
      i = int(i)
      if i == EOS_ID:
        break
      if i in (PAD_ID, BOS_ID):
        continue
      out.append("?" if i == UNK_ID or i >= self.size else self._tokens[i])
    return "".join(out)

  def to_json(self) -> dict:
    return {"kind": self.kind, "alphabet": self.alphabet}

  @classmethod
  def from_json(cls, data: dict) -> "CharVocabulary":
    return cls(data["alphabet"])

  def fingerprint(self) -> str:
    blob = json.dumps(self.to_json(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def save(vocab, path: str) -> None:
  """Writes the vocabulary atomically (write to a temp file, then rename)."""
  files.write_json(path, vocab.to_json(), ensure_ascii=False, indent=1)

