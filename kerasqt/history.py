"""Metric history held as numpy columns that grow by doubling (pure: no Qt, no Keras).

Owned by the window (main thread). A :class:`BatchTable` holds one row per train
batch: the global step and, per metric, the raw value and its moving average as
``float32``; a metric first seen mid-run gets NaN for the rows before it. An
:class:`EpochTable` holds one row per epoch (or evaluation) with every metric
given, train and ``val_`` alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["BatchTable", "EpochTable", "group_of", "metric_groups"]

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
    """Per-batch rows: ``steps`` and, per metric, ``column(key)`` and ``smoothed(key)``.

    The smoothed columns are held apart from the metrics' own (under ``(SMOOTH, key)``), so
    that no metric name, ``loss~`` included, can stand for another metric's moving average.
    ``names()`` lists the metrics; :meth:`columns` gives every column with a display name, a
    moving average named after its metric with ``SMOOTH`` (``~``) added.
    """

    SMOOTH = "~"

    def extend(self, steps: np.ndarray, values: Mapping[str, np.ndarray], smoothed: Mapping[str, np.ndarray]) -> int:
        """Append a chunk of batches; returns the first row that changed (late rows are merged in)."""
        cols: dict = dict(values)
        cols.update({(self.SMOOTH, k): v for k, v in smoothed.items()})
        return self._append(np.asarray(steps, np.int64), cols)

    def names(self) -> list[str]:
        return [n for n in self._cols if type(n) is str]

    def metrics(self) -> list[str]:
        return self.names()

    def smoothed(self, key: str) -> np.ndarray:
        return self._cols[(self.SMOOTH, key)][: self._n]

    def columns(self) -> list[tuple[str, np.ndarray]]:
        """``(name, values)`` of every column in the order they came: ``loss``, then ``loss~`` (its
        moving average), ...; a name taken by a metric gets one more ``~``."""
        taken = set(self.names())
        out = []
        for name, col in self._cols.items():
            if type(name) is not str:
                name = name[1] + self.SMOOTH
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
