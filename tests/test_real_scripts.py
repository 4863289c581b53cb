"""Training scripts written the way Keras users write them, each watched by a QtMonitor.

Every test runs a small ``fit`` in the main thread (as a script does), lets the window draw the
run's last frame, and checks what the window shows: the axes and their limits, scales and
legends, the progress line and the message panes.
"""

from __future__ import annotations

import math
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasqt import QtMonitor
from kerasqt.plotting import LR_KEY


@pytest.fixture
def monitor(qtbot):
    mon = QtMonitor(title="real scripts")
    yield mon
    mon.close()


def _last_frame(qtbot, monitor, tmp_path):
    """After ``fit`` returned: wait for the run's end to reach the window and for the window's own
    last frame (its frame timer, as in a script that goes on after ``fit``), then save a
    screenshot (which draws anything still pending first): both show the same axes."""
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=5000)
    win = monitor.window
    qtbot.waitUntil(lambda: not win.plot.finishing, timeout=5000)
    drawn = {group: panel.ax.get_xlim() for group, panel in win.plot.panels.items()}
    win.save_screenshot(str(tmp_path / "window.png"))
    assert (tmp_path / "window.png").stat().st_size > 0
    assert {group: panel.ax.get_xlim() for group, panel in win.plot.panels.items()} == drawn
    return win


def _screenshot_right_away(monitor, tmp_path):
    """What a script does right after ``fit``: save the window at once (``save_screenshot`` delivers
    the run's end and draws its last frame first; README, "Use")."""
    win = monitor.window
    win.save_screenshot(str(tmp_path / "window.png"))
    assert (tmp_path / "window.png").stat().st_size > 0
    assert not win.training.running  # the run's end reached the window before the grab
    return win


def _legend(panel) -> list[str]:
    legend = panel.ax.get_legend()
    assert legend is not None, f"axes {panel.group!r} has no legend"
    return [t.get_text() for t in legend.get_texts()]


def _all_labels(win) -> list[str]:
    return [label for panel in win.plot.panels.values() for label in _legend(panel)]


def _steps_taken(win) -> int:
    return int(win.plot.batches.steps[-1])


def _assert_x_fits_steps_taken(win, unplanned: int | None = None) -> None:
    """Every axes ends within 10% of the steps the run took (not at the planned ``unplanned``)."""
    taken = _steps_taken(win)
    for group, panel in win.plot.panels.items():
        x0, x1 = panel.ax.get_xlim()
        assert x0 == 0, (group, x0)
        assert taken <= x1 <= 1.1 * taken, (group, (x0, x1), taken)
        if unplanned is not None:
            assert x1 < 0.5 * unplanned, (group, x1, unplanned)


def _binary_data(n=320, seed=0, random_labels=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype("float32")
    if random_labels:
        y = rng.integers(0, 2, (n, 1)).astype("float32")
    else:
        y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype("float32")
    return x, y


def _classifier(lr=1e-3, optimizer=None):
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=optimizer or keras.optimizers.Adam(lr), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


# -- 1. Keras' own progress bar ------------------------------------------------------------------------
def test_verbose_progress_bar_reaches_the_worker_pane_as_clean_lines(qtbot, monitor, tmp_path):
    keras.utils.set_random_seed(1)
    x, y = _binary_data(256)
    epochs = 3
    hist = _classifier().fit(x, y, validation_split=0.2, epochs=epochs, batch_size=32, verbose=1,
                             callbacks=[monitor])
    win = _last_frame(qtbot, monitor, tmp_path)
    steps = math.ceil(int(256 * 0.8) / 32)  # 204 training samples: 7 batches an epoch

    worker = win.pane_text("worker")
    for e in range(1, epochs + 1):
        assert f"Epoch {e}/{epochs}" in worker
    # One finished progress line per epoch: "7/7 ━━━━ 0s 3ms/step - accuracy: ... - loss: ... - val_loss: ...".
    done = [line for line in worker.splitlines() if re.match(rf"{steps}/{steps} .*\bloss: \d", line)]
    assert len(done) == epochs, worker
    assert all("val_loss: " in line for line in done), done
    last_val = float(re.search(r"val_loss: ([0-9.]+)", done[-1]).group(1))
    assert last_val == pytest.approx(hist.history["val_loss"][-1], abs=1e-3)
    for name in ("control", "worker", "receiver"):
        text = win.pane_text(name)
        for char in ("\x1b", "\r", "\b"):
            assert char not in text, (name, char, text)
    # The run itself is plotted too.
    assert set(win.plot.panels) == {"loss", "accuracy"}
    assert "val_loss" in _legend(win.plot.panels["loss"])
    _assert_x_fits_steps_taken(win)
    assert _steps_taken(win) == epochs * steps


# -- 2. EarlyStopping + ReduceLROnPlateau ----------------------------------------------------------------
def test_early_stopping_with_reduce_lr_fits_the_steps_taken_and_shows_lr_as_steps(qtbot, monitor, tmp_path):
    keras.utils.set_random_seed(2)
    x, y = _binary_data(320, random_labels=True)  # nothing to learn: val_loss stops improving at once
    model = _classifier(lr=1e-2)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, min_delta=0.05, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_delta=0.05,
                                          min_lr=1e-5, verbose=0),
        monitor,
    ]
    epochs, batch_size = 200, 32
    hist = model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=batch_size, verbose=0,
                     callbacks=callbacks)
    win = _screenshot_right_away(monitor, tmp_path)
    ran = len(hist.history["loss"])
    assert ran < 20  # it did stop early
    steps = math.ceil(int(320 * 0.8) / batch_size)
    assert _steps_taken(win) == ran * steps
    assert "training stopped early" in win.status.text()

    # The x axis spans the steps taken, not the 200 planned epochs.
    _assert_x_fits_steps_taken(win, unplanned=epochs * steps)

    # ReduceLROnPlateau's "learning_rate" in the epoch logs is no metric: no axes of its own with
    # batch/smoothed lines, but the "learning rate" axes (log scale, a step line).
    lrs = hist.history["learning_rate"]
    assert lrs[-1] < lrs[0]  # it was reduced
    assert "learning_rate" not in win.plot.panels
    assert "learning_rate" not in win.plot.shown()
    assert not any("learning_rate" in label for label in _all_labels(win))
    assert set(win.plot.panels) == {"loss", "accuracy", LR_KEY}
    panel = win.plot.panels[LR_KEY]
    assert panel.ax.get_title() == LR_KEY
    assert panel.ax.get_yscale() == "log"
    (line,) = panel.lines.values()
    assert line.get_drawstyle() == "steps-post"
    x_lr, y_lr = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    assert y_lr[0] == pytest.approx(1e-2)
    assert np.all(np.diff(x_lr) >= 0) and np.all(np.diff(y_lr) <= 0)
    # The step line reads, in the middle of each epoch, the rate that epoch ran with.
    for k, lr in enumerate(lrs):
        at = k * steps + steps / 2
        assert y_lr[np.searchsorted(x_lr, at, side="right") - 1] == pytest.approx(lr, rel=1e-5), (k, at, lr)
    lo, hi = panel.ax.get_ylim()
    assert lo < y_lr.min() and y_lr.max() < hi
    first_cut = next(k for k, v in enumerate(lrs) if v < lrs[0])  # the first epoch run with a lower rate
    assert f"learning rate 0.01 -> 0.005 in epoch {first_cut + 1}" in win.pane_text("receiver")


# -- 3. A learning-rate schedule ---------------------------------------------------------------------
def test_a_learning_rate_schedule_is_shown_decreasing_on_a_log_axes(qtbot, monitor, tmp_path):
    keras.utils.set_random_seed(3)
    x, y = _binary_data(256)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=4, decay_rate=0.5)
    model = _classifier(optimizer=keras.optimizers.SGD(learning_rate=schedule))
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[monitor])
    win = _last_frame(qtbot, monitor, tmp_path)

    assert LR_KEY in win.plot.panels
    panel = win.plot.panels[LR_KEY]
    assert panel.ax.get_yscale() == "log"
    y_lr = np.asarray(panel.lines["l:" + LR_KEY].get_ydata(), float)
    assert len(y_lr) >= 3
    assert np.all(np.diff(y_lr) <= 0) and y_lr[-1] < 0.1 * y_lr[0]
    final = float(schedule(model.optimizer.iterations))
    assert y_lr[-1] == pytest.approx(final, rel=1e-3)
    label = win.progress_label.text()
    m = re.search(r"· lr ([0-9.e+-]+) ·", label)
    assert m, label
    assert float(m.group(1)) == pytest.approx(final, rel=0.01)
    assert "learning rate" in _legend(panel)


# -- 4. validation_data ---------------------------------------------------------------------------------
def test_validation_data_gives_val_lines_in_the_metric_axes(qtbot, monitor, tmp_path):
    keras.utils.set_random_seed(4)
    x, y = _binary_data(256)
    xv, yv = _binary_data(64, seed=9)
    epochs = 3
    hist = _classifier().fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32, verbose=0,
                             callbacks=[monitor])
    win = _last_frame(qtbot, monitor, tmp_path)

    assert set(win.plot.panels) == {"loss", "accuracy"}
    loss_labels = _legend(win.plot.panels["loss"])
    assert {"loss (per batch)", "loss (smoothed)", "loss (epoch)", "val_loss"} <= set(loss_labels)
    assert "val_accuracy" in _legend(win.plot.panels["accuracy"])
    val = win.plot.panels["loss"].lines["e:val_loss"]
    np.testing.assert_allclose(val.get_ydata(), hist.history["val_loss"], rtol=1e-5)
    np.testing.assert_array_equal(val.get_xdata(), [8, 16, 24])
    # The y limits hold both curves.
    lo, hi = win.plot.panels["loss"].ax.get_ylim()
    assert lo <= min(hist.history["val_loss"]) and max(hist.history["val_loss"]) <= hi
    _assert_x_fits_steps_taken(win)


# -- 5. A tf.data pipeline of unknown length ---------------------------------------------------------------
def test_a_dataset_of_unknown_length_ends_with_x_fitted_to_the_steps_taken(qtbot, monitor, tmp_path):
    keras.utils.set_random_seed(5)
    x, y = _binary_data(320)
    keep = x[:, 2] > -0.5
    ds = (tf.data.Dataset.from_tensor_slices((x, y))
          .filter(lambda xi, yi: xi[2] > -0.5)
          .batch(32))
    assert ds.cardinality().numpy() == tf.data.UNKNOWN_CARDINALITY
    per_epoch = math.ceil(int(keep.sum()) / 32)
    epochs = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras: the dataset ran out of data (how its epoch ends)
        _classifier().fit(ds, epochs=epochs, verbose=0, callbacks=[monitor])
    win = _last_frame(qtbot, monitor, tmp_path)

    assert _steps_taken(win) == epochs * per_epoch
    assert "training started (3 epochs x ? steps)" in win.pane_text("control")
    assert "training finished" in win.status.text()
    # While it ran the x axis grew by doubling past the steps taken; at the end it fits them.
    _assert_x_fits_steps_taken(win)
    np.testing.assert_array_equal(win.plot.panels["loss"].lines["e:loss"].get_xdata(),
                                  [per_epoch, 2 * per_epoch, 3 * per_epoch])


# -- 6. Two outputs ----------------------------------------------------------------------------------------
def test_a_functional_model_with_two_outputs_gets_an_axes_per_loss(qtbot, monitor, tmp_path):
    keras.utils.set_random_seed(6)
    x, y = _binary_data(256)
    y_reg = (x[:, :1] * 2.0 - x[:, 3:4]).astype("float32")
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    cls = keras.layers.Dense(1, activation="sigmoid", name="cls")(hidden)
    reg = keras.layers.Dense(1, name="reg")(hidden)
    model = keras.Model(inputs, {"cls": cls, "reg": reg})
    model.compile(optimizer="adam", loss={"cls": "binary_crossentropy", "reg": "mse"},
                  metrics={"cls": ["accuracy"]})
    hist = model.fit(x, {"cls": y, "reg": y_reg}, validation_split=0.25, epochs=2, batch_size=32, verbose=0,
                     callbacks=[monitor])
    win = _last_frame(qtbot, monitor, tmp_path)

    logged = set(hist.history)
    assert {"loss", "cls_loss", "reg_loss", "val_loss", "val_cls_loss", "val_reg_loss"} <= logged, logged
    groups = {key for key in logged if not key.startswith("val_")}
    assert set(win.plot.panels) == groups
    for group in groups:
        labels = _legend(win.plot.panels[group])
        assert f"{group} (smoothed)" in labels and f"{group} (epoch)" in labels, (group, labels)
        if "val_" + group in logged:
            assert "val_" + group in labels, (group, labels)
    reg_panel = win.plot.panels["reg_loss"]
    np.testing.assert_allclose(reg_panel.lines["e:val_reg_loss"].get_ydata(), hist.history["val_reg_loss"],
                               rtol=1e-5)
    _assert_x_fits_steps_taken(win)


# -- 7. class_weight ---------------------------------------------------------------------------------------
def test_class_weight_run_shows_epoch_accuracy(qtbot, monitor, tmp_path):
    keras.utils.set_random_seed(7)
    x, y = _binary_data(256)
    epochs = 3
    hist = _classifier().fit(x, y, class_weight={0: 1.0, 1: 3.0}, epochs=epochs, batch_size=32, verbose=0,
                             callbacks=[monitor])
    win = _last_frame(qtbot, monitor, tmp_path)

    assert "accuracy" in win.plot.panels
    dots = win.plot.panels["accuracy"].lines["e:accuracy"]
    np.testing.assert_array_equal(dots.get_xdata(), [8, 16, 24])
    np.testing.assert_allclose(dots.get_ydata(), hist.history["accuracy"], rtol=1e-5)
    assert "accuracy (epoch)" in _legend(win.plot.panels["accuracy"])
    lo, hi = win.plot.panels["accuracy"].ax.get_ylim()
    assert lo <= min(hist.history["accuracy"]) and max(hist.history["accuracy"]) <= hi <= 1.05
    assert win.progress_label.text().startswith("epoch 3/3 · step 8/8 ·")
    assert win.progress.value() == 1000
