"""The sine demo's worker: a QObject that runs in its own QThread and makes sine curves.

Thread ownership: :class:`SineWorker` is created in the main thread and moved to
its QThread; its ``run`` loop then owns it. ``stop()`` may be called from any
thread (it clears a flag). Curves go to the data queue as
:class:`~kerasqt.events.SineEvent`; every ``batch_size`` curves it ``print``\\ s a
line, which the active :class:`~kerasqt.capture.OutputCapture` routes to the
worker pane instead of the terminal or notebook cell.
"""

from __future__ import annotations

import queue
import time

import numpy as np
from qtpy.QtCore import QObject, Signal, Slot

from ..events import SineEvent

__all__ = ["DemoSettings", "SineWorker", "sine_curve"]


def sine_curve(periods: int, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """x from 0 to ``periods``·π in steps of ``step``, and sin(x)."""
    x = np.arange(0.0, periods * np.pi + step / 2, step)
    return x, np.sin(x)


class DemoSettings:
    """Iteration counts, intervals and batch sizes of the sine demo (the original's defaults).

    ``log_dir``: record each demo run to a run log in this folder (:mod:`kerasqt.runlog`);
    None (the default): no recording.
    """

    def __init__(
        self,
        worker_iterations: int = 20,
        worker_interval: float = 0.1,
        receiver_iterations: int = 50,
        receiver_interval: float = 0.05,
        batch_size: int = 5,
        seed: int | None = None,
        log_dir=None,
    ) -> None:
        for name, value in (("worker_iterations", worker_iterations), ("receiver_iterations", receiver_iterations),
                            ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name, value in (("worker_interval", worker_interval), ("receiver_interval", receiver_interval)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 60:
                raise ValueError(f"{name} must be a number of seconds in (0, 60], got {value!r}")
        self.worker_iterations = worker_iterations
        self.worker_interval = float(worker_interval)
        self.receiver_iterations = receiver_iterations
        self.receiver_interval = float(receiver_interval)
        self.batch_size = batch_size
        self.seed = seed
        self.log_dir = log_dir


class SineWorker(QObject):
    """Makes ``iterations`` sine curves, one every ``interval`` s, with 1, 2, 3, ... half-periods
    (x from 0 to k·π)."""

    finished = Signal()

    def __init__(self, events: queue.SimpleQueue, *, iterations: int = 20, interval: float = 0.1,
                 batch_size: int = 5) -> None:
        super().__init__()
        self.events = events
        self.iterations = iterations
        self.interval = interval
        self.batch_size = batch_size
        self.made = 0
        self._running = True

    def stop(self) -> None:
        self._running = False

    @Slot()
    def run(self) -> None:
        try:
            for i in range(self.iterations):
                if not self._running:
                    break
                periods = i + 1
                x, y = sine_curve(periods)
                self.events.put(SineEvent(i, periods, x, y))
                self.made += 1
                if self.made % self.batch_size == 0:
                    print(f"worker: batch {self.made // self.batch_size} done, {self.made} curves, "
                          f"last with {periods} half-periods")
                self._sleep(self.interval)
            print(f"worker: finished after {self.made} curves")
        finally:
            self._running = False
            self.finished.emit()

    def _sleep(self, seconds: float) -> None:
        """Sleep in short slices so that stop() takes effect quickly."""
        end = time.monotonic() + seconds
        while self._running:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.01))
