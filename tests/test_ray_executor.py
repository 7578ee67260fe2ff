"""The study runner on Ray: the local executor's results, faults, stopping.

Ray runs on the loopback interface alone, in a cluster of two one-CPU nodes
made here (ray.cluster_utils.Cluster) or in the instance a driver starts;
test_ray_listens_on_loopback_only and the failing-run test check both. The
study is experiments/tiny with 30 steps instead of 10 (four smoke runs,
sharing one TFDS dir and one compilation cache).
"""
import os
import re
import shutil
import signal
import socket
import sys
import time

import pytest

from experiments import progress
from experiments import ray_executor
from experiments import ray_task
from experiments import report
from experiments import run as run_lib
from experiments import runner
from experiments import study as study_lib
from tests import ray_helpers
from tests.conftest import ROOT

# Before Ray is imported: it reads them at import time (FACTS.md, Ray).
os.environ.update(ray_executor.LOOPBACK_ENV)
ray = pytest.importorskip(
    "ray", reason="Ray is not installed: pip install -r "
    "experiments/requirements-ray.txt (CI installs it)")
from ray import cluster_utils  # pylint: disable=g-import-not-at-top,wrong-import-position


def _tiny_spec(steps=30):
  """experiments/tiny's spec with 30 steps instead of 10: checkpoints at 10
  and 20, so a trainer can be stopped or killed between them."""
  with open(os.path.join(ROOT, "experiments", "tiny", "spec.py")) as f:
    text = f.read()
  for key in ("train.num_steps", "train.eval_every"):
    assert f'"{key}": 10,' in text, key
    text = text.replace(f'"{key}": 10,', f'"{key}": {steps},')
  return text


SPEC = _tiny_spec()
assert "SEEDS = [0, 1]" in SPEC and '["lstm", "gru"]' in SPEC
WALL_LINE = re.compile(rb"^Training wall time: .*\n", re.M)


def _write_study(directory, spec):
  directory.mkdir(parents=True)
  (directory / "spec.py").write_text(spec)
  return directory


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  return _write_study(tmp_path_factory.mktemp("study") / "tiny", SPEC)


@pytest.fixture(scope="module")
def seed_0(tmp_path_factory):
  """The study's seed 0 alone (two runs), for the fault tests."""
  return _write_study(tmp_path_factory.mktemp("seed_0") / "tiny",
                      SPEC.replace("SEEDS = [0, 1]", "SEEDS = [0]"))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """For the drivers: loopback Ray, fast compiles, one compilation cache."""
  env = dict(os.environ, **ray_executor.LOOPBACK_ENV)
  env.update(JAX_DISABLE_MOST_OPTIMIZATIONS="1",
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
  return env


@pytest.fixture(scope="module")
def cluster():
  """Two Ray nodes of one CPU each, on 127.0.0.1. Ray's handlers for
  SIGTERM and SIGINT in this process are undone afterwards, for the tests
  that run after these in the same process."""
  handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
  nodes = cluster_utils.Cluster(initialize_head=True, head_node_args=dict(
      num_cpus=1, node_ip_address="127.0.0.1", include_dashboard=False))
  nodes.add_node(num_cpus=1, node_ip_address="127.0.0.1")
  yield nodes
  nodes.shutdown()
  deadline = time.monotonic() + 30
  while ray_helpers.ray_processes() and time.monotonic() < deadline:
    time.sleep(0.2)
  assert not ray_helpers.ray_processes(), ray_helpers.ray_processes()
  for number, handler in handlers.items():
    signal.signal(number, handler)


def _tables(out, root):
  """results.csv and results.md (less its wall-time line), and every run's
  metrics.jsonl."""
  tables = {"results.csv": (out / "results.csv").read_bytes(),
            "results.md": WALL_LINE.sub(b"", (out / "results.md").read_bytes())}
  for path in sorted(root.glob("*/seed_*/metrics.jsonl")):
    tables[str(path.relative_to(root))] = path.read_bytes()
  return tables


@pytest.fixture(scope="module")
def local_runs(study, env, tfds_dir, tmp_path_factory):
  """The study through the local executor: its ROOT and OUT."""
  base = tmp_path_factory.mktemp("local")
  code, stdout, stderr = ray_helpers.finish(ray_helpers.driver(
      study, base / "runs", base / "out", env, tfds_dir), base / "runs")
  assert code == 0, stdout + stderr
  assert b"Training wall time" in (base / "out" / "results.md").read_bytes()
  return base / "runs", base / "out"


@pytest.fixture(scope="module")
def reference(local_runs):
  """The local executor's tables for the study."""
  tables = _tables(local_runs[1], local_runs[0])
  assert len(tables) == 6
  return tables


@pytest.fixture(scope="module")
def seed_0_reference(seed_0, local_runs, tmp_path_factory):
  """The tables of seed_0's uninterrupted runs (the local executor's)."""
  base = tmp_path_factory.mktemp("seed_0_reference")
  for run_dir in local_runs[0].glob("*/seed_0"):
    shutil.copytree(run_dir, base / "runs" / run_dir.parent.name / "seed_0")
  report.write(study_lib.load(str(seed_0)), str(base / "runs"),
               str(base / "out"))
  tables = _tables(base / "out", base / "runs")
  assert len(tables) == 4
  return tables


def test_two_loopback_nodes_give_the_local_tables_two_runs_at_a_time(
    study, env, cluster, reference, tmp_path):
  # A fresh TFDS dir: the first two runs prepare the dataset at once.
  with ray_helpers.Watch(tmp_path / "runs") as watch:
    code, stdout, stderr = ray_helpers.finish(ray_helpers.driver(
        study, tmp_path / "runs", tmp_path / "out", env, tmp_path / "tfds",
        "--executor=ray", f"--ray_address={cluster.address}",
        "--cpus_per_run=1"), tmp_path / "runs")
  assert code == 0, stdout + stderr
  assert _tables(tmp_path / "out", tmp_path / "runs") == reference
  assert stdout.count(": finished in ") == 4
  where = re.findall(r": running on node (\w+) \(([\d.]+)\)", stdout)
  assert len(where) == 4 and {ip for _, ip in where} == {"127.0.0.1"}
  assert len({node for node, _ in where}) == 2, stdout  # both nodes
  # Four runs of one CPU on two CPUs: two at a time, never more.
  assert watch.most == 2, watch.most
  assert "up to 2 at once" in stdout and "retry" not in stdout


def test_a_killed_trainer_and_a_killed_worker_are_retried_from_checkpoints(
    seed_0, env, cluster, seed_0_reference, tfds_dir, tmp_path):
  root = tmp_path / "runs"
  lstm, gru = root / "cell=lstm" / "seed_0", root / "cell=gru" / "seed_0"
  killed = {}

  def kill(trainers):  # once each has its step-10 checkpoint
    for run_dir, target in ((str(lstm), "trainer"), (str(gru), "worker")):
      if (run_dir not in killed and run_dir in trainers and
          ray_helpers.checkpointed(run_dir)):
        trainer = trainers[run_dir]
        (trainer if target == "trainer" else trainer.parent()).send_signal(
            signal.SIGKILL)
        killed[run_dir] = ray_helpers.seconds_until_dead(trainer)
    return len(killed) == 2

  with ray_helpers.Watch(root, kill) as watch:
    code, stdout, stderr = ray_helpers.finish(ray_helpers.driver(
        seed_0, root, tmp_path / "out", env, tfds_dir, "--executor=ray",
        f"--ray_address={cluster.address}"), root)
  assert code == 0, stdout + stderr
  assert watch.acted, f"the runs ended before they were killed:\n{stdout}"
  assert ("[1/2] cell=lstm seed 0: its trainer was killed by SIGKILL; "
          "retry 1 of at most 3") in stdout
  assert ("[2/2] cell=gru seed 0: its Ray worker or node died "
          "(WorkerCrashedError); retry 1 of at most 3") in stdout
  for run_dir in (lstm, gru):
    assert ray_helpers.starts(run_dir) == 2
    assert re.search(r"resumed from step [12]0 ",
                     ray_helpers.read(run_dir / "train.log"))
  # The trainer whose worker died did not outlive it (PR_SET_PDEATHSIG, or
  # Ray's cleanup a second later; tests/test_ray_task.py checks the first
  # alone, as a time limit here would fail on a loaded machine).
  assert killed[str(gru)] < 10.0, killed
  assert _tables(tmp_path / "out", root) == seed_0_reference


def test_sigint_stops_every_trainer_with_exit_75_and_a_rerun_finishes(
    seed_0, env, cluster, seed_0_reference, tfds_dir, tmp_path):
  root, out = tmp_path / "runs", tmp_path / "out"
  args = ("--executor=ray", f"--ray_address={cluster.address}")
  driver = ray_helpers.driver(seed_0, root, out, env, tfds_dir, *args)
  frozen = {}

  def freeze(trainers):
    # Each trainer as soon as it is past its first checkpoint, so past
    # installing its signal handler: SIGSTOP holds it there until the
    # driver's SIGTERM is pending, so it cannot finish first (waiting for
    # both before stopping either let a fast one train to its end).
    for run_dir, p in trainers.items():
      if run_dir not in frozen and ray_helpers.checkpointed(run_dir):
        p.send_signal(signal.SIGSTOP)
        frozen[run_dir] = p
    return len(frozen) == 2

  with ray_helpers.Watch(root, freeze) as watch:
    deadline = time.monotonic() + 600  # generous: a hang, not a slow machine
    while not watch.acted and time.monotonic() < deadline:
      time.sleep(0.05)
  assert watch.acted and all(p.is_running() for p in frozen.values())
  driver.send_signal(signal.SIGINT)
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline and not all(
      signal.SIGTERM in ray_helpers.pending_signals(p.pid)
      for p in frozen.values()):
    time.sleep(0.05)
  for p in frozen.values():
    p.send_signal(signal.SIGCONT)
  code, stdout, stderr = ray_helpers.finish(driver, root)
  assert code == runner.PREEMPTED_EXIT_CODE, stdout + stderr
  assert "SIGINT: stopping; SIGTERM to 2 running trainer(s)" in stdout
  for run_dir in frozen:  # each checkpointed, then exited 75 (seq2seq_jax.cli)
    assert "preempted: checkpoint written at step" in ray_helpers.read(
        os.path.join(run_dir, runner.LOG_FILE))
    assert ray_helpers.starts(run_dir) == 1 and not runner.is_finished(run_dir)
  assert stdout.count(": stopped\n") == 2 and "preempted: SIGINT" in stderr

  code, stdout, stderr = ray_helpers.finish(ray_helpers.driver(
      seed_0, root, out, env, tfds_dir, *args), root)
  assert code == 0, stdout + stderr
  for run_dir in frozen:
    assert "resumed from step" in ray_helpers.read(
        os.path.join(run_dir, runner.LOG_FILE))
  assert _tables(out, root) == seed_0_reference


def test_a_failing_run_is_reported_not_retried_and_the_others_finish(
    env, tfds_dir, tmp_path):
  study = tmp_path / "bad"
  study.mkdir()
  # A value of the right type, which only the trainer refuses.
  (study / "spec.py").write_text(SPEC.replace('["lstm", "gru"]',
                                              '["lstm", "nope"]').replace(
                                                  "[0, 1]", "[0]"))
  root = tmp_path / "runs"
  seen = set()
  # An empty --ray_address: the driver starts its own Ray instance.
  driver = ray_helpers.driver(study, root, tmp_path / "out", env, tfds_dir,
                   "--executor=ray")
  while driver.poll() is None:
    seen |= ray_helpers.listening(driver.pid)
    time.sleep(0.2)
  code, stdout, stderr = ray_helpers.finish(driver, root)
  assert code == 1, stdout + stderr
  assert "[1/2] cell=lstm seed 0: finished in " in stdout
  assert "[2/2] cell=nope seed 0: trainer exited with code 2" in stderr
  assert "model.cell" in stderr.split("trainer exited with code 2")[1]  # tail
  assert "retry" not in stdout
  assert ray_helpers.starts(root / "cell=nope" / "seed_0") == 1
  assert "1 run(s) failed: [2/2] cell=nope seed 0" in stderr
  assert not (tmp_path / "out" / "results.md").exists()
  # The driver's own instance listened on the loopback interface alone.
  assert {"gcs_server", "raylet"} <= {name for name, _ in seen}, seen
  assert all(ray_helpers.loopback(ip) for _, ip in seen), seen


def test_ray_listens_on_loopback_only(cluster):
  seen = ray_helpers.listening(os.getpid())
  assert {"gcs_server", "raylet"} <= {name for name, _ in seen}, seen
  assert all(ray_helpers.loopback(ip) for _, ip in seen), seen
  assert {n.node_ip_address for n in cluster.list_all_nodes()} == {"127.0.0.1"}


def test_setup_errors_are_one_line(tmp_path, monkeypatch, capsys):
  tiny = os.path.join(ROOT, "experiments", "tiny")
  with socket.socket() as s:  # a loopback port that nothing listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  assert run_lib.main([tiny, "--executor=ray", f"--root={tmp_path}",
                       f"--ray_address=127.0.0.1:{port}"]) == 2
  error = capsys.readouterr().err
  assert error.startswith(f"error: --ray_address=127.0.0.1:{port}: no Ray "
                          "cluster answers") and error.count("\n") == 1
  monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
  assert run_lib.main([tiny, "--executor=ray", f"--root={tmp_path}"]) == 2
  assert capsys.readouterr().err == (
      "error: --executor=ray needs Ray: pip install -r "
      "experiments/requirements-ray.txt\n")


def test_resources_default_to_one_gpu_per_run_where_there_are_gpus():
  node = lambda cpus, gpus=0, alive=True: {
      "Alive": alive, "Resources": {"CPU": cpus, "GPU": gpus} if gpus else
      {"CPU": cpus}}
  options = ray_executor.Options
  assert ray_executor.resources([node(16), node(8)], options()) == (1, 0, 24)
  assert ray_executor.resources([node(16, 8), node(4, alive=False)],
                                options()) == (1, 1, 8)
  assert ray_executor.resources([node(16, 8)], options(
      cpus_per_run=4, gpus_per_run=0)) == (4, 0, 4)
  with pytest.raises(ray_executor.SetupError, match="has no GPUs"):
    ray_executor.resources([node(16)], options(gpus_per_run=1))
  with pytest.raises(ray_executor.SetupError, match="largest node has 8 CPUs"):
    ray_executor.resources([node(8), node(4)], options(cpus_per_run=12))


def test_eta_from_the_finished_runs_mean():
  assert progress.eta_seconds([], [5.0], 3, 2) is None
  # Mean 10 s: 10 - 4 and 0 left of the running ones, then 3 queued.
  assert progress.eta_seconds([8.0, 12.0], [4.0, 11.0], 3, 2) == 18.0
  assert progress.duration(3725.4) == "1:02:05" and progress.duration(None) == "?"


def test_a_retry_waits_for_the_trainer_lock(tmp_path):
  from seq2seq_jax.training import workdir  # pylint: disable=g-import-not-at-top
  assert ray_task.TRAINER_LOCK_FILE == workdir.LOCK_FILE
  assert ray_task.wait_for_unlock(str(tmp_path), 0.1) is None  # no lock file
  with workdir.lock(str(tmp_path)):
    holder = ray_task.wait_for_unlock(str(tmp_path), 0.5)
  assert holder.startswith(f"pid {os.getpid()} on ")
  assert ray_task.wait_for_unlock(str(tmp_path), 0.1) is None


def test_only_the_ray_executor_imports_ray():
  allowed = {"ray_executor.py", "ray_task.py"}
  for package in ("seq2seq_jax", "experiments"):
    for directory, _, names in os.walk(os.path.join(ROOT, package)):
      for name in names:
        if name.endswith(".py") and name not in allowed:
          text = ray_helpers.read(os.path.join(directory, name))
          assert not re.search(r"^\s*(import ray|from ray)\b", text, re.M), name


def test_trainers_get_the_drivers_settings_not_rays_thread_count(monkeypatch):
  monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as Ray sets it in a worker
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # as Ray gives a GPU
  env = ray_task.trainer_environment({"JAX_X": "1"})
  assert "OMP_NUM_THREADS" not in env
  assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["JAX_X"] == "1"
  assert ray_task.trainer_environment({"OMP_NUM_THREADS": "4"})[
      "OMP_NUM_THREADS"] == "4"
  monkeypatch.setenv("XLA_FLAGS", "--xla_x")
  monkeypatch.setenv("RAY_OTHER", "y")
  monkeypatch.delenv(runner.CACHE_ENV_VAR, raising=False)
  forwarded = ray_executor.trainer_env_vars("/r")
  assert forwarded["XLA_FLAGS"] == "--xla_x" and "RAY_OTHER" not in forwarded
  assert forwarded[runner.CACHE_ENV_VAR] == "/r/.compilation_cache"
