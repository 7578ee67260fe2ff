"""Splitting pairs into train, validation and test: a fixed function of the
text (a hash), by connected groups, so no sentence of either side of a held-out
pair occurs in training.
"""
import hashlib
import itertools
from typing import Dict, List, Sequence

from seq2seq_jax.data.text_pairs import Pair

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)


def check_fractions(fractions: Sequence[float]) -> None:
  """Raises ValueError unless (train, validation, test) fractions sum to 1."""
  if (len(fractions) != len(SPLITS) or any(f < 0 for f in fractions)
      or abs(sum(fractions) - 1.0) > 1e-9):
    raise ValueError(f"split fractions must be {len(SPLITS)} non-negative "
                     f"numbers ({', '.join(SPLITS)}) summing to 1; got {fractions}")


def _bounds(fractions: Sequence[float]) -> List[float]:
  """Cumulative upper bounds; the last non-empty split's is infinite, so a
  rounded sum (0.9999999) never sends a sentence to a split of fraction 0."""
  check_fractions(fractions)
  bounds = list(itertools.accumulate(fractions))
  bounds[max(i for i, f in enumerate(fractions) if f > 0)] = float("inf")
  return bounds


def _split_index(source_text: str, bounds: Sequence[float]) -> int:
  # sha256, not hash(): Python salts str hashes per process.
  digest = hashlib.sha256(source_text.encode("utf-8")).digest()
  position = int.from_bytes(digest[:8], "big") / 2.0**64
  return next(i for i, bound in enumerate(bounds) if position < bound)


def split_of(source_text: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
  """'train', 'validation' or 'test', a fixed function of a sentence: the
  split of a group of pairs (`split_pairs`) is that of its smallest source."""
  return SPLITS[_split_index(source_text, _bounds(fractions))]


def _groups(pairs: Sequence[Pair]) -> List[int]:
  """Per pair, the index of its connected group: pairs that share a source
  or a target sentence, directly or through other pairs (union-find)."""
  parent = list(range(len(pairs)))

  def root(i: int) -> int:
    while parent[i] != i:
      parent[i] = parent[parent[i]]
      i = parent[i]
    return i

  first_with = {}
  for index, (source, target) in enumerate(pairs):
    for key in (("source", source), ("target", target)):
      other = first_with.setdefault(key, index)
      a, b = root(index), root(other)
      if a != b:
        parent[max(a, b)] = min(a, b)
  return [root(i) for i in range(len(pairs))]


def split_pairs(pairs: Sequence[Pair],
                fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Dict[str, List[Pair]]:
  """{split: [(source, target)]}, each split in input order (`split_indices`)."""
  return {name: [pairs[i] for i in indices]
          for name, indices in split_indices(pairs, fractions).items()}


def split_indices(pairs: Sequence[Pair],
                  fractions: Sequence[float] = DEFAULT_FRACTIONS
                  ) -> Dict[str, List[int]]:
  """{split: [index into pairs]}, each split in input order.

  Pairs are split by connected group: two pairs sharing a source *or* a
  target sentence are in one group, and a group goes to one split, chosen by
  `split_of` its smallest source sentence. So no sentence of either side of
  a validation or test pair occurs in training (several French sentences
  often share one English translation), and the split does not depend on
  the order of the file.
  """
  bounds = _bounds(fractions)
  groups = _groups(pairs)
  smallest = {}
  for group, (source, _) in zip(groups, pairs):
    if group not in smallest or source < smallest[group]:
      smallest[group] = source
  where = {group: SPLITS[_split_index(source, bounds)]
           for group, source in smallest.items()}
  splits = {name: [] for name in SPLITS}
  for index, group in enumerate(groups):
    splits[where[group]].append(index)
  return splits


def overlap(splits: Dict[str, List[Pair]]) -> Dict[str, Dict[str, int]]:
  """{'validation'|'test': {'source': n, 'target': n}}: pairs of that split
  whose source (target) sentence also occurs on the same side in training."""
  train_sources = {s for s, _ in splits.get("train", [])}
  train_targets = {t for _, t in splits.get("train", [])}
  return {name: {"source": sum(s in train_sources for s, _ in pairs),
                 "target": sum(t in train_targets for _, t in pairs)}
          for name, pairs in splits.items() if name != "train"}
