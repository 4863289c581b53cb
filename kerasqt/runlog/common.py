"""What the run log's parts share: the format's name and version, where logs go, the error.

Pure (no Qt, no Keras) and stateless: constants and a function, for any thread.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_LOG_DIR", "ENV_LOG_DIR", "FORMAT", "MAX_LINE", "VERSION", "RunLogError", "resolve_log_dir"]

FORMAT = "kerasqt-run"
# 2: control and patience events, lr_fixed in start (version 1 logs read as before); later within 2, as
# readers of 2 skip them: means events and the counts of batch lines (kerasqt.perbatch)
VERSION = 2
ENV_LOG_DIR = "KERASQT_LOG_DIR"
MAX_LINE = 16 * 1024 * 1024  # bytes; a sine curve of the demo is ~30 kB


class _DefaultLogDir:
    """The default ``log_dir``: ``$KERASQT_LOG_DIR`` if set (empty: no log), else ``./runs``."""

    def __repr__(self) -> str:
        return "DEFAULT_LOG_DIR"


DEFAULT_LOG_DIR = _DefaultLogDir()


class RunLogError(Exception):
    """A run log could not be read (or written); the message is one line for the user."""


def resolve_log_dir(log_dir) -> Path | None:
    """The folder a run log goes to, or None for no log (``log_dir=None``, or an empty env var)."""
    if log_dir is DEFAULT_LOG_DIR:
        log_dir = os.environ.get(ENV_LOG_DIR, "runs")
        if not log_dir:
            return None
    if log_dir is None:
        return None
    return Path(log_dir).expanduser().absolute()
