"""The sine demo's settings (pure: no Qt; made in the main thread, read by the demo's session)."""

from __future__ import annotations

__all__ = ["DemoSettings"]


class DemoSettings:
    """Iteration counts, intervals and batch sizes of the sine demo (the original's defaults).

    ``log_dir``: record each demo run to a run log in this folder (:mod:`kerasqt.runlog`);
    None (the default): no recording.
    """

    def __init__(
        self,
        worker_iterations: int = 20,
        worker_interval: float = 0.1,
        receiver_iterations: int = 50,
        receiver_interval: float = 0.05,
        batch_size: int = 5,
        seed: int | None = None,
        log_dir=None,
    ) -> None:
        for name, value in (("worker_iterations", worker_iterations), ("receiver_iterations", receiver_iterations),
                            ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name, value in (("worker_interval", worker_interval), ("receiver_interval", receiver_interval)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 60:
                raise ValueError(f"{name} must be a number of seconds in (0, 60], got {value!r}")
        self.worker_iterations = worker_iterations
        self.worker_interval = float(worker_interval)
        self.receiver_iterations = receiver_iterations
        self.receiver_interval = float(receiver_interval)
        self.batch_size = batch_size
        self.seed = seed
        self.log_dir = log_dir
