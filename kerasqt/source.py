"""What feeds a monitor window: a run source.

A run source is a stream of events (:mod:`kerasqt.events`, the run-log vocabulary) in a
queue, plus the little the window may ask of it. The window and its receiver thread know
only this interface:

* the live Keras callback, :class:`~kerasqt.callback.QtMonitor`;
* a replayed run log, :class:`~kerasqt.replay.ReplaySource`.

The window calls ``request_run(source)`` when a run begins. Its receiver thread drains
``source.events`` every interval, hands each chunk to ``source.tap`` (a run log writer, or
None) and refines it; it asks ``source.alive()`` now and then (False twice in a row: the
producer is gone without its end event, and the run ends as failed). Everything else is
called in the main thread.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["RunSource"]


@runtime_checkable
class RunSource(Protocol):
    """One run at a time, fed into a queue; see the module docstring."""

    title: str  # the window's title for it
    events: queue.SimpleQueue  # the current run's events
    smoothing: float  # weight of the past in the moving average of batch values, in [0, 1)
    max_rate: float  # most window updates per second
    tap: Callable[[list], None] | None  # also given every drained chunk (a run log writer), or None
    # Seconds between the producer's own turns of the Qt event loop when it holds the main thread
    # (a fit in the main thread: updates are then drawn in the turn that brings them), else None.
    loop_interval: float | None

    def alive(self) -> bool:
        """Whether the producer still runs (receiver thread)."""

    def describe(self) -> str:
        """The run in a few words for the control pane: ``12 epochs x 48 steps``."""

    def can_stop(self) -> bool:
        """Whether :meth:`stop` means anything (a replay cannot be stopped)."""

    def stop(self) -> None:
        """Ask the producer to stop (the window's *Stop training*)."""

    def control(self, action: str, args: dict | None = None) -> str:
        """Apply a control (:mod:`kerasqt.steer`): returns what will happen in a few words, raises
        :class:`~kerasqt.steer.ControlError` with one line when refused. Only when :meth:`can_stop`."""

    def run_over(self) -> bool:
        """Whether the producer has queued the run's end (the window may then wait for its
        receiver to deliver the rest: :meth:`~kerasqt.window.MonitorWindow.catch_up`)."""

    def finished(self) -> None:
        """The window's receiver ended: the run is over, whatever ended it; stop queueing."""

    def window_closed(self) -> None:
        """The window closed during the run: go on unwatched (or stop, if so configured)."""
