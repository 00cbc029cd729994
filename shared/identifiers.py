"""BigQuery identifier rules, enforced before any name reaches an API call or SQL text.

Dataset ids: letters, digits and underscores, at most 1024 characters.
Table ids: we accept the conservative subset letters, digits, underscore and dash
(BigQuery allows more Unicode classes, but none of those appear in the pipeline and
every extra character is one more thing to quote correctly), at most 1024 characters.
Project ids: 6-30 chars, lowercase letters, digits, dashes, starting with a letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import BadInput

_DATASET_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,1023}$")
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9\-]{4,28}[a-z0-9]$")
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,1024}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9_\-.]{1,61}[a-z0-9]$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-./]{0,512}$")
_TOPIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-.~+%]{2,254}$")


def _check(pattern: re.Pattern[str], value: object, what: str, expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadInput(f"{value!r} is not a valid {what} (expected {expected})")
    return value


def dataset_id(value: object) -> str:
    return _check(_DATASET_RE, value, "dataset id", "letters, digits and underscores")


def table_id(value: object) -> str:
    return _check(
        _TABLE_RE, value, "table id", "letters, digits, underscores and dashes, no leading dash"
    )


def project_id(value: object) -> str:
    return _check(
        _PROJECT_RE,
        value,
        "project id",
        "6-30 lowercase letters, digits and dashes, starting with a letter",
    )


def job_id(value: object) -> str:
    return _check(_JOB_ID_RE, value, "job id", "letters, digits, '_' and '-', at most 1024")


def bucket_name(value: object) -> str:
    name = _check(
        _BUCKET_RE, value, "bucket name", "3-63 lowercase letters, digits, '-', '_' and '.'"
    )
    if ".." in name or name.startswith("goog"):
        raise BadInput(f"{value!r} is not a valid bucket name (no '..', no 'goog' prefix)")
    return name


def object_prefix(value: object) -> str:
    prefix = _check(_PREFIX_RE, value, "object prefix", "letters, digits, '_', '-', '.', '/'")
    parts = [p for p in prefix.split("/") if p]
    if any(p in {".", ".."} for p in parts) or prefix.startswith("/"):
        raise BadInput(f"{value!r} is not a valid object prefix (no '.', '..' or leading '/')")
    return "/".join(parts)


def topic_id(value: object) -> str:
    return _check(_TOPIC_RE, value, "Pub/Sub topic id", "3-255 chars starting with a letter")


@dataclass(frozen=True, order=True)
class TableRef:
    """A validated ``dataset.table`` reference (project comes from settings)."""

    dataset: str
    table: str

    def __post_init__(self) -> None:
        dataset_id(self.dataset)
        table_id(self.table)

    @classmethod
    def parse(cls, value: object) -> TableRef:
        if not isinstance(value, str) or value.count(".") != 1:
            raise BadInput(f"{value!r} is not a table reference (expected 'dataset.table')")
        dataset, table = value.split(".")
        try:
            return cls(dataset_id(dataset), table_id(table))
        except BadInput as exc:
            raise BadInput(f"{value!r} is not a valid table reference: {exc}") from None

    def __str__(self) -> str:
        return f"{self.dataset}.{self.table}"
