"""Run logs: writing, reading bad and hostile files, SIGKILL, replay in the window, export."""

from __future__ import annotations

import json
import math
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kerasqt.events import (
    BatchEvent,
    EndEvent,
    EpochEvent,
    ErrorEvent,
    EvalEvent,
    MessageEvent,
    SineEvent,
    StartEvent,
)
from kerasqt.runlog import (
    ENV_LOG_DIR,
    FORMAT,
    VERSION,
    ReplayFeeder,
    RunLogError,
    RunLogWriter,
    read_run,
    resolve_log_dir,
)

T0 = 1_700_000_000.0


def _events():
    x = np.linspace(0, math.pi, 32)
    return [
        StartEvent(T0, 2, 3, 32, initial_epoch=0, run="run 1"),
        BatchEvent(1, 0, T0 + 0.1, {"loss": 0.9, "acc": 0.5}, (), 0.001),
        BatchEvent(2, 0, T0 + 0.2, {"loss": math.nan, "acc": math.inf}, ("text",), None),
        MessageEvent("worker", "hello\nfrom training"),
        BatchEvent(3, 0, T0 + 0.3, {"loss": 0.7, "acc": -math.inf}, (), 0.001),
        EvalEvent(3, 0, T0 + 0.35, {"loss": 0.8}, "val"),
        EpochEvent(3, 0, T0 + 0.4, {"loss": 0.7, "val_loss": 0.8}, (), 0.001),
        SineEvent(0, 1, x, np.sin(x)),
        ErrorEvent(T0 + 0.5, "boom: \"quoted\" ünïcode"),
    ]


def _same(a, b) -> bool:
    """Events equal, NaN equal to NaN and arrays compared by value."""
    if type(a) is not type(b):
        return False
    for name in a.__slots__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif isinstance(x, dict):
            if x.keys() != y.keys() or any(not (x[k] == y[k] or (x[k] != x[k] and y[k] != y[k])) for k in x):
                return False
        elif x != y:
            return False
    return True


def _strict_json(line: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(line, parse_constant=refuse)


# -- writing and reading (pure) --------------------------------------------------------------------

def test_every_event_type_round_trips_through_strict_json(tmp_path):
    w = RunLogWriter.create(tmp_path, kind="training", title="t", smoothing=0.8)
    events = _events()
    w.write(events[:4])
    w.write(events[4:])
    assert w.closed  # the error event ended the file
    lines = w.path.read_text(encoding="utf-8").splitlines()
    header = _strict_json(lines[0])
    assert header["format"] == FORMAT and header["version"] == VERSION and header["kind"] == "training"
    assert [_strict_json(line)["type"] for line in lines[1:]] == [
        "start", "batch", "batch", "message", "batch", "eval", "epoch", "sine", "error"]
    assert _strict_json(lines[2])["values"] == {"loss": 0.9, "acc": 0.5}
    assert _strict_json(lines[3])["values"] == {"loss": "NaN", "acc": "Infinity"}
    # a sine event in a training log is refused on reading; the rest round-trips exactly
    with pytest.raises(RunLogError, match="line 9: a sine event in a training run log"):
        read_run(w.path)
    lines.pop(8)
    (tmp_path / "clean.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = read_run(tmp_path / "clean.jsonl")
    expected = [ev for ev in events if not isinstance(ev, SineEvent)]
    assert len(run.events) == len(expected)
    assert all(_same(a, b) for a, b in zip(run.events, expected, strict=True))
    assert run.smoothing == 0.8 and run.ended and not run.truncated
    assert run.records[3][0] is not None  # a message line carries the time it was received


def test_the_fast_batch_line_is_the_general_line():
    import random

    from kerasqt.runlog.writer import _batch_line, _encode, _line

    rng = random.Random(0)
    for _ in range(5000):
        values = {rng.choice(["loss", "acc", 'quo"te', "back\\slash", "ünï"]): rng.choice(
            [rng.random(), 1e-300, 1e300, -0.0, 5e-324, rng.uniform(-1e9, 1e9), 3.0]) for _ in range(rng.randint(0, 4))}
        ev = BatchEvent(rng.randint(0, 2**62), rng.randint(0, 9), rng.uniform(0, 2e9), values, (),
                        rng.choice([None, rng.random()]))
        line = _batch_line(ev)
        assert line == _line(_encode(ev, 0.0))
        assert _same(read_event(line), ev)
    for odd in (BatchEvent(1, 0, T0, {"loss": math.nan}), BatchEvent(1, 0, T0, {"loss": 1.0}, ("bad",)),
                BatchEvent(1, 0, T0, {"loss": 1}), BatchEvent(1, 0, T0, {"loss": 1.0}, (), math.inf)):
        assert _batch_line(odd) is None  # the general path writes these


def test_rows_are_written_as_the_lines_of_their_events(tmp_path):
    from kerasqt.events import BatchRows, drain

    keys = ["loss", 'quo"te', "per%cent", "%r", "ünï"]
    queued = [(1, 0, T0, {k: 0.25 for k in keys}, 1e-3), (2, 0, T0 + 0.5, {k: 1e-300 for k in keys}, 5e-4),
              (3, 0, T0 + 1, {"loss": 1e308}, None), (4, 0, T0 + 1.5, {"loss": 1e308}, None),  # no float holds the sum
              (5, 1, T0 + 2, {"loss": math.nan, "acc": 1.0}, 0.1), (6, 1, T0 + 3, {"loss": 0.5, "acc": math.inf}, 0.1),
              (7, 1, T0 + 4, {"acc": 0.5, "loss": 0.5}, 0.1)]  # the same keys in another order
    as_events, as_rows = queue.SimpleQueue(), queue.SimpleQueue()
    for item in queued:
        as_events.put(item)
        as_rows.put(item)
    events, rows = drain(as_events), drain(as_rows, rows=True)
    assert [len(r) for r in rows if isinstance(r, BatchRows)] == [2, 2, 2, 1]
    one, other = RunLogWriter.create(tmp_path / "rows", kind="training"), RunLogWriter.create(
        tmp_path / "events", kind="training")
    one.write(rows)
    other.write(events)
    one.close()
    other.close()
    lines = one.path.read_text().splitlines()
    assert lines[1:] == other.path.read_text().splitlines()[1:] and len(lines) == 8
    assert [_strict_json(line) is not None for line in lines] == [True] * 8
    assert all(_same(a, b) for a, b in zip(read_run(one.path).events, events, strict=True))


def read_event(line: str):
    from kerasqt.runlog.reader import _decode

    return _decode(_strict_json(line))[1]


def test_a_csv_export_of_a_sine_recording_is_refused_before_anything_is_written(tmp_path):
    w = RunLogWriter.create(tmp_path, kind="sine")
    x = np.arange(0.0, math.pi, 0.1)
    w.write([SineEvent(0, 1, x, np.sin(x)), EndEvent(0, 1.0)])
    w.close()
    shot, svg = tmp_path / "s.png", tmp_path / "s.svg"
    r = _cli(["replay", str(w.path), "--export", str(svg), "--export", str(tmp_path / "s.csv"),
              "--screenshot", str(shot)], timeout=60)
    assert r.returncode == 2 and "no training metrics to export as .csv" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not shot.exists() and not svg.exists()


def test_read_run_names_the_file_in_its_errors(tmp_path):
    with pytest.raises(RunLogError, match=f"^{re.escape(str(tmp_path / 'gone.jsonl'))}: no such file$"):
        read_run(tmp_path / "gone.jsonl")


def test_sine_events_round_trip_with_arrays(tmp_path):
    w = RunLogWriter.create(tmp_path, kind="sine")
    x = np.arange(0.0, 3 * math.pi, 0.1)
    w.write([SineEvent(2, 3, x, np.sin(x)), MessageEvent("worker", "w")])
    w.close()
    run = read_run(w.path)
    assert run.kind == "sine" and not run.ended
    ev = run.events[0]
    assert isinstance(ev, SineEvent) and ev.periods == 3
    np.testing.assert_array_equal(ev.x, x)
    np.testing.assert_array_equal(ev.y, np.sin(x))


def test_lines_reach_the_os_in_time_at_epoch_ends_and_when_idle(tmp_path):
    from kerasqt.runlog import FLUSH_EVERY

    def on_disk(path):  # what another process (or a reader after a SIGKILL) sees
        with open(path, encoding="utf-8") as other:
            return len(other.read().splitlines())

    w = RunLogWriter.create(tmp_path, kind="training")
    assert on_disk(w.path) == 1  # the header at once
    time.sleep(FLUSH_EVERY)
    w.write(_events()[:2])  # the first lines after a quiet spell go at once
    assert on_disk(w.path) == 3
    w.write([BatchEvent(3, 0, T0 + 0.3, {"loss": 0.5})])  # then they wait a little, in one write
    assert on_disk(w.path) == 3
    time.sleep(FLUSH_EVERY)
    w.write([])  # idle: the receiver's empty iteration
    assert on_disk(w.path) == 4
    w.write([BatchEvent(4, 0, T0 + 0.4, {"loss": 0.4}), EpochEvent(4, 0, T0 + 0.4, {"loss": 0.4})])
    assert on_disk(w.path) == 6  # an epoch end goes at once
    w.write([BatchEvent(5, 1, T0 + 0.5, {"loss": 0.3})])
    w.close()  # and close writes what waits
    assert on_disk(w.path) == 7 and w.lines == 6
    w.write(_events()[2:3])  # after close: ignored
    assert on_disk(w.path) == 7


def test_follower_waits_for_the_runs_own_error_before_writing_its_own(tmp_path):
    from kerasqt.runlog import LogFollower

    def follow(answers, late):
        """A follower whose ``alive()`` gives ``answers``; ``late`` arrives after the second answer."""
        q, asked = queue.SimpleQueue(), []

        def alive():
            asked.append(1)
            if len(asked) == 2 and late is not None:
                q.put(late)
            return answers[min(len(asked), len(answers)) - 1]

        w = RunLogWriter.create(tmp_path, kind="training")
        q.put(BatchEvent(1, 0, T0, {"loss": 1.0}))
        f = LogFollower(q, w, alive, interval=0.01, alive_every=0.02)
        f.start()
        f.join(5)
        assert not f.is_alive() and w.closed
        return [ev for ev in read_run(w.path).events if isinstance(ev, ErrorEvent)]

    # fit has left its frames, its exception is on the way: the log keeps the real message
    errors = follow([False], ErrorEvent(T0 + 1, "ValueError: bad batch"))
    assert [e.message for e in errors] == ["ValueError: bad batch"]
    # nothing comes: after asking twice the follower ends the log itself
    errors = follow([False], None)
    assert len(errors) == 1 and "without finishing" in errors[0].message


def test_follower_woken_at_the_end_writes_it_at_once(tmp_path):
    """The end of a run wakes the log thread: fit does not wait out the thread's sleep."""
    from kerasqt.runlog import LogFollower

    q = queue.SimpleQueue()
    w = RunLogWriter.create(tmp_path, kind="training")
    f = LogFollower(q, w, interval=60.0)
    f.start()
    q.put((1, 0, T0, {"loss": 1.0}, None))  # a batch as the training thread queues it
    q.put(EndEvent(1, T0 + 1))
    t0 = time.monotonic()
    f.wake()
    f.join(5)
    assert not f.is_alive() and w.closed and time.monotonic() - t0 < 5
    run = read_run(w.path)
    assert run.ended and [ev.values for ev in run.events if isinstance(ev, BatchEvent)] == [{"loss": 1.0}]


@pytest.mark.parametrize("run_over", [True, False])
def test_follower_stopped_by_the_next_run_ends_the_log(tmp_path, run_over):
    """A run that raised, then the monitor's next run at once: the old log still gets its end."""
    from kerasqt.runlog import LogFollower

    q = queue.SimpleQueue()
    w = RunLogWriter.create(tmp_path, kind="training")
    f = LogFollower(q, w, alive=lambda: True, interval=60.0)  # alive: it never finds fit gone itself
    f.start()
    q.put((1, 0, T0, {"loss": 1.0}, None))
    f.stop(run_over=run_over)
    assert not f.is_alive() and w.closed
    run = read_run(w.path)
    assert run.count(BatchEvent) == 1
    errors = [ev for ev in run.events if isinstance(ev, ErrorEvent)]
    if run_over:
        assert run.ended and len(errors) == 1 and "without finishing" in errors[0].message
    else:  # stopped for another reason (the process ends): what came is kept, no end is made up
        assert not run.ended and not errors


def test_liveness_says_gone_at_the_second_false_in_a_row():
    from kerasqt.loops import Liveness

    answers = iter([False, True, False, False, False])
    live = Liveness(lambda: next(answers), every=1.0)
    live.start()
    now = time.monotonic()
    assert not live.gone(now)  # not due yet: not asked
    said = [live.gone(now + k) for k in range(1, 6)]
    assert said == [False, False, False, True, True]  # False, True, False, False (gone), still False
    live.heard()  # events came: the next False is a first one again
    assert Liveness(None).gone(math.inf) is False


def test_exit_stages_run_in_their_order(tmp_path):
    """jobs first (before Python waits for non-daemon threads), then threads, then logs; a handler that
    raises does not stop the others, and one registered twice runs once."""
    script = tmp_path / "exits.py"
    script.write_text(textwrap.dedent("""
        import atexit, sys, threading, time
        atexit.register(lambda: print("plain atexit, registered first"))
        from kerasqt import exits
        say = lambda text: (lambda: print(text))
        def broken():
            raise RuntimeError("a broken handler")
        exits.register(say("logs"), exits.LOGS)
        exits.register(broken, exits.THREADS)
        threads = exits.register(say("threads"), exits.THREADS)
        exits.register(threads, exits.THREADS)
        exits.register(say("jobs"), exits.JOBS)
        threading.Thread(target=lambda: (time.sleep(0.3), print("a non-daemon thread ends"))).start()
    """))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["jobs", "a non-daemon thread ends", "threads", "logs",
                                     "plain atexit, registered first"]
    assert "a broken handler" in r.stderr


def test_names_do_not_collide(tmp_path):
    w = RunLogWriter.create(tmp_path, kind="training")
    w2 = RunLogWriter.create(tmp_path, kind="training")  # the same second: a suffix, not the same file
    assert w2.path != w.path and w2.path.name == w.path.stem + "-2.jsonl"
    w.close(), w2.close()


def test_a_cut_last_line_is_skipped_but_a_bad_middle_line_is_an_error(tmp_path):
    w = RunLogWriter.create(tmp_path, kind="training")
    w.write(_events()[:3])
    w.close()
    good = w.path.read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(good + b'{"type":"batch","time":1700000000.4,"step":4,"epo')
    run = read_run(cut)
    assert run.truncated and [type(e) for e in run.events] == [StartEvent, BatchEvent, BatchEvent]
    middle = tmp_path / "middle.jsonl"
    lines = good.split(b"\n")
    lines[2] = lines[2][:30]
    middle.write_bytes(b"\n".join(lines))
    with pytest.raises(RunLogError, match="line 3 is not valid JSON"):
        read_run(middle)


HEADER = json.dumps({"format": FORMAT, "version": 1, "kind": "training"})


@pytest.mark.parametrize("content, words", [
    (None, "no such file"),
    (b"", "the file is empty"),
    (b"loss,accuracy\n0.1,0.2\n", "not a kerasqt run log"),
    (b'{"some": "json"}\n', "not a kerasqt run log"),
    (b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94.", "not a kerasqt run log"),
    (json.dumps({"format": FORMAT, "version": VERSION + 1, "kind": "training"}).encode() + b"\n", "newer kerasqt"),
    (json.dumps({"format": FORMAT, "version": True, "kind": "training"}).encode() + b"\n", "format version"),
    (json.dumps({"format": FORMAT, "version": 1, "kind": "python"}).encode() + b"\n", "unknown kind"),
    (json.dumps({"format": FORMAT, "version": 1, "kind": ["training"]}).encode() + b"\n", "unknown kind"),
    (json.dumps({"format": FORMAT, "version": 1, "kind": {}}).encode() + b"\n", "unknown kind"),
    (json.dumps({"format": FORMAT, "version": 1, "kind": "training", "smoothing": 7}).encode() + b"\n",
     "bad smoothing"),
    ((HEADER + '\n{"type":"batch","time":1,"step":true,"epoch":0,"values":{}}\n').encode(), "not a whole number"),
    ((HEADER + '\n{"type":"batch","time":1,"step":1,"epoch":0,"values":{"loss":"0.5"}}\n').encode(),
     "not a number"),
    ((HEADER + '\n{"type":"batch","time":1,"step":1,"epoch":0,"values":[1]}\n').encode(), "not an object"),
    ((HEADER + '\n{"type":"batch","time":"NaN","step":1,"epoch":0,"values":{}}\n').encode(), "not a finite"),
    ((HEADER + '\n{"type":"batch","time":1,"step":1,"epoch":0}\n').encode(), "without 'values'"),
    ((HEADER + '\n{"type":"batch","time":1,"step":' + "9" * 30 + ',"epoch":0,"values":{}}\n').encode(),
     "not a whole number"),
    ((HEADER + '\n{"type":"start","time":1,"epochs":' + "9" * 5000 + "}\n").encode(), "not valid JSON"),
    ((HEADER + "\n" + "[" * 100_000 + "]" * 100_000 + "\n").encode(), "not valid JSON"),
    ((HEADER + '\n{"type":["batch"]}\n').encode(), "no event type"),
    ((HEADER + '\n["a list"]\n').encode(), "not a JSON object"),
])
def test_bad_and_hostile_files_give_one_line_errors(tmp_path, content, words):
    path = tmp_path / "run.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RunLogError) as info:
        read_run(path)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_reading_never_runs_what_a_file_says(tmp_path):
    marker = tmp_path / "PWNED"
    payload = f"__import__('os').system('touch {marker}')"
    path = tmp_path / "run.jsonl"
    path.write_text(HEADER + "\n" + json.dumps({"type": "message", "time": 1, "source": payload, "text": payload})
                    + "\n" + json.dumps({"type": "futuristic", "code": payload}) + "\n")
    run = read_run(path)
    assert run.events == [MessageEvent(payload, payload)] and run.skipped == 1
    assert not marker.exists()


def test_default_folder_comes_from_the_environment(monkeypatch, tmp_path):
    from kerasqt.runlog import DEFAULT_LOG_DIR

    monkeypatch.setenv(ENV_LOG_DIR, str(tmp_path / "logs"))
    assert resolve_log_dir(DEFAULT_LOG_DIR) == tmp_path / "logs"
    monkeypatch.setenv(ENV_LOG_DIR, "")
    assert resolve_log_dir(DEFAULT_LOG_DIR) is None
    monkeypatch.delenv(ENV_LOG_DIR)
    assert resolve_log_dir(DEFAULT_LOG_DIR) == (tmp_path.cwd() / "runs").absolute()
    assert resolve_log_dir(None) is None


def _run_log(tmp_path, spacing: float, n: int = 5, end: bool = True):
    w = RunLogWriter.create(tmp_path, kind="training")
    events = [StartEvent(T0, 1, n)] + [BatchEvent(i + 1, 0, T0 + spacing * (i + 1), {"loss": 1.0 / (i + 1)})
                                       for i in range(n)]
    w.write(events + ([EndEvent(n, T0 + spacing * (n + 1))] if end else []))
    w.close()
    return read_run(w.path)


def test_feeder_gives_everything_at_once_or_at_the_recorded_pace(tmp_path):
    run = _run_log(tmp_path, spacing=0.1)  # 0.6 s recorded
    got: queue.SimpleQueue = queue.SimpleQueue()
    ReplayFeeder(run, got.put).start()  # at once: in this thread
    assert got.qsize() == 7
    got = queue.SimpleQueue()
    t0 = time.monotonic()
    feeder = ReplayFeeder(run, got.put, speed=2.0).start()
    time.sleep(0.1)
    assert 1 <= got.qsize() < 7
    while not feeder.done:
        time.sleep(0.01)
    assert 0.28 <= time.monotonic() - t0 < 2.0 and got.qsize() == 7
    feeder.stop()


def test_feeder_ends_a_log_that_lacks_its_end_and_stops_when_asked(tmp_path):
    run = _run_log(tmp_path, spacing=10.0, end=False)
    got: queue.SimpleQueue = queue.SimpleQueue()
    ReplayFeeder(run, got.put).start()
    items = [got.get() for _ in range(got.qsize())]
    assert isinstance(items[-1], ErrorEvent) and "ends here" in items[-1].message
    feeder = ReplayFeeder(run, got.put, speed=1.0).start()  # pauses shortened to 5 s
    t0 = time.monotonic()
    feeder.stop()
    assert feeder.done and time.monotonic() - t0 < 1.0


# -- live runs in the window -----------------------------------------------------------------------

def _data(n=256):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8)).astype("float32")
    return x, (x[:, :1] > 0).astype("float32")


def _model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


def _cli(args, timeout=240):
    return subprocess.run([sys.executable, "-m", "kerasqt", *args], capture_output=True, text=True, timeout=timeout)


def _tables(plot):
    """Everything the metrics plot draws from: steps, raw and smoothed batch values, epoch rows."""
    out = {"batch steps": plot.batches.steps.copy(), "epoch steps": plot.epochs.steps.copy(),
           "epochs": plot.epochs.epochs}
    for name, values in plot.batches.columns():
        out["batch " + name] = values.copy()
    for name in plot.epochs.names():
        out["epoch " + name] = plot.epochs.column(name).copy()
    return out


def _assert_same_tables(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _wait_replay(qtbot, rp):
    qtbot.waitUntil(lambda: rp.done, timeout=20000)
    qtbot.waitUntil(lambda: not rp.window.training.running and not rp.window.demo.running, timeout=5000)


def test_replay_shows_the_same_curves_as_the_live_window(qtbot, tmp_path):
    from kerasqt import QtMonitor
    from kerasqt.replay import replay

    monitor = QtMonitor(title="live", log_dir=tmp_path / "runs")
    x, y = _data()
    _model().fit(x, y, validation_split=0.25, epochs=3, batch_size=32, verbose=0, callbacks=[monitor])
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=5000)
    live = _tables(monitor.window.plot)
    assert len(live["batch steps"]) == 18 and len(live["epoch steps"]) == 3
    monitor.export(tmp_path / "live.csv")
    monitor.close()
    path = monitor.log_path
    assert path.parent == tmp_path / "runs" and path.suffix == ".jsonl"

    # the command, headless, as a user runs it
    shot, csv = tmp_path / "r.png", tmp_path / "replay.csv"
    r = _cli(["replay", str(path), "--screenshot", str(shot), "--export", str(csv)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"replayed {path.stem}: 18 batches, 3 epochs, finished" in r.stdout
    assert shot.stat().st_size > 20_000
    assert csv.read_text() == (tmp_path / "live.csv").read_text()  # every plotted value, smoothed ones too

    # and in this process, table by table
    rp = replay(path)
    qtbot.addWidget(rp.window)
    _wait_replay(qtbot, rp)
    _assert_same_tables(_tables(rp.window.plot), live)
    assert "training finished" in rp.window.status.text()
    assert "epoch 3/3" in rp.window.progress_label.text()
    assert not rp.window.stop_training_button.isEnabled()
    rp.window.close()


def test_replay_in_time_takes_the_recorded_time_over_speed(qtbot, tmp_path):
    from kerasqt.replay import replay

    run = _run_log(tmp_path, spacing=0.2, n=5)  # 1.2 s recorded
    t0 = time.monotonic()
    rp = replay(run, speed=2.0)
    qtbot.addWidget(rp.window)
    _wait_replay(qtbot, rp)
    assert time.monotonic() - t0 >= 0.55
    assert list(rp.window.plot.batches.steps) == [1, 2, 3, 4, 5]
    rp.window.close()


def test_evaluate_after_fit_joins_the_run_in_the_window_its_log_and_replays(qtbot, tmp_path):
    import threading

    from kerasqt import QtMonitor
    from kerasqt.replay import replay

    monitor = QtMonitor(log_dir=tmp_path / "runs")
    model = _model()
    x, y = _data()
    model.fit(x, y, validation_split=0.25, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    result = model.evaluate(x, y, verbose=0, callbacks=[monitor], return_dict=True)
    plot = monitor.window.plot
    assert plot.tests.steps.tolist() == [12]  # the run's last step: 2 epochs x 6 batches
    assert plot.tests.column("test_loss")[0] == np.float32(result["loss"])
    assert "t:test_loss" in plot.panels["loss"].lines  # a diamond in the loss axes
    assert f"evaluate: accuracy {result['accuracy']:.4g}, loss {result['loss']:.4g} at step 12" in \
        monitor.window.pane_text("control")
    # from another thread too (fit_in_background's case): queued to the window
    t = threading.Thread(target=model.evaluate, args=(x[:64], y[:64]), kwargs={"verbose": 0, "callbacks": [monitor]})
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(plot.tests) == 2, timeout=5000)

    run = read_run(monitor.log_path)  # appended after the end, in order
    kinds = [type(ev).__name__ + ("" if not isinstance(ev, EvalEvent) else ":" + ev.kind) for _, ev in run.records]
    assert kinds[-3:] == ["EndEvent", "EvalEvent:test", "EvalEvent:test"] and kinds.count("EvalEvent:val") == 2
    monitor.close()
    rp = replay(run, speed=50.0)  # paced: the receiver stops at the end, the results come before it
    qtbot.addWidget(rp.window)
    _wait_replay(qtbot, rp)
    assert rp.window.plot.tests.steps.tolist() == [12, 12] and "training finished" in rp.window.status.text()
    rp.window.close()


def test_evaluate_after_a_fit_that_raised_and_inside_a_fit_are_test_results(qtbot, tmp_path):
    import keras

    from kerasqt import QtMonitor

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                raise KeyboardInterrupt  # Ctrl-C: Keras skips on_train_end

    monitor = QtMonitor(log_dir=tmp_path / "runs")
    model = _model()
    x, y = _data()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[Interrupt(), monitor])
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=5000)
    model.evaluate(x, y, verbose=0, callbacks=[monitor])  # was taken for the raised fit's validation
    assert monitor.window.plot.tests.steps.tolist() == [3]
    assert not any(monitor._handed.values())  # nothing of the evaluate call (its model and params) held
    assert type(read_run(monitor.log_path).events[-1]) is EvalEvent

    class Nested(keras.callbacks.Callback):  # an evaluate of its own inside fit: not validation
        def on_epoch_end(self, epoch, logs=None):
            self.model.evaluate(x[:64], y[:64], verbose=0, callbacks=[monitor])

    model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0, callbacks=[monitor, Nested()])
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=5000)
    evals = [(ev.kind, ev.step) for ev in read_run(monitor.log_path).events if isinstance(ev, EvalEvent)]
    assert evals == [("val", 6), ("test", 6), ("val", 12), ("test", 12)]
    assert monitor.window.plot.tests.steps.tolist() == [6, 12]
    monitor.close()


def test_evaluate_with_a_monitor_that_shows_no_run_is_told_not_plotted(qtbot, tmp_path):
    from kerasqt import QtMonitor

    monitor = QtMonitor(log_dir=tmp_path / "runs")
    monitor.show()
    x, y = _data(64)
    _model().evaluate(x, y, verbose=0, callbacks=[monitor])
    assert "(not plotted: this window shows no run of this monitor)" in monitor.window.pane_text("control")
    assert not (tmp_path / "runs").exists()  # no run, no log
    monitor.close()


def test_a_paced_replay_shows_results_logged_after_the_end_before_it(qtbot, tmp_path):
    from kerasqt.replay import replay

    run = _run_log(tmp_path, spacing=0.05, n=5)
    evaluate = EvalEvent(5, 0, T0 + 60.0, {"loss": 0.1}, "test")  # a minute after the end
    writer = RunLogWriter.create(tmp_path / "again", kind="training")
    writer.write([ev for _, ev in run.records])
    writer.write_after([evaluate])
    t0 = time.monotonic()
    rp = replay(writer.path, speed=2.0)  # the pause before it would be 5 s (the longest), after the end
    qtbot.addWidget(rp.window)
    _wait_replay(qtbot, rp)
    assert rp.window.plot.tests.steps.tolist() == [5] and time.monotonic() - t0 < 3.0
    assert "elapsed 0:00" in rp.window.progress_label.text()  # the run's time, not up to the evaluate
    rp.window.close()


def test_results_written_after_a_run_join_its_log_open_or_ended(tmp_path):
    w = RunLogWriter.create(tmp_path, kind="training")
    w.write([StartEvent(T0, 1, 2), BatchEvent(1, 0, T0 + 1, {"loss": 1.0})])
    w.write_after([EvalEvent(1, 0, T0 + 2, {"loss": 0.5}, "test")])  # still open: in its place
    w.write([BatchEvent(2, 0, T0 + 3, {"loss": 0.8}), EndEvent(2, T0 + 4)])
    assert w.closed
    w.write_after([EvalEvent(2, 0, T0 + 5, {"loss": 0.4}, "test")])  # ended: appended
    run = read_run(w.path)
    assert [type(ev).__name__ for _, ev in run.records] == [
        "StartEvent", "BatchEvent", "EvalEvent", "BatchEvent", "EndEvent", "EvalEvent"]
    assert run.ended and w.lines == 6
    w.path.unlink()  # removed meanwhile: not made anew with these lines only (not a run log)
    with pytest.raises(RunLogError, match="No such file"):
        w.write_after([EvalEvent(2, 0, T0 + 6, {"loss": 0.3}, "test")])
    assert not w.path.exists()


def test_closing_the_window_mid_run_keeps_logging_the_rest(qtbot, tmp_path):
    import keras

    from kerasqt import QtMonitor

    monitor = QtMonitor(log_dir=tmp_path)
    x, y = _data(1024)

    class Closer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2 and not monitor.window.is_closed:
                monitor.window.close()

    _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, Closer()])
    assert monitor.window.is_closed
    run = read_run(monitor.log_path)
    assert [ev.step for ev in run.events if isinstance(ev, BatchEvent)] == list(range(1, 65))
    assert run.count(EpochEvent) == 2 and isinstance(run.events[-1], EndEvent)


def test_a_fit_that_raises_ends_its_log_with_the_error(qtbot, tmp_path):
    import keras

    from kerasqt import QtMonitor

    monitor = QtMonitor(log_dir=tmp_path)

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _model().fit(*_data(), epochs=2, batch_size=32, verbose=0, callbacks=[monitor, Boom()])
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=5000)
    run = read_run(monitor.log_path)
    assert run.count(BatchEvent) == 3 and isinstance(run.events[-1], ErrorEvent)
    assert "failed" in run.describe()
    monitor.close()


def test_log_dir_none_writes_nothing_and_the_default_follows_the_environment(qtbot, tmp_path, monkeypatch,
                                                                            capfd):
    import warnings

    from kerasqt import QtMonitor

    with pytest.raises(ValueError, match="log_dir"):
        QtMonitor(log_dir=5)

    monkeypatch.setenv(ENV_LOG_DIR, str(tmp_path / "env"))
    off = QtMonitor(log_dir=None)
    _model().fit(*_data(64), epochs=1, batch_size=32, verbose=0, callbacks=[off])
    assert off.log_path is None and not (tmp_path / "env").exists()
    off.close()
    default = QtMonitor()
    _model().fit(*_data(64), epochs=1, batch_size=32, verbose=0, callbacks=[default])
    assert default.log_path.parent == tmp_path / "env" and read_run(default.log_path).count(BatchEvent) == 2
    default.close()
    (tmp_path / "a file").write_text("not a folder")
    broken = QtMonitor(log_dir=tmp_path / "a file")
    capfd.readouterr()
    with warnings.catch_warnings():  # printed where Python prints warnings: sys.stderr at that moment
        warnings.simplefilter("always")
        monkeypatch.setattr(warnings, "showwarning", lambda msg, cat, fn, ln, file=None, line=None:
                            sys.stderr.write(warnings.formatwarning(msg, cat, fn, ln, line)))
        hist = _model().fit(*_data(64), epochs=2, batch_size=32, verbose=0, callbacks=[broken])
    assert len(hist.history["loss"]) == 2 and broken.log_path is None  # training went on, unlogged
    # in the terminal (or the notebook cell), not only in the window's output pane, which the
    # training's own output goes to: a headless run would never show it
    assert "RuntimeWarning: kerasqt: no run log for this run" in capfd.readouterr().err
    qtbot.waitUntil(lambda: not broken.window.training.running, timeout=5000)
    assert "no run log" not in broken.window.pane_text("worker")
    assert broken.window.plot.shown()["loss"]["batches"] == 4
    broken.close()


CHILD = textwrap.dedent("""
    import os, sys, time
    import keras, numpy as np
    from kerasqt import QtMonitor

    log_dir, report = sys.argv[1], os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    class Report(keras.callbacks.Callback):  # after the monitor: the batch was put before this line
        def on_train_batch_end(self, batch, logs=None):
            os.write(report, f"{time.time()!r} {float(logs['loss'])!r}\\n".encode())
            time.sleep(0.01)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200 * 16, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    monitor = QtMonitor(log_dir=log_dir, capture_output=False)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[monitor, Report()])
    os.write(report, b"FINISHED\\n")
""")


RAISES = textwrap.dedent("""
    import sys
    import keras, numpy as np
    from kerasqt import QtMonitor

    class Fail(keras.callbacks.Callback):  # before the monitor: batch 40 is never put
        def on_train_batch_end(self, batch, logs=None):
            if batch == 40:
                raise {error}("boom")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((100 * 16, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Fail(), QtMonitor(log_dir=sys.argv[1])])
""")


@pytest.mark.parametrize("error", ["ValueError", "KeyboardInterrupt"])
def test_a_script_that_dies_in_fit_leaves_every_batch_and_the_error_in_its_log(tmp_path, error):
    # Nothing catches the exception: the script ends at once, while the receiver still holds
    # up to 0.4 s of batches and the log up to 0.25 s more. Both reach the file at exit.
    script = tmp_path / "child.py"
    script.write_text(RAISES.format(error=error))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], capture_output=True, text=True,
                       timeout=180, env=env)
    assert r.returncode != 0 and f"{error}: boom" in r.stderr
    (path,) = (tmp_path / "runs").iterdir()
    run = read_run(path)
    assert [ev.step for ev in run.events if isinstance(ev, BatchEvent)] == list(range(1, 41))
    last = run.events[-1]
    expected = f"the process exited during fit ({error}: boom)"
    if error == "KeyboardInterrupt":  # a Ctrl-C ends the run as interrupted
        expected = "Ctrl-C (KeyboardInterrupt)"
    assert isinstance(last, ErrorEvent) and last.message == expected
    assert "Traceback" not in r.stderr.split(f"{error}: boom")[-1]  # nothing of ours after it


def test_sigkill_mid_epoch_keeps_every_batch_up_to_the_last_flush(qtbot, tmp_path):
    from kerasqt.replay import replay

    script, report = tmp_path / "child.py", tmp_path / "report.txt"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs"), str(report)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # into epoch 2 (200 steps an epoch), well before its end
            if report.exists() and len(report.read_text().splitlines()) >= 260:
                break
            assert child.poll() is None, "the training process ended early"
            time.sleep(0.05)
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    reported = [line.split() for line in report.read_text().splitlines()]
    assert "FINISHED" not in report.read_text() and len(reported) < 400  # killed mid-epoch 2

    (path,) = (tmp_path / "runs").iterdir()
    run = read_run(path)
    batches = [ev for ev in run.events if isinstance(ev, BatchEvent)]
    assert [ev.step for ev in batches] == list(range(1, len(batches) + 1))  # no gaps
    for ev, (_, loss) in zip(batches, reported, strict=False):  # the very values the training saw
        assert ev.values["loss"] == float(loss)
    flushed = sum(1 for t, _ in reported if float(t) <= killed_at - 1.0)  # the promise: at least once a second
    assert len(batches) >= flushed >= 150
    assert run.count(EpochEvent) == 1 and not run.ended

    # the command replays it (its end is missing: said, not an error)
    r = _cli(["replay", str(path), "--screenshot", str(tmp_path / "k.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{len(batches)} batches, 1 epoch, cut short" in r.stdout
    rp = replay(path)
    qtbot.addWidget(rp.window)
    _wait_replay(qtbot, rp)
    assert list(rp.window.plot.batches.steps) == [ev.step for ev in batches]
    assert "training cut short: the run log ends here" in rp.window.pane_text("control")
    assert rp.window.status.text() == "training cut short"  # not "failed": the log says nothing of that
    rp.window.close()


@pytest.mark.parametrize("make, words", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_text("step,loss\n1,0.5\n"), "not a kerasqt run log"),
    (lambda p: p.write_text(json.dumps({"format": FORMAT, "version": VERSION + 1, "kind": "training"}) + "\n"),
     "newer kerasqt"),
    (lambda p: p.write_text(HEADER + "\n"), "holds no events"),
])
def test_replay_of_a_bad_file_is_one_line_and_exit_2(tmp_path, make, words):
    path = tmp_path / "bad.jsonl"
    make(path)
    r = _cli(["replay", str(path)], timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and str(path) in lines[0] and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, words", [
    (["--speed", "0"], "positive number"),
    (["--speed", "fast"], "not a number"),
    (["--export", "out.txt"], ".png, .svg, .pdf or .csv"),
])
def test_replay_bad_arguments_are_one_line_and_exit_2(tmp_path, args, words):
    r = _cli(["replay", str(tmp_path / "x.jsonl"), *args], timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


def test_several_runs_overlay_each_named_in_the_legend(qtbot, tmp_path):
    from kerasqt import QtMonitor
    from kerasqt.replay import replay

    paths, tables = [], []
    for epochs in (3, 2):  # the longer first: the axes still fit it
        monitor = QtMonitor(log_dir=tmp_path)
        _model().fit(*_data(), validation_split=0.25, epochs=epochs, batch_size=32, verbose=0, callbacks=[monitor])
        qtbot.waitUntil(lambda m=monitor: not m.window.training.running, timeout=5000)
        paths.append(monitor.log_path)
        tables.append(_tables(monitor.window.plot))
        monitor.close()
    rp = replay(paths)
    qtbot.addWidget(rp.window)
    _wait_replay(qtbot, rp)
    plot = rp.window.plot
    rp.window.draw_now()
    (first,) = plot.overlays
    assert first.name == paths[0].stem and plot.label == paths[1].stem
    np.testing.assert_array_equal(first.batches.smoothed("loss"), tables[0]["batch loss~"])
    np.testing.assert_array_equal(first.epochs.column("val_loss"), tables[0]["epoch val_loss"])
    _assert_same_tables(_tables(plot), tables[1])
    legend = [t.get_text() for t in plot.panels["loss"].ax.get_legend().get_texts()]
    for path in paths:
        assert f"{path.stem}: loss" in legend and f"{path.stem}: val_loss" in legend
    panel = plot.panels["loss"]
    colors = {line.get_color() for line in panel.still} | {panel.lines["s:loss"].get_color()}
    assert len(colors) == 2  # one colour per run
    assert panel.ax.get_xlim() == (0.0, 18.0)  # the kept 18-step run fits, without extra room
    rp.window.close()


def test_the_sine_demo_is_recorded_and_replayed(qtbot, window, tmp_path):
    from kerasqt.demo import DemoSettings, sine_curve
    from kerasqt.replay import replay

    window.demo.settings = DemoSettings(worker_iterations=6, worker_interval=0.01, receiver_iterations=30,
                                        receiver_interval=0.01, batch_size=5, log_dir=tmp_path)
    with qtbot.waitSignal(window.demo.running_changed, timeout=10000, check_params_cb=lambda r: not r):
        window.start_threads()
    assert window.plot.curves == 6
    (path,) = tmp_path.iterdir()
    assert f"recording to {path}" in window.pane_text("control")
    run = read_run(path)
    assert run.kind == "sine" and run.count(SineEvent) == 6
    assert any(isinstance(ev, MessageEvent) and "worker: finished" in ev.text for ev in run.events)

    rp = replay(path, speed=5.0)
    qtbot.addWidget(rp.window)
    _wait_replay(qtbot, rp)
    win = rp.window
    assert win.mode == "demo" and win.plot.curves == 6
    x, y = sine_curve(6)
    np.testing.assert_array_equal(win.plot.line.get_xdata(), x)
    np.testing.assert_array_equal(win.plot.line.get_ydata(), y)
    assert "worker: finished after 6 curves" in win.pane_text("worker")
    win.close()


def test_export_chooses_by_extension(qtbot, tmp_path, capfd):
    from kerasqt import QtMonitor

    monitor = QtMonitor(log_dir=None)
    _model().fit(*_data(), validation_split=0.25, epochs=2, batch_size=32, verbose=0, callbacks=[monitor])
    qtbot.waitUntil(lambda: not monitor.window.training.running, timeout=5000)
    capfd.readouterr()
    for ext in ("png", "svg", "pdf", "csv"):
        assert monitor.export(tmp_path / f"m.{ext}") == str(tmp_path / f"m.{ext}")
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    svg = (tmp_path / "m.svg").read_text()
    assert "<svg" in svg and "loss (smoothed)" in svg
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert rows[0].startswith("kind,step,epoch") and sum(r.startswith("batch,") for r in rows) == 12
    # each batch with its epoch (0-based, as Keras counts): 6 batches an epoch
    assert [r.split(",")[2] for r in rows if r.startswith("batch,")] == ["0"] * 6 + ["1"] * 6
    assert "Traceback" not in capfd.readouterr().err  # the blitting handler stays out of exports
    with pytest.raises(ValueError, match="use .png, .svg, .pdf or .csv"):
        monitor.export(tmp_path / "m.txt")
    monitor.close()


def test_csv_export_needs_training_metrics(window, tmp_path):
    with pytest.raises(ValueError, match="no training metrics"):
        window.export(tmp_path / "demo.csv")
    assert window.export(tmp_path / "demo.png")
