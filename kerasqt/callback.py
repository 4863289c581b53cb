"""The worker: :class:`QtMonitor`, a Keras callback that puts one event per batch into a queue.

Thread ownership: the ``on_*`` hooks run on the training thread (with
``async_safe = True``, Keras may run ``on_train_batch_end`` on a pool thread).
They never touch Qt objects, never plot and never block: they build a small
immutable event and ``put`` it. The exceptions, all on the training thread when
it is the main (Qt) thread: ``on_train_begin`` shows the window, and
``on_train_batch_begin`` (``on_test_batch_begin`` during validation) turns the Qt
event loop at most every ``pump_interval`` seconds, since nothing else can while
``fit`` holds the main thread. The window (main thread) starts a receiver thread per run.

What call a hook belongs to (a fit, its validation, an ``evaluate()`` of its own) is told by
Keras' public hooks alone (:mod:`kerasqt.tracker`); the run log is :mod:`kerasqt.recorder`'s.
A ``QtMonitor`` is a :class:`~kerasqt.source.RunSource`: what the window asks of a run.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

import keras

from . import exits
from .capture import OutputCapture
from .chief import is_chief
from .events import EndEvent, EpochEvent, EvalEvent, StartEvent, numbers
from .means import BatchWeights
from .owner import WindowOwner
from .pump import MainThreadFit
from .recorder import RunRecorder, end_logs_at_exit
from .runlog import DEFAULT_LOG_DIR
from .settings import run_settings
from .steer import Patience, Steering
from .tracker import Busy, FitTracker, Twice
from .viewer import viewer_process

__all__ = ["QtMonitor"]

# At exit, open run logs get their tails, after the window's receiver threads have ended.
exits.register(end_logs_at_exit, exits.LOGS)

TWICE = "this QtMonitor is in the callbacks twice: pass it once (one window needs one QtMonitor)"
BUSY = ("this QtMonitor is already watching another fit, which is still running; give each fit that "
        "runs at the same time its own QtMonitor")

def _check(smoothing, max_rate, max_fps, pump_interval, draw_budget, batch_size, log_dir) -> None:
    """QtMonitor's arguments, each refused with a clear ValueError."""
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


def _serve(serve: str | None, all_processes: bool, viewer=None):
    """A RunServer at ``serve`` (default ``$KERASQT_SERVE``) with the control token ``$KERASQT_TOKEN`` (else
    a new one), both told on stderr; else, for a ``viewer`` process (:mod:`kerasqt.viewer`), one on
    loopback with a token of its own, told to nobody but the viewer; else None."""
    serve = serve if serve is not None else os.environ.get("KERASQT_SERVE") or None
    if (serve is None and viewer is None) or not (all_processes or is_chief()):
        return None
    from .net import ENV_TOKEN, RunServer, env_token, parse_address

    if serve is None:
        server = RunServer("127.0.0.1:0")
    else:
        parse_address(serve)  # a bad address, a bad $KERASQT_TOKEN: its one-line ValueError now
        token = env_token()
        server = RunServer(serve, token=token)
        print(f"kerasqt: serving the runs at {server.address}: watch them with  kerasqt watch {server.address}",
              file=sys.stderr)
        how = (f"the one in ${ENV_TOKEN}: to watch with controls,  kerasqt watch {server.address}  (${ENV_TOKEN} "
               "set the same)" if token else f"{server.token}: to watch with controls,  kerasqt watch "
               f"{server.address} --token {server.token}")
        print(f"kerasqt: control token {how}", file=sys.stderr)
    exits.register(server.close, exits.LOGS)
    if viewer is not None:
        viewer.server = server
    return server


class QtMonitor(WindowOwner, keras.callbacks.Callback):
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
        viewer: "window": this process draws; "process": a child ``kerasqt watch`` draws, from a stream on
            loopback, and its *Stop training* stops the fit (:mod:`kerasqt.viewer`).
        serve: ``"HOST:PORT"``: stream each run to viewers (``kerasqt watch HOST:PORT``; :mod:`kerasqt.net`);
            the default is ``$KERASQT_SERVE`` if set. Loopback unless told otherwise; port 0 picks one.
            Viewers control the run with the token printed on stderr (``$KERASQT_TOKEN`` sets it).
        early_stopping: the ``keras.callbacks.EarlyStopping`` of the fit, if any: its best epoch is
            marked and its patience counted down in the window (read from its public attributes).
        all_processes: in multi-worker training every process shows, logs and serves its runs; by
            default only the chief (process index 0, :mod:`kerasqt.chief`) does, the others are silent.
        tags: your own settings of the run, names to strings, numbers, true/false or None
            (``{"dropout": 0.3}``): in its run log's header and the window's run list (:mod:`kerasqt.settings`).

    A ``fit`` that raises gets no ``on_train_end`` from Keras; the window learns that it is over
    when its thread ends, when the main thread is seen free, or at once inside
    ``with monitor.watching():``.
    """

    def __init__(self, *, title: str = "kerasqt", smoothing: float = 0.9, max_rate: float = 30.0,
                 max_fps: float = 30.0, draw_budget: float = 0.02, pump_interval: float = 0.05,
                 capture_output: bool = True, stop_on_close: bool = False, batch_size: int | None = None,
                 demo=None, log_dir=DEFAULT_LOG_DIR, viewer: str = "window", serve: str | None = None,
                 all_processes: bool = False, early_stopping=None, tags: dict | None = None) -> None:
        super().__init__()
        _check(smoothing, max_rate, max_fps, pump_interval, draw_budget, batch_size, log_dir)
        self.tags = tags  # (checked: WindowOwner.tags)
        self.all_processes = all_processes
        # Keras: our batch hooks only put into a queue, so they may run asynchronously.
        self.async_safe = True
        self.title, self.smoothing, self.max_rate, self.max_fps = title, smoothing, max_rate, max_fps
        self.draw_budget, self.pump_interval = draw_budget, pump_interval
        self.capture_output = capture_output
        self.stop_on_close = stop_on_close
        self.batch_size = batch_size
        self.demo = demo
        self._viewer = viewer_process(viewer, log_dir)  # None: this process draws
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.runs = 0
        self._recorder = RunRecorder(log_dir, title, smoothing)
        self._recorder.end_receiver = self._end_receiver
        self._recorder.feeding = lambda: self._put is not None
        self._recorder.settings = lambda: run_settings(self.model, self.params, self.batch_size, self.tags)
        self._recorder.server = _serve(serve, all_processes, self._viewer)
        if self._recorder.server is not None:  # a viewer's controls (with the stream's token)
            self._recorder.server.on_control = self.control
        self._steer = Steering()  # controls from the window, viewers and code (kerasqt.steer)
        self._patience = Patience(early_stopping) if early_stopping is not None else None
        self._tracker = FitTracker()
        self._handed: dict[int, list] = {}  # thread -> [model, params] of a call set up meanwhile
        self._window = None
        self._put = None  # the queue's put while a run is watched, else None
        self._capture: OutputCapture | None = None
        self._job = None  # the FitJob that fit_in_background started with this monitor, if any
        self._main = MainThreadFit()  # turns the event loop during a fit in the main thread
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._epoch = 0
        self._offset = 0
        self._last_batch = -1
        self._started = False
        self._lr = None
        self._next_lr = 0.0
        self._batch_cap = sys.maxsize  # the last batch index of an epoch (Keras may report one past it)
        self._weights = BatchWeights()  # which metrics are running means, and their counts (kerasqt.means)

    # -- Keras hooks (training thread) -------------------------------------------------------------
    # Keras hands each call's model and params to its callbacks before its begin hook. A running fit
    # keeps its own: one set up meanwhile in another thread is refused at on_train_begin, and one of
    # the same thread (it raised, or runs inside it) takes them only when it turns out to be a fit.
    def set_model(self, model) -> None:
        try:
            claim = self._tracker.handed_model()
        except Twice:
            raise ValueError(TWICE) from None  # every hook would run twice: each batch logged twice
        if claim == "take":
            super().set_model(model)
        self._handed[threading.get_ident()] = [model, None] if claim == "defer" else None

    def set_params(self, params) -> None:
        claim = self._tracker.handed_params()
        handed = self._handed.get(threading.get_ident())
        if claim == "take":
            super().set_params(params)
        elif claim == "defer" and handed is not None:
            handed[1] = params

    def on_train_begin(self, logs=None) -> None:
        from .qtapp import ensure_app, in_main_thread

        try:
            self._tracker.train_begin()
        except Busy:
            self._handed.pop(threading.get_ident(), None)
            raise RuntimeError(BUSY) from None
        handed = self._handed.pop(threading.get_ident(), None)
        if handed is not None:  # a fit that replaced one of this thread: its model and params now
            super().set_model(handed[0])
            if handed[1] is not None:
                super().set_params(handed[1])
        self.runs += 1
        self._put = None  # the last run's queue, if its fit raised: nothing reads it any more
        self._reset_counters()
        self._end_capture()  # the last run's, if its fit raised before its receiver noticed
        self.events = queue.SimpleQueue()
        if not (self.all_processes or is_chief()):
            return  # another worker of a multi-worker training: the chief shows the run
        if self._viewer is not None:  # a child process draws (kerasqt.viewer): this one only logs the run
            self._unwatched(None)
            return self._viewer.follow(self.log_path)
        main = in_main_thread()
        win = self._window if (self._window is not None and not self._window.is_closed) else None
        if main:
            try:
                win = self.show()
            except Exception as exc:  # no screen, no Qt, a bug: the training goes on, unwatched
                self._main.end()
                self._unwatched(f"no window, training goes on unwatched: {exc}")
                return
        elif win is None:
            self._unwatched("fit runs outside the main thread and no window is open; call "
                            "QtMonitor.show() in the main thread first, or use fit_in_background")
            return
        if main:  # only the main thread may turn the event loop
            self._main.begin(ensure_app(), lambda why: self.fit_left(threading.main_thread().ident, why))
        else:
            self._main.end()
        self._recorder.open(self.events)  # before the capture: a warning of no log reaches the terminal or cell
        if self.capture_output:
            self._capture = OutputCapture(self.events, include_main=main and self._tracker.running_main).start()
            if not main:  # this training thread's lines are this window's, whatever starts later
                self._capture.set_source(threading.get_ident(), "worker")
        self._put = self.events.put
        self._steering()
        win.request_run(self)
        self._pump()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._main.beat()
        self._epoch = epoch
        self._last_batch = -1
        steps = (self.params or {}).get("steps")
        self._batch_cap = steps - 1 if steps else sys.maxsize
        self._read_lr()
        if self._patience is not None:
            self._patience.read(self._put)  # (the last epoch's, after every callback's on_epoch_end)
        self._put_start(epoch)

    def _put_start(self, initial_epoch: int) -> None:
        """The run's start, once: at its first epoch (Keras tells the initial epoch only there),
        or at its end when no epoch ran (``epochs=0``, or ``initial_epoch`` past ``epochs``)."""
        put = self._put
        if put is not None and not self._started:
            self._started = True
            p = self.params or {}
            put(StartEvent(time.time(), p.get("epochs"), p.get("steps"), self.batch_size,
                           initial_epoch=initial_epoch, run=f"run {self.runs}", lr_fixed=self._steer.lr_fixed))

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self._steer.batch_begin(self._model, self._offset + batch):  # controls asked for, if any
            self._read_lr()  # the learning rate was set: the next batches carry the new one
        if self._main.due():
            self._pump()
            if time.monotonic() >= self._next_lr:
                self._read_lr()

    def on_test_batch_begin(self, batch, logs=None) -> None:
        # Validation inside a main-thread fit: the window stays responsive (and keeps drawing).
        if self._main.due():
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
        step, weights = self._offset + batch + 1, self._weights
        if not weights.done:  # the run's first batch: which metrics are means, told before it (_model:
            weights.first(self._model, logs, step, batch, put)  # Keras' model property syncs JAX's state)
        # A plain tuple: the receiver's drain builds the BatchEvent, off the training thread's clock.
        put((step, self._epoch, time.time(), logs, self._lr, weights.read(batch)))

    def on_test_begin(self, logs=None) -> None:
        self._tracker.test_begin()

    def on_test_end(self, logs=None) -> None:
        kind = self._tracker.test_end()
        self._handed.pop(threading.get_ident(), None)  # (an evaluate's model and params: not kept)
        if kind == "test":  # an evaluate() of its own, after a fit or during one, from any thread
            self._evaluated(logs)
            return
        put = self._put
        if put is None:
            return
        values, bad = numbers(logs)  # the fit's own validation
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
        if put is not None and self._tracker.running():
            put(ev)
            return
        self._recorder.write_after(ev)
        win = self._window
        if win is not None and not win.is_closed:
            win.report_test(self, ev)

    def on_predict_end(self, logs=None) -> None:
        self._tracker.predict_end()  # nothing is shown of a predict()
        self._handed.pop(threading.get_ident(), None)

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._main.beat()
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
        self._steer.epoch_end(self.model, self._offset)
        if self._patience is not None:
            self._patience.epoch_ended(epoch, self._offset)
        self._pump()

    def on_train_end(self, logs=None) -> None:
        self._tracker.train_end()
        self._put_start((self.params or {}).get("epochs") or 0)  # (when no epoch began: none was left to run)
        put = self._put
        if self._patience is not None:
            self._patience.read(put, end=True)
        self._steer.end()  # controls not applied yet are refused, before the end
        if put is not None:
            stopped = bool(getattr(self.model, "stop_training", False))
            put(EndEvent(self._offset + self._last_batch + 1, time.time(), stopped))
            win = self._window
            if win is not None:
                win.training.wake()  # the receiver takes the end now, not at its next wake
            self._recorder.flush_end()  # no window (or it closed): the log's thread writes the end now
        self._end_capture()
        self._put = None
        # A main-thread fit returns now: the receiver delivers the end, and the window draws the
        # run's last frame, at the next turn of the event loop (wait_closed, the next notebook
        # cell, or a screenshot or export, which catch up first). A background fit leaves the
        # main thread's watch alone: a main-thread fit may have begun it meanwhile (its own
        # on_train_begin ended any stale one).
        if threading.current_thread() is threading.main_thread():
            self._main.end()

    # -- helpers -----------------------------------------------------------------------------------
    def _pump(self) -> None:
        self._main.pump(self.pump_interval, self._window)

    def _steering(self) -> None:
        """Controls are taken for the run from now on (training thread, its queue set)."""
        path = self.log_path
        self._steer.begin(self._put, self.model, path and path.stem, path and path.parent)
        if self._patience is not None:
            self._patience.begin()

    def _read_lr(self) -> None:
        self._next_lr = time.monotonic() + 1.0
        try:
            self._lr = float(self.model.optimizer.learning_rate)
        except Exception:
            self._lr = None
