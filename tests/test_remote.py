"""Controls from viewers over the run's own connection, with real Keras fits: a served training
stopped by a viewer with its token (and not without it), and ``QtMonitor(viewer="process")``'s
child reaching the training over loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from kerasqt.events import BatchEvent, ControlEvent, EndEvent, MessageEvent
from kerasqt.net import NetSource, parse_address
from kerasqt.runlog import read_run
from kerasqt.steer import ControlError


def _end(log) -> type:
    """The type of a run log's last event (its end: EndEvent, or ErrorEvent)."""
    return type(log.events[-1])


def wait_for(pred, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Watch:
    """A NetSource, the runs it announced, and every control-pane line it gave (run queues and notes)."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.runs: list = []
        self.notes: list[str] = []
        self.source = NetSource(address, token=token, on_new_run=self.runs.append, on_note=self.notes.append,
                                retry=0.1)
        self.source.start()

    def run(self, i: int, timeout: float = 60.0):
        wait_for(lambda: len(self.runs) > i, timeout)
        return self.runs[i]

    def said(self, words: str, timeout: float = 10.0) -> str:
        """The first line holding ``words`` (run queues are drained into :attr:`notes`)."""
        deadline = time.monotonic() + timeout
        while True:
            for run in self.runs:
                while not run.events.empty():
                    ev = run.events.get()
                    if isinstance(ev, MessageEvent):
                        self.notes.append(ev.text)
            hit = [t for t in self.notes if words in t]
            if hit:
                return hit[0]
            assert time.monotonic() < deadline, f"nothing said with {words!r}: {self.notes}"
            time.sleep(0.02)


SERVED = textwrap.dedent("""
    import sys, time
    import numpy as np
    import keras
    from kerasqt import QtMonitor

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.01)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((160, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    monitor = QtMonitor(log_dir=sys.argv[1], serve="127.0.0.1:0")
    for epochs in (int(sys.argv[2]), 200):  # the first: refused controls only; the second: stopped
        input()  # the test is ready
        hist = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[monitor, Slow()])
        print("epochs", len(hist.history["loss"]), flush=True)
    input()  # the test has asked after the run's end
""")


def _token_line(trainer) -> tuple[str, str]:
    """The address and token the training printed on stderr."""
    lines = []
    while True:
        line = trainer.stderr.readline()
        assert line, f"no token line: {lines}"
        lines.append(line)
        if line.startswith("kerasqt: control token "):
            break
    address = next(x for x in lines if "serving the runs at" in x).split("kerasqt watch ")[-1].strip()
    token = line.split("--token ")[-1].strip()
    assert line.strip() == (f"kerasqt: control token {token}: to watch with controls,  "
                            f"kerasqt watch {address} --token {token}")
    return address, token


def test_a_served_fit_is_stopped_by_the_viewer_with_the_token_and_by_no_other(tmp_path):
    folder = tmp_path / "runs"
    env = {**os.environ, "KERASQT_TOKEN": ""}
    trainer = subprocess.Popen([sys.executable, "-c", SERVED, str(folder), "6"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watches: list[Watch] = []
    try:
        address, token = _token_line(trainer)
        right, wrong, none = Watch(address, token), Watch(address, "a-wrong-token"), Watch(address)
        watches += [right, wrong, none]
        trainer.stdin.write("go\n")
        trainer.stdin.flush()
        run = wrong.run(0)
        wait_for(lambda: run.next > 20)
        run.stop()  # refused: the wrong token
        assert wrong.said("refused") == "stop refused: wrong control token"
        with pytest.raises(ControlError, match="stop not sent: this viewer has no control token"):
            none.run(0).control("stop")
        with socket.create_connection(parse_address(address), timeout=10) as raw:  # no token at all
            raw.sendall(b'{"control": "stop", "id": 7}\n')
            buf = b""
            while b'{"answer":' not in buf or not buf.endswith(b"\n"):
                buf += raw.recv(65536)
        answer = json.loads(buf[buf.index(b'{"answer":'):].split(b"\n")[0])["answer"]
        assert answer == {"id": 7, "control": "stop", "ok": False, "text": "stop refused: no control token",
                          "token": False}
        assert trainer.stdout.readline().strip() == "epochs 6"  # all its epochs: nothing stopped it
        trainer.stdin.write("go\n")
        trainer.stdin.flush()
        second = right.run(1)
        wait_for(lambda: second.next > 30)
        assert second.control("stop") == f"sent stop to the training at {address}"
        assert right.said("stop: ") == "stop: training stops after this batch"
        epochs = int(trainer.stdout.readline().split()[1])
        assert epochs < 200
        wait_for(lambda: second.ended)
        with pytest.raises(ControlError, match="this run is over"):
            second.control("stop")  # (the viewer knows)
        right.source.send_control("stop")  # the training says so too
        assert right.said("refused: no run is going").startswith("stop refused: no run is going")
        assert not any("refused" in t for t in none.notes)  # answers go to the asker only
        trainer.stdin.write("done\n")
        trainer.stdin.flush()
        out, err = trainer.communicate(timeout=60)
    finally:
        for w in watches:
            w.source.close()
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
    assert trainer.returncode == 0, err[-3000:]
    first, last = (read_run(p) for p in sorted(folder.glob("*.jsonl")))
    assert _end(first) == EndEvent and not first.events[-1].stopped and first.count(BatchEvent) == 60
    assert not any(isinstance(ev, ControlEvent) for ev in first.events)
    assert _end(last) == EndEvent and last.events[-1].stopped and last.count(BatchEvent) < 2000
    controls = [ev for ev in last.events if isinstance(ev, ControlEvent)]
    assert [(c.action, c.ok) for c in controls] == [("stop", True)]
    assert "viewer" not in err or "dropped" not in err  # nobody was dropped: refusals are answers


class _Child:
    """What ``subprocess.Popen`` was asked to start: a viewer that never runs (its process is the test)."""

    launched: list = []

    def __init__(self, args, **kwargs) -> None:
        self.args, self.env, self.pid = args, kwargs.get("env") or {}, 4242
        _Child.launched.append(self)

    def poll(self):
        return None


def test_the_viewer_process_reaches_the_training_over_loopback_and_stops_it(tmp_path, monkeypatch):
    import keras
    import numpy as np

    from kerasqt import QtMonitor

    monkeypatch.setattr("kerasqt.viewer.subprocess.Popen", _Child)
    monkeypatch.setenv("KERASQT_TOKEN", "the-users-token-not-this-one")
    _Child.launched.clear()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((160, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    monitor = QtMonitor(log_dir=tmp_path, viewer="process")
    server = monitor._recorder.server
    watch: list[Watch] = []
    stopped = threading.Event()

    def viewer() -> None:  # what the child does: read the stream with its address and token, press Stop
        wait_for(lambda: _Child.launched)
        child = _Child.launched[0]
        watch.append(Watch(child.args[4], child.env["KERASQT_TOKEN"]))
        run = watch[0].run(0)
        wait_for(lambda: run.next > 30)
        assert run.can_stop()
        run.stop()
        stopped.set()

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.01)

    helper = threading.Thread(target=viewer, daemon=True)
    helper.start()
    try:
        hist = model.fit(x, y, epochs=200, batch_size=16, verbose=0, callbacks=[monitor, Slow()])
        assert stopped.is_set()
        assert watch[0].said("stop: ") == "stop: training stops after this batch"
    finally:
        helper.join(30)
        for w in watch:
            w.source.close()
        server.close()
    assert len(hist.history["loss"]) < 200
    (child,) = _Child.launched
    assert child.args[1:4] == ["-m", "kerasqt", "watch"] and child.args[4] == server.address
    assert server.address.startswith("127.0.0.1:") and not server.address.endswith(":0")
    token = child.env["KERASQT_TOKEN"]
    assert token == server.token != "the-users-token-not-this-one" and len(token) >= 16
    assert token not in " ".join(child.args)  # never on the command line
    log = read_run(monitor.log_path)
    assert _end(log) == EndEvent and log.events[-1].stopped
    assert [(c.action, c.ok) for c in log.events if isinstance(c, ControlEvent)] == [("stop", True)]
