"""The receiver: a QObject that lives in its own QThread and drains the event queue.

Thread ownership: the :class:`Receiver` is created in the main thread, moved to
its QThread (:func:`kerasqt.session.start_in_thread`), and from then on only its
loop (:meth:`~kerasqt.loops.Loop.main`, in the receiver thread) touches the refiner
and the pending buffer. ``stop()`` and ``wake()`` may be called from any thread:
they only set flags the loop checks. Results leave by queued signals:

* ``updated(object)``: a refined update (training or sine), at most ``max_rate`` per second;
* ``message(str, str)``: pane name and text (lines printed by captured threads, or the
  receiver's own notes);
* ``finished()``: the loop ended (stopped, or the run ended).

The demo's receiver, paced by its iterations, is :class:`kerasqt.demo.receiver.SineReceiver`.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from qtpy.QtCore import QObject, Signal, Slot

from .events import EndEvent, ErrorEvent, MessageEvent, StartEvent, fit_gone
from .loops import Liveness, Loop

__all__ = ["Receiver"]

log = logging.getLogger("kerasqt")

FIRST_WAKES = 0.05  # seconds between the receiver's wakes until the first data (a batch, a curve) came


class Receiver(Loop, QObject):
    """Drain ``events``, refine them with ``refiner`` and signal the window.

    ``interval``: seconds between iterations: the receiver sleeps, then takes all that was queued.
    ``max_rate``: most ``updated`` signals per second; events are coalesced in between.
    ``alive``: called every ``alive_every`` s while training runs; False twice in a row (the
    producer's own end or error event may still be on its way) means the producer is gone
    without one (``fit`` raised), and the receiver ends the run itself.
    ``tap``: called with every drained batch of events (e.g. a run log writer), and with an
    empty list after an iteration that drained none.
    ``ends_with_run``: the loop ends after the run's end or error event.
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
        max_rate: float = 30.0,
        alive: Callable[[], bool] | None = None,
        alive_every: float = 0.5,
        tap: Callable[[list], None] | None = None,
        ends_with_run: bool = True,
    ) -> None:
        super().__init__()
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        if max_rate <= 0:
            raise ValueError(f"max_rate must be > 0, got {max_rate!r}")
        self.events = events
        self.refiner = refiner
        self.interval = interval
        self.min_gap = 1.0 / max_rate
        self.liveness = Liveness(None if alive is None else lambda: self._alive(alive), alive_every)
        self.tap = tap
        self.ends_with_run = ends_with_run
        self.iteration = 0
        self.updates_sent = 0
        self._pending: list = []  # data events not yet refined and sent
        self._last_emit = 0.0
        self._received = False  # data (not only a start) came
        self._failed = False

    def stop(self) -> None:
        """Ask the loop to end after its current iteration (any thread)."""
        self.quit()

    def say(self, text: str, source: str = "receiver") -> None:
        self.message.emit(source, text)

    @Slot()
    def run(self) -> None:
        """The receiver thread's body (connected to its QThread's ``started``)."""
        self.main()

    # -- the loop (receiver thread) -------------------------------------------------------------
    def work(self) -> None:
        self.liveness.start()
        super().work()

    def pause(self) -> float:
        # Sleep, then take everything queued meanwhile: waking at each event instead (a
        # blocking get) would take the GIL from the training thread at every batch.
        # Until the first data comes, wake often: the window's first frame does not wait
        # a whole interval (a main-thread fit's receiver sleeps 0.4 s).
        return self.interval if self._received else min(self.interval, FIRST_WAKES)

    def step(self) -> bool:
        """One iteration: take what is queued, tap it, send an update when due; False when the run ended."""
        items = self.drain(rows=True)
        data = self._guard(self._split_messages, items, default=items)
        if self.tap is not None:  # idle too: a log writer flushes then
            self._guard(self.tap, items)
        self._pending.extend(data)
        self._received = self._received or any(type(ev) is not StartEvent for ev in data)
        ended = any(isinstance(ev, (EndEvent, ErrorEvent)) for ev in data) and self.ends_with_run
        self.iteration += 1
        self.iterated()
        now = time.monotonic()
        if not ended and self.liveness.gone(now):
            error = fit_gone(time.time())
            if self.tap is not None:
                self._guard(self.tap, [error])
            self._pending.append(error)
            ended = self.ends_with_run
        if self._pending and (ended or now - self._last_emit >= self.min_gap):
            self._emit(self._pending)
            self._pending = []
            self._last_emit = now
        return not ended

    def iterated(self) -> None:
        """Called after each iteration's drain, before its update goes out (receiver thread)."""

    def failed(self, exc: Exception) -> None:
        self._report("run", exc)  # a bug outside the guarded steps ends the watching, never the process

    def finish(self) -> None:
        # Deliver what is left, messages included, then say we are done.
        rest = self.drain(rows=True)
        if self.tap is not None and rest:
            self._guard(self.tap, rest)
        pending, self._pending = self._pending, []
        pending.extend(self._guard(self._split_messages, rest, default=rest))
        if pending:
            self._emit(pending)
        self.quit()
        self.finished.emit()

    def _alive(self, alive: Callable[[], bool]) -> bool:
        return self._guard(alive, default=True) or self.refiner_ended()

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
