"""The gradient tests again, compiled with every XLA optimisation on.

The suite disables most XLA optimisations for speed (conftest.py), but
training compiles with them; a hand-written backward pass that only agrees
with autodiff in unoptimised code would pass unnoticed. This reruns those
files, unchanged, in a fresh process with the optimisations on.
"""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import OPTIMIZED_ENV, ROOT

GRADIENT_TESTS = ("tests/test_fused_recurrence.py",
                  "tests/test_token_cross_entropy.py",
                  "tests/test_recurrent.py")


@pytest.mark.slow
def test_gradient_tests_pass_with_xla_optimisations_on():
  env = dict(os.environ, **{OPTIMIZED_ENV: "1"})
  check = ("import jax, tests.conftest; "
           "assert not jax.config.read('jax_disable_most_optimizations')")
  result = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
       *GRADIENT_TESTS],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
      check=False)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
  passed = re.search(r"(\d+) passed", result.stdout)
  assert passed and int(passed.group(1)) >= 20, result.stdout[-2000:]
  assert " skipped" not in result.stdout, result.stdout[-2000:]
  # The child really ran with the optimisations on.
  probe = subprocess.run(
      [sys.executable, "-c", check],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
      check=False)
  assert probe.returncode == 0, probe.stderr[-2000:]
