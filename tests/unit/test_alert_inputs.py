"""Alert inputs (shared/services/alert_inputs.py): incidents and suite events → Alert.

The SLO and backup events are built with the producers' own code (``event_body``,
``Transition``, ``RunLayout``), so a change of their shape breaks these tests.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.config import Settings, load_settings
from shared.errors import BadInput
from shared.events import MAX_MESSAGE_BYTES, PubSubMessage, parse_pubsub_envelope
from shared.manifest import MANIFEST, RunLayout
from shared.models import Alert
from shared.services.alert_inputs import (
    BACKUP_JOB,
    EARLIEST_INSTANT,
    MAX_ANNOTATION,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    TEST_ALERT_TTL,
    TopicKind,
    alert_from_message,
    backup_fingerprint,
    condition_fingerprint,
    incident_fingerprint,
    label_name,
    monitoring_test_fingerprint,
    severity_of,
)
from shared.services.sla import event_body
from shared.services.sla_assess import Transition, assess, burn_windows
from shared.services.sla_sli import Inputs, compute
from tests.helpers import EXAMPLE_CONFIG, pubsub_event

RECEIVED = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)
PUBLISHED = datetime(2026, 12, 1, 10, 19, 30, tzinfo=UTC)
STARTED = 1796119200  # 2026-12-01T10:00:00Z
ENDED = STARTED + 3600

# A Cloud Monitoring notification as the Pub/Sub channel sends it (version 1.2), with the
# suite's per-table staleness metric on the ``global`` resource.
INCIDENT: dict[str, Any] = {
    "version": "1.2",
    "incident": {
        "incident_id": "0.nwg9th6llz4w",
        "scoping_project_id": "nba-props-platform",
        "scoping_project_number": 1099221943211,
        "url": "https://console.cloud.google.com/monitoring/alerting/incidents/0.nwg9th6llz4w",
        "started_at": STARTED,
        "ended_at": None,
        "state": "open",
        "summary": "Age of nba_raw.games is above the threshold of 24",
        "observed_value": "30.5",
        "threshold_value": "24",
        "resource_id": "",
        "resource_name": "nba-props-platform",
        "resource_display_name": "nba-props-platform",
        "resource_type_display_name": "Global",
        "resource": {"type": "global", "labels": {"project_id": "nba-props-platform"}},
        "metric": {
            "type": "custom.googleapis.com/opsuite/freshness/age_hours",
            "displayName": "Freshness age",
            "labels": {"table": "nba_raw.games"},
        },
        "metadata": {"system_labels": {}, "user_labels": {}},
        "policy_name": "Table stale (> 24 h)",
        "policy_user_labels": {"team": "data-eng", "user-label-1": "important label"},
        "condition_name": "age_hours above 24",
        "condition": {"name": "projects/p/alertPolicies/1/conditions/2", "displayName": "x"},
        "documentation": {
            "content": "The table stopped loading.\nSee the runbook.",
            "mime_type": "text/markdown",
            "subject": "[ALERT - Error] Table stale",
            "links": [
                {"displayName": "Dashboard", "url": "https://example.com/dash"},
                {"displayName": "Runbook", "url": "https://example.com/runbook#stale"},
            ],
        },
        "severity": "Error",
    },
}


def _message(
    body: Any,
    attributes: dict[str, str] | None = None,
    *,
    message_id: str = "9871234560001",
    publish_time: datetime | None = PUBLISHED,
) -> PubSubMessage:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return PubSubMessage(data, attributes or {}, message_id, publish_time)


def _incident(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(INCIDENT)
    for key, value in changes.items():
        if value is _DROP:
            body["incident"].pop(key, None)
        else:
            body["incident"][key] = value
    return body


_DROP = object()


def _alert(body: Any, kind: TopicKind | None = "incidents", **message: Any) -> Alert:
    alert = alert_from_message(_message(body, **message), topic_kind=kind, received_at=RECEIVED)
    assert alert is not None
    return alert


# --- Cloud Monitoring incidents ----------------------------------------------------------


def test_an_open_incident_is_a_firing_alert_with_labels_and_links() -> None:
    alert = _alert(INCIDENT)
    assert (alert.status, alert.source, alert.source_id) == (
        "firing",
        "monitoring",
        "0.nwg9th6llz4w",
    )
    assert alert.severity == "P2"  # "Error" (no severity user label)
    assert alert.labels == {
        "alertname": "Table stale (> 24 h)",
        "source": "monitoring",
        "severity": "P2",
        "policy": "Table stale (> 24 h)",
        "condition": "age_hours above 24",
        "project": "nba-props-platform",
        "resource_type": "global",
        "metric_type": "custom.googleapis.com/opsuite/freshness/age_hours",
        "resource_project_id": "nba-props-platform",
        "metric_table": "nba_raw.games",
        "team": "data-eng",
        "user_label_1": "important label",
    }
    assert alert.annotations["summary"] == "Age of nba_raw.games is above the threshold of 24"
    assert alert.annotations["description"] == "The table stopped loading.\nSee the runbook."
    assert alert.annotations["console"] == INCIDENT["incident"]["url"]
    assert alert.generator_url == INCIDENT["incident"]["url"]
    assert alert.annotations["runbook"] == "https://example.com/runbook#stale"
    assert alert.annotations["subject"] == "[ALERT - Error] Table stale"
    assert alert.starts_at == datetime.fromtimestamp(STARTED, UTC)
    assert alert.ends_at is None
    assert alert.received_at == RECEIVED
    assert len(alert.fingerprint) == 32 and int(alert.fingerprint, 16) >= 0


def test_open_and_closed_share_the_fingerprint_whichever_comes_first() -> None:
    opened = _incident()
    closed = _incident(state="closed", ended_at=ENDED, summary="now fine", url=None)
    resolved_first = _alert(closed)
    fired_later = _alert(opened)
    assert resolved_first.fingerprint == fired_later.fingerprint
    assert (resolved_first.status, fired_later.status) == ("resolved", "firing")
    assert resolved_first.ends_at == datetime.fromtimestamp(ENDED, UTC)
    assert resolved_first.starts_at == fired_later.starts_at


def test_the_fingerprint_is_the_documented_hash_not_the_incident_id() -> None:
    alert = _alert(_incident(incident_id="another-id", started_at=STARTED + 99))
    assert alert.fingerprint == condition_fingerprint(
        "projects/p/alertPolicies/1/conditions/2",
        "global",
        {"project_id": "nba-props-platform"},
        {"table": "nba_raw.games"},
    )


def test_a_policy_renamed_while_open_closes_the_alert_it_opened() -> None:
    # given an incident opened under one display name, closed under another
    opened = _alert(_incident(policy_name="Table stale", condition_name="age above 24"))
    closed = _alert(
        _incident(state="closed", ended_at=ENDED, policy_name="Stale", condition_name="age > 24")
    )
    # then the condition's resource name identifies both: the close resolves the open
    assert opened.fingerprint == closed.fingerprint
    # and the labels still show what the policy is called now
    assert (closed.labels["policy"], closed.labels["condition"]) == ("Stale", "age > 24")


def test_two_policies_with_the_same_display_names_are_two_alerts() -> None:
    other = _incident(condition={"name": "projects/p/alertPolicies/7/conditions/2"})
    assert _alert(other).fingerprint != _alert(INCIDENT).fingerprint
    assert _alert(other).labels["policy"] == _alert(INCIDENT).labels["policy"]


@pytest.mark.parametrize(
    "condition",
    [
        _DROP,
        None,
        {},
        {"name": None, "displayName": "x"},
        {"name": ""},
        {"name": "age_hours above 24"},
        {"name": "projects/p/alertPolicies/1"},
        {"name": "projects/p/alertPolicies/1/conditions/2/extra"},
        {"name": "projects/p/alertPolicies/../conditions/2"},
        {"name": "projects/P Q/alertPolicies/1/conditions/2"},
        "a string",  # not an object: the incident is kept, identified by display names
        {"name": ["a"]},
    ],
)
def test_without_a_condition_resource_name_the_display_names_identify_it(
    condition: Any,
) -> None:
    body = _incident(condition=condition)
    assert _alert(body).fingerprint == incident_fingerprint(
        "Table stale (> 24 h)",
        "age_hours above 24",
        "global",
        {"project_id": "nba-props-platform"},
        {"table": "nba_raw.games"},
    )
    body["incident"]["policy_name"] = "Renamed"
    assert _alert(body).fingerprint != _alert(_incident(condition=condition)).fingerprint


@pytest.mark.parametrize(
    "changes",
    [
        {"condition": {"name": "projects/p/alertPolicies/1/conditions/3"}},
        {"condition": {"name": "projects/q/alertPolicies/1/conditions/2"}},
        {"resource": {"type": "global", "labels": {"project_id": "other-project"}}},
        {"resource": {"type": "bigquery_dataset", "labels": {"project_id": "nba-props-platform"}}},
        # one incident per time series: per-table incidents on ``global`` are distinct
        {"metric": {"type": "x", "labels": {"table": "nba_raw.players"}}},
    ],
)
def test_each_identifying_field_changes_the_fingerprint(changes: dict[str, Any]) -> None:
    assert _alert(_incident(**changes)).fingerprint != _alert(INCIDENT).fingerprint


@pytest.mark.parametrize(
    "changes", [{"policy_name": "Other policy"}, {"condition_name": "other condition"}]
)
def test_display_names_identify_only_an_incident_without_a_condition_name(
    changes: dict[str, Any],
) -> None:
    assert _alert(_incident(**changes)).fingerprint == _alert(INCIDENT).fingerprint
    without = _incident(condition=_DROP)
    assert _alert(_incident(condition=_DROP, **changes)).fingerprint != _alert(without).fingerprint


def test_closed_uses_publish_time_without_ended_at_and_never_ends_before_it_starts() -> None:
    assert _alert(_incident(state="closed")).ends_at == PUBLISHED
    backwards = _alert(_incident(state="CLOSED", ended_at=STARTED - 50))
    assert backwards.ends_at == backwards.starts_at


@pytest.mark.parametrize(
    "value",
    [STARTED, str(STARTED), float(STARTED), f"{STARTED}.0", " 1796119200 ", "2026-12-01T10:00:00Z"],
)
def test_started_at_as_int_float_digit_string_or_rfc3339(value: Any) -> None:
    assert _alert(_incident(started_at=value)).starts_at == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_instants_from_2000_to_a_day_after_arrival_are_accepted() -> None:
    # given the two ends of the window, as epoch seconds and as text with an offset
    first = int(EARLIEST_INSTANT.timestamp())
    last = RECEIVED + timedelta(days=1)
    assert _alert(_incident(started_at=first)).starts_at == EARLIEST_INSTANT
    assert _alert(_incident(started_at="2000-01-01T01:00:00+01:00")).starts_at == EARLIEST_INSTANT
    assert _alert(_incident(started_at=int(last.timestamp()))).starts_at == last
    ends = _alert(_incident(state="closed", ended_at=last.isoformat())).ends_at
    assert ends == last
    # then the router's arithmetic on them has years of room
    assert ends + timedelta(days=3650) > ends and EARLIEST_INSTANT - timedelta(days=3650)
    # and a second outside either end is refused
    with pytest.raises(BadInput, match="before 2000-01-01"):
        _alert(_incident(started_at=first - 1))
    with pytest.raises(BadInput, match=r"ended_at: .* more than a day after"):
        _alert(_incident(state="closed", ended_at=int(last.timestamp()) + 1))
    late_slo, attributes, _ = _slo(body={"at": (last + timedelta(seconds=1)).isoformat()})
    with pytest.raises(BadInput, match=r"^at: .* more than a day after"):
        _alert(late_slo, "alerts", attributes=attributes)


@pytest.mark.parametrize(
    "published",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # overflows into UTC
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        RECEIVED + timedelta(days=2),
    ],
)
def test_a_publish_time_outside_the_window_is_bad_input(published: datetime) -> None:
    sources: list[tuple[Any, dict[str, str], TopicKind]] = [
        (_incident(started_at=None), {}, "incidents"),
        ({**_SLO_BODY, "at": None}, _SLO_ATTRS, "alerts"),
        (_BACKUP_BODY, _BACKUP_ATTRS, "backup_events"),
    ]
    for body, attributes, kind in sources:
        message = _message(body, attributes, publish_time=published)
        with pytest.raises(BadInput, match=r"^publish_time: "):
            alert_from_message(message, topic_kind=kind, received_at=RECEIVED)


def test_zero_or_empty_times_mean_not_given() -> None:
    assert _alert(_incident(started_at=0)).starts_at == PUBLISHED
    assert _alert(_incident(started_at="")).starts_at == PUBLISHED
    assert _alert(_incident(state="closed", ended_at=0)).ends_at == PUBLISHED


def test_a_minimal_incident_takes_defaults() -> None:
    body = {"incident": {"policy_name": "p", "state": "OPEN"}}
    alert = _alert(body)
    assert (alert.status, alert.severity, alert.starts_at) == ("firing", "P2", PUBLISHED)
    assert alert.annotations == {"summary": "p"}
    assert alert.source_id == "9871234560001"  # no incident id: the message id
    assert _alert(body, publish_time=None).starts_at == RECEIVED


def test_nulls_and_unknown_fields_are_ignored() -> None:
    body = _incident(
        summary=None, url=None, documentation=None, metric=None, resource=None,
        policy_user_labels={"team": None, "tier": 2, "paged": True}, severity=None,
        something_new={"deep": [1, 2, 3]},
    )  # fmt: skip
    body["extra_top_level"] = "ignored"
    alert = _alert(body)
    assert alert.annotations["summary"] == "Table stale (> 24 h): age_hours above 24"
    assert "console" not in alert.annotations and alert.generator_url is None
    assert (alert.labels["tier"], alert.labels["paged"]) == ("2", "true")
    assert "team" not in alert.labels


def test_older_documentation_as_a_plain_string_is_the_description() -> None:
    assert _alert(_incident(documentation="plain text")).annotations["description"] == "plain text"


@pytest.mark.parametrize(
    ("user", "incident", "expected"),
    [
        ("p0", "Critical", "P0"),
        ("P1", None, "P1"),
        ("critical", None, "P1"),
        ("error", None, "P2"),
        ("warning", None, "P3"),
        ("info", None, "P3"),
        ("high", "CRITICAL", "P1"),  # unrecognised label: the incident's severity
        (None, "Critical", "P1"),
        (None, "ERROR", "P2"),
        (None, "Warning", "P3"),
        (None, "No severity", "P2"),
        (None, None, "P2"),
    ],
)
def test_severity_from_user_label_then_incident_then_p2(
    user: str | None, incident: str | None, expected: str
) -> None:
    labels = {"severity": user} if user is not None else {}
    alert = _alert(_incident(policy_user_labels=labels, severity=incident))
    assert (alert.severity, alert.labels["severity"]) == (expected, expected)


def test_severity_of() -> None:
    assert [severity_of(v) for v in ("p3", " P2 ", "Info", "sev1", None)] == [
        "P3", "P2", "P3", None, None
    ]  # fmt: skip


def test_runbook_user_label_wins_and_only_https_links_are_kept() -> None:
    body = _incident(
        policy_user_labels={"runbook": "https://wiki.example.com/rb"},
        url="http://console.cloud.google.com/plain-http",
    )
    alert = _alert(body)
    assert alert.annotations["runbook"] == "https://wiki.example.com/rb"
    assert "console" not in alert.annotations and alert.generator_url is None
    links = [
        {"displayName": "x", "url": "javascript:alert(1)"},
        {"displayName": "y", "url": "https://user@evil.example.com/"},
        {"displayName": "z", "url": "https://ok.example.com/first"},
    ]
    only_https = _alert(_incident(documentation={"links": links}))
    assert only_https.annotations["runbook"] == "https://ok.example.com/first"


@pytest.mark.parametrize(
    "body",
    [
        {"version": "test", "incident": _incident()["incident"]},
        {"version": "TEST"},  # no incident at all
        _incident(policy_name="Test Policy", state="whatever"),
        _incident(policy_name="[TEST] pager wiring"),
    ],
)
def test_test_notifications_are_one_shot_alerts_labelled_test(body: dict[str, Any]) -> None:
    alert = _alert(body, message_id="777")
    assert alert.labels["test"] == "true"
    assert alert.status == "firing"
    assert alert.ends_at == RECEIVED + TEST_ALERT_TTL  # resolves itself: never repeats
    assert alert.fingerprint == monitoring_test_fingerprint("777")
    assert alert.fingerprint != _alert(body, message_id="778").fingerprint


def test_a_real_policy_whose_name_starts_with_test_is_not_a_test() -> None:
    alert = _alert(_incident(policy_name="Test latency p99"))
    assert "test" not in alert.labels
    assert alert.ends_at is None


def test_through_a_real_pubsub_envelope_with_detection() -> None:
    event = pubsub_event(INCIDENT, publish_time=PUBLISHED)
    message = parse_pubsub_envelope(event["data"])
    alert = alert_from_message(message, topic_kind=None, received_at=RECEIVED)
    assert alert is not None and alert.source == "monitoring"
    assert alert.fingerprint == _alert(INCIDENT).fingerprint


# --- hostile text -----------------------------------------------------------------------


def test_huge_values_are_capped_and_label_names_sanitised() -> None:
    many = {f"k{i:03}": "v" for i in range(200)}
    body = _incident(
        policy_name="P" * 100_00,
        summary="S" * 20_000,
        policy_user_labels=many,
    )
    alert = _alert(body)
    assert len(alert.labels["policy"]) == MAX_LABEL_VALUE
    assert len(alert.labels["alertname"]) == 256
    assert len(alert.annotations["summary"]) == MAX_ANNOTATION
    assert alert.annotations["summary"].endswith("…")
    assert len(alert.labels) == MAX_LABELS  # the first user labels in sorted order
    assert "k000" in alert.labels and "k199" not in alert.labels


def test_label_names_are_sanitised_to_prometheus_names() -> None:
    odd = {"9lives": "x", "a.b-c/d": "y", "ünï": "z", "alertname": "spoof", "": "empty"}
    alert = _alert(_incident(policy_user_labels=odd))
    assert (alert.labels["_9lives"], alert.labels["a_b_c_d"], alert.labels["_n_"]) == (
        "x",
        "y",
        "z",
    )
    assert alert.labels["alertname"] == "Table stale (> 24 h)"  # ours win a clash
    assert all(label_name(n) == n for n in alert.labels)
    assert "empty" not in alert.labels.values()


def test_control_characters_bidi_and_lone_surrogates_are_cleaned() -> None:
    raw = '{"incident": {"policy_name": "a\\u0000b\\nc\\u202ed", "state": "open", ' \
          '"summary": "line1\\r\\nline2\\u0007 \\ud800"}}'  # fmt: skip
    alert = _alert(raw.encode())
    assert alert.labels["alertname"] == "a b c d"
    assert alert.annotations["summary"] == "line1\nline2 ?"
    json.dumps(dict(alert.labels), ensure_ascii=False).encode("utf-8")  # writable as UTF-8


# --- SLO events (opsuite-alerts) ---------------------------------------------------------

AT = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def example() -> Settings:
    return load_settings(EXAMPLE_CONFIG)


def _slo_event(
    settings: Settings, event_type: str, condition: str, pair: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and attributes as ``shared.services.sla._publish`` sends them."""
    slo = next(s for s in settings.slos.objectives if s.name == "pipeline_availability")
    inputs = Inputs(at=AT, checks={"freshness": "pass", "backups": "fail", "dependencies": "pass"})
    result = compute(slo, inputs, freshness_configured=[], ratio_since=AT - timedelta(minutes=15))
    windows = burn_windows(settings.slos.burn_rates)
    a = assess(slo, result, [], at=AT, cadence=timedelta(minutes=15), windows=windows,
               recorded_at=AT, detail=json.dumps(result.detail))  # fmt: skip
    change = Transition(event_type, condition, slo.name, AT, pair)  # type: ignore[arg-type]
    body = json.loads(
        json.dumps(
            event_body(a, change, "https://github.com/example/opsuite/blob/main/"), default=str
        )
    )
    attributes = {
        "event_type": change.event_type,
        "slo": change.slo,
        "severity": slo.severity,
        "urgency": "page",
        "condition": change.condition,
        "fingerprint": change.fingerprint,
        "event_id": change.event_id,
    }
    return body, attributes


@pytest.mark.parametrize("kind", ["alerts", None])
def test_slo_breached_is_firing_with_the_events_fingerprint(
    example: Settings, kind: TopicKind | None
) -> None:
    body, attributes = _slo_event(example, "slo.breached", "sli")
    alert = _alert(body, kind, attributes=attributes)
    assert alert.fingerprint == attributes["fingerprint"]
    assert (alert.status, alert.severity, alert.source) == ("firing", "P0", "slo")
    assert alert.source_id == attributes["event_id"]
    assert alert.labels == {
        "alertname": "SLO pipeline_availability sli",
        "source": "slo",
        "severity": "P0",
        "slo": "pipeline_availability",
        "condition": "sli",
        "urgency": "page",
    }
    assert alert.annotations["summary"].startswith("SLO pipeline_availability is breaching")
    assert alert.annotations["runbook"] == (
        "https://github.com/example/opsuite/blob/main/docs/runbook.md"
        "#slo-breach-pipeline-availability"
    )
    assert alert.annotations["description"] == body["description"]
    assert "failing=backups" in alert.annotations["detail"]
    assert (alert.starts_at, alert.ends_at) == (AT, None)


def test_slo_burn_rate_fires_and_recovered_resolves_the_same_fingerprint(example: Settings) -> None:
    burn_body, burn_attrs = _slo_event(example, "slo.burn_rate", "burn", "1h/15m")
    end_body, end_attrs = _slo_event(example, "slo.recovered", "burn")
    fired = _alert(burn_body, "alerts", attributes=burn_attrs)
    ended = _alert(end_body, "alerts", attributes=end_attrs)
    assert fired.fingerprint == ended.fingerprint
    assert fired.labels["burn_pair"] == "1h/15m" and "burn_pair" not in ended.labels
    assert (fired.status, ended.status) == ("firing", "resolved")
    assert ended.ends_at == AT
    assert fired.source_id != ended.source_id  # each change is its own event


def test_a_repository_path_runbook_is_kept_as_a_reference(example: Settings) -> None:
    body, attributes = _slo_event(example, "slo.breached", "budget")
    body["runbook"] = "README.md#health-check"
    alert = _alert(body, "alerts", attributes=attributes)
    assert "runbook" not in alert.annotations
    assert alert.annotations["runbook_ref"] == "README.md#health-check"


# --- backup events (opsuite-backup-events) -----------------------------------------------


def _backup_event(
    run_id: str = "20261201", status: str = "partial", prefix: str = "backups"
) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and attributes as ``shared.services.backup._publish_event`` sends them."""
    layout = RunLayout("test-backups", prefix, run_id)
    event_type = "backup.completed" if status == "complete" else "backup.failed"
    failed = [] if status == "complete" else [
        {"source": "nba_raw.games", "error": "extract job failed: 500"},
        {"source": "nba_raw.players", "error": "rows differ"},
    ]  # fmt: skip
    body = {
        "type": event_type,
        "run_id": run_id,
        "status": status,
        "date": "2026-12-01",
        "instant": "2026-12-01T05:00:00+00:00",
        "manifest": layout.uri(layout.name(MANIFEST)),
        "tables": 13,
        "failed": failed,
        "errors": [],
    }
    return body, {"event_type": event_type, "run_id": run_id, "status": status}


def test_a_failed_backup_fires_and_the_next_completed_run_resolves_it() -> None:
    fail_body, fail_attrs = _backup_event("20261201", "partial")
    ok_body, ok_attrs = _backup_event("20261202", "complete")
    fired = _alert(fail_body, "backup_events", attributes=fail_attrs)
    resolved = _alert(ok_body, None, attributes=ok_attrs)
    assert (
        fired.fingerprint == resolved.fingerprint == backup_fingerprint("gs://test-backups/backups")
    )
    assert (fired.status, fired.severity, resolved.status) == ("firing", "P1", "resolved")
    assert fired.labels == {
        "alertname": "BackupFailed", "source": "backup", "severity": "P1",
        "job": "backup_export", "bucket": "test-backups", "prefix": "backups",
    }  # fmt: skip
    assert fired.annotations["summary"] == (
        "Backup run 20261201 partial: 2 of 13 tables failed: nba_raw.games, nba_raw.players"
    )
    assert "nba_raw.players: rows differ" in fired.annotations["description"]
    assert (fired.source_id, fired.starts_at) == ("20261201", PUBLISHED)
    assert resolved.ends_at == PUBLISHED


def test_backup_scopes() -> None:
    other, attrs = _backup_event(prefix="elsewhere")
    assert _alert(other, "backup_events", attributes=attrs).fingerprint == backup_fingerprint(
        "gs://test-backups/elsewhere"
    )
    flat, attrs = _backup_event(prefix="")
    assert _alert(flat, "backup_events", attributes=attrs).labels.get("prefix") is None
    bare, attrs = _backup_event()
    del bare["manifest"]  # not ours, but a failure is still paged: the one job's alert
    assert _alert(bare, "backup_events", attributes=attrs).fingerprint == backup_fingerprint(
        BACKUP_JOB
    )


def test_a_failed_run_without_table_failures_says_why() -> None:
    body, attrs = _backup_event(status="failed")
    body["failed"], body["errors"] = [], ["instant outside the time-travel window"]
    alert = _alert(body, "backup_events", attributes=attrs)
    assert alert.annotations["summary"] == (
        "Backup run 20261201 failed: instant outside the time-travel window"
    )


def test_a_completed_subset_run_resolves_nothing() -> None:
    body, attrs = _backup_event("20261201-0a1b2c3d", "complete")
    message = _message(body, attrs)
    assert alert_from_message(message, topic_kind="backup_events", received_at=RECEIVED) is None
    failed_body, failed_attrs = _backup_event("20261201-0a1b2c3d", "failed")
    assert _alert(failed_body, "backup_events", attributes=failed_attrs).status == "firing"


# --- malformed messages: BadInput, never another exception -------------------------------

_SLO_ATTRS = {
    "event_type": "slo.breached", "slo": "data_freshness", "severity": "P1",
    "condition": "sli", "fingerprint": "ab" * 16, "event_id": "cd" * 16,
}  # fmt: skip
_SLO_BODY = {"type": "slo.breached", "slo": "data_freshness", "condition": "sli",
             "at": "2026-12-01T10:15:00+00:00"}  # fmt: skip
_BACKUP_BODY, _BACKUP_ATTRS = _backup_event()


def _slo(attrs: dict[str, Any] | None = None, body: Any = None, drop: str = "") -> tuple[Any, ...]:
    a = {**_SLO_ATTRS, **(attrs or {})}
    a.pop(drop, None)
    return ({**_SLO_BODY, **(body or {})}, a, "alerts")


def _backup(
    attrs: dict[str, Any] | None = None, body: Any = None, drop: str = ""
) -> tuple[Any, ...]:
    a = {**_BACKUP_ATTRS, **(attrs or {})}
    a.pop(drop, None)
    return ({**_BACKUP_BODY, **(body or {})}, a, "backup_events")


MALFORMED: dict[str, tuple[Any, dict[str, str], TopicKind | None, str]] = {
    "not json": (b"not json", {}, "incidents", "not JSON"),
    "truncated json": (b'{"incident": {', {}, "incidents", "not JSON"),
    "empty body": (b"", {}, None, "empty"),
    "whitespace body": (b"  \n", {}, "incidents", "empty"),
    "json array": (b"[1, 2]", {}, None, "not a JSON array"),
    "json number": (b"42", {}, "incidents", "not a number"),
    "json null": (b"null", {}, "incidents", "not null"),
    "json string": (b'"incident"', {}, "incidents", "not a string"),
    "not utf-8": (b'{"incident": "\xff\xfe"}', {}, "incidents", "not UTF-8"),
    "NaN": (b'{"incident": {"started_at": NaN}}', {}, "incidents", "NaN"),
    "Infinity": (b'{"version": Infinity}', {}, "incidents", "Infinity"),
    "float overflow": (b'{"incident": {"started_at": 1e999}}', {}, "incidents", "out of range"),
    "4301-digit integer": (b'{"x": ' + b"9" * 4301 + b"}", {}, "incidents", "too long"),
    "deeply nested": (b'{"incident": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", {},
                      "incidents", "nested too deeply"),
    "over 64 KiB": (b'{"x": "' + b"a" * MAX_MESSAGE_BYTES + b'"}', {}, "incidents", "larger"),
    "neither source": ({"hello": "world"}, {}, None, "neither"),
    "missing incident": ({"version": "1.2"}, {}, "incidents", "incident: missing"),
    "incident is a list": ({"incident": []}, {}, "incidents", "incident: expected an object"),
    "incident is a string": ({"incident": "open"}, {}, "incidents", "expected an object"),
    "state missing": (_incident(state=_DROP), {}, "incidents", "state: missing"),
    "state unknown": (_incident(state="acknowledged"), {}, "incidents", "not open or closed"),
    "state a number": (_incident(state=1), {}, "incidents", "not open or closed"),
    "state an object": (_incident(state={"v": "open"}), {}, "incidents", "state: expected a string"),
    "no policy or condition": (_incident(policy_name=None, condition_name=""), {}, "incidents",
                               "no policy_name or condition_name"),
    "policy_name a list": (_incident(policy_name=["a"]), {}, "incidents", "policy_name: expected"),
    "started_at text": (_incident(started_at="yesterday"), {}, "incidents", "started_at"),
    "started_at boolean": (_incident(started_at=True), {}, "incidents", "not a boolean"),
    "started_at negative": (_incident(started_at=-5), {}, "incidents", "not a time"),
    "started_at year 10000": (_incident(started_at=253402300800), {}, "incidents", "not a time"),
    "started_at object": (_incident(started_at={"s": 1}), {}, "incidents", "epoch seconds"),
    # instants outside 2000-01-01 .. a day after arrival (year 1 / 9999 overflow otherwise)
    "started_at year 1 at +01:00": (_incident(started_at="0001-01-01T00:00:00+01:00"), {},
                                    "incidents", "incident.started_at: '0001-01-01T00:00:00+01:00' is before"),
    "ended_at year 9999 at -01:00": (_incident(state="closed",
                                     ended_at="9999-12-31T23:59:59-01:00"), {}, "incidents",
                                     "incident.ended_at: '9999-12-31"),
    "started_at year 1 in UTC": (_incident(started_at="0001-01-01T00:00:00Z"), {}, "incidents",
                                 "incident.started_at: '0001-01-01T00:00:00Z' is before 2000"),
    "started_at 1970": (_incident(started_at=5), {}, "incidents", "started_at: 5 is before 2000"),
    "ended_at epoch 9999": (_incident(state="closed", ended_at=253402300799), {}, "incidents",
                            "incident.ended_at: 253402300799 is more than a day after"),
    "started_at epoch 9999 text": (_incident(started_at="253402300799"), {}, "incidents",
                                   "incident.started_at: '253402300799' is more than a day"),
    "started_at epoch 1e300": (_incident(started_at=1e300), {}, "incidents", "not a time"),
    "started_at negative text": (_incident(started_at="-5"), {}, "incidents",
                                 "incident.started_at: '-5' is not an RFC 3339"),
    "started_at year 2999": (_incident(started_at=32503680000), {}, "incidents",
                             "incident.started_at: 32503680000 is more than a day after"),
    "started_at year 2999 text": (_incident(started_at="2999-01-01T00:00:00+14:00"), {},
                                  "incidents", "more than a day after"),
    "test notification far future": ({"version": "test", "incident": {"started_at":
                                      "9999-12-31T23:59:59-01:00"}}, {}, "incidents",
                                     "incident.started_at"),
    "ended_at list": (_incident(state="closed", ended_at=[1]), {}, "incidents", "ended_at"),
    "resource a string": (_incident(resource="global"), {}, "incidents", "resource: expected"),
    "resource labels a list": (_incident(resource={"labels": ["a"]}), {}, "incidents",
                               "resource.labels: expected an object"),
    "label value an object": (_incident(policy_user_labels={"team": {"a": 1}}), {}, "incidents",
                              "policy_user_labels.team"),
    "documentation a number": (_incident(documentation=3), {}, "incidents", "documentation"),
    "links not a list": (_incident(documentation={"links": "https://x.example"}), {}, "incidents",
                         "links: expected a list"),
    "summary an object": (_incident(summary={"a": 1}), {}, "incidents", "summary"),
    "version an object": ({"version": {}, "incident": {}}, {}, "incidents", "version"),
    "huge state": (_incident(state="x" * 50_000), {}, "incidents", "..."),
    # suite events
    "unknown event_type": (*_slo({"event_type": "slo.exploded"}, {"type": None}), "slo.exploded"),
    "unknown event_type detected": ({"x": 1}, {"event_type": "pipeline.done"}, None,
                                    "not an alert source"),
    "drill event": ({"type": "drill.failed"}, {}, None, "recovery_time"),
    "backup event on the alerts topic": (*_slo({"event_type": "backup.failed"}, {"type": None}),
                                         "is not slo."),
    "missing fingerprint attribute": (*_slo(drop="fingerprint"), "fingerprint attribute: missing"),
    "fingerprint not hex": (*_slo({"fingerprint": "../../etc/passwd"}), "not 16-64"),
    "body fingerprint disagrees": (*_slo(body={"fingerprint": "ef" * 16}), "disagree"),
    "type disagrees": (*_slo(body={"type": "slo.recovered"}), "disagree"),
    "slo missing": (*_slo(body={"slo": None}, drop="slo"), "slo: missing"),
    "slo with spaces": (*_slo({"slo": "a b"}, {"slo": None}), "not an SLO name"),
    "condition a number": (*_slo(body={"condition": 3}, drop="condition"), "not sli"),
    "severity unknown": (*_slo({"severity": "urgent"}), "not P0-P3"),
    "at not a timestamp": (*_slo(body={"at": "soon"}), "at:"),
    "at a number": (*_slo(body={"at": 1796119200}), "at: expected"),
    "at year 9999 at -01:00": (*_slo(body={"at": "9999-12-31T23:59:59-01:00"}),
                               "at: '9999-12-31T23:59:59-01:00' is more than a day"),
    "at year 1 at +01:00": (*_slo(body={"at": "0001-01-01T00:00:00+01:00"}), "at: '0001"),
    "at year 2999": (*_slo(body={"at": "2999-12-31T23:59:59+00:00"}), "more than a day after"),
    "at 1999": (*_slo(body={"at": "1999-12-31T23:59:59+00:00"}), "is before 2000-01-01"),
    "detail a list": (*_slo(body={"detail": [1]}), "detail: expected an object"),
    "compliance a string": (*_slo(body={"compliance": "99%"}), "compliance: expected a number"),
    "burn_pair odd": (*_slo(body={"burn_pair": "fast"}), "burn_pair"),
    "event_id not hex": (*_slo({"event_id": "x y"}), "event_id"),
    "backup status contradicts": (*_backup({"status": "complete"}, {"status": "complete"}),
                                  "contradicts"),
    "backup run_id bad": (*_backup({"run_id": "../x"}, {"run_id": "../x"}), "run_id"),
    "backup run_id missing": (*_backup({}, {"run_id": None}, "run_id"), "run_id: missing"),
    "backup manifest elsewhere": (*_backup(body={"manifest": "https://evil.example/m"}),
                                  "manifest"),
    "backup manifest other run": (*_backup(body={"manifest":
                                  "gs://test-backups/backups/20261130/_manifest.json"}),
                                  "names run 20261130"),
    "backup failed not a list": (*_backup(body={"failed": "nba_raw.games"}), "failed: expected"),
    "backup failed item no source": (*_backup(body={"failed": [{"error": "x"}]}), "source: missing"),
    "backup tables negative": (*_backup(body={"tables": -1}), "tables"),
    "backup errors not strings": (*_backup(body={"errors": [{"a": 1}]}), "errors[0]"),
    "unknown backup event": (*_backup({"event_type": "backup.started"}, {"type": None}),
                             "backup.started"),
}  # fmt: skip


def test_there_are_at_least_thirty_malformed_cases() -> None:
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_messages_are_bad_input_naming_the_problem(case: str) -> None:
    body, attributes, kind, expected = MALFORMED[case]
    with pytest.raises(BadInput) as caught:
        alert_from_message(_message(body, attributes), topic_kind=kind, received_at=RECEIVED)
    message = str(caught.value)
    assert expected in message
    assert len(message) < 300  # never echoes a huge value back


def test_a_naive_publish_time_is_taken_as_utc() -> None:
    naive = PUBLISHED.replace(tzinfo=None)
    closed = _alert(_incident(state="closed", started_at=None), publish_time=naive)
    assert closed.starts_at == closed.ends_at == PUBLISHED


def test_received_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        alert_from_message(_message(INCIDENT), topic_kind=None, received_at=datetime(2026, 12, 1))


def test_mutated_messages_give_an_alert_or_bad_input_and_nothing_else() -> None:
    """Seeded fuzz: every field of each source replaced by odd values or dropped."""
    rng = random.Random(20261201)
    odd: list[Any] = [None, True, 0, -1, 1e308, 2**70, "", "x" * 5000, "\ud800", "\x00", [],
                      [1, {}], {}, {"a": [None]}, "closed", "2026-12-01T00:00:00Z", 1.5, "P0",
                      "slo.recovered", "backup.completed", "12345678901234567890"]  # fmt: skip

    def mutate(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                roll = rng.random()
                if roll < 0.08:
                    continue
                out[key] = rng.choice(odd) if roll < 0.2 else mutate(item)
            return out
        if isinstance(value, list):
            return [mutate(v) for v in value]
        return value

    sources = [(INCIDENT, {}), (_SLO_BODY, _SLO_ATTRS), (_BACKUP_BODY, _BACKUP_ATTRS)]
    outcomes = {"alert": 0, "none": 0, "bad": 0}
    for _ in range(3000):
        body, attributes = rng.choice(sources)
        kind: TopicKind | None = rng.choice(["incidents", "alerts", "backup_events", None])
        message = _message(
            mutate(body), dict(attributes), publish_time=rng.choice([None, PUBLISHED])
        )
        try:
            result = alert_from_message(message, topic_kind=kind, received_at=RECEIVED)
        except BadInput:
            outcomes["bad"] += 1
            continue
        outcomes["alert" if result is not None else "none"] += 1
        if result is not None:
            assert result.severity in ("P0", "P1", "P2", "P3")
            assert all(label_name(n) == n and len(v) <= MAX_LABEL_VALUE
                       for n, v in result.labels.items())  # fmt: skip
            json.dumps([dict(result.labels), dict(result.annotations)]).encode("utf-8")
    assert outcomes["alert"] > 100 and outcomes["bad"] > 100
