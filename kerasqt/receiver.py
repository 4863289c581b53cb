"""The receiver: a QObject that lives in its own QThread and drains the event queue.

Thread ownership: the :class:`Receiver` is created in the main thread, moved to
its QThread, and from then on only its ``run`` loop (receiver thread) touches
the refiner and the pending buffer. ``stop()`` may be called from any thread:
it only clears a flag the loop checks. Results leave by queued signals:

* ``updated(object)``: a refined update (training or sine), at most ``max_rate`` per second;
* ``message(str, str)``: pane name and text (lines printed by captured threads, or the
  receiver's own notes);
* ``finished()``: the loop ended (stopped, iterations done, or training ended).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from qtpy.QtCore import QObject, Signal, Slot

from .events import EndEvent, ErrorEvent, MessageEvent, StartEvent, drain, fit_gone

__all__ = ["Receiver"]

log = logging.getLogger("kerasqt")

FIRST_WAKES = 0.05  # seconds between the receiver's wakes until the first data (a batch, a curve) came


class Receiver(QObject):
    """Drain ``events``, refine them with ``refiner`` and signal the window.

    ``interval``: seconds between iterations: the receiver sleeps, then takes all that was queued.
    ``iterations``: stop after this many iterations (None: until stopped or training ends).
    ``max_rate``: most ``updated`` signals per second; events are coalesced in between.
    ``on_iteration``: called in the receiver thread after each iteration with its number.
    ``alive``: called every ``alive_every`` s while training runs; False twice in a row (the
    producer's own end or error event may still be on its way) means the producer is gone
    without one (``fit`` raised), and the receiver ends the run itself.
    ``tap``: called with every drained batch of events (e.g. a run log writer), and with an
    empty list after an iteration that drained none.
    ``paced``: a stop ends the loop at once, without taking what is queued (the demo).
    """

    updated = Signal(object)
    message = Signal(str, str)
    finished = Signal()

    def __init__(
        self,
        events: queue.SimpleQueue,
        refiner,
        *,
        interval: float = 0.02,
        iterations: int | None = None,
        max_rate: float = 30.0,
        on_iteration: Callable[[int], None] | None = None,
        alive: Callable[[], bool] | None = None,
        alive_every: float = 0.5,
        tap: Callable[[list], None] | None = None,
        ends_with_run: bool = True,
        paced: bool = False,
    ) -> None:
        super().__init__()
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        if iterations is not None and iterations < 1:
            raise ValueError(f"iterations must be >= 1 or None, got {iterations!r}")
        if max_rate <= 0:
            raise ValueError(f"max_rate must be > 0, got {max_rate!r}")
        self.events = events
        self.refiner = refiner
        self.interval = interval
        self.iterations = iterations
        self.min_gap = 1.0 / max_rate
        self.on_iteration = on_iteration
        self.alive = alive
        self.alive_every = alive_every
        self.tap = tap
        self.ends_with_run = ends_with_run
        self.paced = paced
        self.iteration = 0
        self.updates_sent = 0
        self._running = True
        self._wakeup = threading.Event()
        self._failed = False

    def stop(self) -> None:
        """Ask the loop to end after its current iteration (any thread)."""
        self._running = False
        self._wakeup.set()

    def wake(self) -> None:
        """End the current wait now: something that should not wait is queued (any thread)."""
        self._wakeup.set()

    def say(self, text: str, source: str = "receiver") -> None:
        self.message.emit(source, text)

    @Slot()
    def run(self) -> None:
        pending: list = []
        last_emit = 0.0
        next_alive = time.monotonic() + self.alive_every
        ended = gone = received = False
        try:
            while self._running and not ended:
                # Sleep, then take everything queued meanwhile: waking at each event instead (a
                # blocking get) would take the GIL from the training thread at every batch.
                # Until the first data comes, wake often: the window's first frame does not wait
                # a whole interval (a main-thread fit's receiver sleeps 0.4 s).
                self._sleep(self.interval if received else min(self.interval, FIRST_WAKES))
                if not self._running and self.paced:
                    break
                items = drain(self.events, rows=True)
                data = self._guard(self._split_messages, items, default=items)
                if self.tap is not None:  # idle too: a log writer flushes then
                    self._guard(self.tap, items)
                pending.extend(data)
                received = received or any(type(ev) is not StartEvent for ev in data)
                ended = any(isinstance(ev, (EndEvent, ErrorEvent)) for ev in data) and self.ends_with_run
                self.iteration += 1
                if self.on_iteration is not None:
                    self._guard(self.on_iteration, self.iteration)
                now = time.monotonic()
                if self.alive is not None and now >= next_alive and not ended:
                    next_alive = now + self.alive_every
                    if self._guard(self.alive, default=True) or self.refiner_ended():
                        gone = False
                    elif not gone:  # ask once more: the producer's own end or error may be on its way
                        gone = True
                    else:
                        error = fit_gone(time.time())
                        if self.tap is not None:
                            self._guard(self.tap, [error])
                        pending.append(error)
                        ended = self.ends_with_run
                if pending and (ended or now - last_emit >= self.min_gap):
                    self._emit(pending)
                    pending = []
                    last_emit = now
                if self.iterations is not None and self.iteration >= self.iterations:
                    break
        except Exception as exc:  # a bug outside the guarded steps ends the watching, never the process
            self._report("run", exc)
        finally:
            # Deliver what is left, messages included, then say we are done.
            rest = drain(self.events, rows=True)
            if self.tap is not None and rest:
                self._guard(self.tap, rest)
            pending.extend(self._guard(self._split_messages, rest, default=rest))
            if pending:
                self._emit(pending)
            self._running = False
            self.finished.emit()

    def _sleep(self, seconds: float) -> None:
        if self._running and self._wakeup.wait(seconds):
            self._wakeup.clear()

    def refiner_ended(self) -> bool:
        return bool(getattr(self.refiner, "ended", False))

    def _split_messages(self, items: list) -> list:
        """Emit message lines (one signal per pane) and return the data events."""
        if not items:
            return items
        lines: dict[str, list[str]] = {}
        data = []
        for ev in items:
            if isinstance(ev, MessageEvent):
                lines.setdefault(ev.source, []).append(ev.text)
            else:
                data.append(ev)
        for source, texts in lines.items():
            self.message.emit(source, "\n".join(texts))
        return data

    def _emit(self, events: list) -> None:
        update = self._guard(self.refiner.refine, events)
        if update is not None:
            self.updates_sent += 1
            self.updated.emit(update)

    def _guard(self, fn, *args, default=None):
        """Run ``fn``; a bug in it is reported once and the receiver carries on."""
        try:
            return fn(*args)
        except Exception as exc:
            self._report(getattr(fn, "__name__", fn), exc)
            return default

    def _report(self, where, exc: Exception) -> None:
        """Log the receiver's first internal error (an exception escaping a QThread slot would
        abort the process under PyQt5) and tell the window; later ones stay quiet."""
        if not self._failed:
            self._failed = True
            log.error("kerasqt receiver: %s failed; monitoring continues", where, exc_info=exc)
            self.message.emit("receiver", f"internal error in {where}: {exc!r}")
