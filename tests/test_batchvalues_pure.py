"""Each batch's own value from Keras' running means: the recovery, its events and its log lines (pure)."""

from __future__ import annotations

import json
import math
import queue

import numpy as np
import pytest

from kerasqt.events import BatchEvent, BatchRows, MeansEvent, StartEvent, drain
from kerasqt.history import RunHistory
from kerasqt.perbatch import PER_BATCH, RUNNING, BatchRecovery, batch_labels, counts_array
from kerasqt.refine import TrainingRefiner
from kerasqt.runlog import RunLogWriter, decode_line, read_run

T0 = 1_700_000_000.0
MEANS = MeansEvent(0, T0, {"loss": 0, "acc": 1}, ("samples", "weights"), ("auc",))


def _keras_like(values, weights, epoch_sizes):
    """What Keras logs for batches of these own ``values`` and ``weights``: float32 running means
    since each epoch began, and the counts (float32 sums of weights) after each batch."""
    means, counts, epochs = [], [], []
    k = 0
    for epoch, size in enumerate(epoch_sizes):
        total = count = np.float32(0)
        for _ in range(size):
            total = np.float32(total + np.float32(values[k]) * np.float32(weights[k]))
            count = np.float32(count + np.float32(weights[k]))
            means.append(float(total / count) if count else 0.0)  # (divide_no_nan)
            counts.append(float(count))
            epochs.append(epoch)
            k += 1
    return means, counts, epochs


def test_the_values_of_batches_of_uneven_weights_come_back_across_epochs():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 2.0, 14)
    weights = np.array([32, 32, 32, 4, 32, 32, 32, 4, 32, 32, 32, 32, 32, 7], float)  # short last batches
    means, counts, epochs = _keras_like(values, weights, [4, 4, 6])
    rec = BatchRecovery(MeansEvent(0, T0, {"loss": 0}, ("samples",)))
    got = rec.recover(list(range(1, 15)), epochs, {"loss": means}, np.array(counts)[:, None])["loss"]
    np.testing.assert_allclose(got, values, rtol=1e-5)
    # the same in chunks of any size: each starts from where the last ended
    rec = BatchRecovery(MeansEvent(0, T0, {"loss": 0}, ("samples",)))
    parts = [rec.recover(list(range(a + 1, b + 1)), epochs[a:b], {"loss": means[a:b]},
                         np.array(counts[a:b])[:, None])["loss"] for a, b in ((0, 1), (1, 5), (5, 6), (6, 14))]
    np.testing.assert_allclose(np.concatenate(parts), values, rtol=1e-5)


def test_a_batch_of_zero_weight_unknown_counts_and_late_batches_have_no_value():
    weights = [2.0, 0.0, 3.0, 1.0, 1.0]
    means, counts, epochs = _keras_like([1.0, 5.0, 2.0, 4.0, 3.0], weights, [5])
    counts[3] = math.nan  # not known for batch 4: neither it nor (in its epoch) the one after it
    rec = BatchRecovery(MeansEvent(0, T0, {"loss": 0}, ("weights",)))
    got = rec.recover([1, 2, 3, 4, 5], epochs, {"loss": means}, np.array(counts)[:, None])["loss"]
    np.testing.assert_allclose(got[[0, 2]], [1.0, 2.0], rtol=1e-6)
    assert np.isnan(got[[1, 3, 4]]).all()
    late = rec.recover([3], [0], {"loss": [2.0]}, np.array([[5.0]]))["loss"]  # after step 5 was taken
    assert np.isnan(late).all()
    # a count that went down: the metrics were reset (a new epoch, or reset_metrics in a callback)
    assert rec.recover([6], [0], {"loss": [7.0]}, np.array([[2.0]]))["loss"].tolist() == [7.0]
    # without a MeansEvent (an old log) or without counts: nothing
    assert BatchRecovery().recover([1], [0], {"loss": [1.0]}, np.array([[1.0]])) == {}
    assert BatchRecovery(MEANS).recover([1], [0], {"loss": [1.0]}, None) == {}


def test_counted_in_batches_a_batch_that_came_late_leaves_a_gap_not_a_two_batch_mean():
    # JAX: no count is read, each logged point counts a batch; batch 3's hook ran late, after a drain
    rec = BatchRecovery(MeansEvent(0, T0, {"loss": 0}, ("batches",)))
    means = [1.0, 1.5, 2.0, 2.5]  # own values 1, 2, 3, 4
    first = rec.recover([1, 2, 4], [0, 0, 0], {"loss": [means[0], means[1], means[3]]},
                        np.array([[1.0], [2.0], [4.0]]))["loss"]
    assert first[:2].tolist() == [1.0, 2.0] and np.isnan(first[2])  # not (3 + 4) / 2
    assert np.isnan(rec.recover([3], [0], {"loss": [means[2]]}, np.array([[3.0]]))["loss"]).all()
    # with steps_per_execution=2 a point covers up to 2 batches
    rec = BatchRecovery(MeansEvent(0, T0, {"loss": 0}, ("batches",), execution=2))
    got = rec.recover([2, 4, 5], [0, 0, 0], {"loss": [1.5, 2.5, 3.0]}, np.array([[2.0], [4.0], [5.0]]))["loss"]
    assert got.tolist() == [1.5, 3.5, 5.0]


def test_nan_and_inf_running_means_give_gaps_not_errors():
    rec = BatchRecovery(MeansEvent(0, T0, {"loss": 0}, ("samples",)))
    got = rec.recover([1, 2, 3, 4], [0, 0, 0, 1], {"loss": [1.0, math.nan, math.nan, 2.0]},
                      np.array([[4.0], [8.0], [12.0], [4.0]]))["loss"]
    assert got[0] == 1.0 and np.isnan(got[1:3]).all() and got[3] == 2.0  # a new epoch starts afresh
    got = rec.recover([5, 6], [1, 1], {"loss": [math.inf, 1e38]}, np.array([[8.0], [1e30]]))["loss"]
    assert not np.isfinite(got).any()


def test_counts_arrays_from_events_and_rows():
    assert counts_array([(1, None), (2, None)], 2) is None
    a = counts_array([(1, (1.0, 2.0)), (1, None), (1, (3.0,))], 2)
    assert a.shape == (3, 2) and a[0].tolist() == [1.0, 2.0] and np.isnan(a[1:]).all()
    b = counts_array([(2, ([1.0, 2.0], [3.0, 4.0])), (1, None)], 2, columns=True)
    assert b[:2].tolist() == [[1.0, 3.0], [2.0, 4.0]] and np.isnan(b[2]).all()


def _queued(counts=True):
    means, counts_, epochs = _keras_like([0.5, 0.25, 1.0, 0.75, 2.0], [4, 4, 2, 4, 4], [3, 2])
    return [(i + 1, epochs[i], T0 + i, {"loss": means[i], "acc": 0.5, "auc": 0.9}, None,
             (counts_[i], 1.0 + i) if counts else None) for i in range(5)]


@pytest.mark.parametrize("rows", [True, False])
def test_the_refiner_gives_both_series_and_passes_the_means_on(rows):
    q = queue.SimpleQueue()
    for item in [StartEvent(T0, 2, 3), MEANS, *_queued()]:
        q.put(item)
    update = TrainingRefiner(smoothing=0.5).refine(drain(q, rows=rows))
    chunk = update.batches
    assert update.means == MEANS
    np.testing.assert_allclose(chunk.per_batch["loss"], [0.5, 0.25, 1.0, 0.75, 2.0], rtol=1e-6)
    np.testing.assert_allclose(chunk.per_batch_smoothed["loss"], [0.5, 0.375, 0.6875, 0.71875, 1.359375], rtol=1e-6)
    assert set(chunk.per_batch) == {"loss", "acc"} and "auc" not in chunk.per_batch  # not a mean: as logged
    assert chunk.values["loss"][1] == np.float32(0.375)  # the running means stay as Keras gave them
    # the history keeps both: the view chooses, the CSV names both
    history = RunHistory()
    history.apply(update)
    assert history.means == MEANS
    np.testing.assert_array_equal(history.values("b", "loss"), chunk.per_batch["loss"])
    np.testing.assert_array_equal(history.values("s", "auc"), chunk.smoothed["auc"])
    history.view = RUNNING
    np.testing.assert_array_equal(history.values("b", "loss"), chunk.values["loss"])
    names = [name for name, _ in history.batches.columns()]
    assert names[:6] == ["loss", "acc", "auc", "loss~", "acc~", "auc~"]
    assert names[6:] == ["loss per batch", "acc per batch", "loss per batch~", "acc per batch~"]


def test_out_of_order_batches_in_one_drain_are_recovered_in_step_order():
    q = queue.SimpleQueue()
    items = _queued()
    for item in [StartEvent(T0, 2, 3), MEANS, items[1], items[0], items[2], items[4], items[3]]:
        q.put(item)
    chunk = TrainingRefiner().refine(drain(q, rows=True)).batches
    assert chunk.steps.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(chunk.per_batch["loss"], [0.5, 0.25, 1.0, 0.75, 2.0], rtol=1e-6)


def test_a_run_without_means_or_counts_has_running_means_only():
    for items in ([StartEvent(T0, 2, 3), *[item[:5] for item in _queued()]],  # an old log: no counts
                  [StartEvent(T0, 2, 3), *_queued(counts=False)]):
        q = queue.SimpleQueue()
        for item in items:
            q.put(item)
        update = TrainingRefiner().refine(drain(q, rows=True))
        assert update.means is None and update.batches.per_batch == {}
        history = RunHistory()
        history.apply(update)
        np.testing.assert_array_equal(history.values("b", "loss"), update.batches.values["loss"])
        assert [n for n, _ in history.batches.columns()] == ["loss", "acc", "auc", "loss~", "acc~", "auc~"]


def test_labels_say_what_each_line_shows():
    assert batch_labels("loss", None, PER_BATCH) == ("loss (batch)", "loss (smoothed)")  # nothing said: as before
    assert batch_labels("loss", MEANS, PER_BATCH) == ("loss (per batch)", "loss (smoothed)")
    assert batch_labels("loss", MEANS, RUNNING) == ("loss (running mean)", "loss (running mean, smoothed)")
    assert batch_labels("auc", MEANS, PER_BATCH)[0] == "auc (running value: not a mean metric)"
    assert batch_labels("other", MEANS, PER_BATCH)[0] == "other (running value)"
    twice = MeansEvent(0, T0, {"loss": 0}, ("samples",), execution=2)
    assert batch_labels("loss", twice, PER_BATCH)[0] == "loss (2-batch mean)"
    equal = MeansEvent(0, T0, {"loss": 0}, ("batches",))
    assert batch_labels("loss", equal, PER_BATCH)[0] == "loss (per batch, equal weights)"


def test_means_and_counts_round_trip_through_the_log_and_old_lines_read_as_before(tmp_path):
    q = queue.SimpleQueue()
    for item in _queued()[:3] + [_queued()[3][:5]]:
        q.put(item)
    rows = drain(q, rows=True)
    assert [type(r) for r in rows] == [BatchRows, BatchRows]  # counts or none: rows apart
    events = [ev for r in rows for ev in r.events()]
    w = RunLogWriter.create(tmp_path, kind="training")
    w.write([MEANS, *rows])
    w.close()
    lines = w.path.read_text().splitlines()
    assert json.loads(lines[1]) == {"type": "means", "time": T0, "step": 0, "means": {"loss": 0, "acc": 1},
                                    "weights": ["samples", "weights"], "running": ["auc"], "execution": 1}
    assert json.loads(lines[2])["counts"] == [4.0, 1.0] and "counts" not in json.loads(lines[5])
    run = read_run(w.path)
    assert run.events == [MEANS, *events] and run.skipped == 0
    # the fast line of a batch with counts is the general one
    from kerasqt.runlog.writer import _batch_line, _encode, _line

    ev = BatchEvent(3, 0, T0, {"loss": 0.5}, (), 1e-3, (96.0, 2.5))
    assert _batch_line(ev) == _line(_encode(ev, 0.0)) and decode_line(_batch_line(ev).encode())[1] == ev
    bad = BatchEvent(3, 0, T0, {"loss": 0.5}, (), None, (math.nan,))
    assert _batch_line(bad) is None and decode_line(_line(_encode(bad, 0.0)).encode())[1].counts[0] != 0.0
    with pytest.raises(Exception, match="means names a weight"):
        decode_line(b'{"type":"means","time":1,"step":0,"means":{"loss":1},"weights":["samples"]}')
