"""An exported model translates in a fresh process without Flax or TFDS,
exactly as `translate` does, greedy and beam search."""
import json
import os
import subprocess
import sys

import pytest

from seq2seq_jax.training import loop
from tests.conftest import ROOT, tiny_multi30k_config

SENTENCES = [
    "ein zwei drei .",
    "",
    "Hund Katze sieben acht neun zehn ein zwei drei vier fünf sechs .",
    "zehn .",
    "ein unbekanntes Wort und Hund .",
] + [f"{word} Hund ." for word in "ein zwei drei vier fünf".split()] * 14
# 75 sentences: more than one batch of 64, of mixed lengths, one empty, one
# beyond the longest training source (truncated), one with unknown words.

# Runs in a fresh interpreter: translates, then reports what was imported.
SERVE = """
import json, sys
from seq2seq_jax.serving import Translator
translator = Translator(sys.argv[1])
sentences = json.loads(sys.stdin.read())
out = {"greedy": translator.translate(sentences),
       "beam": translator.translate(sentences, beam_size=3, nbest=2),
       "modules": sorted({m.split(".")[0] for m in sys.modules}),
       "project": sorted(m for m in sys.modules if m.startswith("seq2seq_jax"))}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A reversed-source Bahdanau model: attention and reversal both matter."""
  root = str(tmp_path_factory.mktemp("export"))
  config = tiny_multi30k_config(root, steps=40)
  config.data.reverse_source = True
  config.model.cell = "gru"
  config.model.attention = "bahdanau"
  config.model.bidirectional = True
  config.model.bridge = "linear"
  config.model.hidden_size = 24
  workdir = os.path.join(root, "run")
  loop.train_and_evaluate(config, workdir)
  return workdir


def _run(*args, stdin=None):
  return subprocess.run([sys.executable, *args], cwd=ROOT, input=stdin,
                        capture_output=True, text=True, timeout=300,
                        check=False)


@pytest.mark.slow
def test_exported_model_translates_as_translate_without_flax(trained,
                                                             tmp_path):
  from seq2seq_jax.inference import trained_run  # pylint: disable=g-import-not-at-top
  model = str(tmp_path / "model")
  result = _run("-m", "seq2seq_jax.export", f"--workdir={trained}",
                f"--output={model}", "--beam_size=3")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(model, "artifact.json"), encoding="utf-8") as f:
    info = json.load(f)
  assert info["reverse_source"] and info["beam_size"] == 3
  served = _run("-c", SERVE, model, stdin=json.dumps(SENTENCES))
  assert served.returncode == 0, served.stderr[-3000:]
  out = json.loads(served.stdout)
  assert "flax" not in out["modules"]
  assert "tensorflow_datasets" not in out["modules"]
  assert "tensorflow" not in out["modules"]
  assert not [m for m in out["project"] if m.startswith(
      ("seq2seq_jax.training", "seq2seq_jax.models", "seq2seq_jax.inference"))]
  run = trained_run.load_run(trained)
  assert out["greedy"] == trained_run.translate(run, SENTENCES)
  assert out["beam"] == trained_run.translate(run, SENTENCES, beam_size=3,
                                              nbest=2)
  assert out["greedy"][1] == [""] and len(out["beam"][0]) == 2
  assert any(out["greedy"][i] != out["greedy"][0] for i in range(2, 6))
  # The command line, and a beam size the model was not exported with.
  cli = _run("-m", "seq2seq_jax.serving", model, "--beam_size=3",
             SENTENCES[0], SENTENCES[3])
  assert cli.returncode == 0, cli.stderr[-3000:]
  assert cli.stdout.splitlines() == [out["beam"][0][0], out["beam"][3][0]]
  wrong = _run("-m", "seq2seq_jax.serving", model, "--beam_size=4", "x")
  assert wrong.returncode == 2 and "exported with beam size 3" in wrong.stderr
  # Exporting over a model already there is refused, in one line.
  again = _run("-m", "seq2seq_jax.export", f"--workdir={trained}",
               f"--output={model}")
  assert again.returncode == 2 and "not empty" in again.stderr
  assert "Traceback" not in again.stderr
