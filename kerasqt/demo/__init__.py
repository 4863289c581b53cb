"""The sine demo, a part of its own: producer -> queue -> receiver -> window without Keras.

* :mod:`~kerasqt.demo.settings`: :class:`DemoSettings` (pure);
* :mod:`~kerasqt.demo.worker`: :class:`SineWorker`, the producer, in its own QThread;
* :mod:`~kerasqt.demo.refiner`: :class:`SineRefiner` and its :class:`SineUpdate` values
  (pure; receiver thread);
* :mod:`~kerasqt.demo.receiver`: :class:`SineReceiver`, the receiver paced by its
  iterations, in its own QThread;
* :mod:`~kerasqt.demo.session`: :class:`DemoSession`, which starts and ends both
  threads (main thread);
* :mod:`~kerasqt.demo.plot`: :class:`~kerasqt.demo.plot.SinePlot` (main thread; imported
  on its own, it needs matplotlib).
"""

from __future__ import annotations

from .receiver import SineReceiver
from .refiner import SineCurve, SineRefiner, SineUpdate
from .session import DemoSession
from .settings import DemoSettings
from .worker import SineWorker, sine_curve

__all__ = ["DemoSession", "DemoSettings", "SineCurve", "SineReceiver", "SineRefiner", "SineUpdate", "SineWorker",
           "sine_curve"]
