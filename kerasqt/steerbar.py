"""The window's controls of a run (main thread only): *Stop now*, *Stop after epoch*, *Save
checkpoint* and the learning rate (:mod:`kerasqt.steer` applies them on the training thread).

:class:`SteerBar` is a part of the window's control row. Each control calls the run source's
``control(action, args)`` (:class:`~kerasqt.source.RunSource`) and says in the control pane what
it returned, or the one line of the :class:`~kerasqt.steer.ControlError` that refused it. The bar
is on only while a run that can be controlled (``can_stop()``) goes on; the learning rate is off,
its tooltip saying why, when the run's optimizer follows a schedule (``StartEvent.lr_fixed``).

What the run then does comes back as events (the same in a replay): :meth:`SteerBar.take` says
each :class:`~kerasqt.events.ControlEvent` (a checkpoint's path, a learning-rate change, a refused
control) and what ``EarlyStopping`` did (:class:`~kerasqt.events.PatienceEvent`: it stops the run,
it restored the weights of its best epoch) in the pane.
"""

from __future__ import annotations

import collections
import math

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QMenu, QPushButton, QToolButton, QWidget

from .events import ControlEvent, PatienceEvent
from .steer import ControlError

__all__ = ["SteerBar"]

LR_TIP = "Learning rate: type a new one and press Enter, or halve or double it; set at the next batch"


class SteerBar(QWidget):
    """The run's controls, in a row; ``message(pane, text)`` says what they did."""

    message = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.stop_now = QPushButton("Stop now")
        self.stop_now.setToolTip("Ask fit to stop after the current batch")
        self.stop_epoch = QPushButton("Stop after epoch")
        self.stop_epoch.setToolTip("Ask fit to stop at the end of this epoch (its validation and callbacks run)")
        self.save = QToolButton()
        self.save.setText("Checkpoint")
        self.save.setToolTip("Save the model's weights at the next batch, next to the run log; "
                             "the arrow: the whole model (.keras)")
        self.save.setPopupMode(QToolButton.MenuButtonPopup)
        menu = QMenu(self.save)
        self.save_whole = menu.addAction("Save the whole model (.keras)")
        self.save.setMenu(menu)
        self.lr_label = QLabel("lr")
        self.lr_field = QLineEdit()
        self.lr_field.setFixedWidth(self.lr_field.fontMetrics().horizontalAdvance("0.000125") + 16)
        self.lr_half = QToolButton()
        self.lr_half.setText("×½")
        self.lr_double = QToolButton()
        self.lr_double.setText("×2")
        self._lr = (self.lr_label, self.lr_field, self.lr_half, self.lr_double)
        for w in (self.stop_now, self.stop_epoch, self.save):
            row.addWidget(w)
        row.addSpacing(8)
        for w in self._lr:
            row.addWidget(w)
        self.stop_now.clicked.connect(lambda: self.ask("stop"))
        self.stop_epoch.clicked.connect(lambda: self.ask("stop_epoch"))
        self.save.clicked.connect(lambda: self.ask("save", {"whole": False}))
        self.save_whole.triggered.connect(lambda: self.ask("save", {"whole": True}))
        self.lr_field.returnPressed.connect(self._lr_typed)
        self.lr_half.clicked.connect(lambda: self.ask("lr", {"factor": 0.5}))
        self.lr_double.clicked.connect(lambda: self.ask("lr", {"factor": 2.0}))
        self.source = None  # the run source while a run it can control goes on
        self.lr_fixed = ""  # why the run's learning rate cannot be set ("": it can)
        self._echo: collections.Counter = collections.Counter()  # "asked" events of our own asking, to skip
        self._told_stop = False
        self.run_ended()

    # -- the run ----------------------------------------------------------------------------------
    def run_began(self, source) -> None:
        """A run of ``source`` begins: the controls are on when it can be controlled."""
        self.source = source if source.can_stop() else None
        self.lr_fixed = ""
        self._echo.clear()
        self._told_stop = False
        self.lr_field.clear()
        self.lr_field.setPlaceholderText("")
        self._enable()

    def run_ended(self) -> None:
        self.source = None
        self._enable()

    def _enable(self) -> None:
        on = self.source is not None
        for w in (self.stop_now, self.stop_epoch, self.save):
            w.setEnabled(on)
        for w in self._lr:
            w.setEnabled(on and not self.lr_fixed)
            w.setToolTip(f"The learning rate cannot be set: {self.lr_fixed}" if self.lr_fixed else LR_TIP)

    # -- asking -----------------------------------------------------------------------------------
    def ask(self, action: str, args: dict | None = None) -> bool:
        """Ask the run for a control; the pane says what will happen, or why it was refused."""
        source = self.source
        try:
            if source is None:
                raise ControlError(f"no run that can be controlled is going: {action} refused")
            text = source.control(action, args)
        except ControlError as exc:
            self.message.emit("control", str(exc))
            return False
        except Exception as exc:  # (a source's own failure, a lost connection: said, never raised into Qt)
            self.message.emit("control", f"{action} failed: {' '.join(str(exc).split()) or type(exc).__name__}")
            return False
        if action in ("stop", "stop_epoch"):
            self._echo[action] += 1  # its "asked" event says what this line says
        self.message.emit("control", f"stop requested: {text}" if action == "stop" else text)
        if action == "stop":
            self.stop_now.setEnabled(False)
        return True

    def _lr_typed(self) -> None:
        text = self.lr_field.text().strip()
        try:
            value = float(text)
        except ValueError:
            self.message.emit("control", f"the learning rate must be a positive finite number, got {text!r}")
            return
        if self.ask("lr", {"value": value}):
            self.lr_field.clear()

    # -- what the run did -------------------------------------------------------------------------
    def take(self, update) -> None:
        """A :class:`~kerasqt.refine.TrainingUpdate`: the run's optimizer, its learning rate, its
        controls and EarlyStopping's state."""
        if update.start is not None and update.start.lr_fixed != self.lr_fixed:
            self.lr_fixed = update.start.lr_fixed
            self._enable()
        p = update.progress
        if p is not None and p.lr is not None and math.isfinite(p.lr):
            shown = f"{p.lr:.3g}"
            if self.lr_field.placeholderText() != shown:
                self.lr_field.setPlaceholderText(shown)
        for ev in update.steering:
            for line in self._lines(ev):
                self.message.emit("control", line)

    def _lines(self, ev) -> list[str]:
        if isinstance(ev, ControlEvent):
            if ev.ok and self._echo[ev.action] and ev.action in ("stop", "stop_epoch"):
                self._echo[ev.action] -= 1
                return []
            return [ev.text]
        if not isinstance(ev, PatienceEvent):
            return []
        lines = []
        best = f"epoch {ev.best_epoch + 1}, {ev.monitor} {ev.best:.4g}" if ev.best_epoch is not None else ""
        if not self._told_stop and ev.epoch > 0 and ev.best_epoch != ev.epoch and ev.wait >= ev.patience:
            self._told_stop = True
            lines.append(f"EarlyStopping stops the run: {ev.monitor} did not improve for {ev.wait} epochs"
                         + (f" (best: {best})" if best else ""))
        if ev.restored is not None:
            lines.append(f"EarlyStopping restored the weights of epoch {ev.restored + 1}"
                         + (f" ({ev.monitor} {ev.best:.4g})" if ev.best is not None else ""))
        return lines
