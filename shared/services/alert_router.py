"""The alert router: one alert → its receivers, once each, with silences and inhibition.

Everything lives in the backup bucket under ``_opsuite/alerts/`` (no long-lived process):

- ``active/<fingerprint>.json``: the newest state of each alert (:class:`ActiveAlert`),
  updated by read → modify → compare-and-swap (``write_if_generation``) → retry, so
  concurrent deliveries never lose an update. ``starts_at`` is kept from the episode's
  first firing; a resolution for an unknown fingerprint (closed before open) is stored
  resolved, so the late open (``starts_at <= ends_at``) is recognised as stale.
- ``silences/<id>.json``: ``{id, matchers, starts_at, ends_at, comment, created_by}``;
  active while ``starts_at <= now < ends_at``.
- ``ledger/<yyyymmdd>/<fingerprint>/<episode>/<receiver>/<status>-<slot>.json``: one
  write-once record per (alert episode, receiver, status, repeat slot), written when the
  receiver's decision is final (sent, suppressed, failed for good). ``yyyymmdd`` and
  ``episode`` (``HHMMSS``) are the episode's ``starts_at`` in UTC, so a problem that
  fires again later is a new episode and notifies again. The status in the name is the
  alert's (firing / resolved); the record's ``status`` is what happened (firing,
  resolved, failed). A suppression is recorded beside it as
  ``<status>-<slot>.suppressed.json`` (status suppressed, with the reason) and does not
  take the slot: once the silence / mute / inhibition is over, :func:`tick` notifies.
- ``claims/<episode dir>/<status>-<slot>/<integration>``: per integration of a receiver,
  :func:`shared.services.once.publish_once` claims and done markers (one nonce per
  delivery: a retry recognises its own claim; a failed send frees it), so of concurrent
  deliveries exactly one sends. A group notification is claimed under its leader; each
  other alert in it gets ``via-<leader>.json`` under its own claims before the send and
  ``<integration>.sent.json`` once that integration accepted it (so a later send, led by
  another alert, shows it as context only); PagerDuty events are claimed per alert (one
  event each). Done markers carry when they were accepted: ``detection_seconds`` counts
  to the first acceptance, even when the record is written by a later retry.
- ``groups/<id>.json`` (``id``: the first 32 hex digits of the SHA-256 of the receiver,
  a newline and the group key): per (receiver, group key) ``{receiver, route_id,
  group_key, group_labels, last_sent_at, last_sent_by, pending}``, updated by
  compare-and-swap as the active alerts are.

Grouping without a long-lived process (``group_wait`` is not waited for). A delivery
whose alert is the first of its group on a receiver, or arrives ``group_interval`` (the
route's) or more after the group's last notification, is sent at once (a P0 is never
held back) and sets ``last_sent_at``. A later first firing of the group inside
``group_interval`` is added to ``pending`` (outcome ``pending``; nothing in the ledger
yet). The scheduled :func:`tick` flushes each group whose ``pending`` is non-empty and
whose last notification is ``group_interval`` old: one notification of its pending
alerts still firing, claimed under its leader (the highest fingerprint) so a
redelivered or concurrent tick sends once, then one ledger record per alert (the
leader's last; a resolve racing the flush of another member finds no record yet and is
sent by the next tick's resolution pass once the record is there). So
batching holds to the tick's granularity (every 5 min: a held alert waits
``group_interval`` to ``group_interval`` + 5 min). A notification carries the alerts
being sent now plus, for Slack / webhook / file / console, the group's other firing
members (routed to the same route, not suppressed) as context; PagerDuty gets an event
only for the alerts being sent now (the context members' incidents are already open).
An alert sent at once while others of its group are pending shows them as context;
they still get their own flush. Group objects are not deleted (one per receiver and
group key). Resolutions are not grouped: each is sent on its delivery.
Repeats (``repeat_interval``, per alert) and what a silence held back are the tick's
per alert, so they hold to its granularity too.

A resolution goes to the receivers that were (or may have been) notified of the
firing, wherever the alert's labels or the config route it now. Every receiver, and
every integration of a receiver, is tried even when one fails; a transient failure then
makes the delivery raise TransientError so Pub/Sub redelivers and only what failed is
tried again (the tick instead logs it and leaves it to the next tick). A
secret that can't be read (IAM, a missing or disabled version) counts as transient too
(nothing is recorded: the redelivery and the tick retry it). A receiver's own permanent
answer (4xx) is recorded ``failed`` with the answer and acknowledged.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from shared.alerting_config import AlertingSettings, Matcher, Receiver, parse_matcher
from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput, NotFound, OpsuiteError, PermanentError, TransientError
from shared.models import Alert, AlertStatus, Notification
from shared.ports import Notifier, ObjectStore, SecretStore
from shared.retry import Clock
from shared.services.alert_routing import (
    RouteMatch,
    group_key,
    group_labels,
    inhibition,
    labels_match,
    route_at,
    route_for_receiver,
    routes_for,
    time_muted,
)
from shared.services.once import new_nonce, publish_once

logger = logging.getLogger(__name__)
T = TypeVar("T")

JSON = "application/json"
ROOT = "_opsuite/alerts"
ACTIVE_PREFIX = f"{ROOT}/active/"
SILENCES_PREFIX = f"{ROOT}/silences/"
LEDGER_PREFIX = f"{ROOT}/ledger/"
CLAIMS_PREFIX = f"{ROOT}/claims/"
GROUPS_PREFIX = f"{ROOT}/groups/"
#: time for delivering one message (retries included), from the trigger's arrival
DELIVERY_BUDGET_SECONDS = 45.0
#: compare-and-swap attempts before giving up (TransientError: redelivered)
CAS_ATTEMPTS = 20
ANSWER_CHARS = 300

LedgerStatus = Literal["firing", "resolved", "suppressed", "failed"]
NotifierFactory = Callable[[Receiver], Sequence[Notifier]]


# -- dependencies ---------------------------------------------------------------------
def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RouterDeps:
    alerting: AlertingSettings
    store: ObjectStore
    bucket: str
    #: the notifiers of one receiver (one per ``*_configs`` entry; none: a null receiver)
    notifiers: NotifierFactory
    clock: Clock = field(default_factory=Clock)
    now: Callable[[], datetime] = _utc_now
    #: on ``clock.monotonic``: no delivery retry starts after it
    deadline: float = field(default_factory=lambda: time.monotonic() + DELIVERY_BUDGET_SECONDS)
    #: how long a delivery waits for a concurrent one that holds a receiver's claim
    claim_wait_seconds: float = 20.0

    @classmethod
    def of(
        cls,
        settings: Settings,
        adapters: Adapters,
        *,
        started: float | None = None,
        http: Any = None,
        pagerduty_url: str | None = None,
        clock: Clock | None = None,
    ) -> RouterDeps:
        """The router over the configured adapters. ``http``: the receivers' HTTP client
        (default: the guarded :class:`~shared.adapters.notify.HttpClient`; tests pass one
        with the loopback allowance), ``pagerduty_url``: the Events API endpoint."""
        from shared.adapters.notify import PAGERDUTY_EVENTS_URL, HttpClient, notifiers_for

        client = http if http is not None else HttpClient()
        secrets: SecretStore = _ReportingSecrets(adapters.secrets or _NoSecrets())
        alerting = settings.alerting
        root = Path(settings.local.root)
        url = pagerduty_url or PAGERDUTY_EVENTS_URL

        def build(receiver: Receiver) -> Sequence[Notifier]:
            return notifiers_for(
                receiver,
                secrets=secrets,
                http=client,
                allowed_webhook_hosts=alerting.allowed_webhook_hosts,
                local_root=root,
                pagerduty_url=url,
            )

        clock = clock or Clock()
        begun = started if started is not None else clock.monotonic()
        return cls(
            alerting=alerting,
            store=adapters.store,
            bucket=settings.backups.bucket,
            notifiers=build,
            clock=clock,
            deadline=begun + DELIVERY_BUDGET_SECONDS,
        )


class _NoSecrets:
    def get(self, name: str) -> str:
        raise NotFound(f"secret {name!r}: no secret store is configured")


class SecretUnavailable(PermanentError):
    """A receiver's secret could not be read (PermissionDenied, NotFound, a disabled or
    destroyed version: the SecretStore port's PermanentError). Raised at once (no retry
    within the delivery), but the router treats it as transient for the delivery: an IAM
    binding still propagating or a secret version being rotated is fixed in minutes,
    unlike a receiver's own 4xx answer (a bad payload), which stays permanent."""


class _ReportingSecrets:
    """The receivers' SecretStore, marking its permanent failures as SecretUnavailable."""

    def __init__(self, inner: SecretStore) -> None:
        self._inner = inner

    def get(self, name: str) -> str:
        try:
            return self._inner.get(name)
        except SecretUnavailable:
            raise
        except PermanentError as exc:
            raise SecretUnavailable(f"{exc} ({type(exc).__name__})") from exc


# -- the stored state -----------------------------------------------------------------
def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _instant(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def alert_to_json(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": _iso(alert.starts_at),
        "ends_at": _iso(alert.ends_at),
        "source": alert.source,
        "source_id": alert.source_id,
        "generator_url": alert.generator_url,
        "received_at": _iso(alert.received_at),
    }


def alert_from_json(body: Mapping[str, Any]) -> Alert:
    starts_at = _instant(body["starts_at"])
    if starts_at is None:
        raise ValueError("starts_at missing")
    status: AlertStatus = "resolved" if body["status"] == "resolved" else "firing"
    return Alert(
        fingerprint=str(body["fingerprint"]),
        status=status,
        severity=str(body["severity"]),
        labels={str(k): str(v) for k, v in dict(body["labels"]).items()},
        annotations={str(k): str(v) for k, v in dict(body["annotations"]).items()},
        starts_at=starts_at,
        ends_at=_instant(body.get("ends_at")),
        source=str(body["source"]),
        source_id=str(body["source_id"]),
        generator_url=body.get("generator_url"),
        received_at=_instant(body.get("received_at")),
    )


@dataclass(frozen=True)
class ActiveAlert:
    """``active/<fingerprint>.json``: the alert's newest state and whom it notified."""

    alert: Alert
    #: receiver → {"status", "at", "slot"} of the newest notification accepted
    notified: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    updated_at: datetime | None = None
    #: the newest open (firing message) seen: its own ``starts_at`` and ``source_id``
    #: (the episode keeps its first start; a close of an older incident is stale)
    open_started_at: datetime | None = None
    open_source_id: str | None = None

    def to_bytes(self) -> bytes:
        body = {
            **alert_to_json(self.alert),
            "notified": {k: dict(v) for k, v in sorted(self.notified.items())},
            "updated_at": _iso(self.updated_at),
            "open_started_at": _iso(self.open_started_at),
            "open_source_id": self.open_source_id,
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ActiveAlert:
        body = json.loads(data)
        notified = body.get("notified") or {}
        source = body.get("open_source_id")
        return cls(
            alert_from_json(body),
            {str(k): dict(v) for k, v in notified.items()},
            _instant(body.get("updated_at")),
            _instant(body.get("open_started_at")),
            None if source is None else str(source),
        )

    def firing_at(self, now: datetime) -> bool:
        """Firing, and not past an ``ends_at`` it announced (a test notification)."""
        a = self.alert
        return a.status == "firing" and (a.ends_at is None or a.ends_at > now)


def active_name(fingerprint: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{16,64}", fingerprint):
        raise BadInput(f"fingerprint {fingerprint[:80]!r} is not 16-64 lowercase hex digits")
    return f"{ACTIVE_PREFIX}{fingerprint}.json"


def update_active(
    deps: RouterDeps, fingerprint: str, change: Callable[[ActiveAlert | None], ActiveAlert | None]
) -> ActiveAlert | None:
    """Apply ``change`` to the stored state by compare-and-swap until it lands (``change``
    returns None: nothing to write; the stored state is returned). ``change`` may run more
    than once and must be idempotent."""
    name = active_name(fingerprint)
    for _ in range(CAS_ATTEMPTS):
        found = deps.store.read_versioned(deps.bucket, name)
        current = ActiveAlert.from_bytes(found[0]) if found is not None else None
        generation = found[1] if found is not None else 0
        updated = change(current)
        if updated is None:
            return current
        if (
            deps.store.write_if_generation(deps.bucket, name, updated.to_bytes(), JSON, generation)
            is not None
        ):
            return updated
    raise TransientError(f"alert {fingerprint}: its state kept changing under us; retry later")


@dataclass(frozen=True)
class Merge:
    state: ActiveAlert
    #: the alert is older than what is stored (a late open after its close, a
    #: resolution of an earlier episode): nothing to notify
    stale: bool


def merge(current: ActiveAlert | None, alert: Alert, now: datetime) -> Merge:
    """The stored state after ``alert`` arrives (pure; applying it twice changes nothing)."""
    if current is None:
        if alert.status == "resolved":
            if alert.ends_at is None:
                alert = replace(alert, ends_at=alert.starts_at)
            return Merge(ActiveAlert(alert, {}, now), stale=False)
        return Merge(ActiveAlert(alert, {}, now, alert.starts_at, alert.source_id), stale=False)
    old = current.alert
    if alert.status == "firing":
        if old.status == "resolved":
            if old.ends_at is not None and alert.starts_at <= old.ends_at:
                return Merge(current, stale=True)  # the open of what is already closed
            # a new episode
            return Merge(ActiveAlert(alert, {}, now, alert.starts_at, alert.source_id), False)
        opened_at, opened_id = current.open_started_at, current.open_source_id
        if opened_at is None or alert.starts_at >= opened_at:  # the newest open so far
            opened_at, opened_id = alert.starts_at, alert.source_id
        alert = replace(alert, starts_at=old.starts_at)  # the episode keeps its first start
        if alert == old and (opened_at, opened_id) == (
            current.open_started_at,
            current.open_source_id,
        ):
            return Merge(current, stale=False)
        return Merge(ActiveAlert(alert, current.notified, now, opened_at, opened_id), False)
    ends_at = alert.ends_at or alert.starts_at
    if ends_at < old.starts_at:
        return Merge(current, stale=True)  # the close of an earlier episode
    if old.status == "firing" and _closes_older_incident(current, alert, ends_at):
        return Merge(current, stale=True)  # a late close of an incident older than the open
    if old.status == "resolved" and old.ends_at is not None:
        ends_at = max(ends_at, old.ends_at)
    resolved = replace(
        alert,
        starts_at=old.starts_at,
        ends_at=ends_at,
        labels=old.labels if old.status == "firing" else alert.labels,
        annotations={**old.annotations, **alert.annotations},
    )
    if resolved == old:
        return Merge(current, stale=False)
    return Merge(replace(current, alert=resolved, updated_at=now), stale=False)


def _closes_older_incident(current: ActiveAlert, close: Alert, ends_at: datetime) -> bool:
    """Whether ``close`` ends an incident older than the newest open (another incident of
    the same alert opened since: the alert is still firing). A state written before the
    newest open was tracked counts the episode's start and source as its newest open."""
    opened_at = current.open_started_at or current.alert.starts_at
    opened_id = current.open_source_id or current.alert.source_id
    if ends_at < opened_at:
        return True
    return close.source_id != opened_id and close.starts_at < opened_at


#: objects read at once by a listing (each delivery reads every stored alert state: on
#: GCS one read is tens of milliseconds, so a few hundred states read one by one would
#: take seconds of the delivery's budget)
READ_CONCURRENCY = 16


def _read_all(
    deps: RouterDeps, prefix: str, parse: Callable[[str, bytes], T], what: str
) -> list[T]:
    """Every object under ``prefix`` parsed, in listing order, read concurrently; one
    deleted since the listing is skipped, an unreadable one is logged and skipped."""
    names = [info.name for info in deps.store.list(deps.bucket, prefix)]

    def one(name: str) -> tuple[bool, T | None]:
        try:
            return True, parse(name, deps.store.read(deps.bucket, name))
        except NotFound:
            return False, None  # deleted since the listing
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning(
                f"skipping an unreadable {what}",
                extra={"fields": {"object": name, "error": str(exc)[:200]}},
            )
            return False, None

    if len(names) <= 1:
        results = [one(n) for n in names]
    else:
        workers = min(READ_CONCURRENCY, len(names))
        with ThreadPoolExecutor(workers, thread_name_prefix="alert-read") as pool:
            results = list(pool.map(one, names))
    return [value for ok, value in results if ok and value is not None]


def active_alerts(deps: RouterDeps) -> list[ActiveAlert]:
    """Every stored alert state (unreadable objects are logged and skipped)."""
    return _read_all(
        deps, ACTIVE_PREFIX, lambda _n, raw: ActiveAlert.from_bytes(raw), "active alert"
    )


# -- aggregation groups ---------------------------------------------------------------
@dataclass(frozen=True)
class AlertGroup:
    """``groups/<id>.json``: one (receiver, group key)'s batching state."""

    receiver: str
    route_id: str
    group_key: str
    group_labels: Mapping[str, str]
    #: when the group's last notification was decided (None: never)
    last_sent_at: datetime | None = None
    #: the alert whose delivery decided it (its redelivery sends again: the ledger dedupes)
    last_sent_by: str | None = None
    #: fingerprints held for the tick (first firing, slot 0), sorted
    pending: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        body = {
            "receiver": self.receiver,
            "route_id": self.route_id,
            "group_key": self.group_key,
            "group_labels": dict(self.group_labels),
            "last_sent_at": _iso(self.last_sent_at),
            "last_sent_by": self.last_sent_by,
            "pending": sorted(self.pending),
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> AlertGroup:
        body = json.loads(data)
        by = body.get("last_sent_by")
        return cls(
            receiver=str(body["receiver"]),
            route_id=str(body["route_id"]),
            group_key=str(body["group_key"]),
            group_labels={str(k): str(v) for k, v in dict(body["group_labels"]).items()},
            last_sent_at=_instant(body.get("last_sent_at")),
            last_sent_by=None if by is None else str(by),
            pending=tuple(sorted(str(f) for f in body.get("pending") or [])),
        )


def group_name(receiver: str, key: str) -> str:
    digest = hashlib.sha256(f"{receiver}\n{key}".encode()).hexdigest()[:32]
    return f"{GROUPS_PREFIX}{digest}.json"


def update_group(
    deps: RouterDeps, name: str, change: Callable[[AlertGroup | None], AlertGroup | None]
) -> AlertGroup | None:
    """:func:`update_active`'s compare-and-swap loop for a group object."""
    for _ in range(CAS_ATTEMPTS):
        found = deps.store.read_versioned(deps.bucket, name)
        current = AlertGroup.from_bytes(found[0]) if found is not None else None
        generation = found[1] if found is not None else 0
        updated = change(current)
        if updated is None:
            return current
        if (
            deps.store.write_if_generation(deps.bucket, name, updated.to_bytes(), JSON, generation)
            is not None
        ):
            return updated
    raise TransientError(f"alert group {name}: its state kept changing under us; retry later")


def _hold_for_group(deps: RouterDeps, route: RouteMatch, alert: Alert, now: datetime) -> bool:
    """Whether a delivered first firing waits for the tick's group flush: its group on
    this receiver was notified less than ``group_interval`` ago. Otherwise (a new group,
    or the last notification is older) it is sent now, and the group remembers it."""
    key = group_key(route, alert.labels)
    fp = alert.fingerprint
    held: list[bool] = []

    def change(current: AlertGroup | None) -> AlertGroup | None:
        group = current or AlertGroup(
            route.receiver, route.route_id, key, group_labels(route, alert.labels)
        )
        if fp in group.pending:
            held[:] = [True]  # a redelivery of a held alert
            return None
        if group.last_sent_by == fp and current is not None:
            held[:] = [False]  # a redelivery of the one that decided the last send
            return None
        last = group.last_sent_at
        if last is None or now - last >= route.group_interval:
            held[:] = [False]
            return replace(group, route_id=route.route_id, last_sent_at=now, last_sent_by=fp)
        held[:] = [True]
        return replace(group, pending=tuple(sorted({*group.pending, fp})))

    update_group(deps, group_name(route.receiver, key), change)
    return held[0]


def alert_groups(deps: RouterDeps) -> list[tuple[str, AlertGroup]]:
    """Every stored group with its object name (unreadable ones logged and skipped)."""
    return _read_all(
        deps, GROUPS_PREFIX, lambda name, raw: (name, AlertGroup.from_bytes(raw)), "alert group"
    )


# -- silences -------------------------------------------------------------------------
@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    comment: str = ""
    created_by: str = ""
    #: the object it was read from
    name: str = ""

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str]) -> bool:
        return bool(self.matchers) and labels_match(self.matchers, labels)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], name: str = "") -> Silence:
        matchers = body["matchers"]
        if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
            raise ValueError("matchers must be a list of strings")
        starts_at, ends_at = _instant(body["starts_at"]), _instant(body["ends_at"])
        if starts_at is None or ends_at is None:
            raise ValueError("starts_at and ends_at are required")
        return cls(
            id=str(body["id"]),
            matchers=tuple(parse_matcher(m) for m in matchers),
            starts_at=starts_at,
            ends_at=ends_at,
            comment=str(body.get("comment") or ""),
            created_by=str(body.get("created_by") or ""),
            name=name,
        )


def silences(deps: RouterDeps) -> list[Silence]:
    """Every stored silence, expired ones included (unreadable ones logged and skipped)."""
    return _read_all(
        deps, SILENCES_PREFIX, lambda name, raw: Silence.from_json(json.loads(raw), name), "silence"
    )


# -- the ledger -----------------------------------------------------------------------
_SAFE_PART = re.compile(r"[^A-Za-z0-9_.-]")


def episode_dir(alert: Alert, receiver: str) -> str:
    """``<yyyymmdd>/<fingerprint>/<HHMMSS>/<receiver>`` of the alert's episode."""
    start = alert.starts_at.astimezone(UTC)
    safe = _SAFE_PART.sub("_", receiver)
    return f"{start:%Y%m%d}/{alert.fingerprint}/{start:%H%M%S}/{safe}"


def ledger_name(
    alert: Alert, receiver: str, status: AlertStatus, slot: int, *, suppressed: bool = False
) -> str:
    """The record of one decision: ``<status>-<slot>.json`` (sent or failed for good), or
    ``<status>-<slot>.suppressed.json`` (a suppression doesn't take the slot: once the
    silence, mute or inhibition is gone, the tick notifies in that slot)."""
    tail = ".suppressed.json" if suppressed else ".json"
    return f"{LEDGER_PREFIX}{episode_dir(alert, receiver)}/{status}-{slot}{tail}"


def repeat_slot(deps: RouterDeps, route: RouteMatch, state: ActiveAlert, now: datetime) -> int:
    """The slot a firing alert is in for the route's receiver. As Alertmanager does, a
    repeat is due ``repeat_interval`` after the receiver's last notification (its
    ``notified`` entry, else its newest ledger record of the episode: sent or failed):
    then the next slot, until then the last one (its record exists: nothing to do).
    Never notified: slot 0 (the delivery's, e.g. after a silence ended)."""
    alert = state.alert
    last: tuple[int, datetime] | None = None
    entry = state.notified.get(route.receiver, {})
    at = _instant(entry.get("at"))
    if (
        entry.get("status") == "firing"
        and entry.get("starts_at") == _iso(alert.starts_at)
        and isinstance(entry.get("slot"), int)
        and at is not None
    ):
        last = (int(entry["slot"]), at)
    recorded = _last_record(deps, alert, route.receiver)
    if recorded is not None and (last is None or recorded[0] > last[0]):
        last = recorded
    if last is None:
        return 0
    slot, at = last
    interval = route.repeat_interval.total_seconds()
    if interval <= 0 or (now - at).total_seconds() < interval:
        return slot
    return slot + 1


_FIRING_RECORD = re.compile(r"firing-(\d{1,9})\.json")


def _last_record(deps: RouterDeps, alert: Alert, receiver: str) -> tuple[int, datetime] | None:
    """The newest firing slot of the episode with a ledger record (sent or failed) for
    ``receiver``, and when it was decided."""
    prefix = f"{LEDGER_PREFIX}{episode_dir(alert, receiver)}/firing-"
    slots = []
    for info in deps.store.list(deps.bucket, prefix):
        m = _FIRING_RECORD.fullmatch(info.name.rsplit("/", 1)[-1])
        if m:
            slots.append((int(m.group(1)), info.name))
    for slot, name in sorted(slots, reverse=True):
        body = _read_json(deps.store, deps.bucket, name)
        if body is None:
            continue
        at = _instant(body.get("notified_at")) or _instant(body.get("time"))
        if at is not None:
            return slot, at
    return None


def _read_json(store: ObjectStore, bucket: str, name: str) -> dict[str, Any] | None:
    """The object's JSON object, or None (gone, not JSON, not an object: an unreadable
    record must not block the decisions that read it)."""
    try:
        body = json.loads(store.read(bucket, name))
    except NotFound:
        return None
    except ValueError:
        logger.warning("skipping an unreadable object", extra={"fields": {"object": name}})
        return None
    return body if isinstance(body, dict) else None


def ledger_records(deps: RouterDeps, prefix: str = "") -> list[dict[str, Any]]:
    """The ledger records under ``ledger/<prefix>`` (e.g. ``20261201/``), by name."""
    records = []
    for info in sorted(deps.store.list(deps.bucket, LEDGER_PREFIX + prefix), key=lambda o: o.name):
        if not info.name.endswith(".json"):
            continue
        body = _read_json(deps.store, deps.bucket, info.name)
        if body is not None:
            records.append(body)
    return records


def _notified_firing(deps: RouterDeps, alert: Alert, receiver: str) -> bool:
    """Whether this episode's firing reached ``receiver``, or may have (so its resolution
    should too): a ledger record of a sent firing, or a firing claim's done marker or an
    outstanding claim (a crash between the send and its ledger record leaves those; a
    failed send deletes its claim). A resolution the receiver never needed is harmless
    (PagerDuty ignores a resolve of an unknown dedup_key); a lost one leaves a page open."""
    prefix = f"{LEDGER_PREFIX}{episode_dir(alert, receiver)}/firing-"
    for info in deps.store.list(deps.bucket, prefix):
        if info.name.endswith(".suppressed.json"):
            continue
        body = _read_json(deps.store, deps.bucket, info.name)
        if body is not None and body.get("status") == "firing":
            return True
    claims = f"{CLAIMS_PREFIX}{episode_dir(alert, receiver)}/firing-"
    return any(
        _CLAIM_OBJECT.fullmatch(info.name.rsplit("/", 1)[-1])
        for info in deps.store.list(deps.bucket, claims)
    )


#: a claim or done marker of :func:`shared.services.once.publish_once` (``<n>.done.json``,
#: ``<n>.claim[.<generation>].json``), the marker of a group notification claimed under
#: another alert (``via-<leader fingerprint>.json``, written before it is sent) or accepted
#: with it in (``<n>.sent.json``)
_CLAIM_OBJECT = re.compile(r"\d+\.(?:done|sent|claim(?:\.\d+)?)\.json|via-[0-9a-f]{16,64}\.json")


# -- routing one alert ----------------------------------------------------------------
@dataclass(frozen=True)
class ReceiverOutcome:
    receiver: str
    #: sent (firing / resolved), suppressed, failed (for good), transient (will be
    #: redelivered), duplicate (an earlier delivery decided it), skipped (a null
    #: receiver, or a resolution of a firing it never got), pending (held for the
    #: tick's group flush: its group was notified less than group_interval ago)
    result: Literal["sent", "suppressed", "failed", "transient", "duplicate", "skipped", "pending"]
    detail: str = ""
    status_code: int | None = None
    #: the alerts some integration accepted (a group send: possibly not all of them)
    delivered: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteOutcome:
    fingerprint: str
    status: AlertStatus
    #: the alert was older than its stored state: nothing was sent
    stale: bool = False
    receivers: tuple[ReceiverOutcome, ...] = ()

    def results(self) -> dict[str, str]:
        return {r.receiver: r.result for r in self.receivers}


def suppression(
    deps: RouterDeps,
    route: RouteMatch,
    alert: Alert,
    firing: Sequence[Alert],
    silenced_by: Sequence[Silence],
    now: datetime,
) -> str | None:
    """Why the route's receiver isn't told now: a silence, a time mute, an inhibition."""
    for silence in silenced_by:
        if silence.active_at(now) and silence.mutes(alert.labels):
            return f"silenced by {silence.id}"
    muted = time_muted(deps.alerting, route, now)
    if muted is not None:
        return muted
    sources = [a.labels for a in firing if a.fingerprint != alert.fingerprint]
    inhibited = inhibition(alert.labels, sources, deps.alerting.inhibit_rules)
    if inhibited is not None:
        source = inhibited.source_labels.get("alertname", "")
        return f"inhibited by inhibit_rules[{inhibited.rule_index}] (source {source!r})"
    return None


def handle_alert(alert: Alert, deps: RouterDeps) -> RouteOutcome:
    """Record ``alert`` and notify its receivers once each (see the module docstring).

    Raises TransientError when some receiver could not be reached (after the others were
    tried): the redelivery retries that receiver only.
    """
    now = deps.now()
    if alert.received_at is None:
        alert = replace(alert, received_at=now)
    outcome: list[Merge] = []

    def change(current: ActiveAlert | None) -> ActiveAlert | None:
        merged = merge(current, alert, now)
        outcome[:] = [merged]
        return None if merged.state is current else merged.state

    update_active(deps, alert.fingerprint, change)
    merged = outcome[0]
    if merged.stale:
        logger.info(
            "alert older than its stored state: not notified",
            extra={"fields": {"fingerprint": alert.fingerprint, "status": alert.status}},
        )
        return RouteOutcome(alert.fingerprint, alert.status, stale=True)
    episode = merged.state.alert
    if episode.status == "resolved" and alert.status == "firing":
        return RouteOutcome(alert.fingerprint, alert.status, stale=True)
    # notify within the stored episode: its first start; a resolution keeps the labels
    # the firing was routed by
    if alert.status == "resolved":
        current = replace(episode, source_id=alert.source_id, received_at=alert.received_at)
    else:
        current = replace(alert, starts_at=episode.starts_at)
    others = [s.alert for s in active_alerts(deps) if s.alert.fingerprint != alert.fingerprint]
    firing = [a for a in others if _firing(a, now)]
    if current.status == "firing":
        firing.append(current)
    silenced_by = [s for s in silences(deps) if s.active_at(now)]

    results = [
        _route_to(deps, route, current, firing, silenced_by, now, slot=0, hold=True)
        for route in routes_to_tell(deps, current)
    ]
    result = RouteOutcome(alert.fingerprint, alert.status, False, tuple(results))
    transient = [r for r in results if r.result == "transient"]
    if transient:
        names = ", ".join(r.receiver for r in transient)
        raise TransientError(f"alert {alert.fingerprint}: receivers {names} failed; retry later")
    return result


def routes_to_tell(deps: RouterDeps, alert: Alert) -> list[RouteMatch]:
    """The routes ``alert`` goes to, one per receiver (the first route reaching it): the
    routes its labels reach and, for a resolution, every other receiver that may have
    been told of the episode's firing (:func:`_notified_firing`): the labels (a new
    incident of the same series with another severity) or the config may have changed
    since, and a resolve that misses the receiver of the trigger leaves a page open."""
    found: list[RouteMatch] = []
    seen: set[str] = set()
    for route in routes_for(deps.alerting, alert.labels):
        if route.receiver not in seen:
            seen.add(route.receiver)
            found.append(route)
    if alert.status != "resolved" or not found:
        return found
    for receiver in deps.alerting.receivers:
        name = receiver.name
        if name in seen or not _notified_firing(deps, alert, name):
            continue
        seen.add(name)
        found.append(
            _recorded_route(deps, alert, name)
            or route_for_receiver(deps.alerting, name)
            or replace(found[0], receiver=name)
        )
    return found


def _recorded_route(deps: RouterDeps, alert: Alert, receiver: str) -> RouteMatch | None:
    """The route the episode's firing was sent to ``receiver`` by (its ledger record's
    ``route``), if that route still exists: the resolution then has the firing's group."""
    prefix = f"{LEDGER_PREFIX}{episode_dir(alert, receiver)}/firing-"
    paths = set()
    for info in deps.store.list(deps.bucket, prefix):
        body = _read_json(deps.store, deps.bucket, info.name)
        if body is not None and isinstance(body.get("route"), str):
            paths.add(body["route"])
    for path in sorted(paths):
        match = route_at(deps.alerting, path)
        if match is not None and match.receiver == receiver:
            return match
    return None


def _firing(alert: Alert, now: datetime) -> bool:
    return alert.status == "firing" and (alert.ends_at is None or alert.ends_at > now)


def _route_to(
    deps: RouterDeps,
    route: RouteMatch,
    alert: Alert,
    firing: Sequence[Alert],
    silenced_by: Sequence[Silence],
    now: datetime,
    *,
    slot: int,
    hold: bool = False,
) -> ReceiverOutcome:
    """Decide and notify the route's receiver of ``alert`` in repeat ``slot``. ``hold``
    (a delivery): a first firing of a group notified less than ``group_interval`` ago
    waits for the tick (outcome ``pending``, nothing recorded)."""
    name = route.receiver
    receiver = deps.alerting.receiver(name)
    notifiers = list(deps.notifiers(receiver)) if receiver is not None else []
    if not notifiers:
        return ReceiverOutcome(name, "skipped", "null receiver")
    record_name = ledger_name(alert, name, alert.status, slot)
    retry_of = 0  # the generation of a failed record this attempt retries (0: none)
    if deps.store.stat(deps.bucket, record_name) is not None:
        retry_of = _secret_failure_generation(deps, record_name)
        if not retry_of:
            return ReceiverOutcome(name, "duplicate", "already in the ledger")
    if alert.status == "resolved" and not _notified_firing(deps, alert, name):
        return ReceiverOutcome(name, "skipped", "its firing was never notified")
    base = _record_base(alert, name, route, slot, now)
    # a resolution goes to every receiver that was told of the firing, silence or not:
    # a silenced resolve would leave a PagerDuty incident open and escalating
    reason = (
        None
        if alert.status == "resolved"
        else suppression(deps, route, alert, firing, silenced_by, now)
    )
    if reason is not None:
        suppressed = ledger_name(alert, name, alert.status, slot, suppressed=True)
        _write_record(deps, suppressed, {**base, "status": "suppressed", "reason": reason})
        logger.info(
            "alert suppressed",
            extra={
                "fields": {"fingerprint": alert.fingerprint, "receiver": name, "reason": reason}
            },
        )
        return ReceiverOutcome(name, "suppressed", reason)

    if hold and alert.status == "firing" and slot == 0 and _hold_for_group(deps, route, alert, now):
        logger.info(
            "alert held for its group's next flush (group_interval)",
            extra={"fields": {"fingerprint": alert.fingerprint, "receiver": name}},
        )
        return ReceiverOutcome(name, "pending", "held for the group's next flush")

    key = group_key(route, alert.labels)
    members = [
        a
        for a in firing
        if a.fingerprint != alert.fingerprint
        and group_key(route, a.labels) == key
        and _member_of(deps, route, a, firing, silenced_by, now)
    ]
    return _notify(deps, route, notifiers, (alert,), members, now, slot=slot, retry_of=retry_of)


@dataclass
class _Sent:
    """What the integrations of one receiver did with one notification."""

    codes: list[int] = field(default_factory=list)
    #: fingerprint → when some integration first accepted a notification of it
    delivered: dict[str, datetime] = field(default_factory=dict)
    #: (integration index, fingerprint or "" for the whole notification, the error)
    refused: list[tuple[int, str, PermanentError]] = field(default_factory=list)
    #: resolved (or a new episode) before its firing was sent: not sent, not recorded
    gone: set[str] = field(default_factory=set)
    #: the first transient failure (the delivery is retried), if any
    transient: str | None = None

    def deliver(self, fingerprint: str, at: datetime) -> None:
        first = self.delivered.get(fingerprint)
        self.delivered[fingerprint] = at if first is None else min(first, at)

    def refusals_of(self, fingerprint: str) -> list[dict[str, Any]]:
        return [
            {
                "integration": index,
                "fingerprint": fp or None,
                "status_code": getattr(exc, "status", None),
                "response": str(getattr(exc, "answer", "") or exc)[:ANSWER_CHARS],
                "error_type": type(exc).__name__,
            }
            for index, fp, exc in self.refused
            if fp in ("", fingerprint)
        ]


def _notify(
    deps: RouterDeps,
    route: RouteMatch,
    notifiers: Sequence[Notifier],
    sending: Sequence[Alert],
    context: Sequence[Alert],
    now: datetime,
    *,
    slot: int,
    retry_of: int = 0,
) -> ReceiverOutcome:
    """Send one notification of ``sending`` (non-empty, one status; the last one leads)
    with ``context`` (the group's other firing members, for receivers that show a group)
    to every integration of the receiver, each alert once per integration.

    - Slack / webhook / file / console: one notification, claimed under its leader; once
      accepted, every alert in it gets a ``<integration>.sent.json`` marker under its own
      claims, so a later send (another leader, more members) shows it as context only,
      and its resolution knows it was told. Before sending, each alert but the leader
      gets a ``via-<leader>`` marker (it may be told: its resolution must follow).
    - PagerDuty: one event per alert, each claimed under its own alert: a retry after a
      429 half-way through a big group sends only the rest.
    - An alert resolved before its firing was sent is left out (and the next one leads).
    - Every integration is tried even when one fails (PagerDuty down doesn't keep Slack
      quiet). Any transient failure: nothing is recorded, the outcome is ``transient``
      (the redelivery or the next tick retries; the markers keep what was accepted from
      being sent twice). Otherwise one ledger record per alert, the leader's last:
      ``firing``/``resolved`` if some integration accepted it (its own refusals by the
      others listed in ``refused``), ``failed`` if none did. ``detection_seconds`` counts
      to the first acceptance, whichever delivery it was.
    """
    name = route.receiver
    alert = sending[-1]
    if alert.status == "firing" and len(sending) > 1:
        for member in sending[:-1]:
            via = f"{_claims_dir(member, name, slot)}/via-{alert.fingerprint}.json"
            deps.store.write_once(deps.bucket, via, b"{}", JSON)
    sent = _Sent()
    nonce = new_nonce()
    for index, notifier in enumerate(notifiers):
        _send_integration(deps, route, notifier, index, sending, context, now, slot, nonce, sent)
    for index, fingerprint, exc in sent.refused:
        logger.error(
            "alert delivery refused for good",
            extra={
                "fields": {
                    "fingerprint": fingerprint or alert.fingerprint,
                    "receiver": name,
                    "integration": index,
                    "status_code": getattr(exc, "status", None),
                    "error": str(getattr(exc, "answer", "") or exc)[:ANSWER_CHARS],
                }
            },
        )
    if sent.transient is not None:
        return ReceiverOutcome(
            name, "transient", sent.transient, delivered=tuple(sorted(sent.delivered))
        )
    key = group_key(route, alert.labels)
    recorded_at = deps.now()
    for a in sending:
        if a.fingerprint in sent.gone and a.fingerprint not in sent.delivered:
            continue  # resolved before it was sent: its resolution has nothing to close
        record_name = ledger_name(a, name, a.status, slot)
        base = _record_base(a, name, route, slot, now)
        replacing = retry_of if a is alert else 0
        refusals = sent.refusals_of(a.fingerprint)
        accepted = sent.delivered.get(a.fingerprint)
        if accepted is None:
            first = refusals[0] if refusals else {}
            _write_record(
                deps,
                record_name,
                {**base, "status": "failed", **{k: first.get(k) for k in _REFUSAL_FIELDS}},
                replacing=replacing,
            )
            continue
        _write_record(
            deps,
            record_name,
            {
                **base,
                "status": a.status,
                "notified_at": _iso(accepted),
                "recorded_at": _iso(recorded_at),
                # detection (starts_at → first notification accepted): the first firing only
                "detection_seconds": (
                    round((accepted - a.starts_at).total_seconds(), 3)
                    if a.status == "firing" and slot == 0
                    else None
                ),
                "status_code": max(sent.codes) if sent.codes else None,
                "status_codes": sent.codes,
                "group_key": key,
                "alerts": len(context) + len(sending),
                "refused": refusals,
            },
            replacing=replacing,
        )
        _mark_notified(deps, a, name, slot, accepted)
    delivered = tuple(sorted(sent.delivered))
    if sent.delivered:
        status_code = max(sent.codes) if sent.codes else None
        return ReceiverOutcome(name, "sent", alert.status, status_code, delivered)
    if sent.refused:
        refusal = sent.refused[0][2]
        status = getattr(refusal, "status", None)
        return ReceiverOutcome(
            name,
            "failed",
            str(getattr(refusal, "answer", "") or refusal)[:ANSWER_CHARS],
            status if isinstance(status, int) else None,
        )
    logger.info(
        "alert resolved or replaced before its firing was sent: not sent",
        extra={"fields": {"fingerprint": alert.fingerprint, "receiver": name}},
    )
    return ReceiverOutcome(name, "skipped", "no longer firing")


_REFUSAL_FIELDS = ("status_code", "response", "error_type")


def _claims_dir(alert: Alert, receiver: str, slot: int) -> str:
    return f"{CLAIMS_PREFIX}{episode_dir(alert, receiver)}/{alert.status}-{slot}"


def _told_at(
    deps: RouterDeps, alert: Alert, receiver: str, slot: int, index: int
) -> datetime | None:
    """When integration ``index`` accepted a notification with ``alert`` in it (this slot),
    or None: its ``<index>.sent.json`` marker, or the done marker of a send it led."""
    base = f"{_claims_dir(alert, receiver, slot)}/{index}"
    for marker in (f"{base}.sent.json", f"{base}.done.json"):
        body = _read_json(deps.store, deps.bucket, marker)
        if body is None:
            continue
        return _instant(body.get("at")) or deps.now()
    return None


def _send_integration(
    deps: RouterDeps,
    route: RouteMatch,
    notifier: Notifier,
    index: int,
    sending: Sequence[Alert],
    context: Sequence[Alert],
    now: datetime,
    slot: int,
    nonce: str,
    sent: _Sent,
) -> None:
    """One integration's part of :func:`_notify`, its results added to ``sent``."""
    from shared.adapters.notify.pagerduty import PagerDutyNotifier

    name = route.receiver
    key = group_key(route, sending[-1].labels)
    labels = group_labels(route, sending[-1].labels)
    per_alert = isinstance(notifier, PagerDutyNotifier)
    todo = [a for a in sending if a.fingerprint not in sent.gone]
    if not per_alert:
        told = {a.fingerprint: _told_at(deps, a, name, slot, index) for a in todo}
        for fp, at in told.items():
            if at is not None:
                sent.deliver(fp, at)
        todo = [a for a in todo if told[a.fingerprint] is None]
    while todo:
        lead = todo[0] if per_alert else todo[-1]
        if per_alert:
            alerts: tuple[Alert, ...] = (lead,)
        else:
            shown = [
                *context,
                *(a for a in sending if a not in todo and a.fingerprint not in sent.gone),
            ]
            alerts = (*sorted(shown, key=lambda a: a.fingerprint), *todo)
        notification = Notification(
            receiver=name, group_key=key, group_labels=labels, alerts=alerts
        )
        # the others' markers are written once the send is accepted and before the leader's
        # done marker: a concurrent send that sees the leader told sees them told too
        others = [] if per_alert else [a for a in todo if a is not lead]
        try:
            published = publish_once(
                deps.store,
                deps.bucket,
                f"{_claims_dir(lead, name, slot)}/{index}",
                functools.partial(
                    _send_and_mark, deps, notifier, notification, lead, others, index, slot, now
                ),
                now=now,
                clock=deps.clock,
                nonce=nonce,
                wait_seconds=deps.claim_wait_seconds,
            )
        except _NoLongerFiring:
            sent.gone.add(lead.fingerprint)  # left out; the next one leads
            todo.remove(lead)
            continue
        except SecretUnavailable as exc:  # not the receiver's answer: try again later
            logger.warning(
                "alert delivery could not read the receiver's secret",
                extra={
                    "fields": {
                        "fingerprint": lead.fingerprint,
                        "receiver": name,
                        "integration": index,
                        "error": str(exc)[:ANSWER_CHARS],
                    }
                },
            )
            sent.transient = sent.transient or str(exc)[:ANSWER_CHARS]
            return
        except PermanentError as exc:
            sent.refused.append((index, lead.fingerprint if per_alert else "", exc))
            if per_alert:
                todo.remove(lead)
                continue
            return
        except TransientError as exc:
            logger.warning(
                "alert delivery failed transiently",
                extra={
                    "fields": {
                        "fingerprint": lead.fingerprint,
                        "receiver": name,
                        "integration": index,
                        "error_type": type(exc).__name__,
                        "error": str(exc)[:ANSWER_CHARS],
                    }
                },
            )
            sent.transient = sent.transient or str(exc)[:ANSWER_CHARS]
            return  # PagerDuty rate-limiting or down: the rest wait for the retry
        accepted = published.at or now
        sent.codes.append(int(published.message_id) if published.message_id.isdigit() else 0)
        if per_alert:
            sent.deliver(lead.fingerprint, accepted)
            todo.remove(lead)
            continue
        _mark_sent(deps, name, others, lead, index, slot, accepted)  # again, if a crash lost them
        for a in todo:
            sent.deliver(a.fingerprint, accepted)
        return


def _mark_sent(
    deps: RouterDeps,
    receiver: str,
    alerts: Sequence[Alert],
    lead: Alert,
    index: int,
    slot: int,
    at: datetime,
) -> None:
    """``<index>.sent.json`` (write-once) for each of ``alerts``: integration ``index``
    accepted a notification with it in, led by ``lead``."""
    marker = json.dumps({"at": _iso(at), "via": lead.fingerprint}).encode()
    for a in alerts:
        name = f"{_claims_dir(a, receiver, slot)}/{index}.sent.json"
        deps.store.write_once(deps.bucket, name, marker, JSON)


def _send_and_mark(
    deps: RouterDeps,
    notifier: Notifier,
    notification: Notification,
    lead: Alert,
    others: Sequence[Alert],
    index: int,
    slot: int,
    at: datetime,
) -> str:
    """:func:`_send`, then the others' ``sent`` markers (inside the claim: before the
    leader's done marker)."""
    message_id = _send(deps, notifier, notification, lead)
    _mark_sent(deps, notification.receiver, others, lead, index, slot, at)
    return message_id


def _member_of(
    deps: RouterDeps,
    route: RouteMatch,
    member: Alert,
    firing: Sequence[Alert],
    silenced_by: Sequence[Silence],
    now: datetime,
) -> bool:
    """Whether ``member`` belongs in the route's notification: its own labels reach this
    same route (same ``route_id``: a P3 doesn't ride along on a P1's page) and nothing
    suppresses it for this receiver (silence, time mute, inhibition)."""
    if not any(m.route_id == route.route_id for m in routes_for(deps.alerting, member.labels)):
        return False
    return suppression(deps, route, member, firing, silenced_by, now) is None


class _NoLongerFiring(OpsuiteError):
    """The alert was resolved (or a new episode began) after this firing was decided."""


def _still_firing(deps: RouterDeps, alert: Alert) -> bool:
    """Whether the stored state is still ``alert``'s episode, firing (re-read now)."""
    found = deps.store.read_versioned(deps.bucket, active_name(alert.fingerprint))
    if found is None:
        return False
    state = ActiveAlert.from_bytes(found[0])
    return state.alert.starts_at == alert.starts_at and state.firing_at(deps.now())


def _send(deps: RouterDeps, notifier: Notifier, notification: Notification, alert: Alert) -> str:
    """Send ``notification`` (called holding the claim). A firing is first checked
    against the stored state, re-read now: a tick's snapshot (or a delivery) must not
    send a trigger after the resolve landed. Checked after claiming, so a resolution
    that lands later sees the claim (:func:`_notified_firing`) and is sent."""
    from shared.adapters.notify import deliver_with_retries

    if alert.status == "firing" and not _still_firing(deps, alert):
        raise _NoLongerFiring(alert.fingerprint)

    result = deliver_with_retries(notifier, notification, deadline=deps.deadline, clock=deps.clock)
    return str(result.status_code)


def _record_base(
    alert: Alert, receiver: str, route: RouteMatch, slot: int, now: datetime
) -> dict[str, Any]:
    return {
        "time": _iso(now),
        "fingerprint": alert.fingerprint,
        "alertname": alert.labels.get("alertname", ""),
        "severity": alert.severity,
        "source": alert.source,
        "source_id": alert.source_id,
        "receiver": receiver,
        "route": route.path,
        "alert_status": alert.status,
        "slot": slot,
        "starts_at": _iso(alert.starts_at),
        "ends_at": _iso(alert.ends_at),
        "received_at": _iso(alert.received_at),
        "notified_at": None,
        "detection_seconds": None,
        "status_code": None,
    }


def _write_record(
    deps: RouterDeps, name: str, record: Mapping[str, Any], *, replacing: int = 0
) -> None:
    """Write-once: of concurrent deliveries that reach the same decision one record stays.
    ``replacing``: the generation of the failed record this decision supersedes (it is
    replaced only if unchanged since: a concurrent retry's record stays)."""
    data = json.dumps(record, sort_keys=True).encode()
    if replacing:
        deps.store.write_if_generation(deps.bucket, name, data, JSON, replacing)
    else:
        deps.store.write_once(deps.bucket, name, data, JSON)


#: error types of a ``failed`` record that came from reading the receiver's secret (records
#: written before secret errors were treated as transient): the tick retries that slot
_SECRET_ERROR_TYPES = frozenset({"SecretUnavailable", "PermissionDenied", "NotFound"})


def _secret_failure_generation(deps: RouterDeps, name: str) -> int:
    """The generation of the record ``name`` if it is a ``failed`` one caused by the
    receiver's secret (no HTTP status: the receiver never answered), else 0."""
    found = deps.store.read_versioned(deps.bucket, name)
    if found is None:
        return 0
    try:
        body = json.loads(found[0])
    except ValueError:
        return 0
    if (
        isinstance(body, dict)
        and body.get("status") == "failed"
        and body.get("status_code") is None
        and body.get("error_type") in _SECRET_ERROR_TYPES
    ):
        return found[1]
    return 0


def _mark_notified(deps: RouterDeps, alert: Alert, receiver: str, slot: int, at: datetime) -> None:
    entry = {
        "status": alert.status,
        "slot": slot,
        "at": _iso(at),
        "starts_at": _iso(alert.starts_at),
    }

    def change(current: ActiveAlert | None) -> ActiveAlert | None:
        if current is None or current.alert.starts_at != alert.starts_at:
            return None  # another episode since: its own deliveries record themselves
        if dict(current.notified.get(receiver, {})) == entry:
            return None
        return replace(current, notified={**current.notified, receiver: entry})

    try:
        update_active(deps, alert.fingerprint, change)
    except OpsuiteError as exc:  # the ledger already holds the truth
        logger.warning(
            "could not record the notification on the active alert",
            extra={"fields": {"fingerprint": alert.fingerprint, "error": str(exc)[:200]}},
        )


# -- the scheduled tick -----------------------------------------------------------------
#: an expired silence is kept this long (``silence list`` shows it), then deleted
SILENCE_RETENTION = timedelta(days=5)
#: a resolved alert's state is kept this long (a late open is recognised as stale)
RESOLVED_RETENTION = timedelta(days=5)
#: a resolution not yet told to a receiver that got the firing is retried this long
RESOLVE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class TickOutcome:
    #: what each receiver was told: (fingerprint, receiver, firing|resolved, slot)
    notified: tuple[tuple[str, str, str, int], ...] = ()
    #: (fingerprint, receiver, reason) held back by a silence, mute or inhibition
    suppressed: tuple[tuple[str, str, str], ...] = ()
    #: firing alerts past the ``ends_at`` they announced, now resolved
    expired_alerts: tuple[str, ...] = ()
    #: silences deleted (expired more than SILENCE_RETENTION ago)
    silences_deleted: tuple[str, ...] = ()
    #: resolved alert states deleted (resolved more than RESOLVED_RETENTION ago)
    states_deleted: tuple[str, ...] = ()
    #: what could not be done this time (a receiver down, a failure): the next tick retries
    failed: tuple[str, ...] = ()


def tick(deps: RouterDeps) -> TickOutcome:
    """The scheduled pass (Cloud Scheduler, every 5 min): what no delivery will do.

    - A firing alert past the ``ends_at`` it announced (a test notification) is resolved.
    - Each group with pending alerts, ``group_interval`` after its last notification,
      is flushed: one notification per group (see the module docstring).
    - Each other firing alert is told to each receiver in its current repeat slot
      (:func:`repeat_slot`) unless that slot's record exists: a repeat
      ``repeat_interval`` after the receiver's last notification, and the first
      notification of an alert whose silence, mute time or inhibition is over.
    - A resolution not yet told to a receiver that got the firing (it was silenced at
      the time) is told.
    - Silences expired more than SILENCE_RETENTION ago and resolved states older than
      RESOLVED_RETENTION are deleted.

    Claims are shared with the deliveries (same ledger keys), so a tick running with a
    delivery sends nothing twice. Each alert, group and silence is handled on its own:
    one that fails (a receiver down, an unreadable state, a bug) is logged and listed in
    ``failed`` and the pass goes on with the others. The tick never asks for its own
    redelivery: the next tick, five minutes later, is the retry (a redelivered tick
    would pile up behind a receiver that is down for hours).
    """
    now = deps.now()
    failed: list[str] = []
    expired: list[str] = []
    for state in _listed(lambda: active_alerts(deps), "active alerts", failed):
        a = state.alert
        with _contained("expire", a.fingerprint, failed):
            if a.status == "firing" and a.ends_at is not None and a.ends_at <= now:
                applied: list[bool] = []
                update_active(deps, a.fingerprint, _expire(a, now, applied))
                if any(applied):
                    expired.append(a.fingerprint)

    deleted_silences: list[str] = []
    current: list[Silence] = []
    for silence in _listed(lambda: silences(deps), "silences", failed):
        with _contained("silence", silence.id, failed):
            if silence.ends_at <= now - SILENCE_RETENTION and silence.name:
                with contextlib.suppress(NotFound):
                    deps.store.delete(deps.bucket, silence.name)
                deleted_silences.append(silence.id)
            elif silence.active_at(now):
                current.append(silence)

    states = _listed(lambda: active_alerts(deps), "active alerts", failed)
    firing = [s.alert for s in states if _firing(s.alert, now)]
    notified: list[tuple[str, str, str, int]] = []
    suppressed: list[tuple[str, str, str]] = []
    deleted_states: list[str] = []
    flush = _flush_groups(deps, states, firing, current, now)
    notified.extend(flush.notified)
    suppressed.extend(flush.suppressed)
    failed.extend(flush.failed)
    for state in states:
        a = state.alert
        with _contained("alert", a.fingerprint, failed):
            if not _firing(a, now):
                if a.status == "firing":
                    continue  # past its ends_at, and someone else is resolving it
                ends_at = a.ends_at or a.starts_at
                if ends_at <= now - RESOLVED_RETENTION:
                    if _delete_if_unchanged(deps, a):
                        deleted_states.append(a.fingerprint)
                    continue
                if ends_at < now - RESOLVE_WINDOW:
                    continue
            for route in routes_to_tell(deps, a):
                if a.status == "firing" and (a.fingerprint, route.receiver) in flush.held:
                    continue  # its group's (above)
                with _contained("alert", f"{a.fingerprint}/{route.receiver}", failed):
                    slot = repeat_slot(deps, route, state, now) if a.status == "firing" else 0
                    result = _route_to(deps, route, a, firing, current, now, slot=slot)
                    if result.result == "sent":
                        notified.append((a.fingerprint, route.receiver, a.status, slot))
                    elif result.result == "suppressed":
                        suppressed.append((a.fingerprint, route.receiver, result.detail))
                    elif result.result == "transient":
                        failed.append(f"{a.fingerprint}/{route.receiver}: {result.detail[:200]}")
    return TickOutcome(
        notified=tuple(notified),
        suppressed=tuple(suppressed),
        expired_alerts=tuple(expired),
        silences_deleted=tuple(deleted_silences),
        states_deleted=tuple(deleted_states),
        failed=tuple(failed),
    )


def _listed(listing: Callable[[], list[T]], what: str, failed: list[str]) -> list[T]:
    """A listing of the tick's: empty (logged, listed in ``failed``) when it fails."""
    found: list[T] = []
    with _contained("listing", what, failed):
        found = listing()
    return found


@contextlib.contextmanager
def _contained(what: str, key: str, failed: list[str]) -> Iterator[None]:
    """One item of the tick: a failure is logged and listed, and the pass goes on."""
    try:
        yield
    except OpsuiteError as exc:  # a receiver or the store, reported in its own terms
        logger.warning(
            f"tick: {what} {key} not done; the next tick retries",
            extra={"fields": {"key": key, "error_type": type(exc).__name__, "error": str(exc)}},
        )
        failed.append(f"{what} {key}: {str(exc)[:200]}")
    except Exception as exc:  # a bug or a state nobody foresaw: one must not stop them all
        logger.error(
            f"tick: {what} {key} failed unexpectedly; the next tick retries",
            extra={"fields": {"key": key, "error_type": type(exc).__name__, "error": str(exc)}},
            exc_info=True,
        )
        failed.append(f"{what} {key}: {type(exc).__name__}")


@dataclass(frozen=True)
class _Flush:
    notified: list[tuple[str, str, str, int]] = field(default_factory=list)
    suppressed: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: (fingerprint, receiver) that were pending in a group: the per-alert pass skips them
    held: set[tuple[str, str]] = field(default_factory=set)


def _flush_groups(
    deps: RouterDeps,
    states: Sequence[ActiveAlert],
    firing: Sequence[Alert],
    current: Sequence[Silence],
    now: datetime,
) -> _Flush:
    """Each group with pending alerts whose last notification is ``group_interval`` old:
    one notification of its pending alerts still firing (with the group's other firing
    members as context), through :func:`_notify` (the claims are the leader's, so a
    redelivered or concurrent tick sends once; each alert gets its ledger record)."""
    by_fingerprint = {s.alert.fingerprint: s.alert for s in states}
    flush = _Flush()
    for name, group in _listed(lambda: alert_groups(deps), "alert groups", flush.failed):
        with _contained("group", f"{group.receiver} {group.group_key}", flush.failed):
            _flush_group(deps, name, group, by_fingerprint, firing, current, now, flush)
    return flush


def _flush_group(
    deps: RouterDeps,
    name: str,
    group: AlertGroup,
    by_fingerprint: Mapping[str, Alert],
    firing: Sequence[Alert],
    current: Sequence[Silence],
    now: datetime,
    flush: _Flush,
) -> None:
    """One group of :func:`_flush_groups`."""
    if not group.pending:
        return
    flush.held.update((fp, group.receiver) for fp in group.pending)
    done: set[str] = set()  # leaves the pending list
    candidates: list[tuple[Alert, RouteMatch]] = []
    for fp in group.pending:
        alert = by_fingerprint.get(fp)
        route = None
        if alert is not None and _firing(alert, now):
            route = next(
                (
                    m
                    for m in routes_for(deps.alerting, alert.labels)
                    if m.route_id == group.route_id and m.receiver == group.receiver
                ),
                None,
            )
        if (
            alert is None
            or route is None
            or group_key(route, alert.labels) != group.group_key
            or deps.store.stat(deps.bucket, ledger_name(alert, group.receiver, "firing", 0))
        ):
            done.add(fp)  # resolved, re-routed or already recorded: not the group's now
            continue
        candidates.append((alert, route))
    sent = False
    if candidates:
        route = candidates[-1][1]
        last = group.last_sent_at
        if last is not None and now - last < route.group_interval:
            return  # not due yet
        receiver = deps.alerting.receiver(group.receiver)
        notifiers = list(deps.notifiers(receiver)) if receiver is not None else []
        sending: list[Alert] = []
        for alert, _ in candidates:
            reason = suppression(deps, route, alert, firing, current, now)
            if not notifiers or not _still_firing(deps, alert):
                done.add(alert.fingerprint)
            elif reason is not None:
                base = _record_base(alert, group.receiver, route, 0, now)
                _write_record(
                    deps,
                    ledger_name(alert, group.receiver, "firing", 0, suppressed=True),
                    {**base, "status": "suppressed", "reason": reason},
                )
                flush.suppressed.append((alert.fingerprint, group.receiver, reason))
                done.add(alert.fingerprint)
            else:
                sending.append(alert)
        if sending:
            keys = {a.fingerprint for a in sending}
            context = [
                a
                for a in firing
                if a.fingerprint not in keys
                and group_key(route, a.labels) == group.group_key
                and _member_of(deps, route, a, firing, current, now)
            ]
            result = _notify(deps, route, notifiers, sending, context, now, slot=0)
            if result.result == "transient":
                # what was accepted stays pending: the next flush shows it as context only
                # (its markers) and records it with the rest
                flush.failed.append(
                    f"group {group.receiver} {group.group_key}: {result.detail[:200]}"
                )
            else:  # every alert of the batch is recorded, or was resolved before it was sent
                done.update(keys)
                sent = bool(result.delivered)
                flush.notified.extend(
                    (a.fingerprint, group.receiver, "firing", 0)
                    for a in sending
                    if a.fingerprint in result.delivered
                )
    if done:
        update_group(deps, name, _flushed(done, now if sent else None))


def _flushed(
    done: set[str], sent_at: datetime | None
) -> Callable[[AlertGroup | None], AlertGroup | None]:
    def change(current: AlertGroup | None) -> AlertGroup | None:
        if current is None:
            return None
        pending = tuple(fp for fp in current.pending if fp not in done)
        if sent_at is None:
            return None if pending == current.pending else replace(current, pending=pending)
        return replace(current, pending=pending, last_sent_at=sent_at, last_sent_by=None)

    return change


def _expire(
    alert: Alert, now: datetime, applied: list[bool]
) -> Callable[[ActiveAlert | None], ActiveAlert | None]:
    """The change resolving ``alert`` (``applied`` says whether the last try changed it)."""

    def change(current: ActiveAlert | None) -> ActiveAlert | None:
        applied[:] = [False]
        if current is None:
            return None
        a = current.alert
        if a.status != "firing" or a.starts_at != alert.starts_at:
            return None  # resolved or a new episode since
        if a.ends_at is None or a.ends_at > now:
            return None
        applied[:] = [True]
        return replace(current, alert=replace(a, status="resolved"), updated_at=now)

    return change


def _delete_if_unchanged(deps: RouterDeps, alert: Alert) -> bool:
    """Delete a long-resolved state unless it changed since it was listed (the port has
    no conditional delete: a new episode written in the instant between this read and
    the delete would be lost; its next delivery or the tick's stale check re-creates it)."""
    name = active_name(alert.fingerprint)
    found = deps.store.read_versioned(deps.bucket, name)
    if found is None:
        return False
    if ActiveAlert.from_bytes(found[0]).alert != alert:
        return False
    with contextlib.suppress(NotFound):
        deps.store.delete(deps.bucket, name)
    return True
