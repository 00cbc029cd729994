"""Slack incoming webhook: one Block Kit message per notification.

Layout: a ``header`` (``P1 FIRING: <alertname>``, or RESOLVED once every alert sent is
resolved, with the count when there are several), then per alert a ``section``
(summary in bold, description, Runbook / Console / Source links) and a ``context``
(severity, status, start / end, the labels); a top-level ``text`` is the fallback shown in
notifications. Firing alerts come first; resolved ones are left out without
``send_resolved``.

Everything from an alert is untrusted (incident text is written by whoever can name a
policy or a metric): ``&``, ``<`` and ``>`` become ``&amp;`` ``&lt;`` ``&gt;`` in every text
object (Slack decodes exactly those three for display, so nothing is lost), which keeps
``<!channel>`` or ``<https://evil|click>`` from being parsed. Links are only ``http(s)``
URLs without ``<``, ``>``, ``|`` or spaces. Lengths stay inside Slack's limits (header 150
characters, section text 3000, 50 blocks: past 24 alerts the rest are counted in a last
context block), cut on a whole character so no entity is split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.alerting_config import SlackConfig
from shared.models import Alert, DeliveryResult, Notification
from shared.ports import SecretStore

from .http import SLACK_HOSTS, HttpClient, alerts_to_send, not_sent, outcome

HEADER_CHARS = 150
SECTION_CHARS = 3000
CONTEXT_CHARS = 2000
FALLBACK_CHARS = 3000
MAX_BLOCKS = 50
SUMMARY_CHARS = 300
LABELS_SHOWN = 30
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SAFE_URL = re.compile(r"https?://[^\s<>|\"'`]{1,2000}")


def escape(text: str) -> str:
    """Slack's control characters as entities: ``<!channel>`` → ``&lt;!channel&gt;``."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def escape_capped(text: str, limit: int) -> str:
    """``escape(text)`` in at most ``limit`` characters, an ellipsis marking a cut that
    never splits an entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for ch in text:
        piece = _ESCAPES.get(ch, ch)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def link(url: str | None, label: str) -> str | None:
    """``<url|label>`` for a plain http(s) URL, else None (nothing untrusted is parsed)."""
    if not url or not _SAFE_URL.fullmatch(url):
        return None
    return f"<{url.replace('&', '&amp;')}|{label}>"


def _rank(alert: Alert) -> int:
    return int(alert.severity[1:]) if re.fullmatch(r"P[0-9]", alert.severity) else 9


def _code(text: str) -> str:
    """Text for inside a `code` span: one line, no backtick to close it early."""
    return " ".join(text.replace("`", "'").split())


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def summary_line(alert: Alert) -> str:
    text = alert.annotations.get("summary") or alert.labels.get("alertname") or alert.source
    return " ".join(text.split())


def group_name(notification: Notification, alerts: Sequence[Alert]) -> str:
    names = {a.labels.get("alertname", "") for a in alerts}
    if notification.group_labels.get("alertname"):
        return notification.group_labels["alertname"]
    if len(names) == 1 and "" not in names:
        return names.pop()
    return alerts[0].labels.get("alertname") or summary_line(alerts[0])


def _alert_blocks(alert: Alert) -> list[dict[str, Any]]:
    firing = alert.status == "firing"
    first = f"{':red_circle:' if firing else ':white_check_mark:'} "
    first += f"*{escape_capped(summary_line(alert), SUMMARY_CHARS)}*"
    links = [
        link(alert.annotations.get("runbook") or alert.annotations.get("runbook_url"), "Runbook"),
        link(alert.annotations.get("console") or alert.annotations.get("console_url"), "Console"),
        link(alert.generator_url, "Source"),
    ]
    links_line = "  ·  ".join(x for x in links if x)
    room = SECTION_CHARS - len(first) - len(links_line) - 2
    description = escape_capped(alert.annotations.get("description", "").strip(), max(room, 0))
    text = "\n".join(part for part in (first, description, links_line) if part)

    when = f"since {_when(alert.starts_at)}"
    if not firing and alert.ends_at is not None:
        when = f"{_when(alert.starts_at)} → resolved {_when(alert.ends_at)}"
    facts = f"*{escape(alert.severity)}* · {'FIRING' if firing else 'RESOLVED'} · {when}"
    labels = " ".join(
        f"`{_code(k)}={_code(v)}`" for k, v in sorted(alert.labels.items())[:LABELS_SHOWN]
    )
    elements = [{"type": "mrkdwn", "text": facts}]
    if labels:
        elements.append({"type": "mrkdwn", "text": escape_capped(labels, CONTEXT_CHARS)})
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": elements},
    ]


def slack_message(notification: Notification, alerts: Sequence[Alert]) -> dict[str, Any]:
    """The webhook body (``text`` + ``blocks``) for ``alerts`` (non-empty, firing first)."""
    firing = any(a.status == "firing" for a in alerts)
    status = "FIRING" if firing else "RESOLVED"
    severity = min([a for a in alerts if a.status == "firing"] or alerts, key=_rank).severity
    name = group_name(notification, alerts)
    count = f" · {len(alerts)} alerts" if len(alerts) > 1 else ""
    title = f"{severity} {status}: {name}"

    per_alert = 2
    fits = (MAX_BLOCKS - 1) // per_alert
    shown = list(alerts) if len(alerts) <= fits else list(alerts[: (MAX_BLOCKS - 2) // per_alert])
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": escape_capped(title, HEADER_CHARS - len(count)) + count,
                "emoji": True,
            },
        }
    ]
    for alert in shown:
        blocks.extend(_alert_blocks(alert))
    if len(shown) < len(alerts):
        more = len(alerts) - len(shown)
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"… and {more} more alert(s) not shown"}],
            }
        )
    fallback = f"{title} — {summary_line(alerts[0])}"
    more_text = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    return {
        "text": escape_capped(fallback, FALLBACK_CHARS - len(more_text)) + more_text,
        "blocks": blocks,
    }


class SlackNotifier:
    """POSTs the message to the incoming webhook URL in ``webhook_url_secret``
    (``hooks.slack.com`` only)."""

    def __init__(self, config: SlackConfig, secrets: SecretStore, http: HttpClient) -> None:
        self.config = config
        self._secrets = secrets
        self._http = http

    def send(self, notification: Notification) -> DeliveryResult:
        alerts = alerts_to_send(notification, self.config.send_resolved)
        if not alerts:
            return not_sent(notification)
        url = self._secrets.get(self.config.webhook_url_secret).strip()
        target = self._http.check_url(url, SLACK_HOSTS)
        response = self._http.post_json(
            url, slack_message(notification, alerts), allowed_hosts=SLACK_HOSTS
        )
        return outcome(notification.receiver, target.host, response, secrets=[url])
