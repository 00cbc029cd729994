"""The ``alerting:`` section: Alertmanager's routing schema, our receivers, secrets by name.

People paste what they know from Alertmanager (``route``, ``inhibit_rules``,
``time_intervals``, ``receivers`` with ``*_configs`` lists). Receivers are ours: Slack,
PagerDuty, a generic webhook, and the local file / console; an Alertmanager integration we
don't support is a clear error. Secrets (webhook URLs, routing keys, HMAC keys) are never
values here, only Secret Manager names (``*_secret``); a literal one is refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_RECEIVER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
#: Secret Manager: a short secret id (latest version in the configured project) or a full
#: ``projects/P/secrets/S[/versions/V]`` resource name
_NAME_PATTERN = (
    r"^(?:[A-Za-z0-9_-]{1,255}|projects/[a-z0-9-]{1,63}/secrets/[A-Za-z0-9_-]{1,255}"
    r"(?:/versions/(?:latest|[0-9]{1,20}))?)$"
)
SecretName = Annotated[str, Field(pattern=_NAME_PATTERN)]

#: Alertmanager integrations we don't deliver to: named in the error, never ignored
UNSUPPORTED_INTEGRATIONS = (
    "email_configs",
    "opsgenie_configs",
    "wechat_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "webex_configs",
    "discord_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "jira_configs",
    "rocketchat_configs",
)
#: literal secrets as Alertmanager spells them: refused with the *_secret to use instead
LITERAL_SECRETS = {
    "api_url": "webhook_url_secret",
    "api_url_file": "webhook_url_secret",
    "routing_key": "routing_key_secret",
    "routing_key_file": "routing_key_secret",
    "service_key": "routing_key_secret",
    "url": "url_secret",
    "url_file": "url_secret",
}


def _host(value: str) -> str:
    if not re.fullmatch(
        r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", value
    ):
        raise ValueError(f"{value!r} is not a DNS host name (lower case, no scheme, no port)")
    return value


HostName = Annotated[str, AfterValidator(_host)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, instead in LITERAL_SECRETS.items():
                if key in data and instead in cls.model_fields:
                    raise ValueError(
                        f"{key}: secrets come only from Secret Manager; give {instead} "
                        "(the secret's name) instead"
                    )
        return data


class SlackConfig(_Model):
    """Incoming webhook: Block Kit messages; a resolved message when the group resolves."""

    webhook_url_secret: SecretName
    channel: str | None = Field(default=None, max_length=80)  # shown only; the webhook decides
    send_resolved: bool = True


class PagerDutyConfig(_Model):
    """Events API v2: trigger / resolve with dedup_key = the alert's fingerprint."""

    routing_key_secret: SecretName
    send_resolved: bool = True


class WebhookConfig(_Model):
    """Alertmanager's webhook JSON (version 4), signed with HMAC-SHA256 when a key is given."""

    url_secret: SecretName
    hmac_key_secret: SecretName | None = None
    send_resolved: bool = True
    max_alerts: int = Field(default=0, ge=0, le=1000)  # 0: all, as in Alertmanager


class FileConfig(_Model):
    """Local: one JSON line per notification (the embedded default and the demo)."""

    path: str = Field(default="alerts/notifications.jsonl", min_length=1, max_length=500)
    send_resolved: bool = True


class ConsoleConfig(_Model):
    send_resolved: bool = True


class Receiver(_Model):
    """A receiver with only a ``name`` is a valid null receiver, as in Alertmanager."""

    name: Annotated[str, Field(pattern=_RECEIVER_NAME)]
    slack_configs: list[SlackConfig] = Field(default_factory=list)
    pagerduty_configs: list[PagerDutyConfig] = Field(default_factory=list)
    webhook_configs: list[WebhookConfig] = Field(default_factory=list)
    file_configs: list[FileConfig] = Field(default_factory=list)
    console_configs: list[ConsoleConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in UNSUPPORTED_INTEGRATIONS:
                if key in data:
                    raise ValueError(
                        f"{key}: not an integration opsuite delivers to (supported: "
                        "slack_configs, pagerduty_configs, webhook_configs, file_configs, "
                        "console_configs)"
                    )
        return data


class AlertingSettings(_Model):
    """Receivers and where webhooks may go. The routing tree (``route``, ``inhibit_rules``,
    ``time_intervals``) is added by the routing step of issue 9."""

    receivers: list[Receiver] = Field(default_factory=list)
    #: hosts a generic webhook may be delivered to (https only); Slack's and PagerDuty's
    #: documented hosts are always allowed for their own receivers
    allowed_webhook_hosts: list[HostName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> AlertingSettings:
        names = [r.name for r in self.receivers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"receiver names must be unique: {', '.join(twice)}")
        return self

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)
