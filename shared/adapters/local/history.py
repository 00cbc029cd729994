"""The SLA evaluator's history on the local warehouse (DuckDB).

BigQuery makes an append idempotent through the load job's id (a second insert of
the id answers 409). Here a ledger, ``_opsuite_meta.history_loads`` with the job id as
primary key, plays that part: the ledger row and the records go in one transaction,
so either both are there or neither is, and a second append of the same id finds the
ledger row and appends nothing.

Writers are serialised by DuckDB itself: in one process every thread has its own
cursor on the warehouse's one connection (:meth:`LocalWarehouse.cursor`), and two
transactions that insert the same primary key conflict, the loser rolling back and
trying again (then it sees the winner's row). A second process can't open the file
while one holds it: the warehouse answers TransientError "busy" (``Adapters.release``
closes the file between requests), so a retry appends after the first is done and
then finds the ledger row. No cursor is kept here: the warehouse may close and reopen
its connection between requests.

An append of no records writes nothing and returns True (there is nothing to load).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import duckdb

from shared import identifiers
from shared.adapters.history_schema import (
    HISTORY_COLUMNS,
    HISTORY_SCHEMA,
    HISTORY_SPEC,
    check_records,
    check_window,
    json_row,
    record_from_values,
)
from shared.adapters.local.warehouse import (
    META_SCHEMA,
    LocalWarehouse,
    duck_type,
    qualified,
    quote,
)
from shared.errors import AlreadyExists, TransientError
from shared.identifiers import TableRef
from shared.models import EvaluationRecord

LEDGER = f"{META_SCHEMA}.history_loads"
#: Attempts at a transaction that lost a write-write conflict to a concurrent one.
CONFLICT_ATTEMPTS = 50
_CONFLICT_DELAY = 0.005
_CONFLICTS = (duckdb.TransactionException, duckdb.ConstraintException, duckdb.CatalogException)


#: from_json's structure for a list of history rows (column → DuckDB type)
_JSON_STRUCTURE = json.dumps([{f.name: duck_type(f) for f in HISTORY_SCHEMA}])


class LocalEvaluationHistory:
    def __init__(self, warehouse: LocalWarehouse, table: TableRef) -> None:
        self.warehouse = warehouse
        self.table = TableRef(
            identifiers.dataset_id(table.dataset), identifiers.table_id(table.table)
        )

    def append(self, job_id: str, records: Sequence[EvaluationRecord]) -> bool:
        """One transaction: the ledger row for ``job_id`` and every record; False (and
        nothing written) when the ledger already has ``job_id``."""
        identifiers.job_id(job_id)
        check_records(records)
        if not records:
            return True  # nothing to load: no job, nothing to remember
        rows = [json_row(r) for r in records]
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self._ensure_table()  # again after a conflict: the table may be gone
                return self._append_once(job_id, rows)
            except _CONFLICTS as exc:
                # A concurrent transaction wrote the same ledger key (or the table's
                # metadata row) after this one began: DuckDB reports a write-write
                # conflict, or a duplicate key that ON CONFLICT could not see yet. Once
                # the other has committed or rolled back, a new transaction sees it.
                if attempt == CONFLICT_ATTEMPTS - 1:
                    raise TransientError(f"history append {job_id}: {exc}") from exc
                time.sleep(_CONFLICT_DELAY * (attempt + 1))
        raise AssertionError("unreachable")

    def _append_once(self, job_id: str, rows: list[dict[str, object]]) -> bool:
        cur = self.warehouse.cursor()
        columns = ", ".join(quote(c) for c in HISTORY_COLUMNS)
        cur.execute("BEGIN TRANSACTION")
        try:
            claimed = cur.execute(
                f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING job_id",
                [job_id, str(self.table), len(rows), datetime.now(UTC)],
            ).fetchall()
            if not claimed:
                cur.execute("ROLLBACK")
                return False
            # All rows as ONE JSON parameter, typed by from_json: binding Python values
            # (execute/executemany) costs DuckDB a failed import per value, seconds for a
            # back-fill's day of rows. The JSON is the BigQuery load's NDJSON rows.
            cur.execute(
                f"INSERT INTO {qualified(self.table)} ({columns}) "
                f"SELECT unnest(r, recursive := true) FROM "
                f"(SELECT unnest(from_json(?::JSON, '{_JSON_STRUCTURE}')) AS r)",
                [json.dumps(rows)],
            )
            self.warehouse.touch(self.table)  # lastModifiedTime, in the same transaction
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT already ended it
                cur.execute("ROLLBACK")
            raise
        return True

    def _ensure_table(self) -> None:
        """The ledger, the dataset and the table, created when missing (concurrently too)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self.warehouse.cursor().execute(
                    f"CREATE TABLE IF NOT EXISTS {LEDGER} (job_id VARCHAR PRIMARY KEY, "
                    "destination VARCHAR NOT NULL, rows BIGINT NOT NULL, "
                    "loaded_at TIMESTAMPTZ NOT NULL)"
                )
                if self.warehouse.table_exists(self.table):
                    return
                self.warehouse.ensure_dataset(self.table.dataset)
                self._create_table()
                return
            except AlreadyExists:
                return  # created by a concurrent append: what we wanted
            except _CONFLICTS as exc:
                # Two creators at once: "Catalog write-write conflict", "already exists"
                # or a duplicate metadata key for the loser; the next look finds the table.
                if attempt == CONFLICT_ATTEMPTS - 1:
                    raise TransientError(f"creating {self.table}: {exc}") from exc
                time.sleep(_CONFLICT_DELAY * (attempt + 1))

    def _create_table(self) -> None:
        """``create_table`` in one transaction, so the table never exists without its
        metadata (partitioning, clustering, modes): an append that saw the table half
        made would record a modification without them. The warehouse runs every
        statement of a thread on that thread's one cursor, the one this transaction is
        opened on."""
        cur = self.warehouse.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            self.warehouse.create_table(self.table, HISTORY_SPEC)
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            raise

    def read(self, slos: Sequence[str], since: datetime, until: datetime) -> list[EvaluationRecord]:
        window = check_window(since, until)
        names = [str(s) for s in slos]
        if not names or not self.warehouse.table_exists(self.table):
            return []
        columns = ", ".join(quote(c) for c in HISTORY_COLUMNS)
        rows = (
            self.warehouse.cursor()
            .execute(
                f"SELECT {columns} FROM {qualified(self.table)} "
                f"WHERE {quote('at')} > ? AND {quote('at')} <= ? "
                f"AND list_contains(?, {quote('slo')}) "
                f"ORDER BY {quote('at')}, {quote('recorded_at')}, {quote('slo')}",
                [*window, names],
            )
            .fetchall()
        )
        return [record_from_values(r) for r in rows]
