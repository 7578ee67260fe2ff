"""evaluate writes its files in the corpus file's order, and checks where it
writes before decoding."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from seq2seq_jax.training import loop
from tests.conftest import ROOT, tiny_multi30k_config


def _evaluate(*args, cwd=ROOT):
  return subprocess.run([sys.executable, "-m", "seq2seq_jax.evaluate", *args],
                        cwd=cwd, capture_output=True, text=True, timeout=300,
                        check=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("m30k"))
  # The data path relative: the workdir records it absolute (see below).
  config = tiny_multi30k_config(root)
  workdir = os.path.join(root, "run")
  loop.train_and_evaluate(config, workdir)
  return os.path.join(root, "data"), workdir


@pytest.mark.slow
def test_hypotheses_and_tsv_follow_the_test_file(trained):
  data, workdir = trained
  result = _evaluate(f"--workdir={workdir}", "--beam_size=2", "--nbest=2")
  assert result.returncode == 0, result.stderr[-3000:]
  scores = json.loads(result.stdout)
  with open(os.path.join(data, "test_2016_flickr.de"), encoding="utf-8") as f:
    sources = f.read().splitlines()
  with open(os.path.join(data, "test_2016_flickr.en"), encoding="utf-8") as f:
    references = f.read().splitlines()
  with open(scores["translations"], encoding="utf-8") as f:
    rows = [line.split("\t") for line in f.read().splitlines()]
  assert rows[0] == ["line", "source", "reference", "hypothesis_1", "score_1",
                     "hypothesis_2", "score_2"]
  assert [r[1] for r in rows[1:]] == sources  # line by line
  assert [r[2] for r in rows[1:]] == references
  assert [int(r[0]) for r in rows[1:]] == list(range(1, len(sources) + 1))
  assert all(float(r[4]) >= float(r[6]) for r in rows[1:])  # best first
  with open(scores["hypotheses"], encoding="utf-8") as f:
    hypotheses = f.read().splitlines()
  assert hypotheses == [r[3] for r in rows[1:]]
  # sacrebleu's own command line on the files gives the printed BLEU.
  cli = subprocess.run(
      [os.path.join(os.path.dirname(sys.executable), "sacrebleu"),
       os.path.join(data, "test_2016_flickr.en"), "-i", scores["hypotheses"],
       "-m", "bleu", "-b", "-w", "4"],
      capture_output=True, text=True, check=True)
  assert float(cli.stdout.strip()) == pytest.approx(scores["bleu"], abs=1e-4)


@pytest.mark.slow
def test_moved_data_is_named_and_read_from_data_path(trained, tmp_path):
  data, workdir = trained
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    assert json.load(f)["data"]["path"] == os.path.abspath(data)
  run = str(tmp_path / "run")
  shutil.copytree(workdir, run)
  moved = str(tmp_path / "moved")
  shutil.copytree(data, moved)
  with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
    config = json.load(f)
  config["data"]["path"] = str(tmp_path / "gone")
  with open(os.path.join(run, "config.json"), "w", encoding="utf-8") as f:
    json.dump(config, f)
  # From another directory: the recorded path is absolute, so only a real
  # move fails, in one line that names the path and the way out.
  result = _evaluate(f"--workdir={run}", cwd=str(tmp_path))
  assert result.returncode == 2
  assert "gone" in result.stderr and "--data_path" in result.stderr
  assert "Traceback" not in result.stderr
  result = _evaluate(f"--workdir={run}", f"--data_path={moved}",
                     cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout)["bleu"] >= 0
  # Other data is not the run's test split: refused, naming dataset.json.
  with open(os.path.join(moved, "test_2016_flickr.en"), encoding="utf-8") as f:
    lines = f.read().splitlines()
  lines[0] = "an edited reference ."
  with open(os.path.join(moved, "test_2016_flickr.en"), "w",
            encoding="utf-8") as f:
    f.writelines(line + "\n" for line in lines)
  result = _evaluate(f"--workdir={run}", f"--data_path={moved}",
                     cwd=str(tmp_path))
  assert result.returncode == 2
  assert "dataset.json" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_unwritable_output_fails_before_decoding(trained, tmp_path):
  _, workdir = trained
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  result = _evaluate(f"--workdir={workdir}", f"--output={blocker}/hyp.txt")
  assert result.returncode == 2
  assert "cannot write" in result.stderr and "--output" in result.stderr
  assert "Traceback" not in result.stderr
  assert not result.stdout  # nothing was decoded or scored


def test_loading_without_a_best_checkpoint_says_so_and_creates_nothing(
    smoke_config, tmp_path, caplog):
  import shutil  # pylint: disable=g-import-not-at-top
  from seq2seq_jax.inference import trained_run  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  smoke_config.train.num_steps = 5
  smoke_config.train.eval_every = 5
  loop.train_and_evaluate(smoke_config, workdir)
  shutil.rmtree(os.path.join(workdir, "best"))
  with caplog.at_level("INFO"):
    run = trained_run.load_run(workdir, "best")
  assert run.step == 5
  assert "restored the latest checkpoint, step 5" in caplog.text
  assert "restored the best" not in caplog.text
  assert not os.path.exists(os.path.join(workdir, "best"))


@pytest.mark.slow
def test_translate_samples_are_seeded_and_independent_of_the_batch(trained):
  _, workdir = trained
  from seq2seq_jax.inference import trained_run  # pylint: disable=g-import-not-at-top
  run = trained_run.load_run(workdir, "best")
  texts = ["ein mann .", "", "eine frau mit einem hund .", "zwei kinder ."]

  def draw(seed, batch_size=64, **kwargs):
    return trained_run.sample_translations(
        run, texts, num_samples=3, seed=seed, batch_size=batch_size, **kwargs)

  first = draw(1)
  assert [len(samples) for samples in first] == [3, 3, 3, 3]
  assert first[1] == ["", "", ""]  # empty input, empty output
  assert draw(1) == first
  assert draw(1, batch_size=1) == first  # the batch does not change them
  assert draw(2) != first
  greedy = trained_run.translate(run, texts)
  cold = draw(3, temperature=1e-4)
  assert all(samples == [g[0]] * 3 for samples, g in zip(cold, greedy))
  top1 = draw(4, temperature=3.0, top_k=1)
  assert all(samples == [g[0]] * 3 for samples, g in zip(top1, greedy))
  result = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.translate", f"--workdir={workdir}",
       "--num_samples=3", "--seed=1", *[t for t in texts if t]],
      cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  # Sample j of input i depends on i: the CLI's inputs are the non-empty ones.
  want = trained_run.sample_translations(run, [t for t in texts if t],
                                         num_samples=3, seed=1)
  assert [line.split("\t") for line in lines] == want
  refused = subprocess.run(
      [sys.executable, "-m", "seq2seq_jax.translate", f"--workdir={workdir}",
       "--num_samples=2", "--beam_size=4", "x"],
      cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
  assert refused.returncode == 2 and "--num_samples" in refused.stderr


def _read(path):
  with open(path, encoding="utf-8") as f:
    return f.read().splitlines()


@pytest.mark.slow
def test_files_score_as_the_split_and_ensembles_of_one_run_as_the_run(
    trained, tmp_path):
  data, workdir = trained
  os.makedirs(tmp_path / "split")
  split = _evaluate(f"--workdir={workdir}", "--beam_size=2",
                    f"--output={tmp_path}/split/hyp.txt")
  assert split.returncode == 0, split.stderr[-3000:]
  split_scores = json.loads(split.stdout)
  source = os.path.join(data, "test_2016_flickr.de")
  reference = os.path.join(data, "test_2016_flickr.en")
  # The same sentences as plain files, twice as reference: the same scores.
  files = _evaluate(f"--workdir={workdir}", "--beam_size=2",
                    f"--source_file={source}", f"--reference_file={reference}",
                    f"--reference_file={reference}")
  assert files.returncode == 0, files.stderr[-3000:]
  file_scores = json.loads(files.stdout)
  assert file_scores["references"] == 2
  for key in ("bleu", "bleu_lowercase", "chrf"):
    assert file_scores[key] == pytest.approx(split_scores[key], abs=1e-9)
  assert file_scores["hypotheses"] == os.path.join(
      workdir, "hypotheses_test_2016_flickr.de.txt")
  assert _read(file_scores["hypotheses"]) == _read(split_scores["hypotheses"])
  header = _read(file_scores["translations"])[0].split("\t")
  assert header[:4] == ["line", "source", "reference_1", "reference_2"]
  # An ensemble of the run with itself is the run (mean of equal
  # log-probabilities), beam scores included; its files are named apart.
  pair = _evaluate(f"--workdir={workdir}", f"--workdir={workdir}",
                   "--beam_size=2", "--nbest=2")
  assert pair.returncode == 0, pair.stderr[-3000:]
  pair_scores = json.loads(pair.stdout)
  assert pair_scores["bleu"] == pytest.approx(split_scores["bleu"], abs=1e-9)
  assert pair_scores["hypotheses"].endswith("hypotheses_test_ensemble2.txt")
  assert _read(pair_scores["hypotheses"]) == _read(split_scores["hypotheses"])
  # Mistakes in the files are one line naming the file and line.
  bad = tmp_path / "bad.de"
  bad.write_bytes(b"ein hund .\nzwei \xff katze .\n")
  result = _evaluate(f"--workdir={workdir}", f"--source_file={bad}")
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert f"--source_file={bad}: line 2 is not UTF-8" in result.stderr
  short = tmp_path / "short.en"
  short.write_text("one dog .\n", encoding="utf-8")
  result = _evaluate(f"--workdir={workdir}", f"--source_file={source}",
                     f"--reference_file={short}")
  assert result.returncode == 2
  assert "has 1 lines" in result.stderr and "has 40" in result.stderr


@pytest.mark.slow
def test_evaluate_samples_like_translate(trained, tmp_path):
  from seq2seq_jax.inference import trained_run  # pylint: disable=g-import-not-at-top
  data, workdir = trained
  result = _evaluate(f"--workdir={workdir}", "--num_samples=3", "--seed=5",
                     "--temperature=0.7", f"--output={tmp_path}/samples.txt")
  assert result.returncode == 0, result.stderr[-3000:]
  scores = json.loads(result.stdout)
  rows = [line.split("\t") for line in _read(scores["translations"])]
  assert rows[0][3:] == ["hypothesis_1", "hypothesis_2", "hypothesis_3"]
  sources = _read(os.path.join(data, "test_2016_flickr.de"))
  want = trained_run.sample_translations(
      trained_run.load_run(workdir), sources, num_samples=3, seed=5,
      temperature=0.7)
  assert [row[3:] for row in rows[1:]] == want
  assert _read(scores["hypotheses"]) == [samples[0] for samples in want]
  assert len(scores["bleu_of_each_sample"]) == 3
  assert scores["bleu"] == scores["bleu_of_each_sample"][0]
