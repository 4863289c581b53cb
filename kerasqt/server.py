"""The training side of a served run: :class:`RunServer` (no Qt, no Keras; its own thread).

It sends the run's lines to every viewer and reads the control lines viewers send back, on the
same connection; the protocol is described in :mod:`kerasqt.net`.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import deque

from .events import MessageEvent
from .loops import LoopThread
from .runlog.common import MAX_LINE
from .runlog.writer import encode_lines, header_line
from .steer import ACTIONS, ControlError, check_control
from .wire import (
    CONTROL_BYTES,
    MAX_REFUSED,
    answer_line,
    check_token,
    join_address,
    new_token,
    parse_address,
    read_control,
    token_matches,
)

__all__ = ["AWAIT", "KEEP_BYTES", "VIEWER_BYTES", "RunServer"]

log = logging.getLogger("kerasqt")

KEEP_BYTES = 32 * 2**20  # the current run's last lines kept for viewers that join late (~200k batches)
VIEWER_BYTES = 8 * 2**20  # a viewer this far behind the live lines (past its catch-up) is dropped
CHUNK = 256 * 1024  # bytes encoded for one viewer at a time
HEARTBEAT = 2.0  # seconds without lines to a viewer before a blank line
LINGER = 1.0  # seconds close() gives viewers to take what is left (the run's end, say)
RATE = 10  # controls a second one viewer may ask for (more are refused)
AWAIT = 20.0  # seconds close() waits for an awaited viewer (a viewer process starting) to connect


class _Viewer:
    """One viewer's connection. ``pending`` and ``size`` are the server's lock's; the rest its thread's."""

    def __init__(self, sock: socket.socket, peer: str, lines: list[str], bound: int) -> None:
        self.sock, self.peer = sock, peer
        self.pending = lines  # lines the server thread has not taken yet (publish appends)
        self.size = sum(map(len, lines)) + len(lines)  # their bytes (the lines are ASCII)
        self.limit = self.size + bound  # dropped past this: its catch-up plus `bound` bytes of live lines
        self.lines, self.pos, self.out = [], 0, memoryview(b"")  # lines taken, encoded up to pos; bytes to send
        self.last = time.monotonic()  # when bytes last went out
        self.drop: str | None = None  # set: the server thread closes it ("": quietly)
        self.inbox = bytearray()  # what it sent that is not a whole line yet (at most CONTROL_BYTES)
        self.refused = 0  # its controls refused for their token
        self.times: deque[float] = deque(maxlen=RATE)  # when its last controls were taken


class RunServer(LoopThread):
    """Serves the current run's lines to any number of viewers, and takes their controls (the training side).

    ``RunServer("HOST:PORT")`` binds (loopback by default; port 0 picks one: :attr:`address`) and
    serves from its own daemon thread, ``kerasqt-server``: one thread and a selector for all
    viewers, sockets non-blocking, so that a viewer costs no thread and a slow one delays nobody.
    The producer calls :meth:`begin_run` at each run's start, :meth:`publish` with its events
    (any thread: the training thread, the window's tap), :meth:`close` at the end.

    Bounds: the run's last ``keep_bytes`` of lines (and its start line) are kept for late viewers;
    a viewer gets them, then the live lines, and is dropped (a log warning) when more than
    ``viewer_bytes`` of live lines wait for it. Lines are shared, never copied per viewer. Publish
    wakes nobody: lines go out at the server thread's next turn (``interval``).

    Controls: :attr:`on_control` ``(action, args) -> str`` (None: the training takes none) is called
    from the server thread for each control line that carries :attr:`token` (``token=None``: a new
    one) and a valid control; it must not block (``QtMonitor.control`` does not). It returns what will
    happen, or raises :class:`~kerasqt.steer.ControlError`; either is answered to the asking viewer
    only. A line that is no control, longer than ``CONTROL_BYTES``, or the ``MAX_REFUSED``-th refused
    for its token drops that viewer (one log warning).
    """

    interval = 0.05  # seconds between the server thread's turns

    def __init__(self, address: str = "127.0.0.1:0", *, keep_bytes: int = KEEP_BYTES,
                 viewer_bytes: int = VIEWER_BYTES, token: str | None = None) -> None:
        super().__init__("kerasqt-server")
        host, port = parse_address(address)
        self.token = new_token() if token is None else check_token(token)
        self.on_control = None  # (action, args) -> str, from the server thread; None: no controls
        self.awaited = None  # () -> bool: a viewer is on its way (close() waits up to AWAIT s for it)
        self._listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._listener.setblocking(False)
        self.address = join_address(*self._listener.getsockname()[:2])  # "host:port" bound
        self.keep_bytes, self.viewer_bytes = keep_bytes, viewer_bytes
        self.dropped = 0  # viewers dropped (behind, hostile)
        self.accepted = 0  # connections taken so far
        self._lock = threading.Lock()
        self._name, self._runs, self._run_id, self._header = new_token()[:8], 0, "", None
        self._history: deque[str] = deque()  # the current run's lines kept: its lines first, first + 1...
        self._history_bytes = self._first = 0
        self._start: tuple[int, str] | None = None  # the run's start line: its number, the line
        self._viewers: list[_Viewer] = []
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ)
        self.start()

    # -- the producer (any thread) ------------------------------------------------------------------
    def begin_run(self, header: dict) -> None:
        """A new run: ``header`` as a run log's (``kind``, ``title``, ``smoothing``...); every viewer gets
        its header line next. TypeError or ValueError for a header JSON cannot hold."""
        header = {k: v for k, v in dict(header).items() if k != "stream"}
        header_line(header)  # what JSON cannot hold fails here, in the producer's call
        with self._lock:
            self._runs += 1
            self._run_id, self._header = f"{self._name}-{self._runs}", header
            old, self._history = self._history, deque()
            self._history_bytes, self._first, self._start = 0, 0, None
            line = self._hello(0, 0)
            for v in self._viewers:
                self._add(v, [line], len(line) + 1)
        del old  # (its lines are freed here, outside the lock)

    def publish(self, events: list) -> None:
        """The current run's ``events`` (:mod:`kerasqt.events`), encoded as the run log writes them, for
        every viewer; never blocks on one (microseconds). Left out before the first :meth:`begin_run`."""
        if self._header is None or self.stopping:
            return
        lines = encode_lines(events)
        size = sum(map(len, lines)) + len(lines)
        if size > MAX_LINE:  # (rare) a line no viewer would take: a message instead
            lines = [x if len(x) <= MAX_LINE else encode_lines([MessageEvent("control", "a line too long left out")])[0]
                     for x in lines]
            size = sum(map(len, lines)) + len(lines)
        start = None if self._start else next((i for i, x in enumerate(lines) if x.startswith('{"type":"start"')), None)
        with self._lock:
            history = self._history
            if start is not None and self._start is None:
                self._start = (self._first + len(history) + start, lines[start])
            history.extend(lines)
            self._history_bytes += size
            while self._history_bytes > self.keep_bytes and history:
                self._history_bytes -= len(history.popleft()) + 1
                self._first += 1
            for v in self._viewers:
                self._add(v, lines, size)

    @property
    def viewers(self) -> int:
        """How many viewers are connected."""
        with self._lock:
            return sum(1 for v in self._viewers if v.drop is None)

    def drop_viewers(self) -> None:
        """Close every viewer's connection (each reconnects and catches up); any thread."""
        with self._lock:
            for v in self._viewers:
                v.drop = "" if v.drop is None else v.drop

    def close(self) -> None:
        """Stop serving (any thread but the server's): first, while :attr:`awaited` says a viewer is on
        its way, up to ``AWAIT`` s for it to connect; then viewers get up to ``LINGER`` s to take what
        is left, and the thread ends."""
        awaited, deadline = self.awaited, time.monotonic() + AWAIT
        while awaited is not None and self.is_alive() and time.monotonic() < deadline:
            try:
                if not awaited():
                    break
            except Exception:
                break
            time.sleep(0.05)
        self.stop()

    # -- under the lock -----------------------------------------------------------------------------------
    def _hello(self, first: int, extra: int) -> str:
        stream = {"run": self._run_id, "first": first, "extra": extra, "control": self.on_control is not None}
        return header_line({**self._header, "stream": stream})

    def _add(self, v: _Viewer, lines: list[str], size: int) -> None:
        if v.drop is None:
            v.pending += lines
            v.size += size
            if v.size > v.limit:
                v.drop = f"more than {self.viewer_bytes} bytes of lines wait for it"

    def _catch_up(self) -> list[str]:
        """A new viewer's first lines: the header, the connection's own lines, the run kept so far."""
        if self._header is None:
            return []  # no run yet: begin_run sends the header
        k = self._first
        extra = [self._start[1]] if k and self._start is not None and self._start[0] < k else []
        extra += encode_lines([MessageEvent("control", f"the stream keeps the last {self.keep_bytes / 2**20:.3g} MiB "
                                                       f"of a run: its first {k} lines are not sent")]) if k else []
        return [self._hello(k, len(extra)), *extra, *self._history]

    # -- the server thread ------------------------------------------------------------------------------
    def work(self) -> None:
        while not self.stopping:
            for key, _ in self._sel.select(self.interval):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._receive(key.data)
            for v in list(self._viewers):
                self._send(v, time.monotonic())

    def _accept(self) -> None:
        try:
            sock, peer = self._listener.accept()
        except OSError as exc:  # none waiting after all; or out of file descriptors, say: a while later
            if not isinstance(exc, (BlockingIOError, InterruptedError)):
                log.warning("kerasqt server: cannot accept a viewer: %s", exc)
                self.nap(0.5)
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            v = _Viewer(sock, join_address(*peer[:2]), self._catch_up(), self.viewer_bytes)
            self._viewers.append(v)
        self._sel.register(sock, selectors.EVENT_READ, v)
        self.accepted += 1
        log.info("kerasqt server: viewer %s connected", v.peer)

    def _receive(self, v: _Viewer) -> None:
        """What a viewer sent: its control lines, each answered; the end of its stream closes it."""
        if v.drop is not None or v.sock.fileno() < 0:
            return
        try:
            data = v.sock.recv(CONTROL_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(v, "")
            return
        v.inbox += data
        while v.drop is None:
            end = v.inbox.find(b"\n")
            if end < 0:
                if len(v.inbox) > CONTROL_BYTES:
                    v.drop = f"a line longer than {CONTROL_BYTES} bytes"
                return
            raw = bytes(v.inbox[:end])
            del v.inbox[:end + 1]
            if len(raw) > CONTROL_BYTES:
                v.drop = f"a line longer than {CONTROL_BYTES} bytes"
            elif raw.strip():
                self._control(v, raw)

    def _control(self, v: _Viewer, raw: bytes) -> None:
        """One control line: the token first, then the control; answered (or the viewer dropped)."""
        try:
            ident, action, args, token = read_control(raw)
        except ValueError as exc:
            v.drop = f"it sent what is no control line ({exc})"
            return
        known = action if isinstance(action, str) and action in ACTIONS else None
        name = known or "control"
        if self.on_control is None or not token_matches(token, self.token):
            v.refused += 1
            if v.refused >= MAX_REFUSED:
                v.drop = f"{MAX_REFUSED} controls refused for their token"
                return
            why = ("this training takes no controls" if self.on_control is None else
                   "no control token" if not token else "wrong control token")
            self._answer(v, ident, known, False, f"{name} refused: {why}", token=False)
            log.info("kerasqt server: viewer %s: control refused: %s", v.peer, why)
            return
        now, times = time.monotonic(), v.times
        if len(times) == times.maxlen and now - times[0] < 1.0:
            self._answer(v, ident, known, False, f"{name} refused: more than {RATE} controls a second", token=True)
            return
        times.append(now)
        try:
            action, args = check_control(action, args)
            text, ok = self.on_control(action, args), True
        except ControlError as exc:
            text, ok = str(exc), False
        except Exception as exc:  # a bug of the producer's: logged, answered, the serving goes on
            log.error("kerasqt server: a viewer's control failed", exc_info=exc)
            text, ok = f"internal error: {exc!r}", False
        log.info("kerasqt server: viewer %s: control %s: %s", v.peer, name, text)
        self._answer(v, ident, known, ok, f"{name}: {text}" if ok else f"{name} refused: {text}", token=True)

    def _answer(self, v: _Viewer, ident, action, ok: bool, text: str, *, token: bool) -> None:
        line = answer_line(ident, action, ok, text, token)
        with self._lock:
            self._add(v, [line], len(line) + 1)

    def _send(self, v: _Viewer, now: float) -> None:
        if v.drop is not None:
            self._close(v, v.drop)
            return
        if not v.out:
            if v.pos >= len(v.lines):
                with self._lock:
                    v.lines, v.pending, v.pos = v.pending, [], 0
            lines, i, n = v.lines, v.pos, 0
            if lines:
                while v.pos < len(lines) and n < CHUNK:
                    n += len(lines[v.pos]) + 1
                    v.pos += 1
                v.out = memoryview(("\n".join(lines[i:v.pos]) + "\n").encode())
                with self._lock:
                    v.size -= n
            elif now - v.last >= HEARTBEAT:
                v.out = memoryview(b"\n")
            else:
                return
        try:
            sent = v.sock.send(v.out)
        except OSError as exc:  # its buffer is full; or it is gone
            if not isinstance(exc, (BlockingIOError, InterruptedError)):
                self._close(v, "")
            return
        v.out, v.last = v.out[sent:], now

    def _close(self, v: _Viewer, why: str) -> None:
        with self._lock:
            self._viewers = [x for x in self._viewers if x is not v]
        if v.sock.fileno() >= 0:
            self._sel.unregister(v.sock)
            v.sock.close()
        self.dropped += bool(why)
        (log.warning if why else log.info)("kerasqt server: viewer %s %s", v.peer, f"dropped: {why}" if why else "left")

    def failed(self, exc: Exception) -> None:
        log.error("kerasqt server: serving failed; the training goes on unwatched", exc_info=exc)

    def finish(self) -> None:
        """Let viewers take what is left (up to ``LINGER`` s), then close everything."""
        deadline = time.monotonic() + LINGER
        try:
            while time.monotonic() < deadline and any(v.pending or v.pos < len(v.lines) or v.out
                                                          for v in self._viewers):
                for v in list(self._viewers):
                    self._send(v, time.monotonic())
                time.sleep(0.01)
        finally:
            for v in list(self._viewers):
                self._close(v, "")
            self._sel.close()
            self._listener.close()
