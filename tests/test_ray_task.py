"""The trainer a Ray task starts dies with the task's worker process
(experiments/ray_task.py `_in_child`: PR_SET_PDEATHSIG), checked without Ray.

Without Ray nothing else kills the orphaned child (Ray would, a second
later), so its death proves the mechanism whatever the machine's load; the
same start without the hook is the control: that child outlives its parent.
"""
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests import ray_helpers
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux's")

# Stands in for a Ray worker: starts a long child as `ray_task.attempt`
# does (runner.start with the task's pre-exec hook, or none), says its pid.
_WORKER = textwrap.dedent("""
    import functools, os, sys, time
    from experiments import ray_task, runner
    hook = (functools.partial(ray_task._in_child, os.getpid())
            if sys.argv[2] == "hook" else None)
    child = runner.start([sys.executable, "-c", "import time; time.sleep(120)"],
                         sys.argv[1], None, hook)
    print(child.pid, flush=True)
    time.sleep(120)
""")


def _orphan_after_its_parent_is_killed(tmp_path, hook: str) -> psutil.Process:
  worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), hook],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
  child = psutil.Process(int(worker.stdout.readline()))
  assert child.ppid() == worker.pid
  worker.kill()
  worker.wait()
  return child


def test_the_trainer_dies_with_the_worker_that_started_it(tmp_path):
  child = _orphan_after_its_parent_is_killed(tmp_path, "hook")
  assert ray_helpers.seconds_until_dead(child, timeout=30.0) < 30.0, (
      "the trainer outlived its worker for 30 s")


def test_without_the_hook_the_trainer_outlives_its_worker(tmp_path):
  child = _orphan_after_its_parent_is_killed(tmp_path, "none")
  try:
    assert ray_helpers.seconds_until_dead(child, timeout=1.0) >= 1.0
  finally:
    child.kill()
