"""Cloud Function (2nd gen, Pub/Sub CloudEvent): route one alert to its receivers.

Doorway only: Cloud Monitoring's Pub/Sub notification channel and the suite's
``opsuite-alerts`` / ``opsuite-backup-events`` topics deliver here; the shared handler
turns the message into an alert and notifies each receiver once (the ledger in the
object store). Returning acknowledges; a raised TransientError makes Pub/Sub redeliver
(only the receivers not yet told are tried again). The shared core is imported on the
first event, not at import.
"""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.cloud_event
def alert_router(event: Any) -> None:
    from shared.log import configure_logging
    from shared.services.alert_event import handle_alert_event

    configure_logging()
    handle_alert_event(event.data, {"id": event["id"], "type": event["type"]})
