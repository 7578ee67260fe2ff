"""Synthetic seq2seq tasks, generated deterministically from a seed.

  addition  "37+415" -> "452" (as in Flax's examples/seq2seq)
  copy      "cabd"   -> "cabd"
  reverse   "cabd"   -> "dbac"
  sort      "cabd"   -> "abcd"

Every example is unique by source, and the splits partition one shuffled set
of unique examples, so train / validation / test are disjoint by construction.
"""
import dataclasses
from typing import Callable, Dict, List, Tuple

import numpy as np

SYMBOLS = ("abcdefghijklmnopqrstuvwxyz"
           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
DIGITS = "0123456789"
MAX_SYMBOL_VOCAB = len(SYMBOLS)

Example = Tuple[str, str]


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """What to generate.

  Attributes:
    task: addition | copy | reverse | sort.
    min_length, max_length: digits per operand (addition) or symbols.
    num_symbols: alphabet size for copy/reverse/sort (ignored by addition).
    num_train, num_validation, num_test: split sizes.
    seed: generator seed.
  """
  task: str
  min_length: int
  max_length: int
  num_symbols: int
  num_train: int
  num_validation: int
  num_test: int
  seed: int

  @property
  def split_sizes(self) -> Dict[str, int]:
    return {"train": self.num_train, "validation": self.num_validation,
            "test": self.num_test}


def _random_number(rng: np.random.Generator, min_digits: int, max_digits: int) -> int:
  digits = int(rng.integers(min_digits, max_digits + 1))
  low = 0 if digits == 1 else 10 ** (digits - 1)
  return int(rng.integers(low, 10 ** digits))


def _addition(rng, spec: TaskSpec) -> Example:
  a = _random_number(rng, spec.min_length, spec.max_length)
  b = _random_number(rng, spec.min_length, spec.max_length)
  return f"{a}+{b}", str(a + b)


def _symbols(rng, spec: TaskSpec) -> str:
  length = int(rng.integers(spec.min_length, spec.max_length + 1))
  return "".join(SYMBOLS[i] for i in rng.integers(0, spec.num_symbols, length))


def _copy(rng, spec):
  s = _symbols(rng, spec)
  return s, s


def _reverse(rng, spec):
  s = _symbols(rng, spec)
  return s, s[::-1]


def _sort(rng, spec):
  s = _symbols(rng, spec)
  return s, "".join(sorted(s, key=SYMBOLS.index))


GENERATORS: Dict[str, Callable] = {
    "addition": _addition,
    "copy": _copy,
    "reverse": _reverse,
    "sort": _sort,
}


def alphabet(spec: TaskSpec) -> str:
  """The characters a task's sources and targets use."""
  if spec.task == "addition":
    return DIGITS + "+"
  return SYMBOLS[:spec.num_symbols]


def num_possible_sources(spec: TaskSpec) -> int:
  """Size of the task's source space (to refuse impossible split sizes)."""
  if spec.task == "addition":
    numbers = 10 ** spec.max_length - (10 ** (spec.min_length - 1)
                                       if spec.min_length > 1 else 0)
    return numbers * numbers
  return sum(spec.num_symbols ** n
             for n in range(spec.min_length, spec.max_length + 1))


def validate(spec: TaskSpec) -> None:
  """Raises ValueError naming the config option that makes `spec` impossible."""
  if spec.task not in GENERATORS:
    raise ValueError(f"config.data.task: unknown task {spec.task!r}; valid: "
                     f"{', '.join(sorted(GENERATORS))}")
  if spec.min_length < 1:
    raise ValueError("config.data.synthetic.min_length: must be >= 1 (empty "
                     f"sequences are not allowed), got {spec.min_length}")
  if spec.max_length < spec.min_length:
    raise ValueError("config.data.synthetic.max_length: must be >= "
                     f"data.synthetic.min_length ({spec.min_length}), got "
                     f"{spec.max_length}")
  for name, size in spec.split_sizes.items():
    if size < 1:
      option = "num_" + name
      raise ValueError(f"config.data.synthetic.{option}: must be positive, "
                       f"got {size}")
  if spec.task != "addition" and not 1 <= spec.num_symbols <= MAX_SYMBOL_VOCAB:
    raise ValueError("config.data.synthetic.num_symbols: must be in "
                     f"[1, {MAX_SYMBOL_VOCAB}] for task {spec.task!r}, got "
                     f"{spec.num_symbols}")
  if spec.task == "addition" and spec.max_length > 18:
    raise ValueError("config.data.synthetic.max_length: addition supports at "
                     f"most 18 digits per operand, got {spec.max_length}")
  total = sum(spec.split_sizes.values())
  # Rejection sampling needs headroom; half the space keeps it fast.
  if total > num_possible_sources(spec) // 2:
    raise ValueError(
        f"config.data: {total} unique examples requested but task "
        f"{spec.task!r} with lengths {spec.min_length}-{spec.max_length} has only "
        f"{num_possible_sources(spec)} distinct sources; lower "
        "data.synthetic.num_train/num_validation/num_test or raise "
        "data.synthetic.max_length / data.synthetic.num_symbols")


def generate(spec: TaskSpec) -> Dict[str, List[Example]]:
  """Returns {'train': [...], 'validation': [...], 'test': [...]} of (source, target)."""
  validate(spec)
  rng = np.random.default_rng(spec.seed)
  generator = GENERATORS[spec.task]
  total = sum(spec.split_sizes.values())
  examples: Dict[str, str] = {}
  while len(examples) < total:
    source, target = generator(rng, spec)
    examples.setdefault(source, target)
  # Insertion order is deterministic; shuffle once more so short examples
  # (found first when the space is small) spread over all splits.
  items = list(examples.items())
  order = rng.permutation(len(items))
  items = [items[i] for i in order]
  splits, start = {}, 0
  for name, size in spec.split_sizes.items():
    splits[name] = items[start:start + size]
    start += size
  return splits
