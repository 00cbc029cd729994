"""Cloud Function (2nd gen, HTTP, IAM-authenticated): is the pipeline healthy?

Doorway only: Flask's request goes to the shared handler, which validates the
parameters, runs the checks and renders application/health+json.
"""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.http
def health_check(request: Any) -> tuple[str, int, dict[str, str]]:
    from shared.log import configure_logging
    from shared.services.health_http import respond

    configure_logging()
    code, headers, body = respond(
        request.method, request.args.to_dict(flat=False), request.query_string
    )
    return ("" if request.method == "HEAD" else body), code, headers
