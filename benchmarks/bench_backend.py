"""The callback's cost on any Keras backend, without a window: for GPU machines (JAX, torch).

No Qt is needed (a GPU server has no screen, often no PyQt5): ``QtMonitor`` there finds
no window, warns, and keeps the run log, written by its log thread (the receiver's
place). So this measures what kerasqt adds to training when nothing is drawn: the
callback's batch hooks (``async_safe``, so on JAX and torch Keras runs them on a thread
pool) and a thread that drains the queue and writes the log. The window's drawing is
measured by ``bench_fit.py`` on the CPU.

One model like ``../shared/bench``'s MLP (64-256-256-1, batch 256, mean squared error
+ mean absolute error) on synthetic data; steps per fit calibrated to about
``--fit-seconds`` of bare ``fit``. Variants:

* ``bare``: no callback;
* ``qtmonitor``: ``QtMonitor()`` with no window: batch hooks + the run log's thread;
* ``qtmonitor_refine``: the same, and the log thread also refines every chunk it drains
  as the receiver does (smoothing, rates, ETA, pairing), so the receiver's whole work
  runs beside training, only its Qt signals are missing;
* ``queue_worker``: the reference worker (queue put per batch, ``async_safe``, a thread
  blocking on ``get``), as in ``../shared/bench``;
* ``plain_callback``: a callback that only overrides ``on_train_batch_end`` (no
  ``async_safe``: Keras then runs every batch hook synchronously);
* ``csvlogger``: ``keras.callbacks.CSVLogger``.

Rounds (``common.paired_rounds``): the variants in a rotating order, each between two bare
fits, ``qtmonitor`` before each of the others (``bench_fit.py`` gives it a series of its own
instead, away from heavy anchors); a variant's ratio is its time over the mean of the two bare
fits beside it; each figure is the median of its ratios, with their interquartile range (and a
95 % confidence interval of the median from 6 on).
(The torch figures in ``results_h200.json`` were measured before this: there a round's
variants all ran once, between one pair of bare fits.)

    KERAS_BACKEND=jax python benchmarks/bench_backend.py --out jax.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import load_average, median, paired_rounds, print_ratios, rounds_figures, write  # noqa: E402


def build(n: int, seed: int = 0):
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse", metrics=["mae"])
    rng = np.random.default_rng(seed)
    x = rng.random((n, 64), dtype=np.float32)
    y = x.sum(1, keepdims=True)
    return model, x, y


def variants(tmp: Path, spent: dict):
    import keras

    from kerasqt import QtMonitor
    from kerasqt.refine import TrainingRefiner
    from kerasqt.runlog import RunLogWriter

    class PlainBatchEnd(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    class QueueWorker(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.async_safe = True
            self.q = queue.SimpleQueue()
            self.t = threading.Thread(target=self._drain, daemon=True)
            self.t.start()

        def _drain(self):
            while self.q.get() is not None:
                pass

        def on_train_batch_end(self, batch, logs=None):
            self.q.put((batch, logs))

        def on_train_end(self, logs=None):
            self.q.put(None)
            self.t.join()

    write = RunLogWriter.write
    refiner = {"r": None}

    def timed_write(self, events):  # the log thread's work, timed (and refined, for one variant)
        t0 = time.perf_counter()
        try:
            if refiner["r"] is not None and events:
                refiner["r"].refine(events)
            return write(self, events)
        finally:
            spent["s"] += time.perf_counter() - t0

    RunLogWriter.write = timed_write

    def monitor(refine: bool):
        def make():
            refiner["r"] = TrainingRefiner() if refine else None
            return [QtMonitor(log_dir=str(tmp / "runs"), capture_output=False)]
        return make

    return {
        "bare": lambda: [],
        "qtmonitor": monitor(False),
        "qtmonitor_refine": monitor(True),
        "queue_worker": lambda: [QueueWorker()],
        "plain_callback": lambda: [PlainBatchEnd()],
        "csvlogger": lambda: [keras.callbacks.CSVLogger(str(tmp / "log.csv"))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fit-seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON, and a plot beside it (.png)")
    parser.add_argument("--plot-only", type=Path, metavar="JSON",
                        help="only draw the plot of earlier results (one run's JSON, or {'runs': {name: run}})")
    args = parser.parse_args()
    if args.plot_only is not None:
        data = json.loads(args.plot_only.read_text())
        runs = data.get("runs", {args.plot_only.stem: data})
        print("wrote", plot(runs, HERE / "plots" / f"backend_overhead_{args.plot_only.stem}.png", data.get("machine")))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):  # no screen, as on a GPU server
        os.environ.pop(name, None)
    import keras

    from kerasqt.events import BatchEvent
    from kerasqt.runlog import read_run

    batch, epochs = 256, 2
    model, x, y = build(batch * 200)
    model.fit(x, y, batch_size=batch, epochs=2, verbose=0)  # build, compile, warm
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    ms_per_step = (time.perf_counter() - t0) / 200 * 1e3
    steps = max(200, int(args.fit_seconds / epochs / ms_per_step * 1e3))
    model, x, y = build(batch * steps)
    print(f"{keras.backend.backend()}: calibration {ms_per_step:.3f} ms/step -> {epochs} epochs x {steps} steps",
          flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="kerasqt-bench-backend-"))
    spent = {"s": 0.0}
    table = variants(tmp, spent)
    names = list(table)
    ours = ("qtmonitor", "qtmonitor_refine")

    def fit(name: str, part: int | None = None) -> dict:
        cbs = table[name]()
        xs, ys = (x, y) if part is None else (x[:part], y[:part])
        gc.collect()
        spent["s"] = 0.0
        with warnings.catch_warnings(record=True) as caught:  # "no window ... logged to ..."
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            model.fit(xs, ys, batch_size=batch, epochs=epochs, verbose=0, callbacks=cbs)
            seconds = time.perf_counter() - t0
        rec = {"seconds": seconds}
        if name in ours:
            mon = cbs[0]
            if mon._recorder.follower is not None:
                mon._recorder.follower.join(5.0)
            if mon.window is not None:
                raise SystemExit("a window opened: this benchmark measures the monitor without one")
            run = read_run(mon.log_path)
            ours_warned = [str(w.message) for w in caught if str(w.message).startswith("kerasqt:")]
            rec.update(thread_s=spent["s"], logged_batches=run.count(BatchEvent), ended=run.ended,
                       warning=ours_warned[0] if ours_warned else None)
        return rec

    for name in names:  # warm-up: one short fit per variant
        fit(name, part=batch * 50)
    monitor_runs: dict[str, list[dict]] = {n: [] for n in ours}
    load_before = load_average()
    others = [n for n in names if n != "bare"]

    def timed(name: str) -> float:
        rec = fit(name)
        if name in ours:
            monitor_runs[name].append(rec)
        return rec["seconds"]

    times, paired = paired_rounds(timed, others, args.rounds, focus="qtmonitor")

    total = epochs * steps
    keys = {n: f"fit_overhead_ratio_{n}" for n in others}
    figures = rounds_figures("MLP 64-256-256-1, batch 256, adam, mse + mae", epochs, steps, times, paired, keys,
                             load_before, {"monitor_runs": monitor_runs}, device=_device())
    for name in ours:
        runs = monitor_runs[name]
        figures[f"{name}_thread_ms_per_fit"] = round(median([r["thread_s"] for r in runs]) * 1e3, 2)
        figures[f"{name}_logged_all_batches"] = all(r["logged_batches"] == total and r["ended"] for r in runs)
    print(f"{figures['backend']} on {figures['device']}: bare fit {figures['bare_fit_s']:.2f} s "
          f"({figures['bare_ms_per_step']} ms/step); ratios, median over {args.rounds} rounds "
          f"({figures['samples']['qtmonitor']} fits of QtMonitor, {args.rounds} of each other):")
    print_ratios(figures, keys)
    for name in ours:
        print(f"  {name}: log thread {figures[f'{name}_thread_ms_per_fit']} ms per fit, every batch logged: "
              f"{figures[f'{name}_logged_all_batches']}")
    print(f"  the monitor's warning: {monitor_runs['qtmonitor'][0]['warning']}", flush=True)
    write(args.out, figures)
    if args.out is not None:
        print("wrote", plot({f"{figures['backend']}": figures}, args.out.with_suffix(".png")))


NAMES = {"qtmonitor": "QtMonitor, no window (hooks + log thread)", "qtmonitor_refine": "QtMonitor + refining",
         "queue_worker": "reference queue worker (async_safe)", "plain_callback": "plain callback (sync hook)",
         "csvlogger": "CSVLogger"}


def plot(runs: dict, path: Path, machine: str | None = None) -> Path:
    """One panel per run: each variant's median ratio as a bar, every round's paired ratio as a dot."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs) + 2.2, 3.6), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (name, run) in zip(axes[0], runs.items(), strict=True):
        paired = run["raw"]["paired_ratios"]
        names = [n for n in NAMES if n in paired]
        for row, n in enumerate(names):
            med = run[f"fit_overhead_ratio_{n}"]
            ax.barh(row, med - 1, left=1, height=0.6, color="C0" if n.startswith("qtmonitor") else "0.65")
            ax.plot(paired[n], [row] * len(paired[n]), "o", color="k", ms=3, alpha=0.6)
            ax.annotate(f"{med:.3f}", (max(paired[n] + [med]), row), xytext=(4, -3), textcoords="offset points",
                        fontsize=7)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_yticks(range(len(names)), [NAMES[n] for n in names])
        ax.set_title(f"{run['backend']} on {run.get('device', '?')}, {run['bare_ms_per_step']} ms/step\n"
                     f"{name}: median (bar) of the fits (dots)", fontsize=9)
        ax.set_xlabel("fit time / bare fit time")
    if machine:
        fig.suptitle(machine, fontsize=7, color="0.4", x=0.99, ha="right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _device() -> str:
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            return str(jax.devices()[0].device_kind)
        if keras.backend.backend() == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    except Exception as exc:  # the figure is a label only
        return f"unknown ({exc})"
    return "cpu"


if __name__ == "__main__":
    main()
