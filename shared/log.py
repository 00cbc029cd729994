"""JSON-lines logging for Cloud Logging.

Each record is one JSON object on stdout with ``severity``, ``message``, the trace
field Cloud Logging correlates on, and structured fields passed as
``logger.info("...", extra={"fields": {...}})``. Messages are fixed strings; values
go into fields so that payloads and secrets are never interpolated into text.

Secrets are redacted on top of that: whatever reads a secret (the SecretStore adapters)
registers the value with :func:`redact`, and from then on every occurrence of it in a
record's message, in its ``fields`` (keys and values, nested dicts / lists / tuples, and
the ``str()`` of any other object the JSON encoder meets) and in formatted exception text
is replaced by ``[redacted]``. :func:`configure_logging` installs :class:`RedactionFilter`
on its handler (a handler filter: it sees records from every logger, not only the root's)
and :class:`JsonFormatter` redacts what it serialises as well. While nothing is
registered both are a single ``is None`` check.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

TRACE_KEY = "logging.googleapis.com/trace"
REDACTED = "[redacted]"
#: Shorter values are not registered: "" would match everywhere and a value of a few
#: characters would shred every line it happens to occur in ("v" in "delivery"), while a
#: real secret (a Slack webhook URL, a 32-character PagerDuty routing key, an HMAC key) is
#: far longer. A secret this short is a configuration mistake, not something to hide.
MIN_REDACTED_LENGTH = 8


class _Redactions:
    """The registered secret values, as one compiled alternation (longest first, so a
    value that contains another is replaced whole). Values are never removed: a secret
    rotated out may still be in a caller's hands."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        #: None while nothing is registered: the whole cost of redaction then
        self.pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_REDACTED_LENGTH:
            return  # see MIN_REDACTED_LENGTH; a non-str can't appear in text
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            ordered = sorted(self._values, key=lambda v: (-len(v), v))
            self.pattern = re.compile("|".join(re.escape(v) for v in ordered))


_REDACTIONS = _Redactions()


def redact(value: str) -> None:
    """Register a secret value: it is replaced by ``[redacted]`` in every log line from now on.

    Thread-safe and idempotent; values shorter than :data:`MIN_REDACTED_LENGTH` are ignored.
    """
    _REDACTIONS.add(value)


def redacted(text: str) -> str:
    """``text`` with every registered secret value replaced by ``[redacted]``."""
    pattern = _REDACTIONS.pattern
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def _redact_value(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {_redact_value(k, pattern): _redact_value(v, pattern) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, pattern) for v in value]
    return value  # numbers, None, sets, objects: the encoder's default (str, redacted) sees them


def redacted_fields(value: Any) -> Any:
    """A copy of ``value`` (a ``fields`` mapping, or anything in it) with registered
    secrets replaced in every string, recursively; ``value`` itself when none is registered."""
    pattern = _REDACTIONS.pattern
    if pattern is None:
        return value
    return _redact_value(value, pattern)


class RedactionFilter(logging.Filter):
    """Rewrites a record so that no registered secret survives in it (for every handler
    after this one, whatever its formatter): message (``msg`` % ``args``, frozen into
    ``msg``), ``fields``, exception and stack text. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        pattern = _REDACTIONS.pattern
        if pattern is None:
            return True
        message = record.getMessage()
        clean = pattern.sub(REDACTED, message)
        if clean != message:
            record.msg, record.args = clean, None
        fields = getattr(record, "fields", None)
        if fields is not None:
            record.fields = _redact_value(fields, pattern)
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = pattern.sub(REDACTED, record.exc_text)
        if record.stack_info:
            record.stack_info = pattern.sub(REDACTED, record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname != "WARNING" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        trace = getattr(record, "trace", None)
        if trace:
            entry[TRACE_KEY] = trace
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
        if _REDACTIONS.pattern is None:
            return json.dumps(entry, default=str, sort_keys=False)
        # Structure first, then whatever the encoder stringifies: redacting the JSON text
        # instead would miss a value the encoder escapes (quotes, non-ASCII).
        return json.dumps(redacted_fields(entry), default=_redacted_str, sort_keys=False)


def _redacted_str(value: object) -> str:
    return redacted(str(value))


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at emit time (it may be replaced)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Install the JSON handler, with the secret :class:`RedactionFilter`, on the root
    logger once (idempotent)."""
    root = logging.getLogger()
    for existing in root.handlers:
        if isinstance(existing, _StdoutHandler):
            if not any(isinstance(f, RedactionFilter) for f in existing.filters):
                existing.addFilter(RedactionFilter())
            return
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactionFilter())
    root.addHandler(handler)
    root.setLevel(level)
