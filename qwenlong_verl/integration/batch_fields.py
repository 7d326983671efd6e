"""The one place that reads a training batch's fields from TransferQueue (verl 0.9.1's V1 trainer keeps the batch
there and hands the trainer a ``KVBatchMeta`` of keys). Contact: ``transfer_queue.kv_batch_get``."""

from __future__ import annotations

from typing import Any


def as_list(values: Any) -> list:
    """A column as a plain list (numpy arrays and tensors through ``tolist``)."""
    return list(values.tolist()) if hasattr(values, "tolist") else list(values)


def batch_fields(batch: Any, fields: list[str], *, raw: tuple[str, ...] = ()) -> dict[str, list]:
    """``{field: one value per row of batch}`` for the step's batch (``batch.keys``, ``batch.partition_id``).

    Args:
        batch: verl's ``KVBatchMeta`` of the step.
        fields: TransferQueue field names, e.g. ``["uid", "index"]``.
        raw: fields kept as row objects (``list(column)``: a tensor column gives one tensor per row) instead of
            :func:`as_list`'s plain values.
    """
    import transfer_queue as tq  # V1 trainer dependency; only imported when the V1 trainer runs

    if not batch.keys:
        return {f: [] for f in fields}
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(fields))
    return {f: list(data[f]) if f in raw else as_list(data[f]) for f in fields}
