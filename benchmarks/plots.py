"""The benchmark's figures as PNG plots (Matplotlib, Agg): made by ``run_all.py`` from what it measured."""

from __future__ import annotations

from pathlib import Path

from common import ratio_key


def make_plots(parts: dict, results: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    stamp = f"{results['meta']['machine']}; load avg {results['meta']['load_average_start']}" + (
        "; quick run" if results["meta"]["quick"] else "")

    # 1. fit overhead: ours against the anchors, each round's paired ratio as a dot.
    fit = parts["fit"]
    paired = fit["raw"]["paired_ratios"]
    names = [n for n in paired if n != "bare"]
    keys = [ratio_key(n) for n in names]
    medians = [fit[k] for k in keys]
    order = sorted(range(len(names)), key=lambda i: medians[i])
    fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    for row, i in enumerate(order):
        name = names[i]
        ax.barh(row, medians[i] - 1, left=1, color="C0" if name == "qtmonitor" else "0.65", height=0.6)
        ax.plot(paired[name], [row] * len(paired[name]), "o", color="k", ms=3, alpha=0.6)
        ci = fit.get(keys[i] + "_ci95")
        if ci:
            ax.plot(ci, [row + 0.38] * 2, "-|", color="C3", lw=1.5, ms=6,
                    label="95 % confidence interval of the median" if name == "qtmonitor" else None)
    ax.set_yticks(range(len(names)), [("QtMonitor (window live)" if names[i] == "qtmonitor" else names[i])
                                      + f"  {medians[i]:.3f}, {len(paired[names[i]])} fits" for i in order])
    ax.axvline(1.0, color="k", lw=0.8)
    ax.axvline(1.03, color="C3", ls="--", lw=1, label="target 1.03")
    ax.set_xlabel("fit time / bare fit time\n(bar: median; dots: single fits, each against its bare neighbours)")
    ax.set_title(f"Per-batch callback overhead, {fit['bare_ms_per_step']} ms/step MLP, TensorFlow CPU\n"
                 f"QtMonitor redraws {fit['redraws_per_s_during_fit']}/s during fit", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(stamp, fontsize=7, color="0.4", x=0.99, ha="right")
    made.append(_save(fig, folder / "fit_overhead.png"))

    # 2. redraw cost and memory against points per metric.
    red = parts["redraw"]
    sizes = red["sizes"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    steady = [red[f"redraw_ms_{n}"] for n in sizes]
    full = [red[f"full_redraw_ms_{n}"] for n in sizes]
    for n in sizes:
        raw = red["raw"][str(n)]["redraw_ms_all"]
        a1.plot([n] * len(raw), raw, ".", color="C0", alpha=0.25, ms=3)
    a1.plot(sizes, steady, "o-", color="C0", label="steady frame (new points, limits kept): median")
    a1.plot(sizes, full, "s-", color="C1", label="full redraw (limits changed): median")
    if all(f"full_redraw_stage_ms_{n}" in red for n in sizes):
        a1.plot(sizes, [red[f"full_redraw_stage_ms_{n}"] for n in sizes], "^-", color="C4",
                label="full redraw while training: one axes per frame")
    if all(f"redraw_cpu_ms_{n}" in red for n in sizes):
        a1.plot(sizes, [red[f"redraw_cpu_ms_{n}"] for n in sizes], "o:", color="C0", mfc="white",
                label="steady frame, main thread's CPU time")
        a1.plot(sizes, [red[f"full_redraw_cpu_ms_{n}"] for n in sizes], "s:", color="C1", mfc="white",
                label="full redraw, main thread's CPU time")
    a1.axhline(16, color="C3", ls="--", lw=1, label="16 ms (60 frames/s)")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("batch points per metric (4 metrics, 4 axes)")
    a1.set_ylabel("ms per frame, whole window")
    a1.set_title("Frame cost", fontsize=10)
    a1.set_ylim(top=max(full) * 150)  # room above the curves for the legend
    a1.legend(fontsize=7, loc="upper left")
    mem = [red[f"history_mb_{n}"] for n in sizes]
    a2.plot(sizes, mem, "o-", color="C2", label="numpy history held by the window")
    a2.plot([1e6], [results["history_mb_1e6"]], "D", color="k", label="10^6 events through refiner + plot (traced)")
    a2.axhline(64, color="C3", ls="--", lw=1, label="64 MB")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("batch events (4 metrics each)")
    a2.set_ylabel("MB (10^6 bytes)")
    a2.set_title("History memory", fontsize=10)
    a2.legend(fontsize=7, loc="upper left")
    fig.suptitle(stamp, fontsize=7, color="0.4", x=0.99, ha="right")
    made.append(_save(fig, folder / "redraw_memory.png"))

    # 3. throughput: latency distribution; event-loop lag and queue depth over the run, each in its axes.
    lat = parts["latency"]
    fig = plt.figure(figsize=(10, 4.4), layout="constrained")
    a1, right = fig.subfigures(1, 2, wspace=0.04)
    a1 = a1.subplots()
    a2, a3 = right.subplots(2, 1, sharex=True)
    values = sorted(lat["raw"]["latency_ms"])
    if values:
        a1.plot(values, [i / len(values) for i in range(len(values))], color="C0")
    a1.axvline(100, color="C3", ls="--", lw=1, label="100 ms")
    a1.set_xscale("log")
    a1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if lat["latency_ms_p95"] is not None:
        a1.axvline(lat["latency_ms_p95"], color="C0", ls=":", lw=1, label=f"p95 {lat['latency_ms_p95']} ms")
    a1.set_xlabel("on_train_batch_end -> point on screen, ms")
    a1.set_ylabel("share of events")
    a1.set_title(f"Latency at {lat['rate_asked']:,} events/s ({lat['metrics']} metrics)", fontsize=10)
    a1.legend(fontsize=8)
    lags = [max(v, 0.0) for v in lat["raw"]["lag_ms"]]
    t = [i * 0.010 for i in range(len(lags))]
    a2.plot(t, lags, lw=0.5, color="C1", label=f"10 ms timer, late by (max {lat['loop_lag_ms_max']} ms)")
    a2.axhline(50, color="C3", ls="--", lw=1, label="50 ms")
    a2.set_yscale("symlog", linthresh=1)
    a2.set_ylim(0, 200)
    a2.set_ylabel("ms late")
    a2.set_title(f"Main thread and queue: {lat['events_per_s_sustained']:,.0f} events/s sustained", fontsize=10)
    a2.legend(fontsize=7, loc="upper right", ncols=2)
    depth = lat["raw"]["queue_depth"]
    if depth:  # per second of the run: the most and the median waiting (sampled every 10 ms)
        per = 100
        secs = [(i + per / 2) * 0.010 for i in range(0, len(depth), per)]
        chunks = [sorted(depth[i:i + per]) for i in range(0, len(depth), per)]
        a3.fill_between(secs, [c[len(c) // 2] for c in chunks], [c[-1] for c in chunks], color="C2", alpha=0.3,
                        lw=0, label="median to most, per second")
        a3.plot(secs, [c[-1] for c in chunks], color="C2", lw=1)
    a3.set_ylim(bottom=0)
    a3.set_ylabel("events queued")
    a3.set_xlabel("seconds")
    a3.legend(fontsize=7, loc="lower right", title=f"queue depth (max {lat['queue_depth_max']})", title_fontsize=7)
    fig.suptitle(stamp, fontsize=7, color="0.4", x=0.99, ha="right")
    made.append(_save(fig, folder / "throughput_latency.png"))
    return made


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
