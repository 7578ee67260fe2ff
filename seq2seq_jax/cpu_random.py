"""Threefry-2x32 on the CPU as straight-line code, the same bits faster.

Why: JAX lowers its Threefry hash (behind every `jax.random` draw: dropout
masks, initialisers, sampling) on the CPU as a `fori_loop` over its five
groups of four rounds, to keep compile times short. XLA:CPU runs each of the
five iterations as separate passes over the whole array, so a draw costs
8.2 ns per 32-bit word on the 2-core machine, where the same rounds written
out (what JAX emits for every other platform) fuse into one pass at 1.9 ns.
The train step of configs/multi30k_attention.py (dropout 0.3) runs
1.02-1.04x as fast with it, its parameters after a step bitwise equal, and
compiles in the same time (docs/performance.md).

`use_straight_line_threefry()` registers the straight-line lowering for the
CPU. The hash is the one of Salmon et al. (2011), "Parallel random numbers:
as easy as 1, 2, 3" (Random123's threefry2x32 with 20 rounds), so every key
draws the same bits as with plain JAX: tests compare it with the paper's
known-answer vectors and with plain JAX's draws bit for bit. GPUs keep JAX's
own kernels.
"""
import numpy as np
from jax import lax

# Rotation constants of the even and odd groups of four rounds, and the key
# schedule's parity constant (Random123, threefry.h).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)
_GROUPS = 5


def _rotate_left(x, bits: int):
  return lax.shift_left(x, np.uint32(bits)) | lax.shift_right_logical(
      x, np.uint32(32 - bits))


def threefry2x32(key1, key2, x1, x2):
  """The 20-round Threefry-2x32 hash of counters (x1, x2) under (key1, key2).

  Args:
    key1, key2: uint32 key words (scalars or arrays broadcasting with x).
    x1, x2: uint32 counter words, the same shape.

  Returns:
    The two uint32 output words, each shaped like x1.
  """
  keys = (key1, key2, key1 ^ key2 ^ _PARITY)
  a, b = x1 + keys[0], x2 + keys[1]
  for group in range(_GROUPS):
    for bits in _ROTATIONS[group % 2]:
      a = a + b
      b = a ^ _rotate_left(b, bits)
    # Key injection after each group of four rounds.
    a = a + keys[(group + 1) % 3]
    b = b + keys[(group + 2) % 3] + np.uint32(group + 1)
  return a, b


def use_straight_line_threefry() -> bool:
  """Lowers `threefry2x32_p` on the CPU as straight-line code from now on
  (functions compiled before keep the loop; the bits are the same).

  Returns:
    Whether it did: a JAX without these extension points keeps its own
    lowering, which draws the same bits.
  """
  try:
    from jax.extend.random import threefry2x32_p  # pylint: disable=g-import-not-at-top
    from jax.interpreters import mlir  # pylint: disable=g-import-not-at-top
    mlir.register_lowering(
        threefry2x32_p, mlir.lower_fun(threefry2x32, multiple_results=True),
        platform="cpu")
  except (ImportError, AttributeError):
    return False
  return True
