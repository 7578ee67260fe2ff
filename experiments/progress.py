"""What a driver running several runs at once prints: one line per event.

A line says which run started on which node, finished (with the study's
ETA), was retried or failed. The ETA assumes the runs left take as long as
the mean of those finished so far: each running run has that mean less its
elapsed time left, and the queued runs go `slots` at a time.

The board also times what Ray adds around each trainer: from the moment a
run could start (its submission, or the end of the run whose slot it takes)
to its trainer's start ("before": scheduling, a worker, the task's start),
and from the trainer's exit to the driver hearing of it ("after"). The
trainer's times come from its task, in time.time() of its node: across
machines these figures are as good as their clocks' agreement (NTP).
"""
import statistics
import sys
import time
from typing import Dict, List, Optional, Tuple


def eta_seconds(finished: List[float], running_elapsed: List[float],
                queued: int, slots: int) -> Optional[float]:
  """Seconds until the last run ends, or None before any run has finished.

  Args:
    finished: wall seconds of the runs finished so far.
    running_elapsed: seconds each running run has run so far.
    queued: runs not started yet.
    slots: runs that fit at once.
  """
  if not finished:
    return None
  mean = statistics.fmean(finished)
  left = sum(max(mean - e, 0.0) for e in running_elapsed) + queued * mean
  return left / max(slots, 1)


def duration(seconds: Optional[float]) -> str:
  """H:MM:SS, or "?" for None."""
  if seconds is None:
    return "?"
  minutes, secs = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"


class Board:
  """The state behind the lines: queued, running and finished runs."""

  def __init__(self, total: int, slots: int):
    self.total, self.slots = total, slots
    self.begin = time.monotonic()
    self.queue: Dict[str, Optional[float]] = {}  # label -> could start at
    self.running: Dict[str, Tuple[str, float]] = {}  # label -> (node, since)
    self.seconds: Dict[str, float] = {}  # label -> trainer seconds so far
    self.finished: List[str] = []
    self.failed: List[str] = []
    self.before: List[float] = []
    self.after: List[float] = []

  def queued(self, label: str) -> None:
    free = len(self.running) + len(self.queue) < self.slots
    self.queue[label] = time.time() if free else None

  def started(self, label: str, node: str, ip: str, at: float) -> None:
    """The trainer started at `at` (time.time() on its node)."""
    could_start = self.queue.pop(label, None)
    if could_start is not None:
      self.before.append(max(at - could_start, 0.0))
    self.running[label] = (node, time.time())
    _say(f"{label}: running on node {node[:8]} ({ip})")

  def ended(self, label: str, seconds: float, at: float,
            finished: Optional[bool]) -> None:
    """The trainer exited after `seconds`, its task reporting at `at`;
    `finished`: whether the run is complete (None: it failed or is retried,
    as the next line says)."""
    now = time.time()
    node, _ = self.running.pop(label)
    self.after.append(max(now - at, 0.0))
    self.seconds[label] = self.seconds.get(label, 0.0) + seconds
    self._slot_freed(now)
    if finished:
      self.finished.append(label)
      _say(f"{label}: finished in {seconds:.1f} s on node {node[:8]}; "
           f"{self.status()}")
    elif finished is not None:  # e.g. train.max_steps_per_run
      _say(f"{label}: stopped after {seconds:.1f} s without its test line "
           "(rerun to continue)")

  def lost(self, label: str) -> float:
    """The run's worker or node died; returns how long it had run."""
    now = time.time()
    node_since = self.running.pop(label, None)
    self.queue.pop(label, None)
    self._slot_freed(now)
    return now - node_since[1] if node_since else 0.0

  def retried(self, label: str, why: str, retry: int, max_retries: int
              ) -> None:
    _say(f"{label}: {why}; retry {retry} of at most {max_retries}, from its "
         "last checkpoint")

  def gave_up(self, label: str, message: str) -> None:
    self.running.pop(label, None)
    self.queue.pop(label, None)
    self.failed.append(label)
    print(f"error: {message}", file=sys.stderr, flush=True)
    _say(f"{label}: failed; {self.status()}")

  def stopped(self, label: str, finished: bool) -> None:
    """The driver stopped the run's task; its trainer may have finished
    first (a stop after the last training step does not interrupt the
    test evaluation)."""
    was_running = self.running.pop(label, None) is not None
    self.queue.pop(label, None)
    if finished:
      self.finished.append(label)
    _say(f"{label}: " + ("finished as the stop came" if finished else
                         "stopped" if was_running else "not started"))

  def status(self) -> str:
    now = time.time()
    finished = [self.seconds[label] for label in self.finished]
    eta = eta_seconds(finished, [now - since for _, since in
                                 self.running.values()],
                      len(self.queue), self.slots)
    where = ", ".join(f"{label} on {node[:8]}" for label, (node, _) in
                      self.running.items())
    return (f"{len(self.finished)}/{self.total} finished, "
            f"{len(self.failed)} failed; running: {where or 'none'}; "
            f"queued: {len(self.queue)}; ETA {duration(eta)}")

  def summary(self) -> str:
    line = (f"Ray: {len(self.finished)} of {self.total} runs finished in "
            f"{duration(time.monotonic() - self.begin)}")
    if self.before and self.after:
      line += ("; Ray's time outside the trainers, per run: median "
               f"{statistics.median(self.before):.2f} s (at most "
               f"{max(self.before):.2f} s) before (scheduling, worker, "
               f"start), median {statistics.median(self.after):.2f} s (at "
               f"most {max(self.after):.2f} s) after (exit to driver)")
    return line

  def _slot_freed(self, now: float) -> None:
    """The queued run that waited longest can start now."""
    for label, could_start in self.queue.items():
      if could_start is None:
        self.queue[label] = now
        return


def _say(line: str) -> None:
  print(line, flush=True)
