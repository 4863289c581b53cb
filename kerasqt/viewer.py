"""``QtMonitor(viewer="process")``: the window in a child process that follows the run logs (no Qt).

The training process draws nothing, and imports no Qt for that monitor: its runs are logged
with no window (a :class:`~kerasqt.runlog.LogFollower` thread writes each run's log), and at
the first run with a log the monitor starts ``python -m kerasqt watch <log folder> --first
<run log>`` (:mod:`kerasqt.watch`). The child follows that run, then each new run in the folder
(the monitor's next runs; earlier runs stay on its axes). It ends with its window, not with
the training: closing it never touches the training, and it stays open after the training
process ends, showing how the last run ended. A run that begins when the viewer was closed
starts a new one.

``KERASQT_VIEWER_ARGS``: more arguments for the child's ``kerasqt watch``, split as a shell
would (``--seconds 5 --screenshot shot.png``: a smoke test). Offscreen
(``QT_QPA_PLATFORM=offscreen``) the child's default screenshot goes to the log folder, and
it ends by itself when the runs it showed are over (see :mod:`kerasqt.cli`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from .runlog import resolve_log_dir

__all__ = ["ENV_VIEWER_ARGS", "VIEWERS", "ViewerProcess", "viewer_process"]

VIEWERS = ("window", "process")
ENV_VIEWER_ARGS = "KERASQT_VIEWER_ARGS"


def viewer_process(viewer: str, log_dir) -> ViewerProcess | None:
    """What ``QtMonitor(viewer=..., log_dir=...)`` draws with: None for ``"window"`` (its own window,
    in this process), a :class:`ViewerProcess` for ``"process"``; ValueError for anything else, and
    for ``"process"`` without a run log to follow."""
    if viewer not in VIEWERS:
        raise ValueError(f"viewer must be 'window' or 'process', got {viewer!r}")
    if viewer == "window":
        return None
    if resolve_log_dir(log_dir) is None:
        raise ValueError('viewer="process" draws from the run log, and there is none: give a log_dir '
                         "(log_dir is None, or $KERASQT_LOG_DIR is set empty)")
    return ViewerProcess()


class ViewerProcess:
    """The ``kerasqt watch`` child of one monitor (training thread)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.folder: Path | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def follow(self, path) -> None:
        """A run logged to ``path`` began: the viewer already following its folder shows it, or a new
        one starts. None: this run has no log (it could not be made): said."""
        if path is None:
            from .recorder import warn_user

            warn_user("kerasqt: this run has no run log, so the viewer process cannot show it")
            return
        path = Path(path).absolute()
        if self.running and path.parent == self.folder:
            return
        args = ["watch", str(path.parent), "--first", str(path), *shlex.split(os.environ.get(ENV_VIEWER_ARGS, ""))]
        if os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen") and "--screenshot" not in args:
            args += ["--screenshot", str(path.parent / "kerasqt-watch.png")]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)  # kerasqt importable, installed or not
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            # A session of its own: a Ctrl-C of the training's terminal is not the viewer's.
            self.process = subprocess.Popen([sys.executable, "-m", "kerasqt", *args], stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)
        except OSError as exc:
            from .recorder import warn_user

            warn_user(f"kerasqt: no viewer process ({exc}); the run is logged to {path}")
            return
        self.folder = path.parent

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None
