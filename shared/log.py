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


def configure_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Install the JSON handler on the root logger once (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_opsuite", False):
            return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._opsuite = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
