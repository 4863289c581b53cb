"""The run log's threads: :class:`LogFollower` writes a run's log on after its window closed;
:class:`ReplayFeeder` feeds a log's events back (no Qt).

Both are :class:`~kerasqt.loops.Loop`\\ s: a LogFollower is its own ``kerasqt-runlog``
Python thread and owns its writer's writing until it ends; a ReplayFeeder runs in a
``kerasqt-replay`` thread when paced, else in the calling thread. ``stop()`` and
``wake()`` may be called from any other thread.
"""

from __future__ import annotations

import math
import queue
import threading
import time

from ..events import EndEvent, ErrorEvent, fit_gone
from ..loops import Liveness, Loop, LoopThread
from .common import RunLogError
from .reader import RunLog
from .writer import RunLogWriter

__all__ = ["LogFollower", "ReplayFeeder"]


class LogFollower(LoopThread):
    """Keeps writing a run's log after its window closed: drains the queue until the run ends.

    ``alive()`` (e.g. ``QtMonitor.fit_running``) is asked every ``alive_every`` s; when
    it says False twice in a row with nothing queued (the run's own end or error event may
    still be on its way the first time), ``fit`` raised: an error line ends the log.
    """

    def __init__(self, events: queue.SimpleQueue, writer: RunLogWriter, alive=None, *,
                 interval: float = 0.1, alive_every: float = 0.5) -> None:
        super().__init__("kerasqt-runlog")
        self.events = events
        self.writer = writer
        self.alive = alive
        self.interval = interval
        self.alive_every = alive_every
        self.liveness = Liveness(None if alive is None else self._alive, alive_every)
        self._run_over = False

    def work(self) -> None:
        self.liveness.start()
        if not self.writer.closed:
            super().work()
        rest = self.drain() if not self.writer.closed else []
        if rest:
            self.writer.write(rest)
        if self._run_over and not self.writer.closed:  # a next run began: this one will not end
            self.writer.write([fit_gone(time.time())])

    def step(self) -> bool:
        items = self.drain()  # all that came meanwhile (not a wake per event)
        self.writer.write(items)  # idle too (flushes); closes the file itself at an end or error event
        if items:
            self.liveness.heard()
        elif self.liveness.gone(time.monotonic()):
            self.writer.write([fit_gone(time.time())])
        return not self.writer.closed

    def _alive(self) -> bool:
        return self.alive() or not self.events.empty()

    def failed(self, exc: Exception) -> None:
        if not isinstance(exc, RunLogError):
            raise exc
        # else the writer closed itself and kept the reason in writer.error

    def finish(self) -> None:
        self.writer.close()

    def stop(self, timeout: float | None = 2.0, *, run_over: bool = False) -> None:
        """Write what is queued, close the log and end the thread (any other thread).

        ``run_over``: the run is over (the monitor began another) even if no end or error was
        queued: a log still open then ends with an error line, like after ``fit`` raised.
        """
        self._run_over = run_over
        super().stop(timeout)


class ReplayFeeder(Loop):
    """Puts a run log's events into ``put``: all at once, or at ``speed`` times their recorded pace.

    The log's own end closes the replay; a log without one (the run was killed, or
    is still going) gets an :class:`ErrorEvent` saying so (a sine log, an
    :class:`EndEvent`), so that the receiver ends its run. Pauses longer than
    ``max_pause`` s of replay time are shortened to it. Paced replays run in a
    ``kerasqt-replay`` thread; ``stop()`` ends it (any thread).
    """

    def __init__(self, run: RunLog, put, speed: float | None = None, max_pause: float = 5.0) -> None:
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a positive number or None, got {speed!r}")
        super().__init__()
        self.run = run
        self.put = put
        self.speed = speed
        self.max_pause = max_pause
        self.fed = 0
        self._thread: threading.Thread | None = None

    def start(self) -> ReplayFeeder:
        if self.speed is None:
            self.main()
        else:
            self._thread = threading.Thread(target=self.main, name="kerasqt-replay", daemon=True)
            self._thread.start()
        return self

    def work(self) -> None:
        last = None
        records = self.run.records
        ends = [i for i, (_, ev) in enumerate(records) if isinstance(ev, (EndEvent, ErrorEvent))]
        if ends and ends[-1] < len(records) - 1:
            # Lines after the end (an evaluate() after fit, appended later): they belong to the run,
            # whose receiver stops at its end, so they come just before it, without a pause.
            k = ends[-1]
            records = records[:k] + [(records[k][0], ev) for _, ev in records[k + 1:]] + [records[k]]
        for t, ev in records:
            if self.speed is not None and t is not None:
                if last is not None:
                    gap = (t - last) / self.speed
                    if gap > 0:
                        self.nap(min(gap, self.max_pause))
                        if self.stopping:
                            return
                last = t
            elif self.stopping:
                return
            self.put(ev)
            self.fed += 1
        if not self.run.ended:
            when = last if last is not None else time.time()
            if self.run.kind == "sine":
                self.put(EndEvent(0, when))
            else:
                self.put(ErrorEvent(when, "the run log ends here, without the end of the run "
                                          "(the process was killed, or the run is still going)", "cut short"))

    @property
    def done(self) -> bool:
        return self._thread is None or not self._thread.is_alive()

    def stop(self, timeout: float | None = 2.0) -> None:
        self.quit()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
