"""What per-batch callbacks cost ``model.fit``: QtMonitor with its window live, against anchors.

One model with short steps (~1 ms on a 2-core CPU, TensorFlow): an MLP 16-32-1
on 32-sample batches, with validation data. The steps per epoch are calibrated
so that a bare ``fit`` takes about 4 s (4 epochs) on the machine as it is now.
Each variant is a ``fit`` of the same model (weights carry on: every variant
trains the same kind of steps):

* ``bare``: no callback;
* ``qtmonitor``: ``QtMonitor()`` with its window open, in the main thread as in a
  script: the callback turns the Qt event loop and the window redraws new points
  while ``fit`` runs (its redraws per second are reported);
* ``plain_callback``: a callback that only overrides ``on_train_batch_end`` (``pass``);
* ``tensorboard``: ``keras.callbacks.TensorBoard(update_freq="batch")`` into a temp dir;
* ``csvlogger``: ``keras.callbacks.CSVLogger`` into a temp file;
* ``livelossplot``: ``PlotLossesKeras`` with its Matplotlib output written to a file
  (pyplot on Agg; it redraws after each epoch, and in a script it pauses 0.1 s there).

Two series (``common.paired_rounds``), each fit between two ``bare`` fits, its ratio
its time over the mean of the two, so that a change in the machine's speed (this shared
2-core machine switches between a fast and a slower state every minute or so) cancels
unless it falls inside those three fits:

1. ``qtmonitor`` alone, 26 times: bare, qtmonitor, bare, qtmonitor, ..., bare. Its target
   is close to 1, so it gets the samples, and no anchor runs next to it: a heavy anchor
   slows the bare fit after it a little (TensorBoard's and livelossplot's leftovers), which
   would bias the ratios of the fits beside that bare fit.
2. the anchors (and ``qtmonitor_no_log``), 3 rounds in a rotating order: bare, A, bare, B, ...

Each figure is the median of its ratios, with their spread (interquartile range) and,
from 6 on, a distribution-free 95 % confidence interval of the median.

What keeps QtMonitor from 1.00, measured without the machine's noise: two more fits
with timers around its hooks give the milliseconds per fit spent inside them on the
training thread (a main-thread ``fit`` turns the Qt event loop there, so the window's
frames and updates are in it), and the receiver thread's CPU time.

The run log's cost, as a bound that does not depend on the machine's noise: the time the
receiver thread spent writing the log during the fit over the fit's time (the training
thread cannot lose more than the writer takes, plus a thread switch). ``qtmonitor_no_log``
(the same monitor and window, log off) is in the table beside it.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import io
import tempfile
import time
from pathlib import Path

from common import (
    load_average,
    median,
    paired_rounds,
    parse_args,
    print_ratios,
    ratio_key,
    rounds_figures,
    setup_env,
    write,
)


def build(steps_per_epoch: int, seed: int = 0):
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    n = 32 * steps_per_epoch
    x = rng.standard_normal((n, 16)).astype("float32")
    y = (x[:, :4].sum(1) + 0.5 * rng.standard_normal(n) > 0).astype("float32")[:, None]
    xv = rng.standard_normal((n // 10, 16)).astype("float32")
    yv = (xv[:, :4].sum(1) > 0).astype("float32")[:, None]
    return model, x, y, (xv, yv)


def variants(tmp: Path, monitor):
    import keras

    class PlainBatchEnd(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    def tensorboard():
        return [keras.callbacks.TensorBoard(log_dir=str(tmp / f"tb-{time.monotonic_ns()}"), update_freq="batch")]

    def live_loss_plot():
        from livelossplot import PlotLossesKeras
        from livelossplot.outputs import MatplotlibPlot

        return [PlotLossesKeras(outputs=[MatplotlibPlot(figpath=str(tmp / "livelossplot.png"))], mode="script")]

    def without_log():
        monitor.log_dir = None  # the same monitor and window, its run log off for this fit
        return [monitor]

    def with_log():
        monitor.log_dir = str(tmp / "runs")
        return [monitor]

    out = {
        "bare": lambda: [],
        "qtmonitor": with_log,
        "qtmonitor_no_log": without_log,
        "plain_callback": lambda: [PlainBatchEnd()],
        "tensorboard": tensorboard,
        "csvlogger": lambda: [keras.callbacks.CSVLogger(str(tmp / "log.csv"))],
    }
    try:
        import livelossplot  # noqa: F401

        out["livelossplot"] = live_loss_plot
    except ImportError:
        print("livelossplot is not installed: its anchor is left out")
    return out


def timed(method, spent: dict, key: str, clock=time.perf_counter):
    """``method`` wrapped to add the ``clock`` seconds each call takes to ``spent[key]``."""
    def wrapper(*args, **kwargs):
        t0 = clock()
        try:
            return method(*args, **kwargs)
        finally:
            spent[key] += clock() - t0
    return wrapper


def time_run_log_writes() -> dict:
    """Add up the seconds ``RunLogWriter.write`` takes (the receiver thread's log work) in ``["s"]``."""
    from kerasqt.runlog import RunLogWriter

    spent = {"s": 0.0}
    RunLogWriter.write = timed(RunLogWriter.write, spent, "s")
    return spent


HOOKS = ("on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
         "on_test_end", "on_epoch_end", "on_train_end")


@contextlib.contextmanager
def timed_work(cls):
    """Meanwhile, add up the seconds spent in each of ``cls``'s Keras hooks (on the training thread:
    during a main-thread ``fit`` that includes the event loop's turns, hence the window's frames and
    updates) and the receiver threads' CPU time, in the dict it yields."""
    from kerasqt.receiver import Receiver

    spent = {name: 0.0 for name in (*HOOKS, "receiver_cpu")}
    saved = {name: getattr(cls, name) for name in HOOKS}
    run = Receiver.run
    for name, method in saved.items():
        setattr(cls, name, timed(method, spent, name))
    Receiver.run = timed(run, spent, "receiver_cpu", time.thread_time)
    try:
        yield spent
    finally:
        for name, method in saved.items():
            setattr(cls, name, method)
        Receiver.run = run


def settle(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    args = parse_args(__doc__)
    setup_env()
    import matplotlib.pyplot as plt

    from kerasqt import QtMonitor
    from kerasqt.qtapp import ensure_app

    epochs, monitor_fits, rounds, fit_seconds = (2, 4, 1, 2.5) if args.quick else (4, 26, 3, 4.0)
    # Calibrate: steps per epoch such that a bare fit takes about fit_seconds on this machine now.
    model, x, y, val = build(300)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)  # build, trace, warm
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    ms_per_step = (time.perf_counter() - t0) / 300 * 1e3
    steps = max(200, int(fit_seconds / epochs / ms_per_step * 1e3))
    model, x, y, val = build(steps)
    print(f"calibration: {ms_per_step:.2f} ms/step -> {epochs} epochs x {steps} steps per fit", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="kerasqt-bench-fit-"))
    app = ensure_app()
    kwargs = {"log_dir": str(tmp / "runs")} if "log_dir" in inspect.signature(QtMonitor).parameters else {}
    monitor = QtMonitor(title="kerasqt benchmark", **kwargs)
    log_write = time_run_log_writes()
    monitor.show()
    settle(app, 0.5)
    table = variants(tmp, monitor)
    names = list(table)

    def fit(name: str, part: int | None = None) -> dict:
        cbs = table[name]()
        xs, ys = (x, y) if part is None else (x[:part], y[:part])
        win = monitor.window
        f0, full0 = win.frames, win.plot.full_draws
        gc.collect()
        log_write["s"] = 0.0
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # livelossplot clears a notebook cell's output
            model.fit(xs, ys, batch_size=32, epochs=epochs, validation_data=val, verbose=0, callbacks=cbs)
        seconds = time.perf_counter() - t0
        rec = {"seconds": seconds}
        if name == "qtmonitor":
            frames = win.frames - f0
            rec.update(frames=frames, full_draws=win.plot.full_draws - full0, redraws_per_s=frames / seconds,
                       frame_ms=list(win.frame_ms[-frames:]) if frames else [], log_write_s=log_write["s"])
        plt.close("all")
        settle(app, 0.3)  # the same pause after every fit: leftovers do not leak into the next
        return rec

    print("warm-up: one fit per variant", flush=True)
    for name in names:
        fit(name, part=32 * 100)
    monitor_runs = []
    load_before = load_average()

    def timed(name: str) -> float:
        rec = fit(name)
        if name == "qtmonitor":
            monitor_runs.append(rec)
        return rec["seconds"]

    print(f"QtMonitor, {monitor_fits} fits:", flush=True)
    times_q, paired_q = paired_rounds(timed, ["qtmonitor"], monitor_fits)
    print(f"the anchors, {rounds} rounds:", flush=True)
    anchors = [n for n in names if n not in ("bare", "qtmonitor")]
    times, paired = paired_rounds(timed, anchors, rounds)
    times.update(qtmonitor=times_q["qtmonitor"], bare=times_q["bare"] + times["bare"])
    paired["qtmonitor"] = paired_q["qtmonitor"]  # paired["bare"]: one per round of the anchors
    # Where QtMonitor's time goes, from timers around its hooks in two more fits (not in the ratios:
    # the timers cost a little themselves).
    work = []
    for _ in range(2):
        with timed_work(QtMonitor) as spent:
            rec = fit("qtmonitor")
        work.append({**{k: v * 1e3 for k, v in spent.items()}, "fit_s": rec["seconds"],
                     "frames_ms": sum(rec["frame_ms"])})
    monitor.close()
    settle(app, 0.2)

    keys = {n: ratio_key(n) for n in names[1:]}
    figures = rounds_figures("MLP 16-32-1, batch 32, adam, binary cross-entropy + accuracy, with validation data",
                             epochs, steps, times, paired, keys, load_before, {"monitor_runs": monitor_runs})
    figures["monitor_fits"] = monitor_fits
    figures["fit_overhead_ratio_samples"] = [round(r, 4) for r in paired["qtmonitor"]]
    figures["run_log_write_ms_per_fit"] = round(median([r["log_write_s"] for r in monitor_runs]) * 1e3, 2)
    figures["run_log_cost_bound_points"] = round(
        100 * median([r["log_write_s"] / r["seconds"] for r in monitor_runs]), 3)
    figures["redraws_per_s_during_fit"] = round(median([r["redraws_per_s"] for r in monitor_runs]), 2)
    figures["full_draws_per_fit"] = median([r["full_draws"] for r in monitor_runs])
    for w in work:
        w["hooks"] = sum(w[h] for h in HOOKS)
    hooks_ms = median([w["hooks"] for w in work])
    figures["hooks_ms_per_fit"] = round(hooks_ms, 1)
    figures["hooks_share_points"] = round(100 * median([w["hooks"] / (w["fit_s"] * 1e3) for w in work]), 2)
    figures["hooks_ms_per_fit_each"] = {h: round(median([w[h] for w in work]), 2) for h in HOOKS}
    figures["receiver_cpu_ms_per_fit"] = round(median([w["receiver_cpu"] for w in work]), 1)
    figures["hooks_frames_ms_per_fit"] = round(median([w["frames_ms"] for w in work]), 1)
    all_frames = [ms for r in monitor_runs for ms in r["frame_ms"]]
    figures["frame_ms_during_fit_median"] = round(median(all_frames), 2) if all_frames else None
    figures["draw_ms_per_fit"] = round(median([sum(r["frame_ms"]) for r in monitor_runs]), 1)
    print(f"bare fit {figures['bare_fit_s']:.2f} s ({figures['bare_ms_per_step']} ms/step); ratios, median over "
          f"its fits ({monitor_fits} of QtMonitor, {rounds} of each other):")
    print_ratios(figures, keys)
    print(f"  run log: writer {figures['run_log_write_ms_per_fit']} ms per fit, a bound of "
          f"{figures['run_log_cost_bound_points']} points")
    print(f"  window: {figures['redraws_per_s_during_fit']} redraws/s during fit, {figures['full_draws_per_fit']} "
          f"full draws and {figures['draw_ms_per_fit']} ms of drawing per fit", flush=True)
    print(f"  in QtMonitor's hooks (training thread; frames and updates included): {hooks_ms:.1f} ms per fit, "
          f"{figures['hooks_share_points']} % of it ({figures['hooks_frames_ms_per_fit']} ms of frames): "
          f"{figures['hooks_ms_per_fit_each']}; receiver thread CPU "
          f"{figures['receiver_cpu_ms_per_fit']} ms per fit", flush=True)
    write(args.out, figures)


if __name__ == "__main__":
    main()
