"""A progress bar with an ETA for the steps of a preparation that take long.

tqdm (installed with tensorflow-datasets) on stderr; it shows only once a
step has run for a few seconds, so small datasets prepare silently.
"""
import tqdm

SHOW_AFTER_SECONDS = 3.0


class Bar:
  """`advance(n)` as work is done; `close()` at the end."""

  def __init__(self, what: str, total: int, unit: str):
    self._bar = tqdm.tqdm(total=total, desc=what, unit=unit, unit_scale=True,
                          delay=SHOW_AFTER_SECONDS, mininterval=1.0,
                          dynamic_ncols=True)

  def advance(self, n: int) -> None:
    self._bar.update(n)

  def close(self) -> None:
    self._bar.close()
