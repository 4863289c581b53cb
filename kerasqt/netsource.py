"""The viewer side of a served run: :class:`NetSource` reads a :class:`~kerasqt.server.RunServer`'s
stream and hands each run to a window as a :class:`NetRun` (no Qt, no Keras; its own thread).

Controls go back on the same connection (with the token); the protocol is described in
:mod:`kerasqt.net`.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import socket
import threading
import time
from collections import deque

from .events import EndEvent, ErrorEvent, MessageEvent, StartEvent, counted
from .loops import LoopThread
from .runlog.common import MAX_LINE, RunLogError
from .runlog.reader import check_header, decode_line
from .steer import ControlError, check_control
from .wire import ANSWER_PREFIX, check_token, control_line, join_address, read_answer, viewer_address

__all__ = ["ANSWER_WAIT", "SILENCE", "NetRun", "NetSource"]

log = logging.getLogger("kerasqt")

SILENCE = 10.0  # seconds without a line (a blank one too) before a viewer takes the connection for lost
ANSWER_WAIT = 5.0  # seconds a control waits for its answer before the viewer says none came
TICK = 0.1  # seconds the viewer's thread waits for data before it looks at its controls to send


class NetRun:
    """One run of a stream as a window's :class:`~kerasqt.source.RunSource`: its own queue, its header."""

    max_rate = 30.0
    tap = None  # (a viewer records nothing)
    loop_interval = None

    def __init__(self, source: NetSource, run_id: str, header: dict, first: int, controls: bool = False) -> None:
        self.source, self.id, self.header = source, run_id, header
        self.title, self.smoothing = header.get("title") or "kerasqt", header.get("smoothing", 0.9)
        self.controls = controls  # whether its server takes controls (its header says so)
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

    # -- controls (any thread) -----------------------------------------------------------------------
    def no_control(self) -> str:
        """Why this viewer cannot control the run, in one line ("": it can, with its token)."""
        where = self.source.address
        if self.source.token is None:
            return (f"this viewer has no control token: kerasqt watch {where} --token TOKEN (or $KERASQT_TOKEN), "
                    "with the token the training printed")
        if not self.controls:
            return f"the training at {where} takes no controls (an older kerasqt, or none wired)"
        return ""

    def can_stop(self) -> bool:
        """Whether the window's *Stop training* may send ``stop``: a token, and a server that takes controls."""
        return not self.no_control()

    def stop(self) -> None:
        """Send ``stop`` (the window's *Stop training*); its answer, or why it was not sent, comes to the
        control pane."""
        try:
            self.control("stop")
        except ControlError as exc:
            self.events.put(MessageEvent("control", str(exc)))

    def control(self, action: str, args: dict | None = None) -> str:
        """Send a control to the training (any thread): returns ``"sent ..."``; the training's answer comes
        as a control-pane line. :class:`~kerasqt.steer.ControlError` (one line) when it cannot be sent."""
        action, args = check_control(action, args)
        why = self.no_control()
        if why:
            raise ControlError(f"{action} not sent: {why}")
        if self.ended or self.source.current is not self:
            raise ControlError(f"{action} not sent: this run is over")
        return self.source.send_control(action, args)

    def run_over(self) -> bool:
        return self.ended

    def finished(self) -> None:
        """The window is done with the run (what may come after its end is a few lines at most)."""

    def window_closed(self) -> None:
        self.source.quit()  # nobody watches: the source stops


_RUN_SOURCE = frozenset({"title", "smoothing", "max_rate", "tap", "loop_interval", "alive", "describe", "can_stop",
                         "control", "no_control", "run_over", "finished", "window_closed"})


class NetSource(LoopThread):
    """The viewer side: a ``kerasqt-net`` thread that reads the stream of the :class:`~kerasqt.server.RunServer`
    at ``address`` and queues each run's events (catch-up: :mod:`kerasqt.net`); ``start()`` it.

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

    ``token`` (the training's control token, or None): :meth:`send_control` (any thread) queues a
    control line that this thread sends on the connection; the answer, and a control that got none
    (in ``ANSWER_WAIT`` s, or before the connection ended), are control-pane lines of the open run,
    or, with none open, given to ``on_note``.
    """

    def __init__(self, address: str, *, token: str | None = None, on_new_run=None, on_note=None,
                 retry: float = 1.0, gone_after: float = 5.0) -> None:
        super().__init__("kerasqt-net")
        self.host, self.port = viewer_address(address)
        self.address = join_address(self.host, self.port)
        self.token = check_token(token) if token is not None else None
        self.on_new_run, self.retry, self.gone_after = on_new_run, retry, gone_after
        self.on_note = on_note  # called (this thread) with a note while no run is open
        self.current = NetRun(self, "", {}, 0)  # the last run that began (before the first: one that is over)
        self.current.ended = True
        self.refused = ""  # the training refused the token (its answer): controls are no longer sent
        self._notes: list[str] = []  # messages waiting for a run's queue
        self._said: set[str] = set()  # messages given since the last new line of the run (each once)
        self._lost_at: float | None = None
        self._kind, self._skip, self._extra, self._keep_extra = "training", 0, 0, True  # this connection's:
        # the run's kind, its lines to skip (delivered before), the connection's own lines left, kept or not
        self._lock = threading.Lock()  # guards _linked and _outbox (any thread asks, this one sends)
        self._linked = False  # a connection whose header came: controls can go
        self._outbox: deque[tuple[int, str, bytes]] = deque()  # (id, action, line) to send
        self._asked: dict[int, tuple[str, float]] = {}  # this thread's: sent, not answered: id -> (action, when)
        self._ids = itertools.count(1)

    # -- the current run as a RunSource (but stop(), the thread's: it ends the watching) ------------
    events = property(lambda self: self.current.events)  # (Loop has an `events` of its own)

    def __getattr__(self, name: str):
        if name in _RUN_SOURCE:
            return getattr(self.current, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    close = LoopThread.stop

    def send_control(self, action: str, args: dict | None = None) -> str:
        """Queue a control for the training (any thread; :meth:`NetRun.control` checks the run first):
        ``"sent ..."``, or :class:`~kerasqt.steer.ControlError` (one line) when it cannot go."""
        action, args = check_control(action, args)
        if self.token is None:
            raise ControlError(f"{action} not sent: this viewer has no control token")
        if self.refused:
            raise ControlError(f"{action} not sent: the training refused this viewer's token ({self.refused})")
        with self._lock:
            if not self._linked:
                raise ControlError(f"{action} not sent: not connected to the training at {self.address}")
            ident = next(self._ids)
            self._outbox.append((ident, action, control_line(action, args, self.token, ident)))
        return f"sent {action} to the training at {self.address}"

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
                    sock.settimeout(TICK)
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
                    self._unlink()
            self._lost()
            self.nap(self.retry)

    def _read(self, sock: socket.socket) -> None:
        """Lines until the connection ends (return) or breaks (OSError), or a line is bad (RunLogError);
        the controls asked for meanwhile are sent between reads."""
        buf, heard, header = bytearray(), time.monotonic(), True  # (a connection begins with a header)
        while not self.stopping:
            self._send(sock)
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
                if raw.startswith(ANSWER_PREFIX):  # the answer to a control of ours: no line of the run
                    self._answer(raw)
                elif header or raw.startswith(b'{"format":'):
                    self._header(raw)
                    header = False
                    with self._lock:
                        self._linked = True
                else:
                    self._line(raw)

    def _header(self, raw: bytes) -> None:
        header = dict(check_header(raw))
        info = header.pop("stream", None)
        if info is None:  # a plain run log
            run_id, first, extra, controls = json.dumps(header, sort_keys=True), 0, 0, False
        elif (type(info) is dict and type(info.get("run")) is str and type(info.get("first")) is int
              and type(info.get("extra")) is int and info["first"] >= 0 and 0 <= info["extra"] <= 16):
            run_id, first, extra, controls = info["run"], info["first"], info["extra"], info.get("control") is True
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
        self._keep_extra, self._skip, self.refused = True, 0, ""
        if not run.ended:
            self._cut(run, "a new run began before this one's end came through the stream")
        self.current = run = NetRun(self, run_id, header, first, controls)
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

    # -- controls (this thread) ---------------------------------------------------------------------
    def _send(self, sock: socket.socket) -> None:
        """The controls asked for since the last turn go out; one that got no answer in time is said."""
        if self._outbox:
            with self._lock:
                out = list(self._outbox)
                self._outbox.clear()
            now = time.monotonic()
            for ident, action, _ in out:
                self._asked[ident] = (action, now)
            sock.sendall(b"".join(line for _, _, line in out))
        if self._asked:
            late = [i for i, (_, when) in self._asked.items() if time.monotonic() - when > ANSWER_WAIT]
            for ident in late:
                action, _ = self._asked.pop(ident)
                self._tell(f"{action}: no answer from the training at {self.address} in {ANSWER_WAIT:g} s")

    def _answer(self, raw: bytes) -> None:
        try:
            ans = read_answer(raw)
        except ValueError as exc:
            raise RunLogError(str(exc)) from None
        self._asked.pop(ans["id"], None)
        if not ans["token"]:
            self.refused = ans["text"]
        self._tell(ans["text"])  # (one that comes too late too: the control was taken after all)

    def _unlink(self) -> None:
        """The connection ended: what was asked and not answered is said, not sent again."""
        with self._lock:
            self._linked = False
            lost = [action for _, action, _ in self._outbox]
            self._outbox.clear()
        lost += [action for action, _ in self._asked.values()]
        self._asked.clear()
        for action in lost:
            self._tell(f"{action}: no answer, the connection to the training ended first (ask again)")

    def _tell(self, text: str) -> None:
        """A control-pane line now (each time, unlike :meth:`_say`): to the open run, else ``on_note``."""
        if not self.current.ended:
            self.current.put(MessageEvent("control", text))
        elif self.on_note is not None:
            self.on_note(text)

    # -- saying, losing -------------------------------------------------------------------------------
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
