"""The study runner: spec loading, aggregation, and the tiny study end to end."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from experiments import aggregate
from experiments import report
from experiments import runner
from experiments import study as study_lib
from tests.conftest import ROOT

GOOD_SPEC = """
BASE_CONFIG = "configs/smoke.py"
OVERRIDES = {"train.num_steps": 20}
GRID = {"model.cell": ["lstm", "gru"], "data.reverse_source": [False, True]}
SEEDS = [0, 1, 2]
HEADLINE = "sequence_accuracy"
"""


def _study(tmp_path, text=GOOD_SPEC, name="s"):
  directory = tmp_path / name
  directory.mkdir()
  (directory / "spec.py").write_text(text)
  return study_lib.load(str(directory))


def test_grid_expands_in_written_order_with_readable_names(tmp_path):
  s = _study(tmp_path)
  assert [v.name for v in s.variants] == [
      "cell=lstm,reverse_source=False", "cell=lstm,reverse_source=True",
      "cell=gru,reverse_source=False", "cell=gru,reverse_source=True"]
  assert s.variants[3].values == (("model.cell", "gru"),
                                  ("data.reverse_source", True))
  assert s.name == "s" and s.seeds == [0, 1, 2]


def test_names_are_filesystem_safe_and_ambiguous_keys_spelt_out():
  variants = study_lib.expand({"data.path": ["a/b c"], "x.path": ["d"]})
  assert [v.name for v in variants] == ["data.path=a_b_c,x.path=d"]
  assert [v.name for v in study_lib.expand({})] == ["base"]
  with pytest.raises(study_lib.StudyError, match="same directory name"):
    study_lib.expand({"data.path": ["a/b", "a_b"]})


def test_command_passes_booleans_overrides_and_extras_verbatim(tmp_path):
  s = _study(tmp_path)
  argv = runner.command(s, s.variants[1], 2, "/w", ["--config.data.path=x y"])
  assert argv[1:] == [
      "-m", "seq2seq_jax.train", "--config=configs/smoke.py", "--workdir=/w",
      "--config.seed=2", "--config.train.num_steps=20",
      "--config.model.cell=lstm", "--config.data.reverse_source=True",
      "--config.data.path=x y"]
  with pytest.raises(ValueError, match="model.cell"):
    runner.check_extra_args(s, ["--config.model.cell=rnn"])
  with pytest.raises(ValueError, match="--config.KEY=VALUE"):
    runner.check_extra_args(s, ["--config.data.path"])


@pytest.mark.parametrize("old, new, constant, message", [
    ('BASE_CONFIG = "configs/smoke.py"', "", "BASE_CONFIG", "is missing"),
    ('"configs/smoke.py"', '"configs/nope.py"', "BASE_CONFIG", "config file"),
    ('["lstm", "gru"]', "[]", "GRID", "must be a non-empty list"),
    ('["lstm", "gru"]', '["gru", "gru"]', "GRID", "repeats a value"),
    ('"model.cell"', '"model.cel"', "GRID", "not a key of the base config"),
    ("[False, True]", "[0, 1]", "GRID", "does not match the config's type bool"),
    ('"train.num_steps": 20', '"train.num_steps": 2.5', "OVERRIDES",
     "does not match the config's type int"),
    ("GRID = {", 'GRID = {"train.num_steps": [5], ', "GRID",
     "and OVERRIDES both set"),
    ("GRID = {", 'GRID = {"seed": [5], ', "GRID", "seeds are set by SEEDS"),
    ("[0, 1, 2]", "[0, 0]", "SEEDS", "distinct ints"),
    ('"sequence_accuracy"', '"sequence_acc"', "HEADLINE", "must be one of"),
    ("HEADLINE", 'METRICS = ["bleu", "loss_"]\nHEADLINE', "METRICS",
     "must be a non-empty list"),
    ("HEADLINE", 'METRIC = ["bleu"]\nHEADLINE', "METRIC", "unknown"),
])
def test_spec_errors_name_the_file_and_the_constant(tmp_path, old, new,
                                                    constant, message):
  with pytest.raises(study_lib.StudyError) as e:
    _study(tmp_path, GOOD_SPEC.replace(old, new, 1))
  assert str(e.value).startswith(os.path.join(str(tmp_path), "s", "spec.py"))
  assert constant in str(e.value) and message in str(e.value)


def test_preemption_and_failure_stop_the_study(tmp_path, monkeypatch):
  s = _study(tmp_path)
  monkeypatch.setattr(runner, "launch",
                      lambda argv, run_dir, env: (75, 1.0, False))
  with pytest.raises(runner.Preempted, match="cell=lstm,reverse_source=False "
                     "seed 0: preempted"):
    runner.run_all(s, str(tmp_path / "runs"))
  monkeypatch.setattr(runner, "launch",
                      lambda argv, run_dir, env: (3, 1.0, False))
  with pytest.raises(runner.RunFailed) as e:
    runner.run_all(s, str(tmp_path / "runs"))
  assert "seed 0: trainer exited with code 3" in str(e.value)
  assert os.path.join(str(tmp_path), "runs", s.variants[0].name, "seed_0") in str(
      e.value)


def test_trainers_share_a_compilation_cache_unless_told_otherwise(
    tmp_path, monkeypatch):
  s = _study(tmp_path)
  seen = []
  monkeypatch.setattr(runner, "launch", lambda argv, run_dir, env: (
      seen.append(env[runner.CACHE_ENV_VAR]), (3, 1.0, False))[1])
  monkeypatch.delenv(runner.CACHE_ENV_VAR, raising=False)
  with pytest.raises(runner.RunFailed):
    runner.run_all(s, str(tmp_path / "runs"))
  monkeypatch.setenv(runner.CACHE_ENV_VAR, "")  # off
  with pytest.raises(runner.RunFailed):
    runner.run_all(s, str(tmp_path / "runs"))
  assert seen == [str(tmp_path / "runs" / ".compilation_cache"), ""]


def _write_run(root, variant, seed, lines):
  run_dir = root / variant / f"seed_{seed}"
  run_dir.mkdir(parents=True)
  (run_dir / "metrics.jsonl").write_text(
      "".join(json.dumps(line) + "\n" for line in lines))
  return run_dir


def _test_line(acc, loss, step=20):
  return {"step": step, "split": "test", "sequence_accuracy": acc,
          "loss": loss, "perplexity": 2 * loss}


def test_aggregation_mean_sd_n_duplicates_and_unfinished(tmp_path):
  s = _study(tmp_path, GOOD_SPEC.replace(
      '"data.reverse_source": [False, True]', '"model.bidirectional": [False]'))
  root = tmp_path / "runs"
  lstm, gru = "cell=lstm,bidirectional=False", "cell=gru,bidirectional=False"
  _write_run(root, lstm, 0, [{"step": 10, "split": "eval", "loss": 3.0},
                             _test_line(0.25, 9.0), _test_line(0.5, 1.0)])
  _write_run(root, lstm, 1, [_test_line(0.75, 2.0)])
  _write_run(root, lstm, 2, [_test_line(1.0, 3.0, step=10),
                             {"step": 20, "split": "train", "loss": 0.5},
                             {"note": "extra keys are fine"}])
  _write_run(root, gru, 0, [_test_line(0.125, 4.0)])
  _write_run(root, gru, 1, [{"step": 10, "split": "eval", "loss": 5.0}])
  runs = aggregate.read_study(s, str(root))
  summary = aggregate.summarize(runs, lstm, "sequence_accuracy")
  assert (summary.mean, summary.sd, summary.n) == (0.75, 0.25, 3)
  assert summary.values == {0: 0.5, 1: 0.75, 2: 1.0}  # later duplicate won
  assert aggregate.summarize(runs, lstm, "loss").mean == 2.0
  one = aggregate.summarize(runs, gru, "sequence_accuracy")
  assert (one.mean, one.sd, one.n) == (0.125, None, 1)  # seed 1 unfinished
  text = report.section(s, runs)
  assert f"| {lstm} | 3 | 0.7500 ± 0.2500 | 2.0000 ± 1.0000 | 4.00 ± 2.00 |" in text
  assert f"| {gru} | 1 | 0.1250 ± n/a | 4.0000 ± n/a | 8.00 ± n/a |" in text
  assert f"Unfinished runs (not in the table): {gru}/seed_1, {gru}/seed_2." in text
  assert "Environment" not in text and "wall time" not in text
  rows = report.csv_text(s, runs).splitlines()
  assert rows[0] == "variant,metric,mean,sd,n,seed_0,seed_1,seed_2"
  assert f'"{lstm}",sequence_accuracy,0.75,0.25,3,0.5,0.75,1.0' in rows
  assert f'"{gru}",sequence_accuracy,0.125,n/a,1,0.125,,' in rows  # quoted: commas


def test_environment_line_lists_distinct_values(tmp_path):
  run = lambda info: aggregate.Run("v", 0, True, {}, [], 1.0, info)
  info = {"packages": {"jax": "0.10.2"}, "git_commit": "a" * 40,
          "devices": [{"device_kind": "cpu"}, "TPU v4"]}
  line = report.environment([run(info), run(dict(info, git_commit="b")),
                             run(dict(info, git_dirty=True)), run(None)])
  assert line == (f"Environment: jax 0.10.2; devices: TPU v4, cpu; git commit: "
                  f"{'a' * 12}, {'a' * 12}+dirty, b (1 finished runs have no "
                  "run_info.json).")


def test_readme_section_is_replaced_between_markers():
  text = f"intro\n{report.BEGIN}\nold\n{report.END}\nafter\n"
  once = report.replace_section(text, "new\n", "README.md")
  assert once.startswith(f"intro\n{report.BEGIN}\n<!--")
  assert once.endswith(f"\n\nnew\n{report.END}\nafter\n")
  assert report.replace_section(once, "new\n", "README.md") == once


def _outputs(directory):
  names = ("results.md", "results.csv", "headline.png", "learning_curves.png",
           "README.md")
  return {n: (directory / n).read_bytes() for n in names
          if (directory / n).exists()}


def _run(argv, env, timeout=1800):  # a hang guard; a run takes ~15 s of CPU
  """subprocess.run, but a timeout sends SIGTERM, which the runner passes on:
  SIGKILL would leave its trainer running on after the test."""
  process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  try:
    stdout, stderr = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.terminate()
    process.communicate(timeout=300)
    raise
  return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_tiny_study_runs_reports_reproducibly_and_skips_finished(tmp_path,
                                                                 tfds_dir):
  study = tmp_path / "tiny"  # a copy, so nothing is written into the repo
  shutil.copytree(os.path.join(ROOT, "experiments", "tiny"), study,
                  ignore=shutil.ignore_patterns("runs", "__pycache__"))
  # Same XLA setting in every trainer, so the determinism check compares like
  # with like (it only speeds up compiles). Every compiled step goes to the
  # study's cache, however quick its compile, so later seeds load it.
  env = {k: v for k, v in os.environ.items() if k != runner.CACHE_ENV_VAR}
  env.update(JAX_DISABLE_MOST_OPTIMIZATIONS="1",
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  extra = [f"--config.data.tfds_data_dir={tfds_dir}"]
  run = lambda *args: _run(
      [sys.executable, "-m", "experiments.run", str(study), *args, *extra], env)

  first = run()
  assert first.returncode == 0, first.stdout + first.stderr[-3000:]
  assert first.stdout.count(": finished in ") == 4
  results = (study / "results.md").read_text()
  assert "| cell=lstm | 2 | " in results and "| cell=gru | 2 | " in results
  assert "Unfinished" not in results and "Training wall time" in results
  made = _outputs(study)
  assert len(made) == 5 and "| cell=gru | 2 | " in made["README.md"].decode()
  metrics = sorted(study.glob("runs/*/seed_*/metrics.jsonl"))
  assert len(metrics) == 4
  mtimes = [os.stat(p).st_mtime_ns for p in metrics]

  again = run("--report-only")
  assert again.returncode == 0, again.stderr[-3000:]
  assert _outputs(study) == made
  elsewhere = run("--report-only", f"--out={tmp_path / 'out'}")
  assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
  assert _outputs(tmp_path / "out") == {k: v for k, v in made.items()
                                        if k != "README.md"}

  rerun = run()
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert rerun.stdout.count(": skipped (finished)") == 4
  assert "started" not in rerun.stdout
  assert [os.stat(p).st_mtime_ns for p in metrics] == mtimes
  assert _outputs(study) == made

  cached = os.listdir(study / "runs" / runner.CACHE_DIR)
  assert any(name.startswith("jit_train_step") for name in cached), cached

  # Determinism: the same (variant, seed) trained again in another root,
  # compiled afresh (no cache), where the study's run loaded its steps.
  s = study_lib.load(str(study))
  variant = s.variants[1]
  other = str(tmp_path / "other" / variant.name / "seed_1")
  single = _run(runner.command(s, variant, 1, other, extra), env)
  assert single.returncode == 0, single.stderr[-3000:]
  assert (open(os.path.join(other, "metrics.jsonl"), "rb").read() ==
          (study / "runs" / variant.name / "seed_1" / "metrics.jsonl").read_bytes())


@pytest.mark.parametrize("name", sorted(
    entry for entry in os.listdir(os.path.join(ROOT, "experiments"))
    if os.path.exists(os.path.join(ROOT, "experiments", entry, "spec.py"))))
def test_shipped_studies_load_and_have_a_results_section(name):
  s = study_lib.load(os.path.join(ROOT, "experiments", name))
  assert len(s.seeds) >= 2 and s.variants
  with open(os.path.join(s.directory, "README.md"), encoding="utf-8") as f:
    text = f.read()
  assert "<!-- results:begin -->" in text and "<!-- results:end -->" in text


def test_text_study_reports_the_paired_bootstrap_against_the_baseline(
    tmp_path):
  s = _study(tmp_path, GOOD_SPEC.replace(
      '"data.reverse_source": [False, True]', '"model.bidirectional": [False]'
  ).replace('HEADLINE = "sequence_accuracy"', 'HEADLINE = "bleu"'))
  root = tmp_path / "runs"
  lstm, gru = "cell=lstm,bidirectional=False", "cell=gru,bidirectional=False"
  references = [f"the {w} dog runs to the red house" for w in
                ("big", "small", "old", "young", "brown", "white")] * 10
  for variant, keep in ((lstm, 5), (gru, 8)):
    for seed in (0, 1):
      run_dir = _write_run(root, variant, seed, [
          {"step": 20, "split": "test", "bleu": 50.0 + keep + seed,
           "loss": 1.0, "perplexity": 2.7}])
      hypotheses = [" ".join(r.split()[:keep - (i + seed) % 2])
                    for i, r in enumerate(references)]
      (run_dir / "test_hypotheses.txt").write_text("\n".join(hypotheses) + "\n")
      (run_dir / "test_references.txt").write_text("\n".join(references) + "\n")
  comparisons = report.compare_variants(s, str(root))
  assert [(c.variant, c.baseline, c.seeds) for c in comparisons] == [
      (gru, lstm, 2)]
  assert comparisons[0].difference > 0 and comparisons[0].p_value < 0.01
  text = report.section(s, aggregate.read_study(s, str(root)), comparisons)
  assert f"| variant | n | bleu | loss | perplexity | Δ bleu vs {lstm} (95% CI) | p |" in text
  c = comparisons[0]
  assert (f"| {gru} | 2 | 58.50 ± 0.71 | 1.0000 ± 0.0000 | 2.70 ± 0.00 | "
          f"{c.difference:+.2f} [{c.low:+.2f}, {c.high:+.2f}] | "
          f"{c.p_value:.3f} |") in text
  assert f"| {lstm} | 2 | 55.50 ± 0.71 | 1.0000 ± 0.0000 | 2.70 ± 0.00 | baseline |  |" in text
  assert "paired bootstrap over the 60 test sentences" in text
  out = tmp_path / "out"
  report.write(s, str(root), str(out))
  first = (out / "significance.csv").read_bytes()
  report.write(s, str(root), str(out))
  assert (out / "significance.csv").read_bytes() == first
  assert first.decode().splitlines()[1].startswith(f'"{gru}","{lstm}",bleu,')
