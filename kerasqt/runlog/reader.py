"""Reading a run log back: every line parsed with :mod:`json` only, every field's type checked.

Pure: no Qt, no Keras; runs in the calling thread. A corrupt or hostile file gives
a :class:`~kerasqt.runlog.RunLogError` with a one-line reason, nothing else.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..events import (
    BatchEvent,
    ControlEvent,
    EndEvent,
    EpochEvent,
    ErrorEvent,
    EvalEvent,
    MeansEvent,
    MessageEvent,
    PatienceEvent,
    SineEvent,
    StartEvent,
    counted,
)
from .common import FORMAT, MAX_LINE, VERSION, RunLogError

__all__ = ["RunLog", "check_header", "decode_line", "read_run"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # how the writer names them


class _Bad(Exception):
    pass


_REQUIRED = object()
_INT64 = 2**63


def _num(v) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise _Bad("a number too large") from None
    if t is str and v in _NONFINITE:
        return _NONFINITE[v]
    raise _Bad(f"not a number: {_short(v)}")


def _finite_num(v) -> float:
    v = _num(v)
    if not math.isfinite(v):
        raise _Bad("not a finite number")
    return v


def _int(v) -> int:
    if type(v) is not int or not -_INT64 <= v < _INT64:
        raise _Bad(f"not a whole number: {_short(v)}")
    return v


def _opt(check):
    def opt(v):
        return None if v is None else check(v)
    return opt


def _str(v) -> str:
    if type(v) is not str:
        raise _Bad(f"not a string: {_short(v)}")
    return v


def _bool(v) -> bool:
    if type(v) is not bool:
        raise _Bad(f"not true or false: {_short(v)}")
    return v


def _values(v) -> dict[str, float]:
    if type(v) is not dict:
        raise _Bad("values is not an object")
    return {_str(k): _num(x) for k, x in v.items()}


def _strs(v) -> tuple[str, ...]:
    if type(v) is not list:
        raise _Bad("not a list")
    return tuple(_str(x) for x in v)


def _counts(v) -> tuple[float, ...]:
    if type(v) is not list:
        raise _Bad("not a list")
    return tuple(_num(x) for x in v)


def _means(v) -> dict[str, int]:
    if type(v) is not dict:
        raise _Bad("not an object")
    return {_str(k): _index(x) for k, x in v.items()}


def _index(v) -> int:
    if type(v) is not int or not 0 <= v < 1024:
        raise _Bad(f"not an index: {_short(v)}")
    return v


def _execution(v) -> int:
    if type(v) is not int or not 1 <= v < _INT64:
        raise _Bad(f"not a whole number >= 1: {_short(v)}")
    return v


def _floats(v) -> np.ndarray:
    if type(v) is not list:
        raise _Bad("not a list")
    return np.array([_num(x) for x in v], np.float64)


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# type -> (event class, [(field, check, default)])
_FIELDS = {
    "start": (StartEvent, [("time", _finite_num, _REQUIRED), ("epochs", _opt(_int), None),
                           ("steps", _opt(_int), None), ("batch_size", _opt(_int), None),
                           ("initial_epoch", _int, 0), ("run", _str, ""), ("lr_fixed", _str, "")]),
    "batch": (BatchEvent, [("step", _int, _REQUIRED), ("epoch", _int, _REQUIRED), ("time", _finite_num, _REQUIRED),
                           ("values", _values, _REQUIRED), ("bad", _strs, ()), ("lr", _opt(_num), None),
                           ("counts", _opt(_counts), None)]),
    "means": (MeansEvent, [("step", _int, _REQUIRED), ("time", _finite_num, _REQUIRED), ("means", _means, _REQUIRED),
                           ("weights", _strs, ()), ("running", _strs, ()), ("execution", _execution, 1)]),
    "eval": (EvalEvent, [("step", _int, _REQUIRED), ("epoch", _int, _REQUIRED), ("time", _finite_num, _REQUIRED),
                         ("values", _values, _REQUIRED), ("kind", _str, "val"), ("bad", _strs, ())]),
    "epoch": (EpochEvent, [("step", _int, _REQUIRED), ("epoch", _int, _REQUIRED), ("time", _finite_num, _REQUIRED),
                           ("values", _values, _REQUIRED), ("bad", _strs, ()), ("lr", _opt(_num), None)]),
    "end": (EndEvent, [("step", _int, _REQUIRED), ("time", _finite_num, _REQUIRED), ("stopped", _bool, False)]),
    "error": (ErrorEvent, [("time", _finite_num, _REQUIRED), ("message", _str, _REQUIRED)]),
    "message": (MessageEvent, [("source", _str, _REQUIRED), ("text", _str, _REQUIRED)]),
    "control": (ControlEvent, [("step", _int, _REQUIRED), ("time", _finite_num, _REQUIRED), ("action", _str, _REQUIRED),
                               ("text", _str, _REQUIRED), ("ok", _bool, True), ("value", _opt(_num), None),
                               ("path", _str, "")]),
    "patience": (PatienceEvent, [("step", _int, _REQUIRED), ("epoch", _int, _REQUIRED),
                                 ("time", _finite_num, _REQUIRED),
                                 ("monitor", _str, _REQUIRED), ("wait", _int, _REQUIRED), ("patience", _int, _REQUIRED),
                                 ("best_epoch", _opt(_int), None), ("best", _opt(_num), None),
                                 ("restored", _opt(_int), None)]),
    "sine": (SineEvent, [("index", _int, _REQUIRED), ("periods", _int, _REQUIRED), ("x", _floats, _REQUIRED),
                         ("y", _floats, _REQUIRED)]),
}
_KINDS = {"training": {"start", "batch", "eval", "epoch", "end", "error", "message", "control", "patience",
                        "means"},
          "sine": {"sine", "message", "end", "error"}}


def _decode(obj) -> tuple[float | None, object] | None:
    """(time, event) from one parsed line; None for an event type this version does not know."""
    if type(obj) is not dict:
        raise _Bad("not a JSON object")
    kind = obj.get("type")
    spec = _FIELDS.get(kind) if type(kind) is str else None
    if spec is None:
        if type(kind) is not str:
            raise _Bad("no event type")
        return None
    cls, fields = spec
    kwargs = {}
    for name, check, default in fields:
        if name in obj:
            try:
                kwargs[name] = check(obj[name])
            except _Bad as exc:
                raise _Bad(f"{kind} field {name!r}: {exc}") from None
        elif default is _REQUIRED:
            raise _Bad(f"{kind} event without {name!r}")
        else:
            kwargs[name] = default
    if cls is SineEvent and len(kwargs["x"]) != len(kwargs["y"]):
        raise _Bad("sine x and y differ in length")
    if cls is MeansEvent and any(i >= len(kwargs["weights"]) for i in kwargs["means"].values()):
        raise _Bad("means names a weight that is not in weights")
    t = kwargs.get("time")
    if t is None and "time" in obj:
        try:
            t = _finite_num(obj["time"])
        except _Bad as exc:
            raise _Bad(f"{kind} field 'time': {exc}") from None
    return t, cls(**kwargs)


@dataclass
class RunLog:
    """A run log read back: its header and its events with the times to replay them at."""

    path: Path
    header: dict
    records: list = field(repr=False)  # [(time or None, event)]
    truncated: bool = False  # the last line was cut short (the process was killed) and is skipped
    skipped: int = 0  # lines of event types this version does not know

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def kind(self) -> str:
        return self.header["kind"]

    @property
    def events(self) -> list:
        return [ev for _, ev in self.records]

    @property
    def ended(self) -> bool:
        """Whether the run's end (normal, stopped or failed) is in the log."""
        return any(isinstance(ev, (EndEvent, ErrorEvent)) for _, ev in self.records)

    @property
    def smoothing(self) -> float:
        return self.header.get("smoothing", 0.9)

    def count(self, cls) -> int:
        return sum(1 for _, ev in self.records if isinstance(ev, cls))

    def describe(self) -> str:
        if self.kind == "sine":
            return f"{self.name}: {self.count(SineEvent)} sine curves"
        end = next((ev for _, ev in reversed(self.records) if isinstance(ev, (EndEvent, ErrorEvent))), None)
        how = ("finished" if not end.stopped else "stopped early") if isinstance(end, EndEvent) else (
            "failed" if isinstance(end, ErrorEvent) else "cut short")
        return (f"{self.name}: {counted(self.count(BatchEvent), 'batch', 'batches')}, "
                f"{counted(self.count(EpochEvent), 'epoch')}, {how}")


def _parse(raw: bytes):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, too many digits, nesting
        raise _Bad("not valid JSON") from None


def _check_header(header) -> dict:
    if type(header) is not dict or header.get("format") != FORMAT:
        raise RunLogError("not a kerasqt run log")
    version = header.get("version")
    if type(version) is not int or version < 1:
        raise RunLogError("not a kerasqt run log (no valid format version)")
    if version > VERSION:
        raise RunLogError(f"written by a newer kerasqt (run log format version {version}; "
                          f"this kerasqt reads up to {VERSION})")
    if type(header.get("kind")) is not str or header["kind"] not in _KINDS:
        raise RunLogError(f"unknown kind of run {_short(header.get('kind'))}")
    smoothing = header.get("smoothing", 0.9)
    if type(smoothing) not in (int, float) or not 0 <= smoothing < 1:
        raise RunLogError(f"bad smoothing in the header: {_short(smoothing)}")
    for key in ("title",):
        if key in header and type(header[key]) is not str:
            raise RunLogError(f"bad {key} in the header: {_short(header[key])}")
    return header


def read_run(path: str | os.PathLike) -> RunLog:
    """Read and check a run log; raises :class:`RunLogError` with a one-line reason for a bad file
    (its path, then what is wrong).

    A last line without its newline that does not parse (the writer was killed
    mid-line) is skipped and sets ``truncated``; any other bad line is an error.
    """
    try:
        return _read_run(Path(path))
    except RunLogError as exc:
        raise RunLogError(f"{path}: {exc}") from None


def _read_run(path: Path) -> RunLog:
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise RunLogError("no such file") from None
    except IsADirectoryError:
        raise RunLogError("a folder, not a run log") from None
    except OSError as exc:
        raise RunLogError(exc.strerror or str(exc)) from None
    with fh:
        first = fh.readline(MAX_LINE + 1)
        if not first:
            raise RunLogError("the file is empty")
        if len(first) > MAX_LINE:
            raise RunLogError("not a kerasqt run log")
        try:
            header = _check_header(_parse(first))
        except _Bad:
            raise RunLogError("not a kerasqt run log (the first line is not JSON)") from None
        allowed = _KINDS[header["kind"]]
        records: list = []
        truncated = False
        skipped = 0
        n = 1
        while raw := fh.readline(MAX_LINE + 1):
            n += 1
            if len(raw) > MAX_LINE:
                raise RunLogError(f"line {n} is longer than {MAX_LINE // 2**20} MiB")
            if not raw.strip():
                continue
            try:
                obj = _parse(raw)
            except _Bad:
                if not raw.endswith(b"\n") and not fh.read(1):
                    truncated = True  # the last line, cut short
                    break
                raise RunLogError(f"line {n} is not valid JSON") from None
            try:
                rec = _decode(obj)
            except _Bad as exc:
                raise RunLogError(f"line {n}: {exc}") from None
            if rec is None:
                skipped += 1
                continue
            if type(obj["type"]) is str and obj["type"] not in allowed:
                raise RunLogError(f"line {n}: a {obj['type']} event in a {header['kind']} run log")
            records.append(rec)
    return RunLog(path, header, records, truncated, skipped)


# -- one line at a time (a follower of a log that is still being written: kerasqt.follow) ----------
def check_header(obj) -> dict:
    """The header of a run log, checked: ``obj`` is its first line, parsed, or that line's bytes.
    Raises :class:`RunLogError` with a one-line reason."""
    if isinstance(obj, (bytes, bytearray)):
        if len(obj) > MAX_LINE:
            raise RunLogError("not a kerasqt run log")
        try:
            obj = _parse(bytes(obj))
        except _Bad:
            raise RunLogError("not a kerasqt run log (the first line is not JSON)") from None
    return _check_header(obj)


def decode_line(raw: bytes, kind: str = "training") -> tuple[float | None, object] | None:
    """(time, event) of one complete event line of a ``kind`` run log, checked as :func:`read_run`
    checks it; None for a blank line or an event type this version does not know. Raises
    :class:`RunLogError` with a one-line reason for a bad line."""
    if len(raw) > MAX_LINE:
        raise RunLogError(f"a line longer than {MAX_LINE // 2**20} MiB")
    if not raw.strip():
        return None
    try:
        obj = _parse(raw)
        rec = _decode(obj)
    except _Bad as exc:
        raise RunLogError(str(exc)) from None
    if rec is not None and obj["type"] not in _KINDS.get(kind, ()):
        raise RunLogError(f"a {obj['type']} event in a {kind} run log")
    return rec
