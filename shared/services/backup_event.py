"""The backup trigger as the function receives it: envelope → request → run.

Kept out of ``main.py`` so the doorway stays a doorway and this logic is typed and
unit-tested. Returns normally to acknowledge; raises TransientError to get the
event redelivered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput, ConfigError, PermanentError, TransientError
from shared.events import (
    BackupRequest,
    event_age_seconds,
    parse_backup_request,
    parse_pubsub_envelope,
)
from shared.runtime import fallback_backup_store, settings_and_adapters
from shared.services.backup import BackupDeps, BackupOutcome, run_backup
from shared.services.drill import DrillDeps, DrillOutcome, run_drill
from shared.services.trigger_rejections import REJECTED_FIELD, TriggerRejection, record_rejection

logger = logging.getLogger(__name__)


def handle_backup_event(
    data: object, context: Mapping[str, Any]
) -> BackupOutcome | DrillOutcome | None:
    """A backup trigger, or (``{"action": "restore_drill"}``) a restore drill trigger."""
    fields = {"event_id": context.get("id"), "event_type": context.get("type")}
    published: datetime | None = None
    try:
        message = parse_pubsub_envelope(data)
        fields["message_id"] = message.message_id
        published = message.publish_time
        request = parse_backup_request(message.data)
        published_at = None
        if request.action == "backup" and request.date is None and message.publish_time:
            # a redelivery after midnight still belongs to the night it was sent for,
            # and reads that night's data (the moment the trigger was published)
            request = request.model_copy(
                update={"date": message.publish_time.astimezone(UTC).date()}
            )
            published_at = message.publish_time
        settings, adapters = settings_and_adapters()
        age = event_age_seconds(message, datetime.now(UTC))
        if age is not None and age > settings.backups.max_event_age_seconds:
            logger.warning(
                "dropping backup trigger older than the maximum event age",
                extra={"fields": {**fields, "age_seconds": round(age)}},
            )
            return None
        try:
            if request.action == "restore_drill":
                return _drill(request, message.publish_time, settings, adapters, fields)
            deps = BackupDeps(
                settings=settings.backups,
                warehouse=adapters.warehouse,
                store=adapters.store,
                publisher=adapters.publisher,
                backend=adapters.backend,
            )
            outcome = run_backup(request, deps, published_at=published_at)
        except ConfigError as exc:
            # Raised by an adapter while working (google.auth found no credentials): on a
            # function that may be a metadata-server blip, not a broken file, so the
            # trigger is redelivered (until the maximum event age) instead of acked.
            logger.error(
                "backup trigger could not authenticate; asking for redelivery",
                extra={"fields": {**fields, "trigger_retrying": "credentials",
                                  "error": str(exc)}},
            )  # fmt: skip
            raise TransientError(str(exc)) from exc
    except TransientError as exc:
        logger.warning(
            "backup trigger failed transiently; asking for redelivery",
            extra={"fields": {**fields, "error": str(exc)}},
        )
        raise
    except ConfigError as exc:
        # Acknowledged (redelivery can't fix a config file), but never silent: a field a
        # log-based metric counts, and a record the health check reports.
        logger.error(
            "backup trigger rejected",
            extra={
                "fields": {
                    **fields,
                    REJECTED_FIELD: "configuration",
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                }
            },
        )
        _record_config_rejection(fields, exc, published)
        return None
    except (BadInput, PermanentError) as exc:
        logger.error(
            "backup trigger rejected",
            extra={
                "fields": {
                    **fields,
                    REJECTED_FIELD: "bad_input" if isinstance(exc, BadInput) else "permanent",
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                }
            },
        )
        return None
    logger.info(
        "backup trigger handled",
        extra={
            "fields": {
                **fields,
                "run_id": outcome.run_id,
                "outcome": outcome.outcome,
                "pending": outcome.pending,
            }
        },
    )
    return outcome


def _drill(
    request: BackupRequest,
    published: datetime | None,
    settings: Settings,
    adapters: Adapters,
    fields: Mapping[str, Any],
) -> DrillOutcome:
    """The restore drill instead of the backup. Its day is the UTC date the trigger was
    published, so a redelivery after midnight finds that day's record."""
    deps = DrillDeps(
        settings=settings.backups,
        warehouse=adapters.warehouse,
        store=adapters.store,
        backend=adapters.backend,
    )
    day = (published or datetime.now(UTC)).astimezone(UTC).date()
    outcome = run_drill(deps, tables=request.table_refs(), dry_run=request.dry_run, today=day)
    record, plan = outcome.record, outcome.plan
    logger.info(
        "restore drill trigger handled",
        extra={
            "fields": {
                **fields,
                "outcome": outcome.outcome,
                "date": day.isoformat(),
                "passed": outcome.passed,
                "projected_hours": record.projected_hours if record else None,
                "run_id": record.run_id if record else (plan.run_id if plan else None),
                "record": outcome.location,
            }
        },
    )
    return outcome


def _record_config_rejection(
    fields: Mapping[str, Any], exc: ConfigError, published: datetime | None
) -> None:
    target = fallback_backup_store()
    if target is None:
        logger.error(
            "nowhere to record the rejected backup trigger (no bucket known without config)",
            extra={"fields": dict(fields)},
        )
        return
    store, bucket = target
    now = datetime.now(UTC)
    record_rejection(
        store,
        bucket,
        TriggerRejection(
            date=(published or now).astimezone(UTC).date(),  # the night it was sent for
            rejected_at=now,
            error_type=type(exc).__name__,
            error=str(exc),
            message_id=str(fields.get("message_id") or ""),
        ),
    )
