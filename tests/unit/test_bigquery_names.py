"""BigQuery's table and column naming rules, and what they mean for SQL text, job ids
and object names (docs: "Table naming", "Column names", "Flexible column names")."""

from __future__ import annotations

import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from shared import identifiers
from shared.adapters.local.warehouse import quote
from shared.config import BackupSettings, DatasetSelector, parse_settings
from shared.errors import BadInput, NotFound
from shared.identifiers import TableRef
from shared.manifest import MAX_OBJECT_NAME_BYTES, RunClaim, RunLayout, layout_problem
from shared.services.backup import resolve_tables

GOOD_TABLES = [
    "Spieler Übersicht", "日本語テーブル", "table-with-dashes", "a\u0301", "table 01",
    "ग्राहक", "00_お客様", "étudiant-01", "ü" * 512, "x" * 1024, "tab\u3000le", "a\u00a0b",
]  # fmt: skip
BAD_TABLES = [
    "a`b", "a\\b", 'a"b', "a.b", "a\nb", "a\rb", "a\tb", "a\x00b", "ü" * 512 + "a",
    "x" * 1025, "", "a/b", "a*b", "a?b", "a[b]", "a#b", "a$20240101", "a@123", "a'b",
    "a\u2028b", "a\u202eb", "a\u200db", "a\ud800b", "-leading-dash", "a;b", "a,b",
]  # fmt: skip
GOOD_COLUMNS = [
    "Spieler Übersicht", "日本語", "1st", "a&b%c=d+e:f'g<h>i#j|k", "col-name", "a\u0301",
    "x" * 300, "_private", "partition", "TABLE_x", "_file",
]  # fmt: skip
BAD_COLUMNS = [
    "a`b", "a\\b", 'a"b', "a.b", "a\nb", "a\tb", "x" * 301, "", "a!b", "a$b", "a(b)",
    "a*b", "a,b", "a/b", "a;b", "a?b", "a@b", "a[b]", "a^b", "a{b}", "a~b",
    "_PARTITIONTIME", "_partitiondate", "_TABLE_SUFFIX", "_FILE_NAME", "_ROW_TIMESTAMP",
    "__root__x", "_COLIDENTIFIER1",
]  # fmt: skip
#: What could end or escape a backquoted (GoogleSQL) or double-quoted (DuckDB) identifier,
#: split a reference, or break an object name or a wildcard destination URI.
HOSTILE = frozenset('`"\\.\n\r*?[]#/$@;')


@pytest.mark.parametrize("name", GOOD_TABLES)
def test_bigquery_table_names_are_accepted(name: str) -> None:
    assert identifiers.table_id(name) == name
    assert TableRef.parse(f"ds.{name}").table == name


@pytest.mark.parametrize("name", BAD_TABLES)
def test_table_names_bigquery_refuses_or_we_cannot_quote_are_rejected(name: str) -> None:
    with pytest.raises(BadInput, match="is not a valid table id"):
        identifiers.table_id(name)


def test_the_table_limit_is_utf8_bytes_and_the_error_says_why() -> None:
    with pytest.raises(BadInput, match="longer than 1024 UTF-8 bytes") as info:
        identifiers.table_id("日" * 342)  # 342 chars, 1026 bytes
    assert len(str(info.value)) < 400  # a long name is abbreviated, not echoed whole
    with pytest.raises(BadInput, match=r"character '\.' \(U\+002E\)"):
        identifiers.table_id("a.b")


@pytest.mark.parametrize("name", GOOD_COLUMNS)
def test_flexible_column_names_are_accepted(name: str) -> None:
    assert identifiers.column_name(name) == name


@pytest.mark.parametrize("name", BAD_COLUMNS)
def test_bad_column_names_are_rejected(name: str) -> None:
    with pytest.raises(BadInput, match="is not a valid column name"):
        identifiers.column_name(name)


def test_reserved_column_prefix_is_named() -> None:
    with pytest.raises(BadInput, match="the prefix _PARTITION is reserved"):
        identifiers.column_name("_partitiontime")


def test_table_ref_parse_stays_strict_on_the_dataset_table_shape() -> None:
    for bad in ["ds.a.b", "ds", "d-s.t", "d s.t", "ds.", ".t", "日本.t"]:
        with pytest.raises(BadInput):
            TableRef.parse(bad)


def test_no_admitted_character_can_break_out_of_either_quoting() -> None:
    """Exhaustive over every code point: the validators are per character + length, so
    single characters decide every string they accept."""
    admitted_table: list[str] = []
    admitted_column: list[str] = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        for validate, admitted in (
            (identifiers.table_id, admitted_table),
            (identifiers.column_name, admitted_column),
        ):
            try:
                validate("a" + ch)  # "a" first: a leading "-" is refused on its own
            except BadInput:
                continue
            admitted.append(ch)
    for ch in admitted_table + admitted_column:
        category = unicodedata.category(ch)
        assert ch not in HOSTILE - set("#"), f"U+{ord(ch):04X}"
        assert category[0] != "C" and category not in ("Zl", "Zp"), f"U+{ord(ch):04X}"
        # the quoted forms end only at their closing quote, and hold no escape
        assert "`" not in f"`a{ch}`"[1:-1] and "\\" not in ch
        assert quote("a" + ch) == f'"a{ch}"'  # nothing doubled: no '"' inside
    assert "#" not in admitted_table  # '#' is a column-only special character
    assert set(admitted_column) - set(admitted_table) == set("&%=+:'<>#|")
    assert " " in admitted_table and "-" in admitted_table and "_" in admitted_table
    assert len(admitted_table) > 100_000  # the Unicode classes, not an ASCII subset


def test_admitted_names_round_trip_through_duckdb_quoting() -> None:
    """One representative of every admitted category, plus the ASCII specials, as real
    DuckDB identifiers: what comes back from the catalog is exactly what went in."""
    reps: dict[str, str] = {}
    for cp in range(sys.maxunicode + 1):
        reps.setdefault(unicodedata.category(chr(cp)), chr(cp))
    table_chars = [
        reps[c] for c in ("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No")
    ]
    # distinct stems: DuckDB matches identifiers case-insensitively even when quoted
    # ("tA" and "ta" are one table there, two in BigQuery) - a local-stack limit
    table_names = [f"t{i}{c}" for i, c in enumerate(table_chars)]
    table_names += ["t\u3000x", "t -x", "t_\u203fx", "Übersicht"]
    column_names = ["c" + c for c in "&%=+:'<>#| -_"] + ["日本語", "1st"]
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {quote('ds')}")
    for name in table_names:
        identifiers.table_id(name)
        con.execute(f"CREATE TABLE {quote('ds')}.{quote(name)} (x INT)")
    columns = ", ".join(f"{quote(identifiers.column_name(c))} INT" for c in column_names)
    con.execute(f"CREATE TABLE {quote('ds')}.{quote('cols')} ({columns})")
    listed = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert listed == {*table_names, "cols"}
    described = [r[0] for r in con.execute(f"DESCRIBE {quote('ds')}.{quote('cols')}").fetchall()]
    assert described == column_names


# -- job ids ---------------------------------------------------------------------------
def _layout() -> RunLayout:
    return RunLayout("test-backups", "backups", "20260101")


def test_plain_names_keep_their_job_ids() -> None:
    job = _layout().job_id(TableRef("nba_analytics", "player_game_summary"), 2)
    assert job.startswith("opsuite_backup_20260101_")
    assert job.endswith("_nba_analytics-player_game_summary_a2")


@pytest.mark.parametrize("name", GOOD_TABLES)
def test_every_valid_table_name_gives_a_valid_deterministic_job_id(name: str) -> None:
    job = _layout().job_id(TableRef("ds", name), 1)
    assert identifiers.job_id(job) == job
    assert job == _layout().job_id(TableRef("ds", name), 1)


def test_job_ids_of_lookalike_names_differ() -> None:
    names = ["a-b", "a_b", "a b", "a--b", "a\u2010b", "a\u0301", "\u00e1", "A_B"]
    # the hashed token of one name, used as another (plain) table's name
    names.append(identifiers.job_token("a-b"))
    names.append(identifiers.job_token("a-b").replace("-", "_"))
    jobs = {_layout().job_id(TableRef("ds", n), 1) for n in names if n[0] != "-"}
    assert len(jobs) == len(names)


# -- object names ----------------------------------------------------------------------
@pytest.mark.parametrize("name", GOOD_TABLES)
def test_destination_uri_has_one_wildcard_and_no_uri_specials(name: str) -> None:
    layout = _layout()
    uri = layout.destination_uri(TableRef("ds", name), 1, "avro")
    assert uri == f"gs://test-backups/backups/20260101/ds/{name}/attempt-1/part-*.avro"
    assert uri.count("*") == 1 and uri.endswith("/part-*.avro")
    path = uri.removeprefix("gs://")
    assert not set(path) & set("?[]#\r\n")
    assert all(p not in ("", ".", "..") for p in path.split("/"))


def test_layout_problem_guards_the_object_name_limit() -> None:
    assert layout_problem("backups", TableRef("ds", "x" * 900)) is None
    problem = layout_problem("backups", TableRef("ds", "ü" * 512))
    assert problem is not None and f"{MAX_OBJECT_NAME_BYTES}-byte limit" in problem


# -- the claim and the table selection ------------------------------------------------
def test_old_claims_without_rejected_tables_still_parse() -> None:
    old = (
        '{"run_id": "20260101", "date": "2026-01-01", "instant": "2026-01-01T02:00:00Z", '
        '"tables": ["ds.t"], "missing_datasets": [], "created_at": "2026-01-01T02:00:00Z", '
        '"backend": "gcp"}'
    )
    claim = RunClaim.model_validate_json(old)
    assert claim.rejected_tables == []
    again = claim.model_copy(update={"rejected_tables": []})
    body = again.model_dump(mode="json")
    body["rejected_tables"] = [{"name": "ds.a.b", "error": "bad"}]
    assert RunClaim.model_validate(body).rejected_tables[0].name == "ds.a.b"


def test_unicode_globs_select_unicode_names() -> None:
    selector = DatasetSelector(name="ds", include=["Spieler*", "日本*"], exclude=["* alt"])
    assert selector.selects("Spieler Übersicht")
    assert selector.selects("日本語テーブル")
    assert not selector.selects("Spieler alt")
    assert not selector.selects("spieler x")  # case-sensitive, as BigQuery names are


class _ListingWarehouse:
    def __init__(self, tables: dict[str, list[str]]) -> None:
        self.tables = tables

    def list_tables(self, dataset: str) -> list[str]:
        if dataset not in self.tables:
            raise NotFound(dataset)
        return self.tables[dataset]


def _settings(tmp_path: Path, prefix: str = "backups") -> BackupSettings:
    return parse_settings(
        {
            "version": 1,
            "gcp": {"project": "nba-props-platform"},
            "local": {"root": str(tmp_path)},
            "backups": {
                "bucket": "test-backups",
                "prefix": prefix,
                "tables": ["nba_analytics.player_game_summary"],
                "datasets": [{"name": "odd"}, {"name": "gone"}],
            },
        }
    ).backups


def test_resolve_tables_records_unusable_names_instead_of_aborting(tmp_path: Path) -> None:
    long_name = "ü" * 505  # 1010 bytes: a valid table id, but its object names don't fit
    listed = ["ordinary", "Spieler Übersicht", "table-with-dashes", "a.b", "a`b", "-x",
              "x" * 1100, long_name]  # fmt: skip
    warehouse = _ListingWarehouse({"odd": listed})

    selection = resolve_tables(_settings(tmp_path), warehouse, None)  # type: ignore[arg-type]

    assert [str(t) for t in selection.tables] == [
        "nba_analytics.player_game_summary", "odd.Spieler Übersicht", "odd.ordinary",
        "odd.table-with-dashes",
    ]  # fmt: skip
    assert selection.missing_datasets == ["gone"]
    rejected = {r.name: r.error for r in selection.rejected_tables}
    assert set(rejected) == {"odd.a.b", "odd.a`b", "odd.-x", "odd." + "x" * 1100,
                             "odd." + long_name}  # fmt: skip
    assert "character '.'" in rejected["odd.a.b"]
    assert "longer than 1024 UTF-8 bytes" in rejected["odd." + "x" * 1100]
    assert "Cloud Storage's 1024-byte limit" in rejected["odd." + long_name]


def test_a_request_may_name_a_unicode_table(tmp_path: Path) -> None:
    warehouse = _ListingWarehouse({"odd": ["Spieler Übersicht"], "gone": []})
    wanted = [TableRef("odd", "Spieler Übersicht")]
    selection = resolve_tables(_settings(tmp_path), warehouse, wanted)  # type: ignore[arg-type]
    assert selection.tables == wanted and selection.rejected_tables == []


def test_a_new_claim_has_no_rejected_tables() -> None:
    claim = RunClaim(run_id="r", date=datetime(2026, 1, 1).date(), instant=datetime.now(UTC),
                     tables=[], created_at=datetime.now(UTC), backend="local")  # fmt: skip
    assert claim.missing_datasets == [] and claim.rejected_tables == []
