"""Cloud Function (2nd gen, Pub/Sub CloudEvent): evaluate the SLOs.

Doorway only: Cloud Scheduler publishes to ``opsuite-sla-trigger`` every cadence; the
CloudEvent goes to the shared handler, which evaluates the instant the message was
published for. Returning acknowledges; a raised TransientError makes Pub/Sub redeliver
(the evaluation of that same instant resumes from what is recorded). The shared core is
imported on the first event, not at import.
"""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.cloud_event
def sla_evaluator(event: Any) -> None:
    from shared.log import configure_logging
    from shared.services.sla_event import handle_sla_event

    configure_logging()
    handle_sla_event(event.data, {"id": event["id"], "type": event["type"]})
