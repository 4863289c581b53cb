"""The run log of a monitor's runs: one :class:`~kerasqt.runlog.RunLogWriter` per run, and the
stream of each run to viewers over the network (a :class:`~kerasqt.net.RunServer`, when serving).

Thread ownership: :meth:`RunRecorder.open` runs on the training thread at a run's start;
the writer's ``write`` (the :attr:`RunRecorder.tap`) runs on the receiver thread, which
logs what it drains. With no window to drain the queue (no screen, the window closed), a
:class:`~kerasqt.runlog.LogFollower` thread takes the queue over and logs the rest of the run.
At interpreter exit during a run, :func:`end_logs_at_exit` writes what was queued and an
error line naming the exception, and closes the file.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import queue
import socket
import sys
import time
import warnings
import weakref

from .events import EndEvent, ErrorEvent, drain
from .runlog import LogFollower, RunLogError, RunLogWriter, resolve_log_dir

__all__ = ["RunRecorder", "end_logs_at_exit", "warn_user"]

_open: weakref.WeakSet = weakref.WeakSet()  # recorders whose log may still be open


def end_logs_at_exit() -> None:
    """At interpreter exit during a watched ``fit`` (an exception nobody caught, Ctrl-C, ``sys.exit``
    in a callback), each run log still open gets what was queued and an error line, and is closed.
    Runs after the window's receiver threads have ended (they write what they took)."""
    for recorder in list(_open):
        try:
            recorder.end_at_exit()
        except Exception:  # the process is ending: never turn that into a traceback of ours
            pass


def warn_user(message: str) -> None:
    """Warn (``RuntimeWarning``) at the user's line that called ``fit``: the nearest caller outside
    Keras and kerasqt (a warning's place only: nothing here decides what the monitor does)."""
    import keras

    skip = tuple(p for p in (_folder(keras), _folder(sys.modules[__package__])) if p)
    if sys.version_info >= (3, 12):
        warnings.warn(message, RuntimeWarning, stacklevel=2, skip_file_prefixes=skip)
        return
    # Python 3.10 and 3.11: the stacklevel of the first caller outside those folders.
    level, frame = 1, inspect.currentframe()
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level if frame is not None else 2)


def _folder(module) -> str:
    path = getattr(module, "__file__", None)
    return os.path.dirname(path) + os.sep if path else ""


class _Outlet:
    """Where a run's drained events go: its log and the viewers of its stream; written like a
    :class:`~kerasqt.runlog.RunLogWriter` (by the receiver thread, or a follower thread)."""

    def __init__(self, log: RunLogWriter | None, server) -> None:
        self.log, self.server = log, server
        self.error = None
        self._ended = False

    @property
    def closed(self) -> bool:
        return self.log.closed if self.log is not None else self._ended

    def write(self, events: list) -> None:
        if self.server is not None and events:
            try:
                self.server.publish(events)
            except Exception:  # (a viewer's trouble never reaches the run or its log)
                pass
            self._ended = self._ended or any(isinstance(ev, (EndEvent, ErrorEvent)) for ev in events)
        if self.log is not None:
            try:
                self.log.write(events)
            finally:
                self.error = self.log.error

    def close(self) -> None:
        self._ended = True
        if self.log is not None:
            self.log.close()


class RunRecorder:
    """Opens a log per run in ``log_dir`` (None: no logs), hands the receiver its writer, and
    keeps the log whole when nobody watches. With a ``server``, each run is also streamed."""

    def __init__(self, log_dir, title: str, smoothing: float) -> None:
        self.log_dir = log_dir
        self.title = title
        self.smoothing = smoothing
        self.log: RunLogWriter | None = None
        self.server = None  # a kerasqt.net.RunServer when the runs are served
        self.outlet: _Outlet | None = None
        self.follower: LogFollower | None = None
        self.path = None  # the current or last run's file
        self._events: queue.SimpleQueue | None = None
        # Set by the monitor: ends the window's receiver at exit (it writes what it took), and
        # whether the run's queue is still being fed (its rest belongs in the log).
        self.end_receiver = None
        self.feeding = lambda: True
        self.settings = None  # set by the monitor: the run's settings and tags for the header (kerasqt.settings)

    @property
    def tap(self):
        """Where the receiver writes each chunk it drains (the log, the stream), or None."""
        return self.outlet.write if self.outlet is not None else None

    def open(self, events: queue.SimpleQueue) -> None:
        """Start this run's log (training thread); a failure only warns. The last run's log is not
        closed here: it closes itself at its end or error event, which its receiver (or follower)
        may still be writing; a follower of the last run ends it now (with an error if it raised)."""
        self.end_follower()
        self.log = self.outlet = None
        self.path = None
        self._events = events
        folder = resolve_log_dir(self.log_dir)
        extra = self.settings() if self.settings is not None else {}
        if folder is not None:
            try:
                self.log = RunLogWriter.create(folder, kind="training", title=self.title, smoothing=self.smoothing,
                                               **extra)
            except OSError as exc:
                warn_user(f"kerasqt: no run log for this run: {exc}")
            else:
                self.path = self.log.path
                _open.add(self)
        if self.server is not None:
            header = self.log.header if self.log is not None else {
                "kind": "training", "created": time.time(), "title": self.title, "smoothing": self.smoothing,
                "pid": os.getpid(), "host": socket.gethostname(), **extra}
            self.server.begin_run(header)
        if self.log is not None or self.server is not None:
            self.outlet = _Outlet(self.log, self.server)

    def follow(self, alive) -> bool:
        """Nobody drains the queue: a follower thread logs the rest of the run. False without a log."""
        if self.outlet is None or self.outlet.closed or self._events is None:
            return False
        self.follower = LogFollower(self._events, self.outlet, alive=alive)
        self.follower.start()
        return True

    def end_follower(self) -> None:
        follower, self.follower = self.follower, None
        if follower is not None:
            follower.stop(run_over=True)  # the last run is over: its log ends, with an error if it raised

    def flush_end(self) -> None:
        """The run's end is queued: a follower writes it now (bounded wait; a window's receiver
        writes it without anyone waiting)."""
        follower = self.follower
        if follower is not None:
            follower.wake()
            follower.join(2.0)

    def write_after(self, ev) -> None:
        """An evaluate() after the run: its line is appended to the run's log (and streamed)."""
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.publish([ev])
        if self.log is not None:
            try:
                self.log.write_after([ev])
            except RunLogError as exc:
                warn_user(f"kerasqt: {exc}")

    def end_at_exit(self) -> None:
        """The process exits (main thread): a log still open gets the rest and an error line."""
        log = self.log
        if log is None or log.closed:
            return
        if self.follower is not None:
            self.follower.stop(run_over=True)  # it writes what is queued, then the error line
            return
        if self.end_receiver is not None:
            try:
                self.end_receiver()  # the window's receiver writes what it took
            except Exception:  # the window is gone already: what is queued is all there is
                pass
        rest = drain(self._events) if self.feeding() and self._events is not None else []
        if log.closed or any(isinstance(ev, (EndEvent, ErrorEvent)) for ev in rest):
            log.write(rest)  # the run had ended: its own end is in the log (or in what is left)
            return
        exc = getattr(sys, "last_value", None)  # the exception the interpreter printed, if that ends it
        why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        log.write(rest + [ErrorEvent(time.time(), f"the process exited during fit{why}")])
