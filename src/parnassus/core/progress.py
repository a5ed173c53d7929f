"""Progress reporting for long commands: a bar with events/s and ETA, plus log lines."""

from __future__ import annotations

import logging
import sys
import time

from tqdm.auto import tqdm


def progress_bar(total: int | None, description: str, unit: str = "events"):
    """Return a tqdm bar that shows the rate (events/s) and the ETA on stderr.

    The bar is disabled when stderr is not a terminal (CI, log files); use
    :class:`RateLogger` there for periodic log lines.
    """
    return tqdm(total=total, desc=description, unit=f" {unit}", disable=not sys.stderr.isatty(), dynamic_ncols=True)


class RateLogger:
    """Log ``done/total, rate, ETA`` through a logger at most every ``interval`` seconds."""

    def __init__(self, logger: logging.Logger, total: int | None, what: str, unit: str = "events", interval: float = 10.0):
        self.logger = logger
        self.total = total
        self.what = what
        self.unit = unit
        self.interval = interval
        self.start = time.perf_counter()
        self.last = self.start
        self.done = 0

    def update(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            self.logger.info("%s: %s", self.what, self.status())

    def status(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.done}"
        if self.total:
            text += f"/{self.total}"
            remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
            text += f" {self.unit}, {rate:.1f} {self.unit}/s, ETA {remaining:.0f} s"
        else:
            text += f" {self.unit}, {rate:.1f} {self.unit}/s"
        return text

    def finish(self) -> float:
        """Log the final count and rate; return the rate in units per second."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        self.logger.info("%s: %d %s in %.1f s (%.1f %s/s)", self.what, self.done, self.unit, elapsed, rate, self.unit)
        return rate
