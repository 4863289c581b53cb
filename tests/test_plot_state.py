"""The plot's draw state and run store without a figure (kerasqt.drawstate, kerasqt.history)."""

from __future__ import annotations

import numpy as np

from kerasqt.drawstate import DrawState, Work
from kerasqt.events import BatchEvent, EpochEvent, EvalEvent, StartEvent
from kerasqt.history import LR_KEY, RunHistory
from kerasqt.refine import TrainingRefiner, TrainingUpdate


def test_a_new_run_must_be_laid_out_and_drawn_whole_on_a_blank_canvas():
    state = DrawState()
    assert state.busy and state.layout and state.full and state.blank and not state.stale
    state.dirty = state.layout = state.full = state.blank = False
    state.stale.append("loss")
    state.limits_pending = state.fit = state.ended = True
    state.changed(5)
    state.legend("loss")
    state.restart()
    assert state == state and vars(state) == vars(DrawState())  # every field back, a list of its own
    assert state.stale is not DrawState().stale


def test_a_frame_draws_the_whole_figure_unless_staged_on_a_canvas_that_holds_the_other_axes():
    state = DrawState(blank=False)
    assert state.work(force_full=False, staged=True, panels=2) is Work.BLIT  # nothing stale
    state.draw("loss")
    state.draw("loss")
    assert state.stale == ["loss"]
    assert state.work(force_full=False, staged=True, panels=2) is Work.PANEL
    assert state.work(force_full=True, staged=True, panels=2) is Work.FIGURE
    assert state.work(force_full=False, staged=False, panels=2) is Work.FIGURE
    state.blank = True  # a blank canvas: the axes not stale would be missing
    assert state.work(force_full=False, staged=True, panels=2) is Work.FIGURE
    state.draw("accuracy")
    assert state.work(force_full=False, staged=True, panels=2) is Work.PANEL  # all of them, one a frame


def test_new_limits_wait_for_a_full_draw_unless_axes_are_drawn_anew_anyway():
    state = DrawState(dirty=False, layout=False, full=False, blank=False)
    assert not state.settle_limits(True, force_full=False, allow_full=False) and state.limits_pending
    assert state.busy and not state.dirty and not state.full  # a pending draw keeps the frames coming
    assert state.settle_limits(True, force_full=False, allow_full=True) and not state.limits_pending
    state.draw("loss")
    assert state.settle_limits(True, force_full=False, allow_full=False)
    assert not state.settle_limits(False, force_full=False, allow_full=True) and not state.limits_pending


def test_the_fit_of_a_runs_end_and_a_shrink_are_done_once_limits_are_set():
    state = DrawState(fit=True, shrink_asked=True, limits_pending=True)
    state.limits_settled(True, now=50.0)
    assert state.fit and state.shrink_asked and state.last_shrink == 0.0  # still waiting
    state.limits_pending = False
    state.limits_settled(True, now=50.0)
    assert not state.fit and not state.shrink_asked and state.last_shrink == 50.0
    assert not state.finishing


def test_changes_keep_the_smallest_step_until_taken():
    state = DrawState()
    state.changed(None)
    assert state.changed_from is None
    for step in (40, 12, 30):
        state.changed(step)
    assert state.take_changed() == 12.0 and state.take_changed() is None


def test_a_run_history_says_what_each_update_changed():
    refiner = TrainingRefiner(0.9)
    run = RunHistory(StartEvent(0.0, epochs=5, steps=20, initial_epoch=2))
    assert run.planned_steps == 60 and run.empty() and run.last_step() == 0
    rows = [BatchEvent(i, 0, float(i), {"loss": 1.0 / i, "acc": 0.5}) for i in range(1, 11)]
    applied = run.apply(refiner.refine(rows))
    assert applied.changed_from == 1.0 and applied.keys == ("loss", "acc") and not applied.merged
    applied = run.apply(refiner.refine([EpochEvent(10, 0, 10.0, {"loss": 0.1, "val_loss": 0.2})]))
    assert applied.epochs and applied.keys == ("loss", "val_loss") and applied.changed_from == 10.0
    applied = run.apply(TrainingUpdate(tests=(EvalEvent(10, 0, 11.0, {"loss": 0.3}, kind="test"),)))
    assert applied.keys == ("test_loss",) and run.tests.names() == ["test_loss"]
    applied = run.apply(refiner.refine([BatchEvent(11, 1, 11.0, {"loss": 0.5, "acc": 0.6})]))
    assert applied.changed_from == 10.0  # the line from the last point on
    late = refiner.refine([BatchEvent(5, 0, 5.5, {"loss": 0.2, "acc": 0.6})])
    applied = run.apply(late)
    assert applied.merged and list(run.batches.steps[4:7]) == [5, 5, 6]
    assert applied.changed_from == 5.0  # from the row it follows
    assert run.last_step() == 11
    assert run.shown() == {"loss": {"batches": 12, "epochs": 1}, "acc": {"batches": 12},
                           "val_loss": {"epochs": 1}, "test_loss": {"tests": 1}}


def test_a_run_history_flags_non_finite_metrics_once_and_names_the_rate_once_it_varies():
    run = RunHistory()
    assert run.planned_steps is None
    applied = run.apply(TrainingUpdate(nonfinite=frozenset({"loss"}), lrs=((1, 1e-3),)))
    assert applied.flagged == ("loss",) and LR_KEY not in applied.keys and applied.changed_from == 1.0
    applied = run.apply(TrainingUpdate(nonfinite=frozenset({"loss"}), lrs=((10, 1e-4),)))
    assert applied.flagged == () and applied.keys == (LR_KEY,)
    assert np.array_equal(run.values("l", LR_KEY), np.float32([1e-3, 1e-4]))
    assert run.values("e", "loss") is None and run.table("l") is run.lrs
