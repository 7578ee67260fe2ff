"""Length buckets against padding, compiled shapes and epoch time.

  python -m benchmarks.bucketing --data_path=../shared/data/multi30k \
      [--config=configs/multi30k_attention.py] [--schemes=multiple,quantile] \
      [--train] [--json=FILE]

Question: how much of what the recurrences compute is padding under each
bucketing scheme, how many shapes does each compile, and what does an epoch
take?

Method: for each scheme (`multiple`: the config's pad_multiple, chunks of 50
batches; `quantile`: data.length_buckets quantile buckets), the training
stream's batches of one epoch, from the lengths alone: the fraction of the
padded source and target positions that hold real tokens, and the distinct
(source, target) shapes. With --train, the trainer runs one epoch per scheme
twice, with an empty compilation cache (compiling every shape as it comes)
and again with the cache it filled: the wall time from its first to its
last logged step, each way (--steps times fewer steps). Run on an idle
machine.
"""
import argparse
import importlib
import json
import os
import shutil
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
  stream = pipeline.TrainStream(
      split, s.train.batch_size, s.seed, *pipeline.max_lengths(split),
      s.data.reverse_source, s.data.pad_multiple, s.data.bucketing,
      s.data.length_buckets)
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


def epoch_seconds(config_path, data_path, data_dir, scheme, steps, work):
  """(cold, warm) seconds from the first to the last logged step of one
  epoch: with an empty compilation cache, then with the one it filled."""
  cache = os.path.join(work, f"cache_{scheme}")
  times = []
  for attempt in ("cold", "warm"):
    workdir = os.path.join(work, f"run_{scheme}_{attempt}")
    command = [sys.executable, "-m", "seq2seq_jax.train",
               f"--config={config_path}", f"--config.data.path={data_path}",
               f"--config.data.tfds_data_dir={data_dir}",
               f"--config.data.bucketing={scheme}", f"--workdir={workdir}",
               f"--config.train.num_steps={steps + 1}",
               "--config.train.log_every=1",
               "--config.train.eval_every=1000000",
               "--config.train.checkpoint_every=1000000"]
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
    # Step 1 is logged after the first step; the epoch's steps 2 .. steps+1
    # follow it (its first batch's compile is then in step 1).
    run = corpus_scale.run_trainer(command, env, stop_after=steps + 1)
    times.append(sum(run["step_s"]))
    shutil.rmtree(workdir, ignore_errors=True)
  return tuple(times)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.bucketing")
  parser.add_argument("--data_path", required=True)
  parser.add_argument("--config", default="configs/multi30k_attention.py")
  parser.add_argument("--schemes", default="multiple,quantile")
  parser.add_argument("--train", action="store_true",
                      help="also time one epoch per scheme, cold and warm")
  parser.add_argument("--steps", type=int, default=0,
                      help="with --train, time this many steps instead of "
                      "an epoch")
  parser.add_argument("--json", default=None)
  args = parser.parse_args(argv)
  work = tempfile.mkdtemp(prefix="bucketing_")
  data_dir = os.path.join(work, "data")
  results = {}
  try:
    for scheme in args.schemes.split(","):
      results[scheme] = padding(args.config, os.path.abspath(args.data_path),
                                data_dir, scheme)
      if args.train:
        steps = args.steps or results[scheme]["batches"]
        cold, warm = epoch_seconds(args.config, os.path.abspath(args.data_path),
                                   data_dir, scheme, steps, work)
        results[scheme].update(timed_steps=steps, cold_s=cold, warm_s=warm)
      print(json.dumps({scheme: results[scheme]}), flush=True)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
