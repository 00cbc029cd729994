"""A receiver with several integrations, group sends that half-fail, resolves that must
find their trigger, and a tick that keeps going: the router's second review.

The receiver ``oncall`` has a PagerDuty and a Slack integration (in that order), both on a
pytest-httpserver on loopback; the router runs on the test's clock, one HTTP attempt per
delivery (no waiting inside a test).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.adapters.notify import HttpClient
from shared.composition import Adapters
from shared.config import Settings
from shared.services import alert_event, alert_router
from shared.services.alert_router import LEDGER_PREFIX, RouterDeps
from tests.functional.conftest import cloud_event_poster
from tests.functional.test_alert_router import (
    NOW,
    STARTED,
    Now,
    _install,
    _stack,
    ledger,
    monitoring_event,
    pd_events,
    slack_posts,
    slo_event,
    table_alert,
    tick_event,
)
from tests.helpers import BUCKET, Stack

ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"
SLACK_PATH = "/services/T0/B0/SLACKTOKEN"

DUAL: dict[str, Any] = {
    "route": {
        "receiver": "oncall",
        "group_by": ["alertname"],
        "group_interval": "5m",
        "repeat_interval": "4h",
    },
    "receivers": [
        {
            "name": "oncall",
            "pagerduty_configs": [{"routing_key_secret": "pagerduty-routing-key"}],
            "slack_configs": [{"webhook_url_secret": "slack-webhook", "channel": "#nba"}],
        }
    ],
}


def _secrets(stack: Stack, server: HTTPServer) -> None:
    secrets = stack.paths.secrets
    secrets.mkdir(parents=True, exist_ok=True)
    for name, value in {
        "pagerduty-routing-key": ROUTING_KEY,
        "slack-webhook": server.url_for(SLACK_PATH),
        "slack-webhook-nba-incidents": server.url_for(SLACK_PATH),
    }.items():
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o600)


def _stack_on(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: HTTPServer,
    alerting: dict[str, Any] | None,
) -> tuple[Stack, Now]:
    stack = _stack(tmp_path, alerting)
    _secrets(stack, server)
    http = HttpClient(allow_loopback=True, connect_timeout=2, read_timeout=2)
    now = Now()

    def factory(settings: Settings, adapters: Adapters, started: float) -> RouterDeps:
        deps = RouterDeps.of(
            settings,
            adapters,
            started=started,
            http=http,
            pagerduty_url=server.url_for("/v2/enqueue"),
        )
        return replace(deps, deadline=started, now=now)  # one attempt per delivery

    _install(monkeypatch, stack, factory)
    return stack, now


@pytest.fixture
def server(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    yield httpserver_ipv4
    httpserver_ipv4.clear()


@pytest.fixture
def dual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> Iterator[tuple[Stack, Now]]:
    yield _stack_on(tmp_path, monkeypatch, server, DUAL)
    alert_event.use_deps(None)


@pytest.fixture
def example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> Iterator[tuple[Stack, Now]]:
    """The example config as shipped: P0/P1 → oncall (PagerDuty) + slack-incidents."""
    yield _stack_on(tmp_path, monkeypatch, server, None)
    alert_event.use_deps(None)


@pytest.fixture
def post() -> Callable[[dict[str, Any]], Any]:
    return cloud_event_poster("alert_router")


def _accepted_triggers(server: HTTPServer) -> dict[str, int]:
    """dedup_key → how many triggers PagerDuty accepted (answered 202) for it."""
    counts: dict[str, int] = {}
    for request, response in server.log:
        if request.path != "/v2/enqueue" or response.status_code != 202:
            continue
        event = json.loads(request.data)
        if event["event_action"] == "trigger":
            counts[event["dedup_key"]] = counts.get(event["dedup_key"], 0) + 1
    return counts


def _pd_answers(*statuses: int) -> Callable[[Request], Response]:
    """PagerDuty answering ``statuses`` in turn, then 202 for ever."""
    queue = list(statuses)

    def answer(_request: Request) -> Response:
        status = queue.pop(0) if queue else 202
        return Response(json.dumps({"status": "x"}), status=status, content_type=JSON)

    return answer


JSON = "application/json"


# -- every integration of a receiver is tried -----------------------------------------
def test_pagerduty_down_does_not_keep_slack_quiet(
    dual: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    stack, now = dual
    now.at = NOW
    server.expect_request("/v2/enqueue").respond_with_handler(_pd_answers(503, 503))
    server.expect_request(SLACK_PATH).respond_with_data("ok")
    breach = slo_event()

    assert post(breach).status_code == 500  # PagerDuty down: redelivered
    assert len(slack_posts(server)) == 1  # but the channel heard of it at once
    assert ledger(stack) == []  # nothing final yet
    assert post(breach).status_code == 500  # still down
    assert len(slack_posts(server)) == 1  # Slack's done marker: not posted twice
    assert post(breach).status_code == 200  # PagerDuty back
    assert len(slack_posts(server)) == 1 and len(_accepted_triggers(server)) == 1
    [record] = ledger(stack)
    assert (record["status"], record["refused"]) == ("firing", [])


def test_a_refusing_integration_is_listed_and_the_others_still_count(
    dual: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    stack, now = dual
    now.at = NOW
    server.expect_request("/v2/enqueue").respond_with_json(
        {"status": "invalid event", "message": "Event object is invalid"}, status=400
    )
    server.expect_request(SLACK_PATH).respond_with_data("ok")
    breach = slo_event()
    assert post(breach).status_code == 200  # a 400 is permanent: acknowledged
    assert len(slack_posts(server)) == 1  # Slack was still told
    [record] = ledger(stack)
    assert record["status"] == "firing"  # someone was told: its resolve must follow
    [refused] = record["refused"]
    assert (refused["integration"], refused["status_code"]) == (0, 400)
    assert "Event object is invalid" in refused["response"]
    assert ROUTING_KEY not in json.dumps(record)

    now.at = NOW + timedelta(minutes=30)
    assert post(slo_event("slo.recovered", at=NOW + timedelta(minutes=29))).status_code == 200
    assert len(slack_posts(server)) == 2  # the resolve reached the channel too


# -- group sends: each alert's PagerDuty event on its own ------------------------------
def test_a_member_of_a_half_failed_group_send_still_gets_its_resolve(
    dual: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    _, now = dual
    server.expect_request("/v2/enqueue").respond_with_handler(_pd_answers())
    server.expect_oneshot_request(SLACK_PATH).respond_with_data("ok")  # the first page
    server.expect_request(SLACK_PATH).respond_with_data("down", status=503)
    now.at = NOW
    for i in range(3):
        assert post(table_alert(i, severity="p1")).status_code == 200
    assert len(_accepted_triggers(server)) == 1  # t00 at once; t01, t02 wait for the tick

    now.at = NOW + timedelta(minutes=5)
    assert post(tick_event()).status_code == 200  # Slack down: the tick acks anyway
    assert len(_accepted_triggers(server)) == 3  # PagerDuty took t01 and t02
    # t01 resolves before any tick could finish the group send
    now.at = NOW + timedelta(minutes=6)
    closed = monitoring_event("closed", policy="Tables stale", table="t01", incident_id="0.t01",
                              message_id="8101", ended=NOW + timedelta(minutes=6))  # fmt: skip
    assert post(closed).status_code in (200, 500)  # Slack may still be down
    resolves = [e for e in pd_events(server) if e["event_action"] == "resolve"]
    assert len(resolves) == 1  # PagerDuty's incident for t01 is closed
    triggered = {e["dedup_key"] for e in pd_events(server) if e["event_action"] == "trigger"}
    assert resolves[0]["dedup_key"] in triggered


def test_a_429_half_way_through_a_group_sends_only_the_rest_next_time(
    dual: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    stack, now = dual
    # the first page, then three of the group's flush accepted, then a 429
    server.expect_request("/v2/enqueue").respond_with_handler(_pd_answers(202, 202, 202, 202, 429))
    server.expect_request(SLACK_PATH).respond_with_data("ok")
    now.at = NOW
    for i in range(8):
        assert post(table_alert(i, severity="p1")).status_code == 200
    now.at = NOW + timedelta(minutes=5)
    assert post(tick_event()).status_code == 200
    assert len(_accepted_triggers(server)) == 4  # t00 + three of the seven
    now.at = NOW + timedelta(minutes=10)
    assert post(tick_event("5550002")).status_code == 200
    now.at = NOW + timedelta(minutes=15)
    assert post(tick_event("5550003")).status_code == 200

    accepted = _accepted_triggers(server)
    assert len(accepted) == 8 and set(accepted.values()) == {1}  # each paged exactly once
    firing = [r for r in ledger(stack) if r["status"] == "firing"]
    assert len({r["fingerprint"] for r in firing}) == 8
    assert len(slack_posts(server)) == 2  # the first page and one group message


# -- a resolve goes where its trigger went --------------------------------------------
def test_a_resolve_reaches_the_receiver_paged_even_after_the_severity_dropped(
    example: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    stack, now = example
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    server.expect_request(SLACK_PATH).respond_with_data("ok")
    now.at = NOW
    assert post(monitoring_event("open", severity="p1", message_id="1")).status_code == 200
    assert [e["event_action"] for e in pd_events(server)] == ["trigger"]
    # the same series, relabelled P2 (→ Slack only) while the page is open
    relabelled = monitoring_event("open", severity="p2", incident_id="0.inc2", message_id="2",
                                  started=NOW - timedelta(minutes=1))  # fmt: skip
    assert post(relabelled).status_code == 200
    closed = monitoring_event("closed", severity="p2", incident_id="0.inc2", message_id="3",
                              started=NOW - timedelta(minutes=1), ended=NOW)  # fmt: skip
    now.at = NOW + timedelta(minutes=1)
    assert post(closed).status_code == 200

    actions = [e["event_action"] for e in pd_events(server)]
    assert actions == ["trigger", "resolve"]  # the on-call's page is closed
    told = {(r["receiver"], r["status"]) for r in ledger(stack)}
    assert ("oncall", "resolved") in told and ("slack-incidents", "resolved") in told


# -- the tick goes on -------------------------------------------------------------------
def test_one_alert_failing_in_the_tick_does_not_stop_the_others(
    dual: tuple[Stack, Now],
    server: HTTPServer,
    post: Callable[[dict[str, Any]], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack, now = dual
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    server.expect_request(SLACK_PATH).respond_with_data("ok")
    now.at = NOW
    first, second = slo_event(slo="data_freshness"), slo_event(slo="phase_success_rate")
    assert post(first).status_code == 200 and post(second).status_code == 200
    broken = first["data"]["message"]["attributes"]["fingerprint"]
    route_to = alert_router._route_to

    def failing(deps: Any, route: Any, alert: Any, *args: Any, **kwargs: Any) -> Any:
        if alert.fingerprint == broken:
            raise RuntimeError("a state nobody foresaw")
        return route_to(deps, route, alert, *args, **kwargs)

    monkeypatch.setattr(alert_router, "_route_to", failing)
    now.at = NOW + timedelta(hours=4, minutes=1)  # both repeats are due
    assert post(tick_event()).status_code == 200  # acknowledged: the next tick retries
    repeats = [r for r in ledger(stack) if r["slot"] == 1]
    assert [r["fingerprint"] for r in repeats] == [
        second["data"]["message"]["attributes"]["fingerprint"]
    ]


# -- third review: partial group sends ---------------------------------------------------
def test_a_member_told_by_a_half_failed_send_is_not_told_again_after_its_leader_resolves(
    dual: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    stack, now = dual
    # the first page; then the flush: t01's event accepted, t02's (the leader) a 429
    server.expect_request("/v2/enqueue").respond_with_handler(_pd_answers(202, 202, 429))
    server.expect_request(SLACK_PATH).respond_with_data("ok")
    now.at = NOW
    for i in range(3):
        assert post(table_alert(i, severity="p1")).status_code == 200
    flushed = NOW + timedelta(minutes=5)
    now.at = flushed
    assert post(tick_event()).status_code == 200
    posts = len(slack_posts(server))
    assert posts == 2  # the first page, then Slack got t01 and t02 in one message
    # the leader resolves before any record was written (the 429 kept them all pending)
    now.at = NOW + timedelta(minutes=7)
    closed = monitoring_event("closed", policy="Tables stale", table="t02", incident_id="0.t02",
                              message_id="8202", ended=NOW + timedelta(minutes=7))  # fmt: skip
    assert post(closed).status_code == 200
    resolves = len(slack_posts(server)) - posts
    now.at = NOW + timedelta(minutes=10)
    assert post(tick_event("5550002")).status_code == 200

    # t01 is recorded without a second Slack message, its detection from the first acceptance
    assert len(slack_posts(server)) == posts + resolves
    t01 = fingerprint_of_table(stack, "t01")
    [record] = [r for r in ledger(stack) if r["fingerprint"] == t01 and r["status"] == "firing"]
    assert record["notified_at"] == flushed.isoformat()
    assert record["detection_seconds"] == (flushed - STARTED).total_seconds()
    assert _accepted_triggers(server).get(t01) == 1


PD_ONLY: dict[str, Any] = {
    "route": {"receiver": "pager", "group_by": ["alertname"], "group_interval": "5m"},
    "receivers": [
        {"name": "pager", "pagerduty_configs": [{"routing_key_secret": "pagerduty-routing-key"}]}
    ],
}


@pytest.fixture
def pd_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> Iterator[tuple[Stack, Now]]:
    yield _stack_on(tmp_path, monkeypatch, server, PD_ONLY)
    alert_event.use_deps(None)


def test_a_refused_leader_does_not_hide_the_members_that_were_paged(
    pd_only: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    stack, now = pd_only
    # the first page; the flush's t01 accepted, its leader t02 refused for good
    server.expect_request("/v2/enqueue").respond_with_handler(_pd_answers(202, 202, 400))
    now.at = NOW
    for i in range(3):
        assert post(table_alert(i, severity="p1")).status_code == 200
    now.at = NOW + timedelta(minutes=5)
    assert post(tick_event()).status_code == 200
    records = {r["fingerprint"]: r for r in ledger(stack)}
    t01, t02 = fingerprint_of_table(stack, "t01"), fingerprint_of_table(stack, "t02")
    assert records[t01]["status"] == "firing" and records[t01]["refused"] == []
    assert (records[t02]["status"], records[t02]["status_code"]) == ("failed", 400)
    # the group was notified: an alert a minute later waits for group_interval
    now.at = NOW + timedelta(minutes=6)
    assert post(table_alert(3, severity="p1")).status_code == 200
    assert fingerprint_of_table(stack, "t03") not in _accepted_triggers(server)


def test_a_corrupt_ledger_record_does_not_block_a_resolve(
    example: tuple[Stack, Now], server: HTTPServer, post: Callable[[dict[str, Any]], Any]
) -> None:
    stack, now = example
    server.expect_request("/v2/enqueue").respond_with_json({"status": "success"}, status=202)
    server.expect_request(SLACK_PATH).respond_with_data("ok")
    now.at = NOW
    assert post(monitoring_event("open", severity="p1", message_id="1")).status_code == 200
    store = stack.adapters.store
    [name] = [o.name for o in store.list(BUCKET, LEDGER_PREFIX) if "/oncall/" in o.name]
    # listed before the good record ("-" sorts before "0"): read first
    store.write(BUCKET, name.replace("firing-0", "firing--1"), b"{not json", "application/json")
    now.at = NOW + timedelta(minutes=1)
    closed = monitoring_event("closed", severity="p1", message_id="2", ended=NOW)
    assert post(closed).status_code == 200
    assert [e["event_action"] for e in pd_events(server)] == ["trigger", "resolve"]


def fingerprint_of_table(stack: Stack, table: str) -> str:
    """The fingerprint the router gave the per-table alert (its active state's labels)."""
    for state in alert_router.active_alerts(_deps(stack)):
        if state.alert.labels.get("metric_table") == table:
            return state.alert.fingerprint
    raise AssertionError(f"no alert for {table}")


def _deps(stack: Stack) -> RouterDeps:
    return RouterDeps.of(stack.settings, stack.adapters)
