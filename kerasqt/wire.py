"""The wire of a served run, both ends' shared parts (no Qt, no Keras; pure, any thread): addresses,
the control token, the control lines a viewer sends and the answer lines it gets back.

The protocol is described in :mod:`kerasqt.net`.
"""

from __future__ import annotations

import json
import os
import secrets

__all__ = ["ANSWER_PREFIX", "CONTROL_BYTES", "ENV_TOKEN", "MAX_REFUSED", "answer_line", "check_token", "control_line",
           "env_token", "join_address", "local_address", "new_token", "parse_address", "read_answer", "read_control",
           "token_matches", "viewer_address"]

ENV_TOKEN = "KERASQT_TOKEN"
CONTROL_BYTES = 4096  # the longest control line a server reads; a longer one drops its viewer
MAX_REFUSED = 3  # controls refused for their token on one connection before the server drops it
ANSWER_PREFIX = b'{"answer":'  # how an answer line begins (a header begins {"format":, an event {"type":)
_TEXT = 300  # an answer's text is cut to this many characters


# -- addresses ----------------------------------------------------------------------------------------
def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``"HOST:PORT"`` (``"[::1]:8765"`` for IPv6; an empty host is 127.0.0.1).
    Raises ValueError with a one-line reason."""
    host, sep, port = str(address).strip().rpartition(":")
    if not sep:
        raise ValueError(f"not HOST:PORT: {address!r} (e.g. 127.0.0.1:8765)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address goes in brackets: [{host}]:{port}")
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"not a port number (0 to 65535): {port!r} in {address!r}")
    return host or "127.0.0.1", int(port)


def viewer_address(address: str) -> tuple[str, int]:
    """:func:`parse_address` for a viewer, which needs the server's port (not 0)."""
    host, port = parse_address(address)
    if not port:
        raise ValueError(f"a viewer needs the server's port: {address!r}")
    return host, port


def join_address(host: str, port: int) -> str:
    """``"host:port"`` (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_address(address: str) -> str:
    """Where a viewer on this machine reaches a server bound at ``address``: a wildcard host (every
    interface) is reached on loopback."""
    host, port = parse_address(address)
    return join_address({"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host), port)


# -- the token ----------------------------------------------------------------------------------------
def new_token() -> str:
    """A fresh control token: 128 random bits, URL-safe text (22 characters)."""
    return secrets.token_urlsafe(16)


def check_token(token, where: str = "the control token") -> str:
    """``token`` if it can be one: 8 to 256 printable ASCII characters, no spaces. ValueError (one line)."""
    if not isinstance(token, str) or not 8 <= len(token) <= 256 or not all("!" <= c <= "~" for c in token):
        raise ValueError(f"{where} must be 8 to 256 printable ASCII characters without spaces")
    return token


def env_token() -> str | None:
    """``$KERASQT_TOKEN``, checked (ValueError naming the variable); None when unset or empty."""
    token = os.environ.get(ENV_TOKEN) or None
    return None if token is None else check_token(token, f"${ENV_TOKEN}")


def token_matches(given, token: str) -> bool:
    """Whether ``given`` (what a viewer sent) is ``token``, compared in constant time."""
    if not isinstance(given, str):
        return False
    return secrets.compare_digest(given.encode("utf-8", "replace"), token.encode())


# -- control lines (viewer to server) ----------------------------------------------------------------------
def control_line(action: str, args: dict, token: str, ident: int) -> bytes:
    """The line a viewer sends for a control (``\\n``-terminated)."""
    line = json.dumps({"control": action, "args": args, "token": token, "id": ident}, separators=(",", ":"),
                      allow_nan=False)
    return line.encode() + b"\n"


def read_control(raw: bytes) -> tuple[int | None, object, dict, object]:
    """``(id, action, args, token)`` of a control line, as sent; what is checked here is only that it
    is one (a JSON object with a ``control``; ``args`` an object; ``id`` a whole number, if there).
    The action, its arguments and the token are the server's to judge. ValueError (one line)."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if type(obj) is not dict or "control" not in obj:
        raise ValueError("not a control (a JSON object with 'control')")
    args, ident = obj.get("args"), obj.get("id")
    if args is not None and type(args) is not dict:
        raise ValueError("'args' is not an object")
    if ident is not None and (type(ident) is not int or not 0 <= ident < 2**53):
        raise ValueError("'id' is not a whole number")
    return ident, obj["control"], args or {}, obj.get("token")


# -- answer lines (server to the asking viewer) ----------------------------------------------------------
def _one_line(text) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _TEXT else text[:_TEXT - 3] + "..."


def answer_line(ident: int | None, action, ok: bool, text: str, token: bool) -> str:
    """The answer to one control line, without its ``\\n``: ``ok`` whether it was taken, ``text`` one line
    for the viewer's control pane, ``token`` whether the token was taken."""
    action = action if isinstance(action, str) and action.isidentifier() and len(action) <= 20 else None
    return json.dumps({"answer": {"id": ident, "control": action, "ok": bool(ok), "text": _one_line(text),
                                  "token": bool(token)}}, separators=(",", ":"), ensure_ascii=True)


def read_answer(raw: bytes) -> dict:
    """The answer of an answer line, checked: ``id`` (int or None), ``control`` (str or None), ``ok``,
    ``token`` (bools), ``text`` (one line). ValueError (one line)."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("an answer line that is not JSON") from None
    ans = obj.get("answer") if type(obj) is dict else None
    if (type(ans) is not dict or type(ans.get("ok")) is not bool or type(ans.get("token")) is not bool
            or type(ans.get("text")) is not str or type(ans.get("id")) not in (int, type(None))
            or type(ans.get("control")) not in (str, type(None))):
        raise ValueError("a bad answer line")
    return {"id": ans["id"], "control": ans["control"], "ok": ans["ok"], "token": ans["token"],
            "text": _one_line(ans["text"])}
