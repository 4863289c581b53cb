"""The viewer in another process (issue #19), each figure beside the in-process window's, in one run.

1. **Fit overhead.** The model of ``bench_fit.py`` (MLP 16-32-1, ~1 ms steps, a ~2 s fit),
   ``fit`` in the main thread. Paired rounds (``common.paired_rounds``): ``bare`` (no
   callback), ``in_process`` (``QtMonitor()``, its window open and redrawing, as in
   ``bench_fit.py``) and ``process`` (``QtMonitor(viewer="process")``: a child ``kerasqt
   watch`` draws; ``KERASQT_VIEWER_ARGS=--seconds 3600`` keeps that one child open across the
   fits). Each variant's ratio is its time over the mean of the bare fits beside it; median,
   IQR and a rank 95 % interval of the median. The child is checked during every measured
   ``process`` fit: it is alive, and its CPU time grows (it reads and draws the run).
2. **Event-loop stall.** A model whose steps take >= 1 s: an MLP 256-4096-4096-1, its batch
   calibrated to ~1.5 s steps in the process that trains it (a genuinely heavy model,
   TensorFlow on every core; no sleeping). *In process*: that ``fit`` in this process' main
   thread with ``QtMonitor()`` and its window. *Viewer*: the same ``fit`` in the main thread of
   a training subprocess (``QtMonitor(log_dir=...)`` there, with no screen: it logs and draws
   nothing), while this process follows its log folder with ``kerasqt.watch.watch``. Either
   way, a 10 ms ``QTimer`` in this process' main thread records when it fires; the figures are
   the largest gap between two firings from the run's start to its end, and their 99th
   percentile (with the longest frame meanwhile: its wall and CPU time).
3. **Latency to the screen.** The training subprocess trains the fast model of part 1 for
   ~6 s, first logged to a folder this process follows (a local file: the writer's flush pace,
   ``FLUSH_EVERY``, is in it), then served on loopback TCP (``QtMonitor(serve=...)``) to a
   ``kerasqt.net.NetSource`` here. Each batch's run-log ``time`` is ``time.time()`` at
   ``on_train_batch_end``; a batch is on the screen at the end of the first frame that drew its
   step (``MetricsPlot.draw_frame``, timed here in the viewer): any frame, as
   ``bench_latency.py`` counts (one of a staged full draw draws a step of one axes);
   ``..._every_axes``: a blit or a whole draw only; ``..._window``: the update's arrival in the
   plot's tables. p50, p95 and max, beside the in-process window's during one more part-1 fit
   (main thread), and the viewer's during the heavy fit of part 2.
   ``KERASQT_BENCH_FLUSH_EVERY=S`` sets the training subprocess' flush pace, to see another one.

Run alone: ``.venv/bin/python benchmarks/bench_viewer.py [--quick] [--out FILE]``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import (
    load_average,
    median,
    paired_rounds,
    parse_args,
    percentile,
    rounds_figures,
    screen_latency_ms,
    setup_env,
    write,
)

HEAVY_STEP_S = 1.5  # the heavy model's step, calibrated where it trains (>= 1 s even when the machine is busier then)
HEAVY_IN = 256
HEAVY_WIDTH = 4096
NO_SCREEN = ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")
LATENCY_KEYS = ("p50", "p95", "max", "p95_every_axes", "p50_window", "p95_window")


# -- the models -----------------------------------------------------------------------------------
def build_heavy(batch: int, steps: int, seed: int = 0):
    """MLP 256-4096-4096-1, adam, MSE: ``steps`` batches of ``batch`` samples."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((HEAVY_IN,)), keras.layers.Dense(HEAVY_WIDTH, activation="relu"),
                              keras.layers.Dense(HEAVY_WIDTH, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch * steps, HEAVY_IN)).astype("float32")
    y = x[:, :1] * 0.5
    return model, x, y


def calibrate_heavy(target_s: float) -> int:
    """The batch size whose heavy step takes about ``target_s`` in this process now: a line through
    two sizes, then one step at its answer, scaled by what that took."""
    model, x, y = build_heavy(4096, 1)

    def step(b: int, n: int = 2) -> float:
        model.train_on_batch(x[:b], y[:b])  # (traced for this size)
        t0 = time.perf_counter()
        for _ in range(n):
            model.train_on_batch(x[:b], y[:b])
        return (time.perf_counter() - t0) / n

    small, large = step(256), step(1024)
    per_sample = max((large - small) / 768, 1e-6)
    batch = min(max(int((target_s - (small - 256 * per_sample)) / per_sample), 64), 4096)
    batch = int(batch * target_s / step(batch, 1))
    return max(64, min(batch, 32_768))  # (the model goes with this call)


# -- the training subprocess --------------------------------------------------------------------------
def train_main(spec: dict) -> None:
    """``bench_viewer.py --train SPEC``: the training process of parts 2 and 3, with no screen: its
    monitors log, or serve, and draw nothing. Reads one job a line on stdin, answers on stdout."""
    setup_env()
    for name in NO_SCREEN:
        os.environ.pop(name, None)
    from bench_fit import build

    from kerasqt import QtMonitor
    from kerasqt.runlog import writer

    if spec.get("flush_every") is not None:  # (KERASQT_BENCH_FLUSH_EVERY: what another pace would give)
        writer.FLUSH_EVERY = spec["flush_every"]

    fast = build(spec["fast_steps"])
    fast[0].fit(fast[1][:64], fast[2][:64], batch_size=32, epochs=1, verbose=0)  # trace, warm
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        if job["kind"] == "quit":
            break
        batch = 32
        if job["kind"] == "heavy":  # its batch calibrated here, for steps of job["step_s"]
            batch = calibrate_heavy(job["step_s"])
            gc.collect()
            model, x, y = build_heavy(batch, job["steps"])
            model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # trace, warm
            kwargs = {"batch_size": batch, "epochs": 1}
        else:
            model, x, y, val = fast
            kwargs = {"batch_size": 32, "epochs": spec["fast_epochs"], "validation_data": val}
        monitor = QtMonitor(title=f"bench_viewer {job['kind']}", log_dir=job["log_dir"], serve=job.get("serve"))
        if job.get("serve"):
            print("bound", flush=True)
            sys.stdin.readline()  # "go": the viewer is connected
        t0 = time.perf_counter()
        model.fit(x, y, verbose=0, callbacks=[monitor], **kwargs)
        print("done " + json.dumps({"seconds": time.perf_counter() - t0, "log": str(monitor.log_path), "batch": batch}),
              flush=True)


class Trainer:
    """The training subprocess, its answers read by a thread (the Qt loop here never blocks on it)."""

    def __init__(self, spec: dict, folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in NO_SCREEN and k not in ("KERASQT_SERVE",
                                                                                       "KERASQT_VIEWER_ARGS")}
        self.err_path = folder / "trainer.err"
        self.err = open(self.err_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, __file__, "--train", json.dumps(spec)], cwd=Path(__file__).parent,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1)
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, name="bench-trainer-out", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def send(self, obj) -> None:
        self.proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
        self.proc.stdin.flush()

    def expect(self, word: str, timeout: float, spin) -> str:
        """The next line that starts with ``word`` (the Qt loop turns meanwhile through ``spin``)."""
        got: list[str] = []

        def arrived() -> bool:
            with contextlib.suppress(queue.Empty):
                while True:
                    line = self.lines.get_nowait()
                    if line is None or line.startswith(word):
                        got.append(line)
                        return True
            return False

        spin(arrived, timeout)
        if not got or got[0] is None:
            raise RuntimeError(f"the training subprocess did not say {word!r}: "
                               + self.err_path.read_text()[-3000:])
        return got[0][len(word):].strip()

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send({"kind": "quit"})
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


# -- the child viewer of viewer="process" -------------------------------------------------------------
def viewer_children() -> dict[int, float]:
    """This process' ``kerasqt watch`` children: pid -> CPU seconds so far (Linux /proc; {} elsewhere)."""
    me, out = os.getpid(), {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) != me:
                continue
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            if b"kerasqt" in cmd and b"watch" in cmd:
                out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def child_idle(timeout: float = 3.0) -> None:
    """Turn the Qt loop until the ``kerasqt watch`` children use under 10 ms of CPU in 0.2 s."""
    deadline = time.monotonic() + timeout
    last = sum(viewer_children().values())
    while time.monotonic() < deadline:
        settle(0.2)
        now = sum(viewer_children().values())
        if now - last < 0.01:
            return
        last = now


# -- the Qt loop and the frames ------------------------------------------------------------------------
class Frames:
    """What reached the windows of this process, and when (``time.time()``): every frame that drew new
    points, ``(time, plot, last step, kind)``, and every update stored into a plot's tables,
    ``(time, plot, last step)`` (``MetricsPlot.draw_frame`` and ``MetricsPlot.apply``, timed here)."""

    def __init__(self) -> None:
        from kerasqt.plotting import MetricsPlot

        self.rows: list[tuple[float, int, int, str, float, float]] = []  # ... + its wall and CPU ms
        self.applied: list[tuple[float, int, int]] = []
        draw_frame, apply = MetricsPlot.draw_frame, MetricsPlot.apply
        rows, applied = self.rows, self.applied

        def timed_draw_frame(plot, *args, **kwargs):
            t0, c0 = time.perf_counter(), time.thread_time()
            kind = draw_frame(plot, *args, **kwargs)
            if kind is not None and len(plot.batches):
                rows.append((time.time(), id(plot), int(plot.batches.steps[-1]), kind,
                             (time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3))
            return kind

        def timed_apply(plot, update):
            apply(plot, update)
            if len(plot.batches):
                applied.append((time.time(), id(plot), int(plot.batches.steps[-1])))

        MetricsPlot.draw_frame, MetricsPlot.apply = timed_draw_frame, timed_apply

    def longest(self, plot_id: int, t0: float, t1: float) -> dict:
        """The longest frame of ``plot_id`` within ``[t0, t1]``: its wall and CPU milliseconds (CPU
        much less than wall: the process waited for a core), and its kind."""
        rows = [r for r in self.rows if t0 <= r[0] <= t1 and r[1] == plot_id]
        if not rows:
            return {}
        r = max(rows, key=lambda r: r[4])
        return {"frames": len(rows), "longest_ms": round(r[4], 1), "its_cpu_ms": round(r[5], 1), "kind": r[3],
                "median_ms": round(median([r[4] for r in rows]), 1)}

    def latency(self, plot_id: int, log_path) -> dict:
        """Each batch of the run log at ``log_path``: from its ``time`` to the end of the first frame of
        the plot ``plot_id`` that drew its step. ``p95``...: any frame that drew, as ``bench_latency.py``
        counts (a frame of a staged full draw draws a step of one axes); ``p95_every_axes``...: only a
        blit or a whole draw (every axes shows the step); ``p95_window``...: to the update's arrival in
        the plot's tables (the transport and the receiver, without the frame pacing). Frames before
        the run's start are another run's (a window draws a run's last frame at the next turn of its
        loop, and forgets that run when the next begins)."""
        from kerasqt.events import BatchEvent
        from kerasqt.runlog import read_run

        batches = [ev for ev in read_run(log_path).events if isinstance(ev, BatchEvent)]
        steps, times = [b.step for b in batches], [b.time for b in batches]
        since = run_window(log_path)[0]
        rows = [r for r in self.rows if r[0] >= since and r[1] == plot_id]
        out = {"batches": len(batches), "frames": len(rows),
               "frame_kinds": {k: sum(1 for r in rows if r[3] == k) for k in ("blit", "part", "full")}}
        for suffix, chosen in (("", rows), ("_every_axes", [r for r in rows if r[3] != "part"]),
                               ("_window", [r for r in self.applied if r[0] >= since and r[1] == plot_id])):
            ms, missing = screen_latency_ms([r[0] for r in chosen], [r[2] for r in chosen], steps, times)
            out[f"not_shown{suffix}"] = missing
            for q in (50, 95):
                out[f"p{q}{suffix}"] = round(percentile(ms, q), 1) if len(ms) else None
            out[f"max{suffix}"] = round(float(max(ms)), 1) if len(ms) else None
            if not suffix:
                out["raw_ms"] = [round(float(v), 1) for v in ms[:: max(1, len(ms) // 2000)]]
        return out


class Ticks:
    """A 10 ms timer in the main thread: ``time.time()`` of each firing while started."""

    def __init__(self) -> None:
        from qtpy.QtCore import Qt, QTimer

        self.times: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.timeout.connect(lambda: self.times.append(time.time()))

    def start(self) -> None:
        self.times.clear()
        self.timer.start(10)

    def stop(self) -> None:
        self.timer.stop()

    def gaps(self, t0: float, t1: float) -> dict:
        """The gaps between firings within ``[t0, t1]`` (its ends count as firings), in ms."""
        import numpy as np

        inside = np.array([t0, *[t for t in self.times if t0 < t < t1], t1])
        gaps = np.diff(inside) * 1e3
        top = np.argsort(gaps)[-5:][::-1]
        return {"max": round(float(gaps.max()), 1), "p99": round(percentile(gaps, 99), 1),
                "p50": round(percentile(gaps, 50), 1), "firings": len(inside) - 2, "seconds": round(t1 - t0, 2),
                "largest": [[round(float(gaps[i]), 1), round(float(inside[i] - t0), 2)] for i in top]}  # [ms, s in]


def spin(until, timeout: float) -> bool:
    """Run the Qt event loop until ``until()`` (asked every 20 ms) or ``timeout`` s; whether it came."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop, deadline, came = QEventLoop(), time.monotonic() + timeout, [False]

    def check() -> None:
        if until():
            came[0] = True
            loop.quit()
        elif time.monotonic() >= deadline:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(20)
    if not until():
        loop.exec_()
    else:
        came[0] = True
    timer.stop()
    return came[0]


def settle(seconds: float) -> None:
    spin(lambda: False, seconds)


def run_window(path) -> tuple[float, float]:
    """The run's start and end times (``time.time()`` at its start event and at its end event)."""
    from kerasqt.events import EndEvent, StartEvent
    from kerasqt.runlog import read_run

    records = read_run(path).records
    start = next(t for t, ev in records if isinstance(ev, StartEvent))
    end = next(t for t, ev in records if isinstance(ev, EndEvent))
    return start, end


# -- the parts ----------------------------------------------------------------------------------------
def part_overhead(args, tmp: Path, frames: Frames) -> dict:
    from bench_fit import build

    from kerasqt import QtMonitor

    epochs, rounds, fit_seconds = (2, 2, 1.0) if args.quick else (2, 7, 2.0)
    model, x, y, val = build(300)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    ms_per_step = (time.perf_counter() - t0) / 300 * 1e3
    steps = max(200, int(fit_seconds / epochs / ms_per_step * 1e3))
    model, x, y, val = build(steps)
    print(f"1. fit overhead: {ms_per_step:.2f} ms/step -> {epochs} epochs x {steps} steps per fit", flush=True)
    os.environ["KERASQT_VIEWER_ARGS"] = "--seconds 3600"  # one child for all fits (offscreen it would end when idle)
    inproc = QtMonitor(title="bench_viewer: in process", log_dir=str(tmp / "in-process"))
    proc = QtMonitor(title="bench_viewer: viewer process", log_dir=str(tmp / "process"), viewer="process")
    inproc.show()
    settle(0.5)
    table = {"bare": [], "in_process": [inproc], "process": [proc]}
    child_cpu, alive = [], []

    def fit(name: str, part: int | None = None) -> float:
        xs, ys = (x, y) if part is None else (x[:part], y[:part])
        before = viewer_children()
        gc.collect()
        t0 = time.perf_counter()
        model.fit(xs, ys, batch_size=32, epochs=epochs, validation_data=val, verbose=0, callbacks=table[name])
        seconds = time.perf_counter() - t0
        settle(0.3)  # the same pause after every fit: leftovers do not leak into the next
        # ... and until the child is idle: it draws the run's end after the fit, which would slow the
        # bare fit after it and so make the viewer's ratio look better than it is.
        child_idle()
        if name == "process" and part is None:  # the same child before and after, and it worked meanwhile
            after = viewer_children()
            child_cpu.append(sum(after.values()) - sum(before.get(pid, 0.0) for pid in after))
            alive.append(bool(after) and set(after) == set(before) and child_cpu[-1] >= 0.02)
        return seconds

    print("  warm-up: one fit per variant; the child viewer starts", flush=True)
    for name in table:
        fit(name, part=32 * 100)
    spin(lambda: bool(viewer_children()), 10)
    child_idle(10)  # the child imports Qt and Matplotlib, then draws the warm-up run
    children = viewer_children()
    load_before = load_average()
    times, paired = paired_rounds(fit, ["in_process", "process"], rounds)
    # The in-process window's latency to its screen, in one more fit (the frame hook is always on).
    fit("in_process")
    lat_in = frames.latency(id(inproc.window.plot), inproc.log_path)
    inproc.close()
    figures = rounds_figures("MLP 16-32-1 (bench_fit.py), batch 32, with validation data", epochs, steps, times, paired,
                             {"in_process": "viewer_fit_ratio_in_process", "process": "viewer_fit_ratio_process"},
                             load_before, {"child_cpu_s": child_cpu})
    figures["viewer_child_alive_all_fits"] = bool(alive) and all(alive) and bool(children)
    figures["viewer_child_cpu_ms_per_fit"] = round(median(child_cpu) * 1e3, 1) if child_cpu else None
    figures["raw"]["latency_ms_in_process"] = lat_in.pop("raw_ms")
    figures["latency_in_process"] = lat_in
    for key in LATENCY_KEYS:
        figures[f"viewer_latency_ms_{key}_in_process"] = lat_in[key]
    for pid in viewer_children():  # the child this benchmark's monitor started: ended here, by its pid
        with contextlib.suppress(OSError):
            os.kill(pid, 15)
    return figures


def part_stall_and_latency(args, tmp: Path, frames: Frames) -> dict:
    heavy_steps = 3 if args.quick else 5
    fast_seconds = 3.0 if args.quick else 6.0
    fast_ms = 1.1  # the fast model's step, about (it only sizes the fit)
    flush = os.environ.get("KERASQT_BENCH_FLUSH_EVERY")
    spec = {"fast_steps": int(fast_seconds / 2 / fast_ms * 1e3), "fast_epochs": 2,
            "flush_every": float(flush) if flush else None}
    trainer = Trainer(spec, tmp)  # it starts now, and waits (idle) while this process measures alone
    try:
        trainer.expect("ready", 120, spin)
        out = _stall_and_latency(trainer, heavy_steps, tmp, frames)
    finally:
        trainer.close()
    from kerasqt.runlog import writer

    out["flush_every_s"] = spec["flush_every"] if spec["flush_every"] is not None else writer.FLUSH_EVERY
    return out


def _stall_and_latency(trainer: Trainer, heavy_steps: int, tmp: Path, frames: Frames) -> dict:
    from kerasqt import QtMonitor
    from kerasqt.net import NetSource
    from kerasqt.watch import watch
    from kerasqt.window import MonitorWindow

    batch = calibrate_heavy(HEAVY_STEP_S)
    gc.collect()
    heavy, hx, hy = build_heavy(batch, heavy_steps)
    heavy.fit(hx[: batch * 2], hy[: batch * 2], batch_size=batch, epochs=1, verbose=0)  # trace, warm
    t0 = time.perf_counter()
    heavy.fit(hx[:batch], hy[:batch], batch_size=batch, epochs=1, verbose=0)
    step_s = time.perf_counter() - t0
    print(f"2. stall: heavy model, batch {batch} here: {step_s:.2f} s/step, {heavy_steps} steps", flush=True)
    ticks = Ticks()
    out: dict = {"heavy_batch": batch, "heavy_step_s_here": round(step_s, 3), "heavy_steps": heavy_steps}
    try:
        # In process: the heavy fit in this main thread, its window open; the timer fires in its pumps.
        monitor = QtMonitor(title="bench_viewer: heavy, in process", log_dir=str(tmp / "heavy-in-process"))
        monitor.show()
        settle(0.5)
        ticks.start()
        f0 = time.time()
        heavy.fit(hx, hy, batch_size=batch, epochs=1, verbose=0, callbacks=[monitor])
        f1 = time.time()
        ticks.stop()
        stall_in = ticks.gaps(f0, f1)
        stall_in["frames"] = frames.longest(id(monitor.window.plot), f0, f1)
        settle(0.5)
        monitor.close()
        del heavy, hx, hy
        gc.collect()

        # The viewer: the same fit in the training subprocess' main thread; this process follows its log.
        folder = tmp / "heavy-viewer"
        watcher = watch(folder)
        ticks.start()
        trainer.send({"kind": "heavy", "log_dir": str(folder), "step_s": HEAVY_STEP_S, "steps": heavy_steps})
        done = json.loads(trainer.expect("done", 120, spin))
        spin(lambda: watcher.ended >= 1, 10)
        settle(0.5)
        ticks.stop()
        r0, r1 = run_window(done["log"])
        stall_viewer = ticks.gaps(r0, r1)
        stall_viewer["frames"] = frames.longest(id(watcher.window.plot), r0, r1)
        lat_heavy = frames.latency(id(watcher.window.plot), done["log"])
        watcher.window.close()
        out.update(heavy_fit_s_subprocess=round(done["seconds"], 2), heavy_batch_subprocess=done["batch"],
                   heavy_step_s_subprocess=round((r1 - r0) / heavy_steps, 3))
        print(f"   in process: gaps max {stall_in['max']} ms, p99 {stall_in['p99']} ms; viewer: max "
              f"{stall_viewer['max']} ms, p99 {stall_viewer['p99']} ms (steps of "
              f"{out['heavy_step_s_subprocess']:.2f} s in the subprocess); the viewer's longest frame "
              f"{stall_viewer['frames'].get('longest_ms')} ms ({stall_viewer['frames'].get('its_cpu_ms')} ms CPU)",
              flush=True)

        # 3. Latency: the fast model, followed through its log file, then over loopback TCP.
        folder = tmp / "fast-file"
        watcher = watch(folder)
        trainer.send({"kind": "fast", "log_dir": str(folder)})
        done = json.loads(trainer.expect("done", 120, spin))
        spin(lambda: watcher.ended >= 1, 10)
        settle(0.5)
        lat_file = frames.latency(id(watcher.window.plot), done["log"])
        watcher.window.close()

        port = free_port()
        folder = tmp / "fast-tcp"
        window = MonitorWindow(title="bench_viewer: loopback TCP")
        window.show_training()
        window.show()
        ended = []
        window.training.run_finished.connect(lambda: ended.append(time.time()))
        trainer.send({"kind": "fast", "log_dir": str(folder), "serve": f"127.0.0.1:{port}"})
        trainer.expect("bound", 60, spin)
        source = NetSource(f"127.0.0.1:{port}", on_new_run=window.request_run)
        source.start()
        settle(0.5)
        trainer.send("go")
        done = json.loads(trainer.expect("done", 120, spin))
        spin(lambda: bool(ended), 10)
        settle(0.5)
        lat_tcp = frames.latency(id(window.plot), done["log"])
        source.stop()
        window.close()
        settle(0.2)
    finally:
        ticks.stop()
    print(f"3. latency, ms: file p50 {lat_file['p50']} p95 {lat_file['p95']} max {lat_file['max']}; "
          f"TCP p50 {lat_tcp['p50']} p95 {lat_tcp['p95']} max {lat_tcp['max']} "
          f"({lat_file['batches']} and {lat_tcp['batches']} batches)", flush=True)
    out.update({
        "viewer_stall_ms_max": stall_viewer["max"], "viewer_stall_ms_p99": stall_viewer["p99"],
        "viewer_stall_ms_max_in_process": stall_in["max"], "viewer_stall_ms_p99_in_process": stall_in["p99"],
        "stall_viewer": stall_viewer, "stall_in_process": stall_in,
        "latency_file": lat_file, "latency_tcp": lat_tcp, "latency_file_heavy_steps": lat_heavy,
        "raw": {f"latency_ms_{name}": lat.pop("raw_ms") for name, lat in (("file", lat_file), ("tcp", lat_tcp),
                                                                          ("file_heavy_steps", lat_heavy))},
    })
    for key in LATENCY_KEYS:
        out[f"viewer_latency_ms_{key}_file"] = lat_file[key]
        out[f"viewer_latency_ms_{key}_tcp"] = lat_tcp[key]
    out["viewer_latency_ms_p95_file_heavy_steps"] = lat_heavy["p95"]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    if sys.argv[1:2] == ["--train"]:
        return train_main(json.loads(sys.argv[2]))
    args = parse_args(__doc__)
    setup_env()
    from kerasqt.qtapp import ensure_app

    ensure_app()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="kerasqt-bench-viewer-"))
    frames = Frames()
    figures = part_overhead(args, tmp, frames)
    more = part_stall_and_latency(args, tmp, frames)
    figures["raw"].update(more.pop("raw"))
    figures.update(more)
    figures["seconds"] = round(time.monotonic() - started)
    ci = {k: figures.get(f"{k}_ci95") for k in ("viewer_fit_ratio_in_process", "viewer_fit_ratio_process")}
    print(f"fit / bare fit, median over {len(figures['raw']['paired_ratios']['process'])} fits each: in process "
          f"{figures['viewer_fit_ratio_in_process']:.3f} (IQR {figures['viewer_fit_ratio_in_process_iqr']:.3f}, "
          f"95 % {ci['viewer_fit_ratio_in_process']}), viewer process {figures['viewer_fit_ratio_process']:.3f} "
          f"(IQR {figures['viewer_fit_ratio_process_iqr']:.3f}, 95 % {ci['viewer_fit_ratio_process']}); the child "
          f"{'drew' if figures['viewer_child_alive_all_fits'] else 'was NOT alive'} in every measured fit, "
          f"{figures['viewer_child_cpu_ms_per_fit']} ms of its CPU per fit")
    print(f"event-loop stall during a fit of {figures['heavy_step_s_subprocess']:.2f} s steps: viewer max "
          f"{figures['viewer_stall_ms_max']} ms (p99 {figures['viewer_stall_ms_p99']}), in process max "
          f"{figures['viewer_stall_ms_max_in_process']} ms (p99 {figures['viewer_stall_ms_p99_in_process']})")
    print(f"latency p95, ms: file {figures['viewer_latency_ms_p95_file']}, TCP {figures['viewer_latency_ms_p95_tcp']}, "
          f"in process {figures['viewer_latency_ms_p95_in_process']}, file with heavy steps "
          f"{figures['viewer_latency_ms_p95_file_heavy_steps']} (flushed every {figures['flush_every_s']} s); "
          f"{figures['seconds']} s in all", flush=True)
    write(args.out, figures)


if __name__ == "__main__":
    main()
