"""The sine demo's worker: a QObject that runs in its own QThread and makes sine curves.

Thread ownership: :class:`SineWorker` is created in the main thread and moved to
its QThread (:func:`kerasqt.session.start_in_thread`); its loop
(:class:`~kerasqt.loops.Loop`) then owns it. ``stop()`` may be called from any
thread (it sets a flag and ends the current nap). Curves go to the data queue as
:class:`~kerasqt.events.SineEvent`; every ``batch_size`` curves it ``print``\\ s a
line, which the active :class:`~kerasqt.capture.OutputCapture` routes to the
worker pane instead of the terminal or notebook cell.
"""

from __future__ import annotations

import queue

import numpy as np
from qtpy.QtCore import QObject, Signal, Slot

from ..events import SineEvent
from ..loops import Loop

__all__ = ["SineWorker", "sine_curve"]


def sine_curve(periods: int, step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """x from 0 to ``periods``·π in steps of ``step``, and sin(x)."""
    x = np.arange(0.0, periods * np.pi + step / 2, step)
    return x, np.sin(x)


class SineWorker(Loop, QObject):
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

    def stop(self) -> None:
        """Ask the worker to end before its next curve (any thread)."""
        self.quit()

    @Slot()
    def run(self) -> None:
        """The worker thread's body (connected to its QThread's ``started``)."""
        self.main()

    def work(self) -> None:
        for i in range(self.iterations):
            if self.stopping:
                break
            periods = i + 1
            x, y = sine_curve(periods)
            self.events.put(SineEvent(i, periods, x, y))
            self.made += 1
            if self.made % self.batch_size == 0:
                print(f"worker: batch {self.made // self.batch_size} done, {self.made} curves, "
                      f"last with {periods} half-periods")
            self.nap(self.interval)  # a stop() ends it at once
        print(f"worker: finished after {self.made} curves")

    def finish(self) -> None:
        self.quit()
        self.finished.emit()
