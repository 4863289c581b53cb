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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BatchEvent",
    "BatchRows",
    "ControlEvent",
    "EndEvent",
    "EpochEvent",
    "ErrorEvent",
    "EvalEvent",
    "Event",
    "MeansEvent",
    "MessageEvent",
    "PatienceEvent",
    "SineEvent",
    "StartEvent",
    "batch_event",
    "counted",
    "drain",
    "fit_gone",
    "numbers",
    "summary",
]


def drain(q: queue.SimpleQueue, limit: int = 100_000, *, rows: bool = False) -> list:
    """Everything queued in ``q`` now (at most ``limit`` items), without waiting.

    A batch that the training thread queued as a plain tuple ``(step, epoch, time, logs, lr)`` or
    ``(step, epoch, time, logs, lr, counts)`` (cheaper for it than building the event) comes out as
    its :class:`BatchEvent`; with
    ``rows``, consecutive batches whose logs are plain floats under the same keys, in the same
    order, come out together as one :class:`BatchRows` (the others still as events, in their
    place).
    """
    items = []
    get = q.get_nowait
    append = items.append
    try:
        while len(items) < limit:
            append(get())
    except queue.Empty:
        pass
    if rows:
        return _gather_rows(items)
    return [batch_event(*item) if type(item) is tuple else item for item in items]


def _gather_rows(items: list) -> list:
    out = []
    run: list[tuple] = []
    keys: tuple = ()
    for item in items:
        logs = item[3] if type(item) is tuple and 5 <= len(item) <= 6 else None
        names = tuple(logs) if type(logs) is dict else None  # in order: a line writes them so
        if run and names != keys:  # the run ends here
            out.extend(BatchRows.gather(run))
            run = []
        if names:
            if not run:
                keys = names
            run.append(item)
        else:
            out.append(batch_event(*item) if type(item) is tuple else item)
    if run:
        out.extend(BatchRows.gather(run))
    return out


def batch_event(step: int, epoch: int, t: float, logs, lr: float | None, counts=None) -> BatchEvent:
    """The :class:`BatchEvent` of one batch's Keras ``logs`` (logs it cannot read: all ``bad``)."""
    try:
        values, bad = numbers(logs)
    except Exception:  # logs that fail while read: the batch still counts, its values do not
        values, bad = {}, ("(unreadable logs)",)
    return BatchEvent(step, epoch, t, values, bad, lr, counts)


@dataclass(frozen=True, slots=True)
class StartEvent:
    """Training began. ``epochs`` and ``steps`` (per epoch) are the planned totals."""

    time: float
    epochs: int | None
    steps: int | None
    batch_size: int | None = None
    initial_epoch: int = 0
    run: str = ""
    lr_fixed: str = ""  # why the learning rate cannot be set from the window ("": it can)


@dataclass(frozen=True, slots=True)
class MeansEvent:
    """Which logged batch values are running means, and of what weights (once per run, before its
    first batch): the window recovers each batch's own value from them (:mod:`kerasqt.perbatch`).

    Keras logs each batch's metrics as their mean since the epoch began. ``means`` maps a metric
    that is such a mean (the loss, accuracies, MSE, crossentropies...) to the index, in each
    batch's ``counts``, of the weight it counted so far in the epoch; ``weights`` says what each
    count is: ``samples``, ``weights`` (sums of sample weights, masks), or ``batches`` (the
    batches themselves: each taken to weigh the same, where no count can be read). ``running``
    names the metrics that are not means (AUC, precision, F-scores...): their running value is
    all there is. ``execution``: batches per logged point (``steps_per_execution``)."""

    step: int
    time: float
    means: Mapping[str, int]
    weights: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    execution: int = 1


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """One training batch. ``step`` is global (counts across epochs, from 1).

    ``counts``: what the running means of the logged values had counted so far in the epoch, one
    number per weighting of the run's :class:`MeansEvent` (None: not known)."""

    step: int
    epoch: int
    time: float
    values: Mapping[str, float]
    bad: tuple[str, ...] = ()
    lr: float | None = None
    counts: tuple[float, ...] | None = None


def _plain_batch(item: tuple) -> bool:
    """Whether one queued batch has the plain types a :class:`BatchRows` holds."""
    step, epoch, t, logs, lr = item[:5]
    counts = item[5] if len(item) > 5 else None
    return (type(step) is int and type(epoch) is int and type(t) is float and (lr is None or type(lr) is float)
            and (counts is None or (type(counts) is tuple and counts and all(type(c) is float for c in counts)))
            and all(type(k) is str and type(v) is float for k, v in logs.items()))


def _shape(item: tuple) -> tuple:
    """What must be alike in the batches of one :class:`BatchRows`: a learning rate or none, and
    as many counts (None: none)."""
    counts = item[5] if len(item) > 5 else None
    return item[4] is None, None if type(counts) is not tuple else len(counts)


@dataclass(frozen=True, slots=True)
class BatchRows:
    """Consecutive training batches with the same metrics, as columns of Python numbers.

    ``values[key][i]`` is batch ``i``'s value of ``key`` (every value a ``float``); ``lrs`` is
    None when no batch had a learning rate, else a float per batch; ``counts`` is None when no
    batch had counts, else a column per weighting (``counts[j][i]``: batch ``i``'s count ``j``,
    see :class:`BatchEvent`). Made by :func:`drain`
    with ``rows=True``: the receiver refines and logs a whole drain at once, instead of
    building, reading and writing an object per batch. :meth:`events` gives the batches back
    as :class:`BatchEvent` values, the same ones ``drain`` would have made.
    """

    steps: list[int]
    epochs: list[int]
    times: list[float]
    values: dict[str, list[float]]
    lrs: list[float] | None = None
    counts: tuple[list[float], ...] | None = None

    def __len__(self) -> int:
        return len(self.steps)

    @classmethod
    def gather(cls, raw: list[tuple]) -> list:
        """Queued batch tuples whose logs share their keys (checked by the caller) as rows; a batch
        with a value that is not a float (or a step, epoch, time, learning rate or count of another
        type) as its event, in its place, and rows on either side of it."""
        rows = cls._columns(raw)
        if rows is not None:
            return [rows]
        out: list = []
        run: list[tuple] = []
        for item in raw:  # the rare case: find the odd ones out
            plain = _plain_batch(item)
            if run and not (plain and _shape(item) == _shape(run[0])):
                out.append(cls._columns(run))
                run = []
            if plain:
                run.append(item)
            else:
                out.append(batch_event(*item))
        if run:
            out.append(cls._columns(run))
        return out

    @classmethod
    def _columns(cls, raw: list[tuple]) -> BatchRows | None:
        """The rows of ``raw``, or None unless every number has its plain type (and the learning
        rate is always a float or always None, the counts always as many floats or always None)."""
        if len({len(item) for item in raw}) > 1:
            raw = [item if len(item) == 6 else (*item, None) for item in raw]
        steps, epochs, times, logs, lrs, *counted = map(list, zip(*raw, strict=True))
        values = {key: [d[key] for d in logs] for key in logs[0]}
        floats, ints = {float}, {int}
        if not ({type(s) for s in steps} == ints and {type(e) for e in epochs} == ints
                and {type(t) for t in times} == floats and {type(lr) for lr in lrs} in (floats, {type(None)})
                and all(type(k) is str and {type(v) for v in col} == floats for k, col in values.items())):
            return None
        counts = None
        if counted and counted[0][0] is not None:
            rows = counted[0]
            if {type(c) for c in rows} != {tuple} or len({len(c) for c in rows}) != 1 or not rows[0]:
                return None
            counts = tuple(map(list, zip(*rows, strict=True)))
            if not all({type(c) for c in col} == floats for col in counts):
                return None
        elif counted and any(c is not None for c in counted[0]):
            return None
        return cls(steps, epochs, times, values, None if lrs[0] is None else lrs, counts)

    def events(self) -> list[BatchEvent]:
        """The batches as events, in their order."""
        keys = list(self.values)
        n = len(self.steps)
        lrs = self.lrs or [None] * n
        counts = list(zip(*self.counts, strict=True)) if self.counts else [None] * n
        return [BatchEvent(step, epoch, t, dict(zip(keys, vals, strict=True)), (), lr, c)
                for step, epoch, t, lr, c, *vals in zip(self.steps, self.epochs, self.times, lrs, counts,
                                                         *self.values.values(), strict=True)]


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
    """Training ended with an exception; ``message`` is one line for the window. ``how``: what the
    window says of the run ("failed"; "cut short" for a replayed log without its end)."""

    time: float
    message: str
    how: str = "failed"


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """A control of the run (:mod:`kerasqt.steer`): asked for, applied by the training thread between
    batches, or refused (``ok=False``); ``text`` says it in one line for the control pane.

    ``action`` is ``stop`` (after the current batch), ``stop_epoch`` (after the current epoch),
    ``save`` (a checkpoint: ``path``) or ``lr`` (the learning rate set to ``value``)."""

    step: int
    time: float
    action: str
    text: str
    ok: bool = True
    value: float | None = None
    path: str = ""


@dataclass(frozen=True, slots=True)
class PatienceEvent:
    """What an ``EarlyStopping`` callback holds after an epoch (its public attributes): epochs
    without improvement of ``monitor`` (``wait`` of ``patience``), its best epoch and value so far,
    and at the run's end ``restored``: the epoch whose weights it restores (else None)."""

    step: int
    epoch: int
    time: float
    monitor: str
    wait: int
    patience: int
    best_epoch: int | None = None
    best: float | None = None
    restored: int | None = None


def is_learning_rate(key: str) -> bool:
    """Whether a logged key is the learning rate (``ReduceLROnPlateau`` and ``LearningRateScheduler``
    log ``learning_rate``, one ``learning_rate_<name>`` per optimizer of several; older code ``lr``):
    a setting to show as steps, not a metric to smooth."""
    return key in ("learning_rate", "lr") or key.startswith("learning_rate_")


def split_learning_rate(values: Mapping[str, float]) -> tuple[dict[str, float], float | None]:
    """The metric values without the learning rate, and the learning rate logged among them (or None)."""
    if not any(is_learning_rate(k) for k in values):
        return dict(values), None
    metrics = {k: v for k, v in values.items() if not is_learning_rate(k)}
    lr = values.get("learning_rate", values.get("lr"))
    if lr is None:
        lr = next(v for k, v in values.items() if is_learning_rate(k))
    return metrics, lr


_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase line
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, links
    r"|\x1b[@-Z\\-_]?"  # any other escape
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def terminal_text(line: str) -> str:
    """One line as a terminal would leave it on screen, in plain text.

    A ``\\r`` goes back to the start of the line: what follows the last one is what stays (Keras'
    progress bar redraws itself that way), unless nothing follows it; a ``\\b`` takes back the
    character before it; escape sequences (colours, cursor moves) and other control characters
    are dropped."""
    line = _ESCAPES.sub("", line).rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[-1]
    if "\b" in line:
        kept: list[str] = []
        for ch in line:
            if ch == "\b":
                if kept:
                    kept.pop()
            else:
                kept.append(ch)
        line = "".join(kept)
    return _CONTROLS.sub("", line)


def counted(n, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun`` as a person writes them: "1 epoch", "3 epochs", "? steps" (unknown)."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def summary(values: Mapping[str, float]) -> str:
    """Metric values as the message panes show them: ``loss 0.3127, accuracy 0.9``."""
    return ", ".join(f"{k} {v:.4g}" for k, v in values.items())


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


Event = (StartEvent | BatchEvent | BatchRows | EvalEvent | EpochEvent | EndEvent | ErrorEvent | MessageEvent
         | SineEvent | ControlEvent | PatienceEvent | MeansEvent)


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
