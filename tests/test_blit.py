"""Steady-state frames redraw only the strip where new points went, with a whole redraw's pixels.

Pure Matplotlib (an Agg canvas, no Qt): the plot's drawing logic without the window.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kerasqt.events import BatchEvent, EpochEvent, StartEvent
from kerasqt.plotting import MetricsPlot
from kerasqt.refine import TrainingRefiner

STEPS_PER_EPOCH = 1500


def _plot() -> tuple[MetricsPlot, list]:
    fig = Figure(figsize=(9, 5.5), dpi=100)
    canvas = FigureCanvasAgg(fig)
    blits: list = []
    canvas.blit = lambda bbox=None: blits.append(bbox.width)  # what a frame sent to the screen
    return MetricsPlot(fig, canvas), blits


def _events(lo: int, hi: int, rng) -> list:
    """Batches ``lo`` .. ``hi - 1`` of a noisy falling loss and rising accuracy, epoch rows at epoch ends."""
    out = []
    for i in range(lo, hi):
        loss = float(2.0 * np.exp(-i / 2000) * rng.lognormal(0, 0.2) + 0.1)
        acc = float(0.95 - 0.5 * np.exp(-i / 2000) - abs(rng.normal(0, 0.03)))
        out.append(BatchEvent(i + 1, i // STEPS_PER_EPOCH, 1000.0 + i * 1e-3, {"loss": loss, "accuracy": acc}))
        if (i + 1) % STEPS_PER_EPOCH == 0:
            values = {"loss": loss, "accuracy": acc, "val_loss": loss * 1.05, "val_accuracy": acc * 0.98}
            out.append(EpochEvent(i + 1, i // STEPS_PER_EPOCH, 1000.0 + i * 1e-3, values))
    return out


def _pixels(plot: MetricsPlot) -> np.ndarray:
    return np.asarray(plot.canvas.buffer_rgba()).astype(int)


def test_steady_frames_blit_a_strip_with_the_pixels_of_a_whole_redraw():
    rng = np.random.default_rng(0)
    plot, blits = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, 4, STEPS_PER_EPOCH, 32)]))
    pos = 1400  # raw points first, decimated once they outnumber the pixel columns
    plot.apply(refiner.refine(_events(0, pos, rng)))
    assert plot.draw_frame(force_full=True) == "full"
    strip_frames = 0
    for per_frame in [1] * 10 + [40] * 30:  # across the first epoch's end: val lines join the axes
        plot.apply(refiner.refine(_events(pos, pos + per_frame, rng)))
        pos += per_frame
        blits.clear()
        kind = plot.draw_frame()
        if kind != "blit":
            continue
        strips = list(blits)
        drawn = _pixels(plot)
        for panel in plot.panels.values():
            panel.drawn_view = None  # the next frame blits the whole axes
        plot.dirty = True
        plot.draw_frame()
        # Equal up to rounding (a colour step of 1/255 where a line passes the strip's edge).
        assert np.abs(drawn - _pixels(plot)).max() <= 1, f"frame at step {pos}"
        if strips:
            strip_frames += 1
            assert max(strips) < 0.5 * min(p.ax.bbox.width for p in plot.panels.values())
    assert strip_frames >= 30
    assert plot.shown()["val_loss"]["epochs"] == 1


def test_a_metric_joining_its_group_waits_for_the_next_full_draw():
    rng = np.random.default_rng(1)
    plot, _ = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, 4, STEPS_PER_EPOCH, 32)]))
    plot.apply(refiner.refine(_events(0, STEPS_PER_EPOCH - 10, rng)))
    plot.draw_frame(force_full=True)
    fulls = plot.full_draws
    plot.apply(refiner.refine(_events(STEPS_PER_EPOCH - 10, STEPS_PER_EPOCH + 5, rng)))  # val_loss arrives
    assert plot.draw_frame(allow_full=False) == "blit"
    assert plot.full_draws == fulls and plot.limits_pending
    line = plot.panels["loss"].lines["e:val_loss"]
    assert len(line.get_xdata()) == 1  # drawn already, by the blit
    assert plot.draw_frame(allow_full=True) == "full"
    labels = [t.get_text() for t in plot.panels["loss"].ax.get_legend().get_texts()]
    assert "val_loss" in labels and not plot.limits_pending
