"""Parsing at the edge: Pub/Sub CloudEvents into typed requests.

Anything malformed becomes :class:`BadInput` with a message that says what was
expected; the doorway logs it and acknowledges the event (retrying can't fix it).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as Date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from shared.errors import BadInput
from shared.identifiers import TableRef
from shared.manifest import is_run_id

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class PubSubMessage:
    data: bytes
    attributes: Mapping[str, str]
    message_id: str
    publish_time: datetime | None


def parse_pubsub_envelope(data: object) -> PubSubMessage:
    """The ``data`` of a messagePublished CloudEvent (or a Scheduler-published one)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise BadInput("event data must be a Pub/Sub envelope with a 'message' object")
    message = data["message"]
    raw = message.get("data") or ""
    if not isinstance(raw, str):
        raise BadInput("message.data must be a base64 string")
    try:
        payload = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("message.data is not valid base64") from None
    if len(payload) > MAX_MESSAGE_BYTES:
        raise BadInput(f"message.data is larger than {MAX_MESSAGE_BYTES} bytes")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise BadInput("message.attributes must map strings to strings")
    publish_time = None
    if isinstance(message.get("publishTime"), str):
        try:
            publish_time = datetime.fromisoformat(message["publishTime"].replace("Z", "+00:00"))
        except ValueError:
            raise BadInput("message.publishTime is not an RFC 3339 timestamp") from None
        if publish_time.tzinfo is None:
            publish_time = publish_time.replace(tzinfo=UTC)
        try:
            publish_time = publish_time.astimezone(UTC)  # its date is the UTC date of the night
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
            raise BadInput("message.publishTime is out of range") from None
    return PubSubMessage(
        data=payload,
        attributes=dict(attributes),
        message_id=str(message.get("messageId") or message.get("message_id") or ""),
        publish_time=publish_time,
    )


#: What a message on the backup trigger topic asks for: the backup run (the default), or
#: the restore drill (``{"action": "restore_drill"}``, optionally ``tables``, ``dry_run``).
TriggerAction = Literal["backup", "restore_drill"]
#: The fields a restore drill trigger may carry besides ``action``.
DRILL_FIELDS = frozenset({"action", "tables", "dry_run"})


class BackupRequest(BaseModel):
    """The body of a backup trigger: all optional; ``{}`` or empty is tonight's run.

    ``action: restore_drill`` asks for the restore drill instead (``tables`` then names
    the drill's sample and ``dry_run`` plans it); ``date``, ``run_id`` and
    ``continuation`` belong to backup runs only.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: TriggerAction = "backup"
    date: Date | None = None
    tables: list[str] | None = Field(default=None, max_length=1000)
    dry_run: StrictBool = False
    run_id: str | None = None
    continuation: StrictInt = Field(default=0, ge=0, le=1000)

    def table_refs(self) -> list[TableRef] | None:
        return None if self.tables is None else [TableRef.parse(t) for t in self.tables]


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "body"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field (expected action, date, tables, dry_run)"
    return f"{where}: {error['msg']}"


def json_object_body(payload: bytes) -> dict[str, Any] | None:
    """A message body as a JSON object; None for an empty body; BadInput otherwise."""
    try:
        text = payload.decode("utf-8", errors="strict") if payload else ""
    except UnicodeDecodeError:
        raise BadInput("message body is not UTF-8") from None
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"message body is not JSON ({exc.msg})") from None
    except RecursionError:
        raise BadInput("message body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadInput("message body must be a JSON object")
    return body


def parse_backup_request(payload: bytes) -> BackupRequest:
    body = json_object_body(payload)
    if body is None:
        return BackupRequest()
    if isinstance(body.get("date"), str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["date"]):
        raise BadInput("date: expected YYYY-MM-DD")
    try:
        request = BackupRequest.model_validate(body)
    except ValidationError as exc:
        raise BadInput("; ".join(_describe(e) for e in exc.errors())) from None
    for table in request.tables or []:
        TableRef.parse(table)
    if request.tables is not None and not request.tables:
        raise BadInput("tables: expected at least one 'dataset.table' (omit it for all)")
    if request.run_id is not None and not is_run_id(request.run_id):
        raise BadInput("run_id: expected YYYYMMDD or YYYYMMDD-<8 hex>")
    if request.action == "restore_drill":
        extra = sorted(set(body) - DRILL_FIELDS)
        if extra:
            raise BadInput(
                f"{', '.join(extra)}: not valid with action restore_drill "
                "(expected tables, dry_run)"
            )
    return request


def event_age_seconds(message: PubSubMessage, now: datetime) -> float | None:
    if message.publish_time is None:
        return None
    return (now - message.publish_time).total_seconds()
