"""Runs a study and writes its report. The only module with command-line flags.

  python -m experiments.run experiments/<name> [--root DIR] [--out DIR]
      [--report-only] [--executor=local|ray] [--config.KEY=VALUE ...]

Runs every (variant, seed) of experiments/<name>/spec.py that is not finished
yet (ROOT/<variant>/seed_<seed>/, ROOT defaulting to experiments/<name>/runs),
then writes results.md, results.csv, headline.png and learning_curves.png to
OUT (default: the study folder, whose README section is then refreshed).
Trailing --config.KEY=VALUE arguments go to every trainer verbatim, e.g. a
data path (relative paths are read from the repo root, the trainer's cwd).
The local executor runs one trainer at a time; --executor=ray runs them as
Ray tasks, several at once, here or on a cluster (experiments/ray_executor.py
says how, with --ray_address, --cpus_per_run, --gpus_per_run, --max_retries).

Exit codes: 0 done, 75 preempted (rerun the same command to continue),
1 a run failed, 2 bad spec or arguments.
"""
import argparse
import os
import sys

from experiments import report
from experiments import runner
from experiments import study as study_lib

RAY_FLAGS = ("ray_address", "cpus_per_run", "gpus_per_run", "max_retries")


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
  parser.add_argument("--executor", choices=("local", "ray"), default="local",
                      help="local: one run at a time, here; ray: as many at "
                      "once as a Ray instance or cluster holds")
  ray_flags = parser.add_argument_group("--executor=ray")
  ray_flags.add_argument("--ray_address", help="empty (default): start a Ray "
                         "instance on this machine, on 127.0.0.1 only; auto "
                         "or HOST:PORT: join a running cluster")
  ray_flags.add_argument("--cpus_per_run", type=float,
                         help="CPUs a run takes (default 1)")
  ray_flags.add_argument("--gpus_per_run", type=float, help="GPUs a run takes "
                         "(default: 1 if the cluster has GPUs, else 0)")
  ray_flags.add_argument("--max_retries", type=int, help="times a run is "
                         "retried after a signal, a preemption or a lost "
                         "node (default 3)")
  args, extra = parser.parse_known_args(argv)
  bad = [a for a in extra if not a.startswith("--config.")]
  if bad:
    parser.error(f"unrecognized arguments: {' '.join(bad)} (only "
                 "--config.KEY=VALUE is passed on to the trainer)")
  given = [f"--{k}" for k in RAY_FLAGS if getattr(args, k) is not None]
  if given and args.executor != "ray":
    parser.error(f"{', '.join(given)}: only with --executor=ray")
  if args.cpus_per_run is not None and args.cpus_per_run <= 0:
    parser.error(f"--cpus_per_run={args.cpus_per_run:g}: must be > 0")
  for name in ("gpus_per_run", "max_retries"):
    if getattr(args, name) is not None and getattr(args, name) < 0:
      parser.error(f"--{name}={getattr(args, name):g}: must be >= 0")
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
      if args.executor == "ray":  # imports Ray; the local executor never does
        from experiments import ray_executor  # pylint: disable=g-import-not-at-top
        given = {k: getattr(args, k) for k in RAY_FLAGS
                 if getattr(args, k) is not None}
        given["address"] = given.pop("ray_address", "")
        try:
          ray_executor.run_all(s, root, extra, ray_executor.Options(**given))
        except ray_executor.SetupError as e:
          print(f"error: {e}", file=sys.stderr)
          return 2
      else:
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
