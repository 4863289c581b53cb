"""kerasqt: watch Keras training live in a desktop Qt window.

Data flows one way: a producer (the :class:`QtMonitor` Keras callback, or the
sine demo's worker thread) puts immutable events into a queue; a receiver
``QThread`` drains and refines them; the :class:`MonitorWindow` (main thread)
draws them.

Importing :mod:`kerasqt` is light: Keras is imported only when
:class:`QtMonitor` or :func:`fit_in_background` is first used.
"""

from __future__ import annotations

from .app import show_demo

__all__ = ["FitJob", "MonitorWindow", "QtMonitor", "fit_in_background", "read_run", "replay", "show_demo",
           "__version__"]
__version__ = "0.1.0"

_LAZY = {
    "QtMonitor": ("callback", "QtMonitor"),
    "fit_in_background": ("background", "fit_in_background"),
    "FitJob": ("background", "FitJob"),
    "MonitorWindow": ("window", "MonitorWindow"),
    "replay": ("replay", "replay"),
    "read_run": ("runlog", "read_run"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kerasqt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
