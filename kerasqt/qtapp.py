"""The one ``QApplication`` of the process, and keeping its event loop turning.

* :func:`ensure_app` reuses the running application (the user's, Matplotlib's,
  a notebook's) or creates one, after checking that Qt can open windows here.
* :func:`in_main_thread` tells whether the caller is Qt's GUI thread.
* :func:`start_kernel_pump` keeps Qt responsive between notebook cells, without
  ``%gui qt``: an asyncio task in the kernel's own loop processes Qt events
  every 20 ms. While ``%gui qt`` is on it leaves the Qt loop to it.

All functions here are for the main thread.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

__all__ = ["NoDisplayError", "QtMissingError", "ensure_app", "in_main_thread", "is_offscreen", "start_kernel_pump"]


class NoDisplayError(RuntimeError):
    """Qt cannot open a window: no screen and no offscreen platform."""


class QtMissingError(ImportError):
    """The Qt binding is not installed."""


NO_DISPLAY_MESSAGE = (
    "no screen found (neither DISPLAY nor WAYLAND_DISPLAY is set): run with a screen, "
    "under a virtual one (xvfb-run), or headless with QT_QPA_PLATFORM=offscreen"
)


def import_qt():
    """Import the Qt binding through qtpy (``QT_API`` chooses: ``pyqt5``, the default, ``pyqt6``,
    ``pyside6``...), or raise :class:`QtMissingError` naming the package to install."""
    try:
        from qtpy import QtCore, QtGui, QtWidgets
    except Exception as exc:  # qtpy raises its own error when no binding imports
        chosen = os.environ.get("QT_API", "").strip().lower()
        package = {"pyqt6": "PyQt6", "pyside6": "PySide6", "pyside2": "PySide2"}.get(chosen, "PyQt5")
        raise QtMissingError(
            f"kerasqt needs a Qt binding ({package}), which could not be imported ({exc}); "
            f"install it with: pip install {package}"
        ) from exc
    return QtCore, QtGui, QtWidgets


def binding() -> str:
    """The Qt binding in use, as ``QT_API`` names it (``pyqt5``, ``pyqt6``, ``pyside6``...)."""
    import qtpy

    return qtpy.API_NAME.lower()


def is_offscreen() -> bool:
    return os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal"))


def check_display() -> None:
    """Raise :class:`NoDisplayError` when Qt would fail to open its platform on Linux.

    Qt does not raise then: it aborts the whole process (a ``DISPLAY`` whose X server is gone,
    an ``ssh -X`` that ended, the xcb plugin's libraries missing). So, unless the platform is
    offscreen, a child process starts Qt first, once per screen setting (0.1 - 0.5 s).
    """
    if not sys.platform.startswith("linux") or is_offscreen():
        return
    env = tuple(os.environ.get(name, "") for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"))
    if not any(env):
        raise NoDisplayError(NO_DISPLAY_MESSAGE)
    if env not in _probed:
        _probed[env] = _platform_problem()
    if _probed[env] is not None:
        raise NoDisplayError(f"Qt cannot open a window here ({_probed[env]}): run with a working screen, "
                             "under a virtual one (xvfb-run), or headless with QT_QPA_PLATFORM=offscreen")


_probed: dict[tuple[str, str, str], str | None] = {}  # screen settings -> what stops Qt there (None: nothing)
_PROBE = "import sys\nfrom qtpy.QtWidgets import QApplication\napp = QApplication(sys.argv[:1])\nprint('qt started')\n"


def _platform_problem() -> str | None:
    """Start a QApplication in a child process: Qt's reason when it cannot, else None (it can,
    or the child could not be run at all: then Qt here decides)."""
    if not sys.executable or getattr(sys, "frozen", False):  # no Python to start (a frozen app is itself)
        return None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)}
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    if r.returncode == 0 or "qt started" in r.stdout:  # (a crash at its exit is not the platform's)
        return None
    lines = [line.strip() for line in r.stderr.splitlines() if line.strip()]
    qt = [line for line in lines if line.startswith("qt.qpa") or "platform plugin" in line]
    if r.returncode > 0 and not qt:
        return None  # the child failed for reasons of its own, not Qt's platform
    reason = next((line for line in qt if "connect to display" in line), qt[0] if qt else None)
    if reason is None:
        return f"Qt aborted with exit code {r.returncode}"
    return (reason.split(": ", 1)[-1] if reason.startswith("qt.qpa") else reason).rstrip(".")


def ensure_app():
    """The running ``QApplication``, created when there is none."""
    _, _, QtWidgets = import_qt()
    app = QtWidgets.QApplication.instance()
    if app is not None:
        return app
    if not in_main_thread():
        raise RuntimeError(
            "kerasqt must create the QApplication in the main thread: create the monitor window "
            "there first (QtMonitor().show() or fit_in_background)"
        )
    check_display()
    _quiet_offscreen_warnings()
    global _app
    _app = QtWidgets.QApplication(sys.argv[:1] or ["kerasqt"])  # kept alive by this module
    _app.setQuitOnLastWindowClosed(False)  # our windows close; the process decides when to end
    return _app


def _quiet_offscreen_warnings() -> None:
    """Drop the offscreen plugin's harmless 'propagateSizeHints' notice; pass on all else."""
    from qtpy.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message):
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous = qInstallMessageHandler(handler)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _kernel():
    """The running IPython kernel, or None outside one."""
    ip = sys.modules.get("IPython")
    if ip is None:
        return None
    try:
        shell = ip.get_ipython()
    except Exception:
        return None
    return getattr(shell, "kernel", None)


_pump_task = None
_app = None


def kernel_gui_active() -> bool:
    """Whether ``%gui qt`` (ipykernel's own Qt event-loop integration) is on."""
    kernel = _kernel()
    eventloop = getattr(kernel, "eventloop", None)
    return eventloop is not None and "qt" in getattr(eventloop, "__name__", "")


def _kernel_loop(kernel):
    """The running asyncio loop the kernel executes its cells in, or None."""
    loop = getattr(getattr(kernel, "io_loop", None), "asyncio_loop", None)  # ipykernel 6 and 7
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
    return loop if loop.is_running() and not loop.is_closed() else None


def start_kernel_pump(interval: float = 0.02) -> bool:
    """Keep Qt's events flowing between notebook cells; True when a pump runs.

    The pump is a task in the kernel's asyncio loop that calls ``processEvents()``
    every ``interval`` seconds while the kernel is idle or awaiting. While ``%gui qt``
    is on, the pump leaves the Qt loop to it and takes over again when it is switched
    off. Outside a kernel (or outside its main thread) it does nothing and returns
    False. Safe to call repeatedly.
    """
    global _pump_task
    kernel = _kernel()
    if kernel is None or not in_main_thread():
        return False
    if _pump_task is not None and not _pump_task.done():
        return True
    loop = _kernel_loop(kernel)
    if loop is None:
        return False
    app = ensure_app()

    async def pump() -> None:
        while True:
            if not kernel_gui_active():  # else %gui qt runs the Qt loop
                try:
                    app.processEvents()
                except Exception:  # never kill the kernel's loop
                    pass
            await asyncio.sleep(interval)

    _pump_task = loop.create_task(pump(), name="kerasqt-qt-pump")
    return True


def stop_kernel_pump() -> None:
    global _pump_task
    if _pump_task is not None:
        _pump_task.cancel()
        _pump_task = None
