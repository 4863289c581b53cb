"""The sine demo's plot (main thread only): one curve, redrawn in place."""

from __future__ import annotations

import math

from ..plotting import Plot

__all__ = ["SinePlot"]


class SinePlot(Plot):
    """The sine demo: one axes, one line updated in place."""

    def __init__(self, figure, canvas) -> None:
        super().__init__(figure, canvas)
        figure.clear()
        figure.set_layout_engine("constrained")
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

    def draw_frame(self, force_full: bool = False, allow_full: bool = True, staged: bool = False) -> str | None:
        if not (self.dirty or force_full):
            return None
        self.dirty = False
        self.canvas.draw()  # (in the window's frame timer: one small axes)
        self.frames += 1
        self.full_draws += 1
        return "full"
