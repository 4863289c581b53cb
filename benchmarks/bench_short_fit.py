"""What a watched ``fit`` costs once per call: short fits, as a hyperparameter loop or a re-run
notebook cell makes them.

The model of ``bench_fit.py`` (an MLP 16-32-1 on 32-sample batches), its window already open
and its run log on, in the main thread as in a script. Two sizes:

* 20 steps (one epoch): ``fit_fixed_cost_ms`` is the median of (watched - bare) over 20
  alternating pairs, with its interquartile range and a 95 % interval of the median;
  CSVLogger and a plain callback (``on_train_batch_end: pass``) beside it, 10 pairs each;
* 500 steps (one epoch): the ratio watched / bare, 5 alternating pairs.

Wall-clock differences of fits this short scatter by tens of milliseconds on a shared 2-core
machine, so beside each wall-clock figure the same pairs give the process' CPU time
(``time.process_time``: every thread of this process, the receiver's and the drawing's
included; what other processes do on the machine does not count):
``fit_fixed_cost_cpu_ms``.

What goes into the fixed cost, measured with timers around the monitor's hooks in extra fits
(not in the figures above): ``on_train_begin`` and ``on_train_end`` in milliseconds.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

from bench_fit import build, settle
from common import median, median_ci95, parse_args, percentile, setup_env, write


def main() -> None:
    args = parse_args(__doc__)
    setup_env()
    import keras

    from kerasqt import QtMonitor
    from kerasqt.qtapp import ensure_app

    pairs, anchor_pairs, long_pairs = (6, 3, 2) if args.quick else (20, 10, 5)
    tmp = Path(tempfile.mkdtemp(prefix="kerasqt-bench-short-"))
    app = ensure_app()
    monitor = QtMonitor(title="kerasqt short fits", log_dir=str(tmp / "runs"))
    monitor.show()
    settle(app, 0.5)

    class PlainBatchEnd(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    model, x, y, _ = build(500)
    callbacks = {
        "bare": lambda: [],
        "qtmonitor": lambda: [monitor],
        "csvlogger": lambda: [keras.callbacks.CSVLogger(str(tmp / "log.csv"))],
        "plain_callback": lambda: [PlainBatchEnd()],
    }

    cpu: dict[str, list[float]] = {}

    def fit(name: str, steps: int) -> float:
        cbs = callbacks[name]()
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        model.fit(x[: 32 * steps], y[: 32 * steps], batch_size=32, epochs=1, verbose=0, callbacks=cbs)
        seconds = time.perf_counter() - t0
        cpu.setdefault(f"{name}:{steps}", []).append(time.process_time() - c0)
        settle(app, 0.15)  # the window shows the end between two fits, as between two cells
        return seconds

    for name in callbacks:  # warm: trace both sizes, open the first log
        fit(name, 20)
        fit(name, 500)

    def pairs_of(name: str, steps: int, n: int) -> list[tuple[float, float]]:
        out = []
        for i in range(n):
            if i % 2:  # alternate which goes first
                w, b = fit(name, steps), fit("bare", steps)
            else:
                b, w = fit("bare", steps), fit(name, steps)
            out.append((b, w))
        return out

    figures: dict = {"model": "MLP 16-32-1, batch 32, adam, binary cross-entropy + accuracy, one epoch",
                     "pairs": pairs}
    print(f"20-step fits, {pairs} pairs with QtMonitor:", flush=True)
    for name, n in (("qtmonitor", pairs), ("csvlogger", anchor_pairs), ("plain_callback", anchor_pairs)):
        cpu.clear()
        got = pairs_of(name, 20, n)
        cpu_extra = [(w - b) * 1e3 for b, w in zip(cpu["bare:20"], cpu[f"{name}:20"], strict=True)]
        extra = [(w - b) * 1e3 for b, w in got]
        key = "fit_fixed_cost_ms" if name == "qtmonitor" else f"fit_fixed_cost_ms_{name}"
        ci = median_ci95(extra)
        figures[key] = round(median(extra), 2)
        figures[key + "_iqr"] = round(percentile(extra, 75) - percentile(extra, 25), 2)
        figures[key + "_ci95"] = [round(v, 2) for v in ci] if ci else None
        figures[f"ratio_20_steps_{name}"] = round(median([w / b for b, w in got]), 3)
        cpu_key = key.replace("_ms", "_cpu_ms")
        figures[cpu_key] = round(median(cpu_extra), 2)
        figures[cpu_key + "_iqr"] = round(percentile(cpu_extra, 75) - percentile(cpu_extra, 25), 2)
        if name == "qtmonitor":
            figures["bare_20_steps_ms"] = round(median([b for b, _ in got]) * 1e3, 1)
            figures["fit_fixed_cost_ms_samples"] = [round(v, 1) for v in extra]
        print(f"  {name}: {figures[key]} ms more per fit (IQR {figures[key + '_iqr']}, 95 % interval "
              f"{figures[key + '_ci95']}), ratio {figures[f'ratio_20_steps_{name}']}; CPU time "
              f"{figures[cpu_key]} ms more (IQR {figures[cpu_key + '_iqr']})", flush=True)
    got = pairs_of("qtmonitor", 500, long_pairs)
    figures["ratio_500_steps_qtmonitor"] = round(median([w / b for b, w in got]), 3)
    figures["bare_500_steps_ms"] = round(median([b for b, _ in got]) * 1e3, 1)
    print(f"500-step fits, {long_pairs} pairs: ratio {figures['ratio_500_steps_qtmonitor']} "
          f"(bare {figures['bare_500_steps_ms']} ms)", flush=True)

    # Where the fixed cost goes: the two hooks that bracket a fit, timed in extra fits.
    spent: dict[str, list[float]] = {"on_train_begin": [], "on_train_end": []}
    originals = {hook: QtMonitor.__dict__[hook] for hook in spent}
    for hook, original in originals.items():

        def timed(self, logs=None, _original=original, _hook=hook):
            t0 = time.perf_counter()
            try:
                return _original(self, logs)
            finally:
                spent[_hook].append((time.perf_counter() - t0) * 1e3)

        setattr(QtMonitor, hook, timed)
    try:
        for _ in range(5):
            fit("qtmonitor", 20)
    finally:
        for hook, original in originals.items():
            setattr(QtMonitor, hook, original)
    figures["hooks_ms"] = {hook: round(median(v), 2) for hook, v in spent.items()}
    print(f"  in the hooks that bracket a fit (median of 5): {figures['hooks_ms']}", flush=True)
    monitor.close()
    settle(app, 0.2)
    write(args.out, figures)


if __name__ == "__main__":
    main()
