"""The runs of a log folder, each summed up in a line, read no more than needed (pure: no Qt, no Keras).

:class:`RunCatalogue` lists the run logs (``*.jsonl``) of a folder as :class:`RunSummary` values:
when the run began, its epochs, the best value of its validation metric, its status and the
settings and tags of its header (:mod:`kerasqt.settings`). A refresh costs a ``stat`` per run
still going (an ended one is looked at again when the folder changed, and every
:data:`FULL_EVERY` s):

* a file whose (inode, size, mtime) did not change is not read at all;
* a file that grew is read from where the last read stopped (a run still going: only its new
  lines), a file that shrank or was replaced from its start;
* batch lines, nearly all of a log, are recognised by their first bytes and not parsed: only
  the header, the start, epoch, end and error lines are (each checked as the run-log reader
  checks it).

Status: ``finished``, ``stopped`` (early), ``failed`` (an error line) as the log's end says;
without an end, ``running`` while the writer lives (its ``pid`` and ``host`` in the header,
:func:`kerasqt.follow.writer_gone`), else ``cut short``. A log from another host, or without
them, counts as running while it grew in the last :data:`STALE` seconds.

A refresh may be given a budget of bytes to read (the window's, every few seconds on its main
thread: a folder of big logs seen for the first time is read over a few turns, newest first).

:func:`load_run` reads one run whole into the tables the plot draws (a
:class:`~kerasqt.history.RunHistory`, the moving average made as the live window made it), for
an overlay; :class:`RunLoader` does it off the main thread (``kerasqt-runlist``), in a thread that
lives while there are runs to read.
"""

from __future__ import annotations

import collections
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .events import EndEvent, EpochEvent, ErrorEvent, StartEvent, is_learning_rate
from .follow import writer_gone
from .loops import LoopThread
from .runlog import MAX_LINE, RunLogError, check_header, decode_line, read_run
from .settings import header_settings

__all__ = ["STALE", "STATUSES", "LoadedRun", "RunCatalogue", "RunLoader", "RunSummary", "best_key",
           "higher_is_better", "load_run", "metrics_match", "train_metrics", "with_history"]

STATUSES = ("running", "finished", "stopped", "failed", "cut short")
STALE = 60.0  # seconds without growth before a run whose writer cannot be asked is taken as cut short
FULL_EVERY = 30.0  # seconds: every log of the folder is looked at again at least this often
CHUNK = 16 * 2**20  # bytes read at once
_BATCH = b'{"type":"batch"'  # how every batch line begins (kerasqt.runlog.writer)
_WANTED = {"start", "epoch", "end", "error"}
_HIGHER = ("acc", "auc", "precision", "recall", "f1", "fbeta", "iou", "r2", "score", "dice")


def higher_is_better(key: str) -> bool:
    """Whether a larger value of metric ``key`` is better (accuracies, AUC, ...; losses and errors not)."""
    name = key.lower()
    for prefix in ("val_", "test_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return "loss" not in name and any(word in name for word in _HIGHER)


def best_key(keys) -> str | None:
    """The metric a run's best value is told for: ``val_loss``, else the first validation metric,
    else ``loss``; None when none of them was logged."""
    keys = list(keys)
    if "val_loss" in keys:
        return "val_loss"
    first = next((k for k in keys if k.startswith("val_") and not is_learning_rate(k[4:])), None)
    return first or ("loss" if "loss" in keys else None)


def train_metrics(keys) -> set[str]:
    """The training metrics among ``keys``: not ``val_``/``test_``, not the learning rate."""
    return {k for k in keys if not k.startswith(("val_", "test_")) and not is_learning_rate(k) and k != "learning rate"}


def metrics_match(a, b) -> bool:
    """Whether two runs logged the same training metrics (``loss`` and ``accuracy``, say), so that
    one is worth drawing over the other."""
    a, b = train_metrics(a), train_metrics(b)
    return bool(a) and a == b


@dataclass(frozen=True)
class RunSummary:
    """One run log of the folder, as its list shows it."""

    path: Path
    created: float | None  # Unix time the log was made (its header), or None
    title: str
    status: str  # one of STATUSES
    epochs: int  # epochs done
    planned: int | None  # epochs planned (from the initial epoch on), when known
    best: tuple[str, float, int] | None  # (metric, its best value, the epoch it came at, from 0)
    settings: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    message: str = ""  # the error line of a failed run
    size: int = 0

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def ended(self) -> bool:
        return self.status not in ("running",)


class _Scan:
    """What was read of one file so far (the catalogue's thread)."""

    def __init__(self, ident: tuple) -> None:
        self.ident = ident  # (device, inode)
        self.seen: tuple | None = None  # (size, mtime_ns) when last read
        self.offset = 0  # bytes read: whole lines only
        self.header: dict | None = None
        self.refused = False  # no training run log: not listed (read again when it changes)
        self.planned: int | None = None
        self.epochs = 0
        self.keys: list[str] = []  # epoch metrics, in the order first seen
        self.best: dict[str, tuple[float, int]] = {}
        self.end: tuple[str, str] | None = None  # (status, message)
        self.caught_up = False  # read to its end once: listed from then on
        self.summary: RunSummary | None = None  # an ended run's, read to its end: it stays as it is

    def feed(self, fh, size: int, budget: float = math.inf) -> bool:
        """Read the complete lines from ``offset`` on, a chunk at a time until ``budget`` bytes are
        read; True when it stopped for the budget (more is there)."""
        spent = 0
        fh.seek(self.offset)
        while self.offset < size:
            if spent >= budget:
                return True
            data = fh.read(min(size - self.offset, CHUNK))
            if not data:
                break
            spent += len(data)
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > MAX_LINE:
                    self.refused = True  # (a line longer than any run log's)
                break  # a line still being written
            self.offset += cut + 1
            for raw in data[: cut + 1].split(b"\n"):
                if not self._line(raw):
                    return False
            fh.seek(self.offset)
        self.caught_up = True
        return False

    def _line(self, raw: bytes) -> bool:
        if self.header is None:
            try:
                header = check_header(raw)
            except RunLogError:
                self.refused = True
                return False
            if header["kind"] != "training":
                self.refused = True
                return False
            self.header = header
            return True
        if raw.startswith(_BATCH) or not raw.strip():
            return True
        try:
            rec = decode_line(raw)
        except RunLogError:
            return True  # a bad line: what the reader says of it is for a replay; the list goes on
        if rec is None:
            return True
        ev = rec[1]
        if isinstance(ev, EpochEvent):
            self._epoch(ev)
        elif isinstance(ev, StartEvent):
            if ev.epochs is not None:
                self.planned = max(ev.epochs - ev.initial_epoch, 0)
        elif isinstance(ev, EndEvent):
            self.end = self.end or ("stopped" if ev.stopped else "finished", "")
        elif isinstance(ev, ErrorEvent):
            self.end = self.end or ("failed", ev.message)
        return True

    def _epoch(self, ev: EpochEvent) -> None:
        self.epochs += 1
        for key, value in ev.values.items():
            if key not in self.best:
                self.keys.append(key)
            if value != value:  # NaN
                continue
            old = self.best.get(key)
            if old is None or old[0] != old[0] or (value > old[0] if higher_is_better(key) else value < old[0]):
                self.best[key] = (value, ev.epoch)

    def status(self, mtime: float, host: str | None) -> tuple[str, str]:
        if self.end is not None:
            return self.end
        gone = writer_gone(self.header or {}, host)
        if gone is None:
            gone = time.time() - mtime > STALE
        return ("cut short", "") if gone else ("running", "")


class RunCatalogue:
    """The run logs of ``folder``, summed up; :meth:`refresh` reads what changed since the last call
    (one thread at a time: the window's main thread)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._scans: dict[str, _Scan] = {}
        self._files: list[tuple[str, Path]] | None = None  # the folder's logs at the last full look
        self._dir_mtime: int | None = None
        self._full_due = 0.0
        self.pending = False  # the last refresh stopped at its budget: more to read
        self.reads = 0  # files read (a test sees what a refresh costs)
        self.read_bytes = 0
        self.stats = 0  # files looked at

    def refresh(self, budget: float = math.inf) -> list[RunSummary]:
        """The folder's training runs, newest first (an empty list when there is no folder), after
        reading what changed, at most about ``budget`` bytes (newest files first): a file not read
        to its end yet is listed from the refresh that gets there (:attr:`pending` says one is due).

        A run that has ended (read to its end) is not looked at again while the folder's own mtime
        stays (no file added, removed or renamed), for :data:`FULL_EVERY` s: a folder of many runs
        costs a ``stat`` per run still going."""
        now = time.monotonic()
        try:
            dir_mtime = os.stat(self.folder).st_mtime_ns
        except OSError:
            dir_mtime = None
        full = self._files is None or dir_mtime != self._dir_mtime or now >= self._full_due or self.pending
        if full:
            try:
                self._files = [(e.name, Path(e.path)) for e in os.scandir(self.folder)
                               if e.name.endswith(".jsonl") and e.is_file()]
            except OSError:
                self._files = []
            self._dir_mtime, self._full_due = dir_mtime, now + FULL_EVERY
        host = socket.gethostname()
        runs, stats = [], []
        for name, path in self._files:
            scan = self._scans.get(name)
            if not full and scan is not None and scan.summary is not None:
                runs.append(scan.summary)  # ended and read: as it was
                continue
            try:
                stats.append((name, path, path.stat()))
            except OSError:
                continue
        self.stats += len(stats)
        stats.sort(key=lambda item: item[2].st_mtime_ns, reverse=True)
        left = budget
        self.pending = False
        for name, path, st in stats:
            summary, spent = self._summary(path, name, st, host, left)
            left -= spent
            if summary is not None:
                runs.append(summary)
        if full:
            for gone in set(self._scans) - {name for name, _ in self._files}:
                del self._scans[gone]
        runs.sort(key=lambda r: (r.created or 0.0, r.path.name), reverse=True)
        return runs

    def _summary(self, path: Path, name: str, st, host: str, budget: float) -> tuple[RunSummary | None, int]:
        ident = (st.st_dev, st.st_ino)
        scan = self._scans.get(name)
        if scan is None or scan.ident != ident or st.st_size < scan.offset:
            scan = self._scans[name] = _Scan(ident)  # new, replaced or truncated: from its start
        spent = 0
        if scan.seen != (st.st_size, st.st_mtime_ns):
            if scan.refused:  # changed since: one more look
                scan = self._scans[name] = _Scan(ident)
            if budget <= 0:
                self.pending = True
            else:
                try:
                    with open(path, "rb") as fh:
                        before = scan.offset
                        more = scan.feed(fh, st.st_size, budget)
                except OSError:
                    return None, 0
                spent = scan.offset - before
                self.reads += 1
                self.read_bytes += spent
                if more:
                    self.pending = True
                else:
                    scan.seen = (st.st_size, st.st_mtime_ns)
        if scan.refused or scan.header is None or not scan.caught_up:
            return None, spent
        header = scan.header
        status, message = scan.status(st.st_mtime, host)
        key = best_key(scan.keys)
        best = (key, *scan.best[key]) if key is not None and key in scan.best else None
        settings, tags = header_settings(header)
        created = header.get("created")
        created = float(created) if type(created) in (int, float) else None
        title = header.get("title") if type(header.get("title")) is str else ""
        summary = RunSummary(path, created, title, status, scan.epochs, scan.planned, best, settings, tags,
                             message, st.st_size)
        scan.summary = summary if scan.end is not None and scan.seen == (st.st_size, st.st_mtime_ns) else None
        return summary, spent


def with_history(run: RunSummary, history) -> RunSummary:
    """``run`` (the run on show) with its epochs and best value as the window's own tables hold them
    (a :class:`~kerasqt.history.RunHistory`): ahead of what its log gave the last refresh."""
    table = history.epochs
    if len(table) <= run.epochs:
        return run
    best = None
    key = best_key(table.names())
    if key is not None:
        values = np.asarray(table.column(key), float)
        finite = np.flatnonzero(np.isfinite(values))
        if len(finite):
            pick = finite[np.argmax(values[finite]) if higher_is_better(key) else np.argmin(values[finite])]
            best = (key, float(values[pick]), int(table.epochs[pick]))
    return replace(run, epochs=len(table), best=best or run.best)


@dataclass
class LoadedRun:
    """A run read whole for an overlay: its tables, as the live window held them."""

    path: Path
    history: object  # a kerasqt.history.RunHistory
    size: int

    @property
    def metrics(self) -> set[str]:
        return train_metrics(self.history.batches.metrics() + self.history.epochs.names())


def load_run(path: str | os.PathLike) -> LoadedRun:
    """Read the run log at ``path`` into a :class:`~kerasqt.history.RunHistory` (its moving average
    made with the smoothing it was shown with); :class:`~kerasqt.runlog.RunLogError` for a bad file."""
    from .history import RunHistory
    from .refine import TrainingRefiner

    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    run = read_run(path)
    if run.kind != "training":
        raise RunLogError(f"{path}: a {run.kind} recording, not a training run")
    update = TrainingRefiner(run.smoothing).refine(run.events)
    history = RunHistory(update.start if update is not None else None)
    if update is not None:
        history.apply(update)
    return LoadedRun(path, history, size)


class RunLoader(LoopThread):
    """Reads runs whole (:func:`load_run`) in a thread of its own (``kerasqt-runlist``) that lives
    while there are runs to read: :meth:`add` queues one (any thread); False when this loader has
    ended (start another). Each answer goes to ``answers`` (a deque): ``("loaded", LoadedRun)`` or
    ``("unreadable", path, message)``; ``stop()`` ends it, what is queued left unread."""

    def __init__(self, answers: collections.deque) -> None:
        super().__init__("kerasqt-runlist")
        self.answers = answers
        self._lock = threading.Lock()
        self._queue: collections.deque = collections.deque()
        self._open = True

    def add(self, path: str | os.PathLike) -> bool:
        with self._lock:
            if not self._open:
                return False
            self._queue.append(Path(path))
            return True

    def pause(self) -> float:
        return 0.0

    def step(self) -> bool:
        with self._lock:
            if not self._queue or self.stopping:
                self._open = False  # (under the lock: nothing is queued after this look)
                return False
            path = self._queue.popleft()
        try:
            self.answers.append(("loaded", load_run(path)))
        except (RunLogError, OSError) as exc:
            self.answers.append(("unreadable", path, str(exc)))
        return True

    def failed(self, exc: Exception) -> None:
        self.answers.append(("failed", f"{type(exc).__name__}: {exc}"))

    def finish(self) -> None:
        with self._lock:
            self._open = False

    def stop(self, timeout: float | None = 2.0) -> None:
        with self._lock:
            self._open = False
            self._queue.clear()
        super().stop(timeout)
