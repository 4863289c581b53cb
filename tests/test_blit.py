"""Steady-state frames redraw only the strip where new points went, with a whole redraw's pixels.

Pure Matplotlib (an Agg canvas, no Qt): the plot's drawing logic without the window.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kerasqt.decimate import minmax_decimate
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


def _expected_data(plot: MetricsPlot, panel, name: str):
    """What a line of ``panel`` must show now, computed afresh from the tables."""
    kind, key = name.split(":", 1)
    if kind in "bs":
        y = plot.batches.column(key) if kind == "b" else plot.batches.smoothed(key)
        (x0, x1), columns = panel.ax.get_xlim(), max(int(panel.ax.bbox.width), 50)
        return minmax_decimate(plot.batches.steps, y, x0, x1, columns)
    table = plot.tests if kind == "t" else plot.epochs
    return (table.steps, table.column(key)) if key in table.names() else ([], [])


def test_every_frame_leaves_each_line_with_the_data_of_its_table_for_the_view():
    # Lines whose table did not change keep their data between frames (most frames bring
    # batches, not epochs): what they keep must still be what a fresh computation gives.
    rng = np.random.default_rng(5)
    plot, _ = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, 4, STEPS_PER_EPOCH, 32)]))
    pos = 0
    kinds = set()
    for per_frame in [700, 3, 3] + [90] * 30 + [1] * 5:  # decimated and not, epoch ends, new limits
        plot.apply(refiner.refine(_events(pos, pos + per_frame, rng)))
        pos += per_frame
        kind = plot.draw_frame(staged=True)
        kinds.add(kind)
        if kind == "part":
            continue  # an axes drawn anew: the others catch up in the frames that follow
        for panel in plot.panels.values():
            for name, line in panel.lines.items():
                x, y = _expected_data(plot, panel, name)
                assert np.array_equal(line.get_xdata(), x), (pos, name)
                assert np.array_equal(line.get_ydata(), y, equal_nan=True), (pos, name)
    loss = plot.panels["loss"]
    loss.ax.set_xlim(500, 900)  # the user zooms in: the same data, decimated for the new view
    plot.dirty = True
    plot.draw_frame()
    x, _ = _expected_data(plot, loss, "b:loss")
    assert np.array_equal(loss.lines["b:loss"].get_xdata(), x) and len(x) > 400  # the real points
    plot.apply(refiner.refine([BatchEvent(pos + 1, 3, 2000.0, {"loss": 0.5, "accuracy": 0.0})]))
    plot.draw_frame()  # a batch at accuracy 0: in the range on a linear scale
    plot.set_log_scale(True)  # the same data on a log scale: the ranges leave 0 out
    plot.draw_frame(force_full=True)
    acc = plot.panels["accuracy"]
    positive = plot.batches.column("accuracy")[plot.batches.column("accuracy") > 0]
    assert 0 < acc.ax.get_ylim()[0] <= positive.min()
    assert {"blit", "part", "full"} <= kinds and pos > 2 * STEPS_PER_EPOCH
    assert len(plot.panels["loss"].lines["e:val_loss"].get_xdata()) == 2


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


def test_staged_full_draws_draw_one_axes_per_frame_with_a_whole_draws_pixels():
    rng = np.random.default_rng(2)
    plot, blits = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, 4, STEPS_PER_EPOCH, 32)]))
    plot.apply(refiner.refine(_events(0, STEPS_PER_EPOCH + 100, rng)))  # loss and accuracy: two axes
    kinds = [plot.draw_frame(staged=True)]
    while kinds[-1] == "part":
        kinds.append(plot.draw_frame(staged=True))
    # the layout in one frame, then each axes in four: its ticks, its x axis, the rest, its legend
    assert kinds == ["part"] * 8 + ["full"] and plot.panel_draws == 2 and plot.full_draws == 1
    width = plot.figure.bbox.width
    assert blits[0] == width  # a new layout: the whole figure's background with the first axes
    loss, acc = plot.panels["loss"], plot.panels["accuracy"]
    assert blits[-1] == acc.cell.width < width  # then each axes in its own cell
    staged = _pixels(plot)
    plot.draw_frame(force_full=True)  # the whole figure at once
    assert np.abs(staged - _pixels(plot)).max() <= 1

    # One metric leaves its axes' limits: only that axes is drawn anew, the other is blitted.
    acc_ylim = acc.ax.get_ylim()
    plot.apply(refiner.refine([BatchEvent(STEPS_PER_EPOCH + 101, 1, 2000.0, {"loss": 40.0, "accuracy": 0.6})]))
    blits.clear()
    before = _pixels(plot)
    for _ in range(3):
        assert plot.draw_frame(staged=True) == "part" and not blits
        # Between the steps the canvas keeps the last whole frame: a repaint of the window
        # then (an expose, a grab) shows the axes with its lines, not half drawn.
        assert np.array_equal(_pixels(plot), before)
    assert plot.draw_frame(staged=True) == "full"
    assert plot.panel_draws == 3 and loss.ax.get_ylim()[1] > 40 and acc.ax.get_ylim() == acc_ylim
    assert blits == [loss.cell.width]
    assert plot.draw_frame(staged=True) == "blit"  # the next frame: the other axes gets its new point
    assert width not in blits and len(blits) >= 2
    y0, y1 = loss.ax.get_ylim()
    lowest = float(np.nanmin(plot.batches.column("loss")))
    assert y1 - 40 > 2.5 * (lowest - y0)  # more headroom on the side the data left by
    staged = _pixels(plot)
    plot.draw_frame(force_full=True)
    assert np.abs(staged - _pixels(plot)).max() <= 1


def _falling_run(staged: bool = False, floor: float = 10.0) -> MetricsPlot:
    """A run of 100 batches whose loss falls slowly, drops, then goes on falling slowly towards
    ``floor``: its limits grew with room below; each chunk of 10 drawn as it came."""
    plot, _ = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, 2, 50, 32)]))
    rows = [BatchEvent(i + 1, i // 50, 1000.0 + i,
                       {"loss": floor + (2.0 - 0.1 * i if i < 10 else 0.1 + 0.1 / (i - 9)),
                        "accuracy": min(0.5 + i / 100, 0.97)})
            for i in range(100)]
    for k in range(0, 100, 10):
        plot.apply(refiner.refine(rows[k:k + 10]))
        while plot.draw_frame(staged=staged) == "part":
            pass
    return plot


def test_when_the_run_is_over_its_y_limits_fit_the_data_again():
    # While the run goes on, the limits grow with headroom on the side the data leave by; once it
    # is over, nothing will come: its last frame fits them to the data (one axes drawn anew).
    plot = _falling_run()
    loss = plot.panels["loss"]
    lo, hi = 10.1 + 0.1 / 90, 12.0
    y0, y1 = loss.ax.get_ylim()
    assert y0 < lo - 0.3 * (hi - lo)  # the limits grew with room below the falling curve
    x_limits, draws = loss.ax.get_xlim(), plot.full_draws
    assert plot.draw_frame() is None  # nothing new
    plot.run_over()
    assert plot.draw_frame() == "full" and plot.full_draws == draws + 1
    y0, y1 = loss.ax.get_ylim()
    assert lo - 0.2 * (hi - lo) <= y0 < lo and hi < y1 <= hi + 0.2 * (hi - lo)
    assert loss.ax.get_xlim() == x_limits  # the planned steps stay: a run stopped early shows it
    assert plot.draw_frame() is None  # once


def test_limits_of_losses_and_scores_leave_no_room_below_0_nor_above_1():
    # A loss falling towards 0 and an accuracy rising towards 1: their limits grow with room on
    # the side the data leave by, but a loss cannot go below 0 nor an accuracy above 1.
    plot = _falling_run(floor=0.0)
    (y0, y1), (a0, a1) = plot.panels["loss"].ax.get_ylim(), plot.panels["accuracy"].ax.get_ylim()
    assert -0.03 * y1 == pytest.approx(y0) and 2.0 < y1
    assert a0 < 0.5 and 0.97 < a1 == pytest.approx(1 + 0.03 * (1 - a0))
    plot.run_over()
    plot.draw_frame()
    (y0, y1), (a0, a1) = plot.panels["loss"].ax.get_ylim(), plot.panels["accuracy"].ax.get_ylim()
    assert -0.03 * y1 == pytest.approx(y0) and 0.97 < a1 <= 1.03


def test_when_a_run_without_planned_steps_is_over_its_x_limits_fit_the_steps_it_took():
    # Unknown totals (a generator without steps): the x limits grow by doubling, with room for the
    # run to go on; its last frame fits them to the steps taken. A new run grows them again.
    plot, _ = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, None, None)]))
    plot.apply(refiner.refine([BatchEvent(i + 1, 0, 1000.0 + i, {"loss": 1.0 / (i + 1)}) for i in range(100)]))
    plot.draw_frame()
    loss = plot.panels["loss"]
    assert loss.ax.get_xlim() == (0.0, 128.0)
    plot.run_over()
    assert plot.draw_frame() == "full"
    assert loss.ax.get_xlim() == (0.0, 100.0)
    plot.reset(None)
    plot.apply(refiner.refine([StartEvent(2000.0, None, None)]))
    plot.apply(refiner.refine([BatchEvent(i + 1, 0, 2000.0 + i, {"loss": 0.5}) for i in range(50)]))
    plot.draw_frame()
    assert loss.ax.get_xlim() == (0.0, 100.0)  # room enough: kept
    plot.apply(refiner.refine([BatchEvent(i + 1, 0, 2000.0 + i, {"loss": 0.5}) for i in range(50, 120)]))
    plot.draw_frame()
    assert loss.ax.get_xlim() == (0.0, 256.0)


def test_a_run_that_begins_while_the_last_runs_end_is_half_drawn_draws_the_kept_axes_anew():
    # The last frame of a run sets new limits on every axes and draws them one per turn; a run
    # beginning meanwhile keeps those axes: the ones not yet drawn for their limits are drawn anew
    # (blitting over a background of the old limits would show ticks that do not match the lines).
    plot = _falling_run(staged=True)
    plot.run_over()
    assert plot.draw_frame(staged=True) == "part" and plot.drawing  # the end, half drawn
    plot.reset(None)
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(2000.0, 2, 50, 32)]))
    plot.apply(refiner.refine([BatchEvent(i + 1, 0, 2000.0 + i, {"loss": 0.5, "accuracy": 0.7}) for i in range(20)]))
    while plot.draw_frame(staged=True) == "part":
        pass
    staged = _pixels(plot)
    plot.draw_frame(force_full=True)
    assert np.abs(staged - _pixels(plot)).max() <= 1


def test_a_staged_draw_on_a_blank_canvas_paints_every_pixel_even_when_restarted():
    # Three groups in a 2x2 grid leave one cell without axes: only the first step after a new
    # layout paints it. New limits between an axes' two steps make that axes start again.
    plot, _ = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, 4, STEPS_PER_EPOCH, 32)]))
    rows = [BatchEvent(i + 1, 0, 1000.0 + i, {"loss": 1.0 / (i + 1), "accuracy": 0.5, "mae": 0.3})
            for i in range(50)]
    rows.append(EpochEvent(50, 0, 1050.0, {"loss": 0.1, "val_loss": 0.2, "accuracy": 0.5, "mae": 0.3}))
    plot.apply(refiner.refine(rows))
    assert plot.draw_frame(staged=True) == "part"  # the layout
    assert plot.draw_frame(staged=True) == "part"  # the first axes without its legend
    plot.apply(refiner.refine([BatchEvent(51, 1, 1051.0, {"loss": 50.0, "accuracy": 0.5, "mae": 0.3})]))
    while plot.draw_frame(staged=True) == "part":
        pass
    assert len(plot.panels) == 3
    assert (_pixels(plot)[..., 3] == 255).all()  # no pixel left transparent


def test_a_next_run_of_the_same_metrics_keeps_the_axes_and_their_limits():
    rng = np.random.default_rng(3)
    plot, _ = _plot()
    refiner = TrainingRefiner(0.9)
    plot.apply(refiner.refine([StartEvent(1000.0, 4, STEPS_PER_EPOCH, 32)]))
    plot.apply(refiner.refine(_events(0, STEPS_PER_EPOCH + 100, rng)))
    while plot.draw_frame(staged=True) == "part":
        pass
    loss = plot.panels["loss"]
    limits, artists, draws = (loss.ax.get_xlim(), loss.ax.get_ylim()), plot.artist_count(), plot.panel_draws

    refiner = TrainingRefiner(0.9)  # the same fit again: its first batches, no val_ values yet
    plot.reset(None)  # as the window does when the run begins, before its first update
    assert plot.draw_frame(staged=True) is None or plot.panels == {}  # no data yet: nothing laid out
    plot.apply(refiner.refine([StartEvent(5000.0, 4, STEPS_PER_EPOCH, 32)]))
    plot.apply(refiner.refine(_events(0, 300, np.random.default_rng(3))))
    assert plot.draw_frame(staged=True) == "blit"  # no axes drawn anew: the data fits the limits
    assert plot.panels["loss"] is loss and plot.panel_draws == draws
    assert (loss.ax.get_xlim(), loss.ax.get_ylim()) == limits
    assert len(loss.lines["b:loss"].get_xdata()) == 300 and len(loss.lines["e:val_loss"].get_xdata()) == 0
    plot.apply(refiner.refine(_events(300, STEPS_PER_EPOCH + 10, np.random.default_rng(4))))  # val_ values come
    plot.draw_frame(staged=True)
    assert len(loss.lines["e:val_loss"].get_xdata()) == 1 and plot.artist_count() == artists  # no line twice

    plot.apply(refiner.refine([StartEvent(9000.0, 4, STEPS_PER_EPOCH, 32)]))  # a run with another metric
    plot.apply(refiner.refine([BatchEvent(1, 0, 9000.1, {"loss": 1.0, "accuracy": 0.5, "mae": 0.3})]))
    plot.draw_frame(staged=True)
    assert plot.panels["loss"] is not loss and "mae" in plot.panels


def _frame(plot) -> None:
    while plot.draw_frame(allow_full=True, staged=False) not in (None, "blit"):
        pass


def test_a_run_that_ends_early_fits_its_x_axis_to_the_steps_taken():
    plot, _ = _plot()
    refiner = TrainingRefiner()
    plot.apply(refiner.refine([StartEvent(0.0, epochs=300, steps=20)]))
    plot.apply(refiner.refine(_events(0, 140, np.random.default_rng(0))))
    _frame(plot)
    assert plot.panels["loss"].ax.get_xlim() == (0.0, 6000.0)  # while it runs: the planned span
    plot.run_over()  # EarlyStopping ended it at step 140
    _frame(plot)
    for panel in plot.panels.values():
        assert panel.ax.get_xlim() == (0.0, 140.0)
    plot.dirty = True
    _frame(plot)  # and it stays so at later frames
    assert plot.panels["loss"].ax.get_xlim() == (0.0, 140.0)


def test_the_learning_rate_gets_a_log_scale_step_line_once_it_changes():
    plot, _ = _plot()
    refiner = TrainingRefiner()
    plot.apply(refiner.refine([StartEvent(0.0, epochs=4, steps=10)]))
    events = [BatchEvent(i, (i - 1) // 10, 1.0 + i, {"loss": 1.0 / i}, (), 1e-3) for i in range(1, 21)]
    plot.apply(refiner.refine(events + [EpochEvent(10, 0, 11.0, {"loss": 0.1, "learning_rate": 1e-3})]))
    _frame(plot)
    assert "learning rate" not in plot.panels  # constant so far: the progress line says it
    events = [BatchEvent(i, (i - 1) // 10, 1.0 + i, {"loss": 1.0 / i}, (), 1e-5) for i in range(21, 31)]
    plot.apply(refiner.refine(events + [EpochEvent(30, 2, 31.0, {"loss": 0.03, "learning_rate": 1e-5})]))
    _frame(plot)
    panel = plot.panels["learning rate"]
    assert panel.ax.get_yscale() == "log"
    (line,) = panel.lines.values()
    assert line.get_drawstyle() == "steps-post"
    assert list(line.get_xdata()) == [1, 10, 21, 30]  # where it changed, and epoch ends
    assert list(line.get_ydata()) == pytest.approx([1e-3, 1e-3, 1e-5, 1e-5])
    lo, hi = panel.ax.get_ylim()
    assert lo < 1e-5 and hi > 1e-3
    labels = [t.get_text() for p in plot.panels.values() if p.ax.get_legend() for t in p.ax.get_legend().get_texts()]
    assert not [label for label in labels if "learning_rate" in label]
    plot.set_log_scale(False)  # the log-scale toggle is for the metrics: the rate stays logarithmic
    assert panel.ax.get_yscale() == "log"


@pytest.mark.parametrize("height", [4.4, 8.0, 16.0])
def test_the_learning_rate_axes_labels_its_ticks_without_overlap(height):
    # ReduceLROnPlateau over a long run: 3e-3 down to 7e-6, three decades and more, in the third
    # axes of a window's figure (4.4 in: its height on a laptop screen, the rate's axes 148 px)
    fig = Figure(figsize=(9.7, height), dpi=100)
    canvas = FigureCanvasAgg(fig)
    plot = MetricsPlot(fig, canvas)
    refiner = TrainingRefiner()
    plot.apply(refiner.refine([StartEvent(0.0, epochs=6, steps=10)]))
    rates = [3e-3, 9e-4, 2.7e-4, 8.1e-5, 2.43e-5, 7.29e-6]
    for e, rate in enumerate(rates):
        events = [BatchEvent(i, e, 1.0 + i, {"loss": 1.0 / i, "accuracy": 0.5}, (), rate)
                  for i in range(10 * e + 1, 10 * e + 11)]
        plot.apply(refiner.refine(events + [EpochEvent(10 * e + 10, e, 11.0 + 10 * e, {"loss": 0.1})]))
    _frame(plot)
    ax = plot.panels["learning rate"].ax
    canvas.draw()
    renderer = canvas.get_renderer()
    shown = [t for t in ax.get_yticklabels(minor=False) + ax.get_yticklabels(minor=True)
             if t.get_text() and t.get_visible() and ax.get_ylim()[0] <= t.get_position()[1] <= ax.get_ylim()[1]]
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.y0)
    assert len(boxes) >= 4, [t.get_text() for t in shown]  # each decade at least
    overlaps = [(a.y1, b.y0) for a, b in itertools.pairwise(boxes) if a.y1 > b.y0]
    assert not overlaps, [t.get_text() for t in shown]
    minors = [t.get_text() for t in ax.get_yticklabels(minor=True) if t.get_text()]
    if height >= 16:  # room for all the labels between the decades'
        assert {"2e-04", "3e-04", "5e-04"} <= set(minors), minors


@pytest.mark.parametrize("legend", [True, False])
def test_an_axes_drawn_in_steps_has_the_pixels_of_one_draw(legend):
    # Marks (lines, a ring, labels), a title, a legend: every kind of artist the window puts on an
    # axes, on both sides of the y axis in the draw order; the steps keep that order exactly.
    from kerasqt.blit import draw_steps

    def axes_on_canvas():
        fig = Figure(figsize=(5, 4), dpi=100)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        x = np.arange(200)
        ax.plot(x, np.exp(-x / 50), label="loss")
        ax.plot(x, np.exp(-x / 60) + 0.05, label="val_loss", zorder=1)
        ax.axvline(120, ls=":", color="0.4")
        ax.scatter([150], [0.1], s=200, facecolors="none", edgecolors="gold", zorder=4)
        ax.annotate("lr 0.001", (120, 0.8), zorder=3)
        ax.grid(alpha=0.3)
        ax.set_title("loss", fontsize=9)
        if legend:
            ax.legend(loc="upper right")
        canvas.draw()  # (a renderer of the figure's size)
        return fig, canvas, ax

    fig, canvas, ax = axes_on_canvas()
    steps = draw_steps(ax)
    assert len(steps) == (4 if legend else 3)
    renderer = canvas.get_renderer()
    renderer.clear()
    fig.patch.draw(renderer)
    ax.draw(renderer)
    whole = np.asarray(canvas.buffer_rgba()).copy()
    renderer.clear()
    fig.patch.draw(renderer)
    for step in steps:
        step(renderer)
    assert np.array_equal(np.asarray(canvas.buffer_rgba()), whole)
    assert all(a.get_visible() for a in (ax.xaxis, ax.yaxis, ax.patch, ax.title, *ax.lines))
