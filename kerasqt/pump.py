"""A fit that holds the main thread: turning the Qt event loop from its hooks, and seeing it leave.

While ``fit`` runs in the main thread (a script, a notebook cell), nothing else can turn the
Qt event loop: the monitor's batch hooks do, at most every ``interval`` seconds
(:meth:`MainThreadFit.pump`). Keras tells callbacks nothing of a fit that raised; while it
runs, only its hooks turn the loop, so a timer that fires outside them means the main thread
is free: the fit has left (``on_left``), unless a hook of the fit, or one of kerasqt's turns,
ran in the last second (another callback may turn the loop briefly inside ``fit``: ``plt.pause``,
a second monitor). A script that dies in ``fit`` tells ``sys.excepthook`` first, which calls
``on_left`` too, so that the traceback reaches the terminal, not the window's output pane.

A Ctrl-C lands wherever Python runs, often in a window slot during one of kerasqt's own turns of
the loop. PyQt hands an exception that leaves a slot to ``sys.excepthook`` and goes on, which
would swallow it; the hook keeps it instead, and the turn raises it (:func:`turn`), so that it
is ``fit``'s like anywhere else, whatever slot it landed in.

Everything here runs in the main thread (the excepthook too), except :meth:`MainThreadFit.end`,
which a fit in another thread may call.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref

__all__ = ["MainThreadFit"]

_watching: weakref.WeakSet = weakref.WeakSet()  # MainThreadFits of fits running now
_pumping = 0  # kerasqt's own turns of the event loop in progress (any monitor's)
_interrupt = False  # a Ctrl-C left a slot during one of those turns: the turn raises it
_turned = 0.0  # when the last of those turns ended: a turn runs inside a hook of a fit, however long


def _hook_in_front() -> None:
    """Put kerasqt's hook in front of ``sys.excepthook``, unless it is there already (something
    may have replaced it since: a test runner, another library)."""
    if getattr(sys.excepthook, "_kerasqt", False):
        return
    previous = sys.excepthook

    def hook(*args):
        global _interrupt
        why = "interrupted" if isinstance(args[0], type) and issubclass(args[0], KeyboardInterrupt) else None
        tb = args[2] if len(args) > 2 else None
        if tb is not None and tb.tb_frame.f_back is not None:
            # Raised in a slot that Qt called inside running code: the program goes on (a script
            # that dies has only its own frames left in the traceback).
            if why and _pumping:
                _interrupt = True  # inside turn(): turn() raises it, for fit
                return
            previous(*args)
            return
        for fit in list(_watching):
            fit.left(why)
        previous(*args)

    hook._kerasqt = True
    sys.excepthook = hook


def turn(app) -> None:
    """Turn the Qt event loop once as kerasqt's own turn (main thread). A Ctrl-C that landed in a
    slot meanwhile is raised here, whichever slot it was; any other exception a slot let out was
    Qt's to report, and training goes on."""
    global _pumping, _interrupt, _turned
    _hook_in_front()
    _pumping += 1
    try:
        app.processEvents()
    except Exception:  # a bug in a slot must not end training
        pass
    finally:
        _pumping -= 1
        _turned = time.perf_counter()
    if _interrupt and not _pumping:
        _interrupt = False
        raise KeyboardInterrupt


class MainThreadFit:
    """The event-loop side of one monitor's fits in the main thread (one at a time)."""

    FREE_CHECK_MS = 200
    LEFT_AFTER = 1.0  # seconds without a hook of the fit before a turn of the loop outside it means it left

    def __init__(self) -> None:
        self.app = None  # the QApplication while a main-thread fit turns its loop
        self.on_left = None  # called once when the fit is seen gone
        self.last_beat = 0.0  # when a hook of the fit last ran (beat(), due()): a fit keeps them coming
        self._next = 0.0
        self._timer = None

    def begin(self, app, on_left) -> None:
        """A fit in the main thread begins, with the window shown by ``app``."""
        from qtpy.QtCore import QTimer

        self.app, self.on_left, self._next = app, on_left, 0.0
        self.last_beat = time.perf_counter()
        if self._timer is None:
            self._timer = QTimer()
            self._timer.setInterval(self.FREE_CHECK_MS)
            self._timer.timeout.connect(self._tick)
        self._timer.start()
        _watching.add(self)
        _hook_in_front()

    def beat(self) -> None:
        """A hook of the fit ran: it is still inside ``fit``."""
        self.last_beat = time.perf_counter()

    def due(self) -> bool:
        """Whether a turn of the event loop is due (cheap: called at every batch; in a main-thread
        fit a beat too). Outside one (no ``app``) it reads no clock."""
        if self.app is None:
            return False
        now = self.last_beat = time.perf_counter()
        return now >= self._next

    def pump(self, interval: float, window) -> None:
        """Turn the event loop once; the next turn is due in ``interval`` s. A Ctrl-C that landed in
        a window slot meanwhile is raised here: it is fit's, like anywhere else."""
        app = self.app
        if app is None:
            return
        self._next = time.perf_counter() + interval
        turn(app)
        if window is not None and window.take_interrupt():
            raise KeyboardInterrupt

    def end(self) -> None:
        """The fit ended (or is known to have left): no more turns, no more watching. Any thread:
        a fit in another thread (the next fit of the same monitor) may end the watch of one that
        left the main thread; the main thread's next tick then stops the timer, which only the
        thread that owns it may."""
        self.app = None
        self.on_left = None
        if threading.current_thread() is threading.main_thread():
            self.unwatch()

    def unwatch(self) -> None:
        """Stop watching (main thread)."""
        if self._timer is not None:
            self._timer.stop()
        _watching.discard(self)

    def left(self, why: str | None = None) -> None:
        """The fit is seen gone; ``why``: "interrupted" for a Ctrl-C, else None (it raised)."""
        self.unwatch()
        on_left, self.on_left = self.on_left, None
        if on_left is not None:
            on_left(why)

    def _tick(self) -> None:
        # The event loop turned outside kerasqt's own turns, and neither a hook of the fit nor one
        # of those turns ran for a while (something else, plt.pause in a callback say, may turn
        # the loop briefly inside fit, after another monitor's long turn).
        if self.on_left is None:  # ended from another thread
            self.unwatch()
        elif not _pumping and time.perf_counter() - max(self.last_beat, _turned) > self.LEFT_AFTER:
            self.left()
