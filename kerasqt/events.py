"""Immutable events that cross threads: producer -> queue -> receiver.

Producers (the Keras callback on the training thread, the sine worker on its
QThread) build these and put them into a ``queue.SimpleQueue``; the receiver
thread reads them. Every training event carries the global ``step`` so that the
receiver can put events back in order when Keras dispatches batch hooks on a
thread pool. No Qt and no Keras imports here.
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
    "drain",
]


def drain(q: queue.SimpleQueue, limit: int = 100_000) -> list:
    """Everything queued in ``q`` now (at most ``limit`` items), without waiting."""
    items = []
    try:
        while len(items) < limit:
            items.append(q.get_nowait())
    except queue.Empty:
        pass
    return items


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
