"""Export the metrics a window holds as CSV (pure: reads the plot's numpy tables)."""

from __future__ import annotations

import csv

import numpy as np

from .history import EpochTable

__all__ = ["write_csv"]


def write_csv(plot, path: str) -> str:
    """Write one row per batch, epoch and test pass: ``kind, step, epoch, <metrics...>``, and an
    ``lr`` row (its ``learning rate`` column) where the learning rate changed and at each epoch's end.

    Batch rows carry raw values (smoothed ones end in ``~``) and the epoch their step falls
    in (the first one that ends at or after it). Empty cells are metrics not logged at that
    row (``val_loss`` in an epoch without validation, say); in batch rows a NaN is empty too
    (the batch table holds both as NaN). Other values are written as they were logged:
    ``nan``, ``inf``. The file is UTF-8, whatever the locale (metric names may be any text).
    """
    ends, numbers = plot.epochs.steps, plot.epochs.epochs
    batch_epochs = []
    if len(plot.batches):
        at = np.searchsorted(ends, plot.batches.steps, side="left").tolist()
        batch_epochs = [numbers[i] if i < len(numbers) else (numbers[-1] + 1 if numbers else "") for i in at]
    lrs = getattr(plot, "lrs", None) or EpochTable()  # (tables of a run without learning rates)
    tables = [("batch", plot.batches, batch_epochs), ("epoch", plot.epochs, numbers),
              ("test", plot.tests, plot.tests.epochs), ("lr", lrs, [""] * len(lrs))]
    columns = [dict(plot.batches.columns()), *({n: t.column(n) for n in t.names()} for _, t, _ in tables[1:])]
    names: list[str] = []
    for cols in columns:
        names += [name for name in cols if name not in names]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["kind", "step", "epoch", *names])
        for (kind, table, epochs), held in zip(tables, columns, strict=True):
            cols = [(n, held.get(n)) for n in names]
            for i, step in enumerate(table.steps.tolist()):
                row = [kind, step, epochs[i]]
                given = None if kind == "batch" else table.given(i)
                for name, col in cols:
                    if col is None or (given is not None and name not in given):
                        row.append("")
                    else:
                        v = float(col[i])
                        row.append("" if np.isnan(v) and given is None else repr(v))
                out.writerow(row)
    return str(path)
