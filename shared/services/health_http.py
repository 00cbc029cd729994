"""The health check as an HTTP endpoint, independent of the web framework.

``respond(method, params)`` returns (status code, headers, JSON body); the function's
``main.py`` only adapts Flask's request to it. Never a bare 500, never a stack trace:
bad input is a 400 listing the valid values, a broken configuration a 503 document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from shared.errors import BadInput, ConfigError, OpsuiteError
from shared.runtime import settings_and_adapters
from shared.services.health import (
    CHECKS,
    MEDIA_TYPE,
    MODES,
    HealthDeps,
    parse_health_params,
    run_health,
)

logger = logging.getLogger(__name__)

MAX_QUERY_BYTES = 1024


def _json(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str]
) -> tuple[int, dict[str, str], str]:
    return status, dict(headers), json.dumps(body, separators=(",", ":"), default=str)


def respond(
    method: str, params: Mapping[str, Sequence[str]], raw_query: bytes = b""
) -> tuple[int, dict[str, str], str]:
    """The health endpoint; whatever goes wrong, the caller gets a JSON answer."""
    try:
        return _respond(method, params, raw_query)
    except Exception:  # never a bare 500 or a stack trace to the caller
        logger.exception("health check failed unexpectedly")
        body = {"status": "fail", "output": "the health check failed unexpectedly; see its logs"}
        return _json(503, body, {"Cache-Control": "no-store", "Content-Type": MEDIA_TYPE})


def _respond(
    method: str, params: Mapping[str, Sequence[str]], raw_query: bytes
) -> tuple[int, dict[str, str], str]:
    no_store = {"Cache-Control": "no-store", "Content-Type": "application/json"}
    if method not in ("GET", "HEAD"):
        return _json(405, {"error": f"method {method[:10]} not allowed", "allowed": ["GET"]},
                     {**no_store, "Allow": "GET, HEAD"})  # fmt: skip
    if len(raw_query) > MAX_QUERY_BYTES:
        return _bad(f"query string longer than {MAX_QUERY_BYTES} bytes", no_store)
    try:
        request = parse_health_params({k: list(v) for k, v in params.items()})
    except BadInput as exc:
        return _bad(str(exc), no_store)
    try:
        settings, adapters = settings_and_adapters()
    except (ConfigError, OpsuiteError) as exc:
        logger.error("health check cannot start", extra={"fields": {"error": str(exc)}})
        body = {"status": "fail", "output": "the health check is misconfigured; see its logs"}
        return _json(503, body, {**no_store, "Content-Type": MEDIA_TYPE})
    try:
        report = run_health(request, HealthDeps(settings, adapters.warehouse, adapters.store))
    finally:
        adapters.release()
    document = report.document()
    code = 503 if report.status == "fail" else 200
    max_age = settings.health.cache_max_age_seconds
    headers = {"Content-Type": MEDIA_TYPE, "Cache-Control": f"max-age={max_age}"}
    logger.info("health checked", extra={"fields": {"status": report.status, "mode": request.mode,
                                                    "checks": list(request.checks)}})  # fmt: skip
    return code, headers, json.dumps(document, separators=(",", ":"), default=str)


def _bad(reason: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
    body = {
        "error": reason,
        "valid": {"mode": list(MODES), "checks": list(CHECKS)},
        "example": "?mode=full&checks=freshness,backups",
    }
    return _json(400, body, headers)
