"""Each batch's own value, recovered from the running means Keras logs: checked against the true
per-batch values of real fits (TensorFlow), the legend, the switch back, the CSV and the run log."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasqt import QtMonitor

N, BATCH, EPOCHS = 100, 32, 2  # 4 batches an epoch: 32, 32, 32 and a short one of 4


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 8)).astype("float32")
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype("float32")
    weights = rng.uniform(0.0, 2.0, N).astype("float32")
    weights[40:48] = 0.0  # (some samples count for nothing)
    return x, y, weights


def _model(steps_per_execution=1):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(0.2), "binary_crossentropy",
                  metrics=["accuracy", keras.metrics.AUC(name="auc")], weighted_metrics=["accuracy", "mse"],
                  steps_per_execution=steps_per_execution)
    return model


def _truth(batch=BATCH):
    """Each batch's own values, from the same model trained on the same batches with train_on_batch
    (which resets the metrics before each batch): what fit's per-batch values must be."""
    x, y, w = _data()
    model = _model()
    out: dict[str, list] = {}
    for _ in range(EPOCHS):
        for s in range(0, N, batch):
            logs = model.train_on_batch(x[s:s + batch], y[s:s + batch], sample_weight=w[s:s + batch], return_dict=True)
            for key, v in logs.items():
                out.setdefault(key, []).append(v)
    return {k: np.array(v) for k, v in out.items()}


def _fit(qtbot, steps_per_execution=1, batch=BATCH, **kw):
    x, y, w = _data()
    monitor = QtMonitor(title="per batch", **kw)
    _model(steps_per_execution).fit(x, y, sample_weight=w, batch_size=batch, epochs=EPOCHS, shuffle=False,
                                    verbose=0, callbacks=[monitor])
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=10000)
    monitor.window.draw_now()
    return monitor


def _legend(plot, group):
    return [t.get_text() for t in plot.panels[group].ax.get_legend().get_texts()]


@pytest.fixture(scope="module")
def truth():
    return _truth()


def test_per_batch_values_equal_the_true_per_batch_loss_with_a_short_last_batch_and_sample_weights(
        qtbot, tmp_path, truth):
    monitor = _fit(qtbot, log_dir=tmp_path)
    plot = monitor.window.plot
    batches = plot.batches
    assert batches.steps.tolist() == list(range(1, 9))
    # the must-show: the loss of each batch alone, the short last ones (4 samples) included
    np.testing.assert_allclose(batches.per_batch("loss"), truth["loss"], rtol=1e-5)
    for key in ("accuracy", "weighted_accuracy", "mse"):  # weighted ones by their sums of weights
        np.testing.assert_allclose(batches.per_batch(key), truth[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # what Keras logged stays as it was: a running mean, equal to the batch's value only at an epoch's start
    running = batches.column("loss")
    assert running[0] == pytest.approx(truth["loss"][0], rel=1e-6)
    assert abs(running[3] - truth["loss"][3]) > 1e-3
    # AUC is no mean: its running value is all there is, and the legend says so
    assert batches.per_batch("auc") is None
    assert _legend(plot, "auc")[0] == "auc (running value: not a mean metric)"
    assert _legend(plot, "loss")[:2] == ["loss (per batch)", "loss (smoothed)"]
    np.testing.assert_array_equal(plot.panels["loss"].lines["b:loss"].get_ydata(), batches.per_batch("loss"))

    # the log keeps what Keras gave, with the counts: a replay shows the same per-batch values
    from kerasqt.replay import replay
    from kerasqt.runlog import read_run

    lines = [json.loads(line) for line in monitor.log_path.read_text().splitlines()[1:]]
    means = next(line for line in lines if line["type"] == "means")
    assert means["means"] == {"accuracy": 0, "loss": 0, "mse": 1, "weighted_accuracy": 1}
    assert means["weights"] == ["samples", "weights"] and means["running"] == ["auc"]
    counts = [line["counts"] for line in lines if line["type"] == "batch"]
    assert [c[0] for c in counts] == [32.0, 64.0, 96.0, 100.0] * 2  # samples so far in the epoch
    assert [line["values"]["loss"] for line in lines if line["type"] == "batch"] == running.tolist()
    assert read_run(monitor.log_path).describe().endswith("8 batches, 2 epochs, finished")
    monitor.close()
    rp = replay(monitor.log_path)
    qtbot.addWidget(rp.window)
    qtbot.waitUntil(lambda: rp.done and not rp.window.training.running, timeout=20000)
    np.testing.assert_array_equal(rp.window.plot.batches.per_batch("loss"), batches.per_batch("loss"))
    rp.window.close()


def test_steps_per_execution_gives_the_mean_of_the_batches_each_point_covers(qtbot):
    batch = 16  # 7 batches an epoch: 6 of 16 and one of 4; two a point, the last point one
    truth = _truth(batch)
    monitor = _fit(qtbot, steps_per_execution=2, batch=batch, log_dir=None)
    plot = monitor.window.plot
    sizes = np.array([16, 16, 16, 16, 16, 16, 4] * EPOCHS, float)
    pairs = [(0, 2), (2, 4), (4, 6), (6, 7)]
    expected = [np.average(truth["loss"][a + 7 * e:b + 7 * e], weights=sizes[a:b]) for e in range(EPOCHS)
                for a, b in pairs]
    assert plot.batches.steps.tolist() == [2, 4, 6, 7, 9, 11, 13, 14]
    np.testing.assert_allclose(plot.batches.per_batch("loss"), expected, rtol=1e-5)
    assert _legend(plot, "loss")[0] == "loss (2-batch mean)"
    monitor.close()


def test_the_switch_shows_the_running_means_and_back_and_the_csv_has_both(qtbot, tmp_path):
    monitor = _fit(qtbot, log_dir=None)
    win = monitor.window
    plot, batches = win.plot, win.plot.batches
    line, smooth = plot.panels["loss"].lines["b:loss"], plot.panels["loss"].lines["s:loss"]
    np.testing.assert_array_equal(smooth.get_ydata(), batches.per_batch("loss", smoothed=True))
    assert win.running_box.isVisible() and not win.running_box.isChecked()
    win.running_box.setChecked(True)
    win.draw_now()
    assert plot.batch_view == "running"
    np.testing.assert_array_equal(line.get_ydata(), batches.column("loss"))
    np.testing.assert_array_equal(smooth.get_ydata(), batches.smoothed("loss"))
    assert _legend(plot, "loss")[:2] == ["loss (running mean)", "loss (running mean, smoothed)"]
    win.running_box.setChecked(False)
    win.draw_now()
    np.testing.assert_array_equal(line.get_ydata(), batches.per_batch("loss"))
    assert _legend(plot, "loss")[0] == "loss (per batch)"

    path = monitor.export(tmp_path / "run.csv")
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    batch_rows = [r for r in rows if r["kind"] == "batch"]
    assert {"loss", "loss~", "loss per batch", "loss per batch~", "auc"} <= set(rows[0])
    assert "auc per batch" not in rows[0]
    assert [float(r["loss"]) for r in batch_rows] == batches.column("loss").tolist()
    assert [float(r["loss per batch"]) for r in batch_rows] == batches.per_batch("loss").tolist()
    monitor.close()


def test_an_old_log_without_counts_replays_as_running_means(qtbot, tmp_path):
    from kerasqt.replay import replay

    path = tmp_path / "old.jsonl"
    lines = [{"format": "kerasqt-run", "version": 1, "kind": "training", "created": 1.0e9, "title": "old",
              "smoothing": 0.5},
             {"type": "start", "time": 1.0e9, "epochs": 1, "steps": 3, "batch_size": None, "initial_epoch": 0,
              "run": "run 1"}]
    lines += [{"type": "batch", "time": 1.0e9 + s, "step": s, "epoch": 0, "values": {"loss": 1.0 / s}, "bad": [],
               "lr": None} for s in (1, 2, 3)]
    lines += [{"type": "epoch", "time": 1.0e9 + 4, "step": 3, "epoch": 0, "values": {"loss": 1 / 3}, "bad": []},
              {"type": "end", "time": 1.0e9 + 5, "step": 3, "stopped": False}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    rp = replay(path)
    qtbot.addWidget(rp.window)
    qtbot.waitUntil(lambda: rp.done and not rp.window.training.running, timeout=20000)
    plot = rp.window.plot
    rp.window.draw_now()
    assert plot.history.means is None and plot.batches.per_batch("loss") is None
    np.testing.assert_allclose(plot.panels["loss"].lines["b:loss"].get_ydata(), [1.0, 0.5, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(plot.batches.smoothed("loss"), [1.0, 0.75, 0.75 / 2 + 1 / 6], rtol=1e-6)
    assert _legend(plot, "loss")[:2] == ["loss (batch)", "loss (smoothed)"]  # as it always was
    rp.window.close()


def test_which_metrics_are_means_is_told_by_their_objects_not_their_names():
    from kerasqt.means import classify

    x, y, _ = _data()
    inp = keras.Input((8,))
    hidden = keras.layers.Dense(4)(inp)
    a = keras.layers.Dense(1, activation="sigmoid", name="a")(hidden)
    b = keras.layers.Dense(1, name="b")(hidden)
    model = keras.Model(inp, {"a": a, "b": b})
    model.compile("sgd", {"a": "binary_crossentropy", "b": "mse"},
                  metrics={"a": ["accuracy", keras.metrics.AUC(name="accuracy_like")],
                           "b": [keras.metrics.RootMeanSquaredError(name="mean_rmse"), "mae",
                                 keras.metrics.MeanMetricWrapper(lambda t, p: (t - p) ** 2, name="own")]})
    history = model.fit(x, {"a": y, "b": y}, batch_size=50, epochs=1, verbose=0)
    names = list(history.history)
    means, weights, running, variables, _ = classify(model, dict.fromkeys(names, 0.0))
    # the losses count samples (one read); a's own metrics count them too (no masks here);
    # b's Keras metric and the user's function have their own counts (a function may count one per batch)
    assert set(means) == {"loss", "a_loss", "b_loss", "a_accuracy", "b_mae", "b_own"}
    assert means["loss"] == means["a_loss"] == means["b_loss"] == means["a_accuracy"] == means["b_mae"] == 0
    assert means["b_own"] == 1 and weights == ("samples", "samples") and len(variables) == 2
    # a name says nothing: an AUC called accuracy_like, an RMSE called mean_rmse are no means
    assert set(running) == {"a_accuracy_like", "b_mean_rmse"}



class OwnTracker(keras.Sequential):
    """The Keras guide's custom train_step: its own Mean of the loss, logged under "loss"."""

    def __init__(self, *args, raw=False, **kw):
        super().__init__(*args, **kw)
        self.raw = raw
        self.tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.tracker]

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean((self(x, training=True) - y) ** 2)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        self.tracker.update_state(loss)  # once a batch: each batch weighs the same
        return {"loss": loss if self.raw else self.tracker.result()}


@pytest.mark.parametrize("raw", [False, True])
def test_a_custom_train_step_is_recovered_when_it_logs_its_mean_and_shown_as_logged_when_not(qtbot, raw):
    x, y, _ = _data()
    keras.utils.set_random_seed(2)
    model = OwnTracker([keras.Input((8,)), keras.layers.Dense(1)], raw=raw)
    model.compile(keras.optimizers.SGD(0.05))
    monitor = QtMonitor(log_dir=None)
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[monitor])
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=10000)
    monitor.window.draw_now()
    plot = monitor.window.plot
    if raw:  # each batch's loss itself, under the tracker's name: no mean of it, so as logged
        assert plot.batches.per_batch("loss") is None
        assert _legend(plot, "loss")[0] == "loss (running value)"
    else:  # the tracker counts one a batch: the short last batch weighs as much as the others
        running = plot.batches.column("loss").astype(float)
        np.testing.assert_allclose(plot.batches.per_batch("loss")[1:4], [2 * running[1] - running[0],
                                   3 * running[2] - 2 * running[1], 4 * running[3] - 3 * running[2]], rtol=1e-5)
        assert _legend(plot, "loss")[0] == "loss (per batch)"
    monitor.close()


JAX_SCRIPT = textwrap.dedent("""
    import json, time
    import numpy as np, keras
    from qtpy.QtWidgets import QApplication
    from kerasqt import QtMonitor

    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 8)).astype("float32"); y = (x[:, :1] > 0).astype("float32")
    w = rng.uniform(0.0, 2.0, 100).astype("float32")

    def model():
        keras.utils.set_random_seed(1)
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile(keras.optimizers.SGD(0.2), "binary_crossentropy", metrics=["accuracy"])
        return m

    mon = QtMonitor(log_dir=None)
    model().fit(x, y, sample_weight=w, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[mon])
    win = mon.window
    end = time.monotonic() + 10
    while win.training.running and time.monotonic() < end:
        QApplication.processEvents(); time.sleep(0.01)
    win.draw_now()
    m = model()
    truth = [m.train_on_batch(x[s:s + 32], y[s:s + 32], sample_weight=w[s:s + 32], return_dict=True)["loss"]
             for _ in range(2) for s in range(0, 100, 32)]
    batches = win.plot.batches
    print(json.dumps({"per": batches.per_batch("loss").tolist(), "running": batches.column("loss").tolist(),
                      "truth": [float(t) for t in truth], "weights": list(win.plot.history.means.weights),
                      "legend": [t.get_text() for t in win.plot.panels["loss"].ax.get_legend().get_texts()]}))
    mon.close()
""")


def test_on_jax_each_batch_weighs_the_same_exact_for_full_batches(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    r = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, KERAS_BACKEND="jax"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    per, running, truth = (np.array(out[k]) for k in ("per", "running", "truth"))
    assert out["weights"] == ["batches"] and out["legend"][0] == "loss (per batch, equal weights)"
    # Keras runs the batch hooks on a thread pool there: one that ran late, past a drain of the
    # queue, leaves a gap at it and the batch after it (rarely)
    shown = np.isfinite(per)
    assert shown.sum() >= 6, out
    full = np.array([0, 1, 2, 4, 5, 6])  # no count is read on JAX: full batches (the loss counts samples) are exact,
    full = full[shown[full]]
    np.testing.assert_allclose(per[full], truth[full], rtol=1e-5, err_msg=str(out))
    for short in (3, 7):  # an epoch's short last batch is pulled toward the running mean before it
        if shown[short]:
            assert min(truth[short], running[short - 1]) < per[short] < max(truth[short], running[short - 1]), out


def test_odd_logs_never_break_the_training_thread():
    from kerasqt.events import MeansEvent
    from kerasqt.means import BatchWeights

    x, y, w = _data()
    model = _model()
    model.fit(x, y, sample_weight=w, batch_size=BATCH, epochs=1, verbose=0)
    logs = {k: float(v) for k, v in model.get_metrics_result().items()}
    told: list = []
    weights = BatchWeights()
    weights.first(model, {**logs, "loss": "text"}, 1, 0, told.append)  # a value that is no number: no mean
    assert not weights.done and "loss" not in told[0].means and "accuracy" in told[0].means
    assert isinstance(weights.read(0), tuple)
    weights.first(model, object(), 2, 1, told.append)  # no mapping: nothing can be checked, nothing kept
    assert weights.done and told[1] == MeansEvent(2, told[1].time, {}, told[0].weights, told[0].running)
    broken = BatchWeights()
    broken.first(object(), None, 1, 0, told.append)  # no model at all: the run is shown as logged
    assert broken.done and broken.read(0) is None and len(told) == 2
