"""Generic webhook: Alertmanager's webhook JSON (version 4), signed with HMAC-SHA256.

The body is what Alertmanager's ``webhook_configs`` send, so a receiver written for
Alertmanager reads it unchanged: ``version`` "4", ``groupKey``, ``truncatedAlerts``,
``status``, ``receiver``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``,
``externalURL`` and ``alerts`` (``status``, ``labels``, ``annotations``, ``startsAt``,
``endsAt`` — the zero time ``0001-01-01T00:00:00Z`` while firing — ``generatorURL``,
``fingerprint``). ``max_alerts`` > 0 keeps the first N (firing first) and counts the rest
in ``truncatedAlerts``; ``commonLabels`` / ``commonAnnotations`` are over the alerts sent.

Signature (when ``hmac_key_secret`` is set), two headers::

    X-Opsuite-Timestamp: <unix seconds>
    X-Opsuite-Signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>

where ``body`` is the exact bytes of the request body and ``key`` the secret's UTF-8
bytes. A receiver recomputes it over the raw body (before any JSON parsing), compares in
constant time, and refuses timestamps more than a few minutes old (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.alerting_config import WebhookConfig
from shared.models import Alert, DeliveryResult, Notification
from shared.ports import SecretStore

from .http import HttpClient, alerts_to_send, json_bytes, not_sent, outcome

ZERO_TIME = "0001-01-01T00:00:00Z"
SIGNATURE_HEADER = "X-Opsuite-Signature"
TIMESTAMP_HEADER = "X-Opsuite-Timestamp"


def rfc3339(when: datetime) -> str:
    """UTC, ``Z``-suffixed, microseconds only when there are some (naive = UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in maps[1:])}


def alert_labels(alert: Alert) -> dict[str, str]:
    """The alert's labels, with ``severity`` added from the alert when absent."""
    labels = dict(alert.labels)
    labels.setdefault("severity", alert.severity)
    return labels


def webhook_alert(alert: Alert) -> dict[str, Any]:
    ends = ZERO_TIME
    if alert.status == "resolved" and alert.ends_at is not None:
        ends = rfc3339(alert.ends_at)
    return {
        "status": alert.status,
        "labels": alert_labels(alert),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": ends,
        "generatorURL": alert.generator_url or "",
        "fingerprint": alert.fingerprint,
    }


def webhook_payload(
    notification: Notification, alerts: Sequence[Alert], *, max_alerts: int = 0
) -> dict[str, Any]:
    """Alertmanager's webhook v4 body for ``alerts`` (those of ``notification`` to send)."""
    kept = list(alerts[:max_alerts] if max_alerts > 0 else alerts)
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": len(alerts) - len(kept),
        "status": status,
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": _common([alert_labels(a) for a in kept]),
        "commonAnnotations": _common([a.annotations for a in kept]),
        "externalURL": notification.external_url or "",
        "alerts": [webhook_alert(a) for a in kept],
    }


def fitted_body(
    notification: Notification, alerts: Sequence[Alert], max_alerts: int, limit: int
) -> bytes:
    """The v4 body, with alerts dropped from the end (counted in ``truncatedAlerts``, as
    Alertmanager's ``max_alerts`` does) until it fits ``limit`` bytes: a big group is sent
    truncated rather than refused. Firing alerts come first, so the last dropped are the
    ones that matter most."""
    keep = len(alerts) if max_alerts <= 0 else min(max_alerts, len(alerts))
    body = json_bytes(webhook_payload(notification, alerts, max_alerts=keep))
    while len(body) > limit and keep > 1:
        # shrink in proportion to the excess, at least one alert at a time
        keep = max(1, min(keep - 1, int(keep * limit / len(body))))
        body = json_bytes(webhook_payload(notification, alerts, max_alerts=keep))
    return body


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>``."""
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookNotifier:
    """POSTs the v4 body to the URL in ``url_secret``; its host must be in
    ``allowed_hosts`` (``alerting.allowed_webhook_hosts``)."""

    def __init__(
        self,
        config: WebhookConfig,
        secrets: SecretStore,
        http: HttpClient,
        *,
        allowed_hosts: Collection[str],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._secrets = secrets
        self._http = http
        self._allowed_hosts = frozenset(allowed_hosts)
        self._now = now

    def send(self, notification: Notification) -> DeliveryResult:
        alerts = alerts_to_send(notification, self.config.send_resolved)
        if not alerts:
            return not_sent(notification)
        body = fitted_body(
            notification, alerts, self.config.max_alerts, self._http.max_request_bytes
        )
        url = self._secrets.get(self.config.url_secret).strip()
        secrets = [url]
        headers: dict[str, str] = {}
        if self.config.hmac_key_secret:
            key = self._secrets.get(self.config.hmac_key_secret).strip()
            secrets.append(key)
            timestamp = str(int(self._now()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = signature(key.encode("utf-8"), timestamp, body)
        target = self._http.check_url(url, self._allowed_hosts)
        response = self._http.post_json(url, body, headers, allowed_hosts=self._allowed_hosts)
        return outcome(notification.receiver, target.host, response, secrets=secrets)
