"""The plot's axes (main thread): one :class:`Panel` per metric group, laid out by :class:`Layout`.

A panel holds an axes and its *animated* lines (``b:loss`` batch values, ``s:loss`` their
moving average, ``e:loss`` epoch values and ``e:val_loss`` validation, ``t:test_loss``
evaluations, ``l:learning rate``), and gives them their data for the view
(:meth:`Panel.feed`, min/max decimated per pixel column). The layout puts the panels in
a fixed grid with margins in points (no layout pass), adds lines as metrics join, and
takes the last run's axes for a next run of the same metrics.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox

from .blit import set_exact
from .decimate import Decimator
from .history import LR_KEY, BatchTable, EpochTable, group_of
from .limits import Range, finite_range, near, union
from .perbatch import PER_BATCH, batch_labels

__all__ = ["LR", "RUN_COLORS", "TEST", "TRAIN", "VAL", "Layout", "Overlay", "Panel"]

TRAIN, VAL, TEST, LR = "C0", "C1", "C2", "C4"
RUN_COLORS = ("C0", "C3", "C2", "C4", "C1", "C5", "C6", "C8", "C9", "C7")  # one per run when comparing
NONFINITE = "  (non-finite values shown as gaps)"
LABEL_PT = 14.0  # the height a y tick label needs, in points: 10 pt text and a gap


class Panel:
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
        # Drawn in part (blit.draw_steps): the box to put on the screen, its pixels so far, those shown
        # before and the next step (the canvas meanwhile keeps what it showed, so a repaint of the
        # window never finds it half done).
        self.half_drawn: tuple | None = None
        # name -> (line, what its data was made from, the y range it shows): unchanged lines are skipped
        self.fed: dict[str, tuple] = {}

    def remember_limits(self) -> None:
        self.expected = (self.ax.get_xlim(), self.ax.get_ylim())

    def user_changed_limits(self) -> bool:
        if self.expected is None:
            return False
        return not (near(self.ax.get_xlim(), self.expected[0]) and near(self.ax.get_ylim(), self.expected[1]))

    @property
    def log(self) -> bool:
        """Whether the y axis is logarithmic now: the window's toggle, or the user's own ``set_yscale``
        (autoscaling goes on in the user's scale until ``MetricsPlot.reset_view``)."""
        return self.ax.get_yscale() == "log"

    def set_log(self, log: bool) -> None:
        if log:
            self.ax.set_yscale("log", nonpositive="mask")
            # Short tick labels (the margin left of the axes is fixed): 0.01, 5e-05; minor ones at 2 and 5.
            self.ax.yaxis.set_major_formatter(FuncFormatter(_short_number))
            self.ax.yaxis.set_minor_formatter(FuncFormatter(
                lambda v, pos: _short_minor(v, self.ax.get_ylim(), self.ax.bbox.height / self.ax.figure.dpi * 72)))
        else:
            self.ax.set_yscale("linear")

    def artists_gone(self, figure) -> bool:
        """Whether someone removed the axes or its lines (``ax.cla()``, ``figure.clear()``)."""
        return self.ax not in figure.axes or any(line.axes is not self.ax for line in self.lines.values())

    def show_title(self, nonfinite) -> bool:
        """Title the axes with its group, saying so when some of its metrics (of ``nonfinite``)
        had NaN or inf values; True when that changed it."""
        title = self.group + (NONFINITE if any(group_of(k) == self.group for k in nonfinite) else "")
        if self.ax.get_title() == title:
            return False
        self.ax.set_title(title, color="C3" if title != self.group else "black", y=1.0)
        return True

    def restart_decimation(self) -> None:
        for dec in self.decimators.values():
            dec.reset()

    # -- data -------------------------------------------------------------------------------------
    def feed(self, history) -> Range | None:
        """Give every line its data from ``history`` (a RunHistory) for the current view; returns the
        y range shown.

        A line whose table has not changed since, for the same view (batch lines) and scale,
        keeps its data and its range: most frames bring new batches, not new epochs.
        """
        x0, x1 = self.ax.get_xlim()
        columns = max(int(self.ax.bbox.width), 50)
        log = self.log
        ranges = []
        for name, line in self.lines.items():
            kind = name[0]
            source = (history.table(kind).version, log, (x0, x1, columns) if kind in "bs" else None)
            fed = self.fed.get(name)
            if fed is None or fed[0] is not line or fed[1] != source:
                x, y = self._line_data(history, name, x0, x1, columns)
                set_exact(line, x, y)
                fed = self.fed[name] = (line, source, finite_range(y, log))
            ranges.append(fed[2])
        return union(ranges)

    def _line_data(self, history, name: str, x0: float, x1: float, columns: int):
        kind, key = name.split(":", 1)
        y = history.values(kind, key)
        if y is None:
            return (), ()
        steps = history.table(kind).steps
        if kind in "bs":
            return self.decimators[name].decimate(steps, y, x0, x1, columns)
        return steps, y

    def data_range(self, history, span: Range) -> Range | None:
        """Smallest and largest finite value of the lines' data in ``history`` over the x ``span``."""
        x0, x1 = span
        ranges = []
        for name in self.lines:
            kind, key = name.split(":", 1)
            y = history.values(kind, key)
            if y is not None:
                steps = history.table(kind).steps
                i, j = np.searchsorted(steps, x0), np.searchsorted(steps, x1, side="right")
                ranges.append(finite_range(y[i:j], self.log))
        return union(ranges)

    def still_range(self, yr: Range | None) -> Range | None:
        """``yr`` widened to the kept runs' lines (an overlay's line knows its range: kerasqt.overlay)."""
        log = self.log
        return union([yr] + [line.y_range(log) if hasattr(line, "y_range") else finite_range(line.get_ydata(), log)
                             for line in self.still])


class Overlay:
    """A finished run kept on the axes for comparison (replays of several runs), in one colour;
    ``path``: its run log, when it has one (the run list says the run is on the axes)."""

    def __init__(self, name: str, color: str, batches: BatchTable, epochs: EpochTable, tests: EpochTable,
                 path=None) -> None:
        self.name = name
        self.color = color
        self.path = path
        self.batches = batches
        self.epochs = epochs
        self.tests = tests
        self.keys = batches.metrics() + epochs.names() + tests.names()
        self.last_step = max((int(t.steps[-1]) for t in (batches, epochs, tests) if len(t)), default=0)


class Layout:
    """The figure's panels: which metric groups are shown, in which cell, with which lines.

    ``label`` names the current run in the legend when comparing runs; ``overlays`` are the
    finished runs kept beside it. ``state`` (a DrawState) learns what the layout's changes
    ask of the next frames: a new layout, full draws, a legend to draw, a blank canvas.
    """

    # Margins around each axes in its grid cell, in points: tick labels and the x label below,
    # y tick labels on the left, the title on top. Fixed, so that no layout pass (~150 ms with
    # constrained layout) is needed and one axes can be drawn without the others.
    MARGINS = {"left": 44.0, "right": 16.0, "bottom": 32.0, "top": 20.0}

    def __init__(self, figure, state) -> None:
        self.figure = figure
        self.state = state
        self.label: str | None = None
        self.overlays: list[Overlay] = []
        self.kept = 0  # runs kept so far (their colours go round RUN_COLORS; some may have been let go)
        self.decorate = None  # called with each new panel before its legend (the run list's overlays)
        self.legend_at = None  # panel -> legend keyword arguments over ours (the overlays': a fixed place)
        self.log_scale = False
        self.panels: dict[str, Panel] = {}
        self.groups: dict[str, list[str]] = {}  # group -> its metrics, in order seen
        self._spare: dict[str, Panel] = {}
        # the legend's words for a metric's batch lines, and the view they show (MetricsPlot's)
        self.batch_labels = lambda key: batch_labels(key, None, PER_BATCH)
        self.view = PER_BATCH

    @property
    def comparing(self) -> bool:
        return self.label is not None or bool(self.overlays)

    def restart(self) -> None:
        """A new run: no groups yet. The last run's axes are kept for a next run of the same
        metrics (a notebook cell run again): its limits stay while the new data fits them, so
        the run starts without drawing axes anew. Then the kept runs' metrics are noted."""
        last = self.panels or self._spare  # (restarted twice before data)
        self._spare = last if not self.comparing else {}
        self.panels = {}
        self.groups = {}
        for overlay in self.overlays:
            self.note(overlay.keys)

    def run_colors(self) -> list[str]:
        """The colours the plot's own runs take while it compares runs (those kept, the current
        one, and those to come, in turn): an overlay of the run list takes none of them."""
        return list(RUN_COLORS) if self.comparing else []

    def rename_run(self, path, name: str, *, live: bool = False) -> bool:
        """Name the run logged at ``path`` ``name`` in the legends: a kept run, or with ``live``
        the current one (its entries say its name while runs are compared); whether one was."""
        done = False
        for ov in self.overlays:
            if ov.path is not None and ov.path == path and ov.name != name:
                self._relabel([line for panel in self.panels.values() for line in panel.still], ov.name, name)
                ov.name, done = name, True
        if live and self.label is not None and self.label != name:
            self._relabel([line for panel in self.panels.values() for line in panel.lines.values()],
                          self.label, name)
            self.label, done = name, True
        if done:
            for panel in self.panels.values():
                if panel.ax.get_legend() is not None:
                    self.make_legend(panel)
            self.state.full = True
        return done

    @staticmethod
    def _relabel(lines, old: str, new: str) -> None:
        for line in lines:
            if line.get_label().startswith(f"{old}: "):
                line.set_label(f"{new}: {line.get_label()[len(old) + 2:]}")

    def keep(self, batches: BatchTable, epochs: EpochTable, tests: EpochTable, most: int | None = None,
             path=None) -> None:
        """Keep a finished run's tables as an overlay, named by ``label``, in the next colour; with
        ``most``, only the last ``most`` runs kept stay (the oldest go). ``path``: its run log."""
        n = self.kept
        self.kept += 1
        self.overlays.append(Overlay(self.label or f"run {n + 1}", RUN_COLORS[n % len(RUN_COLORS)],
                                     batches, epochs, tests, path))
        if most is not None and len(self.overlays) > most:
            del self.overlays[:len(self.overlays) - most]

    def note(self, keys) -> None:
        """Metrics seen: a new group asks for a new layout; a new metric of a group on show joins it."""
        for key in keys:
            group = group_of(key)
            members = self.groups.setdefault(group, [])
            if key not in members:
                members.append(key)
                panel = self.panels.get(group)
                if panel is not None and not self.state.layout:
                    self._join(panel, key)
                else:
                    self.state.layout = True

    def _join(self, panel: Panel, key: str) -> None:
        """A new metric of a group on show (``val_loss`` after ``loss``): its lines join the axes
        at once (blitted); the legend, in the background, waits for the next full draw, which
        the window may put off, instead of a new layout and a full draw now."""
        if key in panel.keys:
            return  # axes kept from the last run have its lines already
        kept = dict(panel.decimators)
        self._make_lines(panel, [key])
        panel.decimators.update(kept)
        self.make_legend(panel)
        self.state.legend(panel)

    def build(self) -> None:
        """Lay the panels out for the groups noted: the last run's when they fit, else anew."""
        groups = sorted(self.groups, key=lambda g: (g != "loss", list(self.groups).index(g)))
        if not groups and self._spare:
            return  # a new run without data yet: the last run's axes wait for its metric names
        spare, self._spare = self._spare, {}
        if self._reuse(spare, groups):
            if self.relabel():  # the last run's words: this run's metrics may differ
                self.state.full = True
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
            panel = Panel(ax, group)
            self._make_lines(panel, self.groups[group])
            for overlay in self.overlays:
                self._overlay_lines(panel, overlay)
            if self.decorate is not None:
                self.decorate(panel)
            ax.grid(alpha=0.3)
            ax.set_xlabel("step")
            if self.log_scale or group == LR_KEY:
                panel.set_log(True)
            self.make_legend(panel)
            self.panels[group] = panel
        self.place()
        for panel in self.panels.values():
            panel.remember_limits()  # ours: a change before the first draw is the user's
        self.state.layout = False
        self.state.full = True
        self.state.blank = True

    def _reuse(self, spare: dict[str, Panel], groups: list[str]) -> bool:
        """Take the last run's axes for this run when it shows the same metric groups with no new
        metric (those the last run had, ``val_loss`` say, may come later), emptied of data."""
        if list(spare) != groups or self.comparing:
            return False
        for group, panel in spare.items():
            if panel.artists_gone(self.figure) or not set(self.groups[group]) <= panel.keys:
                return False
        for panel in spare.values():
            for line in panel.lines.values():
                line.set_data([], [])
            panel.fed.clear()
            panel.restart_decimation()
            panel.user_view = False
            panel.remember_limits()  # they are ours now, kept while the data fits them
            panel.drawn_view = None  # the screen shows the last run's lines: the next blit is whole
        self.panels = spare
        self.state.layout = False
        self.state.full = False
        return True

    def relabel(self) -> bool:
        """The batch lines' legend words anew (what the run said of its metrics came, or the view
        changed); the axes whose words changed get their legend anew. True when any did."""
        changed = False
        for panel in self.panels.values() if not self.comparing else ():
            words = {}
            for key in panel.keys:
                if "b:" + key in panel.lines:
                    words["b:" + key], words["s:" + key] = self.batch_labels(key)
            if all(panel.lines[name].get_label() == text for name, text in words.items()):
                continue
            for name, text in words.items():
                panel.lines[name].set_label(text)
            self.make_legend(panel)
            changed = True
        return changed

    def make_legend(self, panel: Panel) -> None:
        """(Re)make ``panel``'s legend: at the best place, or as ``legend_at(panel)`` says."""
        extra = self.legend_at(panel) if self.legend_at is not None else {}
        panel.ax.legend(**{"loc": "best", "fontsize": "small", "framealpha": 0.6, **extra})

    def place(self) -> None:
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
        self.state.blank = True

    def _make_lines(self, panel: Panel, keys: list[str]) -> None:
        ax = panel.ax
        train, val, test = TRAIN, VAL, TEST
        run = None  # comparing runs: one colour per run, legend entries "run: key"
        if self.comparing:
            n = self.kept
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
                faint, smooth = self.batch_labels(key)
                panel.lines["b:" + key] = ax.plot([], [], "-", color=train, lw=0.7, alpha=0.45, animated=True,
                                                  label=faint if run is None else "_batch")[0]
                panel.lines["s:" + key] = ax.plot([], [], "-", color=train, lw=1.6, animated=True,
                                                  label=smooth if run is None else named)[0]
                panel.lines["e:" + key] = ax.plot([], [], "o", color=train, mec="white", ms=6, animated=True,
                                                  label=f"{key} (epoch)" if run is None else "_epoch")[0]
        if keys:
            ax.set_title(panel.group, y=1.0)  # a fixed place: no tick bounding boxes to measure per draw
        panel.keys.update(keys)
        for name in panel.lines:
            if name[0] in "bs":
                panel.decimators[name] = Decimator()

    def _overlay_lines(self, panel: Panel, ov: Overlay) -> None:
        """Still lines of a kept run: smoothed batch values, epoch dots, val and test values."""
        ax, style = panel.ax, {"color": ov.color, "alpha": 0.75}
        for key in self.groups[panel.group]:
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
                    panel.still += ax.plot(ov.batches.steps, ov.batches.line(key, True, self.view), "-", lw=1.3,
                                           label=f"{ov.name}: {key}", **style)
                if key in ov.epochs.names():
                    panel.still += ax.plot(ov.epochs.steps, ov.epochs.column(key), "o", ms=4,
                                           label="_epoch" if batch else f"{ov.name}: {key}", **style)


def _short_number(value: float, pos=None) -> str:
    """A log axis' tick label in at most 5 characters: ``0.001``, ``20``, ``5e-05``."""
    if value <= 0 or not math.isfinite(value):
        return ""
    return f"{value:.3g}" if 1e-3 <= value < 1e4 else f"{value:.0e}"


def _short_minor(value: float, ylim, height_pt: float = math.inf) -> str:
    """A minor tick's label on a log axis ``height_pt`` points tall: every one when the axis spans
    less than a factor of 3; else at 2, 3 and 5 times a power of ten, or fewer (2 and 5, or 3
    alone, or none) when a decade has no room for them beside its own label."""
    if value <= 0 or not math.isfinite(value):
        return ""
    lo, hi = ylim
    if lo > 0 and hi / lo < 3:
        return _short_number(value)
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    room = height_pt / decades / LABEL_PT - 1  # minor labels a decade has room for
    shown = (2, 3, 5) if room >= 3 else (2, 5) if room >= 2 else (3,) if room >= 1 else ()
    mantissa = value / 10 ** math.floor(math.log10(value))
    return _short_number(value) if round(mantissa) in shown and abs(mantissa - round(mantissa)) < 1e-6 else ""
