"""Names and hidden flags of a folder's runs, in a small file beside them (pure: no Qt, no Keras).

The run logs themselves are never modified: renaming a run, or hiding it from the window's run
list, is written to ``kerasqt-runs.json`` in the log folder::

    {"format": "kerasqt-runs", "version": 1,
     "runs": {"20250126-143005": {"name": "lr 1e-2", "hidden": false}}}

keyed by the log's file name without ``.jsonl``. The file is read again whenever it changed on
disk (another window may have written it), and written whole through a temporary file
(``os.replace``), so that a reader never sees half of it. A file that cannot be read, or is
not such an object, is said in one line (:attr:`RunNames.problem`) and taken as empty; the
next rename or hide writes a good one over it.

Threads: one :class:`RunNames` belongs to the thread that calls it (the window's main thread).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["SIDECAR", "RunNames"]

SIDECAR = "kerasqt-runs.json"
FORMAT = "kerasqt-runs"
MAX_BYTES = 4 * 2**20
MAX_NAME = 120


class RunNames:
    """The renames and hidden flags of the runs in ``folder``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / SIDECAR
        self.problem: str | None = None  # one line: why the file on disk was not read (None: it was, or none)
        self._runs: dict[str, dict] = {}
        self._seen: tuple | None = None  # (size, mtime) of the file as last read

    # -- reading -----------------------------------------------------------------------------------
    def load(self) -> bool:
        """Read the file again if it changed on disk; True when what it says may have changed."""
        state = _state(self.path)
        if state == self._seen:
            return False
        self._seen = state
        if state is None:
            self._runs, self.problem = {}, None
            return True
        try:
            if state[0] > MAX_BYTES:
                raise ValueError(f"larger than {MAX_BYTES // 2**20} MiB")
            obj = json.loads(self.path.read_bytes().decode("utf-8"))
            self._runs = _checked(obj)
            self.problem = None
        except (OSError, ValueError, RecursionError) as exc:
            self._runs = {}
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0][:80]
            self.problem = f"{self.path}: not read ({why}); run names and hidden runs start afresh"
        return True

    def name(self, stem: str) -> str | None:
        """The name given to the run ``stem``, or None."""
        return self._runs.get(stem, {}).get("name")

    def hidden(self, stem: str) -> bool:
        return bool(self._runs.get(stem, {}).get("hidden"))

    # -- writing -----------------------------------------------------------------------------------
    def rename(self, stem: str, name: str | None) -> None:
        """Name the run ``stem`` (None or blank: its own name again); raises OSError if the file
        cannot be written."""
        name = " ".join((name or "").split())[:MAX_NAME] or None
        self._change(stem, "name", name)

    def set_hidden(self, stem: str, hidden: bool) -> None:
        self._change(stem, "hidden", bool(hidden) or None)

    def _change(self, stem: str, key: str, value) -> None:
        self.load()  # another window's changes are kept
        entry = dict(self._runs.get(stem, {}))
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
        runs = dict(self._runs)
        if entry:
            runs[stem] = entry
        else:
            runs.pop(stem, None)
        self._write(runs)
        self._runs = runs

    def _write(self, runs: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{SIDECAR}.{os.getpid()}.tmp")
        text = json.dumps({"format": FORMAT, "version": 1, "runs": runs}, indent=1, ensure_ascii=False)
        try:
            tmp.write_text(text + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        self._seen = _state(self.path)
        self.problem = None


def _checked(obj) -> dict[str, dict]:
    """The ``runs`` of a parsed sidecar, entries of the wrong type left out; ValueError when it is
    not a sidecar at all."""
    if type(obj) is not dict or obj.get("format") != FORMAT or type(obj.get("runs")) is not dict:
        raise ValueError(f"not a {FORMAT} file")
    runs = {}
    for stem, entry in obj["runs"].items():
        if type(entry) is not dict:
            continue
        good = {}
        if type(entry.get("name")) is str and entry["name"].strip():
            good["name"] = entry["name"][:MAX_NAME]
        if entry.get("hidden") is True:
            good["hidden"] = True
        if good:
            runs[stem] = good
    return runs


def _state(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)
