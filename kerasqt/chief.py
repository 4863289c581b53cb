"""Which process of a multi-worker training this is (no Qt; imports no framework itself).

In multi-worker training (``keras.distribution`` on JAX, ``tf.distribute`` multi-worker
strategies, torch ``DistributedDataParallel``) every process runs the same script, so every
process would open a window, write a run log and serve its stream. By default only the chief
(process index 0) does; the others train unwatched and silent.

:func:`process_index` asks, in order: torch (when ``torch.distributed`` is imported and
initialized), JAX (``jax.process_index()``, when JAX's distributed runtime is initialized or
Keras runs on JAX), TensorFlow's ``TF_CONFIG`` (a ``chief`` task is the chief; without one,
``worker`` 0), then the ``RANK`` environment variable that launchers such as ``torchrun`` set.
Without any of them: 0.

JAX being imported says nothing: TensorFlow imports it whenever it is installed. Asked then,
``jax.process_index()`` is 0 in every worker of a ``tf.distribute`` training (each would take
itself for the chief), and it starts a JAX backend in a process that trains with another
framework (on a GPU, that backend takes most of its memory).
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["is_chief", "process_index"]


def process_index() -> int:
    """This process' index in a multi-worker training (0: the chief, or a single process)."""
    torch_dist = sys.modules.get("torch.distributed")
    if torch_dist is not None:
        try:
            if torch_dist.is_available() and torch_dist.is_initialized():
                return int(torch_dist.get_rank())
        except Exception:  # a half-initialised process group: fall through
            pass
    jax = sys.modules.get("jax")
    if jax is not None and _jax_trains(jax):
        try:
            return int(jax.process_index())
        except Exception:
            pass
    index = _tf_config_index(os.environ.get("TF_CONFIG"))
    if index is not None:
        return index
    rank = os.environ.get("RANK", "").strip()
    return int(rank) if rank.isdigit() else 0


def is_chief() -> bool:
    return process_index() == 0


def _jax_trains(jax) -> bool:
    """Whether JAX is this process' training framework: its distributed runtime is initialized
    (``jax.distributed.initialize``, ``keras.distribution.initialize``), or Keras runs on it.
    Neither question starts a JAX backend."""
    try:
        if jax.distributed.is_initialized():
            return True
    except Exception:  # an older JAX without is_initialized: Keras' backend decides
        pass
    keras = sys.modules.get("keras")
    try:
        return keras is not None and keras.backend.backend() == "jax"
    except Exception:
        return False


def _tf_config_index(text: str | None) -> int | None:
    """0 for TF_CONFIG's chief, 1 + its index for any other task when a chief exists, its index
    among the workers when none does; None without a (readable) TF_CONFIG."""
    if not text:
        return None
    try:
        config = json.loads(text)
        task = config.get("task") or {}
        kind, index = task.get("type"), int(task.get("index", 0))
        has_chief = bool((config.get("cluster") or {}).get("chief"))
    except (ValueError, TypeError, AttributeError):
        return None
    if kind == "chief":
        return 0
    if kind == "worker":
        return index + 1 if has_chief else index
    return 1 + index  # parameter servers, evaluators: never the chief
