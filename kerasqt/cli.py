"""The ``kerasqt`` command: ``demo``, ``example`` (the main job), ``replay`` and ``watch``.

Bad arguments and a missing screen give one line on stderr and exit code 2.
Offscreen (``QT_QPA_PLATFORM=offscreen``) the window cannot be closed by anyone,
so each command ends by itself and saves a screenshot (``watch``: ``IDLE_END`` s after
the last run it showed ended, if no new one began; or after ``--seconds``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _niceness(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 19:
        raise argparse.ArgumentTypeError(f"must be from 0 to 19, got {text}")
    return value


def _log_folder(text: str) -> str:
    """A folder for run logs: made if missing, so it may not be a file, nor a folder we cannot write."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"not a folder: {text}")
    if os.path.isdir(text) and not os.access(text, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in the folder {text}")
    return text


def _png_path(text: str) -> str:
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"folder does not exist: {folder}")
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(f"screenshot must be a .png file, got {text!r}")
    return text


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number (times the recorded pace), got {text}")
    return value


def _watch_target(text: str) -> str:
    """A run log or a folder of them (one not there yet is waited for), or a served run's HOST:PORT."""
    if os.path.exists(text) and not (os.path.isfile(text) or os.path.isdir(text)):
        raise argparse.ArgumentTypeError(f"not a run log file nor a folder: {text}")
    if _is_address(text):
        from .net import viewer_address

        try:
            viewer_address(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _control_token(text: str) -> str:
    from .wire import check_token

    try:
        return check_token(text, "--token")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _is_address(text: str) -> bool:
    """Whether a watch target is a network address (HOST:PORT), not a path."""
    head, sep, port = text.rpartition(":")
    return bool(sep) and not os.path.exists(text) and port.isdigit() and "/" not in text and "\\" not in text


def _export_path(text: str) -> str:
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"folder does not exist: {folder}")
    if os.path.splitext(text)[1].lower() not in (".png", ".svg", ".pdf", ".csv"):
        raise argparse.ArgumentTypeError(f"export must be a .png, .svg, .pdf or .csv file, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="kerasqt", description="Watch Keras training live in a Qt window.")
    parser.add_argument("--version", action="version", version=f"kerasqt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,example,replay,watch}", parser_class=_Parser)

    demo = sub.add_parser("demo", help="the sine demo: worker and receiver threads feeding the window")
    demo.add_argument("--seconds", type=_positive_float, help="run this long, then close (headless smoke mode)")
    demo.add_argument("--screenshot", type=_png_path, help="save a PNG of the window before closing")
    demo.add_argument("--worker-iterations", type=_positive_int, default=20, metavar="N",
                      help="sine curves the worker makes (default: %(default)s)")
    demo.add_argument("--worker-interval", type=_positive_float, default=0.1, metavar="SECONDS",
                      help="pause between two curves (default: %(default)s)")
    demo.add_argument("--receiver-iterations", type=_positive_int, default=50, metavar="N",
                      help="times the receiver takes what is queued (default: %(default)s)")
    demo.add_argument("--receiver-interval", type=_positive_float, default=0.05, metavar="SECONDS",
                      help="pause between two of them (default: %(default)s)")
    demo.add_argument("--batch-size", type=_positive_int, default=5, metavar="N",
                      help="receiver iterations that share a colour (default: %(default)s)")
    demo.add_argument("--no-start", action="store_true", help="wait for the start threads button")
    demo.add_argument("--log-dir", metavar="DIR", type=_log_folder,
                      help="record each demo run to a run log in DIR (made if missing)")

    ex = sub.add_parser("example", help="train a small model to tell three spirals apart, watched live")
    ex.add_argument("--epochs", type=_positive_int, default=12, help="epochs to train (default: %(default)s)")
    ex.add_argument("--batch-size", type=_positive_int, default=32, help="samples per batch (default: %(default)s)")
    ex.add_argument("--screenshot", type=_png_path, help="save a PNG of the window after training")

    rp = sub.add_parser("replay", help="show recorded runs (run logs) in the window; several overlay")
    rp.add_argument("runs", nargs="+", metavar="RUN_FILE", help="run logs (.jsonl) written by QtMonitor or the demo")
    rp.add_argument("--speed", type=_speed, help="replay in time, this many times faster (default: all at once)")
    rp.add_argument("--screenshot", type=_png_path, help="save a PNG of the window when the replay has ended")
    rp.add_argument("--export", type=_export_path, action="append", default=[], metavar="PATH",
                    help="when the replay has ended, save the figure (.png, .svg, .pdf) or metrics (.csv); repeatable")

    wt = sub.add_parser("watch", help="follow live runs through their run logs: one file as it grows, or a folder's "
                                      "newest run and each new one")
    wt.add_argument("target", metavar="TARGET", type=_watch_target,
                    help="a run log (.jsonl) or a folder of them (waited for if not there yet), or HOST:PORT of a "
                         "run served with QtMonitor(serve=...) or KERASQT_SERVE")
    wt.add_argument("--first", metavar="RUN_FILE", help="in a folder: begin with this run (default: the newest)")
    wt.add_argument("--seconds", type=_positive_float, help="follow this long, then close (headless smoke mode)")
    wt.add_argument("--screenshot", type=_png_path, help="save a PNG of the window before closing")
    wt.add_argument("--token", type=_control_token, metavar="TOKEN",
                    help="HOST:PORT: the training's control token (it prints it), for Stop training and the other "
                         "controls (default: $KERASQT_TOKEN; none: watch only)")
    wt.add_argument("--nice", type=_niceness, default=0, metavar="N",
                    help="run at a lower CPU priority (0-19, as nice(1)): a training on this machine that uses "
                         "every core then loses less to the drawing, and the window answers more slowly")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line; every failure is one line on stderr and exit code 2 (Ctrl-C: 130).

    ``KERASQT_DEBUG=1`` lets an unexpected error out with its traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("kerasqt: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("KERASQT_DEBUG"):
            raise
        text = " ".join(str(exc).split()) or "(no message)"
        print(f"kerasqt: error: {type(exc).__name__}: {text} (KERASQT_DEBUG=1 shows where)", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # what there is to do, in one line like every other failure
        print("kerasqt: error: name a command: demo, example, replay or watch (kerasqt --help tells more)",
              file=sys.stderr)
        return 2
    runs = None
    if args.command == "replay":  # bad files are one line and exit 2, before any window
        runs = _read_runs(args.runs, args.export)
        if runs is None:
            return 2
    wrong = _check_watch(args) if args.command == "watch" else None
    if wrong:
        print(f"kerasqt: error: {wrong}", file=sys.stderr)
        return 2
    if getattr(args, "nice", 0):
        os.nice(args.nice)  # (before Qt starts its threads: they take the process' niceness)
    from .qtapp import NoDisplayError, QtMissingError, ensure_app, is_offscreen

    try:
        ensure_app()
    except (NoDisplayError, QtMissingError) as exc:
        print(f"kerasqt: error: {exc}", file=sys.stderr)
        return 2
    if is_offscreen() and not args.screenshot:
        args.screenshot = f"kerasqt-{args.command}.png"
    if args.command == "demo":
        return _demo(args)
    if args.command == "replay":
        return _replay(args, runs)
    if args.command == "watch":
        return _watch(args)
    return _example(args)


def _check_watch(args) -> str | None:
    """What is wrong with ``watch``'s arguments together, or None; the token of a served run's watch
    defaults to ``$KERASQT_TOKEN``."""
    if args.first and os.path.isfile(args.target):
        return "--first is for a folder; the target is a run log file"
    if not _is_address(args.target):
        return "--token is for HOST:PORT (a served run); a run log cannot be controlled" if args.token else None
    if args.token is None:
        from .wire import env_token

        try:
            args.token = env_token()
        except ValueError as exc:
            return str(exc)
    return None


def _finish(window, screenshot: str | None) -> None:
    if screenshot:
        window.save_screenshot(screenshot)
        print(f"screenshot saved to {os.path.abspath(screenshot)}")


def _demo(args) -> int:
    from qtpy.QtCore import QTimer

    from .app import run_until_closed, show_demo
    from .qtapp import is_offscreen

    window = show_demo(start=not args.no_start, worker_iterations=args.worker_iterations,
                       worker_interval=args.worker_interval, receiver_iterations=args.receiver_iterations,
                       receiver_interval=args.receiver_interval, batch_size=args.batch_size, log_dir=args.log_dir)

    def end() -> None:
        if not window.is_closed:
            window.stop_threads()
            _finish(window, args.screenshot)
            window.close()

    if args.seconds is not None:
        QTimer.singleShot(int(args.seconds * 1000), end)
    elif is_offscreen():  # nobody can close the window: end when the demo's threads are done
        window.demo.running_changed.connect(lambda running: running or QTimer.singleShot(200, end))
        if args.no_start:
            QTimer.singleShot(0, end)
    run_until_closed(window)
    return 0


def _example(args) -> int:
    from .callback import QtMonitor
    from .example import train_spirals

    monitor = QtMonitor(title="kerasqt: spirals example")
    model, history = train_spirals(monitor, epochs=args.epochs, batch_size=args.batch_size)
    h = history.history
    print(f"trained {len(h['loss'])} epochs: loss {h['loss'][-1]:.3f}, accuracy {h['accuracy'][-1]:.3f}, "
          f"val_loss {h['val_loss'][-1]:.3f}, val_accuracy {h['val_accuracy'][-1]:.3f}")
    if monitor.log_path is not None:
        print(f"run log: {os.path.abspath(monitor.log_path)} (kerasqt replay shows it)")
    window = monitor.window
    _finish(window, args.screenshot)
    from .qtapp import is_offscreen

    if not is_offscreen():
        print("close the window to exit")
        monitor.wait_closed()
    monitor.close()
    return 0


def _read_runs(paths: list[str], exports: list[str]):
    """The run logs, checked (and that they can give the ``exports``); None after printing one
    line for the first problem."""
    from .runlog import RunLogError, read_run

    runs = []
    for path in paths:
        try:
            run = read_run(path)
            if not run.records:
                raise RunLogError(f"{path}: the run log holds no events")
        except RunLogError as exc:
            print(f"kerasqt: error: {exc}", file=sys.stderr)
            return None
        runs.append(run)
    if len({run.kind for run in runs}) > 1:
        print("kerasqt: error: cannot overlay sine demo recordings and training runs", file=sys.stderr)
        return None
    if runs[0].kind == "sine" and any(os.path.splitext(p)[1].lower() == ".csv" for p in exports):
        print("kerasqt: error: a sine demo recording has no training metrics to export as .csv; "
              "export the figure (.png, .svg, .pdf)", file=sys.stderr)
        return None
    return runs


def _replay(args, runs) -> int:
    from .app import run_until_closed
    from .qtapp import is_offscreen
    from .replay import replay

    rp = replay(runs, speed=args.speed)
    window = rp.window
    status = [0]

    def end() -> None:
        for run in runs:
            note = " (its last line was cut short and is skipped)" if run.truncated else ""
            print(f"replayed {run.describe()}{note}")
        if window.is_closed:
            return
        for path in args.export:
            try:
                window.export(path)
            except (OSError, ValueError) as exc:
                print(f"kerasqt: error: {exc}", file=sys.stderr)
                status[0] = 2
                continue
            print(f"exported {os.path.abspath(path)}")
        _finish(window, args.screenshot)
        if is_offscreen():
            window.close()
        else:
            print("close the window to exit")

    rp.finished.connect(end)
    run_until_closed(window)
    return status[0]


IDLE_END = 5.0  # seconds: offscreen, ``watch`` ends this long after the last run shown ended, if no new one began


def _watch(args) -> int:
    if _is_address(args.target):
        return _watch_stream(args)

    from .events import counted
    from .watch import watch

    watcher = watch(args.target, first=args.first)
    _watch_until_done(watcher.window, args,
                      lambda: watcher.ended and not watcher.live and time.monotonic() - watcher.idle_since >= IDLE_END)
    names = ", ".join(path.name for path in watcher.runs)
    print(f"watched {counted(len(watcher.runs), 'run')}{f' ({names})' if names else ''}, "
          f"{watcher.ended} shown to their end")
    return 0


def _watch_until_done(window, args, done) -> None:
    """Run the window's event loop: ``--seconds`` long, or offscreen (nobody can close it) until
    ``done()`` says the runs shown have ended a while ago, or until the user closes it."""
    from qtpy.QtCore import QTimer

    from .app import run_until_closed
    from .qtapp import is_offscreen

    def end() -> None:
        if not window.is_closed:
            _finish(window, args.screenshot)
            window.close()

    if args.seconds is not None:
        QTimer.singleShot(int(args.seconds * 1000), end)
    elif is_offscreen():
        timer = QTimer(window)
        timer.timeout.connect(lambda: done() and end())
        timer.start(500)
    else:
        print("close the window to exit")
    run_until_closed(window)


def _watch_stream(args) -> int:
    """``kerasqt watch HOST:PORT``: the runs a training process serves, each shown as it comes."""
    from .events import counted
    from .watch import watch_stream

    watcher = watch_stream(args.target, token=args.token)
    try:
        _watch_until_done(watcher.window, args, lambda: watcher.ended and not watcher.window.training_active
                          and time.monotonic() - watcher.idle_since >= IDLE_END)
    finally:
        watcher.stop()
    print(f"watched {counted(len(watcher.runs), 'run')} from {watcher.source.address}, "
          f"{watcher.ended} shown to their end{', with controls (a token)' if args.token else ''}")
    return 0
