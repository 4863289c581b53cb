"""The run list's table (main thread only): one row per run of the log folder, with a checkbox.

:class:`RunTable` shows what it is given (:meth:`RunTable.show_runs`: :class:`Row` values) and
says what the user did through its signals; it decides nothing (:mod:`kerasqt.runlist` does).
Columns: the run's name (a checkbox: overlay it; a swatch of its colour when overlaid), its
status, its best validation value, its epochs and when it started; under it, in grey, its
settings and tags in a few words. The tooltip of a run holds all of it, one setting a line.
Double-click a name (or *Rename* in the context menu) to rename the run; *Hide* takes it off
the list, and *show hidden* brings the hidden runs back, in grey, to show them again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from qtpy.QtCore import QPoint, QSize, Qt, Signal
from qtpy.QtGui import QBrush, QColor, QFont, QIcon, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .catalogue import RunSummary
from .settings import describe_settings

__all__ = ["COLUMNS", "Row", "RunTable", "best_text", "epochs_text", "settings_text", "start_text"]

COLUMNS = ("run", "status", "best val", "epochs", "started")
STATUS = 1
PATH_ROLE = Qt.UserRole


@dataclass(frozen=True)
class Row:
    """One run as the table shows it."""

    run: RunSummary
    name: str  # as the user named it, else the log's name
    hidden: bool = False
    checked: bool = False
    color: str | None = None  # its overlay's colour (a Matplotlib colour), when overlaid
    live: bool = False  # the run on show (it cannot be overlaid on itself)
    kept: bool = False  # an earlier run the window keeps on its axes itself (a replay's, a watcher's)


def start_text(created: float | None, now: float | None = None) -> str:
    """``14:30:05`` today, ``01-26 14:30`` before."""
    if created is None:
        return "?"
    now = time.time() if now is None else now
    local, today = time.localtime(created), time.localtime(now)
    if local[:3] == today[:3]:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%m-%d %H:%M", local)


def epochs_text(run: RunSummary) -> str:
    if run.planned is not None and run.planned != run.epochs:
        return f"{run.epochs}/{run.planned}"
    return str(run.epochs)


def best_text(run: RunSummary) -> str:
    """The best validation value, its metric named unless it is ``val_loss``: ``0.3124``, ``0.91 val_accuracy``."""
    if run.best is None:
        return ""
    key, value, _ = run.best
    return f"{value:.4g}" if key == "val_loss" else f"{value:.4g} {key}"


def settings_text(run: RunSummary) -> str:
    """The settings in a few words: ``Adam 0.01 · batch 32 · dropout=0.3``."""
    s = run.settings
    parts = []
    lr = s.get("learning_rate")
    opt = " ".join(str(v) if not isinstance(v, float) else f"{v:.3g}" for v in (s.get("optimizer"), lr)
                   if v is not None)
    if opt:
        parts.append(opt)
    if s.get("batch_size") is not None:
        parts.append(f"batch {s['batch_size']}")
    parts += [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.tags.items()]
    return " · ".join(parts)


def _tooltip(row: Row) -> str:
    run = row.run
    lines = [f"{row.name}  ({run.path.name})" if row.name != run.stem else run.path.name]
    if run.title:
        lines.append(f"title: {run.title}")
    if run.created is not None:
        lines.append("started " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created)))
    lines.append(f"{run.status}" + (f": {run.message}" if run.message else ""))
    if run.best is not None:
        lines.append(f"best {run.best[0]} {run.best[1]:.4g} at epoch {run.best[2] + 1}")
    lines += describe_settings(run.settings, run.tags)
    if row.live:
        lines.append("(the run on show)")
    elif row.kept:
        lines.append("(kept on the axes by this window)")
    return "\n".join(lines)


def _swatch(color: str) -> QIcon:
    from matplotlib.colors import to_hex

    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(to_hex(color)))
    return QIcon(pixmap)


class _PathLabel(QLabel):
    """A folder's path on one line, elided in the middle to the label's width (all of it in the
    tooltip); its text never widens the dock (the plot beside it would be resized, and drawn anew)."""

    def __init__(self) -> None:
        super().__init__("")
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.path = ""

    def set_path(self, path: str) -> None:
        if path != self.path:
            self.path = path
            self.setToolTip(path)
            self._elide()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self.path, Qt.ElideMiddle, max(self.width(), 1)))


class RunTable(QWidget):
    """The table and its two toggles; the rows are :meth:`show_runs`'s, the decisions the caller's."""

    checked = Signal(object, bool)  # (log path, overlaid)
    renamed = Signal(object, str)  # (log path, new name; "" for its own name again)
    hidden = Signal(object, bool)  # (log path, hidden)
    show_hidden_changed = Signal(bool)
    batches_changed = Signal(bool)

    WIDTH = 430  # the width it asks for, whatever its rows hold (see sizeHint)
    NAME_WIDTH = 140  # the run column's width at first (the user may drag it)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(2, 2, 2, 2)
        top = QHBoxLayout()
        self.folder_label = _PathLabel()
        self.batches_box = QCheckBox("batch curves")
        self.batches_box.setChecked(True)
        self.batches_box.setToolTip("Overlay the smoothed batch values of the checked runs, beside their epochs")
        self.hidden_box = QCheckBox("show hidden")
        box.addWidget(self.folder_label)
        top.addStretch(1)
        top.addWidget(self.batches_box)
        top.addWidget(self.hidden_box)
        box.addLayout(top)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setEditTriggers(QAbstractItemView.NoEditTriggers)  # rename: double-click on the name only
        self.tree.setContextMenuPolicy(Qt.CustomContextMenu)
        self.tree.setMinimumWidth(300)
        self.tree.setIndentation(0)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeToContents)
        # The name elides (its tooltip has it whole), so that status and best val show in a narrow dock.
        header.setSectionResizeMode(0, QHeaderView.Interactive)
        header.resizeSection(0, self.NAME_WIDTH)
        box.addWidget(self.tree, 1)
        self.items: dict[Path, QTreeWidgetItem] = {}
        self.rows: dict[Path, Row] = {}
        self._filling = False
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.hidden_box.toggled.connect(self.show_hidden_changed)
        self.batches_box.toggled.connect(self.batches_changed)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """A fixed width: the rows' contents never resize the dock, and with it the plot (a full draw)."""
        return QSize(self.WIDTH, super().sizeHint().height())

    # -- what is shown ---------------------------------------------------------------------------
    def show_runs(self, rows: list[Row], folder: str = "") -> None:
        """Show ``rows`` in their order; rows of runs already shown are updated in place."""
        self.folder_label.set_path(folder)
        self._filling = True
        try:
            wanted = [row.run.path for row in rows]
            for path in set(self.items) - set(wanted):
                item = self.items.pop(path)
                self.rows.pop(path, None)
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
            for index, row in enumerate(rows):
                path = row.run.path
                item = self.items.get(path)
                if item is None:
                    item = self.items[path] = QTreeWidgetItem()
                    item.setData(0, PATH_ROLE, str(path))
                    self.tree.insertTopLevelItem(index, item)
                elif self.tree.indexOfTopLevelItem(item) != index:
                    self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
                    self.tree.insertTopLevelItem(index, item)
                if self.rows.get(path) != row:
                    self._fill(item, row)
                    self.rows[path] = row
        finally:
            self._filling = False

    def _fill(self, item: QTreeWidgetItem, row: Row) -> None:
        run = row.run
        flags = Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsEditable
        if not (row.live or row.kept):
            flags |= Qt.ItemIsUserCheckable
        item.setFlags(flags)
        item.setCheckState(0, Qt.Checked if (row.checked or row.kept) and not row.live else Qt.Unchecked)
        status = ("live" if row.live and run.status == "running" else run.status) + (" · hidden" if row.hidden else "")
        texts = (row.name, status, best_text(run), epochs_text(run), start_text(run.created))
        tip = _tooltip(row)
        for col, text in enumerate(texts):
            item.setText(col, text)
            item.setToolTip(col, tip)
        self._settings_line(item, settings_text(run), tip)
        item.setIcon(0, _swatch(row.color) if row.color and (row.checked or row.kept) else QIcon())
        font = QFont(item.font(0))
        font.setItalic(row.hidden)
        font.setBold(row.live)
        grey = QBrush(QColor("#888888")) if row.hidden else QBrush()
        status_color = {"failed": "#b00020", "cut short": "#9a6700", "stopped": "#9a6700",
                        "running": "#1b7f3b"}.get(run.status)
        for col in range(len(COLUMNS)):
            item.setFont(col, font)
            item.setForeground(col, grey)
        if status_color and not row.hidden:
            item.setForeground(STATUS, QBrush(QColor(status_color)))

    def _settings_line(self, item: QTreeWidgetItem, text: str, tip: str) -> None:
        """The run's settings in a line of their own under it, across the columns (none: no line)."""
        child = item.child(0)
        if not text:
            if child is not None:
                item.removeChild(child)
            return
        if child is None:
            child = QTreeWidgetItem(item)
            child.setFlags(Qt.ItemIsEnabled)
            child.setFirstColumnSpanned(True)
            child.setForeground(0, QBrush(QColor("#666666")))
            font = QFont(child.font(0))
            font.setPointSizeF(max(font.pointSizeF() * 0.85, 6.0))
            child.setFont(0, font)
            item.setExpanded(True)
        child.setText(0, "      " + text)
        child.setToolTip(0, tip)

    def path_of(self, item: QTreeWidgetItem) -> Path:
        return Path(item.data(0, PATH_ROLE))

    # -- what the user does ----------------------------------------------------------------------
    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0 or item.parent() is not None:
            return
        path = self.path_of(item)
        row = self.rows.get(path)
        if row is None:
            return
        self.rows.pop(path)  # the next show_runs fills it as the caller decided, whatever the user did
        on = item.checkState(0) == Qt.Checked
        if not row.kept and on != (row.checked and not row.live):
            self.checked.emit(path, on)
        name = item.text(0).strip()
        if name != row.name:
            self.renamed.emit(path, "" if name == row.run.stem else name)

    def _double_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        self.tree.editItem(item.parent() or item, 0)

    def _menu(self, pos: QPoint) -> None:  # pragma: no cover - needs a person at a screen
        item = self.tree.itemAt(pos)
        if item is None:
            return
        item = item.parent() or item
        path = self.path_of(item)
        row = self.rows.get(path)
        if row is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.tree.editItem(item, 0))
        if row.hidden:
            menu.addAction("Show in the list again", lambda: self.hidden.emit(path, False))
        else:
            menu.addAction("Hide from the list (the file stays)", lambda: self.hidden.emit(path, True))
        if not (row.live or row.kept):
            menu.addAction("Remove the overlay" if row.checked else "Overlay on the axes",
                           lambda: self.checked.emit(path, not row.checked))
        menu.exec_(self.tree.viewport().mapToGlobal(pos))
