"""Watching a run from anywhere: its run log's lines over TCP (no Qt, no Keras).

The training side serves (:class:`RunServer`); a viewer reads (:class:`NetSource`, which hands
each run to a window as a :class:`NetRun`). The wire is the run log: plain TCP, UTF-8 JSON Lines,
``\\n``-terminated, as :class:`~kerasqt.runlog.RunLogWriter` writes them (no pickle; a viewer
checks every line as :func:`~kerasqt.runlog.read_run` does). The header sent on a connection has
``"stream": {"run": ID, "first": K, "extra": E}``: ``ID`` names the run (unique across servers);
the run's first ``K`` lines are not sent (past the server's bound); the ``E`` lines after the
header are the connection's own (the run's start line when among the ``K``, a message that says
so). A blank line is a heartbeat. A plain run log (``nc -l 8765 < run.jsonl``) reads too.

Catch-up: the server sends the whole current run (what it keeps of it) on every connection. A
viewer counts the run's lines it has delivered (``NetRun.next``); on a header of the same run
it skips the first ``next - K`` lines, and when ``K > next`` (lines went past the bound while it
was away) it says so and goes on from line ``K``. Another ID is a new run.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import selectors
import socket
import threading
import time
from collections import deque

from .events import EndEvent, ErrorEvent, MessageEvent, StartEvent, counted
from .loops import LoopThread
from .runlog.common import MAX_LINE, RunLogError
from .runlog.reader import check_header, decode_line
from .runlog.writer import encode_lines, header_line

__all__ = ["KEEP_BYTES", "VIEWER_BYTES", "NetRun", "NetSource", "RunServer", "parse_address", "viewer_address"]

log = logging.getLogger("kerasqt")

KEEP_BYTES = 32 * 2**20  # the current run's last lines kept for viewers that join late (~200k batches)
VIEWER_BYTES = 8 * 2**20  # a viewer this far behind the live lines (past its catch-up) is dropped
CHUNK = 256 * 1024  # bytes encoded for one viewer at a time
HEARTBEAT = 2.0  # seconds without lines to a viewer before a blank line
SILENCE = 10.0  # seconds without a line (a blank one too) before a viewer takes the connection for lost
LINGER = 1.0  # seconds close() gives viewers to take what is left (the run's end, say)


def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``"HOST:PORT"`` (``"[::1]:8765"`` for IPv6; an empty host is 127.0.0.1).
    Raises ValueError with a one-line reason."""
    host, sep, port = str(address).strip().rpartition(":")
    if not sep:
        raise ValueError(f"not HOST:PORT: {address!r} (e.g. 127.0.0.1:8765)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address goes in brackets: [{host}]:{port}")
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"not a port number (0 to 65535): {port!r} in {address!r}")
    return host or "127.0.0.1", int(port)


def viewer_address(address: str) -> tuple[str, int]:
    """:func:`parse_address` for a viewer, which needs the server's port (not 0)."""
    host, port = parse_address(address)
    if not port:
        raise ValueError(f"a viewer needs the server's port: {address!r}")
    return host, port


def _joined(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


class RunServer(LoopThread):
    """Serves the current run's lines to any number of viewers (the training side).

    ``RunServer("HOST:PORT")`` binds (loopback by default; port 0 picks one: :attr:`address`) and
    serves from its own daemon thread, ``kerasqt-server``: one thread and a selector for all
    viewers, sockets non-blocking, so that a viewer costs no thread and a slow one delays nobody.
    The producer calls :meth:`begin_run` at each run's start, :meth:`publish` with its events
    (any thread: the training thread, the window's tap), :meth:`close` at the end.

    Bounds: the run's last ``keep_bytes`` of lines (and its start line) are kept for late viewers;
    a viewer gets them, then the live lines, and is dropped (a log warning) when more than
    ``viewer_bytes`` of live lines wait for it. Lines are shared, never copied per viewer. Publish
    wakes nobody: lines go out at the server thread's next turn (``interval``).
    """

    interval = 0.05  # seconds between the server thread's turns

    def __init__(self, address: str = "127.0.0.1:0", *, keep_bytes: int = KEEP_BYTES,
                 viewer_bytes: int = VIEWER_BYTES) -> None:
        super().__init__("kerasqt-server")
        host, port = parse_address(address)
        self._listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._listener.setblocking(False)
        self.address = _joined(*self._listener.getsockname()[:2])  # "host:port" bound
        self.keep_bytes, self.viewer_bytes = keep_bytes, viewer_bytes
        self.dropped = 0  # viewers dropped for falling behind
        self._lock = threading.Lock()
        self._token, self._runs, self._run_id, self._header = secrets.token_hex(6), 0, "", None
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
            self._run_id, self._header = f"{self._token}-{self._runs}", header
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

    close = LoopThread.stop  # stop serving: viewers get up to LINGER s to take what is left, then the thread ends

    # -- under the lock -----------------------------------------------------------------------------------
    def _hello(self, first: int, extra: int) -> str:
        return header_line({**self._header, "stream": {"run": self._run_id, "first": first, "extra": extra}})

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
                else:  # a viewer sends nothing of use: dropped; the end of its stream closes it
                    try:
                        gone = not key.data.sock.recv(65536)
                    except OSError as exc:
                        gone = not isinstance(exc, (BlockingIOError, InterruptedError))
                    if gone:
                        self._close(key.data, "")
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
            v = _Viewer(sock, _joined(*peer[:2]), self._catch_up(), self.viewer_bytes)
            self._viewers.append(v)
        self._sel.register(sock, selectors.EVENT_READ, v)
        log.info("kerasqt server: viewer %s connected", v.peer)

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


class NetRun:
    """One run of a stream as a window's :class:`~kerasqt.source.RunSource`: its own queue, its header."""

    max_rate = 30.0
    tap = None  # (a viewer records nothing)
    loop_interval = None

    def __init__(self, source: NetSource, run_id: str, header: dict, first: int) -> None:
        self.source, self.id, self.header = source, run_id, header
        self.title, self.smoothing = header.get("title") or "kerasqt", header.get("smoothing", 0.9)
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.next = first  # the number of the run's next event line (catch-up)
        self.start: StartEvent | None = None
        self.ended = self.cut = False  # its end or error was queued; the source queued it (a cut short run)

    def put(self, ev) -> None:
        if type(ev) is StartEvent and self.start is None:
            self.start = ev
        elif type(ev) is EndEvent or type(ev) is ErrorEvent:
            self.ended = True
        self.events.put(ev)

    def alive(self) -> bool:
        return self.source.is_alive()  # (the source ends an open run with an error of its own first)

    def describe(self) -> str:
        where, s = f"live from {self.source.address}", self.start
        return f"{where}: {counted(s.epochs or '?', 'epoch')} x {counted(s.steps or '?', 'step')}" if s else where

    def can_stop(self) -> bool:
        return False  # a viewer cannot stop the training

    def stop(self) -> None:
        """Nothing to stop."""

    def control(self, action: str, args: dict | None = None) -> str:
        from .steer import ControlError

        raise ControlError(f"this viewer (no control token) cannot be controlled: {action} refused")

    def run_over(self) -> bool:
        return self.ended

    def finished(self) -> None:
        """The window is done with the run (what may come after its end is a few lines at most)."""

    def window_closed(self) -> None:
        self.source.quit()  # nobody watches: the source stops


_RUN_SOURCE = frozenset({"title", "smoothing", "max_rate", "tap", "loop_interval", "alive", "describe", "can_stop",
                         "run_over", "finished", "window_closed"})


class NetSource(LoopThread):
    """The viewer side: a ``kerasqt-net`` thread that reads the stream of the :class:`RunServer` at
    ``address`` and queues each run's events (catch-up: the module docstring); ``start()`` it.

    Each run is a :class:`NetRun`; ``on_new_run(run)`` is called with it from this thread when its
    header comes, before its events: wire it to ``window.request_run`` (which queues it to the main
    thread). A run still open when the next begins ends with an error event ("cut short"). The
    source is a RunSource too, of its :attr:`current` run: enough for one run; use the hook for more.

    It (re)connects by itself, every ``retry`` s while the server is away (said once); a connection
    silent for ``SILENCE`` s is lost. A stream gone for ``gone_after`` s during a run ends the run
    with an error ("cut short"); the source goes on trying (a run that comes back is shown anew).
    A bad line (too long, not UTF-8 or JSON, a field of the wrong type, a bad header) gives one
    message and a new connection: nothing leaves the thread but events. Messages while no run is
    open go to the next run's queue first. ``stop()`` (or ``close()``) ends the watching.
    """

    def __init__(self, address: str, *, on_new_run=None, on_note=None, retry: float = 1.0,
                 gone_after: float = 5.0) -> None:
        super().__init__("kerasqt-net")
        self.host, self.port = viewer_address(address)
        self.address = _joined(self.host, self.port)
        self.on_new_run, self.retry, self.gone_after = on_new_run, retry, gone_after
        self.on_note = on_note  # called (this thread) with a note while no run is open
        self.current = NetRun(self, "", {}, 0)  # the last run that began (before the first: one that is over)
        self.current.ended = True
        self._notes: list[str] = []  # messages waiting for a run's queue
        self._said: set[str] = set()  # messages given since the last new line of the run (each once)
        self._lost_at: float | None = None
        self._kind, self._skip, self._extra, self._keep_extra = "training", 0, 0, True  # this connection's:
        # the run's kind, its lines to skip (delivered before), the connection's own lines left, kept or not

    # -- the current run as a RunSource (but stop(), the thread's: it ends the watching) ------------
    events = property(lambda self: self.current.events)  # (Loop has an `events` of its own)

    def __getattr__(self, name: str):
        if name in _RUN_SOURCE:
            return getattr(self.current, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    close = LoopThread.stop

    # -- the thread ---------------------------------------------------------------------------------
    def work(self) -> None:
        again = f"retrying every {self.retry:g} s"
        while not self.stopping:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=min(self.retry + 0.5, 2.0))
            except OSError as exc:
                self._say(f"no training stream at {self.address} ({exc.strerror or exc}): {again}")
            else:
                try:
                    sock.settimeout(0.2)
                    self._read(sock)
                    self._say(f"the training's stream at {self.address} closed: {again}")
                except RunLogError as exc:  # a bad line: the peer is not a kerasqt run stream
                    self._say(f"bad data from {self.address}: {exc}; reconnecting")
                except OSError as exc:
                    self._say(f"the training's stream at {self.address} broke ({exc.strerror or exc}): {again}")
                except Exception as exc:  # a bug of ours: said and logged, the watching goes on
                    log.error("kerasqt viewer: reading the stream failed", exc_info=exc)
                    self._say(f"internal error reading the stream: {exc!r}")
                finally:
                    sock.close()
            self._lost()
            self.nap(self.retry)

    def _read(self, sock: socket.socket) -> None:
        """Lines until the connection ends (return) or breaks (OSError), or a line is bad (RunLogError)."""
        buf, heard, header = bytearray(), time.monotonic(), True  # (a connection begins with a header)
        while not self.stopping:
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                if time.monotonic() - heard > SILENCE:
                    raise TimeoutError(f"nothing came for {SILENCE:g} s") from None
                continue
            if not data:
                return
            heard = time.monotonic()
            end = data.rfind(b"\n")
            if end < 0:
                buf += data
                if len(buf) > MAX_LINE:
                    raise RunLogError(f"a line longer than {MAX_LINE // 2**20} MiB")
                continue
            buf += data[:end]
            lines, buf = bytes(buf).split(b"\n"), bytearray(data[end + 1:])
            for raw in lines:
                if not raw.strip():  # a heartbeat
                    continue
                if header or raw.startswith(b'{"format":'):
                    self._header(raw)
                    header = False
                else:
                    self._line(raw)

    def _header(self, raw: bytes) -> None:
        header = dict(check_header(raw))
        info = header.pop("stream", None)
        if info is None:  # a plain run log
            run_id, first, extra = json.dumps(header, sort_keys=True), 0, 0
        elif (type(info) is dict and type(info.get("run")) is str and type(info.get("first")) is int
              and type(info.get("extra")) is int and info["first"] >= 0 and 0 <= info["extra"] <= 16):
            run_id, first, extra = info["run"], info["first"], info["extra"]
        else:
            raise RunLogError("a bad 'stream' field in the header")
        self._lost_at, self._kind, self._extra = None, header["kind"], extra
        run = self.current
        if run.id == run_id and not run.cut:  # the same run again: catch up
            self._keep_extra, self._skip = False, max(0, run.next - first)
            if first > run.next:
                self._say(f"{first - run.next} lines of the run were lost while the stream was away")
                run.next = first
            return
        self._keep_extra, self._skip = True, 0
        if not run.ended:
            self._cut(run, "a new run began before this one's end came through the stream")
        self.current = run = NetRun(self, run_id, header, first)
        for text in self._notes:
            run.put(MessageEvent("control", text))
        self._notes.clear()
        if self.on_new_run is not None:
            try:
                self.on_new_run(run)
            except Exception as exc:
                log.error("kerasqt viewer: on_new_run failed", exc_info=exc)

    def _line(self, raw: bytes) -> None:
        rec = decode_line(raw, self._kind)
        run = self.current
        if self._extra:  # the connection's own line
            self._extra -= 1
            if self._keep_extra and rec is not None:
                run.put(rec[1])
        elif self._skip:  # delivered before
            self._skip -= 1
        else:
            run.next += 1
            self._said.clear()  # a new line of the run: the stream works
            if rec is not None:
                run.put(rec[1])

    def _say(self, text: str) -> None:
        """A control pane line, once until a new line of the run comes: to the open run, else the next."""
        if text not in self._said:
            self._said.add(text)
            if not self.current.ended:
                self.current.put(MessageEvent("control", text))
            else:
                self._notes = [*self._notes[-19:], text]
                if self.on_note is not None:  # (told now too: no run's pane may open for a while)
                    self.on_note(text)

    def _cut(self, run: NetRun, why: str) -> None:
        run.cut = True
        run.put(ErrorEvent(time.time(), why, "cut short"))

    def _lost(self) -> None:
        """No stream now: an open run ends when it has been so for ``gone_after`` s."""
        if self.current.ended:
            self._lost_at = None
        elif self._lost_at is None:
            self._lost_at = time.monotonic()
        elif time.monotonic() - self._lost_at >= self.gone_after:
            self._cut(self.current, "the training's stream ended without the end of the run")

    def failed(self, exc: Exception) -> None:
        log.error("kerasqt viewer: watching failed", exc_info=exc)

    def finish(self) -> None:
        if not self.current.ended:
            self._cut(self.current, "stopped watching the training's stream")
