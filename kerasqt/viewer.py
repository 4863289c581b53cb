"""``QtMonitor(viewer="process")``: the window in a child process that reads the runs over loopback TCP (no Qt).

The training process draws nothing, and imports no Qt for that monitor. The monitor serves its
runs (:class:`~kerasqt.server.RunServer`): on ``127.0.0.1:0``, told to nobody, with a fresh control
token, or on its ``serve`` address when it serves anyway. At the first run the monitor starts
``python -m kerasqt watch 127.0.0.1:PORT`` with the token in the child's environment
(``KERASQT_TOKEN``, never on its command line, which other users of the machine can read). The
child shows that run, then each next run of the monitor (earlier runs stay on its axes), and its
*Stop training* stops the fit, over the same connection (:mod:`kerasqt.net`). It ends with its
window, not with the training: closing it never touches the training, and it stays open after
the training process ends, showing how the last run ended. A run that begins when the viewer was
closed starts a new one. No run log is needed (one is still written when ``log_dir`` says so).
At exit, the training process waits up to ``AWAIT`` s (:mod:`kerasqt.server`) for a child that
was started and has not connected yet, so that a short last run still reaches its window.

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
from .wire import ENV_TOKEN, local_address

__all__ = ["ENV_VIEWER_ARGS", "VIEWERS", "ViewerProcess", "viewer_process"]

VIEWERS = ("window", "process")
ENV_VIEWER_ARGS = "KERASQT_VIEWER_ARGS"


def viewer_process(viewer: str, log_dir=None) -> ViewerProcess | None:
    """What ``QtMonitor(viewer=..., log_dir=...)`` draws with: None for ``"window"`` (its own window,
    in this process), a :class:`ViewerProcess` for ``"process"`` (``log_dir``: where an offscreen
    child's screenshot goes); ValueError for anything else."""
    if viewer not in VIEWERS:
        raise ValueError(f"viewer must be 'window' or 'process', got {viewer!r}")
    if viewer == "window":
        return None
    return ViewerProcess(resolve_log_dir(log_dir))


class ViewerProcess:
    """The ``kerasqt watch`` child of one monitor (training thread); :attr:`server` is the monitor's,
    set when it is made (``callback._serve``)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.process: subprocess.Popen | None = None
        self.folder = folder  # the monitor's log folder, if it logs
        self.server = None  # the RunServer the child reads
        self._accepted = 0  # the server's connections when the child started

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def follow(self, path=None) -> None:
        """A run began (logged to ``path``, or None): the running child shows it, or a new child starts."""
        from .recorder import warn_user

        server = self.server
        if self.running:
            return
        if server is None:  # (only a monitor that serves nothing has none: another worker's)
            warn_user("kerasqt: no stream for the viewer process to read: the run is not shown")
            return
        args = ["watch", local_address(server.address), *shlex.split(os.environ.get(ENV_VIEWER_ARGS, ""))]
        folder = Path(path).absolute().parent if path is not None else self.folder
        if os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen") and "--screenshot" not in args and folder:
            args += ["--screenshot", str(folder / "kerasqt-watch.png")]
        env = dict(os.environ)
        env[ENV_TOKEN] = server.token  # (the environment: a command line is everyone's to read)
        root = str(Path(__file__).resolve().parent.parent)  # kerasqt importable, installed or not
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        accepted = server.accepted
        try:
            # A session of its own: a Ctrl-C of the training's terminal is not the viewer's.
            self.process = subprocess.Popen([sys.executable, "-m", "kerasqt", *args], stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)
        except OSError as exc:
            where = f"; the run is logged to {path}" if path is not None else ""
            warn_user(f"kerasqt: no viewer process ({exc}){where}")
            return
        self._accepted = accepted
        server.awaited = self.connecting

    def connecting(self) -> bool:
        """Whether the child started last still runs and has not connected yet (the server's close waits)."""
        return self.running and self.server is not None and self.server.accepted <= self._accepted

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None
