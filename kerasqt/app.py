"""Opening the window from Python: :func:`show_demo` (no Keras needed)."""

from __future__ import annotations

__all__ = ["show_demo", "run_until_closed"]


def show_demo(*, block: bool = False, start: bool = False, title: str = "kerasqt sine demo", **settings):
    """Show the monitor window in sine-demo mode and return it.

    ``settings`` are :class:`~kerasqt.demo.DemoSettings` fields (``worker_iterations``,
    ``worker_interval``, ``receiver_iterations``, ``receiver_interval``, ``batch_size``,
    ``seed``). ``start=True`` presses *start threads*. With ``block=True`` the Qt event
    loop runs until the window is closed; otherwise it returns at once (in a notebook
    the window stays live between cells).
    """
    from .demo import DemoSettings
    from .qtapp import ensure_app, start_kernel_pump
    from .window import MonitorWindow

    demo = DemoSettings(**settings)
    ensure_app()
    window = MonitorWindow(title=title, demo=demo)
    window.show()
    start_kernel_pump()
    if start:
        window.start_threads()
    if block:
        run_until_closed(window)
    return window


def run_until_closed(window, timeout: float | None = None) -> bool:
    """Run the Qt event loop until ``window`` closes (or ``timeout`` s pass); True if closed."""
    from qtpy.QtCore import QEventLoop, QTimer

    if window.is_closed:
        return True
    loop = QEventLoop()
    window.closed.connect(loop.quit)
    if timeout is not None:
        QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec()
    return window.is_closed
