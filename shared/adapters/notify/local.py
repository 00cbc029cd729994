"""Local receivers (the embedded default and the demo): a JSON-lines file and the console.

:class:`FileNotifier` appends one line per notification to ``<root>/<config.path>``: the
Alertmanager webhook v4 body (what a webhook receiver would get) plus ``notifiedAt``,
under an exclusive ``flock`` so concurrent deliveries (threads or processes) never
interleave, as :mod:`shared.adapters.local.bus` does. :class:`ConsoleNotifier` prints one
line per notification to stderr, control characters from alert text replaced so an
incident can't drive the terminal.
"""

from __future__ import annotations

import fcntl
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TextIO

from shared.alerting_config import ConsoleConfig, FileConfig
from shared.errors import ConfigError
from shared.models import DeliveryResult, Notification

from .http import alerts_to_send, not_sent
from .slack import group_name, summary_line
from .webhook import rfc3339, webhook_payload


def _now() -> datetime:
    return datetime.now(UTC)


class FileNotifier:
    def __init__(
        self, config: FileConfig, root: Path, *, now: Callable[[], datetime] = _now
    ) -> None:
        relative = PurePosixPath(config.path)
        if relative.is_absolute() or ".." in relative.parts:
            raise ConfigError(
                f"file_configs path {config.path!r} must be relative to the local root "
                "and stay inside it"
            )
        self.config = config
        self.path = Path(root) / relative
        self._now = now

    def send(self, notification: Notification) -> DeliveryResult:
        alerts = alerts_to_send(notification, self.config.send_resolved)
        if not alerts:
            return not_sent(notification)
        entry = {"notifiedAt": rfc3339(self._now()), **webhook_payload(notification, alerts)}
        line = json.dumps(entry, ensure_ascii=False, sort_keys=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fo:
            fcntl.flock(fo, fcntl.LOCK_EX)
            try:
                fo.write(line + "\n")
                fo.flush()
            finally:
                fcntl.flock(fo, fcntl.LOCK_UN)
        return DeliveryResult(receiver=notification.receiver, status_code=200, response="appended")


def _printable(text: str, limit: int = 300) -> str:
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    clean = " ".join(clean.split())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


class ConsoleNotifier:
    def __init__(self, config: ConsoleConfig, stream: TextIO | None = None) -> None:
        self.config = config
        self._stream = stream

    def send(self, notification: Notification) -> DeliveryResult:
        alerts = alerts_to_send(notification, self.config.send_resolved)
        if not alerts:
            return not_sent(notification)
        firing = [a for a in alerts if a.status == "firing"]
        status = "FIRING" if firing else "RESOLVED"
        severity = min(a.severity for a in (firing or alerts))
        more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
        line = (
            f"opsuite alert [{_printable(notification.receiver, 100)}] {_printable(severity, 10)} "
            f"{status} {_printable(group_name(notification, alerts), 150)}: "
            f"{_printable(summary_line(alerts[0]))}{more}"
        )
        stream = self._stream or sys.stderr
        print(line, file=stream, flush=True)
        return DeliveryResult(receiver=notification.receiver, status_code=200, response="printed")
