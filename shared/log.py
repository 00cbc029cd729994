"""JSON-lines logging for Cloud Logging.

Each record is one JSON object on stdout with ``severity``, ``message``, the trace
field Cloud Logging correlates on, and structured fields passed as
``logger.info("...", extra={"fields": {...}})``. Messages are fixed strings; values
go into fields so that payloads and secrets are never interpolated into text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TRACE_KEY = "logging.googleapis.com/trace"


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
        return json.dumps(entry, default=str, sort_keys=False)


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
    """Install the JSON handler on the root logger once (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h, _StdoutHandler) for h in root.handlers):
        return
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
