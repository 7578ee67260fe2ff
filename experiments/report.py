"""Writes a study's results.md, results.csv, significance.csv, plots and README section.

Everything written is a function of the run files alone (no dates, no absolute
paths), so `--report-only` twice, or on a clone, gives identical bytes.
"""
import csv
import io
import os
from typing import List, Sequence

from experiments import aggregate
from experiments import plots
from experiments import runner
from experiments import significance
from experiments import study as study_lib

from seq2seq_jax import files

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
TWO_DECIMALS = ("perplexity", "bleu", "bleu_lowercase", "chrf")  # else four


def fmt(metric: str, value) -> str:
  if value is None:
    return "n/a"
  return f"{value:.2f}" if metric in TWO_DECIMALS else f"{value:.4f}"


def table(s: study_lib.Study, runs: List[aggregate.Run],
          comparisons: Sequence[significance.Comparison] = ()) -> str:
  """Markdown: one row per variant, `mean ± sd` per test metric, then the
  paired bootstrap against the baseline where there is one."""
  metrics = aggregate.table_metrics(s, runs)
  header = ["variant", "n"] + metrics
  by_variant = {c.variant: c for c in comparisons}
  if comparisons:
    first = comparisons[0]
    header += [f"Δ {first.metric} vs {first.baseline} (95% CI)", "p"]
  lines = ["| " + " | ".join(header) + " |",
           "| --- | " + " | ".join("---:" for _ in header[1:]) + " |"]
  for v in s.variants:
    n = sum(r.finished for r in runs if r.variant == v.name)
    cells = []
    for m in metrics:
      summary = aggregate.summarize(runs, v.name, m)
      cells.append("—" if not summary.n else
                   f"{fmt(m, summary.mean)} ± {fmt(m, summary.sd)}")
    if comparisons:
      c = by_variant.get(v.name)
      baseline = v.name == comparisons[0].baseline
      cells += ([f"{c.difference:+.2f} [{c.low:+.2f}, {c.high:+.2f}]",
                 f"{c.p_value:.3f}"] if c else
                ["baseline", ""] if baseline else ["—", "—"])
    lines.append(f"| {v.name} | {n} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def compare_variants(s: study_lib.Study, root: str
                     ) -> List[significance.Comparison]:
  """The paired bootstrap of each variant against the first, on the
  headline metric (BLEU or chrF only), from the finished runs' files."""
  if s.headline not in significance.METRICS or len(s.variants) < 2:
    return []
  outputs = {}
  for v in s.variants:
    outputs[v.name] = []
    for seed in s.seeds:
      run_dir = runner.workdir(root, v, seed)
      found = (significance.run_outputs(run_dir)
               if runner.is_finished(run_dir) else None)
      if found:
        outputs[v.name].append(found)
  return significance.compare(s.headline, outputs, s.variants[0].name)


def _significance_note(comparisons) -> str:
  c = comparisons[0]
  return (f"Δ and p: each variant against `{c.baseline}` on test "
          f"{c.metric}, by sacrebleu's paired bootstrap over the "
          f"{c.sentences:,} test sentences ({significance.N_SAMPLES:,} "
          f"resamples, seed {significance.SEED}; p = 0.001 is the least "
          "they can show); each variant's finished "
          "seeds are pooled (the corpus score of their hypotheses together, "
          "a test sentence carrying all its seeds when resampled), so the "
          "95% interval is about the test set, and the ± sd about the "
          "seeds. See experiments/significance.py.")


def significance_csv(comparisons) -> str:
  """One row per comparison, full precision."""
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["variant", "baseline", "metric", "difference", "ci_low",
                   "ci_high", "p_value", "seeds", "baseline_seeds",
                   "sentences", "resamples", "seed"])
  for c in comparisons:
    writer.writerow([c.variant, c.baseline, c.metric, repr(c.difference),
                     repr(c.low), repr(c.high), repr(c.p_value), c.seeds,
                     c.baseline_seeds, c.sentences, significance.N_SAMPLES,
                     significance.SEED])
  return out.getvalue()


def section(s: study_lib.Study, runs: List[aggregate.Run],
            comparisons: Sequence[significance.Comparison] = ()) -> str:
  """The table and the lines under it (shared by results.md and the README)."""
  settings = ", ".join(f"`{k}={study_lib.format_value(v)}`"
                       for k, v in s.overrides.items()) or "none"
  parts = [
      f"Base config `{s.base_config}`; overrides: {settings}; seeds "
      f"{', '.join(map(str, s.seeds))}. Test-split metrics at the end of "
      "training: mean ± sample standard deviation over the finished seeds "
      "(n).",
      table(s, runs, comparisons)]
  if comparisons:
    parts.append(_significance_note(comparisons))
  unfinished = [f"{r.variant}/seed_{r.seed}" for r in runs if not r.finished]
  if unfinished:
    parts.append("Unfinished runs (not in the table): " +
                 ", ".join(unfinished) + ".")
  for line in (environment(runs), wall_time(runs)):
    if line:
      parts.append(line)
  parts.append(f"![]({plots.HEADLINE_PNG})\n\n![]({plots.CURVES_PNG})")
  return "\n\n".join(parts) + "\n"


def environment(runs: List[aggregate.Run]) -> str:
  """Distinct jax versions, device kinds and commits from run_info.json files."""
  infos = [r.run_info for r in runs if r.finished and r.run_info]
  if not infos:
    return ""
  jax_versions = sorted({str((i.get("packages") or {}).get("jax") or "?")
                         for i in infos})
  devices = sorted({_device_kind(d) for i in infos
                    for d in (i.get("devices") or [])})
  commits = sorted({str(i.get("git_commit") or "?")[:12] +
                     ("+dirty" if i.get("git_dirty") else "") for i in infos})
  line = (f"Environment: jax {', '.join(jax_versions)}; devices: "
          f"{', '.join(devices) or 'not recorded'}; git commit: "
          f"{', '.join(commits)}")
  missing = sum(r.finished and not r.run_info for r in runs)
  if missing:
    line += f" ({missing} finished runs have no run_info.json)"
  return line + "."


def _device_kind(device) -> str:
  if isinstance(device, dict):
    for key in ("device_kind", "kind", "platform"):
      if device.get(key):
        return str(device[key])
  return str(device)


def wall_time(runs: List[aggregate.Run]) -> str:
  """Summed runner wall time of the finished runs, if every one recorded it."""
  finished = [r for r in runs if r.finished]
  if not finished or any(r.wall_s is None for r in finished):
    return ""
  total = sum(r.wall_s for r in finished)
  shown = (f"{total / 3600:.1f} h" if total >= 3600 else
           f"{total / 60:.1f} min" if total >= 60 else f"{total:.0f} s")
  return (f"Training wall time: {shown} for {len(finished)} runs (as timed by "
          "the runner, compilation and evaluation included).")


def csv_text(s: study_lib.Study, runs: List[aggregate.Run]) -> str:
  """variant, metric, mean, sd, n, then one column per seed (full precision)."""
  shown = aggregate.table_metrics(s, runs)
  measured = {k for r in runs if r.finished for k in r.test}
  metrics = shown + sorted(measured - set(shown))
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["variant", "metric", "mean", "sd", "n"] +
                  [f"seed_{seed}" for seed in s.seeds])
  for v in s.variants:
    for m in metrics:
      summary = aggregate.summarize(runs, v.name, m)
      writer.writerow(
          [v.name, m, _number(summary.mean), _number(summary.sd), summary.n] +
          [_number(summary.values.get(seed), "") for seed in s.seeds])
  return out.getvalue()


def _number(value, missing: str = "n/a") -> str:
  return missing if value is None else repr(value)


def replace_section(text: str, generated: str, path: str) -> str:
  """README text with the part between BEGIN and END replaced."""
  start, end = text.find(BEGIN), text.find(END)
  if start < 0 or end < start:
    raise ValueError(f"{path}: needs {BEGIN} then {END} on their own lines")
  note = ("<!-- Generated by experiments/run.py from the runs' own files; "
          "edits between these markers are overwritten. -->")
  return (text[:start + len(BEGIN)] + "\n" + note + "\n\n" + generated +
          text[end:])


def write(s: study_lib.Study, root: str, out: str) -> List[str]:
  """Writes results.md, results.csv and the PNGs to OUT; returns their paths.

  The study README's marked section is rewritten only when OUT is the study
  folder, since its image links are relative to the README.
  """
  runs = aggregate.read_study(s, root)
  comparisons = compare_variants(s, root)
  os.makedirs(out, exist_ok=True)
  generated = section(s, runs, comparisons)
  written = []
  texts = [("results.md", f"# Results: {s.name}\n\n{generated}"),
           ("results.csv", csv_text(s, runs))]
  if comparisons:
    texts.append(("significance.csv", significance_csv(comparisons)))
  for name, text in texts:
    written.append(_write_text(os.path.join(out, name), text))
  written += plots.write_all(s, runs, out)
  readme = os.path.join(s.directory, "README.md")
  same = os.path.realpath(out) == os.path.realpath(s.directory)
  if same and os.path.exists(readme):
    with open(readme, encoding="utf-8") as f:
      text = f.read()
    if BEGIN in text or END in text:
      written.append(_write_text(readme,
                                 replace_section(text, generated, readme)))
  return written


def _write_text(path: str, text: str) -> str:
  return files.write_text(path, text)
