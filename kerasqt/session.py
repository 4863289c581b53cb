"""Wiring and shutdown of the producer -> queue -> receiver -> window chain (main thread).

:class:`TrainingSession` owns one receiver thread per ``fit`` run (the producer is
the Keras callback, on the training thread); the sine demo's session is
:class:`kerasqt.demo.session.DemoSession` (still importable from here).
:func:`start_in_thread` hosts a loop object (a :class:`~kerasqt.loops.Loop` QObject
with a ``run`` slot and a ``finished`` signal) in a new QThread, and
:func:`end_thread` ends it: stop flag, ``quit``, ``wait``, then ``deleteLater`` for
the ended thread. Threads still running at interpreter exit are ended in the
:data:`~kerasqt.exits.THREADS` stage of :mod:`kerasqt.exits`.
"""

from __future__ import annotations

import queue

from qtpy.QtCore import QObject, Qt, QThread, Signal, Slot

from . import exits
from .receiver import Receiver
from .refine import TrainingRefiner

__all__ = ["TrainingSession", "end_thread", "live_threads", "start_in_thread"]

THREAD_WAIT_MS = 2000
_live: set[QThread] = set()


def live_threads() -> list[QThread]:
    """kerasqt's QThreads that are still running (tests assert this is empty)."""
    return [t for t in list(_live) if _alive(t)]


def _alive(thread: QThread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:  # the C++ object is gone
        return False


def start_in_thread(obj: QObject, name: str, on_start=None) -> QThread:
    """Move ``obj`` (with a ``run`` slot and a ``finished`` signal) to a new QThread and start it.

    ``on_start`` is called in the new thread before ``obj.run`` (e.g. to claim its printed lines).
    """
    exits.register(_end_all_at_exit, exits.THREADS)
    thread = QThread()
    thread.setObjectName(name)
    thread.loop = obj  # for _end_all_at_exit
    obj.moveToThread(thread)
    if on_start is not None:
        thread.started.connect(on_start, Qt.DirectConnection)
    thread.started.connect(obj.run)
    # Direct: quit from the worker's own thread, so that it works while the main thread waits.
    obj.finished.connect(thread.quit, Qt.DirectConnection)
    thread.finished.connect(lambda t=thread: _live.discard(t))
    _live.add(thread)
    thread.start()
    return thread


def _end_all_at_exit() -> None:
    """At interpreter exit (a script ends or calls ``sys.exit`` while a window's threads run), end
    them first: Python's teardown would otherwise destroy running QThreads, which aborts the process."""
    for thread in live_threads():
        end_thread(getattr(thread, "loop", None), thread)


def end_thread(obj: QObject | None, thread: QThread | None, timeout_ms: int = THREAD_WAIT_MS) -> bool:
    """Stop ``obj``'s loop and wait for its thread; True when the thread has ended."""
    if thread is None:
        return True
    if obj is not None:
        try:
            obj.stop()
        except RuntimeError:  # already deleted after finishing
            pass
    try:
        thread.quit()
        done = thread.wait(timeout_ms)
    except RuntimeError:
        return True
    if done:
        _live.discard(thread)
        thread.loop = None  # the thread object lives on until deleteLater runs; the loop need not
        # The loop object stays with Python (it owns it) and goes with its last reference;
        # the ended thread is deleted by the main event loop.
        thread.deleteLater()
    return done


class TrainingSession(QObject):
    """One receiver thread per training run, fed by the callback's queue."""

    updated = Signal(object)
    message = Signal(str, str)
    run_finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._receiver: Receiver | None = None
        self._thread: QThread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def begin(self, events: queue.SimpleQueue, *, smoothing: float = 0.9, max_rate: float = 30.0,
              alive=None, tap=None, interval: float | None = None) -> None:
        """Start a receiver on ``events``; it wakes every ``interval`` s (default: ``1 / max_rate``,
        at most 0.05 s) and takes all that was queued meanwhile."""
        self.end()
        refiner = TrainingRefiner(smoothing, note=lambda text: receiver.say(text))
        receiver = Receiver(events, refiner, interval=interval or min(0.05, 1.0 / max_rate), max_rate=max_rate,
                            alive=alive, tap=tap)
        receiver.updated.connect(self._forward)
        receiver.message.connect(self.message)
        receiver.finished.connect(self._finished)
        self._receiver = receiver
        self._thread = start_in_thread(receiver, "kerasqt-receiver")

    @Slot(object)  # a Qt slot: no Python proxy object left behind per run
    def _forward(self, update) -> None:
        if self.sender() is self._receiver:  # not a late update of a run that was replaced
            self.updated.emit(update)

    @Slot()
    def _finished(self) -> None:
        # The end of a replaced run's receiver (queued before the next run began) must not end this one.
        if self._thread is not None and self.sender() is self._receiver:
            self.end()
            self.run_finished.emit()

    def wake(self) -> None:
        """Let the receiver take what is queued now (any thread): the end of a run, say."""
        receiver = self._receiver
        if receiver is not None:
            receiver.wake()

    def end(self) -> bool:
        ok = end_thread(self._receiver, self._thread)
        self._receiver = self._thread = None
        return ok


def __getattr__(name: str):
    if name == "DemoSession":  # moved to kerasqt.demo.session; lazily: that module imports this one
        from .demo.session import DemoSession

        return DemoSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
