"""Wiring and shutdown of the producer -> queue -> receiver -> window chain (main thread).

:class:`DemoSession` owns the sine demo's two threads (worker and receiver);
:class:`TrainingSession` owns one receiver thread per ``fit`` run (the worker is
the Keras callback, on the training thread). Both start their threads here and
end them here, in reverse order: stop flags, ``quit``, ``wait``, then
``deleteLater`` for the ended thread.
"""

from __future__ import annotations

import atexit
import queue
import threading

from qtpy.QtCore import QObject, Qt, QThread, Signal, Slot

from .capture import OutputCapture
from .demo import DemoSettings, SineWorker
from .receiver import Receiver
from .refine import SineRefiner, TrainingRefiner

__all__ = ["DemoSession", "TrainingSession", "live_threads"]

THREAD_WAIT_MS = 2000
_live: set[QThread] = set()
_atexit_registered = False


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
    _register_atexit()
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


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_end_all_at_exit)


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


class DemoSession(QObject):
    """The sine demo: a :class:`SineWorker` thread and a paced :class:`Receiver` thread."""

    updated = Signal(object)
    message = Signal(str, str)
    running_changed = Signal(bool)

    def __init__(self, settings: DemoSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or DemoSettings()
        self.runs = 0
        self._worker = self._receiver = None
        self._worker_thread = self._receiver_thread = None
        self._capture: OutputCapture | None = None
        self._refiner: SineRefiner | None = None
        self._log = None  # RunLogWriter of the run being recorded (settings.log_dir)

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
        self._log = self._open_log()
        self._receiver = Receiver(events, self._refiner, interval=s.receiver_interval,
                                  iterations=s.receiver_iterations, paced=True,
                                  on_iteration=self._receiver_iteration,
                                  tap=None if self._log is None else self._log.write)
        self._receiver.updated.connect(self.updated)
        self._receiver.message.connect(self.message)
        self._receiver.finished.connect(self._receiver_finished)
        self._worker.finished.connect(self._worker_finished)
        capture = self._capture  # the worker's lines are this window's, whatever other window starts later
        self._worker_thread = start_in_thread(self._worker, "kerasqt-sine-worker",
                                              on_start=lambda: capture.set_source(threading.get_ident(), "worker"))
        self._receiver_thread = start_in_thread(self._receiver, "kerasqt-receiver")
        self.message.emit("control", f"run {self.runs}: started worker ({s.worker_iterations} curves every "
                                     f"{s.worker_interval:g} s) and receiver ({s.receiver_iterations} "
                                     f"iterations every {s.receiver_interval:g} s)")
        self.running_changed.emit(True)
        return True

    def replay(self, events: queue.SimpleQueue) -> bool:
        """Show recorded sine curves put into ``events`` (a replay): a receiver thread and no
        worker; it ends at an :class:`~kerasqt.events.EndEvent` in the queue."""
        if self.running:
            self.message.emit("control", "threads are already running")
            return False
        s = self.settings
        self.runs += 1
        # The recording holds the receiver's own lines too: this receiver colours silently.
        self._refiner = refiner = SineRefiner(s.batch_size, seed=s.seed)
        self._receiver = Receiver(events, refiner, interval=s.receiver_interval, paced=True,
                                  on_iteration=lambda i: refiner.next_iteration())
        self._receiver.updated.connect(self.updated)
        self._receiver.message.connect(self.message)
        self._receiver.finished.connect(self._receiver_finished)
        self._receiver_thread = start_in_thread(self._receiver, "kerasqt-receiver")
        self.running_changed.emit(True)
        return True

    def _open_log(self):
        """A run log for this demo run when ``settings.log_dir`` is set; a failure is a control message."""
        s = self.settings
        if s.log_dir is None:
            return None
        from .runlog import RunLogWriter

        try:
            log = RunLogWriter.create(s.log_dir, kind="sine", title="kerasqt sine demo", batch_size=s.batch_size,
                                      receiver_interval=s.receiver_interval)
        except OSError as exc:
            self.message.emit("control", f"no run log: {exc}")
            return None
        self.message.emit("control", f"recording to {log.path}")
        return log

    def _receiver_iteration(self, i: int) -> None:  # receiver thread
        if i == 1 and self._capture is not None:
            self._capture.set_source(threading.get_ident(), "receiver")
        refiner = self._refiner
        if refiner is not None and refiner.next_iteration():
            print(f"receiver: iteration {i}, batch {refiner.batch + 1} begins, colour {refiner.color}")

    def _worker_finished(self) -> None:
        if self.running:
            self.message.emit("control", "worker finished its iterations")

    def _receiver_finished(self) -> None:
        if self._receiver_thread is not None and self.sender() is self._receiver:  # not a stopped run's
            self.message.emit("control", "receiver finished its iterations: stopping the worker too"
                              if self._worker is not None else "replay finished")
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
        if self._log is not None:  # the receiver has ended: nothing writes to it any more
            self._log.close()
            self._log = None
        self.message.emit("control", f"run {self.runs}: threads stopped" + ("" if ok else " (timed out!)"))
        self.running_changed.emit(False)
        return ok


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
