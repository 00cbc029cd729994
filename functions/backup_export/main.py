"""Cloud Function (2nd gen, Pub/Sub CloudEvent): the nightly BigQuery backup.

Doorway only: the CloudEvent goes to the shared service, which parses, runs and
decides. Returning acknowledges the event; a raised TransientError makes Pub/Sub
redeliver it (the run resumes, it never restarts).
"""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.log import configure_logging
from shared.services.backup_event import handle_backup_event


@functions_framework.cloud_event
def backup_export(event: Any) -> None:
    configure_logging()
    handle_backup_event(event.data, {"id": event["id"], "type": event["type"]})
