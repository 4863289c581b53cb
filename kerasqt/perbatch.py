"""Each batch's own value, recovered from the running means Keras logs (pure: no Qt, no Keras).

Keras 3 hands its callbacks, after each batch, the mean of every mean-type metric (the loss,
accuracies, MSE, crossentropies...) since the epoch began: a ``Mean`` tracker with a ``total``
and a ``count``, reset at each epoch's start. With the count ``C`` it had after each batch, the
value of batch ``k`` alone is exact::

    v_k = (m_k * C_k - m_{k-1} * C_{k-1}) / (C_k - C_{k-1})

``C`` counts samples for the loss, the sums of sample weights (and masks) for weighted metrics,
so a short last batch or a batch of small weights weighs what it weighed in Keras' mean. With
``steps_per_execution=N`` a logged point covers N batches and its value is their mean. Which
metrics are means, and what counts they carry, comes from the run's :class:`MeansEvent`
(:mod:`kerasqt.means` decides it from the compiled metric objects); the counts ride on each
batch (:class:`~kerasqt.events.BatchEvent` ``counts``). A run without them (an old log) has no
per-batch values: it is shown as Keras' running means, as before.

:class:`BatchRecovery` runs in the receiver thread, inside the refiner, on chunks of batches
in step order (NumPy, a metric at a time). A batch that can not be recovered gets NaN: a count
that did not grow (every sample weight zero), a count not known, a batch that arrived after a
later one (and, counted in batches, the one after it). The window's labels for either view are
:func:`batch_labels`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .events import MeansEvent

__all__ = ["PER_BATCH", "RUNNING", "VIEWS", "BatchRecovery", "batch_labels", "counts_array", "moving_average"]

PER_BATCH, RUNNING = "batch", "running"  # the window's views of batch values
VIEWS = (PER_BATCH, RUNNING)


class BatchRecovery:
    """Per-batch values of the metrics a :class:`MeansEvent` says are means; keeps, per metric,
    the last batch's step, epoch, total and count (the next chunk starts from them)."""

    def __init__(self, means: MeansEvent | None = None) -> None:
        self.means = means
        self._last: dict[str, tuple[int, int, float, float]] = {}  # key -> (step, epoch, total, count)

    def recover(self, steps: Sequence[int], epochs: Sequence[int], values: Mapping[str, Sequence[float]],
                counts: np.ndarray | None) -> dict[str, np.ndarray]:
        """The per-batch values (float64) of the chunk's mean metrics, in its order.

        ``steps`` ascending; ``values[key]``: the running means logged; ``counts``: an ``(n, w)``
        array, a row per batch, a column per weighting of the :class:`MeansEvent` (NaN: not
        known), or None (no batch had counts)."""
        means = self.means
        if means is None or counts is None or not len(steps):
            return {}
        steps_a = np.asarray(steps, np.int64)
        epochs_a = np.asarray(epochs, np.int64)
        out = {}
        for key, j in means.means.items():
            col = values.get(key)
            if col is None or j >= counts.shape[1]:
                continue
            # Counted in batches (no count could be read): more than a logged point covers means one
            # is missing (a batch hook ran late, on Keras' thread pool), so it is a gap, not a mean.
            most = means.execution if means.weights[j] == "batches" else math.inf
            out[key] = self._one(key, steps_a, epochs_a, np.asarray(col, np.float64), counts[:, j], most)
        return out

    def _one(self, key: str, steps: np.ndarray, epochs: np.ndarray, m: np.ndarray, c: np.ndarray,
             most: float = math.inf) -> np.ndarray:
        last = self._last.get(key)
        out = np.full(len(steps), np.nan)
        rows = np.flatnonzero(steps > last[0]) if last is not None else np.arange(len(steps))
        if not len(rows):
            return out  # all late: their neighbours are gone
        s, e, c = steps[rows], epochs[rows], c[rows]
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            total = m[rows] * c
            prev_e = np.concatenate(([last[1] if last else -1], e[:-1]))
            prev_t = np.concatenate(([last[2] if last else 0.0], total[:-1]))
            prev_c = np.concatenate(([last[3] if last else 0.0], c[:-1]))
            # Keras resets its metrics at each epoch's start; a count that went down was reset too.
            start = (prev_e != e) | (prev_c > c)
            prev_t[start] = 0.0
            prev_c[start] = 0.0
            weight = c - prev_c
            value = (total - prev_t) / weight
        value[~((weight > 0) & (weight <= most))] = np.nan  # nothing counted (every weight zero), a count not known
        out[rows] = value
        self._last[key] = (int(s[-1]), int(e[-1]), float(total[-1]), float(c[-1]))
        return out


def counts_array(blocks: Sequence[tuple[int, Sequence | None]], width: int, columns: bool = False) -> np.ndarray | None:
    """Batches' counts as an ``(n, width)`` float64 array, a row per batch, or None when none had
    any. ``blocks``: ``(batches, counts)`` pairs, counts None (NaN rows: not known) or, for one
    batch, its counts (``columns``: for several, a column per weighting, as
    :class:`~kerasqt.events.BatchRows` holds them). Counts of another width are not known either."""
    if all(c is None for _, c in blocks):
        return None
    parts = []
    for n, c in blocks:
        if c is not None and len(c) == width:
            parts.append(np.array(c, np.float64).reshape(width, n).T if columns else np.array([c], np.float64))
        else:
            parts.append(np.full((n, width), np.nan))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def moving_average(raw: np.ndarray, last: float | None, smoothing: float) -> tuple[np.ndarray, float | None]:
    """The exponential moving average of ``raw`` (float32 for the tables) from ``last`` (None:
    from the first finite value), and the last average. A NaN or inf holds the average."""
    a, b = smoothing, 1.0 - smoothing
    ema = []
    put = ema.append
    for v in raw.tolist():
        if math.isfinite(v):
            last = v if last is None else a * last + b * v
        put(math.nan if last is None else last)
    with np.errstate(over="ignore"):
        return np.array(ema, np.float32), last


def batch_labels(key: str, means: MeansEvent | None, view: str) -> tuple[str, str]:
    """The legend's words for a metric's faint batch line and its moving average, in ``view``
    (``PER_BATCH`` or ``RUNNING``), given what the run said of its metrics (None: nothing; the
    values are shown as they came)."""
    if means is None:
        return f"{key} (batch)", f"{key} (smoothed)"
    if key in means.means:
        if view == RUNNING:
            return f"{key} (running mean)", f"{key} (running mean, smoothed)"
        what = "per batch" if means.execution == 1 else f"{means.execution}-batch mean"
        j = means.means[key]
        if j < len(means.weights) and means.weights[j] == "batches":
            what += ", equal weights"  # no counts could be read: each batch taken to weigh the same
        return f"{key} ({what})", f"{key} (smoothed)"
    if key in means.running:
        return f"{key} (running value: not a mean metric)", f"{key} (smoothed)"
    return f"{key} (running value)", f"{key} (smoothed)"  # a metric the run could not tell
