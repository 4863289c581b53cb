"""The fit tracker: which Keras call a monitor's hooks belong to, from the hooks alone (pure)."""

from __future__ import annotations

import threading

import pytest

from kerasqt.tracker import Busy, FitTracker, Twice


def _in_thread(fn):
    """Run ``fn`` in a new thread that stays alive until released; returns (result, release)."""
    out, done, release = {}, threading.Event(), threading.Event()

    def run():
        try:
            out["value"] = fn()
        except Exception as exc:  # handed back to the test
            out["error"] = exc
        done.set()
        release.wait(10)

    t = threading.Thread(target=run)
    t.start()
    done.wait(10)

    def finish():
        release.set()
        t.join(10)

    return out, finish


def test_a_fit_its_validation_and_an_evaluate_after_it():
    tr = FitTracker()
    assert tr.handed_model() == "take" and tr.handed_params() == "take"
    tr.train_begin()
    assert tr.running() and tr.running_main()
    tr.test_begin()  # fit's validation: no set_model before it
    assert tr.test_end() == "val"
    tr.train_end()
    assert not tr.running() and not tr.gone()
    assert tr.handed_model() == "take"  # evaluate() after the fit: a call of its own
    tr.handed_params()
    tr.test_begin()
    assert tr.test_end() == "test"
    assert tr.holder is None  # it let go


def test_the_callback_twice_in_one_call_is_told_once_and_forgotten():
    tr = FitTracker()
    tr.handed_model()
    with pytest.raises(Twice):
        tr.handed_model()
    assert tr.handed_model() == "take"  # the next call starts afresh


def test_an_evaluate_inside_a_fit_is_a_test_and_the_fit_keeps_its_model():
    tr = FitTracker()
    tr.handed_model(), tr.handed_params()
    tr.train_begin()
    assert tr.handed_model() == "defer"  # evaluate() from a callback, same thread: not its model
    tr.handed_params()
    tr.test_begin()
    assert tr.test_end() == "test"
    assert tr.running()
    tr.test_begin()  # the fit's own validation afterwards
    assert tr.test_end() == "val"


def test_another_threads_fit_is_refused_from_set_model_on():
    tr = FitTracker()
    assert tr.handed_model() == "take"  # this thread's fit is being set up (a slow callback begins first)
    out, finish = _in_thread(lambda: (tr.handed_model(), tr.handed_params(), tr.train_begin()))
    try:
        assert isinstance(out.get("error"), Busy)
        assert tr.handed_params() == "take"
        tr.train_begin()
        assert tr.running()
    finally:
        finish()


def test_a_fit_that_raised_is_over_when_told_or_when_its_thread_ends():
    tr = FitTracker()
    tr.handed_model(), tr.handed_params()
    tr.train_begin()
    assert tr.left(threading.get_ident()) and tr.gone() and not tr.running()
    assert not tr.left()  # once
    tr.handed_model(), tr.handed_params()  # the next fit of the same thread takes over
    tr.train_begin()
    assert tr.running() and not tr.gone()

    other = FitTracker()
    out, finish = _in_thread(lambda: (other.handed_model(), other.handed_params(), other.train_begin()))
    assert other.running() and other.held_by_other()
    finish()  # its thread ended without on_train_end
    assert other.gone() and not other.held_by_other() and other.handed_model() == "take"


def test_a_fit_of_the_same_thread_replaces_one_still_held():
    tr = FitTracker()
    tr.handed_model(), tr.handed_params()
    tr.train_begin()
    assert tr.handed_model() == "defer"  # raised, or nested: Keras' hooks cannot tell
    tr.handed_params()
    tr.train_begin()
    assert tr.running() and tr.fit_thread == threading.get_ident()


def test_only_the_chief_of_a_multi_worker_training_is_process_zero(monkeypatch):
    from kerasqt import chief

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "jax", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "torch.distributed", raising=False)
    assert chief.process_index() == 0 and chief.is_chief()
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    for task, index in (({"type": "chief", "index": 0}, 0), ({"type": "worker", "index": 0}, 1),
                        ({"type": "worker", "index": 1}, 2), ({"type": "ps", "index": 0}, 1)):
        monkeypatch.setenv("TF_CONFIG", __import__("json").dumps({"cluster": cluster, "task": task}))
        assert chief.process_index() == index
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["b:1", "c:1"]}, "task": {"type": "worker", "index": 0}}')
    assert chief.is_chief()  # no chief task: worker 0 is
    monkeypatch.setenv("TF_CONFIG", "not json")
    monkeypatch.setenv("RANK", "3")  # torchrun's
    assert chief.process_index() == 3 and not chief.is_chief()


def test_a_call_set_up_and_never_begun_lets_go_after_a_while(monkeypatch):
    from kerasqt import tracker

    tr = FitTracker()
    tr.handed_model(), tr.handed_params()  # an evaluate() that raised before on_test_begin, say
    out, finish = _in_thread(lambda: tr.held_by_other())
    finish()
    assert out["value"]  # held, for now
    monkeypatch.setattr(tracker, "PENDING_TTL", 0.0)
    out, finish = _in_thread(lambda: (tr.handed_model(), tr.handed_params(), tr.train_begin(), tr.running()))
    finish()
    assert out["value"][-1] is True  # another thread's fit was not refused
