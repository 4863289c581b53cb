"""Pure parts, no Qt and no Keras: history tables, decimation, refining, capture."""

from __future__ import annotations

import io
import math
import queue
import sys
import threading

import numpy as np
import pytest

from kerasqt.capture import OutputCapture
from kerasqt.decimate import Decimator, minmax_decimate
from kerasqt.events import (
    BatchEvent,
    BatchRows,
    EndEvent,
    EpochEvent,
    ErrorEvent,
    MessageEvent,
    SineEvent,
    StartEvent,
    drain,
)
from kerasqt.history import BatchTable, EpochTable, group_of, metric_groups
from kerasqt.refine import SineRefiner, TrainingRefiner


def test_groups_pair_train_val_and_test():
    assert group_of("val_loss") == "loss" and group_of("test_accuracy") == "accuracy"
    assert metric_groups(["loss", "accuracy", "val_loss", "val_accuracy", "lr"]) == {
        "loss": ["loss", "val_loss"], "accuracy": ["accuracy", "val_accuracy"], "lr": ["lr"]}


def test_batch_table_grows_by_doubling_and_backfills_new_metrics():
    t = BatchTable()
    for start in range(0, 5000, 100):
        steps = np.arange(start + 1, start + 101)
        vals = {"loss": np.ones(100, np.float32)}
        if start >= 2500:
            vals["acc"] = np.full(100, 0.5, np.float32)
        t.extend(steps, vals, vals)
    assert len(t) == 5000 and t.steps[-1] == 5000
    assert t._steps.size == 8192  # 1024 doubled three times
    acc = t.column("acc")
    assert np.isnan(acc[:2500]).all() and (acc[2500:] == 0.5).all()
    assert t.metrics() == ["loss", "acc"]


def test_batch_table_merges_late_rows_in_step_order():
    t = BatchTable()
    t.extend(np.array([1, 2, 3, 5]), {"loss": np.array([1, 2, 3, 5], np.float32)}, {})
    first = t.extend(np.array([4, 6]), {"loss": np.array([4, 6], np.float32)}, {})
    assert first == 3
    assert t.steps.tolist() == [1, 2, 3, 4, 5, 6]
    assert t.column("loss").tolist() == [1, 2, 3, 4, 5, 6]


def test_epoch_table_keeps_epochs_and_values():
    t = EpochTable()
    t.add(10, 0, {"loss": 1.0, "val_loss": 1.5})
    t.add(20, 1, {"loss": 0.5})
    assert t.epochs == [0, 1] and t.steps.tolist() == [10, 20]
    assert np.isnan(t.column("val_loss")[1])


def test_history_memory_for_a_million_batches_of_four_metrics():
    t = BatchTable()
    n, chunk = 1_000_000, 50_000
    for start in range(0, n, chunk):
        vals = {k: np.random.rand(chunk).astype(np.float32) for k in ("loss", "acc", "mae", "lr")}
        t.extend(np.arange(start + 1, start + chunk + 1), vals, vals)
    assert len(t) == n
    assert t.nbytes <= 64 * 2**20, t.nbytes / 2**20


def _noisy(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(1, n + 1)
    y = (np.exp(-x / (n / 4)) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    return x, y


def test_decimation_keeps_spikes_and_gaps():
    x, y = _noisy(200_000)
    y[123_456] = 40.0
    y[50_000:50_400] = np.nan
    xd, yd = minmax_decimate(x, y, 0, 200_000, 500)
    assert len(xd) <= 2 * 502 + 2  # two points per column, plus NaN breaks
    assert np.nanmax(yd) == 40.0  # the spike survives
    assert np.nanmin(yd) == pytest.approx(float(np.nanmin(y)))
    column = (xd >= 50_000) & (xd <= 50_400)
    assert column.any() and np.isnan(yd[column]).any()  # the gap survives
    assert np.all(np.diff(xd) >= 0)


def test_decimated_lines_end_at_the_newest_point():
    x = np.arange(1, 10_001)
    y = np.float32(1.0) + np.zeros(10_000, np.float32)  # ties everywhere: min and max are each column's first
    y[-1] = 0.5  # and a last value that is a column's min: kept once, not twice
    for n in (9_999, 10_000):
        dec = Decimator()
        for m in (5_000, n):  # incrementally, as while training
            xd, yd = dec.decimate(x[:m], y[:m], 0, 16_384, 300)
            assert xd[-1] == m and yd[-1] == y[m - 1] and (xd == m).sum() == 1 and np.all(np.diff(xd) >= 0)


def test_decimation_returns_real_points_when_zoomed_in():
    x, y = _noisy(100_000)
    xd, yd = minmax_decimate(x, y, 1000, 1200, 800)
    assert np.array_equal(xd, x[998:1201])  # one point beyond each edge, all real
    assert np.array_equal(yd, y[998:1201].astype(float))


def test_incremental_decimation_equals_full_recompute():
    x, y = _noisy(300_000, seed=3)
    dec = Decimator()
    for n in (1_000, 50_000, 50_001, 120_000, 299_999, 300_000):
        got = dec.decimate(x[:n], y[:n], 0, 300_000, 640)
        want = minmax_decimate(x[:n], y[:n], 0, 300_000, 640)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1], equal_nan=True), n


def test_incremental_decimation_resumes_at_the_column_the_points_are_in():
    # x0 + column * width rounds differently from floor((x - x0) / width): the column left
    # open by the first call starts a point earlier than a search by its edge finds, and a
    # spike there was left out of the column for good (the second call found no 100).
    x = np.arange(1, 506_001)
    y = np.zeros(len(x), np.float32)
    y[x == 505_917] = 100.0
    view = (0.0, 618_343.0, 528)
    for first in (505_920, 505_917, 505_918):
        dec = Decimator()
        dec.decimate(x[:first], y[:first], *view)
        got = dec.decimate(x[:506_000], y[:506_000], *view)
        want = minmax_decimate(x[:506_000], y[:506_000], *view)
        assert got[1].max() == 100.0 and np.array_equal(got[0], want[0]), first
        assert np.array_equal(got[1], want[1], equal_nan=True), first


def test_incremental_decimation_equals_full_recompute_at_any_split():
    # Views whose column edges fall between integer steps, and splits anywhere, the first
    # column included (its point left of x0 was given twice when that column was the open one).
    rng = np.random.default_rng(7)
    for _ in range(150):
        n = int(rng.integers(200, 20_000))
        x = np.arange(1, n + 1) + int(rng.integers(0, 50))
        y = rng.standard_normal(n).astype(np.float32)
        x0 = float(rng.uniform(0, x[n // 8]))
        view = (x0, x0 + float(rng.uniform(n * 0.5, n * 1.5)), int(rng.integers(50, 700)))
        dec = Decimator()
        for m in sorted(int(v) for v in rng.integers(2, n + 1, size=4)) + [n]:
            got = dec.decimate(x[:m], y[:m], *view)
            want = minmax_decimate(x[:m], y[:m], *view)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1], equal_nan=True), (view, m)


def _batch(step, loss, epoch=0, t=None, **kw):
    return BatchEvent(step, epoch, t if t is not None else 100 + step * 0.01, {"loss": loss}, **kw)


def test_refiner_orders_smooths_and_flags():
    warnings = []
    r = TrainingRefiner(smoothing=0.5, note=warnings.append)
    start = StartEvent(100.0, epochs=2, steps=4, batch_size=8)
    u = r.refine([start, _batch(2, 2.0), _batch(1, 4.0), _batch(3, math.nan), _batch(4, math.inf)])
    assert u.start is start
    assert u.batches.steps.tolist() == [1, 2, 3, 4]
    assert u.batches.values["loss"][:2].tolist() == [4.0, 2.0]
    assert u.batches.smoothed["loss"].tolist() == [4.0, 3.0, 3.0, 3.0]  # NaN/inf do not move the average
    assert u.nonfinite == {"loss"}
    assert len([w for w in warnings if "loss" in w]) == 1  # once per key, not per value
    assert u.counts["nonfinite"] == 2
    p = u.progress
    assert p.epochs == 2 and p.step_in_epoch == 4 and p.steps_per_s == pytest.approx(100.0)
    assert p.samples_per_s == pytest.approx(800.0)
    assert p.eta_s == pytest.approx(0.04)


def test_refiner_pairs_epochs_and_warns_once_for_bad_keys():
    warnings = []
    r = TrainingRefiner(note=warnings.append)
    r.refine([StartEvent(0.0, 3, 2)])
    ev = EpochEvent(2, 0, 1.0, {"loss": 1.0, "val_loss": 1.2}, bad=("text",))
    u = r.refine([_batch(1, 1.0, bad=("text",)), _batch(2, 1.0), ev])
    u2 = r.refine([EpochEvent(4, 1, 2.0, {"loss": 0.9, "val_loss": 1.1}, bad=("text",)), EndEvent(4, 2.0)])
    assert u.epochs == (ev,) and u2.end is not None and r.ended
    assert sum("text" in w for w in warnings) == 1
    assert u2.counts == {"batches": 2, "epochs": 2, "tests": 0, "nonfinite": 0}


def test_refiner_rejects_bad_smoothing():
    with pytest.raises(ValueError, match="smoothing"):
        TrainingRefiner(smoothing=1.0)


def test_sine_refiner_changes_colour_every_batch():
    r = SineRefiner(batch_size=3, seed=0)
    colours = []
    for _ in range(9):
        r.next_iteration()
        colours.append(r.color)
    assert len(set(colours[0:2])) == 1 and colours[2] != colours[1]  # changes at iteration 3, 6, 9
    x = np.arange(3.0)
    u = r.refine([SineEvent(0, 1, x, np.sin(x)), MessageEvent("worker", "hi")])
    assert len(u.curves) == 1 and u.curves[0].color == r.color
    with pytest.raises(ValueError):
        SineRefiner(batch_size=0)


def test_capture_routes_background_prints_and_keeps_main_thread_output():
    q = queue.SimpleQueue()
    out = io.StringIO()
    saved = sys.stdout
    sys.stdout = out
    try:
        with OutputCapture(q) as cap:
            def work():
                print("from the worker")
                print("partial", end="")
                sys.stdout.flush()
            t = threading.Thread(target=work)
            t.start()
            t.join()
            cap.set_source(threading.get_ident(), "receiver")
            print("from the main thread")
        assert sys.stdout is out  # restored
    finally:
        sys.stdout = saved
    got = []
    while not q.empty():
        got.append(q.get())
    assert [m.text for m in got] == ["from the worker", "partial"]
    assert all(m.source == "worker" for m in got)
    assert out.getvalue() == "from the main thread\n"


def test_capture_of_main_thread_follows_the_predicate():
    q = queue.SimpleQueue()
    inside = [True]
    out = io.StringIO()
    saved, sys.stdout = sys.stdout, out
    try:
        with OutputCapture(q, include_main=lambda: inside[0]):
            print("during fit")
            inside[0] = False
            print("after fit")
    finally:
        sys.stdout = saved
    assert q.get().text == "during fit" and q.empty()
    assert out.getvalue() == "after fit\n"


def test_progress_counts_steps_within_the_epoch_even_when_totals_are_unknown():
    r = TrainingRefiner()
    r.refine([StartEvent(0.0, epochs=None, steps=None)])
    r.refine([_batch(s, 1.0, epoch=0) for s in range(1, 8)] + [EpochEvent(7, 0, 0.2, {"loss": 1.0})])
    p = r.refine([_batch(8, 1.0, epoch=1), _batch(9, 1.0, epoch=1)]).progress
    assert (p.epoch, p.step_in_epoch, p.step, p.eta_s, p.fraction) == (1, 2, 9, None, None)


def test_progress_after_the_last_epoch_with_unknown_steps_shows_that_epochs_steps():
    r = TrainingRefiner()
    r.refine([StartEvent(0.0, epochs=2, steps=None)])
    r.refine([_batch(s, 1.0, epoch=0) for s in range(1, 8)] + [EpochEvent(7, 0, 0.2, {"loss": 1.0})])
    p = r.refine([_batch(s, 1.0, epoch=1) for s in range(8, 13)] + [EpochEvent(12, 1, 0.4, {"loss": 1.0}),
                                                                   EndEvent(12, 0.4)]).progress
    assert (p.epoch, p.step_in_epoch, p.step, p.fraction) == (1, 5, 12, None)
    assert p.describe().startswith("epoch 2/2 · step 5 ·")


def test_progress_of_a_resumed_run_that_ends_before_its_first_epoch_ends():
    r = TrainingRefiner()
    p = r.refine([StartEvent(0.0, epochs=10, steps=5, initial_epoch=3), ErrorEvent(0.1, "boom")]).progress
    assert (p.epoch, p.step_in_epoch) == (3, 0)  # epoch 4 of 10, not the 3rd as if it had ended
    assert p.describe().startswith("epoch 4/10 · step 0/5")


def test_progress_between_epochs_and_after_the_last_one():
    r = TrainingRefiner()
    r.refine([StartEvent(0.0, epochs=2, steps=3)])
    p = r.refine([_batch(s, 1.0) for s in (1, 2, 3)] + [EpochEvent(3, 0, 0.1, {"loss": 1.0})]).progress
    assert (p.epoch, p.step_in_epoch) == (1, 0)  # epoch 2 of 2 about to begin
    p = r.refine([_batch(s, 1.0, epoch=1) for s in (4, 5, 6)] + [EpochEvent(6, 1, 0.2, {"loss": 1.0}),
                                                                 EndEvent(6, 0.2)]).progress
    assert (p.epoch, p.step_in_epoch, p.fraction, p.eta_s) == (1, 3, 1.0, 0.0)
    assert p.describe().startswith("epoch 2/2 · step 3/3")


def test_progress_of_slow_steps_and_time_spent_outside_batches():
    r = TrainingRefiner()
    r.refine([StartEvent(0.0, epochs=2, steps=10, batch_size=32)])
    p = r.refine([_batch(s, 1.0, t=4.0 * s) for s in (1, 2, 3)]).progress  # 4 s a step
    assert "· 0 steps/s" not in p.describe() and "4.0 s/step" in p.describe()
    assert "8.0 samples/s" in p.describe()  # was "0 steps/s", "8 samples/s"
    # A 60 s validation pass after the first epoch's last batch, then the end after the second's:
    # elapsed runs to the newest event, not to the newest batch.
    p = r.refine([_batch(s, 1.0, t=4.0 * s) for s in range(4, 11)] + [EpochEvent(10, 0, 100.0, {"loss": 1.0})]).progress
    assert p.elapsed_s == 100.0
    p = r.refine([_batch(s, 1.0, epoch=1, t=100.0 + 4.0 * (s - 10)) for s in range(11, 21)]
                 + [EpochEvent(20, 1, 200.0, {"loss": 1.0}), EndEvent(20, 200.5)]).progress
    assert p.elapsed_s == 200.5 and "elapsed 3:21" in p.describe()  # not 2:20, the last batch's time
    fast = TrainingRefiner()
    fast.refine([StartEvent(0.0, epochs=1, steps=10_000, batch_size=32)])
    d = fast.refine([_batch(s, 1.0, t=s / 2500) for s in range(1, 1001)]).progress.describe()
    assert "2,500 steps/s" in d and "80,000 samples/s" in d


def test_drain_builds_the_batch_events_the_training_thread_queued_as_tuples():
    q = queue.SimpleQueue()
    q.put(StartEvent(1.0, 2, 10, 32))
    q.put((1, 0, 2.0, {"loss": 0.5, "acc": np.float32(0.25), "names": ["a"], "vec": np.ones(3)}, 1e-3))
    q.put((2, 0, 3.0, None, None))
    q.put(EndEvent(2, 4.0))
    items = drain(q)
    assert [type(ev) for ev in items] == [StartEvent, BatchEvent, BatchEvent, EndEvent]
    first, second = items[1], items[2]
    assert (first.step, first.epoch, first.time, first.lr) == (1, 0, 2.0, 1e-3)
    assert first.values == {"loss": 0.5, "acc": 0.25} and type(first.values["acc"]) is float
    assert first.bad == ("names", "vec")  # not single numbers: reported, not plotted
    assert second.values == {} and second.bad == () and second.lr is None
    assert drain(q) == []


def _queued(items: list) -> tuple[queue.SimpleQueue, queue.SimpleQueue]:
    """Two queues holding ``items``: one to drain as events, one as rows."""
    a, b = queue.SimpleQueue(), queue.SimpleQueue()
    for item in items:
        a.put(item)
        b.put(item)
    return a, b


def _expand(items: list) -> list:
    return [ev for item in items for ev in (item.events() if isinstance(item, BatchRows) else [item])]


def test_drain_gathers_batches_into_rows_that_give_back_the_same_events():
    start, end, note = StartEvent(1.0, 1, 20, 32), EndEvent(20, 9.0), MessageEvent("worker", "hi")
    items = [start]
    items += [(i, 0, 2.0 + i, {"loss": 1.0 / i, "acc": 0.5}, 1e-3) for i in range(1, 6)]
    items += [note]  # a message between batches: two runs of rows, the message in its place
    items += [(i, 0, 2.0 + i, {"loss": 1.0 / i, "acc": math.nan}, 1e-3) for i in range(6, 9)]
    items += [(9, 0, 11.0, {"loss": 0.1}, 1e-3)]  # other keys: rows of their own
    items += [(10, 0, 12.0, {"loss": np.float32(0.25)}, 1e-3)]  # not a float: an event, as drain makes it
    items += [(11, 0, 13.0, {"loss": 0.2}, None), (12, 0, 14.0, {"loss": 0.2}, 1e-3)]  # lr None, then a float
    items += [(i, 0, 3.0 + i, {"loss": 0.3}, None) for i in (13, 14)]
    items += [(15, 0, 18.0, {"acc": 0.1, "loss": 0.3}, None), (16, 0, 19.0, {"loss": 0.3, "acc": 0.1}, None)]
    items += [end]
    as_events, as_rows = _queued(items)
    events, rows = drain(as_events), drain(as_rows, rows=True)
    assert [type(x).__name__ for x in rows] == [
        "StartEvent", "BatchRows", "MessageEvent", "BatchRows", "BatchRows", "BatchEvent", "BatchRows",
        "BatchRows", "BatchRows", "BatchRows", "BatchRows", "EndEvent"]  # the same keys in another order: new rows
    assert [len(x) for x in rows if isinstance(x, BatchRows)] == [5, 3, 1, 1, 1, 2, 1, 1]
    assert rows[1].values == {"loss": [1.0, 0.5, 1 / 3, 0.25, 0.2], "acc": [0.5] * 5} and rows[1].lrs == [1e-3] * 5
    assert (rows[6].lrs, rows[7].lrs, rows[8].lrs) == (None, [1e-3], None)
    assert _expand(rows) == events
    def keys(events):
        return [list(ev.values) for ev in events if isinstance(ev, BatchEvent)]

    assert keys(_expand(rows)) == keys(events) and keys(events)[-2:] == [["acc", "loss"], ["loss", "acc"]]
    assert drain(as_rows, rows=True) == []


def test_refining_rows_gives_the_update_of_their_events():
    rng = np.random.default_rng(3)
    items: list = [StartEvent(1.0, 2, 600, 32)]
    for i in range(1, 1201):
        loss = float(rng.random()) if i % 97 else (math.nan if i % 2 else math.inf)
        acc = float(rng.random()) if i % 89 else -math.inf
        if i % 61 == 0:
            acc = np.float32(acc)  # not a float: an event among the rows
        lr = None if 300 < i <= 400 else 1e-3 / i  # a stretch without a learning rate
        items.append((i, (i - 1) // 600, 1.0 + i * 1e-3, {"loss": loss, "acc": acc}, lr))
        if i == 600:
            items.append(EpochEvent(600, 0, 1.7, {"loss": 0.5, "val_loss": 0.6}))
    batches = items[1:]
    for k in range(0, len(batches) - 6, 6):  # a thread pool's dispatch: out of order in small groups
        batches[k:k + 6] = [batches[k + j] for j in rng.permutation(6)]
    items[1:] = batches
    notes: dict[str, list] = {"events": [], "rows": []}
    refiners = {kind: TrainingRefiner(0.8, note=notes[kind].append) for kind in notes}
    for lo in range(0, len(items), 250):  # one receiver iteration's drain at a time
        as_events, as_rows = _queued(items[lo:lo + 250])
        a = refiners["events"].refine(drain(as_events))
        b = refiners["rows"].refine(drain(as_rows, rows=True))
        assert np.array_equal(a.batches.steps, b.batches.steps)
        for key in ("loss", "acc"):
            assert np.array_equal(a.batches.values[key], b.batches.values[key], equal_nan=True)
            assert np.array_equal(a.batches.smoothed[key], b.batches.smoothed[key], equal_nan=True)
        assert (a.progress, a.counts, a.nonfinite, a.epochs) == (b.progress, b.counts, b.nonfinite, b.epochs)
    assert notes["events"] == notes["rows"] and any("loss is nan" in n for n in notes["rows"])
    assert any("acc is -inf" in n for n in notes["rows"])
    assert refiners["rows"].counts["nonfinite"] == 12 + 13


def test_rows_beside_single_batch_events_are_refined_as_events():
    r = TrainingRefiner(0.5)
    rows = BatchRows([2, 3], [0, 0], [2.0, 3.0], {"loss": [2.0, 4.0]}, [0.1, 0.1])
    u = r.refine([BatchEvent(1, 0, 1.0, {"loss": 0.0, "acc": 1.0}), rows, BatchEvent(3, 0, 3.5, {"loss": 8.0})])
    np.testing.assert_array_equal(u.batches.steps, [1, 2, 3, 3])  # a tied step keeps its place in the queue
    np.testing.assert_array_equal(u.batches.values["loss"], [0.0, 2.0, 4.0, 8.0])
    np.testing.assert_array_equal(u.batches.smoothed["loss"], [0.0, 1.0, 2.5, 5.25])
    assert np.isnan(u.batches.values["acc"][1:]).all()
    big = r.refine([BatchRows([4, 5], [0, 0], [4.0, 5.0], {"loss": [1e308, 1e308]})])  # their sum is no float
    np.testing.assert_array_equal(big.batches.smoothed["loss"], np.float32([np.inf, np.inf]))
    assert r.counts["nonfinite"] == 0


def test_drain_keeps_a_batch_whose_logs_cannot_be_read():
    class Broken(dict):
        def items(self):
            raise RuntimeError("broken logs")

    q = queue.SimpleQueue()
    q.put((7, 1, 5.0, Broken(loss=1.0), None))
    q.put((8, 1, 6.0, {"loss": 0.5}, None))
    first, second = drain(q)  # the bad one neither raises nor takes the next one with it
    assert (first.step, first.values, first.bad) == (7, {}, ("(unreadable logs)",))
    assert (second.step, second.values) == (8, {"loss": 0.5})


def _tables():
    from types import SimpleNamespace

    batches, epochs, tests = BatchTable(), EpochTable(), EpochTable()
    batches.extend(np.arange(1, 5), {"loss": np.array([4, 3, np.nan, 2], np.float32)},
                   {"loss": np.array([4, 3.5, 3.5, 3], np.float32)})
    epochs.add(2, 0, {"loss": 3.5})  # validation every second epoch: no val_loss here
    epochs.add(4, 1, {"loss": math.nan, "val_loss": 2.5})  # a NaN that was logged
    tests.add(4, 1, {"test_loss": 2.0})
    return SimpleNamespace(batches=batches, epochs=epochs, tests=tests)


def test_csv_leaves_metrics_not_logged_empty_and_writes_logged_values_as_they_were(tmp_path):
    from kerasqt.export import write_csv

    write_csv(_tables(), tmp_path / "m.csv")
    rows = (tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()
    assert rows == [
        "kind,step,epoch,loss,loss~,val_loss,test_loss",
        "batch,1,0,4.0,4.0,,",
        "batch,2,0,3.0,3.5,,",
        "batch,3,1,,3.5,,",  # in batch rows a NaN is empty: the table holds "not logged" as NaN
        "batch,4,1,2.0,3.0,,",
        "epoch,2,0,3.5,,,",  # no validation in this epoch: empty, not nan
        "epoch,4,1,nan,,2.5,",
        "test,4,1,,,,2.0",
    ]


def test_a_metric_named_like_a_moving_average_keeps_its_own_values(tmp_path):
    from types import SimpleNamespace

    from kerasqt.export import write_csv

    table = BatchTable()
    raw = {"loss": np.array([1, 2, 3], np.float32), "loss~": np.array([101, 102, 103], np.float32)}
    table.extend(np.arange(1, 4), raw, {k: v / 2 for k, v in raw.items()})
    assert table.metrics() == ["loss", "loss~"]
    assert table.column("loss~").tolist() == [101, 102, 103]  # was loss's moving average
    assert table.smoothed("loss").tolist() == [0.5, 1, 1.5] and table.smoothed("loss~").tolist() == [50.5, 51, 51.5]
    write_csv(SimpleNamespace(batches=table, epochs=EpochTable(), tests=EpochTable()), tmp_path / "m.csv")
    rows = (tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "kind,step,epoch,loss,loss~,loss~~,loss~~~" and rows[1] == "batch,1,,1.0,101.0,0.5,50.5"


def test_late_epoch_rows_keep_their_epoch_and_metrics():
    table = EpochTable()
    table.add(20, 1, {"loss": 1.0, "val_loss": 2.0})
    table.add(10, 0, {"loss": 3.0})  # arrived late
    assert table.steps.tolist() == [10, 20] and table.epochs == [0, 1]
    assert table.given(0) == {"loss"} and table.given(1) == {"loss", "val_loss"}


def test_the_qt_probe_copes_with_any_sys_path_and_no_python_to_start(monkeypatch):
    from pathlib import Path

    from kerasqt import qtapp

    monkeypatch.setenv("DISPLAY", ":187")  # no X server there: the child cannot start Qt
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(sys, "path", [*sys.path, Path("/tmp"), b"/tmp"])  # import ignores these; a join did not
    reason = qtapp._platform_problem()
    assert reason and ("display" in reason or "platform plugin" in reason)
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # a frozen app: its executable is itself
    assert qtapp._platform_problem() is None


def test_csv_is_utf8_whatever_the_locale(tmp_path):
    import subprocess

    # The command line is ASCII (escapes): under the C locale only the file's own encoding is tested.
    script = ("import numpy as np, sys; from types import SimpleNamespace; "
              "from kerasqt.history import BatchTable, EpochTable; from kerasqt.export import write_csv; "
              "b = BatchTable(); b.extend(np.arange(1, 3), {'\\u635f\\u5931 \\xe9': np.ones(2, np.float32)}, "
              "{'\\u635f\\u5931 \\xe9': np.ones(2, np.float32)}); "
              "write_csv(SimpleNamespace(batches=b, epochs=EpochTable(), tests=EpochTable()), sys.argv[1])")
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])}
    out = tmp_path / "m.csv"
    r = subprocess.run([sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8").splitlines()[0] == "kind,step,epoch,损失 é,损失 é~"


# -- what a user's terminal output and logged learning rate become ---------------------------------
def test_terminal_text_leaves_what_a_terminal_would_show():
    from kerasqt.events import terminal_text

    bar = ("\b" * 40 + "\r\x1b[1m3/5\x1b[0m \x1b[32m━━━━\x1b[0m\x1b[37m━━\x1b[0m \x1b[1m0s\x1b[0m - loss: 0.5"
           + "\b" * 40 + "\r\x1b[1m5/5\x1b[0m \x1b[32m━━━━━━\x1b[0m \x1b[1m1s\x1b[0m 9ms/step - loss: 0.4")
    assert terminal_text(bar) == "5/5 ━━━━━━ 1s 9ms/step - loss: 0.4"
    assert terminal_text("done\r") == "done"  # nothing after the \r: the line stays
    assert terminal_text("ab\bc") == "ac"
    assert terminal_text("\x1b]0;a title\x07plain\x00\x7f") == "plain"
    assert terminal_text("tab\tkept") == "tab\tkept"


def test_a_progress_bar_redrawn_in_place_reaches_its_pane_once_and_clean():
    q = queue.SimpleQueue()
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        with OutputCapture(q):
            def work():  # what Keras' Progbar writes with verbose=1: each update flushed, \r to redraw
                for i in range(1, 4):
                    sys.stdout.write("\b" * 12 + f"\r\x1b[1m{i}/3\x1b[0m loss {i}")
                    sys.stdout.flush()
                sys.stdout.write("\n")
                print("a plain line")
            t = threading.Thread(target=work)
            t.start()
            t.join()
    finally:
        sys.stdout = saved
    got = []
    while not q.empty():
        got.append(q.get().text)
    assert got == ["3/3 loss 3", "a plain line"]


def test_learning_rate_in_the_logs_is_a_setting_shown_as_steps_not_a_metric():
    from kerasqt.events import split_learning_rate

    assert split_learning_rate({"loss": 1.0, "learning_rate": 1e-3}) == ({"loss": 1.0}, 1e-3)
    assert split_learning_rate({"loss": 1.0, "learning_rate_adam": 2e-3}) == ({"loss": 1.0}, 2e-3)
    assert split_learning_rate({"loss": 1.0}) == ({"loss": 1.0}, None)
    notes = []
    r = TrainingRefiner(note=notes.append)
    r.refine([StartEvent(0.0, epochs=3, steps=2)])
    u = r.refine([_batch(1, 1.0, lr=1e-3), _batch(2, 0.9, lr=1e-3),
                  EpochEvent(2, 0, 1.0, {"loss": 0.9, "learning_rate": 1e-3}, lr=1e-3),
                  _batch(3, 0.8, epoch=1, lr=1e-4), _batch(4, 0.8, epoch=1, lr=1e-4),
                  EpochEvent(4, 1, 2.0, {"loss": 0.8, "learning_rate": 1e-4})])
    assert [dict(e.values) for e in u.epochs] == [{"loss": 0.9}, {"loss": 0.8}]  # no metric of it
    assert "learning_rate" not in u.batches.values
    assert u.epochs[1].lr == 1e-4  # the logged one, where the callback read none
    # Where it changed, and at each epoch's end (so the step line reaches it): never averaged.
    assert sorted(u.lrs) == [(1, 1e-3), (2, 1e-3), (3, 1e-4), (4, 1e-4)]
    assert "learning rate 0.001 -> 0.0001 in epoch 2" in notes
    assert notes.index("learning rate 0.001 -> 0.0001 in epoch 2") < notes.index("epoch 2: loss 0.8")
    u = r.refine([EpochEvent(6, 2, 3.0, {"loss": 0.7, "learning_rate": 1e-4 * (1 + 1e-8)})])
    assert not [n for n in notes if "-> 0.0001 in epoch 3" in n]  # float32 rounding is no change


def test_a_learning_rate_known_only_from_epoch_logs_steps_at_the_epochs_start():
    # An old run log (or a fit whose optimizer's rate could not be read): the rate an epoch's logs
    # give is the one it ran with, from its first batch on, not from its end.
    r = TrainingRefiner()
    r.refine([StartEvent(0.0, epochs=3, steps=2)])
    lrs = []
    for epoch, lr in enumerate((0.05, 0.05, 0.025)):
        batches = [_batch(2 * epoch + i, 1.0, epoch=epoch) for i in (1, 2)]
        u = r.refine(batches + [EpochEvent(2 * epoch + 2, epoch, 1.0 + epoch, {"loss": 1.0, "learning_rate": lr})])
        lrs += u.lrs
    assert (4, 0.025) in lrs and (6, 0.025) in lrs  # from the end of epoch 2 on (epoch 3's start)
    assert all(lr == 0.05 for step, lr in lrs if step < 4)
