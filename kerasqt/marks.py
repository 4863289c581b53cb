"""Marks on the metric axes (main thread): where the learning rate changed, and EarlyStopping's best epoch.

:class:`RunMarks` (no Matplotlib) says what a run's marks are, from its tables and the refiner's
updates:

* the learning-rate changes, read from the run's learning-rate table (whatever made them:
  ``ReduceLROnPlateau``, a schedule, the window's control), each at the step of the first batch
  that ran with the new rate. At most :attr:`RunMarks.MAX_LR_MARKS`: a rate that changes more
  often is a curve in the learning-rate axes, not marks; so is a rate a schedule drives (the
  run's start says so: ``StartEvent.lr_fixed``), even when it changes only once an epoch. In
  the first metric's axes the newest ``MAX_LR_LABELS`` say the new rate (a label costs a full
  draw about 0.8 ms, a line next to nothing);
* ``EarlyStopping``'s best epoch of its monitored metric, from the last
  :class:`~kerasqt.events.PatienceEvent`, and the epoch whose weights it restored.

:class:`MarkArtists` puts them on the panels as *static* artists (a dotted vertical line
in every metric's axes, with the new rate at its top in the first; a ring at the best epoch on
the monitored metric's axes, and the epoch). They belong to the axes' saved background: blits
never draw them, so a frame costs what it did; an axes whose marks changed is drawn anew with the
next full draw the window allows (like a new legend entry, :meth:`~kerasqt.drawstate.DrawState.legend`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.lines import Line2D

from .events import PatienceEvent
from .history import LR_KEY, group_of

__all__ = ["Best", "MarkArtists", "RunMarks"]

LR_COLOR, BEST_COLOR = "C4", "#f2b705"
MAX_LR_LABELS = 6  # the newest learning-rate marks say the new rate; older ones are lines only


@dataclass(frozen=True)
class Best:
    """EarlyStopping's best epoch as marked: its monitored metric, the epoch's step and value."""

    metric: str
    step: int
    value: float
    epoch: int  # 0-based, as Keras counts
    restored: bool  # EarlyStopping restored this epoch's weights at the run's end


class RunMarks:
    """What one run's marks are (pure: reads the run's tables, keeps the last EarlyStopping state)."""

    MAX_LR_MARKS = 12

    def __init__(self) -> None:
        self.patience: PatienceEvent | None = None  # the last one
        self.restored: int | None = None  # the epoch whose weights EarlyStopping restored
        self.scheduled = False  # a schedule drives the rate: its changes are not marked
        self._key = None
        self._spec: tuple = ((), None)

    def apply(self, update) -> None:
        """Take an update's EarlyStopping states (its controls are the panes')."""
        start = update.start
        if start is not None and getattr(start, "lr_fixed", ""):
            self.scheduled = True
        for ev in update.steering:
            if isinstance(ev, PatienceEvent):
                self.patience = ev
                if ev.restored is not None:
                    self.restored = ev.restored

    def spec(self, history) -> tuple:
        """``(lr_marks, best)``: the ``(step, rate)`` of each learning-rate change to mark, and the
        :class:`Best` epoch or None. The same object while nothing it reads changed."""
        key = (history.lrs.version, history.epochs.version, self.patience, self.restored, self.scheduled)
        if key != self._key:
            self._key = key
            changes = [] if self.scheduled else lr_changes(history)
            self._spec = (tuple(changes) if len(changes) <= self.MAX_LR_MARKS else (), self._best(history))
        return self._spec

    def _best(self, history) -> Best | None:
        ev = self.patience
        if ev is None or ev.best_epoch is None or ev.best is None:
            return None
        epochs = history.epochs.epochs
        rows = [i for i, e in enumerate(epochs) if e == ev.best_epoch]
        if not rows:
            return None
        step = int(history.epochs.steps[rows[-1]])
        return Best(ev.monitor, step, float(ev.best), ev.best_epoch, self.restored == ev.best_epoch)


def lr_changes(history) -> list[tuple[int, float]]:
    """``(step, new rate)`` wherever the learning-rate table's value changes (in step order)."""
    table = history.lrs
    if len(table) < 2:
        return []
    steps, values = table.steps.tolist(), table.column(LR_KEY).tolist()
    return [(steps[i], values[i]) for i in range(1, len(values))
            if math.isfinite(values[i]) and not _same(values[i], values[i - 1])]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))  # (float32 rounding is no change)


class MarkArtists:
    """The marks' artists on each panel: made anew when a panel's marks change; which panels
    changed is returned, for the plot to draw them anew."""

    def __init__(self) -> None:
        self._shown: dict = {}  # panel -> (its axes, its marks, their artists)
        self._last = None

    def sync(self, panels: dict, spec: tuple) -> list:
        """Give each of ``panels`` (group -> Panel) its marks of ``spec`` (:meth:`RunMarks.spec`);
        returns the panels whose marks changed."""
        key = (spec, tuple((p, p.ax) for p in panels.values()))
        if key == self._last:
            return []
        self._last = key
        for panel in [p for p, (ax, _, _) in self._shown.items() if ax.figure is None or ax not in ax.figure.axes]:
            del self._shown[panel]  # (the figure was cleared: its artists went with it)
        lr_marks, best = spec
        first = next((group for group in panels if group != LR_KEY), None)  # its lines say the new rates
        changed = []
        for group, panel in panels.items():
            marks = (() if group == LR_KEY else lr_marks, group == first,
                     best if best is not None and group_of(best.metric) == group else None)
            shown = self._shown.get(panel)
            if shown is not None and shown[0] is panel.ax:
                if shown[1] == marks:
                    continue
                for artist in shown[2]:
                    artist.remove()
            elif not marks[0] and marks[2] is None:
                continue
            self._shown[panel] = (panel.ax, marks, _draw(panel.ax, marks))
            changed.append(panel)
        return changed

    def artists(self, panel) -> list:
        """The mark artists on ``panel`` (tests)."""
        shown = self._shown.get(panel)
        return list(shown[2]) if shown is not None and shown[0] is panel.ax else []


def _draw(ax, marks: tuple) -> list:
    lr_marks, labelled, best = marks
    out = []
    top = ax.get_xaxis_transform()  # x in data, y in axes fractions
    for i, (step, lr) in enumerate(lr_marks):
        line = Line2D([step, step], [0, 1], transform=top, color=LR_COLOR, lw=1.0, ls=(0, (3, 2)), zorder=1.5)
        out.append(ax.add_artist(line))
        if labelled and i >= len(lr_marks) - MAX_LR_LABELS:  # (a label costs a full draw far more than its line)
            out.append(ax.text(step, 0.03, f" lr {_rate(lr)}", transform=top, rotation=90, ha="right", va="bottom",
                               fontsize=7.5, color=LR_COLOR, zorder=1.5, clip_on=True))
    if best is not None:  # a ring around the point (the lines are drawn over static artists), over the legend
        ring = Line2D([best.step], [best.value], marker="o", ms=17, mfc="none", mec=BEST_COLOR, mew=2.4,
                      ls="none", zorder=6)
        out.append(ax.add_artist(ring))
        word = "weights restored" if best.restored else "best"
        out.append(ax.annotate(f"{word}: epoch {best.epoch + 1}", (best.step, best.value), xytext=(0, -13),
                               textcoords="offset points", ha="center", va="top", fontsize=7.5, color="#5c4500",
                               bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
                               zorder=6))
    return out


def _rate(lr: float) -> str:
    """A learning rate in a few characters: ``0.001``, ``0.00025``, ``1e-5``."""
    return f"{lr:.2g}".replace("e-0", "e-").replace("e+0", "e")
