"""Alert inputs: one Pub/Sub message (an incident or one of the suite's events) → one Alert.

Pure: no I/O, no clock (the caller passes ``received_at``). :func:`alert_from_message`
returns an :class:`~shared.models.Alert`, ``None`` for a valid message that is not an
alert, and raises :class:`~shared.errors.BadInput` (a short message naming the field) for
a malformed one. Nothing else escapes for any message body.

Sources (``topic_kind``; ``None`` detects it: an ``event_type`` attribute or body ``type``
``slo.*`` → alerts, ``backup.*`` → backup_events; a body with ``incident`` or ``version``
→ incidents):

**Cloud Monitoring incidents** (``incidents``; notification ``version`` "1.2").

* fingerprint = ``sha256(json(["monitoring-condition", condition.name, resource.type,
  sorted resource.labels, sorted metric.labels]))[:32]`` where ``condition.name`` is the
  condition's resource name ``projects/<project>/alertPolicies/<policy_id>/conditions/
  <condition_id>``: display names are user-editable, so renaming a policy while an
  incident is open must not give its close another fingerprint, and two policies sharing
  a display name must not collapse into one alert. Only without a ``condition.name`` of
  that shape (absent, null, or anything else) the display names identify it instead:
  ``sha256(json(["monitoring", policy_name, condition_name, resource.type, sorted
  resource.labels, sorted metric.labels]))[:32]``. Not the incident id, the times or the
  text, so the open and the close of one incident share it whichever arrives first.
  Metric labels are in the key because Cloud Monitoring opens
  one incident per violating *time series*: the suite's custom metrics live on the
  ``global`` resource and differ only by metric labels (``freshness/age_hours{table}``),
  so per-table incidents must not collapse into one alert. Label values enter the key
  as received (before capping); null values are left out.
* status: ``state`` open → firing, closed → resolved (case-insensitive; anything else,
  or no state, is BadInput).
* severity: ``policy_user_labels.severity``, else the incident's ``severity``, else P2.
  Both accept ``p0``-``p3`` (any case) and the Cloud Monitoring / PagerDuty words
  ``critical`` → P1, ``error`` → P2, ``warning`` → P3, ``info`` → P3. P0 is reserved for
  what a policy explicitly labels ``severity: p0``. An unrecognised value ("No
  severity", "high") falls through to the next source.
* labels: ``alertname`` (the policy name: control characters removed, single-spaced,
  ≤ 256 chars; the condition name when there is no policy name), ``source=monitoring``,
  ``severity``, ``policy``, ``condition``, ``project`` (scoping_project_id),
  ``resource_type``, ``resource_<k>`` for each resource label, ``metric_type``,
  ``metric_<k>`` for each metric label, ``test="true"`` for test notifications, then
  every ``policy_user_labels`` entry under its own (sanitised) name; the names above win
  a clash.
* annotations: ``summary`` (incident summary, else documentation subject, else
  "policy: condition"), ``description`` (documentation.content; a plain-string
  documentation of older payloads is the content), ``subject``, ``console`` (incident
  url, https only; also ``generator_url``), ``runbook`` (an https ``runbook`` /
  ``runbook_url`` user label, else the documentation link named runbook/playbook, else
  the first https documentation link), ``observed_value``, ``threshold_value``,
  ``resource_name``, ``incident_id``.
* starts_at = ``started_at``; ends_at = ``ended_at`` for a closed incident (never before
  starts_at). Times may be epoch seconds as int, float or digit string, or RFC 3339
  text; 0 / null / missing means "not given": the message's publish time, else
  ``received_at``. Every instant must be in the plausible window (below), else BadInput.
* **Test notifications** (``"version": "test"``, or a policy named ``test``, ``test
  policy``, ``test notification`` or starting ``[test]``: deliberately narrow, a real
  policy called "Test latency p99" is not a test) → a *firing* Alert labelled
  ``test="true"`` whose ``ends_at`` is ``received_at + TEST_ALERT_TTL`` (5 min), with
  fingerprint ``sha256(json(["monitoring-test", message_id or incident_id]))[:32]``
  (a redelivery is the same alert; another click is a new one). ``state`` is ignored and
  the incident may be absent. The router is expected to treat a firing alert whose
  ``ends_at`` has passed as resolved (Alertmanager's semantics), so a test notifies
  once and never repeats; routes can match ``test="true"`` (e.g. to Slack only).

**SLO events** (``alerts``, topic ``opsuite-alerts``, from ``shared.services.sla``):
``slo.breached`` and ``slo.burn_rate`` → firing, ``slo.recovered`` → resolved.
fingerprint = the ``fingerprint`` attribute (required, 16-64 lowercase hex; it names SLO
+ condition, the same for start and end). Attributes win; a body field that contradicts
its attribute (type, slo, condition, fingerprint, event_id) is BadInput. labels:
``alertname="SLO <slo> <condition>"``, ``source=slo``, ``slo``, ``condition``,
``severity`` (P0-P3 as the event says; missing → P2), ``urgency``, ``burn_pair``.
annotations: ``summary`` (built from the change), ``description``, ``runbook`` (an https
URL; a repository path is kept as ``runbook_ref``), ``detail`` (the scalar entries of
the body's ``detail``), ``objective``, ``window``, ``compliance``, ``sli_value``,
``budget_remaining``, ``event_type``. starts_at = body ``at`` (else publish time, else
``received_at``); a recovery carries only its own instant, so ends_at = starts_at = it
(the router keeps the stored alert's starts_at). source_id = ``event_id``.

**Backup events** (``backup_events``, topic ``opsuite-backup-events``, from
``shared.services.backup``): ``backup.failed`` (status partial or failed) → firing,
severity P1; ``backup.completed`` (status complete) → resolved. One alert per backup
job, not per run: fingerprint = ``sha256(json(["backup", "gs://<bucket>/<prefix>"]))[:32]``
with bucket and prefix taken from the body's ``manifest`` URI
(``gs://B/P/<run_id>/_manifest.json``); a body without ``manifest`` uses the scope
``backup_export`` (one job per deployment) rather than dropping a failure page. A
completed *subset* run (``YYYYMMDD-<hash>``) returns ``None``: it holds some tables
only and does not prove the nightly backup, so it resolves nothing. labels:
``alertname=BackupFailed``, ``source=backup``, ``severity=P1``, ``job=backup_export``,
``bucket``, ``prefix``. annotations: ``summary`` (naming up to 10 failed tables),
``description`` (each failed table's error, the run's errors), ``run_id``, ``date``,
``instant``, ``manifest``. starts_at (and ends_at when resolved) = publish time, else
``received_at``. source_id = run_id.

**Drills** publish no event yet: a failed restore drill reaches the router as the SLA
evaluator's ``slo.breached`` of the ``recovery_time`` SLO. A ``drill.*`` event is
BadInput until one exists.

Hostile input: the body must be UTF-8 JSON (no NaN/Infinity, nesting the parser can
hold, integers of at most 4300 digits) whose top level is an object; every field we read
must have its documented type; unknown fields are ignored. Label names are sanitised to
Prometheus' ``[a-zA-Z_][a-zA-Z0-9_]*`` (≤ 128 chars; a clash after sanitising keeps the
first in sorted order), at most ``MAX_LABELS`` (64) labels, values ≤ 1024 chars,
annotations ≤ 4096 chars (cut with "…"); control and bidi-override characters are
removed (annotations keep newlines and tabs), lone surrogates become "?". URLs kept as
links are https with a host and no whitespace, ≤ 2048 chars.

Plausible instants: every time read from a message (incident ``started_at`` /
``ended_at``, an SLO event's ``at``, the publish time) must lie in ``[EARLIEST_INSTANT,
received_at + MAX_FUTURE]``, i.e. from 2000-01-01T00:00:00Z to one day after the message
arrived; anything else is BadInput naming the field. Nothing the suite watches predates
2000, and a producer's clock is never a day ahead (a local time mislabelled as UTC is at
most 14 h off), while a year-1 or year-9999 instant would overflow the router's own
arithmetic (``ends_at + timedelta(days=…)``) and break every later tick. Past times
have no tighter bound: a message may be redelivered long after it was published.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from shared.config import Severity
from shared.errors import BadInput
from shared.events import MAX_MESSAGE_BYTES, PubSubMessage
from shared.identifiers import bucket_name, object_prefix
from shared.manifest import MANIFEST, is_run_id
from shared.models import Alert, AlertStatus

TopicKind = Literal["incidents", "alerts", "backup_events"]

MAX_LABEL_VALUE = 1024
MAX_ANNOTATION = 4096
MAX_LABEL_NAME = 128
MAX_LABELS = 64
MAX_ALERTNAME = 256
MAX_URL = 2048
#: a test notification resolves itself this long after it arrived
TEST_ALERT_TTL = timedelta(minutes=5)
DEFAULT_SEVERITY: Severity = "P2"
BACKUP_SEVERITY: Severity = "P1"
#: the scope of a backup event that names no manifest
BACKUP_JOB = "backup_export"
_FAILED_TABLES_SHOWN = 10

_SEVERITIES: Mapping[str, Severity] = {
    "p0": "P0",
    "p1": "P1",
    "p2": "P2",
    "p3": "P3",
    "critical": "P1",
    "error": "P2",
    "warning": "P3",
    "info": "P3",
}
_TEST_POLICY_NAMES = frozenset({"test", "test policy", "test notification"})
_SLO_STATUS: Mapping[str, AlertStatus] = {
    "slo.breached": "firing",
    "slo.burn_rate": "firing",
    "slo.recovered": "resolved",
}
_BACKUP_STATUSES: Mapping[str, frozenset[str]] = {
    "backup.failed": frozenset({"partial", "failed"}),
    "backup.completed": frozenset({"complete"}),
}
_HEX_ID = re.compile(r"[0-9a-f]{16,64}")
_SLO_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_BURN_PAIR = re.compile(r"[0-9]{1,6}[smhd]/[0-9]{1,6}[smhd]")
_EPOCH_TEXT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
_MANIFEST_URI = re.compile(
    r"gs://(?P<bucket>[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9])/(?:(?P<prefix>[A-Za-z0-9_./-]{0,512})/)?"
    r"(?P<run_id>[0-9]{8}(?:-[0-9a-f]{8})?)/" + re.escape(MANIFEST)
)
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z
_CONDITION_RESOURCE = re.compile(
    r"projects/[a-z0-9][a-z0-9.:-]{0,127}/alertPolicies/[A-Za-z0-9_-]{1,128}"
    r"/conditions/[A-Za-z0-9_-]{1,128}"
)
#: no instant in a message is earlier than this (see "Plausible instants")
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
#: nor later than this after the message was received
MAX_FUTURE = timedelta(days=1)
#: C0/C1 controls and DEL, bidi embeddings/overrides/isolates, line/paragraph separators
_UNSAFE_LABEL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_UNSAFE_TEXT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)
_SPACES = re.compile(r"\s+")
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")


class _NotFinite(ValueError):
    pass


# -- the entry point --------------------------------------------------------------------
def alert_from_message(
    message: PubSubMessage, *, topic_kind: TopicKind | None, received_at: datetime
) -> Alert | None:
    """The alert one message stands for (see the module docstring for every rule).

    ``topic_kind`` names the topic the message came from (None: detect it).
    ``received_at`` is when the router got the message (timezone-aware).
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    received_at = received_at.astimezone(UTC)
    body = load_body(message.data)
    kind = topic_kind if topic_kind is not None else detect_topic_kind(message, body)
    if kind == "incidents":
        return _incident_alert(body, message, received_at)
    if kind == "alerts":
        return _slo_alert(body, message, received_at)
    if kind == "backup_events":
        return _backup_alert(body, message, received_at)
    raise ValueError(f"unknown topic kind {kind!r}")


def load_body(data: bytes) -> dict[str, Any]:
    """The message body as a JSON object, or BadInput saying what it is instead."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise BadInput(f"message body is larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BadInput(f"message body is not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise BadInput("message body is empty (expected a JSON object)")
    try:
        body = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        raise BadInput(f"message body is not JSON ({exc})") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"message body is not JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise BadInput("message body is nested too deeply") from None
    except ValueError:  # e.g. an integer literal longer than Python's 4300 digits
        raise BadInput("message body is not JSON (a number is too long)") from None
    if not isinstance(body, dict):
        raise BadInput(f"message body must be a JSON object, not {_kind(body)}")
    return body


def detect_topic_kind(message: PubSubMessage, body: Mapping[str, Any]) -> TopicKind:
    """Which source a message is from, by its ``event_type`` / body ``type`` or shape."""
    event_type = message.attributes.get("event_type")
    if event_type is None:
        declared = body.get("type")
        event_type = declared if isinstance(declared, str) else None
    if event_type is not None:
        if event_type.startswith("slo."):
            return "alerts"
        if event_type.startswith("backup."):
            return "backup_events"
        if event_type.startswith("drill."):
            raise BadInput(_DRILL_NOTE)
    if "incident" in body or "version" in body:
        return "incidents"
    if event_type is not None:
        raise BadInput(f"event_type: {_show(event_type)} is not an alert source")
    raise BadInput(
        "message is neither a Cloud Monitoring notification (no 'incident') "
        "nor a suite event (no event_type)"
    )


_DRILL_NOTE = (
    "event_type: drill events are not published; a failed restore drill is reported "
    "as slo.breached of the recovery_time SLO"
)


# -- fingerprints -----------------------------------------------------------------------
def _digest(*parts: object) -> str:
    key = json.dumps(parts, separators=(",", ":"), sort_keys=True)  # ASCII: surrogates too
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:32]


def incident_fingerprint(
    policy_name: str,
    condition_name: str,
    resource_type: str,
    resource_labels: Mapping[str, str],
    metric_labels: Mapping[str, str],
) -> str:
    """One Cloud Monitoring problem by display names: the policy's condition on one time
    series (only for an incident without a ``condition.name``)."""
    return _digest(
        "monitoring",
        policy_name,
        condition_name,
        resource_type,
        sorted(resource_labels.items()),
        sorted(metric_labels.items()),
    )


def condition_fingerprint(
    condition_resource: str,
    resource_type: str,
    resource_labels: Mapping[str, str],
    metric_labels: Mapping[str, str],
) -> str:
    """One Cloud Monitoring problem by the condition's resource name
    (``projects/P/alertPolicies/ID/conditions/ID``) on one time series."""
    return _digest(
        "monitoring-condition",
        condition_resource,
        resource_type,
        sorted(resource_labels.items()),
        sorted(metric_labels.items()),
    )


def monitoring_test_fingerprint(message_id: str) -> str:
    return _digest("monitoring-test", message_id)


def backup_fingerprint(scope: str) -> str:
    """One backup job: ``gs://bucket/prefix`` of its runs, or ``backup_export``."""
    return _digest("backup", scope)


# -- severity and labels ----------------------------------------------------------------
def severity_of(value: str | None) -> Severity | None:
    """``p0``-``p3`` (any case) or critical / error / warning / info; None otherwise."""
    if value is None:
        return None
    return _SEVERITIES.get(value.strip().casefold())


def label_name(raw: str) -> str | None:
    """A Prometheus label name from any text (``user-label-1`` → ``user_label_1``)."""
    name = _NOT_LABEL_CHAR.sub("_", raw)
    if not name:
        return None
    if name[0].isdigit():
        name = "_" + name
    return name[:MAX_LABEL_NAME]


def label_value(raw: str) -> str:
    text = _UNSAFE_LABEL.sub(" ", _encodable(raw))
    return _cap(_SPACES.sub(" ", text).strip(), MAX_LABEL_VALUE)


def annotation_value(raw: str) -> str:
    text = _encodable(raw).replace("\r\n", "\n").replace("\r", "\n")
    return _cap(_UNSAFE_TEXT.sub("", text).strip(), MAX_ANNOTATION)


def https_url(raw: str | None) -> str | None:
    """``raw`` if it is an https URL with a host and nothing odd in it, else None."""
    if raw is None or len(raw) > MAX_URL or _UNSAFE_LABEL.search(raw) or _SPACES.search(raw):
        return None
    try:
        parts = urlsplit(raw)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not host or "@" in parts.netloc:
        return None
    return _encodable(raw)


class _Labels:
    """Labels in priority order: the first of a name wins, at most MAX_LABELS."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add(self, name: str, value: str | None) -> None:
        if value is None:
            return
        clean_name = label_name(name)
        clean_value = label_value(value)
        if (
            clean_name is None
            or not clean_value
            or clean_name in self.items
            or len(self.items) >= MAX_LABELS
        ):
            return
        self.items[clean_name] = clean_value

    def add_all(self, prefix: str, labels: Mapping[str, str]) -> None:
        for key in sorted(labels):
            self.add(prefix + key, labels[key])


class _Annotations:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def add(self, name: str, value: str | None) -> None:
        if value is None or name in self.items:
            return
        text = annotation_value(value)
        if text:
            self.items[name] = text


# -- Cloud Monitoring incidents ---------------------------------------------------------
def _incident_alert(
    body: Mapping[str, Any], message: PubSubMessage, received_at: datetime
) -> Alert:
    version = _text(body.get("version"), "version")
    test = version is not None and version.strip().casefold() == "test"
    raw = body.get("incident")
    if raw is None and not test:
        raise BadInput("incident: missing (expected the notification's incident object)")
    incident = _object(raw, "incident") if raw is not None else {}
    policy = _text(incident.get("policy_name"), "incident.policy_name")
    condition = _text(incident.get("condition_name"), "incident.condition_name")
    condition_resource = _condition_resource(incident.get("condition"))
    test = test or _is_test_policy(policy)
    incident_id = _text(incident.get("incident_id"), "incident.incident_id")
    state = _text(incident.get("state"), "incident.state")
    status: AlertStatus = "firing"
    if not test:
        if state is None:
            raise BadInput("incident.state: missing (expected open or closed)")
        folded = state.strip().casefold()
        if folded not in ("open", "closed"):
            raise BadInput(f"incident.state: {_show(state)} is not open or closed")
        status = "firing" if folded == "open" else "resolved"
        if not (policy or condition):
            raise BadInput(
                "incident: no policy_name or condition_name (can't tell which problem it is)"
            )

    resource = _object(incident.get("resource"), "incident.resource", optional=True)
    resource_type = _text(resource.get("type"), "incident.resource.type")
    resource_labels = _string_map(resource.get("labels"), "incident.resource.labels")
    metric = _object(incident.get("metric"), "incident.metric", optional=True)
    metric_type = _text(metric.get("type"), "incident.metric.type")
    metric_labels = _string_map(metric.get("labels"), "incident.metric.labels")
    user_labels = _string_map(incident.get("policy_user_labels"), "incident.policy_user_labels")
    project = _text(incident.get("scoping_project_id"), "incident.scoping_project_id")

    user_severity = next(
        (v for k, v in sorted(user_labels.items()) if k.casefold() == "severity"), None
    )
    severity: Severity = (
        severity_of(user_severity)
        or severity_of(_text(incident.get("severity"), "incident.severity"))
        or DEFAULT_SEVERITY
    )

    fallback = _published(message, received_at) or received_at
    started = _instant(incident.get("started_at"), "incident.started_at", received_at)
    ended = _instant(incident.get("ended_at"), "incident.ended_at", received_at)
    starts_at = started or fallback
    ends_at: datetime | None = None
    if test:
        ends_at = received_at + TEST_ALERT_TTL
    elif status == "resolved":
        ends_at = max(ended or fallback, starts_at)

    if test:
        fingerprint = monitoring_test_fingerprint(message.message_id or incident_id or "")
    elif condition_resource is not None:
        fingerprint = condition_fingerprint(
            condition_resource, resource_type or "", resource_labels, metric_labels
        )
    else:
        fingerprint = incident_fingerprint(
            policy or "", condition or "", resource_type or "", resource_labels, metric_labels
        )

    labels = _Labels()
    alertname = policy or condition or ("Cloud Monitoring test notification" if test else "")
    labels.add("alertname", _cap(label_value(alertname), MAX_ALERTNAME))
    labels.add("source", "monitoring")
    labels.add("severity", severity)
    labels.add("policy", policy)
    labels.add("condition", condition)
    labels.add("project", project)
    labels.add("resource_type", resource_type)
    labels.add("metric_type", metric_type)
    if test:
        labels.add("test", "true")
    labels.add_all("resource_", resource_labels)
    labels.add_all("metric_", metric_labels)
    labels.add_all("", user_labels)

    content, subject, links = _documentation(incident.get("documentation"))
    console = https_url(_text(incident.get("url"), "incident.url"))
    runbook = _runbook(user_labels, links)
    summary = _text(incident.get("summary"), "incident.summary") or subject
    if not summary:
        summary = ": ".join(p for p in (policy, condition) if p) or "Cloud Monitoring incident"
    notes = _Annotations()
    notes.add("summary", summary)
    notes.add("description", content)
    notes.add("subject", subject)
    notes.add("console", console)
    notes.add("runbook", runbook)
    notes.add("observed_value", _text(incident.get("observed_value"), "incident.observed_value"))
    notes.add("threshold_value", _text(incident.get("threshold_value"), "incident.threshold_value"))
    notes.add(
        "resource_name",
        _text(incident.get("resource_display_name"), "incident.resource_display_name")
        or _text(incident.get("resource_name"), "incident.resource_name"),
    )
    notes.add("incident_id", incident_id)
    return Alert(
        fingerprint=fingerprint,
        status=status,
        severity=severity,
        labels=labels.items,
        annotations=notes.items,
        starts_at=starts_at,
        ends_at=ends_at,
        source="monitoring",
        source_id=label_value(incident_id or message.message_id),
        generator_url=console,
        received_at=received_at,
    )


def _condition_resource(value: object) -> str | None:
    """``incident.condition.name`` if it is a condition's resource name, else None (the
    display names identify the incident then: a ``condition`` that isn't an object, or a
    ``name`` that isn't such a string, is not a reason to drop the incident)."""
    if not isinstance(value, Mapping):
        return None
    name = value.get("name")
    if not isinstance(name, str) or not _CONDITION_RESOURCE.fullmatch(name):
        return None
    return name


def _is_test_policy(policy: str | None) -> bool:
    if policy is None:
        return False
    name = _SPACES.sub(" ", policy).strip().casefold()
    return name in _TEST_POLICY_NAMES or name.startswith("[test]")


def _documentation(value: object) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """(content, subject, [(link name, https url)]) of ``incident.documentation``."""
    if value is None:
        return None, None, []
    if isinstance(value, str):  # older payloads: the content as a string
        return value, None, []
    doc = _object(value, "incident.documentation")
    content = _text(doc.get("content"), "incident.documentation.content")
    subject = _text(doc.get("subject"), "incident.documentation.subject")
    raw_links = doc.get("links")
    links: list[tuple[str, str]] = []
    if raw_links is not None:
        if not isinstance(raw_links, list):
            raise BadInput(f"incident.documentation.links: expected a list, not {_kind(raw_links)}")
        for i, item in enumerate(raw_links[:20]):
            where = f"incident.documentation.links[{i}]"
            link = _object(item, where)
            name = _text(link.get("display_name"), f"{where}.display_name") or _text(
                link.get("displayName"), f"{where}.displayName"
            )
            url = https_url(_text(link.get("url"), f"{where}.url"))
            if url is not None:
                links.append((name or "", url))
    return content, subject, links


def _runbook(user_labels: Mapping[str, str], links: Sequence[tuple[str, str]]) -> str | None:
    for key in ("runbook", "runbook_url"):
        url = https_url(user_labels.get(key))
        if url is not None:
            return url
    for name, url in links:
        if any(word in name.casefold() for word in ("runbook", "playbook")):
            return url
    return links[0][1] if links else None


# -- SLO events -------------------------------------------------------------------------
def _slo_alert(body: Mapping[str, Any], message: PubSubMessage, received_at: datetime) -> Alert:
    attributes = message.attributes
    event_type = _agreed(attributes, body, "event_type", "type")
    if event_type is None:
        raise BadInput("event_type: missing (expected slo.breached, slo.burn_rate, slo.recovered)")
    if event_type not in _SLO_STATUS:
        if event_type.startswith("drill."):
            raise BadInput(_DRILL_NOTE)
        raise BadInput(
            f"event_type: {_show(event_type)} is not slo.breached, slo.burn_rate or slo.recovered"
        )
    status = _SLO_STATUS[event_type]
    fingerprint = attributes.get("fingerprint")
    if fingerprint is None:
        raise BadInput("fingerprint attribute: missing (the SLA evaluator sets it on each event)")
    _agreed(attributes, body, "fingerprint")
    if not _HEX_ID.fullmatch(fingerprint):
        raise BadInput(f"fingerprint: {_show(fingerprint)} is not 16-64 lowercase hex digits")
    slo = _required(_agreed(attributes, body, "slo"), "slo", _SLO_NAME, "an SLO name")
    condition = _required(
        _agreed(attributes, body, "condition"), "condition", _WORD, "sli, budget or burn"
    )
    event_id = _agreed(attributes, body, "event_id")
    if event_id is not None and not _HEX_ID.fullmatch(event_id):
        raise BadInput(f"event_id: {_show(event_id)} is not 16-64 lowercase hex digits")
    raw_severity = attributes.get("severity") or _text(body.get("severity"), "severity")
    severity = severity_of(raw_severity) if raw_severity is not None else DEFAULT_SEVERITY
    if severity is None:
        raise BadInput(f"severity: {_show(raw_severity)} is not P0-P3")
    urgency = attributes.get("urgency") or _text(body.get("urgency"), "urgency")
    if urgency is not None and not _WORD.fullmatch(urgency):
        raise BadInput(f"urgency: {_show(urgency)} is not a word (page, ticket)")
    burn_pair = _text(body.get("burn_pair"), "burn_pair")
    if burn_pair is not None and not _BURN_PAIR.fullmatch(burn_pair):
        raise BadInput(f"burn_pair: {_show(burn_pair)} is not a window pair like 1h/15m")
    at = (
        _rfc3339(body.get("at"), "at", received_at)
        or _published(message, received_at)
        or received_at
    )

    labels = _Labels()
    labels.add("alertname", f"SLO {slo} {condition}")
    labels.add("source", "slo")
    labels.add("severity", severity)
    labels.add("slo", slo)
    labels.add("condition", condition)
    labels.add("urgency", urgency)
    labels.add("burn_pair", burn_pair)

    runbook = _text(body.get("runbook"), "runbook")
    sli = _object(body.get("sli"), "sli", optional=True)
    compliance = _number(body.get("compliance"), "compliance")
    objective = _number(body.get("objective"), "objective")
    notes = _Annotations()
    notes.add("summary", _slo_summary(event_type, slo, condition, burn_pair, compliance, objective))
    notes.add("description", _text(body.get("description"), "description"))
    notes.add("runbook", https_url(runbook))
    if runbook is not None and https_url(runbook) is None:
        notes.add("runbook_ref", runbook)
    notes.add("detail", _detail_summary(body.get("detail")))
    notes.add("objective", _percent(objective))
    notes.add("window", _text(body.get("window"), "window"))
    notes.add("compliance", _percent(compliance))
    notes.add("sli_value", _text(sli.get("value"), "sli.value"))
    notes.add(
        "budget_remaining", _percent(_number(body.get("budget_remaining"), "budget_remaining"))
    )
    notes.add("event_type", event_type)
    return Alert(
        fingerprint=fingerprint,
        status=status,
        severity=severity,
        labels=labels.items,
        annotations=notes.items,
        starts_at=at,
        ends_at=at if status == "resolved" else None,
        source="slo",
        source_id=event_id or label_value(message.message_id),
        received_at=received_at,
    )


def _slo_summary(
    event_type: str,
    slo: str,
    condition: str,
    pair: str | None,
    compliance: float | None,
    objective: float | None,
) -> str:
    if event_type == "slo.recovered":
        what = {"sli": "is met again", "budget": "has error budget again"}.get(
            condition, "burns its error budget slowly again" if condition == "burn" else "recovered"
        )
    elif event_type == "slo.burn_rate":
        what = "is burning its error budget fast" + (f" ({pair})" if pair else "")
    else:
        what = {"sli": "is breaching", "budget": "has spent its error budget"}.get(
            condition, f"is breaching ({condition})"
        )
    text = f"SLO {slo} {what}"
    if compliance is not None and objective is not None:
        text += f": compliance {compliance * 100:.2f}% (objective {objective * 100:.2f}%)"
    return text


def _detail_summary(value: object) -> str | None:
    """``key=value; ...`` of a detail object's scalars (and one level of nested scalars)."""
    if value is None:
        return None
    detail = _object(value, "detail")
    parts: list[str] = []
    for key in sorted(detail)[:50]:
        item = detail[key]
        if isinstance(item, Mapping):
            inner = [f"{k}={_scalar(v)}" for k, v in sorted(item.items())[:20] if _scalar(v)]
            if inner:
                parts.append(f"{key}: {', '.join(inner)}")
        elif isinstance(item, list):
            shown = [s for s in (_scalar(v) for v in item[:20]) if s]
            if shown:
                parts.append(f"{key}={', '.join(shown)}")
        elif _scalar(item):
            parts.append(f"{key}={_scalar(item)}")
    return "; ".join(parts) or None


def _scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.2f}%"


# -- backup events ----------------------------------------------------------------------
def _backup_alert(
    body: Mapping[str, Any], message: PubSubMessage, received_at: datetime
) -> Alert | None:
    attributes = message.attributes
    event_type = _agreed(attributes, body, "event_type", "type")
    if event_type is None:
        raise BadInput("event_type: missing (expected backup.failed or backup.completed)")
    if event_type not in _BACKUP_STATUSES:
        if event_type.startswith("drill."):
            raise BadInput(_DRILL_NOTE)
        raise BadInput(f"event_type: {_show(event_type)} is not backup.failed or backup.completed")
    run_status = _agreed(attributes, body, "status")
    allowed = _BACKUP_STATUSES[event_type]
    if run_status is None:
        run_status = "complete" if event_type == "backup.completed" else "failed"
    elif run_status not in allowed:
        raise BadInput(
            f"status: {_show(run_status)} contradicts {event_type} "
            f"(expected {' or '.join(sorted(allowed))})"
        )
    run_id = _agreed(attributes, body, "run_id")
    if run_id is None:
        raise BadInput("run_id: missing (expected YYYYMMDD or YYYYMMDD-<8 hex>)")
    if not is_run_id(run_id):
        raise BadInput(f"run_id: {_show(run_id)} is not YYYYMMDD or YYYYMMDD-<8 hex>")
    if event_type == "backup.completed" and "-" in run_id:
        return None  # a subset run: some tables only, it does not prove the nightly backup
    manifest = _text(body.get("manifest"), "manifest")
    bucket, prefix = _manifest_scope(manifest, run_id) if manifest is not None else (None, None)
    scope = BACKUP_JOB if bucket is None else f"gs://{bucket}/{prefix}".rstrip("/")
    failed = _failed_tables(body.get("failed"))
    errors = _text_list(body.get("errors"), "errors")
    tables = _count(body.get("tables"), "tables")
    at = _published(message, received_at) or received_at
    status: AlertStatus = "resolved" if event_type == "backup.completed" else "firing"

    labels = _Labels()
    labels.add("alertname", "BackupFailed")
    labels.add("source", "backup")
    labels.add("severity", BACKUP_SEVERITY)
    labels.add("job", BACKUP_JOB)
    labels.add("bucket", bucket)
    labels.add("prefix", prefix or None)

    notes = _Annotations()
    notes.add("summary", _backup_summary(run_id, run_status, tables, failed, errors))
    lines = [f"{source}: {error}" if error else source for source, error in failed]
    notes.add("description", "\n".join(lines + errors) or None)
    notes.add("run_id", run_id)
    notes.add("date", _text(body.get("date"), "date"))
    notes.add("instant", _text(body.get("instant"), "instant"))
    notes.add("manifest", manifest)
    return Alert(
        fingerprint=backup_fingerprint(scope),
        status=status,
        severity=BACKUP_SEVERITY,
        labels=labels.items,
        annotations=notes.items,
        starts_at=at,
        ends_at=at if status == "resolved" else None,
        source="backup",
        source_id=run_id,
        received_at=received_at,
    )


def _manifest_scope(uri: str, run_id: str) -> tuple[str, str]:
    match = _MANIFEST_URI.fullmatch(uri)
    if match is None:
        raise BadInput(f"manifest: {_show(uri)} is not gs://BUCKET/[PREFIX/]RUN_ID/{MANIFEST}")
    if match["run_id"] != run_id:
        raise BadInput(f"manifest: names run {match['run_id']}, the event is about run {run_id}")
    bucket = bucket_name(match["bucket"])
    prefix = object_prefix(match["prefix"] or "")
    return bucket, prefix


def _failed_tables(value: object) -> list[tuple[str, str | None]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(f"failed: expected a list, not {_kind(value)}")
    out: list[tuple[str, str | None]] = []
    for i, item in enumerate(value[:1000]):
        table = _object(item, f"failed[{i}]")
        source = _text(table.get("source"), f"failed[{i}].source")
        if source is None:
            raise BadInput(f"failed[{i}].source: missing (expected dataset.table)")
        out.append((source, _text(table.get("error"), f"failed[{i}].error")))
    return out


def _backup_summary(
    run_id: str,
    status: str,
    tables: int | None,
    failed: Sequence[tuple[str, str | None]],
    errors: Sequence[str],
) -> str:
    if status == "complete":
        return f"Backup run {run_id} completed" + (
            f": {tables} tables" if tables is not None else ""
        )
    text = f"Backup run {run_id} {status}"
    if failed:
        names = [label_value(source) for source, _ in failed[:_FAILED_TABLES_SHOWN]]
        more = len(failed) - len(names)
        of = f" of {tables}" if tables is not None else ""
        text += f": {len(failed)}{of} tables failed: {', '.join(names)}"
        if more:
            text += f" and {more} more"
    elif errors:
        text += f": {label_value(errors[0])}"
    return text


# -- reading fields ---------------------------------------------------------------------
def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a JSON array"
    return "an object"


def _show(value: object) -> str:
    """A value for an error message: repr, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(value: object, where: str, *, optional: bool = False) -> Mapping[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{where}: expected an object, not {_kind(value)}")
    return value


def _text(value: object, where: str) -> str | None:
    """A string field: str, or a number as text; null/missing is None; else BadInput."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise BadInput(f"{where}: expected a string, not {_kind(value)}")


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise BadInput(f"{where}: expected a number, not {_kind(value)}")


def _count(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9:
        return value
    raise BadInput(f"{where}: expected a count, not {_show(value)}")


def _text_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(f"{where}: expected a list of strings, not {_kind(value)}")
    out = []
    for i, item in enumerate(value[:100]):
        text = _text(item, f"{where}[{i}]")
        if text is not None:
            out.append(text)
    return out


def _string_map(value: object, where: str) -> dict[str, str]:
    """A label map: an object of scalars (numbers and booleans as text; nulls left out)."""
    if value is None:
        return {}
    labels = _object(value, where)
    out: dict[str, str] = {}
    for key, item in labels.items():
        if item is None:
            continue
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int | float | str):
            out[key] = str(item)
        else:
            raise BadInput(
                f"{where}.{label_name(key) or '?'}: expected a string, not {_kind(item)}"
            )
    return out


def _agreed(
    attributes: Mapping[str, str], body: Mapping[str, Any], name: str, body_name: str = ""
) -> str | None:
    """An attribute, or the body's field of that meaning; BadInput if the two differ."""
    field = body_name or name
    from_body = _text(body.get(field), field)
    from_attribute = attributes.get(name)
    if from_attribute is not None and from_body is not None and from_attribute != from_body:
        raise BadInput(f"{name}: the attribute and the body disagree")
    return from_attribute if from_attribute is not None else from_body


def _required(value: str | None, name: str, pattern: re.Pattern[str], expected: str) -> str:
    if value is None:
        raise BadInput(f"{name}: missing (expected {expected})")
    if not pattern.fullmatch(value):
        raise BadInput(f"{name}: {_show(value)} is not {expected}")
    return value


def _instant(value: object, where: str, received_at: datetime) -> datetime | None:
    """Epoch seconds (int, float, digit string) or RFC 3339 text; 0 or null: not given."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadInput(f"{where}: expected epoch seconds, not a boolean")
    raw = value
    if isinstance(value, str):
        raw = text = value.strip()
        if not text:
            return None
        if not _EPOCH_TEXT.fullmatch(text):
            return _rfc3339(text, where, received_at)
        value = float(text)
    if not isinstance(value, int | float):
        raise BadInput(f"{where}: expected epoch seconds, not {_kind(value)}")
    if not math.isfinite(value) or value < 0 or value > _MAX_EPOCH:
        raise BadInput(f"{where}: {_show(raw)} is not a time (epoch seconds)")
    if value == 0:
        return None
    try:
        at = datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        raise BadInput(f"{where}: {_show(raw)} is not a time (epoch seconds)") from None
    return _plausible(at, raw, where, received_at)


def _rfc3339(value: object, where: str, received_at: datetime) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{where}: expected an RFC 3339 timestamp, not {_kind(value)}")
    if len(value) > 40:
        raise BadInput(f"{where}: {_show(value)} is not an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"{where}: {_show(value)} is not an RFC 3339 timestamp") from None
    return _plausible(parsed, value, where, received_at)


def _plausible(at: datetime, raw: object, where: str, received_at: datetime) -> datetime:
    """``at`` in UTC (naive: taken as UTC) if it is in the window of the module
    docstring, else BadInput naming ``where`` and showing ``raw``."""
    try:
        utc = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError, OSError):  # year 1 or 9999 shifted past the range
        utc = (datetime.min if at.year < 2000 else datetime.max).replace(tzinfo=UTC)
    if utc < EARLIEST_INSTANT:
        raise BadInput(f"{where}: {_show(raw)} is before {EARLIEST_INSTANT:%Y-%m-%d} UTC")
    if utc - received_at > MAX_FUTURE:
        raise BadInput(f"{where}: {_show(raw)} is more than a day after the message arrived")
    return utc


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"{text[:20]} is out of range")
    return value


def _published(message: PubSubMessage, received_at: datetime) -> datetime | None:
    """The publish time in UTC (a naive one, from a hand-built message, taken as UTC)."""
    at = message.publish_time
    if at is None:
        return None
    return _plausible(at, at.isoformat(), "publish_time", received_at)


def _encodable(text: str) -> str:
    """Lone surrogates (``"\\ud800"`` in JSON) become '?': the text can be written as UTF-8."""
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "BACKUP_JOB",
    "EARLIEST_INSTANT",
    "MAX_ANNOTATION",
    "MAX_FUTURE",
    "MAX_LABELS",
    "MAX_LABEL_VALUE",
    "TEST_ALERT_TTL",
    "TopicKind",
    "alert_from_message",
    "backup_fingerprint",
    "condition_fingerprint",
    "detect_topic_kind",
    "incident_fingerprint",
    "label_name",
    "load_body",
    "monitoring_test_fingerprint",
    "severity_of",
]
