"""Following a run log while it is written (``tail -f``): :class:`FollowSource` (no Qt).

A :class:`FollowSource` is a window's :class:`~kerasqt.source.RunSource` for a run that
another process (or thread) writes to its run log right now: its thread (``kerasqt-follow``,
on :class:`~kerasqt.loops.LoopThread`) reads the lines added since its last read every
``poll`` s (one ``stat`` and one ``read`` from the last offset: the file is never read
again), decodes each complete line with the run log reader's checks
(:func:`~kerasqt.runlog.decode_line`) and puts its event into the queue that the window's
receiver drains, as a live fit's callback does. A last line still being written waits for
its newline; a complete line that is bad is skipped, with a note.

What the file itself cannot say, the source tells:

* the writer is gone without the run's end (``kill -9``, a power cut of the process): when
  the file has not grown for ``quiet`` s, the writer's ``pid`` (in the header, written by
  :meth:`~kerasqt.runlog.RunLogWriter.create`, with its ``host``) is looked up; gone, the
  run ends with ``ErrorEvent(how="stopped")``: *the run stopped without an end (its process
  is gone)*. A log without them (older kerasqt), or from another host, cannot be asked: after
  ``stall`` s without growth a note says the run seems stalled, and following goes on;
* the file was truncated, or another file took its name (rotation): the run ends
  (``how="cut short"``) and :attr:`FollowSource.replaced` says why; the follower of the
  target (:class:`kerasqt.watch.Watcher`) then follows the file anew from its start.

After the run's end the thread goes on reading, slower, for lines appended later (an
``evaluate()`` after ``fit``: :attr:`FollowSource.later`) and for a truncation or rotation.
Notes for the window's control pane wait in :attr:`FollowSource.notes`. Threads: the
follow thread fills ``events``, ``notes`` and ``later`` (thread-safe queues); the window
and the watcher (main thread) call the rest.
"""

from __future__ import annotations

import collections
import os
import queue
import socket
import sys
import time
from pathlib import Path

from .events import EndEvent, ErrorEvent, EvalEvent
from .loops import LoopThread
from .runlog import MAX_LINE, RunLogError, check_header, decode_line

__all__ = ["STOPPED", "FollowSource", "LogTail", "open_log", "writer_gone"]

POLL = 0.05  # seconds between reads while the run goes on
AFTER_END_POLL = 0.5  # ... after its end (lines appended later, a truncation or rotation)
QUIET = 1.0  # seconds without growth before the writer's process is looked up (then every CHECK_EVERY s)
CHECK_EVERY = 0.5
STALL = 60.0  # seconds without growth before a writer that cannot be looked up is said to seem stalled
CHUNK = 8 * 2**20  # bytes read at most per turn (a long log that is already there comes in parts)
MAX_NOTES = 20  # bad lines noted one by one per file; the rest are counted

STOPPED = "the run stopped without an end (its process is gone)"


def open_log(path: str | os.PathLike):
    """``(file, header, offset)`` of a run log to follow: its first line read and checked, the file
    open (binary, unbuffered) at the end of it. None while there is no file or its first line is not
    complete yet; :class:`~kerasqt.runlog.RunLogError` with a one-line reason for a file that is no
    run log."""
    try:
        fh = open(path, "rb", buffering=0)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise RunLogError(f"{path}: a folder, not a run log") from None
    except OSError as exc:
        raise RunLogError(f"{path}: {exc.strerror or exc}") from None
    try:
        first = fh.readline(MAX_LINE + 1)
        if not first.endswith(b"\n") and len(first) <= MAX_LINE:
            fh.close()
            return None  # still being written
        header = check_header(first)
    except RunLogError as exc:
        fh.close()
        raise RunLogError(f"{path}: {exc}") from None
    except OSError as exc:
        fh.close()
        raise RunLogError(f"{path}: {exc.strerror or exc}") from None
    return fh, header, len(first)


def writer_gone(header: dict, host: str | None = None) -> bool | None:
    """Whether the process that writes the log of ``header`` is gone; None when that cannot be told
    (no ``pid`` or ``host`` in it, another host, Windows). ``host``: this machine's name."""
    pid, where = header.get("pid"), header.get("host")
    if type(pid) is not int or pid <= 0 or type(where) is not str or sys.platform == "win32":
        return None  # (on Windows, os.kill(pid, 0) would send Ctrl-C)
    if where != (host or socket.gethostname()):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # no permission to signal it: it is there
        return False
    try:  # a zombie (killed, not yet reaped by its parent) is gone too
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[:1]
        return state in ([b"Z"], [b"X"])
    except OSError:
        return False


class LogTail:
    """The complete lines added to an open file since the last :meth:`read` (one thread).

    ``offset``: where reading goes on (after the header). A line without its newline yet waits
    in ``partial``; a line over :data:`~kerasqt.runlog.MAX_LINE` is dropped (``overlong`` counts them).
    """

    def __init__(self, fh, offset: int, path: str | os.PathLike) -> None:
        self.fh = fh
        self.path = Path(path)
        self.offset = offset
        self.line = 1  # number of the last line read (1: the header)
        self.partial = b""
        self.overlong = 0
        self.removed = False  # nothing is at the path (the open file may still be written)
        self.grew_at = time.monotonic()
        self._skipping = False
        st = os.fstat(fh.fileno())
        self._id = (st.st_dev, st.st_ino)

    def changed(self) -> str | None:
        """``"truncated"`` or ``"replaced"`` (another file has its name) when the file followed is not
        the file at the path any more; else None."""
        if os.fstat(self.fh.fileno()).st_size < self.offset:
            return "truncated"
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.removed = True
            return None
        self.removed = False
        return "replaced" if (st.st_dev, st.st_ino) != self._id else None

    def read(self) -> tuple[list[tuple[int, bytes]], bool]:
        """``([(line number, line)], more)``: the complete lines added (up to :data:`CHUNK` bytes), and
        whether more is there already."""
        size = os.fstat(self.fh.fileno()).st_size
        if size <= self.offset:
            return [], False
        self.fh.seek(self.offset)
        data = self.fh.read(min(size - self.offset, CHUNK))
        if not data:
            return [], False
        self.offset += len(data)
        self.grew_at = time.monotonic()
        if self._skipping:  # the rest of an overlong line
            cut = data.find(b"\n")
            if cut < 0:
                return [], self.offset < size
            data, self._skipping = data[cut + 1:], False
            self.line += 1
        parts = (self.partial + data).split(b"\n")
        self.partial = parts.pop()
        lines = list(enumerate(parts, self.line + 1))
        self.line += len(parts)
        if len(self.partial) > MAX_LINE:  # never a line: dropped up to its end
            self.overlong += 1
            self.partial, self._skipping = b"", True
        return lines, self.offset < size

    def close(self) -> None:
        self.fh.close()


class FollowSource(LoopThread):
    """A run log that is being written, as a window's :class:`~kerasqt.source.RunSource`; see the
    module docstring. ``fh``, ``header``, ``offset``: from :func:`open_log` (the source owns ``fh``)."""

    max_rate = 30.0
    tap = None  # (it is a log already)
    loop_interval = None

    def __init__(self, path: str | os.PathLike, fh, header: dict, offset: int, *, poll: float = POLL,
                 quiet: float = QUIET, stall: float = STALL) -> None:
        super().__init__("kerasqt-follow")
        self.path = Path(path)
        self.header = header
        self.kind = header["kind"]
        self.title = header.get("title") or self.path.stem
        self.smoothing = header.get("smoothing", 0.9)
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.notes: collections.deque[str] = collections.deque()  # for the control pane
        self.later: collections.deque = collections.deque()  # events after the run's end
        self.tail = LogTail(fh, offset, path)
        self.interval = poll
        self.quiet = quiet
        self.stall = stall
        self.ended = False  # the run's end is queued (its own, or ours)
        self.replaced: str | None = None  # "truncated" or "replaced": follow the path anew
        self.read_events = 0
        self.bad_lines = 0
        self._host = socket.gethostname()
        self._more = False
        self._next_check = 0.0
        self._stalled = False
        self._removed = False
        self._last_time: float | None = None

    # -- what the window asks (main thread; alive: receiver thread) ------------------------------
    @property
    def log_path(self) -> Path:
        """The followed log: the window's run list shows its folder."""
        return self.path

    def alive(self) -> bool:
        return True  # a writer gone without its end is told by an error event of ours

    def describe(self) -> str:
        pid, host = self.header.get("pid"), self.header.get("host")
        by = f", written by pid {pid} on {host}" if type(pid) is int and type(host) is str else ""
        return f"following {self.path.name}{by}"

    def can_stop(self) -> bool:
        return False  # the training is another process's

    def control(self, action: str, args: dict | None = None) -> str:
        from .steer import ControlError

        raise ControlError(f"a followed run log cannot be controlled: {action} refused")

    def run_over(self) -> bool:
        return self.ended

    def finished(self) -> None:
        self.ended = True  # (the receiver ended: whatever comes now is after the run)

    def window_closed(self) -> None:
        self.stop()

    # -- the follow thread ---------------------------------------------------------------------------
    def pause(self) -> float:
        if self._more:
            return 0.0
        return AFTER_END_POLL if self.ended else self.interval

    def step(self) -> bool:
        change = self.tail.changed()
        if change is not None:
            if change == "replaced":
                self._read_all()  # what the old file still holds belongs to this run
            self.replaced = change
            self._end(ErrorEvent(self._when(), f"{self.path.name} was {change}", "cut short"))
            return False
        if self.tail.removed != self._removed:
            self._removed = self.tail.removed
            self.note(f"{self.path} was removed; what its writer still writes is followed" if self._removed
                      else f"{self.path} is back")
        self._more = self._read()
        if not self.ended and not self._more:
            self._watch_writer(time.monotonic())
        return True

    def _read(self) -> bool:
        lines, more = self.tail.read()
        if lines and self._stalled:
            self._stalled = False
            self.note(f"{self.path.name} grows again")
        for n, raw in lines:
            try:
                rec = decode_line(raw, self.kind)
            except RunLogError as exc:
                self._bad(n, str(exc))
                continue
            if rec is None:
                continue
            t, ev = rec
            self.read_events += 1
            if t is not None:
                self._last_time = t
            if self.ended:
                if isinstance(ev, EvalEvent):
                    self.later.append(ev)
                continue
            self.events.put(ev)
            if isinstance(ev, (EndEvent, ErrorEvent)):
                self.ended = True
        if self.tail.overlong:
            self._bad(self.tail.line + 1, f"a line longer than {MAX_LINE // 2**20} MiB")
            self.tail.overlong = 0
        return more

    def _read_all(self) -> None:
        while self._read():
            pass

    def _watch_writer(self, now: float) -> None:
        """No growth for a while: is the writer still there?"""
        idle = now - self.tail.grew_at
        if idle < self.quiet or now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY
        gone = writer_gone(self.header, self._host)
        if gone:
            self._read_all()  # everything it wrote is in the file now
            if self.ended:
                return
            cut = " (its last line was cut short and is skipped)" if self.tail.partial.strip() else ""
            pid = self.header["pid"]
            self._end(ErrorEvent(self._when(), f"{STOPPED}: pid {pid} on {self.header['host']}{cut}", "stopped"))
        elif gone is None and idle >= self.stall and not self._stalled:
            self._stalled = True
            self.note(f"{self.path.name} has not grown for {idle:.0f} s and its writer cannot be looked up from "
                      "here: the run seems stalled; still following")

    def _end(self, ev: ErrorEvent) -> None:
        if not self.ended:
            self.ended = True
            self.events.put(ev)

    def _when(self) -> float:
        """The time of the run's last event (its clock ends there), else now."""
        return self._last_time if self._last_time is not None else time.time()

    def _bad(self, line: int, why: str) -> None:
        self.bad_lines += 1
        if self.bad_lines <= MAX_NOTES:
            self.note(f"{self.path.name} line {line}: {why}; skipped")
        if self.bad_lines == MAX_NOTES:
            self.note(f"more bad lines in {self.path.name} are skipped without a note")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def failed(self, exc: Exception) -> None:
        """A bug, or the file became unreadable: the run ends, said in the window."""
        self.note(f"following {self.path.name} failed: {type(exc).__name__}: {exc}")
        self._end(ErrorEvent(self._when(), f"following {self.path.name} failed: {exc}"))

    def finish(self) -> None:
        self.tail.close()

    def __repr__(self) -> str:
        return f"<FollowSource {self.path} at {self.tail.offset}, {'ended' if self.ended else 'live'}>"
