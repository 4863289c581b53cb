"""QtMonitor on the other Keras backends, each in its own process (the backend is fixed at import)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, os
    import numpy as np, keras
    from kerasqt import QtMonitor
    from kerasqt.session import live_threads

    rng = np.random.default_rng(0)
    x = rng.standard_normal((640, 8)).astype("float32"); y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    mon = QtMonitor()
    model.fit(x, y, validation_split=0.2, epochs=3, batch_size=16, verbose=0, callbacks=[mon])
    win = mon.window
    from qtpy.QtWidgets import QApplication
    import time
    end = time.monotonic() + 10
    while win.training.running and time.monotonic() < end:
        QApplication.processEvents(); time.sleep(0.01)
    steps = win.plot.batches.steps.tolist()
    async_train = keras.callbacks.CallbackList([mon])._async_train
    print(json.dumps({"backend": keras.backend.backend(), "shown": win.plot.shown(), "steps": steps,
                      "async": async_train, "threads": len(live_threads())}))
    mon.close()
""")


@pytest.mark.parametrize("backend, module", [("jax", "jax"), ("torch", "torch")])
def test_monitor_on_backend(backend, module, tmp_path):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: the {backend} backend cannot be tested here")
    env = dict(os.environ, KERAS_BACKEND=backend)
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    assert out["async"] is True  # our hook keeps Keras' batch-end dispatch asynchronous
    assert out["shown"]["loss"]["batches"] == 3 * 32 and out["shown"]["val_loss"]["epochs"] == 3
    # Events from the thread pool may arrive out of order; the window holds them sorted, once each.
    assert out["steps"] == list(range(1, 97))
    assert out["threads"] == 0
