"""Shared test setup: repo root on sys.path, fast compiles, small helpers."""
import gc
import os
import shutil
import sys
import tempfile

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")


# The run's cache folder: made by the first pytest process (xdist's
# controller, or the only one), which removes it at the end; its workers and
# any pytest started by a test inherit it through the environment.
_CACHE_HOME_VAR = "SEQ2SEQ_TESTS_CACHE_HOME"
_OWN_CACHE_HOME = not os.path.isdir(os.environ.get(_CACHE_HOME_VAR, ""))
if _OWN_CACHE_HOME:
  os.environ[_CACHE_HOME_VAR] = tempfile.mkdtemp(prefix="seq2seq_jax_tests_")

# Trainers keep JAX's compilation cache under $XDG_CACHE_HOME by default
# (seq2seq_jax/train.py). The trainers the tests start share one for the
# run, outside the home directory, and store every program in it (JAX skips
# those that compile in under a second, which every test model does), so the
# many tests that train the same small model load its steps instead of
# compiling them again: the same executables, so the same numbers.
os.environ["XDG_CACHE_HOME"] = os.environ[_CACHE_HOME_VAR]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
# The tests' own processes too: each training run in a test builds a new
# optimizer, so JAX's in-memory cache misses and the same step would compile
# again for every run of a module.
jax.config.update("jax_compilation_cache_dir", os.path.join(
    os.environ["XDG_CACHE_HOME"], "seq2seq_jax", "compilation"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

# A two-sentence batch for the model and attention tests: row 1 is padded.
SOURCE = np.array([[5, 6, 7, 8], [9, 4, 0, 0]], np.int32)
TARGET = np.array([[1, 5, 6, 7], [1, 8, 9, 0]], np.int32)


def tiny_model(cell="lstm", bidirectional=False, bridge="copy", layers=2,
               decoder_hidden_size=0, attention="none", input_feeding=False):
  """A Seq2Seq small enough to compile in a second, for SOURCE and TARGET."""
  from seq2seq_jax.models.seq2seq import Seq2Seq  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.settings import ModelSettings  # pylint: disable=g-import-not-at-top
  settings = ModelSettings(cell=cell, num_layers=layers, embedding_size=8,
                           hidden_size=12, decoder_hidden_size=decoder_hidden_size,
                           bidirectional=bidirectional, bridge=bridge, dropout=0.0,
                           attention=attention, input_feeding=input_feeding)
  return Seq2Seq(settings, source_vocab_size=15, target_vocab_size=17)


WORDS = "ein zwei drei vier fünf sechs sieben acht neun zehn Hund Katze".split()
ENGLISH = "one two three four five six seven eight nine ten dog cat".split()


def tiny_multi30k(directory):
  """Word-for-word German -> English, 300 / 20 / 40 lines."""
  os.makedirs(directory)
  for stem, count, seed in [("train", 300, 0), ("val", 20, 1),
                            ("test_2016_flickr", 40, 2)]:
    de, en = [], []
    for i in range(count):
      picks = [(i * 7 + seed * 3 + k * 5) % len(WORDS)
               for k in range(2 + (i + seed) % 4)]
      de.append(" ".join(WORDS[p] for p in picks) + " .")
      en.append(" ".join(ENGLISH[p] for p in picks) + " .")
    for language, lines in (("de", de), ("en", en)):
      with open(os.path.join(directory, f"{stem}.{language}"), "w",
                encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
  return directory


def tiny_multi30k_config(root, steps=60):
  """configs/multi30k.py on tiny_multi30k(ROOT/data), sized for a test: a
  one-layer 32-unit model trained `steps` steps, data prepared in ROOT/tfds.
  Returns an unlocked config; the caller may change the model further."""
  from configs import multi30k  # pylint: disable=g-import-not-at-top
  config = multi30k.get_config()
  config.data.path = os.path.relpath(tiny_multi30k(os.path.join(root, "data")))
  config.data.vocab.min_count = 1
  config.data.tfds_data_dir = os.path.join(root, "tfds")
  config.model.num_layers = 1
  config.model.hidden_size = 32
  config.model.embedding_size = 16
  config.model.dropout = 0.0
  config.train.num_steps = steps
  config.train.batch_size = 32
  config.train.warmup_steps = 5
  config.train.eval_every = steps
  config.train.checkpoint_every = steps
  config.train.eval_batch_size = 20
  config.train.eval_decode_sentences = 0
  config.decode.max_length = 10
  return config


def pytest_unconfigure(config):
  del config
  if _OWN_CACHE_HOME:
    shutil.rmtree(os.environ[_CACHE_HOME_VAR], ignore_errors=True)


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: end-to-end runs (tens of seconds); CI runs them too")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Drops every compiled program after each test module.

  Each XLA:CPU executable holds about ten memory mappings until JAX lets it
  go; a whole test session compiles thousands of programs, and past the
  kernel's limit of mappings per process (vm.max_map_count, 65,530) the next
  compile crashes. Tests within a module still share their compilations.
  """
  yield
  jax.clear_caches()
  gc.collect()


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  """One TFDS data dir for the whole session, so each dataset builds once."""
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def smoke_config(tfds_dir):
  """The smoke config pointed at the session's TFDS dir (unlocked copy)."""
  from configs import smoke  # pylint: disable=g-import-not-at-top
  config = smoke.get_config()
  config.data.tfds_data_dir = tfds_dir
  return config


# Tests compile many small programs; XLA's optimisation passes dominate their
# run time and change no result a test checks (tests compare runs made under
# the same setting). tests/test_optimized_gradients.py reruns the gradient
# tests with them on (OPTIMIZED_ENV=1), as training compiles.
OPTIMIZED_ENV = "SEQ2SEQ_TESTS_OPTIMIZED"
if os.environ.get(OPTIMIZED_ENV) != "1":
  jax.config.update("jax_disable_most_optimizations", True)
