"""Frame cost with 20 finished runs of 10,000 steps overlaid by the run list, next to none.

A folder holds 20 finished run logs of 10,000 steps (10 epochs; loss and accuracy with their
validation twins). A fresh window (1100x820 plus its run list beside the plot, offscreen)
shows a live run of 10,000 planned steps of the same metrics, 5,000 of them in, and its run
list checks all 20 runs (read whole in the list's thread, then drawn as still, decimated
lines). Then:

* ``overlay_redraw_ms``: the steady frame, new points arriving, limits unchanged: the window
  takes the update and draws it (a blit), then Qt paints it; median of many, with its spread
  (interquartile range, 90th percentile). Overlays are not redrawn on these frames;
* ``overlay_full_redraw_ms``: a full draw of the figure (every axes with its overlays, as
  after a check, a new limit or a resize), median and spread of several;
  ``overlay_full_redraw_stage_ms``: the same while training runs, one axes per frame;
* the same three with nothing overlaid (``overlay_base_*``), in the same window afterwards;
* ``overlay_load_s``: reading the 20 logs whole (the list's thread) until all are drawn;
  ``runlist_refresh_ms_cold`` / ``_warm``: the catalogue's first look at the folder, and a look
  when nothing changed (a ``stat`` per file).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from common import median, moving_average, noisy_curves, parse_args, percentile, setup_env, write

KEYS = ("loss", "accuracy")
EPOCHS = 10


def write_runs(folder: Path, runs: int, steps: int) -> list[Path]:
    """``runs`` finished logs of ``steps`` steps each, as QtMonitor writes them."""
    import numpy as np

    from kerasqt.events import BatchRows, EndEvent, EpochEvent, StartEvent
    from kerasqt.runlog import RunLogWriter

    paths = []
    per_epoch = steps // EPOCHS
    for r in range(runs):
        curves = noisy_curves(steps, KEYS, seed=100 + r)
        smooth = {k: moving_average(v) for k, v in curves.items()}
        t0 = 1_700_000_000.0 + r * 3600
        head = {"kind": "training", "created": t0, "title": "bench", "pid": 0, "host": "bench",
                "settings": {"optimizer": "Adam", "learning_rate": 10 ** -(2 + r / 10), "epochs": EPOCHS},
                "tags": {"run": r}}
        writer = RunLogWriter(folder / f"run-{r:02d}.jsonl", head)
        writer.write([StartEvent(t0, EPOCHS, per_epoch, 32)])
        for e in range(EPOCHS):
            lo, hi = e * per_epoch, (e + 1) * per_epoch
            steps_ = np.arange(lo + 1, hi + 1, dtype=np.int64)
            rows = BatchRows(steps_.tolist(), [e] * per_epoch, (t0 + steps_ * 0.01).tolist(),
                             {k: curves[k][lo:hi].astype(float).tolist() for k in KEYS}, None)
            vals = {k: float(smooth[k][hi - 1]) for k in KEYS}
            vals.update({"val_" + k: float(smooth[k][hi - 1]) * 1.03 for k in KEYS})
            writer.write([rows, EpochEvent(hi, e, t0 + hi * 0.01, vals)])
        writer.write([EndEvent(steps, t0 + steps * 0.01 + 1)])
        writer.close()
        paths.append(writer.path)
    return paths


def spread(values) -> dict:
    return {"median": median(values), "iqr": percentile(values, 75) - percentile(values, 25),
            "p90": percentile(values, 90), "min": min(values), "max": max(values), "n": len(values)}


def measure(app, folder: Path, paths: list[Path], steps: int, frames: int, fulls: int) -> dict:
    import numpy as np

    from kerasqt.catalogue import RunCatalogue
    from kerasqt.events import BatchEvent, EpochEvent, StartEvent
    from kerasqt.refine import BatchChunk, TrainingRefiner, TrainingUpdate
    from kerasqt.runlist import DOCK_WIDTH
    from kerasqt.window import MonitorWindow

    out: dict = {}
    cat = RunCatalogue(folder)
    t0 = time.perf_counter()
    cat.refresh()
    out["runlist_refresh_ms_cold"] = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    for _ in range(10):
        cat.refresh()
    out["runlist_refresh_ms_warm"] = (time.perf_counter() - t0) * 1e2

    total = steps + (frames * 2 + fulls * 4) * 50 + 1000
    per_epoch = steps // EPOCHS
    curves = noisy_curves(total, KEYS, seed=7)
    smooth = {k: moving_average(v) for k, v in curves.items()}
    win = MonitorWindow(title="bench overlay")
    win.resize(1100 + DOCK_WIDTH, 820)  # as on a screen with room for the list (kerasqt.runlist._widen)
    win.show()
    win.show_training()
    refiner = TrainingRefiner(0.9)
    win._on_update(refiner.refine([StartEvent(time.time(), EPOCHS, per_epoch, 32)]))
    given = steps // 2
    epochs = []
    for e in range(EPOCHS):
        end = (e + 1) * per_epoch
        if end <= given:
            vals = {k: float(smooth[k][end - 1]) for k in KEYS}
            vals.update({"val_" + k: float(smooth[k][end - 1]) * 1.03 for k in KEYS})
            epochs.append(EpochEvent(end, e, time.time(), vals))
    steps_ = np.arange(1, total + 1, dtype=np.int64)
    win.plot.apply(TrainingUpdate(batches=BatchChunk(steps_[:given], {k: curves[k][:given] for k in KEYS},
                                                     {k: smooth[k][:given] for k in KEYS}), epochs=tuple(epochs)))
    runlist = win.runlist
    runlist.set_folder(folder)  # (as when a run that logs begins: the list opens beside the plot)
    runlist.overlays.attach(win.plot)
    win.training_active = True
    resizes = []
    win.canvas.mpl_connect("resize_event", lambda event: resizes.append(time.perf_counter()))
    settle = time.perf_counter()
    while time.perf_counter() - settle < 1.0:  # the dock and the canvas take their sizes
        app.processEvents()
        time.sleep(0.01)
    win.plot.draw_frame(force_full=True)
    app.processEvents()

    t0 = time.perf_counter()
    for path in paths:
        runlist.set_checked(path, True)
    while len(runlist.overlays.runs) < len(paths) and time.perf_counter() - t0 < 120:
        app.processEvents()
        runlist.tick()
        time.sleep(0.005)
    out["overlay_load_s"] = time.perf_counter() - t0
    out["overlays"] = len(runlist.overlays.runs)
    win.plot.draw_frame(force_full=True)
    app.processEvents()

    pos = given

    parts: list = []

    def frame(update, **kw) -> tuple[float, str | None]:
        t0 = time.perf_counter()
        if update is not None:
            win._on_update(update)
        t1 = time.perf_counter()
        kind = win.plot.draw_frame(**kw)
        t2 = time.perf_counter()
        app.processEvents()  # Qt paints what was drawn
        t3 = time.perf_counter()
        parts.append((round((t1 - t0) * 1e3, 1), round((t2 - t1) * 1e3, 1), round((t3 - t2) * 1e3, 1)))
        return (t3 - t0) * 1e3, kind

    def batches(n: int) -> list:
        nonlocal pos
        evs = [BatchEvent(int(steps_[i]), i // per_epoch, time.time(), {k: float(curves[k][i]) for k in KEYS})
               for i in range(pos, pos + n)]
        pos += n
        return evs

    def block(tag: str) -> None:
        before = len(resizes)
        full = [frame(None, force_full=True)[0] for _ in range(fulls)]
        stage = []
        for _ in range(fulls):
            win.plot.state.full = True
            win.plot.state.dirty = True
            ms, kind = frame(None, staged=True)
            stage.append(ms)
            while kind == "part":
                ms, kind = frame(None, staged=True)
                stage.append(ms)
        steady, kinds = [], []
        for _ in range(frames):
            ms, kind = frame(refiner.refine(batches(50)))
            steady.append(ms)
            kinds.append(kind)
        blits = [ms for ms, kind in zip(steady, kinds, strict=True) if kind == "blit"]
        out[f"{tag}_redraw"] = spread(blits)
        out[f"{tag}_redraw_all"] = steady
        out[f"{tag}_kinds"] = {k: kinds.count(k) for k in set(kinds)}
        out[f"{tag}_full_redraw"] = spread(full)
        out[f"{tag}_full_redraw_stage"] = spread(stage)
        out[f"{tag}_canvas_resizes"] = len(resizes) - before  # (each one is a full draw of Qt's own)

    block("overlay")
    out["overlay_parts"] = parts[-frames:]
    drawn = sum(line.decimations for p in win.plot.panels.values() for line in runlist.overlays.lines(p))
    out["overlay_lines"] = sum(len(runlist.overlays.lines(p)) for p in win.plot.panels.values())
    out["overlay_decimations"] = drawn
    out["canvas_px"] = [win.canvas.width(), win.canvas.height()]
    for path in paths:
        runlist.set_checked(path, False)
    win.plot.draw_frame(force_full=True)
    app.processEvents()
    block("overlay_base")
    win.close()
    win.deleteLater()
    app.processEvents()
    return out


def main() -> None:
    args = parse_args(__doc__)
    setup_env()
    from kerasqt.qtapp import ensure_app

    app = ensure_app()
    runs, steps = (5, 10_000) if args.quick else (20, 10_000)
    frames, fulls = (20, 3) if args.quick else (80, 7)
    folder = Path(tempfile.mkdtemp(prefix="kerasqt-bench-runs-"))
    try:
        t0 = time.perf_counter()
        paths = write_runs(folder, runs, steps)
        res = measure(app, folder, paths, steps, frames, fulls)
        res["write_s"] = time.perf_counter() - t0 - res["overlay_load_s"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figures: dict = {"runs": runs, "steps": steps, "raw": res}
    for tag in ("overlay", "overlay_base"):
        for what in ("redraw", "full_redraw", "full_redraw_stage"):
            s = res[f"{tag}_{what}"]
            figures[f"{tag}_{what}_ms"] = round(s["median"], 2)
            figures[f"{tag}_{what}_ms_iqr"] = round(s["iqr"], 2)
            figures[f"{tag}_{what}_ms_p90"] = round(s["p90"], 2)
    figures["overlay_load_s"] = round(res["overlay_load_s"], 2)
    figures["runlist_refresh_ms_cold"] = round(res["runlist_refresh_ms_cold"], 1)
    figures["runlist_refresh_ms_warm"] = round(res["runlist_refresh_ms_warm"], 2)
    for tag, label in (("overlay", f"{res['overlays']} runs of {steps:,} steps overlaid"), ("overlay_base", "none")):
        r, f, st = res[f"{tag}_redraw"], res[f"{tag}_full_redraw"], res[f"{tag}_full_redraw_stage"]
        print(f"{label}: steady frame {r['median']:.2f} ms (IQR {r['iqr']:.2f}, p90 {r['p90']:.2f}, max "
              f"{r['max']:.2f}; {r['n']} blits of {sum(res[tag + '_kinds'].values())} frames), full draw "
              f"{f['median']:.1f} ms (IQR {f['iqr']:.1f}, n {f['n']}), staged one axes {st['median']:.1f} ms "
              f"(max {st['max']:.1f})", flush=True)
    print(f"{res['overlay_lines']} overlay lines, decimated {res['overlay_decimations']} times in all; "
          f"read {runs} logs whole in {res['overlay_load_s']:.1f} s; catalogue: first look "
          f"{res['runlist_refresh_ms_cold']:.0f} ms, unchanged {res['runlist_refresh_ms_warm']:.2f} ms; canvas "
          f"{res['canvas_px']}", flush=True)
    write(args.out, figures)


if __name__ == "__main__":
    main()
