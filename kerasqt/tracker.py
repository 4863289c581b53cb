"""Which Keras call a monitor's hooks belong to, told by Keras' public hooks alone (no Qt, no Keras).

Keras makes a ``CallbackList`` for every ``fit``, ``evaluate`` and ``predict`` call and hands
each callback the model and the params (``set_model``, then ``set_params``); the validation
inside ``fit`` reuses fit's list and gets neither. Then ``on_train_begin`` starts a fit,
``on_test_begin`` an evaluation (a call of its own, or fit's validation) and
``on_predict_begin`` a prediction. So, per thread:

* ``set_model`` marks a new call being set up (``pending``); twice before ``set_params`` means
  the callback is in the list twice;
* a test pass that was set up as a call of its own is an ``evaluate()`` (kind ``test``), one
  that was not is fit's validation (kind ``val``).

One call at a time holds the monitor, from its ``set_model`` on (a fit then holds it to its
end; an evaluate or predict lets go at its end), so that a second fit set up meanwhile in
another thread neither takes the first one's model and params nor starts. A fit that raised
gets no ``on_train_end``: it is over when its thread ends, when the next fit of the same thread
begins, or when someone who knows says so (:meth:`FitTracker.left`: the caller's ``watching()``
block, a background job, the window seeing the main thread free, the interpreter's exception hook).

Thread ownership: any thread calls in; a lock guards the state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["Busy", "FitTracker", "Twice"]


class Busy(RuntimeError):
    """Another fit, still running in another thread, holds the monitor."""


class Twice(ValueError):
    """The same callback is in one call's callbacks twice."""


PENDING_TTL = 30.0  # seconds a call set up but never begun (it raised before) holds the monitor


@dataclass(frozen=True)
class Holder:
    """The call that holds the monitor: its thread, whether that is the main thread, and whether
    it is a fit that began (else a call being set up, whose kind is not known yet, since when)."""

    thread: int
    main: bool
    fit: bool
    since: float = field(default_factory=time.monotonic)


class FitTracker:
    """The state of the calls a monitor's hooks come from: which fit holds it, and of what kind
    each test pass is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.holder: Holder | None = None  # the call holding the monitor; None once it ended
        self._left = False  # the fit left without on_train_end (it raised)
        self._handed: set[int] = set()  # threads that handed the model and not yet the params
        self._pending: set[int] = set()  # threads setting up a call of their own (evaluate, predict, fit)
        self._evaluating: set[int] = set()  # threads inside an evaluate() of their own

    # -- Keras' hooks, in the thread that calls them ----------------------------------------------
    def handed_model(self) -> str:
        """``set_model``: a new call of this thread's is set up. Says what to do with the model:
        ``"take"`` (no running fit holds the monitor), ``"defer"`` (a running fit of this thread
        holds it: take it only if this call turns out to be a fit, which then replaces that one),
        ``"busy"`` (another thread's running fit holds it: leave it). Raises :class:`Twice` when
        the callback was handed the model already in this call."""
        t = threading.get_ident()
        with self._lock:
            if t in self._handed:
                self._handed.discard(t)  # (refused: the next call starts afresh)
                raise Twice
            self._handed.add(t)
            self._pending.add(t)
            return self._claim(t)

    def handed_params(self) -> str:
        """``set_params``: what to do with the params, as :meth:`handed_model` says."""
        t = threading.get_ident()
        with self._lock:
            self._handed.discard(t)
            return self._claim(t)

    def _claim(self, t: int) -> str:
        h = self.holder
        if h is None or not self._alive(h) or (h.thread == t and not h.fit):
            self.holder = Holder(t, _is_main(), fit=False)
            return "take"
        return "defer" if h.thread == t else "busy"

    def train_begin(self) -> None:
        """``on_train_begin``: this thread's fit holds the monitor from now on; raises :class:`Busy`
        when another thread's fit still runs. A fit of this same thread that still held it has
        ended (it raised, or this fit runs inside it: one monitor watches one fit)."""
        t = threading.get_ident()
        with self._lock:
            self._handed.discard(t)
            if self._held_by_other(t):
                raise Busy
            self._pending.discard(t)
            self._evaluating.discard(t)
            self.holder = Holder(t, _is_main(), fit=True)
            self._left = False

    def test_begin(self) -> None:
        """``on_test_begin``: an evaluate() of its own when this thread set one up."""
        t = threading.get_ident()
        with self._lock:
            self._handed.discard(t)
            if t in self._pending:
                self._pending.discard(t)
                self._evaluating.add(t)

    def test_end(self) -> str:
        """``on_test_end``: ``"val"`` for the validation of the fit that holds the monitor, else
        ``"test"`` (an evaluate() of its own, after a fit or during one, from any thread)."""
        t = threading.get_ident()
        with self._lock:
            own = t in self._evaluating or t in self._pending
            self._evaluating.discard(t)
            self._pending.discard(t)
            h = self.holder
            if own:
                self._release(t)
                return "test"
            return "val" if h is not None and h.fit and h.thread == t and self._alive(h) else "test"

    def predict_end(self) -> None:
        t = threading.get_ident()
        with self._lock:
            self._handed.discard(t)
            self._pending.discard(t)
            self._release(t)

    def train_end(self) -> None:
        """``on_train_end``: the fit ended by itself."""
        with self._lock:
            if self.holder is not None and self.holder.thread == threading.get_ident():
                self.holder = None

    def _release(self, t: int) -> None:
        """A call of ``t``'s that is not a fit ended: it lets go of the monitor."""
        if self.holder is not None and self.holder.thread == t and not self.holder.fit:
            self.holder = None

    # -- what others know ---------------------------------------------------------------------------
    def left(self, thread: int | None = None) -> bool:
        """The fit left without ``on_train_end`` (it raised); only if it is ``thread``'s (default:
        any). True when a running fit was marked."""
        with self._lock:
            h = self.holder
            if h is None or (thread is not None and h.thread != thread) or self._left:
                return False
            if not h.fit:  # a call set up that never began (or raised before): it lets go
                self.holder = None
                return False
            self._left = True
            return True

    def running(self) -> bool:
        """Whether the fit holding the monitor still runs, as far as anyone can tell."""
        with self._lock:
            h = self.holder
            return h is not None and h.fit and self._alive(h)

    def gone(self) -> bool:
        """Whether the fit holding the monitor is known to have left without its end (it raised).
        Without one (events fed by other code, or the fit ended normally) the end event tells."""
        with self._lock:
            h = self.holder
            return h is not None and h.fit and not self._alive(h)

    @property
    def fit_thread(self) -> int | None:
        """The thread of the fit that holds the monitor (running or not), or None."""
        h = self.holder
        return h.thread if h is not None and h.fit else None

    def running_main(self) -> bool:
        """Whether a fit in the main thread holds the monitor and still runs."""
        with self._lock:
            h = self.holder
            return h is not None and h.fit and h.main and self._alive(h)

    def held_by_other(self) -> bool:
        """Whether a running fit of another thread than the caller's holds the monitor."""
        with self._lock:
            return self._held_by_other(threading.get_ident())

    def _held_by_other(self, t: int) -> bool:
        h = self.holder
        return h is not None and h.thread != t and self._alive(h)

    def _alive(self, h: Holder) -> bool:
        if self._left and h.fit:
            return False
        if not h.fit and time.monotonic() - h.since > PENDING_TTL:
            return False  # set up long ago and never begun: that call raised before its begin hook
        if h.main:
            return True  # (the main thread lives on: only left() tells)
        return any(th.ident == h.thread for th in threading.enumerate())


def _is_main() -> bool:
    return threading.current_thread() is threading.main_thread()
