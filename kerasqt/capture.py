"""Capture ``print`` and ``logging`` output of background threads into a message queue.

While a capture is active, ``sys.stdout`` and ``sys.stderr`` are replaced by a
router that sends whole lines written by *captured* threads to the capture's
queue as :class:`~kerasqt.events.MessageEvent` values, and passes everything
else to the stream it replaced (the terminal, or a notebook cell's output).
Captured threads are every thread except the main thread, plus the main thread
when ``include_main`` is true (or a callable that returns true: a ``fit`` running
in the main thread is captured only while it runs). Each thread
may be given a pane (``source``); the default is ``"worker"``.

Captures nest: the newest active one receives the lines, except from threads
given to a capture with :meth:`OutputCapture.set_source` (two windows each keep
their own training thread's output). The router removes
itself when the last capture stops, unless someone replaced ``sys.stdout``
after it, in which case it stays in place, passing everything through.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from queue import SimpleQueue

from .events import MessageEvent, terminal_text

__all__ = ["OutputCapture"]

_lock = threading.RLock()
_active: list[OutputCapture] = []
_routers: dict[str, _Router] = {}


class _Router(io.TextIOBase):
    """Stand-in for sys.stdout/sys.stderr that routes lines by thread."""

    def __init__(self, name: str, target) -> None:
        self.name = name
        self.target = target
        self._partial: dict[int, str] = {}

    # Attributes some libraries look at (encoding, fileno, isatty) come from the target.
    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def __getattr__(self, name: str):
        # Everything else is the target's: ipykernel re-points its streams at each new cell
        # with sys.stdout.set_parent(...); without this, the cell's prints go to an old cell.
        if name == "target":
            raise AttributeError(name)
        return getattr(self.target, name)

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        capture = _current_for_thread()
        if capture is None:
            return self.target.write(text)
        ident = threading.get_ident()
        buffered = self._partial.pop(ident, "") + text
        *lines, rest = buffered.split("\n")
        if rest:
            self._partial[ident] = rest
        for line in lines:
            capture.emit(line)
        return len(text)

    def flush(self) -> None:
        ident = threading.get_ident()
        capture = _current_for_thread()
        partial = self._partial.get(ident)
        # A line being redrawn in place (a progress bar: \r, \b) waits for its end; others show now.
        if capture is not None and partial and not ("\r" in partial or "\b" in partial):
            capture.emit(self._partial.pop(ident))
        try:
            self.target.flush()
        except Exception:  # a closed target must not break the writer
            pass


def _current_for_thread() -> OutputCapture | None:
    active = _active[:]
    if not active:
        return None
    ident, thread = threading.get_ident(), threading.current_thread()
    for capture in reversed(active):  # a thread given to a capture (set_source) stays with it
        if ident in capture._sources and capture.captures(thread):
            return capture
    capture = active[-1]
    return capture if capture.captures(thread) else None


class _LogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        capture = _current_for_thread()
        if capture is not None:
            try:
                capture.emit(self.format(record))
            except Exception:
                self.handleError(record)
        elif logging.getLogger().handlers == [self] and logging.lastResort is not None:
            # Adding this handler must not silence warnings that Python would otherwise print.
            if record.levelno >= logging.lastResort.level:
                logging.lastResort.handle(record)


_log_handler = _LogHandler()
_log_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


class OutputCapture:
    """Route lines printed or logged by captured threads to ``queue`` as messages."""

    def __init__(self, queue: SimpleQueue, *, include_main=False, default_source: str = "worker") -> None:
        self.queue = queue
        self.include_main = include_main
        self.default_source = default_source
        self._sources: dict[int, str] = {}
        self.active = False

    def set_source(self, thread: threading.Thread | int, source: str) -> None:
        """Send lines from ``thread`` (a Thread or its ident) to pane ``source``."""
        ident = thread if isinstance(thread, int) else thread.ident
        self._sources[ident] = source

    def captures(self, thread: threading.Thread) -> bool:
        if thread is not threading.main_thread():
            return True
        include = self.include_main
        return bool(include()) if callable(include) else bool(include)

    def emit(self, line: str) -> None:
        line = terminal_text(line)  # a progress bar's final state, without colour codes
        if line.strip():
            source = self._sources.get(threading.get_ident(), self.default_source)
            self.queue.put(MessageEvent(source, line))

    def start(self) -> OutputCapture:
        with _lock:
            if self.active:
                return self
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                if not isinstance(current, _Router):
                    router = _Router(name, current)
                    _routers[name] = router
                    setattr(sys, name, router)
            if not _active:
                logging.getLogger().addHandler(_log_handler)
            _active.append(self)
            self.active = True
        return self

    def stop(self) -> None:
        with _lock:
            if not self.active:
                return
            self.active = False
            for router in list(_routers.values()):
                router.flush()
            _active.remove(self)
            if _active:
                return
            logging.getLogger().removeHandler(_log_handler)
            for name, router in list(_routers.items()):
                if getattr(sys, name) is router:
                    setattr(sys, name, router.target)
                    del _routers[name]

    def __enter__(self) -> OutputCapture:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
