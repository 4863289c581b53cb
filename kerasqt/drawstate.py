"""What the plot's next frames must do, in one place (main thread; no drawing here).

:class:`DrawState` holds every flag the frame logic reads, each set where something happens
(data came, the scale changed, the canvas was drawn) and read by ``MetricsPlot.draw_frame``,
which does one piece of :class:`Work` per call:

1. nothing, unless something is to do (:attr:`DrawState.busy`);
2. a new layout, when metric groups came or our axes were cleared (:attr:`DrawState.layout`);
   staged, that is the frame's whole work;
3. limits: the policy's (:mod:`kerasqt.limits`) are set now, when axes are drawn anew anyway
   or the window allows it, else they wait (:attr:`DrawState.limits_pending`);
4. then axes to draw anew (:attr:`DrawState.stale`): the whole figure at once, or one axes
   per frame when staged; or, when none, blits of what grew since the last frame
   (:attr:`DrawState.changed_from`).
"""

from __future__ import annotations

import enum
from dataclasses import MISSING, dataclass, field, fields

__all__ = ["DrawState", "Work"]


class Work(enum.Enum):
    """A frame's drawing, once limits are settled (values: what ``draw_frame`` returns)."""

    FIGURE = "full"  # the whole figure at once (``canvas.draw``)
    PANEL = "part"  # (half of) the first stale axes in its cell: staged, one step per frame
    BLIT = "blit"  # no axes to draw: lines blitted over their saved backgrounds


@dataclass(eq=False)
class DrawState:
    """The plot's drawing state for one run; :meth:`restart` for the next."""

    dirty: bool = True  # something changed since the last frame: data, scale, the user's view
    layout: bool = True  # lay the axes out anew (new metric groups; someone cleared ours)
    full: bool = True  # draw every axes anew, limits fitted (new scale or title, Home, a savefig elsewhere)
    stale: list = field(default_factory=list)  # axes to draw anew, in order (staged: one per frame)
    blank: bool = True  # the canvas holds nothing yet: the figure's background is painted first
    # axes whose legend gained an entry, or whose marks changed (kerasqt.marks): drawn with the next limits
    legends: list = field(default_factory=list)
    limits_pending: bool = False  # new limits wait for a full draw the window allows (lines clipped meanwhile)
    fit: bool = False  # the run is over: fit the limits to the data at the next frame
    ended: bool = False  # the run is over: the x axis spans the steps it took
    changed_from: float | None = None  # smallest step whose drawing changed since the last frame
    shrink_asked: bool = False  # an epoch ended: limits grown loose may be fitted (at most every 10 s)
    last_shrink: float = 0.0  # when they last were (time.monotonic)

    def restart(self) -> None:
        """A new run: every field back to its start (lay out, draw everything on a blank canvas)."""
        for f in fields(self):
            setattr(self, f.name, f.default_factory() if f.default is MISSING else f.default)

    @property
    def busy(self) -> bool:
        """Whether a frame has anything to do."""
        return self.dirty or self.full or self.limits_pending or bool(self.stale)

    @property
    def finishing(self) -> bool:
        """Whether the run's last frame is still to come: limits to fit, or axes to draw."""
        return self.fit or bool(self.stale)

    def changed(self, step: float | None) -> None:
        """The drawing changed from ``step`` on (None: nothing)."""
        if step is not None and (self.changed_from is None or step < self.changed_from):
            self.changed_from = float(step)

    def take_changed(self) -> float | None:
        """The step from which lines must be blitted, and the slate cleaned for the next frame."""
        step, self.changed_from = self.changed_from, None
        return step

    def draw(self, panel) -> None:
        """``panel`` must be drawn anew."""
        if panel not in self.stale:
            self.stale.append(panel)

    def legend(self, panel) -> None:
        """``panel``'s legend or marks changed: drawn with the next new limits."""
        if panel not in self.legends:
            self.legends.append(panel)

    def settle_limits(self, pending: bool, *, force_full: bool, allow_full: bool) -> bool:
        """Whether new limits (or legends: ``pending``) are set this frame: when axes are drawn
        anew anyway, or the window allows a full draw; else they wait (``limits_pending``)."""
        self.limits_pending = pending and not (force_full or allow_full or self.stale)
        return pending and not self.limits_pending

    def limits_settled(self, shrank: bool, now: float) -> None:
        """After a frame's limits: unless they wait, the shrink check (``shrank``) and the
        fit of a run's end are done."""
        if self.limits_pending:
            return
        if shrank:
            self.last_shrink = now
            self.shrink_asked = False
        self.fit = False

    def work(self, *, force_full: bool, staged: bool, panels: int) -> Work:
        """What this frame draws, of ``panels`` axes: staged only when the others stay on a
        canvas that holds them (a blank one needs them all, at once)."""
        if not self.stale:
            return Work.BLIT
        if force_full or not staged or (self.blank and len(self.stale) < panels):
            return Work.FIGURE
        return Work.PANEL
