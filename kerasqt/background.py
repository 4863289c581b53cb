"""``fit_in_background``: run ``model.fit`` in a thread while the caller keeps the Qt event loop.

The caller (main thread) gets a :class:`FitJob` at once; the job's ``fit`` runs in a
daemon ``kerasqt-fit`` thread (the training thread, where the callback's hooks run).
In a notebook the kernel keeps running cells and an asyncio task turns the Qt event
loop between them (:func:`kerasqt.qtapp.start_kernel_pump`); in a script, ``job.wait()``
turns it while it waits. Jobs still running at interpreter exit are stopped in the
first stage of :mod:`kerasqt.exits` (:data:`~kerasqt.exits.JOBS`).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback

from . import exits
from .callback import BUSY, QtMonitor

__all__ = ["FitJob", "fit_in_background"]

_jobs: set[FitJob] = set()


class FitJob:
    """A ``fit`` running in a background thread.

    ``done()`` tells whether it ended; ``stop()`` asks it to stop after the current
    batch; ``wait()`` returns the Keras ``History`` (re-raising the exception if
    ``fit`` raised); ``history`` and ``exception`` hold the outcome once done.
    """

    def __init__(self, model, monitor: QtMonitor, args: tuple, kwargs: dict) -> None:
        self.model = model
        self.monitor = monitor
        self.history = None
        self.exception: BaseException | None = None
        self.started = time.time()
        self.ended: float | None = None
        self._thread = threading.Thread(target=self._run, args=(args, kwargs), name="kerasqt-fit", daemon=True)

    def _run(self, args: tuple, kwargs: dict) -> None:
        try:
            self.history = self.model.fit(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            self.exception = exc
            # The window learns it from this job only if it watched it (another job's run goes on).
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.monitor.fit_failed(threading.get_ident(), line)
        finally:
            self.ended = time.time()
            _jobs.discard(self)

    def done(self) -> bool:
        return not self._thread.is_alive() and self.ended is not None

    def stop(self) -> None:
        """Ask ``fit`` to stop after the current batch; returns at once."""
        self.model.stop_training = True

    def wait(self, timeout: float | None = None):
        """Wait for ``fit`` to end, keeping the window live; returns the ``History``.

        Raises ``TimeoutError`` when ``timeout`` passes first, and the exception of
        ``fit`` if it raised one.
        """
        from .qtapp import in_main_thread

        widgets = sys.modules.get("qtpy.QtWidgets")  # (no Qt here when a viewer process draws)
        app = widgets.QApplication.instance() if widgets is not None and in_main_thread() else None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread.is_alive():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"fit still running after {timeout} s")
            if app is not None:
                app.processEvents()
                self._thread.join(0.02 if left is None else min(0.02, left))
            else:
                self._thread.join(left)
        if app is not None:
            app.processEvents()
        if self.exception is not None:
            raise self.exception
        return self.history

    def __repr__(self) -> str:
        state = "running" if not self.done() else ("failed" if self.exception else "done")
        return f"<FitJob {state}>"


def fit_in_background(model, *args, callbacks=None, **kwargs) -> FitJob:
    """Start ``model.fit(*args, callbacks=callbacks, **kwargs)`` in a thread; returns a :class:`FitJob`.

    A :class:`QtMonitor` in ``callbacks`` is used (one is added when there is
    none) and its window is opened here, in the calling (main) thread.
    """
    from .qtapp import in_main_thread

    if not in_main_thread():
        raise RuntimeError("fit_in_background must be called from the main thread, which runs the window")
    callbacks = list(callbacks or [])
    monitors = [cb for cb in callbacks if isinstance(cb, QtMonitor)]
    if len(monitors) > 1:
        raise ValueError("pass at most one QtMonitor to fit_in_background")
    if monitors:
        monitor = monitors[0]
        job = monitor._job  # a job started but not yet inside its fit holds it too
        if monitor.busy_elsewhere() or (job is not None and not job.done()):
            raise RuntimeError(BUSY)
        # This (main) thread is here, so no call of its own still runs: one that raised (a caught
        # exception in fit, an evaluate that failed) lets go of the monitor for the job's fit.
        monitor.fit_left(threading.get_ident())
    else:
        monitor = QtMonitor()
        callbacks.append(monitor)
    if monitor.batch_size is None:
        bs = kwargs.get("batch_size", None if _is_dataset(args, kwargs) else 32)
        monitor.batch_size = bs if isinstance(bs, int) else None
    if monitor.draws_here:  # (a viewer process draws: this one opens no window)
        monitor.show().show_training()
    kwargs.setdefault("verbose", 0)
    job = monitor._job = FitJob(model, monitor, args, {**kwargs, "callbacks": callbacks})
    exits.register(_stop_jobs, exits.JOBS)
    _jobs.add(job)
    job._thread.start()
    return job


def _is_dataset(args: tuple, kwargs: dict) -> bool:
    """Whether the data given to fit is batched already (a dataset or generator), not arrays."""
    x = args[0] if args else kwargs.get("x")
    return x is not None and not hasattr(x, "shape") and not isinstance(x, (list, tuple, dict))


def _stop_jobs() -> None:
    """At interpreter exit, stop running jobs and wait briefly, so no thread dies mid-step."""
    for job in list(_jobs):
        job.stop()
    for job in list(_jobs):
        job._thread.join(10)
