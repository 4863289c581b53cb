"""What the benchmark scripts share: environment, command line, a realistic curve, statistics.

Every benchmark is a script that prints its figures and writes them as JSON
(``--out``); ``run_all.py`` runs each in its own process and merges the figures.
Nothing here is a test: no figure is asserted, targets are only reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def setup_env() -> None:
    """Headless Qt, TensorFlow quietly, non-interactive pyplot (for livelossplot); before any import."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="kerasqt-bench-xdg-"))
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")  # pyplot users (livelossplot); kerasqt uses its Qt canvas
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("KERASQT_BENCH_QUICK")),
                        help="smaller sizes and fewer repeats, to try the script (env KERASQT_BENCH_QUICK=1)")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    return parser.parse_args()


def write(out: Path | None, figures: dict) -> None:
    text = json.dumps(figures, indent=1, default=float)
    if out is None:
        print(text)
    else:
        out.write_text(text)


def median(values) -> float:
    return float(statistics.median(values))


def percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, float), q))


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def paired_rounds(fit, variants: list[str], rounds: int, focus: str | None = None) -> tuple[dict, dict]:
    """Time ``fit(name)`` (seconds) for every variant ``rounds`` times, each between two bare fits.

    Round r runs the variants in a rotating order (starting at the r-th) as ``bare``, A,
    ``bare``, B, ..., ``bare`` (a bare fit is shared by its neighbours). A variant's ratio is
    its time over the mean of the two bare fits beside it, so that a change in the machine's
    speed cancels unless it falls inside those three fits. ``focus`` (one of ``variants``)
    runs before each of the others instead of once a round (``bare``, F, ``bare``, A,
    ``bare``, F, ``bare``, B, ...): the figure that must be the most precise gets as many
    samples as all the others together. Returns ``(times, paired)``: each name's seconds and
    each name's ratios (``bare``: 1.0 per round).

    Neighbouring ratios share a bare fit, so they are not quite independent: intervals computed
    from them (:func:`median_ci95`) are nominal.
    """
    if not variants or "bare" in variants or rounds < 1:
        raise ValueError(f"need variants other than 'bare' and rounds >= 1, got {variants!r}, {rounds!r}")
    if focus is not None and (focus not in variants or len(variants) < 2):
        raise ValueError(f"focus must be one of two or more variants, got {focus!r} for {variants!r}")
    others = [n for n in variants if n != focus]
    times: dict[str, list[float]] = {n: [] for n in ["bare", *variants]}
    paired: dict[str, list[float]] = {n: [] for n in ["bare", *variants]}
    bare_before = fit("bare")
    times["bare"].append(bare_before)
    for r in range(rounds):
        k = r % len(others)
        order = others[k:] + others[:k]
        if focus is not None:
            order = [name for other in order for name in (focus, other)]
        paired["bare"].append(1.0)
        this: dict[str, list[float]] = {}
        for name in order:
            seconds = fit(name)
            bare_after = fit("bare")
            times[name].append(seconds)
            times["bare"].append(bare_after)
            ratio = seconds / ((bare_before + bare_after) / 2)
            paired[name].append(ratio)
            this.setdefault(name, []).append(ratio)
            bare_before = bare_after
        print(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{n} " + "/".join(f"{v:.3f}" for v in this[n]) for n in variants if n in this), flush=True)
    return times, paired


def ratio_key(name: str) -> str:
    """The results key of a ``bench_fit`` variant's ratio: QtMonitor's is the issue's headline."""
    return "fit_overhead_ratio" if name == "qtmonitor" else f"fit_overhead_ratio_{name}"


def rounds_figures(model: str, epochs: int, steps_per_epoch: int, times: dict, paired: dict, keys: dict,
                   load_before: list, raw: dict, **fields) -> dict:
    """The figures of :func:`paired_rounds`: the model, the machine, the bare fit, and for each
    variant (``keys``: name -> figure key) its median ratio, their interquartile range, a 95 %
    interval of the median and the extra time per step that ratio means at the bare fit's step.
    ``fields`` go after the Keras version; ``raw`` into ``raw``."""
    import keras

    base = median(times["bare"])
    steps = epochs * steps_per_epoch
    figures = {
        "model": model,
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        **fields,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "rounds": len(paired["bare"]),
        "samples": {name: len(paired[name]) for name in keys},
        "bare_ms_per_step": round(base / steps * 1e3, 4),
        "bare_fit_s": round(base, 3),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "raw": {"times": times, "paired_ratios": paired, **raw},
    }
    for name, key in keys.items():
        ratios = paired[name]
        figures[key] = round(median(ratios), 4)
        figures[f"{key}_iqr"] = round(percentile(ratios, 75) - percentile(ratios, 25), 4)
        ci = median_ci95(ratios)
        if ci is not None:
            figures[f"{key}_ci95"] = [round(v, 4) for v in ci]
        figures[f"extra_us_per_step_{name}"] = round((median(ratios) - 1) * base / steps * 1e6, 1)
    return figures


def median_ci95(values) -> tuple[float, float] | None:
    """A distribution-free 95 % confidence interval of the median: the k-th smallest and the
    k-th largest value, k the largest with P(Binomial(n, 1/2) < k) <= 2.5 %. None under 6 values
    (there even the smallest and the largest do not reach 95 %)."""
    from math import comb

    xs = sorted(values)
    n = len(xs)
    k, below = 0, 0.0
    while below + comb(n, k) / 2**n <= 0.025:
        below += comb(n, k) / 2**n
        k += 1
    if k == 0:
        return None
    return xs[k - 1], xs[n - k]


def print_ratios(figures: dict, keys: dict) -> None:
    """One line per variant: its median ratio, their spread and its extra time per step."""
    width = max(map(len, keys)) + 2
    for name, key in keys.items():
        print(f"  {name:<{width}}{figures[key]:.3f} (IQR {figures[key + '_iqr']:.3f}, "
              f"{figures[f'extra_us_per_step_{name}']:+.1f} us/step)")


def noisy_curves(n: int, keys=("loss", "accuracy", "mae", "auc"), seed: int = 0):
    """Realistic per-batch metric curves of ``n`` steps: a decaying trend, noise, rare spikes.

    Returns ``{key: float32 array}``; loss-like keys fall, accuracy-like keys rise.
    Every point differs from its neighbours (no flat stretches), the hard case for drawing.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(n) / max(n, 1)
    out = {}
    for i, key in enumerate(keys):
        scale = 0.15 + 0.1 * i
        if key in ("accuracy", "auc"):
            trend = 0.97 - 0.6 * np.exp(-t / scale)
            y = trend - np.abs(rng.normal(0, 0.04, n)) * (1.2 - trend)
        else:
            trend = 0.12 + 2.0 * np.exp(-t / scale)
            y = trend * rng.lognormal(0.0, 0.22, n)
            spikes = rng.random(n) < 2e-4
            y[spikes] *= rng.uniform(2, 6, int(spikes.sum()))
        out[key] = y.astype(np.float32)
    return out


def moving_average(y, a: float = 0.9):
    """Exponential moving average as the refiner computes it (weight ``a`` on the past)."""
    import numpy as np

    try:
        from scipy.signal import lfilter

        out = lfilter([1 - a], [1, -a], np.asarray(y, float), zi=[a * float(y[0])])[0]
    except ImportError:  # pragma: no cover - scipy comes with the bench extra
        out = np.empty(len(y))
        last = float(y[0])
        for i, v in enumerate(np.asarray(y, float).tolist()):
            last = a * last + (1 - a) * v
            out[i] = last
    return out.astype(np.float32)


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0


def screen_latency_ms(frame_times, frame_steps, batch_steps, batch_times):
    """From each batch's time to the first frame that showed its step, in ms, and how many batches no
    frame showed. A frame (its end time, the last step it drew) shows every step up to its last: the
    steps on the screen only grow. Times in seconds, any clock both share."""
    import numpy as np

    order = np.argsort(np.asarray(frame_times, float), kind="stable")
    times = np.asarray(frame_times, float)[order]
    shown = np.maximum.accumulate(np.asarray(frame_steps, np.int64)[order]) if len(order) else np.empty(0, np.int64)
    steps = np.asarray(batch_steps, np.int64)
    first = np.searchsorted(shown, steps, side="left")
    ok = first < len(times)
    ms = (times[first[ok]] - np.asarray(batch_times, float)[ok]) * 1e3
    return ms, int((~ok).sum())
