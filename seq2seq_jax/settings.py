"""Every config key, declared once: default, meaning, check and resume rule.

A key is one `option(...)` field of a frozen dataclass below. From these
declarations come the ConfigDict that configs/default.py returns, the typed
`Settings` the code reads (the ConfigDict is read here and nowhere else), the
start-up validation (a wrong value fails with the option's name before
anything compiles), which keys may change when a workdir is resumed, how a
workdir written before a key existed is read, and the reference table in
docs/configuration.md. Adding a key means adding one field here and using it.
"""
import dataclasses
from typing import Any, Dict, Iterator, Tuple

import ml_collections

from seq2seq_jax import options
from seq2seq_jax.data_settings import (BUCKETINGS, DataSettings,  # pylint: disable=unused-import
                                       SyntheticSettings, VocabSettings)
from seq2seq_jax.models.attention import KINDS as ATTENTIONS
from seq2seq_jax.models.cells import CELLS
from seq2seq_jax.models.recurrent import IMPLEMENTATIONS as RECURRENCES
from seq2seq_jax.options import (ConfigError, at_least_zero, between, one_of,
                                 option, positive, section)

BRIDGES = ("copy", "linear", "zero")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "linear", "rsqrt")
DTYPES = ("float32", "bfloat16")
TYINGS = ("none", "decoder", "all")


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  cell: str = option("lstm", "`lstm`, `gru` or `rnn` (tanh)",
                     check=one_of(CELLS))
  num_layers: int = option(1, "stacked layers in encoder and decoder",
                           check=positive)
  embedding_size: int = option(64, "token embedding size", check=positive)
  hidden_size: int = option(128, "encoder state size per direction",
                            check=positive)
  decoder_hidden_size: int = option(
      0, "decoder state size; 0 = `hidden_size`",
      check=at_least_zero("0 = automatic"))
  bidirectional: bool = option(
      False, "add a right-to-left encoder layer per level")
  bridge: str = option(
      "copy", "encoder final state to decoder initial state: `copy` (sizes "
      "must match), `linear`, `zero`", check=one_of(BRIDGES))
  dropout: float = option(
      0.0, "on embeddings, between layers, before the output layer",
      check=between(0, 1, high_open=True))
  attention: str = option(
      "none", "`none`, `bahdanau`, `luong_dot`, `luong_general`, "
      "`luong_concat`", check=one_of(ATTENTIONS))
  input_feeding: bool = option(
      False, "Luong input feeding (`luong_*` attention only)")
  recurrence: str = option(
      "fused", "`fused`: `lax.scan` with a hand-written backward pass "
      "(`models/fused_recurrence.py`); `scan`: `nn.scan` differentiated by "
      "JAX; `cudnn`: LSTM through cuDNN on CUDA GPUs. Same function and "
      "parameters", check=one_of(RECURRENCES), may_change_on_resume=True,
      absent_means="scan")
  tie_embeddings: str = option(
      "none", "`decoder`: the decoder's input embedding is also the output "
      "layer's matrix (Press & Wolf 2017), reached through a linear "
      "projection where the readout size differs from `embedding_size`; "
      "`all`: the encoder's too (needs `data.vocab.shared`); `none`: three "
      "matrices", check=one_of(TYINGS), absent_means="none")
  remat: bool = option(
      False, "recompute the recurrence in the backward pass: less memory on "
      "long sequences, more time (see [performance.md](performance.md))",
      may_change_on_resume=True, absent_means=False)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  num_steps: int = option(12_000, "optimizer steps in the whole run",
                          check=positive, may_change_on_resume=True)
  batch_size: int = option(128, "sentences per batch", check=positive)
  batch_tokens: int = option(
      0, "> 0: batch by a token budget (rows x padded length), one shape per "
      "length bucket (`data.bucketing`); `batch_size` is then unused",
      check=at_least_zero("0 = batch by sentences"), absent_means=0)
  dtype: str = option(
      "float32", "compute dtype; `bfloat16` computes in bf16 (for GPU/TPU) "
      "with float32 parameters, gradients and optimizer state",
      check=one_of(DTYPES), absent_means="float32")
  optimizer: str = option("adam", "`adam` or `adamw` (`train.weight_decay`)",
                          check=one_of(OPTIMIZERS))
  learning_rate: float = option(6e-3, "peak learning rate", check=positive)
  lr_schedule: str = option(
      "cosine", "after a linear warm-up: `constant`, `cosine`, `linear` or "
      "`rsqrt` decay", check=one_of(LR_SCHEDULES))
  warmup_steps: int = option(100, "linear warm-up steps",
                             check=at_least_zero())
  schedule_steps: int = option(
      0, "the step where `cosine`/`linear` decay ends (0 = `num_steps`); "
      "after it the rate stays at 1% of the peak. Set it to the original "
      "`num_steps` to extend a finished run at its final rate",
      check=at_least_zero("0 = train.num_steps"),
      # Checked through the schedule it implies (workdir.schedule_horizon_error).
      may_change_on_resume=True, absent_means=0)
  weight_decay: float = option(0.0, "decoupled weight decay (`adamw` only)",
                               check=at_least_zero())
  grad_clip_norm: float = option(1.0, "global-norm clipping (0 = off)",
                                 check=at_least_zero("0 disables"))
  label_smoothing: float = option(
      0.0, "training loss only; reported loss and perplexity are unsmoothed",
      check=between(0, 1, high_open=True))
  teacher_forcing: float = option(
      1.0, "probability of feeding the gold token (below 1: scheduled "
      "sampling)", check=between(0, 1, what="a probability "))
  max_consecutive_nonfinite: int = option(
      10, "skipped non-finite updates in a row before stopping with an error",
      check=positive, may_change_on_resume=True)
  max_steps_per_run: int = option(
      0, "stop (with a checkpoint) after this many steps in one invocation; "
      "splits a long run into resumable segments",
      check=at_least_zero("0 = no limit"), may_change_on_resume=True)
  log_every: int = option(200, "steps between training-loss lines",
                          check=positive, may_change_on_resume=True)
  eval_every: int = option(1_000, "steps between validations",
                           check=positive, may_change_on_resume=True)
  checkpoint_every: int = option(2_000, "steps between checkpoints",
                                 check=positive, may_change_on_resume=True)
  keep_checkpoints: int = option(3, "newest checkpoints kept",
                                 check=positive, may_change_on_resume=True)
  eval_batch_size: int = option(500, "sentences per evaluation batch",
                                check=positive, may_change_on_resume=True)
  num_eval_samples: int = option(
      3, "decoded examples logged per evaluation", check=at_least_zero(),
      may_change_on_resume=True)
  eval_decode_sentences: int = option(
      0, "validation sentences decoded for BLEU at each evaluation",
      check=at_least_zero("0 = all"), may_change_on_resume=True)


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
  max_length: int = option(
      0, "most tokens decoded per sentence (0 = the longest target of the "
      "data)", check=at_least_zero("0 = automatic"),
      may_change_on_resume=True)


@dataclasses.dataclass(frozen=True)
class Settings:
  seed: int = option(
      0, "parameter init, dropout, shuffling, scheduled sampling (the "
      "synthetic dataset has its own, `data.synthetic.seed`)")
  model: ModelSettings = section(ModelSettings)
  data: DataSettings = section(DataSettings)
  train: TrainSettings = section(TrainSettings)
  decode: DecodeSettings = section(DecodeSettings)


def keys() -> Iterator[Tuple[str, Any]]:
  """(dotted name, dataclass field) of every key, in declaration order."""
  return options.keys(Settings)


MAY_CHANGE_ON_RESUME = frozenset(
    name for name, f in keys() if f.metadata["may_change_on_resume"])


def default_config() -> ml_collections.ConfigDict:
  """Every key at its default, locked: a misspelt override is an error."""
  config = ml_collections.ConfigDict(to_dict(Settings()))
  config.lock()
  return config


def from_dict(raw: Dict[str, Any]) -> Settings:
  """Settings from a plain dict (e.g. a workdir's config.json), unvalidated:
  a finished run is reloaded even where its data paths no longer exist."""
  return options.build(Settings, upgrade(raw))


def upgrade(raw: Dict[str, Any]) -> Dict[str, Any]:
  """A workdir's config dict as this version reads it (`options.upgrade`)."""
  return options.upgrade(Settings, raw)


def reference_table() -> str:
  """The Markdown table of every key, as docs/configuration.md shows it."""
  return options.reference_table(Settings)


def from_config(config: ml_collections.ConfigDict) -> Settings:
  """Reads and validates a config; raises ConfigError naming the bad option."""
  settings = from_dict(config.to_dict())
  validate(settings)
  return settings


def to_dict(settings: Settings) -> dict:
  return dataclasses.asdict(settings)


def _require(condition: bool, option_name: str, message: str):
  if not condition:
    raise ConfigError(f"config.{option_name}: {message}")


def _value(settings: Settings, dotted: str):
  value = settings
  for name in dotted.split("."):
    value = getattr(value, name)
  return value


def validate(s: Settings) -> None:
  """Each key's own check, then the rules that tie keys together."""
  for name, f in keys():
    check = f.metadata["check"]
    message = check(_value(s, name)) if check else None
    _require(message is None, name, message or "")
  _check_model(s.model)
  _check_training(s)
  from seq2seq_jax.data import datasets  # pylint: disable=g-import-not-at-top
  try:
    datasets.validate(s.data)
  except ValueError as e:
    raise ConfigError(str(e)) from None


def _check_model(m: ModelSettings) -> None:
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
  _require(m.bridge != "copy" or decoder_hidden_size(m) == memory_size,
           "model.bridge",
           f"'copy' needs the decoder size ({decoder_hidden_size(m)}) to equal "
           f"the encoder state size ({memory_size}"
           f"{', bidirectional' if m.bidirectional else ''}); "
           "use bridge='linear' or change model.decoder_hidden_size")


def _check_training(s: Settings) -> None:
  _require(s.model.tie_embeddings != "all" or s.data.vocab.shared,
           "model.tie_embeddings", "'all' shares one matrix between source "
           "and target, so it needs one vocabulary: set "
           "--config.data.vocab.shared=True (or tie only the 'decoder')")
  t = s.train
  _require(not t.batch_tokens or s.data.bucketing != "multiple"
           or s.data.pad_multiple > 0, "train.batch_tokens",
           "needs length buckets: set config.data.pad_multiple > 0 or "
           "config.data.bucketing='fitted'")
  _require(not t.weight_decay or t.optimizer == "adamw", "train.weight_decay",
           f"applies to train.optimizer=adamw only (train.optimizer is "
           f"{t.optimizer!r}); set --config.train.optimizer=adamw or drop it")


def decoder_hidden_size(m: ModelSettings) -> int:
  """The decoder's state size: explicit, or the encoder's per-direction size."""
  return m.decoder_hidden_size or m.hidden_size


def readout_size(m: ModelSettings) -> int:
  """The size of the vector the output layer projects: the top decoder
  state, joined by the attention context under Bahdanau attention."""
  extra = encoder_output_size(m) if m.attention == "bahdanau" else 0
  return decoder_hidden_size(m) + extra


def encoder_output_size(m: ModelSettings) -> int:
  """The size of each encoder output (the attention memory) and final state:
  both directions concatenated when bidirectional."""
  return m.hidden_size * (2 if m.bidirectional else 1)


if __name__ == "__main__":
  print(reference_table(), end="")
