"""Watching and steering a run from anywhere: its run log's lines over TCP, and controls back (no Qt,
no Keras).

The training side serves (:class:`~kerasqt.server.RunServer`); a viewer reads
(:class:`~kerasqt.netsource.NetSource`, which hands each run to a window as a
:class:`~kerasqt.netsource.NetRun`); the lines both ends share are in :mod:`kerasqt.wire`. This
module gathers their public names. The wire, server to viewer, is the run log: plain TCP, UTF-8
JSON Lines, ``\\n``-terminated, as :class:`~kerasqt.runlog.RunLogWriter` writes them (no pickle; a
viewer checks every line as :func:`~kerasqt.runlog.read_run` does). The header sent on a
connection has ``"stream": {"run": ID, "first": K, "extra": E, "control": C}``: ``ID`` names the
run (unique across servers); the run's first ``K`` lines are not sent (past the server's bound);
the ``E`` lines after the header are the connection's own (the run's start line when among the
``K``, a message that says so); ``C`` whether the training takes controls. A blank line is a
heartbeat. A plain run log (``nc -l 8765 < run.jsonl``) reads too.

Catch-up: the server sends the whole current run (what it keeps of it) on every connection. A
viewer counts the run's lines it has delivered (``NetRun.next``); on a header of the same run
it skips the first ``next - K`` lines, and when ``K > next`` (lines went past the bound while it
was away) it says so and goes on from line ``K``. Another ID is a new run.

Controls, viewer to server, on the same connection: one line (at most ``CONTROL_BYTES``, 4 KiB)
per control, ``{"control": ACTION, "args": {...}, "token": TOKEN, "id": N}``, with ``ACTION`` and
``args`` as :func:`kerasqt.steer.check_control` takes them. The server checks the token first
(compared in constant time; no token, a wrong one, or a training that takes none: refused), then
the control, then hands it to the training (``RunServer.on_control``), and answers the asking
connection only, among its run lines, with one line:
``{"answer": {"id": N, "control": ACTION, "ok": BOOL, "text": ONE_LINE, "token": BOOL}}``
(``token``: whether the token was taken). An answer line is no line of the run: a viewer does not
count it (catch-up is unchanged), and it only ever goes to a connection that sent a control, so a
viewer of an older kerasqt, which sends none, never sees one. What the control does reaches every
viewer as the run's ``control`` event. A line that is no control (not JSON, not an object with
``control``), one longer than 4 KiB, or the third refused for its token closes that connection
(one log warning); more than 10 controls a second are refused. The token is made with :mod:`secrets`
when serving (``$KERASQT_TOKEN`` sets it); a viewer gives it with ``kerasqt watch HOST:PORT
--token TOKEN`` or ``$KERASQT_TOKEN``. See ``docs/watch.md``.
"""

from __future__ import annotations

from .netsource import NetRun, NetSource
from .server import KEEP_BYTES, VIEWER_BYTES, RunServer
from .wire import ENV_TOKEN, env_token, local_address, parse_address, viewer_address

__all__ = ["ENV_TOKEN", "KEEP_BYTES", "VIEWER_BYTES", "NetRun", "NetSource", "RunServer", "env_token",
           "local_address", "parse_address", "viewer_address"]
