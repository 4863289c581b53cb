"""The worker: :class:`QtMonitor`, a Keras callback that puts one event per batch into a queue.

Thread ownership: the ``on_*`` hooks run on the training thread (with
``async_safe = True``, Keras may run ``on_train_batch_end`` on a pool thread).
They never touch Qt objects, never plot and never block: they build a small
immutable event and ``put`` it. The exceptions, all on the training thread when
it is the main (Qt) thread: ``on_train_begin`` shows the window, and
``on_train_batch_begin`` (``on_test_batch_begin`` during validation) turns the Qt
event loop at most every ``pump_interval`` seconds, since nothing else can while
``fit`` holds the main thread. The window (main thread) starts a receiver thread per run.
"""

from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
import time
import warnings
import weakref

import keras

from .capture import OutputCapture
from .events import EndEvent, EpochEvent, ErrorEvent, EvalEvent, StartEvent, counted, drain, numbers
from .runlog import DEFAULT_LOG_DIR, LogFollower, RunLogError, RunLogWriter, resolve_log_dir

__all__ = ["QtMonitor"]

_logging: weakref.WeakSet = weakref.WeakSet()  # monitors that opened a run log (it may still be open)


def _end_logs_at_exit() -> None:
    """At interpreter exit during a watched ``fit`` (an exception nobody caught, Ctrl-C, ``sys.exit``
    in a callback), each run log still open gets what was queued and an error line, and is closed.

    Registered when this module is imported, so it runs after :mod:`kerasqt.session`'s own exit
    handler (registered at the first thread), which ends the receiver threads first."""
    for monitor in list(_logging):
        try:
            monitor._end_log_at_exit()
        except Exception:  # the process is ending: never turn that into a traceback of ours
            pass


atexit.register(_end_logs_at_exit)

TWICE = "this QtMonitor is in the callbacks twice: pass it once (one window needs one QtMonitor)"
BUSY = ("this QtMonitor is already watching another fit, which is still running; give each fit that "
        "runs at the same time its own QtMonitor")


class QtMonitor(keras.callbacks.Callback):
    """Watch ``model.fit`` live in a Qt window.

    Args:
        title: window title.
        smoothing: weight of the past in the moving average of batch values, in [0, 1).
        max_rate: most window updates per second sent by the receiver.
        max_fps: most frames per second the window draws.
        draw_budget: share of the main thread's time drawing may take while training runs.
        pump_interval: seconds between Qt event-loop turns during a ``fit`` in the main thread.
        capture_output: show ``print`` and ``logging`` output of the training in the window
            instead of the terminal or notebook cell.
        stop_on_close: closing the window during ``fit`` also stops training (default: training
            goes on, unwatched).
        batch_size: samples per batch, for samples/s (``fit_in_background`` fills it in).
        demo: :class:`~kerasqt.demo.DemoSettings` for the window's demo mode.
        log_dir: folder for the run log, one JSON Lines file per run (:mod:`kerasqt.runlog`); the
            default is ``$KERASQT_LOG_DIR`` if set (set to empty: no log), else ``runs`` in the
            working directory. None: no log. ``log_path`` is the current or last run's file.
    """

    def __init__(self, *, title: str = "kerasqt", smoothing: float = 0.9, max_rate: float = 30.0,
                 max_fps: float = 30.0, draw_budget: float = 0.02, pump_interval: float = 0.05,
                 capture_output: bool = True, stop_on_close: bool = False, batch_size: int | None = None,
                 demo=None, log_dir=DEFAULT_LOG_DIR) -> None:
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
        for name, value in (("max_rate", max_rate), ("max_fps", max_fps), ("pump_interval", pump_interval)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0 < draw_budget <= 1:
            raise ValueError(f"draw_budget must be in (0, 1], got {draw_budget!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a whole number >= 1 or None, got {batch_size!r}")
        if not (log_dir is None or log_dir is DEFAULT_LOG_DIR or isinstance(log_dir, (str, os.PathLike))):
            raise ValueError(f"log_dir must be a folder path or None, got {log_dir!r}")
        # Keras: our batch hooks only put into a queue, so they may run asynchronously.
        self.async_safe = True
        self.title = title
        self.smoothing = smoothing
        self.max_rate = max_rate
        self.max_fps = max_fps
        self.draw_budget = draw_budget
        self.pump_interval = pump_interval
        self.capture_output = capture_output
        self.stop_on_close = stop_on_close
        self.batch_size = batch_size
        self.demo = demo
        self.log_dir = log_dir
        self.log_path = None  # the current or last run's log file
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.tap = None  # called by the receiver thread with each batch of events (run logs)
        self._log: RunLogWriter | None = None
        self._log_follower: LogFollower | None = None
        self.runs = 0
        self._window = None
        self._put = None  # the queue's put while a run is watched, else None
        self._capture: OutputCapture | None = None
        self._fit_frame = None  # the call into the fit this monitor watches (claimed at set_model)
        self._fit_thread = None
        self._claim_lock = threading.Lock()
        self._job = None  # the FitJob that fit_in_background started with this monitor, if any
        self._app = None
        self._next_pump = 0.0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._epoch = 0
        self._offset = 0
        self._last_batch = -1
        self._started = False
        self._in_fit = False
        self._lr = None
        self._next_lr = 0.0
        self._batch_cap = sys.maxsize  # the last batch index of an epoch (Keras may report one past it)

    # -- the window (main thread) ------------------------------------------------------------------
    @property
    def window(self):
        """The monitor window, or None before :meth:`show` or the first ``fit``."""
        return self._window

    def show(self):
        """Create (or re-open) the window and show it; main thread only. Returns the window."""
        from .qtapp import ensure_app, in_main_thread, start_kernel_pump

        if not in_main_thread():
            raise RuntimeError("QtMonitor.show() must be called from the main thread")
        self._app = ensure_app()  # first: without Qt, its error names the package to install
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

    def stop_training(self) -> None:
        """Ask ``fit`` to stop after the current batch (any thread)."""
        if self.model is not None:
            self.model.stop_training = True

    # -- Keras hooks (training thread) -------------------------------------------------------------
    # Keras hands a fit's model and params to its callbacks before on_train_begin: a fit claims the
    # monitor there already, and one that finds it held by another running fit is refused.
    def set_model(self, model) -> None:
        caller = sys._getframe(1)
        owner = caller.f_locals.get("self")  # Keras' CallbackList, handing the model to each callback
        if isinstance(owner, keras.callbacks.CallbackList) and sum(cb is self for cb in owner.callbacks) > 1:
            raise ValueError(TWICE)  # every hook would run twice: each batch logged and drawn twice
        if self._claim(_keras_entry_frame(caller)):
            super().set_model(model)

    def set_params(self, params) -> None:
        if self._claim(_keras_entry_frame(sys._getframe(1))):
            super().set_params(params)

    def on_train_begin(self, logs=None) -> None:
        from .qtapp import in_main_thread

        entry = _keras_entry_frame(sys._getframe(1))
        if not self._claim(entry):
            raise RuntimeError(BUSY)
        self._fit_thread, self._fit_frame = threading.get_ident(), entry  # (None: hooks called outside a fit)
        self.runs += 1
        self._put = None  # the last run's queue, if its fit raised: nothing reads it any more
        self._reset_counters()
        self._end_capture()  # the last run's, if its fit raised before its receiver noticed
        self._in_fit = True
        self.events = queue.SimpleQueue()
        main = in_main_thread()
        win = self._window if (self._window is not None and not self._window.is_closed) else None
        if main:
            try:
                win = self.show()
            except Exception as exc:  # no screen, no Qt, a bug: the training goes on, unwatched
                self._app = None
                self._unwatched(f"no window, training goes on unwatched: {exc}")
                return
        elif win is None:
            self._unwatched("fit runs outside the main thread and no window is open; call "
                            "QtMonitor.show() in the main thread first, or use fit_in_background")
            return
        self._app = self._app if main else None  # only the main thread may turn the event loop
        self._next_pump = 0.0
        self._open_log()  # before the capture: a warning that there is no log reaches the terminal or cell
        if self.capture_output:
            self._capture = OutputCapture(self.events, include_main=main and self._main_fit_running).start()
            if not main:  # this training thread's lines are this window's, whatever starts later
                self._capture.set_source(threading.get_ident(), "worker")
        self._put = self.events.put
        win.request_run(self)
        self._pump()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch
        self._last_batch = -1
        steps = (self.params or {}).get("steps")
        self._batch_cap = steps - 1 if steps else sys.maxsize
        self._read_lr()
        self._put_start(epoch)

    def _put_start(self, initial_epoch: int) -> None:
        """The run's start, once: at its first epoch (Keras tells the initial epoch only there),
        or at its end when no epoch ran (``epochs=0``, or ``initial_epoch`` past ``epochs``)."""
        put = self._put
        if put is not None and not self._started:
            self._started = True
            p = self.params or {}
            put(StartEvent(time.time(), p.get("epochs"), p.get("steps"), self.batch_size,
                           initial_epoch=initial_epoch, run=f"run {self.runs}"))

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self._app is not None and time.perf_counter() >= self._next_pump:
            self._pump()
            if time.monotonic() >= self._next_lr:
                self._read_lr()

    def on_test_batch_begin(self, batch, logs=None) -> None:
        # Validation inside a main-thread fit: the window stays responsive (and keeps drawing).
        if self._app is not None and time.perf_counter() >= self._next_pump:
            self._pump()

    def on_train_batch_end(self, batch, logs=None) -> None:
        put = self._put
        if put is None:
            return
        if batch > self._batch_cap:  # steps_per_execution: the last execution of an epoch runs short
            batch = self._batch_cap
        if batch > self._last_batch:
            self._last_batch = batch
        try:
            logs = dict(logs) if logs else None  # Keras gives a new dict per batch; a caller might reuse one
        except Exception:
            pass  # not a mapping: the receiver reports it as unreadable
        # A plain tuple: the receiver's drain builds the BatchEvent, off the training thread's clock.
        put((self._offset + batch + 1, self._epoch, time.time(), logs, self._lr))

    def on_test_end(self, logs=None) -> None:
        frame = self._fit_frame
        if not (self._in_fit and (frame is None or frame is _keras_entry_frame(sys._getframe(1)))):
            # An evaluate() of its own: after fit (it claimed the monitor at set_model), or during
            # one, from a callback or another thread; not the fit's validation.
            self._release()
            self._evaluated(logs)
            return
        put = self._put
        if put is None:
            return
        values, bad = numbers(logs)  # the fit's own validation (an evaluate of its own is above)
        put(EvalEvent(self._offset + self._last_batch + 1, self._epoch, time.time(), values, "val", bad))

    def _evaluated(self, logs) -> None:
        """An ``evaluate()`` of its own ended: its result joins the run, at the step it reached.

        During a watched ``fit`` (from a callback, or another thread) it is queued like the run's
        other events. After the run it is appended to that run's log and given to the window
        showing it (which says it in its control pane)."""
        values, bad = numbers(logs)
        if not values and not bad:
            return
        ev = EvalEvent(self._offset + self._last_batch + 1, self._epoch, time.time(), values, "test", bad)
        put = self._put
        if put is not None and self._in_fit and self.fit_running():
            put(ev)
            return
        log = self._log
        if log is not None:
            try:
                log.write_after([ev])
            except RunLogError as exc:
                _warn_outside(f"kerasqt: {exc}")
        win = self._window
        if win is not None and not win.is_closed:
            win.report_test(self, ev)

    def on_predict_end(self, logs=None) -> None:
        self._release()  # predict() claimed the monitor at set_model; nothing is shown of it

    def on_epoch_end(self, epoch, logs=None) -> None:
        # The batches it ran (at most the planned steps: _batch_cap), fewer if it was cut short
        # (stop_training, data ran out); Keras waits for pending batch hooks before this one. None
        # recorded (nobody watches): the planned steps.
        self._offset += (self._last_batch + 1) or (self.params or {}).get("steps") or 0
        self._last_batch = -1
        self._read_lr()
        put = self._put
        if put is not None:
            values, bad = numbers(logs)
            put(EpochEvent(self._offset, epoch, time.time(), values, bad, self._lr))
        self._pump()

    def on_train_end(self, logs=None) -> None:
        self._in_fit = False
        self._put_start((self.params or {}).get("epochs") or 0)  # (when no epoch began: none was left to run)
        put = self._put
        if put is not None:
            stopped = bool(getattr(self.model, "stop_training", False))
            put(EndEvent(self._offset + self._last_batch + 1, time.time(), stopped))
            win = self._window
            if win is not None:
                win.training.wake()  # the receiver takes the end now, not at its next wake
            follower = self._log_follower
            if follower is not None:  # no window (or it closed): the log's thread writes the end now
                follower.wake()
                follower.join(2.0)
        self._end_capture()
        self._fit_frame = None
        self._put = None
        # A main-thread fit returns now: the receiver delivers the end, and the window draws the
        # run's last frame, at the next turn of the event loop (wait_closed, the next notebook
        # cell, or a screenshot or export, which catch up first).
        self._app = None

    # -- helpers -----------------------------------------------------------------------------------
    def _pump(self) -> None:
        app = self._app
        if app is None:
            return
        self._next_pump = time.perf_counter() + self.pump_interval
        try:
            app.processEvents()
        except Exception:  # a bug in a slot must not end training
            pass
        win = self._window
        if win is not None and win.take_interrupt():
            raise KeyboardInterrupt  # Ctrl-C landed in a window slot: it is fit's, like anywhere else

    def _read_lr(self) -> None:
        self._next_lr = time.monotonic() + 1.0
        try:
            self._lr = float(self.model.optimizer.learning_rate)
        except Exception:
            self._lr = None

    def _unwatched(self, reason: str) -> None:
        """No window for this run (training thread): warn, and keep the run log if there is one.

        The log is written by a :class:`~kerasqt.runlog.LogFollower` thread, as after a window
        closes mid-run: a machine without a screen or without Qt still records the run, for
        ``kerasqt replay`` elsewhere.
        """
        self._open_log()
        if self._log is not None:
            self._log_follower = LogFollower(self.events, self._log, alive=self.fit_running)
            self._log_follower.start()
            self._put = self.events.put
            reason += f"; the run is logged to {self.log_path} (kerasqt replay shows it)"
        _warn_outside(f"kerasqt: {reason}")

    def _open_log(self) -> None:
        """Start this run's log file (training thread, once per run); a failure only warns.

        The last run's log is not closed here: it closes itself at its end or error event,
        which its receiver (or follower) may still be writing.
        """
        follower, self._log_follower = self._log_follower, None
        if follower is not None:
            follower.stop(run_over=True)  # the last run is over: its log ends, with an error if it raised
        self._log = None
        self.tap = None
        self.log_path = None
        folder = resolve_log_dir(self.log_dir)
        if folder is None:
            return
        try:
            self._log = RunLogWriter.create(folder, kind="training", title=self.title, smoothing=self.smoothing)
        except OSError as exc:
            _warn_outside(f"kerasqt: no run log for this run: {exc}")
            return
        self.log_path = self._log.path
        self.tap = self._log.write  # the receiver thread writes what it drains
        _logging.add(self)

    def _end_log_at_exit(self) -> None:
        """The process exits (main thread): a run log still open gets the rest and an error line."""
        log = self._log
        if log is None or log.closed:
            return
        follower = self._log_follower
        if follower is not None:
            follower.stop(run_over=True)  # it writes what is queued, then the error line
            return
        win = self._window
        try:
            if win is not None and win.training.running:
                win.training.end()  # its receiver writes what it took
        except Exception:  # the window is gone already: what is queued is all there is
            pass
        rest = drain(self.events) if self._put is not None else []
        if log.closed or any(isinstance(ev, (EndEvent, ErrorEvent)) for ev in rest):
            log.write(rest)  # the run had ended: its own end is in the log (or in what is left)
            return
        exc = getattr(sys, "last_value", None)  # the exception the interpreter printed, if that ends it
        why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        log.write(rest + [ErrorEvent(time.time(), f"the process exited during fit{why}")])

    def export(self, path) -> str:
        """Save the window's figure (``.png``, ``.svg``, ``.pdf``) or metrics (``.csv``); main thread."""
        if self._window is None:
            raise RuntimeError("nothing to export: this monitor has no window (one opens at the first fit "
                               "or at show(), when there is a screen or an offscreen platform)")
        return self._window.export(path)

    def _main_fit_running(self) -> bool:
        """True while the main thread is inside this monitor's ``fit`` (capture filter)."""
        frame0 = self._fit_frame
        if frame0 is None:
            return self._in_fit
        f = sys._getframe()
        while f is not None:
            if f is frame0:
                return True
            f = f.f_back
        return False

    def fit_running(self) -> bool:
        """Whether the training thread is still inside ``fit`` (called by the receiver thread)."""
        frame0, ident = self._fit_frame, self._fit_thread
        if frame0 is None:
            return True  # unknown, or ended normally: the end event tells
        f = sys._current_frames().get(ident)
        while f is not None:
            if f is frame0:
                return True
            f = f.f_back
        return False

    def run_over(self) -> bool:
        """Whether the last run this monitor watched has ended by itself (its end is queued, and
        perhaps not yet delivered to the window: :meth:`MonitorWindow.catch_up`)."""
        return not self._in_fit

    def busy_elsewhere(self) -> bool:
        """Whether a ``fit`` that is still running holds this monitor (any thread may ask)."""
        return self._held_by_other(None)

    def _held_by_other(self, entry) -> bool:
        """Whether a running fit other than the one entered at ``entry`` holds this monitor."""
        frame = self._fit_frame
        return frame is not None and frame is not entry and self.fit_running()

    def _release(self) -> None:
        """Let go of the claim of this thread's call that ended (its frame is not kept alive)."""
        with self._claim_lock:
            if self._fit_thread == threading.get_ident() and not self._in_fit:
                self._fit_frame = None

    def _claim(self, entry) -> bool:
        """Let the fit entered at ``entry`` (the calling thread's) hold this monitor, unless another
        running fit holds it; True when it may. Without ``entry`` (not called by a fit), nothing is held."""
        with self._claim_lock:
            if self._held_by_other(entry):
                return False
            if entry is not None:
                if self._in_fit and entry is not self._fit_frame:
                    self._in_fit = False  # the last fit raised (Keras skips on_train_end then): it is over
                self._fit_thread, self._fit_frame = threading.get_ident(), entry
            return True

    def describe_fit(self) -> str:
        p = self.params or {}
        epochs, steps = p.get("epochs"), p.get("steps")
        return f"{counted('?' if epochs is None else epochs, 'epoch')} x {counted(steps or '?', 'step')}"

    def _end_capture(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None

    def _run_finished(self) -> None:
        """The window's receiver ended (main thread): the run is over, whatever ended it."""
        self._end_capture()
        self._fit_frame = None
        self._put = None

    def _window_closed(self) -> None:
        """The window closed during a run (main thread): stop queueing; maybe stop training.

        With a run log, the queue stays: a :class:`~kerasqt.runlog.LogFollower` thread takes
        it over from the ended receiver and logs the rest of the run (the log keeps every run
        whole, watched or not).
        """
        if self._log is not None and not self._log.closed and self._put is not None:
            self._log_follower = LogFollower(self.events, self._log, alive=self.fit_running)
            self._log_follower.start()
        else:
            self._put = None
        self._end_capture()
        self._app = None
        if self.stop_on_close:
            self.stop_training()


def _in_package(frame, *packages: str) -> bool:
    """Whether ``frame`` runs code of one of ``packages`` (the package or one of its modules)."""
    name = frame.f_globals.get("__name__", "")
    return any(name == p or name.startswith(p + ".") for p in packages)


def _warn_outside(message: str) -> None:
    """Warn (``RuntimeWarning``) at the nearest caller outside Keras and kerasqt: the user's line
    that called ``fit``, not the Keras code that called the hook."""
    frame, level = sys._getframe(1), 2  # stacklevel 2: this function's caller
    while frame is not None and _in_package(frame, "keras", "kerasqt"):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level if frame is not None else 2)


def _keras_entry_frame(frame):
    """The outermost consecutive Keras frame above ``frame``: the call into ``fit``."""
    entry = None
    while frame is not None:
        if _in_package(frame, "keras"):
            entry = frame
        elif entry is not None:
            break
        frame = frame.f_back
    return entry
