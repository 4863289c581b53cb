"""The sine demo's refiner (pure: no Qt; runs in the demo's receiver thread).

:class:`SineRefiner` colours the demo's sine curves, a new random colour every
receiver batch; its :class:`SineUpdate` values cross to the main thread by value.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ..events import SineEvent

__all__ = ["SineCurve", "SineRefiner", "SineUpdate"]


@dataclass(frozen=True, slots=True)
class SineCurve:
    index: int
    periods: int
    x: np.ndarray
    y: np.ndarray
    color: str


@dataclass(frozen=True, slots=True)
class SineUpdate:
    """The sine curves drained in one receiver iteration, coloured."""

    curves: tuple[SineCurve, ...]
    batch: int


class SineRefiner:
    """Gives each sine curve the colour of its receiver batch (new random colour per batch)."""

    def __init__(self, batch_size: int = 5, seed: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.batch_size = batch_size
        self._random = random.Random(seed)
        self.iteration = 0
        self.batch = 0
        self.color = self._new_color()

    def _new_color(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*(self._random.randrange(30, 220) for _ in range(3)))

    def next_iteration(self) -> bool:
        """Count one receiver iteration; True when a new batch (and colour) starts."""
        self.iteration += 1
        if self.iteration % self.batch_size == 0:
            self.batch += 1
            self.color = self._new_color()
            return True
        return False

    def refine(self, events: list) -> SineUpdate | None:
        curves = tuple(
            SineCurve(ev.index, ev.periods, ev.x, ev.y, self.color) for ev in events if isinstance(ev, SineEvent)
        )
        return SineUpdate(curves, self.batch) if curves else None
