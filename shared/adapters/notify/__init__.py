"""Receiver integrations behind the :class:`shared.ports.Notifier` port.

Slack (:mod:`.slack`), PagerDuty Events v2 (:mod:`.pagerduty`), Alertmanager-style
webhooks (:mod:`.webhook`) over the guarded :class:`HttpClient` (:mod:`.http`: https to
allowed public hosts only, no redirects, capped answers, short timeouts), and the local
file / console receivers (:mod:`.local`). Secrets (webhook URLs, routing keys, HMAC keys)
are read from the :class:`shared.ports.SecretStore` at send time and never appear in an
error or a log line. :func:`deliver_with_retries` is the retry policy around ``send``.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from shared.alerting_config import Receiver
from shared.ports import Notifier, SecretStore

from .http import (
    NOT_SENT,
    PAGERDUTY_HOSTS,
    SLACK_HOSTS,
    DeliveryRefused,
    DeliveryTransient,
    HttpClient,
    HttpResponse,
    deliver_with_retries,
    parse_retry_after,
)
from .local import ConsoleNotifier, FileNotifier
from .pagerduty import PAGERDUTY_EVENTS_URL, PagerDutyNotifier
from .slack import SlackNotifier
from .webhook import WebhookNotifier

__all__ = [
    "NOT_SENT",
    "PAGERDUTY_EVENTS_URL",
    "PAGERDUTY_HOSTS",
    "SLACK_HOSTS",
    "ConsoleNotifier",
    "DeliveryRefused",
    "DeliveryTransient",
    "FileNotifier",
    "HttpClient",
    "HttpResponse",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "deliver_with_retries",
    "notifiers_for",
    "parse_retry_after",
]


def notifiers_for(
    receiver: Receiver,
    *,
    secrets: SecretStore,
    http: HttpClient,
    allowed_webhook_hosts: Collection[str],
    local_root: Path,
    pagerduty_url: str = PAGERDUTY_EVENTS_URL,
) -> list[Notifier]:
    """One notifier per ``*_configs`` entry of ``receiver``, in a fixed order (PagerDuty,
    Slack, webhooks, files, console); a null receiver (only a name) has none."""
    notifiers: list[Notifier] = []
    notifiers += [
        PagerDutyNotifier(c, secrets, http, url=pagerduty_url) for c in receiver.pagerduty_configs
    ]
    notifiers += [SlackNotifier(c, secrets, http) for c in receiver.slack_configs]
    notifiers += [
        WebhookNotifier(c, secrets, http, allowed_hosts=allowed_webhook_hosts)
        for c in receiver.webhook_configs
    ]
    notifiers += [FileNotifier(c, local_root) for c in receiver.file_configs]
    notifiers += [ConsoleNotifier(c) for c in receiver.console_configs]
    return notifiers
