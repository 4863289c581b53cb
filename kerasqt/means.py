"""Which logged metrics are running means, and what they counted (training thread; the Keras side).

Keras 3 logs, after each batch, every metric's value since the epoch began. For the loss and
each ``keras.metrics.Mean`` whose value is ``total / count`` (``MeanMetricWrapper``: accuracies,
MSE, MAE, crossentropies...), the count after each batch gives back that batch's own value
(:mod:`kerasqt.perbatch`, in the receiver). :class:`BatchWeights` decides, at a run's first batch
(Keras builds its compiled metrics in the first step), from the compiled metric objects and not
from their names, which logged metrics are such means, puts that into the run's queue as a
:class:`~kerasqt.events.MeansEvent`, and then reads the counts after each batch:

* TensorFlow: one variable read per distinct count, a few microseconds each: the loss
  tracker's (it counts samples; Keras' per-output loss trackers count the same), and one per
  list of compiled metrics (one output's ``metrics`` or ``weighted_metrics``: Keras' own metrics
  of a list count the same samples, weights and masks), and one for each other ``Mean``;
* JAX (its variables are synced only at epoch ends; a read per batch would wait on the device)
  and PyTorch (batch hooks run on a thread pool, after the next step may have begun): no
  counts can be read when the batch ends. Each logged point is then taken to weigh the same
  (its count: the batches so far in the epoch). That is exact for the loss and unweighted
  metrics of full batches; an epoch's short last batch comes out pulled toward the running
  mean (by about its share of a full batch), and sample-weighted metrics are approximate.

Metrics that are not means (AUC, precision, recall, F-scores, IoU, R², ``RootMeanSquaredError``)
keep their running value. A metric this cannot find among the model's is shown as logged, and so
is a mean whose result is not what was logged under its name (a custom ``train_step``; checked
where the variables can be read, else only Keras' own ``train_step`` is trusted).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace

from .events import MeansEvent

__all__ = ["BatchWeights", "classify"]


class BatchWeights:
    """A run's counts: :meth:`first` until it says ``done``, then :meth:`read` after each batch
    (both on the training thread, or Keras' pool threads)."""

    def __init__(self) -> None:
        self.done = False
        self.read = _no_counts  # batch index in its epoch (capped) -> the counts to queue, or None
        self._lock = threading.Lock()
        self._told: MeansEvent | None = None
        self._metrics: dict = {}  # name -> the Mean told to be logged under it (checked once more)

    def first(self, model, logs, step: int, batch: int, put) -> None:
        """At the run's first batch, decide which of ``logs``' metrics are means and queue it (before
        the batch); :meth:`read` then gives the counts. Anything unexpected: no counts, the run
        shown as logged. Where the variables can be read, check the means once more at the first
        batch past an epoch's first (at its first, a mean is the one value it took, whatever a
        custom ``train_step`` logs), and queue the means again without those that failed."""
        with self._lock:
            if self.done:
                return
            if self._told is None:
                self._classify(model, logs, step, put)
            elif batch >= 1:
                self.done = True
                try:
                    wrong = [name for name, metric in self._metrics.items()
                             if not _logs_its_mean(metric, logs.get(name))]
                except Exception:  # logs that are no mapping: nothing can be checked
                    wrong = list(self._metrics)
                if wrong:
                    told = self._told
                    put(replace(told, step=step, time=time.time(),
                                means={k: j for k, j in told.means.items() if k not in wrong}))
                self._metrics = {}

    def _classify(self, model, logs, step: int, put) -> None:
        self.done = True  # (unless the means are to be checked again)
        try:
            logs = dict(logs or {})
            readable = _readable(model)
            if readable:  # the variables hold this batch's state: a mean must give what was logged
                check = _logs_its_mean
            else:  # none to look at: only Keras' own steps log what the metrics give
                check = None if _keras_steps(model) else (lambda metric, value: False)
            means, weights, running, variables, metrics = classify(model, logs, check)
            read = _no_counts
            if means and not readable:  # nothing to read from: each batch weighs the same
                means, weights = dict.fromkeys(means, 0), ("batches",)
                read = _batches
            elif means:
                read = _reader(variables)
            read(0)  # (one read now: a reader that fails is found here, not per batch)
            execution = int(getattr(model, "steps_per_execution", 1) or 1)
        except Exception:
            return
        self._told = MeansEvent(step, time.time(), means, weights, running, max(execution, 1))
        put(self._told)
        self.read = read
        if readable and means:
            self._metrics = {name: metrics[name] for name in means}
            self.done = False


def _no_counts(batch: int) -> None:
    return None


def _batches(batch: int) -> tuple[float]:
    return (float(batch + 1),)


def classify(model, logs, check=None) -> tuple[dict[str, int], tuple[str, ...], tuple[str, ...], list, dict]:
    """Of the metrics in ``logs`` (a batch's): the means (name -> index of its count), what each
    count is (``samples``, ``weights``, ``count``), the metrics that are not means, the variables
    holding the counts (Keras ``Variable`` objects), in the order of the counts, and the metric
    objects of the means (name -> metric).

    ``check(metric, value)``: whether a mean found under a logged name is what was logged (a
    custom ``train_step`` may log something else under a metric's name); one that is not, like a
    name not found, is neither a mean nor said not to be one."""
    from keras.metrics import Mean

    def is_mean(m) -> bool:
        return isinstance(m, Mean) and type(m).result is Mean.result and getattr(m, "count", None) is not None

    found = dict(_named_metrics(model))  # name -> (metric, how its count is shared); later ones win
    groups: dict[object, int] = {}
    weights: list[str] = []
    variables: list = []
    means: dict[str, int] = {}
    metrics: dict = {}
    running: list[str] = []
    samples = getattr(model, "_loss_tracker", None)
    for name in logs:
        if name not in found:
            continue
        metric, share, kind = found[name]
        if not is_mean(metric):
            running.append(name)
            continue
        if check is not None and not check(metric, logs[name]):
            continue
        if share is None or (share == "samples" and not is_mean(samples)):
            share = id(metric)  # its own count
        if share not in groups:
            groups[share] = len(weights)
            weights.append(kind)
            variables.append(samples.count if share == "samples" else metric.count)
        means[name] = groups[share]
        metrics[name] = metric
    return means, tuple(weights), tuple(running), variables, metrics


def _named_metrics(model):
    """``(logged name, (metric, share, kind))`` for the model's metrics, named as Keras' logs name
    them (``Trainer.get_metrics_result``). ``share``: a key for the metrics that count the same
    (None: its own); ``kind``: what its count is."""
    loss = getattr(model, "_loss_tracker", None)
    compile_loss = getattr(model, "_compile_loss", None)
    per_output = {id(m) for m in getattr(compile_loss, "metrics", None) or ()}
    for m in model.metrics:
        if hasattr(m, "_flat_metrics") and hasattr(m, "_flat_weighted_metrics"):  # the compiled metrics
            yield from _compiled(m, _unmasked(model))
        elif m is loss or id(m) in per_output:
            yield m.name, (m, "samples", "samples")
        else:
            yield m.name, (m, None, "count")


def _unmasked(model) -> bool:
    """Whether the model's outputs are known (a functional or Sequential model) and none has a mask."""
    try:
        outputs = list(model.outputs or ())
    except Exception:  # a subclassed model: its outputs are not known before it runs
        return False
    return bool(outputs) and all(getattr(t, "_keras_mask", None) is None for t in outputs)


def _compiled(container, unmasked: bool):
    """The compiled metrics' names as ``CompileMetrics.result`` gives them (its rules for names
    that clash, kept to the letter), with the list of each: Keras' own metrics of one list (one
    output; ``metrics`` or ``weighted_metrics``) see the same samples, weights and masks; those of
    the ``metrics`` lists of a model without masks count its samples, as its loss tracker does."""
    if not getattr(container, "built", False):
        return
    unique: dict[str, int] = {}
    for weighted, lists in ((False, container._flat_metrics), (True, container._flat_weighted_metrics)):
        for mls in lists or ():
            if not mls:
                continue
            prefix = f"{mls.output_name}_" if mls.output_name else ""
            for m in mls.metrics:
                name = prefix + m.name
                if name not in unique:
                    unique[name] = 1
                elif not weighted:
                    index = unique[name]
                    unique[name] += 1
                    name = f"{name}_{index}"
                else:
                    name = f"{prefix}weighted_{m.name}"
                    if name not in unique:
                        unique[name] = 1
                    else:
                        index = unique[name]
                        unique[name] += 1
                        name = f"{name}_{index}"
                share = None
                if _keras_own(m):
                    share = "samples" if unmasked and not weighted else (id(mls), weighted)
                yield name, (m, share, "weights" if weighted else "samples")


def _keras_own(metric) -> bool:
    """Whether ``metric`` is Keras' own (a user's function may count one per batch, not per sample)."""
    fn = getattr(metric, "_fn", None)
    return all((getattr(o, "__module__", "") or "").startswith("keras.") for o in (type(metric), fn) if o is not None)


def _readable(model) -> bool:
    """Whether the metrics' variables can be read when a batch ends (not on JAX or PyTorch: see the
    module's docstring; nor under a ``tf.distribute`` strategy of several replicas, where reading
    one is a collective every worker must join, and only the chief's monitor reads)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    strategy = getattr(model, "distribute_strategy", None)
    try:
        return strategy is None or int(strategy.num_replicas_in_sync) <= 1
    except Exception:
        return False


def _keras_steps(model) -> bool:
    """Whether the model trains with Keras' own ``train_step`` and ``compute_metrics``: its logs are
    then its metrics' results."""
    return all((getattr(getattr(type(model), name, None), "__module__", "") or "").startswith("keras.")
               for name in ("train_step", "compute_metrics"))


def _logs_its_mean(metric, value) -> bool:
    """Whether a Mean's result now (the batch just ended) is the ``value`` logged for it."""
    try:
        result = float(metric.result())
        value = float(value)
    except Exception:
        return False
    return math.isclose(result, value, rel_tol=1e-6, abs_tol=1e-30) or (math.isnan(result) and math.isnan(value))


def _reader(variables: list):
    """A function of the batch index that reads the counts (TensorFlow) as a tuple of floats."""
    try:  # the fast way: one read op per variable (about 5 µs, a float() of it about 8)
        from tensorflow.python.ops.gen_resource_variable_ops import read_variable_op
        from tensorflow.python.ops.resource_variable_ops import BaseResourceVariable

        handles = []
        for v in variables:
            tf_var = v.value
            if not isinstance(tf_var, BaseResourceVariable):  # a distributed one: its own read
                raise TypeError
            handles.append((tf_var.handle, tf_var.dtype))

        def read(batch: int) -> tuple[float, ...]:
            return tuple([float(read_variable_op(h, d)) for h, d in handles])

        read(0)
        return read
    except Exception:
        def read_slowly(batch: int) -> tuple[float, ...]:
            return tuple([float(v.value) for v in variables])

        return read_slowly
