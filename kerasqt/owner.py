"""The window side of a :class:`~kerasqt.callback.QtMonitor` (main thread, unless said).

:class:`WindowOwner` is the part of the monitor that owns its window and answers what the
window asks of a run (:class:`~kerasqt.source.RunSource`): its liveness, a description, stop,
and the run's end as the window sees it. The Keras side (the hooks, on the training thread)
is :class:`~kerasqt.callback.QtMonitor` itself, which sets the state used here: ``_tracker``
(:class:`~kerasqt.tracker.FitTracker`), ``_main`` (:class:`~kerasqt.pump.MainThreadFit`),
``_recorder`` (:class:`~kerasqt.recorder.RunRecorder`), ``_put`` and ``_capture``.
"""

from __future__ import annotations

import contextlib
import threading
import time

from .events import ErrorEvent, counted
from .recorder import warn_user
from .steer import ControlError

__all__ = ["WindowOwner"]


class WindowOwner:
    """The monitor's window, and the monitor as the window's run source."""

    @property
    def log_dir(self):
        """Folder of the run logs (see the class docstring); takes effect at the next run."""
        return self._recorder.log_dir

    @log_dir.setter
    def log_dir(self, value) -> None:
        self._recorder.log_dir = value

    @property
    def tags(self) -> dict:
        """Your own settings of the next runs (``QtMonitor(tags=...)``), recorded in each run log's header;
        setting them checks them (a one-line ValueError)."""
        return self._tags

    @tags.setter
    def tags(self, value) -> None:
        from .settings import check_tags

        self._tags = check_tags(value)

    @property
    def log_path(self):
        """The current or last run's log file, or None."""
        return self._recorder.path

    @property
    def tap(self):
        """The receiver writes what it drains here: the run log's writer, or None."""
        return self._recorder.tap

    @property
    def draws_here(self) -> bool:
        """Whether this process shows the runs (False: a viewer process does, ``viewer="process"``)."""
        return self._viewer is None

    @property
    def window(self):
        """The monitor window, or None before :meth:`show` or the first ``fit``."""
        return self._window

    def show(self):
        """Create (or re-open) the window and show it; main thread only. Returns the window."""
        from .qtapp import ensure_app, in_main_thread, start_kernel_pump

        if not in_main_thread():
            raise RuntimeError("QtMonitor.show() must be called from the main thread")
        ensure_app()  # first: without Qt, its error names the package to install
        from .window import MonitorWindow

        if self._window is None or self._window.is_closed:
            self._window = MonitorWindow(title=self.title, demo=self.demo, max_fps=self.max_fps,
                                         draw_budget=self.draw_budget)
        self._window.show()
        start_kernel_pump()
        return self._window

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Run the Qt event loop until the user closes the window (like ``plt.show()``).

        Returns True when the window is closed. Offscreen there is nobody to close it,
        so it returns False at once (or after ``timeout`` seconds if given).
        """
        from .app import run_until_closed
        from .qtapp import is_offscreen

        win = self._window
        if win is None or win.is_closed:
            return True
        if is_offscreen() and timeout is None:
            return False
        return run_until_closed(win, timeout)

    def close(self) -> None:
        """Close the window (main thread); threads end first."""
        if self._window is not None and not self._window.is_closed:
            self._window.close()

    # -- controls (any thread; kerasqt.steer) -------------------------------------------------------
    def control(self, action: str, args: dict | None = None) -> str:
        """Apply a control to the run going on: ``"stop"``, ``"stop_epoch"``, ``"save"`` (``{"whole":
        bool}``) or ``"lr"`` (``{"value": v}`` or ``{"factor": f}``). Returns what will happen, in a
        few words; raises :class:`~kerasqt.steer.ControlError` (one line) for a bad control, or when no
        run is going (a control is never kept for the next run)."""
        return self._steer.ask(action, args, model=self.model)

    def stop_training(self) -> None:
        """Ask ``fit`` to stop after the current batch (any thread; with no run going, only the flag)."""
        try:
            self.control("stop")
        except ControlError:
            if self.model is not None:
                self.model.stop_training = True

    def stop_after_epoch(self) -> str:
        """Ask ``fit`` to stop at the end of the current epoch (any thread)."""
        return self.control("stop_epoch")

    def save_checkpoint(self, whole: bool = False) -> str:
        """Save the weights (``whole``: the whole model, ``.keras``) at the next batch, next to the run log
        (any thread); the control pane and the run log say where."""
        return self.control("save", {"whole": whole})

    def set_learning_rate(self, value: float | None = None, *, factor: float | None = None) -> str:
        """Set the optimizer's learning rate to ``value``, or multiply it by ``factor``, at the next batch
        (any thread). Refused (:class:`~kerasqt.steer.ControlError`) when a schedule drives it."""
        return self.control("lr", {"value": value} if factor is None else {"factor": factor})

    def export(self, path) -> str:
        """Save the window's figure (``.png``, ``.svg``, ``.pdf``) or metrics (``.csv``); main thread."""
        if self._window is None:
            raise RuntimeError("nothing to export: this monitor has no window (one opens at the first fit "
                               "or at show(), when there is a screen or an offscreen platform)")
        return self._window.export(path)

    @contextlib.contextmanager
    def watching(self):
        """``with monitor.watching(): model.fit(...)``: however ``fit`` leaves the block (an exception
        included), its run is over when the block ends, at once (Keras tells callbacks nothing of a
        fit that raised; without this the window learns it when the main thread is free)."""
        try:
            yield self
        except KeyboardInterrupt:
            self.fit_left(threading.get_ident(), "interrupted")
            raise
        finally:
            self.fit_left(threading.get_ident())

    def fit_left(self, thread: int | None = None, why: str | None = None) -> None:
        """The fit watched (``thread``'s, if given) is over, however it ended (any thread); ``why``:
        "interrupted" when a Ctrl-C ended it (the run then ends as interrupted, not failed)."""
        put = self._put
        if self._tracker.left(thread):
            if why == "interrupted" and put is not None:
                put(ErrorEvent(time.time(), "Ctrl-C (KeyboardInterrupt)", "interrupted"))
            win = self._window
            if win is not None:
                win.training.wake()

    def fit_failed(self, thread: int, message: str) -> None:
        """The fit of ``thread`` raised (``message``: one line): when it is the run watched, that run
        ends as failed with it (a background job calls this; any thread)."""
        put = self._put
        if self._tracker.fit_thread == thread and put is not None:
            put(ErrorEvent(time.time(), message))
        self.fit_left(thread)

    # -- what the window asks of its run (kerasqt.source.RunSource) ---------------------------------
    @property
    def loop_interval(self) -> float | None:
        return self.pump_interval if self._main.app is not None else None

    def alive(self) -> bool:
        """False once the fit watched is known to have left without its end (it raised); else its
        end event tells (any thread)."""
        return not self._tracker.gone()

    def describe(self) -> str:
        p = self.params or {}
        epochs, steps = p.get("epochs"), p.get("steps")
        return f"{counted('?' if epochs is None else epochs, 'epoch')} x {counted(steps or '?', 'step')}"

    def can_stop(self) -> bool:
        return True

    def stop(self) -> None:
        self.stop_training()

    def finished(self) -> None:
        """The window's receiver ended (main thread): the run is over, whatever ended it."""
        self._end_capture()
        self._put = None
        self._main.unwatch()

    def window_closed(self) -> None:
        """The window closed during a run (main thread): stop queueing, or, with a run log, let a
        follower thread log the rest of the run (the log keeps every run whole); maybe stop training."""
        if self._put is None or not self._recorder.follow(self.alive):
            self._put = None
        self._end_capture()
        self._main.end()
        if self.stop_on_close:
            self.stop_training()

    def run_over(self) -> bool:
        """Whether the last run this monitor watched has ended (its end is queued, and perhaps not
        yet delivered to the window: :meth:`~kerasqt.window.MonitorWindow.catch_up`)."""
        return not self._tracker.running()

    def busy_elsewhere(self) -> bool:
        """Whether a ``fit`` of another thread that is still running holds this monitor."""
        return self._tracker.held_by_other()

    def _unwatched(self, reason: str | None) -> None:
        """No window for this run (training thread): warn, and keep the run log if there is one,
        written by a follower thread: a machine without a screen or without Qt still records the
        run, for ``kerasqt replay`` elsewhere."""
        self._recorder.open(self.events)
        if self._recorder.follow(self.alive):
            self._put = self.events.put
            self._steering()
            server = self._recorder.server
            where = (f"the run is logged to {self.log_path} (kerasqt replay shows it)" if self.log_path is not None
                     else f"the run is served at {server.address} (kerasqt watch shows it)")
            reason = reason and f"{reason}; {where}"
        if reason:  # (None: a viewer process shows the run)
            warn_user(f"kerasqt: {reason}")

    # -- ends ------------------------------------------------------------------------------------------
    def _end_receiver(self) -> None:
        """At exit (main thread): the window's receiver ends and writes what it took."""
        win = self._window
        if win is not None and win.training.running:
            win.training.end()

    def _end_capture(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
