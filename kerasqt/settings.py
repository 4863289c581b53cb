"""A run's settings in its run log's header: what was trained, and how (pure: no Qt, no Keras import).

At a run's start (the training thread, once: :meth:`~kerasqt.recorder.RunRecorder.open`),
:func:`run_settings` reads them from the model and the fit's params, each one guarded (a
model that is not built has no parameter count; an optimizer of its own kind may have no
config): ``settings`` holds ``optimizer`` (its class name), ``learning_rate`` (a number, or the
class name of the schedule that drives it), ``batch_size`` (when known), ``epochs``,
``params`` (the number of parameters) and ``model`` (its name); ``tags`` are the user's own
(``QtMonitor(tags={"dropout": 0.3})``): names to JSON scalars, checked by :func:`check_tags`.

Reading them back (:func:`header_settings`) trusts nothing: a log from elsewhere may hold
anything in its header, and old logs hold none of it.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["SETTINGS", "check_tags", "describe_settings", "header_settings", "run_settings"]

SETTINGS = ("model", "optimizer", "learning_rate", "batch_size", "epochs", "params")  # in the order shown
MAX_TAGS = 64
MAX_TEXT = 200  # characters of a tag's name or text value


def _scalar(value):
    """``value`` as a JSON scalar (numpy's numbers as Python's), or raise ValueError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a numpy scalar of another kind
        return _scalar(value.item())
    raise ValueError(f"a {type(value).__name__}, not a string, number, true/false or None")


def check_tags(tags) -> dict:
    """``tags`` (None or a dict of names to strings, numbers, booleans or None) as a plain dict;
    anything else is refused with a one-line ValueError."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ValueError(f"tags must be a dict of names to strings, numbers, true/false or None, got "
                         f"{type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"tags: at most {MAX_TAGS} of them, got {len(tags)}")
    out = {}
    for name, value in tags.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_TEXT:
            raise ValueError(f"tags: each name must be a non-empty string of at most {MAX_TEXT} characters, "
                             f"got {_short(name)}")
        try:
            value = _scalar(value)
        except ValueError as exc:
            raise ValueError(f"tags: the value of {name!r} must be a string, a finite number, true/false "
                             f"or None: {_short(value)} is {exc}") from None
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise ValueError(f"tags: the value of {name!r} is longer than {MAX_TEXT} characters")
        out[name] = value
    return out


def _short(value) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def run_settings(model, params: dict | None, batch_size: int | None, tags: dict | None) -> dict:
    """The header keys of a run: ``{"settings": {...}, "tags": {...}}`` (training thread, at its
    start). Whatever cannot be read is left out; this never raises."""
    settings: dict = {}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        settings["optimizer"] = type(optimizer).__name__
        rate = _learning_rate(optimizer)
        if rate is not None:
            settings["learning_rate"] = rate
    if batch_size is not None:
        settings["batch_size"] = batch_size
    epochs = (params or {}).get("epochs")
    if isinstance(epochs, int) and not isinstance(epochs, bool):
        settings["epochs"] = epochs
    try:
        count = int(model.count_params())  # raises for a model that is not built
    except Exception:
        count = None
    if count is not None:
        settings["params"] = count
    name = getattr(model, "name", None)
    if isinstance(name, str):
        settings["model"] = name
    out: dict = {"settings": settings}
    try:
        tags = check_tags(tags)
    except ValueError:  # (set on the monitor after it checked them): the run goes on without them
        tags = {}
    if tags:
        out["tags"] = tags
    return out


def _learning_rate(optimizer):
    """The optimizer's learning rate as a number, or the class name of the schedule driving it."""
    try:
        rate = optimizer.get_config().get("learning_rate")
    except Exception:
        rate = None
    if isinstance(rate, dict):  # a serialized LearningRateSchedule
        name = rate.get("class_name")
        return name if isinstance(name, str) else "schedule"
    if isinstance(rate, numbers.Real) and not isinstance(rate, bool) and math.isfinite(float(rate)):
        return float(rate)
    if callable(rate):
        return getattr(rate, "__name__", None) or type(rate).__name__
    try:
        value = float(optimizer.learning_rate)
    except Exception:
        return None
    return value if math.isfinite(value) else None


def header_settings(header: dict) -> tuple[dict, dict]:
    """``(settings, tags)`` of a run log's header, each only the entries that are JSON scalars
    (strings cut to :data:`MAX_TEXT`); empty for a log without them."""
    return _scalars(header.get("settings")), _scalars(header.get("tags"))


def _scalars(obj) -> dict:
    if type(obj) is not dict:
        return {}
    out = {}
    for key, value in list(obj.items())[:MAX_TAGS]:
        if type(key) is not str:
            continue
        if type(value) is str:
            out[key[:MAX_TEXT]] = value[:MAX_TEXT]
        elif value is None or type(value) in (bool, int) or (type(value) is float and math.isfinite(value)):
            out[key[:MAX_TEXT]] = value
    return out


def describe_settings(settings: dict, tags: dict) -> list[str]:
    """Lines for a person: ``optimizer Adam, learning rate 0.001``, ``batch size 32``, ..., then the
    tags, ``dropout = 0.3``."""
    lines = []
    if "model" in settings:
        lines.append(f"model {settings['model']}")
    if "optimizer" in settings or "learning_rate" in settings:
        parts = []
        if "optimizer" in settings:
            parts.append(f"optimizer {settings['optimizer']}")
        if "learning_rate" in settings:
            parts.append(f"learning rate {_value(settings['learning_rate'])}")
        lines.append(", ".join(parts))
    for key, label in (("batch_size", "batch size"), ("epochs", "epochs")):
        if key in settings:
            lines.append(f"{label} {settings[key]}")
    if "params" in settings:
        lines.append(f"{_value(settings['params'])} parameters")
    lines += [f"{name} = {_value(value)}" for name, value in tags.items()]
    return lines


def _value(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
