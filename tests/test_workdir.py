"""The workdir: one run at a time, identity written only once set up, resume
checks (schedule horizon, dataset), and a finished run left alone."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from seq2seq_jax import settings as settings_lib
from seq2seq_jax.training import loop
from seq2seq_jax.training import optimizer as optimizer_lib
from seq2seq_jax.training import reporting
from seq2seq_jax.training import workdir as workdir_lib
from tests.conftest import ROOT


def test_a_second_run_on_a_locked_workdir_fails_at_once(smoke_config,
                                                        tmp_path):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  with workdir_lib.lock(workdir):
    start = time.monotonic()
    with pytest.raises(workdir_lib.WorkdirError) as error:
      loop.train_and_evaluate(smoke_config, workdir)
    assert time.monotonic() - start < 10
  message = str(error.value)
  assert "is in use by another run" in message
  assert f"pid {os.getpid()} on {socket.gethostname()}" in message
  assert not os.path.exists(os.path.join(workdir, "metrics.jsonl"))


def test_the_lock_of_a_killed_run_does_not_block_the_next(tmp_path):
  workdir = str(tmp_path)
  holder = subprocess.Popen(
      [sys.executable, "-c",
       "import sys, time; from seq2seq_jax.training import workdir as w\n"
       f"with w.lock({workdir!r}):\n  print('locked', flush=True)\n"
       "  time.sleep(600)"],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "locked"
  with pytest.raises(workdir_lib.WorkdirError, match=f"pid {holder.pid} on"):
    with workdir_lib.lock(workdir):
      pass
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  with workdir_lib.lock(workdir):  # the kernel dropped the dead one's lock
    pass


def test_a_failed_start_does_not_poison_the_workdir(smoke_config, tmp_path):
  workdir = str(tmp_path / "run")
  smoke_config.train.num_steps = 5
  smoke_config.train.batch_size = 4000  # more than the 2,000 examples
  with pytest.raises(settings_lib.ConfigError, match="fewer than"):
    loop.train_and_evaluate(smoke_config, workdir)
  smoke_config.train.batch_size = 32
  smoke_config.model.hidden_size = 24  # also a model change: no checkpoint yet
  loop.train_and_evaluate(smoke_config, workdir)
  assert max(r["step"] for r in reporting.read(workdir)) == 5
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    assert json.load(f)["model"]["hidden_size"] == 24


def test_extending_a_run_keeps_its_learning_rate_schedule(smoke_config,
                                                         tmp_path):
  workdir = str(tmp_path / "run")
  smoke_config.train.num_steps = 20
  smoke_config.train.log_every = 5
  loop.train_and_evaluate(smoke_config, workdir)
  smoke_config.train.num_steps = 40
  with pytest.raises(workdir_lib.WorkdirError,
                     match=r"config.train.num_steps: .*cosine .* over 20 steps"
                     r".*schedule_steps=20"):
    loop.train_and_evaluate(smoke_config, workdir)
  smoke_config.train.schedule_steps = 20
  loop.train_and_evaluate(smoke_config, workdir)
  rates = {r["step"]: r["learning_rate"] for r in reporting.read(workdir)
           if r["split"] == "train"}
  schedule = optimizer_lib.learning_rate_schedule(
      settings_lib.from_config(smoke_config).train)
  assert rates[20] == pytest.approx(float(schedule(19)))  # the first run's
  floor = 0.01 * smoke_config.train.learning_rate  # where the decay ends
  assert rates[25] == pytest.approx(floor) and rates[40] == pytest.approx(floor)


def test_a_finished_run_is_reported_not_rerun(smoke_config, tmp_path, caplog):
  workdir = str(tmp_path / "run")
  smoke_config.train.num_steps = 10
  results = loop.train_and_evaluate(smoke_config, workdir)
  lines = reporting.read(workdir)
  with open(os.path.join(workdir, "run_info.json"), encoding="utf-8") as f:
    info = json.load(f)
  caplog.clear()
  with caplog.at_level("INFO"):
    again = loop.train_and_evaluate(smoke_config, workdir)
  assert again == pytest.approx(results)
  assert "is complete: trained to step 10" in caplog.text
  assert "metrics.jsonl" in caplog.text
  assert reporting.read(workdir) == lines
  with open(os.path.join(workdir, "run_info.json"), encoding="utf-8") as f:
    assert json.load(f) == info  # no new start recorded


def test_resuming_on_another_dataset_is_refused(tmp_path):
  workdir = str(tmp_path)
  os.makedirs(os.path.join(workdir, "checkpoints", "10"))
  with pytest.raises(workdir_lib.WorkdirError, match="older version"):
    workdir_lib.check_or_write_dataset(workdir, "tsv_translation/x:2.0.0",
                                       is_text=True)
  workdir_lib.check_or_write_dataset(workdir, "synthetic_tasks/a:1.0.0",
                                     is_text=False)  # unchanged builder
  with pytest.raises(workdir_lib.WorkdirError,
                     match="trained on synthetic_tasks/a:1.0.0"):
    workdir_lib.check_or_write_dataset(workdir, "synthetic_tasks/a:2.0.0",
                                       is_text=False)


def test_a_run_on_text_prepared_by_an_earlier_version_says_what_to_do(
    tmp_path):
  workdir = str(tmp_path)
  old = "multi30k_translation/de-en_oa3ee305e_df7335c4d6d:2.0.0"
  workdir_lib.check_or_write_dataset(workdir, old, is_text=True)
  os.makedirs(os.path.join(workdir, "checkpoints", "10"))
  new = "multi30k_de-en_o79c2908987_df7335c4d6d8b"
  with pytest.raises(workdir_lib.WorkdirError,
                     match="earlier version of seq2seq_jax.*train in a new "
                     "--workdir"):
    workdir_lib.check_or_write_dataset(workdir, new, is_text=True)
  message = workdir_lib.dataset_mismatch(workdir, new)
  assert "--source_file and --reference_file" in message
  assert "\n" not in message
  assert workdir_lib.dataset_mismatch(workdir, old) is None
