"""Immutable events that cross threads: producer -> queue -> receiver.

Producers (the Keras callback on the training thread, the sine worker on its
QThread) build these and put them into a ``queue.SimpleQueue``; the receiver
thread reads them. Every training event carries the global ``step`` so that the
receiver can put events back in order when Keras dispatches batch hooks on a
thread pool. The training thread queues a batch as a plain tuple, which :func:`drain`
turns into its :class:`BatchEvent` in the receiving thread. No Qt and no Keras imports here.
"""

from __future__ import annotations

import queue
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BatchEvent",
    "EndEvent",
    "EpochEvent",
    "ErrorEvent",
    "EvalEvent",
    "Event",
    "MessageEvent",
    "SineEvent",
    "StartEvent",
    "batch_event",
    "drain",
    "fit_gone",
    "numbers",
]


def drain(q: queue.SimpleQueue, limit: int = 100_000) -> list:
    """Everything queued in ``q`` now (at most ``limit`` items), without waiting.

    A batch that the training thread queued as a plain tuple ``(step, epoch, time, logs, lr)``
    (cheaper for it than building the event) comes out as its :class:`BatchEvent`.
    """
    items = []
    get = q.get_nowait
    append = items.append
    try:
        while len(items) < limit:
            item = get()
            append(batch_event(*item) if type(item) is tuple else item)
    except queue.Empty:
        pass
    return items


def batch_event(step: int, epoch: int, t: float, logs, lr: float | None) -> BatchEvent:
    """The :class:`BatchEvent` of one batch's Keras ``logs`` (logs it cannot read: all ``bad``)."""
    try:
        values, bad = numbers(logs)
    except Exception:  # logs that fail while read: the batch still counts, its values do not
        values, bad = {}, ("(unreadable logs)",)
    return BatchEvent(step, epoch, t, values, bad, lr)


@dataclass(frozen=True, slots=True)
class StartEvent:
    """Training began. ``epochs`` and ``steps`` (per epoch) are the planned totals."""

    time: float
    epochs: int | None
    steps: int | None
    batch_size: int | None = None
    initial_epoch: int = 0
    run: str = ""


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """One training batch. ``step`` is global (counts across epochs, from 1)."""

    step: int
    epoch: int
    time: float
    values: Mapping[str, float]
    bad: tuple[str, ...] = ()
    lr: float | None = None


@dataclass(frozen=True, slots=True)
class EvalEvent:
    """One validation pass inside ``fit`` (``kind='val'``) or a ``evaluate`` call (``'test'``)."""

    step: int
    epoch: int
    time: float
    values: Mapping[str, float]
    kind: str = "val"
    bad: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EpochEvent:
    """End of an epoch: train metrics and their ``val_`` twins, at global ``step``."""

    step: int
    epoch: int
    time: float
    values: Mapping[str, float]
    bad: tuple[str, ...] = ()
    lr: float | None = None


@dataclass(frozen=True, slots=True)
class EndEvent:
    """Training ended normally (``on_train_end``) or was stopped (``stopped=True``)."""

    step: int
    time: float
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Training ended with an exception; ``message`` is one line for the window."""

    time: float
    message: str


def fit_gone(now: float) -> ErrorEvent:
    """The error that ends a run whose ``fit`` left without an end or error event of its own."""
    return ErrorEvent(now, "fit ended without finishing (it raised an exception)")


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A line of text for a message pane: ``source`` is control, worker or receiver."""

    source: str
    text: str


@dataclass(frozen=True, slots=True)
class SineEvent:
    """One sine curve of the demo: ``periods`` half-turns of sin(x), x in [0, k*pi]."""

    index: int
    periods: int
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)


Event = StartEvent | BatchEvent | EvalEvent | EpochEvent | EndEvent | ErrorEvent | MessageEvent | SineEvent


def numbers(logs) -> tuple[dict[str, float], tuple[str, ...]]:
    """Metric values as Python floats, and the keys whose values are not single numbers."""
    values: dict[str, float] = {}
    bad: tuple[str, ...] = ()
    if not logs:
        return values, bad
    for key, v in logs.items():
        if type(v) is float:
            values[key] = v
            continue
        f = _as_float(v)
        if f is None:
            bad += (str(key),)
        else:
            values[str(key)] = f
    return values, bad


def _as_float(v) -> float | None:
    if v is None or isinstance(v, (bool, str, bytes, dict, list, tuple)):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    dtype = getattr(v, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "f") not in "biuf":
        return None  # arrays of strings or objects
    try:
        size = getattr(v, "size", None)
        if size is not None and int(size) != 1:
            return None
        return float(v.item() if hasattr(v, "item") else v)
    except Exception:
        return None
