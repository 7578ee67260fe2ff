"""The benchmark's cases: a model and the shape of its batch, and the random
batch each one times (see benchmarks/benchmark.py for the method)."""
import dataclasses
import importlib.util
import os
from typing import Any, Dict, Tuple

import numpy as np

from configs import default
from seq2seq_jax import settings as settings_lib
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_WORD_ID = 4  # ids below are PAD, BOS, EOS, UNK

STANDARD_MODEL = dict(cell="lstm", num_layers=1, embedding_size=256,
                      hidden_size=512, dropout=0.0, attention="none")


@dataclasses.dataclass(frozen=True)
class Case:
  """A model and the shape of its batch.

  Attributes:
    model: config.model overrides over STANDARD_MODEL, or over `config_file`'s
      model section when that is set.
    config_file: a config file (relative to the repo root) whose `model`
      section is the starting point instead of STANDARD_MODEL.
    source_lengths, target_lengths: inclusive ranges of real lengths.
    pad_multiple: each side is padded to a multiple of this.
  """
  model: Dict[str, Any] = dataclasses.field(default_factory=dict)
  config_file: str = ""
  source_vocab_size: int = 8000
  target_vocab_size: int = 8000
  batch_size: int = 64
  source_lengths: Tuple[int, int] = (20, 20)
  target_lengths: Tuple[int, int] = (20, 20)
  pad_multiple: int = 1


CASES = {
    "lstm_h512": Case(),
    "gru_h512": Case(model={"cell": "gru"}),
    "lstm_h1024": Case(model={"hidden_size": 1024}),
    "lstm_h512_bahdanau": Case(model={"attention": "bahdanau"}),
    "multi30k_padded": Case(config_file="configs/multi30k.py",
                            source_vocab_size=8060, target_vocab_size=6204,
                            batch_size=128, source_lengths=(8, 30),
                            target_lengths=(9, 32), pad_multiple=8),
}
# Not run by default (--cases=NAME): the autodiff recurrence for comparison,
# and long sequences for the memory/speed trade-off of model.remat (the
# recurrence's stored activations grow with length; a small vocabulary keeps
# the output layer from dominating memory).
_LONG = dict(batch_size=32, source_lengths=(200, 200),
             target_lengths=(200, 200), source_vocab_size=1000,
             target_vocab_size=1000)
EXTRA_CASES = {
    "lstm_h512_scan": Case(model={"recurrence": "scan"}),
    "gru_h512_scan": Case(model={"cell": "gru", "recurrence": "scan"}),
    "lstm_h1024_scan": Case(model={"hidden_size": 1024, "recurrence": "scan"}),
    # cuDNN LSTM layers; CUDA GPUs only (settings refuse it elsewhere).
    "lstm_h512_cudnn": Case(model={"recurrence": "cudnn"}),
    "long_fused": Case(**_LONG),
    "long_fused_remat": Case(model={"remat": True}, **_LONG),
    "long_scan": Case(model={"recurrence": "scan"}, **_LONG),
    "long_scan_remat": Case(model={"recurrence": "scan", "remat": True},
                            **_LONG),
}
CONFIG_CASE = "config"


def get_case(name: str, config_file: str = "") -> Case:
  """The registered case `name`; unknown names list the valid ones."""
  if name == CONFIG_CASE:
    if not config_file:
      raise ValueError(f"case {CONFIG_CASE!r} needs --config=FILE")
    return Case(config_file=config_file)
  try:
    return {**CASES, **EXTRA_CASES}[name]
  except KeyError:
    raise ValueError(f"unknown case {name!r}; valid: "
                     f"{', '.join(sorted([*CASES, *EXTRA_CASES, CONFIG_CASE]))}"
                     ) from None


def shrink(case: Case) -> Case:
  """The --tiny version of a case: same structure, sizes for a test."""
  def sixteenth(size):
    return max(size // 16, 8) if size else 0
  model = model_settings(case)
  small = {key: sixteenth(getattr(model, key)) for key in
           ("embedding_size", "hidden_size", "decoder_hidden_size")}
  padded = case.source_lengths[0] != case.source_lengths[1]
  lengths = (3, 6) if padded else (6, 6)
  return dataclasses.replace(
      case, model={**case.model, **small}, source_vocab_size=100,
      target_vocab_size=100, batch_size=8, source_lengths=lengths,
      target_lengths=lengths, pad_multiple=2 if padded else 1)


def _load_config(path: str):
  # Relative paths are from the repo root (children run there).
  spec = importlib.util.spec_from_file_location(
      "benchmark_config", os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def settings_for(case: Case) -> settings_lib.Settings:
  """Validated settings: base config, the case's model, base's optimizer.

  The data section stays the base synthetic task, whose validation needs no
  files (a text task's data.path would be checked).
  """
  config = default.get_config()
  model = (_load_config(case.config_file).model.to_dict()
           if case.config_file else STANDARD_MODEL)
  for key, value in {**model, **case.model}.items():
    config.model[key] = value  # locked: a misspelt key is an error
  return settings_lib.from_config(config)


def model_settings(case: Case) -> settings_lib.ModelSettings:
  return settings_for(case).model


def make_batch(case: Case, seed: int = 0) -> Dict[str, np.ndarray]:
  """A random batch with the case's lengths (see the module docstring).

  Returns:
    source [B, S], target_inputs [B, T] (BOS + outputs shifted right),
    target_outputs [B, T] (words then EOS), int32, 0 = padding.
  """
  rng = np.random.default_rng(seed)
  b, multiple = case.batch_size, case.pad_multiple

  def padded(lengths_range, vocab):
    lengths = rng.integers(lengths_range[0], lengths_range[1] + 1, size=b)
    width = -(-int(lengths.max()) // multiple) * multiple
    mask = np.arange(width)[None, :] < lengths[:, None]
    ids = rng.integers(FIRST_WORD_ID, vocab, size=(b, width))
    return np.where(mask, ids, 0).astype(np.int32), lengths

  source, _ = padded(case.source_lengths, case.source_vocab_size)
  outputs, lengths = padded(case.target_lengths, case.target_vocab_size)
  outputs[np.arange(b), lengths - 1] = EOS_ID
  inputs = np.concatenate([np.full((b, 1), BOS_ID, np.int32), outputs[:, :-1]],
                          axis=1)
  inputs = np.where(outputs != 0, inputs, 0).astype(np.int32)
  return {"source": source, "target_inputs": inputs, "target_outputs": outputs}
