"""cpu_random: the straight-line Threefry lowering draws JAX's own bits."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from seq2seq_jax import cpu_random

# Random123's known-answer vectors for threefry2x32 with 20 rounds:
# (key, counter) -> output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3),
     (0xC4923A9C, 0x483DF7A0)),
]

# Draws of every kind the project makes (dropout masks, initialisers,
# sampling), run here with the project imported and in a fresh interpreter
# with plain JAX.
DRAWS = textwrap.dedent("""
    import sys
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np

    key = jax.random.key(42)
    draws = {
        "bits": jax.jit(lambda k: jax.random.bits(k, (1001, 7)))(key),
        "bernoulli": jax.jit(lambda k: jax.random.bernoulli(
            jax.random.fold_in(k, 3), 0.7, (64, 33)))(key),
        "normal": jax.jit(lambda k: jax.random.normal(
            jax.random.split(k, 5)[2], (129,)))(key),
        "split_vmapped": jax.random.key_data(jax.jit(jax.vmap(
            lambda k: jax.random.split(k, 3)))(jax.random.split(key, 4))),
        "categorical": jax.jit(lambda k: jax.random.categorical(
            k, jnp.zeros((8, 50))))(key),
        "dropout": nn.Dropout(0.3).apply(
            {}, jnp.ones((16, 9, 31)), deterministic=False,
            rngs={"dropout": jax.random.PRNGKey(7)}),
        "eager": jax.random.uniform(key, (5,)),
    }
    np.savez(sys.argv[1], **{k: np.asarray(v) for k, v in draws.items()})
""")


def test_hash_matches_the_known_answers():
  for key, counter, expected in KNOWN_ANSWERS:
    got = cpu_random.threefry2x32(*(jnp.uint32(v) for v in key + counter))
    assert tuple(int(word) for word in got) == expected


def test_jax_hash_through_the_registered_lowering_matches_the_known_answers():
  # Importing seq2seq_jax registered the straight-line lowering.
  for key, counter, expected in KNOWN_ANSWERS:
    got = jax.jit(threefry_2x32)(np.uint32(key), np.uint32(counter))
    assert tuple(int(word) for word in got) == expected


def test_draws_equal_plain_jax_bit_for_bit(tmp_path):
  script = tmp_path / "draws.py"
  script.write_text(DRAWS)
  plain, project = tmp_path / "plain.npz", tmp_path / "project.npz"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, str(script), str(plain)], check=True,
                 env=env, cwd=tmp_path)
  subprocess.run(
      [sys.executable, "-c",
       "import runpy, sys, seq2seq_jax; sys.argv = sys.argv[1:]; "
       "runpy.run_path(sys.argv[0], run_name='__main__')",
       str(script), str(project)],
      check=True, env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
  plain, project = np.load(plain), np.load(project)
  assert sorted(plain) == sorted(project)
  for name in plain:
    np.testing.assert_array_equal(project[name], plain[name], err_msg=name)
  # Not vacuous: the draws are random, not constant.
  assert 0.6 < plain["bernoulli"].mean() < 0.8


def test_compiled_draw_has_no_loop():
  assert cpu_random.use_straight_line_threefry()  # this JAX has the hooks
  compiled = jax.jit(lambda k: jax.random.bits(k, (1000,))).lower(
      jax.random.key(0)).compile().as_text()
  assert " while(" not in compiled
