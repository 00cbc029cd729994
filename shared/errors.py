"""One small error hierarchy for the whole suite.

Adapters translate SDK exceptions into these at the boundary (``raise ... from exc``);
services and doorways only ever see these types.
"""

from __future__ import annotations


class OpsuiteError(Exception):
    """Base class for every error the suite raises on purpose."""


class ConfigError(OpsuiteError):
    """The configuration file is missing, unreadable or invalid."""


class BadInput(OpsuiteError):
    """A request (event, CLI argument, HTTP parameter) is malformed. Never retried."""


class TransientError(OpsuiteError):
    """A fault that may go away when retried (503, timeout, rate limit)."""


class PermanentError(OpsuiteError):
    """A fault that retrying will not fix."""


class NotFound(PermanentError):
    """The table, dataset, job or object does not exist."""


class PermissionDenied(PermanentError):
    """The identity lacks permission for the operation."""


class AlreadyExists(PermanentError):
    """A write-once resource exists already."""


class VerificationError(PermanentError):
    """An export or restore did not check out (files, sizes or row counts differ)."""


class StillRunning(TransientError):
    """A job was started but not seen to finish in time: its outcome is unknown.

    Whatever the job reads (e.g. the staging table a copy job copies from) must be left in
    place; look at ``job_id`` again later instead of cleaning up.
    """

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id
