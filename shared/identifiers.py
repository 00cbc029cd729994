"""BigQuery identifier rules, enforced before any name reaches an API call or SQL text.

Dataset ids: letters, digits and underscores, at most 1024 characters (BigQuery's rule).

Table ids follow BigQuery's documented table naming rules ("Table naming",
https://cloud.google.com/bigquery/docs/tables#table_naming, and ``tableId`` in the REST
``TableReference``): Unicode characters of the general categories L (letter), M (mark),
N (number), Pc (connector, incl. ``_``), Pd (dash) and Zs (space), 1-1024 UTF-8 *bytes*
(e.g. ``table 01``, ``00_お客様``, ``étudiant-01``). One restriction of ours: no leading
dash (it would read as an option on the CLI).

Column names follow "Column names" and "Flexible column names"
(https://cloud.google.com/bigquery/docs/schemas#column_names): the same L, M, N, Pc, Pd
classes plus ``& % = + : ' < > # |`` and whitespace (we take Zs, i.e. spaces; tab and
newline are control characters), at most 300 characters, and none of the reserved
(case-insensitive) prefixes ``_TABLE_``, ``_FILE_``, ``_PARTITION``, ``_ROW_TIMESTAMP``,
``__ROOT__``, ``_COLIDENTIFIER``. The characters flexible names exclude
(``! " $ ( ) * , . / ; ? @ [ \\ ] ^ ` { } ~``) are exactly the ones that matter to us.

Why this is safe in SQL text: GoogleSQL quotes identifiers with backquotes, and a quoted
identifier takes the escape sequences of string literals; local DuckDB quotes with double
quotes. None of the admitted classes holds a backquote, a backslash, a double quote, a
``.``, a control character or a line/paragraph separator (checked over every code point in
tests/unit/test_bigquery_names.py), so an admitted name can neither end its quoting nor
start an escape. In object names the admitted table names never hold ``* ? [ ] #`` (the
wildcard/URI characters), CR or LF.

Project ids: 6-30 chars, lowercase letters, digits, dashes, starting with a letter.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from shared.errors import BadInput

_DATASET_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
TABLE_ID_MAX_BYTES = 1024
COLUMN_NAME_MAX_CHARS = 300
RESERVED_COLUMN_PREFIXES = (
    "_TABLE_",
    "_FILE_",
    "_PARTITION",
    "_ROW_TIMESTAMP",
    "__ROOT__",
    "_COLIDENTIFIER",
)
_TABLE_CATEGORIES = frozenset(
    {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Zs"}
)
_COLUMN_SPECIALS = frozenset("&%=+:'<>#|")
#: Never admitted, whatever the categories say: what could end or escape a quoted
#: identifier (GoogleSQL backquotes, DuckDB double quotes), a path separator, a dot.
_NEVER = frozenset('`"\\./\n\r')
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


def _short(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:60]) + f"... ({len(value)} chars)"


def _bad_character(name: str, allowed: frozenset[str], extra: frozenset[str]) -> str | None:
    for ch in name:
        if ch in _NEVER or (unicodedata.category(ch) not in allowed and ch not in extra):
            return f"character {ch!r} (U+{ord(ch):04X}) is not allowed"
    return None


def table_id(value: object) -> str:
    """A table id as BigQuery allows it (see the module docstring), else BadInput."""
    if not isinstance(value, str) or not value:
        raise BadInput(f"{value!r} is not a valid table id (expected a non-empty string)")
    problem = _bad_character(value, _TABLE_CATEGORIES, frozenset())
    if problem is None and value.startswith("-"):
        problem = "a leading '-' is not accepted"
    if problem is None and len(value.encode("utf-8")) > TABLE_ID_MAX_BYTES:
        problem = f"longer than {TABLE_ID_MAX_BYTES} UTF-8 bytes"
    if problem is not None:
        raise BadInput(
            f"{_short(value)} is not a valid table id: {problem} (BigQuery table names: "
            f"letters, marks, numbers, connectors, dashes and spaces, at most "
            f"{TABLE_ID_MAX_BYTES} UTF-8 bytes)"
        )
    return value


def column_name(value: object) -> str:
    """A column name as BigQuery allows it incl. flexible column names, else BadInput."""
    if not isinstance(value, str) or not value:
        raise BadInput(f"{value!r} is not a valid column name (expected a non-empty string)")
    problem = _bad_character(value, _TABLE_CATEGORIES, _COLUMN_SPECIALS)
    if problem is None and len(value) > COLUMN_NAME_MAX_CHARS:
        problem = f"longer than {COLUMN_NAME_MAX_CHARS} characters"
    if problem is None:
        upper = value.upper()
        reserved = next((p for p in RESERVED_COLUMN_PREFIXES if upper.startswith(p)), None)
        if reserved is not None:
            problem = f"the prefix {reserved} is reserved"
    if problem is not None:
        raise BadInput(
            f"{_short(value)} is not a valid column name: {problem} (BigQuery column names: "
            "letters, marks, numbers, connectors, dashes, spaces and & % = + : ' < > # |, "
            f"at most {COLUMN_NAME_MAX_CHARS} characters)"
        )
    return value


def project_id(value: object) -> str:
    return _check(
        _PROJECT_RE,
        value,
        "project id",
        "6-30 lowercase letters, digits and dashes, starting with a letter",
    )


def job_id(value: object) -> str:
    return _check(_JOB_ID_RE, value, "job id", "letters, digits, '_' and '-', at most 1024")


def job_token(value: str) -> str:
    """``value`` as a piece of a job id: kept when it is already ``[A-Za-z0-9_]``, else an
    ASCII slug plus a hash of the exact name (table names may hold Unicode, spaces, dashes).

    Injective in practice: a kept value never holds ``-`` and a hashed one always does
    (``<slug>-<16 hex>``), so a plain name can't equal another name's hashed token.
    """
    if re.fullmatch(r"[A-Za-z0-9_]{1,200}", value):
        return value
    slug = re.sub(r"[^A-Za-z0-9_]+", "_", value)[:64].strip("_")
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
    return f"{slug or 'x'}-{digest}"


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
