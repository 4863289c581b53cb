"""Throughput and latency: a producer at 10,000 batch events per second for 30 seconds.

The producer is a thread that calls ``QtMonitor``'s Keras hooks the way a ``fit``
in a background thread does (``fit_in_background``): ``on_train_batch_begin`` and
``on_train_batch_end`` with 4 metrics per batch, paced to the rate. The window
is open (offscreen), in the main thread, which runs the Qt event loop. Measured:

* ``events_per_s_sustained``: batch events the window held 1 s after the producer's
  last one, per second of production (10,000 when the receiver keeps up);
* ``queue_depth_max``: the most events waiting in the queue (sampled every 10 ms);
* ``loop_lag_ms_max``: how late a 10 ms timer in the main thread fired, at worst;
* ``latency_ms_p95`` (and p50, max): time from ``on_train_batch_end`` to the end of
  the first frame that drew the point (a blit has put it on the screen by then).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from common import load_average, median, noisy_curves, parse_args, percentile, setup_env, write

KEYS = ("loss", "accuracy", "mae", "auc")


def main() -> None:
    args = parse_args(__doc__)
    setup_env()
    import inspect

    import keras
    import numpy as np
    from qtpy.QtCore import QEventLoop, Qt, QTimer

    from kerasqt import QtMonitor
    from kerasqt.plotting import MetricsPlot
    from kerasqt.qtapp import ensure_app

    rate = 10_000
    seconds = 6.0 if args.quick else 30.0
    total = int(rate * seconds)
    curves = {k: v.tolist() for k, v in noisy_curves(total, KEYS).items()}
    put_at = np.zeros(total + 2)

    # Which step is on screen when: every frame that drew something.
    frames: list[tuple[float, int, str]] = []
    draw_frame = MetricsPlot.draw_frame

    def timed_draw_frame(self, *a, **kw):
        kind = draw_frame(self, *a, **kw)
        if kind is not None and len(self.batches):
            frames.append((time.perf_counter(), int(self.batches.steps[-1]), kind))
        return kind

    MetricsPlot.draw_frame = timed_draw_frame

    app = ensure_app()
    tmp = Path(tempfile.mkdtemp(prefix="kerasqt-bench-latency-"))
    kwargs = {"log_dir": str(tmp / "runs")} if "log_dir" in inspect.signature(QtMonitor).parameters else {}
    monitor = QtMonitor(title="kerasqt latency benchmark", **kwargs)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    monitor.show()
    win = monitor.window
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)

    produced = {"n": 0, "t0": 0.0, "t1": 0.0}

    def produce() -> None:  # the training thread: as Keras does, it hands the model and params, then begins
        monitor.set_model(model)
        monitor.set_params({"epochs": 1, "steps": total, "verbose": 0})
        monitor.on_train_begin()
        monitor.on_epoch_begin(0)
        t0 = produced["t0"] = time.perf_counter()
        i = 0
        while i < total:
            due = min(int((time.perf_counter() - t0) * rate) + 1, total)
            while i < due:
                logs = {k: curves[k][i] for k in KEYS}
                put_at[i + 1] = time.perf_counter()  # the step on_train_batch_end gives this batch
                monitor.on_train_batch_begin(i)
                monitor.on_train_batch_end(i, logs)
                i += 1
            time.sleep(0.0005)
        produced["t1"] = time.perf_counter()
        produced["n"] = i
        monitor.on_epoch_end(0, {k: curves[k][-1] for k in KEYS})
        monitor.on_train_end()

    lags: list[float] = []
    depths: list[int] = []
    held: list[tuple[float, int]] = []  # (time, batch rows the window holds)
    tick = {"last": time.perf_counter()}

    def on_tick() -> None:
        now = time.perf_counter()
        lags.append((now - tick["last"] - 0.010) * 1e3)
        tick["last"] = now
        depths.append(monitor.events.qsize())
        held.append((now, len(win.plot.batches)))

    timer = QTimer()
    timer.setTimerType(Qt.PreciseTimer)
    timer.timeout.connect(on_tick)
    loop = QEventLoop()
    producer = threading.Thread(target=produce, name="bench-producer", daemon=True)

    def finish_when_done() -> None:
        shown = frames[-1][1] if frames else -1
        if not producer.is_alive() and not win.training.running and shown >= len(win.plot.batches):
            loop.quit()

    watcher = QTimer()
    watcher.timeout.connect(finish_when_done)
    load_before = load_average()
    tick["last"] = time.perf_counter()
    timer.start(10)
    watcher.start(50)
    producer.start()
    QTimer.singleShot(int((seconds + 30) * 1000), loop.quit)  # bounded, whatever happens
    loop.exec_()
    timer.stop()
    watcher.stop()
    producer.join(5)
    received = len(win.plot.batches)
    for _ in range(10):
        app.processEvents()
        time.sleep(0.01)
    monitor.close()
    app.processEvents()
    MetricsPlot.draw_frame = draw_frame

    # First frame showing each step: frames are in time order, steps on screen only grow.
    latencies = np.empty(0)
    if frames:
        times = np.array([f[0] for f in frames])
        shown = np.maximum.accumulate(np.array([f[1] for f in frames]))
        steps = np.arange(1, received + 1)
        first = np.searchsorted(shown, steps, side="left")
        ok = first < len(frames)
        latencies = (times[first[ok]] - put_at[steps[ok]]) * 1e3
    # Kept up: what the window held 1 s after the producer's last event, per second of production.
    by_then = max((n for t, n in held if t <= produced["t1"] + 1.0), default=0)
    sustained = by_then / (produced["t1"] - produced["t0"])
    during = [f for f in frames if f[0] <= produced["t1"]]
    figures = {
        "rate_asked": rate,
        "seconds": seconds,
        "metrics": len(KEYS),
        "produced": produced["n"],
        "producer_rate": round(produced["n"] / (produced["t1"] - produced["t0"]), 1),
        "received": received,
        "events_per_s_sustained": round(sustained, 1),
        "queue_depth_max": int(max(depths, default=0)),
        "queue_depth_median": median(depths) if depths else 0,
        "loop_lag_ms_max": round(max(lags, default=float("nan")), 2),
        "loop_lag_ms_p99": round(percentile(lags, 99), 2) if lags else None,
        "latency_ms_p50": round(percentile(latencies, 50), 1) if len(latencies) else None,
        "latency_ms_p95": round(percentile(latencies, 95), 1) if len(latencies) else None,
        "latency_ms_max": round(float(latencies.max()), 1) if len(latencies) else None,
        "frames_per_s_during_run": round(len(during) / (produced["t1"] - produced["t0"]), 1),
        "frame_kinds": {k: sum(1 for f in frames if f[2] == k) for k in ("blit", "part", "full")},
        "frame_ms_median": round(median(win.frame_ms), 2) if win.frame_ms else None,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "raw": {"latency_ms": latencies[:: max(1, len(latencies) // 5000)].round(2).tolist(),
                "lag_ms": [round(v, 2) for v in lags], "queue_depth": depths},
    }
    print(f"{figures['produced']:,} events at {figures['producer_rate']:,.0f}/s: window received {received:,}, "
          f"sustained {figures['events_per_s_sustained']:,.0f}/s, queue depth max {figures['queue_depth_max']}")
    print(f"10 ms timer late by at most {figures['loop_lag_ms_max']} ms (p99 {figures['loop_lag_ms_p99']} ms); "
          f"latency p50 {figures['latency_ms_p50']} ms, p95 {figures['latency_ms_p95']} ms, "
          f"max {figures['latency_ms_max']} ms; {figures['frames_per_s_during_run']} frames/s "
          f"({figures['frame_kinds']}, median {figures['frame_ms_median']} ms)", flush=True)
    write(args.out, figures)


if __name__ == "__main__":
    main()
