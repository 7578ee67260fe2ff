"""Splitting pairs into train, validation and test: a fixed function of the
text (a hash), by connected groups, so no sentence of either side of a held-out
pair occurs in training.
"""
import hashlib
import itertools
from typing import Dict, List, Optional, Sequence

import numpy as np

from seq2seq_jax.data.text.text_pairs import Pair

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


def _position(source_text: str) -> float:
  """Where a sentence falls in [0, 1): sha256, not hash(), which Python
  salts per process."""
  digest = hashlib.sha256(source_text.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") / 2.0**64


def _split_index(source_text: str, bounds: Sequence[float]) -> int:
  position = _position(source_text)
  return next(i for i, bound in enumerate(bounds) if position < bound)


def split_of(source_text: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
  """'train', 'validation' or 'test', a fixed function of a sentence: the
  split of a group of pairs (`split_indices`) is that of its smallest source."""
  return SPLITS[_split_index(source_text, _bounds(fractions))]


def _intern(texts: Sequence[str]) -> np.ndarray:
  """Per text, the index of its first occurrence among the distinct texts."""
  index = dict.fromkeys(texts)
  for i, text in enumerate(index):
    index[text] = i
  return np.fromiter(map(index.__getitem__, texts), np.int64, len(texts))


def _groups(pairs: Sequence[Pair]) -> np.ndarray:
  """Per pair, the index of its connected group: pairs that share a source
  or a target sentence, directly or through other pairs. Connected
  components of the graph pair - source sentence - pair - target sentence
  (scipy, so millions of pairs take seconds; imported here, as only a
  preparation needs it: 0.5 s of every other start)."""
  import scipy.sparse  # pylint: disable=g-import-not-at-top
  import scipy.sparse.csgraph  # pylint: disable=g-import-not-at-top
  count = len(pairs)
  source_of = _intern([s for s, _ in pairs])
  target_of = _intern([t for _, t in pairs])
  sources = int(source_of.max()) + 1 if count else 0
  targets = int(target_of.max()) + 1 if count else 0
  nodes = count + sources + targets
  rows = np.concatenate([np.arange(count), np.arange(count)])
  columns = np.concatenate([count + source_of, count + sources + target_of])
  graph = scipy.sparse.coo_matrix((np.ones(2 * count, np.int8),
                                   (rows, columns)), shape=(nodes, nodes))
  _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
  # Renumbered 0..groups-1 over the pairs alone.
  return np.unique(labels[:count], return_inverse=True)[1].reshape(-1)


def positions_of(sources: Sequence[str]) -> np.ndarray:
  """`_position` of each sentence (worker processes compute these)."""
  return np.fromiter(map(_position, sources), np.float64, len(sources))


def split_indices(pairs: Sequence[Pair],
                  fractions: Sequence[float] = DEFAULT_FRACTIONS,
                  max_held_out: Optional[int] = None,
                  positions: Optional[np.ndarray] = None) -> Dict[str, List[int]]:
  """{split: [index into pairs]}, each split in input order.

  Pairs are split by connected group: two pairs sharing a source *or* a
  target sentence are in one group, and a group goes to one split, chosen by
  `split_of` its smallest source sentence. So no sentence of either side of
  a validation or test pair occurs in training (several French sentences
  often share one English translation), and the split does not depend on
  the order of the file.

  With `max_held_out`, validation and test keep at most that many pairs
  each: the groups of their hash range in increasing hash order, as long as
  their total stays within the limit; the rest train. Below the limit
  nothing changes. `positions` (`positions_of` the sources) saves hashing.
  """
  bounds = np.asarray(_bounds(fractions))
  labels = _groups(pairs)
  if positions is None:
    positions = positions_of([s for s, _ in pairs])
  sizes = np.bincount(labels, minlength=int(labels.max()) + 1 if len(labels) else 0)
  # Each group's pair with the smallest source: the pair itself for most.
  smallest = np.full(len(sizes), -1, np.int64)
  alone = sizes[labels] == 1
  smallest[labels[alone]] = np.nonzero(alone)[0]
  for i in np.nonzero(~alone)[0].tolist():
    group = labels[i]
    if smallest[group] < 0 or pairs[i][0] < pairs[smallest[group]][0]:
      smallest[group] = i
  position = positions[smallest]
  where = np.searchsorted(bounds, position, side="right")
  if max_held_out is not None:
    for held_out in range(1, len(SPLITS)):
      members = np.nonzero(where == held_out)[0]
      members = members[np.argsort(position[members], kind="stable")]
      over = np.cumsum(sizes[members]) > max_held_out
      where[members[over]] = 0
  split_of_pair = where[labels]
  return {name: np.nonzero(split_of_pair == i)[0].tolist()
          for i, name in enumerate(SPLITS)}


def overlap(splits: Dict[str, List[Pair]]) -> Dict[str, Dict[str, int]]:
  """{'validation'|'test': {'source': n, 'target': n}}: pairs of that split
  whose source (target) sentence also occurs on the same side in training."""
  train_sources = {s for s, _ in splits.get("train", [])}
  train_targets = {t for _, t in splits.get("train", [])}
  return {name: {"source": sum(s in train_sources for s, _ in pairs),
                 "target": sum(t in train_targets for _, t in pairs)}
          for name, pairs in splits.items() if name != "train"}
