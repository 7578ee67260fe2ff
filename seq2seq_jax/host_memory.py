"""Keeps freed host memory in the process, so XLA:CPU reuses it (glibc only).

Why: XLA:CPU allocates each run's temporary buffer (97 MB for one LSTM-256
layer's forward and backward pass at batch 128 and length 32, more for a
whole train step) with `posix_memalign` and frees it when the run ends.
glibc serves a block that large from a thread other than the main one with a
fresh `mmap` (a thread's own arena grows in heaps of at most 64 MB) and
hands it back to the kernel on `free`, so every step page-faults its whole
working set in again, zero-filled by the kernel: about 24,000 faults per run
of that layer, about 18% of its time on a 2-core Xeon (docs/performance.md).
One arena (the main heap, which grows without that limit), no `mmap` and a
2 GB trim threshold keep a freed buffer in the heap for the next step.

The price is one lock for all threads. XLA's parallel compilation waits on
it (compiling a train step takes 1.5-1.6x as long), and so do the many
small allocations of a small model's step. Measured on a 2-core Xeon
(docs/performance.md): the five standard cases of
benchmarks/compare_pytorch.py (LSTM/GRU 512-1024, batch 64-128) step
1.08-1.20x as fast, configs/multi30k_attention.py trains 1.1x as fast, but
configs/default.py (a 32-unit model whose step needs a few MB) runs 0.9x
as fast. So it is opt-in: `SEQ2SEQ_JAX_HOST_MEMORY=keep python -m
seq2seq_jax.train ...` for models whose step works on more than 64 MB.
Freed memory then stays with the process (its resident size stays at its
peak).

`configure()` must run before JAX starts its CPU threads (glibc picks a
thread's arena when the thread first allocates, so threads already running
keep theirs); the train command calls it first thing. On C libraries other
than glibc (macOS, musl) it changes nothing. Any other value of the
variable is an error (ValueError), not a silent fallback.
"""
import ctypes
import os
import platform

ENV_VAR = "SEQ2SEQ_JAX_HOST_MEMORY"
MODES = ("keep", "default")

# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0),
             (_M_TRIM_THRESHOLD, 2**31 - 1))


def requested_mode() -> str:
  """The mode asked for in the environment ("default" unless set).

  Raises:
    ValueError: the variable holds something other than one of MODES.
  """
  mode = os.environ.get(ENV_VAR, "default")
  if mode not in MODES:
    raise ValueError(f"{ENV_VAR}={mode!r}: valid values are "
                     f"{', '.join(MODES)}")
  return mode


_applied = False


def configure() -> bool:
  """Applies the "keep" settings if asked for; returns whether they hold."""
  global _applied
  if _applied or requested_mode() == "default":
    return _applied
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    return False
  try:
    libc = ctypes.CDLL("libc.so.6")
  except OSError:
    return False
  _applied = all(libc.mallopt(param, value) == 1 for param, value in _SETTINGS)
  return _applied


def applied() -> bool:
  """Whether `configure()` changed glibc's settings in this process."""
  return _applied
