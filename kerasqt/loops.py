"""The one base of kerasqt's thread loops: cooperative stop, wake, drain, liveness (no Qt).

A :class:`Loop` runs in a thread of its own, its *loop thread*: a QThread for a QObject
(the :class:`~kerasqt.receiver.Receiver`, the demo's
:class:`~kerasqt.demo.worker.SineWorker`, hosted by :func:`kerasqt.session.start_in_thread`),
or a Python thread (:class:`LoopThread`: the run log's
:class:`~kerasqt.runlog.LogFollower`; the :class:`~kerasqt.runlog.ReplayFeeder`). The host
calls :meth:`Loop.main` in that thread, which runs :meth:`Loop.work` (by default: nap, then
:meth:`Loop.step`, until stopped or a step says the work is done), hands an exception to
:meth:`Loop.failed`, and always ends with :meth:`Loop.finish`.

Threads: :meth:`Loop.quit` and :meth:`Loop.wake` may be called from any thread (they
only set flags the loop checks); everything else runs in the loop thread. A
:class:`Liveness` belongs to its loop thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from .events import drain

__all__ = ["Liveness", "Loop", "LoopThread"]


class Loop:
    """A cooperative loop in a thread of its own (the loop thread).

    Subclasses give :meth:`step` (one turn: take what came, act on it) and, if the
    loop should wait a varying time between turns, :meth:`pause`; or replace
    :meth:`work` as a whole. ``events`` is the queue :meth:`drain` takes from.

    ``__init__`` passes its arguments on (cooperative), so that a Loop mixes into a
    QObject (``class Receiver(Loop, QObject)``) or a ``threading.Thread``.
    """

    events = None  # the queue that drain() takes from, if the loop has one
    interval = 0.1  # seconds between turns (pause())

    def __init__(self, *args, **kwargs) -> None:
        self._stop_flag = threading.Event()
        self._wakeup = threading.Event()
        super().__init__(*args, **kwargs)

    # -- any thread ---------------------------------------------------------------------------
    def quit(self) -> None:
        """Ask the loop to end after its current turn; returns at once (any thread)."""
        self._stop_flag.set()
        self._wakeup.set()

    def wake(self) -> None:
        """End the current nap now: something that should not wait is queued (any thread)."""
        self._wakeup.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`quit` was called."""
        return self._stop_flag.is_set()

    # -- loop thread ----------------------------------------------------------------------------
    def main(self) -> None:
        """The loop thread's body: :meth:`work`; :meth:`failed` if it raised; always :meth:`finish`."""
        try:
            self.work()
        except Exception as exc:
            self.failed(exc)
        finally:
            self.finish()

    def work(self) -> None:
        """Nap, then :meth:`step`, until stopped or a step returns False."""
        while not self.stopping:
            self.nap(self.pause())
            if not self.step():
                return

    def step(self) -> bool:
        """One turn of the loop; False when the work is done."""
        raise NotImplementedError

    def pause(self) -> float:
        """Seconds to nap before the next turn."""
        return self.interval

    def failed(self, exc: Exception) -> None:
        """:meth:`work` raised ``exc`` (called in the ``except`` clause): re-raise it, unless a subclass
        handles it."""
        raise exc

    def finish(self) -> None:
        """The loop has ended (stopped, done or failed): hand on what is left, say so."""

    def nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a :meth:`wake` or :meth:`quit` ends it early. No nap once stopping."""
        if not self.stopping and self._wakeup.wait(seconds):
            self._wakeup.clear()

    def drain(self, *, rows: bool = False) -> list:
        """Everything queued in ``events`` now, without waiting (:func:`kerasqt.events.drain`)."""
        return drain(self.events, rows=rows)


class LoopThread(Loop, threading.Thread):
    """A :class:`Loop` that is its own daemon Python thread: ``start()``, ``is_alive()``, ``join()``.

    :meth:`stop` asks the loop to end and waits for it (any other thread).
    """

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)

    def run(self) -> None:
        self.main()

    def stop(self, timeout: float | None = 2.0) -> None:
        """Ask the loop to end and wait up to ``timeout`` s for its thread (any thread)."""
        self.quit()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


class Liveness:
    """Whether the producer that feeds a loop is gone, asked of ``ask()`` every ``every`` s.

    A producer is gone only when ``ask()`` says False twice in a row: the first time,
    its own end (or error) event may still be on its way. Belongs to the loop thread;
    :meth:`start` when the loop starts. ``ask=None``: never gone.
    """

    def __init__(self, ask: Callable[[], bool] | None, every: float = 0.5) -> None:
        self.ask = ask
        self.every = every
        self._due = math.inf
        self._doubt = False

    def start(self) -> None:
        """Ask first ``every`` s from now."""
        self._due = time.monotonic() + self.every
        self._doubt = False

    def heard(self) -> None:
        """A sign of life came (events): the next False is a first one again."""
        self._doubt = False

    def gone(self, now: float) -> bool:
        """Ask when due (``now``: ``time.monotonic()``); True when the producer is gone."""
        if self.ask is None or now < self._due:
            return False
        self._due = now + self.every
        if self.ask():
            self._doubt = False
            return False
        if not self._doubt:  # ask once more: its own end may be on its way
            self._doubt = True
            return False
        return True
