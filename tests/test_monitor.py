"""The training monitor: QtMonitor in a main-thread fit, fit_in_background, stop, errors, bad logs."""

from __future__ import annotations

import json
import math
import threading
import time
import warnings

import keras
import numpy as np
import pytest

from kerasqt import QtMonitor, fit_in_background
from kerasqt.session import live_threads
from kerasqt.window import MonitorWindow


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    return x, y


def _model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


class _AtBatch(keras.callbacks.Callback):
    def __init__(self, batch, fn):
        super().__init__()
        self.batch, self.fn, self.done = batch, fn, False

    def on_train_batch_end(self, batch, logs=None):
        if not self.done and batch == self.batch:
            self.done = True
            self.fn(logs)


@pytest.fixture
def monitor(qtbot):
    mon = QtMonitor(title="test")
    yield mon
    mon.close()


def _finished(qtbot, monitor):
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=5000)


def test_main_thread_fit_plots_every_batch_epoch_and_val(qtbot, monitor):
    x, y = _data()
    hist = _model().fit(x, y, validation_split=0.25, epochs=3, batch_size=32, verbose=0, callbacks=[monitor])
    _finished(qtbot, monitor)
    win = monitor.window
    shown = win.plot.shown()
    assert shown["loss"]["batches"] == 3 * 6  # 192 training samples / 32
    assert shown["loss"]["epochs"] == 3 and shown["val_loss"]["epochs"] == 3
    assert shown["accuracy"]["batches"] == 18 and shown["val_accuracy"]["epochs"] == 3
    assert set(win.plot.panels) == {"loss", "accuracy"}
    np.testing.assert_allclose(win.plot.epochs.column("val_loss"), hist.history["val_loss"], rtol=1e-6)
    win.draw_now()
    val_line = win.plot.panels["loss"].lines["e:val_loss"]
    assert len(val_line.get_xdata()) == 3
    assert "training finished" in win.status.text()
    assert "epoch 3/3" in win.progress_label.text() and win.progress.value() == 1000
    assert win.progress_label.isVisibleTo(win)
    assert "epoch 1: " in win.pane_text("receiver")
    assert not live_threads()


def test_a_fit_on_a_generator_with_unknown_steps_ends_complete(qtbot, monitor):
    # A generator has no length: fit knows the epochs, not the steps. The progress line counts
    # the steps each epoch took; at the end the bar is full and the x axis fits the steps taken.
    x, y = _data(96)

    def batches():
        for i in range(0, 96, 32):
            yield x[i:i + 32], y[i:i + 32]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras: the input ran out of data (how a generator's epoch ends)
        _model().fit(batches(), epochs=1, verbose=0, callbacks=[monitor])
    _finished(qtbot, monitor)
    win = monitor.window
    assert win.plot.shown()["loss"]["batches"] == 3
    assert "training finished" in win.status.text()
    control = win.pane_text("control")
    assert "training started (1 epoch x ? steps)" in control and "at step 3 (3 batches, 1 epoch)" in control
    assert win.progress_label.text().startswith("epoch 1/1 · step 3 ·")
    assert (win.progress.maximum(), win.progress.value()) == (1000, 1000)
    qtbot.waitUntil(lambda: "loss" in win.plot.panels and win.plot.panels["loss"].ax.get_xlim() == (0.0, 3.0),
                    timeout=5000)  # (fit returned without waiting for the window to draw)


def test_stop_training_button_ends_fit_early(qtbot, monitor):
    x, y = _data(1024)
    clicker = _AtBatch(3, lambda logs: monitor.window.stop_training_button.click())
    hist = _model().fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[monitor, clicker])
    _finished(qtbot, monitor)
    assert len(hist.history["loss"]) == 1  # stopped inside the first epoch
    win = monitor.window
    assert win.plot.shown()["loss"]["batches"] == 4  # batches 0..3, then stop
    assert "stopped early" in win.status.text()
    # The epoch cut short ends where it stopped (step 4 of 32), not at its planned end.
    np.testing.assert_array_equal(win.plot.epochs.steps, [4])
    assert "training stopped early at step 4 (4 batches, 1 epoch)" in win.pane_text("control")
    assert win.progress_label.text().startswith("epoch 1/5 · step 4/32 ·")


def test_ctrl_c_in_a_watched_fit_reads_interrupted_not_failed(qtbot, monitor):
    x, y = _data()

    def ctrl_c(logs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), monitor.watching():
        _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, _AtBatch(2, ctrl_c)])
    _finished(qtbot, monitor)
    assert "training interrupted" in monitor.window.status.text()
    assert "training failed" not in monitor.window.status.text()
    assert "Ctrl-C" in monitor.window.pane_text("control")


def test_prints_during_fit_go_to_the_window(qtbot, monitor, capsys):
    x, y = _data()
    printer = _AtBatch(1, lambda logs: print("hello from training"))
    _model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[printer, monitor])
    _finished(qtbot, monitor)
    print("after fit")
    assert "hello from training" in monitor.window.pane_text("worker")
    out = capsys.readouterr().out
    assert "hello from training" not in out and "after fit" in out


def test_exception_in_main_thread_fit_reaches_caller_and_window(qtbot, monitor):
    x, y = _data()

    def boom(logs):
        raise RuntimeError("boom at batch 2")

    with pytest.raises(RuntimeError, match="boom at batch 2"):
        _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, _AtBatch(2, boom)])
    _finished(qtbot, monitor)
    assert "training failed" in monitor.window.status.text()
    print("prints reach the terminal again")  # the capture ended with the run
    assert "prints reach" not in monitor.window.pane_text("worker")


def test_bad_log_values_are_skipped_once_and_nan_flagged(qtbot, monitor):
    x, y = _data()

    class Spoil(keras.callbacks.Callback):  # runs before the monitor on the same logs dict
        def on_train_batch_end(self, batch, logs=None):
            logs["text"] = "not a number"
            logs["array"] = np.arange(3.0)
            logs["none"] = None
            logs["scalar_array"] = np.array([2.5])
            logs["weird"] = math.nan if batch % 2 else 1.0
            if batch >= 3:
                logs["late"] = 0.5

    _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[Spoil(), monitor])
    _finished(qtbot, monitor)
    win = monitor.window
    notes = win.pane_text("receiver")
    for key in ("text", "array", "none"):
        assert notes.count(f"metric {key!r} is not a single number") == 1
    assert notes.count("weird is nan") == 1
    shown = win.plot.shown()
    assert shown["scalar_array"]["batches"] == 16
    assert shown["weird"]["batches"] == 8  # the NaN half is a gap
    assert shown["late"]["batches"] == 10  # first seen at batch 3 of epoch 1
    assert "weird" in win.plot.nonfinite
    win.draw_now()
    assert "non-finite" in win.plot.panels["weird"].ax.get_title()


def test_closing_the_window_during_fit_lets_training_continue(qtbot, monitor):
    x, y = _data(1024)
    closer = _AtBatch(2, lambda logs: monitor.window.close())
    hist = _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, closer])
    assert len(hist.history["loss"]) == 2
    assert monitor.window.is_closed and not live_threads()


def test_a_window_closed_before_its_first_draw_draws_nothing_after(qtbot):
    """Matplotlib's draw on show, still pending at close, would render a closed window; if the
    window is let go meanwhile, the garbage collector could delete it in the middle of that draw."""
    from qtpy.QtWidgets import QApplication

    win = MonitorWindow(title="closed")
    qtbot.addWidget(win)
    draws = []
    win.canvas.draw = lambda: draws.append(1)  # (the instance's: what the idle draw calls)
    win.show()  # its resize asks for an idle draw
    win.close()
    QApplication.processEvents()
    assert draws == []


def test_a_monitor_let_go_after_fit_leaves_its_window_open_until_closed(qtbot):
    """``fit(..., callbacks=[QtMonitor()])``: nothing of the user's holds the monitor after fit; the
    window stays on screen until the user closes it, and is let go then."""
    import gc
    import weakref

    from kerasqt.window import open_windows

    x, y = _data(128)
    monitor = QtMonitor(title="let go", log_dir=None)
    _model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
    ref = weakref.ref(monitor.window)
    qtbot.waitUntil(lambda: not ref().training.running, timeout=5000)
    del monitor
    gc.collect()
    qtbot.wait(50)
    assert ref() is not None and ref().isVisible() and ref() in open_windows()
    ref().close()
    gc.collect()
    assert ref() is None


def test_closing_the_window_can_stop_training(qtbot):
    mon = QtMonitor(stop_on_close=True)
    x, y = _data(1024)
    closer = _AtBatch(2, lambda logs: mon.window.close())
    hist = _model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[mon, closer])
    assert len(hist.history["loss"]) == 1 and not live_threads()


def test_fit_in_background_returns_at_once_and_wait_gives_history(qtbot, monitor):
    x, y = _data(2048)
    job = fit_in_background(_model(), x, y, validation_split=0.2, epochs=3, batch_size=32, callbacks=[monitor])
    assert not job.done()
    hist = job.wait(timeout=120)
    assert job.done() and hist is job.history and len(hist.history["val_loss"]) == 3
    _finished(qtbot, monitor)
    assert monitor.window.plot.shown()["loss"]["batches"] == 3 * 52
    assert monitor.batch_size == 32
    assert "samples/s" in monitor.window.progress_label.text()


def test_fit_in_background_stop_and_error(qtbot, monitor):
    x, y = _data(4096)
    job = fit_in_background(_model(), x, y, epochs=50, batch_size=16, callbacks=[monitor])
    qtbot.waitUntil(lambda: monitor.window.plot.shown().get("loss", {}).get("batches", 0) > 5, timeout=20000)
    job.stop()
    hist = job.wait(timeout=60)
    assert len(hist.history["loss"]) < 50
    _finished(qtbot, monitor)

    def boom(logs):
        raise ValueError("data went bad")

    job = fit_in_background(_model(), x, y, epochs=2, batch_size=64, callbacks=[monitor, _AtBatch(4, boom)])
    with pytest.raises(ValueError, match="data went bad"):
        job.wait(timeout=60)
    assert isinstance(job.exception, ValueError)
    _finished(qtbot, monitor)
    assert "data went bad" in monitor.window.pane_text("control")
    assert "training failed" in monitor.window.status.text()


def test_the_same_monitor_twice_in_one_fit_is_refused_before_training(qtbot, monitor):
    x, y = _data()
    model = _model()
    for call in (lambda cbs: model.fit(x, y, epochs=1, verbose=0, callbacks=cbs),
                 lambda cbs: fit_in_background(model, x, y, epochs=1, callbacks=cbs).wait(timeout=60)):
        with pytest.raises(ValueError, match="in the callbacks twice|at most one QtMonitor"):
            call([monitor, keras.callbacks.History(), monitor])
    assert monitor.runs == 0 and monitor.window is None  # nothing began: no window, no run
    hist = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])  # once is fine, and nothing is held
    assert len(hist.history["loss"]) == 1 and monitor.runs == 1
    _finished(qtbot, monitor)
    assert monitor.window.plot.shown()["loss"]["batches"] == 8  # each batch once


def test_a_fit_with_no_epochs_to_run_is_a_whole_run(qtbot, tmp_path):
    from kerasqt.events import EndEvent, StartEvent
    from kerasqt.runlog import read_run

    monitor = QtMonitor(log_dir=tmp_path)
    x, y = _data()
    hist = _model().fit(x, y, epochs=0, verbose=0, callbacks=[monitor])
    assert hist.history == {}
    _finished(qtbot, monitor)
    win = monitor.window
    assert "training started (0 epochs x 8 steps)" in win.pane_text("control")  # it said "? epochs"
    assert "training finished at step 0" in win.pane_text("control")
    run = read_run(monitor.log_path)
    assert [type(ev) for _, ev in run.records] == [StartEvent, EndEvent]  # the start was missing
    assert win.progress_label.text().startswith("epoch 0/0 · step 0/8")  # not "epoch 1"
    _model().fit(x, y, epochs=2, initial_epoch=3, verbose=0, callbacks=[monitor])  # nothing left to run
    _finished(qtbot, monitor)
    assert read_run(monitor.log_path).events[0].initial_epoch == 2  # it said 0
    assert win.progress_label.text().startswith("epoch 2/2 · step 8/8")  # done, not "epoch 1/2 · step 0"
    monitor.close()


def test_one_monitor_watches_one_fit_at_a_time(qtbot, monitor):
    # A second fit given the same monitor while the first runs is refused with a clear error,
    # from fit_in_background at once, from fit in another thread at its start; the first run
    # goes on, watched, and its log holds its own batches only.
    x, y = _data(4096)
    job = fit_in_background(_model(), x, y, epochs=50, batch_size=16, callbacks=[monitor])
    qtbot.waitUntil(lambda: monitor.window.plot.shown().get("loss", {}).get("batches", 0) > 5, timeout=20000)
    with pytest.raises(RuntimeError, match="already watching another fit"):
        fit_in_background(_model(), x, y, epochs=1, callbacks=[monitor])
    errors = []

    def direct():
        try:
            _model().fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
        except RuntimeError as exc:
            errors.append(str(exc))

    other = threading.Thread(target=direct)
    other.start()
    other.join(60)
    assert len(errors) == 1 and "its own QtMonitor" in errors[0]
    assert monitor.window.training.running and not job.done()  # the first run goes on
    job.stop()
    job.wait(timeout=60)
    _finished(qtbot, monitor)
    assert "stopped early" in monitor.window.status.text() and monitor.runs == 1
    batches = [json.loads(line) for line in open(monitor.log_path) if '"type":"batch"' in line]
    steps = [b["step"] for b in batches]
    assert steps == list(range(1, len(steps) + 1))  # one run's steps, none from the refused fits


class _SlowBegin(keras.callbacks.Callback):
    """Takes its time in on_train_begin, as BackupAndRestore or TensorBoard may: runs before the monitor's."""

    def __init__(self, began):
        super().__init__()
        self.began = began

    def on_train_begin(self, logs=None):
        self.began.set()
        time.sleep(0.5)


def test_a_fit_claims_its_monitor_before_on_train_begin(qtbot, monitor):
    # Keras gives callbacks the model and params before on_train_begin: a second fit that starts in
    # that gap must neither take them over nor be accepted.
    x, y = _data(2048)
    first, second = _model(), _model()
    began = threading.Event()
    job = fit_in_background(first, x, y, epochs=2, batch_size=32, callbacks=[_SlowBegin(began), monitor])
    assert began.wait(30)
    with pytest.raises(RuntimeError, match="already watching another fit"):  # the job holds it
        fit_in_background(second, x, y, epochs=1, batch_size=512, callbacks=[monitor])
    refused = []

    def direct():
        try:
            second.fit(x, y, epochs=1, batch_size=512, verbose=0, callbacks=[monitor])
        except RuntimeError as exc:
            refused.append(str(exc))

    other = threading.Thread(target=direct)
    other.start()
    other.join(60)
    assert refused and monitor.model is first and monitor.params["steps"] == 64
    job.wait(timeout=120)
    _finished(qtbot, monitor)
    win = monitor.window
    assert win.plot.shown()["loss"]["batches"] == 128 and "training finished" in win.status.text()
    assert win.progress_label.text().startswith("epoch 2/2 · step 64/64")


def test_a_fit_inside_a_watched_fit_takes_the_monitor_over_and_the_outer_fit_goes_on(qtbot, monitor):
    # Keras' hooks cannot tell a fit that runs inside the watched one (same thread) from one that
    # follows a fit that raised: the new fit is the run watched from then on. The outer fit trains
    # on, unharmed, and its later hooks add nothing to the window.
    x, y = _data()
    inner = []

    def nested(logs):
        inner.append(_model().fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[monitor]))

    history = _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, _AtBatch(2, nested)])
    _finished(qtbot, monitor)
    assert len(history.history["loss"]) == 2 and len(inner) == 1
    assert monitor.runs == 2 and monitor.window.plot.shown()["loss"]["batches"] == 4  # the inner run's
    assert "training finished" in monitor.window.status.text()


def test_steps_per_execution_that_do_not_divide_an_epoch(qtbot, monitor):
    # 10 steps an epoch, 4 per execution: Keras reports the last, short execution as batch 11.
    x, y = _data(320)
    model = _model()
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"], steps_per_execution=4)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    _finished(qtbot, monitor)
    win = monitor.window
    assert list(win.plot.batches.steps) == [4, 8, 10, 14, 18, 20]
    np.testing.assert_array_equal(win.plot.epochs.steps, [10, 20])
    assert win.progress_label.text().startswith("epoch 2/2 · step 10/10") and win.progress.value() == 1000


def test_same_monitor_for_repeated_fits_starts_a_new_run_each_time(qtbot, monitor):
    x, y = _data()
    model = _model()
    for _ in range(3):
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
        _finished(qtbot, monitor)
        assert monitor.window.plot.shown()["loss"]["batches"] == 8
    assert monitor.runs == 3 and not live_threads()


def test_new_limits_follow_the_data_within_a_second_early_in_a_run(qtbot):
    # A full draw (new limits) takes its share of the drawing budget, but early in a run, when
    # the curves move most, the next one may come a second later at most: the cap is a quarter
    # of the run's age, up to FULL_DRAW_MAX_GAP. (An 80 ms draw at a 1 % share would wait 8 s.)
    win = MonitorWindow(draw_budget=0.02)
    qtbot.addWidget(win)
    pacer = win.pacer
    pacer._run_began = 100.0
    assert pacer.full_draw_gap(0.080, now=100.5) == 1.0
    assert pacer.full_draw_gap(0.080, now=108.0) == 2.0
    assert pacer.full_draw_gap(0.080, now=200.0) == pacer.FULL_DRAW_MAX_GAP == 4.0
    assert pacer.full_draw_gap(0.005, now=200.0) == pacer.FULL_DRAW_MIN_GAP == 1.0  # cheap: the budget allows more
    assert pacer.full_draw_gap(0.015, now=200.0) == pytest.approx(1.5)


def test_monitor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="smoothing"):
        QtMonitor(smoothing=2)
    with pytest.raises(ValueError, match="max_rate"):
        QtMonitor(max_rate=0)
    with pytest.raises(ValueError, match="batch_size"):
        QtMonitor(batch_size=0)


def test_monitor_is_async_safe_and_keeps_keras_dispatch_async():
    cbs = keras.callbacks.CallbackList([QtMonitor()])
    assert cbs._async_train is keras.src.backend.IS_THREAD_SAFE


def test_the_receiver_takes_what_was_queued_each_interval_not_one_event_per_wake(qtbot):
    """Waking at every event would take the GIL from the training thread at every batch."""
    import queue
    import time

    from kerasqt.events import BatchEvent, EndEvent, StartEvent
    from kerasqt.receiver import Receiver
    from kerasqt.refine import TrainingRefiner
    from kerasqt.session import end_thread, start_in_thread

    events = queue.SimpleQueue()
    receiver = Receiver(events, TrainingRefiner(), interval=0.05)
    updates = []
    receiver.updated.connect(updates.append)
    t0 = time.monotonic()
    with qtbot.waitSignal(receiver.finished, timeout=20000):
        thread = start_in_thread(receiver, "kerasqt-receiver")
        events.put(StartEvent(time.time(), 1, 200))
        for i in range(200):  # a batch every 2 ms or so
            events.put(BatchEvent(i + 1, 0, time.time(), {"loss": 1.0 / (i + 1)}))
            time.sleep(0.002)
        events.put(EndEvent(200, time.time(), False))
    elapsed = time.monotonic() - t0
    assert end_thread(receiver, thread)
    qtbot.waitUntil(lambda: any(u.end is not None for u in updates), timeout=5000)
    assert receiver.iteration <= elapsed / 0.05 + 3  # about one wake per interval, not ~200
    assert sum(len(u.batches.steps) for u in updates if u.batches is not None) == 200


def test_wake_lets_the_receiver_take_the_end_at_once(qtbot):
    import queue
    import time

    from kerasqt.events import EndEvent, StartEvent
    from kerasqt.receiver import Receiver
    from kerasqt.refine import TrainingRefiner
    from kerasqt.session import end_thread, start_in_thread

    events = queue.SimpleQueue()
    receiver = Receiver(events, TrainingRefiner(), interval=30.0)  # it would sleep 30 s between looks
    events.put(StartEvent(time.time(), 1, 10))
    thread = start_in_thread(receiver, "kerasqt-receiver")
    t0 = time.monotonic()
    with qtbot.waitSignal(receiver.finished, timeout=5000):
        events.put(EndEvent(10, time.time(), False))
        receiver.wake()
    assert time.monotonic() - t0 < 5 and end_thread(receiver, thread)


def test_a_main_thread_fit_returns_at_once_and_the_window_then_shows_its_end(qtbot):
    monitor = QtMonitor()
    try:
        x, y = np.random.default_rng(0).standard_normal((64, 4)), np.zeros((64, 1))
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor])
        win = monitor.window  # right after fit returned, before anyone turned the event loop:
        assert win.training.running  # fit did not wait for the window to take the run's end
        assert win.catch_up()  # the next turn of the loop (a screenshot, a notebook cell) shows it
        assert win.training.running is False and win.status.text() == "training finished"
        assert win.training._receiver is None
        from kerasqt.runlog import read_run

        assert read_run(monitor.log_path).ended  # and the run log holds its end line
    finally:
        monitor.close()


def test_a_finished_runs_y_limits_fit_its_data(qtbot, monitor):
    x, y = _data(512)
    model = _model()
    model.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[monitor])
    plot = monitor.window.plot
    draws, full = plot.panel_draws, plot.full_draws
    _finished(qtbot, monitor)
    qtbot.waitUntil(lambda: not plot.dirty, timeout=5000)  # the run's last frame, after fit returned
    # New limits: each axes drawn anew on its own, the event loop turning in between, not the
    # whole figure in one block.
    assert plot.panel_draws >= draws + 2 and plot.full_draws == full + 1
    for group in ("loss", "accuracy"):
        shown = [line.get_ydata() for line in plot.panels[group].lines.values()]
        values = np.concatenate([np.asarray(v, float) for v in shown])
        lo, hi = np.nanmin(values), np.nanmax(values)
        y0, y1 = plot.panels[group].ax.get_ylim()
        assert lo - 0.2 * (hi - lo) <= y0 <= lo and hi <= y1 <= hi + 0.2 * (hi - lo), (group, y0, y1, lo, hi)


def test_in_a_main_thread_fit_an_update_brings_its_frame_in_the_same_turn(qtbot):
    """While fit holds the main thread, each turn of the event loop is taken from training: the
    frame an update asks for is drawn in the turn that delivered the update, not in another."""
    import time

    from kerasqt.events import BatchEvent, StartEvent
    from kerasqt.refine import TrainingRefiner
    from kerasqt.window import MonitorWindow

    win = MonitorWindow(title="turns")
    qtbot.addWidget(win)
    win.show()
    win.show_training()
    refiner = TrainingRefiner()
    win._on_update(refiner.refine([StartEvent(time.time(), 1, 100, 32)]))
    step = iter(range(1, 100))

    def update():
        return refiner.refine([BatchEvent(next(step), 0, time.time(), {"loss": 1.0}) for _ in range(5)])

    win.training_active = True
    for in_main, due_in, drawn in ((True, 0.0, 1), (True, 0.03, 1), (False, 0.0, 0), (True, 60.0, 0)):
        win.pacer.loop_interval = 0.05 if in_main else None  # the fit's turns of the loop come 50 ms apart
        win.pacer.earliest = time.perf_counter() + due_in  # due now, before the next turn, or much later
        frames = win.frames
        win._on_update(update())  # no turn of the event loop after it
        assert win.frames - frames == drawn
        assert drawn or win.pacer.timer.isActive()  # a frame not drawn now waits for its timer
        win.pacer.timer.stop()
    win.training_active = False


def test_a_long_validation_in_a_main_thread_fit_keeps_the_window_turning(qtbot, monitor):
    """Validation steps turn the event loop too: without it the window froze for all of them."""
    import time

    from qtpy.QtCore import QTimer

    ticks = {"train": 0, "val": 0}
    phase = {"now": "train"}

    class SlowValidation(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            phase["now"] = "val"

        def on_test_batch_end(self, batch, logs=None):
            time.sleep(0.004)  # 40 validation steps: 0.16 s or more with no training step

        def on_test_end(self, logs=None):
            phase["now"] = "train"

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.__setitem__(phase["now"], ticks[phase["now"]] + 1))
    timer.start(10)
    x, y = _data(512)
    xv, yv = _data(1280, seed=1)
    _model().fit(x, y, validation_data=(xv, yv), epochs=1, batch_size=32, verbose=0,
                 callbacks=[monitor, SlowValidation()])
    timer.stop()
    _finished(qtbot, monitor)
    assert ticks["val"] >= 2  # a 10 ms timer fired while validation ran: the event loop turned


def test_the_receiver_wakes_often_until_the_first_batch_then_at_its_interval(qtbot):
    """A main-thread fit's receiver sleeps 0.4 s; the window's first frame should not wait that long
    after the first batch (the first steps of a fit trace the model, so the start comes first)."""
    import queue
    import time

    from kerasqt.events import BatchEvent, EndEvent, StartEvent
    from kerasqt.receiver import Receiver
    from kerasqt.refine import TrainingRefiner
    from kerasqt.session import end_thread, start_in_thread

    events = queue.SimpleQueue()
    receiver = Receiver(events, TrainingRefiner(), interval=3.0)
    arrived = []
    receiver.updated.connect(lambda u: arrived.append((time.monotonic(), u)))
    events.put(StartEvent(time.time(), 1, 10))
    thread = start_in_thread(receiver, "kerasqt-receiver")
    try:
        qtbot.waitUntil(lambda: bool(arrived), timeout=2000)  # the start: long before 3 s
        time.sleep(0.3)  # tracing: no batch yet, and the receiver still wakes often
        t0 = time.monotonic()
        events.put(BatchEvent(1, 0, time.time(), {"loss": 1.0}))
        qtbot.waitUntil(lambda: any(u.batches is not None for _, u in arrived), timeout=2000)
        assert arrived[-1][0] - t0 < 1.0
        t1 = time.monotonic()
        events.put(BatchEvent(2, 0, time.time(), {"loss": 0.5}))  # from now on: every 3 s
        qtbot.wait(1000)
        assert not any(t > t1 for t, _ in arrived)
        with qtbot.waitSignal(receiver.finished, timeout=5000):
            events.put(EndEvent(2, time.time()))
            receiver.wake()
    finally:
        assert end_thread(receiver, thread)


class _TurnsTheLoop(keras.callbacks.Callback):
    """Another callback that turns the Qt event loop inside fit, as plt.pause does."""

    def on_epoch_end(self, epoch, logs=None):
        from qtpy.QtWidgets import QApplication

        time.sleep(0.25)  # past the free check's interval: its timer fires in the turns below
        end = time.monotonic() + 0.1
        while time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.01)


def test_a_fit_is_not_taken_for_gone_when_other_code_turns_the_event_loop_inside_it(qtbot):
    # Two monitors in one main-thread fit (each turns the loop, firing the other's free check),
    # and a callback that turns it itself: the fit goes on, and both runs end finished.
    a, b = QtMonitor(title="a"), QtMonitor(title="b")
    try:
        x, y = _data(1024)
        _model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[a, b, _TurnsTheLoop()])
        for mon in (a, b):
            assert mon.window.catch_up()
            assert mon.window.status.text() == "training finished", mon.window.pane_text("control")
            assert mon.window.plot.shown()["loss"]["batches"] == 96
    finally:
        a.close()
        b.close()


class _LongTurnOfKerasqt(keras.callbacks.Callback):
    """Stands for another monitor whose turn of the event loop is long (a first full draw on a
    busy machine): a slot that takes 1.2 s runs in one of kerasqt's own turns."""

    def on_epoch_end(self, epoch, logs=None):
        from qtpy.QtCore import QTimer
        from qtpy.QtWidgets import QApplication

        from kerasqt.pump import turn

        QTimer.singleShot(0, lambda: time.sleep(1.2))
        turn(QApplication.instance())


def test_a_long_turn_of_another_monitor_is_not_the_fit_gone(qtbot, monitor):
    # The monitor's last hook ran 1.45 s before the other callback turns the loop, but 1.2 s of
    # that was a turn of kerasqt's, inside the fit: the run goes on and ends finished.
    x, y = _data(256)
    _model().fit(x, y, epochs=2, batch_size=32, verbose=0,
                 callbacks=[monitor, _LongTurnOfKerasqt(), _TurnsTheLoop()])
    assert monitor.window.catch_up()
    assert monitor.window.status.text() == "training finished", monitor.window.pane_text("control")


def test_a_background_fit_runs_after_a_main_thread_call_that_raised(qtbot, qtlog, monitor, monkeypatch):
    from kerasqt.pump import MainThreadFit

    monkeypatch.setattr(MainThreadFit, "LEFT_AFTER", 600.0)  # the interrupted fit is not seen gone meanwhile
    x, y = _data(256)
    model = _model()
    with pytest.raises(ValueError):  # an evaluate that fails before its begin hook: its claim stays
        model.evaluate(np.zeros((4, 3)), np.zeros((4, 1)), callbacks=[monitor], verbose=0)
    with pytest.raises(KeyboardInterrupt):  # a main-thread fit interrupted, caught by the user
        model.fit(x, y, epochs=2, batch_size=32, verbose=0,
                  callbacks=[monitor, _AtBatch(3, lambda logs: (_ for _ in ()).throw(KeyboardInterrupt))])
    assert monitor._main._timer.isActive()  # still watched: the background fit ends that watch
    history = fit_in_background(model, x, y, epochs=1, batch_size=32, callbacks=[monitor]).wait(timeout=60)
    assert len(history.history["loss"]) == 1
    _finished(qtbot, monitor)
    assert monitor.window.status.text() == "training finished"
    # The background fit ended the watch of the interrupted one; the timer of that watch stopped
    # in the main thread, which owns it.
    assert not monitor._main._timer.isActive()
    assert not [r.message for r in qtlog.records if "another thread" in r.message]
