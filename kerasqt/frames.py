"""When the monitor window draws: :class:`FramePacer` (main thread only).

Updates are stored as they arrive (cheap); a single-shot timer draws at most ``max_fps``
frames a second. While training runs, the pace also follows the measured cost of a frame, so
that drawing takes at most ``draw_budget`` of the main thread's time:

* a frame that took ``c`` seconds is followed by a pause of ``c / (draw_budget / 2)``
  (``c / BACKGROUND_DRAW_SHARE`` when training runs in another thread), at most ``MAX_FRAME_GAP``;
* full draws (new axis limits) get the other half of the budget, at most every
  ``FULL_DRAW_MIN_GAP`` seconds and at least every quarter of the run's age (up to
  ``FULL_DRAW_MAX_GAP``); they are staged, one axes per frame, their costs added up;
* while ``fit`` holds the main thread, a frame due before the fit's next turn of the event
  loop is drawn in the turn that brought the update, not in another one taken from training.
"""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer

__all__ = ["FramePacer"]


class FramePacer:
    """The frame timer and pacing of one window; ``draw`` is the window's (guarded) frame slot."""

    FULL_DRAW_MIN_GAP = 1.0  # seconds between full redraws (new axis limits) while training
    FULL_DRAW_MAX_GAP = 4.0  # ... and at most this long, so that the limits follow the data (full_draw_gap)
    MAX_FRAME_GAP = 0.4  # seconds: new points are drawn 2.5 times a second at least, whatever a frame costs
    # Share of the main thread that blits may take while training runs in another thread (the main
    # thread is idle otherwise); a fit in the main thread waits for every frame: there draw_budget holds.
    BACKGROUND_DRAW_SHARE = 0.2

    def __init__(self, parent, draw, max_fps: float, draw_budget: float) -> None:
        self.max_fps = max_fps
        self.draw_budget = draw_budget
        self.frames = 0
        self.frame_ms: list[float] = []
        self.loop_interval: float | None = None  # a fit in the main thread turns the loop this often
        self.timer = QTimer(parent)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(draw)
        self.earliest = 0.0  # new data may draw from then on
        self._next_full = 0.0
        self._run_began = 0.0
        self._staged_cost = 0.0  # seconds spent so far on the axes of a staged full draw

    def run_began(self, loop_interval: float | None) -> None:
        """A run begins: the last run's pacing is not this one's."""
        self.loop_interval = loop_interval
        self._staged_cost = 0.0
        self._next_full, self._run_began = 0.0, time.perf_counter()

    def run_ended(self) -> None:
        """The run ended: its last frame (a full draw, often) is not on the clock of a main-thread
        fit: it comes at the next turn of the loop."""
        if self.loop_interval is not None:
            self.earliest = time.perf_counter() + 0.05

    def request(self, training: bool) -> bool:
        """Draw soon: at once, or when the pacing allows; brings a longer wait forward. True when
        the frame is due now, in this turn of the event loop (the caller draws it)."""
        wait = max(int((self.earliest - time.perf_counter()) * 1000), 0)
        if self.loop_interval is not None and training and wait <= 1000 * self.loop_interval:
            self.timer.stop()
            return True
        if not self.timer.isActive() or self.timer.remainingTime() > wait:
            self.timer.start(wait)
        return False

    def allow_full(self, training: bool) -> bool:
        return not training or time.perf_counter() >= self._next_full

    def drew(self, kind: str | None, started: float, limits_pending: bool, training: bool) -> None:
        """A frame of ``kind`` (see ``MetricsPlot.draw_frame``) began at ``started``: schedule the next."""
        now = time.perf_counter()
        cost = now - started
        if kind is None:
            return  # nothing changed: the next update asks again
        self.frames += 1
        self.frame_ms.append(cost * 1e3)
        del self.frame_ms[:-200]
        gap = 1.0 / self.max_fps
        if kind == "part":  # one axes of a staged full draw: the next one after a turn of the event loop
            self._staged_cost += cost
        elif training:
            half = self.draw_budget / 2
            if kind == "full":
                cost, self._staged_cost = cost + self._staged_cost, 0.0
                self._next_full = started + self.full_draw_gap(cost, started)
            else:
                share = half if self.loop_interval is not None else max(half, self.BACKGROUND_DRAW_SHARE)
                gap = max(gap, min(cost / share, self.MAX_FRAME_GAP))
        self.earliest = started + gap
        if limits_pending:  # no new data: wait for the full draw
            gap = max(gap, self._next_full - time.perf_counter())
        self.timer.start(max(int(gap * 1000), 1))

    def full_draw_gap(self, cost: float, now: float) -> float:
        """Seconds from a full draw that took ``cost`` seconds (at ``now``, while training runs) to
        the next one: its share of the budget, at least ``FULL_DRAW_MIN_GAP``, at most a quarter
        of the run's age (the curves change most in its first seconds) up to ``FULL_DRAW_MAX_GAP``."""
        cap = min(max(self.FULL_DRAW_MIN_GAP, (now - self._run_began) / 4), self.FULL_DRAW_MAX_GAP)
        return min(max(self.FULL_DRAW_MIN_GAP, cost / (self.draw_budget / 2)), cap)

    def stop(self) -> None:
        self.timer.stop()
