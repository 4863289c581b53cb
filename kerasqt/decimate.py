"""Min/max decimation per pixel column (pure numpy).

A line of a million points is drawn as at most two points per pixel column of
the visible x range: the smallest and the largest value that fall in it, in the
order they occur. Spikes survive (unlike stride or random sampling), NaN gaps
survive (a column holding only NaN stays NaN) and, zoomed in far enough that a
column holds few points, the real points are drawn unchanged.

:class:`Decimator` caches the columns already computed for one view, so that a
steady-state frame (new points appended, limits unchanged) only recomputes the
columns the new points fall in.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Decimator", "minmax_decimate"]


def minmax_decimate(
    x: np.ndarray, y: np.ndarray, x0: float, x1: float, columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points of ``(x, y)`` (``x`` ascending) to draw over ``[x0, x1]`` on ``columns`` pixels.

    Returns the points themselves when the visible range holds at most
    ``2 * columns`` of them, otherwise two points per non-empty column (min and
    max, in their order of occurrence). One point beyond each edge is kept so
    the line runs off the axes instead of stopping short, and the last point
    (when visible) so that it ends where the data ends.
    """
    return Decimator().decimate(x, y, x0, x1, columns)


class Decimator:
    """Incremental :func:`minmax_decimate` for one line that only grows at its end."""

    def __init__(self) -> None:
        self._key: tuple[float, float, int] | None = None
        self._lo = 0  # first visible index for the cached view
        self._done = 0  # columns fully computed (their points all seen)
        self._n = 0  # number of points seen when the cache was filled
        self._xs: list[np.ndarray] = []
        self._ys: list[np.ndarray] = []

    def reset(self) -> None:
        self._key = None

    @property
    def decimating(self) -> bool:
        """Whether the last result was decimated (not the points themselves)."""
        return self._key is not None

    def decimate(
        self, x: np.ndarray, y: np.ndarray, x0: float, x1: float, columns: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(x)
        columns = max(int(columns), 1)
        if n == 0 or not x1 > x0 or not (np.isfinite(x0) and np.isfinite(x1)):
            return x[:0].astype(float), y[:0].astype(float)
        lo = max(_search(x, x0, "left") - 1, 0)
        hi = min(_search(x, x1, "right") + 1, n)
        if hi - lo <= 2 * columns:
            self._key = None
            return x[lo:hi].astype(float), y[lo:hi].astype(float)

        key = (float(x0), float(x1), columns)
        if key != self._key or lo != self._lo or n < self._n:
            self._key, self._lo, self._done, self._n = key, lo, 0, 0
            self._xs, self._ys = [], []
        elif self._done > columns:  # the whole view is final: nothing new is visible
            return np.concatenate(self._xs), np.concatenate(self._ys)

        width = (x1 - x0) / columns
        start = self._first_index_of_column(x, lo, self._done, x0, width)
        xs = x[start:hi]
        col = np.floor((xs - x0) / width).astype(np.int64)
        # The edge points beyond x0 and x1 get columns of their own (-1 and ``columns``).
        np.clip(col, -1, columns, out=col)
        starts = np.concatenate(([0], np.flatnonzero(np.diff(col)) + 1))
        px, py, ends = _minmax_runs(xs, y[start:hi].astype(float), starts)
        # Every run is final when a point beyond the right edge exists; else the last may grow.
        final_runs = len(starts) if hi < n else len(starts) - 1
        split = int(ends[final_runs - 1]) if final_runs else 0
        self._xs.append(px[:split])
        self._ys.append(py[:split])
        if len(self._xs) > 8:  # one piece per frame otherwise: keep the final part in one array
            self._xs, self._ys = [np.concatenate(self._xs)], [np.concatenate(self._ys)]
        self._done = columns + 1 if final_runs == len(starts) else int(col[starts[-1]])
        self._n = n
        tail_x, tail_y = px[split:], py[split:]
        if hi == n and (not len(tail_x) or tail_x[-1] != x[-1]):
            # The newest point ends the line, even when it is neither its column's min nor max
            # (a tie, a value in between): the line reaches as far as the data.
            tail_x = np.append(tail_x, float(x[-1]))
            tail_y = np.append(tail_y, float(y[-1]))
        return np.concatenate(self._xs + [tail_x]), np.concatenate(self._ys + [tail_y])

    @staticmethod
    def _first_index_of_column(x: np.ndarray, lo: int, column: int, x0: float, width: float) -> int:
        """The first point at ``lo`` or after whose column (as :meth:`decimate` computes it) is
        ``column`` or more. The search by the column's left edge can be a point off, because
        ``x0 + column * width`` and ``floor((x - x0) / width)`` round differently: such a point
        would fall out of the recomputed column (a spike lost) or be counted twice."""
        if column < 0:
            return lo
        i = max(_search(x, x0 + column * width, "left"), lo)
        n = len(x)
        while i > lo and math.floor((float(x[i - 1]) - x0) / width) >= column:
            i -= 1
        while i < n and math.floor((float(x[i]) - x0) / width) < column:
            i += 1
        return i


def _search(x: np.ndarray, value: float, side: str) -> int:
    """``np.searchsorted(x, value, side)`` that keeps an integer ``x`` as it is.

    Searching an int64 array for a float converts the whole array to float first
    (a copy of all of it, ~1 ms for 10^6 steps); an integer bound gives the same index.
    """
    if x.dtype.kind in "iu" and math.isfinite(value):
        info = np.iinfo(x.dtype)
        bound = math.ceil(value) if side == "left" else math.floor(value)
        return int(np.searchsorted(x, x.dtype.type(min(max(bound, info.min), info.max)), side=side))
    return int(np.searchsorted(x, value, side=side))


def _minmax_runs(xs: np.ndarray, ys: np.ndarray, starts: np.ndarray):
    """For each run of points (a pixel column), its min and max point in order of occurrence.

    A run holding any NaN/inf is followed by a NaN point, so the line breaks there.
    Returns the points and, per run, the index in the output just past that run.
    """
    k = len(starts)
    finite = np.isfinite(ys)
    lo_vals = np.where(finite, ys, np.inf)
    hi_vals = np.where(finite, ys, -np.inf)
    mins = np.minimum.reduceat(lo_vals, starts)
    maxs = np.maximum.reduceat(hi_vals, starts)
    # Positions of the min and max inside each run.
    run_id = np.repeat(np.arange(k), np.diff(np.append(starts, len(ys))))
    idx = np.arange(len(ys))
    is_min = lo_vals == mins[run_id]
    is_max = hi_vals == maxs[run_id]
    big = len(ys) + 1
    imin = np.minimum.reduceat(np.where(is_min, idx, big), starts)
    imax = np.minimum.reduceat(np.where(is_max, idx, big), starts)
    empty = ~np.isfinite(mins)  # a column holding only NaN/inf: keep a gap there
    imin = np.where(empty, starts, imin)
    imax = np.where(empty, starts, imax)
    first = np.minimum(imin, imax)
    second = np.maximum(imin, imax)
    order = np.empty(2 * k, np.int64)
    order[0::2] = first
    order[1::2] = second
    px = xs[order].astype(float)
    py = ys[order].astype(float)
    py[np.repeat(empty, 2)] = np.nan
    broken = np.logical_or.reduceat(~finite, starts) & ~empty
    ends = 2 * np.arange(1, k + 1) + np.cumsum(broken)
    if broken.any():
        at = 2 * np.flatnonzero(broken) + 2
        px = np.insert(px, at, px[at - 1])
        py = np.insert(py, at, np.nan)
    return px, py, ends
