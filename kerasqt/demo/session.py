"""The sine demo's session (main thread): a worker thread and a receiver thread per run.

:class:`DemoSession` starts the :class:`~kerasqt.demo.worker.SineWorker` and the
paced :class:`~kerasqt.demo.receiver.SineReceiver` (each in its QThread, through
:func:`kerasqt.session.start_in_thread`), records a run log when asked, and ends
them in reverse order: worker, receiver, output capture, log. Its signals reach
the window in the main thread.
"""

from __future__ import annotations

import queue
import threading

from qtpy.QtCore import QObject, Signal

from ..capture import OutputCapture
from ..session import end_thread, start_in_thread
from .receiver import SineReceiver
from .refiner import SineRefiner
from .settings import DemoSettings
from .worker import SineWorker

__all__ = ["DemoSession"]


class DemoSession(QObject):
    """The sine demo: a :class:`SineWorker` thread and a paced :class:`SineReceiver` thread."""

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
        self._receiver = SineReceiver(events, self._refiner, interval=s.receiver_interval,
                                      iterations=s.receiver_iterations, on_iteration=self._receiver_iteration,
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
        self._receiver = SineReceiver(events, refiner, interval=s.receiver_interval,
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
        from ..runlog import RunLogWriter

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
