"""The training loop: data, model, state, resume, evaluation and checkpoints.

`train_and_evaluate(config, workdir)` is the library entry point that the
command line (seq2seq_jax/train.py) calls. Everything it needs to resume
exactly lives in the workdir: the Orbax checkpoint (params, optimizer state,
step, skipped-update counters), the data position (the step: batches are a
pure function of seed and step, see data/pipeline.py), the RNG (a fold of the seed's key with the step), the
resolved config, the vocabularies and the dataset's identity.
"""
import contextlib
import dataclasses
import os
from typing import Dict, Optional, Tuple

from absl import logging
import jax
import ml_collections
import numpy as np

from seq2seq_jax import files
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data import corpus as corpus_lib
from seq2seq_jax.data import datasets
from seq2seq_jax.data import loader
from seq2seq_jax.data import pipeline
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import checkpointing
from seq2seq_jax.training import evaluation
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import partitioning
from seq2seq_jax.training import preemption
from seq2seq_jax.training import provenance
from seq2seq_jax.training import reporting
from seq2seq_jax.training import steps
from seq2seq_jax.training import workdir as workdir_lib

# Re-exported for callers that catch them from the training entry point.
PREEMPTED_EXIT_CODE = preemption.PREEMPTED_EXIT_CODE
Preempted = preemption.Preempted


class NonFiniteError(RuntimeError):
  """Too many consecutive non-finite losses or gradients."""


@dataclasses.dataclass
class _Run:
  """What the loop needs besides the state: settings, data, outputs."""
  s: settings_lib.Settings
  workdir: str
  corpus: corpus_lib.Corpus
  train_shapes: Tuple[int, int]
  max_decode_length: int
  mesh: object
  log: reporting.MetricsLog
  checkpoints: checkpointing.RunCheckpoints
  best_metric: str


def _one_line(text: str) -> str:
  """A sentence with no line break inside, so line i is sentence i."""
  return " ".join(text.splitlines())


def _eval_and_log(state, run: _Run, split_name: str, step: int,
                  record_as: str) -> Dict[str, float]:
  s, split = run.s, run.corpus.splits[split_name]
  # The validation split may decode a subset (BLEU is slow); test decodes all.
  limit = (s.train.eval_decode_sentences or None) if record_as == "eval" else None
  source_length, target_length = pipeline.max_lengths(split)
  results, samples, hypotheses = evaluation.evaluate(
      state, split, batch_size=s.train.eval_batch_size,
      source_length=source_length, target_length=target_length,
      reverse_source=s.data.reverse_source,
      max_decode_length=run.max_decode_length,
      target_vocab=run.corpus.target_vocab, num_samples=s.train.num_eval_samples,
      is_text=run.corpus.is_text, decode_limit=limit, mesh=run.mesh)
  if record_as == "test" and run.log.writable:
    # Written before the test line, so a finished run always has them.
    for name, lines in ((workdir_lib.TEST_HYPOTHESES_FILE, hypotheses),
                        (workdir_lib.TEST_REFERENCES_FILE, split.target_text)):
      files.write_text(os.path.join(run.workdir, name),
                       "".join(_one_line(line) + "\n" for line in lines))
  run.log.write(step, record_as, results)
  reporting.log(f"{record_as} step {step}: " + " ".join(
      f"{k}={v:.4f}" for k, v in results.items()))
  for source, reference, prediction in samples:
    reporting.log(f"  source: {source!r}  reference: {reference!r}  "
                  f"prediction: {prediction!r}")
  if samples:
    run.log.write_text(step, f"{record_as}/samples", "\n\n".join(
        f"source: {a}  \nreference: {b}  \nprediction: {c}" for a, b, c in samples))
  return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, float]:
  """Trains (or resumes) a run in `workdir`; returns the final test metrics.

  In a multi-host run the first process holds the workdir's lock and writes
  its files; all processes take part in every step, evaluation and
  checkpoint.
  """
  s = settings_lib.from_config(config)
  # Data paths are recorded absolute: evaluate may run from another directory.
  paths = {key: os.path.abspath(getattr(s.data, key)) for key in
           ("path", "train_prefix", "validation_prefix", "test_prefix")
           if getattr(s.data, key)}
  s = dataclasses.replace(s, data=dataclasses.replace(s.data, **paths))
  primary = partitioning.is_primary()
  if primary:
    workdir_lib.prepare(workdir)
  with workdir_lib.lock(workdir) if primary else contextlib.nullcontext():
    return _train_locked(s, workdir, primary)


def _set_up_data(s, workdir: str, primary: bool):
  """Loads the corpus and records the run's identity files (primary only)."""
  corpus = datasets.load(s.data)
  train_shapes = pipeline.max_lengths(corpus.splits["train"])
  all_shapes = pipeline.max_lengths(*corpus.splits.values())
  max_decode_length = s.decode.max_length or all_shapes[1]
  for name, split in corpus.splits.items():
    reporting.log(f"{name}: {len(split)} examples")
  pipeline.warn_about_outliers(corpus.splits)
  if primary:
    workdir_lib.check_or_write_dataset(workdir, corpus.dataset, corpus.is_text)
    workdir_lib.check_or_write_config(workdir, settings_lib.to_dict(s))
    workdir_lib.check_or_save_vocabularies(workdir, corpus.source_vocab,
                                           corpus.target_vocab)
    # translate truncates inputs to source_length: the longest of any split.
    workdir_lib.write_limits(workdir, source_length=all_shapes[0],
                             target_length=all_shapes[1],
                             max_decode_length=max_decode_length)
  return corpus, train_shapes, max_decode_length


def _train_locked(s, workdir: str, primary: bool) -> Dict[str, float]:
  mesh = partitioning.make_mesh()
  if not s.train.batch_tokens:
    partitioning.check_batch_size(s.train.batch_size, "train.batch_size")
  partitioning.check_batch_size(s.train.eval_batch_size, "train.eval_batch_size")
  corpus, train_shapes, max_decode_length = _set_up_data(s, workdir, primary)
  model = Seq2Seq(s.model, corpus.source_vocab.size, corpus.target_vocab.size)
  tx = optimizer_lib.make_optimizer(s.train)
  options = steps.StepOptions.from_settings(s.train)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(s.seed))
  state = partitioning.replicate(
      steps.create_train_state(model, tx, options, init_rng, *train_shapes), mesh)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  reporting.log(f"model: {num_params:,} parameters; devices: {jax.devices()}")

  checkpoints = checkpointing.RunCheckpoints(workdir, s.train.keep_checkpoints)
  restored = checkpoints.latest.restore_latest(state)
  meta = {}
  if restored is not None:
    state, meta = restored
  log = reporting.MetricsLog(workdir, writable=primary)
  run = _Run(s=s, workdir=workdir, corpus=corpus, train_shapes=train_shapes,
             max_decode_length=max_decode_length, mesh=mesh, log=log,
             checkpoints=checkpoints,
             best_metric="bleu" if corpus.is_text else "sequence_accuracy")
  # The stop signal covers the closing save too: a stuck one can be ended.
  with preemption.StopSignal() as stop:
    try:
      results, finished = _resume_and_train(
          state, run, meta, restored is not None, train_rng, stop, primary)
    finally:
      checkpoints.close()  # waits for the last save, so it is listed below
      log.close()
  if finished:
    reporting.log("training done. " + _where_results_are(run))
  return results


def _resume_and_train(state, run: _Run, meta, resumed: bool, train_rng,
                      stop: preemption.StopSignal, primary: bool):
  """Trains from the restored step to the end and evaluates the test split.

  Returns:
    (test metrics, whether the run has just finished); ({}, False) when it
    stopped early (train.max_steps_per_run).
  """
  s, workdir, log, checkpoints = run.s, run.workdir, run.log, run.checkpoints
  start_step = int(state.step)
  if partitioning.agree(start_step >= s.train.num_steps
                        and log.has(start_step, "test")):
    reporting.log(f"{workdir} is complete: trained to step {start_step} "
                  f"(config.train.num_steps={s.train.num_steps}); nothing to "
                  "do. " + _where_results_are(run))
    return log.last(start_step, "test"), False
  if resumed:
    reporting.log(f"resumed from step {start_step} "
                  f"(data position {meta['data_position']})")
  if primary:
    provenance.record(workdir, start_step)
  checkpoints.best.delete_after(start_step)
  dropped = log.truncate_after(start_step)
  if dropped:
    reporting.log(f"dropped {dropped} metric lines written after step "
                  f"{start_step}")
  if start_step > s.train.num_steps:
    logging.warning("the workdir is at step %d, past config.train.num_steps="
                    "%d: nothing to train; evaluating that step on the test "
                    "split", start_step, s.train.num_steps)
  state, stopped = _train_loop(state, run, meta, start_step, train_rng, stop)
  if stopped:
    return {}, False
  final_step = int(state.step)
  results = {}
  if partitioning.agree(not log.has(final_step, "test")):
    results = _eval_and_log(state, run, "test", final_step, "test")
  return results, True


def _where_results_are(run: _Run) -> str:
  best = run.checkpoints.best.steps()
  latest = run.checkpoints.latest.steps()
  return (f"Results: {os.path.join(run.workdir, 'metrics.jsonl')} (the last "
          "'test' line); checkpoints: "
          f"{run.checkpoints.latest.directory} (steps {latest}); best "
          f"validation {run.best_metric}: "
          + (f"{run.checkpoints.best.directory}/{best[-1]}" if best else "none")
          + f"; evaluate with: python -m seq2seq_jax.evaluate "
          f"--workdir={run.workdir}")


def _train_loop(state, run: _Run, meta, start_step: int, train_rng,
                stop: preemption.StopSignal):
  """Runs steps start_step .. num_steps; returns (state, stopped early)."""
  s, log, checkpoints = run.s, run.log, run.checkpoints
  schedule = optimizer_lib.learning_rate_schedule(s.train)
  stream = _train_stream(s, run.corpus.splits["train"], run.train_shapes)
  progress = reporting.Progress(start_step, s.train.num_steps)
  window = TrainWindow(meta.get("train_window"))
  best_value = meta.get("best_value", float("-inf"))
  corpus = run.corpus
  skips = _SkipCounter(int(state.nonfinite_consecutive),
                       s.train.max_consecutive_nonfinite, checkpoints)

  def save(step):
    skips.check_previous()
    checkpoints.save_latest(step, state, {
        "step": step, "data_position": step,
        "source_vocab": corpus.source_vocab.fingerprint(),
        "target_vocab": corpus.target_vocab.fingerprint(),
        "train_window": window.to_json(), "best_value": best_value})

  # Closed on every way out: a stop, a segment's end, an error.
  with contextlib.closing(loader.batches(
      stream, start_step, s.train.num_steps, partitioning.process_shard(),
      workers=s.data.loader_workers)) as batches:
    for step, batch in zip(range(start_step, s.train.num_steps), batches):
      batch = partitioning.global_batch(batch, run.mesh)
      state, metrics = steps.jit_train_step(state, batch, train_rng)
      window.add(metrics)
      done = step + 1
      # The previous step's skip flag is read now, while this step runs: a
      # per-step read of this one would idle the host until the device is done.
      skips.check_previous()
      skips.hold(done, metrics)
      if done % s.train.log_every == 0 or done == s.train.num_steps:
        skips.check_previous()  # nothing is logged, evaluated or saved unchecked
        values = window.summarize(_applied_learning_rate(state, schedule))
        log.write(done, "train", values)
        reporting.log(progress.line(done, {
            k: values[k] for k in ("loss", "token_accuracy", "learning_rate")}))
      if done % s.train.eval_every == 0 or done == s.train.num_steps:
        skips.check_previous()
        progress.pause_until_now()
        results = _eval_and_log(state, run, "validation", done, "eval")
        if results[run.best_metric] > best_value:
          best_value = results[run.best_metric]
          checkpoints.save_best(done, state, {"step": done,
                                              run.best_metric: best_value})
        progress.resume()
      saved = done % s.train.checkpoint_every == 0 or done == s.train.num_steps
      if saved:
        save(done)
      segment_done = (s.train.max_steps_per_run
                      and done - start_step >= s.train.max_steps_per_run
                      and done < s.train.num_steps)
      stopping = partitioning.any_process(stop.received is not None)
      if stopping or segment_done:
        if not saved:  # saving a step twice is an error in multi-host Orbax
          save(done)
        if stopping:  # the caller's `finally` waits for the save to finish
          raise Preempted(done)
        reporting.log(f"stopping after {s.train.max_steps_per_run} steps this "
                      f"run (config.train.max_steps_per_run); resume with the "
                      "same --workdir")
        return state, True
  return state, False


class _SkipCounter:
  """Counts consecutive skipped (non-finite) updates from the steps' metrics,
  one step behind the device, and stops the run after too many."""

  def __init__(self, consecutive: int, limit: int, checkpoints):
    self.consecutive, self.limit, self.checkpoints = consecutive, limit, checkpoints
    self._held = None

  def hold(self, done: int, metrics) -> None:
    self._held = (done, metrics["skipped"])

  def check_previous(self) -> None:
    if self._held is None:
      return
    done, skipped = self._held
    self._held = None
    if not float(skipped):
      self.consecutive = 0
      return
    self.consecutive += 1
    logging.warning("step %d: non-finite loss or gradient, update skipped "
                    "(%d in a row)", done, self.consecutive)
    if self.consecutive >= self.limit:
      raise NonFiniteError(
          f"step {done}: {self.consecutive} consecutive non-finite losses or "
          f"gradients (config.train.max_consecutive_nonfinite={self.limit}); "
          f"last good checkpoint: "
          f"{self.checkpoints.latest.steps()[-1:] or 'none'}")


def _applied_learning_rate(state, schedule) -> float:
  """The rate of the newest applied update. A skipped (non-finite) step
  leaves the optimizer's count where it was, so the count of applied updates
  is step - skipped, not the step."""
  applied = int(state.step) - int(state.nonfinite_total)
  return float(schedule(max(applied - 1, 0)))


def _train_stream(s, split, shapes):
  """Batches by sentence count, or by token budget with one shape per bucket.

  Neither depends on the device count: the same step gets the same examples
  on 1 or N devices (a token-budget batch gains empty rows to split evenly).
  """
  try:
    stream = pipeline.train_stream(split, s.data, s.train, s.seed, shapes,
                                   row_multiple=jax.device_count())
  except ValueError as e:
    raise settings_lib.ConfigError(str(e)) from None
  description = stream.describe()
  if description:
    reporting.log(description)
  return stream


class TrainWindow:
  """Train-step metrics since the last log line, summed in order in float64.

  The partial window is saved with each checkpoint, so a run resumed between
  two log lines writes exactly the line an uninterrupted run would have.
  """

  def __init__(self, saved: Optional[Dict] = None):
    self.sums: Dict[str, float] = dict(saved["sums"]) if saved else {}
    self.count: int = saved["count"] if saved else 0
    self._pending = []

  def add(self, metrics) -> None:
    self._pending.append(metrics)

  def _fold(self) -> None:
    for metrics in jax.device_get(self._pending):
      for key, value in metrics.items():
        self.sums[key] = self.sums.get(key, 0.0) + float(value)
      self.count += 1
    self._pending = []

  def to_json(self) -> Dict:
    self._fold()
    return {"sums": self.sums, "count": self.count}

  def summarize(self, learning_rate: float) -> Dict[str, float]:
    """Exact averages over the window; resets it."""
    self._fold()
    total, count = self.sums, max(self.count, 1)
    tokens = max(total["token_count"], 1.0)
    values = {
        "loss": total["nll_sum"] / tokens,
        "token_accuracy": total["correct_tokens"] / tokens,
        "sequence_accuracy": (total["correct_sequences"]
                              / max(total["sequence_count"], 1.0)),
        "train_loss": total["train_loss"] / count,
        "grad_norm": total["grad_norm"] / count,
        "skipped_updates": total["skipped"],
        "learning_rate": learning_rate,
    }
    values["perplexity"] = float(np.exp(min(values["loss"], 700.0)))
    self.sums, self.count = {}, 0
    return values
