"""Blitting and staged draws of the plot's axes (main thread): the mechanism, no policy.

After an axes is drawn (the whole figure on ``draw_event``, or one axes by
:meth:`Blitter.draw_panel`), its background is saved and its *animated* lines are
drawn on top. A later frame restores that background and draws the lines again,
either over the strip where they grew (:meth:`Blitter.blit`: a cost that does not
grow with the points shown) or over the whole axes when its view changed. What to
draw anew, and when, is the plot's call (:mod:`kerasqt.drawstate`, :mod:`kerasqt.limits`).

A panel here is anything with ``ax``, ``lines`` (name -> Line2D), ``cell`` (its share of
the figure, display pixels), ``decimators`` and the fields this module keeps on it:
``background``, ``drawn_view`` (what the pixels on screen were drawn for) and
``half_drawn`` (drawn in part: the box, its pixels so far, those shown before, the next step).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable

import numpy as np
from matplotlib.transforms import Bbox

__all__ = ["Blitter", "draw_steps", "set_exact", "view_of"]


class Blitter:
    """Backgrounds saved after each draw, strips blitted, axes drawn one at a time.

    ``panels()`` gives the panels on show; ``feed(panel)`` gives a panel's lines their data
    for its view, just before they are drawn on a fresh background. ``state`` (a
    :class:`~kerasqt.drawstate.DrawState`) learns when the whole canvas was drawn (no axes
    stale, nothing blank), or drawn for a file (the screen then needs a full draw).
    """

    def __init__(self, figure, canvas, state, panels: Callable[[], Iterable], feed: Callable) -> None:
        self.figure = figure
        self.canvas = canvas
        self.state = state
        self._panels = panels
        self._feed = feed
        self._exporting = False
        self._renderer = None  # the renderer the axes were last drawn with (a new one is blank)
        self._cid = canvas.mpl_connect("draw_event", self._on_draw)

    def disconnect(self) -> None:
        self.canvas.mpl_disconnect(self._cid)

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
            self.state.full = True  # it drew at another size (or elsewhere): the screen needs a full draw
            return
        for panel in self._panels():
            if panel.ax.figure is self.figure:
                self.save(panel)
        self.state.stale.clear()
        self.state.blank = False
        self._renderer = self.canvas.get_renderer()

    def save(self, panel) -> None:
        """Just after ``panel``'s axes was drawn: save its background and draw its lines on it."""
        panel.half_drawn = None
        self._feed(panel)
        panel.background = self.canvas.copy_from_bbox(panel.ax.bbox)
        for line in panel.lines.values():
            panel.ax.draw_artist(line)
        panel.drawn_view = view_of(panel)

    def draw_figure(self) -> None:
        """The whole figure at once; :meth:`_on_draw` saves backgrounds and empties the stale list."""
        self.canvas.draw()

    def check_buffer(self, stale: Iterable) -> None:
        """Before drawing ``stale`` axes one at a time: a canvas that changed size has a new,
        blank buffer (nothing on it yet), and axes half drawn on the old one start again."""
        if self.canvas.get_renderer() is not self._renderer:
            self.state.blank = True
            for panel in stale:
                panel.half_drawn = None

    def draw_panel(self, panel) -> bool:
        """Draw one axes anew in its cell, a step a call (:func:`draw_steps`: its x axis, the rest,
        then its legend); True when done, after the last step.

        The first step paints the figure's background over the cell (over the whole figure
        when the canvas is blank). When the axes is whole its blitting background is saved,
        the lines drawn and the cell put on the screen. Between steps the canvas holds the
        cell as it was: anything that repaints the window then (an expose, a grab) shows the
        last whole frame, not an axes half drawn (a blank canvas, after a new layout, keeps
        the first step's figure background). Each step is a share of one axes' draw, so that
        no frame holds the event loop for a whole one (~25 ms of CPU for an axes drawn first).
        """
        renderer = self.canvas.get_renderer()
        steps = draw_steps(panel.ax)
        half, panel.half_drawn = panel.half_drawn, None
        if half is not None and half[3] < len(steps):  # (else its legend went meanwhile: again)
            box, pixels, shown, step = half
            if pixels is not None:
                self.canvas.restore_region(pixels)
        else:
            blank, self.state.blank = self.state.blank, False
            box = self.figure.bbox if blank else panel.cell
            # A blank canvas has no whole frame to keep: this step's painting of the whole figure
            # stays (the cells of no axes get it only here).
            shown = self.canvas.copy_from_bbox(box) if len(steps) > 1 and not blank else None
            patch = self.figure.patch
            clip = patch.get_clip_box()
            patch.set_clip_box(box)
            patch.draw(renderer)
            patch.set_clip_box(clip)
            self._renderer = renderer
            step = 0
        steps[step](renderer)
        if step + 1 < len(steps):
            # (a blank canvas shows nothing whole: the steps stay on it, no pixels are kept)
            pixels = self.canvas.copy_from_bbox(box) if shown is not None else None
            panel.half_drawn = (box, pixels, shown, step + 1)
            if shown is not None:
                self.canvas.restore_region(shown)
            return False
        self.save(panel)
        self.canvas.blit(box)
        return True

    def blit(self, panel, changed_from: float | None, last_step: float) -> None:
        """Put ``panel``'s lines on the screen over its saved background: the strip from
        ``changed_from`` to ``last_step`` (steps) when its view stayed, else the whole axes."""
        if self._blit_tail(panel, changed_from, last_step):
            return
        self.canvas.restore_region(panel.background)
        for line in panel.lines.values():
            panel.ax.draw_artist(line)
        self.canvas.blit(panel.ax.bbox)
        panel.drawn_view = view_of(panel)

    def _blit_tail(self, panel, changed_from: float | None, last_step: float) -> bool:
        """Redraw only the strip of ``panel`` from ``changed_from`` to ``last_step``.

        The lines only grow at their end while the view stays, so the strip is all that
        changed: its background is restored and every line is drawn clipped to it, which
        gives the same pixels as redrawing the whole axes, at a cost that does not grow with
        the points shown. False when the view changed since the panel was last drawn.
        """
        if panel.background is None or panel.drawn_view != view_of(panel):
            return False
        if changed_from is None:
            return True  # no new points: the pixels on screen are current
        ax, box = panel.ax, panel.ax.bbox
        top = ax.get_ylim()[1]
        (px0, _), (px1, _) = ax.transData.transform([(changed_from, top), (last_step, top)])
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
                set_exact(line, x[cut:], y[cut:])
            saved = line.get_clip_box()
            line.set_clip_box(clip)
            ax.draw_artist(line)
            line.set_clip_box(saved)
            if cut:
                set_exact(line, x, y)
        self.canvas.restore_region(left)
        self.canvas.blit(strip)
        return True


def view_of(panel) -> tuple:
    """What the pixels of a panel depend on besides its data."""
    ax = panel.ax
    return (ax.get_xlim(), ax.get_ylim(), tuple(ax.bbox.extents),
            tuple(dec.decimating for dec in panel.decimators.values()), len(panel.lines))


def set_exact(line, x, y) -> None:
    """Give ``line`` its points, drawn as they are: no path simplification (they are decimated
    already), so that drawing a piece of the line gives the pixels of drawing all of it."""
    line.set_data(x, y)
    line.get_path().should_simplify = False


def draw_steps(ax) -> list[Callable]:
    """``ax.draw`` in steps, each a function of the renderer: the ticks made and their labels
    measured (nothing drawn: the costly part of an axes drawn first), the axes' background with
    what ``Axes.draw`` draws before the y axis (the x axis, its grid), then the rest but the
    legend, then the legend. Each step hides what is not its own while it draws, so the steps
    draw what one ``ax.draw`` would, in its order (artists sorted by zorder, stably): the same
    pixels."""
    if not ax.get_visible():
        return [ax.draw]
    legend = ax.get_legend()
    legend = [legend] if legend is not None and legend.get_visible() else []
    order = sorted((a for a in ax.get_children() if a is not ax.patch and a not in legend), key=lambda a: a.zorder)
    cut = order.index(ax.yaxis) if ax.yaxis in order else len(order)
    first, rest = [ax.patch, *order[:cut]], order[cut:]
    steps = [_prepare(ax), _hiding(ax, rest + legend)]
    if rest:
        steps.append(_hiding(ax, first + legend))
    return steps + [artist.draw for artist in legend]


def _prepare(ax) -> Callable:
    """Make ``ax``'s ticks for its limits and measure their labels (Matplotlib keeps both for the
    draw: the ticks, and the labels' sizes in its text cache)."""

    def prepare(renderer) -> None:
        for axis in (ax.xaxis, ax.yaxis):
            for label in axis.get_majorticklabels():
                label.get_window_extent(renderer)

    return prepare


def _hiding(ax, artists) -> Callable:
    """``ax.draw`` with ``artists`` hidden meanwhile (those visible: they are shown again after)."""

    def draw(renderer) -> None:
        hidden = [a for a in artists if a.get_visible()]
        for a in hidden:
            a.set_visible(False)
        try:
            ax.draw(renderer)
        finally:
            for a in hidden:
                a.set_visible(True)

    return draw
