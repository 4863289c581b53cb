"""The window's run list: the runs of the log folder, to compare with the live one (main thread).

:class:`RunList` is a part of a :class:`~kerasqt.window.MonitorWindow`, in a dock beside the plot
(View it, float it or close it like any dock). It appears when a run that writes a run log
begins (a :class:`~kerasqt.callback.QtMonitor`'s: ``log_path``), and lists that log's folder:

* every run of it, newest first, as :class:`~kerasqt.runtable.RunTable` shows them; the
  catalogue (:class:`~kerasqt.catalogue.RunCatalogue`) is refreshed every ``interval`` s and
  when a run ends, on the main thread: a ``stat`` per file, and only what changed is read, at
  most :data:`BUDGET` bytes a turn (a folder of big logs seen for the first time takes a few);
* a checked run is read whole by a :class:`~kerasqt.catalogue.RunLoader` thread, which lives
  while there are runs to read, and drawn over the live axes in its own colour, named in the
  legend (:class:`~kerasqt.overlay.RunOverlays`); it stays checked for the window's next runs;
* when a run of the same monitor begins, its previous run is checked for it when both logged
  the same training metrics (:func:`~kerasqt.catalogue.metrics_match`), once the live run's
  first metrics are in; the next run takes that default off again, unless the user changed it;
* renames and hidden runs go to the folder's ``kerasqt-runs.json`` (:mod:`kerasqt.sidecar`),
  never to the logs, and come back in every window that lists the folder.

A replay or a watch window (its runs' sources have a ``log_path`` too) lists the folder of the
log it shows; the earlier runs it keeps on the axes itself
(:meth:`~kerasqt.plotting.MetricsPlot.keep_run`) are *kept* rows: shown checked, in their
colour, and not overlaid a second time.
"""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QDockWidget

from .catalogue import LoadedRun, RunCatalogue, RunLoader, RunSummary, metrics_match, with_history
from .overlay import RunOverlays
from .runtable import Row, RunTable
from .sidecar import RunNames

__all__ = ["RunList"]

POLL_MS = 250  # how often the window looks for runs read whole, and whether a refresh is due
BUDGET = 4 * 2**20  # bytes of logs a refresh reads at most (about 10 ms), newest files first
DOCK_WIDTH = RunTable.WIDTH + 10  # pixels the window grows by when the list first shows


class RunList:
    """The run list of ``window`` (a MonitorWindow); see the module docstring."""

    def __init__(self, window, interval: float = 2.0) -> None:
        self.window = window
        self.interval = interval
        self.table = RunTable()
        self.dock = QDockWidget("Runs", window)
        self.dock.setObjectName("kerasqt-runs")
        self.dock.setWidget(self.table)
        window.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.dock.hide()  # until a run with a log begins
        self.toggle = self.dock.toggleViewAction()  # in the toolbar: the list closed, and opened again
        self.toggle.setText("Runs")
        self.toggle.setToolTip("Show or hide the list of runs in the log folder")
        self.toggle.setVisible(False)
        window.toolbar.addAction(self.toggle)
        self.overlays = RunOverlays()
        self.folder: Path | None = None
        self.names: RunNames | None = None
        self.catalogue: RunCatalogue | None = None
        self.loader: RunLoader | None = None
        self._answers: collections.deque = collections.deque()  # the loaders' answers
        self._next = 0.0  # time.monotonic() of the next refresh
        self.runs: list[RunSummary] = []
        self.checked: set[Path] = set()
        self.loaded: dict[Path, LoadedRun] = {}
        self.live: Path | None = None  # the log of the run on show
        self.show_hidden = False
        self.problems: list[str] = []  # said in the control pane, one line each
        self._source = None  # the run source of the run on show
        self._default: Path | None = None  # the previous run: overlaid once the live metrics are known
        self._auto: set[Path] = set()  # runs checked by default (not by the user)
        self._timer = QTimer(window)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._guarded(self.tick))
        table, training = self.table, window.training
        for signal, slot in ((table.checked, self.set_checked), (table.renamed, self.rename),
                             (table.hidden, self.set_hidden), (table.show_hidden_changed, self.set_show_hidden),
                             (table.batches_changed, self._batches), (training.updated, self._updated),
                             (training.run_finished, self.refresh)):
            signal.connect(self._guarded(slot))
        window.closed.connect(self.close)

    def _guarded(self, slot):
        """``slot`` for a Qt signal: no exception gets out into Qt (PyQt5 would abort the process);
        the window logs it once and goes on (MonitorWindow.internal_error). A Ctrl-C that lands here
        is kept for the window's take_interrupt: it is the training's, as anywhere else."""

        def guarded(*args):
            try:
                slot(*args)
            except KeyboardInterrupt:
                self.window.interrupted = True
            except Exception as exc:
                self.window.internal_error(f"run list: {slot.__name__}", exc)

        return guarded

    # -- the folder --------------------------------------------------------------------------------
    def set_folder(self, folder: str | os.PathLike) -> None:
        """List ``folder``'s runs (the window does this when a run with a log begins)."""
        folder = Path(folder).absolute()
        if folder == self.folder and self.catalogue is not None:
            self.refresh()
            return
        self._stop_loader()
        self.folder = folder
        self.names = RunNames(folder)
        self.catalogue = RunCatalogue(folder)
        self.runs, self.loaded = [], {}
        self.checked.clear()
        self._auto.clear()
        self.overlays.runs.clear()
        self.overlays.redraw()
        self._timer.start()
        self.refresh()
        if not self.toggle.isVisible():  # the first time: shown, the window made wider for it
            self.toggle.setVisible(True)
            self.dock.show()
            self._widen()

    def _widen(self) -> None:
        """Make room for the dock beside the plot, as far as the screen allows."""
        win = self.window
        if win.isMaximized() or win.isFullScreen() or not win.isVisible():
            return
        screen = win.screen() if hasattr(win, "screen") else None
        room = screen.availableGeometry().width() if screen is not None else win.width() + DOCK_WIDTH
        win.resize(min(win.width() + DOCK_WIDTH, max(room, win.width())), win.height())

    def refresh(self) -> None:
        """Look at the folder now (a run ended, or the list is asked to), not at the next turn."""
        if self.catalogue is None:
            return
        try:
            old = {run.path: run for run in self.runs}
            self.runs = self.catalogue.refresh(BUDGET)
            self._next = time.monotonic() + (POLL_MS / 1000 if self.catalogue.pending else self.interval)
            for run in self.runs:  # a checked run that was still going has ended: read it again
                before = old.get(run.path)
                if run.path in self.checked and before is not None and before.ended != run.ended:
                    self._load(run.path)
            if self.names is not None and self.names.load() and self.names.problem:
                self._say(self.names.problem)
            self._show()
        except Exception as exc:  # the list must never cost the window its run
            self.window.internal_error("run list", exc)

    def close(self) -> None:
        """The window closed: a loader still reading ends (idempotent)."""
        self._timer.stop()
        self._stop_loader()

    def _stop_loader(self) -> None:
        loader, self.loader = self.loader, None
        if loader is not None:
            loader.stop()
        self._answers.clear()

    # -- runs of the window ------------------------------------------------------------------------
    def _updated(self, update) -> None:
        """The window took an update (after its own slot): a run begins, or its metrics came."""
        if update.start is not None and self.window.monitor is not None:
            self.run_began(self.window.monitor)
        if self._default is not None:
            self._decide_default()
        if update.epochs and self.live is not None:
            self._show()  # the live run's epochs and best value, as they come

    def run_began(self, source) -> None:
        """A run of ``source`` (a RunSource) is on show now: list its log's folder, with its previous
        run (of the same source) to overlay by default."""
        path = getattr(source, "log_path", None)
        plot = self.window.plot
        if hasattr(plot, "layout"):
            self.overlays.attach(plot)
        if path is None:  # (a run without a log: nothing of it in the list, and no run to follow it by default)
            self._source = self.live = None
            self._show()
            return
        path = Path(path).absolute()
        if path == self.live:
            return
        previous = self.live if source is self._source else None
        self._source, self.live = source, path
        self.set_folder(path.parent)
        for old in self._auto:  # the last run's default is not this one's
            self._check(old, False)
        self._auto.clear()
        self._check(path, False)  # (a run is never overlaid on itself)
        for kept in self.kept_logs():  # (nor a run the window keeps on the axes itself)
            self._check(kept, False)
        self._default = previous if previous is not None and previous.parent == path.parent else None
        if self._default is not None:
            self._want(self._default)
        self._show()

    def _decide_default(self) -> None:
        """Overlay the previous run when it is read and the live run's metrics are known, if they match."""
        loaded = self.loaded.get(self._default)
        plot = self.window.plot
        history = getattr(plot, "history", None)
        if loaded is None or history is None:
            return
        live = history.batches.metrics() + history.epochs.names()
        if not live:
            return
        path, self._default = self._default, None
        if metrics_match(loaded.metrics, live) and path not in self.checked:
            self._auto.add(path)
            self._check(path, True)
            self._show()
        elif path not in self.checked:
            self.loaded.pop(path, None)

    # -- what the user does ------------------------------------------------------------------------
    def set_checked(self, path, on: bool) -> None:
        """Overlay the run logged at ``path`` on the live axes, or take it off."""
        path = Path(path).absolute()
        self._auto.discard(path)
        if path == self._default:
            self._default = None  # the user decided
        self._check(path, on)
        self._show()

    def rename(self, path, name: str) -> None:
        """Name the run (``""``: its own name again); kept in the folder's sidecar."""
        path = Path(path).absolute()
        if self.names is None:
            return
        try:
            self.names.rename(path.stem, name)
        except OSError as exc:
            self._say(f"the run could not be renamed: {self.names.path}: {exc.strerror or exc}")
        self.overlays.rename(path, self.name_of(path))
        self._rename_on_axes(path, self.name_of(path))
        self.window.request_frame()
        self._show()

    def _rename_on_axes(self, path: Path, name: str) -> None:
        """A run the window shows itself (kept by a replay or a watcher, or the one on show) takes
        ``name`` in the legends."""
        rename_run = getattr(getattr(self.window.plot, "layout", None), "rename_run", None)
        if rename_run is not None and rename_run(path, name, live=path == self.live):
            self.window.request_frame()

    def _names_on_axes(self) -> None:
        """The names given in the sidecar, also to the runs the window shows itself: a replay or a
        watcher labels them by their logs."""
        if self.names is None:
            return
        for path in [*self.kept_logs(), *([self.live] if self.live is not None else [])]:
            name = self.names.name(path.stem)
            if name:
                self._rename_on_axes(path, name)

    def set_hidden(self, path, hidden: bool) -> None:
        """Hide the run from the list (its file stays), or show it again."""
        path = Path(path)
        if self.names is None:
            return
        try:
            self.names.set_hidden(path.stem, hidden)
        except OSError as exc:
            self._say(f"the run could not be hidden: {self.names.path}: {exc.strerror or exc}")
        if hidden:
            self._check(path, False)
        self._show()

    def set_show_hidden(self, on: bool) -> None:
        self.show_hidden = bool(on)
        if self.table.hidden_box.isChecked() != self.show_hidden:
            self.table.hidden_box.setChecked(self.show_hidden)
        self._show()

    def _batches(self, on: bool) -> None:
        self.overlays.set_batches(on)
        self.window.request_frame()

    @property
    def default_pending(self) -> bool:
        """Whether the previous run waits to be overlaid by default (read, and the live metrics known)."""
        return self._default is not None

    def name_of(self, path: Path) -> str:
        return (self.names.name(path.stem) if self.names is not None else None) or path.stem

    # -- the timer -----------------------------------------------------------------------------------
    def tick(self) -> None:
        """Take the runs read whole, and refresh when due (the timer, every POLL_MS)."""
        if self.catalogue is None:
            return
        try:
            answers = []
            while self._answers:
                answers.append(self._answers.popleft())
            for answer in answers:
                self._answer(answer)
            if answers:
                self._show()
            if self._default is not None:
                self._decide_default()
        except Exception as exc:
            self.window.internal_error("run list", exc)
        if time.monotonic() >= self._next:
            self.refresh()

    def _answer(self, answer: tuple) -> None:
        kind = answer[0]
        if kind == "loaded":
            loaded = answer[1]
            if loaded.path not in self.checked and loaded.path != self._default:
                return  # (taken off meanwhile)
            self.loaded[loaded.path] = loaded
            if loaded.path in self.checked:
                self.overlays.show(loaded.path, self.name_of(loaded.path), loaded.history)
                self.window.request_frame()
        elif kind == "unreadable":
            path, message = answer[1], answer[2]
            self._say(f"not overlaid: {message}")
            self.checked.discard(path)
            self._auto.discard(path)
            if path == self._default:
                self._default = None
        elif kind == "failed":
            self._say(f"the run list stopped: {answer[1]}")

    # -- helpers -----------------------------------------------------------------------------------
    def _want(self, path: Path) -> None:
        """Have ``path`` read whole (unless it is already)."""
        if path not in self.loaded:
            self._load(path)

    def _load(self, path: Path) -> None:
        """Have ``path`` read whole by the loader, a new one when the last has ended."""
        self.loaded.pop(path, None)
        if self.loader is None or not self.loader.add(path):
            self.loader = RunLoader(self._answers)
            self.loader.add(path)
            self.loader.start()

    def kept_logs(self) -> dict[Path, str]:
        """The logs of the runs the window keeps on its axes (a replay's, a watcher's), with their colours."""
        kept = getattr(self.window.plot, "kept_logs", None)
        return kept() if kept is not None else {}

    def _check(self, path: Path, on: bool) -> None:
        if on and path != self.live and path not in self.kept_logs():
            self.checked.add(path)
            if path in self.loaded:
                self.overlays.show(path, self.name_of(path), self.loaded[path].history)
                self.window.request_frame()
            else:
                self._want(path)
        elif path in self.checked:
            self.checked.discard(path)
            self.overlays.hide(path)
            if path != self._default:
                self.loaded.pop(path, None)  # (read again if checked again: it may have changed)
            self.window.request_frame()

    def rows(self) -> list[Row]:
        """The rows shown: the runs not hidden (all with *show hidden*), newest first."""
        out = []
        kept = self.kept_logs()
        for run in self.runs:
            hidden = self.names is not None and self.names.hidden(run.stem)
            if hidden and not self.show_hidden:
                continue
            overlay = self.overlays.runs.get(run.path)
            live = run.path == self.live
            if live and hasattr(self.window.plot, "history"):
                run = with_history(run, self.window.plot.history)
            color = kept.get(run.path) or (overlay.color if overlay is not None else None)
            out.append(Row(run, self.name_of(run.path), hidden, run.path in self.checked,
                           color, live, run.path in kept))
        return out

    def _show(self) -> None:
        self._names_on_axes()
        self.table.show_runs(self.rows(), str(self.folder or ""))

    def _say(self, text: str) -> None:
        if not self.problems or self.problems[-1] != text:
            self.problems.append(text)
            self.window.append_message("control", text)
