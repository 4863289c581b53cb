"""Matplotlib plots of the monitor window (main thread only).

A plot owns the figure's axes and artists, takes refined updates with
``apply`` (cheap: it only stores data) and draws at most once per frame with
``draw_frame`` when the window's frame timer says so:

* :class:`SinePlot`: the demo's one curve, redrawn in place (one Line2D, new data
  and colour per update);
* :class:`MetricsPlot`: one axes per metric group (``loss`` with ``val_loss``...).
  Batch values are drawn faint with their moving average on top, epoch values as
  markers, ``val_`` values as a dashed line with markers. Lines are *animated*:
  a steady-state frame restores each axes' saved background and blits only the
  lines (``draw_artist`` + ``blit``); a full ``canvas.draw()`` happens only when
  axis limits must change (they grow with headroom), on zoom or pan, and on
  layout changes. Lines are min/max decimated per pixel column of the visible
  range (:mod:`kerasqt.decimate`), recomputed when the view changes.

Limits the user sets (toolbar zoom/pan or code) are kept until the toolbar's
Home button, or :meth:`MetricsPlot.reset_view`, gives autoscaling back.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .decimate import Decimator
from .history import BatchTable, EpochTable, group_of

__all__ = ["MetricsPlot", "SinePlot"]

TRAIN, VAL, TEST = "C0", "C1", "C2"


class Plot:
    """Common part: the figure, its canvas, and the dirty flag the frame timer reads."""

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


class SinePlot(Plot):
    """The sine demo: one axes, one line updated in place."""

    def __init__(self, figure, canvas) -> None:
        super().__init__(figure, canvas)
        figure.clear()
        self.ax = figure.add_subplot(1, 1, 1)
        (self.line,) = self.ax.plot([], [], lw=1.8)
        self.ax.set_xlabel("x")
        self.ax.set_ylabel("sin(x)")
        self.ax.set_ylim(-1.15, 1.15)
        self.ax.set_xlim(0, math.pi)
        self.ax.grid(alpha=0.3)
        self.ax.set_title("sine demo: press start threads")
        self.curves = 0
        self.last = None

    def apply(self, update) -> None:
        if not update.curves:
            return
        self.curves += len(update.curves)
        self.last = curve = update.curves[-1]
        self.line.set_data(curve.x, curve.y)
        self.line.set_color(curve.color)
        self.ax.set_xlim(0, max(float(curve.x[-1]), 1e-9))
        self.ax.set_title(f"curve {curve.index + 1}: {curve.periods} half-periods of sin, "
                          f"receiver batch {update.batch + 1}, colour {curve.color}")
        self.dirty = True

    limits_pending = False

    def draw_frame(self, force_full: bool = False, allow_full: bool = True) -> str | None:
        if not (self.dirty or force_full):
            return None
        self.dirty = False
        self.canvas.draw_idle()
        self.frames += 1
        self.full_draws += 1
        return "full"


class _Panel:
    """One axes and its animated lines, for one metric group."""

    def __init__(self, ax, group: str) -> None:
        self.ax = ax
        self.group = group
        self.lines: dict[str, object] = {}  # name -> Line2D
        self.decimators: dict[str, Decimator] = {}
        self.background = None
        self.expected: tuple | None = None  # limits we set last; others mean the user changed them
        self.user_view = False
        self.flagged = False

    def remember_limits(self) -> None:
        self.expected = (self.ax.get_xlim(), self.ax.get_ylim())

    def user_changed_limits(self) -> bool:
        if self.expected is None:
            return False
        return not (np.allclose(self.ax.get_xlim(), self.expected[0]) and
                    np.allclose(self.ax.get_ylim(), self.expected[1]))


class MetricsPlot(Plot):
    """Training curves, one axes per metric group, blitted in steady state."""

    def __init__(self, figure, canvas) -> None:
        super().__init__(figure, canvas)
        self.log_scale = False
        self._draw_cid = canvas.mpl_connect("draw_event", self._on_draw)
        self._resize_cid = canvas.mpl_connect("resize_event", lambda event: self._relayout())
        self.reset(None)

    # -- data ------------------------------------------------------------------------------------
    def reset(self, start) -> None:
        """Forget the previous run and prepare for ``start`` (a StartEvent or None)."""
        self.batches = BatchTable()
        self.epochs = EpochTable()
        self.tests = EpochTable()
        self.planned_steps = None
        if start is not None and start.epochs and start.steps:
            self.planned_steps = (start.epochs - start.initial_epoch) * start.steps
        self.nonfinite: set[str] = set()
        self.panels: dict[str, _Panel] = {}
        self._groups: dict[str, list[str]] = {}
        self._layout_dirty = True
        self._needs_full = True
        self._last_shrink = 0.0
        self._needs_shrink_check = False
        self.limits_pending = False
        self.dirty = True

    def apply(self, update) -> None:
        if update.start is not None:
            self.reset(update.start)
        chunk = update.batches
        if chunk is not None and len(chunk.steps):
            seen = len(self.batches)
            first = self.batches.extend(chunk.steps, chunk.values, chunk.smoothed)
            if first < seen:  # late rows were merged in the middle: recompute decimation
                for panel in self.panels.values():
                    for dec in panel.decimators.values():
                        dec.reset()
            self._note_keys(chunk.values)
        for key in update.nonfinite:
            self._flag(key)
        for ev in update.epochs:
            self.epochs.add(ev.step, ev.epoch, ev.values)
            self._note_keys(ev.values)
            self._needs_shrink_check = True
        for ev in update.tests:
            values = {"test_" + k: v for k, v in ev.values.items()}
            self.tests.add(ev.step, ev.epoch, values)
            self._note_keys(values)
        self.dirty = True

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
                self._layout_dirty = True

    # -- view --------------------------------------------------------------------------------------
    def set_log_scale(self, on: bool) -> None:
        self.log_scale = bool(on)
        for panel in self.panels.values():
            panel.ax.set_yscale("log" if on else "linear", nonpositive="mask") if on else panel.ax.set_yscale("linear")
            panel.user_view = False
            for dec in panel.decimators.values():
                dec.reset()
        self._needs_full = True
        self.dirty = True

    def reset_view(self) -> None:
        """Give the limits back to autoscaling (the toolbar's Home button)."""
        for panel in self.panels.values():
            panel.user_view = False
        self._needs_full = True
        self.dirty = True

    def _build_layout(self) -> None:
        self.figure.clear()
        self.panels = {}
        groups = sorted(self._groups, key=lambda g: (g != "loss", list(self._groups).index(g)))
        n = len(groups)
        if n == 0:
            return
        cols = 1 if n == 1 else 2
        rows = math.ceil(n / cols)
        for i, group in enumerate(groups):
            ax = self.figure.add_subplot(rows, cols, i + 1)
            panel = _Panel(ax, group)
            self._make_lines(panel, self._groups[group])
            ax.grid(alpha=0.3)
            ax.set_xlabel("step")
            if self.log_scale:
                ax.set_yscale("log", nonpositive="mask")
            ax.legend(loc="best", fontsize="small", framealpha=0.6)
            self.panels[group] = panel
        self._layout_dirty = False
        self._needs_full = True

    def _make_lines(self, panel: _Panel, keys: list[str]) -> None:
        ax = panel.ax
        for key in keys:
            if key.startswith("val_"):
                panel.lines["e:" + key] = ax.plot([], [], "s--", color=VAL, ms=5, lw=1.2, label=key, animated=True)[0]
            elif key.startswith("test_"):
                panel.lines["t:" + key] = ax.plot([], [], "D", color=TEST, ms=6, label=key, animated=True)[0]
            else:
                panel.lines["b:" + key] = ax.plot([], [], "-", color=TRAIN, lw=0.7, alpha=0.45,
                                                  label=f"{key} (batch)", animated=True)[0]
                panel.lines["s:" + key] = ax.plot([], [], "-", color=TRAIN, lw=1.6,
                                                  label=f"{key} (smoothed)", animated=True)[0]
                panel.lines["e:" + key] = ax.plot([], [], "o", color=TRAIN, mec="white", ms=6,
                                                  label=f"{key} (epoch)", animated=True)[0]
            ax.set_title(panel.group)
        for name in panel.lines:
            if name[0] in "bs":
                panel.decimators[name] = Decimator()

    def _line_data(self, panel: _Panel, name: str, x0: float, x1: float, columns: int):
        kind, key = name.split(":", 1)
        if kind in "bs":
            if key not in self.batches.names():
                return (), ()
            y = self.batches.column(key) if kind == "b" else self.batches.smoothed(key)
            return panel.decimators[name].decimate(self.batches.steps, y, x0, x1, columns)
        table = self.tests if kind == "t" else self.epochs
        if key not in table.names():
            return (), ()
        return table.steps, table.column(key)

    def _update_lines(self, panel: _Panel) -> tuple[float, float] | None:
        """Give every line of ``panel`` its data for the current view; returns the y range shown."""
        x0, x1 = panel.ax.get_xlim()
        columns = max(int(panel.ax.bbox.width), 50)
        lo, hi = math.inf, -math.inf
        for name, line in panel.lines.items():
            x, y = self._line_data(panel, name, x0, x1, columns)
            line.set_data(x, y)
            if len(y):
                y = np.asarray(y, float)
                y = y[np.isfinite(y) & ((y > 0) if self.log_scale else True)]
                if len(y):
                    lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
        return (lo, hi) if lo <= hi else None

    def _last_step(self) -> int:
        last = 0
        if len(self.batches):
            last = int(self.batches.steps[-1])
        if len(self.epochs):
            last = max(last, int(self.epochs.steps[-1]))
        if len(self.tests):
            last = max(last, int(self.tests.steps[-1]))
        return last

    def _wanted_limits(self, panel: _Panel, shrink: bool):
        """New ``(xlim, ylim)`` that fit the data (growing with headroom), or None to keep them.

        When the x limits stay, the lines get their data for the current view on the way.
        """
        ax = panel.ax
        last = self._last_step()
        x0, x1 = ax.get_xlim()
        if self.planned_steps and last <= self.planned_steps:
            want_x = (0.0, float(self.planned_steps))
        elif x0 == 0 and 1 < x1 and last <= x1:
            want_x = (x0, x1)  # still room: keep the limits
        else:
            want_x = (0.0, float(2 ** math.ceil(math.log2(max(last * 1.25, 8)))))  # grow with headroom
        if want_x == (x0, x1):
            yr = self._update_lines(panel)
        else:
            yr = self._data_range(panel, *want_x)
        y0, y1 = ax.get_ylim()
        want_y = (y0, y1)
        if yr is not None:
            lo, hi = yr
            outside = lo < y0 or hi > y1
            loose = shrink and (hi - lo) < 0.35 * (y1 - y0)
            if outside or loose or self._needs_full:
                if self.log_scale:
                    pad = (hi / lo) ** 0.15 if hi > lo else 2.0
                    want_y = (lo / pad, hi * pad)
                else:
                    pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 0.1)
                    want_y = (lo - pad, hi + pad)
                if np.allclose(want_y, (y0, y1)):
                    want_y = (y0, y1)
        if want_x == (x0, x1) and want_y == (y0, y1):
            return None
        return want_x, want_y

    def _data_range(self, panel: _Panel, x0: float, x1: float) -> tuple[float, float] | None:
        """Smallest and largest finite value of the panel's lines over ``[x0, x1]`` (raw data)."""
        lo, hi = math.inf, -math.inf
        for name in panel.lines:
            kind, key = name.split(":", 1)
            table = self.batches if kind in "bs" else (self.tests if kind == "t" else self.epochs)
            col = key + (BatchTable.SMOOTH if kind == "s" else "")
            if col not in table.names():
                continue
            steps = table.steps
            i, j = np.searchsorted(steps, x0), np.searchsorted(steps, x1, side="right")
            y = table.column(col)[i:j]
            y = y[np.isfinite(y) & ((y > 0) if self.log_scale else True)]
            if len(y):
                lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
        return (lo, hi) if lo <= hi else None

    # -- drawing ---------------------------------------------------------------------------------
    def draw_frame(self, force_full: bool = False, allow_full: bool = True) -> str | None:
        """Draw what changed; returns 'full', 'blit' or None (nothing to do).

        ``allow_full=False`` defers new axis limits (the lines are clipped meanwhile) so
        that the window can bound how often the expensive full draw happens;
        ``limits_pending`` then says a full draw is wanted.
        """
        if not (self.dirty or force_full or self._needs_full or self.limits_pending):
            return None
        self.dirty = False
        if self._layout_dirty:
            self._build_layout()
        full = force_full or self._needs_full
        if full:
            self._relayout()
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
                panel.ax.set_title(title, color="C3" if title != panel.group else "black")
                full = True
        self.limits_pending = bool(wanted) and not (full or allow_full)
        if wanted and not self.limits_pending:
            for panel, (xlim, ylim) in wanted.items():
                panel.ax.set_xlim(*xlim)
                panel.ax.set_ylim(*ylim)
            full = True
        for panel in self.panels.values():
            panel.remember_limits()
        if shrink and not self.limits_pending:
            self._last_shrink = now
            self._needs_shrink_check = False
        self.frames += 1
        if full or any(p.background is None for p in self.panels.values()):
            self._needs_full = False
            self.full_draws += 1
            self.canvas.draw()  # _on_draw saves backgrounds and draws the lines
            return "full"
        for panel in self.panels.values():
            if panel.user_view or panel in wanted:
                self._update_lines(panel)  # data for the view as it is
            self.canvas.restore_region(panel.background)
            for line in panel.lines.values():
                panel.ax.draw_artist(line)
            self.canvas.blit(panel.ax.bbox)
        return "blit"

    def _relayout(self) -> None:
        """Let the next full draw place the axes anew (constrained layout costs ~40 ms a draw)."""
        self.figure.set_layout_engine("constrained")

    def _on_draw(self, event) -> None:
        """After every full draw (ours, a resize, the toolbar's zoom): save backgrounds, draw lines."""
        for panel in self.panels.values():
            if panel.ax.figure is not self.figure:
                continue
            self._update_lines(panel)
            panel.background = self.canvas.copy_from_bbox(panel.ax.bbox)
            for line in panel.lines.values():
                panel.ax.draw_artist(line)
        if self.panels:
            self.figure.set_layout_engine("none")  # keep the positions just computed

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
