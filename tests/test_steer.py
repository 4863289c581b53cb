"""Controls of a run from the window and from code (stop after the epoch, save a checkpoint now, set
the learning rate), EarlyStopping's countdown and best epoch, their marks, and their replay."""

from __future__ import annotations

import json
import math
import time

import keras
import numpy as np
import pytest

from kerasqt import QtMonitor, fit_in_background
from kerasqt.events import ControlEvent, PatienceEvent, StartEvent
from kerasqt.history import LR_KEY, RunHistory
from kerasqt.marks import MAX_LR_LABELS, RunMarks
from kerasqt.refine import TrainingUpdate
from kerasqt.runlog import read_run
from kerasqt.steer import ControlError


def _data(n=256, seed=0, noise=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype("float32")
    y = (rng.random((n, 1)) > 0.5) if noise else (x[:, :1] > 0)
    return x, y.astype("float32")


def _model(optimizer=None, seed=1):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer or keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    return model


class _Hook(keras.callbacks.Callback):
    """Calls ``fn(epoch, batch)`` at each batch's end (``at="end"``) or begin (``at="begin"``)."""

    def __init__(self, fn, at="end"):
        super().__init__()
        self.fn, self.at, self.epoch = fn, at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.at == "begin":
            self.fn(self.epoch, batch)

    def on_train_batch_end(self, batch, logs=None):
        if self.at == "end":
            self.fn(self.epoch, batch)


@pytest.fixture
def monitor(qtbot, tmp_path):
    mon = QtMonitor(title="steer", log_dir=tmp_path / "runs")
    yield mon
    mon.close()


def _finished(qtbot, monitor):
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=10000)


def _logged(path, kind):
    return [ev for ev in read_run(path).events if isinstance(ev, kind)]


def _lines(text):
    return [line for line in text.splitlines() if line]


# -- stop after this epoch ---------------------------------------------------------------------------
def test_stop_after_this_epoch_during_the_second_of_5_epochs_ends_fit_after_2(qtbot, monitor):
    x, y = _data()  # 8 batches an epoch

    def press(epoch, batch):
        if (epoch, batch) == (1, 3):
            monitor.window.steer.stop_epoch.click()

    history = _model().fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[monitor, _Hook(press)])
    _finished(qtbot, monitor)
    assert len(history.history["loss"]) == 2
    win = monitor.window
    np.testing.assert_array_equal(win.plot.epochs.steps, [8, 16])  # the second epoch ran whole
    pane = win.pane_text("control")
    assert "training stops at the end of this epoch" in pane
    assert "stop after this epoch: asked" not in pane  # (its own echo: said once, by the button)
    assert "stopped after this epoch, as asked" in pane and "training stopped early at step 16" in pane
    logged = _logged(monitor.log_path, ControlEvent)
    assert [(ev.action, ev.step, ev.ok) for ev in logged] == [("stop_epoch", 11, True), ("stop_epoch", 16, True)]
    assert not win.steer.stop_epoch.isEnabled()  # the run is over


# -- save a checkpoint now ---------------------------------------------------------------------------
def test_save_now_writes_checkpoints_that_load_and_predict_like_the_model_at_that_step(qtbot, monitor):
    x, y = _data()
    seen = {}  # step -> the weights when the batch after the press began (after the monitor saved)

    def press(epoch, batch):
        step = 8 * epoch + batch + 1
        if step == 5:
            monitor.window.steer.save.click()
        elif step == 12:
            monitor.window.steer.save_whole.trigger()

    def look(epoch, batch):
        step = 8 * epoch + batch
        if step in (5, 12):
            seen[step] = model.get_weights()

    model = _model()
    model.fit(x, y, epochs=3, batch_size=32, verbose=0,
              callbacks=[monitor, _Hook(press), _Hook(look, at="begin")])
    _finished(qtbot, monitor)
    log = monitor.log_path
    saves = [ev for ev in _logged(log, ControlEvent) if ev.action == "save"]
    assert [(ev.step, ev.ok) for ev in saves] == [(5, True), (12, True)]
    weights, whole = (type(log)(ev.path) for ev in saves)
    assert (weights.parent, weights.name) == (log.parent, f"{log.stem}-step5.weights.h5")
    assert (whole.parent, whole.name) == (log.parent, f"{log.stem}-step12.keras")
    pane = monitor.window.pane_text("control")
    assert f"checkpoint saved at step 5: {weights}" in pane and f"checkpoint saved at step 12: {whole}" in pane

    probe = _data(64, seed=7)[0]
    at_5 = _model(seed=9)
    at_5.set_weights(seen[5])
    loaded = _model(seed=9)
    loaded.optimizer.build(loaded.trainable_variables)  # (the file holds the optimizer's state too)
    loaded.load_weights(weights)
    np.testing.assert_allclose(loaded.predict(probe, verbose=0), at_5.predict(probe, verbose=0), rtol=1e-6)
    at_12 = _model(seed=9)
    at_12.set_weights(seen[12])
    restored = keras.models.load_model(whole, compile=False)
    np.testing.assert_allclose(restored.predict(probe, verbose=0), at_12.predict(probe, verbose=0), rtol=1e-6)
    assert not np.allclose(model.predict(probe, verbose=0), at_5.predict(probe, verbose=0))  # (it trained on)


def test_a_checkpoint_folder_that_cannot_be_written_is_one_line_and_training_goes_on(qtbot, monitor, tmp_path):
    x, y = _data()
    runs, moved = tmp_path / "runs", tmp_path / "moved"

    def press(epoch, batch):
        if (epoch, batch) == (0, 2):
            runs.rename(moved)  # (the open run log goes with it)
            runs.write_text("a file where the folder was")
            monitor.save_checkpoint()

    history = _model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[monitor, _Hook(press)])
    _finished(qtbot, monitor)
    assert len(history.history["loss"]) == 3
    pane = _lines(monitor.window.pane_text("control"))
    failed = [line for line in pane if line.startswith("checkpoint not saved")]
    assert len(failed) == 1 and str(runs) in failed[0], pane
    assert pane[-1].startswith("training finished at step 24")
    (ev,) = _logged(moved / monitor.log_path.name, ControlEvent)
    assert (ev.action, ev.ok, ev.step) == ("save", False, 3) and "\n" not in ev.text


# -- the learning rate -------------------------------------------------------------------------------
def _pixels(win, panel, step=None, color=(148, 103, 189)):
    """How many pixels of the learning-rate colour (or ``color``) the column at ``step`` of ``panel``
    holds (None: the whole axes)."""
    ax = win.plot.panels[panel].ax
    buf = np.asarray(win.canvas.buffer_rgba())
    height = buf.shape[0]
    if step is None:
        x0, x1 = int(ax.bbox.x0), int(ax.bbox.x1)
    else:
        px = int(round(ax.transData.transform((step, 0))[0]))
        x0, x1 = px - 1, px + 2
    column = buf[int(height - ax.bbox.y1):int(height - ax.bbox.y0), x0:x1, :3].astype(int)
    return int((np.abs(column - color).sum(axis=2) < 40).sum())


def test_a_learning_rate_set_in_the_window_is_the_optimizers_at_the_next_batch_and_marked(qtbot, monitor):
    x, y = _data()
    seen = {}

    def press(epoch, batch):
        steer = monitor.window.steer
        if (epoch, batch) == (0, 3):
            steer.lr_field.setText("1e-4")
            steer.lr_field.returnPressed.emit()
        elif (epoch, batch) == (1, 5):
            steer.lr_half.click()

    def look(epoch, batch):
        seen[8 * epoch + batch] = float(model.optimizer.learning_rate)

    model = _model()
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[monitor, _Hook(press), _Hook(look, at="begin")])
    _finished(qtbot, monitor)
    assert seen[3] == pytest.approx(1e-3) and seen[4] == pytest.approx(1e-4, rel=1e-6)
    assert seen[13] == pytest.approx(1e-4, rel=1e-6) and seen[14] == pytest.approx(5e-5, rel=1e-6)
    win = monitor.window
    pane = win.pane_text("control")
    assert "learning rate 0.001 -> 0.0001 from step 5" in pane and "learning rate 0.0001 -> 5e-05 from step 15" in pane
    assert not win.steer.lr_field.text()  # taken
    # Marked where the first batch with the new rate ended, in each metric's axes, with the new value.
    lr_marks, _ = win.plot.marks.spec(win.plot.history)
    assert [(s, round(v, 9)) for s, v in lr_marks] == [(5, 1e-4), (15, 5e-5)]
    win.draw_now()  # (marks are made with the frames)
    labels = [a.get_text().strip() for a in win.plot.mark_artists.artists(win.plot.panels["loss"])
              if hasattr(a, "get_text")]
    assert labels == ["lr 0.0001", "lr 5e-5"]  # (in the first metric's axes only)
    assert not [a for a in win.plot.mark_artists.artists(win.plot.panels["accuracy"]) if hasattr(a, "get_text")]
    assert not win.plot.mark_artists.artists(win.plot.panels[LR_KEY])  # (its own curve says it)
    for panel in ("loss", "accuracy"):
        assert _pixels(win, panel, 5) > 20 and _pixels(win, panel, 15) > 20
        assert _pixels(win, panel, 10) == 0


def test_a_learning_rate_that_is_not_a_positive_finite_number_is_refused_in_one_line(qtbot, monitor):
    x, y = _data()
    errors = []

    def press(epoch, batch):
        if (epoch, batch) != (0, 2):
            return
        steer = monitor.window.steer
        for text in ("0", "-1e-3", "nan", "inf", "fast"):
            steer.lr_field.setText(text)
            steer.lr_field.returnPressed.emit()
        for bad in ({"value": 0.0}, {"value": -1.0}, {"value": math.nan}, {"value": math.inf},
                    {"factor": 0.0}, {"factor": math.inf}, {"value": "1e-4"}, {}):
            with pytest.raises(ControlError) as info:
                monitor.control("lr", bad)
            errors.append(str(info.value))

    model = _model()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor, _Hook(press)])
    _finished(qtbot, monitor)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert all("\n" not in e for e in errors) and len(errors) == 8
    assert "positive finite number" in errors[2] and "either a new value or a factor" in errors[-1]
    refused = [line for line in _lines(monitor.window.pane_text("control")) if "positive finite number" in line]
    assert len(refused) == 5 and refused[-1].endswith("got 'fast'"), refused
    assert monitor.window.steer.lr_field.text() == "fast"  # (kept, to correct)
    assert not _logged(monitor.log_path, ControlEvent)  # refused when asked: nothing for the run


def test_with_a_learning_rate_schedule_the_control_is_off_and_says_why(qtbot, monitor):
    x, y = _data(1024)
    monitor.show()
    steer = monitor.window.steer
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.9)
    job = fit_in_background(_model(keras.optimizers.Adam(schedule)), x, y, epochs=200, batch_size=32,
                            callbacks=[monitor])
    try:
        qtbot.waitUntil(lambda: bool(steer.lr_fixed), timeout=10000)
        assert steer.stop_now.isEnabled() and steer.save.isEnabled()
        assert not any(w.isEnabled() for w in (steer.lr_field, steer.lr_half, steer.lr_double))
        assert "schedule" in steer.lr_field.toolTip() and "cannot be set" in steer.lr_half.toolTip()
        with pytest.raises(ControlError, match="cannot be set"):
            monitor.set_learning_rate(1e-4)
        assert not steer.ask("lr", {"factor": 2.0})
        assert _lines(monitor.window.pane_text("control"))[-1].startswith("the learning rate cannot be set")
    finally:
        steer.stop_now.click()
        job.wait(timeout=60)
    _finished(qtbot, monitor)
    assert "stop requested: training stops after this batch" in monitor.window.pane_text("control")
    (start,) = _logged(monitor.log_path, StartEvent)
    assert "schedule" in start.lr_fixed


# -- a control when no run is going ------------------------------------------------------------------
def test_a_control_after_the_run_ended_is_refused_and_not_kept_for_the_next_run(qtbot, monitor, tmp_path):
    x, y = _data()
    late = []

    def last_batch(epoch, batch):
        if (epoch, batch) == (0, 7):  # no batch follows to apply it
            late.append(monitor.save_checkpoint())

    _model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[monitor, _Hook(last_batch)])
    _finished(qtbot, monitor)
    first = monitor.log_path
    assert late == ["a checkpoint is saved at the next batch"]
    (ev,) = _logged(first, ControlEvent)
    assert (ev.action, ev.ok, ev.text) == ("save", False, "save: not applied, the run ended first")
    win = monitor.window
    assert "save: not applied, the run ended first" in win.pane_text("control")

    for call in (lambda: monitor.set_learning_rate(1e-4), monitor.save_checkpoint, monitor.stop_after_epoch):
        with pytest.raises(ControlError, match="no run is going") as info:
            call()
        assert "\n" not in str(info.value)
    steer = win.steer
    assert not any(w.isEnabled() for w in (steer.stop_now, steer.stop_epoch, steer.save, steer.lr_field))
    assert not win.steer.ask("save")
    assert _lines(win.pane_text("control"))[-1] == "no run that can be controlled is going: save refused"

    model = _model()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    _finished(qtbot, monitor)
    assert monitor.log_path != first and not _logged(monitor.log_path, ControlEvent)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert sorted(p.suffix for p in (tmp_path / "runs").iterdir()) == [".jsonl", ".jsonl"]  # no checkpoint


# -- EarlyStopping -----------------------------------------------------------------------------------
class _Record(keras.callbacks.Callback):
    """EarlyStopping's own state after each epoch (listed after it), and a pause for the window."""

    def __init__(self, es):
        super().__init__()
        self.es, self.states = es, {}

    def on_epoch_end(self, epoch, logs=None):
        self.states[epoch] = (self.es.wait, self.es.best_epoch)
        time.sleep(0.15)  # each epoch's state reaches the window in an update of its own


def test_early_stopping_countdown_and_best_epoch_match_its_own_state_at_every_epoch(qtbot, tmp_path):
    x, y = _data(512, noise=True)  # labels of noise: val_loss soon stops improving
    es = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    monitor = QtMonitor(title="es", log_dir=tmp_path / "runs", early_stopping=es)
    win = monitor.show()
    shown = []

    def took(update):  # after the window's own slot: what it shows for each epoch's state
        for ev in update.steering:
            if isinstance(ev, PatienceEvent):
                best = win.plot.marks.spec(win.plot.history)[1]
                shown.append((ev, win.progress_label.text(), best))

    win.training.updated.connect(took)
    record = _Record(es)
    model = _model(keras.optimizers.Adam(0.02))
    job = fit_in_background(model, x, y, validation_split=0.25, epochs=30, batch_size=32,
                            callbacks=[monitor, es, record])
    history = job.wait(timeout=120)
    qtbot.waitUntil(lambda: not win.training.running, timeout=10000)
    try:
        epochs = len(history.history["loss"])
        assert es.stopped_epoch == epochs - 1 > 0  # it stopped the run
        assert [ev.epoch for ev, _, _ in shown] == list(range(epochs))
        assert max(wait for wait, _ in record.states.values()) == 3
        for ev, line, best in shown:
            wait, best_epoch = record.states[ev.epoch]
            assert (ev.wait, ev.patience, ev.best_epoch) == (wait, 3, best_epoch)
            assert f"· patience {wait}/3 ·" in line
            assert best.metric == "val_loss" and best.epoch == best_epoch
            assert best.step == win.plot.epochs.steps[best_epoch]  # at that epoch's end, on its value
            assert best.value == pytest.approx(history.history["val_loss"][best_epoch], rel=1e-5)
        assert shown[-1][0].restored == es.best_epoch and shown[-1][2].restored
        pane = win.pane_text("control")
        assert f"EarlyStopping restored the weights of epoch {es.best_epoch + 1}" in pane
        assert "EarlyStopping stops the run: val_loss did not improve for 3 epochs" in pane
        win.draw_now()  # (marks are made with the frames)
        texts = [a.get_text() for a in win.plot.mark_artists.artists(win.plot.panels["loss"]) if hasattr(a, "get_text")]
        assert texts == [f"weights restored: epoch {es.best_epoch + 1}"]
        assert not win.plot.mark_artists.artists(win.plot.panels["accuracy"])
    finally:
        monitor.close()


# -- replay --------------------------------------------------------------------------------------------
def test_a_replayed_log_shows_its_controls_marks_and_countdown(qtbot, tmp_path):
    from kerasqt.replay import replay

    x, y = _data(512, noise=True)
    es = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1)
    monitor = QtMonitor(title="live", log_dir=tmp_path / "runs", early_stopping=es)

    def press(epoch, batch):
        if (epoch, batch) == (0, 3):
            monitor.set_learning_rate(factor=0.5)
            monitor.save_checkpoint()

    _model(keras.optimizers.Adam(0.02)).fit(x, y, validation_split=0.25, epochs=20, batch_size=32, verbose=0,
                                            callbacks=[monitor, _Hook(press), plateau, es])
    _finished(qtbot, monitor)
    live = monitor.window
    live_spec = live.plot.marks.spec(live.plot.history)
    live_pane, live_progress = live.pane_text("control"), live.progress_label.text()
    monitor.close()
    assert len(live_spec[0]) >= 2 and live_spec[1] is not None  # the control's change and the plateau's

    rp = replay(monitor.log_path)
    qtbot.addWidget(rp.window)
    qtbot.waitUntil(lambda: rp.done and not rp.window.training.running, timeout=10000)
    win = rp.window
    win.draw_now()
    assert win.plot.marks.spec(win.plot.history) == live_spec
    assert "· patience 2/2 ·" in live_progress and "· patience 2/2 ·" in win.progress_label.text()
    replayed = win.pane_text("control")
    for line in _lines(live_pane):
        if line.startswith(("learning rate", "checkpoint saved", "EarlyStopping")):
            assert line in replayed
    n = len(live_spec[0])
    assert len(win.plot.mark_artists.artists(win.plot.panels["loss"])) == n + min(n, MAX_LR_LABELS) + 2
    assert not win.steer.stop_now.isEnabled() and not win.steer.lr_field.isEnabled()
    win.close()


def test_a_version_1_log_still_replays(qtbot, tmp_path):
    from kerasqt.replay import replay

    path = tmp_path / "old.jsonl"
    lines = [{"format": "kerasqt-run", "version": 1, "kind": "training", "title": "old"},
             {"type": "start", "time": 1.0, "epochs": 2, "steps": 2, "batch_size": 4, "initial_epoch": 0, "run": "r"}]
    for step in (1, 2, 3, 4):
        lines.append({"type": "batch", "time": 1.0 + step, "step": step, "epoch": (step - 1) // 2,
                      "values": {"loss": 1.0 / step}, "lr": 0.01 if step < 3 else 0.005})
        if step % 2 == 0:
            lines.append({"type": "epoch", "time": 1.1 + step, "step": step, "epoch": step // 2 - 1,
                          "values": {"loss": 1.0 / step}, "lr": 0.01 if step < 3 else 0.005})
    lines.append({"type": "end", "time": 9.0, "step": 4, "stopped": False})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rp = replay(path)
    qtbot.addWidget(rp.window)
    qtbot.waitUntil(lambda: rp.done and not rp.window.training.running, timeout=10000)
    win = rp.window
    assert "training finished at step 4" in win.pane_text("control")
    assert "patience" not in win.progress_label.text()
    lr_marks, best = win.plot.marks.spec(win.plot.history)
    assert [(s, round(v, 6)) for s, v in lr_marks] == [(3, 0.005)] and best is None  # its learning-rate change
    win.close()


# -- the refiner passes them on ------------------------------------------------------------------------
def test_the_refiner_passes_controls_and_patience_on_in_their_order():
    from kerasqt.refine import TrainingRefiner

    refiner = TrainingRefiner()
    refiner.refine([StartEvent(0.0, 3, 4, 8)])
    evs = [ControlEvent(2, 1.0, "lr", "learning rate 0.001 -> 0.0005 at step 2", value=5e-4),
           PatienceEvent(4, 0, 2.0, "val_loss", 0, 5, 0, 0.5),
           ControlEvent(5, 3.0, "save", "checkpoint not saved (x): no", ok=False)]
    update = refiner.refine(evs)
    assert update.steering == tuple(evs)
    assert update.progress.patience == (0, 5) and "· patience 0/5 ·" in update.progress.describe()
    assert refiner.refine([]) is None


def test_a_rate_that_changes_often_is_not_marked_and_only_the_newest_marks_are_labelled(qtbot):
    import matplotlib.pyplot as plt

    from kerasqt.marks import MarkArtists

    def marks(changes):
        history = RunHistory()
        history.apply(TrainingUpdate(lrs=tuple((10 * i, 0.1 * 0.9 ** i) for i in range(changes + 1))))
        history.apply(TrainingUpdate(lrs=((10 * changes + 5, 0.1 * 0.9 ** changes),)))  # (an epoch's end: no change)
        return RunMarks().spec(history)

    assert len(marks(RunMarks.MAX_LR_MARKS)[0]) == RunMarks.MAX_LR_MARKS
    assert marks(RunMarks.MAX_LR_MARKS + 1) == ((), None)  # a schedule: its curve says it
    scheduled = RunMarks()  # a schedule that changes the rate once an epoch: its curve says it too
    scheduled.apply(TrainingUpdate(start=StartEvent(0.0, 5, 10, 32, lr_fixed="the rate follows a schedule")))
    history = RunHistory()
    history.apply(TrainingUpdate(lrs=((0, 0.1), (10, 0.09), (20, 0.081))))
    assert scheduled.spec(history) == ((), None) and len(RunMarks().spec(history)[0]) == 2
    lr_marks, _ = marks(8)
    assert [step for step, _ in lr_marks] == [10, 20, 30, 40, 50, 60, 70, 80]
    fig = plt.figure()
    panel = type("P", (), {"ax": fig.add_subplot()})()
    artists = MarkArtists()
    assert artists.sync({"loss": panel}, (lr_marks, None)) == [panel]
    texts = [a.get_text().strip() for a in artists.artists(panel) if hasattr(a, "get_text")]
    assert len(artists.artists(panel)) == 8 + MAX_LR_LABELS and texts[0] == "lr 0.073"  # the newest six
    assert artists.sync({"loss": panel}, (lr_marks, None)) == []  # nothing changed: nothing to draw
    assert artists.sync({"loss": panel}, ((), None)) == [panel] and not artists.artists(panel)
    assert not panel.ax.lines and not panel.ax.texts  # taken off the axes
    plt.close(fig)


def test_a_new_run_on_the_last_runs_axes_shows_none_of_its_marks(qtbot, window):
    from kerasqt.events import BatchEvent, EpochEvent
    from kerasqt.refine import TrainingRefiner

    gold = (242, 183, 5)

    def run(best, allow_full):
        refiner = TrainingRefiner()
        window.show_training()
        window.plot.apply(refiner.refine([StartEvent(0.0, 2, 10, 8)]))
        qtbot.wait(50)  # (the event loop's turn: the window's own frames, a resize's pending draw)
        for epoch in range(2):  # the frames of a run going on, drawn here
            steps = range(10 * epoch + 1, 10 * epoch + 11)
            evs = [BatchEvent(s, epoch, s / 10, {"loss": 1 / s}) for s in steps]
            evs.append(EpochEvent(steps[-1], epoch, 2.0 + epoch, {"loss": 0.5 - 0.1 * epoch, "val_loss": 0.6}))
            if best:
                evs.append(PatienceEvent(steps[-1], epoch, 2.0 + epoch, "val_loss", epoch, 3, 0, 0.6))
            window.plot.apply(refiner.refine(evs))
            for _ in range(8):  # (new limits may wait for a full draw: frames go on meanwhile)
                if window.plot.draw_frame(staged=True, allow_full=allow_full) is None:
                    break

    run(True, True)  # EarlyStopping's best epoch: a ring on the loss axes
    assert _pixels(window, "loss", color=gold) > 20
    run(False, False)  # the same metrics: the last run's axes, kept; no full draw allowed (training)
    assert window.plot.marks.spec(window.plot.history) == ((), None)
    assert _pixels(window, "loss", color=gold) == 0
