"""Corpus size against start-up time, memory and speed.

  python -m benchmarks.corpus_scale [--sizes=100000,1000000,4000000] \
      [--pairs_file=../shared/data/eng-fra/eng-fra.txt] [--steps=25] \
      [--work_dir=DIR] [--json=FILE] [--repo=OTHER_CHECKOUT]

Question: do a first run, a restart and a step cost the same for 100 k and
4 M sentence pairs?

Method, for each size: a deterministic corpus in a temporary folder (the
pairs file's lines repeated, each copy with its own extra word on both
sides, `write_corpus`), trained with the Multi30k attention model
(configs/multi30k_attention.py: bi-GRU 256, Bahdanau, batch 128) on the tsv
task, with a fresh data folder and an empty compilation cache:
  1. first run: the trainer from its command to its first logged training
     step (the corpus is prepared in it; its log gives the preparation time
     and pairs/s); stopped with SIGTERM after `--steps` steps (it
     checkpoints and exits 75);
  2. restart: the same command, to its first step, and its peak RSS
     (the process's own, from wait4); the median time of its later steps
     that compiled nothing (within 1.5x the fastest: a compile adds
     seconds) is the steady state;
  3. the input pipeline alone: this process opens the prepared corpus and
     times 300 batches through the loader, to set against the step rate.
With --repo, the trainer of another checkout runs instead (e.g. an older
commit, for a before/after in one session); its preparation time is then
reported only if it logs one, and the input pipeline is not timed.
Measure on an idle machine; the corpora are deleted afterwards.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PAIRS = os.path.join(ROOT, "..", "shared", "data", "eng-fra",
                             "eng-fra.txt")
STEP_LINE = re.compile(r"\bstep (\d+)/\d+ ")
PREPARED_LINE = re.compile(r"prepared \S+: ([\d,]+) pairs in ([\d.]+) s")


def write_corpus(pairs_file: str, pairs: int, path: str) -> None:
  """`pairs` lines of pairs_file's first two columns, repeated; copy k
  appends the word 'wk' to both sides, so every line is distinct."""
  with open(pairs_file, encoding="utf-8") as f:
    lines = [line.rstrip("\n").split("\t")[:2] for line in f if "\t" in line]
  written = 0
  with open(path, "w", encoding="utf-8") as out:
    copy = 0
    while written < pairs:
      for english, other in lines[:pairs - written]:
        out.write(f"{english} w{copy}\t{other} w{copy}\n")
      written += min(len(lines), pairs - written)
      copy += 1


def trainer_command(corpus: str, data_dir: str, workdir: str) -> list:
  return [sys.executable, "-m", "seq2seq_jax.train",
          "--config=configs/multi30k_attention.py",
          "--config.data.task=tsv", f"--config.data.path={corpus}",
          "--config.data.source_language=fr",
          "--config.data.target_language=en",
          f"--config.data.tfds_data_dir={data_dir}", f"--workdir={workdir}",
          "--config.train.num_steps=1000000", "--config.train.log_every=1",
          "--config.train.eval_every=1000000",
          "--config.train.checkpoint_every=1000000"]


def run_trainer(command, env, stop_after: int, cwd: str = ROOT):
  """Runs the trainer until it logs step `stop_after`, then SIGTERMs it.

  Returns:
    {'first_step_s', 'step_s' (seconds between consecutive step lines),
     'prepared' (pairs, seconds) or None, 'max_rss_gb', 'exit_code'}.
  """
  started = time.monotonic()
  process = subprocess.Popen(command, cwd=cwd, env=env, text=True,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, bufsize=1)
  step_times, prepared, tail = [], None, []
  for line in process.stderr:
    now = time.monotonic() - started
    tail = (tail + [line])[-20:]
    match = PREPARED_LINE.search(line)
    if match:
      prepared = (int(match.group(1).replace(",", "")), float(match.group(2)))
    match = STEP_LINE.search(line)
    if match:
      step_times.append(now)
      if int(match.group(1)) == stop_after:  # once: a second one forces exit
        process.send_signal(signal.SIGTERM)
  _, status, usage = os.wait4(process.pid, 0)
  process.returncode = os.waitstatus_to_exitcode(status)
  if not step_times:
    raise RuntimeError("the trainer logged no step:\n" + "".join(tail))
  return {"first_step_s": step_times[0],
          "step_s": [b - a for a, b in zip(step_times, step_times[1:])],
          "prepared": prepared, "max_rss_gb": usage.ru_maxrss / 1e6,
          "exit_code": process.returncode}


def pipeline_batches_per_s(corpus: str, data_dir: str, batches: int) -> float:
  """Batches/s of the loader alone, on the prepared corpus."""
  # pylint: disable=g-import-not-at-top
  from configs import multi30k_attention
  from seq2seq_jax import settings
  from seq2seq_jax.data import datasets
  from seq2seq_jax.data import loader
  from seq2seq_jax.data import pipeline
  config = multi30k_attention.get_config()
  config.data.task, config.data.path = "tsv", corpus
  config.data.source_language, config.data.target_language = "fr", "en"
  config.data.tfds_data_dir = data_dir
  s = settings.from_config(config)
  split = datasets.load(s.data).splits["train"]
  stream = pipeline.train_stream(split, s.data, s.train, s.seed,
                                 pipeline.max_lengths(split))
  started = time.perf_counter()
  for _ in loader.batches(stream, 0, batches):
    pass
  return batches / (time.perf_counter() - started)


def measure(size: int, pairs_file: str, work: str, steps: int,
            repo: str = ROOT) -> dict:
  corpus = os.path.join(work, f"pairs_{size}.tsv")
  write_corpus(pairs_file, size, corpus)
  data_dir = os.path.join(work, f"data_{size}")
  workdir = os.path.join(work, f"run_{size}")
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.path.join(
      work, f"cache_{size}"))
  command = trainer_command(corpus, data_dir, workdir)
  first = run_trainer(command, env, stop_after=steps, cwd=repo)
  restart = run_trainer(command, env, stop_after=2 * steps, cwd=repo)
  # A step that compiles a new batch shape takes seconds longer; the steps
  # that compiled nothing take within half again the fastest one.
  later = restart["step_s"][1:]
  steady = [s for s in later if s <= 1.5 * min(later)]
  pairs, seconds = first["prepared"] or (size, float("nan"))
  result = {
      "pairs": size, "prepare_s": seconds, "prepare_pairs_per_s": pairs / seconds,
      "first_run_to_first_step_s": first["first_step_s"],
      "first_run_max_rss_gb": first["max_rss_gb"],
      "restart_to_first_step_s": restart["first_step_s"],
      "restart_max_rss_gb": restart["max_rss_gb"],
      "steady_steps_per_s": 1 / statistics.median(steady),
      "pipeline_batches_per_s": (
          pipeline_batches_per_s(corpus, data_dir, 300)
          if repo == ROOT else float("nan")),
      "exit_codes": [first["exit_code"], restart["exit_code"]],
      "restart_step_s": [round(x, 3) for x in later],
  }
  os.remove(corpus)
  for path in (data_dir, workdir, env["JAX_COMPILATION_CACHE_DIR"]):
    shutil.rmtree(path, ignore_errors=True)
  return result


def table(results) -> str:
  rows = ["| pairs | preparation | pairs/s | first run: start → first step "
          "| restart: start → first step | restart peak RSS | steady steps/s "
          "| input pipeline batches/s |", "|" + " --- |" * 8]
  for r in results:
    rows.append(
        f"| {r['pairs']:,} | {r['prepare_s']:.1f} s | "
        f"{r['prepare_pairs_per_s']:,.0f} | {r['first_run_to_first_step_s']:.1f}"
        f" s | {r['restart_to_first_step_s']:.1f} s | "
        f"{r['restart_max_rss_gb']:.2f} GB | {r['steady_steps_per_s']:.2f} | "
        f"{r['pipeline_batches_per_s']:.0f} |")
  return "\n".join(rows)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.corpus_scale")
  parser.add_argument("--sizes", default="100000,1000000,4000000")
  parser.add_argument("--pairs_file", default=DEFAULT_PAIRS)
  parser.add_argument("--steps", type=int, default=25,
                      help="steps of the first run; the restart runs as many")
  parser.add_argument("--work_dir", default=None,
                      help="where the corpora go (default: a temporary folder)")
  parser.add_argument("--json", default=None, help="also write results here")
  parser.add_argument("--repo", default=ROOT,
                      help="the checkout whose trainer runs (default: this one)")
  args = parser.parse_args(argv)
  if not os.path.isfile(args.pairs_file):
    parser.error(f"--pairs_file={args.pairs_file} does not exist")
  work = args.work_dir or tempfile.mkdtemp(prefix="corpus_scale_")
  os.makedirs(work, exist_ok=True)
  results = []
  try:
    for size in (int(s) for s in args.sizes.split(",")):
      results.append(measure(size, args.pairs_file, work, args.steps,
                             os.path.abspath(args.repo)))
      print(json.dumps(results[-1]), flush=True)
  finally:
    if not args.work_dir:
      shutil.rmtree(work, ignore_errors=True)
  print(table(results))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
