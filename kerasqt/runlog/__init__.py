"""Run logs: every event of a run in an append-only JSON Lines file, and reading it back.

Pure: no Qt, no Keras. The format (also in the README):

* line 1, the header: ``{"format": "kerasqt-run", "version": 1, "kind": "training" | "sine",
  "created": <unix time>, "title": ..., ...}``;
* then one JSON object per event, with ``"type"`` (``start``, ``batch``, ``eval``, ``epoch``,
  ``end``, ``error``, ``message``, ``sine``), ``"time"`` (unix seconds) and the fields of the
  event class of that name in :mod:`kerasqt.events` (``message`` and ``sine`` events carry
  no time of their own: theirs is when the receiver got them). Every line is strict JSON:
  non-finite numbers are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

The parts, by role (this package is the import point for all of them):

* :mod:`~kerasqt.runlog.common`: :data:`FORMAT`, :data:`VERSION`, :data:`DEFAULT_LOG_DIR`,
  :func:`resolve_log_dir`, :class:`RunLogError`;
* :mod:`~kerasqt.runlog.writer`: :class:`RunLogWriter`, written by one thread at a time
  (the receiver thread through the monitor's ``tap``, then, if the window closes during
  ``fit``, a :class:`LogFollower` thread); a lock makes it safe from any thread;
* :mod:`~kerasqt.runlog.reader`: :func:`read_run` and :class:`RunLog` (the calling thread),
  :func:`decode_line` and :func:`check_header` for one line at a time (a log still being written):
  :mod:`json` only, every field's type checked; a corrupt or hostile file gives a
  :class:`RunLogError`, nothing else;
* :mod:`~kerasqt.runlog.threads`: :class:`LogFollower` (its own ``kerasqt-runlog`` thread)
  and :class:`ReplayFeeder` (a ``kerasqt-replay`` thread when paced), both on
  :class:`kerasqt.loops.Loop`.
"""

from __future__ import annotations

from .common import DEFAULT_LOG_DIR, ENV_LOG_DIR, FORMAT, MAX_LINE, VERSION, RunLogError, resolve_log_dir
from .reader import RunLog, check_header, decode_line, read_run
from .threads import LogFollower, ReplayFeeder
from .writer import FLUSH_EVERY, SYNC_EVERY, RunLogWriter, encode_lines, header_line

__all__ = [
    "DEFAULT_LOG_DIR",
    "ENV_LOG_DIR",
    "FLUSH_EVERY",
    "FORMAT",
    "MAX_LINE",
    "SYNC_EVERY",
    "VERSION",
    "LogFollower",
    "ReplayFeeder",
    "RunLog",
    "RunLogError",
    "RunLogWriter",
    "check_header",
    "decode_line",
    "encode_lines",
    "header_line",
    "read_run",
    "resolve_log_dir",
]
