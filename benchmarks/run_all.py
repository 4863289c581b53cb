"""Run every kerasqt benchmark, write ``benchmarks/results.json`` and the plots in ``benchmarks/plots/``.

    .venv/bin/python benchmarks/run_all.py           # the full run (``make bench``), ~12 minutes on 2 cores
    .venv/bin/python benchmarks/run_all.py --quick   # smaller sizes and fewer repeats, to try it out

Each benchmark runs in its own process (a fresh Qt application and TensorFlow):

* ``bench_fit.py``: ``fit`` overhead of QtMonitor with its window live, next to anchors;
* ``bench_redraw.py``: frame cost and history memory at 10^3 ... 10^6 points;
* ``bench_latency.py``: a producer at 10,000 events/s for 30 s: throughput, loop lag, latency;
* ``bench_short_fit.py``: the fixed cost of a watched ``fit`` call (20-step and 500-step fits);
* ``bench_viewer.py``: the viewer in another process (``viewer="process"``, ``kerasqt watch``) beside
  the in-process window: fit overhead, event-loop stall during 1 s steps, latency to the screen.
* ``bench_overlay.py``: frame cost with 20 finished runs of 10,000 steps overlaid from the run list.

Figures are measured, never asserted: the summary says which performance targets hold.
Timings depend on what else runs on the machine; the load average is recorded with them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import load_average, parse_args  # noqa: E402

BENCHES = [("fit", "bench_fit.py", 600), ("short_fit", "bench_short_fit.py", 300), ("redraw", "bench_redraw.py", 240),
           ("latency", "bench_latency.py", 150), ("viewer", "bench_viewer.py", 420),
           ("overlay", "bench_overlay.py", 240)]

# (key, limit, "max" or "min"): the performance targets (docs/performance.md).
TARGETS = [
    ("fit_overhead_ratio", 1.03, "max"),
    ("redraws_per_s_during_fit", 2.0, "min"),
    *[(f"redraw_ms_{n}", 16.0, "max") for n in (1_000, 10_000, 100_000, 1_000_000)],
    ("events_per_s_sustained", 9_900.0, "min"),
    ("loop_lag_ms_max", 50.0, "max"),
    ("latency_ms_p95", 100.0, "max"),
    ("history_mb_1e6", 64.0, "max"),
    # The run log moves the overhead by <= 1 point. A wall-clock difference of two fits
    # scatters by several points on this machine, so the target is checked on the bound measured
    # in the same fits: the time the receiver thread spent writing the log over the fit's time
    # (all that training can lose to it).
    ("run_log_cost_bound_points", 1.0, "max"),
    # A short fit pays for the window once: at most 10 ms per call beyond the bare fit.
    ("fit_fixed_cost_ms", 10.0, "max"),
    # The viewer in another process (#19; bench_viewer.py, each beside the in-process window's figure):
    # fit with viewer="process" and its child drawing / bare fit; the longest gap of a 10 ms timer in a
    # viewer's main thread while a fit of >= 1 s steps runs; batch end to the point on a viewer's screen.
    ("viewer_fit_ratio_process", 1.01, "max"),
    ("viewer_stall_ms_max", 50.0, "max"),
    ("viewer_latency_ms_p95_file", 250.0, "max"),
    ("viewer_latency_ms_p95_tcp", 250.0, "max"),
    # 20 finished runs of 10,000 steps overlaid from the run list: the steady frame stays a frame.
    ("overlay_redraw_ms", 16.0, "max"),
]


def run_bench(script: str, out: Path, quick: bool, timeout: int) -> dict:
    cmd = [sys.executable, str(HERE / script), "--out", str(out)] + (["--quick"] if quick else [])
    print(f"\n== {script} ==", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=HERE.parent, timeout=timeout, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    noise = ("WARNING: All log messages", "I0000 ", "E0000 ", "W0000 ", "XDG_RUNTIME_DIR", "\x1b[2K")
    for line in proc.stdout.splitlines():
        if not line.startswith(noise) and line.strip():
            print("  " + line.replace("\x1b[2K", ""))
    print(f"  ({time.monotonic() - t0:.0f} s)", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed with exit code {proc.returncode}")
    return json.loads(out.read_text())


def scalars(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k != "raw"}


def main() -> None:
    args = parse_args(__doc__)
    started = time.monotonic()
    load_start = load_average()
    print(f"load average at start: {load_start} on {os.cpu_count()} CPUs"
          + ("  (busy: timings will be slower and noisier)" if load_start and load_start[0] > 0.5 else ""))
    tmp = Path(tempfile.mkdtemp(prefix="kerasqt-bench-"))
    parts = {name: run_bench(script, tmp / f"{name}.json", args.quick, timeout) for name, script, timeout in BENCHES}

    results: dict = {}
    keep = ("fit_overhead_ratio", "redraw_ms_", "full_redraw_ms_", "full_redraw_stage_ms_", "redraw_cpu_ms_",
            "full_redraw_cpu_ms_", "history_mb_", "redraws_per_s", "events_per_s",
            "loop_lag", "latency_ms", "queue_depth_max", "bare_ms_per_step", "run_log_", "hooks_",
            "receiver_cpu_", "fit_fixed_cost_ms", "fit_fixed_cost_cpu_ms", "ratio_20_steps_", "ratio_500_steps_",
            "bare_20_steps_", "bare_500_steps_", "viewer_", "overlay_", "runlist_")
    for figures in parts.values():
        for key, value in scalars(figures).items():
            if key.startswith(keep) and not key.endswith(("_of_medians", "_measured_events")):
                results[key] = value
    from importlib.metadata import version

    results["meta"] = {
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {name: version(name) for name in ("keras", "tensorflow", "matplotlib", "numpy", "PyQt5", "QtPy")},
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "seconds": round(time.monotonic() - started),
        "gpu": "not part of make bench: bench_backend.py on a GPU machine (results_h200.json)",
    }
    results["targets"] = {key: {"limit": limit, "kind": kind, "value": results.get(key),
                                "met": _met(results.get(key), limit, kind)} for key, limit, kind in TARGETS}
    results["details"] = {name: scalars(figures) for name, figures in parts.items()}
    (HERE / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")

    from plots import make_plots

    made = make_plots(parts, results, HERE / "plots")
    print("\n== summary ==")
    for key, target in results["targets"].items():
        sign = "<=" if target["kind"] == "max" else ">="
        print(f"  {key:<28} {target['value']!s:>10}   target {sign} {target['limit']:<8} "
              f"{'ok' if target['met'] else 'MISSED'}")
    anchors = {k: v for k, v in results.items() if k.startswith("fit_overhead_ratio_") and isinstance(v, float)
               and not k.endswith("_iqr")}
    fit = results["details"]["fit"]
    print(f"  QtMonitor: 95 % confidence interval of the median {fit.get('fit_overhead_ratio_ci95')}; "
          f"{fit.get('hooks_ms_per_fit')} ms per fit in its hooks ({fit.get('hooks_share_points')} % of the fit), "
          f"receiver thread CPU {fit.get('receiver_cpu_ms_per_fit')} ms")
    print("  anchors: " + ", ".join(f"{k[len('fit_overhead_ratio_'):]} {v}" for k, v in anchors.items()))
    v = results["details"]["viewer"]
    print(f"  viewer process / in process: fit ratio {v.get('viewer_fit_ratio_process')} / "
          f"{v.get('viewer_fit_ratio_in_process')} (IQR {v.get('viewer_fit_ratio_process_iqr')} / "
          f"{v.get('viewer_fit_ratio_in_process_iqr')}); stall {v.get('viewer_stall_ms_max')} / "
          f"{v.get('viewer_stall_ms_max_in_process')} ms during {v.get('heavy_step_s_subprocess')} s steps; "
          f"latency p95 file {v.get('viewer_latency_ms_p95_file')}, TCP {v.get('viewer_latency_ms_p95_tcp')} / "
          f"{v.get('viewer_latency_ms_p95_in_process')} ms; child drew in every fit: "
          f"{v.get('viewer_child_alive_all_fits')}")
    print("\n== for the README (Performance) ==")
    print(markdown_table(results))
    print(f"wrote {HERE / 'results.json'} and {len(made)} plots in {HERE / 'plots'} "
          f"in {results['meta']['seconds']} s; load average at end {results['meta']['load_average_end']}")


def markdown_table(results: dict) -> str:
    """The fit overhead of QtMonitor against the anchors, as a Markdown table."""
    d = results["details"]["fit"]
    names = [("QtMonitor, window open and redrawing", "fit_overhead_ratio", "qtmonitor"),
             ("QtMonitor, the same with its run log off", "fit_overhead_ratio_qtmonitor_no_log", "qtmonitor_no_log"),
             ("plain callback (`on_train_batch_end: pass`)", "fit_overhead_ratio_plain_callback", "plain_callback"),
             ("`CSVLogger`", "fit_overhead_ratio_csvlogger", "csvlogger"),
             ("`TensorBoard(update_freq='batch')`", "fit_overhead_ratio_tensorboard", "tensorboard"),
             ("livelossplot `PlotLossesKeras` (file output)", "fit_overhead_ratio_livelossplot", "livelossplot")]
    rows = ["| callback | fit time / bare fit (median) | 95 % CI of the median | spread (IQR) | fits |",
            "|---|---|---|---|---|"]
    for label, key, name in names:
        if key in results:
            ci = d.get(key + "_ci95")
            rows.append(f"| {label} | {results[key]:.3f} | {f'{ci[0]:.3f} – {ci[1]:.3f}' if ci else '–'} "
                        f"| {results.get(key + '_iqr', float('nan')):.3f} | {d.get('samples', {}).get(name, '?')} |")
    return "\n".join(rows)


def _met(value, limit: float, kind: str) -> bool | None:
    if value is None or value != value:
        return None
    return value <= limit if kind == "max" else value >= limit


if __name__ == "__main__":
    main()
