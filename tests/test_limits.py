"""The autoscale policy with numbers alone: no figure, no Qt (kerasqt.limits)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerasqt.limits import finite_range, near, planned_span, shrink_due, union, wanted_limits, x_limits, y_limits

# -- x -------------------------------------------------------------------------------------------------


def test_while_a_run_goes_on_the_x_axis_spans_the_planned_steps():
    assert x_limits((0.0, 1.0), last_step=140, planned=6000, ended=False) == (0.0, 6000.0)
    assert x_limits((0.0, 6000.0), last_step=6000, planned=6000, ended=False) == (0.0, 6000.0)


def test_at_the_end_the_x_axis_fits_the_steps_taken_even_when_the_run_ended_early():
    assert x_limits((0.0, 6000.0), last_step=140, planned=6000, ended=True) == (0.0, 140.0)  # EarlyStopping
    assert x_limits((0.0, 128.0), last_step=100, planned=None, ended=True) == (0.0, 100.0)
    assert x_limits((0.0, 128.0), last_step=0, planned=None, ended=True) == (0.0, 1.0)  # no step: not empty


def test_without_a_plan_the_x_axis_grows_by_doubling_and_is_kept_while_there_is_room():
    assert x_limits((0.0, 1.0), last_step=0, planned=None, ended=False) == (0.0, 8.0)  # the smallest span
    assert x_limits((0.0, 1.0), last_step=100, planned=None, ended=False) == (0.0, 128.0)  # 125 -> 128
    assert x_limits((0.0, 128.0), last_step=128, planned=None, ended=False) == (0.0, 128.0)  # kept
    assert x_limits((0.0, 128.0), last_step=129, planned=None, ended=False) == (0.0, 256.0)
    assert x_limits((0.0, 100.0), last_step=50, planned=None, ended=False) == (0.0, 100.0)  # a last run's: kept
    assert x_limits((10.0, 60.0), last_step=50, planned=None, ended=False) == (0.0, 64.0)  # not from 0: anew


def test_past_its_plan_the_x_axis_grows_by_doubling():
    assert x_limits((0.0, 100.0), last_step=150, planned=100, ended=False) == (0.0, 256.0)


def test_the_plan_widens_to_the_finished_runs_shown_beside_it():
    assert planned_span(100, [18, 250]) == 250
    assert planned_span(100, []) == 100
    assert planned_span(None, [250]) is None  # no plan: the x axis grows as the data does


# -- y -------------------------------------------------------------------------------------------------


def test_y_limits_are_kept_while_the_data_fits():
    assert y_limits((0.0, 2.0), (0.5, 1.5), log=False) == (0.0, 2.0)
    assert y_limits((0.0, 2.0), None, log=False, fit=True) == (0.0, 2.0)  # no data: nothing to fit


def test_y_limits_grow_with_three_times_the_headroom_on_the_side_the_data_left():
    lo, hi = -1.0, 3.0  # the data leaves the limits (0, 2) above, below, then both ways
    y0, y1 = y_limits((0.0, 2.0), (0.5, hi), log=False)  # only above
    pad = 0.15 * (hi - 0.5)
    assert y0 == pytest.approx(0.5 - pad) and y1 == pytest.approx(hi + 3 * pad)
    y0, y1 = y_limits((0.0, 2.0), (lo, 1.0), log=False)  # only below
    pad = 0.15 * (1.0 - lo)
    assert y0 == pytest.approx(lo - 3 * pad) and y1 == pytest.approx(1.0 + pad)
    y0, y1 = y_limits((0.0, 2.0), (lo, hi), log=False)  # both ways
    pad = 0.15 * (hi - lo)
    assert (y0, y1) == pytest.approx((lo - 3 * pad, hi + 3 * pad))


def test_fitting_gives_the_same_headroom_on_both_sides():
    y0, y1 = y_limits((-100.0, 100.0), (-1.0, 3.0), log=False, fit=True)
    assert (y0, y1) == pytest.approx((-1.6, 3.6))
    # data outside and asked to fit: fitted, not grown
    assert y_limits((0.0, 1.0), (-1.0, 3.0), log=False, fit=True) == pytest.approx((-1.6, 3.6))


def test_the_end_of_a_run_fits_limits_that_grew_around_a_falling_curve():
    grown = y_limits((10.0, 12.5), (9.5, 12.0), log=False)  # the curve fell below: room below
    assert grown[0] < 9.5 - 2 * 0.15 * 2.5
    lo, hi = 10.1, 12.0
    y0, y1 = y_limits(grown, (lo, hi), log=False, fit=True)  # run_over
    assert (y0, y1) == pytest.approx((lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo)))


def test_loose_limits_shrink_only_when_a_shrink_is_due():
    assert y_limits((0.0, 10.0), (5.0, 6.0), log=False) == (0.0, 10.0)  # loose but kept
    y0, y1 = y_limits((0.0, 10.0), (5.0, 6.0), log=False, shrink=True)
    assert (y0, y1) == pytest.approx((4.85, 6.15))
    assert y_limits((0.0, 10.0), (2.0, 8.0), log=False, shrink=True) == (0.0, 10.0)  # not loose enough
    assert not shrink_due(False, now=100.0, last=0.0)
    assert shrink_due(True, now=100.0, last=0.0)
    assert not shrink_due(True, now=100.0, last=95.0)  # at most every 10 s


def test_never_negative_data_gets_no_room_below_0():
    y0, y1 = y_limits((1.0, 2.0), (0.01, 5.0), log=False)  # a loss falling towards 0, rising above
    assert y0 == pytest.approx(-0.03 * y1) and y1 > 5.0
    y0, y1 = y_limits((1.0, 2.0), (0.01, 5.0), log=False, fit=True)
    assert y0 == pytest.approx(-0.03 * y1) and y1 == pytest.approx(5.0 + 0.15 * 4.99)
    y0, y1 = y_limits((0.0, 2.0), (-0.5, 1.0), log=False, fit=True)  # negative data: room below it
    assert y0 == pytest.approx(-0.5 - 0.15 * 1.5)


def test_scores_in_0_1_get_no_room_above_1():
    y0, y1 = y_limits((0.4, 0.8), (0.5, 0.97), log=False)  # an accuracy rising towards 1
    assert y0 < 0.5 and y1 == pytest.approx(1 + 0.03 * (1 - y0))
    y0, y1 = y_limits((0.4, 0.8), (0.5, 0.97), log=False, fit=True)
    assert 0.97 < y1 <= 1.03
    y0, y1 = y_limits((0.4, 0.8), (0.5, 1.2), log=False, fit=True)  # above 1: not a score
    assert y1 == pytest.approx(1.2 + 0.15 * 0.7)


def test_a_log_scale_pads_by_ratios_and_leaves_limits_at_or_below_0():
    y0, y1 = y_limits((1e-4, 1e-2), (1e-5, 1e-3), log=True, fit=True)
    pad = 100 ** 0.15
    assert (y0, y1) == pytest.approx((1e-5 / pad, 1e-3 * pad))
    assert y_limits((0.001, 1.0), (0.01, 0.5), log=True) == (0.001, 1.0)  # fits: kept
    y0, y1 = y_limits((-0.1, 1.0), (0.01, 0.5), log=True)  # the user's log scale on linear limits
    assert y0 > 0 and (y0, y1) == pytest.approx((0.01 / 50 ** 0.15, 0.5 * 50 ** 0.15))
    y0, y1 = y_limits((1.0, 2.0), (4.0, 8.0), log=True)  # grown above: 3 times the ratio
    assert (y0, y1) == pytest.approx((4.0 / 2 ** 0.15, 8.0 * 2 ** 0.45))


def test_tiny_and_flat_ranges_still_get_room():
    y0, y1 = y_limits((0.0, 1.0), (5.0, 5.0), log=False, fit=True)  # a constant: 10 % of its value
    assert (y0, y1) == pytest.approx((4.5, 5.5))
    y0, y1 = y_limits((0.0, 1.0), (0.0, 0.0), log=False, fit=True)  # all zeros: at least 0.1 above
    assert y0 == pytest.approx(-0.003) and y1 == pytest.approx(0.1)
    y0, y1 = y_limits((1.0, 2.0), (1e-9, 1e-9), log=True, fit=True)  # a constant on a log scale: a factor 2
    assert (y0, y1) == pytest.approx((5e-10, 2e-9))
    y0, y1 = y_limits((0.0, 1.0), (1e-9, 2e-9), log=False, fit=True)
    assert y0 <= 1e-9 and y1 >= 2e-9 and y1 - y0 < 1e-8


def test_limits_within_rounding_of_the_current_ones_are_kept():
    current = (-1.3, 1.3 + 1e-12)
    assert y_limits(current, (-1.0, 1.0), log=False, fit=True) is current  # no new draw for rounding
    assert y_limits((-1.3, 1.31), (-1.0, 1.0), log=False, fit=True) == pytest.approx((-1.3, 1.3))


# -- both ----------------------------------------------------------------------------------------------


def test_wanted_limits_asks_for_the_data_over_the_x_span_it_wants():
    asked = []

    def data_in(span):
        asked.append(span)
        return (0.5, 2.0)

    want = wanted_limits((0.0, 1.0), (0.0, 1.0), data_in, last_step=140, planned=6000)
    assert asked == [(0.0, 6000.0)] and want[0] == (0.0, 6000.0) and want[1][1] > 2.0
    asked.clear()
    assert wanted_limits((0.0, 6000.0), want[1], data_in, last_step=150, planned=6000) is None
    assert asked == [(0.0, 6000.0)]  # the limits themselves: they stay


def test_a_view_the_user_set_is_kept_and_its_data_not_asked_for():
    def data_in(span):
        raise AssertionError("not asked")

    assert wanted_limits((10.0, 60.0), (1.0, 1.2), data_in, last_step=500, ended=True, fit=True,
                         user_view=True) is None


def test_the_end_of_a_run_fits_both_axes():
    want = wanted_limits((0.0, 6000.0), (-5.0, 9.0), lambda span: (0.1, 2.0), last_step=140, planned=6000,
                         ended=True, fit=True)
    assert want[0] == (0.0, 140.0)
    assert want[1] == pytest.approx((max(0.1 - 0.285, -0.03 * 2.285), 2.285))


# -- helpers -------------------------------------------------------------------------------------------


def test_ranges_skip_non_finite_values_and_on_a_log_scale_those_not_above_0():
    y = np.array([np.nan, -1.0, 0.0, 2.0, np.inf], np.float32)
    assert finite_range(y, log=False) == (-1.0, 2.0)
    assert finite_range(y, log=True) == (2.0, 2.0)
    assert finite_range([], log=False) is None and finite_range([np.nan], log=False) is None
    assert union([None, (1.0, 2.0), (-1.0, 1.5)]) == (-1.0, 2.0) and union([None]) is None
    assert near((1.0, 2.0), (1.0 + 1e-9, 2.0)) and not near((1.0, 2.0), (1.001, 2.0))
    assert math.isclose(finite_range([1e-9, 3e-9], log=True)[1], 3e-9)
