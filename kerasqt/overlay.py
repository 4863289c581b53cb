"""Earlier runs drawn over the live axes, still, each in its own colour (main thread; Matplotlib, no Qt).

The window's run list checks runs; :class:`RunOverlays` draws each one's curves in the axes of
the run on show: its smoothed batch values (a solid line, unless ``batches`` is off), its epoch
values (dots), its validation values (a dashed line with squares), its ``evaluate()`` results
(diamonds) and, where the plot shows one, its learning rate, named once per axes in the legend.

They are *static* artists (:class:`StaticLine`): not animated, so a blit frame never draws them;
they are part of the background each axes saves when it is drawn anew, and drawn only then,
min/max decimated to the axes' width in pixels for its view (:mod:`kerasqt.decimate`), the
decimation kept while the view stays. The limits policy counts them in (their y range is
computed once per scale). A change (a run checked, unchecked, renamed) asks for one full draw.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from matplotlib.lines import Line2D

from .blit import set_exact
from .catalogue import higher_is_better
from .decimate import minmax_decimate
from .history import LR_KEY, group_of
from .limits import finite_range

__all__ = ["NAMED", "OVERLAY_COLORS", "OverlayRun", "RunOverlays", "StaticLine"]

# Apart from the live run's (C0 train, C1 validation, C2 tests, C4 learning rate).
OVERLAY_COLORS = ("C3", "C9", "C6", "C8", "C5", "C7", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
                  "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#9c9ede", "#cedb9c", "#e7cb94", "#de9ed6")
DECIMATE_ABOVE = 1000  # points: fewer are drawn as they are
NAMED = 8  # overlaid runs named in an axes' legend at most


class StaticLine(Line2D):
    """A line of a finished run: all its points kept, drawn decimated to the axes' pixel width when
    the axes is drawn (not animated: blits leave it alone)."""

    def __init__(self, x, y, *args, **kwargs) -> None:
        super().__init__([], [], *args, **kwargs)
        self.full_x = np.asarray(x, float)
        self.full_y = np.asarray(y, float)
        self._view = None
        self._ranges: dict[bool, tuple | None] = {}
        self.decimations = 0  # how often the view asked for new points (tests, benchmarks)
        if len(self.full_x) <= DECIMATE_ABOVE:
            set_exact(self, self.full_x, self.full_y)  # (else its points come at its first draw)

    def draw(self, renderer) -> None:
        ax = self.axes
        if ax is not None and len(self.full_x) > DECIMATE_ABOVE:
            x0, x1 = ax.get_xlim()
            view = (x0, x1, max(int(ax.bbox.width), 50))
            if view != self._view:
                self._view = view
                self.decimations += 1
                set_exact(self, *minmax_decimate(self.full_x, self.full_y, *view))
        super().draw(renderer)

    def y_range(self, log: bool) -> tuple | None:
        """The finite range of all its values (positive ones on a log scale), computed once per scale."""
        if log not in self._ranges:
            self._ranges[log] = finite_range(self.full_y, log)
        return self._ranges[log]


@dataclass
class OverlayRun:
    """A run checked in the list: its name in the legend, its colour and its tables."""

    name: str
    color: str
    history: object  # a kerasqt.history.RunHistory


class RunOverlays:
    """The runs drawn over a :class:`~kerasqt.plotting.MetricsPlot`'s axes, keyed as the caller likes
    (the run list: by log path). ``batches``: draw their smoothed batch curves too.

    A change makes only the lines of the runs it concerns (one run checked: its lines), then each
    axes' legend, which is put in a fixed corner while runs are overlaid (the best place would be
    looked for among all their points at every full draw): the lower right in the axes of a metric
    that grows (accuracy), else the upper right."""

    def __init__(self) -> None:
        self.runs: dict[object, OverlayRun] = {}
        self.batches = True
        self.plot = None
        self._drawn: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Panel -> {key: its StaticLines}

    # -- what is overlaid --------------------------------------------------------------------------
    def attach(self, plot) -> None:
        """Draw on ``plot`` (a MetricsPlot; its new axes get the overlays as they are made)."""
        if plot is self.plot:
            return
        self.plot = plot
        plot.layout.decorate = self._decorate
        plot.layout.legend_at = self._legend_at
        self.redraw()

    def free_color(self) -> str:
        """The first colour no overlaid run has, nor one the plot's own runs take when it compares
        runs (a replay's, a watcher's); they repeat past twenty runs."""
        used = [run.color for run in self.runs.values()]
        own = getattr(getattr(self.plot, "layout", None), "run_colors", None)
        if own is not None:
            used += own()
        for color in OVERLAY_COLORS:
            if color not in used:
                return color
        return OVERLAY_COLORS[len(used) % len(OVERLAY_COLORS)]

    def show(self, key, name: str, history, color: str | None = None) -> None:
        old = self.runs.get(key)
        self.runs[key] = OverlayRun(name, color or (old.color if old else self.free_color()), history)
        self._update([key])

    def hide(self, key) -> None:
        if self.runs.pop(key, None) is not None:
            self._update([key])

    def rename(self, key, name: str) -> None:
        run = self.runs.get(key)
        if run is None or run.name == name:
            return
        run.name = name
        for drawn in list(self._drawn.values()):
            if drawn.get(key):
                drawn[key][0].set_label(name)
        self._update([])

    def set_batches(self, on: bool) -> None:
        if self.batches != bool(on):
            self.batches = bool(on)
            self.redraw()

    def lines(self, panel) -> list[StaticLine]:
        """The overlays' lines in ``panel``."""
        return [line for lines in self._drawn.get(panel, {}).values() for line in lines]

    # -- drawing -------------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Make every overlaid run's lines anew in every axes; the next frame draws the axes anew."""
        keys = set(self.runs)
        for drawn in list(self._drawn.values()):
            keys.update(drawn)
        self._update(list(keys))

    def _update(self, keys: list) -> None:
        """Make the lines of the runs ``keys`` anew in every axes (none for a run no longer overlaid),
        then the legends; the next frame draws every axes anew, its limits fitted to all the data."""
        plot = self.plot
        if plot is None:
            return
        shown = list(plot.panels.values())
        # (and axes kept for the next run of the same metrics: MetricsPlot.reset keeps them aside)
        for panel in shown + [p for p in list(self._drawn.keys()) if p not in shown]:
            drawn = self._drawn.setdefault(panel, {})
            for key in keys:
                for line in drawn.pop(key, []):
                    if line in panel.still:
                        panel.still.remove(line)
                    if line.axes is not None:
                        line.remove()
            if panel.ax not in plot.figure.axes:
                del self._drawn[panel]  # gone with a new layout
                continue
            for key in keys:
                run = self.runs.get(key)
                if run is not None:
                    drawn[key] = self._run_lines(panel, run)
            if panel.ax.get_legend() is not None or drawn:
                plot.layout.make_legend(panel)
        plot.state.full = True
        plot.state.dirty = True

    def _decorate(self, panel) -> None:
        """A new axes (Layout.build): every overlaid run's lines of its metric group."""
        self._drawn[panel] = {key: self._run_lines(panel, run) for key, run in self.runs.items()}

    def _legend_at(self, panel) -> dict:
        """The legend of ``panel`` while runs are overlaid: in a fixed corner, the first
        :data:`NAMED` runs named (more would only be lines of text to draw: the run list names them)."""
        named = [lines[0] for lines in self._drawn.get(panel, {}).values() if lines]
        if not named:
            return {}
        where = {"loc": "lower right" if higher_is_better(panel.group) else "upper right",
                 "ncols": 2 if len(named) > 4 else 1}
        if len(named) <= NAMED:
            return where
        ours = {line for lines in self._drawn[panel].values() for line in lines}
        handles = [a for a in panel.ax.get_lines() if a not in ours and not a.get_label().startswith("_")]
        more = Line2D([], [], ls="none", label=f"+ {len(named) - NAMED} more runs")
        handles += named[:NAMED] + [more]
        return {**where, "handles": handles, "labels": [h.get_label() for h in handles]}

    def _run_lines(self, panel, run: OverlayRun) -> list[StaticLine]:
        ax, group, h = panel.ax, panel.group, run.history
        style = {"color": run.color, "alpha": 0.8}
        specs = []  # (x, y, format, keyword arguments)
        if group == LR_KEY:
            if len(h.lrs):
                specs.append((h.lrs.steps, h.lrs.column(LR_KEY), {"lw": 1.2, "drawstyle": "steps-post"}))
        else:
            batch_keys = [k for k in h.batches.metrics() if group_of(k) == group]
            epoch_keys = [k for k in h.epochs.names() if group_of(k) == group]
            test_keys = [k for k in h.tests.names() if group_of(k) == group]
            if self.batches:
                for key in batch_keys:
                    specs.append((h.batches.steps, h.batches.smoothed(key), {"lw": 1.2}))
            for key in epoch_keys:
                x, y = _logged(h.epochs, key)  # (validation every few epochs: one dashed line all the same)
                if key.startswith("val_"):
                    specs.append((x, y, {"ls": "--", "marker": "s", "ms": 3.5, "lw": 1.0}))
                else:
                    specs.append((x, y, {"ls": "none", "marker": "o", "ms": 3.5}))
            for key in test_keys:
                specs.append((*_logged(h.tests, key), {"ls": "none", "marker": "D", "ms": 5}))
        lines = []
        for i, (x, y, kw) in enumerate(specs):
            line = StaticLine(x, y, label=run.name if i == 0 else "_overlay", **style, **kw)
            ax.add_line(line)
            lines.append(line)
        panel.still += lines
        return lines


def _logged(table, key: str):
    """The steps and values of the rows of ``table`` (epochs, tests) that logged ``key``."""
    y = table.column(key)
    keep = np.isfinite(y)
    return table.steps[keep], y[keep]
