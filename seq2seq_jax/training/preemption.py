"""Stopping a run on SIGTERM/SIGINT: finish the step, checkpoint, exit 75.

The first signal asks the training loop to stop after its current step; it
writes a checkpoint and the process exits with PREEMPTED_EXIT_CODE
(EX_TEMPFAIL: rerun the same command to resume).

A process can be blocked where Python never gets to run a signal handler: a
cross-process barrier whose peer died, a hung file system. Such a run must
still be stoppable, so the C-level handler also writes every signal to a pipe
(`signal.set_wakeup_fd`) that a watcher thread reads. The watcher ends the
process at once on a second signal, and when the graceful stop has not
finished `grace_seconds` after the first. The checkpoints already written stay
usable: Orbax renames a step into place only once it is complete.
"""
import os
import select
import signal
import threading
import time
from typing import Optional

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: try again later, with the same workdir
SIGNALS = (signal.SIGTERM, signal.SIGINT)
DEFAULT_GRACE_SECONDS = 300.0


class Preempted(Exception):
  """SIGTERM/SIGINT received; a checkpoint was written at `step`."""

  def __init__(self, step: int):
    super().__init__(f"preempted: checkpoint written at step {step}; rerun with "
                     "the same --workdir to resume")
    self.step = step


def _force_exit(signum: int, why: str) -> None:
  # os.write, not logging: the main thread may hold the logging lock.
  os.write(2, f"\n{signal.Signals(signum).name}: {why}; exiting now without "
              "a new checkpoint (the last completed one is kept)\n".encode())
  os._exit(128 + signum)  # pylint: disable=protected-access


class StopSignal:
  """Records SIGTERM/SIGINT for the training loop; forces exit when stuck.

  Use as a context manager on the main thread; `received` is the first
  signal's number, or None.
  """

  def __init__(self, grace_seconds: float = DEFAULT_GRACE_SECONDS):
    self.grace_seconds = grace_seconds
    self.received: Optional[int] = None
    self._previous_handlers = {}
    self._previous_wakeup_fd = -1
    self._pipe = None
    self._watcher = None

  def __enter__(self):
    for sig in SIGNALS:
      self._previous_handlers[sig] = signal.signal(sig, self._handle)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    self._pipe = (read_fd, write_fd)
    self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd,
                                                    warn_on_full_buffer=False)
    self._watcher = threading.Thread(target=self._watch, name="stop-signal",
                                     daemon=True)
    self._watcher.start()
    return self

  def _handle(self, signum, frame):
    del frame
    if self.received is None:
      self.received = signum

  def _watch(self) -> None:
    """Counts signals as they arrive, whatever the main thread is doing."""
    read_fd = self._pipe[0]
    first_at = None
    while True:
      timeout = None
      if first_at is not None:
        timeout = max(first_at + self.grace_seconds - time.monotonic(), 0.0)
      if not _readable(read_fd, timeout):
        _force_exit(self.received or signal.SIGTERM,
                    f"the graceful stop took longer than {self.grace_seconds:g} s")
      data = os.read(read_fd, 64)
      if not data:  # the write end was closed: the run is over
        return
      for signum in data:
        if signum not in SIGNALS:
          continue
        if first_at is not None:
          _force_exit(signum, "second stop signal")
        first_at = time.monotonic()

  def __exit__(self, *exc):
    signal.set_wakeup_fd(self._previous_wakeup_fd)
    for sig, handler in self._previous_handlers.items():
      signal.signal(sig, handler)
    os.close(self._pipe[1])
    self._watcher.join(timeout=5)
    os.close(self._pipe[0])


def _readable(fd: int, timeout: Optional[float]) -> bool:
  ready, _, _ = select.select([fd], [], [], timeout)
  return bool(ready)
