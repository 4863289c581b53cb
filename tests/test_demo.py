"""The sine demo: worker and receiver without a window, then the whole window through its buttons."""

from __future__ import annotations

import queue

import matplotlib.lines
import pytest
from qtpy.QtCore import Qt

from kerasqt.demo import DemoSettings, SineReceiver, SineRefiner, SineWorker, sine_curve
from kerasqt.events import SineEvent
from kerasqt.session import end_thread, live_threads, start_in_thread


def test_sine_curve_spans_k_pi_in_steps_of_a_tenth():
    x, y = sine_curve(3)
    assert x[0] == 0 and x[-1] == pytest.approx(9.4, abs=0.05) and len(x) == 95
    assert abs(y).max() <= 1


def test_worker_makes_growing_curves_in_its_own_thread(qtbot):
    events = queue.SimpleQueue()
    worker = SineWorker(events, iterations=6, interval=0.005, batch_size=3)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        thread = start_in_thread(worker, "kerasqt-test-worker")
    assert end_thread(worker, thread)
    got = [events.get() for _ in range(6)]
    assert [e.periods for e in got] == [1, 2, 3, 4, 5, 6]
    assert all(isinstance(e, SineEvent) for e in got) and events.empty()


def test_receiver_colours_curves_and_stops_after_its_iterations(qtbot):
    events = queue.SimpleQueue()
    refiner = SineRefiner(batch_size=2, seed=0)
    receiver = SineReceiver(events, refiner, interval=0.005, iterations=6,
                            on_iteration=lambda i: refiner.next_iteration())
    updates = []
    receiver.updated.connect(updates.append)
    for i in range(4):
        x, y = sine_curve(i + 1)
        events.put(SineEvent(i, i + 1, x, y))
    with qtbot.waitSignal(receiver.finished, timeout=5000):
        thread = start_in_thread(receiver, "kerasqt-test-receiver")
    assert end_thread(receiver, thread)
    qtbot.waitUntil(lambda: len(updates) >= 1, timeout=2000)
    curves = [c for u in updates for c in u.curves]
    assert [c.periods for c in curves] == [1, 2, 3, 4]
    assert receiver.iteration == 6 and refiner.batch == 3


def test_a_stopped_demo_receiver_ends_without_another_iteration_and_delivers_what_is_queued(qtbot):
    events = queue.SimpleQueue()
    refiner = SineRefiner(batch_size=2, seed=0)
    seen = []
    receiver = SineReceiver(events, refiner, interval=30.0, on_iteration=seen.append)  # naps 30 s after a curve
    updates = []
    receiver.updated.connect(updates.append)
    for i in range(2):
        x, y = sine_curve(i + 1)
        events.put(SineEvent(i, i + 1, x, y))
        if i == 0:
            thread = start_in_thread(receiver, "kerasqt-test-receiver")
            qtbot.waitUntil(lambda: len(updates) == 1, timeout=5000)  # the first curve, then a long nap
    with qtbot.waitSignal(receiver.finished, timeout=5000):
        receiver.stop()
    assert end_thread(receiver, thread)
    qtbot.waitUntil(lambda: len(updates) == 2, timeout=2000)
    assert seen == [1] and receiver.iteration == 1
    assert [c.periods for u in updates for c in u.curves] == [1, 2]


def test_a_stopped_worker_ends_at_once(qtbot):
    events = queue.SimpleQueue()
    worker = SineWorker(events, iterations=5, interval=30.0)  # it would nap 30 s after its first curve
    thread = start_in_thread(worker, "kerasqt-test-worker")
    qtbot.waitUntil(lambda: not events.empty(), timeout=5000)
    with qtbot.waitSignal(worker.finished, timeout=2000):
        worker.stop()
    assert end_thread(worker, thread) and worker.made == 1


def test_the_demo_names_stay_importable_where_they_were():
    import kerasqt.demo
    from kerasqt.refine import SineCurve, SineUpdate
    from kerasqt.session import DemoSession

    assert (DemoSession, SineCurve, SineUpdate) == (kerasqt.demo.DemoSession, kerasqt.demo.SineCurve,
                                                    kerasqt.demo.SineUpdate)


def test_demo_settings_reject_bad_values():
    with pytest.raises(ValueError, match="worker_interval"):
        DemoSettings(worker_interval=-1)
    with pytest.raises(ValueError, match="batch_size"):
        DemoSettings(batch_size=0)


def _lines(window):
    return [a for ax in window.figure.axes for a in ax.get_children() if isinstance(a, matplotlib.lines.Line2D)]


def test_demo_through_its_buttons(qtbot, window):
    line = window.plot.line
    assert window.status.text() == "press start threads to run the demo"  # nothing ran, nothing stopped
    assert not window.progress.isVisibleTo(window) and not window.progress_label.isVisibleTo(window)  # no row
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    assert window.demo.running and not window.start_button.isEnabled()
    qtbot.waitUntil(lambda: window.plot.curves >= 3, timeout=5000)
    assert len(line.get_xdata()) > 10 and line in _lines(window)  # redrawn in place
    qtbot.waitUntil(lambda: "receiver:" in window.pane_text("receiver"), timeout=5000)
    assert "started worker" in window.pane_text("control")
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    assert not window.demo.running and not live_threads()
    assert "threads stopped" in window.pane_text("control") and window.status.text() == "demo stopped"
    assert "worker:" in window.pane_text("worker")
    # start again after a stop
    before = window.plot.curves
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.plot.curves > before, timeout=5000)
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    assert not live_threads()


def test_the_receiver_pane_and_the_title_count_colour_batches_alike(qtbot, window):
    window.demo.settings = DemoSettings(worker_iterations=1000, worker_interval=0.01, receiver_iterations=1000,
                                        receiver_interval=0.01, batch_size=2)
    window.start_threads()

    def title_batch():
        window.draw_now()
        title = window.plot.ax.get_title()  # "curve N: ... receiver batch K, colour #..."
        return title.split("receiver ")[1] if "receiver batch" in title else "batch 1,"

    qtbot.waitUntil(lambda: int(title_batch().split()[1].rstrip(",")) >= 3, timeout=5000)
    window.stop_threads()
    said = title_batch().replace(",", " begins,", 1)  # "batch K begins, colour #..."
    qtbot.waitUntil(lambda: said in window.pane_text("receiver"), timeout=3000)  # printed lines come queued


def test_receiver_end_stops_the_worker(qtbot, window):
    window.demo.settings = DemoSettings(worker_iterations=1000, worker_interval=0.01, receiver_iterations=5,
                                        receiver_interval=0.01)
    with qtbot.waitSignal(window.demo.running_changed, timeout=5000, check_params_cb=lambda r: not r):
        window.start_threads()
    assert not live_threads()
    assert "stopping the worker too" in window.pane_text("control")


def test_worker_prints_go_to_the_pane_not_the_terminal(qtbot, window, capsys):
    window.start_threads()
    qtbot.waitUntil(lambda: "worker: batch 1" in window.pane_text("worker"), timeout=5000)
    window.stop_threads()
    out = capsys.readouterr()
    assert "worker:" not in out.out and "receiver:" not in out.out


def test_twenty_starts_and_stops_leave_no_threads_and_no_artist_growth(qtbot, window):
    window.demo.settings = DemoSettings(worker_iterations=3, worker_interval=0.005, receiver_iterations=4,
                                        receiver_interval=0.005)
    counts = []
    for _ in range(20):
        window.start_threads()
        qtbot.wait(15)
        window.stop_threads()
        assert not live_threads()
        qtbot.wait(5)
        window.draw_now()
        counts.append(window.plot.artist_count())
    assert len(set(counts)) == 1, counts
    assert window.demo.runs == 20


def test_closing_the_window_while_threads_run_stops_them(qtbot, window):
    window.demo.settings = DemoSettings(worker_iterations=1000, worker_interval=0.01, receiver_iterations=1000,
                                        receiver_interval=0.01)
    window.start_threads()
    qtbot.waitUntil(lambda: window.plot.curves >= 1, timeout=5000)
    window.close()
    assert window.is_closed and not live_threads()
