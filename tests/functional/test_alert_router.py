"""alert_router driven as deployed: functions-framework app, real Pub/Sub CloudEvents.

Receivers: JSON-lines file receivers on the local root (the example config's ``local``
shape), and for the HTTP tests the example config's PagerDuty and Slack receivers pointed
at a pytest-httpserver on loopback (the router's deps are injected with an HTTP client
that has the test-only loopback allowance).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer

from shared import runtime
from shared.adapters.notify import HttpClient
from shared.composition import Adapters, build_adapters
from shared.config import Settings, load_settings
from shared.services import alert_event
from shared.services.alert_router import (
    ACTIVE_PREFIX,
    LEDGER_PREFIX,
    SILENCES_PREFIX,
    RouterDeps,
)
from tests.functional.conftest import cloud_event_poster
from tests.helpers import BUCKET, Stack, pubsub_event, write_example_config

NOW = datetime.now(UTC).replace(microsecond=0)
STARTED = NOW - timedelta(minutes=10)

#: the example's local receiver shape, twice, so "one per receiver" can be counted
LOCAL_ALERTING: dict[str, Any] = {
    "route": {
        "receiver": "local",
        "group_by": ["alertname", "slo"],
        "routes": [
            {"matchers": ['severity=~"P0|P1"'], "receiver": "audit", "continue": True},
            {"matchers": ['severity=~"P0|P1|P2|P3"'], "receiver": "local"},
        ],
    },
    "inhibit_rules": [
        {
            "source_matchers": ['slo="pipeline_availability"', 'severity="P0"'],
            "target_matchers": ['severity=~"P2|P3"'],
        }
    ],
    "receivers": [
        {"name": "local", "file_configs": [{"path": "alerts/notifications.jsonl"}]},
        {"name": "audit", "file_configs": [{"path": "alerts/audit.jsonl"}]},
    ],
}


def _stack(tmp_path: Path, alerting: dict[str, Any] | None) -> Stack:
    path = write_example_config(tmp_path)
    if alerting is not None:
        body = yaml.safe_load(path.read_text())
        body["alerting"] = alerting
        path.write_text(yaml.safe_dump(body, sort_keys=False))
    settings = load_settings(path)
    return Stack(path, settings, build_adapters(settings, "local"))


def _install(
    monkeypatch: pytest.MonkeyPatch,
    stack: Stack,
    factory: Callable[[Settings, Adapters, float], RouterDeps] | None,
) -> None:
    monkeypatch.setenv("OPSUITE_CONFIG", str(stack.config))
    monkeypatch.setenv("OPSUITE_BACKEND", "local")
    runtime.use(stack.settings, stack.adapters)
    alert_event.use_deps(factory)


@pytest.fixture
def local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    s = _stack(tmp_path, LOCAL_ALERTING)
    _install(monkeypatch, s, None)
    yield s
    alert_event.use_deps(None)
    runtime.reset()


@pytest.fixture
def server(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    yield httpserver_ipv4
    httpserver_ipv4.clear()


@pytest.fixture
def http_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> Iterator[Stack]:
    """The example config as shipped: P0/P1 → PagerDuty (oncall) + Slack, on loopback."""
    s = _stack(tmp_path, None)
    secrets = s.paths.secrets
    secrets.mkdir(parents=True, exist_ok=True)
    for name, value in {
        "pagerduty-routing-key": "R0UTINGKEY0123456789abcdef012345",
        "slack-webhook-nba-incidents": server.url_for("/services/T0/B0/SLACKTOKEN"),
    }.items():
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o600)
    http = HttpClient(allow_loopback=True, connect_timeout=2, read_timeout=2)

    def factory(settings: Settings, adapters: Adapters, started: float) -> RouterDeps:
        deps = RouterDeps.of(
            settings,
            adapters,
            started=started,
            http=http,
            pagerduty_url=server.url_for("/v2/enqueue"),
        )
        return replace(deps, deadline=started)  # one attempt per delivery: no waiting

    _install(monkeypatch, s, factory)
    yield s
    alert_event.use_deps(None)
    runtime.reset()


@pytest.fixture
def post() -> Callable[[dict[str, Any]], Any]:
    return cloud_event_poster("alert_router")


# -- messages -------------------------------------------------------------------------
def _hex(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def slo_event(
    event_type: str = "slo.breached",
    *,
    slo: str = "data_freshness",
    condition: str = "sli",
    severity: str = "P1",
    at: datetime = STARTED,
    message_id: str | None = None,
) -> dict[str, Any]:
    """An ``opsuite-alerts`` message as the SLA evaluator publishes it."""
    event_id = _hex(event_type, slo, condition, at)
    attributes = {
        "event_type": event_type,
        "slo": slo,
        "severity": severity,
        "urgency": "page",
        "condition": condition,
        "fingerprint": _hex("slo", slo, condition),
        "event_id": event_id,
    }
    body = {"type": event_type, "slo": slo, "condition": condition, "at": at.isoformat()}
    return pubsub_event(
        body,
        attributes=attributes,
        publish_time=at,
        message_id=message_id or str(int(event_id[:12], 16)),
    )


def incident_event(state: str, started: datetime, ended: datetime | None, message_id: str) -> Any:
    body = {
        "version": "1.2",
        "incident": {
            "incident_id": "0.nwg9th6llz4w",
            "state": state,
            "started_at": int(started.timestamp()),
            "ended_at": int(ended.timestamp()) if ended else None,
            "policy_name": "Table stale (> 24 h)",
            "condition_name": "age_hours above 24",
            "summary": "Age of nba_raw.games is above the threshold of 24",
            "resource": {"type": "global", "labels": {"project_id": "nba-props-platform"}},
            "metric": {
                "type": "custom.googleapis.com/opsuite/freshness/age_hours",
                "labels": {"table": "nba_raw.games"},
            },
            "policy_user_labels": {"severity": "p2"},
        },
    }
    return pubsub_event(body, message_id=message_id, publish_time=ended or started)


# -- what happened --------------------------------------------------------------------
def notifications(stack: Stack, receiver_file: str = "notifications.jsonl") -> list[dict[str, Any]]:
    path = Path(stack.settings.local.root) / "alerts" / receiver_file
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def ledger(stack: Stack) -> list[dict[str, Any]]:
    store = stack.adapters.store
    return [json.loads(store.read(BUCKET, o.name)) for o in store.list(BUCKET, LEDGER_PREFIX)]


def active(stack: Stack, fingerprint: str) -> dict[str, Any]:
    data = stack.adapters.store.read(BUCKET, f"{ACTIVE_PREFIX}{fingerprint}.json")
    result: dict[str, Any] = json.loads(data)
    return result


def fingerprint_of(event: dict[str, Any]) -> str:
    return str(event["data"]["message"]["attributes"]["fingerprint"])


def pd_events(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(r.data) for r, _ in server.log if r.path == "/v2/enqueue"]


def slack_posts(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(r.data) for r, _ in server.log if r.path.startswith("/services/")]


# -- the tests ------------------------------------------------------------------------
def test_an_slo_breach_notifies_each_receiver_once_with_detection(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    event = slo_event()
    assert post(event).status_code == 200
    fp = fingerprint_of(event)

    [local] = notifications(local_stack)
    [audit] = notifications(local_stack, "audit.jsonl")
    assert local["status"] == "firing" and audit["status"] == "firing"
    assert [a["fingerprint"] for a in local["alerts"]] == [fp]
    assert local["alerts"][0]["labels"]["slo"] == "data_freshness"
    records = {r["receiver"]: r for r in ledger(local_stack)}
    assert set(records) == {"local", "audit"}
    record = records["local"]
    assert (record["status"], record["fingerprint"], record["status_code"]) == ("firing", fp, 200)
    assert record["source"] == "slo" and record["source_id"]
    assert record["starts_at"] == STARTED.isoformat()
    assert 590 <= record["detection_seconds"] < 3600
    state = active(local_stack, fp)
    assert state["status"] == "firing" and set(state["notified"]) == {"local", "audit"}


def test_the_same_message_twice_and_five_times_at_once_notifies_once(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    event = slo_event()
    assert post(event).status_code == 200
    assert post(event).status_code == 200
    assert len(notifications(local_stack)) == 1

    other = slo_event(slo="phase_success_rate")
    posters = [cloud_event_poster("alert_router") for _ in range(5)]
    codes: list[int] = []
    barrier = threading.Barrier(5)

    def deliver(p: Callable[[dict[str, Any]], Any]) -> None:
        barrier.wait()
        codes.append(p(other).status_code)

    threads = [threading.Thread(target=deliver, args=(p,)) for p in posters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 5
    fp = fingerprint_of(other)
    for receiver_file in ("notifications.jsonl", "audit.jsonl"):
        sent = [
            n
            for n in notifications(local_stack, receiver_file)
            if n["alerts"][-1]["fingerprint"] == fp
        ]
        assert len(sent) == 1, receiver_file
    assert len([r for r in ledger(local_stack) if r["fingerprint"] == fp]) == 2
    assert set(active(local_stack, fp)["notified"]) == {"local", "audit"}  # no update lost


def test_breach_then_recovery_fires_then_resolves_with_the_same_fingerprint(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    breach = slo_event()
    recovery = slo_event("slo.recovered", at=NOW - timedelta(minutes=1))
    assert post(breach).status_code == 200
    assert post(recovery).status_code == 200
    assert post(recovery).status_code == 200  # redelivered: nothing more

    sent = notifications(local_stack)
    assert [n["status"] for n in sent] == ["firing", "resolved"]
    assert sent[0]["alerts"][0]["fingerprint"] == sent[1]["alerts"][0]["fingerprint"]
    resolved = sent[1]["alerts"][0]
    assert resolved["startsAt"].startswith(STARTED.strftime("%Y-%m-%dT%H:%M:%S"))
    assert active(local_stack, fingerprint_of(breach))["status"] == "resolved"
    statuses = sorted((r["receiver"], r["status"]) for r in ledger(local_stack))
    assert statuses == [
        ("audit", "firing"),
        ("audit", "resolved"),
        ("local", "firing"),
        ("local", "resolved"),
    ]


def test_a_close_before_its_open_fires_nothing_but_a_later_episode_does(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    ended = STARTED + timedelta(minutes=5)
    assert post(incident_event("closed", STARTED, ended, "1001")).status_code == 200
    assert post(incident_event("open", STARTED, None, "1000")).status_code == 200  # late open
    assert notifications(local_stack) == []
    assert ledger(local_stack) == []

    again = ended + timedelta(minutes=1)  # the problem comes back: a new episode
    assert post(incident_event("open", again, None, "1002")).status_code == 200
    [sent] = notifications(local_stack)
    assert sent["status"] == "firing"
    assert sent["alerts"][0]["labels"]["severity"] == "P2"


def _silence(stack: Stack, sid: str, matchers: list[str], starts: datetime, ends: datetime) -> None:
    body = {
        "id": sid,
        "matchers": matchers,
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "comment": "maintenance",
        "created_by": "tester",
    }
    stack.adapters.store.write(
        BUCKET, f"{SILENCES_PREFIX}{sid}.json", json.dumps(body).encode(), "application/json"
    )


def test_a_silenced_alert_is_recorded_suppressed_and_not_sent(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    _silence(local_stack, "s-active", ['slo="data_freshness"'], NOW - timedelta(hours=1),
             NOW + timedelta(hours=1))  # fmt: skip
    _silence(local_stack, "s-expired", ['slo="model_accuracy"'], NOW - timedelta(hours=2),
             NOW - timedelta(hours=1))  # fmt: skip
    assert post(slo_event(slo="data_freshness")).status_code == 200
    assert post(slo_event(slo="data_freshness")).status_code == 200
    assert post(slo_event(slo="model_accuracy")).status_code == 200

    sent = notifications(local_stack)
    assert [n["alerts"][0]["labels"]["slo"] for n in sent] == ["model_accuracy"]
    suppressed = [r for r in ledger(local_stack) if r["status"] == "suppressed"]
    assert sorted(r["receiver"] for r in suppressed) == ["audit", "local"]
    assert all(r["reason"] == "silenced by s-active" for r in suppressed)
    assert all(r["fingerprint"] == _hex("slo", "data_freshness", "sli") for r in suppressed)


def test_a_firing_p0_pipeline_outage_inhibits_a_p2_alert(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    p2 = slo_event(slo="data_freshness", severity="P2")
    assert post(p2).status_code == 200  # nothing firing yet: notified
    assert post(slo_event(slo="pipeline_availability", severity="P0")).status_code == 200
    later = slo_event(slo="phase_success_rate", severity="P2")
    assert post(later).status_code == 200

    slos = [n["alerts"][-1]["labels"]["slo"] for n in notifications(local_stack)]
    assert slos == ["data_freshness", "pipeline_availability"]
    [record] = [r for r in ledger(local_stack) if r["fingerprint"] == fingerprint_of(later)]
    assert record["status"] == "suppressed"
    assert record["reason"].startswith("inhibited by inhibit_rules[0]")


def test_a_resolved_source_no_longer_inhibits(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    # Alertmanager's inhibit_test.go TestInhibit, through the router: the target is muted
    # while the source fires, the source itself is not, and once the source is resolved
    # the target is told (a new one on delivery, the held one by the tick)
    source = slo_event(slo="pipeline_availability", severity="P0")
    held = slo_event(slo="data_freshness", severity="P2")
    assert post(source).status_code == 200
    assert post(held).status_code == 200
    [record] = [r for r in ledger(local_stack) if r["fingerprint"] == fingerprint_of(held)]
    assert record["status"] == "suppressed"

    recovered = slo_event(
        "slo.recovered", slo="pipeline_availability", severity="P0", at=NOW - timedelta(minutes=1)
    )
    assert post(recovered).status_code == 200
    later = slo_event(slo="phase_success_rate", severity="P2")
    assert post(later).status_code == 200
    assert post(tick_event()).status_code == 200

    told = [(n["status"], n["alerts"][-1]["labels"]["slo"]) for n in notifications(local_stack)]
    assert told[:2] == [("firing", "pipeline_availability"), ("resolved", "pipeline_availability")]
    assert sorted(told[2:]) == [("firing", "data_freshness"), ("firing", "phase_success_rate")]


def test_a_p1_breach_pages_and_posts_then_resolves_with_the_same_dedup_key(
    http_stack: Stack, server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    server.expect_request("/v2/enqueue", method="POST").respond_with_json(
        {"status": "success", "dedup_key": "x"}, status=202
    )
    server.expect_request("/services/T0/B0/SLACKTOKEN", method="POST").respond_with_data("ok")
    breach = slo_event()
    assert post(breach).status_code == 200
    assert post(breach).status_code == 200
    assert post(slo_event("slo.recovered", at=NOW - timedelta(minutes=1))).status_code == 200

    events = pd_events(server)
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"] == fingerprint_of(breach)
    assert len(slack_posts(server)) == 2
    codes = {(r["receiver"], r["status"]): r["status_code"] for r in ledger(http_stack)}
    assert codes[("oncall", "firing")] == 202 and codes[("slack-incidents", "resolved")] == 200


def test_a_receiver_that_fails_then_recovers_is_retried_alone(
    http_stack: Stack, server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    server.expect_oneshot_request("/services/T0/B0/SLACKTOKEN").respond_with_data(
        "upstream down", status=500
    )
    server.expect_request("/services/T0/B0/SLACKTOKEN").respond_with_data("ok")
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    event = slo_event()

    assert post(event).status_code == 500  # raised: Pub/Sub redelivers
    assert len(pd_events(server)) == 1 and len(slack_posts(server)) == 1
    assert [r["receiver"] for r in ledger(http_stack)] == ["oncall"]

    assert post(event).status_code == 200  # the redelivery
    assert len(pd_events(server)) == 1  # PagerDuty not paged twice
    assert len(slack_posts(server)) == 2
    assert sorted(r["receiver"] for r in ledger(http_stack)) == ["oncall", "slack-incidents"]


def test_a_400_is_recorded_failed_with_the_answer_and_acknowledged(
    http_stack: Stack, server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    server.expect_request("/v2/enqueue").respond_with_json(
        {"status": "invalid event", "message": "Event object is invalid"}, status=400
    )
    server.expect_request("/services/T0/B0/SLACKTOKEN").respond_with_data("ok")
    event = slo_event()
    assert post(event).status_code == 200
    assert len(pd_events(server)) == 1 and len(slack_posts(server)) == 1  # both tried
    assert post(event).status_code == 200  # a duplicate: the failure is not retried

    assert len(pd_events(server)) == 1 and len(slack_posts(server)) == 1
    records = {r["receiver"]: r for r in ledger(http_stack)}
    failed = records["oncall"]
    assert (failed["status"], failed["status_code"]) == ("failed", 400)
    assert "Event object is invalid" in failed["response"]
    assert "R0UTINGKEY" not in json.dumps(failed)
    assert records["slack-incidents"]["status"] == "firing"


def _edited(event: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """``event`` with its message body changed by ``change`` (attributes and time kept)."""
    message = event["data"]["message"]
    body = json.loads(base64.b64decode(message["data"]))
    change(body)
    message["data"] = base64.b64encode(json.dumps(body).encode()).decode()
    return event


def _slo_at(at: str) -> dict[str, Any]:
    return _edited(slo_event(), lambda body: body.update(at=at))


def _incident_times(state: str = "open", **times: Any) -> dict[str, Any]:
    return _edited(
        incident_event(state, STARTED, None, "9990"), lambda body: body["incident"].update(times)
    )


MALFORMED: list[dict[str, Any]] = [
    # instants outside 2000-01-01 .. a day after arrival: year 1 / 9999 overflowed
    _slo_at("9999-12-31T23:59:59-01:00"),
    _slo_at("0001-01-01T00:00:00+01:00"),
    _incident_times("closed", ended_at=253402300799),
    _incident_times(started_at="0001-01-01T00:00:00+01:00"),
    _incident_times(started_at=32503680000),  # year 2999
    _incident_times(started_at=-1),
    pubsub_event(raw_data="not base64!!"),
    pubsub_event(raw_data=""),
    pubsub_event(b"\xff\xfe not utf-8"),
    pubsub_event(b"{not json"),
    pubsub_event([1, 2, 3]),
    pubsub_event(b"null"),
    pubsub_event({"hello": "world"}),
    pubsub_event({"type": "slo.breached"}, attributes={"event_type": "slo.breached"}),
    pubsub_event(
        {"type": "slo.breached"},
        attributes={"event_type": "slo.breached", "fingerprint": "NOT-HEX", "slo": "x"},
    ),
    pubsub_event({"type": "drill.failed"}, attributes={"event_type": "drill.failed"}),
    pubsub_event({"type": "dns.exploded"}, attributes={"event_type": "dns.exploded"}),
    pubsub_event({"version": "1.2", "incident": {"state": "exploded"}}),
    pubsub_event({"version": "1.2", "incident": "a string"}),
    pubsub_event(b"[" * 100_000 + b"]" * 100_000),
    {**pubsub_event({}), "data": {"message": "not an object"}},
    {**pubsub_event({}), "data": {"subscription": "no message"}},
]


def test_malformed_messages_are_acknowledged_and_nothing_is_sent(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("ERROR", logger="shared.services.alert_event")
    for i, event in enumerate(MALFORMED):
        response = post(event)
        assert response.status_code == 200, (i, response.data[:200])
    assert notifications(local_stack) == [] and notifications(local_stack, "audit.jsonl") == []
    assert local_stack.adapters.store.list(BUCKET, "_opsuite/alerts/") == []
    rejected = [
        r for r in caplog.records if getattr(r, "fields", {}).get("trigger_rejected") == "bad_input"
    ]
    assert len(rejected) == len(MALFORMED)


def test_a_message_the_parser_fails_on_is_acknowledged_and_logged_with_its_type(
    local_stack: Stack,
    post: Callable[[dict[str, Any]], Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a message the parser fails on with something other than BadInput (a bug, or an
    # input nobody foresaw): it must not become a poison message redelivered for days
    def broken(*_: Any, **__: Any) -> Any:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(alert_event, "alert_from_message", broken)
    event = slo_event()
    caplog.set_level("ERROR", logger="shared.services.alert_event")
    # when it is delivered, twice
    responses = [post(event).status_code, post(event).status_code]
    # then it is acknowledged each time, nothing is sent or stored, the error is logged
    assert responses == [200, 200]
    assert notifications(local_stack) == [] and notifications(local_stack, "audit.jsonl") == []
    assert local_stack.adapters.store.list(BUCKET, "_opsuite/alerts/") == []
    [first, second] = [
        getattr(r, "fields", {}) for r in caplog.records if r.name == "shared.services.alert_event"
    ]
    assert first["error_type"] == second["error_type"] == "OverflowError"
    assert first["trigger_rejected"] == "permanent"


def test_a_publish_time_before_year_one_in_utc_is_bad_input(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    event = slo_event()
    event["data"]["message"]["publishTime"] = "0001-01-01T00:00:00+01:00"
    assert post(event).status_code == 200
    assert local_stack.adapters.store.list(BUCKET, "_opsuite/alerts/") == []


# -- the scheduled tick -----------------------------------------------------------------
class Now:
    """The router's clock in the tick tests (None: the real time)."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


@pytest.fixture
def clock(local_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Now:
    now = Now()

    def factory(settings: Settings, adapters: Adapters, started: float) -> RouterDeps:
        return replace(RouterDeps.of(settings, adapters, started=started), now=now)

    _install(monkeypatch, local_stack, factory)
    return now


def tick_event(message_id: str = "5550001", *, in_body: bool = False) -> dict[str, Any]:
    if in_body:  # a Scheduler job publishing a body rather than attributes
        return pubsub_event({"type": "alerts.tick"}, message_id=message_id)
    return pubsub_event({}, attributes={"event_type": "alerts.tick"}, message_id=message_id)


def test_the_tick_repeats_a_firing_alert_once_per_repeat_interval(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    breach = slo_event(severity="P2")  # → local only; repeat_interval 4h (the default)
    clock.at = NOW
    assert post(breach).status_code == 200
    assert post(tick_event()).status_code == 200  # slot 0 was the delivery: nothing new
    assert len(notifications(local_stack)) == 1

    # repeats are due repeat_interval after the last notification (as Alertmanager)
    clock.at = NOW + timedelta(hours=4, minutes=1)
    assert post(tick_event("5550002")).status_code == 200
    assert post(tick_event("5550003")).status_code == 200  # same slot: nothing twice
    assert len(notifications(local_stack)) == 2
    clock.at = NOW + timedelta(hours=8, minutes=2)
    assert post(tick_event("5550004", in_body=True)).status_code == 200
    sent = notifications(local_stack)
    assert [n["status"] for n in sent] == ["firing"] * 3
    fp = fingerprint_of(breach)
    slots = sorted(r["slot"] for r in ledger(local_stack) if r["fingerprint"] == fp)
    assert slots == [0, 1, 2]

    clock.at = NOW + timedelta(hours=8, minutes=3)
    assert post(slo_event("slo.recovered", severity="P2", at=clock.at)).status_code == 200
    clock.at = NOW + timedelta(hours=12, minutes=5)
    assert post(tick_event("5550005")).status_code == 200
    assert [n["status"] for n in notifications(local_stack)] == ["firing"] * 3 + ["resolved"]


def test_an_alert_silenced_at_delivery_is_notified_by_the_tick_once_the_silence_ends(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    clock.at = NOW
    _silence(local_stack, "s-short", ['slo="data_freshness"'], NOW - timedelta(hours=1),
             NOW + timedelta(minutes=30))  # fmt: skip
    assert post(slo_event(severity="P2")).status_code == 200
    assert post(tick_event()).status_code == 200
    assert notifications(local_stack) == []

    clock.at = NOW + timedelta(minutes=31)
    assert post(tick_event("5550002")).status_code == 200
    assert post(tick_event("5550003")).status_code == 200
    [sent] = notifications(local_stack)
    assert sent["status"] == "firing"
    statuses = sorted(r["status"] for r in ledger(local_stack))
    assert statuses == ["firing", "suppressed"]

    silence = f"{SILENCES_PREFIX}s-short.json"
    assert local_stack.adapters.store.stat(BUCKET, silence) is not None  # kept a while
    clock.at = NOW + timedelta(days=6)
    assert post(tick_event("5550004")).status_code == 200
    assert local_stack.adapters.store.stat(BUCKET, silence) is None


def test_a_test_notification_resolves_on_the_tick_once_its_ttl_passes(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    assert post(pubsub_event({"version": "test"}, message_id="777")).status_code == 200
    [fired] = notifications(local_stack)
    assert fired["alerts"][0]["labels"]["test"] == "true"

    clock.at = datetime.now(UTC) + timedelta(minutes=6)
    assert post(tick_event()).status_code == 200
    assert post(tick_event("5550002")).status_code == 200
    sent = notifications(local_stack)
    assert [n["status"] for n in sent] == ["firing", "resolved"]
    fp = fired["alerts"][0]["fingerprint"]
    assert active(local_stack, fp)["status"] == "resolved"

    clock.at = datetime.now(UTC) + timedelta(days=6)  # long resolved: the state goes
    assert post(tick_event("5550003")).status_code == 200
    assert local_stack.adapters.store.list(BUCKET, ACTIVE_PREFIX) == []
    assert len(notifications(local_stack)) == 2


def test_every_malformed_input_case_is_acknowledged_through_the_function(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    """The alert-input suite's malformed messages (tests/unit/test_alert_inputs.py), each
    delivered as a real Pub/Sub CloudEvent: acknowledged, nothing sent, nothing stored."""
    from tests.unit.test_alert_inputs import MALFORMED as INPUT_CASES

    assert len(INPUT_CASES) + len(MALFORMED) >= 30
    for case, (body, attributes, _kind, _why) in sorted(INPUT_CASES.items()):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        event = pubsub_event(raw_data=base64.b64encode(raw).decode(), attributes=attributes)
        response = post(event)
        assert response.status_code == 200, (case, response.data[:200])
    assert notifications(local_stack) == []
    assert local_stack.adapters.store.list(BUCKET, "_opsuite/alerts/") == []


# -- review fixes -----------------------------------------------------------------------
def monitoring_event(
    state: str,
    *,
    policy: str = "Same policy",
    severity: str = "p1",
    table: str = "a",
    incident_id: str = "0.inc",
    started: datetime = STARTED,
    ended: datetime | None = None,
    message_id: str = "9001",
) -> Any:
    """A Cloud Monitoring incident with the policy, severity and table label chosen."""
    body = {
        "version": "1.2",
        "incident": {
            "incident_id": incident_id,
            "state": state,
            "started_at": int(started.timestamp()),
            "ended_at": int(ended.timestamp()) if ended else None,
            "policy_name": policy,
            "condition_name": "c",
            "summary": "s",
            "resource": {"type": "global", "labels": {}},
            "metric": {"type": "custom.googleapis.com/x", "labels": {"table": table}},
            "policy_user_labels": {"severity": severity},
        },
    }
    return pubsub_event(body, message_id=message_id, publish_time=ended or started)


def _tables(notification: dict[str, Any]) -> list[str]:
    return [a["labels"]["metric_table"] for a in notification["alerts"]]


def test_a_group_carries_only_members_routed_here_and_not_suppressed(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    # a P3 and a P1 of the same policy share a group key, but only the P1 reaches audit
    clock.at = NOW
    assert (
        post(monitoring_event("open", severity="p3", table="a", message_id="1")).status_code == 200
    )
    assert (
        post(monitoring_event("open", severity="p1", table="b", message_id="2")).status_code == 200
    )
    [audit] = notifications(local_stack, "audit.jsonl")
    assert _tables(audit) == ["b"]
    assert [_tables(n) for n in notifications(local_stack)] == [["a"]]  # b waits for the tick
    clock.at = NOW + timedelta(minutes=5)  # group_interval (the default 5m) later
    assert post(tick_event()).status_code == 200
    assert [_tables(n) for n in notifications(local_stack)] == [["a"], ["a", "b"]]

    # a silenced member of the group isn't re-sent with the next member's notification
    _silence(local_stack, "s-x", ['metric_table="x"'], NOW - timedelta(hours=1),
             NOW + timedelta(hours=1))  # fmt: skip
    assert post(monitoring_event("open", policy="Other", severity="p2", table="x",
                                 message_id="3")).status_code == 200  # fmt: skip
    assert post(monitoring_event("open", policy="Other", severity="p2", table="y",
                                 message_id="4")).status_code == 200  # fmt: skip
    assert _tables(notifications(local_stack)[-1]) == ["y"]


def test_a_late_close_of_the_previous_incident_leaves_the_next_one_firing(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    a_start, b_start = STARTED, STARTED + timedelta(minutes=5)
    b_open = monitoring_event("open", incident_id="B", started=b_start, message_id="2")
    assert post(monitoring_event("open", incident_id="A", started=a_start,
                                 message_id="1")).status_code == 200  # fmt: skip
    assert post(b_open).status_code == 200
    a_close = monitoring_event("closed", incident_id="A", started=a_start,
                               ended=a_start + timedelta(minutes=2), message_id="3")  # fmt: skip
    assert post(a_close).status_code == 200  # arrives after B opened: stale
    fp = next(iter({r["fingerprint"] for r in ledger(local_stack)}))
    state = active(local_stack, fp)
    assert state["status"] == "firing"
    assert (state["open_source_id"], state["open_started_at"]) == ("B", b_start.isoformat())
    assert [n["status"] for n in notifications(local_stack)] == ["firing"]

    assert post(monitoring_event("closed", incident_id="B", started=b_start,
                                 ended=NOW, message_id="4")).status_code == 200  # fmt: skip
    assert [n["status"] for n in notifications(local_stack)] == ["firing", "resolved"]
    # an open that starts after the close is a new episode: it notifies again
    assert post(monitoring_event("open", incident_id="C", started=NOW + timedelta(minutes=1),
                                 message_id="5")).status_code == 200  # fmt: skip
    assert [n["status"] for n in notifications(local_stack)] == ["firing", "resolved", "firing"]


def test_a_crash_between_the_send_and_its_record_still_sends_the_resolve(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.services import alert_router

    write = alert_router._write_record

    def crash(deps: RouterDeps, name: str, record: dict[str, Any], **kwargs: Any) -> None:
        if record.get("status") == "firing":
            raise RuntimeError("instance killed")
        write(deps, name, record, **kwargs)

    monkeypatch.setattr(alert_router, "_write_record", crash)
    assert post(slo_event(severity="P2")).status_code == 500  # sent, then the instance died
    monkeypatch.setattr(alert_router, "_write_record", write)
    assert ledger(local_stack) == []  # only the claim's done marker knows it was sent

    recovery = slo_event("slo.recovered", severity="P2", at=NOW - timedelta(minutes=1))
    assert post(recovery).status_code == 200
    assert [n["status"] for n in notifications(local_stack)] == ["firing", "resolved"]
    assert [r["status"] for r in ledger(local_stack)] == ["resolved"]


def test_the_first_repeat_comes_repeat_interval_after_a_late_first_page(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    clock.at = NOW  # first told 3 h 58 min after it started (e.g. a receiver outage)
    breach = slo_event(severity="P2", at=NOW - timedelta(hours=4) + timedelta(minutes=2))
    assert post(breach).status_code == 200
    clock.at = NOW + timedelta(minutes=5)
    assert post(tick_event()).status_code == 200  # not 5 minutes after the first page
    assert len(notifications(local_stack)) == 1
    clock.at = NOW + timedelta(hours=4, minutes=1)
    assert post(tick_event("5550002")).status_code == 200
    assert [n["status"] for n in notifications(local_stack)] == ["firing", "firing"]
    assert sorted(r["slot"] for r in ledger(local_stack)) == [0, 1]


def test_an_unreadable_secret_is_retried_not_recorded_failed(
    http_stack: Stack, server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    server.expect_request("/services/T0/B0/SLACKTOKEN").respond_with_data("ok")
    key = http_stack.paths.secrets / "pagerduty-routing-key"
    value = key.read_text()
    key.unlink()  # e.g. the IAM binding not propagated yet: NotFound / PermissionDenied
    event = slo_event()
    assert post(event).status_code == 500  # Slack told; PagerDuty left for the redelivery
    assert post(event).status_code == 500
    assert pd_events(server) == [] and len(slack_posts(server)) == 1
    assert [r["receiver"] for r in ledger(http_stack)] == ["slack-incidents"]

    key.write_text(value)
    key.chmod(0o600)
    assert post(tick_event()).status_code == 200  # the tick retries slot 0
    assert [e["event_action"] for e in pd_events(server)] == ["trigger"]
    assert post(event).status_code == 200  # the redelivery: nothing twice
    assert len(pd_events(server)) == 1 and len(slack_posts(server)) == 1
    records = {r["receiver"]: r["status"] for r in ledger(http_stack)}
    assert records == {"oncall": "firing", "slack-incidents": "firing"}


def test_the_tick_retries_a_slot_recorded_failed_by_a_secret_error(
    http_stack: Stack, server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    server.expect_request("/services/T0/B0/SLACKTOKEN").respond_with_data("ok")
    key = http_stack.paths.secrets / "pagerduty-routing-key"
    value = key.read_text()
    key.unlink()
    assert post(slo_event()).status_code == 500
    # the record an earlier version wrote for it: failed for good, no HTTP status
    store = http_stack.adapters.store
    [slack] = [o.name for o in store.list(BUCKET, LEDGER_PREFIX)]
    failed = {"status": "failed", "status_code": None, "error_type": "PermissionDenied",
              "receiver": "oncall", "response": "secret: 403"}  # fmt: skip
    name = slack.replace("/slack-incidents/", "/oncall/")
    store.write_once(BUCKET, name, json.dumps(failed).encode(), "application/json")
    key.write_text(value)
    key.chmod(0o600)

    assert post(tick_event()).status_code == 200
    assert post(tick_event("5550002")).status_code == 200
    assert [e["event_action"] for e in pd_events(server)] == ["trigger"]
    assert json.loads(store.read(BUCKET, name))["status"] == "firing"


def test_a_tick_racing_a_resolve_sends_no_trigger_after_it(
    local_stack: Stack,
    clock: Now,
    post: Callable[[dict[str, Any]], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.services import alert_router

    clock.at = NOW
    assert post(slo_event(severity="P2")).status_code == 200
    clock.at = due = NOW + timedelta(hours=4, minutes=1)  # a repeat is due
    route_to = alert_router._route_to
    other = cloud_event_poster("alert_router")
    raced: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not raced:  # the recovery is delivered while the tick is mid-pass
            raced.append(0)
            recovery = slo_event("slo.recovered", severity="P2", at=due)
            raced[0] = other(recovery).status_code
        return route_to(*args, **kwargs)

    monkeypatch.setattr(alert_router, "_route_to", racing)
    assert post(tick_event()).status_code == 200
    assert raced == [200]
    assert [n["status"] for n in notifications(local_stack)] == ["firing", "resolved"]


def test_a_silence_added_after_the_page_does_not_hold_back_its_resolve(
    local_stack: Stack, post: Callable[[dict[str, Any]], Any]
) -> None:
    assert post(slo_event(slo="data_freshness")).status_code == 200  # paged
    # the on-call silences it while fixing; the problem resolves inside the silence
    _silence(local_stack, "s-fixing", ['slo="data_freshness"'], NOW - timedelta(minutes=1),
             NOW + timedelta(days=2))  # fmt: skip
    recovered = slo_event("slo.recovered", slo="data_freshness", at=STARTED + timedelta(minutes=30))
    assert post(recovered).status_code == 200

    sent = notifications(local_stack)
    assert [n["status"] for n in sent] == ["firing", "resolved"]  # the incident is closed


# -- grouping: group_interval without a long-lived process ---------------------------------
def table_alert(i: int, *, severity: str = "p2", policy: str = "Tables stale") -> Any:
    """One per-table alert of the policy (one group: same alertname, no slo label)."""
    return monitoring_event("open", policy=policy, severity=severity, table=f"t{i:02d}",
                            incident_id=f"0.t{i:02d}", message_id=str(7000 + i))  # fmt: skip


def _firing_records(stack: Stack) -> list[dict[str, Any]]:
    return [r for r in ledger(stack) if r["status"] == "firing"]


def test_twenty_alerts_of_a_group_notify_once_then_the_tick_flushes_the_rest_once(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    clock.at = NOW
    for i in range(20):
        assert post(table_alert(i)).status_code == 200
    [first] = notifications(local_stack)
    assert _tables(first) == ["t00"]  # the first alert of the group: never held back
    assert len(_firing_records(local_stack)) == 1  # the 19 others are pending, not recorded
    assert post(table_alert(3)).status_code == 200  # a redelivery of a pending one
    clock.at = NOW + timedelta(minutes=4)
    assert post(tick_event()).status_code == 200  # group_interval (5m) not over: nothing
    assert len(notifications(local_stack)) == 1

    clock.at = NOW + timedelta(minutes=5)
    assert post(tick_event("5550002")).status_code == 200
    assert post(tick_event("5550002")).status_code == 200  # the same tick redelivered
    assert post(tick_event("5550003")).status_code == 200  # the next tick
    sent = notifications(local_stack)
    assert len(sent) == 2
    assert sorted(_tables(sent[1])) == [f"t{i:02d}" for i in range(20)]  # 19 new + t00
    records = _firing_records(local_stack)
    assert len(records) == 20 and len({r["fingerprint"] for r in records}) == 20
    assert all(r["slot"] == 0 for r in records)


def test_concurrent_ticks_flush_a_group_once(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    clock.at = NOW
    for i in range(5):
        assert post(table_alert(i)).status_code == 200
    clock.at = NOW + timedelta(minutes=6)
    posters = [cloud_event_poster("alert_router") for _ in range(4)]
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def deliver(n: int) -> None:
        barrier.wait()
        codes.append(posters[n](tick_event(str(5560000 + n))).status_code)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 4
    sent = notifications(local_stack)
    assert [len(n["alerts"]) for n in sent] == [1, 5]
    assert len(_firing_records(local_stack)) == 5


def test_a_p0_alone_in_a_new_group_is_sent_at_once_while_another_group_waits(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    clock.at = NOW
    assert post(table_alert(0)).status_code == 200
    assert post(table_alert(1)).status_code == 200  # held for the tick
    assert [_tables(n) for n in notifications(local_stack)] == [["t00"]]
    assert post(slo_event(slo="pipeline_availability", severity="P0")).status_code == 200
    for receiver_file in ("notifications.jsonl", "audit.jsonl"):
        last = notifications(local_stack, receiver_file)[-1]
        assert [a["labels"]["slo"] for a in last["alerts"]] == ["pipeline_availability"]
    assert len(notifications(local_stack)) == 2


def test_an_alert_arriving_group_interval_after_the_last_send_is_sent_at_once(
    local_stack: Stack, clock: Now, post: Callable[[dict[str, Any]], Any]
) -> None:
    clock.at = NOW
    assert post(table_alert(0)).status_code == 200
    clock.at = NOW + timedelta(minutes=1)
    assert post(table_alert(1)).status_code == 200  # within group_interval: pending
    assert len(notifications(local_stack)) == 1
    clock.at = NOW + timedelta(minutes=6)
    assert post(table_alert(2)).status_code == 200  # 6 min after the last send: at once
    sent = notifications(local_stack)
    assert len(sent) == 2 and _tables(sent[1])[-1] == "t02"
    fired = {r["alertname"] + r["fingerprint"] for r in _firing_records(local_stack)}
    assert len(fired) == 2  # t01 is still the tick's


def _with_clock(monkeypatch: pytest.MonkeyPatch, stack: Stack, now: Now) -> None:
    """The HTTP stack's router deps, on the test's clock."""

    def timed(settings: Settings, adapters: Adapters, started: float) -> RouterDeps:
        return replace(build(settings, adapters, started), now=now)

    with alert_event._lock:
        factory = alert_event._factory
    assert factory is not None
    build = factory

    _install(monkeypatch, stack, timed)


def test_pagerduty_gets_one_event_per_new_alert_not_the_whole_group_each_time(
    http_stack: Stack,
    server: HTTPServer,
    post: Callable[[dict[str, Any]], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    server.expect_request("/services/T0/B0/SLACKTOKEN").respond_with_data("ok")
    now = Now()
    _with_clock(monkeypatch, http_stack, now)
    now.at = NOW
    for i in range(20):
        assert post(table_alert(i, severity="p1")).status_code == 200
    assert len(pd_events(server)) == 1 and len(slack_posts(server)) == 1
    now.at = NOW + timedelta(minutes=5)
    assert post(tick_event()).status_code == 200
    assert post(tick_event("5550002")).status_code == 200
    events = pd_events(server)
    assert len(events) == 20  # 1 + 19, not 1 + 2 + ... + 20
    assert len({e["dedup_key"] for e in events}) == 20
    assert {e["event_action"] for e in events} == {"trigger"}
    assert len(slack_posts(server)) == 2
