"""Detection times from the alert router's ledger: the SLA evaluator's ``detection`` SLI.

The router records, for each alert episode's first firing notification a receiver
accepted, ``starts_at`` (when the problem started), ``received_at`` and ``notified_at``
(``detection_seconds`` = notified_at - starts_at). An *incident* here is one episode (one
fingerprint and start); several receivers told about it count once, at the first
notification. Read from ``_opsuite/alerts/ledger/<yyyymmdd of the start>/...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.errors import NotFound
from shared.models import parse_utc_instant
from shared.ports import ObjectStore

LEDGER_PREFIX = "_opsuite/alerts/ledger/"
#: incidents notified in the window may have started this long before it
LOOKBACK = timedelta(days=2)


@dataclass(frozen=True)
class Detection:
    fingerprint: str
    starts_at: datetime
    notified_at: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.notified_at - self.starts_at).total_seconds())


def _days(since: datetime, until: datetime) -> list[date]:
    day, last = (since - LOOKBACK).date(), until.date()
    out = []
    while day <= last:
        out.append(day)
        day += timedelta(days=1)
    return out


def detections(
    store: ObjectStore, bucket: str, since: datetime, until: datetime
) -> list[Detection]:
    """Incidents first notified in (since, until], oldest first (one listing per day)."""
    first: dict[tuple[str, datetime], Detection] = {}
    for day in _days(since, until):
        for info in store.list(bucket, f"{LEDGER_PREFIX}{day:%Y%m%d}/"):
            if not info.name.endswith("/firing-0.json"):
                continue
            try:
                body = json.loads(store.read(bucket, info.name))
            except (NotFound, ValueError):
                continue
            if not isinstance(body, dict) or body.get("detection_seconds") is None:
                continue
            starts = parse_utc_instant(body.get("starts_at"))
            notified = parse_utc_instant(body.get("notified_at"))
            fingerprint = body.get("fingerprint")
            if starts is None or notified is None or not isinstance(fingerprint, str):
                continue
            key = (fingerprint, starts)
            if key not in first or notified < first[key].notified_at:
                first[key] = Detection(fingerprint, starts, notified)
    chosen = [d for d in first.values() if since < d.notified_at <= until]
    return sorted(chosen, key=lambda d: d.notified_at)
