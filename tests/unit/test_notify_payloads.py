"""Receiver payloads and the delivery policy, without a network.

Slack Block Kit (escaping, limits), PagerDuty Events v2, Alertmanager webhook v4 and its
signature, the local receivers; how an answer maps to success / transient / permanent;
deliver_with_retries' waits.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.notify.http import (
    DeliveryRefused,
    DeliveryTransient,
    HttpResponse,
    alerts_to_send,
    deliver_with_retries,
    outcome,
    parse_retry_after,
    redact,
)
from shared.adapters.notify.local import ConsoleNotifier, FileNotifier
from shared.adapters.notify.pagerduty import pagerduty_event
from shared.adapters.notify.slack import escape, escape_capped, slack_message
from shared.adapters.notify.webhook import signature, webhook_payload
from shared.alerting_config import ConsoleConfig, FileConfig
from shared.errors import ConfigError, PermanentError, TransientError
from shared.models import Alert, DeliveryResult, Notification
from shared.retry import Clock

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
INJECTION = "<!channel> look <https://evil.example|click> & <@U123>"


def make_alert(
    fingerprint: str = "fp-1",
    *,
    status: str = "firing",
    severity: str = "P1",
    summary: str = "Table nba_raw.games is 30 h stale",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    ends_at: datetime | None = None,
    generator_url: str | None = None,
) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        status=status,  # type: ignore[arg-type]
        severity=severity,
        labels=labels if labels is not None else {"alertname": "DataStale", "table": "games"},
        annotations={"summary": summary, **(annotations or {})},
        starts_at=T0,
        ends_at=ends_at,
        source="slo",
        source_id="evt-1",
        generator_url=generator_url,
    )


def make_notification(
    *alerts: Alert, receiver: str = "oncall", group_labels: dict[str, str] | None = None
) -> Notification:
    return Notification(
        receiver=receiver,
        group_key='{}:{alertname="DataStale"}',
        group_labels={"alertname": "DataStale"} if group_labels is None else group_labels,
        alerts=alerts or (make_alert(),),
        external_url="https://console.example.com/alerts",
    )


def all_text(payload: Any) -> list[str]:
    """Every string anywhere in a JSON-like value."""
    if isinstance(payload, str):
        return [payload]
    if isinstance(payload, dict):
        return [s for v in payload.values() for s in all_text(v)]
    if isinstance(payload, list):
        return [s for v in payload for s in all_text(v)]
    return []


class FakeClock(Clock):
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        super().__init__(monotonic=lambda: self.now, sleep=self._sleep, jitter=lambda: 0.5)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# -- Slack ---------------------------------------------------------------------------------
def test_slack_message_shape_for_one_firing_alert() -> None:
    alert = make_alert(
        annotations={
            "description": "No load since 2026-11-30 04:00 UTC.",
            "runbook": "https://runbooks.example.com/stale?t=games&x=1",
            "console": "https://console.cloud.google.com/bigquery",
        }
    )
    message = slack_message(make_notification(alert), [alert])
    assert message == {
        "text": "P1 FIRING: DataStale — Table nba_raw.games is 30 h stale",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "P1 FIRING: DataStale", "emoji": True},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ":red_circle: *Table nba_raw.games is 30 h stale*\n"
                    "No load since 2026-11-30 04:00 UTC.\n"
                    "<https://runbooks.example.com/stale?t=games&amp;x=1|Runbook>  ·  "
                    "<https://console.cloud.google.com/bigquery|Console>",
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "*P1* · FIRING · since 2026-12-01 10:00 UTC"},
                    {"type": "mrkdwn", "text": "`alertname=DataStale` `table=games`"},
                ],
            },
        ],
    }


def test_slack_escapes_mentions_and_links_from_untrusted_text() -> None:
    alert = make_alert(
        summary=INJECTION,
        labels={"alertname": "<!here>", "table": "<https://evil|x>"},
        annotations={"description": INJECTION, "runbook": "https://ok.example/a|<!channel>"},
    )
    message = slack_message(make_notification(alert, group_labels={}), [alert])
    texts = all_text(message)
    for text in texts:
        assert "<!" not in text and "<@" not in text and "<https://evil" not in text, text
    section = message["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt; look &lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;" in section
    assert "Runbook" not in section  # a link carrying `|` or `<` is dropped, never parsed
    assert message["text"].startswith("P1 FIRING: &lt;!here&gt; — &lt;!channel&gt;")


def test_slack_caps_every_text_to_slack_limits() -> None:
    alert = make_alert(
        summary="S" * 5000,
        labels={"alertname": "N" * 400, **{f"k{i}": "v" * 200 for i in range(40)}},
        annotations={"description": "<" * 5000},
    )
    message = slack_message(make_notification(alert), [alert])
    header, section, context = message["blocks"]
    assert len(header["text"]["text"]) <= 150
    assert len(section["text"]["text"]) <= 3000
    assert all(len(e["text"]) <= 2000 for e in context["elements"])
    assert len(message["text"]) <= 3000
    # a cut never splits an entity: the description is whole "&lt;" then an ellipsis
    description = section["text"]["text"].split("\n")[1]
    assert description.endswith("&lt;…") and description.count("&lt;") * 4 + 1 == len(description)


def test_slack_keeps_to_50_blocks_and_counts_the_rest() -> None:
    alerts = [make_alert(f"fp-{i}") for i in range(60)]
    message = slack_message(make_notification(*alerts), alerts)
    assert len(message["blocks"]) == 50
    assert message["blocks"][-1]["elements"][0]["text"] == "… and 36 more alert(s) not shown"
    assert message["blocks"][0]["text"]["text"] == "P1 FIRING: DataStale · 60 alerts"


def test_slack_resolved_message_when_all_resolved() -> None:
    resolved = make_alert(status="resolved", ends_at=T0 + timedelta(hours=2))
    message = slack_message(make_notification(resolved), [resolved])
    assert message["blocks"][0]["text"]["text"] == "P1 RESOLVED: DataStale"
    assert message["blocks"][1]["text"]["text"].startswith(":white_check_mark: ")
    assert (
        message["blocks"][2]["elements"][0]["text"]
        == "*P1* · RESOLVED · 2026-12-01 10:00 UTC → resolved 2026-12-01 12:00 UTC"
    )


def test_mixed_group_lists_firing_first_and_send_resolved_false_drops_resolved() -> None:
    resolved = make_alert("fp-r", status="resolved", severity="P0")
    firing = make_alert("fp-f", severity="P2")
    notification = make_notification(resolved, firing)
    assert [a.fingerprint for a in alerts_to_send(notification, True)] == ["fp-f", "fp-r"]
    assert [a.fingerprint for a in alerts_to_send(notification, False)] == ["fp-f"]
    assert alerts_to_send(make_notification(resolved), False) == ()
    message = slack_message(notification, alerts_to_send(notification, True))
    # the header's severity is that of what is still firing
    assert message["blocks"][0]["text"]["text"] == "P2 FIRING: DataStale · 2 alerts"


def test_escape_capped_never_splits_an_entity() -> None:
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert escape_capped("&" * 100, 10) == "&amp;…"
    assert escape_capped("abc", 3) == "abc"
    assert escape_capped("abcd", 3) == "ab…"


# -- PagerDuty -----------------------------------------------------------------------------
def test_pagerduty_trigger_event_shape() -> None:
    alert = make_alert(
        severity="P0",
        labels={"alertname": "PipelineDown", "table": "nba_raw.games", "team": "data"},
        annotations={"runbook": "https://runbooks.example.com/down", "description": "d"},
        generator_url="javascript:alert(1)",
    )
    event = pagerduty_event(alert, "ROUTINGKEY", client_url="https://console.example.com/a")
    assert event == {
        "routing_key": "ROUTINGKEY",
        "event_action": "trigger",
        "dedup_key": "fp-1",
        "payload": {
            "summary": "Table nba_raw.games is 30 h stale",
            "source": "nba_raw.games",
            "severity": "critical",
            "timestamp": "2026-12-01T10:00:00Z",
            "component": "nba_raw.games",
            "group": "slo",
            "class": "PipelineDown",
            "custom_details": {
                "severity": "P0",
                "source": "slo",
                "source_id": "evt-1",
                "labels": {
                    "alertname": "PipelineDown",
                    "table": "nba_raw.games",
                    "team": "data",
                    "severity": "P0",
                },
                "annotations": {
                    "summary": "Table nba_raw.games is 30 h stale",
                    "runbook": "https://runbooks.example.com/down",
                    "description": "d",
                },
            },
        },
        "client": "opsuite alert router",
        "client_url": "https://console.example.com/a",
        # the javascript: generator URL is not a link
        "links": [{"href": "https://runbooks.example.com/down", "text": "Runbook"}],
    }


def test_pagerduty_resolve_and_limits() -> None:
    resolved = make_alert("f" * 300, status="resolved")
    assert pagerduty_event(resolved, "K", client_url=None) == {
        "routing_key": "K",
        "event_action": "resolve",
        "dedup_key": "f" * 255,
    }
    long = pagerduty_event(make_alert(summary="x" * 5000), "K", client_url=None)
    assert len(long["payload"]["summary"]) == 1024
    assert long["payload"]["summary"].endswith("…")
    severities = [
        pagerduty_event(make_alert(severity=s), "K", client_url=None)["payload"]["severity"]
        for s in ("P0", "P1", "P2", "P3")
    ]
    assert severities == ["critical", "error", "warning", "info"]


# -- webhook -------------------------------------------------------------------------------
def test_webhook_payload_is_alertmanager_v4() -> None:
    firing = make_alert("fp-f", annotations={"runbook": "r"}, generator_url="https://g/1")
    resolved = make_alert(
        "fp-r",
        status="resolved",
        labels={"alertname": "DataStale", "table": "plays"},
        ends_at=datetime(2026, 12, 1, 11, 30, 0, 250000, tzinfo=UTC),
    )
    notification = make_notification(firing, resolved)
    payload = webhook_payload(notification, alerts_to_send(notification, True))
    assert payload == {
        "version": "4",
        "groupKey": '{}:{alertname="DataStale"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "oncall",
        "groupLabels": {"alertname": "DataStale"},
        "commonLabels": {"alertname": "DataStale", "severity": "P1"},
        "commonAnnotations": {"summary": "Table nba_raw.games is 30 h stale"},
        "externalURL": "https://console.example.com/alerts",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DataStale", "table": "games", "severity": "P1"},
                "annotations": {"summary": "Table nba_raw.games is 30 h stale", "runbook": "r"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://g/1",
                "fingerprint": "fp-f",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "DataStale", "table": "plays", "severity": "P1"},
                "annotations": {"summary": "Table nba_raw.games is 30 h stale"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "2026-12-01T11:30:00.250000Z",
                "generatorURL": "",
                "fingerprint": "fp-r",
            },
        ],
    }


def test_webhook_max_alerts_truncates_and_counts() -> None:
    alerts = [make_alert(f"fp-{i}", labels={"alertname": "A", "n": str(i)}) for i in range(5)]
    payload = webhook_payload(make_notification(*alerts), alerts, max_alerts=2)
    assert [a["fingerprint"] for a in payload["alerts"]] == ["fp-0", "fp-1"]
    assert payload["truncatedAlerts"] == 3
    assert payload["commonLabels"] == {"alertname": "A", "severity": "P1"}
    assert webhook_payload(make_notification(*alerts), alerts)["truncatedAlerts"] == 0


def test_webhook_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # expected value from: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
    assert signature(b"key", "1700000000", b'{"a":1}') == (
        "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
    )


# -- the delivery policy -------------------------------------------------------------------
def test_retry_after_in_seconds_or_http_date() -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:07 GMT", now=now) == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def answer(status: int, text: str = "", **headers: str) -> HttpResponse:
    return HttpResponse(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, text)


def test_outcome_maps_statuses() -> None:
    assert outcome("r", "h", answer(202, '{"status":"success"}')) == DeliveryResult(
        "r", 202, '{"status":"success"}'
    )
    with pytest.raises(DeliveryTransient) as rate:
        outcome("r", "h", answer(429, "slow down", retry_after="30"))
    assert rate.value.retry_after_seconds == 30.0 and rate.value.status == 429
    with pytest.raises(DeliveryTransient) as server:
        outcome("r", "h", answer(503, "busy"))
    assert server.value.retry_after_seconds is None
    with pytest.raises(DeliveryRefused) as bad:
        outcome("r", "h", answer(400, "invalid_payload " + "x" * 1000))
    assert bad.value.status == 400
    assert bad.value.answer == ("invalid_payload " + "x" * 1000)[:300]
    assert str(bad.value) == f"receiver 'r': host 'h' answered 400: {bad.value.answer}"


def test_outcome_blanks_out_secrets_the_receiver_echoes() -> None:
    url = "https://hooks.slack.com/services/T0001/B0002/XXXXSECRETXXXX"
    echoed = f"bad hook {url} token=XXXXSECRETXXXX path=/services/T0001/B0002/XXXXSECRETXXXX"
    with pytest.raises(DeliveryRefused) as refused:
        outcome("r", "hooks.slack.com", answer(404, echoed), secrets=[url])
    assert "XXXXSECRETXXXX" not in str(refused.value)
    assert "[redacted]" in str(refused.value)
    assert redact("key=ROUTINGKEY123", ["ROUTINGKEY123"]) == "key=[redacted]"


class ScriptedNotifier:
    def __init__(self, *outcomes: Exception | DeliveryResult) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def send(self, notification: Notification) -> DeliveryResult:
        self.calls += 1
        item = self.outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


OK = DeliveryResult("oncall", 200, "ok")


def test_deliver_waits_at_least_retry_after_then_backs_off() -> None:
    clock = FakeClock()
    notifier = ScriptedNotifier(
        DeliveryTransient("429", status=429, retry_after_seconds=7),
        TransientError("503"),
        TransientError("503"),
        OK,
    )
    result = deliver_with_retries(notifier, make_notification(), deadline=100, clock=clock)
    assert result == OK
    # Retry-After beats the 0.5 s first backoff; then 1 s, 2 s (jitter 0.5 → ×1)
    assert clock.sleeps == [7.0, 1.0, 2.0]


def test_deliver_reraises_when_the_next_wait_passes_the_deadline() -> None:
    clock = FakeClock()
    last = DeliveryTransient("429", status=429, retry_after_seconds=30)
    notifier = ScriptedNotifier(TransientError("503"), last)
    with pytest.raises(DeliveryTransient) as raised:
        deliver_with_retries(notifier, make_notification(), deadline=10, clock=clock)
    assert raised.value is last
    assert clock.sleeps == [0.5] and notifier.calls == 2


def test_deliver_does_not_retry_permanent_errors() -> None:
    clock = FakeClock()
    notifier = ScriptedNotifier(DeliveryRefused("400"), OK)
    with pytest.raises(PermanentError):
        deliver_with_retries(notifier, make_notification(), deadline=100, clock=clock)
    assert notifier.calls == 1 and clock.sleeps == []


# -- local receivers -----------------------------------------------------------------------
def test_file_notifier_appends_one_json_line_per_notification(tmp_path: Path) -> None:
    notifier = FileNotifier(FileConfig(path="alerts/n.jsonl"), tmp_path, now=lambda: T0)
    threads = [
        threading.Thread(target=notifier.send, args=(make_notification(make_alert(f"fp-{i}")),))
        for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (tmp_path / "alerts" / "n.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert sorted(e["alerts"][0]["fingerprint"] for e in entries) == sorted(
        f"fp-{i}" for i in range(20)
    )
    assert entries[0]["notifiedAt"] == "2026-12-01T10:00:00Z"
    assert entries[0]["version"] == "4" and entries[0]["receiver"] == "oncall"


def test_file_notifier_respects_send_resolved_and_stays_under_root(tmp_path: Path) -> None:
    notifier = FileNotifier(FileConfig(path="n.jsonl", send_resolved=False), tmp_path)
    result = notifier.send(make_notification(make_alert(status="resolved")))
    assert result.status_code == 0 and not (tmp_path / "n.jsonl").exists()
    with pytest.raises(ConfigError, match="inside it"):
        FileNotifier(FileConfig(path="../elsewhere.jsonl"), tmp_path)
    with pytest.raises(ConfigError):
        FileNotifier(FileConfig(path="/etc/opsuite.jsonl"), tmp_path)


def test_console_notifier_prints_one_clean_line() -> None:
    stream = io.StringIO()
    alert = make_alert(summary="stale\x1b[2J\nagain", severity="P0")
    result = ConsoleNotifier(ConsoleConfig(), stream).send(make_notification(alert))
    assert result.status_code == 200
    assert stream.getvalue() == "opsuite alert [oncall] P0 FIRING DataStale: stale [2J again\n"


def test_translated_ipv6_forms_of_private_addresses_are_not_public() -> None:
    import ipaddress

    from shared.adapters.notify.http import _public

    for text in (
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (the metadata server)
        "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::a9fe:a9fe",  # IPv4-compatible
        "::ffff:10.0.0.1",  # IPv4-mapped
    ):
        assert not _public(ipaddress.ip_address(text)), text
    assert _public(ipaddress.ip_address("64:ff9b::808:808"))  # NAT64 of 8.8.8.8: public
    assert _public(ipaddress.ip_address("2606:4700:4700::1111"))


def test_a_webhook_body_too_big_is_sent_truncated_not_refused() -> None:
    import json as _json
    from datetime import UTC, datetime

    from shared.adapters.notify.webhook import fitted_body
    from shared.models import Alert, Notification

    now = datetime(2026, 12, 1, tzinfo=UTC)
    alerts = tuple(
        Alert(
            f"{i:032x}",
            "firing",
            "P2",
            {"alertname": "Stale", "table": f"t{i}"},
            {"description": "x" * 4096},
            now,
            None,
            "slo",
            str(i),
        )
        for i in range(120)
    )
    notification = Notification("hook", "g", {"alertname": "Stale"}, alerts)
    body = fitted_body(notification, alerts, 0, 512 * 1024)
    payload = _json.loads(body)
    assert len(body) <= 512 * 1024
    assert 0 < len(payload["alerts"]) < 120
    assert payload["truncatedAlerts"] == 120 - len(payload["alerts"])
    # a small group is untouched
    small = _json.loads(fitted_body(notification, alerts[:3], 0, 512 * 1024))
    assert (len(small["alerts"]), small["truncatedAlerts"]) == (3, 0)
