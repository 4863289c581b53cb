"""What kerasqt does when the interpreter exits, in one registry with a fixed order (no Qt).

A script that ends, or calls ``sys.exit``, while kerasqt's threads run must end them
before Python's teardown (destroying a running QThread aborts the process), and
each run log still open should get its tail. Handlers register for a *stage*; the
stages run in this order, each stage's handlers in the order they registered:

1. :data:`JOBS`: stop producers that kerasqt started itself (``fit_in_background``'s
   fits), and wait briefly for them. Runs as soon as the interpreter begins to shut
   down (``threading``'s exit hook): before Python waits for non-daemon threads,
   before thread pools (``concurrent.futures``) shut down and before any ``atexit``
   function, so that no fit dies mid-step in a torn-down interpreter.
2. :data:`THREADS`: end kerasqt's threads (receivers, the demo's worker): their
   loops take what is queued (and write it to the run logs they tap).
3. :data:`LOGS`: write the tails of the run logs still open and close them.

Stages 2 and 3 run from one ``atexit`` function. It is (re)registered whenever a
handler is added, so that it runs before the ``atexit`` functions registered
before that, among them those of the Qt binding, imported earlier. Every handler
runs in the main thread; one that raises is logged and the others still run.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

__all__ = ["JOBS", "LOGS", "STAGES", "THREADS", "register", "run", "unregister"]

JOBS = "jobs"
THREADS = "threads"
LOGS = "logs"
STAGES = (JOBS, THREADS, LOGS)  # the order they run in

log = logging.getLogger("kerasqt")

_handlers: dict[str, list[Callable[[], object]]] = {stage: [] for stage in STAGES}
_jobs_hooked = False


def register(fn: Callable[[], object], stage: str) -> Callable[[], object]:
    """Call ``fn()`` at interpreter exit, in ``stage`` (:data:`JOBS`, :data:`THREADS` or :data:`LOGS`).

    Registering the same function for the same stage again does nothing. Returns ``fn``.
    """
    if stage not in _handlers:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    if fn in _handlers[stage]:
        return fn
    if stage == JOBS:
        global _jobs_hooked
        if not _jobs_hooked:
            threading._register_atexit(_run_jobs)  # (raises once the interpreter shuts down)
            _jobs_hooked = True
    else:
        atexit.unregister(_run_at_exit)  # to the end of the atexit list: it runs before what came earlier
        atexit.register(_run_at_exit)
    _handlers[stage].append(fn)
    return fn


def unregister(fn: Callable[[], object]) -> None:
    """Forget ``fn`` in every stage."""
    for handlers in _handlers.values():
        while fn in handlers:
            handlers.remove(fn)


def run(*stages: str) -> None:
    """Run the handlers of ``stages`` (default: all, in order), each once: they are forgotten."""
    for stage in stages or STAGES:
        handlers = _handlers[stage]
        while handlers:
            fn = handlers.pop(0)
            try:
                fn()
            except Exception:  # the process is ending: the other handlers still run
                log.exception("kerasqt: %s at exit failed", getattr(fn, "__qualname__", fn))


def _run_jobs() -> None:
    run(JOBS)


def _run_at_exit() -> None:
    run(JOBS, THREADS, LOGS)  # (jobs registered after threading's exit hook ran, if any)
