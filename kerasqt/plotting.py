"""Matplotlib plots of the monitor window (main thread only).

A plot owns the figure's axes and artists, takes refined updates with
``apply`` (cheap: it only stores data) and draws at most once per frame with
``draw_frame`` when the window's frame timer says so:

* :class:`MetricsPlot`: one axes per metric group (``loss`` with ``val_loss``...).
  Batch values are drawn faint with their moving average on top, epoch values as
  markers, ``val_`` values as a dashed line with markers. Lines are *animated*:
  a steady-state frame restores, in each axes, the saved background of the strip
  from the first new point to the newest one, draws the lines clipped to it and
  blits the strip (:meth:`MetricsPlot._blit_tail`: a cost that does not grow with
  the points shown), or the whole axes when its view changed. An axes is drawn
  anew only when its limits must change (they grow with headroom), on zoom or
  pan, and on layout changes; while training runs that is staged, one step per
  frame (the layout, then each axes without its legend, then the legend:
  :meth:`MetricsPlot._draw_panel`, about 15 ms a step instead of about 95 ms for the
  whole figure), so the event loop turns in between. The axes sit in a fixed grid
  with margins in points (no layout pass). Lines are min/max decimated per
  pixel column of the visible range (:mod:`kerasqt.decimate`), recomputed when
  the view changes.

Limits the user sets (toolbar zoom/pan or code) are kept until the toolbar's
Home button, or :meth:`MetricsPlot.reset_view`, gives autoscaling back.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
from matplotlib.transforms import Bbox

from .decimate import Decimator
from .history import BatchTable, EpochTable, group_of

__all__ = ["MetricsPlot", "Plot"]

TRAIN, VAL, TEST, LR = "C0", "C1", "C2", "C4"
LR_KEY = "learning rate"  # its own axes, once it has changed: a step line on a log scale
RUN_COLORS = ("C0", "C3", "C2", "C4", "C1", "C5", "C6", "C8", "C9", "C7")  # one per run when comparing


class Plot:
    """Common part: the figure, its canvas, and the dirty flag the frame timer reads."""

    finishing = False  # see MetricsPlot.finishing

    def __init__(self, figure, canvas) -> None:
        self.figure = figure
        self.canvas = canvas
        self.dirty = False
        self.frames = 0
        self.full_draws = 0

    def artist_count(self) -> int:
        return sum(len(ax.get_children()) for ax in self.figure.axes)

    def close(self) -> None:
        self.figure.clear()


class _Panel:
    """One axes and its animated lines, for one metric group."""

    def __init__(self, ax, group: str) -> None:
        self.ax = ax
        self.group = group
        self.lines: dict[str, object] = {}  # name -> Line2D
        self.keys: set[str] = set()  # the metrics those lines show
        self.decimators: dict[str, Decimator] = {}
        self.background = None
        self.expected: tuple | None = None  # limits we set last; others mean the user changed them
        self.user_view = False
        self.still: list = []  # lines of finished runs kept for comparison (not animated)
        self.drawn_view: tuple | None = None  # what the pixels on screen were drawn for (tail blits)
        self.cell: Bbox | None = None  # its share of the figure (display pixels): axes, labels, title
        # Drawn without its legend yet: the box to put on the screen and its pixels so far (the
        # canvas meanwhile keeps what it showed, so a repaint of the window never finds it half done).
        self.half_drawn: tuple | None = None
        # name -> (line, what its data was made from, the y range it shows): unchanged lines are skipped
        self.fed: dict[str, tuple] = {}

    def remember_limits(self) -> None:
        self.expected = (self.ax.get_xlim(), self.ax.get_ylim())

    def user_changed_limits(self) -> bool:
        if self.expected is None:
            return False
        return not (_near(self.ax.get_xlim(), self.expected[0]) and _near(self.ax.get_ylim(), self.expected[1]))

    @property
    def log(self) -> bool:
        """Whether the y axis is logarithmic now: the window's toggle, or the user's own ``set_yscale``
        (autoscaling goes on in the user's scale until :meth:`MetricsPlot.reset_view`)."""
        return self.ax.get_yscale() == "log"

    def artists_gone(self, figure) -> bool:
        """Whether someone removed the axes or its lines (``ax.cla()``, ``figure.clear()``)."""
        return self.ax not in figure.axes or any(line.axes is not self.ax for line in self.lines.values())


class _Overlay:
    """A finished run kept on the axes for comparison (replays of several runs), in one colour."""

    def __init__(self, name: str, color: str, batches: BatchTable, epochs: EpochTable, tests: EpochTable) -> None:
        self.name = name
        self.color = color
        self.batches = batches
        self.epochs = epochs
        self.tests = tests
        self.keys = batches.metrics() + epochs.names() + tests.names()
        self.last_step = max((int(t.steps[-1]) for t in (batches, epochs, tests) if len(t)), default=0)


class MetricsPlot(Plot):
    """Training curves, one axes per metric group, blitted in steady state."""

    def __init__(self, figure, canvas) -> None:
        super().__init__(figure, canvas)
        self.log_scale = False
        self.label: str | None = None  # the current run's name in the legend when comparing runs
        self._exporting = False
        self.overlays: list[_Overlay] = []  # finished runs kept by keep_run (replays of several runs)
        self.panel_draws = 0  # axes drawn one at a time (staged full draws)
        self._renderer = None  # the renderer the axes were last drawn with (a new one is blank)
        figure.set_layout_engine("none")  # the axes sit in a fixed grid (_place_axes)
        self._draw_cid = canvas.mpl_connect("draw_event", self._on_draw)
        self._resize_cid = canvas.mpl_connect("resize_event", lambda event: self._place_axes())
        self.reset(None)

    # -- data ------------------------------------------------------------------------------------
    def reset(self, start) -> None:
        """Forget the previous run and prepare for ``start`` (a StartEvent or None)."""
        self.batches = BatchTable()
        self.epochs = EpochTable()
        self.tests = EpochTable()
        self.lrs = EpochTable()  # (step, learning rate) where it changed and at each epoch's end
        self.planned_steps = None
        if start is not None and start.epochs and start.steps:
            self.planned_steps = (start.epochs - start.initial_epoch) * start.steps
        self.nonfinite: set[str] = set()
        # The last run's axes, kept for a next run of the same metrics (a notebook cell run again):
        # its limits stay while the new data fits them, so the run starts without drawing axes anew.
        for panel in getattr(self, "_stale", ()):  # half drawn for limits set meanwhile: drawn anew
            panel.background = panel.half_drawn = None
        last = getattr(self, "panels", None) or getattr(self, "_spare", {})  # (reset twice before data)
        self._spare: dict[str, _Panel] = last if self.label is None and not self.overlays else {}
        self.panels: dict[str, _Panel] = {}
        self._groups: dict[str, list[str]] = {}
        for overlay in self.overlays:
            self._note_keys(overlay.keys)
        self._layout_dirty = True
        self._needs_full = True
        self._last_shrink = 0.0
        self._needs_shrink_check = False
        self._fit_view = False  # the run is over: fit the y limits to the data at the next frame
        self.ended = False  # the run is over: the x axis spans the steps it took
        self.limits_pending = False
        self._changed_from: float | None = None  # smallest step whose drawing changed since the last frame
        self._legend_stale: set[_Panel] = set()  # lines joined these axes: their legends need a draw
        self._stale: list[_Panel] = []  # axes to draw anew, one per frame while training (staged)
        self._blank = True  # the figure's background must be painted before the first axes
        self.dirty = True

    def keep_run(self) -> None:
        """Keep the current run's curves on the axes, still and in their own colour, and start
        afresh for the next run (replays of several runs for comparison; live runs never do)."""
        if len(self.batches) or len(self.epochs) or len(self.tests):
            n = len(self.overlays)
            self.overlays.append(_Overlay(self.label or f"run {n + 1}", RUN_COLORS[n % len(RUN_COLORS)],
                                          self.batches, self.epochs, self.tests))
        self.reset(None)

    def apply(self, update) -> None:
        if update.start is not None:
            self.reset(update.start)
        chunk = update.batches
        if chunk is not None and len(chunk.steps):
            seen = len(self.batches)
            first = self.batches.extend(chunk.steps, chunk.values, chunk.smoothed)
            self._changed(self.batches.steps[max(first - 1, 0)])  # from the point the new ones join
            if first < seen:  # late rows were merged in the middle: recompute decimation
                for panel in self.panels.values():
                    for dec in panel.decimators.values():
                        dec.reset()
            self._note_keys(chunk.values)
        for key in update.nonfinite:
            self._flag(key)
        for ev in update.epochs:
            self._changed(_before(self.epochs.steps, ev.step))
            self.epochs.add(ev.step, ev.epoch, ev.values)
            self._note_keys(ev.values)
            self._needs_shrink_check = True
        for ev in update.tests:
            values = {"test_" + k: v for k, v in ev.values.items()}
            self._changed(_before(self.tests.steps, ev.step))
            self.tests.add(ev.step, ev.epoch, values)
            self._note_keys(values)
        if update.lrs:
            for step, lr in update.lrs:
                self._changed(_before(self.lrs.steps, step))
                self.lrs.add(step, 0, {LR_KEY: lr})
            if LR_KEY not in self._groups and np.ptp(self.lrs.column(LR_KEY)) > 0:
                self._note_keys([LR_KEY])  # shown once it changes: a constant one is in the progress line
        self.dirty = True

    def run_over(self) -> None:
        """The run ended: the next frame fits the y limits to its data (while it ran they grew
        with headroom for the curves to go on; now nothing will come), and the x limits to its
        steps when none were planned (they grew by doubling)."""
        self._fit_view = True
        self.ended = True
        self.dirty = True

    def _changed(self, step) -> None:
        step = float(step)
        if self._changed_from is None or step < self._changed_from:
            self._changed_from = step

    def _flag(self, key: str) -> None:
        if key not in self.nonfinite:
            self.nonfinite.add(key)
            self._needs_full = True  # the title says so

    def _note_keys(self, keys) -> None:
        for key in keys:
            group = group_of(key)
            members = self._groups.setdefault(group, [])
            if key not in members:
                members.append(key)
                panel = self.panels.get(group)
                if panel is not None and not self._layout_dirty:
                    self._join(panel, key)
                else:
                    self._layout_dirty = True

    def _join(self, panel: _Panel, key: str) -> None:
        """A new metric of a group on show (``val_loss`` after ``loss``): its lines join the axes
        at once (blitted); the legend, in the background, waits for the next full draw, which
        the window may put off, instead of a new layout and a full draw now."""
        if key in panel.keys:
            return  # axes kept from the last run have its lines already
        kept = dict(panel.decimators)
        self._make_lines(panel, [key])
        panel.decimators.update(kept)
        panel.ax.legend(loc="best", fontsize="small", framealpha=0.6)
        self._legend_stale.add(panel)

    # -- view --------------------------------------------------------------------------------------
    def set_log_scale(self, on: bool) -> None:
        self.log_scale = bool(on)
        for panel in self.panels.values():
            if panel.group == LR_KEY:
                continue  # always logarithmic
            panel.ax.set_yscale("log" if on else "linear", nonpositive="mask") if on else panel.ax.set_yscale("linear")
            panel.user_view = False
            panel.expected = None  # the new scale is ours, not the user's
            for dec in panel.decimators.values():
                dec.reset()
        self._needs_full = True
        self.dirty = True

    def reset_view(self) -> None:
        """Give the limits back to autoscaling (the toolbar's Home button), and the y scale to ours."""
        for panel in self.panels.values():
            panel.user_view = False
            panel.expected = None
            log = self.log_scale or panel.group == LR_KEY
            if panel.ax.get_yscale() != ("log" if log else "linear"):
                panel.ax.set_yscale("log", nonpositive="mask") if log else panel.ax.set_yscale("linear")
        self._needs_full = True
        self.dirty = True

    def _build_layout(self) -> None:
        groups = sorted(self._groups, key=lambda g: (g != "loss", list(self._groups).index(g)))
        if not groups and self._spare:
            return  # a new run without data yet: the last run's axes wait for its metric names
        spare, self._spare = self._spare, {}
        if self._reuse(spare, groups):
            return
        self.figure.clear()
        self.panels = {}
        n = len(groups)
        if n == 0:
            return
        cols = 1 if n == 1 else 2
        rows = math.ceil(n / cols)
        for i, group in enumerate(groups):
            ax = self.figure.add_subplot(rows, cols, i + 1)
            panel = _Panel(ax, group)
            self._make_lines(panel, self._groups[group])
            for overlay in self.overlays:
                self._overlay_lines(panel, overlay)
            ax.grid(alpha=0.3)
            ax.set_xlabel("step")
            if self.log_scale or group == LR_KEY:
                ax.set_yscale("log", nonpositive="mask")
            ax.legend(loc="best", fontsize="small", framealpha=0.6)
            self.panels[group] = panel
        self._place_axes()
        for panel in self.panels.values():
            panel.remember_limits()  # ours: a change before the first draw is the user's
        self._layout_dirty = False
        self._needs_full = True
        self._blank = True

    def _reuse(self, spare: dict[str, _Panel], groups: list[str]) -> bool:
        """Take the last run's axes for this run when it shows the same metric groups with no new
        metric (those the last run had, ``val_loss`` say, may come later), emptied of data."""
        if list(spare) != groups or self.label is not None or self.overlays:
            return False
        for group, panel in spare.items():
            if panel.artists_gone(self.figure) or not set(self._groups[group]) <= panel.keys:
                return False
        for panel in spare.values():
            for line in panel.lines.values():
                line.set_data([], [])
            panel.fed.clear()
            for dec in panel.decimators.values():
                dec.reset()
            panel.user_view = False
            panel.remember_limits()  # they are ours now, kept while the data fits them
            panel.drawn_view = None  # the screen shows the last run's lines: the next blit is whole
        self.panels = spare
        self._layout_dirty = False
        self._needs_full = False
        return True

    # Margins around each axes in its grid cell, in points: tick labels and the x label below,
    # y tick labels on the left, the title on top. Fixed, so that no layout pass (~150 ms with
    # constrained layout) is needed and one axes can be drawn without the others.
    MARGINS = {"left": 44.0, "right": 16.0, "bottom": 32.0, "top": 20.0}

    def _place_axes(self) -> None:
        """Put the axes in a grid of 1 or 2 columns, each in its cell with ``MARGINS``."""
        panels = list(self.panels.values())
        if not panels:
            return
        fig = self.figure.bbox
        cols = 1 if len(panels) == 1 else 2
        rows = math.ceil(len(panels) / cols)
        w, h = fig.width / cols, fig.height / rows
        px = self.figure.dpi / 72
        m = {k: v * px for k, v in self.MARGINS.items()}
        for i, panel in enumerate(panels):
            r, c = divmod(i, cols)
            x0, y0 = fig.x0 + c * w, fig.y0 + (rows - 1 - r) * h
            panel.cell = Bbox.from_bounds(x0, y0, w, h)
            aw, ah = max(w - m["left"] - m["right"], 10.0), max(h - m["bottom"] - m["top"], 10.0)
            panel.ax.set_position([(x0 + m["left"] - fig.x0) / fig.width, (y0 + m["bottom"] - fig.y0) / fig.height,
                                   aw / fig.width, ah / fig.height])
            panel.background = None
            panel.half_drawn = None
        self._blank = True

    def _make_lines(self, panel: _Panel, keys: list[str]) -> None:
        ax = panel.ax
        train, val, test = TRAIN, VAL, TEST
        run = None  # comparing runs: one colour per run, legend entries "run: key"
        if self.label is not None or self.overlays:
            n = len(self.overlays)
            train = val = test = RUN_COLORS[n % len(RUN_COLORS)]
            run = self.label or f"run {n + 1}"
        for key in keys:
            named = key if run is None else f"{run}: {key}"
            if key == LR_KEY:
                color = LR if run is None else train
                panel.lines["l:" + key] = ax.plot([], [], "-", drawstyle="steps-post", color=color, lw=1.4,
                                                  label=named, animated=True)[0]
            elif key.startswith("val_"):
                panel.lines["e:" + key] = ax.plot([], [], "s--", color=val, ms=5, lw=1.2, label=named, animated=True)[0]
            elif key.startswith("test_"):
                panel.lines["t:" + key] = ax.plot([], [], "D", color=test, ms=6, label=named, animated=True)[0]
            else:
                panel.lines["b:" + key] = ax.plot([], [], "-", color=train, lw=0.7, alpha=0.45, animated=True,
                                                  label=f"{key} (batch)" if run is None else "_batch")[0]
                panel.lines["s:" + key] = ax.plot([], [], "-", color=train, lw=1.6, animated=True,
                                                  label=f"{key} (smoothed)" if run is None else named)[0]
                panel.lines["e:" + key] = ax.plot([], [], "o", color=train, mec="white", ms=6, animated=True,
                                                  label=f"{key} (epoch)" if run is None else "_epoch")[0]
        if keys:
            ax.set_title(panel.group, y=1.0)  # a fixed place: no tick bounding boxes to measure per draw
        panel.keys.update(keys)
        for name in panel.lines:
            if name[0] in "bs":
                panel.decimators[name] = Decimator()

    def _overlay_lines(self, panel: _Panel, ov: _Overlay) -> None:
        """Still lines of a kept run: smoothed batch values, epoch dots, val and test values."""
        ax, style = panel.ax, {"color": ov.color, "alpha": 0.75}
        for key in self._groups[panel.group]:
            if key.startswith("test_"):
                if key in ov.tests.names():
                    panel.still += ax.plot(ov.tests.steps, ov.tests.column(key), "D", ms=5,
                                           label=f"{ov.name}: {key}", **style)
            elif key.startswith("val_"):
                if key in ov.epochs.names():
                    panel.still += ax.plot(ov.epochs.steps, ov.epochs.column(key), "s--", ms=4, lw=1.0,
                                           label=f"{ov.name}: {key}", **style)
            else:
                batch = key in ov.batches.metrics()
                if batch:
                    panel.still += ax.plot(ov.batches.steps, ov.batches.smoothed(key), "-", lw=1.3,
                                           label=f"{ov.name}: {key}", **style)
                if key in ov.epochs.names():
                    panel.still += ax.plot(ov.epochs.steps, ov.epochs.column(key), "o", ms=4,
                                           label="_epoch" if batch else f"{ov.name}: {key}", **style)

    def _still_range(self, panel: _Panel, yr: tuple[float, float] | None) -> tuple[float, float] | None:
        """``yr`` widened to the kept runs' lines of ``panel``."""
        ranges = [yr] + [_finite_range(line.get_ydata(), panel.log) for line in panel.still]
        return _union(ranges)

    def _table(self, kind: str):
        """The table a line of this kind (``b``, ``s``, ``e``, ``t`` or ``l``) draws from."""
        if kind == "l":
            return self.lrs
        return self.batches if kind in "bs" else (self.tests if kind == "t" else self.epochs)

    def _line_data(self, panel: _Panel, name: str, x0: float, x1: float, columns: int):
        kind, key = name.split(":", 1)
        if kind in "bs":
            if key not in self.batches.names():
                return (), ()
            y = self.batches.column(key) if kind == "b" else self.batches.smoothed(key)
            return panel.decimators[name].decimate(self.batches.steps, y, x0, x1, columns)
        table = self._table(kind)
        if key not in table.names():
            return (), ()
        return table.steps, table.column(key)

    def _update_lines(self, panel: _Panel) -> tuple[float, float] | None:
        """Give every line of ``panel`` its data for the current view; returns the y range shown.

        A line whose table has not changed since, for the same view (batch lines) and scale,
        keeps its data and its range: most frames bring new batches, not new epochs.
        """
        x0, x1 = panel.ax.get_xlim()
        columns = max(int(panel.ax.bbox.width), 50)
        log = panel.log
        ranges = []
        for name, line in panel.lines.items():
            kind = name[0]
            source = (self._table(kind).version, log, (x0, x1, columns) if kind in "bs" else None)
            fed = panel.fed.get(name)
            if fed is None or fed[0] is not line or fed[1] != source:
                x, y = self._line_data(panel, name, x0, x1, columns)
                _set_exact(line, x, y)
                fed = panel.fed[name] = (line, source, _finite_range(y, log))
            ranges.append(fed[2])
        return _union(ranges)

    def _last_step(self) -> int:
        last = 0
        if len(self.batches):
            last = int(self.batches.steps[-1])
        if len(self.epochs):
            last = max(last, int(self.epochs.steps[-1]))
        if len(self.tests):
            last = max(last, int(self.tests.steps[-1]))
        for overlay in self.overlays:
            last = max(last, overlay.last_step)
        return last

    def _wanted_limits(self, panel: _Panel, shrink: bool):
        """New ``(xlim, ylim)`` that fit the data (growing with headroom), or None to keep them.

        When the x limits stay, the lines get their data for the current view on the way.
        """
        ax = panel.ax
        last = self._last_step()
        x0, x1 = ax.get_xlim()
        planned = self.planned_steps
        if planned and self.overlays:  # comparing: the kept runs are whole, they fit as planned
            planned = max(planned, max(overlay.last_step for overlay in self.overlays))
        if self.ended:  # the run is over: the steps it took (fewer than planned if it ended early)
            want_x = (0.0, float(max(last, 1)))
        elif planned and last <= planned:
            want_x = (0.0, float(planned))
        elif x0 == 0 and 1 < x1 and last <= x1:
            want_x = (x0, x1)  # still room: keep the limits
        else:
            want_x = (0.0, float(2 ** math.ceil(math.log2(max(last * 1.25, 8)))))  # grow with headroom
        if want_x == (x0, x1):
            yr = self._update_lines(panel)
        else:
            yr = self._data_range(panel, *want_x)
        if panel.still:
            yr = self._still_range(panel, yr)
        y0, y1 = ax.get_ylim()
        want_y = (y0, y1)
        if yr is not None:
            lo, hi = yr
            outside = lo < y0 or hi > y1
            loose = shrink and (hi - lo) < 0.35 * (y1 - y0)
            fit = loose or self._fit_view or self._needs_full
            if outside or fit or (panel.log and y0 <= 0):  # (the user's log scale)
                # The data left the limits: they grow with 3 times the headroom on that side (the
                # curve goes on that way, so the next new limits and their draw come later).
                growing = outside and not fit
                more_lo = 3.0 if growing and lo < y0 else 1.0
                more_hi = 3.0 if growing and hi > y1 else 1.0
                if panel.log:
                    pad = (hi / lo) ** 0.15 if hi > lo else 2.0
                    want_y = (lo / pad ** more_lo, hi * pad ** more_hi)
                else:
                    pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 0.1)
                    want_y = (lo - pad * more_lo, hi + pad * more_hi)
                    if lo >= 0:  # losses, accuracies: no room below 0, nor above 1 for scores in [0, 1]
                        floor = max(want_y[0], -0.03 * want_y[1])
                        ceiling = min(want_y[1], 1 + 0.03 * (1 - floor)) if hi <= 1 else want_y[1]
                        want_y = (floor, ceiling)
                if _near(want_y, (y0, y1)):
                    want_y = (y0, y1)
        if want_x == (x0, x1) and want_y == (y0, y1):
            return None
        return want_x, want_y

    def _data_range(self, panel: _Panel, x0: float, x1: float) -> tuple[float, float] | None:
        """Smallest and largest finite value of the panel's lines over ``[x0, x1]`` (raw data)."""
        ranges = []
        for name in panel.lines:
            kind, key = name.split(":", 1)
            table = self._table(kind)
            if key in table.names():
                values = table.smoothed(key) if kind == "s" else table.column(key)
                i, j = np.searchsorted(table.steps, x0), np.searchsorted(table.steps, x1, side="right")
                ranges.append(_finite_range(values[i:j], panel.log))
        return _union(ranges)

    # -- drawing ---------------------------------------------------------------------------------
    def draw_frame(self, force_full: bool = False, allow_full: bool = True, staged: bool = False) -> str | None:
        """Draw what changed; returns 'full', 'part', 'blit' or None (nothing to do).

        ``allow_full=False`` defers new axis limits (the lines are clipped meanwhile) so
        that the window can bound how often axes are drawn anew; ``limits_pending`` then
        says such a draw is wanted. ``staged``: axes that must be drawn anew are drawn one
        per call ('part' while more wait, 'full' with the last), the others blitted; else
        the whole figure is drawn at once ('full').
        """
        if not (self.dirty or force_full or self._needs_full or self.limits_pending or self._stale):
            return None
        self.dirty = False
        if self._layout_dirty or any(p.artists_gone(self.figure) for p in self.panels.values()):
            self._build_layout()  # new metrics, or the user cleared our axes: lay them out anew
            if staged and not force_full and self.panels and self._needs_full:
                self.dirty = True
                return "part"  # that was this frame's work: the axes are drawn from the next one on
        stale = self._stale
        if force_full or self._needs_full:
            stale[:] = self.panels.values()
        now = time.monotonic()
        shrink = self._needs_shrink_check and now - self._last_shrink > 10.0
        wanted = {}
        for panel in self.panels.values():
            if not panel.user_view and panel.user_changed_limits():
                panel.user_view = True
            if panel.user_view:
                continue
            want = self._wanted_limits(panel, shrink)
            if want is not None:
                wanted[panel] = want
            title = panel.group + ("  (non-finite values shown as gaps)" if any(
                group_of(k) == panel.group for k in self.nonfinite) else "")
            if panel.ax.get_title() != title:
                panel.ax.set_title(title, color="C3" if title != panel.group else "black", y=1.0)
                _add(stale, panel)
        self._needs_full = False
        for panel in self.panels.values():
            if panel.background is None:
                _add(stale, panel)
        pending = bool(wanted) or bool(self._legend_stale)
        # Axes are drawn anew anyway (a new scale, say): every axes gets the limits it wants now.
        self.limits_pending = pending and not (force_full or allow_full or stale)
        if pending and not self.limits_pending:
            for panel, (xlim, ylim) in wanted.items():
                panel.ax.set_xlim(*xlim)
                panel.ax.set_ylim(*ylim)
                panel.half_drawn = None  # drawn for the old limits: again
                _add(stale, panel)
            for panel in self._legend_stale:
                _add(stale, panel)
            self._legend_stale = set()
        for panel in self.panels.values():
            panel.remember_limits()
        if shrink and not self.limits_pending:
            self._last_shrink = now
            self._needs_shrink_check = False
        if not self.limits_pending:
            self._fit_view = False
        self.frames += 1
        if stale and staged and not force_full and self.canvas.get_renderer() is not self._renderer:
            self._blank = True  # a new buffer (the canvas changed size): nothing on it yet
            for panel in stale:
                panel.half_drawn = None
        if stale and (force_full or not staged or self._blank and len(stale) < len(self.panels)):
            self._changed_from = None
            self.full_draws += 1
            self.canvas.draw()  # _on_draw saves backgrounds, draws the lines and empties the stale list
            return "full"
        if stale:  # staged: (half of) one axes is this frame's work; the others catch up afterwards
            if self._draw_panel(stale[0]):
                stale.pop(0)
            self.dirty = True
            if stale:
                return "part"
            self.full_draws += 1
            return "full"
        changed_from, self._changed_from = self._changed_from, None
        for panel in self.panels.values():
            if panel.user_view or (panel in wanted and wanted[panel][0] != panel.ax.get_xlim()):
                self._update_lines(panel)  # data for the view as it is (else done in _wanted_limits)
            if self._blit_tail(panel, changed_from):
                continue
            self.canvas.restore_region(panel.background)
            for line in panel.lines.values():
                panel.ax.draw_artist(line)
            self.canvas.blit(panel.ax.bbox)
            panel.drawn_view = self._view_of(panel)
        return "blit"

    @property
    def drawing(self) -> bool:
        """Whether axes are still being drawn anew, one per frame (a staged full draw)."""
        return bool(self._stale)

    @property
    def finishing(self) -> bool:
        """Whether the run's last frame is still to come: limits to fit (:meth:`run_over`), or
        axes to draw anew. The window stages it, like the frames while the run went on."""
        return self._fit_view or bool(self._stale)

    def _draw_panel(self, panel: _Panel) -> bool:
        """Draw one axes anew in its cell, in two calls: the axes without its legend, then the
        legend; True when done (the second, or the only one without a legend).

        The figure's background is painted over the cell first (over the whole figure
        after a new layout), then the axes is drawn; when it is whole its blitting
        background is saved, the lines drawn and the cell put on the screen. Between the
        two calls the canvas holds the cell as it was: anything that repaints the window
        then (an expose, a grab) shows the last whole frame, not an axes without lines
        (a blank canvas, after a new layout, keeps the first step's figure background).
        """
        renderer = self.canvas.get_renderer()
        legend = panel.ax.get_legend()
        if panel.half_drawn is not None and legend is not None:
            (box, pixels), panel.half_drawn = panel.half_drawn, None
            self.canvas.restore_region(pixels)
            legend.draw(renderer)  # drawn last by the axes too: the same pixels as in one go
        else:
            blank, self._blank = self._blank, False
            box = self.figure.bbox if blank else panel.cell
            halves = legend is not None and legend.get_visible()
            # A blank canvas has no whole frame to keep: this step's painting of the whole figure
            # stays (the cells of no axes get it only here).
            shown = self.canvas.copy_from_bbox(box) if halves and not blank else None
            patch = self.figure.patch
            clip = patch.get_clip_box()
            patch.set_clip_box(box)
            patch.draw(renderer)
            patch.set_clip_box(clip)
            self._renderer = renderer
            if halves:
                legend.set_visible(False)
                try:
                    panel.ax.draw(renderer)
                finally:
                    legend.set_visible(True)
                panel.half_drawn = (box, self.canvas.copy_from_bbox(box))
                if shown is not None:
                    self.canvas.restore_region(shown)
                return False
            panel.ax.draw(renderer)
        self._save_panel(panel)
        self.panel_draws += 1
        self.canvas.blit(box)
        return True

    def _view_of(self, panel: _Panel) -> tuple:
        """What the pixels of a panel depend on besides its data."""
        ax = panel.ax
        return (ax.get_xlim(), ax.get_ylim(), tuple(ax.bbox.extents),
                tuple(dec.decimating for dec in panel.decimators.values()), len(panel.lines))

    def _blit_tail(self, panel: _Panel, changed_from: float | None) -> bool:
        """Redraw only the strip of ``panel`` from ``changed_from`` (a step) to the newest point.

        The lines only grow at their end while the view stays, so the strip is all that
        changed: its background is restored and every line is drawn clipped to it, which
        gives the same pixels as redrawing the whole axes, at a cost that does not grow with
        the points shown. False when the view changed since the panel was last drawn.
        """
        if panel.background is None or panel.drawn_view != self._view_of(panel):
            return False
        if changed_from is None:
            return True  # no new points: the pixels on screen are current
        ax, box = panel.ax, panel.ax.bbox
        top = ax.get_ylim()[1]
        (px0, _), (px1, _) = ax.transData.transform([(changed_from, top), (self._last_step(), top)])
        pad = 3 + max((line.get_linewidth() + line.get_markersize() + line.get_markeredgewidth()
                       for line in panel.lines.values()), default=0) * self.figure.dpi / 72
        bx0, by0, bx1, by1 = panel.background.get_extents()  # buffer pixels, rows from the top
        x0 = max(int(math.floor(px0 - pad)), bx0)
        x1 = min(int(math.ceil(px1 + pad)), bx1)
        if x1 <= x0:
            return True
        height = self.canvas.get_renderer().height
        strip = Bbox([[x0, height - by1], [x1, height - by0]])
        # Lines are clipped one column left of the strip (a clip edge shades its own column a
        # little differently); that column, unchanged, gets its pixels back afterwards.
        left = self.canvas.copy_from_bbox(Bbox([[x0 - 1, height - by1], [x0, height - by0]]))
        # Agg's rectangle is inclusive; xy: where the saved region's corner goes (in place).
        self.canvas.restore_region(panel.background, bbox=(x0, by0, x1 - 1, by1 - 1), xy=(bx0, by0))
        clip = Bbox.intersection(Bbox([[x0 - 1, height - by1], [x1, height - by0]]), box) or strip
        # Long solid lines are drawn from a few pixels left of the strip on (Agg strokes every
        # vertex it is given, clipped or not); dashed ones whole, their dash pattern starts at
        # their first point. Over 1,000 points Matplotlib draws a new (simplified) path of the
        # visible part, so those are drawn whole too.
        x_from = ax.transData.inverted().transform([(x0 - 5, 0)])[0][0]
        for line in panel.lines.values():
            x, y = line.get_xdata(), line.get_ydata()
            if not len(x) or x[-1] < x_from:
                continue  # ends left of the strip (points are in step order)
            cut = 0
            if line.get_linestyle() == "-" and 64 < len(x) <= 1000:
                cut = max(int(np.searchsorted(x, x_from)) - 1, 0)
            if cut:
                _set_exact(line, x[cut:], y[cut:])
            saved = line.get_clip_box()
            line.set_clip_box(clip)
            ax.draw_artist(line)
            line.set_clip_box(saved)
            if cut:
                _set_exact(line, x, y)
        self.canvas.restore_region(left)
        self.canvas.blit(strip)
        return True

    @contextlib.contextmanager
    def exporting(self):
        """``savefig`` meanwhile: its draws (on other canvases too) keep the blitting backgrounds."""
        self._exporting = True
        try:
            yield
        finally:
            self._exporting = False

    def _on_draw(self, event) -> None:
        """After every full draw (ours, a resize, the toolbar's zoom): save backgrounds, draw lines."""
        if self._exporting:
            return
        if event.canvas is not self.canvas or self.canvas.is_saving():  # the user's own savefig
            self._needs_full = True  # it drew at another size (or elsewhere): the screen needs a full draw
            return
        for panel in self.panels.values():
            if panel.ax.figure is self.figure:
                self._save_panel(panel)
        self._stale.clear()
        self._blank = False
        self._renderer = self.canvas.get_renderer()

    def _save_panel(self, panel: _Panel) -> None:
        """Just after ``panel``'s axes was drawn: save its background and draw its lines on it."""
        panel.half_drawn = None
        self._update_lines(panel)
        panel.background = self.canvas.copy_from_bbox(panel.ax.bbox)
        for line in panel.lines.values():
            panel.ax.draw_artist(line)
        panel.drawn_view = self._view_of(panel)

    def close(self) -> None:
        self.canvas.mpl_disconnect(self._draw_cid)
        self.canvas.mpl_disconnect(self._resize_cid)
        super().close()

    # -- what is shown (used by tests and export) -----------------------------------------------
    def shown(self) -> dict[str, dict[str, int]]:
        """Counts of the data points held per metric: batch rows, epoch rows, test rows."""
        out: dict[str, dict[str, int]] = {}
        for key in self.batches.metrics():
            out.setdefault(key, {})["batches"] = int(np.isfinite(self.batches.column(key)).sum())
        for key in self.epochs.names():
            out.setdefault(key, {})["epochs"] = int(np.isfinite(self.epochs.column(key)).sum())
        for key in self.tests.names():
            out.setdefault(key, {})["tests"] = int(np.isfinite(self.tests.column(key)).sum())
        return out


def _add(items: list, item) -> None:
    if item not in items:
        items.append(item)


def _before(steps: np.ndarray, step: int) -> float:
    """The step of the row a new row at ``step`` follows (lines connect them), or ``step`` itself."""
    i = int(np.searchsorted(steps, step))
    return float(steps[i - 1]) if i else float(step)


def _near(a, b) -> bool:
    """``np.allclose`` for two pairs of limits, without numpy's cost per call (a few per frame)."""
    return all(abs(p - q) <= 1e-8 + 1e-5 * abs(q) for p, q in zip(a, b, strict=True))


def _finite_range(y, log: bool) -> tuple[float, float] | None:
    """Smallest and largest finite value of ``y`` (positive only on a log scale), or None."""
    if not len(y):
        return None
    y = np.asarray(y, float)
    y = y[np.isfinite(y) & ((y > 0) if log else True)]
    return (float(y.min()), float(y.max())) if len(y) else None


def _union(ranges) -> tuple[float, float] | None:
    """The range covering every ``(lo, hi)`` given (Nones skipped), or None."""
    ranges = [r for r in ranges if r is not None]
    if not ranges:
        return None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def _set_exact(line, x, y) -> None:
    """Give ``line`` its points, drawn as they are: no path simplification (they are decimated
    already), so that drawing a piece of the line gives the pixels of drawing all of it."""
    line.set_data(x, y)
    line.get_path().should_simplify = False
