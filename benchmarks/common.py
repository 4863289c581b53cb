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
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
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
