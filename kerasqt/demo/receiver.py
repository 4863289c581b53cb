"""The sine demo's receiver: a :class:`~kerasqt.receiver.Receiver` paced by its iterations.

Thread ownership as for every receiver: made in the main thread, moved to its
QThread, then owned by its loop (receiver thread); ``stop()`` from any thread.
"""

from __future__ import annotations

import queue
from collections.abc import Callable

from ..receiver import Receiver

__all__ = ["SineReceiver"]


class SineReceiver(Receiver):
    """The demo's receiver: counts its iterations, and its curves take their colours from them.

    ``iterations``: stop after this many iterations (None: until stopped or the replayed run ends).
    ``on_iteration``: called in the receiver thread after each iteration's drain, with its
    number, before its update goes out (the refiner's colour changes there).
    Paced: a ``stop()`` ends the loop at once, without another iteration (what is
    queued is still delivered, as by every receiver).
    """

    def __init__(self, events: queue.SimpleQueue, refiner, *, iterations: int | None = None,
                 on_iteration: Callable[[int], None] | None = None, **options) -> None:
        if iterations is not None and iterations < 1:
            raise ValueError(f"iterations must be >= 1 or None, got {iterations!r}")
        super().__init__(events, refiner, **options)
        self.iterations = iterations
        self.on_iteration = on_iteration

    def step(self) -> bool:
        if self.stopping:  # stopped during the nap: no iteration more
            return False
        return super().step() and (self.iterations is None or self.iteration < self.iterations)

    def iterated(self) -> None:
        if self.on_iteration is not None:
            self._guard(self.on_iteration, self.iteration)
