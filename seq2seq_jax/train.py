"""The training loop: data, model, state, resume, evaluation and checkpoints.

`train_and_evaluate(config, workdir)` is the library entry point that main.py
calls. Everything it needs to resume exactly lives in the workdir: the Orbax
checkpoint (params, optimizer state, step, skipped-update counters), the data
position (the step: batches are a pure function of seed and step, see
data/pipeline.py), the RNG (a fold of the seed's key with the step), the
resolved config and the vocabularies.
"""
import signal
import time
from typing import Dict, Optional

from absl import logging
import jax
import ml_collections
import numpy as np

from seq2seq_jax import checkpointing
from seq2seq_jax import evaluation
from seq2seq_jax import optimizer as optimizer_lib
from seq2seq_jax import partitioning
from seq2seq_jax import provenance
from seq2seq_jax import reporting
from seq2seq_jax import settings as settings_lib
from seq2seq_jax import steps
from seq2seq_jax import workdir as workdir_lib
from seq2seq_jax.data import datasets
from seq2seq_jax.data import pipeline
from seq2seq_jax.model import Seq2Seq

PREEMPTED_EXIT_CODE = 75
BEST_SUBDIRECTORY = "best"  # EX_TEMPFAIL: try again later, with the same workdir


class NonFiniteError(RuntimeError):
  """Too many consecutive non-finite losses or gradients."""


class Preempted(Exception):
  """SIGTERM/SIGINT received; a checkpoint was written at `step`."""

  def __init__(self, step: int):
    super().__init__(f"preempted: checkpoint written at step {step}; rerun with "
                     "the same --workdir to resume")
    self.step = step


class _StopSignal:
  """Records SIGTERM/SIGINT so the loop can finish its step and save."""

  def __init__(self):
    self.received: Optional[int] = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.received = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _eval_and_log(state, corpus, split_name, s, shapes, max_decode_length,
                  log: reporting.MetricsLog, step: int, record_as: str, mesh):
  # The validation split may decode a subset (BLEU is slow); test decodes all.
  limit = (s.train.eval_decode_sentences or None) if record_as == "eval" else None
  results, samples = evaluation.evaluate(
      state, corpus.splits[split_name], batch_size=s.train.eval_batch_size,
      source_length=shapes[0], target_length=shapes[1],
      reverse_source=s.data.reverse_source, max_decode_length=max_decode_length,
      target_vocab=corpus.target_vocab, num_samples=s.train.num_eval_samples,
      is_text=corpus.is_text, decode_limit=limit, mesh=mesh)
  log.write(step, record_as, results)
  reporting.log(f"{record_as} step {step}: " + " ".join(
      f"{k}={v:.4f}" for k, v in results.items()))
  for source, reference, prediction in samples:
    reporting.log(f"  source: {source!r}  reference: {reference!r}  "
                  f"prediction: {prediction!r}")
  if samples:
    log.write_text(step, f"{record_as}/samples", "\n\n".join(
        f"source: {a}  \nreference: {b}  \nprediction: {c}" for a, b, c in samples))
  return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, float]:
  """Trains (or resumes) a run in `workdir`; returns the final test metrics."""
  s = settings_lib.from_config(config)
  # In a multi-host run the first process writes the workdir's files; all
  # processes take part in every step, evaluation and checkpoint.
  primary = partitioning.is_primary()
  if primary:
    workdir_lib.prepare(workdir)
    workdir_lib.check_or_write_config(workdir, settings_lib.to_dict(s))

  corpus = datasets.load(s.data)
  shapes = pipeline.max_lengths(*corpus.splits.values())
  max_decode_length = s.decode.max_length or shapes[1]
  if primary:
    workdir_lib.check_or_save_vocabularies(workdir, corpus.source_vocab,
                                           corpus.target_vocab)
    workdir_lib.write_limits(workdir, source_length=shapes[0],
                             target_length=shapes[1],
                             max_decode_length=max_decode_length)
  for name, split in corpus.splits.items():
    reporting.log(f"{name}: {len(split)} examples")

  model = Seq2Seq(s.model, corpus.source_vocab.size, corpus.target_vocab.size)
  tx = optimizer_lib.make_optimizer(s.train)
  schedule = optimizer_lib.learning_rate_schedule(s.train)
  options = steps.StepOptions.from_settings(s.train)
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(s.seed))
  mesh = partitioning.make_mesh()
  if not s.train.batch_tokens:
    partitioning.check_batch_size(s.train.batch_size, "train.batch_size")
  partitioning.check_batch_size(s.train.eval_batch_size, "train.eval_batch_size")
  state = partitioning.replicate(
      steps.create_train_state(model, tx, options, init_rng, *shapes), mesh)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  reporting.log(f"model: {num_params:,} parameters; devices: {jax.devices()}")

  checkpointer = checkpointing.Checkpointer(workdir, s.train.keep_checkpoints)
  # The best eval checkpoint (by BLEU for text, else sequence accuracy) is
  # kept apart, so `evaluate` and `translate` can use it after later ones.
  best_checkpointer = checkpointing.Checkpointer(workdir, 1, BEST_SUBDIRECTORY)
  best_metric = "bleu" if corpus.is_text else "sequence_accuracy"
  restored = checkpointer.restore_latest(state)
  meta = {}
  if restored is not None:
    state, meta = restored
    reporting.log(f"resumed from step {int(state.step)} "
                  f"(data position {meta['data_position']})")
  start_step = int(state.step)
  if primary:
    provenance.record(workdir, start_step)
  best_checkpointer.delete_after(start_step)
  log = reporting.MetricsLog(workdir, writable=primary)
  dropped = log.truncate_after(start_step)
  if dropped:
    reporting.log(f"dropped {dropped} metric lines written after step {start_step}")
  stream = _train_stream(s, corpus.splits["train"], shapes)

  def save(step):
    checkpointer.save(step, state, {
        "step": step, "data_position": step,
        "source_vocab": corpus.source_vocab.fingerprint(),
        "target_vocab": corpus.target_vocab.fingerprint(),
        "train_window": window.to_json(), "best_value": best_value})

  progress = reporting.Progress(start_step, s.train.num_steps)
  window = TrainWindow(meta.get("train_window"))
  best_value = meta.get("best_value", float("-inf"))
  results = {}
  with _StopSignal() as stop:
    for step in range(start_step, s.train.num_steps):
      batch = partitioning.global_batch(
          stream.batch(step, partitioning.process_shard()), mesh)
      state, metrics = steps.jit_train_step(state, batch, train_rng)
      window.add(metrics)
      done = step + 1
      consecutive = int(state.nonfinite_consecutive)
      if consecutive:
        logging.warning("step %d: non-finite loss or gradient, update skipped "
                        "(%d in a row)", done, consecutive)
        if consecutive >= s.train.max_consecutive_nonfinite:
          raise NonFiniteError(
              f"step {done}: {consecutive} consecutive non-finite losses or "
              f"gradients (config.train.max_consecutive_nonfinite="
              f"{s.train.max_consecutive_nonfinite}); last good checkpoint: "
              f"{checkpointer.steps()[-1:] or 'none'}")
      if done % s.train.log_every == 0 or done == s.train.num_steps:
        values = window.summarize(float(schedule(done - 1)))
        log.write(done, "train", values)
        reporting.log(progress.line(done, {
            k: values[k] for k in ("loss", "token_accuracy", "learning_rate")}))
      if done % s.train.eval_every == 0 or done == s.train.num_steps:
        progress.pause_until_now()
        results = _eval_and_log(state, corpus, "validation", s, shapes,
                                max_decode_length, log, done, "eval", mesh)
        if results[best_metric] > best_value:
          best_value = results[best_metric]
          best_checkpointer.save(done, state, {"step": done,
                                               best_metric: best_value})
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
        checkpointer.close()
        best_checkpointer.close()
        log.close()
        if stopping:
          raise Preempted(done)
        reporting.log(f"stopping after {s.train.max_steps_per_run} steps this "
                      f"run (config.train.max_steps_per_run); resume with the "
                      "same --workdir")
        return {}

  final_step = int(state.step)
  if partitioning.agree(not log.has(final_step, "test")):
    results = _eval_and_log(state, corpus, "test", s, shapes, max_decode_length,
                            log, final_step, "test", mesh)
  checkpointer.close()
  best_checkpointer.close()
  log.close()
  return results


def _train_stream(s, split, shapes):
  """Batches by sentence count, or by token budget with one shape per bucket."""
  if not s.train.batch_tokens:
    return pipeline.TrainStream(split, s.train.batch_size, s.seed, *shapes,
                                s.data.reverse_source, s.data.pad_multiple)
  try:
    stream = pipeline.TokenBudgetStream(
        split, s.train.batch_tokens, s.seed, *shapes, s.data.reverse_source,
        s.data.pad_multiple, row_multiple=jax.device_count())
  except ValueError as e:
    raise settings_lib.ConfigError(str(e)) from None
  reporting.log("token-budget batches (padded length: rows): " + ", ".join(
      f"{length}: {rows}" for length, rows in stream.shapes.items()) +
                f"; {stream.batches_per_epoch} batches per epoch")
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
