"""The study's two figures, byte-for-byte reproducible PNGs.

Figures are built with matplotlib's object API (no pyplot state, Agg canvas),
under matplotlib's default style so a user's matplotlibrc cannot change them,
at a fixed size and dpi, and saved without the "Software" metadata that would
embed the matplotlib version.
"""
import math
import os
from typing import List

from matplotlib import style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments import aggregate
from experiments import study as study_lib

CURVES_PNG = "learning_curves.png"
HEADLINE_PNG = "headline.png"
DPI = 100
_NO_METADATA = {"Software": None}


def write_all(s: study_lib.Study, runs: List[aggregate.Run], out: str) -> List[str]:
  paths = [os.path.join(out, CURVES_PNG), os.path.join(out, HEADLINE_PNG)]
  with style.context("default"):
    _save(learning_curves(s, runs), paths[0])
    _save(headline_bars(s, runs), paths[1])
  return paths


def learning_curves(s: study_lib.Study, runs: List[aggregate.Run]) -> Figure:
  """Validation loss and headline metric vs step: seed mean, min–max band."""
  fig = Figure(figsize=(11, 4.2), dpi=DPI)
  FigureCanvasAgg(fig)
  axes = fig.subplots(1, 2)
  for ax, metric in zip(axes, ("loss", s.headline)):
    for i, v in enumerate(s.variants):
      curve = aggregate.eval_curve(runs, v.name, metric)
      if not curve:
        continue
      steps, mean, low, high = zip(*curve)
      color = f"C{i % 10}"
      ax.plot(steps, mean, color=color, label=v.name, linewidth=1.5,
              marker="o", markersize=3)  # a lone eval step still shows
      ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel("step")
    ax.set_title(f"validation {metric} (mean, min–max over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
  if any(ax.get_legend_handles_labels()[0] for ax in axes):
    axes[1].legend(fontsize=8, loc="best")
  fig.tight_layout()
  return fig


def headline_bars(s: study_lib.Study, runs: List[aggregate.Run]) -> Figure:
  """Horizontal bars (long variant names stay readable): mean ± sd, seeds as dots."""
  names = [v.name for v in s.variants]
  fig = Figure(figsize=(8, 1.2 + 0.45 * len(names)), dpi=DPI)
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  for row, name in enumerate(names):
    summary = aggregate.summarize(runs, name, s.headline)
    if not summary.n:
      continue
    sd = summary.sd if summary.sd is not None and math.isfinite(summary.sd) else 0
    ax.barh(row, summary.mean, xerr=sd, color=f"C{row % 10}", alpha=0.7,
            capsize=4)
    ax.plot(list(summary.values.values()), [row] * summary.n, "k.",
            markersize=5)
  ax.set_yticks(range(len(names)), names, fontsize=8)
  ax.invert_yaxis()  # grid order reads top to bottom, as in the table
  ax.set_xlabel(f"test {s.headline} (bars: mean ± sd; dots: seeds)")
  ax.grid(axis="x", alpha=0.3)
  fig.tight_layout()
  return fig


def _save(fig: Figure, path: str) -> None:
  fig.savefig(path + ".tmp", format="png", dpi=DPI, metadata=_NO_METADATA)
  os.replace(path + ".tmp", path)
