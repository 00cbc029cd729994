"""The SLA evaluator's history table, defined once for both adapter families.

One row per (instant, SLO) evaluated: :class:`~shared.models.EvaluationRecord` as a
table. BigQuery partitions it by day on ``at`` and clusters it by ``slo`` (reads are a
time window of a few SLOs); the local warehouse keeps the same columns and records the
same partitioning and clustering in its metadata.

Both adapters check records with :func:`check_records` before anything is written, so
a record one of them would refuse is refused by the other too, before a job id is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.errors import BadInput
from shared.models import EvaluationRecord, SchemaField, TableSpec

HISTORY_SCHEMA: tuple[SchemaField, ...] = (
    SchemaField("at", "TIMESTAMP", "REQUIRED", description="the instant evaluated"),
    SchemaField("slo", "STRING", "REQUIRED", description="SLO name"),
    SchemaField("kind", "STRING", "REQUIRED", description="SLI kind"),
    SchemaField("good", "BOOL", description="the interval was good; NULL = unknown"),
    SchemaField("value", "FLOAT64", description="the SLI value; NULL = unknown"),
    SchemaField("good_events", "INT64", description="request-based SLIs: good events"),
    SchemaField("total_events", "INT64", description="request-based SLIs: all events"),
    SchemaField("compliance", "FLOAT64", description="compliance over the SLO window"),
    SchemaField("budget_remaining", "FLOAT64", description="error budget left (fraction)"),
    SchemaField("breaching", "BOOL", "REQUIRED", description="below the objective"),
    SchemaField("exhausted", "BOOL", "REQUIRED", description="error budget used up"),
    SchemaField("burning", "STRING", "REPEATED", description="firing burn-rate windows"),
    SchemaField("detail", "STRING", description="JSON object: what the value is made of"),
    SchemaField("recorded_at", "TIMESTAMP", "REQUIRED", description="when it was written"),
)

#: Column names in table order: the order :func:`record_from_values` reads them in.
HISTORY_COLUMNS: tuple[str, ...] = tuple(f.name for f in HISTORY_SCHEMA)

HISTORY_SPEC = TableSpec(
    schema=HISTORY_SCHEMA,
    time_partitioning={"type": "DAY", "field": "at"},
    clustering=("slo",),
    description="opsuite SLA evaluator: one row per SLO per evaluation",
)

_RFC3339_MICROS = "%Y-%m-%dT%H:%M:%S.%fZ"  # as google/cloud/bigquery/_helpers.py writes TIMESTAMP


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(f"{what} must be a datetime with a time zone, got {value!r}")
    return value.astimezone(UTC)


def _finite(value: object, what: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{what} must be a finite number or None, got {value!r}")


def check_records(records: Sequence[EvaluationRecord]) -> None:
    """BadInput for a record the table can't hold faithfully (naive datetimes, NaN, ...)."""
    for i, record in enumerate(records):
        where = f"evaluation record {i} ({record.slo!r})"
        _aware(record.at, f"{where}: at")
        _aware(record.recorded_at, f"{where}: recorded_at")
        for name in ("slo", "kind", "detail"):
            if not isinstance(getattr(record, name), str):
                raise BadInput(f"{where}: {name} must be a string")
        if not record.slo or not record.kind:
            raise BadInput(f"{where}: slo and kind must not be empty")
        for name in ("value", "compliance", "budget_remaining"):
            _finite(getattr(record, name), f"{where}: {name}")
        for name in ("good_events", "total_events"):
            count = getattr(record, name)
            if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
                raise BadInput(f"{where}: {name} must be an integer or None")
        if not isinstance(record.breaching, bool) or not isinstance(record.exhausted, bool):
            raise BadInput(f"{where}: breaching and exhausted must be True or False")
        if record.good is not None and not isinstance(record.good, bool):
            raise BadInput(f"{where}: good must be True, False or None")
        if not all(isinstance(b, str) for b in record.burning):
            raise BadInput(f"{where}: burning must hold strings")


def check_window(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """``(since, until]`` in UTC; BadInput for a bound without a time zone."""
    return _aware(since, "history read: since"), _aware(until, "history read: until")


def values_of(record: EvaluationRecord) -> list[Any]:
    """The record's values in :data:`HISTORY_COLUMNS` order (UTC datetimes, burning a list)."""
    return [
        record.at.astimezone(UTC),
        record.slo,
        record.kind,
        record.good,
        None if record.value is None else float(record.value),
        record.good_events,
        record.total_events,
        None if record.compliance is None else float(record.compliance),
        None if record.budget_remaining is None else float(record.budget_remaining),
        record.breaching,
        record.exhausted,
        list(record.burning),
        record.detail,
        record.recorded_at.astimezone(UTC),
    ]


def json_row(record: EvaluationRecord) -> dict[str, Any]:
    """The record as one line of a newline-delimited JSON load (TIMESTAMPs as RFC 3339)."""
    row = dict(zip(HISTORY_COLUMNS, values_of(record), strict=True))
    for name in ("at", "recorded_at"):
        row[name] = row[name].strftime(_RFC3339_MICROS)
    return row


def record_from_values(values: Sequence[Any]) -> EvaluationRecord:
    """An :class:`EvaluationRecord` from a row read in :data:`HISTORY_COLUMNS` order."""
    row = dict(zip(HISTORY_COLUMNS, values, strict=True))
    return EvaluationRecord(
        at=_aware(row["at"], "at"),
        slo=str(row["slo"]),
        kind=str(row["kind"]),
        good=None if row["good"] is None else bool(row["good"]),
        value=None if row["value"] is None else float(row["value"]),
        good_events=None if row["good_events"] is None else int(row["good_events"]),
        total_events=None if row["total_events"] is None else int(row["total_events"]),
        compliance=None if row["compliance"] is None else float(row["compliance"]),
        budget_remaining=(
            None if row["budget_remaining"] is None else float(row["budget_remaining"])
        ),
        breaching=bool(row["breaching"]),
        exhausted=bool(row["exhausted"]),
        burning=tuple(str(b) for b in row["burning"] or ()),
        detail="" if row["detail"] is None else str(row["detail"]),
        recorded_at=_aware(row["recorded_at"], "recorded_at"),
    )
