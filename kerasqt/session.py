"""Wiring and shutdown of the producer -> queue -> receiver -> window chain (main thread).

:class:`DemoSession` owns the sine demo's two threads (worker and receiver);
:class:`TrainingSession` owns one receiver thread per ``fit`` run (the worker is
the Keras callback, on the training thread). Both start their threads here and
end them here, in reverse order: stop flags, ``quit``, ``wait``, then
``deleteLater`` for the ended thread.
"""

from __future__ import annotations

import queue
import threading

from PyQt5.QtCore import QObject, Qt, QThread, pyqtSignal

from .capture import OutputCapture
from .demo import DemoSettings, SineWorker
from .receiver import Receiver
from .refine import SineRefiner, TrainingRefiner

__all__ = ["DemoSession", "TrainingSession", "live_threads"]

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


def start_in_thread(obj: QObject, name: str) -> QThread:
    """Move ``obj`` (with a ``run`` slot and a ``finished`` signal) to a new QThread and start it."""
    thread = QThread()
    thread.setObjectName(name)
    obj.moveToThread(thread)
    thread.started.connect(obj.run)
    # Direct: quit from the worker's own thread, so that it works while the main thread waits.
    obj.finished.connect(thread.quit, Qt.DirectConnection)
    thread.finished.connect(lambda t=thread: _live.discard(t))
    _live.add(thread)
    thread.start()
    return thread


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
        # The loop object stays with Python (it owns it) and goes with its last reference;
        # the ended thread is deleted by the main event loop.
        thread.deleteLater()
    return done


class DemoSession(QObject):
    """The sine demo: a :class:`SineWorker` thread and a paced :class:`Receiver` thread."""

    updated = pyqtSignal(object)
    message = pyqtSignal(str, str)
    running_changed = pyqtSignal(bool)

    def __init__(self, settings: DemoSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or DemoSettings()
        self.runs = 0
        self._worker = self._receiver = None
        self._worker_thread = self._receiver_thread = None
        self._capture: OutputCapture | None = None
        self._refiner: SineRefiner | None = None

    @property
    def running(self) -> bool:
        return self._receiver_thread is not None or self._worker_thread is not None

    def start(self) -> bool:
        """Start both threads; False (and a control message) when they already run."""
        if self.running:
            self.message.emit("control", "threads are already running")
            return False
        s = self.settings
        self.runs += 1
        events: queue.SimpleQueue = queue.SimpleQueue()
        self._capture = OutputCapture(events).start()
        self._refiner = SineRefiner(s.batch_size, seed=s.seed)
        self._worker = SineWorker(events, iterations=s.worker_iterations, interval=s.worker_interval,
                                  batch_size=s.batch_size)
        self._receiver = Receiver(events, self._refiner, interval=s.receiver_interval,
                                  iterations=s.receiver_iterations, paced=True,
                                  on_iteration=self._receiver_iteration)
        self._receiver.updated.connect(self.updated)
        self._receiver.message.connect(self.message)
        self._receiver.finished.connect(self._receiver_finished)
        self._worker.finished.connect(self._worker_finished)
        self._worker_thread = start_in_thread(self._worker, "kerasqt-sine-worker")
        self._receiver_thread = start_in_thread(self._receiver, "kerasqt-receiver")
        self.message.emit("control", f"run {self.runs}: started worker ({s.worker_iterations} curves every "
                                     f"{s.worker_interval:g} s) and receiver ({s.receiver_iterations} "
                                     f"iterations every {s.receiver_interval:g} s)")
        self.running_changed.emit(True)
        return True

    def _receiver_iteration(self, i: int) -> None:  # receiver thread
        if i == 1 and self._capture is not None:
            self._capture.set_source(threading.get_ident(), "receiver")
        refiner = self._refiner
        if refiner is not None and refiner.next_iteration():
            print(f"receiver: iteration {i}, batch {refiner.batch} begins, colour {refiner.color}")

    def _worker_finished(self) -> None:
        if self.running:
            self.message.emit("control", "worker finished its iterations")

    def _receiver_finished(self) -> None:
        if self._receiver_thread is not None:
            self.message.emit("control", "receiver finished its iterations: stopping the worker too")
            self.stop()

    def stop(self) -> bool:
        """Stop both threads and wait for them; True when both ended."""
        if not self.running:
            return True
        # Worker first, so that the receiver's last drain collects everything it made and printed.
        ok = end_thread(self._worker, self._worker_thread)
        ok = end_thread(self._receiver, self._receiver_thread) and ok
        self._worker = self._receiver = None
        self._worker_thread = self._receiver_thread = None
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self.message.emit("control", f"run {self.runs}: threads stopped" + ("" if ok else " (timed out!)"))
        self.running_changed.emit(False)
        return ok


class TrainingSession(QObject):
    """One receiver thread per training run, fed by the callback's queue."""

    updated = pyqtSignal(object)
    message = pyqtSignal(str, str)
    run_finished = pyqtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._receiver: Receiver | None = None
        self._thread: QThread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def begin(self, events: queue.SimpleQueue, *, smoothing: float = 0.9, max_rate: float = 30.0,
              alive=None, tap=None) -> None:
        self.end()
        refiner = TrainingRefiner(smoothing, note=lambda text: receiver.say(text))
        receiver = Receiver(events, refiner, interval=min(0.05, 1.0 / max_rate), max_rate=max_rate,
                            alive=alive, tap=tap)
        receiver.updated.connect(self.updated)
        receiver.message.connect(self.message)
        receiver.finished.connect(self._finished)
        self._receiver = receiver
        self._thread = start_in_thread(receiver, "kerasqt-receiver")

    def _finished(self) -> None:
        if self._thread is not None:
            self.end()
            self.run_finished.emit()

    def end(self) -> bool:
        ok = end_thread(self._receiver, self._thread)
        self._receiver = self._thread = None
        return ok
