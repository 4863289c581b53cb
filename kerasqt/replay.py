"""Replaying run logs in the monitor window (main thread).

A :class:`~kerasqt.runlog.ReplayFeeder` puts a log's events into a queue, all at once
or in time; from there the window's own receiver thread, refiner and plot show them
exactly as in a live run: training logs through the window's ``TrainingSession``
(the feeder takes the place of the Keras callback), sine demo logs through its
``DemoSession`` (the feeder takes the place of the sine worker). Several training
logs play one after the other; each finished run stays on the axes
(:meth:`~kerasqt.plotting.MetricsPlot.keep_run`), so that they overlay, each named
in the legend.
"""

from __future__ import annotations

import os
import queue

from qtpy.QtCore import QObject, QTimer, Signal

from .events import StartEvent, counted
from .runlog import ReplayFeeder, RunLog, read_run

__all__ = ["Replay", "ReplaySource", "replay"]


class ReplaySource:
    """A recorded run as a window's :class:`~kerasqt.source.RunSource`: a feeder thread puts the
    log's events into the queue, all at once or in time."""

    max_rate = 30.0
    tap = None  # (it is a log already)
    loop_interval = None

    def __init__(self, run: RunLog, speed: float | None) -> None:
        self.run = run
        self.title = run.header.get("title") or run.name
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.smoothing = run.smoothing
        self.feeder = ReplayFeeder(run, self.events.put, speed)

    @property
    def log_path(self):
        """The replayed log: the window's run list shows its folder."""
        return self.run.path

    def alive(self) -> bool:
        return True  # the feeder always ends the queue with an end or error event

    def describe(self) -> str:
        start = next((ev for ev in self.run.events if isinstance(ev, StartEvent)), None)
        epochs = start.epochs if start is not None and start.epochs else "?"
        steps = start.steps if start is not None and start.steps else "?"
        return f"replay of {self.run.name}: {counted(epochs, 'epoch')} x {counted(steps, 'step')}"

    def can_stop(self) -> bool:
        return False  # the window's Stop training button is off during replays

    def stop(self) -> None:
        """Nothing to stop."""

    def control(self, action: str, args: dict | None = None) -> str:
        from .steer import ControlError

        raise ControlError(f"a replayed run cannot be controlled: {action} refused")

    def run_over(self) -> bool:
        return self.feeder.done

    def finished(self) -> None:
        self.feeder.stop()

    def window_closed(self) -> None:
        self.feeder.stop()


class Replay(QObject):
    """Plays ``runs`` (all of one kind) in ``window``, one after the other; ``finished`` when all are shown."""

    finished = Signal()

    def __init__(self, window, runs: list[RunLog], speed: float | None = None) -> None:
        super().__init__(window)
        if not runs:
            raise ValueError("nothing to replay: no run logs given")
        if len({run.kind for run in runs}) > 1:
            raise ValueError("cannot overlay sine demo recordings and training runs")
        self.window = window
        self.runs = list(runs)
        self.speed = speed
        self.index = -1
        self.done = False
        self._source: ReplaySource | None = None
        self._feeder: ReplayFeeder | None = None
        window.training.run_finished.connect(self._training_done)
        window.demo.running_changed.connect(self._demo_running_changed)
        window.closed.connect(self._stop)

    def start(self) -> Replay:
        self._next()
        return self

    def _next(self) -> None:
        self.index += 1
        if self.index >= len(self.runs) or self.window.is_closed:
            self._source = self._feeder = None
            if not self.done:
                self.done = True
                self.finished.emit()
            return
        run = self.runs[self.index]
        note = " (its last line was cut short and is skipped)" if run.truncated else ""
        self.window.append_message("control", f"replaying {run.path}{note}")
        if run.kind == "sine":
            self._begin_sine(run)
        else:
            self._begin_training(run)

    def _begin_training(self, run: RunLog) -> None:
        win = self.window
        win.show_training()
        if self.index > 0:
            win.plot.keep_run(path=self.runs[self.index - 1].path)  # the last run stays on the axes, still
        if len(self.runs) > 1:
            win.plot.label = run.name
        self._source = source = ReplaySource(run, self.speed)
        win.request_run(source)  # from the main thread: begins now (a replay cannot be stopped)
        win.status.setText("replaying")
        source.feeder.start()

    def _begin_sine(self, run: RunLog) -> None:
        events: queue.SimpleQueue = queue.SimpleQueue()
        self._feeder = ReplayFeeder(run, events.put, self.speed)
        if not self.window.demo.replay(events):
            self._feeder = None
            QTimer.singleShot(0, self._next)
            return
        self._feeder.start()

    def _training_done(self) -> None:
        if self._source is not None:
            self._source = None
            QTimer.singleShot(0, self._next)

    def _demo_running_changed(self, running: bool) -> None:
        if not running and self._feeder is not None:
            self._feeder.stop()
            self._feeder = None
            QTimer.singleShot(0, self._next)

    def _stop(self) -> None:
        """The window closed: end the feeding (the window has ended the receiver)."""
        for feeder in (self._feeder, self._source.feeder if self._source is not None else None):
            if feeder is not None:
                feeder.stop()
        self._source = self._feeder = None
        self.index = len(self.runs)
        if not self.done:
            self.done = True
            self.finished.emit()


def _demo_settings(run: RunLog):
    """The demo receiver's settings as recorded (defaults where the header has none or odd ones)."""
    from .demo import DemoSettings

    h = run.header
    kwargs = {}
    if type(h.get("batch_size")) is int and h["batch_size"] >= 1:
        kwargs["batch_size"] = h["batch_size"]
    if type(h.get("receiver_interval")) in (int, float) and 0 < h["receiver_interval"] <= 60:
        kwargs["receiver_interval"] = h["receiver_interval"]
    return DemoSettings(**kwargs)


def replay(runs, *, speed: float | None = None, window=None) -> Replay:
    """Show run logs in a monitor window (main thread) and return the started :class:`Replay`.

    ``runs``: paths or :class:`~kerasqt.runlog.RunLog` values (one or several; several
    training runs overlay). ``speed``: None shows each run at once, else in time, this
    many times faster than it was recorded. Returns at once; ``replay.window`` is the
    window, ``replay.finished`` fires when everything is shown. Bad files raise
    :class:`~kerasqt.runlog.RunLogError`.
    """
    from .qtapp import ensure_app, start_kernel_pump
    from .window import MonitorWindow

    if isinstance(runs, (str, os.PathLike, RunLog)):
        runs = [runs]
    runs = [run if isinstance(run, RunLog) else read_run(run) for run in runs]
    if not runs:
        raise ValueError("nothing to replay: no run logs given")
    ensure_app()
    if window is None:
        title = runs[0].header.get("title") or "kerasqt"
        demo = _demo_settings(runs[0]) if runs[0].kind == "sine" else None
        window = MonitorWindow(title=f"{title}: replay of {', '.join(run.name for run in runs)}", demo=demo)
    window.show()
    start_kernel_pump()
    return Replay(window, runs, speed).start()
