"""Metric history held as numpy columns that grow by doubling (pure: no Qt, no Keras).

Owned by the window (main thread). A :class:`BatchTable` holds one row per train
batch: the global step and, per metric, the raw value and its moving average as
``float32`` and, for a running mean whose batches' own values were recovered
(:mod:`kerasqt.perbatch`), those and their moving average too; a metric first seen
mid-run gets NaN for the rows before it. An
:class:`EpochTable` holds one row per epoch (or evaluation) with every metric
given, train and ``val_`` alike. :class:`RunHistory` holds a run's tables and takes the
refiner's updates, saying what each changed (:class:`Applied`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .perbatch import PER_BATCH, VIEWS

__all__ = ["LR_KEY", "Applied", "BatchTable", "EpochTable", "RunHistory", "group_of", "metric_groups"]

LR_KEY = "learning rate"  # the learning rate's column (and the plot's group for it, once it changes)
_START = 1024
_VERSIONS = itertools.count()  # every table's every state gets its own number


def group_of(key: str) -> str:
    """The plot group of a metric: ``val_loss`` and ``test_loss`` belong with ``loss``."""
    for prefix in ("val_", "test_"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def metric_groups(keys: Iterable[str]) -> dict[str, list[str]]:
    """Group metric names by :func:`group_of`, keeping first-seen order."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        members = groups.setdefault(group_of(key), [])
        if key not in members:
            members.append(key)
    return groups


class _Columns:
    """Rows of ``steps`` plus named float32 columns, in doubling numpy buffers."""

    def __init__(self) -> None:
        self._n = 0
        self._steps = np.empty(_START, np.int64)
        self._cols: dict[str, np.ndarray] = {}
        self.version = next(_VERSIONS)  # changes whenever the rows do, unique across tables

    def __len__(self) -> int:
        return self._n

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self._n]

    def column(self, name: str) -> np.ndarray:
        return self._cols[name][: self._n]

    def names(self) -> list[str]:
        return list(self._cols)

    @property
    def nbytes(self) -> int:
        return self._steps.nbytes + sum(c.nbytes for c in self._cols.values())

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        cap = len(self._steps)
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        self._steps = _grow(self._steps, cap, 0)
        for name, col in self._cols.items():
            self._cols[name] = _grow(col, cap, np.nan)

    def _column_for_write(self, name: str) -> np.ndarray:
        col = self._cols.get(name)
        if col is None:
            col = np.full(len(self._steps), np.nan, np.float32)
            self._cols[name] = col
        return col

    def _append(self, steps: np.ndarray, columns: Mapping[str, np.ndarray]) -> int:
        """Append rows (``steps`` ascending) and return the first row index touched."""
        m = len(steps)
        if m == 0:
            return self._n
        self._reserve(m)
        lo, hi = self._n, self._n + m
        self._steps[lo:hi] = steps
        for name, values in columns.items():
            self._column_for_write(name)[lo:hi] = values
        for name, col in self._cols.items():
            if name not in columns:
                col[lo:hi] = np.nan
        self._n = hi
        self.version = next(_VERSIONS)
        first = lo
        if lo and steps[0] < self._steps[lo - 1]:
            first = self._merge_tail(lo)
        return first

    def _merge_tail(self, lo: int) -> int:
        """Rows from ``lo`` arrived late: sort them into place, stably, touching only the tail."""
        start = int(np.searchsorted(self._steps[:lo], self._steps[lo], side="right"))
        order = np.argsort(self._steps[start : self._n], kind="stable")
        self._steps[start : self._n] = self._steps[start : self._n][order]
        for col in self._cols.values():
            col[start : self._n] = col[start : self._n][order]
        return start


def _grow(arr: np.ndarray, cap: int, fill: float) -> np.ndarray:
    out = np.empty(cap, arr.dtype)
    out[: len(arr)] = arr
    out[len(arr):] = fill
    return out


class BatchTable(_Columns):
    """Per-batch rows: ``steps`` and, per metric, ``column(key)`` and ``smoothed(key)``; for a
    running mean with its batches' own values, ``per_batch(key)`` and ``per_batch(key, True)``.

    The smoothed and per-batch columns are held apart from the metrics' own (under ``(tag,
    key)``), so that no metric name, ``loss~`` included, can stand for another metric's moving
    average. ``names()`` lists the metrics; :meth:`columns` gives every column with a display
    name: a moving average named after its metric with ``SMOOTH`` (``~``) added, per-batch
    values with ``PER`` (`` per batch``), their moving average with both.
    """

    SMOOTH = "~"
    PER = " per batch"
    PER_SMOOTH = " per batch~"

    def extend(self, steps: np.ndarray, values: Mapping[str, np.ndarray], smoothed: Mapping[str, np.ndarray],
               per_batch: Mapping[str, np.ndarray] | None = None,
               per_batch_smoothed: Mapping[str, np.ndarray] | None = None) -> int:
        """Append a chunk of batches; returns the first row that changed (late rows are merged in)."""
        cols: dict = dict(values)
        cols.update({(self.SMOOTH, k): v for k, v in smoothed.items()})
        cols.update({(self.PER, k): v for k, v in (per_batch or {}).items()})
        cols.update({(self.PER_SMOOTH, k): v for k, v in (per_batch_smoothed or {}).items()})
        return self._append(np.asarray(steps, np.int64), cols)

    def forget_per_batch(self, key: str) -> None:
        """Drop the per-batch values of ``key``: its batch lines show its values as logged."""
        gone = [self._cols.pop((tag, key), None) for tag in (self.PER, self.PER_SMOOTH)]
        if any(col is not None for col in gone):
            self.version = next(_VERSIONS)

    def per_batch(self, key: str, smoothed: bool = False) -> np.ndarray | None:
        """The batches' own values of ``key`` (or their moving average), or None when it has none."""
        col = self._cols.get((self.PER_SMOOTH if smoothed else self.PER, key))
        return None if col is None else col[: self._n]

    def line(self, key: str, smoothed: bool, view: str) -> np.ndarray:
        """What a batch line of ``key`` shows in ``view``: the batches' own values where it has
        them and the view is per batch, else the values as logged."""
        if view == PER_BATCH:
            col = self.per_batch(key, smoothed)
            if col is not None:
                return col
        return self.smoothed(key) if smoothed else self.column(key)

    def names(self) -> list[str]:
        return [n for n in self._cols if type(n) is str]

    def metrics(self) -> list[str]:
        return self.names()

    def smoothed(self, key: str) -> np.ndarray:
        return self._cols[(self.SMOOTH, key)][: self._n]

    def columns(self) -> list[tuple[str, np.ndarray]]:
        """``(name, values)`` of every column in the order they came: ``loss``, then ``loss~`` (its
        moving average), ``loss per batch``, ``loss per batch~``...; a name taken by a metric gets
        one more ``~``."""
        taken = set(self.names())
        out = []
        for name, col in self._cols.items():
            if type(name) is not str:
                name = name[1] + name[0]
                while name in taken:
                    name += self.SMOOTH
                taken.add(name)
            out.append((name, col[: self._n]))
        return out


class EpochTable(_Columns):
    """Per-epoch rows: ``steps`` (global step at the end of the epoch), ``epochs`` and metric columns."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[tuple[int, int, frozenset[str]]] = []  # (step, epoch, metrics given), in row order

    @property
    def epochs(self) -> list[int]:
        return [epoch for _, epoch, _ in self._rows]

    def given(self, row: int) -> frozenset[str]:
        """The metrics logged in row ``row``: a NaN in another column means "not logged"."""
        return self._rows[row][2]

    def add(self, step: int, epoch: int, values: Mapping[str, float]) -> None:
        cols = {k: np.array([v], np.float32) for k, v in values.items()}
        self._rows.append((int(step), epoch, frozenset(values)))
        first = self._append(np.array([step], np.int64), cols)
        if first < len(self) - 1:  # a late row: sorted into place like the columns (stably, by step)
            self._rows.sort(key=lambda row: row[0])


@dataclass(frozen=True)
class Applied:
    """What one update changed in a :class:`RunHistory`."""

    changed_from: float | None  # the smallest step from which lines drawn of the tables changed
    keys: tuple[str, ...]  # the metrics it gave, in order (the learning rate once it varies)
    flagged: tuple[str, ...]  # metrics first seen with non-finite values
    merged: bool  # late batch rows were sorted into the middle of the table
    epochs: bool  # epoch rows came


class RunHistory:
    """One run's tables: batches, epochs, tests (``test_`` metrics) and learning rates (the
    ``(step, rate)`` where it changed and at each epoch's end), with the run's plan, what it said
    of its metrics (``means``: a MeansEvent, or None) and the view of its batch values (``view``:
    each batch's own, or Keras' running means; :mod:`kerasqt.perbatch`)."""

    def __init__(self, start=None, view: str = PER_BATCH) -> None:
        """``start``: the run's StartEvent, or None (its planned steps unknown)."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        self.view = view
        self.means = None
        self.batches = BatchTable()
        self.epochs = EpochTable()
        self.tests = EpochTable()
        self.lrs = EpochTable()
        self.planned_steps: int | None = None
        if start is not None and start.epochs and start.steps:
            self.planned_steps = (start.epochs - start.initial_epoch) * start.steps
        self.nonfinite: set[str] = set()

    def apply(self, update) -> Applied:
        """Take a TrainingUpdate's rows (its ``start`` is the caller's: a new history)."""
        changed: list[float] = []
        keys: list[str] = []
        chunk = update.batches
        merged = False
        if update.means is not None:  # (told again: without the metrics found not to be means after all)
            for key in set(self.means.means if self.means is not None else ()) - set(update.means.means):
                self.batches.forget_per_batch(key)
            self.means = update.means
        if chunk is not None and len(chunk.steps):
            seen = len(self.batches)
            first = self.batches.extend(chunk.steps, chunk.values, chunk.smoothed, chunk.per_batch,
                                        chunk.per_batch_smoothed)
            changed.append(float(self.batches.steps[max(first - 1, 0)]))  # from the point the new ones join
            merged = first < seen
            keys += chunk.values
        flagged = tuple(k for k in update.nonfinite if k not in self.nonfinite)
        self.nonfinite.update(flagged)
        for ev in update.epochs:
            changed.append(_before(self.epochs.steps, ev.step))
            self.epochs.add(ev.step, ev.epoch, ev.values)
            keys += ev.values
        for ev in update.tests:
            values = {"test_" + k: v for k, v in ev.values.items()}
            changed.append(_before(self.tests.steps, ev.step))
            self.tests.add(ev.step, ev.epoch, values)
            keys += values
        if update.lrs:
            for step, lr in update.lrs:
                changed.append(_before(self.lrs.steps, step))
                self.lrs.add(step, 0, {LR_KEY: lr})
            if np.ptp(self.lrs.column(LR_KEY)) > 0:
                keys.append(LR_KEY)  # shown once it changes: a constant one is in the progress line
        return Applied(min(changed, default=None), tuple(keys), flagged, merged, bool(update.epochs))

    def table(self, kind: str) -> _Columns:
        """The table a line of this kind draws from: ``b`` and ``s`` (batch values, smoothed),
        ``e`` (epochs), ``t`` (tests) or ``l`` (learning rates)."""
        if kind == "l":
            return self.lrs
        return self.batches if kind in "bs" else (self.tests if kind == "t" else self.epochs)

    def values(self, kind: str, key: str) -> np.ndarray | None:
        """The column a line of ``kind`` shows for metric ``key``, or None when not logged."""
        table = self.table(kind)
        if key not in table.names():
            return None
        if kind in "bs":
            return self.batches.line(key, kind == "s", self.view)
        return table.column(key)

    def last_step(self) -> int:
        """The newest step of a batch, epoch or test row (0 before any)."""
        return max((int(t.steps[-1]) for t in (self.batches, self.epochs, self.tests) if len(t)), default=0)

    def empty(self) -> bool:
        return not (len(self.batches) or len(self.epochs) or len(self.tests))

    def shown(self) -> dict[str, dict[str, int]]:
        """Counts of the finite values held per metric: batch rows, epoch rows, test rows."""
        out: dict[str, dict[str, int]] = {}
        for key in self.batches.metrics():
            out.setdefault(key, {})["batches"] = int(np.isfinite(self.batches.column(key)).sum())
        for key in self.epochs.names():
            out.setdefault(key, {})["epochs"] = int(np.isfinite(self.epochs.column(key)).sum())
        for key in self.tests.names():
            out.setdefault(key, {})["tests"] = int(np.isfinite(self.tests.column(key)).sum())
        return out


def _before(steps: np.ndarray, step: int) -> float:
    """The step of the row a new row at ``step`` follows (lines connect them), or ``step`` itself."""
    i = int(np.searchsorted(steps, step))
    return float(steps[i - 1]) if i else float(step)
