"""``kerasqt watch``: a window that follows live runs through their run logs (main thread).

A :class:`Watcher` follows a *target* in a :class:`~kerasqt.window.MonitorWindow`, each run
through a :class:`~kerasqt.follow.FollowSource`: the window's own receiver thread, refiner
and plot show it, exactly as a live ``fit``.

* A run log file: followed as it grows; when it is truncated or another file takes its name
  (rotation), followed anew from its start (the old curves are dropped).
* A folder: its newest run log (the one written last), then each new one that appears in
  it; the control pane says when it switches. The last ``KEEP_RUNS`` earlier runs stay on the
  axes, still, each named in the legend (as a replay of several runs), so that a sweep of runs
  can be compared (older ones go: each kept run is drawn again at every full draw; the run list
  compares any of them).
  A new run that appears while the one shown is still going ends the one shown (*no longer
  watched*) and is followed instead.
* A target that does not exist yet is waited for; so is the first line of a new log.

The run shown ends as the run log says (finished, stopped early, failed), or, without an
end, when its writer's process is gone (*the run stopped without an end*); the window
stays, and goes on following. Everything the watcher does runs in the main thread, on a
timer every ``poll`` s; it ends with the window.

A :class:`StreamWatcher` shows the runs a training serves over TCP (``kerasqt watch HOST:PORT``),
each through a :class:`~kerasqt.netsource.NetRun`, earlier runs kept on the axes as above. With the
training's control token, the window's *Stop training* (and its other controls) go back to the
training on the same connection (:mod:`kerasqt.net`); without it, the button is off and its
tooltip says why.
"""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

from qtpy.QtCore import QObject, Qt, QTimer, Signal

from .events import ErrorEvent, EvalEvent, drain
from .follow import FollowSource, open_log
from .runlog import RunLogError

__all__ = ["KEEP_RUNS", "StreamWatcher", "Watcher", "watch", "watch_stream"]

KEEP_RUNS = 3  # earlier runs that stay on a watcher's axes


class Watcher:
    """Follows ``target`` (a run log file or a folder of them) in ``window``; see the module docstring.

    ``first``: in a folder, the run to begin with (default: the newest). ``keep``: earlier runs of
    a folder stay on the axes (the last ``KEEP_RUNS``). ``runs``: the runs begun; ``ended``: those shown to their end;
    ``live``: whether a run is on show now; ``idle_since``: ``time.monotonic()`` of the last end.
    """

    def __init__(self, window, target: str | os.PathLike, *, first: str | os.PathLike | None = None,
                 poll: float = 0.25, keep: bool = True) -> None:
        self.window = window
        self.target = Path(target).expanduser().absolute()
        self.first = Path(first).expanduser().absolute() if first is not None else None
        self.keep = keep
        self.source: FollowSource | None = None
        self.path: Path | None = None
        self.live = False
        self.runs: list[Path] = []
        self.ended = 0
        self.idle_since = time.monotonic()
        self._known: set[str] | None = None  # a folder's run logs seen so far (None: not looked yet)
        self._refused: dict[Path, tuple] = {}  # files not followed -> their state then (retried when it changes)
        self._switch_to: Path | None = None
        self._said = ""  # the last wait said (said once)
        self._timer = QTimer(window)
        self._timer.setInterval(int(poll * 1000))
        self._timer.timeout.connect(self.tick)
        window.training.run_finished.connect(self._run_finished)
        window.closed.connect(self.stop)

    def start(self) -> Watcher:
        self.window.show_training()  # (not the demo's plot while it waits)
        what = "the folder" if self._folder() else "the run log"
        self.say(f"watching {what} {self.target}" + (": its newest run, then each new run in it"
                                                     if self._folder() else ""))
        self._timer.start()
        self.tick()
        return self

    def stop(self) -> None:
        """Stop following (the window closed, or the command ends); main thread."""
        self._timer.stop()
        if self.source is not None:
            self.source.stop()
        if self._switch_to is not None:
            self._switch_to[1][0].close()
            self._switch_to = None

    def say(self, text: str) -> None:
        if not self.window.is_closed:
            self.window.append_message("control", text)

    # -- the timer (main thread) -------------------------------------------------------------------
    def tick(self) -> None:
        if self.window.is_closed:
            return self.stop()
        src = self.source
        if src is not None:
            while src.notes:
                self.say(src.notes.popleft())
            if not self.live:
                while src.later:
                    self._show_later(src, src.later.popleft())
                if src.replaced is not None:
                    self._wait(f"{self.path} was {src.replaced}: following it anew from its start")
                    self._begin(self.path, again=True)
                    return
        if self._folder():
            if self._switch_to is not None:
                if not self.live:
                    (path, opened), self._switch_to = self._switch_to, None
                    self._begin(path, opened, switch=True)
                return
            if src is None and self._known is None:
                self._begin_first()
            else:
                self._look_for_new()
        elif src is None:
            self._begin_file()

    def _folder(self) -> bool:
        """Whether the target is a folder (one that is not there yet: unless its name ends in .jsonl)."""
        if self.target.exists():
            return self.target.is_dir()
        return self.target.suffix.lower() != ".jsonl"

    def _begin_file(self) -> None:
        if not self.target.exists():
            self._wait(f"waiting for {self.target} to appear")
        elif self._begin(self.target) is None:
            self._wait(f"waiting for the first line of {self.target}")

    def _begin_first(self) -> None:
        logs = self._logs()
        if logs is None:
            return self._wait(f"waiting for the folder {self.target} to appear")
        if not logs:
            return self._wait(f"waiting for a run log in {self.target}")
        first = self.first if self.first is not None and self.first.name in logs else None
        for path in [first] if first is not None else sorted(logs.values(), key=_mtime, reverse=True):
            began = self._begin(path)
            if began is None:
                return  # its first line is on its way: the next turn
            if began:
                self._known = set(logs)  # what is there now is not new
                return

    def _look_for_new(self) -> None:
        logs = self._logs() or {}
        if self._known is None:
            self._known = set()
        new = [path for name, path in logs.items() if name not in self._known]
        if not new:
            return
        path = max(new, key=_mtime)
        opened = self._open(path)
        if opened is None:
            return  # its first line is on its way: the next turn
        self._known.update(logs)
        if not opened:
            return
        if self.live:  # the run shown is left for the new one, at once
            src = self.source
            src.stop()
            src.events.put(ErrorEvent(time.time(), f"a newer run began in the folder: {path.name}",
                                      "no longer watched"))
            self.window.training.wake()
            self._switch_to = (path, opened)
            return
        self._begin(path, opened, switch=True)

    def _logs(self) -> dict[str, Path] | None:
        """The folder's run logs by name (not those refused while they stay as they were), or None
        when it is not there."""
        try:
            entries = [e for e in os.scandir(self.target) if e.name.endswith(".jsonl") and e.is_file()]
        except OSError:
            return None
        logs = {}
        for entry in entries:
            path = Path(entry.path)
            if path in self._refused and self._refused[path] == _state(path):
                continue
            logs[entry.name] = path
        return logs

    def _wait(self, text: str) -> None:
        if text != self._said:
            self._said = text
            self.say(text)

    # -- runs --------------------------------------------------------------------------------------
    def _open(self, path: Path):
        """:func:`~kerasqt.follow.open_log` for a training run: ``(file, header, offset)``; None while
        its first line is not there yet; False when it is no training run log (said once; tried
        again when the file changes)."""
        try:
            opened = open_log(path)
            if opened is not None and opened[1]["kind"] != "training":
                opened[0].close()
                raise RunLogError(f"{path}: a {opened[1]['kind']} demo recording, not a training run "
                                  "(kerasqt replay shows it)")
        except RunLogError as exc:
            if self._refused.get(path) != _state(path):
                self._refused[path] = _state(path)
                self.say(f"not followed: {exc}")
            return False
        if opened is not None:
            self._refused.pop(path, None)
        return opened

    def _begin(self, path: Path, opened=None, *, again: bool = False, switch: bool = False) -> bool | None:
        """Follow ``path`` now (``opened``: by :meth:`_open` already): True; else what :meth:`_open` said."""
        opened = opened or self._open(path)
        if not opened:
            return opened
        fh, header, offset = opened
        old, self.source = self.source, None
        if old is not None:
            old.stop()
        win = self.window
        win.show_training()
        if old is not None and not again and self.keep:
            win.plot.keep_run(KEEP_RUNS, path=old.path)  # the last run stays on the axes, still
        if self._folder():
            win.plot.label = path.stem
        src = FollowSource(path, fh, header, offset)
        self.source, self.path, self.live = src, path, True
        self.runs.append(path)
        self._said = ""
        if switch:
            kept = f" (earlier runs stay on the axes: the last {KEEP_RUNS})" if self.keep else ""
            self.say(f"switching to the new run {path.name}{kept}")
        win.request_run(src)
        win.status.setText("following")
        src.start()
        return True

    def _run_finished(self) -> None:
        if self.live:
            self.live = False
            self.ended += 1
            self.idle_since = time.monotonic()
            QTimer.singleShot(0, self.tick)

    def _show_later(self, src: FollowSource, ev) -> None:
        """A line after the run's end: an evaluate() after fit joins the run (a test result)."""
        if isinstance(ev, EvalEvent) and not self.window.is_closed:
            self.window.report_test(src, ev)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _state(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _shown_window(window, what):
    """``window``, or a new one watching ``what``, shown and kept live between notebook cells."""
    from .qtapp import ensure_app, start_kernel_pump
    from .window import MonitorWindow

    ensure_app()
    if window is None:
        window = MonitorWindow(title=f"kerasqt: watching {what}")
    window.show()
    start_kernel_pump()
    return window


def watch(target: str | os.PathLike, *, first: str | os.PathLike | None = None, window=None) -> Watcher:
    """Show the runs of ``target`` (a run log or a folder of them) in a window, live, and return the
    started :class:`Watcher` (main thread; returns at once: ``watcher.window`` is the window)."""
    return Watcher(_shown_window(window, target), target, first=first).start()


class StreamWatcher(QObject):
    """Shows the runs served at ``address`` in ``window`` (main thread), each as its header comes; a
    run that begins while the last is still on show waits for its end. ``token``: the training's
    control token (None: the window cannot control it). ``runs``: the runs begun; ``ended``: those
    shown to their end; ``idle_since``: ``time.monotonic()`` of the last end."""

    _announced = Signal(object)

    def __init__(self, window, address: str, *, token: str | None = None, keep: bool = True) -> None:
        from .net import NetSource

        super().__init__(window)
        self.window, self.keep = window, keep
        self.runs: list = []
        self.ended = 0
        self.idle_since = time.monotonic()
        self._next = None  # a run that waits for the one on show to end
        self._notes: queue.SimpleQueue = queue.SimpleQueue()  # (from the source's thread)
        self.source = NetSource(address, token=token, on_new_run=self._announced.emit, on_note=self._notes.put)
        self._announced.connect(self._announce, Qt.QueuedConnection)
        self._timer = QTimer(window)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._show_notes)
        window.training.run_finished.connect(self._run_finished)
        window.closed.connect(self.stop)

    def start(self) -> StreamWatcher:
        win = self.window
        win.show_training()
        control = "with controls (its token given)" if self.source.token else "without controls (no token)"
        win.append_message("control", f"watching the runs served at {self.source.address}, {control}")
        self._timer.start()
        self.source.start()
        return self

    def stop(self) -> None:
        """Stop watching (the window closed, or the command ends); main thread."""
        self._timer.stop()
        self.source.stop()

    def _show_notes(self) -> None:
        if not self.window.is_closed:
            for text in drain(self._notes):
                self.window.append_message("control", text)

    def _announce(self, run) -> None:
        if self.window.training_active:
            self._next = run  # (the source cut the one on show: its end is on its way)
        else:
            self._show(run)

    def _show(self, run) -> None:
        win = self.window
        if win.is_closed:
            return
        last = self.runs[-1] if self.runs else None
        if last is not None and self.keep and last.id != run.id:
            win.plot.keep_run(KEEP_RUNS)  # the last run stays on the axes, still
        created = run.header.get("created")
        win.plot.label = (time.strftime("%Y%m%d-%H%M%S", time.localtime(created))
                          if isinstance(created, (int, float)) else f"run {len(self.runs) + 1}")
        self.runs.append(run)
        win.request_run(run)
        win.status.setText("watching")
        win.stop_training_button.setToolTip(run.no_control() or "Ask the training to stop after the current batch "
                                            "(sent with this viewer's token)")

    def _run_finished(self) -> None:
        self.ended += 1
        self.idle_since = time.monotonic()
        run, self._next = self._next, None
        if run is not None:
            QTimer.singleShot(0, lambda: self._show(run))


def watch_stream(address: str, *, token: str | None = None, window=None) -> StreamWatcher:
    """Show the runs served at ``address`` (``HOST:PORT``) in a window, live, with controls when
    ``token`` is the training's, and return the started :class:`StreamWatcher` (main thread)."""
    return StreamWatcher(_shown_window(window, address), address, token=token).start()
