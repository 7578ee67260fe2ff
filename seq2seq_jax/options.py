"""Config keys declared as dataclass fields: `option(...)` carries a key's
default, meaning, check and resume rules, so each is written once.

The machinery only; seq2seq_jax/settings.py declares the keys.
"""
import dataclasses
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple


class ConfigError(ValueError):
  """An invalid configuration value; the message names the option."""


Check = Callable[[Any], Optional[str]]  # a value -> why it is wrong, or None
_NOT_ADDED = object()


def option(default, doc: str, *, check: Optional[Check] = None,
           may_change_on_resume: bool = False, absent_means: Any = _NOT_ADDED,
           formerly: str = ""):
  """One config key.

  Args:
    default: the value configs/default.py gives it.
    doc: its meaning, for docs/configuration.md.
    check: value -> error message (without the option name) or None.
    may_change_on_resume: a resumed workdir may have another value (cadences,
      paths, implementation choices); every other key must match config.json.
    absent_means: for keys added after workdirs were first written, the value
      that reproduces the old behaviour when a config.json lacks the key.
    formerly: the key's previous dotted name; an old config.json is read
      with it renamed.
  """
  return dataclasses.field(default=default, metadata={
      "doc": doc, "check": check, "may_change_on_resume": may_change_on_resume,
      "absent_means": absent_means, "formerly": formerly})


def section(cls):
  """A nested group of keys (a dataclass of options)."""
  return dataclasses.field(default_factory=cls, metadata={"section": True})


# Checks. Each returns the message that follows "config.<key>: ".
def one_of(choices) -> Check:
  """`choices` may be a callable, for registries imported late."""
  def check(value):
    valid = choices() if callable(choices) else choices
    if value not in valid:
      return f"unknown value {value!r}; valid: {', '.join(sorted(valid))}"
    return None
  return check


def positive(value) -> Optional[str]:
  return None if value > 0 else f"must be positive, got {value}"


def at_least_zero(meaning: str = "") -> Check:
  note = f" ({meaning})" if meaning else ""
  return lambda v: None if v >= 0 else f"must be >= 0{note}, got {v}"


def between(low, high, *, high_open: bool = False, what: str = "") -> Check:
  bracket = ")" if high_open else "]"
  def check(value):
    if low <= value and (value < high if high_open else value <= high):
      return None
    return f"must be {what}in [{low}, {high}{bracket}, got {value}"
  return check


def keys(cls, prefix: str = "") -> Iterator[Tuple[str, Any]]:
  """(dotted name, dataclass field) of every key, in declaration order."""
  for f in dataclasses.fields(cls):
    if f.metadata.get("section"):
      yield from keys(f.default_factory, f"{prefix}{f.name}.")
    else:
      yield prefix + f.name, f


def _set(tree: Dict[str, Any], dotted: str, value: Any) -> None:
  *parents, leaf = dotted.split(".")
  for name in parents:
    tree = tree.setdefault(name, {})
  tree[leaf] = value


def _pop(tree: Dict[str, Any], dotted: str) -> Any:
  *parents, leaf = dotted.split(".")
  for name in parents:
    tree = tree.get(name)
    if not isinstance(tree, dict):
      return _NOT_ADDED
  return tree.pop(leaf, _NOT_ADDED)


def _has(tree: Dict[str, Any], dotted: str) -> bool:
  for name in dotted.split("."):
    if not isinstance(tree, dict) or name not in tree:
      return False
    tree = tree[name]
  return True


def upgrade(cls, raw: Dict[str, Any]) -> Dict[str, Any]:
  """A copy of a config dict as this version reads it: renamed keys under
  their current names, keys added since it was written at `absent_means`."""
  raw = _copy(raw)
  for name, f in keys(cls):
    if f.metadata["formerly"]:
      old = _pop(raw, f.metadata["formerly"])
      if old is not _NOT_ADDED and not _has(raw, name):
        _set(raw, name, old)
    absent = f.metadata["absent_means"]
    if absent is not _NOT_ADDED and not _has(raw, name):
      parent = name.rsplit(".", 1)[0]
      if "." not in name or _has(raw, parent):
        _set(raw, name, absent)
  return raw


def _copy(tree):
  return {k: _copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def build(cls, raw: Mapping[str, Any], prefix: str = ""):
  """Builds `cls` from a config section; unknown or missing keys are errors."""
  if not isinstance(raw, Mapping):
    raise ConfigError(f"config.{prefix.rstrip('.')}: expected a section of "
                      f"keys, got {raw!r}")
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(raw) - set(fields))
  missing = sorted(set(fields) - set(raw))
  if unknown:
    raise ConfigError(f"unknown config keys: {[prefix + k for k in unknown]}")
  if missing:
    raise ConfigError(f"missing config keys: {[prefix + k for k in missing]}")
  values = {}
  for name, f in fields.items():
    if f.metadata.get("section"):
      values[name] = build(f.default_factory, raw[name], f"{prefix}{name}.")
    else:
      values[name] = raw[name]
  return cls(**values)


def _format_default(value) -> str:
  if isinstance(value, str):
    return f"`{value}`" if value else '`""`'
  if isinstance(value, bool):
    return str(value)
  if isinstance(value, int):
    return f"{value:,}"
  return repr(value)


def reference_table(cls) -> str:
  """The Markdown table of every key, as docs/configuration.md shows it."""
  rows = ["| key | default | meaning |", "| --- | --- | --- |"]
  for name, f in keys(cls):
    meaning = f.metadata["doc"]
    if f.metadata["may_change_on_resume"]:
      meaning += "; may change on resume"
    rows.append(f"| `{name}` | {_format_default(f.default)} | {meaning} |")
  return "\n".join(rows) + "\n"
