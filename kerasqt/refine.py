"""Refining raw training events into window updates (pure: no Qt, no Keras).

Runs in the receiver thread; its :class:`TrainingUpdate` values cross to the main
thread by value. :class:`TrainingRefiner` turns training events into
:class:`TrainingUpdate` chunks: batch values sorted by step with their
exponential moving average, epoch and test rows, progress with rates and ETA,
and one-time warnings for bad keys and NaN/inf values. The sine demo's refiner is
:mod:`kerasqt.demo.refiner` (its names stay importable from here).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from .events import (
    BatchEvent,
    BatchRows,
    ControlEvent,
    EndEvent,
    EpochEvent,
    ErrorEvent,
    EvalEvent,
    MeansEvent,
    PatienceEvent,
    StartEvent,
    is_learning_rate,
    split_learning_rate,
    summary,
)
from .perbatch import BatchRecovery, counts_array, moving_average

__all__ = ["Progress", "TrainingRefiner", "TrainingUpdate"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where training stands, as the progress line shows it."""

    epoch: int  # 0-based, as Keras counts
    epochs: int | None
    step_in_epoch: int
    steps: int | None
    step: int
    steps_per_s: float | None
    samples_per_s: float | None
    eta_s: float | None
    elapsed_s: float
    lr: float | None
    patience: tuple[int, int] | None = None  # EarlyStopping's (wait, patience) after the last epoch

    def describe(self) -> str:
        if self.epochs is None:
            parts = [f"epoch {self.epoch + 1}"]
        else:  # (at most the planned epochs: fit(epochs=0) reads "epoch 0/0")
            parts = [f"epoch {min(self.epoch + 1, self.epochs)}/{self.epochs}"]
        parts.append(f"step {self.step_in_epoch}" + (f"/{self.steps}" if self.steps else ""))
        if self.steps_per_s:
            parts.append(_per_second(self.steps_per_s, "step"))
        if self.samples_per_s:
            parts.append(_per_second(self.samples_per_s, "sample"))
        if self.lr is not None:
            parts.append(f"lr {self.lr:.3g}")
        if self.patience is not None:
            parts.append(f"patience {self.patience[0]}/{self.patience[1]}")
        parts.append(f"elapsed {_clock(self.elapsed_s)}")
        if self.eta_s is not None:
            parts.append(f"ETA {_clock(self.eta_s)}")
        return " · ".join(parts)

    @property
    def fraction(self) -> float | None:
        """Share of all planned steps done, or None when the totals are unknown."""
        if not self.epochs or not self.steps:
            return None
        return min(1.0, (self.epoch * self.steps + self.step_in_epoch) / (self.epochs * self.steps))


def _per_second(rate: float, unit: str) -> str:
    """``1,234 steps/s``, ``4.2 steps/s``; under one a second, the seconds each takes: ``4.0 s/step``."""
    if rate >= 10:
        return f"{rate:,.0f} {unit}s/s"
    if rate >= 1:
        return f"{rate:.1f} {unit}s/s"
    return f"{1 / rate:,.1f} s/{unit}"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0) + 0.5)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass(frozen=True, slots=True)
class BatchChunk:
    """New batch rows: global steps and, per metric, raw and smoothed values (float32); for the
    metrics that are running means with counts (:mod:`kerasqt.perbatch`), each batch's own value
    and its moving average too."""

    steps: np.ndarray
    values: Mapping[str, np.ndarray]
    smoothed: Mapping[str, np.ndarray]
    per_batch: Mapping[str, np.ndarray] = field(default_factory=dict)
    per_batch_smoothed: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrainingUpdate:
    """What the window needs since the last update. Sent by value across threads."""

    start: StartEvent | None = None
    batches: BatchChunk | None = None
    epochs: tuple[EpochEvent, ...] = ()
    tests: tuple[EvalEvent, ...] = ()
    progress: Progress | None = None
    end: EndEvent | ErrorEvent | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    nonfinite: frozenset[str] = frozenset()  # metrics that had NaN/inf so far
    # (step, learning rate) where it changed, and at each epoch's end: drawn as steps, never smoothed
    lrs: tuple[tuple[int, float], ...] = ()
    # Controls (ControlEvent) and EarlyStopping's state (PatienceEvent), in the order they came
    steering: tuple[ControlEvent | PatienceEvent, ...] = ()
    means: MeansEvent | None = None  # the run's metrics that are running means, when that came


class TrainingRefiner:
    """Turns training events into :class:`TrainingUpdate` values; keeps only small running state.

    ``note`` is called (receiver thread) with a line per epoch summary and per problem worth telling the
    user about (once per metric key and kind of problem).
    """

    def __init__(self, smoothing: float = 0.9, note=None) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
        self.smoothing = smoothing
        self._note = note or (lambda text: None)
        self.reset()

    def reset(self) -> None:
        self._ema: dict[str, float] = {}
        self._ema_batch: dict[str, float | None] = {}  # the per-batch values' moving averages
        self._recovery = BatchRecovery()
        self._warned: set[tuple[str, str]] = set()
        self._start: StartEvent | None = None
        self._rate_window: deque[tuple[float, int]] = deque()
        self._epoch_times: list[float] = []
        self._epoch_began = None
        self._last_batch: BatchEvent | None = None
        self._lr: float | None = None
        self._lr_shown: float | None = None  # the last learning rate put into an update's lrs
        self._lr_points: list[tuple[int, float]] = []
        self._lr_epochs: set[int] = set()  # epochs whose batches carried the learning rate
        self._lr_logged: float | None = None  # the last one an epoch's logs gave (ReduceLROnPlateau...)
        self._epoch_start_step = 0  # global step at the end of the last finished epoch
        self._epoch_steps = 0  # steps of the last finished epoch (the planned ones may be unknown)
        self._patience: tuple[int, int] | None = None  # the last PatienceEvent's (wait, patience)
        self._next_epoch = 0
        self._newest = -math.inf  # the time of the newest event (batch, evaluation, epoch end, end)
        self.counts = {"batches": 0, "epochs": 0, "tests": 0, "nonfinite": 0}
        self.ended = False

    # -- one drained chunk of events -> one update --------------------------------------------
    def refine(self, events: list) -> TrainingUpdate | None:
        start = end = means = None
        batches: list[BatchEvent | BatchRows] = []  # in their order
        epochs: list[EpochEvent] = []
        tests: list[EvalEvent] = []
        steering: list[ControlEvent | PatienceEvent] = []
        newest = self._newest
        for ev in events:
            if isinstance(ev, BatchRows):
                batches.append(ev)
                newest = max(newest, max(ev.times, default=newest))
                continue
            if isinstance(ev, BatchEvent):
                batches.append(ev)
            elif isinstance(ev, EpochEvent):
                epochs.append(ev)
            elif isinstance(ev, EvalEvent):
                self.counts["tests"] += 1
                self._check_bad(ev.bad)
                if ev.kind != "val":
                    tests.append(ev)
                    continue  # an evaluate() of its own, maybe long after the run: not the run's time
            elif isinstance(ev, StartEvent):
                self.reset()
                start = self._start = ev
                self._epoch_began = ev.time
                self._next_epoch = ev.initial_epoch
                newest = ev.time
                continue
            elif isinstance(ev, (EndEvent, ErrorEvent)):
                end = ev
                self.ended = True
            elif isinstance(ev, (ControlEvent, PatienceEvent)):
                steering.append(ev)  # (passed on as they are; not the run's time: a control may come late)
                if isinstance(ev, PatienceEvent):
                    self._patience = (ev.wait, ev.patience)
                continue
            elif isinstance(ev, MeansEvent):
                means = self._recovery.means = ev  # (before the run's first batch)
                continue
            else:
                continue
            newest = max(newest, ev.time)
        self._newest = newest
        if not (start or batches or epochs or tests or end or steering or means):
            return None
        rows = [b for b in batches if isinstance(b, BatchRows)]
        if rows and (len(rows) < len(batches) or any(list(r.values) != list(rows[0].values) for r in rows)):
            # Rows beside single events, or of other metrics (rare): all as events, in their order.
            batches = [b for item in batches for b in (item.events() if isinstance(item, BatchRows) else [item])]
            rows = []
        chunk = self._rows_chunk(rows) if rows else (self._batch_chunk(batches) if batches else None)
        epochs.sort(key=lambda e: e.step)
        epochs = [self._epoch_done(ev) for ev in epochs]
        lrs, self._lr_points = tuple(self._lr_points), []
        return TrainingUpdate(
            start=start,
            batches=chunk,
            epochs=tuple(epochs),
            tests=tuple(tests),
            progress=self._progress(),
            end=end,
            counts=dict(self.counts),
            nonfinite=frozenset(k for k, kind in self._warned if kind == "nonfinite"),
            lrs=lrs,
            steering=tuple(steering),
            means=means,
        )

    # -- pieces ---------------------------------------------------------------------------------
    def _lr_apart(self, ev: EpochEvent) -> EpochEvent:
        """The epoch without a logged learning rate among its metrics (the rate the epoch ran with:
        ``ReduceLROnPlateau`` logs it before it lowers it); a change from the last epoch is told."""
        values, logged = split_learning_rate(ev.values)
        if logged is None:
            return ev
        if self._lr_logged is not None and not _same(logged, self._lr_logged):
            self._note(f"learning rate {self._lr_logged:.3g} -> {logged:.3g} in epoch {ev.epoch + 1}")
        self._lr_logged = logged
        return replace(ev, values=values, lr=logged if ev.lr is None else ev.lr)

    def _lr_at(self, step: int, lr: float, always: bool = False) -> None:
        """Record the learning rate at ``step`` when it changed (or ``always``: an epoch's end)."""
        self._lr = lr
        if always or self._lr_shown is None or not _same(lr, self._lr_shown):
            self._lr_shown = lr
            self._lr_points.append((step, lr))

    def _check_bad(self, bad: tuple[str, ...]) -> None:
        for key in bad:
            self._warn_once(key, "bad", f"metric {key!r} is not a single number; it is skipped")

    def _warn_once(self, key: str, kind: str, text: str) -> None:
        if (key, kind) not in self._warned:
            self._warned.add((key, kind))
            self._note(text)

    def _smooth(self, key: str, raw: list, steps: list, logged=None) -> tuple[np.ndarray, np.ndarray]:
        """One metric's values (in step order) and their moving average, as float32 columns.

        A NaN or inf holds the average and, when it was logged, is counted and told once;
        ``logged(i)`` says whether a NaN at ``i`` was logged rather than missing from that batch
        (None: every value was logged).
        """
        a, b = self.smoothing, 1.0 - self.smoothing
        last = self._ema.get(key)
        ema: list[float] = []
        put = ema.append
        if math.isfinite(sum(raw)):  # all finite, the common case (a sum too big for a float: the long way)
            rest = raw
            if last is None:
                last, rest = raw[0], raw[1:]
                put(last)
            for v in rest:
                last = a * last + b * v
                put(last)
        else:
            for i, v in enumerate(raw):
                if math.isfinite(v):
                    last = v if last is None else a * last + b * v
                elif v == v or logged is None or logged(i):  # inf, or NaN that was really logged
                    self.counts["nonfinite"] += 1
                    self._warn_once(key, "nonfinite", f"{key} is {v} at step {steps[i]} (shown as a gap)")
                put(math.nan if last is None else last)
        if last is not None:
            self._ema[key] = last
        with np.errstate(over="ignore"):  # beyond float32: shown as inf, like any value that big
            return np.array(raw, np.float32), np.array(ema, np.float32)

    def _rows_chunk(self, rows: list[BatchRows]) -> BatchChunk:
        """:meth:`_batch_chunk` of batches given as columns (all with the same metrics): the same
        chunk, without an object per batch."""
        steps = [s for r in rows for s in r.steps] if len(rows) > 1 else rows[0].steps
        order = None
        if any(b < a for a, b in zip(steps, steps[1:], strict=False)):  # out of order (a thread pool's dispatch)
            order = sorted(range(len(steps)), key=steps.__getitem__)
            steps = [steps[i] for i in order]

        def column(name: str, key: str | None = None) -> list:
            if key is None:
                cols = [getattr(r, name) for r in rows]
                if name == "lrs" and any(c is None for c in cols):
                    cols = [c if c is not None else [None] * len(r) for c, r in zip(cols, rows, strict=True)]
            else:
                cols = [r.values[key] for r in rows]
            col = cols[0] if len(cols) == 1 else [v for c in cols for v in c]
            return col if order is None else [col[i] for i in order]

        n = len(steps)
        values: dict[str, np.ndarray] = {}
        smoothed: dict[str, np.ndarray] = {}
        for key in rows[0].values:
            if not is_learning_rate(key):
                values[key], smoothed[key] = self._smooth(key, column("values", key), steps)
        times = column("times")
        epochs = column("epochs")
        means, counts, raw = self._recovery.means, None, {}
        if means is not None and any(r.counts is not None for r in rows):
            counts = counts_array([(len(r), r.counts) for r in rows], self._weights(), columns=True)
            counts = counts if order is None else counts[order]
            raw = {key: column("values", key) for key in means.means if key in values}
        per, per_smoothed = self._per_batch(steps, epochs, raw, counts)
        lrs = column("lrs") if any(r.lrs is not None for r in rows) else None
        if lrs is not None:
            shown = self._lr_shown
            for step, lr in zip(steps, lrs, strict=True):
                if lr is not None and lr != shown:
                    self._lr_at(step, lr)
                    shown = lr
            newest_lr = next((lr for lr in reversed(lrs) if lr is not None), None)
            if newest_lr is not None:
                self._lr = newest_lr
                self._lr_epochs.update(set(epochs))  # (rows with a rate: their epochs have it)
        self._rate_window.extend(zip(times, steps, strict=True))
        if self._last_batch is None or steps[-1] >= self._last_batch.step:
            self._last_batch = BatchEvent(steps[-1], epochs[-1], times[-1], {})  # (its step, epoch and time)
        self.counts["batches"] += n
        return BatchChunk(np.array(steps, np.int64), values, smoothed, per, per_smoothed)

    def _batch_chunk(self, batches: list[BatchEvent]) -> BatchChunk:
        batches.sort(key=lambda e: e.step)
        keys: dict[str, None] = {}
        for ev in batches:
            keys.update(dict.fromkeys(k for k in ev.values if not is_learning_rate(k)))
            if ev.bad:
                self._check_bad(ev.bad)
        n = len(batches)
        steps = np.fromiter((ev.step for ev in batches), np.int64, n)
        values: dict[str, np.ndarray] = {}
        smoothed: dict[str, np.ndarray] = {}
        step_list = steps.tolist()
        raws = {}
        for key in keys:
            raw = raws[key] = np.fromiter((ev.values.get(key, math.nan) for ev in batches), np.float64, n).tolist()
            values[key], smoothed[key] = self._smooth(key, raw, step_list,
                                                      logged=lambda i, key=key: key in batches[i].values)
        counts = None
        if self._recovery.means is not None:
            counts = counts_array([(1, ev.counts) for ev in batches], self._weights())
        per, per_smoothed = self._per_batch(step_list, [ev.epoch for ev in batches], raws, counts)
        for ev in batches:
            lr = ev.lr if ev.lr is not None else split_learning_rate(ev.values)[1]
            if lr is not None:
                self._lr_at(ev.step, lr)
                self._lr_epochs.add(ev.epoch)
            self._rate_window.append((ev.time, ev.step))
        newest = batches[-1]
        if self._last_batch is None or newest.step >= self._last_batch.step:
            self._last_batch = newest
        self.counts["batches"] += n
        return BatchChunk(steps, values, smoothed, per, per_smoothed)

    def _weights(self) -> int:
        return len(self._recovery.means.weights)

    def _per_batch(self, steps, epochs, raws, counts) -> tuple[dict, dict]:
        """Each batch's own value of the metrics that are running means, and its moving average."""
        per = self._recovery.recover(steps, epochs, raws, counts)
        smoothed = {}
        for key, col in per.items():
            smoothed[key], self._ema_batch[key] = moving_average(col, self._ema_batch.get(key), self.smoothing)
            with np.errstate(over="ignore"):
                per[key] = col.astype(np.float32)
        return per, smoothed

    def _epoch_done(self, ev: EpochEvent) -> EpochEvent:
        """Count, check and tell an epoch's end; returns it without a logged learning rate."""
        from_logs = ev.lr is None  # (then a logged rate is the one the whole epoch ran with)
        ev = self._lr_apart(ev)
        if from_logs and ev.lr is not None and ev.epoch not in self._lr_epochs and ev.step >= self._epoch_start_step:
            self._lr_at(self._epoch_start_step, ev.lr)  # from the epoch's start (a change: a point)
        self.counts["epochs"] += 1
        self._check_bad(ev.bad)
        if ev.lr is not None:
            self._lr_at(ev.step, ev.lr, always=True)  # (the steps line reaches the epoch's end)
        for key, v in ev.values.items():
            if not math.isfinite(v):
                self.counts["nonfinite"] += 1
                self._warn_once(key, "nonfinite", f"{key} is {v} at epoch {ev.epoch + 1} (shown as a gap)")
        if self._epoch_began is not None:
            self._epoch_times.append(ev.time - self._epoch_began)
        self._epoch_began = ev.time
        if ev.step >= self._epoch_start_step:
            self._epoch_steps = ev.step - self._epoch_start_step
            self._epoch_start_step = ev.step
            self._next_epoch = ev.epoch + 1
        self._note(f"epoch {ev.epoch + 1}: {summary(ev.values)}")
        return ev

    def _rate(self) -> float | None:
        win = self._rate_window
        while len(win) > 2 and win[-1][0] - win[0][0] > 2.0:
            win.popleft()
        if len(win) < 2:
            return None
        (t0, s0), (t1, s1) = win[0], win[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def _progress(self) -> Progress | None:
        st = self._start
        if st is None:
            return None
        last = self._last_batch
        step = last.step if last else 0
        steps = st.steps
        if last is not None and last.step > self._epoch_start_step:
            epoch, step_in_epoch = last.epoch, last.step - self._epoch_start_step
        elif self.ended and self.counts["epochs"]:  # the run ended at an epoch's end: that epoch
            epoch, step_in_epoch = self._next_epoch - 1, self._epoch_steps
        else:  # between epochs: the next one has not logged a batch yet
            epoch, step_in_epoch = self._next_epoch, 0
        if st.epochs and epoch >= st.epochs:  # after the last epoch: show it complete
            epoch, step_in_epoch = st.epochs - 1, steps or self._epoch_steps
        rate = self._rate()
        eta = None
        if rate and st.epochs and steps:
            left_now = (steps - step_in_epoch) / rate
            epochs_after = max(st.epochs - epoch - 1, 0)
            per_epoch = float(np.median(self._epoch_times)) if self._epoch_times else steps / rate
            eta = left_now + epochs_after * per_epoch
            if self.ended:
                eta = 0.0
        # Up to the newest event, not the newest batch: validation and the end take time too.
        now = max(self._newest, st.time)
        return Progress(
            epoch=epoch,
            epochs=st.epochs,
            step_in_epoch=step_in_epoch,
            steps=steps,
            step=step,
            steps_per_s=rate,
            samples_per_s=rate * st.batch_size if rate and st.batch_size else None,
            eta_s=eta,
            elapsed_s=max(now - st.time, 0.0),
            lr=self._lr,
            patience=self._patience,
        )


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))  # (float32 rounding is no change)


_DEMO = ("SineCurve", "SineRefiner", "SineUpdate")  # moved to kerasqt.demo.refiner; still importable here


def __getattr__(name: str):
    if name in _DEMO:  # (lazily: importing kerasqt.demo imports this module, through its session)
        from .demo import refiner

        return getattr(refiner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
