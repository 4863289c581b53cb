"""Matplotlib plots of the monitor window (main thread only).

A plot owns the figure's axes and artists, takes refined updates with
``apply`` (cheap: it only stores data) and draws at most once per frame with
``draw_frame`` when the window's frame timer says so:

* :class:`MetricsPlot`: one axes per metric group (``loss`` with ``val_loss``...).
  Batch values are drawn faint with their moving average on top, epoch values as
  markers, ``val_`` values as a dashed line with markers. Lines are *animated*:
  a steady-state frame restores, in each axes, the saved background of the strip
  from the first new point to the newest one, draws the lines clipped to it and
  blits the strip (a cost that does not grow with the points shown), or the whole
  axes when its view changed. An axes is drawn anew only when its limits must
  change (they grow with headroom), on zoom or pan, and on layout changes; while
  training runs that is staged, one step per frame (the layout, then for each axes
  its ticks, its x axis, the rest, its legend: :func:`kerasqt.blit.draw_steps`, at
  most about 15 ms of CPU a step instead of about 95 ms for the whole figure), so
  the event loop turns in between. The axes sit in a
  fixed grid with margins in points (no layout pass). Lines are min/max decimated
  per pixel column of the visible range (:mod:`kerasqt.decimate`), recomputed when
  the view changes.

Limits the user sets (toolbar zoom/pan or code) are kept until the toolbar's
Home button, or :meth:`MetricsPlot.reset_view`, gives autoscaling back.

The parts, each in its module: the run's tables (:class:`~kerasqt.history.RunHistory`,
pure), the axes and their lines (:mod:`kerasqt.panels`), the autoscale policy
(:mod:`kerasqt.limits`, pure), what the next frames must do (:mod:`kerasqt.drawstate`),
the blitting and staged draws (:mod:`kerasqt.blit`) and the marks of learning-rate changes
and EarlyStopping's best epoch (:mod:`kerasqt.marks`, static: drawn with their axes).
:class:`MetricsPlot` wires them together and runs a frame (:meth:`MetricsPlot.draw_frame`).
"""

from __future__ import annotations

import time
from pathlib import Path

from . import limits
from .blit import Blitter
from .drawstate import DrawState, Work
from .history import LR_KEY, RunHistory
from .marks import MarkArtists, RunMarks
from .panels import LR, RUN_COLORS, TEST, TRAIN, VAL, Layout, Panel
from .perbatch import VIEWS, batch_labels

__all__ = ["LR", "LR_KEY", "RUN_COLORS", "TEST", "TRAIN", "VAL", "MetricsPlot", "Plot"]


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


class MetricsPlot(Plot):
    """Training curves, one axes per metric group, blitted in steady state."""

    def __init__(self, figure, canvas) -> None:
        self.state = DrawState()  # first: Plot sets ``dirty``, which lives there
        super().__init__(figure, canvas)
        self.history = RunHistory()
        self.layout = Layout(figure, self.state)
        self.mark_artists = MarkArtists()  # learning-rate changes, EarlyStopping's best epoch (kerasqt.marks)
        self.layout.batch_labels = lambda key: batch_labels(key, self.history.means, self.history.view)
        self.panel_draws = 0  # axes drawn one at a time (staged full draws)
        figure.set_layout_engine("none")  # the axes sit in a fixed grid (Layout.place)
        self.blitter = Blitter(figure, canvas, self.state, lambda: self.panels.values(),
                               lambda panel: panel.feed(self.history))
        self._resize_cid = canvas.mpl_connect("resize_event", lambda event: self.layout.place())
        self.reset(None)

    # -- what others read and set -------------------------------------------------------------------
    dirty = property(lambda self: self.state.dirty, lambda self, on: setattr(self.state, "dirty", on),
                     doc="Whether something changed since the last frame (the frame timer reads it).")
    ended = property(lambda self: self.state.ended, doc="Whether the run is over (the x axis spans its steps).")
    limits_pending = property(lambda self: self.state.limits_pending,
                              doc="Whether new limits wait for a full draw the window allows.")
    panels = property(lambda self: self.layout.panels, doc="Metric group -> its Panel.")
    overlays = property(lambda self: self.layout.overlays, doc="Finished runs kept for comparison.")
    log_scale = property(lambda self: self.layout.log_scale, doc="The window's log-scale toggle.")
    label = property(lambda self: self.layout.label, lambda self, name: setattr(self.layout, "label", name),
                     doc="The current run's name in the legend when comparing runs.")
    batches = property(lambda self: self.history.batches)
    epochs = property(lambda self: self.history.epochs)
    tests = property(lambda self: self.history.tests)
    lrs = property(lambda self: self.history.lrs, doc="(step, learning rate) where it changed and at each epoch's end.")
    planned_steps = property(lambda self: self.history.planned_steps)
    nonfinite = property(lambda self: self.history.nonfinite)

    @property
    def drawing(self) -> bool:
        """Whether axes are still being drawn anew, one per frame (a staged full draw)."""
        return bool(self.state.stale)

    @property
    def finishing(self) -> bool:
        """Whether the run's last frame is still to come: limits to fit (:meth:`run_over`), or
        axes to draw anew. The window stages it, like the frames while the run went on."""
        return self.state.finishing

    # -- data ------------------------------------------------------------------------------------
    def reset(self, start) -> None:
        """Forget the previous run and prepare for ``start`` (a StartEvent or None)."""
        for panel in self.state.stale:  # half drawn for limits set meanwhile: drawn anew
            panel.background = panel.half_drawn = None
        self.history = RunHistory(start, self.layout.view)
        self.marks = RunMarks()
        self.state.restart()
        self.layout.restart()

    def keep_run(self, most: int | None = None, path=None) -> None:
        """Keep the current run's curves on the axes, still and in their own colour, and start
        afresh for the next run (replays of several runs for comparison; live runs never do);
        with ``most``, only the last ``most`` runs kept stay. ``path``: the run's log, if any."""
        if not self.history.empty():
            self.layout.keep(self.history.batches, self.history.epochs, self.history.tests, most,
                             None if path is None else Path(path).absolute())
        self.reset(None)

    def kept_logs(self) -> dict:
        """The run logs of the runs kept on the axes (:meth:`keep_run`), with their colours."""
        return {overlay.path: overlay.color for overlay in self.overlays if overlay.path is not None}

    def apply(self, update) -> None:
        if update.start is not None:
            self.reset(update.start)
        applied = self.history.apply(update)
        self.marks.apply(update)
        if update.means is not None and self.layout.relabel():
            self.state.full = True  # the legend says what the batch lines are
        if applied.merged:  # late rows were merged in the middle: recompute decimation
            for panel in self.panels.values():
                panel.restart_decimation()
        self.layout.note(applied.keys)
        self.state.changed(applied.changed_from)
        if applied.flagged:
            self.state.full = True  # the title says so
        if applied.epochs:
            self.state.shrink_asked = True
        self.state.dirty = True

    def run_over(self) -> None:
        """The run ended: the next frame fits the y limits to its data (while it ran they grew
        with headroom for the curves to go on; now nothing will come), and the x limits to its
        steps when none were planned (they grew by doubling)."""
        self.state.fit = True
        self.state.ended = True
        self.state.dirty = True

    def _last_step(self) -> int:
        return max([self.history.last_step()] + [overlay.last_step for overlay in self.overlays])

    # -- view --------------------------------------------------------------------------------------
    def set_log_scale(self, on: bool) -> None:
        self.layout.log_scale = bool(on)
        for panel in self.panels.values():
            if panel.group == LR_KEY:
                continue  # always logarithmic
            panel.set_log(bool(on))
            panel.user_view = False
            panel.expected = None  # the new scale is ours, not the user's
            panel.restart_decimation()
        self.state.full = True
        self.state.dirty = True

    @property
    def batch_view(self) -> str:
        """What the batch lines show: ``"batch"``, each batch's own value where the run gave what it
        takes (the default), or ``"running"``, the running means Keras logs (:mod:`kerasqt.perbatch`)."""
        return self.layout.view

    def set_batch_view(self, view: str) -> None:
        """Show each batch's own values or Keras' running means; both are kept, so the lines are
        drawn anew from the tables, every run's."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if view == self.layout.view:
            return
        self.layout.view = self.history.view = view
        for panel in self.panels.values():
            panel.fed.clear()
            panel.restart_decimation()
        if self.overlays:
            self.state.layout = True  # the kept runs' still lines too
        self.layout.relabel()
        self.state.full = True
        self.state.dirty = True

    def reset_view(self) -> None:
        """Give the limits back to autoscaling (the toolbar's Home button), and the y scale to ours."""
        for panel in self.panels.values():
            panel.user_view = False
            panel.expected = None
            log = self.log_scale or panel.group == LR_KEY
            if panel.ax.get_yscale() != ("log" if log else "linear"):
                panel.set_log(log)
        self.state.full = True
        self.state.dirty = True

    def exporting(self):
        """A context: ``savefig`` meanwhile, its draws (on other canvases too) keep the blitting
        backgrounds."""
        return self.blitter.exporting()

    # -- drawing ---------------------------------------------------------------------------------
    def draw_frame(self, force_full: bool = False, allow_full: bool = True, staged: bool = False) -> str | None:
        """Draw what changed; returns 'full', 'part', 'blit' or None (nothing to do).

        ``allow_full=False`` defers new axis limits (the lines are clipped meanwhile) so
        that the window can bound how often axes are drawn anew; ``limits_pending`` then
        says such a draw is wanted. ``staged``: axes that must be drawn anew are drawn one
        per call ('part' while more wait, 'full' with the last), the others blitted; else
        the whole figure is drawn at once ('full').
        """
        state = self.state
        if not (state.busy or force_full):
            return None
        state.dirty = False
        if state.layout or any(p.artists_gone(self.figure) for p in self.panels.values()):
            self.layout.build()  # new metrics, or the user cleared our axes: lay them out anew
            if staged and not force_full and self.panels and state.full:
                state.dirty = True
                return "part"  # that was this frame's work: the axes are drawn from the next one on
        for panel in self.mark_artists.sync(self.panels, self.marks.spec(self.history)):
            if not self.mark_artists.artists(panel):
                state.draw(panel)  # marks gone (a new run on the last one's axes): off the screen now
            elif not (state.full or panel in state.stale):
                state.legend(panel)  # static: drawn with the axes, at the next full draw allowed
        if force_full or state.full:
            state.stale[:] = self.panels.values()
        wanted = self._set_limits(force_full, allow_full)
        self.frames += 1
        if state.stale and staged and not force_full:
            self.blitter.check_buffer(state.stale)
        work = state.work(force_full=force_full, staged=staged, panels=len(self.panels))
        if work is Work.FIGURE:
            state.changed_from = None
            self.full_draws += 1
            self.blitter.draw_figure()
            return "full"
        if work is Work.PANEL:  # (half of) one axes is this frame's work; the others catch up afterwards
            if self.blitter.draw_panel(state.stale[0]):
                state.stale.pop(0)
                self.panel_draws += 1
            state.dirty = True
            if state.stale:
                return "part"
            self.full_draws += 1
            return "full"
        changed_from, last_step = state.take_changed(), self._last_step()
        for panel in self.panels.values():
            if panel.user_view or (panel in wanted and wanted[panel][0] != panel.ax.get_xlim()):
                panel.feed(self.history)  # data for the view as it is (else done by _wanted_limits)
            self.blitter.blit(panel, changed_from, last_step)
        return "blit"

    def _set_limits(self, force_full: bool, allow_full: bool) -> dict:
        """Ask the policy for each axes' limits and set them now, or leave them pending (see
        :meth:`DrawState.settle_limits`); the titles say which metrics had non-finite values.
        Returns what each axes wanted."""
        state = self.state
        now = time.monotonic()
        shrink = limits.shrink_due(state.shrink_asked, now, state.last_shrink)
        ask = {"last_step": self._last_step(), "ended": state.ended, "fit": state.fit or state.full,
               "shrink": shrink, "planned": limits.planned_span(self.planned_steps,
                                                                [o.last_step for o in self.overlays])}
        wanted = {}
        for panel in self.panels.values():
            panel.user_view = panel.user_view or panel.user_changed_limits()
            want = self._wanted_limits(panel, ask)
            if want is not None:
                wanted[panel] = want
            if not panel.user_view and panel.show_title(self.nonfinite):
                state.draw(panel)
        state.full = False
        for panel in self.panels.values():
            if panel.background is None:
                state.draw(panel)
        # Axes are drawn anew anyway (a new scale, say): every axes gets the limits it wants now.
        if state.settle_limits(bool(wanted) or bool(state.legends), force_full=force_full, allow_full=allow_full):
            for panel, (xlim, ylim) in wanted.items():
                panel.ax.set_xlim(*xlim)
                panel.ax.set_ylim(*ylim)
                panel.half_drawn = None  # drawn for the old limits: again
                state.draw(panel)
            for panel in state.legends:
                state.draw(panel)
            state.legends = []
        for panel in self.panels.values():
            panel.remember_limits()
        state.limits_settled(shrink, now)
        return wanted

    def _wanted_limits(self, panel: Panel, ask: dict) -> tuple | None:
        """The policy's ``(xlim, ylim)`` for ``panel`` (``ask``: what it needs of the run), or
        None to keep them. When the x limits stay, the lines get their data for the view on the way."""
        xlim = panel.ax.get_xlim()

        def data_in(span):
            yr = panel.feed(self.history) if span == xlim else panel.data_range(self.history, span)
            return panel.still_range(yr) if panel.still else yr

        return limits.wanted_limits(xlim, panel.ax.get_ylim(), data_in, log=panel.log,
                                    user_view=panel.user_view, **ask)

    def close(self) -> None:
        self.blitter.disconnect()
        self.canvas.mpl_disconnect(self._resize_cid)
        super().close()

    # -- what is shown (used by tests and export) -----------------------------------------------
    def shown(self) -> dict[str, dict[str, int]]:
        """Counts of the data points held per metric: batch rows, epoch rows, test rows."""
        return self.history.shown()

