"""Steering a run from the window or from code: stop now or after the epoch, save a checkpoint now,
set the learning rate; and what an ``EarlyStopping`` callback is doing (no Qt here).

A control is asked for from any thread (a button in the window, a viewer over the network, the
user's code) and applied by the training thread between batches, in ``on_train_batch_begin``
(Keras calls it synchronously on every backend, before the step). Asking never blocks: the
request goes into an inbox; the training thread finds it at its next batch. Each control gives a
:class:`~kerasqt.events.ControlEvent` into the run's events (so the run log, the window and
viewers see it). A control asked for when no run is going is refused (:class:`ControlError`), not
kept for the next run. A checkpoint that cannot be written, or a learning rate Keras refuses, is
a ``ControlEvent`` with ``ok=False`` and training goes on.

Controls (``action``, with its arguments):

* ``stop``: stop after the current batch (``model.stop_training``);
* ``stop_epoch``: stop at the end of the current epoch;
* ``save``: the weights (``.weights.h5``; ``whole=True``: the model, ``.keras``) saved next to the
  run log (the working directory without one), named by run and step;
* ``lr``: the optimizer's learning rate set to ``value``, or multiplied by ``factor``. Off for an
  optimizer driven by a ``LearningRateSchedule`` (Keras cannot set it): :func:`lr_fixed` says why.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from pathlib import Path

from .events import ControlEvent, PatienceEvent

__all__ = ["ACTIONS", "ControlError", "Patience", "Steering", "check_control", "lr_fixed"]

ACTIONS = ("stop", "stop_epoch", "save", "lr")
_ARGS = {"stop": (), "stop_epoch": (), "save": ("whole",), "lr": ("value", "factor")}


class ControlError(ValueError):
    """A control that cannot be taken; the message is one line for the user."""


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ControlError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_control(action, args: dict | None = None) -> tuple[str, dict]:
    """``(action, args)`` checked: a known action with only its own arguments, of the right types
    (a control from the network goes through here too). Raises :class:`ControlError`."""
    args = dict(args or {})
    if action not in ACTIONS:
        raise ControlError(f"unknown control {action!r}: one of {', '.join(ACTIONS)}")
    extra = set(args) - set(_ARGS[action])
    if extra:
        raise ControlError(f"control {action!r} takes no {', '.join(sorted(map(str, extra)))}")
    if action == "save":
        whole = args.get("whole", False)
        if not isinstance(whole, bool):
            raise ControlError(f"save: whole must be true or false, got {whole!r}")
        return action, {"whole": whole}
    if action == "lr":
        value, factor = args.get("value"), args.get("factor")
        if (value is None) == (factor is None):
            raise ControlError("lr: give either a new value or a factor")
        if value is not None:
            return action, {"value": _positive("the learning rate", value)}
        return action, {"factor": _positive("the learning rate factor", factor)}
    return action, {}


def lr_fixed(model) -> str:
    """Why the learning rate of ``model``'s optimizer cannot be set from the window ("": it can)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return "the model has no optimizer"
    while getattr(optimizer, "inner_optimizer", None) is not None:  # a LossScaleOptimizer (mixed precision)
        optimizer = optimizer.inner_optimizer
    try:
        lr = optimizer.get_config().get("learning_rate")
    except Exception:
        return ""  # (an optimizer that cannot say: a rate it refuses is said when it is set)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        return ("the optimizer's learning rate follows a schedule (a LearningRateSchedule or a function): "
                "Keras cannot set it")
    return ""


class Steering:
    """The controls of one monitor's runs: the inbox (any thread) and how they are applied (training thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inbox: collections.deque = collections.deque()
        self._put = None  # the current run's queue put; None between runs (controls refused)
        self._stop_epoch = False
        self.step = 0  # the last step begun (training thread)
        self.name = "run"  # for checkpoint files: the run log's stem
        self.folder: Path | None = None  # where checkpoints go (the run log's folder)
        self.lr_fixed = ""

    # -- any thread ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._put is not None

    def ask(self, action, args: dict | None = None, *, model=None) -> str:
        """Take a control for the run going on; returns what will happen, in a few words. Raises
        :class:`ControlError` for a bad one, or when no run is going."""
        action, args = check_control(action, args)
        with self._lock:
            put = self._put
            if put is None:
                raise ControlError(f"no run is going: control {action!r} refused (it is not kept for the next run)")
            if action == "lr" and self.lr_fixed:
                raise ControlError(f"the learning rate cannot be set: {self.lr_fixed}")
            if action == "stop":  # at once: Keras reads the flag after the batch running now
                if model is not None:
                    model.stop_training = True
                self._say(put, "stop", "stop after this batch: asked")
                return "training stops after this batch"
            if action == "stop_epoch":
                self._stop_epoch = True
                self._say(put, "stop_epoch", "stop after this epoch: asked")
                return "training stops at the end of this epoch"
            self._inbox.append((action, args))
        return f"{'a checkpoint is saved' if action == 'save' else 'the learning rate is set'} at the next batch"

    def _say(self, put, action: str, text: str, ok: bool = True, value=None, path: str = "") -> None:
        put(ControlEvent(self.step, time.time(), action, text, ok, value, path))

    # -- training thread ----------------------------------------------------------------------------
    def begin(self, put, model, name: str | None, folder) -> None:
        """A run begins: controls are taken for it from now on."""
        with self._lock:
            self._inbox.clear()
            self._stop_epoch = False
            self.step = 0
            self.name = name or "run"
            self.folder = Path(folder) if folder is not None else None
            self.lr_fixed = lr_fixed(model)
            self._put = put

    def end(self) -> None:
        """The run is over: what was asked and not applied yet is refused (said), nothing is kept."""
        with self._lock:
            put, self._put = self._put, None
            pending = list(self._inbox)
            self._inbox.clear()
        for action, _ in pending:
            if put is not None:
                self._say(put, action, f"{action}: not applied, the run ended first", ok=False)

    def batch_begin(self, model, step: int) -> bool:
        """Between batches: apply what was asked (cheap when nothing was). True when the learning
        rate was set (the caller reads it again: the next batches carry the new one)."""
        self.step = step
        if not self._inbox:
            return False
        with self._lock:
            todo = list(self._inbox)
            self._inbox.clear()
            put = self._put
        if put is None:
            return False
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:  # JAX: the variables hold the training state only after a sync
            sync()
        lr = False
        for action, args in todo:
            if action == "save":
                self._save(put, model, args["whole"])
            else:
                lr = self._set_lr(put, model, args) or lr
        return lr

    def epoch_end(self, model, step: int) -> None:
        """After an epoch (``step``: the batches run so far): stop here if asked to."""
        self.step = step
        if self._stop_epoch and model is not None:
            self._stop_epoch = False
            model.stop_training = True
            if self._put is not None:
                self._say(self._put, "stop_epoch", "stopped after this epoch, as asked")

    def _save(self, put, model, whole: bool) -> None:
        folder = self.folder if self.folder is not None else Path.cwd()
        path = folder / f"{self.name}-step{self.step}{'.keras' if whole else '.weights.h5'}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if whole:
                model.save(path)
            else:
                model.save_weights(path)
        except Exception as exc:  # a folder that cannot be written, a model Keras cannot save: said, training goes on
            text = " ".join(str(exc).split())[:300] or type(exc).__name__
            self._say(put, "save", f"checkpoint not saved ({path}): {text}", ok=False, path=str(path))
            return
        self._say(put, "save", f"checkpoint saved at step {self.step}: {path}", path=str(path))

    def _set_lr(self, put, model, args: dict) -> bool:
        optimizer = model.optimizer
        try:
            old = float(optimizer.learning_rate)
            new = args["value"] if "value" in args else old * args["factor"]
            if not (math.isfinite(new) and new > 0):
                raise ValueError(f"{old:.4g} x {args['factor']:g} is not a positive finite number")
            optimizer.learning_rate = new
            now = float(optimizer.learning_rate)
        except Exception as exc:
            text = " ".join(str(exc).split())[:300] or type(exc).__name__
            self._say(put, "lr", f"learning rate not set: {text}", ok=False)
            return False
        self._say(put, "lr", f"learning rate {old:.4g} -> {now:.4g} from step {self.step + 1}", value=now)
        return True


class Patience:
    """Reads an ``EarlyStopping`` callback's public state after each epoch (training thread).

    Its ``on_epoch_end`` may run before or after the monitor's, so the state of epoch ``e`` is read
    at the next hook after every callback's ``on_epoch_end(e)``: the next ``on_epoch_begin``, or
    ``on_train_end``."""

    def __init__(self, early_stopping) -> None:
        for name in ("monitor", "patience"):
            if not hasattr(early_stopping, name):
                raise ValueError(f"early_stopping must be a keras.callbacks.EarlyStopping, got {early_stopping!r}")
        self.es = early_stopping
        self._pending: tuple[int, int] | None = None  # (epoch, step) ended and not read yet
        self._last = (0, 0)  # the last epoch ended, and its step

    def begin(self) -> None:
        self._pending, self._last = None, (0, 0)

    def epoch_ended(self, epoch: int, step: int) -> None:
        self._pending = self._last = (epoch, step)

    def read(self, put, *, end: bool = False) -> None:
        """The state of the epoch that ended last, if not read yet; at the run's end, also which
        epoch's weights it restores."""
        pending, self._pending = self._pending, None
        es = self.es
        restored = None
        if end and getattr(es, "restore_best_weights", False) and getattr(es, "best_weights", None) is not None:
            restored = int(getattr(es, "best_epoch", 0))
        if put is None or (pending is None and restored is None):
            return
        epoch, step = pending if pending is not None else self._last
        best = getattr(es, "best", None)
        try:
            best = None if best is None else float(best)
        except (TypeError, ValueError):
            best = None
        if best is not None and not math.isfinite(best):
            best = None
        put(PatienceEvent(step, epoch, time.time(), str(es.monitor), int(getattr(es, "wait", 0)), int(es.patience),
                          None if best is None else int(getattr(es, "best_epoch", 0)), best, restored))
