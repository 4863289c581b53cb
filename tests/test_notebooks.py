"""The notebooks in ``notebooks/``, executed in a real Jupyter kernel; and the kernel pump on its own.

The kernel is this environment's own interpreter (``sys.executable -m ipykernel_launcher``),
described by a kernelspec in a temporary directory, with Qt offscreen. Most tests run the
cells one at a time, so that they can time a cell, leave the kernel idle between two cells,
and ask the kernel about the window with probe cells of their own (never written to the
notebooks). No test uses ``%gui``, except the one about cooperating with it.

``KERASQT_KERNEL_PYTHONPATH``, when set, goes in front of the kernel's ``PYTHONPATH``: point it
at a ``pip install --no-deps --target DIR "ipykernel==6.31.*"`` directory to run these tests
under another ipykernel.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_NAME = "kerasqt-test"
CELL_TIMEOUT = 120  # seconds, per cell
THREAD_OUTPUT = re.compile(r"worker: |receiver: iteration|epoch \d+: loss")


# -- a kernel that runs cells one at a time ---------------------------------------------------------
@dataclass
class Ran:
    """What one executed cell reported."""

    stdout: str
    stderr: str
    seconds: float  # wall clock from sending the cell to its reply, measured here

    def number(self, label: str) -> int:
        m = re.search(re.escape(label) + r"\s*(\d+)", self.stdout)
        assert m, f"no {label!r} in the cell's output: {self.stdout!r}"
        return int(m.group(1))


@pytest.fixture(scope="module")
def kernel_dirs(tmp_path_factory):
    """A kernelspec for this interpreter, offscreen, in a temporary directory."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL_NAME
    spec.mkdir()
    env = {"QT_QPA_PLATFORM": "offscreen", "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    extra = os.environ.get("KERASQT_KERNEL_PYTHONPATH")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, os.environ.get("PYTHONPATH")) if p)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kerasqt tests", "language": "python", "env": env,
    }))
    return [str(root)]


def _client(nb, kernel_dirs) -> NotebookClient:
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs))
    return NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=60, shutdown_kernel="immediate",
                          resources={"metadata": {"path": str(NOTEBOOKS)}})


class NotebookRun:
    """A notebook's code cells run in order, one at a time, in a live kernel, with probes between."""

    def __init__(self, client: NotebookClient, nb) -> None:
        self.client = client
        self.nb = nb
        self.code_ids = [c.id for c in nb.cells if c.cell_type == "code"]
        self.done: dict[str, Ran] = {}

    def _execute(self, index: int) -> Ran:
        cell = self.nb.cells[index]
        t0 = time.perf_counter()
        self.client.execute_cell(cell, index)
        seconds = time.perf_counter() - t0
        streams = {"stdout": "", "stderr": ""}
        for out in cell.outputs:
            if out.output_type == "stream":
                streams[out.name] += out.text
        return Ran(streams["stdout"], streams["stderr"], seconds)

    def run_to(self, cell_id: str) -> Ran:
        """Run the notebook's code cells up to and including ``cell_id``; its result."""
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type == "code" and cell.id not in self.done:
                self.done[cell.id] = self._execute(index)
                if cell.id == cell_id:
                    break
        return self.done[cell_id]

    def run_rest(self) -> None:
        self.run_to(self.code_ids[-1])

    def probe(self, source: str) -> Ran:
        """Run ``source`` as an extra cell (not a notebook cell)."""
        self.nb.cells.append(nbformat.v4.new_code_cell(source))
        return self._execute(len(self.nb.cells) - 1)


@contextmanager
def notebook_run(name: str, kernel_dirs):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = _client(nb, kernel_dirs)
    with client.setup_kernel():
        run = NotebookRun(client, nb)
        yield run
        assert client.km.is_alive(), "the kernel died"


def _leaks(run: NotebookRun, allowed=()) -> dict[str, str]:
    """Cells whose output shows lines printed by the training or demo threads."""
    return {cid: ran.stdout + ran.stderr for cid, ran in run.done.items()
            if cid not in allowed and THREAD_OUTPUT.search(ran.stdout + ran.stderr)}


# -- the committed notebooks -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sine_demo.ipynb", "train_monitor.ipynb"])
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    sources = "\n".join(c.source for c in code)
    assert "%gui" not in sources and "time.sleep" not in sources


@pytest.mark.parametrize("name", ["sine_demo.ipynb", "train_monitor.ipynb"])
def test_notebook_runs_top_to_bottom(name, kernel_dirs):
    """As nbconvert --execute would: every cell back to back, no errors, thread output kept out."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    _client(nb, kernel_dirs).execute()  # raises CellExecutionError on any error
    for cell in nb.cells:
        if cell.cell_type == "code":
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert text.strip(), f"cell {cell.id} printed nothing"
            if cell.id not in ("panes", "stop-code"):
                assert not THREAD_OUTPUT.search(text), f"thread output in cell {cell.id}: {text!r}"


def test_sine_demo_notebook_stays_live_between_cells(kernel_dirs):
    with notebook_run("sine_demo.ipynb", kernel_dirs) as run:
        assert "window open: True, demo running: False" in run.run_to("open").stdout
        started = run.run_to("start")
        assert "demo running: True" in started.stdout  # the cell's own print comes to the cell
        assert run.probe("print(get_ipython().kernel.eventloop)").stdout.strip() == "None"  # no %gui

        # Idle kernel between two cells: the window keeps receiving curves.
        a = run.probe("print('curves:', win.plot.curves)").number("curves:")
        time.sleep(1.0)
        b = run.probe("print('curves:', win.plot.curves, 'frames:', win.frames)").number("curves:")
        assert b > a, f"no curves arrived while the kernel was idle ({a} -> {b})"

        awaited = run.run_to("await")
        m = re.search(r"curves received: (\d+) -> (\d+)", awaited.stdout)
        assert m and int(m.group(2)) > int(m.group(1)), awaited.stdout
        assert 1.0 <= awaited.seconds < 10.0

        assert "demo running: False" in run.run_to("stop").stdout
        panes = run.run_to("panes").stdout
        assert re.search(r"worker pane: [1-9]\d* lines, the last: 'worker: ", panes), panes
        assert re.search(r"receiver pane: [1-9]\d* lines, the last: 'receiver: iteration", panes), panes
        assert "control pane" in panes and "threads stopped" in panes
        assert "window closed: True" in run.run_to("close").stdout
        run.run_rest()
        # The threads printed all along (the panes show it), but not into any cell.
        assert not _leaks(run, allowed=("panes",))


def test_train_monitor_notebook(kernel_dirs):
    with notebook_run("train_monitor.ipynb", kernel_dirs) as run:
        run.run_to("setup")
        fit = run.run_to("fit")
        m = re.search(r"batch points in the window: (\d+) of (\d+)", fit.stdout)
        assert m and int(m.group(1)) == int(m.group(2)) > 0, fit.stdout
        assert run.probe("print(get_ipython().kernel.eventloop)").stdout.strip() == "None"  # no %gui

        background = run.run_to("background")
        assert "fit_in_background returned: <FitJob running>" in background.stdout
        assert background.seconds < 10.0
        meanwhile = run.run_to("meanwhile")
        assert "this cell ran while training; training done: False" in meanwhile.stdout
        assert meanwhile.seconds < 1.0, f"a cell took {meanwhile.seconds:.2f} s while training ran"

        grows = run.run_to("grows")
        m = re.search(r"batch points in the window: (\d+) -> (\d+), training done: False", grows.stdout)
        assert m and int(m.group(2)) > int(m.group(1)) > 0, grows.stdout

        # Idle kernel between two cells: the window keeps receiving batches.
        count = "print('points:', len(window.plot.batches))"
        a = run.probe(count).number("points:")
        time.sleep(1.0)
        b = run.probe(count).number("points:")
        assert b > a, f"no batches arrived while the kernel was idle ({a} -> {b})"

        stopped = run.run_to("stop-code")
        epochs = stopped.number("stopped after")
        assert 1 <= epochs < 200 and "training stopped early" in stopped.stdout, stopped.stdout
        # The LambdaCallback's print went to the window's pane: the cell shows the pane's last line.
        assert re.search(rf"training output pane: \['epoch {epochs}: loss \d", stopped.stdout), stopped.stdout

        button = run.run_to("stop-button")
        assert button.number("stopped after") < 200 and "training stopped early" in button.stdout
        pane = run.probe("print(window.pane_text('control'))").stdout
        assert pane.count("stop requested") == 1, pane  # the button, not job.stop()

        closed = run.run_to("close-during-fit")
        assert "window closed: True, training still running: True" in closed.stdout
        after = run.probe("print('alive', 6 * 7)")
        assert "alive 42" in after.stdout and after.seconds < 1.0
        waited = run.run_to("wait-after-close")
        assert "job.wait() returned after 12 epochs" in waited.stdout
        run.run_rest()
        assert not _leaks(run, allowed=("stop-code",))
        assert run.probe("from kerasqt.session import live_threads; print(len(live_threads()))").stdout.strip() == "0"


# -- %gui qt -------------------------------------------------------------------------------------------
def test_gui_qt_magic_drives_qt_and_the_pump_takes_over_when_it_is_off(kernel_dirs):
    """With ``%gui qt`` on, kerasqt leaves the Qt loop to it; after ``%gui``, its own pump runs."""
    nb = nbformat.v4.new_notebook()
    client = _client(nb, kernel_dirs)
    with client.setup_kernel():
        run = NotebookRun(client, nb)
        version = run.probe("import ipykernel; print(ipykernel.__version__)").stdout.strip()
        if int(version.split(".")[0]) >= 7:
            pytest.skip(f"%gui qt breaks ipykernel {version} by itself (a later cell that awaits is "
                        "cancelled and the next one hangs); kerasqt does not need it")
        run.probe("%gui qt5")
        run.probe("import kerasqt, kerasqt.qtapp as qtapp\n"
                  "win = kerasqt.show_demo(start=True, worker_interval=0.05, receiver_interval=0.05,\n"
                  "                        worker_iterations=400, receiver_iterations=800)")
        state = "print('curves:', win.plot.curves, 'gui:', qtapp.kernel_gui_active())"
        a = run.probe(state)
        assert "gui: True" in a.stdout
        time.sleep(1.0)
        b = run.probe(state)
        assert b.number("curves:") > a.number("curves:")
        run.probe("%gui")
        c = run.probe(state)
        assert "gui: False" in c.stdout
        time.sleep(1.0)
        d = run.probe(state)
        assert d.number("curves:") > c.number("curves:")
        run.probe("win.close()")
        assert client.km.is_alive()


# -- the pump on its own, in this process --------------------------------------------------------------
def _fake_kernel(monkeypatch):
    kernel = types.SimpleNamespace(eventloop=None, io_loop=None)
    shell = types.SimpleNamespace(kernel=kernel)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    return kernel


async def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_pump_turns_qt_from_the_kernel_loop_and_yields_to_gui_qt(qapp, monkeypatch):
    from qtpy.QtCore import QTimer

    from kerasqt import qtapp

    kernel = _fake_kernel(monkeypatch)
    assert not qtapp.start_kernel_pump()  # the kernel's loop is not running: nothing to add a task to

    def loop_qt(kernel):  # what ipykernel's %gui qt installs
        pass

    def loop_tk(kernel):
        pass

    async def main() -> None:
        kernel.io_loop = types.SimpleNamespace(asyncio_loop=asyncio.get_running_loop())
        assert qtapp.start_kernel_pump(interval=0.01)
        task = qtapp._pump_task
        assert qtapp.start_kernel_pump() and qtapp._pump_task is task  # one pump only
        try:
            fired: list[str] = []
            QTimer.singleShot(0, lambda: fired.append("idle"))  # delivered only if someone turns Qt's loop
            assert await _until(lambda: "idle" in fired, 2.0)

            kernel.eventloop = loop_tk  # another toolkit's loop: Qt still needs the pump
            QTimer.singleShot(0, lambda: fired.append("tk"))
            assert await _until(lambda: "tk" in fired, 2.0)

            kernel.eventloop = loop_qt
            await asyncio.sleep(0.05)
            QTimer.singleShot(0, lambda: fired.append("gui"))
            assert not await _until(lambda: "gui" in fired, 0.3)  # %gui qt's job now, not the pump's
            assert not task.done()

            kernel.eventloop = None  # %gui switched off: the pump takes over again
            assert await _until(lambda: "gui" in fired, 2.0)
        finally:
            qtapp.stop_kernel_pump()

    asyncio.run(main())
    assert qtapp._pump_task is None


def test_pump_needs_a_kernel(monkeypatch):
    from kerasqt import qtapp

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not qtapp.start_kernel_pump()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert not qtapp.start_kernel_pump()  # plain IPython (a terminal), not a kernel
