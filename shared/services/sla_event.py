"""The SLA trigger as the function receives it: envelope → request → evaluation.

The instant is the message's publish time floored to the cadence (or the body's
``at``), so a redelivery evaluates — and records, and writes — the same instant.
Returns normally to acknowledge; raises TransientError to get the event redelivered.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from shared.errors import BadInput, ConfigError, PermanentError, TransientError
from shared.events import json_object_body, parse_pubsub_envelope
from shared.runtime import settings_and_adapters
from shared.services.sla import (
    EvaluationOutcome,
    SlaDeps,
    SlaRequest,
    evaluate,
)
from shared.services.trigger_rejections import log_rejected

logger = logging.getLogger(__name__)

#: a trigger older than this is acknowledged without evaluating: its instant's points
#: could no longer be written in order, and the evaluations since have covered it
MAX_EVENT_AGE = timedelta(hours=6)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str | None = Field(default=None, max_length=40)
    slos: list[Any] | None = Field(default=None, max_length=100)
    dry_run: StrictBool = False


def parse_sla_request(payload: bytes) -> SlaRequest:
    """``{"at": "<RFC 3339>", "slos": [...], "dry_run": true}``, every key optional."""
    body = json_object_body(payload)
    if body is None:
        return SlaRequest()
    try:
        parsed = _Body.model_validate(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "body"
            if error["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown field (expected at, slos, dry_run)")
            else:
                problems.append(f"{where}: {error['msg']}")
        raise BadInput("; ".join(problems)) from None
    at = None
    if parsed.at is not None:
        if not _RFC3339.fullmatch(parsed.at):
            raise BadInput("at: expected an RFC 3339 timestamp, e.g. 2026-12-01T10:15:00Z")
        try:
            at = datetime.fromisoformat(parsed.at.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            raise BadInput("at: not a valid date and time") from None
    names: tuple[str, ...] = ()
    if parsed.slos is not None:
        if not parsed.slos or not all(isinstance(n, str) and 0 < len(n) <= 63 for n in parsed.slos):
            raise BadInput("slos: expected a non-empty list of SLO names")
        names = tuple(dict.fromkeys(parsed.slos))
    return SlaRequest(at=at, slos=names, dry_run=parsed.dry_run)


def handle_sla_event(data: object, context: Mapping[str, Any]) -> EvaluationOutcome | None:
    fields: dict[str, Any] = {"event_id": context.get("id"), "event_type": context.get("type")}
    started = time.monotonic()  # the time budget counts from the trigger's arrival
    try:
        message = parse_pubsub_envelope(data)
        fields["message_id"] = message.message_id
        request = parse_sla_request(message.data)
        now = datetime.now(UTC)
        if request.at is None and message.publish_time is not None:
            age = now - message.publish_time
            if age > MAX_EVENT_AGE:
                logger.warning(
                    "dropping SLA trigger older than the maximum event age",
                    extra={"fields": {**fields, "age_seconds": round(age.total_seconds())}},
                )
                return None
            request = SlaRequest(
                at=message.publish_time, slos=request.slos, dry_run=request.dry_run
            )
        settings, adapters = settings_and_adapters()
        deps = SlaDeps.of(settings, adapters, started=started)
        try:
            outcome = evaluate(request, deps)
        except ConfigError as exc:
            # raised by an adapter while working (google.auth found no credentials): on a
            # function that may be a metadata-server blip, not a broken file: redeliver
            raise TransientError(f"credentials: {exc}") from exc
    except TransientError as exc:
        logger.warning(
            "SLA evaluation failed transiently; asking for redelivery",
            extra={"fields": {**fields, "error_type": type(exc).__name__, "error": str(exc)}},
        )
        raise
    except (BadInput, ConfigError, PermanentError) as exc:
        log_rejected(logger, "SLA trigger rejected", fields, exc)
        return None
    return outcome
