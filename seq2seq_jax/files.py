"""Atomic file writes: a reader (or a crash) sees the old file or the new one,
never a partial one. Every JSON and text file a run or a study writes goes
through here."""
import json
import os
from typing import Any


def write_text(path: str, text: str) -> str:
  """Writes `text` to a temporary file beside `path`, then renames it there."""
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8", newline="\n") as f:
    f.write(text)
  os.replace(tmp, path)
  return path


def write_json(path: str, data: Any, **dump_options) -> str:
  """`json.dump(data, **dump_options)`, written atomically."""
  return write_text(path, json.dumps(data, **dump_options))
