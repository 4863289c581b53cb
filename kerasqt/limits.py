"""The plot's autoscale policy: which x and y limits an axes wants (pure: numbers in, numbers out).

Drawing an axes anew costs far more than blitting its lines, so while a run goes on the
limits change seldom, and when they do they leave room for the curves to go on:

* x: the planned steps while they hold the data; without a plan (or past it), powers of two
  with a quarter to spare, kept while the data fits; once the run is over, the steps it took
  (fewer than planned if it ended early).
* y: kept while the data fits. Data leaving them makes them grow with three times the
  headroom on the side it left by; they are fitted to the data (15 % headroom) when asked
  (the run is over, the axes is drawn anew anyway), when the data has shrunk to a third of
  them (:func:`shrink_due` says when that is checked), or when a log scale meets limits
  at or below 0. Data never below 0 gets no room below it (losses); data in [0, 1] none
  above 1 either (scores).
* A view the user set (zoom, pan, their own limits) is kept.

No Matplotlib here: the plot asks with its current limits and the ranges of its data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["Range", "finite_range", "near", "planned_span", "shrink_due", "union", "wanted_limits",
           "x_limits", "y_limits"]

Range = tuple[float, float]  # (low, high)

SHRINK_EVERY = 10.0  # seconds: limits grown too loose are fitted again at most this often
LOOSE = 0.35  # data spanning less than this share of the y limits has shrunk from them
GROWTH = 3.0  # headroom on the side the data left by, in units of the fitted headroom
HEADROOM = 0.15  # of the data's span (a power of its ratio on a log scale)
EDGE = 0.03  # room below 0 and above 1, of the span, for losses and scores


def x_limits(current: Range, *, last_step: int, planned: int | None, ended: bool) -> Range:
    """The x limits an axes wants (``current`` itself when they stay)."""
    x0, x1 = current
    if ended:  # the steps it took (fewer than planned if it ended early)
        return (0.0, float(max(last_step, 1)))
    if planned and last_step <= planned:
        return (0.0, float(planned))
    if x0 == 0 and 1 < x1 and last_step <= x1:
        return current  # still room: keep the limits
    return (0.0, float(2 ** math.ceil(math.log2(max(last_step * 1.25, 8)))))  # grow with headroom


def y_limits(current: Range, data: Range | None, *, log: bool, fit: bool = False, shrink: bool = False) -> Range:
    """The y limits an axes wants for ``data`` (the finite range it shows; positive only on a
    log scale), ``current`` itself when they stay.

    ``fit``: fit them to the data whatever the current ones; ``shrink``: fit them if they have
    grown loose around the data.
    """
    y0, y1 = current
    if data is None:
        return current
    lo, hi = data
    outside = lo < y0 or hi > y1
    fit = fit or (shrink and (hi - lo) < LOOSE * (y1 - y0))
    if not (outside or fit or (log and y0 <= 0)):  # (a log scale the user set on linear limits)
        return current
    # The data left the limits: they grow with more headroom on that side (the curve goes on
    # that way, so the next new limits, and their draw, come later).
    growing = outside and not fit
    more_lo = GROWTH if growing and lo < y0 else 1.0
    more_hi = GROWTH if growing and hi > y1 else 1.0
    if log:
        pad = (hi / lo) ** HEADROOM if hi > lo else 2.0
        want = (lo / pad ** more_lo, hi * pad ** more_hi)
    else:
        pad = HEADROOM * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 0.1)
        want = (lo - pad * more_lo, hi + pad * more_hi)
        if lo >= 0:  # losses, accuracies: no room below 0, nor above 1 for scores in [0, 1]
            floor = max(want[0], -EDGE * want[1])
            ceiling = min(want[1], 1 + EDGE * (1 - floor)) if hi <= 1 else want[1]
            want = (floor, ceiling)
    return current if near(want, current) else want


def wanted_limits(xlim: Range, ylim: Range, data_in: Callable[[Range], Range | None], *, last_step: int,
                  planned: int | None = None, ended: bool = False, log: bool = False, fit: bool = False,
                  shrink: bool = False, user_view: bool = False) -> tuple[Range, Range] | None:
    """New ``(xlim, ylim)`` for an axes, or None to keep its limits.

    ``data_in(span)`` gives the finite y range of the data over the x ``span`` wanted (None
    without data); it is called once, with ``xlim`` itself when the x limits stay.
    """
    if user_view:
        return None
    want_x = x_limits(xlim, last_step=last_step, planned=planned, ended=ended)
    want_y = y_limits(ylim, data_in(want_x), log=log, fit=fit, shrink=shrink)
    if want_x == xlim and want_y == ylim:
        return None
    return want_x, want_y


def planned_span(planned: int | None, kept: Iterable[int] = ()) -> int | None:
    """The steps the x axis plans for: the run's, widened to the last steps of the finished runs
    ``kept`` beside it (whole already); None without a plan."""
    kept = list(kept)
    if planned and kept:
        return max(planned, max(kept))
    return planned


def shrink_due(asked: bool, now: float, last: float, every: float = SHRINK_EVERY) -> bool:
    """Whether limits that grew loose are checked now: asked for (an epoch ended) and not
    done in the last ``every`` seconds (``now`` and ``last`` from one clock)."""
    return asked and now - last > every


def near(a: Range, b: Range) -> bool:
    """``np.allclose`` for two pairs of limits, without numpy's cost per call (a few per frame)."""
    return all(abs(p - q) <= 1e-8 + 1e-5 * abs(q) for p, q in zip(a, b, strict=True))


def finite_range(y, log: bool) -> Range | None:
    """Smallest and largest finite value of ``y`` (positive only on a log scale), or None."""
    if not len(y):
        return None
    y = np.asarray(y, float)
    y = y[np.isfinite(y) & ((y > 0) if log else True)]
    return (float(y.min()), float(y.max())) if len(y) else None


def union(ranges: Iterable[Range | None]) -> Range | None:
    """The range covering every ``(lo, hi)`` given (Nones skipped), or None."""
    ranges = [r for r in ranges if r is not None]
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)
