"""The monitor window (main thread only): one window for the sine demo and for training.

Layout, top to bottom: a row of controls (*start threads* / *stop threads* in
demo mode; in training mode the run's controls, :class:`~kerasqt.steerbar.SteerBar`,
and *log scale*; *Export*), a
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
import time
import weakref

from matplotlib.figure import Figure
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from .batchview import RunningMeansBox
from .demo import DemoSession, DemoSettings
from .demo.plot import SinePlot
from .demo.refiner import SineUpdate
from .events import ErrorEvent, summary
from .frames import FramePacer
from .plotting import MetricsPlot
from .qt import FigureCanvasQTAgg, NavigationToolbar2QT
from .refine import TrainingUpdate
from .runlist import RunList
from .saving import WindowSaving
from .session import TrainingSession
from .widgets import ControlRow, MessagePanes, ProgressRow, end_words

__all__ = ["MonitorWindow", "open_windows"]

log = logging.getLogger("kerasqt")

# Windows on show, kept until closed (as pyplot keeps its figures): a monitor let go, as in
# ``fit(..., callbacks=[QtMonitor()])``, would otherwise take its window with it at the next
# garbage collection, in the middle of whatever the event loop was doing.
_open: set[MonitorWindow] = set()


def open_windows() -> list[MonitorWindow]:
    """The monitor windows shown and not closed yet (main thread)."""
    return list(_open)


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


class MonitorWindow(WindowSaving, QMainWindow):
    """The kerasqt window. Demo mode until a training run begins, then training mode."""

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
        self.monitor = None  # the run source (kerasqt.source.RunSource) of the current or last run
        self.is_closed = False
        self.last_update: TrainingUpdate | None = None
        self.training_active = False
        self.interrupted = False  # Ctrl-C landed in a slot (see take_interrupt)
        self.internal_errors = 0
        self._build(demo)
        self._run_requested.connect(self._begin_run, Qt.QueuedConnection)
        self._test_reported.connect(self._show_test, Qt.QueuedConnection)
        self.pacer = FramePacer(self, self._frame, max_fps, draw_budget)  # when frames are drawn
        self._set_mode("demo")

    # -- construction ------------------------------------------------------------------------------
    def _build(self, demo: DemoSettings | None) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)

        controls = ControlRow()
        layout.addWidget(controls)
        self.start_button, self.stop_button = controls.start_button, controls.stop_button
        self.stop_training_button, self.log_checkbox = controls.stop_training_button, controls.log_checkbox
        self.export_button, self.status = controls.export_button, controls.status
        self.steer = controls.steer  # the run's controls (kerasqt.steerbar)
        self.steer.message.connect(self.append_message)
        self.running_box = RunningMeansBox.into(controls, self, after=self.log_checkbox)

        self.progress_row = ProgressRow()
        self.progress, self.progress_label = self.progress_row.bar, self.progress_row.label
        layout.addWidget(self.progress_row)

        self.figure = Figure(figsize=(9, 5.5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.toolbar = _Toolbar(self.canvas, self)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas, 1)

        self.messages = MessagePanes()
        self.panes = self.messages.panes
        layout.addWidget(self.messages)
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
        self.log_checkbox.toggled.connect(self._log_toggled)
        self.export_button.clicked.connect(self._export_dialog)
        self.plot = None
        self.runlist = RunList(self)  # the log folder's runs, to overlay (after the slots above: it reads the plot)

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
        self.running_box.follow(self.plot)
        for w in (self.start_button, self.stop_button):
            w.setVisible(demo)
        self.steer.setVisible(not demo)
        self.log_checkbox.setVisible(not demo)
        self.progress_row.setVisible(not demo)  # the demo has no progress: no empty row either
        self.messages.set_mode(mode)
        self._demo_running_changed(False)
        self.steer.run_ended()
        self.progress_row.clear()
        self.plot.dirty = True  # the new mode's first frame (the window's timer dies with the window)
        self.request_frame()

    # -- messages ----------------------------------------------------------------------------------
    @_guarded
    def append_message(self, source: str, text: str) -> None:
        self.messages.append(source, text)

    def pane_text(self, source: str) -> str:
        return self.messages.text(source)

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
        """Begin showing the run of ``monitor`` (a :class:`~kerasqt.source.RunSource`); from the main
        thread now, from others queued."""
        from .qtapp import in_main_thread

        (self._begin_run if in_main_thread() else self._run_requested.emit)(monitor)

    def report_test(self, monitor, ev) -> None:
        """``monitor``'s ``evaluate()`` outside ``fit`` gave ``ev``; from the main thread now, from
        others queued."""
        from .qtapp import in_main_thread

        if in_main_thread():
            self.catch_up()  # a main-thread fit just ended: its end is told before the evaluation
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
        try:
            self.show_training()
            self.plot.reset(None)
            self.monitor = monitor
            self.training_active = True
            self.pacer.run_began(monitor.loop_interval)  # (not None: a fit in the main thread turns our loop)
            self.steer.run_began(monitor)
            self.status.setText("training")
            # A fit in the main thread waits for every turn of the event loop: the receiver then
            # wakes 2.5 times a second, and each update is drawn in the turn that brings it.
            self.training.begin(monitor.events, smoothing=monitor.smoothing, max_rate=monitor.max_rate,
                                alive=monitor.alive, tap=monitor.tap,
                                interval=None if monitor.loop_interval is None else self.MAIN_FIT_RECEIVER_INTERVAL)
        except Exception:
            self.training_active = False
            monitor.finished()  # nobody receives this run: the source stops queueing it
            raise
        self.append_message("control", f"training started ({monitor.describe()})")
        self.request_frame()

    def stop_training(self) -> None:
        """*Stop now*: ask the run to stop after the current batch (:class:`~kerasqt.steerbar.SteerBar`)."""
        self.steer.ask("stop")

    @_guarded
    def _run_finished(self) -> None:
        self.training_active = False
        self.steer.run_ended()
        if self.monitor is not None:
            self.monitor.finished()
        if isinstance(self.plot, MetricsPlot):
            self.plot.run_over()  # limits that fit the data, in the run's last frame
        self.pacer.run_ended()
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
            self.steer.take(update)  # the run's controls and EarlyStopping's state, before its end
            self._show_progress(update)
        elif isinstance(update, SineUpdate):
            self.status.setText(f"demo running: {self.plot.curves} curves received")
        self.request_frame()

    def _show_progress(self, update: TrainingUpdate) -> None:
        p = update.progress
        self.progress_row.show_progress(p)
        end = update.end
        if end is None:
            return
        if not isinstance(end, ErrorEvent):
            self.progress_row.ended(p, complete=not end.stopped)
        status, style, note = end_words(end, update.counts)
        self.status.setText(status)
        self.status.setStyleSheet(style)
        self.append_message("control", note)

    @property
    def frames(self) -> int:
        return self.pacer.frames

    @property
    def frame_ms(self) -> list[float]:
        """The last 200 frames' costs, in milliseconds."""
        return self.pacer.frame_ms

    def request_frame(self) -> None:
        """Draw soon (:class:`~kerasqt.frames.FramePacer` says when): while ``fit`` holds the main
        thread, a frame due before its next turn of the event loop is drawn now."""
        if not self.is_closed and self.pacer.request(self.training_active):
            self._frame()

    @_guarded
    def _frame(self) -> None:
        """Draw one frame (staged while training runs, and for a run's last frame), then let the
        pacer schedule the next within the drawing budget."""
        if self.is_closed or self.isHidden():
            return
        started = time.perf_counter()
        kind = self.plot.draw_frame(allow_full=self.pacer.allow_full(self.training_active),
                                    staged=self.training_active or self.plot.finishing)
        self.pacer.drew(kind, started, self.plot.limits_pending, self.training_active)

    # -- shutdown ----------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every thread this window owns, in reverse order of starting; idempotent."""
        self.demo.stop()
        if self.training.running:
            self.training.end()
            self.training_active = False
            if self.monitor is not None:
                self.monitor.window_closed()
        self.pacer.stop()

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
        _open.add(self)
        self.request_frame()  # draw what arrived while the window was hidden

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        self.is_closed = True
        # Matplotlib's idle draw (asked by a resize, e.g. on show) may still be pending: a closed
        # window draws nothing. (A window let go meanwhile could be collected in the middle of
        # that draw, its canvas deleted under it.) Reopened, the window draws on show.
        self.canvas._draw_pending = False
        _open.discard(self)
        super().closeEvent(event)
        self.closed.emit()
