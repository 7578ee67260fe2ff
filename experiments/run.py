"""Runs a study and writes its report. The only module with command-line flags.

  python -m experiments.run experiments/<name> [--root DIR] [--out DIR]
      [--report-only] [--config.KEY=VALUE ...]

Runs every (variant, seed) of experiments/<name>/spec.py that is not finished
yet (ROOT/<variant>/seed_<seed>/, ROOT defaulting to experiments/<name>/runs),
then writes results.md, results.csv, headline.png and learning_curves.png to
OUT (default: the study folder, whose README section is then refreshed).
Trailing --config.KEY=VALUE arguments go to every trainer verbatim, e.g. a
data path (relative paths are read from the repo root, the trainer's cwd).

Exit codes: 0 done, 75 preempted (rerun the same command to continue),
1 a run failed, 2 bad spec or arguments.
"""
import argparse
import os
import sys

from experiments import report
from experiments import runner
from experiments import study as study_lib


def parse(argv):
  parser = argparse.ArgumentParser(
      prog="python -m experiments.run",
      description="Runs a study's variants over seeds and reports the results.",
      allow_abbrev=False)
  parser.add_argument("study", help="the study folder, e.g. experiments/tiny")
  parser.add_argument("--root", help="run workdirs (default: STUDY/runs)")
  parser.add_argument("--out", help="report files (default: the study folder)")
  parser.add_argument("--report-only", action="store_true",
                      help="train nothing; rebuild the report from the runs")
  args, extra = parser.parse_known_args(argv)
  bad = [a for a in extra if not a.startswith("--config.")]
  if bad:
    parser.error(f"unrecognized arguments: {' '.join(bad)} (only "
                 "--config.KEY=VALUE is passed on to the trainer)")
  return args, extra


def main(argv=None) -> int:
  args, extra = parse(sys.argv[1:] if argv is None else argv)
  try:
    s = study_lib.load(args.study)
    root = args.root or os.path.join(s.directory, "runs")
    if not args.report_only:
      runner.check_extra_args(s, extra)
  except (study_lib.StudyError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if not args.report_only:
    try:
      runner.run_all(s, root, extra)
    except runner.Preempted as e:
      print(f"preempted: {e}", file=sys.stderr)
      return runner.PREEMPTED_EXIT_CODE
    except runner.RunFailed as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
  for path in report.write(s, root, args.out or s.directory):
    shown = os.path.relpath(path)
    print(f"wrote {path if shown.startswith('..') else shown}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
