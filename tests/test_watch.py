"""Watching live runs through their run logs: FollowSource, the watch window, ``kerasqt watch``,
``QtMonitor(viewer="process")``."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from kerasqt.events import BatchEvent, EndEvent, EvalEvent, StartEvent
from kerasqt.runlog import FORMAT, RunLogError, RunLogWriter, check_header, decode_line, read_run

T0 = 1_700_000_000.0


def _batch(step: int, t: float | None = None) -> BatchEvent:
    return BatchEvent(step, 0, T0 + step if t is None else t, {"loss": 1 / math.sqrt(step)}, (), 0.01)


@pytest.fixture(autouse=True)
def lines_at_once(monkeypatch):
    """This process's run logs hand each write to the OS at once (a training's: every FLUSH_EVERY s)."""
    monkeypatch.setattr("kerasqt.runlog.writer.FLUSH_EVERY", 0.0)


def _writer(folder, name=None) -> RunLogWriter:
    if name is None:
        return RunLogWriter.create(folder, kind="training", title="t")
    return RunLogWriter(folder / name, {"kind": "training", "pid": os.getpid(), "host": socket.gethostname()})


def _write(w: RunLogWriter, events) -> None:
    w.write(events)


class _Feeder(threading.Thread):
    """Appends batches to a run log in time (another thread's writer, as a training's)."""

    def __init__(self, w: RunLogWriter, steps: int, gap: float, end: bool = True) -> None:
        super().__init__(name="test-feeder", daemon=True)
        self.w, self.steps, self.gap, self.end = w, steps, gap, end

    def run(self) -> None:
        _write(self.w, [StartEvent(time.time(), 1, self.steps, 32)])
        for step in range(1, self.steps + 1):
            _write(self.w, [_batch(step, time.time())])
            time.sleep(self.gap)
        if self.end:
            self.w.write([EndEvent(self.steps, time.time(), False)])


def _watch(qtbot, target, **kwargs):
    from kerasqt.watch import watch

    watcher = watch(target, **kwargs)
    qtbot.addWidget(watcher.window)
    return watcher


def _batches(watcher) -> int:
    return watcher.window.plot.shown().get("loss", {}).get("batches", 0)


def _control(watcher) -> str:
    return watcher.window.pane_text("control")


# -- the reader's one-line functions --------------------------------------------------------------
def test_decode_line_and_check_header_give_the_readers_checks_one_line_at_a_time():
    t, ev = decode_line(b'{"type":"batch","time":5.0,"step":3,"epoch":0,"values":{"loss":"NaN"}}\n')
    assert t == 5.0 and isinstance(ev, BatchEvent) and ev.step == 3 and math.isnan(ev.values["loss"])
    assert decode_line(b"  \n") is None and decode_line(b'{"type":"future"}') is None
    for raw, words in [(b"{nope", "not valid JSON"), (b'{"type":"batch","time":1,"step":"x"}', "step"),
                       (b'{"type":"sine","index":0,"periods":1,"x":[],"y":[]}', "sine event in a training")]:
        with pytest.raises(RunLogError, match=words):
            decode_line(raw)
    assert check_header(json.dumps({"format": FORMAT, "version": 1, "kind": "training"}).encode())["kind"] == "training"
    with pytest.raises(RunLogError, match="not a kerasqt run log"):
        check_header(b"step,loss\n")


def test_the_header_names_the_writing_process(tmp_path):
    w = RunLogWriter.create(tmp_path, kind="training")
    w.close()
    header = read_run(w.path).header
    assert header["pid"] == os.getpid() and header["host"] == socket.gethostname()


# -- FollowSource alone (no window) -----------------------------------------------------------------
def _source(path, **kwargs):
    from kerasqt.follow import FollowSource, open_log

    fh, header, offset = open_log(path)
    src = FollowSource(path, fh, header, offset, **kwargs)
    src.start()
    return src


def _take(src, n, timeout=5.0) -> list:
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        try:
            out.append(src.events.get(timeout=0.05))
        except Exception:
            pass
    return out


def test_a_partial_line_waits_and_a_corrupt_line_is_one_note_and_skipped(tmp_path):
    w = _writer(tmp_path, "run.jsonl")
    _write(w, [_batch(1)])
    src = _source(w.path)
    try:
        assert [ev.step for ev in _take(src, 1)] == [1]
        with open(w.path, "ab") as fh:
            fh.write(b'{"type":"batch","time":1.0,"step":2,"epo')  # being written
            fh.flush()
            time.sleep(0.3)
            assert src.events.empty() and not src.notes and src.tail.partial
            fh.write(b'ch":0,"values":{"loss":0.5}}\n{oops, not json\n{"type":"batch","time":1,"step":"x"}\n')
            fh.write(b'{"type":"batch","time":1.0,"step":3,"epoch":0,"values":{"loss":0.4}}\n')
        assert [ev.step for ev in _take(src, 2)] == [2, 3]
        assert list(src.notes) == ["run.jsonl line 4: not valid JSON; skipped",
                                   "run.jsonl line 5: batch field 'step': not a whole number: 'x'; skipped"]
    finally:
        src.stop()
        w.close()


def test_a_line_too_long_is_one_note_and_what_follows_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr("kerasqt.follow.MAX_LINE", 200)
    w = _writer(tmp_path, "run.jsonl")
    src = _source(w.path)
    try:
        with open(w.path, "ab") as fh:
            for _ in range(3):  # 300 bytes of one line, in parts
                fh.write(b"x" * 100)
                fh.flush()
                time.sleep(0.1)
            fh.write(b"x\n" + json.dumps({"type": "batch", "time": 1.0, "step": 7, "epoch": 0,
                                           "values": {"loss": 0.5}}).encode() + b"\n")
        assert [(ev.step, ev.values) for ev in _take(src, 1)] == [(7, {"loss": 0.5})]
        assert list(src.notes) == ["run.jsonl line 2: a line longer than 0 MiB; skipped"]
        assert src.tail.line == 3
    finally:
        src.stop()
        w.close()


def test_a_log_without_pid_seems_stalled_after_a_while_and_is_still_followed(tmp_path):
    path = tmp_path / "old.jsonl"
    header = {"format": FORMAT, "version": 1, "kind": "training"}  # an older kerasqt: no pid, no host
    path.write_text(json.dumps(header) + "\n" + json.dumps({"type": "start", "time": T0}) + "\n")
    src = _source(path, stall=0.4)
    try:
        assert isinstance(_take(src, 1)[0], StartEvent)
        deadline = time.monotonic() + 5
        while not src.notes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "has not grown for" in src.notes.popleft() and not src.ended
        with open(path, "a") as fh:
            fh.write(json.dumps({"type": "end", "time": T0 + 1, "step": 0}) + "\n")
        assert isinstance(_take(src, 1)[0], EndEvent) and src.ended
        assert list(src.notes) == ["old.jsonl grows again"]
    finally:
        src.stop()


# -- the watch window, in this process -----------------------------------------------------------
def test_a_folder_is_followed_live_run_after_run(qtbot, tmp_path):
    folder = tmp_path / "runs"  # not there yet
    watcher = _watch(qtbot, folder)
    win = watcher.window
    qtbot.waitUntil(lambda: f"waiting for the folder {folder} to appear" in _control(watcher), timeout=3000)
    folder.mkdir()
    old = _writer(folder)
    old.write([StartEvent(T0, 1, 3, 32), _batch(1), _batch(2), _batch(3), EndEvent(3, T0 + 4, False)])
    qtbot.waitUntil(lambda: watcher.ended == 1, timeout=5000)  # the newest run there, shown to its end
    assert _batches(watcher) == 3 and win.status.text() == "training finished"

    w = _writer(folder, "live.jsonl")  # a new run, written while it is watched
    feeder = _Feeder(w, steps=60, gap=0.03)
    feeder.start()
    qtbot.waitUntil(lambda: watcher.path == w.path and _batches(watcher) >= 10, timeout=5000)
    first = _batches(watcher)
    shot1 = win.save_screenshot(str(tmp_path / "1.png"))
    qtbot.waitUntil(lambda: _batches(watcher) >= first + 20, timeout=5000)
    shot2 = win.save_screenshot(str(tmp_path / "2.png"))
    assert open(shot1, "rb").read() != open(shot2, "rb").read()  # the curves grew
    feeder.join(10)
    qtbot.waitUntil(lambda: watcher.ended == 2, timeout=5000)
    assert _batches(watcher) == 60 and win.status.text() == "training finished"
    text = _control(watcher)
    assert "switching to the new run live.jsonl (earlier runs stay on the axes: the last 3)" in text
    assert text.count("training finished at step") == 2
    (kept,) = win.plot.overlays  # the first run, still on the axes
    assert kept.name == old.path.stem and win.plot.label == "live"

    # an evaluate() after the run, appended to its log later, joins it as a test result
    w.write_after([EvalEvent(60, 0, time.time(), {"loss": 0.2}, "test")])
    qtbot.waitUntil(lambda: "evaluate: loss 0.2 at step 60" in _control(watcher), timeout=5000)
    win.close()
    assert not watcher.source.is_alive()


def test_a_sweep_keeps_its_last_three_earlier_runs_on_the_axes(qtbot, tmp_path):
    # Every run kept is drawn again at each full draw: a long sweep would make them ever slower.
    watcher = _watch(qtbot, tmp_path)
    for i, name in enumerate("abcde"):
        w = _writer(tmp_path, f"{name}.jsonl")
        _write(w, [StartEvent(T0, 1, 3, 32), _batch(1), _batch(2), _batch(3), EndEvent(3, T0 + 4, False)])
        qtbot.waitUntil(lambda i=i: watcher.ended == i + 1, timeout=5000)
        w.close()
    overlays = watcher.window.plot.overlays
    assert [o.name for o in overlays] == ["b", "c", "d"] and watcher.window.plot.label == "e"
    assert len({o.color for o in overlays}) == 3  # each its own colour, as when it was kept
    watcher.window.close()


def test_a_new_run_takes_over_from_a_live_one_and_a_demo_recording_is_not_followed(qtbot, tmp_path):
    a = _writer(tmp_path, "a.jsonl")
    _write(a, [StartEvent(T0, 1, 10, 32), _batch(1), _batch(2), _batch(3)])
    watcher = _watch(qtbot, tmp_path)
    qtbot.waitUntil(lambda: watcher.live and _batches(watcher) == 3, timeout=5000)
    sine = RunLogWriter(tmp_path / "s.jsonl", {"kind": "sine"})
    qtbot.waitUntil(lambda: "not followed:" in _control(watcher), timeout=5000)
    assert f"{sine.path}: a sine demo recording, not a training run" in _control(watcher) and watcher.live
    b = _writer(tmp_path, "b.jsonl")
    _write(b, [_batch(1), _batch(2)])
    qtbot.waitUntil(lambda: watcher.path == b.path and _batches(watcher) == 2, timeout=5000)
    text = _control(watcher)
    assert "training no longer watched: a newer run began in the folder: b.jsonl" in text
    assert "switching to the new run b.jsonl" in text and text.count("not followed") == 1
    (kept,) = watcher.window.plot.overlays
    assert kept.name == "a" and len(kept.batches.steps) == 3
    for w in (a, sine, b):
        w.close()
    watcher.window.close()


def test_a_file_that_appears_is_truncated_or_replaced_is_followed_anew(qtbot, tmp_path):
    path = tmp_path / "run.jsonl"
    watcher = _watch(qtbot, path)
    qtbot.waitUntil(lambda: f"waiting for {path} to appear" in _control(watcher), timeout=3000)
    w = _writer(tmp_path, "run.jsonl")
    _write(w, [StartEvent(T0, 1, 10, 32)] + [_batch(s) for s in range(1, 6)])
    qtbot.waitUntil(lambda: _batches(watcher) == 5, timeout=5000)

    with open(path, "r+b") as fh:  # truncated mid-run (and written anew from its start)
        fh.truncate(0)
    qtbot.waitUntil(lambda: f"{path} was truncated: following it anew from its start" in _control(watcher),
                    timeout=5000)
    assert "training cut short: run.jsonl was truncated" in _control(watcher)
    with open(path, "ab") as fh:
        fh.write((json.dumps({"format": FORMAT, "version": 1, "kind": "training"}) + "\n").encode())
        fh.write((json.dumps({"type": "batch", "time": T0, "step": 1, "epoch": 0, "values": {"loss": 9.0}}) + "\n")
                 .encode())
    qtbot.waitUntil(lambda: watcher.live and _batches(watcher) == 1, timeout=5000)
    assert len(watcher.runs) == 2 and not watcher.window.plot.overlays  # the old curves are dropped
    w.close()

    os.rename(path, tmp_path / "run.jsonl.1")  # rotated: a new file takes the name
    w2 = _writer(tmp_path, "run.jsonl")
    _write(w2, [_batch(s) for s in range(1, 4)])
    qtbot.waitUntil(lambda: f"{path} was replaced: following it anew from its start" in _control(watcher),
                    timeout=5000)
    qtbot.waitUntil(lambda: _batches(watcher) == 3 and len(watcher.runs) == 3, timeout=5000)
    w2.close()
    watcher.window.close()


KILLED = textwrap.dedent("""
    import sys, time
    import keras, numpy as np
    from kerasqt import QtMonitor

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.01)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000 * 16, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[QtMonitor(log_dir=sys.argv[1]), Slow()])
""")


def test_a_killed_training_is_said_to_have_stopped_and_the_window_stays(qtbot, tmp_path):
    from kerasqt.follow import STOPPED

    script, folder = tmp_path / "train.py", tmp_path / "runs"
    script.write_text(KILLED)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    child = subprocess.Popen([sys.executable, str(script), str(folder)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        watcher = _watch(qtbot, folder)
        qtbot.waitUntil(lambda: _batches(watcher) >= 100, timeout=60000)
        assert child.poll() is None and watcher.live
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    qtbot.waitUntil(lambda: not watcher.live, timeout=5000)
    win = watcher.window
    assert f"training stopped: {STOPPED}: pid {child.pid}" in _control(watcher)
    assert win.status.text() == "training stopped" and not win.is_closed
    (path,) = folder.glob("*.jsonl")
    assert _batches(watcher) == read_run(path).count(BatchEvent)  # all it wrote before it died
    # still following the folder: a next run is shown
    w = _writer(folder)
    w.write([StartEvent(T0, 1, 2, 32), _batch(1), _batch(2), EndEvent(2, T0 + 3, False)])
    qtbot.waitUntil(lambda: watcher.ended == 2 and _batches(watcher) == 2, timeout=5000)
    win.close()


# -- the command, and QtMonitor(viewer="process") ---------------------------------------------------
def test_the_command_waits_for_the_folder_then_follows_and_closes(tmp_path):
    folder, shot = tmp_path / "later", tmp_path / "w.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    watcher = subprocess.Popen([sys.executable, "-m", "kerasqt", "watch", str(folder), "--seconds", "5",
                                "--screenshot", str(shot), "--nice", "3"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        # --nice: the whole viewer, its threads too (Linux keeps a niceness per thread)
        nice, deadline = min(os.getpriority(os.PRIO_PROCESS, 0) + 3, 19), time.monotonic() + 20
        while os.getpriority(os.PRIO_PROCESS, watcher.pid) != nice and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # (Qt's threads have started)
        tasks = os.listdir(f"/proc/{watcher.pid}/task")
        assert len(tasks) > 1 and {os.getpriority(os.PRIO_PROCESS, int(t)) for t in tasks} == {nice}
        w = _writer(folder)
        feeder = _Feeder(w, steps=40, gap=0.02)
        feeder.start()
        feeder.join(10)
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err[-2000:]
    assert f"watched 1 run ({w.path.name}), 1 shown to their end" in out
    assert shot.stat().st_size > 20_000


@pytest.mark.parametrize("args, words", [
    (["watch"], "the following arguments are required: TARGET"),
    (["watch", "/dev/null"], "not a run log file nor a folder"),
    (["watch", __file__, "--first", __file__], "--first is for a folder"),
    (["watch", ".", "--seconds", "0"], "positive number"),
    (["watch", "127.0.0.1:8765", "--token", "short"], "--token must be 8 to 256 printable ASCII characters"),
    (["watch", "127.0.0.1:8765", "--token", "with a space"], "without spaces"),
    (["watch", ".", "--token", "a-good-token"], "--token is for HOST:PORT"),
    (["watch", ".", "--nice", "20"], "--nice: must be from 0 to 19, got 20"),
    (["watch", ".", "--nice", "low"], "not a whole number: 'low'"),
])
def test_watch_bad_arguments_are_one_line_and_exit_2(args, words):
    r = subprocess.run([sys.executable, "-m", "kerasqt", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr


VIEWED = textwrap.dedent("""
    import sys
    import keras, numpy as np
    from kerasqt import QtMonitor

    unlogged = QtMonitor(log_dir=None, viewer="process")  # no run log needed: the child reads the stream
    print("no log:", unlogged._recorder.server.address)

    class CloseViewer(keras.callbacks.Callback):  # the viewer ends mid-training: the training goes on
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                viewer = monitor._viewer.process
                print("first viewer", viewer.pid, flush=True)
                viewer.wait(60)  # it ends with its window (--seconds)
                print("first viewer ended:", viewer.returncode, flush=True)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((100 * 16, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    monitor = QtMonitor(log_dir=sys.argv[1], viewer="process")
    hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[monitor, CloseViewer()])
    model.fit(x[:160], y[:160], epochs=1, batch_size=16, verbose=0, callbacks=[monitor])
    print("second viewer", monitor._viewer.process.pid, flush=True)  # the first was closed: a new one
    print("epochs", len(hist.history["loss"]), "window", monitor.window)
    print("qt", sorted(m for m in sys.modules if m.split(".")[0] in ("qtpy", "PyQt5", "PyQt6", "PySide6")))
""")


def test_viewer_process_draws_in_a_child_that_follows_the_runs(tmp_path):
    script, folder, shot = tmp_path / "train.py", tmp_path / "runs", tmp_path / "viewer.png"
    script.write_text(VIEWED)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "KERASQT_VIEWER_ARGS": f"--seconds 3 --screenshot {shot}"}
    # The viewers write to the training's stdout: run() returns when the last of them has ended too.
    r = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "no log: 127.0.0.1:" in out
    first = int(out.split("first viewer ")[1].split()[0])
    second = int(out.split("second viewer ")[1].split()[0])
    assert "first viewer ended: 0" in out and first != second
    assert "epochs 3 window None" in out and "qt []" in out  # no window, no Qt in the training process
    runs = sorted(folder.glob("*.jsonl"))
    assert len(runs) == 2 and all(read_run(p).ended for p in runs)
    assert read_run(runs[0]).count(BatchEvent) == 300  # the viewer's end left the training whole
    # the first ended mid-run, with its window; the second outlived the training process, and showed its
    # run to the end; both read the monitor's stream, with its token (from their environment)
    watched = [line for line in out.splitlines() if line.startswith("watched ")]
    assert len(watched) == 2 and all(line.startswith("watched 1 run from 127.0.0.1:") for line in watched), out
    assert watched[0].endswith(", 0 shown to their end, with controls (a token)")
    assert watched[1].endswith(", 1 shown to their end, with controls (a token)")
    assert "watched" in out.split("qt []")[1]
    assert shot.stat().st_size > 20_000


BACKGROUND_VIEWED = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    from kerasqt import QtMonitor, fit_in_background

    rng = np.random.default_rng(0)
    x = rng.standard_normal((160, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    monitor = QtMonitor(log_dir=sys.argv[1], viewer="process")
    history = fit_in_background(model, x, y, epochs=2, batch_size=16, callbacks=[monitor]).wait(timeout=60)
    print("epochs", len(history.history["loss"]), "window", monitor.window)
    print("qt", sorted(m for m in sys.modules if m.split(".")[0] in ("qtpy", "PyQt5", "PyQt6", "PySide6")))
""")


def test_a_background_fit_with_a_viewer_process_opens_no_window_in_the_training_process(tmp_path):
    script, folder = tmp_path / "train.py", tmp_path / "runs"
    script.write_text(BACKGROUND_VIEWED)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "KERASQT_VIEWER_ARGS": "--seconds 1"}
    r = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "epochs 2 window None" in r.stdout and "qt []" in r.stdout
    (run,) = folder.glob("*.jsonl")
    assert read_run(run).ended and read_run(run).count(BatchEvent) == 20


SERVED = textwrap.dedent("""
    import sys, time
    import numpy as np
    import keras
    from kerasqt import QtMonitor

    class Slow(keras.callbacks.Callback):  # a run long enough to be joined late
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.01)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32 * 150, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    monitor = QtMonitor(log_dir=sys.argv[2], serve=sys.argv[1])
    print("ready", flush=True)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[monitor, Slow()])
    time.sleep(float(sys.argv[3]))  # viewers take the end before the process (and its server) goes
    print("trained", flush=True)
""")


def test_a_served_run_is_watched_over_the_network_joined_late(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    script, shot = tmp_path / "train.py", tmp_path / "net.png"
    script.write_text(SERVED)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    trainer = subprocess.Popen([sys.executable, str(script), address, str(tmp_path / "runs"), "6"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert trainer.stdout.readline().strip() == "ready"
        time.sleep(4)  # into the run: the viewer joins late
        r = subprocess.run([sys.executable, "-m", "kerasqt", "watch", address, "--screenshot", str(shot)],
                           capture_output=True, text=True, timeout=120, env=env)
        out, err = trainer.communicate(timeout=120)
    finally:
        trainer.kill()
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"serving the runs at {address}" in err
    assert f"watched 1 run from {address}, 1 shown to their end" in r.stdout, r.stdout
    assert shot.stat().st_size > 20_000


TOKEN = "watch-test-token-42"


class _Training:
    """The controls a served test training is handed (its server's thread)."""

    def __init__(self) -> None:
        self.asked: list = []

    def __call__(self, action, args):
        self.asked.append((action, args))
        return "training stops after this batch"


def _served(qtbot, token):
    """A server with one run going, and a stream watcher window with ``token``."""
    from kerasqt.net import RunServer
    from kerasqt.watch import watch_stream

    server = RunServer(token=TOKEN)
    server.on_control = _Training()
    server.begin_run({"kind": "training", "title": "served"})
    server.publish([StartEvent(T0, 2, 50, 32), *[_batch(s) for s in range(1, 21)]])
    watcher = watch_stream(server.address, token=token)
    qtbot.addWidget(watcher.window)
    qtbot.waitUntil(lambda: _batches(watcher) == 20, timeout=10000)
    return server, watcher


@pytest.mark.parametrize("token, enabled", [(TOKEN, True), ("a-wrong-token", True), (None, False)])
def test_the_stop_button_of_a_stream_window_controls_the_training_with_its_token(qtbot, token, enabled):
    from qtpy.QtCore import Qt

    server, watcher = _served(qtbot, token)
    win = watcher.window
    try:
        button = win.stop_training_button
        assert button.isEnabled() is enabled
        if token is None:
            assert "no control token: kerasqt watch" in button.toolTip()
            assert "without controls (no token)" in _control(watcher)
            assert watcher.source.current.no_control() in button.toolTip()
            return
        assert "with controls (its token given)" in _control(watcher)
        qtbot.mouseClick(button, Qt.LeftButton)
        words = "stop: training stops after this batch" if token == TOKEN else "stop refused: wrong control token"
        qtbot.waitUntil(lambda: words in _control(watcher), timeout=10000)
        assert sum(words in line for line in _control(watcher).splitlines()) == 1  # one line
        assert server.on_control.asked == ([("stop", {})] if token == TOKEN else [])
    finally:
        win.close()
        server.close()


SERVED_FOR_TOKEN = textwrap.dedent("""
    import sys, time
    from kerasqt.net import RunServer
    from kerasqt.events import StartEvent, EndEvent

    server = RunServer(token=sys.argv[1])
    server.on_control = lambda action, args: "taken"
    server.begin_run({"kind": "training", "title": "served"})
    server.publish([StartEvent(time.time(), 1, 5, 32)])
    print(server.address, flush=True)
    sys.stdin.readline()
    server.publish([EndEvent(0, time.time(), False)])
    time.sleep(1)
    server.close()
""")


def test_watch_takes_the_token_from_the_option_or_the_environment(tmp_path):
    trainer = subprocess.Popen([sys.executable, "-c", SERVED_FOR_TOKEN, TOKEN], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "KERASQT_TOKEN": ""}
    watchers = []
    try:
        address = trainer.stdout.readline().strip()
        for extra, more in ((["--token", TOKEN], {}), ([], {"KERASQT_TOKEN": TOKEN}), ([], {})):
            watchers.append(subprocess.Popen([sys.executable, "-m", "kerasqt", "watch", address, "--seconds", "4",
                                              *extra], env={**env, **more}, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True, cwd=tmp_path))
        bad_env = subprocess.run([sys.executable, "-m", "kerasqt", "watch", address], capture_output=True,
                                 text=True, timeout=60, env={**env, "KERASQT_TOKEN": "bad token"})
        outs = [w.communicate(timeout=120) for w in watchers]
        trainer.stdin.write("end\n")
        trainer.stdin.flush()
        trainer.wait(30)
    finally:
        for p in [trainer, *watchers]:
            if p.poll() is None:
                p.kill()
                p.wait()
    for w, (_, err) in zip(watchers, outs, strict=True):
        assert w.returncode == 0, err[-3000:]
    said = [out.strip().splitlines()[-1] for out, _ in outs]
    assert said[0] == said[1] == f"watched 1 run from {address}, 0 shown to their end, with controls (a token)"
    assert said[2] == f"watched 1 run from {address}, 0 shown to their end"
    assert bad_env.returncode == 2
    assert bad_env.stderr.strip() == ("kerasqt: error: $KERASQT_TOKEN must be 8 to 256 printable ASCII characters "
                                      "without spaces")
