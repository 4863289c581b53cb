"""Writing a run log: events to JSON Lines, appended to the run's file (pure: no Qt, no Keras).

Threads: a :class:`RunLogWriter` is written by one thread at a time (the receiver
thread through the monitor's ``tap``, then, if the window closes during ``fit``, a
:class:`~kerasqt.runlog.LogFollower` thread); a lock makes ``write``, ``write_after``
and ``close`` safe from any thread. Lines go to the OS (where a killed process keeps
them) every ``FLUSH_EVERY`` seconds, at every epoch end and at the end; the caller
calls ``write([])`` when idle so that this holds when events stop coming. The file is
``fsync``\\ ed at epoch ends (at most once a second) and at the end. The encoding
helpers run in the writing thread; ``_keys`` is filled by it (the receiver thread).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np

from ..events import (
    BatchEvent,
    BatchRows,
    ControlEvent,
    EndEvent,
    EpochEvent,
    ErrorEvent,
    EvalEvent,
    MeansEvent,
    MessageEvent,
    PatienceEvent,
    SineEvent,
    StartEvent,
)
from .common import FORMAT, VERSION, RunLogError

__all__ = ["FLUSH_EVERY", "SYNC_EVERY", "RunLogWriter", "encode_lines", "header_line"]

FLUSH_EVERY = 0.05  # seconds: lines wait at most this long (plus one receiver iteration) for the OS
SYNC_EVERY = 1.0  # seconds: the most one fsync per this many seconds at epoch ends


def _plain(obj):
    """JSON for what json does not know: numpy scalars and arrays, other mappings."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "items"):
        return dict(obj.items())
    raise TypeError(f"cannot write {type(obj).__name__} to a run log")


_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False, default=_plain).encode


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
        obj = {"type": "batch", "time": ev.time, "step": ev.step, "epoch": ev.epoch, "values": ev.values,
               "bad": ev.bad, "lr": ev.lr}
        if ev.counts is not None:
            obj["counts"] = ev.counts
        return obj
    if t is EpochEvent:
        return {"type": "epoch", "time": ev.time, "step": ev.step, "epoch": ev.epoch, "values": ev.values,
                "bad": ev.bad, "lr": ev.lr}
    if t is EvalEvent:
        return {"type": "eval", "time": ev.time, "step": ev.step, "epoch": ev.epoch, "values": ev.values,
                "kind": ev.kind, "bad": ev.bad}
    if t is StartEvent:
        obj = {"type": "start", "time": ev.time, "epochs": ev.epochs, "steps": ev.steps,
               "batch_size": ev.batch_size, "initial_epoch": ev.initial_epoch, "run": ev.run}
        if ev.lr_fixed:
            obj["lr_fixed"] = ev.lr_fixed
        return obj
    if t is MeansEvent:
        return {"type": "means", "time": ev.time, "step": ev.step, "means": ev.means, "weights": ev.weights,
                "running": ev.running, "execution": ev.execution}
    if t is EndEvent:
        return {"type": "end", "time": ev.time, "step": ev.step, "stopped": ev.stopped}
    if t is ErrorEvent:
        return {"type": "error", "time": ev.time, "message": ev.message}
    if t is MessageEvent:
        return {"type": "message", "time": now, "source": ev.source, "text": ev.text}
    if t is ControlEvent:
        return {"type": "control", "time": ev.time, "step": ev.step, "action": ev.action, "text": ev.text,
                "ok": ev.ok, "value": ev.value, "path": ev.path}
    if t is PatienceEvent:
        return {"type": "patience", "time": ev.time, "step": ev.step, "epoch": ev.epoch, "monitor": ev.monitor,
                "wait": ev.wait, "patience": ev.patience, "best_epoch": ev.best_epoch, "best": ev.best,
                "restored": ev.restored}
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
    counts = ""
    if ev.counts is not None:
        if type(ev.counts) is not tuple or not all(type(c) is float and c - c == 0 for c in ev.counts):
            return None
        counts = ',"counts":[' + ",".join(map(repr, ev.counts)) + "]"
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
            f'"values":{{{",".join(parts)}}},"bad":[],"lr":{"null" if lr is None else repr(lr)}{counts}}}')


def _rows_lines(rows: BatchRows) -> list[str]:
    """The lines of ``rows``' batches, one template for all (finite numbers, the common case);
    the same lines as their events give, one by one, otherwise."""
    lrs = [] if rows.lrs is None else [rows.lrs]
    counts = rows.counts or ()
    if not all(math.isfinite(sum(col)) for col in (rows.times, *rows.values.values(), *lrs, *counts)):
        return [_batch_line(ev) or _line(_encode(ev, 0.0)) for ev in rows.events()]  # a NaN or inf: named
    keys = ",".join(_dumps(k).replace("%", "%%") + ":%r" for k in rows.values)
    template = ('{"type":"batch","time":%r,"step":%d,"epoch":%d,"values":{' + keys + '},"bad":[],"lr":'
                + ("%r" if lrs else "null") + (',"counts":[' + ",".join(["%r"] * len(counts)) + "]" if counts else "")
                + "}")
    return [template % row for row in zip(rows.times, rows.steps, rows.epochs, *rows.values.values(), *lrs,
                                          *counts, strict=True)]


class RunLogWriter:
    """Appends events to one run's JSON Lines file. ``write`` and ``close`` may be called from any thread.

    Use :meth:`create` to start a new file in a folder. The file ends when an end or
    error event is written, or at :meth:`close`, whichever comes first.
    """

    def __init__(self, path: str | os.PathLike, header: dict) -> None:
        self.path = Path(path)
        self.header = dict(header)  # (without format and version)
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
        """A new log in ``folder`` (made if missing), named by the local time: ``20250101-120000.jsonl``.

        The header names the writing process (``pid``, ``host``): a follower of the log on the same
        host tells a writer that is gone without the run's end (:mod:`kerasqt.follow`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        head = {"kind": kind, "created": now, "title": title, "kerasqt": _version(), "pid": os.getpid(),
                "host": socket.gethostname(), **header}
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
        lines = encode_lines(events)
        kinds = {type(ev) for ev in events}
        sync = EpochEvent in kinds
        end = EndEvent in kinds or ErrorEvent in kinds
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
    from .. import __version__

    return __version__


# -- lines without a file (a stream of the run: kerasqt.net) ------------------------------------------
def header_line(header: dict) -> str:
    """The first line of a run log with ``header`` (``kind``, ``title``, ...), as :class:`RunLogWriter`
    writes it, without its newline. Raises TypeError or ValueError for what JSON cannot hold."""
    return _line({"format": FORMAT, "version": VERSION, **header})


def encode_lines(events: list, now: float | None = None) -> list[str]:
    """The lines (without newlines) that :meth:`RunLogWriter.write` writes for ``events``; events of
    no known type are left out. ``now``: the time written for message and sine events (default: the
    time of the call). Any thread (the metric names' cache is shared: at worst a name is made twice)."""
    if now is None:
        now = time.time()
    lines: list[str] = []
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
    return lines
