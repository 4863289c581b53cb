"""Saving what the monitor window shows (main thread only): screenshots, the figure, metrics.

:class:`WindowSaving` is a part of :class:`~kerasqt.window.MonitorWindow`. A main-thread ``fit``
returns without waiting for the window, so each of these first lets the window take what a run
that has ended still has in flight (:meth:`WindowSaving.catch_up`), then draws it.
"""

from __future__ import annotations

import contextlib
import os
import time

from qtpy.QtWidgets import QApplication, QFileDialog

from .plotting import MetricsPlot

__all__ = ["WindowSaving"]


class WindowSaving:
    """Catch up, draw and save; uses the window's ``training``, ``monitor``, ``plot``, ``figure``
    and ``canvas``."""

    def catch_up(self, timeout: float = 2.0) -> bool:
        """Turn the event loop until the receiver has delivered a run that has ended (a main-thread
        ``fit`` returns without waiting for that); True when nothing is left to deliver."""
        from .qtapp import in_main_thread

        monitor = self.monitor
        if not (in_main_thread() and self.training.running and monitor is not None and monitor.run_over()):
            return not self.training.running
        from .pump import turn

        app = QApplication.instance()
        deadline = time.monotonic() + timeout
        while self.training.running and time.monotonic() < deadline:
            self.training.wake()
            turn(app)
            time.sleep(0.001)
        turn(app)
        if self.take_interrupt():
            raise KeyboardInterrupt  # Ctrl-C landed in a window slot meanwhile: it is the caller's
        return not self.training.running

    def draw_now(self) -> None:
        """Draw everything pending at once (tests, screenshots): a run that ended is delivered first."""
        self.catch_up()
        self.plot.draw_frame(force_full=True)
        self.canvas.draw()

    def save_screenshot(self, path: str) -> str:
        self.draw_now()
        if not self.grab().save(str(path)):
            raise OSError(f"could not write the screenshot {path}")
        return str(path)

    def save_figure(self, path: str) -> str:
        """The figure as PNG, SVG or PDF (by extension)."""
        self.draw_now()
        with self.plot.exporting() if isinstance(self.plot, MetricsPlot) else contextlib.nullcontext():
            self.figure.savefig(str(path))
        self.canvas.draw()  # the screen's renderer and backgrounds again
        return str(path)

    def export(self, path) -> str:
        """Save by the extension of ``path``: the figure (``.png``, ``.svg``, ``.pdf``) or the metrics
        of the run shown (``.csv``, see :func:`kerasqt.export.write_csv`)."""
        ext = os.path.splitext(str(path))[1].lower()
        if ext == ".csv":
            if not isinstance(self.plot, MetricsPlot):
                raise ValueError("the window shows no training metrics to write as CSV")
            from .export import write_csv

            self.catch_up()
            return write_csv(self.plot, path)
        if ext in (".png", ".svg", ".pdf"):
            return self.save_figure(path)
        raise ValueError(f"cannot export to {str(path)!r}: use .png, .svg, .pdf or .csv")

    def _export_dialog(self) -> None:  # pragma: no cover - needs a person at a screen
        path, _ = QFileDialog.getSaveFileName(self, "Export figure", "kerasqt.png",
                                              "PNG (*.png);;SVG (*.svg);;PDF (*.pdf);;Metrics CSV (*.csv)")
        if not path:
            return
        try:
            self.export(path)
        except (OSError, ValueError) as exc:
            self.append_message("control", f"export failed: {exc}")
            return
        self.append_message("control", f"exported {path}")
