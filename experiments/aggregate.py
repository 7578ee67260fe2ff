"""Reads a study's workdirs and reduces the final test metrics over seeds.

Only finished runs (a test line in metrics.jsonl) count; the others are
reported as unfinished, never averaged in. Everything here is a pure function
of the files, so a report rebuilt from a clone is identical.
"""
import dataclasses
import json
import math
import os
import statistics
from typing import Any, Dict, List, Optional, Tuple

from experiments import runner
from experiments import study as study_lib


@dataclasses.dataclass(frozen=True)
class Run:
  variant: str
  seed: int
  finished: bool
  test: Dict[str, float]  # the final test line's metrics ({} if unfinished)
  evals: List[Dict[str, Any]]  # eval lines, by step
  wall_s: Optional[float]  # runner's wall_time.json, if any
  run_info: Optional[Dict[str, Any]]  # the trainer's run_info.json, if any


@dataclasses.dataclass(frozen=True)
class Summary:
  """One metric of one variant over its finished seeds."""
  mean: Optional[float]  # None when n == 0
  sd: Optional[float]  # sample sd (ddof=1); None when n < 2
  n: int
  values: Dict[int, float]  # seed -> value


def read_metrics(run_dir: str) -> List[Dict[str, Any]]:
  """The lines of metrics.jsonl, one per (step, split), the later line winning.

  Returns:
    Records sorted by (step, split); [] if the file does not exist.
  """
  path = os.path.join(run_dir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  latest = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue  # a line cut short by a crash
      latest[(record.get("step", 0), record.get("split", ""))] = record
  return [latest[key] for key in sorted(latest)]


def read_run(run_dir: str, variant: str, seed: int) -> Run:
  records = read_metrics(run_dir)
  tests = [r for r in records if r.get("split") == "test"]
  return Run(
      variant=variant, seed=seed, finished=bool(tests),
      test=_numbers(tests[-1]) if tests else {},
      evals=[r for r in records if r.get("split") == "eval"],
      wall_s=(_read_json(run_dir, runner.WALL_FILE) or {}).get("wall_s"),
      run_info=_read_json(run_dir, "run_info.json"))


def read_study(s: study_lib.Study, root: str) -> List[Run]:
  """Every (variant, seed) of the spec, in grid order then seed order."""
  return [read_run(runner.workdir(root, v, seed), v.name, seed)
          for v in s.variants for seed in s.seeds]


def table_metrics(s: study_lib.Study, runs: List[Run]) -> List[str]:
  """METRICS, or the headline, loss, perplexity and any bleu/chrf measured."""
  if s.metrics:
    return list(s.metrics)
  measured = {k for r in runs if r.finished for k in r.test}
  names = [s.headline, "loss", "perplexity"]
  names += [m for m in ("bleu", "chrf") if m in measured]
  return list(dict.fromkeys(names))


def summarize(runs: List[Run], variant: str, metric: str) -> Summary:
  values = {r.seed: r.test[metric] for r in runs
            if r.variant == variant and r.finished and metric in r.test}
  n = len(values)
  # statistics computes exactly (fractions), so results do not depend on order.
  mean = statistics.mean(values.values()) if n else None
  sd = None
  if n > 1:  # stdev raises on inf/nan (a diverged run): report nan instead
    finite = all(math.isfinite(v) for v in values.values())
    sd = statistics.stdev(values.values()) if finite else math.nan
  return Summary(mean=mean, sd=sd, n=n, values=values)


def eval_curve(runs: List[Run], variant: str, metric: str
               ) -> List[Tuple[int, float, float, float]]:
  """(step, mean, min, max) over the finished seeds that have `metric` there."""
  by_step = {}
  for r in runs:
    if r.variant == variant and r.finished:
      for record in r.evals:
        if metric in record:
          by_step.setdefault(record["step"], []).append(float(record[metric]))
  return [(step, statistics.mean(v), min(v), max(v))
          for step, v in sorted(by_step.items())]


def _numbers(record: Dict[str, Any]) -> Dict[str, float]:
  return {k: float(v) for k, v in record.items()
          if k not in ("step", "split") and isinstance(v, (int, float))
          and not isinstance(v, bool)}


def _read_json(run_dir: str, name: str) -> Optional[Dict[str, Any]]:
  path = os.path.join(run_dir, name)
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
  except (OSError, json.JSONDecodeError):
    return None  # absent (older trainer, another tool) or unreadable
  return value if isinstance(value, dict) else None
