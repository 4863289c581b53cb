"""Redraw cost and history memory of the monitor window at 10^3 ... 10^6 batch points per metric.

For each size N, a fresh window (1100x820, offscreen) in training mode holds N
batch points of 4 metrics (loss, accuracy, mae, auc: 4 axes, each with batch,
smoothed, epoch and val lines) of a realistic noisy curve, with the planned
steps known, as in a real ``fit``. Then:

* ``full_redraw_ms_N``: a frame whose new points leave the y limits, so the
  limits grow and the whole figure is drawn (median of several);
* ``full_redraw_stage_ms_N``: the same while training runs, when the window stages
  it: the frame that draws one axes anew (median of several), the longest the event
  loop waits for drawing then;
* ``redraw_ms_N``: the steady-state frame of the whole window, new points
  arriving, limits unchanged: the window takes the update (history, progress
  line) and draws (``draw_frame``: blit), then Qt paints it; median of many;
* ``history_mb_N``: bytes of the numpy history the window holds (MB = 10^6 bytes).

Then ``history_mb_1e6``: 10^6 batch events of 4 metrics sent through the real
path (``BatchEvent`` -> ``TrainingRefiner`` -> ``MetricsPlot.apply``, in receiver-
sized chunks) with ``tracemalloc`` counting what stays allocated.
"""

from __future__ import annotations

import gc
import time

from common import median, moving_average, noisy_curves, parse_args, setup_env, write

KEYS = ("loss", "accuracy", "mae", "auc")
EPOCHS = 10


def measure_size(app, n: int, frames: int, fulls: int) -> dict:
    import numpy as np

    from kerasqt.events import BatchEvent, EpochEvent, StartEvent
    from kerasqt.refine import BatchChunk, TrainingRefiner, TrainingUpdate
    from kerasqt.window import MonitorWindow

    per_frame = min(250, max(1, n // 200))  # new points per steady frame
    spike_rows = 2 * fulls * per_frame  # unstaged full redraws, then staged ones
    total = n + spike_rows + frames * per_frame
    steps_per_epoch = -(-int(total * 1.1) // EPOCHS)
    curves = noisy_curves(total + 1, KEYS)
    smooth = {k: moving_average(v) for k, v in curves.items()}
    steps = np.arange(1, total + 2, dtype=np.int64)

    win = MonitorWindow(title=f"bench {n}")
    win.show()
    win.show_training()
    refiner = TrainingRefiner(0.9)
    start = StartEvent(time.time(), EPOCHS, steps_per_epoch, 32)
    win._on_update(refiner.refine([start]))
    epoch_rows = []
    for e in range(EPOCHS):
        end = (e + 1) * steps_per_epoch
        if end <= n:
            vals = {k: float(smooth[k][end - 1]) for k in KEYS}
            vals.update({"val_" + k: float(smooth[k][end - 1]) * 1.03 for k in KEYS})
            epoch_rows.append(EpochEvent(end, e, time.time(), vals))
    chunk = BatchChunk(steps[:n], {k: curves[k][:n] for k in KEYS}, {k: smooth[k][:n] for k in KEYS})
    win.plot.apply(TrainingUpdate(batches=chunk, epochs=tuple(epoch_rows)))
    history_mb = (win.plot.batches.nbytes + win.plot.epochs.nbytes + win.plot.tests.nbytes) / 1e6
    win.training_active = True
    win.plot.draw_frame(force_full=True)  # first layout, fonts
    for _ in range(3):
        app.processEvents()

    def events(lo: int, hi: int, lift: float = 1.0) -> list:
        out = []
        for i in range(lo, hi):
            vals = {k: float(curves[k][i]) for k in KEYS}
            if lift != 1.0 and i >= hi - 3:
                vals = {k: v * lift for k, v in vals.items()}
            out.append(BatchEvent(int(steps[i]), i // steps_per_epoch, time.time(), vals))
        return out

    cpu: dict[str, list[float]] = {"blit": [], "full": []}

    def frame(update, staged: bool = False) -> tuple[float, str | None]:
        t0, c0 = time.perf_counter(), time.thread_time()
        if update is not None:
            win._on_update(update)
        kind = win.plot.draw_frame(staged=staged)
        app.processEvents()  # Qt paints what was blitted
        if kind in cpu:
            cpu[kind].append((time.thread_time() - c0) * 1e3)  # this thread's CPU: what load does not inflate
        return (time.perf_counter() - t0) * 1e3, kind

    pos = n
    full_ms, full_kinds = [], []
    for rep in range(fulls):  # new points beyond the top of every axes: limits must grow
        batch = events(pos, pos + per_frame, lift=3.0 * 2.0**rep)
        pos += per_frame
        ms, kind = frame(refiner.refine(batch))
        full_ms.append(ms)
        full_kinds.append(kind)
    stage_ms = []
    for rep in range(fulls):  # the same while training: one axes per frame (the event loop turns between)
        batch = events(pos, pos + per_frame, lift=3.0 * 2.0 ** (fulls + rep))
        pos += per_frame
        ms, kind = frame(refiner.refine(batch), staged=True)
        stage_ms.append(ms)
        while kind == "part":
            ms, kind = frame(None, staged=True)
            stage_ms.append(ms)
    for _ in range(3):  # let the frame timer's own frame (if any) pass
        app.processEvents()
    steady_ms, kinds = [], []
    for _ in range(frames):
        batch = events(pos, pos + per_frame)
        pos += per_frame
        epoch_end = (pos // steps_per_epoch) * steps_per_epoch
        update = refiner.refine(batch)
        if pos - per_frame < epoch_end <= pos:
            e = epoch_end // steps_per_epoch - 1
            vals = {k: float(smooth[k][epoch_end - 1]) for k in KEYS}
            vals.update({"val_" + k: float(smooth[k][epoch_end - 1]) * 1.03 for k in KEYS})
            update = refiner.refine(batch + [EpochEvent(epoch_end, e, time.time(), vals)])
        ms, kind = frame(update)
        steady_ms.append(ms)
        kinds.append(kind)
    blits = [ms for ms, kind in zip(steady_ms, kinds, strict=True) if kind == "blit"]
    win.close()
    win.deleteLater()
    app.processEvents()
    return {
        "n": n,
        "new_points_per_frame": per_frame,
        "redraw_ms": median(blits) if blits else float("nan"),
        "redraw_ms_all": steady_ms,
        "steady_kinds": {k: kinds.count(k) for k in set(kinds)},
        "full_redraw_ms": median(full_ms),
        "full_redraw_stage_ms": median(stage_ms),  # one axes of a staged full draw (while training)
        "full_redraw_stage_ms_max": max(stage_ms),
        "redraw_cpu_ms": median(cpu["blit"][-len(blits):]) if blits else float("nan"),
        "full_redraw_cpu_ms": median(cpu["full"]) if cpu["full"] else float("nan"),
        "full_redraw_ms_all": full_ms,
        "full_kinds": full_kinds,
        "history_mb": history_mb,
    }


def history_through_receiver(n: int, chunk: int = 1000) -> dict:
    """History memory after ``n`` batch events of 4 metrics went through refiner and plot."""
    import tracemalloc

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from kerasqt.events import BatchEvent, StartEvent
    from kerasqt.plotting import MetricsPlot
    from kerasqt.refine import TrainingRefiner

    curves = noisy_curves(n, KEYS, seed=1)
    cols = {k: v.tolist() for k, v in curves.items()}
    fig = Figure(figsize=(9, 5.5))
    plot = MetricsPlot(fig, FigureCanvasAgg(fig))
    refiner = TrainingRefiner(0.9)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    plot.apply(refiner.refine([StartEvent(time.time(), 1, n, 32)]))
    now = time.time()
    for lo in range(0, n, chunk):  # as from 1 ms steps
        hi = min(lo + chunk, n)
        batch = [BatchEvent(i + 1, 0, now + i * 1e-3, {k: cols[k][i] for k in KEYS}) for i in range(lo, hi)]
        plot.apply(refiner.refine(batch))
    del batch
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = time.perf_counter() - t0
    nbytes = plot.batches.nbytes + plot.epochs.nbytes + plot.tests.nbytes
    rows = len(plot.batches)
    return {"events": n, "rows": rows, "history_nbytes_mb": nbytes / 1e6, "traced_mb": (current - base) / 1e6,
            "traced_peak_mb": (peak - base) / 1e6, "seconds": seconds}


def main() -> None:
    args = parse_args(__doc__)
    setup_env()
    from kerasqt.qtapp import ensure_app

    app = ensure_app()
    sizes = (1_000, 10_000, 100_000, 1_000_000)
    frames, fulls = (20, 3) if args.quick else (80, 7)
    figures: dict = {"sizes": list(sizes), "keys": list(KEYS), "raw": {}}
    for n in sizes:
        res = measure_size(app, n, frames, fulls)
        figures["raw"][str(n)] = res
        figures[f"redraw_ms_{n}"] = round(res["redraw_ms"], 2)
        figures[f"full_redraw_ms_{n}"] = round(res["full_redraw_ms"], 1)
        figures[f"full_redraw_stage_ms_{n}"] = round(res["full_redraw_stage_ms"], 1)
        figures[f"history_mb_{n}"] = round(res["history_mb"], 2)
        figures[f"redraw_cpu_ms_{n}"] = round(res["redraw_cpu_ms"], 2)
        figures[f"full_redraw_cpu_ms_{n}"] = round(res["full_redraw_cpu_ms"], 1)
        print(f"N={n:>9,}: steady frame {res['redraw_ms']:6.2f} ms (CPU {res['redraw_cpu_ms']:.2f}; median of "
              f"{len(res['redraw_ms_all'])}, {res['steady_kinds']}), full {res['full_redraw_ms']:6.1f} ms "
              f"(CPU {res['full_redraw_cpu_ms']:.1f}) {res['full_kinds']}, staged one axes at a time "
              f"{res['full_redraw_stage_ms']:.1f} ms (max {res['full_redraw_stage_ms_max']:.1f}), "
              f"history {res['history_mb']:.2f} MB", flush=True)
        gc.collect()
    n_mem = 100_000 if args.quick else 1_000_000
    mem = history_through_receiver(n_mem)
    figures["raw"]["receiver_path"] = mem
    scale = 1_000_000 / n_mem
    figures["history_mb_1e6"] = round(max(mem["history_nbytes_mb"], mem["traced_mb"]) * scale, 2)
    figures["history_mb_1e6_measured_events"] = n_mem
    print(f"{n_mem:,} events of 4 metrics through refiner and plot: numpy history {mem['history_nbytes_mb']:.1f} MB, "
          f"traced {mem['traced_mb']:.1f} MB (peak {mem['traced_peak_mb']:.1f} MB), {mem['seconds']:.1f} s", flush=True)
    write(args.out, figures)


if __name__ == "__main__":
    main()
