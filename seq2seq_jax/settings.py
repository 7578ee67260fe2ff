"""Turns the ConfigDict into frozen, typed settings, validated before any compile.

The ConfigDict is read here and nowhere else: modules take these dataclasses, so
a wrong value fails at start-up with the option's name, not deep inside a jit.
"""
import dataclasses
from typing import Any, Dict, Mapping

import ml_collections

from seq2seq_jax.attention import KINDS as ATTENTIONS
from seq2seq_jax.cells import CELLS
from seq2seq_jax.recurrent import IMPLEMENTATIONS as RECURRENCES


class ConfigError(ValueError):
  """An invalid configuration value; the message names the option."""


BRIDGES = ("copy", "linear", "zero")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "linear", "rsqrt")
DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  cell: str
  num_layers: int
  embedding_size: int
  hidden_size: int
  decoder_hidden_size: int
  bidirectional: bool
  bridge: str
  dropout: float
  attention: str
  input_feeding: bool
  # Implementation choices (same function): defaults so code that builds
  # settings directly need not name them.
  recurrence: str = "fused"
  remat: bool = False


@dataclasses.dataclass(frozen=True)
class DataSettings:
  task: str
  reverse_source: bool
  tfds_data_dir: str
  min_length: int
  max_length: int
  num_symbols: int
  num_train: int
  num_validation: int
  num_test: int
  generator_seed: int
  path: str
  tfds_name: str
  source_language: str
  target_language: str
  preset: str
  min_words: int
  max_words: int
  strict: bool
  max_rejected_fraction: float
  vocab_kind: str
  vocab_size: int
  vocab_min_count: int
  sentencepiece_model: str
  shared_vocab: bool
  pad_multiple: int


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  num_steps: int
  batch_size: int
  batch_tokens: int
  dtype: str
  optimizer: str
  learning_rate: float
  lr_schedule: str
  warmup_steps: int
  schedule_steps: int
  weight_decay: float
  grad_clip_norm: float
  label_smoothing: float
  teacher_forcing: float
  max_consecutive_nonfinite: int
  max_steps_per_run: int
  log_every: int
  eval_every: int
  checkpoint_every: int
  keep_checkpoints: int
  eval_batch_size: int
  num_eval_samples: int
  eval_decode_sentences: int


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
  max_length: int


@dataclasses.dataclass(frozen=True)
class Settings:
  seed: int
  model: ModelSettings
  data: DataSettings
  train: TrainSettings
  decode: DecodeSettings


def _build(cls, section: Mapping[str, Any], prefix: str):
  """Builds `cls` from a config section; unknown or missing keys are errors."""
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(section) - names)
  missing = sorted(names - set(section))
  if unknown:
    raise ConfigError(f"unknown config keys: {[prefix + k for k in unknown]}")
  if missing:
    raise ConfigError(f"missing config keys: {[prefix + k for k in missing]}")
  return cls(**{k: section[k] for k in names})


def _require(condition: bool, option: str, message: str):
  if not condition:
    raise ConfigError(f"config.{option}: {message}")


def _one_of(value: str, option: str, choices):
  _require(value in choices, option,
           f"unknown value {value!r}; valid: {', '.join(sorted(choices))}")


def _validate(s: Settings):
  m, d, t = s.model, s.data, s.train
  _one_of(m.cell, "model.cell", CELLS)
  _one_of(m.bridge, "model.bridge", BRIDGES)
  _one_of(m.recurrence, "model.recurrence", RECURRENCES)
  _one_of(m.attention, "model.attention", ATTENTIONS)
  if m.recurrence == "cudnn":
    import jax  # pylint: disable=g-import-not-at-top
    _require(m.cell == "lstm", "model.recurrence",
             f"'cudnn' runs LSTM layers only (jax.experimental.rnn); "
             f"model.cell is {m.cell!r}")
    _require(jax.default_backend() == "gpu", "model.recurrence",
             "'cudnn' needs a CUDA GPU (jax.experimental.rnn lowers only to "
             f"cuDNN); this backend is {jax.default_backend()!r}")
  _require(not m.input_feeding or m.attention.startswith("luong"),
           "model.input_feeding", "applies to Luong attention only "
           f"(model.attention is {m.attention!r})")
  memory_size = encoder_output_size(m)
  _require(m.attention != "luong_dot" or decoder_hidden_size(m) == memory_size,
           "model.attention", f"'luong_dot' needs the decoder size "
           f"({decoder_hidden_size(m)}) to equal the encoder output size "
           f"({memory_size}); use luong_general or set decoder_hidden_size")
  for option, value in [("model.num_layers", m.num_layers),
                        ("model.embedding_size", m.embedding_size),
                        ("model.hidden_size", m.hidden_size)]:
    _require(value > 0, option, f"must be positive, got {value}")
  _require(m.decoder_hidden_size >= 0, "model.decoder_hidden_size",
           f"must be >= 0 (0 = automatic), got {m.decoder_hidden_size}")
  _require(0.0 <= m.dropout < 1.0, "model.dropout",
           f"must be in [0, 1), got {m.dropout}")
  if m.bridge == "copy":
    encoder_state = encoder_output_size(m)
    _require(decoder_hidden_size(m) == encoder_state, "model.bridge",
             f"'copy' needs the decoder size ({decoder_hidden_size(m)}) to equal "
             f"the encoder state size ({encoder_state}"
             f"{', bidirectional' if m.bidirectional else ''}); "
             "use bridge='linear' or change model.decoder_hidden_size")

  from seq2seq_jax.data import datasets  # pylint: disable=g-import-not-at-top
  _one_of(d.task, "data.task", datasets.TASKS)
  _require(d.pad_multiple >= 0, "data.pad_multiple",
           f"must be >= 0 (0 = pad to the longest), got {d.pad_multiple}")
  try:
    datasets.validate(d)
  except ValueError as e:
    raise ConfigError(str(e)) from None

  _one_of(t.optimizer, "train.optimizer", OPTIMIZERS)
  _one_of(t.dtype, "train.dtype", DTYPES)
  _one_of(t.lr_schedule, "train.lr_schedule", LR_SCHEDULES)
  for option, value in [("train.num_steps", t.num_steps),
                        ("train.batch_size", t.batch_size),
                        ("train.log_every", t.log_every),
                        ("train.eval_every", t.eval_every),
                        ("train.checkpoint_every", t.checkpoint_every),
                        ("train.keep_checkpoints", t.keep_checkpoints),
                        ("train.eval_batch_size", t.eval_batch_size),
                        ("train.max_consecutive_nonfinite",
                         t.max_consecutive_nonfinite)]:
    _require(value > 0, option, f"must be positive, got {value}")
  _require(t.batch_tokens >= 0, "train.batch_tokens",
           f"must be >= 0 (0 = batch by sentences), got {t.batch_tokens}")
  _require(not t.batch_tokens or d.pad_multiple > 0, "train.batch_tokens",
           "needs length buckets: set config.data.pad_multiple > 0")
  _require(t.max_steps_per_run >= 0, "train.max_steps_per_run",
           f"must be >= 0 (0 = no limit), got {t.max_steps_per_run}")
  _require(t.learning_rate > 0, "train.learning_rate",
           f"must be positive, got {t.learning_rate}")
  _require(t.warmup_steps >= 0, "train.warmup_steps",
           f"must be >= 0, got {t.warmup_steps}")
  _require(t.schedule_steps >= 0, "train.schedule_steps",
           f"must be >= 0 (0 = train.num_steps), got {t.schedule_steps}")
  _require(0.0 <= d.max_rejected_fraction <= 1.0, "data.max_rejected_fraction",
           f"must be in [0, 1], got {d.max_rejected_fraction}")
  _require(t.weight_decay >= 0, "train.weight_decay",
           f"must be >= 0, got {t.weight_decay}")
  _require(not t.weight_decay or t.optimizer == "adamw", "train.weight_decay",
           f"applies to train.optimizer=adamw only (train.optimizer is "
           f"{t.optimizer!r}); set --config.train.optimizer=adamw or drop it")
  _require(t.grad_clip_norm >= 0, "train.grad_clip_norm",
           f"must be >= 0 (0 disables), got {t.grad_clip_norm}")
  _require(0.0 <= t.label_smoothing < 1.0, "train.label_smoothing",
           f"must be in [0, 1), got {t.label_smoothing}")
  _require(0.0 <= t.teacher_forcing <= 1.0, "train.teacher_forcing",
           f"must be a probability in [0, 1], got {t.teacher_forcing}")
  _require(t.num_eval_samples >= 0, "train.num_eval_samples",
           f"must be >= 0, got {t.num_eval_samples}")
  _require(t.eval_decode_sentences >= 0, "train.eval_decode_sentences",
           f"must be >= 0 (0 = all), got {t.eval_decode_sentences}")
  _require(s.decode.max_length >= 0, "decode.max_length",
           f"must be >= 0 (0 = automatic), got {s.decode.max_length}")


def decoder_hidden_size(m: ModelSettings) -> int:
  """The decoder's state size: explicit, or the encoder's per-direction size."""
  return m.decoder_hidden_size or m.hidden_size


def encoder_output_size(m: ModelSettings) -> int:
  """The size of each encoder output (the attention memory) and final state:
  both directions concatenated when bidirectional."""
  return m.hidden_size * (2 if m.bidirectional else 1)


def from_config(config: ml_collections.ConfigDict) -> Settings:
  """Reads and validates a config; raises ConfigError naming the bad option."""
  settings = from_dict(config.to_dict())
  _validate(settings)
  return settings


# Keys added after workdirs were first written, with the value that means
# "old behaviour": a config.json without them is read as having these.
ADDED_KEYS = {
    ("train", "batch_tokens"): 0,
    ("model", "recurrence"): "scan",
    ("model", "remat"): False,
    ("train", "dtype"): "float32",
    ("train", "schedule_steps"): 0,
    ("data", "max_rejected_fraction"): 1.0,
}


def with_added_keys(raw: Dict[str, Any]) -> Dict[str, Any]:
  """A copy of a config dict with absent ADDED_KEYS set to their defaults."""
  raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
  for (section, key), default in ADDED_KEYS.items():
    if isinstance(raw.get(section), dict):
      raw[section].setdefault(key, default)
  return raw


def from_dict(raw: Dict[str, Any]) -> Settings:
  """Settings from a plain dict (e.g. a workdir's config.json), unvalidated:
  a finished run is reloaded even where its data paths no longer exist."""
  raw = with_added_keys(raw)
  top = {"seed", "model", "data", "train", "decode"}
  unknown = sorted(set(raw) - top)
  if unknown:
    raise ConfigError(f"unknown config keys: {unknown}")
  missing = sorted(top - set(raw))
  if missing:
    raise ConfigError(f"missing config keys: {missing}")
  settings = Settings(
      seed=raw["seed"],
      model=_build(ModelSettings, raw["model"], "model."),
      data=_build(DataSettings, raw["data"], "data."),
      train=_build(TrainSettings, raw["train"], "train."),
      decode=_build(DecodeSettings, raw["decode"], "decode."),
  )
  return settings


def to_dict(settings: Settings) -> dict:
  return dataclasses.asdict(settings)
