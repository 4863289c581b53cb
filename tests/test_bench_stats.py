"""The statistics the benchmarks report: paired rounds and the interval of a median (pure)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from common import median_ci95, paired_rounds  # noqa: E402


def test_median_interval_takes_the_order_statistics_of_95_percent():
    assert median_ci95(range(5)) is None  # even min .. max covers only 94 %
    assert median_ci95([3, 1, 2, 6, 5, 4]) == (1, 6)  # n = 6: min .. max, 97 %
    assert median_ci95(range(1, 21)) == (6, 15)  # n = 20: the 6th smallest .. the 6th largest
    assert median_ci95(range(1, 29)) == (9, 20)


def test_paired_rounds_divide_each_fit_by_the_bare_fits_beside_it():
    # The machine slows down steadily; "a" costs 10 %, "b" and "c" 20 %: the ratios see through it.
    clock = iter(range(1000))
    cost = {"bare": 1.0, "a": 1.1, "b": 1.2, "c": 1.2}
    ran = []

    def fit(name):
        ran.append(name)
        return cost[name] * (1 + 0.01 * next(clock))

    times, paired = paired_rounds(fit, ["a", "b", "c"], 2, focus="a")
    # the focus before each of the others, the others in a rotating order, a bare fit between all
    assert ran == ["bare", "a", "bare", "b", "bare", "a", "bare", "c", "bare",
                   "a", "bare", "c", "bare", "a", "bare", "b", "bare"]
    assert [len(paired[n]) for n in ("a", "b", "c")] == [4, 2, 2] and paired["bare"] == [1.0, 1.0]
    for name in ("a", "b", "c"):
        assert paired[name] == pytest.approx([cost[name]] * len(paired[name]))
    assert len(times["bare"]) == 9 and len(times["a"]) == 4


def test_paired_rounds_refuse_a_focus_with_nothing_beside_it():
    with pytest.raises(ValueError, match="focus"):
        paired_rounds(lambda name: 1.0, ["a"], 2, focus="a")
    with pytest.raises(ValueError, match="focus"):
        paired_rounds(lambda name: 1.0, ["a", "b"], 2, focus="c")
