"""Test setup: Qt runs offscreen, and no test may leave a kerasqt thread running."""

from __future__ import annotations

import os
import sys
import tempfile

# Set before Qt or Keras is imported anywhere.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="kerasqt-xdg-"))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "QtAgg")
# The Qt binding: QT_API chooses (qtpy, Matplotlib and pytest-qt alike); PyQt5 by default.
os.environ.setdefault("QT_API", "pyqt5")
os.environ.setdefault("PYTEST_QT_API", os.environ["QT_API"])
# QtMonitor() logs each run to ./runs by default: the suite's (and its subprocesses') go to a temp folder.
os.environ.setdefault("KERASQT_LOG_DIR", tempfile.mkdtemp(prefix="kerasqt-runs-"))

import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Each test file's layer (markers in pyproject.toml): `make test-quick` runs the unit layer alone.
LAYERS = {
    "unit": {"test_pure.py", "test_blit.py", "test_limits.py", "test_plot_state.py", "test_tracker.py",
             "test_bench_stats.py", "test_net.py", "test_batchvalues_pure.py", "test_catalogue.py"},
    "qt": {"test_demo.py"},
    "keras": {"test_monitor.py", "test_steer.py", "test_real_scripts.py", "test_backends.py", "test_runlog.py",
              "test_remote.py", "test_batchvalues.py", "test_runlist.py"},
    "slow": {"test_faults.py", "test_notebooks.py", "test_cli.py", "test_watch.py", "test_multiworker.py"},
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = Path(str(item.fspath)).name
        for layer, files in LAYERS.items():
            if name in files:
                item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture(autouse=True)
def no_windows_left():
    """Close the monitor windows a test left open (kerasqt keeps them until closed, as a user
    would want): their timers would go on turning in later tests. Set up before the thread check,
    so torn down after it: a thread that an open window left running still fails the test."""
    yield
    if "kerasqt.window" in sys.modules:  # (a test that never imported the window has none)
        for win in sys.modules["kerasqt.window"].open_windows():
            win.close()


@pytest.fixture(autouse=True)
def no_threads_left(request):
    """Fail any test that leaves a kerasqt QThread or Python thread running."""
    before = {t.ident for t in threading.enumerate()}
    yield
    from kerasqt.session import live_threads

    left = live_threads()
    for thread in left:  # end them so one failure does not cascade
        thread.quit()
        thread.wait(2000)
    assert not left, f"test left QThreads running: {[t.objectName() for t in left]}"
    stray = [t for t in threading.enumerate()
             if t.ident not in before and t.name.startswith("kerasqt") and t.is_alive()]
    assert not stray, f"test left threads running: {[t.name for t in stray]}"


@pytest.fixture
def window(qtbot):
    """A monitor window, closed (threads ended) after the test."""
    from kerasqt.demo import DemoSettings
    from kerasqt.window import MonitorWindow

    win = MonitorWindow(demo=DemoSettings(worker_iterations=10, worker_interval=0.02, receiver_iterations=40,
                                          receiver_interval=0.02, batch_size=5, seed=1))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
