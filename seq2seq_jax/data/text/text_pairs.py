"""Reading parallel text into (english, other) or (source, target) pairs.

Nothing is dropped silently: a line that does not become a pair is counted in
a `FilterReport` under its reason, with file:line for the first few, and a pair
removed by a filter is counted under the filter's reason. Pure Python.

The PyTorch seq2seq tutorial's preset (normalizeString, MAX_LENGTH and
eng_prefixes of
https://pytorch.org/tutorials/intermediate/seq2seq_translation_tutorial.html)
is reproduced exactly by `normalize_tutorial` and `filter_pairs` with the
TUTORIAL_* constants.
"""
import collections
import dataclasses
import os
import re
import unicodedata
from typing import Callable, Dict, List, Optional, Sequence, Tuple

Pair = Tuple[str, str]

MAX_EXAMPLES = 20  # file:line locations kept per reject reason
_BOM = b"\xef\xbb\xbf"

# The tutorial keeps pairs whose sides have *fewer than* MAX_LENGTH words.
TUTORIAL_MAX_LENGTH = 10
TUTORIAL_ENGLISH_PREFIXES = (
    "i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are",
    "you re ", "we are", "we re ", "they are", "they re ")


class DataError(ValueError):
  """A data file is missing, malformed, or yields no usable pairs."""


@dataclasses.dataclass
class FilterReport:
  """What happened to every line read: kept, filtered (by rule) or rejected.

  Attributes:
    kept: pairs that survived.
    filtered: reason -> pairs removed by a filter rule (e.g. 'too long').
    rejected: reason -> malformed lines (e.g. 'no tab', 'invalid UTF-8').
    examples: reason -> up to MAX_EXAMPLES 'path:line' locations of rejects.
    kept_lines: 1-based line numbers of the kept pairs (set by the readers).
  """
  kept: int = 0
  filtered: Dict[str, int] = dataclasses.field(default_factory=dict)
  rejected: Dict[str, int] = dataclasses.field(default_factory=dict)
  examples: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  kept_lines: List[int] = dataclasses.field(default_factory=list)

  @property
  def total(self) -> int:
    return self.kept + sum(self.filtered.values()) + sum(self.rejected.values())

  def reject(self, reason: str, path: str, line: int) -> None:
    self.rejected[reason] = self.rejected.get(reason, 0) + 1
    locations = self.examples.setdefault(reason, [])
    if len(locations) < MAX_EXAMPLES:
      locations.append(f"{path}:{line}")

  def filter(self, reason: str) -> None:
    self.filtered[reason] = self.filtered.get(reason, 0) + 1

  def plus(self, other: "FilterReport") -> "FilterReport":
    """The report of two blocks of lines read one after the other."""
    combined = FilterReport(kept=self.kept + other.kept)
    for table in ("filtered", "rejected"):
      counts = collections.Counter(getattr(self, table))
      counts.update(getattr(other, table))
      setattr(combined, table, dict(counts))
    for reason in set(self.examples) | set(other.examples):
      combined.examples[reason] = (self.examples.get(reason, []) +
                                   other.examples.get(reason, []))[:MAX_EXAMPLES]
    combined.kept_lines = self.kept_lines + other.kept_lines
    return combined

  def followed_by(self, later: "FilterReport") -> "FilterReport":
    """This stage's report combined with that of a stage fed by its kept pairs."""
    filtered, rejected = collections.Counter(self.filtered), collections.Counter(self.rejected)
    filtered.update(later.filtered)
    rejected.update(later.rejected)
    examples = {reason: list(locations) for reason, locations in self.examples.items()}
    for reason, locations in later.examples.items():
      merged = examples.setdefault(reason, [])
      merged.extend(locations[:MAX_EXAMPLES - len(merged)])
    return FilterReport(kept=later.kept, filtered=dict(filtered),
                        rejected=dict(rejected), examples=examples)

  def summary(self) -> str:
    """E.g. 'kept 9 pairs; filtered: too long 3; rejected: no tab 2 (a.txt:7, ...)'."""
    def counts(table, with_examples):
      if not table:
        return "none"
      parts = []
      for reason, count in sorted(table.items()):
        text = f"{reason} {count:,}"
        if with_examples and self.examples.get(reason):
          shown = [os.path.basename(loc) for loc in self.examples[reason][:3]]
          more = ", ..." if count > len(shown) else ""
          text += f" ({', '.join(shown)}{more})"
        parts.append(text)
      return ", ".join(parts)
    return (f"kept {self.kept:,} pairs; filtered: {counts(self.filtered, False)}; "
            f"rejected: {counts(self.rejected, True)}")


def read_lines(path: str) -> List[bytes]:
  """The file's lines as bytes, without line endings (LF or CRLF) or a UTF-8 BOM."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise DataError(f"cannot read data file {path}: {e.strerror or e}") from e
  if data.startswith(_BOM):
    data = data[len(_BOM):]
  lines = data.split(b"\n")
  if lines[-1] == b"":  # the final newline ends the last line, it starts none
    lines.pop()
  return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _decode(raw: bytes) -> Optional[str]:
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError:
    return None


def _parse_tsv_line(raw: bytes) -> Tuple[Optional[Pair], Optional[str]]:
  """(pair, None) for a good line, (None, reason) for a bad one."""
  text = _decode(raw)
  if text is None:
    return None, "invalid UTF-8"
  if not text.strip():
    return None, "empty line"
  columns = text.split("\t")
  if len(columns) < 2:
    return None, "no tab"
  if len(columns) > 3:  # a third column is Tatoeba's attribution; more is a stray tab
    return None, "too many tabs"
  english, other = columns[0].strip(), columns[1].strip()
  if not english or not other:
    return None, "empty side"
  return (english, other), None


def _bad_line(report, strict, reason, path, line, raw: bytes) -> None:
  if strict:
    raise DataError(f"{path}:{line}: {reason}: {raw[:80]!r}")
  report.reject(reason, path, line)


def _require_pairs(pairs, report: FilterReport, what: str) -> None:
  if not pairs:
    raise DataError(f"no usable pairs in {what} ({report.total:,} lines read): "
                    f"{report.summary()}")


def read_tsv_pairs(path: str, *, strict: bool = False) -> Tuple[List[Pair], FilterReport]:
  """Reads `english<TAB>other[<TAB>attribution]` lines.

  Args:
    path: the tab-separated UTF-8 file (LF or CRLF, optional BOM).
    strict: raise on the first bad line instead of counting it.

  Returns:
    ([(english, other)] with each side stripped, report of rejected lines).

  Raises:
    DataError: unreadable file, no usable pair, or (strict) a bad line, named
      by file, 1-based line number and reason.
  """
  pairs, report = parse_tsv_lines(path, read_lines(path), 1, strict)
  _require_pairs(pairs, report, path)
  return pairs, report


def parse_tsv_lines(path: str, raw_lines: Sequence[bytes], first_line: int,
                    strict: bool) -> Tuple[List[Pair], FilterReport]:
  """`read_tsv_pairs` of a block of the file's lines, the first of which is
  line `first_line` (1-based); an empty result is no error here."""
  report = FilterReport()
  pairs = []
  for number, raw in enumerate(raw_lines, start=first_line):
    pair, reason = _parse_tsv_line(raw)
    if reason:
      _bad_line(report, strict, reason, path, number, raw)
    else:
      pairs.append(pair)
      report.kept_lines.append(number)
  report.kept = len(pairs)
  return pairs, report


def read_aligned_files(source_path: str, target_path: str, *,
                       strict: bool = False) -> Tuple[List[Pair], FilterReport]:
  """Reads two files aligned line by line (Multi30k's train.de / train.en).

  Args:
    source_path, target_path: UTF-8 files with one sentence per line.
    strict: raise on the first bad line instead of counting it.

  Returns:
    ([(source, target)] stripped, report); a reject is located in the file
    whose side is bad.

  Raises:
    DataError: unreadable file, different line counts, no usable pair, or
      (strict) a bad line.
  """
  source_lines, target_lines = read_lines(source_path), read_lines(target_path)
  if len(source_lines) != len(target_lines):
    raise DataError(f"{source_path} has {len(source_lines):,} lines but "
                    f"{target_path} has {len(target_lines):,}; aligned files "
                    "must have one line per pair")
  report = FilterReport()
  pairs = []
  for number, raws in enumerate(zip(source_lines, target_lines), start=1):
    texts = [_decode(raw) for raw in raws]
    texts = [None if text is None else text.strip() for text in texts]
    paths = (source_path, target_path)
    bad = [(side, "invalid UTF-8") for side in (0, 1) if texts[side] is None]
    if not bad and not texts[0] and not texts[1]:
      bad = [(0, "empty line")]
    elif not bad:
      bad = [(side, "empty side") for side in (0, 1) if not texts[side]]
    if bad:
      side, reason = bad[0]
      _bad_line(report, strict, reason, paths[side], number, raws[side])
    else:
      pairs.append((texts[0], texts[1]))
      report.kept_lines.append(number)
  report.kept = len(pairs)
  _require_pairs(pairs, report, f"{source_path} + {target_path}")
  return pairs, report


def unicode_to_ascii(s: str) -> str:
  """Strips accents: NFD, then drops combining marks (category Mn)."""
  if s.isascii():  # fast path: NFD leaves ASCII unchanged and it has no marks
    return s
  return "".join(c for c in unicodedata.normalize("NFD", s)
                 if unicodedata.category(c) != "Mn")


# The tutorial's two patterns, verbatim.
_SENTENCE_END = re.compile(r"([.!?])")
_NOT_LETTER = re.compile(r"[^a-zA-Z!?]+")


def normalize_tutorial(s: str) -> str:
  """The tutorial's normalizeString: lowercase ASCII letters, ' !' and ' ?'.

  Note that the current tutorial's character class drops '.', and ends with
  strip(); older versions kept '.' ('[^a-zA-Z.!?]+') and did not strip.
  """
  s = unicode_to_ascii(s.lower().strip())
  s = _SENTENCE_END.sub(r" \1", s)
  s = _NOT_LETTER.sub(r" ", s)
  return s.strip()


NORMALIZERS: Dict[str, Callable[[str], str]] = {
    "none": lambda s: s,
    "tutorial": normalize_tutorial,
}


def normalize_pairs(pairs: Sequence[Pair], name: str) -> List[Pair]:
  """Applies NORMALIZERS[name] to both sides of every pair."""
  if name not in NORMALIZERS:
    raise ValueError(f"unknown normalization {name!r}; valid: "
                     f"{', '.join(sorted(NORMALIZERS))}")
  normalize = NORMALIZERS[name]
  return [(normalize(a), normalize(b)) for a, b in pairs]


def filter_pairs(pairs: Sequence[Pair], *, min_length: int,
                 max_length: Optional[int],
                 english_prefixes: Optional[Sequence[str]] = None,
                 english_side: int = 0) -> Tuple[List[Pair], FilterReport]:
  """Keeps pairs whose sides both have min_length..max_length words.

  Args:
    pairs: sentence pairs; lengths are whitespace-separated words.
    min_length: fewest words on each side ('too short' otherwise).
    max_length: most words on each side, inclusive ('too long'); None: no limit.
    english_prefixes: if given, the English side must start with one of them
      ('no English prefix'); compared as is, so normalize first.
    english_side: index of the English sentence in each pair (0 or 1).

  Returns:
    (kept pairs in input order, report counting each filtered pair once,
    under the first rule it fails, in the order listed above).

  Raises:
    DataError: nothing kept; the message gives the counts per reason.
  """
  kept, report = filter_indices(pairs, min_length=min_length,
                                max_length=max_length,
                                english_prefixes=english_prefixes,
                                english_side=english_side)
  return [pairs[i] for i in kept], report


def filter_indices(pairs: Sequence[Pair], *, min_length: int,
                   max_length: Optional[int],
                   english_prefixes: Optional[Sequence[str]] = None,
                   english_side: int = 0, allow_empty: bool = False
                   ) -> Tuple[List[int], FilterReport]:
  """`filter_pairs`, returning the indices of the kept pairs (an error if
  none is kept, unless `allow_empty`)."""
  if english_side not in (0, 1):
    raise ValueError(f"english_side must be 0 or 1, got {english_side}")
  prefixes = tuple(english_prefixes) if english_prefixes else None
  report = FilterReport()
  kept = []
  for index, pair in enumerate(pairs):
    lengths = [len(side.split()) for side in pair]
    if min(lengths) < min_length:
      report.filter("too short")
    elif max_length is not None and max(lengths) > max_length:
      report.filter("too long")
    elif prefixes and not pair[english_side].startswith(prefixes):
      report.filter("no English prefix")
    else:
      kept.append(index)
  report.kept = len(kept)
  if not kept and not allow_empty:
    raise DataError(f"no pairs left after filtering {len(pairs):,} pairs: "
                    f"{report.summary()}")
  return kept, report


def orient(pairs: Sequence[Pair], *, source_language: str,
           other_language: str) -> List[Pair]:
  """(english, other) pairs as (source, target) for a translation direction.

  Args:
    pairs: (english, other) pairs.
    source_language: 'en' (English -> other) or other_language (other -> English).
    other_language: code of the non-English side, e.g. 'fr'.
  """
  if other_language == "en":
    raise ValueError("other_language names the non-English side; got 'en'")
  if source_language == "en":
    return list(pairs)
  if source_language == other_language:
    return [(other, english) for english, other in pairs]
  raise ValueError(f"unknown source_language {source_language!r}; valid: en, "
                   f"{other_language}")


def tsv_block(task):
  """Parses, normalizes, filters and orients one block of a tsv file's lines:
  ((source, target) pairs, report whose kept_lines are theirs, the split
  position of each source). A function of plain values, for worker
  processes (text_corpora.tsv_splits)."""
  # pylint: disable-next=g-import-not-at-top
  from seq2seq_jax.data.text import splitting  # it imports this module
  options, first_line, raw_lines = task
  (path, strict, normalization, min_length, max_length, prefixes,
   source_language, other_language) = options
  pairs, read_report = parse_tsv_lines(path, raw_lines, first_line, strict)
  pairs = normalize_pairs(pairs, normalization)
  kept, filter_report = filter_indices(
      pairs, min_length=min_length, max_length=max_length,
      english_prefixes=prefixes or None, english_side=0, allow_empty=True)
  report = read_report.followed_by(filter_report)
  report.kept_lines = [read_report.kept_lines[i] for i in kept]
  oriented = orient([pairs[i] for i in kept], source_language=source_language,
                    other_language=other_language)
  return oriented, report, splitting.positions_of([s for s, _ in oriented])
