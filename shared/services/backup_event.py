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

from shared.errors import BadInput, ConfigError, PermanentError, TransientError
from shared.events import event_age_seconds, parse_backup_request, parse_pubsub_envelope
from shared.runtime import settings_and_adapters
from shared.services.backup import BackupDeps, BackupOutcome, run_backup

logger = logging.getLogger(__name__)


def handle_backup_event(data: object, context: Mapping[str, Any]) -> BackupOutcome | None:
    fields = {"event_id": context.get("id"), "event_type": context.get("type")}
    try:
        message = parse_pubsub_envelope(data)
        fields["message_id"] = message.message_id
        request = parse_backup_request(message.data)
        if request.date is None and message.publish_time is not None:
            # a redelivery after midnight still belongs to the night it was sent for
            request = request.model_copy(update={"date": message.publish_time.date()})
        settings, adapters = settings_and_adapters()
        age = event_age_seconds(message, datetime.now(UTC))
        if age is not None and age > settings.backups.max_event_age_seconds:
            logger.warning(
                "dropping backup trigger older than the maximum event age",
                extra={"fields": {**fields, "age_seconds": round(age)}},
            )
            return None
        deps = BackupDeps(
            settings=settings.backups,
            warehouse=adapters.warehouse,
            store=adapters.store,
            publisher=adapters.publisher,
            backend=adapters.backend,
        )
        outcome = run_backup(request, deps)
    except TransientError as exc:
        logger.warning(
            "backup trigger failed transiently; asking for redelivery",
            extra={"fields": {**fields, "error": str(exc)}},
        )
        raise
    except (BadInput, ConfigError, PermanentError) as exc:
        logger.error(
            "backup trigger rejected",
            extra={"fields": {**fields, "error_type": type(exc).__name__, "error": str(exc)}},
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
