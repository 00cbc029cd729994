"""Backup triggers the function could not act on, recorded where the health check looks.

A deployed backup function whose configuration can't be read logs an ERROR and
acknowledges the trigger (redelivering can't fix a config file). Without a trace
beyond that log line, the nightly backup would silently not happen. So the rejection
is also written, best effort, to a fixed place in the backup bucket
(``_opsuite/rejected/backup_export/<YYYYMMDD>.json``, overwritten by a later rejection
of the same day) — a place that doesn't depend on the configuration that failed — and
the health check reports "backup trigger rejected" when the newest run is missing
because of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from shared.errors import BadInput, NotFound, OpsuiteError
from shared.ports import ObjectStore

logger = logging.getLogger(__name__)

REJECTIONS_PREFIX = "_opsuite/rejected/backup_export/"
#: The structured log field (and value) a log-based metric counts: one per rejected trigger.
REJECTED_FIELD = "trigger_rejected"


@dataclass(frozen=True)
class TriggerRejection:
    date: date
    rejected_at: datetime
    error_type: str
    error: str
    message_id: str


def record_rejection(store: ObjectStore, bucket: str, rejection: TriggerRejection) -> bool:
    """Write the day's rejection record; False (and a log line) if even that fails."""
    body = {
        "date": rejection.date.isoformat(),
        "rejected_at": rejection.rejected_at.isoformat(),
        "error_type": rejection.error_type,
        "error": rejection.error[:2000],
        "message_id": rejection.message_id,
    }
    name = f"{REJECTIONS_PREFIX}{rejection.date:%Y%m%d}.json"
    try:
        store.write(bucket, name, json.dumps(body, indent=2).encode(), "application/json")
    except (OpsuiteError, OSError) as exc:
        logger.error(
            "could not record the rejected backup trigger",
            extra={"fields": {"bucket": bucket, "error": str(exc)}},
        )
        return False
    return True


def _names(store: ObjectStore, bucket: str) -> list[str]:
    """The rejection records' names, oldest day first."""
    return sorted(o.name for o in store.list(bucket, REJECTIONS_PREFIX) if o.name.endswith(".json"))


def newest_rejection(store: ObjectStore, bucket: str) -> TriggerRejection | None:
    """The most recent day's rejection record, if any."""
    names = _names(store, bucket)
    return _read(store, bucket, names[-1]) if names else None


def rejections_since(store: ObjectStore, bucket: str, since: date) -> dict[date, TriggerRejection]:
    """The rejection record of each day from ``since`` on, by day (one listing)."""
    out = {}
    for name in _names(store, bucket):
        day = _day_of(name)
        if day is not None and day >= since:
            rejection = _read(store, bucket, name)
            if rejection is not None:
                out[rejection.date] = rejection
    return out


def _day_of(name: str) -> date | None:
    try:
        return datetime.strptime(name.rsplit("/", 1)[-1][:8], "%Y%m%d").date()
    except ValueError:
        return None


def _read(store: ObjectStore, bucket: str, name: str) -> TriggerRejection | None:
    try:
        body = json.loads(store.read(bucket, name))
        return TriggerRejection(
            date=date.fromisoformat(body["date"]),
            rejected_at=datetime.fromisoformat(body["rejected_at"]),
            error_type=str(body.get("error_type") or ""),
            error=str(body.get("error") or ""),
            message_id=str(body.get("message_id") or ""),
        )
    except NotFound:  # removed between the listing and the read
        return None
    except (ValueError, KeyError, TypeError, AttributeError):
        day = _day_of(name)
        if day is None:
            return None  # not a record this module wrote
        return TriggerRejection(
            date=day,
            rejected_at=datetime.combine(day, datetime.min.time(), UTC),
            error_type="unknown",
            error=f"the rejection record {name} is unreadable",
            message_id="",
        )


def log_rejected(
    log: logging.Logger,
    message: str,
    fields: Mapping[str, Any],
    exc: Exception,
    *,
    error_chars: int | None = None,
) -> None:
    """The ERROR line of a trigger that is acknowledged without being acted on: its
    ``trigger_rejected`` field (``bad_input`` / ``permanent``) is what a log-based metric
    counts."""
    error = str(exc) if error_chars is None else str(exc)[:error_chars]
    log.error(
        message,
        extra={
            "fields": {
                **fields,
                REJECTED_FIELD: "bad_input" if isinstance(exc, BadInput) else "permanent",
                "error_type": type(exc).__name__,
                "error": error,
            }
        },
    )
