"""Length buckets against padding, compiled shapes and epoch time.

  python -m benchmarks.bucketing --data_path=../shared/data/multi30k \
      [--config=configs/multi30k_attention.py] \
      [--schemes=multiple,quantile,fitted] \
      [--train [--before_repo=OLD_CHECKOUT] [--rounds=2] [--steps=N] \
      [--warm_schemes=fitted]] \
      [--json=FILE]

Question: how much of what the recurrences compute is padding under each
bucketing scheme, how many shapes does each compile, and what does an epoch
take, compilation included?

Method: for each scheme (`multiple`: the config's pad_multiple, chunks of 50
batches; `quantile`: data.length_buckets quantile buckets per side;
`fitted`: data.batch_shapes fitted (source, target) shapes), the training
stream's batches of one epoch, from the lengths alone: the fraction of the
padded source and target positions that hold real tokens, and the distinct
(source, target) shapes.

With --train, trainers run one epoch each (--steps steps instead, if
given), interleaved round by round (the order reversed every other round),
each with an empty compilation cache of its own, and the --warm_schemes
once more with the cache their cold run filled (`scheme/warm`). With
--before_repo, another checkout's trainer (e.g. the commit before the token
store and Grain loader) runs the same config as arm `before`. `multiple` in
this checkout reads the same batches (their losses show it), so the median
over steps and rounds of each step's time over the same step's in `before`
compares the input pipelines (the compiling steps are the same steps in
both). Per run: command start -> the epoch's last step (imports, data
loading, every compile: what an epoch costs), the sum of the step
intervals after the first, and their median. Epoch ratios are paired per
round, then the median. The data is prepared before the first round
(untimed). Run on an idle machine.
"""
import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile

import numpy as np

from benchmarks import corpus_scale

ROOT = corpus_scale.ROOT


def _settings(config_path: str, data_path: str, data_dir: str, scheme: str):
  from seq2seq_jax import settings  # pylint: disable=g-import-not-at-top
  module = os.path.splitext(os.path.normpath(config_path))[0].replace(os.sep, ".")
  config = importlib.import_module(module).get_config()
  config.data.path = data_path
  config.data.tfds_data_dir = data_dir
  config.data.bucketing = scheme
  return settings.from_config(config)


def padding(config_path: str, data_path: str, data_dir: str, scheme: str):
  """{'real_source', 'real_target', 'shapes', 'batches'} over one epoch."""
  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.data import datasets
  from seq2seq_jax.data import pipeline
  s = _settings(config_path, data_path, data_dir, scheme)
  split = datasets.load(s.data).splits["train"]
  stream = pipeline.train_stream(split, s.data, s.train, s.seed,
                                 pipeline.max_lengths(split))
  source = np.asarray(split.source_lengths)
  target = np.asarray(split.target_lengths) + 1
  real, padded, shapes = np.zeros(2), np.zeros(2), set()
  for batch in stream._epoch_batches(0):  # pylint: disable=protected-access
    shape = stream.padded_shape(batch)
    shapes.add(shape)
    real += (source[batch].sum(), target[batch].sum())
    padded += (shape[0] * len(batch), shape[1] * len(batch))
  return {"real_source": real[0] / padded[0], "real_target": real[1] / padded[1],
          "shapes": len(shapes), "batches": stream.batches_per_epoch}


def _train_command(config_path, data_path, data_dir, scheme, workdir):
  command = [sys.executable, "-m", "seq2seq_jax.train",
             f"--config={config_path}", f"--config.data.path={data_path}",
             f"--config.data.tfds_data_dir={data_dir}", f"--workdir={workdir}",
             "--config.train.log_every=1",
             "--config.train.eval_every=1000000",
             "--config.train.checkpoint_every=1000000"]
  if scheme != "before":  # the before checkout may not know the key
    command.append(f"--config.data.bucketing={scheme}")
  return command


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]
  return [r["train_loss"] for r in rows if "train_loss" in r]


def timed_epoch(arm, repo, config_path, data_path, data_dir, steps, cache,
                work):
  """One trainer run of STEPS steps: its times and training losses."""
  workdir = os.path.join(work, f"run_{arm}")
  scheme = arm.split("/")[0]
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
  run = corpus_scale.run_trainer(
      _train_command(config_path, data_path, data_dir, scheme, workdir),
      env, stop_after=steps, cwd=repo)
  result = {"to_epoch_end_s": run["first_step_s"] + sum(run["step_s"]),
            "steps_after_first_s": sum(run["step_s"]),
            "median_step_s": statistics.median(run["step_s"] or [float("nan")]),
            "step_s": run["step_s"], "losses": _losses(workdir)}
  shutil.rmtree(workdir, ignore_errors=True)
  return result


def train_rounds(args, data_path, data_dir, work, steps):
  """{arm: [per-round results]} for the arms of --train; DATA_DIR holds this
  checkout's prepared data (`padding` prepared it)."""
  arms = [("before", args.before_repo)] if args.before_repo else []
  for scheme in args.schemes.split(","):
    arms.append((scheme, ROOT))
    if scheme in args.warm_schemes.split(","):
      arms.append((f"{scheme}/warm", ROOT))
  data_dirs = {ROOT: data_dir}
  if args.before_repo:  # its own data format, prepared untimed
    data_dirs[args.before_repo] = os.path.join(work, "data_before")
    timed_epoch("before", args.before_repo, args.config, data_path,
                data_dirs[args.before_repo], 1,
                os.path.join(work, "cache_prepare"), work)
  results = {arm: [] for arm, _ in arms}
  for r in range(args.rounds):
    for arm, repo in (arms if r % 2 == 0 else _reversed_keeping_warm(arms)):
      cache = os.path.join(work, f"cache_{r}_{arm.split('/')[0]}")
      if not arm.endswith("/warm"):
        shutil.rmtree(cache, ignore_errors=True)
      results[arm].append(timed_epoch(arm, repo, args.config, data_path,
                                      data_dirs[repo], steps, cache, work))
      print(json.dumps({"round": r, "arm": arm, **{
          k: v for k, v in results[arm][-1].items()
          if k not in ("losses", "step_s")}}), flush=True)
  return results


def _reversed_keeping_warm(arms):
  """The arms in reverse order, each warm run still after its cold one."""
  order = []
  for arm in reversed(arms):
    if arm[0].endswith("/warm"):
      continue
    order.append(arm)
    order += [a for a in arms if a[0] == f"{arm[0]}/warm"]
  return order


def summary(results):
  """Per arm the median times; paired ratios against `before`: of the epoch
  per round, and of each step against the same step of `before` (for arms
  with the same batches, the steps that compile are the same ones)."""
  out = {}
  for arm, runs in results.items():
    out[arm] = {k: statistics.median(r[k] for r in runs)
                for k in ("to_epoch_end_s", "steps_after_first_s",
                          "median_step_s")}
  if "before" in results:
    before = results["before"]
    for arm, runs in results.items():
      if arm == "before":
        continue
      out[arm]["epoch_speedup_vs_before"] = statistics.median(
          b["to_epoch_end_s"] / a["to_epoch_end_s"] for a, b in zip(runs, before))
      if arm == "multiple":
        out[arm]["step_time_ratio_vs_before"] = statistics.median(
            x / y for a, b in zip(runs, before)
            for x, y in zip(a["step_s"], b["step_s"]))
        out[arm]["max_loss_difference_vs_before"] = max(
            max(abs(x - y) for x, y in zip(a["losses"], b["losses"]))
            for a, b in zip(runs, before))
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.bucketing")
  parser.add_argument("--data_path", required=True)
  parser.add_argument("--config", default="configs/multi30k_attention.py")
  parser.add_argument("--schemes", default="multiple,quantile,fitted")
  parser.add_argument("--train", action="store_true",
                      help="also time one epoch per scheme, interleaved")
  parser.add_argument("--before_repo", default=None,
                      help="with --train, also time this checkout's trainer")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--warm_schemes", default="fitted",
                      help="with --train, the schemes also timed with the "
                      "compilation cache their cold run filled")
  parser.add_argument("--steps", type=int, default=0,
                      help="with --train, time this many steps instead of "
                      "an epoch")
  parser.add_argument("--json", default=None)
  args = parser.parse_args(argv)
  data_path = os.path.abspath(args.data_path)
  if not os.path.isdir(data_path):
    parser.error(f"--data_path={args.data_path} is not a directory")
  if args.before_repo and not os.path.isfile(
      os.path.join(args.before_repo, "seq2seq_jax", "train.py")):
    parser.error(f"--before_repo={args.before_repo} is not a seq2seq_jax "
                 "checkout")
  work = tempfile.mkdtemp(prefix="bucketing_")
  data_dir = os.path.join(work, "data")
  results = {}
  try:
    for scheme in args.schemes.split(","):
      results[scheme] = padding(args.config, data_path, data_dir, scheme)
      print(json.dumps({scheme: results[scheme]}), flush=True)
    if args.train:
      steps = args.steps or results[args.schemes.split(",")[0]]["batches"]
      runs = train_rounds(args, data_path, data_dir, work, steps)
      results = {"padding": results, "timed_steps": steps, "runs": runs,
                 "summary": summary(runs)}
      print(json.dumps(results["summary"], indent=1), flush=True)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
