"""The window's run list: settings and tags of real fits, renames and hidden runs, overlays, the default one."""

from __future__ import annotations

import os
import socket
import time

import keras
import numpy as np
import pytest
from qtpy.QtCore import Qt

from kerasqt import QtMonitor
from kerasqt.events import BatchEvent, EndEvent, EpochEvent, StartEvent
from kerasqt.overlay import StaticLine
from kerasqt.panels import RUN_COLORS
from kerasqt.refine import TrainingRefiner
from kerasqt.runlog import RunLogWriter, read_run
from kerasqt.sidecar import SIDECAR
from kerasqt.window import MonitorWindow

T0 = 1_700_000_000.0


def _data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype("float32")
    return x, (x[:, :1] > 0).astype("float32")


def _model(metrics=("accuracy",), lr=1e-3):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")], name="tiny")
    model.compile(keras.optimizers.Adam(lr), "binary_crossentropy", metrics=list(metrics))
    return model


def _fit(monitor, model=None, epochs=2):
    x, y = _data()
    (model or _model()).fit(x, y, validation_split=0.25, epochs=epochs, batch_size=16, verbose=0, callbacks=[monitor])
    monitor.window.catch_up()


def _log(folder, name, created, *, steps=50, epochs=5, keys=("loss", "accuracy")):
    """A finished run of ``epochs`` x ``steps`` batches."""
    head = {"kind": "training", "created": created, "title": "t", "pid": os.getpid(), "host": socket.gethostname(),
            "settings": {"optimizer": "SGD", "learning_rate": 0.1}, "tags": {"dropout": 0.3}}
    writer = RunLogWriter(folder / f"{name}.jsonl", head)
    events, step = [StartEvent(created, epochs, steps, 32)], 0
    for e in range(epochs):
        for _ in range(steps):
            step += 1
            events.append(BatchEvent(step, e, created + step, {k: 0.6 + 0.1 * np.sin(step) for k in keys}))
        events.append(EpochEvent(step, e, created + step, {**{k: 0.6 for k in keys}, "val_loss": 0.5 + 0.01 * e}))
    writer.write(events + [EndEvent(step, created + step + 1)])
    writer.close()
    return folder / f"{name}.jsonl"


@pytest.fixture
def win(qtbot):
    window = MonitorWindow(title="runs")
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()


def _listed(qtbot, runlist, n, ended=True):
    qtbot.waitUntil(lambda: len(runlist.runs) >= n and (not ended or all(r.ended for r in runlist.runs)), timeout=5000)
    return {run.stem: run for run in runlist.runs}


def test_settings_and_tags_go_to_the_header_and_the_list(qtbot, tmp_path):
    monitor = QtMonitor(log_dir=tmp_path, batch_size=16, tags={"dropout": 0.3, "note": "wide"})
    try:
        _fit(monitor, _model(lr=0.005))
        header = read_run(monitor.log_path).header
        assert header["settings"] == {"optimizer": "Adam", "learning_rate": pytest.approx(0.005), "batch_size": 16,
                                      "epochs": 2, "params": 81, "model": "tiny"}
        assert header["tags"] == {"dropout": 0.3, "note": "wide"}
        runlist = monitor.window.runlist
        assert runlist.folder == tmp_path.absolute() and runlist.dock.isVisible()
        run = _listed(qtbot, runlist, 1)[monitor.log_path.stem]
        assert run.status == "finished" and run.epochs == 2 and run.best[0] == "val_loss"
        item = runlist.table.items[run.path]
        assert item.text(1) == "finished" and item.text(3) == "2"
        assert item.child(0).text(0).strip() == "Adam 0.005 · batch 16 · dropout=0.3 · note=wide"
        tip = item.toolTip(0)
        for words in ("model tiny", "optimizer Adam, learning rate 0.005", "batch size 16", "81 parameters",
                      "dropout = 0.3", "note = wide"):
            assert words in tip
        assert not item.flags() & Qt.ItemIsUserCheckable  # the run on show is not overlaid on itself
    finally:
        monitor.close()


def test_bad_tags_are_refused_in_one_line():
    for bad in ({"a": [1]}, {"": 1}, "dropout=0.3"):
        with pytest.raises(ValueError) as info:
            QtMonitor(tags=bad)
        assert str(info.value).startswith("tags") and "\n" not in str(info.value)
    monitor = QtMonitor(tags={"a": 1})
    with pytest.raises(ValueError):
        monitor.tags = {"a": object()}
    assert monitor.tags == {"a": 1}
    monitor.tags = {"b": np.float64(0.5)}
    assert monitor.tags == {"b": 0.5}


def test_renames_and_hidden_runs_persist_across_a_new_window(qtbot, tmp_path):
    a, b, c = (_log(tmp_path, name, T0 + i) for i, name in enumerate("abc"))
    first = MonitorWindow()
    qtbot.addWidget(first)
    runlist = first.runlist
    runlist.set_folder(tmp_path)
    assert [run.stem for run in _listed(qtbot, runlist, 3).values()] == ["c", "b", "a"]  # newest first
    runlist.rename(a, "baseline")
    runlist.table.items[c].setText(0, "renamed in the table")  # as a double-click and typing do
    runlist.set_hidden(b, True)
    assert [(row.name, row.hidden) for row in runlist.rows()] == [("renamed in the table", False), ("baseline", False)]
    runlist.set_show_hidden(True)
    assert [row.run.stem for row in runlist.rows() if row.hidden] == ["b"]
    assert runlist.table.items[b].text(1) == "finished · hidden"
    first.close()
    assert all(p.exists() for p in (a, b, c)) and (tmp_path / SIDECAR).exists()  # the logs stay as they were
    assert read_run(a).header["tags"] == {"dropout": 0.3}

    second = MonitorWindow()
    qtbot.addWidget(second)
    second.runlist.set_folder(tmp_path)
    _listed(qtbot, second.runlist, 3)
    assert [(row.run.stem, row.name) for row in second.runlist.rows()] == [("c", "renamed in the table"),
                                                                          ("a", "baseline")]
    second.runlist.rename(c, "")  # its own name again
    second.runlist.set_hidden(b, False)
    assert [row.name for row in second.runlist.rows()] == ["c", "b", "baseline"]
    second.close()


def test_a_corrupt_sidecar_is_one_line_and_the_list_goes_on(qtbot, win, tmp_path):
    a = _log(tmp_path, "a", T0)
    (tmp_path / SIDECAR).write_text('{"format": "kerasqt-runs", "runs": [')
    win.runlist.set_folder(tmp_path)
    _listed(qtbot, win.runlist, 1)
    qtbot.waitUntil(lambda: SIDECAR in win.pane_text("control"), timeout=3000)
    said = [line for line in win.pane_text("control").splitlines() if SIDECAR in line]
    assert len(said) == 1 and "not read" in said[0]
    assert [row.name for row in win.runlist.rows()] == ["a"]
    win.runlist.rename(a, "kept")  # a good file is written over the bad one
    win.runlist.tick()
    assert [row.name for row in win.runlist.rows()] == ["kept"]
    assert len([line for line in win.pane_text("control").splitlines() if SIDECAR in line]) == 1


def _live(win, steps=600, upto=300):
    """A live run of ``steps`` planned steps in ``win``, ``upto`` of them given; returns (refiner, next step)."""
    win.show_training()
    refiner = TrainingRefiner(0.9)
    win._on_update(refiner.refine([StartEvent(time.time(), 6, steps // 6, 32)]))
    win.training_active = True
    batches = [BatchEvent(s, s * 6 // steps, time.time(), {"loss": 0.6 + 0.1 * np.sin(s), "accuracy": 0.6})
               for s in range(1, upto + 1)]
    win._on_update(refiner.refine(batches))
    return refiner


def test_a_checked_run_is_overlaid_in_the_legend_and_never_blitted(qtbot, win, tmp_path):
    earlier = _log(tmp_path, "earlier", T0, steps=400, epochs=6)  # 2,400 steps: four times the live run's
    refiner = _live(win)
    win.runlist.set_folder(tmp_path)
    win.runlist.overlays.attach(win.plot)
    _listed(qtbot, win.runlist, 1)
    win.runlist.set_checked(earlier, True)
    qtbot.waitUntil(lambda: earlier in win.runlist.overlays.runs, timeout=5000)
    win.plot.draw_frame(force_full=True)
    panel = win.plot.panels["loss"]
    lines = win.runlist.overlays.lines(panel)
    assert lines and all(isinstance(line, StaticLine) and not line.get_animated() for line in lines)
    assert not set(lines) & set(panel.lines.values())  # the blitted ones
    assert "earlier" in [t.get_text() for t in panel.ax.get_legend().get_texts()]
    assert len(lines[0].get_xdata()) <= min(2 * panel.ax.bbox.width + 4, 2400)  # decimated to the axes' view
    assert win.runlist.rows()[0].color == lines[0].get_color()

    drawn = []
    for line in lines:
        line.draw = lambda renderer, line=line, draw=line.draw: (drawn.append(line), draw(renderer))
    kinds = []
    for lo in range(301, 341, 10):  # new points inside the limits: blits
        win.plot.apply(refiner.refine([BatchEvent(s, 3, time.time(), {"loss": 0.6, "accuracy": 0.6})
                                       for s in range(lo, lo + 10)]))
        kinds.append(win.plot.draw_frame())
    assert kinds == ["blit"] * 4 and not drawn
    win.plot.draw_frame(force_full=True)
    assert set(drawn) == set(lines)  # on full draws only

    win.runlist.set_checked(earlier, False)
    assert not win.runlist.overlays.lines(panel) and not panel.still
    assert "earlier" not in [t.get_text() for t in panel.ax.get_legend().get_texts()]


def test_the_overlays_count_in_the_y_limits_and_the_batch_curves_can_go(qtbot, win, tmp_path):
    high = _log(tmp_path, "high", T0, keys=("loss",))
    _live(win)
    win.runlist.set_folder(tmp_path)
    win.runlist.overlays.attach(win.plot)
    win.runlist.set_checked(high, True)
    qtbot.waitUntil(lambda: high in win.runlist.overlays.runs, timeout=5000)
    win.plot.draw_frame(force_full=True)
    ax = win.plot.panels["loss"].ax
    assert len(win.runlist.overlays.lines(win.plot.panels["loss"])) == 3  # smoothed batches, epochs, validation
    assert ax.get_ylim()[1] >= 0.7
    win.runlist.table.batches_box.setChecked(False)
    assert len(win.runlist.overlays.lines(win.plot.panels["loss"])) == 2


def test_the_previous_run_is_overlaid_by_default_when_its_metrics_match(qtbot, tmp_path):
    monitor = QtMonitor(log_dir=tmp_path)
    try:
        _fit(monitor)
        first = monitor.log_path
        _fit(monitor)
        second = monitor.log_path
        runlist = monitor.window.runlist
        qtbot.waitUntil(lambda: first in runlist.overlays.runs, timeout=5000)
        assert runlist.checked == {first} and not runlist.default_pending
        legend = [t.get_text() for t in monitor.window.plot.panels["loss"].ax.get_legend().get_texts()]
        assert first.stem in legend
        assert {row.run.stem: row.checked for row in runlist.rows()} == {second.stem: False, first.stem: True}

        _fit(monitor, _model(metrics=()))  # other metrics: the second run is not drawn over it
        qtbot.waitUntil(lambda: not runlist.default_pending, timeout=5000)
        assert runlist.live == monitor.log_path and runlist.checked == set()  # the first's default went too
        assert not runlist.overlays.runs

        runlist.set_checked(first, True)  # the user's choice stays for the next run
        qtbot.waitUntil(lambda: first in runlist.overlays.runs, timeout=5000)
        _fit(monitor, _model(metrics=()))
        qtbot.waitUntil(lambda: not runlist.default_pending, timeout=5000)
        assert first in runlist.checked
    finally:
        monitor.close()


def test_a_bug_in_a_list_slot_is_logged_once_and_the_window_goes_on(qtbot, win, tmp_path, monkeypatch):
    a = _log(tmp_path, "a", T0)
    win.runlist.set_folder(tmp_path)
    _listed(qtbot, win.runlist, 1)

    def broken(*args):
        raise RuntimeError("run list bug")

    monkeypatch.setattr(win.runlist, "_check", broken)
    win.runlist.table.checked.emit(a, True)  # as a click does: PyQt5 would abort on an exception let out
    assert win.internal_errors == 1 and "run list: set_checked" in win.pane_text("receiver")
    monkeypatch.undo()
    win.runlist.set_checked(a, True)  # and the list goes on
    qtbot.waitUntil(lambda: a in win.runlist.overlays.runs, timeout=5000)


def test_a_replay_lists_its_folder_and_its_kept_runs_are_not_overlaid_twice(qtbot, win, tmp_path):
    from kerasqt.replay import replay

    a, b = _log(tmp_path, "a", T0), _log(tmp_path, "b", T0 + 100)
    other = _log(tmp_path, "other", T0 + 200)
    done = replay([a, b], window=win)
    qtbot.waitUntil(lambda: done.done, timeout=10000)
    runlist = win.runlist
    assert runlist.dock.isVisibleTo(win) and runlist.live == b
    _listed(qtbot, runlist, 3)
    rows = {row.run.stem: row for row in runlist.rows()}
    assert rows["b"].live and not rows["b"].kept
    kept = win.plot.overlays[0]  # a, kept on the axes by the replay
    assert rows["a"].kept and rows["a"].color == kept.color and not rows["other"].kept
    item = runlist.table.items[a]
    assert item.checkState(0) == Qt.Checked and not item.flags() & Qt.ItemIsUserCheckable

    runlist.set_checked(a, True)  # drawn already: not a second time
    runlist.set_checked(other, True)
    qtbot.waitUntil(lambda: other in runlist.overlays.runs, timeout=5000)
    assert set(runlist.overlays.runs) == {other} and runlist.checked == {other}
    # in a colour of its own: none that the replay's runs take, now or later
    assert runlist.overlays.runs[other].color not in RUN_COLORS

    runlist.rename(a, "baseline")  # a kept run renamed: its legend entries too
    win.draw_now()
    legend = [t.get_text() for t in win.plot.panels["loss"].ax.get_legend().get_texts()]
    assert "baseline: loss" in legend and "a: loss" not in legend
    assert {row.run.stem: row.name for row in runlist.rows()}["a"] == "baseline"


def test_names_given_before_a_replay_are_its_legends_and_renaming_the_live_run_renames_them(qtbot, win, tmp_path):
    from kerasqt.replay import replay
    from kerasqt.sidecar import RunNames

    a, b = _log(tmp_path, "a", T0), _log(tmp_path, "b", T0 + 100)
    names = RunNames(tmp_path)
    names.rename("a", "baseline")  # named in an earlier window
    names.rename("b", "wider")
    done = replay([a, b], window=win)
    qtbot.waitUntil(lambda: done.done, timeout=10000)
    _listed(qtbot, win.runlist, 2)

    def legend():
        win.draw_now()
        return [t.get_text() for t in win.plot.panels["loss"].ax.get_legend().get_texts()]

    assert {"baseline: loss", "wider: loss"} <= set(legend()), legend()
    assert not any(text.startswith(("a: ", "b: ")) for text in legend())
    win.runlist.rename(b, "widest")  # the live run renamed
    assert "widest: loss" in legend() and "wider: loss" not in legend()
    win.runlist.rename(b, "")  # its own name again
    assert "b: loss" in legend() and "baseline: loss" in legend()


def test_a_watched_folder_is_listed_with_the_runs_the_watcher_keeps(qtbot, win, tmp_path):
    from kerasqt.watch import watch

    first = _log(tmp_path, "first", T0)
    watcher = watch(tmp_path, window=win)
    try:
        qtbot.waitUntil(lambda: watcher.ended, timeout=10000)
        assert win.runlist.live == first
        second = _log(tmp_path, "second", T0 + 100)
        qtbot.waitUntil(lambda: watcher.ended == 2, timeout=10000)
        assert win.runlist.live == second
        _listed(qtbot, win.runlist, 2)
        rows = {row.run.stem: row for row in win.runlist.rows()}
        assert rows["first"].kept and rows["second"].live
    finally:
        watcher.stop()


def test_the_folder_is_named_whole_or_elided_in_the_middle(qtbot):
    from kerasqt.runtable import RunTable

    table = RunTable()
    qtbot.addWidget(table)
    table.show()
    path = "/home/someone/projects/a-rather-long-project-name/experiments/runs"
    table.show_runs([], path)
    label = table.folder_label
    label.resize(1000, 20)
    assert label.text() == path and label.toolTip() == path
    label.resize(120, 20)
    assert "\N{HORIZONTAL ELLIPSIS}" in label.text() and label.text().startswith("/h")
    assert label.text().endswith("runs") and label.fontMetrics().horizontalAdvance(label.text()) <= 120
