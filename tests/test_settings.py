"""Config files, command-line overrides and start-up validation."""
import importlib
import os
import subprocess
import sys

import pytest

from configs import default, smoke
from seq2seq_jax import settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("module", [default, smoke])
def test_shipped_configs_are_valid(module):
  s = settings.from_config(module.get_config())
  assert s.data.task == "addition"


def test_default_config_is_locked():
  config = default.get_config()
  with pytest.raises(AttributeError):
    config.model.celll = "gru"  # a typo must not create a new key


@pytest.mark.parametrize("option,value,message", [
    ("model.cell", "transformer", "valid: gru, lstm, rnn"),
    ("model.hidden_size", -5, "must be positive"),
    ("model.bridge", "magic", "valid: copy, linear, zero"),
    ("model.dropout", 1.5, "model.dropout"),
    ("data.task", "multiply", "data.task"),
    ("data.synthetic.min_length", 0, "empty sequences"),
    ("train.teacher_forcing", 1.5, "probability"),
    ("train.num_steps", 0, "train.num_steps"),
    ("train.batch_tokens", -1, "train.batch_tokens"),
    ("data.bucketing", "sorted", "valid: fitted, multiple, quantile"),
    ("train.weight_decay", 0.01, "applies to train.optimizer=adamw only"),
    ("train.label_smoothing", 1.0, r"must be in \[0, 1\)"),
    ("decode.max_length", -1, "decode.max_length"),
])
def test_invalid_values_name_the_option(option, value, message):
  config = default.get_config()
  *sections, key = option.split(".")
  node = config
  for name in sections:
    node = node[name]
  node[key] = value
  with pytest.raises(settings.ConfigError, match=message):
    settings.from_config(config)


def test_token_budget_with_multiple_buckets_needs_a_multiple():
  config = default.get_config()
  config.train.batch_tokens, config.data.bucketing = 512, "multiple"
  with pytest.raises(settings.ConfigError,
                     match="set config.data.pad_multiple > 0"):
    settings.from_config(config)
  config.data.bucketing = "quantile"  # buckets of its own
  assert settings.from_config(config).train.batch_tokens == 512


def test_weight_decay_is_accepted_with_adamw():
  config = default.get_config()
  config.train.optimizer, config.train.weight_decay = "adamw", 0.01
  assert settings.from_config(config).train.weight_decay == 0.01


def test_copy_bridge_needs_matching_sizes():
  config = default.get_config()
  config.model.bidirectional = True
  with pytest.raises(settings.ConfigError, match="'copy' needs"):
    settings.from_config(config)
  config.model.bridge = "linear"
  assert settings.from_config(config).model.bidirectional
  config.model.bidirectional = False
  config.model.bridge = "copy"
  config.model.decoder_hidden_size = 7
  with pytest.raises(settings.ConfigError, match="encoder state size"):
    settings.from_config(config)


def _main(*args, tmp_path):
  return subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.train", "--config=configs/smoke.py",
       f"--workdir={tmp_path}/run", *args],
      cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_command_line_override_is_validated_before_compiling(tmp_path):
  result = _main("--config.model.cell=banana", tmp_path=tmp_path)
  assert result.returncode == 2
  assert "config.model.cell: unknown value 'banana'; valid: gru, lstm, rnn" in (
      result.stderr)
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_command_line_typo_is_an_error(tmp_path):
  result = _main("--config.model.celll=gru", tmp_path=tmp_path)
  assert result.returncode != 0
  assert "celll" in result.stderr


@pytest.mark.parametrize("name,data_path", [
    ("eng_fra_tutorial", "eng-fra/eng-fra.txt"),
    ("multi30k", "multi30k"),
    ("multi30k_attention", "multi30k"),
])
def test_shipped_translation_configs_are_valid(name, data_path):
  from tests.conftest import SHARED_DATA  # pylint: disable=g-import-not-at-top
  path = os.path.join(SHARED_DATA, data_path)
  if not os.path.exists(path):
    pytest.skip(f"{path} not present")
  config = importlib.import_module(f"configs.{name}").get_config()
  config.data.path = path
  s = settings.from_config(config)
  assert s.data.task in ("tsv", "multi30k")


def test_reference_in_the_docs_is_generated_from_the_declarations():
  with open(os.path.join(ROOT, "docs", "configuration.md"),
            encoding="utf-8") as f:
    docs = f.read()
  assert settings.reference_table() in docs, (
      "docs/configuration.md is stale: regenerate its table with "
      "`python -m seq2seq_jax.settings`")


def test_every_key_is_declared_with_a_meaning_and_defaults_pass_checks():
  names = [name for name, _ in settings.keys()]
  assert len(names) == len(set(names))
  assert "data.synthetic.max_length" in names and "decode.max_length" in names
  for name, field in settings.keys():
    assert field.metadata["doc"], name
  settings.validate(settings.Settings())  # the defaults are valid


def test_a_workdir_config_from_before_the_nested_sections_reads_the_same():
  old = settings.to_dict(settings.from_config(smoke.get_config()))
  flat = dict(old)
  flat["data"] = {k: v for k, v in old["data"].items()
                  if k not in ("synthetic", "vocab")}
  flat["data"].update(min_length=1, max_length=2, num_symbols=10,
                      num_train=2_000, num_validation=200, num_test=200,
                      generator_seed=0, vocab_kind="word", vocab_size=0,
                      vocab_min_count=1, sentencepiece_model="unigram",
                      shared_vocab=False)
  del flat["train"]["dtype"]  # a key added later: read as its old behaviour
  assert settings.from_dict(flat) == settings.from_dict(old)
