"""The alert router's trigger as the function receives it: envelope → Alert → receivers.

One Pub/Sub message (a Cloud Monitoring incident notification, or a suite event from
``opsuite-alerts`` / ``opsuite-backup-events``; the source is detected from the
``event_type`` attribute or the body) becomes one :class:`~shared.models.Alert` and is
routed by :func:`shared.services.alert_router.handle_alert`. Returns normally to
acknowledge (also for a malformed message, or one the parser fails on unexpectedly:
logged ``trigger_rejected``, nothing sent, no crash loop); raises TransientError to get
the message redelivered (a receiver that could not be reached: the ledger keeps the
others from being told twice). The scheduled tick is always acknowledged: what it could
not do is logged, and the next tick is its retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.composition import Adapters
from shared.config import Settings
from shared.errors import BadInput, ConfigError, PermanentError, TransientError
from shared.events import PubSubMessage, parse_pubsub_envelope
from shared.runtime import settings_and_adapters
from shared.services.alert_inputs import alert_from_message, load_body
from shared.services.alert_router import (
    RouteOutcome,
    RouterDeps,
    TickOutcome,
    handle_alert,
    tick,
)
from shared.services.trigger_rejections import log_rejected

logger = logging.getLogger(__name__)

#: the scheduled tick's ``event_type`` (message attribute, or the body's ``type``)
TICK_EVENT = "alerts.tick"
_TICK_BODY_BYTES = 4096

#: (settings, adapters, started on time.monotonic) → the router's dependencies
DepsFactory = Callable[[Settings, Adapters, float], RouterDeps]

_lock = threading.Lock()
_factory: DepsFactory | None = None


def _default_deps(settings: Settings, adapters: Adapters, started: float) -> RouterDeps:
    return RouterDeps.of(settings, adapters, started=started)


def use_deps(factory: DepsFactory | None) -> None:
    """Install how the handler builds its dependencies (tests: receivers on loopback);
    None restores the default."""
    global _factory
    with _lock:
        _factory = factory


def _deps(settings: Settings, adapters: Adapters, started: float) -> RouterDeps:
    with _lock:
        factory = _factory or _default_deps
    return factory(settings, adapters, started)


def is_tick(message: PubSubMessage) -> bool:
    """The scheduled tick: ``event_type=alerts.tick`` as an attribute or body ``type``."""
    declared = message.attributes.get("event_type")
    if declared is not None:
        return declared == TICK_EVENT
    if not message.data or len(message.data) > _TICK_BODY_BYTES:
        return False
    try:
        return load_body(message.data).get("type") == TICK_EVENT
    except BadInput:
        return False


def handle_alert_event(
    data: object, context: Mapping[str, Any]
) -> RouteOutcome | TickOutcome | None:
    fields: dict[str, Any] = {"event_id": context.get("id"), "event_type": context.get("type")}
    started = time.monotonic()  # the delivery budget counts from the trigger's arrival
    # Reading the message is pure: whatever it raises, redelivering the same bytes raises
    # it again. So any exception here (a BadInput, or a bug such as an OverflowError the
    # parser failed to turn into one) rejects the message: acknowledged, logged at ERROR
    # with its type, never redelivered forever as a poison message.
    try:
        message = parse_pubsub_envelope(data)
        fields["message_id"] = message.message_id
        tick_message = is_tick(message)
        alert = (
            None
            if tick_message
            else alert_from_message(message, topic_kind=None, received_at=datetime.now(UTC))
        )
    except BadInput as exc:
        log_rejected(logger, "alert trigger rejected", fields, exc, error_chars=500)
        return None
    except Exception as exc:
        log_rejected(
            logger, "alert trigger rejected: reading it failed", fields, exc, error_chars=500
        )
        return None
    try:
        if tick_message:
            return _tick(fields, started)
        if alert is None:
            logger.info("message is not an alert; acknowledged", extra={"fields": fields})
            return None
        fields.update(fingerprint=alert.fingerprint, status=alert.status, source=alert.source)
        settings, adapters = settings_and_adapters()
        try:
            outcome = handle_alert(alert, _deps(settings, adapters, started))
        except ConfigError as exc:
            # raised by an adapter while working (no credentials yet): redeliver
            raise TransientError(f"credentials: {exc}") from exc
    except TransientError as exc:
        logger.warning(
            "alert routing failed transiently; asking for redelivery",
            extra={"fields": {**fields, "error_type": type(exc).__name__, "error": str(exc)}},
        )
        raise
    except (BadInput, ConfigError, PermanentError) as exc:
        log_rejected(logger, "alert trigger rejected", fields, exc, error_chars=500)
        return None
    logger.info(
        "alert routed",
        extra={"fields": {**fields, "stale": outcome.stale, "receivers": outcome.results()}},
    )
    return outcome


def _tick(fields: dict[str, Any], started: float) -> TickOutcome:
    settings, adapters = settings_and_adapters()
    try:
        outcome = tick(_deps(settings, adapters, started))
    except ConfigError as exc:
        raise TransientError(f"credentials: {exc}") from exc
    logger.info(
        "alert tick done",
        extra={
            "fields": {
                **fields,
                "notified": len(outcome.notified),
                "suppressed": len(outcome.suppressed),
                "expired_alerts": len(outcome.expired_alerts),
                "silences_deleted": len(outcome.silences_deleted),
                "states_deleted": len(outcome.states_deleted),
                # what this tick could not do (logged each); the next tick retries it
                "failed": list(outcome.failed[:20]),
            }
        },
    )
    return outcome
