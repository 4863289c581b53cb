"""The monitor window's parts besides the plot (main thread only): message panes, progress row.

* :class:`MessagePanes`: three read-only panes side by side (control messages, the training's or
  demo worker's printed output, the receiver's notes), titled per mode; each line is shown as a
  terminal would leave it (no escape codes, a ``\\r`` line replaces what it redraws).
* :class:`ControlRow`: the buttons (demo: start and stop its threads; training: stop, log
  scale; both: export) and the status text;
* :class:`ProgressRow`: a progress bar and the progress line of a training run.
"""

from __future__ import annotations

from qtpy.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .events import ErrorEvent, counted, terminal_text

__all__ = ["PANES", "ControlRow", "MessagePanes", "ProgressRow", "end_words"]

PANES = ("control", "worker", "receiver")
PANE_TITLES = {
    "demo": ("control messages", "worker messages", "receiver messages"),
    "training": ("control messages", "training output (print, logging)", "receiver messages"),
}


class MessagePanes(QWidget):
    """Three message panes; ``panes[name]`` is each one's ``QPlainTextEdit``."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.panes: dict[str, QPlainTextEdit] = {}
        self._boxes: dict[str, QGroupBox] = {}
        for name in PANES:
            box = QGroupBox(name)
            inner = QVBoxLayout(box)
            pane = QPlainTextEdit()
            pane.setReadOnly(True)
            pane.setMaximumBlockCount(5000)
            pane.setMinimumHeight(110)
            inner.addWidget(pane)
            row.addWidget(box)
            self.panes[name] = pane
            self._boxes[name] = box

    def set_mode(self, mode: str) -> None:
        for name, title in zip(PANES, PANE_TITLES[mode], strict=True):
            self._boxes[name].setTitle(title)

    def append(self, source: str, text: str) -> None:
        """Add ``text`` (one or more lines) to pane ``source`` (unknown names: the control pane)."""
        pane = self.panes.get(source, self.panes["control"])
        if "\x1b" in text or "\r" in text or "\b" in text:  # (a recorded log's lines, say)
            text = "\n".join(terminal_text(line) for line in text.split("\n"))
        pane.appendPlainText(text)

    def text(self, source: str) -> str:
        return self.panes[source].toPlainText()


class ProgressRow(QWidget):
    """A training run's progress: the bar (busy while the totals are unknown) and its line."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumWidth(260)
        self.label = QLabel("")
        self.label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # its text never resizes the plot
        row.addWidget(self.bar)
        row.addWidget(self.label, 1)

    def clear(self) -> None:
        self.bar.setValue(0)
        self.label.setText("")

    def show_progress(self, p) -> None:
        """Show a :class:`~kerasqt.refine.Progress` (None: nothing new)."""
        if p is None:
            return
        frac = p.fraction
        if frac is not None:
            self.bar.setValue(int(frac * 1000))
        else:
            self.bar.setRange(0, 0)  # busy indicator when the totals are unknown
        self.label.setText(p.describe())

    def ended(self, p, complete: bool) -> None:
        """The run ended; ``complete``: by itself (not stopped): every planned step done, or, with
        unknown totals, every epoch: the bar fills."""
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1000)
        if complete and p is not None and (p.fraction is None or p.fraction >= 0.999):
            self.bar.setValue(1000)


class ControlRow(QWidget):
    """The window's buttons and its status text, in a row."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.start_button = QPushButton("start threads")
        self.stop_button = QPushButton("stop threads")
        self.stop_training_button = QPushButton("Stop training")
        self.stop_training_button.setToolTip("Ask fit to stop after the current batch")
        self.log_checkbox = QCheckBox("log scale")
        self.export_button = QPushButton("Export…")
        self.status = QLabel("")
        for w in (self.start_button, self.stop_button, self.stop_training_button, self.log_checkbox,
                  self.export_button):
            row.addWidget(w)
        row.addWidget(self.status, 1)


def end_words(end, counts) -> tuple[str, str, str]:
    """How the window tells a run's end: its status text, the status' style sheet, the control
    pane's line."""
    if isinstance(end, ErrorEvent):
        style = "color: #b00020; font-weight: bold" if end.how == "failed" else "color: #9a6700; font-weight: bold"
        return f"training {end.how}", style, f"training {end.how}: {end.message}"
    word = "stopped early" if end.stopped else "finished"
    done = (f"{counted(counts.get('batches', 0), 'batch', 'batches')}, "
            f"{counted(counts.get('epochs', 0), 'epoch')}")
    return f"training {word}", "", f"training {word} at step {end.step} ({done})"
