"""A tab-separated corpus through training, evaluate and translate."""
import json
import os
import subprocess
import sys

import pytest

from configs import eng_fra_tutorial
from seq2seq_jax.training import loop
from seq2seq_jax.training import reporting
from seq2seq_jax.training import workdir as workdir_lib
from tests.conftest import ROOT, SHARED_DATA

ENG_FRA = os.path.join(SHARED_DATA, "eng-fra", "eng-fra.txt")
pytestmark = pytest.mark.skipif(not os.path.exists(ENG_FRA),
                                reason="needs ../shared/data")


def _corpus(path, lines=4000, skip=0):
  with open(ENG_FRA, encoding="utf-8") as f:
    chosen = f.readlines()[skip:skip + lines]
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(chosen)
  return str(path)


def _config(path, tfds_dir):
  config = eng_fra_tutorial.get_config()
  config.data.path = path
  config.data.preset = "none"
  config.data.max_words = 6
  config.data.tfds_data_dir = tfds_dir
  config.model.hidden_size = 32
  config.model.embedding_size = 16
  config.train.num_steps = 30
  config.train.batch_size = 32
  config.train.log_every = 10
  config.train.eval_every = 30
  config.train.checkpoint_every = 30
  config.train.eval_batch_size = 64
  return config


def _cli(module, *args, stdin=None):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                        input=stdin, capture_output=True, timeout=300,
                        check=False)


@pytest.mark.slow
def test_train_evaluate_translate(tmp_path, tfds_dir):
  path = _corpus(tmp_path / "pairs.txt")
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(_config(path, tfds_dir), workdir)
  records = reporting.read(workdir)
  test_line = [r for r in records if r["split"] == "test"][-1]
  for key in ("bleu", "chrf", "bleu_lowercase", "perplexity"):
    assert key in test_line

  result = _cli("seq2seq_jax.evaluate", f"--workdir={workdir}", "--split=test")
  assert result.returncode == 0, result.stderr.decode()[-2000:]
  scores = json.loads(result.stdout)
  # The best checkpoint is the final one here, so the scores must agree.
  assert scores["bleu"] == pytest.approx(test_line["bleu"])
  assert scores["chrf"] == pytest.approx(test_line["chrf"])
  with open(os.path.join(workdir, "hypotheses_test.txt"), encoding="utf-8") as f:
    assert len(f.readlines()) == scores["sentences"]

  result = _cli("seq2seq_jax.translate", f"--workdir={workdir}",
                stdin=b"je suis grand .\n\n\xff\xfe pas utf8\n" + b"mot " * 300
                + b"\n")
  assert result.returncode == 0, result.stderr.decode()[-2000:]
  lines = result.stdout.decode().split("\n")[:-1]
  assert len(lines) == 4
  assert lines[1] == ""  # empty in, empty out
  assert "truncated to the model's limit" in result.stderr.decode()

  result = _cli("seq2seq_jax.translate", f"--workdir={workdir}",
                "--beam_size=3", "--nbest=2", "je suis grand .")
  assert result.returncode == 0, result.stderr.decode()[-2000:]
  assert len(result.stdout.decode().strip("\n").split("\t")) == 2


@pytest.mark.slow
def test_resuming_on_other_data_is_refused(tmp_path, tfds_dir):
  path = _corpus(tmp_path / "pairs.txt")
  workdir = str(tmp_path / "run")
  config = _config(path, tfds_dir)
  config.train.num_steps = 5
  loop.train_and_evaluate(config, workdir)
  _corpus(tmp_path / "pairs.txt", skip=20000)  # same path, other sentences
  config.train.num_steps = 10
  with pytest.raises(workdir_lib.WorkdirError,
                     match="trained on .* but the data now prepares as"):
    loop.train_and_evaluate(config, workdir)


def test_missing_data_file_is_a_config_error(tmp_path, tfds_dir):
  config = _config(str(tmp_path / "nowhere.txt"), tfds_dir)
  from seq2seq_jax import settings  # pylint: disable=g-import-not-at-top
  with pytest.raises(settings.ConfigError, match="config.data.path"):
    settings.from_config(config)
