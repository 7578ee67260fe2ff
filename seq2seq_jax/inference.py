"""Loading a trained workdir and translating text with it.

Used by `evaluate` and `translate`: everything comes from the workdir (the
resolved config, the vocabularies, the padded shapes and a checkpoint), never
from the data or the config files, so a run can be decoded on another machine.
"""
import dataclasses
import os
from typing import List, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from seq2seq_jax import checkpointing
from seq2seq_jax import optimizer as optimizer_lib
from seq2seq_jax import settings as settings_lib
from seq2seq_jax import steps
from seq2seq_jax import workdir as workdir_lib
from seq2seq_jax.data import datasets  # pylint: disable=unused-import  (registers vocabulary kinds)
from seq2seq_jax.data import text_pairs
from seq2seq_jax.data import vocabulary
from seq2seq_jax.model import Seq2Seq

CHECKPOINTS = ("best", "latest")


@dataclasses.dataclass
class LoadedRun:
  settings: settings_lib.Settings
  state: steps.TrainState
  source_vocab: object
  target_vocab: object
  source_length: int  # longest source the model was trained on
  max_decode_length: int
  step: int


def load_run(workdir: str, checkpoint: str = "best") -> LoadedRun:
  """Restores a workdir's model from its best (or newest) checkpoint.

  'best' falls back to the newest checkpoint when no eval has run yet.
  """
  if checkpoint not in CHECKPOINTS:
    raise ValueError(f"unknown checkpoint {checkpoint!r}; valid: "
                     f"{', '.join(CHECKPOINTS)}")
  s = settings_lib.from_dict(workdir_lib.read_json(workdir,
                                                   workdir_lib.CONFIG_FILE))
  limits = workdir_lib.read_json(workdir, workdir_lib.LIMITS_FILE)
  source_vocab = vocabulary.load(os.path.join(workdir, "vocab_source.json"))
  target_vocab = vocabulary.load(os.path.join(workdir, "vocab_target.json"))
  model = Seq2Seq(s.model, source_vocab.size, target_vocab.size)
  template = steps.create_train_state(
      model, optimizer_lib.make_optimizer(s.train), steps.StepOptions.from_settings(s.train),
      jax.random.PRNGKey(0), limits["source_length"], limits["target_length"])
  restored = None
  if checkpoint == "best":
    restored = checkpointing.Checkpointer(workdir, 1, "best").restore_latest(
        template)
  if restored is None:
    restored = checkpointing.Checkpointer(
        workdir, s.train.keep_checkpoints).restore_latest(template)
  if restored is None:
    raise workdir_lib.WorkdirError(f"no checkpoint in {workdir!r} yet")
  state, _ = restored
  logging.info("restored %s checkpoint at step %d from %s", checkpoint,
               int(state.step), workdir)
  return LoadedRun(settings=s, state=state, source_vocab=source_vocab,
                   target_vocab=target_vocab,
                   source_length=limits["source_length"],
                   max_decode_length=limits["max_decode_length"],
                   step=int(state.step))


def encode_sources(run: LoadedRun, texts: Sequence[str]) -> np.ndarray:
  """Token ids [len(texts), run.source_length], reversed if the run was.

  Over-long inputs are truncated to the model's limit with a warning naming
  the line; empty inputs give an all-padding row (decoded as '').
  """
  rows = np.zeros((len(texts), run.source_length), np.int32)
  for index, text in enumerate(texts):
    if run.settings.data.preset == "tutorial":  # as the training data was
      text = text_pairs.normalize_tutorial(text)
    ids = run.source_vocab.encode(text)
    if len(ids) > run.source_length:
      logging.warning("input %d has %d tokens; truncated to the model's limit "
                      "of %d", index + 1, len(ids), run.source_length)
      ids = ids[:run.source_length]
    if run.settings.data.reverse_source:
      ids = ids[::-1]
    rows[index, :len(ids)] = ids
  return rows


def translate(run: LoadedRun, texts: Sequence[str], *, batch_size: int = 64,
              beam_size: int = 1, alpha: float = 0.6,
              nbest: int = 1) -> List[List[str]]:
  """Translations of each input: greedy (beam_size 1) or beam search.

  Returns:
    per input, its `nbest` hypotheses, best first (empty input -> [''] * nbest).
  """
  if beam_size < 1 or not 1 <= nbest <= beam_size:
    raise ValueError(f"need beam_size >= 1 and 1 <= nbest <= beam_size, got "
                     f"beam_size={beam_size}, nbest={nbest}")
  outputs: List[List[str]] = []
  sources = encode_sources(run, texts)
  for start in range(0, len(texts), batch_size):
    chunk = sources[start:start + batch_size]
    padded = np.zeros((batch_size, run.source_length), np.int32)
    padded[:len(chunk)] = chunk  # one shape: compiled once
    padded = jnp.asarray(padded)
    if beam_size == 1:
      tokens = np.asarray(steps.jit_greedy_predict(
          run.state, padded, max_length=run.max_decode_length))[:, None]
    else:
      tokens, _ = steps.jit_beam_predict(
          run.state, padded, max_length=run.max_decode_length,
          beam_size=beam_size, alpha=alpha, nbest=nbest)
      tokens = np.asarray(tokens)
    for rows, source in zip(tokens, chunk):
      outputs.append([run.target_vocab.decode(row) if source.any() else ""
                      for row in rows])
  return outputs
