"""PagerDuty Events API v2: one event per alert, ``dedup_key`` = the alert's fingerprint.

``POST https://events.pagerduty.com/v2/enqueue`` (202 accepted). A firing alert is a
``trigger`` with a ``payload`` (summary ≤ 1024 characters, source, severity from P0..P3 →
critical / error / warning / info, timestamp, component, group, class, custom_details with
the labels and annotations), ``links`` and ``client``; a resolved one is a ``resolve`` with
the same ``dedup_key`` (no payload: PagerDuty ignores it). Re-sending an event is harmless
(PagerDuty deduplicates on the key), so a group is simply re-sent whole on a retry.
"""

from __future__ import annotations

from typing import Any

from shared.alerting_config import PagerDutyConfig
from shared.models import Alert, DeliveryResult, Notification
from shared.ports import SecretStore

from .http import ANSWER_CHARS, PAGERDUTY_HOSTS, HttpClient, alerts_to_send, not_sent, outcome
from .webhook import alert_labels, rfc3339

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_EU_EVENTS_URL = "https://events.eu.pagerduty.com/v2/enqueue"
SEVERITIES = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}
DEDUP_KEY_CHARS = 255
SUMMARY_CHARS = 1024
#: not documented limits: kept short so an event stays far below 512 KB
FIELD_CHARS = 255
DETAIL_CHARS = 4096
CLIENT = "opsuite alert router"


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first(labels: dict[str, str], *keys: str) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


def _http_link(url: str | None) -> str | None:
    if url and url.startswith(("https://", "http://")) and len(url) <= 2048:
        return url
    return None


def pagerduty_event(alert: Alert, routing_key: str, *, client_url: str | None) -> dict[str, Any]:
    """The Events v2 body for one alert."""
    dedup_key = alert.fingerprint[:DEDUP_KEY_CHARS]
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    labels = alert_labels(alert)
    annotations = dict(alert.annotations)
    name = labels.get("alertname") or alert.source
    summary = annotations.get("summary") or name
    payload: dict[str, Any] = {
        "summary": cap(" ".join(summary.split()), SUMMARY_CHARS),
        "source": cap(
            _first(labels, "instance", "resource", "table", "slo", "job")
            or f"opsuite/{alert.source}",
            FIELD_CHARS,
        ),
        "severity": SEVERITIES.get(alert.severity, "error"),
        "timestamp": rfc3339(alert.starts_at),
        "component": cap(_first(labels, "component", "table", "slo") or alert.source, FIELD_CHARS),
        "group": cap(_first(labels, "group", "dataset", "pipeline") or alert.source, FIELD_CHARS),
        "class": cap(name, FIELD_CHARS),
        "custom_details": {
            "severity": alert.severity,
            "source": alert.source,
            "source_id": alert.source_id,
            "labels": {k: cap(v, DETAIL_CHARS) for k, v in labels.items()},
            "annotations": {k: cap(v, DETAIL_CHARS) for k, v in annotations.items()},
        },
    }
    links = []
    for key, text in (("runbook", "Runbook"), ("console", "Console")):
        href = _http_link(annotations.get(key) or annotations.get(f"{key}_url"))
        if href:
            links.append({"href": href, "text": text})
    generator = _http_link(alert.generator_url)
    if generator:
        links.append({"href": generator, "text": "Source"})
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "client": CLIENT,
    }
    if client_url:
        event["client_url"] = client_url
    if links:
        event["links"] = links
    return event


class PagerDutyNotifier:
    """Sends each alert of a notification as an event; the routing key from
    ``routing_key_secret``. ``url`` is the Events API endpoint (US by default; the EU
    one, or a loopback server in tests)."""

    def __init__(
        self,
        config: PagerDutyConfig,
        secrets: SecretStore,
        http: HttpClient,
        *,
        url: str = PAGERDUTY_EVENTS_URL,
    ) -> None:
        self.config = config
        self._secrets = secrets
        self._http = http
        self._url = url

    def send(self, notification: Notification) -> DeliveryResult:
        alerts = alerts_to_send(notification, self.config.send_resolved)
        if not alerts:
            return not_sent(notification)
        target = self._http.check_url(self._url, PAGERDUTY_HOSTS)
        routing_key = self._secrets.get(self.config.routing_key_secret).strip()
        client_url = _http_link(notification.external_url)
        result: DeliveryResult | None = None
        for alert in alerts:
            event = pagerduty_event(alert, routing_key, client_url=client_url)
            response = self._http.post_json(self._url, event, allowed_hosts=PAGERDUTY_HOSTS)
            result = outcome(notification.receiver, target.host, response, secrets=[routing_key])
        assert result is not None
        return DeliveryResult(
            receiver=result.receiver,
            status_code=result.status_code,
            response=cap(f"{len(alerts)} event(s) accepted; last: {result.response}", ANSWER_CHARS),
        )
