"""Trains like `python -m seq2seq_jax.train`, SIGKILLed while one checkpoint is
being written: the fault tests/test_crash_recovery.py needs, kept out of the
library's save path.

  python -m tests.kill_during_save STEP [seq2seq_jax.train flags]
"""
import os
import signal
import sys

from seq2seq_jax import cli
from seq2seq_jax import train as train_cli
from seq2seq_jax.training import checkpointing
from seq2seq_jax.training import loop


def _kill_after_starting_save(step: int) -> None:
  save = checkpointing.Checkpointer.save

  def save_then_kill(self, at_step, state, meta):
    save(self, at_step, state, meta)
    if at_step == step:
      os.kill(os.getpid(), signal.SIGKILL)  # mid-write: the files are partial

  checkpointing.Checkpointer.save = save_then_kill


if __name__ == "__main__":
  _kill_after_starting_save(int(sys.argv.pop(1)))
  cli.run(train_cli.main, extra_errors=(loop.NonFiniteError,))
