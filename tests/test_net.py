"""The run stream over TCP: RunServer to NetSource, with sockets and threads only (no window)."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time

import pytest

from kerasqt import netsource
from kerasqt import server as server_module
from kerasqt.events import BatchEvent, BatchRows, EndEvent, EpochEvent, ErrorEvent, MessageEvent, StartEvent
from kerasqt.net import NetSource, RunServer, parse_address
from kerasqt.runlog import MAX_LINE, RunLogWriter, encode_lines, header_line, read_run
from kerasqt.source import RunSource
from kerasqt.steer import ControlError

HEADER = {"kind": "training", "title": "net test", "smoothing": 0.5}
START = StartEvent(1000.0, 2, 50, 32, 0, "run 1")


def batches(n: int, first: int = 1) -> list:
    return [BatchEvent(s, (s - 1) // 50, 1000.0 + s / 8, {"loss": 1.0 / s, "accuracy": s / 1e4}, (), 0.01)
            for s in range(first, first + n)]


def end(step: int) -> EndEvent:
    return EndEvent(step, 2000.0, False)


def wait_for(pred, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def take(run, timeout: float = 10.0) -> list:
    """The run's events up to its end or error."""
    out: list = []
    deadline = time.monotonic() + timeout
    while not out or not isinstance(out[-1], (EndEvent, ErrorEvent)):
        assert time.monotonic() < deadline, f"no end came; got {out[-3:]}"
        try:
            out.append(run.events.get(timeout=0.05))
        except Exception:
            pass
    return out


def data(events: list) -> list:
    return [ev for ev in events if not isinstance(ev, MessageEvent)]


def notes(events: list) -> list[str]:
    return [ev.text for ev in events if isinstance(ev, MessageEvent)]


class Viewer:
    """A NetSource and the runs it announced."""

    def __init__(self, address: str, **kwargs) -> None:
        self.runs: list = []
        self.source = NetSource(address, on_new_run=self.runs.append, retry=0.1, **kwargs)
        self.source.start()

    def run(self, i: int = 0, timeout: float = 5.0):
        wait_for(lambda: len(self.runs) > i, timeout)
        return self.runs[i]


@pytest.fixture
def server():
    srv = RunServer()
    yield srv
    srv.close()


@pytest.fixture
def viewers():
    made: list[Viewer] = []

    def make(address: str, **kwargs) -> Viewer:
        made.append(Viewer(address, **kwargs))
        return made[-1]

    yield make
    for v in made:
        v.source.close()


def test_parse_address():
    assert parse_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_address("gpu-box:0") == ("gpu-box", 0)
    assert parse_address(":9000") == ("127.0.0.1", 9000)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("8765", "host:", "host:port", "host:70000", "::1:80", "host:８０"):
        with pytest.raises(ValueError) as info:
            parse_address(bad)
        assert "\n" not in str(info.value)


def test_lines_are_the_run_logs_lines(tmp_path):
    events = [START, *batches(3), BatchRows([4, 5], [0, 0], [1.5, 1.625], {"loss": [0.25, float("nan")]}),
              EpochEvent(5, 0, 1.7, {"loss": 0.2}), MessageEvent("control", "hé"), end(5)]
    writer = RunLogWriter(tmp_path / "run.jsonl", HEADER)
    writer.write(events)
    written = (tmp_path / "run.jsonl").read_text().splitlines()
    assert json.loads(written[0]) == json.loads(header_line(HEADER))
    lines = encode_lines(events, now=0.0)
    assert [json.loads(x) for x in lines if '"message"' not in x] == \
        [json.loads(x) for x in written[1:] if '"message"' not in x]
    assert all(x.isascii() for x in lines)


def test_late_join_gets_the_whole_run(server, viewers):
    server.publish(batches(2))  # before any run: left out
    server.begin_run(HEADER)
    server.publish([START])
    server.publish(batches(60))
    server.publish(batches(40, 61))
    v = viewers(server.address)
    run = v.run()
    assert run.title == "net test" and run.smoothing == 0.5 and not run.can_stop()
    server.publish(batches(20, 101))
    server.publish([end(120)])
    assert data(take(run)) == [START, *batches(120), end(120)]
    assert run.run_over() and "2 epochs x 50 steps" in run.describe()
    assert v.source.events is run.events and v.source.title == "net test"


def test_two_viewers_get_every_line(server, viewers):
    a, b = viewers(server.address), viewers(server.address)
    wait_for(lambda: server.viewers == 2)
    server.begin_run(HEADER)
    events = [START, *batches(300), EpochEvent(50, 0, 1100.0, {"loss": 0.1}), end(300)]
    for i in range(0, len(events), 7):
        server.publish(events[i:i + 7])
    assert data(take(a.run())) == events
    assert data(take(b.run())) == events


def test_reconnect_catches_up_without_duplicates(server, viewers):
    server.begin_run(HEADER)
    first = [START, *batches(100)]
    server.publish(first)
    v = viewers(server.address)
    run = v.run()
    wait_for(lambda: run.next == len(first))
    server.drop_viewers()
    server.publish(batches(50, 101))
    wait_for(lambda: run.next == 151)  # it came back and caught up
    server.drop_viewers()
    server.publish([*batches(50, 151), end(200)])
    got = take(run)
    assert data(got) == [START, *batches(200), end(200)]
    assert len(v.runs) == 1 and run.next == 202
    assert sum("closed: retrying" in text for text in notes(got)) == 2  # once a drop


def test_history_bound_keeps_the_start_and_the_last_lines(viewers, caplog):
    srv = RunServer(keep_bytes=20_000)
    try:
        srv.begin_run(HEADER)
        srv.publish([MessageEvent("worker", "Epoch 1/2"), START])
        srv.publish(batches(1000))
        v = viewers(srv.address)
        run = v.run()
        wait_for(lambda: run.next == srv._first + len(srv._history))
        srv.drop_viewers()
        srv.publish(batches(500, 1001))  # past the bound while the viewer is away: a gap
        srv.publish([end(1500)])
        got = take(run)
    finally:
        srv.close()
    events = data(got)
    assert events[0] == START and events[-1] == end(1500)
    assert events[-2] == batches(1, 1500)[0]
    steps = [ev.step for ev in events[1:-1]]
    assert steps == sorted(set(steps)) and 100 < len(steps) < 1500  # the last ones, no duplicates
    texts = notes(got)
    assert any("first" in t and "lines are not sent" in t for t in texts)
    assert any("lines of the run were lost" in t for t in texts)


def test_stream_gone_mid_run_then_a_new_server(viewers):
    srv = RunServer()
    address = srv.address
    srv.begin_run(HEADER)
    srv.publish([START, *batches(10)])
    v = viewers(address, gone_after=0.3)
    run = v.run()
    wait_for(lambda: run.next == 11)
    srv.close()
    got = take(run)
    assert isinstance(got[-1], ErrorEvent) and got[-1].how == "cut short"
    assert "ended without the end of the run" in got[-1].message
    assert data(got)[:-1] == [START, *batches(10)]
    assert [t.split(" at ")[0] for t in notes(got)] == ["the training's stream", "no training stream"]  # once each
    time.sleep(0.3)  # a few retries against nothing
    srv = RunServer(address)
    try:
        srv.begin_run({**HEADER, "title": "second"})
        srv.publish([START, *batches(5), end(5)])
        second = v.run(1)
        got = take(second)
    finally:
        srv.close()
    assert second.title == "second" and data(got) == [START, *batches(5), end(5)]
    assert not any("no training stream" in t for t in notes(got))  # (said before)
    assert v.source.is_alive()


GOOD = [START, *batches(5), end(5)]


def _good(run_id: str = "good") -> bytes:
    head = header_line({**HEADER, "stream": {"run": run_id, "first": 0, "extra": 0}})
    return "\n".join([head, *encode_lines(GOOD)]).encode() + b"\n"


def _bad_field() -> bytes:
    head = header_line({**HEADER, "stream": {"run": "good", "first": 0, "extra": 0}})
    lines = encode_lines(GOOD[:3])
    bad = json.loads(lines[-1]) | {"step": "x"}
    return "\n".join([head, *lines[:-1], json.dumps(bad)]).encode() + b"\n"


BAD_PEERS = {
    "random bytes": (random.Random(1).randbytes(5000) + b"\n", "not a kerasqt run log"),
    "huge line": (b'{"type":"batch","values":"' + b"x" * (MAX_LINE + 10), "a line longer than 16 MiB"),
    "closed socket": (b"", "closed: retrying"),
    "invalid JSON": (_good()[:-1].split(b"\n")[0] + b"\n{not json\n", "not valid JSON"),
    "wrong field type": (_bad_field(), "field 'step': not a whole number"),
    "bad stream field": (header_line({**HEADER, "stream": {"run": 3}}).encode() + b"\n", "bad 'stream' field"),
    "a sine event in a training run": (_good()[:-1].split(b"\n")[0] + b'\n{"type":"sine","index":0,"periods":1,'
                                       b'"x":[],"y":[]}\n', "a sine event in a training run log"),
}


class FakeServer:
    """Sends one payload per connection and closes it, then the good stream (kept open). ``away``:
    seconds without a listener after the first connection (the server gone, then back)."""

    def __init__(self, payloads: list[bytes], good: bytes | None = None, away: float = 0.0, hold: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.payloads = [*payloads, good or _good()]
        self.away, self.hold = away, hold  # hold: the payloads' connections are left open, silent
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for n, payload in enumerate(self.payloads):
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                conn.sendall(payload)
            except OSError:
                pass
            if n < len(self.payloads) - 1 and not self.hold:
                conn.close()
            if n == 0 and self.away:
                self.listener.close()
                time.sleep(self.away)
                self.listener = socket.create_server(("127.0.0.1", self.port))

    def close(self) -> None:
        self.listener.close()
        for conn in self.conns:
            conn.close()
        self.thread.join(2)


@pytest.mark.parametrize("case", list(BAD_PEERS))
def test_a_bad_peer_gives_one_message_and_the_source_goes_on(viewers, case):
    payload, reason = BAD_PEERS[case]
    fake = FakeServer([payload, payload])  # twice: said once all the same
    try:
        v = viewers(fake.address)
        got = take(v.run())
        assert v.source.is_alive()
    finally:
        fake.close()
    assert data(got) == GOOD and len(v.runs) == 1
    said = [t for t in notes(got) if reason in t]
    assert len(said) == 1, notes(got)


def test_a_slow_viewer_is_dropped_and_never_blocks_publish(caplog):
    srv = RunServer(viewer_bytes=64 * 1024)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        slow.connect(parse_address(srv.address))
        wait_for(lambda: srv.viewers == 1)
        srv.begin_run(HEADER)
        line = MessageEvent("worker", "x" * 65536)
        with caplog.at_level(logging.WARNING, logger="kerasqt"):
            for _ in range(300):  # ~20 MB: more than the kernel's buffers take
                srv.publish([line])
            wait_for(lambda: srv.dropped == 1 and srv.viewers == 0)
        assert sum(len(x) for v in srv._viewers for x in v.pending) == 0
        assert "dropped: more than 65536 bytes of lines wait for it" in caplog.text
    finally:
        slow.close()
        srv.close()


def test_publish_cost(server, viewers, capsys):
    v = viewers(server.address)
    wait_for(lambda: server.viewers == 1)
    server.begin_run(HEADER)
    server.publish([START])
    events = batches(10_000)
    t0 = time.perf_counter()
    for ev in events:
        server.publish([ev])
    spent = time.perf_counter() - t0
    server.publish([end(10_000)])
    got = data(take(v.run()))
    assert got == [START, *events, end(10_000)]
    with capsys.disabled():
        print(f"\npublish: {spent / len(events) * 1e6:.1f} us per call (one batch event, one viewer)")


def test_a_stream_reads_as_a_run_log(server, viewers, tmp_path):
    """What a viewer receives, written to a file, is a run log (the stream field is one more header key)."""
    server.begin_run(HEADER)
    server.publish([START, *batches(3), end(3)])
    raw = socket.create_connection(parse_address(server.address))
    raw.settimeout(5)
    buf = b""
    while buf.count(b"\n") < 6:
        buf += raw.recv(65536)
    raw.close()
    (tmp_path / "got.jsonl").write_bytes(buf)
    assert read_run(tmp_path / "got.jsonl").events == [START, *batches(3), end(3)]


def test_a_new_run_ends_the_open_one(server, viewers):
    v = viewers(server.address)
    server.begin_run(HEADER)
    server.publish([START, *batches(5)])
    first = v.run()
    wait_for(lambda: first.next == 6)
    server.begin_run({**HEADER, "title": "next"})
    server.publish([START, *batches(3), end(3)])
    got = take(first)
    assert data(got) == [START, *batches(5), got[-1]] and got[-1].how == "cut short"
    assert "a new run began" in got[-1].message
    second = v.run(1)
    assert second.title == "next" and data(take(second)) == [START, *batches(3), end(3)]
    assert v.source.current is second and isinstance(v.source, RunSource) and isinstance(second, RunSource)
    assert v.source.title == "next" and v.source.run_over() and not v.source.can_stop()


def test_a_cut_run_that_comes_back_is_shown_anew(viewers):
    head = header_line({**HEADER, "stream": {"run": "r", "first": 0, "extra": 0}})
    part = "\n".join([head, *encode_lines([START, *batches(3)])]).encode() + b"\n"
    fake = FakeServer([part], good=_good("r"), away=0.8)
    try:
        v = viewers(fake.address, gone_after=0.2)
        got = take(v.run())
        again = take(v.run(1))
    finally:
        fake.close()
    assert data(got)[:-1] == [START, *batches(3)] and got[-1].how == "cut short"
    assert data(again) == GOOD and v.runs[1].id == v.runs[0].id == "r"


def test_heartbeats_keep_a_quiet_stream_and_silence_ends_one(server, viewers, monkeypatch):
    monkeypatch.setattr(server_module, "HEARTBEAT", 0.05)
    monkeypatch.setattr(netsource, "SILENCE", 0.5)
    server.begin_run(HEADER)
    server.publish([START])
    v = viewers(server.address)
    run = v.run()
    time.sleep(1.2)  # quiet training: blank lines only
    server.publish([end(0)])
    got = take(run)
    assert data(got) == [START, end(0)] and notes(got) == []
    head = header_line({**HEADER, "stream": {"run": "q", "first": 0, "extra": 0}}).encode() + b"\n"
    fake = FakeServer([head], good=_good("q"), hold=True)  # a header, then nothing (a peer that hung)
    try:
        w = viewers(fake.address)
        got = take(w.run())
    finally:
        fake.close()
    assert data(got) == GOOD and sum("nothing came for 0.5 s" in t for t in notes(got)) == 1


# -- controls back over the same connection --------------------------------------------------------
TOKEN = "test-token-0123456789"


class Training:
    """What a served training does with the controls it is handed (the server's thread)."""

    def __init__(self) -> None:
        self.asked: list = []
        self.going = True

    def __call__(self, action, args):
        from kerasqt.steer import ControlError

        if not self.going:
            raise ControlError(f"no run is going: control {action!r} refused (it is not kept for the next run)")
        self.asked.append((action, args))
        return "training stops after this batch" if action == "stop" else f"{action} at the next batch"


@pytest.fixture
def steered():
    srv = RunServer(token=TOKEN)
    srv.on_control = Training()
    yield srv
    srv.close()


def said(run, words: str, timeout: float = 5.0, into: list | None = None) -> str:
    """The first control-pane line of ``run`` holding ``words``, taken from its queue with what came
    before (added to ``into``)."""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"nothing said with {words!r}"
        try:
            ev = run.events.get(timeout=0.05)
        except Exception:
            continue
        if into is not None:
            into.append(ev)
        if isinstance(ev, MessageEvent) and words in ev.text:
            return ev.text


def raw_viewer(address: str) -> socket.socket:
    sock = socket.create_connection(parse_address(address), timeout=5)
    return sock


def answers(sock: socket.socket, n: int, timeout: float = 5.0) -> list[dict]:
    """The next ``n`` answer lines a raw connection gets (run lines skipped)."""
    buf, got = b"", []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"answers: got {got}"
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        assert data, f"closed after {got}"
        buf += data
        *lines, buf = buf.split(b"\n")
        got += [json.loads(x)["answer"] for x in lines if x.startswith(b'{"answer":')]
    return got


def test_a_control_with_the_token_is_taken_and_answered_to_the_asker_only(steered, viewers):
    steered.begin_run(HEADER)
    first = [START, *batches(30)]
    steered.publish(first)
    a, b = viewers(steered.address, token=TOKEN), viewers(steered.address)
    ra, rb = a.run(), b.run()
    wait_for(lambda: ra.next == rb.next == len(first))
    assert ra.can_stop() and not rb.can_stop()
    assert ra.control("stop") == f"sent stop to the training at {steered.address}"
    assert said(ra, "stop: ") == "stop: training stops after this batch"
    assert steered.on_control.asked == [("stop", {})]
    with pytest.raises(ControlError, match="no control token: kerasqt watch .* --token TOKEN") as info:
        rb.control("stop")
    assert "\n" not in str(info.value)
    assert ra.control("lr", {"factor": 0.5}).startswith("sent lr")
    assert said(ra, "lr: ") == "lr: lr at the next batch"
    assert steered.on_control.asked[-1] == ("lr", {"factor": 0.5})
    steered.drop_viewers()  # the answers counted as no line of the run: catch-up neither skips nor repeats
    steered.publish([*batches(20, 31), end(50)])
    rest_a, rest_b = take(ra), take(rb)
    assert [ev for ev in rest_a if not isinstance(ev, MessageEvent)] == [*batches(20, 31), end(50)]
    assert data(rest_b) == [*first, *batches(20, 31), end(50)]
    assert not any("training stops" in t or "lr at" in t for t in notes(rest_b))  # b never got a's answers
    assert ra.next == rb.next == 52


def test_refusals_are_one_line_answers(steered, viewers, caplog):
    steered.begin_run(HEADER)
    steered.publish([START, *batches(5)])
    wrong = viewers(steered.address, token="not-the-token")
    run = wrong.run()
    wait_for(lambda: run.next == 6)
    assert run.can_stop()  # (its token is only judged by the training)
    run.stop()
    assert said(run, "refused") == "stop refused: wrong control token"
    with pytest.raises(ControlError, match="refused this viewer's token"):
        run.control("stop")  # not sent again: the server drops a viewer after three
    sock = raw_viewer(steered.address)
    try:
        lines = [{"control": "stop", "id": 1}, {"control": "stop", "token": TOKEN, "args": {"now": True}, "id": 2},
                 {"control": "lr", "args": {}, "token": TOKEN, "id": 3}, {"control": "fly", "token": TOKEN}]
        sock.sendall(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
        got = answers(sock, 4)
        steered.on_control.going = False  # the run ended: controls are refused, not kept
        sock.sendall(json.dumps({"control": "save", "token": TOKEN, "id": 5}).encode() + b"\n")
        got += answers(sock, 1)
    finally:
        sock.close()
    assert [(x["id"], x["ok"], x["token"]) for x in got] == [(1, False, False), (2, False, True), (3, False, True),
                                                             (None, False, True), (5, False, True)]
    assert got[0]["text"] == "stop refused: no control token"
    assert got[1]["text"] == "stop refused: control 'stop' takes no now"
    assert got[2]["text"] == "lr refused: lr: give either a new value or a factor"
    assert got[3]["text"].startswith("control refused: unknown control 'fly'") and got[3]["control"] is None
    assert got[4]["text"].startswith("save refused: no run is going")
    assert all("\n" not in x["text"] for x in got)
    assert steered.on_control.asked == [] and steered.dropped == 0


def test_a_training_without_controls_says_so(server, viewers):
    server.begin_run(HEADER)
    server.publish([START])
    run = viewers(server.address, token=TOKEN).run()
    assert not run.can_stop() and "takes no controls" in run.no_control()
    with pytest.raises(ControlError, match="stop not sent: the training at .* takes no controls"):
        run.control("stop")


def _flood(n: int) -> bytes:
    return b"".join(json.dumps({"control": "stop", "token": f"wrong-token-{i}"}).encode() + b"\n" for i in range(n))


HOSTILE = {
    "random bytes": (random.Random(2).randbytes(3000) + b"\n", "it sent what is no control line (not JSON)"),
    "a huge line": (b'{"control":"stop","token":"' + b"x" * 100_000, "a line longer than 4096 bytes"),
    "not an object": (b"[1, 2, 3]\n", "no control line (not a control (a JSON object with 'control'))"),
    "not UTF-8": (b'{"control":"\xff\xfe"}\n', "no control line (not JSON)"),
    "many wrong tokens": (_flood(50), "3 controls refused for their token"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_upstream_input_drops_that_viewer_and_the_rest_goes_on(steered, viewers, caplog, case):
    payload, why = HOSTILE[case]
    steered.begin_run(HEADER)
    steered.publish([START, *batches(10)])
    good = viewers(steered.address, token=TOKEN)
    run = good.run()
    wait_for(lambda: steered.viewers == 1 and run.next == 11)
    bad = raw_viewer(steered.address)
    with caplog.at_level(logging.INFO, logger="kerasqt"):
        try:
            wait_for(lambda: steered.viewers == 2)
            try:
                bad.sendall(payload)
            except OSError:
                pass  # (dropped while it sent)
            wait_for(lambda: steered.dropped == 1 and steered.viewers == 1)
            for step in range(11, 211):  # the training goes on: publish never waits
                steered.publish(batches(1, step))
            assert run.control("stop").startswith("sent stop")
            got: list = []
            assert said(run, "stop: ", into=got) == "stop: training stops after this batch"
            steered.publish([end(210)])
            got += take(run)
        finally:
            bad.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and why in warnings[0].getMessage(), [r.getMessage() for r in warnings]
    assert data(got) == [START, *batches(210), end(210)]
    assert steered.on_control.asked == [("stop", {})] and steered.is_alive()
    assert all(len(v.inbox) <= 4096 for v in steered._viewers)


def test_more_than_ten_controls_a_second_are_refused(steered):
    steered.begin_run(HEADER)
    sock = raw_viewer(steered.address)
    try:
        sock.sendall(b"".join(json.dumps({"control": "save", "token": TOKEN, "id": i}).encode() + b"\n"
                              for i in range(12)))
        got = answers(sock, 12)
    finally:
        sock.close()
    assert [x["ok"] for x in got] == [True] * 10 + [False] * 2
    assert got[-1]["text"] == "save refused: more than 10 controls a second"
    assert len(steered.on_control.asked) == 10 and steered.dropped == 0


def test_a_control_without_an_answer_is_said(viewers, monkeypatch):
    """A server that takes no control lines (one that hung, say): no answer in ANSWER_WAIT s is said, and a
    control in flight when the connection ends too."""
    monkeypatch.setattr(netsource, "ANSWER_WAIT", 0.3)
    head = header_line({**HEADER, "stream": {"run": "h", "first": 0, "extra": 0, "control": True}})
    part = "\n".join([head, *encode_lines([START, *batches(3)])]).encode() + b"\n"
    fake = FakeServer([part], good=_good("h"), hold=True)
    try:
        v = viewers(fake.address, token=TOKEN)
        run = v.run()
        wait_for(lambda: run.next == 4)
        run.control("stop")
        assert said(run, "no answer") == f"stop: no answer from the training at {fake.address} in 0.3 s"
        run.control("save")
        time.sleep(0.15)
        fake.conns[0].close()  # the connection ends before the answer
        assert said(run, "no answer,") == "save: no answer, the connection to the training ended first (ask again)"
    finally:
        fake.close()
