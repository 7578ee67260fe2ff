"""A study: one `spec.py` of constants, expanded into named variants.

experiments/<name>/spec.py defines:

  BASE_CONFIG = "configs/smoke.py"     # relative to the repo root
  OVERRIDES = {"train.num_steps": 20}  # the same for every run (may be empty)
  GRID = {"model.cell": ["lstm", "gru"], "data.reverse_source": [False, True]}
  SEEDS = [0, 1, 2]
  HEADLINE = "sequence_accuracy"       # the bar chart's test metric
  METRICS = [...]                      # optional: the table's test metrics

The variants are the Cartesian product of GRID in its written order. Every key
and value is checked against the base config at load time, so a misspelt key
fails before hours of runs, not at the last variant.
"""
import dataclasses
import importlib.util
import itertools
import os
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_FILE = "spec.py"
CONSTANTS = ("BASE_CONFIG", "OVERRIDES", "GRID", "SEEDS", "HEADLINE", "METRICS")
# Test-split metrics the trainer writes; a typo in HEADLINE or METRICS is an
# error at load time rather than an empty column after training.
KNOWN_METRICS = ("loss", "perplexity", "token_accuracy", "sequence_accuracy",
                 "greedy_sequence_accuracy", "bleu", "bleu_lowercase", "chrf")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
_ACCEPTS = {bool: bool, int: int, float: (int, float), str: str}


class StudyError(ValueError):
  """An invalid spec.py; the message names the file and the constant."""


@dataclasses.dataclass(frozen=True)
class Variant:
  name: str  # e.g. "cell=gru,reverse_source=True"; also its directory name
  values: Tuple[Tuple[str, Any], ...]  # (dotted key, value) in GRID order


@dataclasses.dataclass(frozen=True)
class Study:
  name: str
  directory: str
  base_config: str
  overrides: Dict[str, Any]
  grid: Dict[str, List[Any]]
  seeds: List[int]
  headline: str
  metrics: Optional[List[str]]  # None: headline, loss, perplexity (+ bleu, chrf)
  variants: List[Variant]


def load(directory: str) -> Study:
  """Imports and validates DIR/spec.py.

  Raises:
    StudyError: naming the spec file and the offending constant.
  """
  directory = os.path.abspath(directory)
  path = os.path.join(directory, SPEC_FILE)
  if not os.path.isfile(path):
    raise StudyError(f"{path} not found: a study is a folder with {SPEC_FILE}")
  module = _import(path)

  def get(name, default=None, required=True):
    if not hasattr(module, name):
      if required:
        raise StudyError(f"{path}: {name} is missing")
      return default
    return getattr(module, name)

  def fail(name, message):
    raise StudyError(f"{path}: {name} {message}")

  unknown = sorted(n for n in vars(module) if n.isupper() and n not in CONSTANTS)
  if unknown:  # a misspelt optional constant would otherwise be ignored
    fail(", ".join(unknown), f"unknown; a spec defines {list(CONSTANTS)}")

  base_config = get("BASE_CONFIG")
  if not isinstance(base_config, str) or not os.path.isfile(
      os.path.join(REPO_ROOT, base_config)):
    fail("BASE_CONFIG", f"must be a config file path relative to {REPO_ROOT}, "
         f"got {base_config!r}")
  overrides = get("OVERRIDES", {}, required=False)
  if not isinstance(overrides, dict):
    fail("OVERRIDES", f"must be a dict of dotted keys, got {overrides!r}")
  grid = get("GRID")
  if not isinstance(grid, dict):
    fail("GRID", f"must be a dict of dotted key -> list of values, got {grid!r}")
  for key, values in grid.items():
    if not isinstance(values, (list, tuple)) or not values:
      fail("GRID", f"[{key!r}] must be a non-empty list, got {values!r}")
    if len(set(map(repr, values))) != len(values):
      fail("GRID", f"[{key!r}] repeats a value: {values!r}")
  both = sorted(set(overrides) & set(grid))
  if both:
    fail("GRID", f"and OVERRIDES both set {both}")
  seeds = get("SEEDS")
  if (not isinstance(seeds, (list, tuple)) or not seeds or
      not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
              for s in seeds) or len(set(seeds)) != len(seeds)):
    fail("SEEDS", f"must be a non-empty list of distinct ints >= 0, got {seeds!r}")
  headline = get("HEADLINE")
  if headline not in KNOWN_METRICS:
    fail("HEADLINE", f"must be one of {list(KNOWN_METRICS)}, got {headline!r}")
  metrics = get("METRICS", None, required=False)
  if metrics is not None and (
      not isinstance(metrics, (list, tuple)) or not metrics or
      any(m not in KNOWN_METRICS for m in metrics)):
    fail("METRICS", f"must be a non-empty list from {list(KNOWN_METRICS)}, "
         f"got {metrics!r}")

  config = load_config(base_config)
  for name, table in (("OVERRIDES", {k: [v] for k, v in overrides.items()}),
                      ("GRID", grid)):
    for key, values in table.items():
      problem = check_key(config, key, values)
      if problem:
        fail(name, f"[{key!r}]: {problem}")

  return Study(
      name=os.path.basename(directory), directory=directory,
      base_config=base_config, overrides=dict(overrides),
      grid={k: list(v) for k, v in grid.items()}, seeds=list(seeds),
      headline=headline, metrics=list(metrics) if metrics else None,
      variants=expand(grid, path))


def expand(grid: Dict[str, List[Any]], path: str = SPEC_FILE) -> List[Variant]:
  """The Cartesian product of GRID in written order, with readable names.

  A name joins `last_key_component=value` with commas; a last component shared
  by two keys is spelt out in full. An empty GRID is one variant, "base".
  """
  keys = list(grid)
  last = [k.rsplit(".", 1)[-1] for k in keys]
  labels = [k if last.count(s) > 1 else s for k, s in zip(keys, last)]
  variants = []
  for combo in itertools.product(*(grid[k] for k in keys)):
    name = ",".join(f"{label}={format_value(v)}" for label, v in zip(labels, combo))
    variants.append(Variant(_UNSAFE.sub("_", name) or "base",
                            tuple(zip(keys, combo))))
  names = [v.name for v in variants]
  clashes = sorted({n for n in names if names.count(n) > 1})
  if clashes:
    raise StudyError(f"{path}: GRID gives the same directory name to several "
                     f"variants once made filesystem-safe: {clashes}")
  return variants


def format_value(value: Any) -> str:
  """A value as the trainer's --config.key=value flag expects it."""
  return str(value)  # str(True) == "True", which absl parses as a bool


def load_config(base_config: str):
  """The base config's ConfigDict (get_config() of the file)."""
  if REPO_ROOT not in sys.path:  # configs import each other as `configs.x`
    sys.path.insert(0, REPO_ROOT)
  module = _import(os.path.join(REPO_ROOT, base_config))
  return module.get_config()


def check_key(config, key: str, values) -> Optional[str]:
  """Why `key` = each of `values` cannot be set on `config`, or None."""
  if key == "seed":
    return "seeds are set by SEEDS"
  node = config
  parts = key.split(".")
  for part in parts[:-1]:
    node = node.get(part) if hasattr(node, "get") else None
  if not hasattr(node, "get") or parts[-1] not in node or hasattr(
      node[parts[-1]], "get"):
    return "not a key of the base config"
  current = node[parts[-1]]
  for value in values:
    if not isinstance(value, (bool, int, float, str)):
      return f"{value!r} is not a bool, int, float or str"
    # The trainer's flags parse a value by the field's type; refuse what
    # would not parse (an int field given 0.5, a bool field given 1).
    kind = type(current)
    if kind in _ACCEPTS and not (
        isinstance(value, _ACCEPTS[kind])
        and isinstance(value, bool) == (kind is bool)):
      return f"{value!r} does not match the config's type {kind.__name__}"
  return None


def _import(path: str):
  name = "_study_" + re.sub(r"\W", "_", os.path.abspath(path))
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # a syntax or import error in the user's file
    raise StudyError(f"{path}: cannot be imported: {type(e).__name__}: {e}") from e
  return module
