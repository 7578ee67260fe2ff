"""Word and SentencePiece vocabularies, with the special ids of vocabulary.py.

Both follow CharVocabulary's interface (kind, size, encode without BOS/EOS,
decode stopping at EOS, to_json, fingerprint) and are built from training
texts only. Each is one JSON file: the SentencePiece model is stored inside,
base64-encoded.

`KINDS` is the one registry of vocabulary kinds (with vocabulary.py's
CharVocabulary): `load` and `from_json` read a file of any kind by its
"kind", and `build_vocabulary` builds a word or SentencePiece vocabulary.
"""
import base64
import collections
import functools
import hashlib
import io
import json
import re
import unicodedata
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

from seq2seq_jax.data import vocabulary
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

# Marks a token written without a space on that side (OpenNMT's joiner), so
# decoding restores "Bonjour," and "l'homme" exactly.
JOINER = "\uffed"
UNK_TEXT = "<unk>"
_PIECE = re.compile(r"\w+|[^\w\s]")  # a run of letters/digits, or one other char
_WORD = re.compile(r"\w+")


def _sentencepiece():
  """The sentencepiece module, imported only where a SentencePiece vocabulary
  is built or read: word and character vocabularies (and an exported model
  that uses one, seq2seq_jax/serving.py) need only the standard library."""
  import sentencepiece  # pylint: disable=g-import-not-at-top
  return sentencepiece


def _fingerprint(data: dict) -> str:
  blob = json.dumps(data, sort_keys=True).encode()
  return hashlib.sha256(blob).hexdigest()[:16]


def split_punctuation(text: str) -> List[str]:
  """Splits on whitespace, then punctuation off words, marking joins.

  Every Unicode space counts as whitespace (U+00A0, and U+202F before French
  '!' '?' ':' ';'). Each punctuation character is its own token; where two
  tokens touch, the punctuation one carries JOINER on the touching side:
  "l'homme, non." -> ["l", "￭'￭", "homme", "￭,", "non", "￭."].
  Text is NFC-normalized first so accented letters stay inside words.
  """
  words = unicodedata.normalize("NFC", text).split()
  # Two fast paths give what the loop below would, for most sentences:
  # words only, and words then one punctuation character ('_' is a word
  # character, so it never ends a word here).
  joined = "".join(words)
  if joined.isalnum():
    return words
  if len(joined) > 1 and joined[:-1].isalnum() and joined[-1] != "_":
    last = words[-1]
    return words if len(last) == 1 else (
        words[:-1] + [last[:-1], JOINER + last[-1]])
  return _split_chunks(words)


def _split_chunks(chunks: Sequence[str]) -> List[str]:
  """split_punctuation of whitespace-separated chunks, one at a time."""
  tokens = []
  for chunk in chunks:
    if chunk.isalnum():  # one word, the common case: what findall would give
      tokens.append(chunk)
      continue
    pieces = _PIECE.findall(chunk)
    marked = list(pieces)
    for i in range(len(pieces) - 1):
      if not _WORD.fullmatch(pieces[i + 1]):
        marked[i + 1] = JOINER + marked[i + 1]
      else:  # a word after punctuation (words never touch words)
        marked[i] = marked[i] + JOINER
    tokens.extend(marked)
  return tokens


def join_punctuation(tokens: Sequence[str]) -> str:
  """Inverse of split_punctuation, up to whitespace (runs become one space)."""
  out = []
  glued = True  # no space before the first token
  for token in tokens:
    if not glued and not token.startswith(JOINER):
      out.append(" ")
    glued = token.endswith(JOINER)
    out.append(token.strip(JOINER))
  return "".join(out)


def _split_chunk(chunk: str) -> List[str]:
  return _split_chunks([chunk])


class Pretokenizer(NamedTuple):
  """split(text) == [token for chunk in normalize(text).split() for token in
  split_chunk(chunk)]: a chunk splits alone, so a corpus of millions of
  sentences splits each distinct chunk once (parallel_tokenize.py)."""
  split: Callable[[str], List[str]]
  join: Callable[[Sequence[str]], str]
  normalize: Callable[[str], str] = str
  split_chunk: Callable[[str], List[str]] = lambda chunk: [chunk]


PRETOKENIZERS: Dict[str, Pretokenizer] = {
    "punctuation": Pretokenizer(split_punctuation, join_punctuation,
                                functools.partial(unicodedata.normalize, "NFC"),
                                _split_chunk),
    # For text already spaced by a normalizer (e.g. the tutorial preset).
    "whitespace": Pretokenizer(str.split, " ".join),
}


def _pretokenizer(name: str) -> Pretokenizer:
  if name not in PRETOKENIZERS:
    raise ValueError(f"unknown pretokenizer {name!r}; valid: "
                     f"{', '.join(sorted(PRETOKENIZERS))}")
  return PRETOKENIZERS[name]


def _content_ids(ids: Iterable[int], size: int) -> List[int]:
  """Ids up to the first EOS, without PAD/BOS; out-of-range ids become UNK."""
  out = []
  for i in ids:
    i = int(i)
    if i == EOS_ID:
      break
    if i in (PAD_ID, BOS_ID):
      continue
    out.append(i if 0 <= i < size else UNK_ID)
  return out


class WordVocabulary:
  """One id per word seen in training; other words map to UNK."""
  kind = "word"

  def __init__(self, words: Sequence[str], pretokenizer: str = "punctuation"):
    """Args: words for ids 4, 5, ... in order; pretokenizer: PRETOKENIZERS key."""
    words = list(words)
    if len(set(words)) != len(words):
      raise ValueError("word list has repeated words")
    if set(words) & set(SPECIAL_TOKENS):
      raise ValueError(f"word list contains special tokens {SPECIAL_TOKENS}")
    self._pretokenizer = _pretokenizer(pretokenizer)
    self.pretokenizer = pretokenizer
    self.words = words
    self._tokens = list(SPECIAL_TOKENS) + words
    # Specials are left out so that text "<s>" can never encode to BOS.
    self._ids = {word: i for i, word in enumerate(words, start=len(SPECIAL_TOKENS))}

  @classmethod
  def build(cls, texts: Iterable[str], *, min_count: int = 1,
            max_size: Optional[int] = None,
            pretokenizer: str = "punctuation") -> "WordVocabulary":
    """Counts tokens in `texts` (training data only).

    Args:
      texts: training sentences.
      min_count: keep tokens seen at least this often.
      max_size: cap on `size`, the 4 special ids included; None: no cap.
      pretokenizer: PRETOKENIZERS key.

    Returns:
      A vocabulary ordered by decreasing count, ties broken alphabetically,
      so the same texts always give the same ids.
    """
    split = _pretokenizer(pretokenizer).split
    counts = collections.Counter()
    for text in texts:
      counts.update(split(text))
    return cls.from_counts(counts, min_count=min_count, max_size=max_size,
                           pretokenizer=pretokenizer)

  @classmethod
  def from_counts(cls, counts: collections.Counter, *, min_count: int = 1,
                  max_size: Optional[int] = None,
                  pretokenizer: str = "punctuation") -> "WordVocabulary":
    """`build` from token counts already made (e.g. by worker processes)."""
    if min_count < 1:
      raise ValueError(f"min_count must be >= 1, got {min_count}")
    if max_size is not None and max_size <= len(SPECIAL_TOKENS):
      raise ValueError(f"max_size must exceed the {len(SPECIAL_TOKENS)} "
                       f"special tokens, got {max_size}")
    counts = collections.Counter(counts)
    for special in SPECIAL_TOKENS:
      counts.pop(special, None)
    words = sorted((w for w, c in counts.items() if c >= min_count),
                   key=lambda w: (-counts[w], w))
    if max_size is not None:
      words = words[:max_size - len(SPECIAL_TOKENS)]
    return cls(words, pretokenizer)

  @property
  def size(self) -> int:
    return len(self._tokens)

  def tokenize(self, text: str) -> List[str]:
    return self._pretokenizer.split(text)

  def token(self, i: int) -> str:
    """The surface string of one id (for attention plots)."""
    return self._tokens[i] if 0 <= i < self.size else UNK_TEXT

  def encode(self, text: str) -> List[int]:
    return [self._ids.get(token, UNK_ID) for token in self.tokenize(text)]

  def ids_of(self, words: Sequence[str]) -> List[int]:
    """The id of each already split word (UNK where unknown)."""
    return [self._ids.get(word, UNK_ID) for word in words]

  def decode(self, ids: Iterable[int]) -> str:
    """Ids to detokenized text; stops at EOS, skips PAD and BOS, UNK is '<unk>'."""
    tokens = [UNK_TEXT if i == UNK_ID else self._tokens[i]
              for i in _content_ids(ids, self.size)]
    return self._pretokenizer.join(tokens)

  def to_json(self) -> dict:
    return {"kind": self.kind, "pretokenizer": self.pretokenizer,
            "words": self.words}

  @classmethod
  def from_json(cls, data: dict) -> "WordVocabulary":
    return cls(data["words"], data["pretokenizer"])

  def fingerprint(self) -> str:
    return _fingerprint(self.to_json())


MODEL_TYPES = ("unigram", "bpe")


def _train_sentencepiece(texts: List[str], vocab_size: int, model_type: str) -> bytes:
  if model_type not in MODEL_TYPES:
    raise ValueError(f"unknown sentencepiece model_type {model_type!r}; valid: "
                     f"{', '.join(MODEL_TYPES)}")
  if not any(text.strip() for text in texts):
    raise ValueError("cannot train sentencepiece: no non-empty training texts")
  model = io.BytesIO()
  try:
    _sentencepiece().SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model,
        model_type=model_type, vocab_size=vocab_size,
        pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_id=UNK_ID,
        pad_piece=SPECIAL_TOKENS[PAD_ID], bos_piece=SPECIAL_TOKENS[BOS_ID],
        eos_piece=SPECIAL_TOKENS[EOS_ID], unk_piece=SPECIAL_TOKENS[UNK_ID],
        # vocab_size is an upper bound, so a small corpus still trains.
        hard_vocab_limit=False,
        # Every character of the training texts gets a piece: no UNK for a
        # rare accented letter. Corpora with huge alphabets would want < 1.
        character_coverage=1.0,
        # One thread: the trained model is then byte-identical run to run.
        num_threads=1, minloglevel=2)
  except RuntimeError as e:
    if "smaller than required_chars" in str(e):
      raise ValueError(
          f"sentencepiece vocab_size={vocab_size} is too small: it must cover "
          f"every distinct character of the training texts plus the "
          f"{len(SPECIAL_TOKENS)} special tokens ({e})") from e
    raise ValueError(f"sentencepiece training failed: {e}") from e
  return model.getvalue()


class SentencePieceVocabulary:
  """A SentencePiece model (unigram or BPE) trained on the training texts.

  Text goes through SentencePiece's default nmt_nfkc normalization, so
  decode(encode(t)) is t after NFKC with whitespace runs made one space
  (U+202F and U+00A0 become ' ').
  """
  kind = "sentencepiece"

  def __init__(self, model_proto: bytes):
    self.model_proto = model_proto
    self._sp = _sentencepiece().SentencePieceProcessor(model_proto=model_proto)
    ids = (self._sp.pad_id(), self._sp.bos_id(), self._sp.eos_id(), self._sp.unk_id())
    if ids != (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
      raise ValueError(f"sentencepiece model has pad/bos/eos/unk ids {ids}; "
                       f"seq2seq_jax needs {(PAD_ID, BOS_ID, EOS_ID, UNK_ID)}")

  @classmethod
  def train(cls, texts: Iterable[str], *, vocab_size: int,
            model_type: str = "unigram") -> "SentencePieceVocabulary":
    """Args: texts (training data only); vocab_size: the most pieces, specials
    included; model_type: one of MODEL_TYPES. Deterministic for equal inputs."""
    return cls(_train_sentencepiece(list(texts), vocab_size, model_type))

  @property
  def size(self) -> int:
    return self._sp.get_piece_size()

  def encode(self, text: str) -> List[int]:
    return self._sp.encode(text, out_type=int)

  def encode_many(self, texts: Sequence[str]) -> List[List[int]]:
    """`encode` of each text, in one call (SentencePiece's C++ loop)."""
    return self._sp.encode(list(texts), out_type=int)

  def token(self, i: int) -> str:
    """The piece of one id (for attention plots)."""
    return self._sp.id_to_piece(i) if 0 <= i < self.size else "<unk>"

  def decode(self, ids: Iterable[int]) -> str:
    """Ids to text; stops at EOS, skips PAD and BOS, UNK shows as ' ⁇ '."""
    return self._sp.decode(_content_ids(ids, self.size))

  def to_json(self) -> dict:
    return {"kind": self.kind,
            "model": base64.b64encode(self.model_proto).decode("ascii")}

  @classmethod
  def from_json(cls, data: dict) -> "SentencePieceVocabulary":
    return cls(base64.b64decode(data["model"]))

  def fingerprint(self) -> str:
    return _fingerprint(self.to_json())


KINDS = {"char": vocabulary.CharVocabulary, "word": WordVocabulary,
         "sentencepiece": SentencePieceVocabulary}


def from_json(data: dict) -> vocabulary.Vocabulary:
  """A vocabulary of any kind from its JSON."""
  kind = data.get("kind")
  if kind not in KINDS:
    raise ValueError(f"unknown vocabulary kind {kind!r}; valid: "
                     f"{', '.join(sorted(KINDS))}")
  return KINDS[kind].from_json(data)


def load(path: str):
  """Reads a file written by vocabulary.save, of any kind."""
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"cannot read vocabulary file {path}: {e}") from e
  return from_json(data)


def _build_word(texts, vocab_size, min_count, model_type, pretokenizer):
  del model_type  # sentencepiece only
  return WordVocabulary.build(texts, min_count=min_count, max_size=vocab_size,
                              pretokenizer=pretokenizer)


def _build_sentencepiece(texts, vocab_size, min_count, model_type,
                         pretokenizer):
  del min_count, pretokenizer  # word only: sentencepiece reads raw text
  if vocab_size is None:
    raise ValueError("sentencepiece needs a vocab_size")
  return SentencePieceVocabulary.train(texts, vocab_size=vocab_size,
                                       model_type=model_type)


BUILDERS = {"word": _build_word, "sentencepiece": _build_sentencepiece}


def build_vocabulary(kind: str, texts: Iterable[str], *, vocab_size: Optional[int],
                     min_count: int, model_type: str,
                     pretokenizer: str = "punctuation"):
  """Builds a vocabulary of `kind` from training texts.

  Args:
    kind: a BUILDERS key.
    texts: training sentences only (never validation or test).
    vocab_size: most ids, the 4 specials included; None: unlimited (word only).
    min_count: word: fewest occurrences to get an id; unused by sentencepiece.
    model_type: sentencepiece: one of MODEL_TYPES; unused by word.
    pretokenizer: word: how text splits into words; unused by sentencepiece.

  Returns:
    A WordVocabulary or SentencePieceVocabulary.
  """
  if kind not in BUILDERS:
    raise ValueError(f"unknown vocabulary kind {kind!r}; valid: "
                     f"{', '.join(sorted(BUILDERS))}")
  return BUILDERS[kind](texts, vocab_size, min_count, model_type,
                       pretokenizer)
