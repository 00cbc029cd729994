"""Cloud Function (2nd gen, Pub/Sub CloudEvent): the nightly BigQuery backup.

Doorway only: the CloudEvent goes to the shared service, which parses, runs and
decides. Returning acknowledges the event; a raised TransientError makes Pub/Sub
redeliver it (the run resumes, it never restarts). The shared core is imported on
the first event, not at import, so the instance is ready to receive sooner.
"""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.cloud_event
def backup_export(event: Any) -> None:
    from shared.log import configure_logging
    from shared.services.backup_event import handle_backup_event

    configure_logging()
    handle_backup_event(event.data, {"id": event["id"], "type": event["type"]})
