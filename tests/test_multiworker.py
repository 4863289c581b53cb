"""Multi-worker training, for real: two worker processes on localhost train one model together, each
with its own ``QtMonitor(log_dir=...)``; only the chief (process index 0) shows and logs its runs,
unless ``all_processes=True``.

Two ways to run the workers: ``tf.distribute.MultiWorkerMirroredStrategy`` with ``TF_CONFIG`` (the
TensorFlow backend), and ``jax.distributed`` with ``keras.distribution.DataParallel`` (the JAX
backend, its CPU collectives over gloo). Each worker runs two short fits: one with a default
monitor, one with ``all_processes=True``, and says what it saw as a JSON line.

Keras 3 does not run ``MultiWorkerMirroredStrategy`` as it comes (keras-team/keras#20585): its
``fit`` reduces the first data batch with a cross-worker collective that cannot take a nested
structure, and its logs with a mean over axis 0 of scalars. The TensorFlow worker works around
both (it builds the model itself in the strategy's scope, and reduces the logs locally); the
gradients still go through the strategy's all-reduce, so both workers train one model.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from kerasqt.events import BatchEvent, EndEvent
from kerasqt.runlog import read_run

EPOCHS, STEPS = 2, 8  # each fit: 256 samples in batches of 32

WORKER = textwrap.dedent("""
    import json, os, sys
    framework, index, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if framework == "jax":
        import jax
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=sys.argv[4], num_processes=2, process_id=index,
                                   initialization_timeout=40)
    else:
        import tensorflow as tf
        strategy = tf.distribute.MultiWorkerMirroredStrategy()  # TF_CONFIG: the cluster, this task
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(index)  # each worker its own data
    x = rng.standard_normal((256, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")

    def build():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        return model

    if framework == "jax":
        dist = keras.distribution.DataParallel()
        dist.auto_shard_dataset = False  # each process feeds its own batches
        keras.distribution.set_distribution(dist)
        model, data = build(), {"x": x, "y": y, "batch_size": 32}
    else:
        import keras.src.backend.tensorflow.trainer as tf_trainer  # keras-team/keras#20585: see the test

        tf_trainer._collective_all_reduce_multi_worker = lambda strategy: False
        with strategy.scope():
            model = build()
            model._symbolic_build(data_batch=(tf.constant(x[:16]), tf.constant(y[:16])))
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        data = {"x": tf.data.Dataset.from_tensor_slices((x, y)).batch(32).with_options(options)}

    from kerasqt import QtMonitor
    from kerasqt.chief import process_index

    def qt():
        return sorted(m for m in sys.modules if m.split(".")[0] in ("qtpy", "PyQt5", "PyQt6", "PySide6"))

    seen = {"index": process_index()}
    for name, kwargs in (("default", {}), ("all", {"all_processes": True})):
        monitor = QtMonitor(log_dir=os.path.join(folder, name), **kwargs)
        history = model.fit(**data, epochs=2, verbose=0, callbacks=[monitor])
        seen[name] = {"epochs": len(history.history["loss"]), "window": monitor.window is not None,
                      "log": None if monitor.log_path is None else str(monitor.log_path), "qt": qt()}
        monitor.close()
    print("seen", json.dumps(seen), flush=True)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_workers(tmp_path, framework: str, timeout: float = 50.0) -> list[tuple[dict, str]]:
    """Start the two workers, wait for both (killed at ``timeout`` or on any failure); each one's
    ``seen`` dict and its whole output (stdout and stderr)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ports = [_free_port(), _free_port()]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "KERAS_BACKEND": framework, "PYTHONUNBUFFERED": "1"}
    for name in ("TF_CONFIG", "RANK", "KERASQT_SERVE", "KERASQT_VIEWER_ARGS"):
        env.pop(name, None)
    procs, outs = [], []
    try:
        for index in range(2):
            if framework == "tensorflow":
                env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                               "task": {"type": "worker", "index": index}})
            out = open(tmp_path / f"worker{index}.out", "w+")  # noqa: SIM115 - closed below
            outs.append(out)
            procs.append(subprocess.Popen(
                [sys.executable, str(script), framework, str(index), str(tmp_path / f"w{index}"),
                 f"localhost:{ports[0]}"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.returncode not in (None, 0) for p in procs):
                break  # one failed: its partner would wait for it at the next collective
            time.sleep(0.2)
    finally:
        for p in procs:  # (start_new_session: the worker's own process group, whatever it started)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        texts = []
        for out in outs:
            out.seek(0)
            texts.append(out.read())
            out.close()
    for index, (p, text) in enumerate(zip(procs, texts, strict=True)):
        assert p.returncode == 0, f"worker {index} ended with {p.returncode}:\n{text[-4000:]}"
    return [(json.loads(text.split("seen ", 1)[1].splitlines()[0]), text) for text in texts]


def _complete(path) -> None:
    run = read_run(path)
    assert run.ended and isinstance(run.events[-1], EndEvent), run.describe()
    assert run.count(BatchEvent) == EPOCHS * STEPS, run.describe()


@pytest.mark.parametrize("framework", ["tensorflow", "jax"])
def test_only_the_chief_of_two_workers_logs_and_shows_unless_all_processes(tmp_path, framework):
    (chief, chief_out), (other, other_out) = _run_workers(tmp_path, framework)
    assert (chief["index"], other["index"]) == (0, 1)
    for seen in (chief, other):
        assert seen["default"]["epochs"] == seen["all"]["epochs"] == EPOCHS

    # By default: the chief logs its whole run and shows it; the other writes nothing, opens no
    # window, does not even import Qt, and says nothing.
    assert chief["default"]["window"] and chief["default"]["log"]
    _complete(chief["default"]["log"])
    assert list((tmp_path / "w0" / "default").glob("*.jsonl")) == [tmp_path / "w0" / "default" /
                                                                 os.path.basename(chief["default"]["log"])]
    assert other["default"] == {"epochs": EPOCHS, "window": False, "log": None, "qt": []}
    assert not list((tmp_path / "w1").glob("default/*"))
    for text in (chief_out, other_out):
        said = [line for line in text.splitlines() if line.lstrip().lower().startswith("kerasqt")]
        assert not said, said

    # all_processes=True: both log and show.
    for index, seen in enumerate((chief, other)):
        assert seen["all"]["window"] and seen["all"]["log"]
        _complete(seen["all"]["log"])
        assert len(list((tmp_path / f"w{index}" / "all").glob("*.jsonl"))) == 1


def test_jax_imported_by_tensorflow_does_not_make_every_worker_the_chief(monkeypatch):
    import jax  # TensorFlow imports it whenever it is installed; nobody trains with it here

    from kerasqt import chief

    assert not jax.distributed.is_initialized()
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert chief.process_index() == 1 and not chief.is_chief()
