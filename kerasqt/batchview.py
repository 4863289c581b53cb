"""The window's switch between each batch's own values and Keras' running means (main thread).

A part of :class:`~kerasqt.window.MonitorWindow` kept apart: a check box in its control row,
shown in training mode. Unchecked (the default), the faint batch lines and their moving
averages show each batch's own value where the run gave what that takes; checked, the running
means Keras logs. The plot keeps both (:mod:`kerasqt.perbatch`), so a switch redraws without loss.
"""

from __future__ import annotations

import weakref

from qtpy.QtWidgets import QCheckBox

from .perbatch import PER_BATCH, RUNNING

__all__ = ["RunningMeansBox"]


class RunningMeansBox(QCheckBox):
    """The check box: *running means*; it sets the view of the window's metrics plot."""

    def __init__(self, window) -> None:
        super().__init__("running means")
        self.setToolTip("Show the running means Keras logs (each metric's mean since the epoch began)\n"
                        "instead of each batch's own value")
        self._window = weakref.ref(window)  # (Qt keeps the box alive for the window: no cycle)
        self.toggled.connect(self._toggled)

    @classmethod
    def into(cls, row, window, after) -> RunningMeansBox:
        """A box for ``window``, put in the control ``row`` (a widget with a box layout) after ``after``."""
        box = cls(window)
        layout = row.layout()
        layout.insertWidget(layout.indexOf(after) + 1, box)
        return box

    @property
    def view(self) -> str:
        return RUNNING if self.isChecked() else PER_BATCH

    def follow(self, plot) -> None:
        """The window's plot is new (a mode began): shown for a metrics plot, which takes the view."""
        metrics = hasattr(plot, "set_batch_view")
        self.setVisible(metrics)
        if metrics:
            plot.set_batch_view(self.view)

    def _toggled(self, on: bool) -> None:
        window = self._window()
        if window is not None and hasattr(window.plot, "set_batch_view"):
            window.plot.set_batch_view(self.view)
            window.request_frame()
