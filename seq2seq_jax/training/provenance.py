"""What produced a run: package versions, devices, git commit, command line.

Written to DIR/run_info.json at every (re)start, so a comparison made months
later can tell which code and hardware each number came from. The newest
start is at the top level; earlier starts are kept under "history".
"""
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Dict, Optional

import jax

from seq2seq_jax import files

RUN_INFO_FILE = "run_info.json"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint",
            "tensorflow-datasets", "numpy", "sentencepiece", "sacrebleu",
            "ml-collections")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_versions() -> Dict[str, Optional[str]]:
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def _git(*args: str) -> Optional[str]:
  try:
    result = subprocess.run(["git", "-C", REPO_ROOT, *args], capture_output=True,
                            text=True, timeout=10, check=True)
  except (OSError, subprocess.SubprocessError):
    return None
  return result.stdout.strip()


def current() -> Dict[str, Any]:
  """This process's environment, as recorded in run_info.json."""
  status = _git("status", "--porcelain", "--untracked-files=no")
  return {
      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
      "command": sys.argv,
      "python": platform.python_version(),
      "platform": platform.platform(),
      "packages": package_versions(),
      "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
      "process_count": jax.process_count(),
      "git_commit": _git("rev-parse", "HEAD"),
      "git_dirty": None if status is None else bool(status),
  }


def record(workdir: str, start_step: int) -> None:
  """Adds this start to DIR/run_info.json (earlier ones move to history)."""
  path = os.path.join(workdir, RUN_INFO_FILE)
  history = []
  if os.path.exists(path):
    try:
      with open(path, encoding="utf-8") as f:
        previous = json.load(f)
      history = previous.pop("history", [])
      history.append(previous)
    except (OSError, ValueError):
      pass  # an unreadable record is replaced, never fatal
  info = dict(current(), start_step=start_step, history=history)
  files.write_json(path, info, indent=2)
