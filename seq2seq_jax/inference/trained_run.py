"""Loading a trained workdir and translating text with it.

Used by `evaluate` and `translate`: everything comes from the workdir (the
resolved config, the vocabularies, the padded shapes and a checkpoint), never
from the data or the config files, so a run can be decoded on another machine.
"""
import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from seq2seq_jax import serving
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data.text import text_pairs
from seq2seq_jax.data import tokenizers
from seq2seq_jax.decoding import ensemble
from seq2seq_jax.models.seq2seq import Seq2Seq
from seq2seq_jax.training import checkpointing
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import steps
from seq2seq_jax.training import workdir as workdir_lib

CHECKPOINTS = ("best", "latest", "average")


@dataclasses.dataclass
class LoadedRun:
  settings: settings_lib.Settings
  state: steps.TrainState
  source_vocab: object
  target_vocab: object
  source_length: int  # longest source the model was trained on
  max_decode_length: int
  step: int
  workdir: str = ""


@dataclasses.dataclass
class LoadedEnsemble:
  """Runs that decode as one (decoding/ensemble.py): each member encodes
  the source as it was trained (reversed or not); the members share their
  vocabularies. Used wherever a LoadedRun is, except attention plots."""
  members: List[LoadedRun]
  combination: str = "mean_logprob"

  @property
  def state(self) -> steps.Ensemble:
    return steps.Ensemble(tuple(m.state for m in self.members),
                          self.combination)

  @property
  def settings(self) -> settings_lib.Settings:
    return self.members[0].settings

  @property
  def source_vocab(self):
    return self.members[0].source_vocab

  @property
  def target_vocab(self):
    return self.members[0].target_vocab

  @property
  def max_decode_length(self) -> int:
    return max(m.max_decode_length for m in self.members)

  @property
  def step(self) -> List[int]:
    return [m.step for m in self.members]


VOCABULARY_FILES = ("vocab_source.json", "vocab_target.json")


def run_template(workdir: str):
  """(settings, limits, source vocab, target vocab, a train state of the
  run's structure) from the workdir's files, creating nothing."""
  s = settings_lib.from_dict(workdir_lib.read_json(workdir,
                                                   workdir_lib.CONFIG_FILE))
  limits = workdir_lib.read_json(workdir, workdir_lib.LIMITS_FILE)
  try:
    source_vocab = tokenizers.load(os.path.join(workdir, "vocab_source.json"))
    target_vocab = tokenizers.load(os.path.join(workdir, "vocab_target.json"))
  except ValueError as e:
    raise workdir_lib.WorkdirError(str(e)) from None
  model = Seq2Seq(s.model, source_vocab.size, target_vocab.size)
  template = steps.create_train_state(
      model, optimizer_lib.make_optimizer(s.train),
      steps.StepOptions.from_settings(s.train), jax.random.PRNGKey(0),
      limits["source_length"], limits["target_length"])
  return s, limits, source_vocab, target_vocab, template


def _restore_series(workdir: str, subdirectory: str, template, keep: int = 1):
  """The newest checkpoint of DIR/subdirectory, or None; opens the series
  only where it exists (opening creates it)."""
  if not os.path.isdir(os.path.join(workdir, subdirectory)):
    return None
  return checkpointing.Checkpointer(workdir, keep,
                                    subdirectory).restore_latest(template)


def load_run(workdir: str, checkpoint: str = "best") -> LoadedRun:
  """Restores a workdir's model from its best, newest or averaged checkpoint,
  or from a checkpoint directory given by path.

  'best' falls back to the newest checkpoint when no eval has run yet;
  'average' is the one `python -m seq2seq_jax.average` wrote; anything else
  is a step directory (e.g. DIR/checkpoints/3000) restored into the run's
  model, whose vocabularies and settings come from `workdir`.
  """
  s, limits, source_vocab, target_vocab, template = run_template(workdir)
  restored, which = None, checkpoint
  if checkpoint not in CHECKPOINTS:
    restored = checkpointing.restore_path(checkpoint, template)
  if checkpoint == "average":
    restored = _restore_series(workdir, checkpointing.AVERAGE_SUBDIRECTORY,
                               template)
    if restored is None:
      raise workdir_lib.WorkdirError(
          f"no averaged checkpoint in {workdir!r}; write one with: python -m "
          f"seq2seq_jax.average --workdir={workdir}")
  if checkpoint == "best":
    restored = _restore_series(workdir, checkpointing.BEST_SUBDIRECTORY,
                               template)
    if restored is None:
      logging.info("no best checkpoint in %s yet; using the latest", workdir)
      which = "latest"
  if restored is None:
    restored = _restore_series(workdir, checkpointing.LATEST_SUBDIRECTORY,
                               template, s.train.keep_checkpoints)
  if restored is None:
    raise workdir_lib.WorkdirError(f"no checkpoint in {workdir!r} yet")
  state, _ = restored
  logging.info("restored the %s checkpoint, step %d, from %s", which,
               int(state.step), workdir)
  return LoadedRun(settings=s, state=state, source_vocab=source_vocab,
                   target_vocab=target_vocab,
                   source_length=limits["source_length"],
                   max_decode_length=limits["max_decode_length"],
                   step=int(state.step), workdir=workdir)


def load(workdirs: Sequence[str], checkpoint: str = "best",
         combination: str = "mean_logprob"):
  """One workdir's LoadedRun, or a LoadedEnsemble of several.

  Raises:
    WorkdirError: the members' vocabulary files differ (naming both files).
  """
  if not workdirs:
    raise ValueError("no workdir given")
  if combination not in ensemble.COMBINATIONS:
    raise ValueError(f"unknown ensemble combination {combination!r}; valid: "
                     f"{', '.join(ensemble.COMBINATIONS)}")
  runs = [load_run(workdir, checkpoint) for workdir in workdirs]
  if len(runs) == 1:
    return runs[0]
  first = runs[0]
  for run in runs[1:]:
    for name, a, b in zip(VOCABULARY_FILES,
                          (first.source_vocab, first.target_vocab),
                          (run.source_vocab, run.target_vocab)):
      if a.to_json() != b.to_json():
        raise workdir_lib.WorkdirError(
            f"{os.path.join(run.workdir, name)} differs from "
            f"{os.path.join(first.workdir, name)}: ensemble members must be "
            "trained with the same vocabularies")
  return LoadedEnsemble(runs, combination)


def normalization(settings: settings_lib.Settings) -> str:
  """The text_pairs.NORMALIZERS key the run's preset applied to both sides
  of its training pairs (the tutorial preset lowercases and strips
  accents)."""
  return "tutorial" if settings.data.preset == "tutorial" else "none"


def normalize(settings: settings_lib.Settings, text: str) -> str:
  """Text as the run's training pairs were normalized."""
  return text_pairs.NORMALIZERS[normalization(settings)](text)


def encode_sources(run, texts: Sequence[str]):
  """Token ids [len(texts), run.source_length] as the run's training inputs
  were encoded (serving.encode_rows: normalized, truncated with a warning,
  reversed if the run was; '' gives padding); for a LoadedEnsemble, a tuple
  of them, one per member."""
  if isinstance(run, LoadedEnsemble):
    return tuple(encode_sources(member, texts) for member in run.members)
  return serving.encode_rows(
      run.source_vocab, texts, source_length=run.source_length,
      normalization=normalization(run.settings),
      reverse=run.settings.data.reverse_source)


def _batches(sources, batch_size: int):
  """(first index, rows, the rows zero-padded to batch_size) per batch: one
  shape, so each decoding function compiles once. `sources` is an array or
  an ensemble's tuple of arrays (padded alike; the rows are the first's)."""
  first = jax.tree_util.tree_leaves(sources)[0]
  for start in range(0, len(first), batch_size):
    def pad(rows):
      chunk = rows[start:start + batch_size]
      padded = np.zeros((batch_size, rows.shape[1]), np.int32)
      padded[:len(chunk)] = chunk
      return jnp.asarray(padded)
    yield (start, first[start:start + batch_size],
           jax.tree_util.tree_map(pad, sources))


def translate(run, texts: Sequence[str], *, batch_size: int = 64,
              beam_size: int = 1, alpha: float = 0.6,
              nbest: int = 1) -> List[List[str]]:
  """Translations of each input: greedy (beam_size 1) or beam search.

  Returns:
    per input, its `nbest` hypotheses, best first (empty input -> [''] * nbest).
  """
  return [[text for text, _ in hypotheses] for hypotheses in translate_scored(
      run, texts, batch_size=batch_size, beam_size=beam_size, alpha=alpha,
      nbest=nbest)]


def translate_scored(run, texts: Sequence[str], *,
                     batch_size: int = 64, beam_size: int = 1,
                     alpha: float = 0.6,
                     nbest: int = 1) -> List[List[Tuple[str, Optional[float]]]]:
  """`translate` with each hypothesis's beam score (length-penalised
  log-probability); greedy hypotheses have score None."""
  if beam_size < 1 or not 1 <= nbest <= beam_size:
    raise ValueError(f"need beam_size >= 1 and 1 <= nbest <= beam_size, got "
                     f"beam_size={beam_size}, nbest={nbest}")
  outputs: List[List[Tuple[str, Optional[float]]]] = []
  sources = encode_sources(run, texts)
  for _, chunk, padded in _batches(sources, batch_size):
    if beam_size == 1:
      tokens = np.asarray(steps.jit_greedy_predict(
          run.state, padded, max_length=run.max_decode_length))[:, None]
      scores = np.full(tokens.shape[:2], np.nan)
    else:
      tokens, scores = steps.jit_beam_predict(
          run.state, padded, max_length=run.max_decode_length,
          beam_size=beam_size, alpha=alpha, nbest=nbest)
      tokens, scores = np.asarray(tokens), np.asarray(scores)
    for rows, row_scores, source in zip(tokens, scores, chunk):
      outputs.append([
          (run.target_vocab.decode(row) if source.any() else "",
           None if np.isnan(score) else float(score))
          for row, score in zip(rows, row_scores)])
  return outputs


def sample_translations(run, texts: Sequence[str], *,
                        num_samples: int, temperature: float = 1.0,
                        top_k: int = 0, seed: int = 0,
                        batch_size: int = 64) -> List[List[str]]:
  """`num_samples` sampled translations of each input (empty input -> '').

  Sample j of input i is drawn with fold_in(fold_in(PRNGKey(seed), j), i):
  the same seed gives the same samples whatever the batch size.
  """
  if num_samples < 1:
    raise ValueError(f"--num_samples must be >= 1, got {num_samples}")
  if temperature <= 0:
    raise ValueError(f"--temperature must be > 0, got {temperature}")
  if top_k < 0:
    raise ValueError(f"--top_k must be >= 0 (0 = whole vocabulary), got {top_k}")
  sources = encode_sources(run, texts)
  outputs: List[List[str]] = [[] for _ in texts]
  for j in range(num_samples):
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), j)
    for start, chunk, padded in _batches(sources, batch_size):
      tokens = np.asarray(steps.jit_sample_predict(
          run.state, padded, max_length=run.max_decode_length,
          rng=rng, temperature=jnp.float32(temperature), top_k=top_k,
          first_row=jnp.int32(start)))
      for offset, (row, source) in enumerate(zip(tokens, chunk)):
        outputs[start + offset].append(
            run.target_vocab.decode(row) if source.any() else "")
  return outputs

