"""What backups exist, and whether a run's files still check out."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.avro import scan_avro
from shared.errors import NotFound, VerificationError
from shared.manifest import CLAIM, MANIFEST, Manifest, RunClaim
from shared.models import split_gs_uri
from shared.ports import ObjectStore
from shared.services.restore import load_manifest


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str  # complete | partial | failed | in progress
    tables: int
    failed: int
    rows: int
    bytes: int
    instant: str


def list_runs(store: ObjectStore, bucket: str, prefix: str) -> list[RunSummary]:
    return [summary for summary, _manifest in read_runs(store, bucket, prefix)]


def read_runs(
    store: ObjectStore, bucket: str, prefix: str
) -> list[tuple[RunSummary, Manifest | RunClaim]]:
    """Each run, newest first, with the record its summary was read from (its manifest,
    or its claim while it is in progress), for a reader that needs more than the totals."""
    base = f"{prefix}/" if prefix else ""
    runs: dict[str, dict[str, str]] = {}
    for obj in store.list(bucket, base):
        rest = obj.name[len(base) :]
        run_id, _, leaf = rest.partition("/")
        if leaf in (MANIFEST, CLAIM):
            runs.setdefault(run_id, {})[leaf] = obj.name
    out: list[tuple[RunSummary, Manifest | RunClaim]] = []
    for run_id, leaves in sorted(runs.items(), reverse=True):
        if MANIFEST in leaves:
            m = Manifest.model_validate_json(store.read(bucket, leaves[MANIFEST]))
            summary = RunSummary(
                run_id,
                m.status,
                len(m.tables),
                len(m.failed),
                sum(t.rows or 0 for t in m.tables),
                sum(t.bytes for t in m.tables),
                m.instant.isoformat(),
            )
            out.append((summary, m))
        else:
            c = RunClaim.model_validate_json(store.read(bucket, leaves[CLAIM]))
            claimed = RunSummary(
                run_id, "in progress", len(c.tables), 0, 0, 0, c.instant.isoformat()
            )
            out.append((claimed, c))
    return out


@dataclass
class TableCheck:
    source: str
    ok: bool
    files: int = 0
    rows: int | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    run_id: str
    status: str
    tables: list[TableCheck]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


def verify_run(store: ObjectStore, bucket: str, prefix: str, run_id: str) -> VerifyReport:
    """Re-check every file of a run against its manifest: presence, size, CRC32C, rows."""
    manifest = load_manifest(store, bucket, prefix, run_id)
    checks = []
    for entry in manifest.tables:
        check = TableCheck(entry.source, ok=True, files=len(entry.files))
        if entry.status != "complete":
            check.ok = False
            check.problems.append(f"failed in the run: {entry.error}")
            checks.append(check)
            continue
        rows = 0
        for f in entry.files:
            b, name = split_gs_uri(f.uri)
            info = store.stat(b, name)
            if info is None:
                check.problems.append(f"{f.uri} is missing")
                continue
            if info.size != f.size:
                check.problems.append(f"{f.uri} has {info.size} bytes, manifest says {f.size}")
            if info.crc32c != f.crc32c:
                check.problems.append(f"{f.uri} CRC32C differs from the manifest")
            if f.rows is not None:
                try:
                    with store.open(b, name) as fo:
                        counted = scan_avro(fo, f.uri).rows
                except (VerificationError, NotFound) as exc:
                    check.problems.append(str(exc))
                    continue
                if counted != f.rows:
                    check.problems.append(f"{f.uri} holds {counted} rows, manifest says {f.rows}")
                rows += counted
        if entry.rows is not None and all(f.rows is not None for f in entry.files):
            check.rows = rows
            if rows != entry.rows:
                check.problems.append(f"files hold {rows} rows, the table had {entry.rows}")
        check.ok = not check.problems
        checks.append(check)
    return VerifyReport(run_id, manifest.status, checks)
