"""Run logs: every event of a run in an append-only JSON Lines file, and reading it back.

Pure: no Qt, no Keras. The format (also in the README):

* line 1, the header: ``{"format": "kerasqt-run", "version": 1, "kind": "training" | "sine",
  "created": <unix time>, "title": ..., ...}``;
* then one JSON object per event, with ``"type"`` (``start``, ``batch``, ``eval``, ``epoch``,
  ``end``, ``error``, ``message``, ``sine``), ``"time"`` (unix seconds) and the fields of the
  event class of that name in :mod:`kerasqt.events` (``message`` and ``sine`` events carry
  no time of their own: theirs is when the receiver got them). Every line is strict JSON:
  non-finite numbers are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

Threads: a :class:`RunLogWriter` is written by one thread at a time (the receiver
thread through the monitor's ``tap``, then, if the window closes during ``fit``, a
:class:`LogFollower` thread); a lock makes ``write`` and ``close`` safe from any
thread. Lines go to the OS (where a killed process keeps them) every ``FLUSH_EVERY``
seconds, at every epoch end and at the end; the caller calls ``write([])`` when idle
so that this holds when events stop coming. The file is ``fsync``\\ ed at epoch ends
(at most once a second) and at the end.
:func:`read_run` parses with :mod:`json` only and checks every field's type: a
corrupt or hostile file gives a :class:`RunLogError`, nothing else.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .events import (
    BatchEvent,
    BatchRows,
    EndEvent,
    EpochEvent,
    ErrorEvent,
    EvalEvent,
    MessageEvent,
    SineEvent,
    StartEvent,
    counted,
    drain,
    fit_gone,
)

__all__ = [
    "DEFAULT_LOG_DIR",
    "ENV_LOG_DIR",
    "FORMAT",
    "VERSION",
    "LogFollower",
    "ReplayFeeder",
    "RunLog",
    "RunLogError",
    "RunLogWriter",
    "read_run",
    "resolve_log_dir",
]

FORMAT = "kerasqt-run"
VERSION = 1
ENV_LOG_DIR = "KERASQT_LOG_DIR"
MAX_LINE = 16 * 1024 * 1024  # bytes; a sine curve of the demo is ~30 kB
FLUSH_EVERY = 0.25  # seconds: lines wait at most this long (plus one receiver iteration) for the OS
SYNC_EVERY = 1.0  # seconds: the most one fsync per this many seconds at epoch ends


class _DefaultLogDir:
    """The default ``log_dir``: ``$KERASQT_LOG_DIR`` if set (empty: no log), else ``./runs``."""

    def __repr__(self) -> str:
        return "DEFAULT_LOG_DIR"


DEFAULT_LOG_DIR = _DefaultLogDir()


class RunLogError(Exception):
    """A run log could not be read (or written); the message is one line for the user."""


def resolve_log_dir(log_dir) -> Path | None:
    """The folder a run log goes to, or None for no log (``log_dir=None``, or an empty env var)."""
    if log_dir is DEFAULT_LOG_DIR:
        log_dir = os.environ.get(ENV_LOG_DIR, "runs")
        if not log_dir:
            return None
    if log_dir is None:
        return None
    return Path(log_dir).expanduser().absolute()


# -- writing --------------------------------------------------------------------------------------

def _plain(obj):
    """JSON for what json does not know: numpy scalars and arrays, other mappings."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "items"):
        return dict(obj.items())
    raise TypeError(f"cannot write {type(obj).__name__} to a run log")


_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False, default=_plain).encode
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _finite(obj):
    """``obj`` with non-finite floats replaced by their names (the rare path: NaN/inf logged)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else ("NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity"))
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if hasattr(obj, "items"):
        return _finite(dict(obj.items()))
    return obj


def _encode(ev, now: float) -> dict | None:
    t = type(ev)
    if t is BatchEvent:
        return {"type": "batch", "time": ev.time, "step": ev.step, "epoch": ev.epoch, "values": ev.values,
                "bad": ev.bad, "lr": ev.lr}
    if t is EpochEvent:
        return {"type": "epoch", "time": ev.time, "step": ev.step, "epoch": ev.epoch, "values": ev.values,
                "bad": ev.bad, "lr": ev.lr}
    if t is EvalEvent:
        return {"type": "eval", "time": ev.time, "step": ev.step, "epoch": ev.epoch, "values": ev.values,
                "kind": ev.kind, "bad": ev.bad}
    if t is StartEvent:
        return {"type": "start", "time": ev.time, "epochs": ev.epochs, "steps": ev.steps,
                "batch_size": ev.batch_size, "initial_epoch": ev.initial_epoch, "run": ev.run}
    if t is EndEvent:
        return {"type": "end", "time": ev.time, "step": ev.step, "stopped": ev.stopped}
    if t is ErrorEvent:
        return {"type": "error", "time": ev.time, "message": ev.message}
    if t is MessageEvent:
        return {"type": "message", "time": now, "source": ev.source, "text": ev.text}
    if t is SineEvent:
        return {"type": "sine", "time": now, "index": ev.index, "periods": ev.periods, "x": ev.x, "y": ev.y}
    return None


def _line(obj: dict) -> str:
    try:
        return _dumps(obj)
    except ValueError:  # NaN or inf somewhere: write them as strings, keep the line strict JSON
        return _dumps(_finite(obj))


_keys: dict[str, str] = {}  # metric name -> its JSON string (the receiver thread fills it)


def _batch_line(ev: BatchEvent) -> str | None:
    """The line of a batch event, fast (the common case: finite floats, nothing bad); None otherwise.

    ``repr`` of a finite float is valid JSON and gives back the same float; the result is
    the same line as ``_line(_encode(ev))``, in about a third of the time.
    """
    if ev.bad or type(ev.step) is not int or type(ev.epoch) is not int or type(ev.time) is not float:
        return None
    lr = ev.lr
    if lr is not None and (type(lr) is not float or lr - lr != 0):
        return None
    parts = []
    for k, v in ev.values.items():
        if type(v) is not float or v - v != 0:  # NaN and inf give NaN here
            return None
        key = _keys.get(k)
        if key is None:
            if type(k) is not str:
                return None
            key = _keys[k] = _dumps(k)
        parts.append(f"{key}:{v!r}")
    return (f'{{"type":"batch","time":{ev.time!r},"step":{ev.step},"epoch":{ev.epoch},'
            f'"values":{{{",".join(parts)}}},"bad":[],"lr":{"null" if lr is None else repr(lr)}}}')


def _rows_lines(rows: BatchRows) -> list[str]:
    """The lines of ``rows``' batches, one template for all (finite numbers, the common case);
    the same lines as their events give, one by one, otherwise."""
    lrs = [] if rows.lrs is None else [rows.lrs]
    if not all(math.isfinite(sum(col)) for col in (rows.times, *rows.values.values(), *lrs)):
        return [_batch_line(ev) or _line(_encode(ev, 0.0)) for ev in rows.events()]  # a NaN or inf: named
    keys = ",".join(_dumps(k).replace("%", "%%") + ":%r" for k in rows.values)
    template = ('{"type":"batch","time":%r,"step":%d,"epoch":%d,"values":{' + keys + '},"bad":[],"lr":'
                + ("%r}" if lrs else "null}"))
    return [template % row for row in zip(rows.times, rows.steps, rows.epochs, *rows.values.values(), *lrs,
                                          strict=True)]


class RunLogWriter:
    """Appends events to one run's JSON Lines file. ``write`` and ``close`` may be called from any thread.

    Use :meth:`create` to start a new file in a folder. The file ends when an end or
    error event is written, or at :meth:`close`, whichever comes first.
    """

    def __init__(self, path: str | os.PathLike, header: dict) -> None:
        self.path = Path(path)
        self.lines = 0
        self.error: str | None = None
        self._lock = threading.Lock()
        self._pending: list[str] = []  # lines not yet handed to the OS
        self._last_flush = self._last_sync = time.monotonic()
        # "x": never append to (or clobber) another run's file.
        self._fh = open(self.path, "x", encoding="utf-8", newline="\n")
        try:
            self._fh.write(_line({"format": FORMAT, "version": VERSION, **header}) + "\n")
            self._fh.flush()
        except BaseException:
            self._fh.close()
            raise

    @classmethod
    def create(cls, folder: str | os.PathLike, *, kind: str, title: str = "kerasqt", **header) -> RunLogWriter:
        """A new log in ``folder`` (made if missing), named by the local time: ``20250101-120000.jsonl``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        head = {"kind": kind, "created": now, "title": title, "kerasqt": _version(), **header}
        for n in range(1, 1000):
            path = folder / (f"{stamp}.jsonl" if n == 1 else f"{stamp}-{n}.jsonl")
            try:
                return cls(path, head)
            except FileExistsError:
                continue
        raise FileExistsError(f"no free run log name for {stamp} in {folder}")

    @property
    def closed(self) -> bool:
        return self._fh is None

    def write(self, events: list) -> None:
        """Append ``events`` (one line each); ends the file at an end or error event.

        Lines go to the OS when ``FLUSH_EVERY`` s have passed since the last time, at an
        epoch end, and at the end; call ``write([])`` when idle to let that happen.
        """
        now = time.time()
        lines = []
        sync = end = False
        for ev in events:
            t = type(ev)
            if t is BatchRows:
                lines += _rows_lines(ev)
                continue
            line = _batch_line(ev) if t is BatchEvent else None
            if line is None:
                obj = _encode(ev, now)
                if obj is None:
                    continue
                line = _line(obj)
            lines.append(line)
            if t is EpochEvent:
                sync = True
            elif t is EndEvent or t is ErrorEvent:
                end = True
        with self._lock:
            fh = self._fh
            if fh is None:
                return
            pending = self._pending
            pending += lines
            self.lines += len(lines)
            mono = time.monotonic()
            if not (sync or end or (pending and mono - self._last_flush >= FLUSH_EVERY)):
                return
            try:
                self._flush_locked(fh)
                self._last_flush = mono
                if end or (sync and mono - self._last_sync >= SYNC_EVERY):
                    self._last_sync = mono
                    os.fsync(fh.fileno())
            except OSError as exc:  # disk full, folder gone: the log stops, training goes on
                self.error = f"{self.path}: {exc.strerror or exc}"
                self._close_locked(sync=False)
                raise RunLogError(f"the run log stopped: {self.error}") from exc
            if end:
                self._close_locked(sync=False)

    def write_after(self, events: list) -> None:
        """Add ``events`` (an ``evaluate()`` after ``fit``) to this run's log, even after its end:
        a file that ended is opened again to append them. Nothing after a write error."""
        lines = [_line(obj) for obj in (_encode(ev, time.time()) for ev in events) if obj is not None]
        if not lines:
            return
        with self._lock:
            if self.error is not None:
                return
            try:
                if self._fh is not None:
                    self._pending += lines
                    self._flush_locked(self._fh)
                else:
                    # "r+": a log removed meanwhile is not made anew, with these lines only
                    with open(self.path, "r+", encoding="utf-8", newline="\n") as fh:
                        fh.seek(0, os.SEEK_END)
                        fh.write("\n".join(lines) + "\n")
                        fh.flush()
                        os.fsync(fh.fileno())
            except OSError as exc:
                raise RunLogError(f"the run log stopped: {self.path}: {exc.strerror or exc}") from exc
            self.lines += len(lines)

    def _flush_locked(self, fh) -> None:
        """Hand the lines not yet written to the OS (the lock held)."""
        if self._pending:
            fh.write("\n".join(self._pending) + "\n")
            self._pending.clear()
        fh.flush()

    def close(self) -> None:
        """Flush, sync and close; idempotent."""
        with self._lock:
            self._close_locked(sync=True)

    def _close_locked(self, sync: bool) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            if sync:
                self._flush_locked(fh)
                os.fsync(fh.fileno())
        except OSError:
            pass
        finally:
            self._pending = []
            fh.close()

    def __repr__(self) -> str:
        return f"<RunLogWriter {self.path} {'closed' if self.closed else 'open'}, {self.lines} lines>"


def _version() -> str:
    from . import __version__

    return __version__


class LogFollower(threading.Thread):
    """Keeps writing a run's log after its window closed: drains the queue until the run ends.

    ``alive()`` (e.g. ``QtMonitor.fit_running``) is asked every ``alive_every`` s; when
    it says False twice in a row with nothing queued (the run's own end or error event may
    still be on its way the first time), ``fit`` raised: an error line ends the log.
    """

    def __init__(self, events: queue.SimpleQueue, writer: RunLogWriter, alive=None, *,
                 interval: float = 0.1, alive_every: float = 0.5) -> None:
        super().__init__(name="kerasqt-runlog", daemon=True)
        self.events = events
        self.writer = writer
        self.alive = alive
        self.interval = interval
        self.alive_every = alive_every
        self._stop_flag = threading.Event()
        self._wakeup = threading.Event()
        self._run_over = False

    def run(self) -> None:
        next_alive = time.monotonic() + self.alive_every
        gone = False
        try:
            while not self._stop_flag.is_set() and not self.writer.closed:
                if self._wakeup.wait(self.interval):  # then take all that came meanwhile (not a wake per event)
                    self._wakeup.clear()
                items = drain(self.events)
                self.writer.write(items)  # idle too (flushes); closes the file itself at an end or error event
                if items:
                    gone = False
                    continue
                now = time.monotonic()
                if self.alive is not None and now >= next_alive:
                    next_alive = now + self.alive_every
                    if self.alive() or not self.events.empty():
                        gone = False
                    elif not gone:
                        gone = True
                    else:
                        self.writer.write([fit_gone(time.time())])
            rest = drain(self.events) if not self.writer.closed else []
            if rest:
                self.writer.write(rest)
            if self._run_over and not self.writer.closed:  # a next run began: this one will not end
                self.writer.write([fit_gone(time.time())])
        except RunLogError:
            pass  # the writer closed itself and kept the reason in writer.error
        finally:
            self.writer.close()

    def wake(self) -> None:
        """End the current wait now: the run's end is queued (any thread)."""
        self._wakeup.set()

    def stop(self, timeout: float | None = 2.0, *, run_over: bool = False) -> None:
        """Write what is queued, close the log and end the thread (any other thread).

        ``run_over``: the run is over (the monitor began another) even if no end or error was
        queued: a log still open then ends with an error line, like after ``fit`` raised.
        """
        self._run_over = run_over
        self._stop_flag.set()
        self._wakeup.set()
        if self.is_alive():
            self.join(timeout)


# -- reading --------------------------------------------------------------------------------------

class _Bad(Exception):
    pass


_REQUIRED = object()
_INT64 = 2**63


def _num(v) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise _Bad("a number too large") from None
    if t is str and v in _NONFINITE:
        return _NONFINITE[v]
    raise _Bad(f"not a number: {_short(v)}")


def _finite_num(v) -> float:
    v = _num(v)
    if not math.isfinite(v):
        raise _Bad("not a finite number")
    return v


def _int(v) -> int:
    if type(v) is not int or not -_INT64 <= v < _INT64:
        raise _Bad(f"not a whole number: {_short(v)}")
    return v


def _opt(check):
    def opt(v):
        return None if v is None else check(v)
    return opt


def _str(v) -> str:
    if type(v) is not str:
        raise _Bad(f"not a string: {_short(v)}")
    return v


def _bool(v) -> bool:
    if type(v) is not bool:
        raise _Bad(f"not true or false: {_short(v)}")
    return v


def _values(v) -> dict[str, float]:
    if type(v) is not dict:
        raise _Bad("values is not an object")
    return {_str(k): _num(x) for k, x in v.items()}


def _strs(v) -> tuple[str, ...]:
    if type(v) is not list:
        raise _Bad("not a list")
    return tuple(_str(x) for x in v)


def _floats(v) -> np.ndarray:
    if type(v) is not list:
        raise _Bad("not a list")
    return np.array([_num(x) for x in v], np.float64)


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# type -> (event class, [(field, check, default)])
_FIELDS = {
    "start": (StartEvent, [("time", _finite_num, _REQUIRED), ("epochs", _opt(_int), None),
                           ("steps", _opt(_int), None), ("batch_size", _opt(_int), None),
                           ("initial_epoch", _int, 0), ("run", _str, "")]),
    "batch": (BatchEvent, [("step", _int, _REQUIRED), ("epoch", _int, _REQUIRED), ("time", _finite_num, _REQUIRED),
                           ("values", _values, _REQUIRED), ("bad", _strs, ()), ("lr", _opt(_num), None)]),
    "eval": (EvalEvent, [("step", _int, _REQUIRED), ("epoch", _int, _REQUIRED), ("time", _finite_num, _REQUIRED),
                         ("values", _values, _REQUIRED), ("kind", _str, "val"), ("bad", _strs, ())]),
    "epoch": (EpochEvent, [("step", _int, _REQUIRED), ("epoch", _int, _REQUIRED), ("time", _finite_num, _REQUIRED),
                           ("values", _values, _REQUIRED), ("bad", _strs, ()), ("lr", _opt(_num), None)]),
    "end": (EndEvent, [("step", _int, _REQUIRED), ("time", _finite_num, _REQUIRED), ("stopped", _bool, False)]),
    "error": (ErrorEvent, [("time", _finite_num, _REQUIRED), ("message", _str, _REQUIRED)]),
    "message": (MessageEvent, [("source", _str, _REQUIRED), ("text", _str, _REQUIRED)]),
    "sine": (SineEvent, [("index", _int, _REQUIRED), ("periods", _int, _REQUIRED), ("x", _floats, _REQUIRED),
                         ("y", _floats, _REQUIRED)]),
}
_KINDS = {"training": {"start", "batch", "eval", "epoch", "end", "error", "message"},
          "sine": {"sine", "message", "end", "error"}}


def _decode(obj) -> tuple[float | None, object] | None:
    """(time, event) from one parsed line; None for an event type this version does not know."""
    if type(obj) is not dict:
        raise _Bad("not a JSON object")
    kind = obj.get("type")
    spec = _FIELDS.get(kind) if type(kind) is str else None
    if spec is None:
        if type(kind) is not str:
            raise _Bad("no event type")
        return None
    cls, fields = spec
    kwargs = {}
    for name, check, default in fields:
        if name in obj:
            try:
                kwargs[name] = check(obj[name])
            except _Bad as exc:
                raise _Bad(f"{kind} field {name!r}: {exc}") from None
        elif default is _REQUIRED:
            raise _Bad(f"{kind} event without {name!r}")
        else:
            kwargs[name] = default
    if cls is SineEvent and len(kwargs["x"]) != len(kwargs["y"]):
        raise _Bad("sine x and y differ in length")
    t = kwargs.get("time")
    if t is None and "time" in obj:
        try:
            t = _finite_num(obj["time"])
        except _Bad as exc:
            raise _Bad(f"{kind} field 'time': {exc}") from None
    return t, cls(**kwargs)


@dataclass
class RunLog:
    """A run log read back: its header and its events with the times to replay them at."""

    path: Path
    header: dict
    records: list = field(repr=False)  # [(time or None, event)]
    truncated: bool = False  # the last line was cut short (the process was killed) and is skipped
    skipped: int = 0  # lines of event types this version does not know

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def kind(self) -> str:
        return self.header["kind"]

    @property
    def events(self) -> list:
        return [ev for _, ev in self.records]

    @property
    def ended(self) -> bool:
        """Whether the run's end (normal, stopped or failed) is in the log."""
        return any(isinstance(ev, (EndEvent, ErrorEvent)) for _, ev in self.records)

    @property
    def smoothing(self) -> float:
        return self.header.get("smoothing", 0.9)

    def count(self, cls) -> int:
        return sum(1 for _, ev in self.records if isinstance(ev, cls))

    def describe(self) -> str:
        if self.kind == "sine":
            return f"{self.name}: {self.count(SineEvent)} sine curves"
        end = next((ev for _, ev in reversed(self.records) if isinstance(ev, (EndEvent, ErrorEvent))), None)
        how = ("finished" if not end.stopped else "stopped early") if isinstance(end, EndEvent) else (
            "failed" if isinstance(end, ErrorEvent) else "cut short")
        return (f"{self.name}: {counted(self.count(BatchEvent), 'batch', 'batches')}, "
                f"{counted(self.count(EpochEvent), 'epoch')}, {how}")


def _parse(raw: bytes):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, too many digits, nesting
        raise _Bad("not valid JSON") from None


def _check_header(header) -> dict:
    if type(header) is not dict or header.get("format") != FORMAT:
        raise RunLogError("not a kerasqt run log")
    version = header.get("version")
    if type(version) is not int or version < 1:
        raise RunLogError("not a kerasqt run log (no valid format version)")
    if version > VERSION:
        raise RunLogError(f"written by a newer kerasqt (run log format version {version}; "
                          f"this kerasqt reads up to {VERSION})")
    if type(header.get("kind")) is not str or header["kind"] not in _KINDS:
        raise RunLogError(f"unknown kind of run {_short(header.get('kind'))}")
    smoothing = header.get("smoothing", 0.9)
    if type(smoothing) not in (int, float) or not 0 <= smoothing < 1:
        raise RunLogError(f"bad smoothing in the header: {_short(smoothing)}")
    for key in ("title",):
        if key in header and type(header[key]) is not str:
            raise RunLogError(f"bad {key} in the header: {_short(header[key])}")
    return header


def read_run(path: str | os.PathLike) -> RunLog:
    """Read and check a run log; raises :class:`RunLogError` with a one-line reason for a bad file
    (its path, then what is wrong).

    A last line without its newline that does not parse (the writer was killed
    mid-line) is skipped and sets ``truncated``; any other bad line is an error.
    """
    try:
        return _read_run(Path(path))
    except RunLogError as exc:
        raise RunLogError(f"{path}: {exc}") from None


def _read_run(path: Path) -> RunLog:
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise RunLogError("no such file") from None
    except IsADirectoryError:
        raise RunLogError("a folder, not a run log") from None
    except OSError as exc:
        raise RunLogError(exc.strerror or str(exc)) from None
    with fh:
        first = fh.readline(MAX_LINE + 1)
        if not first:
            raise RunLogError("the file is empty")
        if len(first) > MAX_LINE:
            raise RunLogError("not a kerasqt run log")
        try:
            header = _check_header(_parse(first))
        except _Bad:
            raise RunLogError("not a kerasqt run log (the first line is not JSON)") from None
        allowed = _KINDS[header["kind"]]
        records: list = []
        truncated = False
        skipped = 0
        n = 1
        while raw := fh.readline(MAX_LINE + 1):
            n += 1
            if len(raw) > MAX_LINE:
                raise RunLogError(f"line {n} is longer than {MAX_LINE // 2**20} MiB")
            if not raw.strip():
                continue
            try:
                obj = _parse(raw)
            except _Bad:
                if not raw.endswith(b"\n") and not fh.read(1):
                    truncated = True  # the last line, cut short
                    break
                raise RunLogError(f"line {n} is not valid JSON") from None
            try:
                rec = _decode(obj)
            except _Bad as exc:
                raise RunLogError(f"line {n}: {exc}") from None
            if rec is None:
                skipped += 1
                continue
            if type(obj["type"]) is str and obj["type"] not in allowed:
                raise RunLogError(f"line {n}: a {obj['type']} event in a {header['kind']} run log")
            records.append(rec)
    return RunLog(path, header, records, truncated, skipped)


# -- replaying ------------------------------------------------------------------------------------

class ReplayFeeder:
    """Puts a run log's events into ``put``: all at once, or at ``speed`` times their recorded pace.

    The log's own end closes the replay; a log without one (the run was killed, or
    is still going) gets an :class:`ErrorEvent` saying so (a sine log, an
    :class:`EndEvent`), so that the receiver ends its run. Pauses longer than
    ``max_pause`` s of replay time are shortened to it. Paced replays run in a
    ``kerasqt-replay`` thread; ``stop()`` ends it (any thread).
    """

    def __init__(self, run: RunLog, put, speed: float | None = None, max_pause: float = 5.0) -> None:
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a positive number or None, got {speed!r}")
        self.run = run
        self.put = put
        self.speed = speed
        self.max_pause = max_pause
        self.fed = 0
        self._stop_flag = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ReplayFeeder:
        if self.speed is None:
            self._feed()
        else:
            self._thread = threading.Thread(target=self._feed, name="kerasqt-replay", daemon=True)
            self._thread.start()
        return self

    def _feed(self) -> None:
        last = None
        records = self.run.records
        ends = [i for i, (_, ev) in enumerate(records) if isinstance(ev, (EndEvent, ErrorEvent))]
        if ends and ends[-1] < len(records) - 1:
            # Lines after the end (an evaluate() after fit, appended later): they belong to the run,
            # whose receiver stops at its end, so they come just before it, without a pause.
            k = ends[-1]
            records = records[:k] + [(records[k][0], ev) for _, ev in records[k + 1:]] + [records[k]]
        for t, ev in records:
            if self.speed is not None and t is not None:
                if last is not None:
                    gap = (t - last) / self.speed
                    if gap > 0 and self._stop_flag.wait(min(gap, self.max_pause)):
                        return
                last = t
            elif self._stop_flag.is_set():
                return
            self.put(ev)
            self.fed += 1
        if not self.run.ended:
            when = last if last is not None else time.time()
            if self.run.kind == "sine":
                self.put(EndEvent(0, when))
            else:
                self.put(ErrorEvent(when, "the run log ends here, without the end of the run "
                                          "(the process was killed, or the run is still going)", "cut short"))

    @property
    def done(self) -> bool:
        return self._thread is None or not self._thread.is_alive()

    def stop(self, timeout: float | None = 2.0) -> None:
        self._stop_flag.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
