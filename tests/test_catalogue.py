"""The run list's pure parts: the folder's catalogue, run settings and tags, the sidecar (no window, no Keras)."""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from kerasqt.catalogue import (
    RunCatalogue,
    RunLoader,
    best_key,
    higher_is_better,
    load_run,
    metrics_match,
    with_history,
)
from kerasqt.events import BatchEvent, EndEvent, EpochEvent, ErrorEvent, StartEvent
from kerasqt.history import RunHistory
from kerasqt.runlog import RunLogWriter
from kerasqt.settings import check_tags, describe_settings, header_settings, run_settings
from kerasqt.sidecar import SIDECAR, RunNames

T0 = 1_700_000_000.0


def _log(folder, name, *, end=None, epochs=3, steps=4, header=None, vals=None, planned=None):
    """A run log of ``epochs`` epochs of ``steps`` batches; ``end``: None (no end), an EndEvent or an ErrorEvent."""
    head = {"kind": "training", "created": T0, "title": "t", "pid": os.getpid(), "host": socket.gethostname()}
    head.update(header or {})
    writer = RunLogWriter(folder / f"{name}.jsonl", head)
    events = [StartEvent(T0, planned or epochs, steps, 32, run="run 1")]
    step = 0
    for e in range(epochs):
        for _ in range(steps):
            step += 1
            events.append(BatchEvent(step, e, T0 + step, {"loss": 1.0 / step, "accuracy": step / 100}, (), 0.01))
        values = {"loss": 1.0 / step, "accuracy": step / 100}
        values.update((vals or (lambda e: {"val_loss": [0.9, 0.5, 0.7, 0.6][e % 4], "val_accuracy": 0.5 + e / 10}))(e))
        events.append(EpochEvent(step, e, T0 + step, values))
    if end is not None:
        events.append(end)
    writer.write(events)
    writer.close()
    return folder / f"{name}.jsonl"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _by_stem(runs):
    return {run.stem: run for run in runs}


def test_statuses_finished_stopped_failed_running_and_cut_short(tmp_path):
    _log(tmp_path, "a-finished", end=EndEvent(12, T0 + 20, stopped=False))
    _log(tmp_path, "b-stopped", end=EndEvent(8, T0 + 20, stopped=True), epochs=2, planned=3)
    _log(tmp_path, "c-failed", end=ErrorEvent(T0 + 20, "fit ended without finishing (it raised an exception)"))
    _log(tmp_path, "d-running")  # no end, written by this (live) process
    _log(tmp_path, "e-dead", header={"pid": _dead_pid()})  # no end, its writer gone
    other = _log(tmp_path, "f-elsewhere", header={"host": "another-host"})  # cannot be asked: by its age
    old = _log(tmp_path, "g-elsewhere-old", header={"host": "another-host"})
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    runs = _by_stem(RunCatalogue(tmp_path).refresh())
    assert {stem: run.status for stem, run in runs.items()} == {
        "a-finished": "finished", "b-stopped": "stopped", "c-failed": "failed", "d-running": "running",
        "e-dead": "cut short", "f-elsewhere": "running", "g-elsewhere-old": "cut short"}
    assert runs["c-failed"].message.startswith("fit ended without finishing")
    assert (runs["b-stopped"].epochs, runs["b-stopped"].planned) == (2, 3)
    assert runs["a-finished"].ended and not runs["d-running"].ended
    assert other.exists()


def test_best_value_of_val_loss_else_the_first_validation_metric_else_loss(tmp_path):
    _log(tmp_path, "loss", end=EndEvent(12, T0))
    _log(tmp_path, "acc", end=EndEvent(12, T0), vals=lambda e: {"val_accuracy": [0.5, 0.8, 0.7][e]})
    _log(tmp_path, "none", end=EndEvent(12, T0), vals=lambda e: {})
    _log(tmp_path, "nan", end=EndEvent(12, T0), vals=lambda e: {"val_loss": [float("nan"), 0.4, 0.3][e]})
    runs = _by_stem(RunCatalogue(tmp_path).refresh())
    assert runs["loss"].best == ("val_loss", 0.5, 1)  # the smallest, at the epoch it came (from 0)
    assert runs["acc"].best == ("val_accuracy", pytest.approx(0.8), 1)  # the largest
    assert runs["none"].best == ("loss", pytest.approx(1 / 12), 2)
    assert runs["nan"].best == ("val_loss", pytest.approx(0.3), 2)
    assert best_key(["loss", "accuracy", "val_accuracy", "val_loss"]) == "val_loss"
    assert best_key(["accuracy"]) is None
    assert higher_is_better("val_accuracy") and higher_is_better("val_auc") and not higher_is_better("val_loss")
    assert not higher_is_better("val_mae") and not higher_is_better("val_accuracy_loss")


def test_a_refresh_reads_only_what_changed(tmp_path):
    done = _log(tmp_path, "done", end=EndEvent(12, T0))
    head = {"kind": "training", "created": T0 + 1, "pid": os.getpid(), "host": socket.gethostname()}
    writer = RunLogWriter(tmp_path / "growing.jsonl", head)
    writer.write([StartEvent(T0, 5, 10, None)] + [BatchEvent(s, 0, T0 + s, {"loss": 1.0}) for s in range(1, 11)]
                 + [EpochEvent(10, 0, T0 + 10, {"loss": 1.0, "val_loss": 0.9})])
    cat = RunCatalogue(tmp_path)
    runs = _by_stem(cat.refresh())
    assert runs["growing"].status == "running" and runs["growing"].epochs == 1
    assert cat.reads == 2 and cat.read_bytes == done.stat().st_size + (tmp_path / "growing.jsonl").stat().st_size
    cat.refresh()
    assert cat.reads == 2  # nothing changed: nothing read
    size = (tmp_path / "growing.jsonl").stat().st_size
    writer.write([BatchEvent(s, 1, T0 + s, {"loss": 0.5}) for s in range(11, 21)]
                 + [EpochEvent(20, 1, T0 + 20, {"loss": 0.5, "val_loss": 0.4}), EndEvent(20, T0 + 21)])
    runs = _by_stem(cat.refresh())
    grown = (tmp_path / "growing.jsonl").stat().st_size
    assert cat.reads == 3 and cat.read_bytes == done.stat().st_size + grown  # only the new lines
    assert grown > size
    assert (runs["growing"].status, runs["growing"].epochs, runs["growing"].best) == ("finished", 2,
                                                                                      ("val_loss", 0.4, 1))
    stats = cat.stats
    cat.refresh()
    assert cat.stats == stats  # both ended: not even looked at while the folder stays as it was
    (tmp_path / "new.tmp").write_text((tmp_path / "done.jsonl").read_text())
    os.replace(tmp_path / "new.tmp", tmp_path / "growing.jsonl")  # replaced: read anew
    assert _by_stem(cat.refresh())["growing"].epochs == 3
    (tmp_path / "done.jsonl").unlink()
    assert set(_by_stem(cat.refresh())) == {"growing"}


def test_files_that_are_no_training_runs_are_left_out(tmp_path):
    _log(tmp_path, "good", end=EndEvent(12, T0))
    (tmp_path / "junk.jsonl").write_text("not json\n")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "sine.jsonl").write_text(json.dumps({"format": "kerasqt-run", "version": 1, "kind": "sine"}) + "\n")
    (tmp_path / "newer.jsonl").write_text(json.dumps({"format": "kerasqt-run", "version": 99, "kind": "training"})
                                          + "\n")
    (tmp_path / SIDECAR).write_text("{}")
    assert [run.stem for run in RunCatalogue(tmp_path).refresh()] == ["good"]
    assert RunCatalogue(tmp_path / "missing").refresh() == []


def test_runs_are_listed_newest_first_with_their_settings_and_tags(tmp_path):
    _log(tmp_path, "old", end=EndEvent(12, T0), header={"created": T0, "settings": {"optimizer": "Adam"}})
    _log(tmp_path, "new", end=EndEvent(12, T0), header={"created": T0 + 60, "tags": {"dropout": 0.3},
                                                        "settings": {"learning_rate": 0.001, "bad": [1]}})
    runs = RunCatalogue(tmp_path).refresh()
    assert [run.stem for run in runs] == ["new", "old"]
    assert runs[0].tags == {"dropout": 0.3} and runs[0].settings == {"learning_rate": 0.001}
    assert runs[1].settings == {"optimizer": "Adam"} and runs[1].tags == {}


class _Optimizer:
    def __init__(self, rate):
        self.rate = rate

    def get_config(self):
        return {"name": "adam", "learning_rate": self.rate}


class Adam(_Optimizer):
    pass


class _Model:
    name = "spirals"

    def __init__(self, optimizer, built=True):
        self.optimizer, self.built = optimizer, built

    def count_params(self):
        if not self.built:
            raise ValueError("not built")
        return 4547


def test_run_settings_read_what_there_is_and_never_raise():
    got = run_settings(_Model(Adam(0.001)), {"epochs": 12, "steps": 75}, 32, {"dropout": 0.3})
    assert got == {"settings": {"optimizer": "Adam", "learning_rate": 0.001, "batch_size": 32, "epochs": 12,
                                "params": 4547, "model": "spirals"}, "tags": {"dropout": 0.3}}
    schedule = {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay", "config": {}}
    got = run_settings(_Model(Adam(schedule), built=False), None, None, None)
    assert got == {"settings": {"optimizer": "Adam", "learning_rate": "ExponentialDecay", "model": "spirals"}}
    assert run_settings(object(), None, None, {"bad": object()}) == {"settings": {}}
    json.dumps(got)
    lines = describe_settings({"optimizer": "Adam", "learning_rate": 0.001, "batch_size": 32, "params": 4547},
                              {"dropout": 0.3, "note": "wide"})
    assert lines == ["optimizer Adam, learning rate 0.001", "batch size 32", "4,547 parameters", "dropout = 0.3",
                     "note = wide"]


@pytest.mark.parametrize("tags, words", [
    ([("a", 1)], "must be a dict"),
    ({"": 1}, "non-empty string"),
    ({3: 1}, "non-empty string"),
    ({"a": [1, 2]}, "the value of 'a'"),
    ({"a": {"b": 1}}, "the value of 'a'"),
    ({"a": float("nan")}, "finite"),
    ({"a": "x" * 300}, "longer than"),
    ({f"k{i}": i for i in range(100)}, "at most 64"),
])
def test_bad_tags_are_refused_in_one_line(tags, words):
    with pytest.raises(ValueError) as info:
        check_tags(tags)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_good_tags_become_plain_json_scalars():
    tags = check_tags({"dropout": np.float32(0.5), "layers": np.int64(3), "bn": True, "note": None, "opt": "adam"})
    assert tags == {"dropout": 0.5, "layers": 3, "bn": True, "note": None, "opt": "adam"}
    assert [type(v) for v in tags.values()] == [float, int, bool, type(None), str]
    assert check_tags(None) == {}


def test_header_settings_trust_nothing():
    assert header_settings({}) == ({}, {})  # an old log
    header = {"settings": {"optimizer": "Adam", "params": 10, "x": {"nested": 1}, "y": float("inf")},
              "tags": ["not", "a", "dict"]}
    assert header_settings(header) == ({"optimizer": "Adam", "params": 10}, {})


def test_renames_and_hidden_runs_persist_in_the_sidecar(tmp_path):
    names = RunNames(tmp_path)
    names.load()
    names.rename("20250101-120000", "  lr   1e-3 ")
    names.set_hidden("20250101-130000", True)
    again = RunNames(tmp_path)
    assert again.load()
    assert again.name("20250101-120000") == "lr 1e-3" and again.hidden("20250101-130000")
    assert again.name("20250101-130000") is None and not again.hidden("20250101-120000")
    again.rename("20250101-120000", "")
    again.set_hidden("20250101-130000", False)
    assert json.loads((tmp_path / SIDECAR).read_text())["runs"] == {}
    assert not again.load()  # (its own write: nothing new to read)
    assert names.load() and names.name("20250101-120000") is None  # another reader sees the change


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"format": "other"}', b"\xff\xfe", b""])
def test_a_corrupt_sidecar_is_one_line_and_not_fatal(tmp_path, content):
    (tmp_path / SIDECAR).write_bytes(content)
    names = RunNames(tmp_path)
    assert names.load()
    assert names.problem and "\n" not in names.problem and SIDECAR in names.problem
    assert names.name("x") is None and not names.hidden("x")
    names.rename("x", "named")  # a good file is written over it
    assert RunNames(tmp_path).load() and names.problem is None
    fresh = RunNames(tmp_path)
    fresh.load()
    assert fresh.name("x") == "named"


def test_metrics_match_on_training_metrics_only():
    assert metrics_match(["loss", "accuracy", "val_loss"], ["accuracy", "loss"])
    assert metrics_match(["loss", "learning_rate"], ["loss", "val_loss", "test_loss"])
    assert not metrics_match(["loss", "accuracy"], ["loss"])
    assert not metrics_match([], [])


def test_a_run_loaded_whole_has_the_tables_the_window_had(tmp_path):
    path = _log(tmp_path, "run", end=EndEvent(12, T0))
    loaded = load_run(path)
    h = loaded.history
    assert len(h.batches) == 12 and len(h.epochs) == 3 and h.planned_steps == 12
    assert loaded.metrics == {"loss", "accuracy"}
    assert np.isclose(h.batches.smoothed("loss")[0], 1.0)  # the moving average, as the window made it
    run = RunCatalogue(tmp_path).refresh()[0]
    assert with_history(run, h) is run  # no more epochs than the log gave
    empty = RunHistory()
    assert with_history(run, empty) is run


def test_a_refresh_on_a_budget_lists_the_newest_runs_first_and_the_rest_later(tmp_path):
    paths = [_log(tmp_path, f"r{i}", end=EndEvent(12, T0), header={"created": T0 + i}) for i in range(4)]
    for i, path in enumerate(paths):
        os.utime(path, (T0 + i, T0 + i))
    size = paths[0].stat().st_size
    cat = RunCatalogue(tmp_path)
    assert [run.stem for run in cat.refresh(budget=size + 1)] == ["r3", "r2"] and cat.pending
    assert [run.stem for run in cat.refresh(budget=size + 1)] == ["r3", "r2", "r1", "r0"] and not cat.pending
    assert cat.read_bytes == 4 * size
    (tmp_path / "new.jsonl").write_bytes(b"")
    assert len(cat.refresh(budget=0)) == 4 and cat.pending  # (a new file waits for a refresh with budget)
    assert len(cat.refresh(budget=1)) == 4 and not cat.pending  # (an empty one is no run)


def test_the_loader_reads_in_a_thread_that_ends_when_there_is_nothing_left(tmp_path):
    path = _log(tmp_path, "run", end=EndEvent(12, T0))
    (tmp_path / "bad.jsonl").write_text("junk\n")
    answers = collections.deque()
    loader = RunLoader(answers)
    assert loader.add(path) and loader.add(tmp_path / "bad.jsonl")
    loader.start()
    loader.join(5)
    assert not loader.is_alive() and not loader.add(path)  # ended: another one takes the next runs
    kinds = {a[0]: a for a in answers}
    assert kinds["loaded"][1].path == path
    assert kinds["unreadable"][1] == tmp_path / "bad.jsonl" and "\n" not in kinds["unreadable"][2]
    stopped = RunLoader(answers)
    stopped.add(path)
    stopped.stop()  # before it started: nothing read, nothing left running
    assert not stopped.add(path)
