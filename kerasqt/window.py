"""The monitor window (main thread only): one window for the sine demo and for training.

Layout, top to bottom: a row of controls (*start threads* / *stop threads* in
demo mode, *Stop training* and *log scale* in training mode, *Export*), a
progress bar with its line of text, the Matplotlib navigation toolbar and
canvas, and three read-only message panes (control, worker or training output,
receiver).

Updates arrive by queued signals from the receiver thread and are stored;
a frame timer draws at most ``max_fps`` frames per second. While training runs,
the frame rate also adapts to the measured cost of a frame, so that drawing
takes at most ``draw_budget`` of the main thread's time. While ``fit`` holds the
main thread, an update whose frame is due is drawn at once, in the same turn of
the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
import weakref

from matplotlib.figure import Figure
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .demo import DemoSettings
from .demo.plot import SinePlot
from .events import ErrorEvent, counted, summary, terminal_text
from .plotting import MetricsPlot
from .qt import FigureCanvasQTAgg, NavigationToolbar2QT
from .refine import SineUpdate, TrainingUpdate
from .session import DemoSession, TrainingSession

__all__ = ["MonitorWindow"]

log = logging.getLogger("kerasqt")

PANES = ("control", "worker", "receiver")
PANE_TITLES = {
    "demo": ("control messages", "worker messages", "receiver messages"),
    "training": ("control messages", "training output (print, logging)", "receiver messages"),
}


def _guarded(method):
    """A slot that lets no exception out into Qt: PyQt5 aborts the process on one, and during a
    main-thread ``fit`` the slots run inside the training's own calls. A bug is logged once
    (:meth:`MonitorWindow.internal_error`) and the window goes on without that step; Ctrl-C,
    which lands wherever Python runs, is kept for :meth:`MonitorWindow.take_interrupt`."""

    @functools.wraps(method)
    def slot(self, *args):
        try:
            return method(self, *args)
        except KeyboardInterrupt:
            self.interrupted = True
        except Exception as exc:
            self.internal_error(method.__name__, exc)

    return slot


class _Toolbar(NavigationToolbar2QT):
    """The navigation toolbar; Home also gives the axis limits back to autoscaling."""

    def __init__(self, canvas, window: MonitorWindow) -> None:
        super().__init__(canvas, window)
        # Weak: Qt keeps the toolbar alive for the window, a link Python's gc cannot see, so a
        # strong reference back would keep every closed window (and its figure) forever.
        self._window = weakref.ref(window)

    def home(self, *args) -> None:
        window = self._window()
        plot = window.plot if window is not None else None
        if isinstance(plot, MetricsPlot):
            plot.reset_view()
            window.request_frame()
        else:
            super().home(*args)


class MonitorWindow(QMainWindow):
    """The kerasqt window. Demo mode until a training run begins, then training mode."""

    FULL_DRAW_MIN_GAP = 1.0  # seconds between full redraws (new axis limits) while training
    FULL_DRAW_MAX_GAP = 4.0  # ... and at most this long, so that the limits follow the data (full_draw_gap)
    MAX_FRAME_GAP = 0.4  # seconds: new points are drawn 2.5 times a second at least, whatever a frame costs
    # Share of the main thread that blits may take while training runs in another thread (the main
    # thread is idle otherwise); a fit in the main thread waits for every frame: there draw_budget holds.
    BACKGROUND_DRAW_SHARE = 0.2
    # Seconds between the receiver's wakes while fit holds the main thread: an update then costs the
    # training its turn of the event loop, so each one brings a frame (MAX_FRAME_GAP at most) with it.
    MAIN_FIT_RECEIVER_INTERVAL = 0.4

    closed = Signal()
    _run_requested = Signal(object)
    _test_reported = Signal(object, object)

    def __init__(self, *, title: str = "kerasqt", demo: DemoSettings | None = None, max_fps: float = 30.0,
                 draw_budget: float = 0.02) -> None:
        super().__init__()
        if not 0 < max_fps <= 240:
            raise ValueError(f"max_fps must be in (0, 240], got {max_fps!r}")
        if not 0 < draw_budget <= 1:
            raise ValueError(f"draw_budget must be in (0, 1], got {draw_budget!r}")
        self.setWindowTitle(title)
        self.resize(1100, 820)
        self.max_fps = max_fps
        self.draw_budget = draw_budget
        self.mode = "demo"
        self.monitor = None  # the QtMonitor of the current or last run
        self.is_closed = False
        self.frames = 0
        self.frame_ms: list[float] = []
        self.last_update: TrainingUpdate | None = None
        self.training_active = False
        self._next_full = 0.0
        self._run_began = 0.0
        self._staged_cost = 0.0  # seconds spent so far on the axes of a staged full draw
        self._earliest_frame = 0.0
        self._fit_in_main = False
        self.interrupted = False  # Ctrl-C landed in a slot (see take_interrupt)
        self.internal_errors = 0
        self._build(demo)
        self._run_requested.connect(self._begin_run, Qt.QueuedConnection)
        self._test_reported.connect(self._show_test, Qt.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._frame)
        self._set_mode("demo")

    # -- construction ------------------------------------------------------------------------------
    def _build(self, demo: DemoSettings | None) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)

        row = QHBoxLayout()
        self.start_button = QPushButton("start threads")
        self.stop_button = QPushButton("stop threads")
        self.stop_training_button = QPushButton("Stop training")
        self.stop_training_button.setToolTip("Ask fit to stop after the current batch")
        self.log_checkbox = QCheckBox("log scale")
        self.export_button = QPushButton("Export…")
        self.status = QLabel("")
        for w in (self.start_button, self.stop_button, self.stop_training_button, self.log_checkbox,
                  self.export_button):
            row.addWidget(w)
        row.addWidget(self.status, 1)
        layout.addLayout(row)

        prow = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(260)
        self.progress_label = QLabel("")
        prow.addWidget(self.progress)
        prow.addWidget(self.progress_label, 1)
        layout.addLayout(prow)

        self.figure = Figure(figsize=(9, 5.5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.toolbar = _Toolbar(self.canvas, self)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)

        panes_row = QHBoxLayout()
        self.panes: dict[str, QPlainTextEdit] = {}
        self._pane_boxes: dict[str, QGroupBox] = {}
        for name in PANES:
            box = QGroupBox(name)
            inner = QVBoxLayout(box)
            pane = QPlainTextEdit()
            pane.setReadOnly(True)
            pane.setMaximumBlockCount(5000)
            pane.setMinimumHeight(110)
            inner.addWidget(pane)
            panes_row.addWidget(box)
            self.panes[name] = pane
            self._pane_boxes[name] = box
        layout.addLayout(panes_row)
        self.setCentralWidget(central)

        self.demo = DemoSession(demo, self)
        self.demo.updated.connect(self._on_update)
        self.demo.message.connect(self.append_message)
        self.demo.running_changed.connect(self._demo_running_changed)
        self.training = TrainingSession(self)
        self.training.updated.connect(self._on_update)
        self.training.message.connect(self.append_message)
        self.training.run_finished.connect(self._run_finished)

        self.start_button.clicked.connect(self.start_threads)
        self.stop_button.clicked.connect(self.stop_threads)
        self.stop_training_button.clicked.connect(self.stop_training)
        self.log_checkbox.toggled.connect(self._log_toggled)
        self.export_button.clicked.connect(self._export_dialog)
        self.plot = None

    def _set_mode(self, mode: str) -> None:
        if self.plot is not None and self.mode == mode:
            return
        if self.plot is not None:
            self.plot.close()
        self.mode = mode
        demo = mode == "demo"
        self.plot = SinePlot(self.figure, self.canvas) if demo else MetricsPlot(self.figure, self.canvas)
        if not demo:
            self.plot.set_log_scale(self.log_checkbox.isChecked())
        for w in (self.start_button, self.stop_button):
            w.setVisible(demo)
        self.stop_training_button.setVisible(not demo)
        self.log_checkbox.setVisible(not demo)
        self.progress.setVisible(not demo)
        self.progress_label.setVisible(not demo)  # the demo has no progress: no empty row either
        for name, title in zip(PANES, PANE_TITLES[mode], strict=True):
            self._pane_boxes[name].setTitle(title)
        self._demo_running_changed(False)
        self.stop_training_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress_label.setText("")
        self.canvas.draw_idle()

    # -- messages ----------------------------------------------------------------------------------
    @_guarded
    def append_message(self, source: str, text: str) -> None:
        pane = self.panes.get(source, self.panes["control"])
        if "\x1b" in text or "\r" in text or "\b" in text:  # (a recorded log's lines, say)
            text = "\n".join(terminal_text(line) for line in text.split("\n"))
        pane.appendPlainText(text)

    def pane_text(self, source: str) -> str:
        return self.panes[source].toPlainText()

    # -- demo mode ---------------------------------------------------------------------------------
    def start_threads(self) -> bool:
        if self.training_active:
            self.append_message("control", "training is running: the demo can start after it")
            return False
        self._set_mode("demo")
        return self.demo.start()

    def stop_threads(self) -> bool:
        return self.demo.stop()

    def _demo_running_changed(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        idle = "demo stopped" if self.demo.runs else "press start threads to run the demo"
        self.status.setText("demo running" if running else ("" if self.mode == "training" else idle))
        if running:
            self.request_frame()

    # -- training mode -----------------------------------------------------------------------------
    def show_training(self) -> None:
        """Switch to training mode now (the demo stops), before the first run arrives."""
        if self.demo.running:
            self.demo.stop()
        self._set_mode("training")

    def request_run(self, monitor) -> None:
        """Begin showing ``monitor``'s run; from the main thread now, from others queued."""
        from .qtapp import in_main_thread

        if in_main_thread():
            self._begin_run(monitor)
        else:
            self._run_requested.emit(monitor)

    def report_test(self, monitor, ev) -> None:
        """``monitor``'s ``evaluate()`` outside ``fit`` gave ``ev``; from the main thread now, from
        others queued."""
        from .qtapp import in_main_thread

        if in_main_thread():
            self._show_test(monitor, ev)
        else:
            self._test_reported.emit(monitor, ev)

    @_guarded
    def _show_test(self, monitor, ev) -> None:
        """A test result joins the run shown when it is ``monitor``'s last: a diamond at its last
        step in each metric's axes; the control pane says it either way."""
        if self.is_closed:
            return
        shown = self.mode == "training" and self.monitor is monitor and isinstance(self.plot, MetricsPlot)
        if shown:
            self.plot.apply(TrainingUpdate(tests=(ev,)))
            self.request_frame()
        where = f"at step {ev.step}" if shown else "(not plotted: this window shows no run of this monitor)"
        self.append_message("control", f"evaluate: {summary(ev.values) or 'no numbers'} {where}")

    @_guarded
    def _begin_run(self, monitor) -> None:
        self.interrupted = False  # a Ctrl-C from before this run is not this run's
        self._staged_cost = 0.0
        self._next_full, self._run_began = 0.0, time.perf_counter()  # the last run's pacing is not this one's
        try:
            self.show_training()
            self.plot.reset(None)
            self.monitor = monitor
            self.training_active = True
            self._fit_in_main = getattr(monitor, "_app", None) is not None  # it turns our event loop
            self.stop_training_button.setEnabled(True)
            self.status.setText("training")
            # A fit in the main thread waits for every turn of the event loop: the receiver then
            # wakes 2.5 times a second, and each update is drawn in the turn that brings it.
            self.training.begin(monitor.events, smoothing=monitor.smoothing, max_rate=monitor.max_rate,
                                alive=monitor.fit_running, tap=monitor.tap,
                                interval=self.MAIN_FIT_RECEIVER_INTERVAL if self._fit_in_main else None)
        except Exception:
            self.training_active = False
            monitor._run_finished()  # nobody receives this run: the monitor stops queueing it
            raise
        self.append_message("control", f"training started ({monitor.describe_fit()})")
        self.request_frame()

    def stop_training(self) -> None:
        if self.monitor is not None and self.training_active:
            self.monitor.stop_training()
            self.stop_training_button.setEnabled(False)
            self.append_message("control", "stop requested: fit ends after the current batch")

    @_guarded
    def _run_finished(self) -> None:
        self.training_active = False
        self.stop_training_button.setEnabled(False)
        if self.monitor is not None:
            self.monitor._run_finished()
        if isinstance(self.plot, MetricsPlot):
            self.plot.run_over()  # limits that fit the data, in the run's last frame
        if self._fit_in_main:  # the run's last frame (a full draw, often) is not on the clock of its fit:
            self._earliest_frame = time.perf_counter() + 0.05  # it comes at the next turn of the loop
        self.request_frame()

    def _log_toggled(self, on: bool) -> None:
        if isinstance(self.plot, MetricsPlot):
            self.plot.set_log_scale(on)
            self.request_frame()

    # -- updates and frames ------------------------------------------------------------------------
    @_guarded
    def _on_update(self, update) -> None:
        if self.is_closed:
            return
        self.plot.apply(update)
        if isinstance(update, TrainingUpdate):
            self.last_update = update
            self._show_progress(update)
        elif isinstance(update, SineUpdate):
            self.status.setText(f"demo running: {self.plot.curves} curves received")
        self.request_frame()

    def _show_progress(self, update: TrainingUpdate) -> None:
        p = update.progress
        if p is not None:
            frac = p.fraction
            if frac is not None:
                self.progress.setValue(int(frac * 1000))
            else:
                self.progress.setRange(0, 0)  # busy indicator when the totals are unknown
            self.progress_label.setText(p.describe())
        end = update.end
        if end is None:
            return
        if isinstance(end, ErrorEvent):
            self.status.setText(f"training {end.how}")
            self.status.setStyleSheet("color: #b00020; font-weight: bold" if end.how == "failed" else
                                      "color: #9a6700; font-weight: bold")
            self.append_message("control", f"training {end.how}: {end.message}")
        else:
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1000)
            # Finished by itself: every planned step done, or, with unknown totals, every epoch.
            if not end.stopped and p is not None and (p.fraction is None or p.fraction >= 0.999):
                self.progress.setValue(1000)
            word = "stopped early" if end.stopped else "finished"
            self.status.setText(f"training {word}")
            self.status.setStyleSheet("")
            self.append_message("control", f"training {word} at step {end.step} "
                                           f"({counted(update.counts.get('batches', 0), 'batch', 'batches')}, "
                                           f"{counted(update.counts.get('epochs', 0), 'epoch')})")

    def request_frame(self) -> None:
        """Draw soon: at once, or when the frame pacing allows; brings a longer wait forward.

        While ``fit`` holds the main thread, a frame that is due before the next turn of the
        event loop (``pump_interval``) is drawn now, in the turn that brought the update, not in
        another turn taken from training.
        """
        if self.is_closed:
            return
        wait = max(int((self._earliest_frame - time.perf_counter()) * 1000), 0)
        if self._fit_in_main and self.training_active and wait <= 1000 * getattr(self.monitor, "pump_interval", 0):
            self._timer.stop()
            self._frame()
        elif not self._timer.isActive() or self._timer.remainingTime() > wait:
            self._timer.start(wait)

    @_guarded
    def _frame(self) -> None:
        """Draw one frame, then schedule the next within the drawing budget.

        While training runs, a frame that took ``c`` seconds is followed by a pause of
        ``c / (draw_budget / 2)`` (``c / BACKGROUND_DRAW_SHARE`` when training runs in another
        thread), at most ``MAX_FRAME_GAP``; full draws (new axis limits) get the other half of the
        budget and happen at most every ``FULL_DRAW_MIN_GAP`` seconds, at least every quarter of
        the run's age (``FULL_DRAW_MIN_GAP`` to ``FULL_DRAW_MAX_GAP``). They are staged: one axes
        per frame, the event loop turning in between, their costs added up. The lines keep
        moving in between (blitted), clipped to the old limits.
        """
        if self.is_closed or self.isHidden():
            return
        now = time.perf_counter()
        allow_full = not self.training_active or now >= self._next_full
        # The run's last frame (new limits, often) is staged too: the event loop keeps turning.
        kind = self.plot.draw_frame(allow_full=allow_full, staged=self.training_active or self.plot.finishing)
        cost = time.perf_counter() - now
        if kind is None:
            return  # nothing changed: the next update asks again
        self.frames += 1
        self.frame_ms.append(cost * 1e3)
        del self.frame_ms[:-200]
        gap = 1.0 / self.max_fps
        if kind == "part":  # one axes of a staged full draw: the next one after a turn of the event loop
            self._staged_cost += cost
        elif self.training_active:
            half = self.draw_budget / 2
            if kind == "full":
                cost, self._staged_cost = cost + self._staged_cost, 0.0
                self._next_full = now + self.full_draw_gap(cost, now)
            else:
                share = half if self._fit_in_main else max(half, self.BACKGROUND_DRAW_SHARE)
                gap = max(gap, min(cost / share, self.MAX_FRAME_GAP))
        self._earliest_frame = now + gap  # new data may draw from then on (request_frame)
        if self.plot.limits_pending:  # no new data: wait for the full draw
            gap = max(gap, self._next_full - time.perf_counter())
        self._timer.start(max(int(gap * 1000), 1))

    def full_draw_gap(self, cost: float, now: float) -> float:
        """Seconds from a full draw that took ``cost`` seconds (at ``now``, while training runs) to
        the next one: its share of the budget, at least ``FULL_DRAW_MIN_GAP``, at most a quarter
        of the run's age (the curves change most in its first seconds) up to ``FULL_DRAW_MAX_GAP``."""
        cap = min(max(self.FULL_DRAW_MIN_GAP, (now - self._run_began) / 4), self.FULL_DRAW_MAX_GAP)
        return min(max(self.FULL_DRAW_MIN_GAP, cost / (self.draw_budget / 2)), cap)

    def catch_up(self, timeout: float = 2.0) -> bool:
        """Turn the event loop until the receiver has delivered a run that has ended (a main-thread
        ``fit`` returns without waiting for that); True when nothing is left to deliver."""
        from .qtapp import in_main_thread

        monitor = self.monitor
        if not (in_main_thread() and self.training.running and monitor is not None and monitor.run_over()):
            return not self.training.running
        app = QApplication.instance()
        deadline = time.monotonic() + timeout
        while self.training.running and time.monotonic() < deadline:
            self.training.wake()
            app.processEvents()
            time.sleep(0.001)
        app.processEvents()
        if self.take_interrupt():
            raise KeyboardInterrupt  # Ctrl-C landed in a window slot meanwhile: it is the caller's
        return not self.training.running

    def draw_now(self) -> None:
        """Draw everything pending at once (tests, screenshots): a run that ended is delivered first."""
        self.catch_up()
        self.plot.draw_frame(force_full=True)
        self.canvas.draw()

    # -- export and screenshots --------------------------------------------------------------------
    def save_screenshot(self, path: str) -> str:
        self.draw_now()
        if not self.grab().save(str(path)):
            raise OSError(f"could not write the screenshot {path}")
        return str(path)

    def save_figure(self, path: str) -> str:
        """The figure as PNG, SVG or PDF (by extension)."""
        self.draw_now()
        with self.plot.exporting() if isinstance(self.plot, MetricsPlot) else contextlib.nullcontext():
            self.figure.savefig(str(path))
        self.canvas.draw()  # the screen's renderer and backgrounds again
        return str(path)

    def export(self, path) -> str:
        """Save by the extension of ``path``: the figure (``.png``, ``.svg``, ``.pdf``) or the metrics
        of the run shown (``.csv``, see :func:`kerasqt.export.write_csv`)."""
        ext = os.path.splitext(str(path))[1].lower()
        if ext == ".csv":
            if not isinstance(self.plot, MetricsPlot):
                raise ValueError("the window shows no training metrics to write as CSV")
            from .export import write_csv

            self.catch_up()
            return write_csv(self.plot, path)
        if ext in (".png", ".svg", ".pdf"):
            return self.save_figure(path)
        raise ValueError(f"cannot export to {str(path)!r}: use .png, .svg, .pdf or .csv")

    def _export_dialog(self) -> None:  # pragma: no cover - needs a person at a screen
        path, _ = QFileDialog.getSaveFileName(self, "Export figure", "kerasqt.png",
                                              "PNG (*.png);;SVG (*.svg);;PDF (*.pdf);;Metrics CSV (*.csv)")
        if not path:
            return
        try:
            self.export(path)
        except (OSError, ValueError) as exc:
            self.append_message("control", f"export failed: {exc}")
            return
        self.append_message("control", f"exported {path}")

    # -- shutdown ----------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every thread this window owns, in reverse order of starting; idempotent."""
        self.demo.stop()
        if self.training.running:
            self.training.end()
            self.training_active = False
            if self.monitor is not None:
                self.monitor._window_closed()
        self._timer.stop()

    # -- faults ------------------------------------------------------------------------------------
    def internal_error(self, where: str, exc: Exception) -> None:
        """A bug in the window's own code: logged once and noted in the receiver pane; monitoring
        goes on without the failed step (training never sees it)."""
        self.internal_errors += 1
        if self.internal_errors == 1:
            log.error("kerasqt window: %s failed; monitoring continues", where, exc_info=exc)
            with contextlib.suppress(Exception):
                self.panes["receiver"].appendPlainText(f"internal error in {where}: {exc!r}; monitoring continues")

    def take_interrupt(self) -> bool:
        """Whether Ctrl-C landed in one of the window's slots since the last call (main thread)."""
        hit, self.interrupted = self.interrupted, False
        return hit

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.request_frame()  # draw what arrived while the window was hidden

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        self.is_closed = True
        super().closeEvent(event)
        self.closed.emit()
