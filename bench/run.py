"""opsuite benchmarks: `make bench` (or `python bench/run.py --output BENCHMARKS.md`).

Every comparison is a ratio measured in one run on one machine, so a shared, noisy
machine shifts both sides alike. Nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.adapters.local.object_store import LocalObjectStore  # noqa: E402
from shared.adapters.local.warehouse import LocalWarehouse  # noqa: E402
from shared.config import parse_settings  # noqa: E402
from shared.events import BackupRequest  # noqa: E402
from shared.identifiers import TableRef  # noqa: E402
from shared.models import (  # noqa: E402
    ExtractRequest,
    JobStatus,
    SchemaField,
    TableInfo,
    TableSpec,
    split_gs_uri,
)
from shared.retry import Clock  # noqa: E402
from shared.services.backup import BackupDeps, run_backup  # noqa: E402

# -- 1. orchestration ---------------------------------------------------------------------
TABLES = [f"nba_analytics.t{i:02d}" for i in range(13)]
EMPTY_AVRO: bytes = b""


class SimulatedBigQuery:
    """Extract jobs that take ``latency`` seconds, then leave one small Avro file."""

    def __init__(self, store: LocalObjectStore, latency: float) -> None:
        self.store = store
        self.latency = latency
        self.jobs: dict[str, tuple[float, ExtractRequest]] = {}
        self.lock = threading.Lock()

    def list_tables(self, dataset: str) -> list[str]:
        return [t.split(".")[1] for t in TABLES if t.startswith(dataset + ".")]

    def get_table(self, table: TableRef) -> TableInfo:
        return TableInfo(table, (SchemaField("id", "INT64"),), 0, 0, datetime.now(UTC))

    def row_count_at(self, table: TableRef, instant: datetime, **_: Any) -> int:
        return 0

    def start_extract(self, request: ExtractRequest) -> JobStatus:
        with self.lock:
            self.jobs.setdefault(request.job_id, (time.monotonic(), request))
        return self.get_job(request.job_id)

    def get_job(self, job_id: str) -> JobStatus:
        from shared.errors import NotFound

        with self.lock:
            if job_id not in self.jobs:
                raise NotFound(job_id)
            started, request = self.jobs[job_id]
        if time.monotonic() - started < self.latency:
            return JobStatus(job_id, "RUNNING")
        bucket, name = split_gs_uri(request.destination_uri.replace("*", "000000000000"))
        self.store.write_once(bucket, name, EMPTY_AVRO, "application/avro")
        return JobStatus(job_id, "DONE", destination_file_count=1)


def _empty_avro() -> bytes:
    import fastavro

    from shared.avro import avro_schema

    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(avro_schema([SchemaField("id", "INT64")])), [],
                    codec="snappy")  # fmt: skip
    return buf.getvalue()


def bench_orchestration(latency: float) -> dict[str, Any]:
    global EMPTY_AVRO
    EMPTY_AVRO = _empty_avro()
    from shared.adapters.local.bus import LocalBus

    with tempfile.TemporaryDirectory() as tmp:
        # the seeds' approach: one `bq extract` after another, each waited for
        store = LocalObjectStore(Path(tmp) / "seq")
        bq = SimulatedBigQuery(store, latency)
        t0 = time.monotonic()
        for i, table in enumerate(TABLES):
            job = f"seq_{i}"
            status = bq.start_extract(ExtractRequest(job, TableRef.parse(table), datetime.now(UTC),
                                                     f"gs://bench-seq/{i}/part-*.avro"))  # fmt: skip
            interval = 0.05
            while not status.done:
                time.sleep(interval)
                interval = min(interval * 2, 2.0)
                status = bq.get_job(job)
        sequential = time.monotonic() - t0

        settings = parse_settings({"backups": {"bucket": "bench-bucket", "tables": TABLES}})
        store = LocalObjectStore(Path(tmp) / "ours")
        deps = BackupDeps(settings.backups, SimulatedBigQuery(store, latency), store,  # type: ignore[arg-type]
                          LocalBus(Path(tmp) / "bus"), "local", clock=Clock())  # fmt: skip
        t0 = time.monotonic()
        outcome = run_backup(BackupRequest(), deps)
        concurrent = time.monotonic() - t0
        assert outcome.manifest is not None and outcome.manifest.status == "complete", outcome
    return {
        "tables": len(TABLES),
        "latency_s": latency,
        "sequential_s": round(sequential, 2),
        "opsuite_s": round(concurrent, 2),
        "ratio": round(concurrent / sequential, 3),
    }


# -- 2. local export ------------------------------------------------------------------------
PIPELINE_SCHEMA = (
    SchemaField("game_date", "DATE", "REQUIRED"),
    SchemaField("game_id", "STRING"),
    SchemaField("player_lookup", "STRING", "REQUIRED"),
    SchemaField("team_abbr", "STRING"),
    SchemaField("points", "INT64"),
    SchemaField("minutes_played", "NUMERIC"),
    SchemaField("usage_rate", "FLOAT64"),
    SchemaField("data_sources", "STRING", "REPEATED"),
    SchemaField("processed_at", "TIMESTAMP", "REQUIRED"),
)
FILL = (
    "INSERT INTO bench.pgs SELECT DATE '2026-01-01' + CAST(i % 300 AS INTEGER), "
    "'g' || (i // 20), 'player_' || (i % 500), ['LAL','BOS','DEN'][1 + (i % 3)::INTEGER], "
    "CAST(i % 40 AS BIGINT), CAST((i % 4000) / 100.0 AS DECIMAL(38,9)), (i % 400) / 10.0, "
    "['nbac_gamebook', 'bdl'], TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) "
    "FROM range({rows}) r(i)"
)
TABLE = TableRef("bench", "pgs")


def _warehouse(root: Path) -> LocalWarehouse:
    return LocalWarehouse(root / "wh.duckdb", root / "gcs", root / "jobs",
                          max_file_bytes=256 * 1024 * 1024)  # fmt: skip


def make_rows(root: Path, rows: int) -> None:
    wh = _warehouse(root)
    wh.create_table(TABLE, TableSpec(PIPELINE_SCHEMA), replace=True)
    wh.execute(FILL.format(rows=rows))
    wh.touch(TABLE, datetime(2026, 1, 1, tzinfo=UTC))
    wh.close()


def export(root: Path, job: str) -> float:
    wh = _warehouse(root)
    t0 = time.perf_counter()
    wh.start_extract(
        ExtractRequest(job, TABLE, datetime.now(UTC), f"gs://bench-bucket/{job}/part-*.avro")
    )
    while not (status := wh.get_job(job)).done:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    assert status.error is None, status
    wh.close()
    return elapsed


def raw_fastavro(root: Path) -> float:
    """fastavro alone, writing the same rows already in memory as Python objects."""
    import fastavro

    from shared.avro import avro_schema

    wh = _warehouse(root)
    names = [f.name for f in PIPELINE_SCHEMA]
    rows = [dict(zip(names, r, strict=True)) for r in wh.execute("SELECT * FROM bench.pgs")]
    wh.close()
    schema = fastavro.parse_schema(avro_schema(PIPELINE_SCHEMA))
    t0 = time.perf_counter()
    with open(root / "raw.avro", "wb") as fo:
        fastavro.writer(fo, schema, rows, codec="snappy")
    return time.perf_counter() - t0


def naive_fastavro(root: Path) -> float:
    """The straightforward script: read the table from DuckDB, hand it to fastavro."""
    import fastavro

    from shared.avro import avro_schema

    wh = _warehouse(root)
    names = [f.name for f in PIPELINE_SCHEMA]
    schema = fastavro.parse_schema(avro_schema(PIPELINE_SCHEMA))
    t0 = time.perf_counter()
    rows = [dict(zip(names, r, strict=True)) for r in wh.execute("SELECT * FROM bench.pgs")]
    with open(root / "naive.avro", "wb") as fo:
        fastavro.writer(fo, schema, rows, codec="snappy")
    elapsed = time.perf_counter() - t0
    wh.close()
    return elapsed


def bench_export(rows: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_rows(root, rows)
        ours, raw, naive = [], [], []
        for i in range(repeats):  # interleaved, so drift hits all alike
            raw.append(raw_fastavro(root))
            naive.append(naive_fastavro(root))
            ours.append(export(root, f"bench_{i}"))
    o, r, n = statistics.median(ours), statistics.median(raw), statistics.median(naive)
    return {"rows": rows, "opsuite_export_s": round(o, 2), "fastavro_from_duckdb_s": round(n, 2),
            "speed_vs_fastavro_from_duckdb": round(n / o, 2), "fastavro_write_only_s": round(r, 2),
            "speed_vs_fastavro_write_only": round(r / o, 2)}  # fmt: skip


def bench_memory(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        make_rows(Path(tmp), rows)
        # VmHWM belongs to this process image; ru_maxrss would also carry the parent's
        # high-water mark across fork + exec (Linux keeps it in the signal struct).
        code = (
            "import sys; sys.path.insert(0, sys.argv[2]); sys.path.insert(0, sys.argv[3]);"
            "from run import export; from pathlib import Path;"
            "t = export(Path(sys.argv[1]), 'mem');"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
            "print(int(hwm.split()[1]), t)"
        )
        out = subprocess.run([sys.executable, "-c", code, tmp, str(ROOT), str(ROOT / "bench")],
                             check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
        files = list((Path(tmp) / "gcs").rglob("*.avro"))
    return {"rows": rows, "peak_rss_mb": round(int(out[0]) / 1024), "seconds": round(float(out[1]), 1),
            "files": len(files)}  # fmt: skip


# -- 3. cold start -----------------------------------------------------------------------------
HANDLERS = {"backup_export": "backup_event", "health_check": "health_http"}
CLIENTS = (
    "import google.cloud.bigquery, google.cloud.storage, google.cloud.pubsub, "
    "google.cloud.monitoring, google.cloud.secretmanager"
)


def _import_seconds(code: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=cwd,
                   env={**os.environ, "PYTHONPATH": str(cwd)})  # fmt: skip
    return time.perf_counter() - t0


def bench_cold_start(function: str, repeats: int) -> dict[str, Any]:
    source = ROOT / "functions" / function
    code = "import main"
    first_event = f"import main, shared.services.{HANDLERS[function]}"
    baseline, ours, empty, wired = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        (build / "main.py").write_text((source / "main.py").read_text())
        subprocess.run(["cp", "-r", str(ROOT / "shared"), str(build / "shared")], check=True)
        for _ in range(repeats):
            empty.append(_import_seconds("pass", build))
            ours.append(_import_seconds(code, build))
            baseline.append(_import_seconds(CLIENTS, build))
            wired.append(_import_seconds(first_event, build))
    e = statistics.median(empty)
    o, b = statistics.median(ours) - e, statistics.median(baseline) - e
    w = statistics.median(wired) - e
    return {"function": function, "import_main_ms": round(o * 1000), "five_clients_ms": round(b * 1000),
            "ratio": round(o / b, 3), "with_shared_core_ms": round(w * 1000),
            "with_shared_core_ratio": round(w / b, 3), "interpreter_ms": round(e * 1000)}  # fmt: skip


# -- 4. health check ------------------------------------------------------------------------
class CountingWarehouse:
    """Counts the warehouse calls a check makes (each is one query or API request)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return call


def _health_settings(root: Path, tables: list[str]) -> Any:
    return parse_settings({
        "local": {"root": str(root)},
        "backups": {"bucket": "bench-bucket", "tables": tables[:1]},
        "health": {"freshness": {"tables": [{"table": t} for t in tables]}, "pipeline": None},
    })  # fmt: skip


def bench_health(big: int) -> dict[str, Any]:
    from shared.composition import build_adapters
    from shared.services.health import HealthDeps, HealthRequest, run_health
    from shared.services.seed import demo_tables, seed_demo

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        demo = [str(t.ref) for t in demo_tables()]
        settings = _health_settings(Path(tmp), demo)
        adapters = build_adapters(settings, "local")
        seed_demo(adapters.warehouse)  # type: ignore[arg-type]
        counting = CountingWarehouse(adapters.warehouse)
        deps = HealthDeps(settings, counting, adapters.store)  # type: ignore[arg-type]
        run_health(HealthRequest("quick"), deps)
        out["tables"] = len(demo)
        out["datasets"] = len({t.split(".")[0] for t in demo})
        out["warehouse_calls_quick"] = dict(counting.calls)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            run_health(
                HealthRequest("quick"), HealthDeps(settings, adapters.warehouse, adapters.store)
            )
            times.append(time.perf_counter() - t0)
        out["quick_ms_13"] = round(statistics.median(times) * 1000, 1)
        adapters.close()
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"ds{i % 5}.table_{i:04d}" for i in range(big)]
        settings = _health_settings(Path(tmp), names)
        adapters = build_adapters(settings, "local")
        wh: Any = adapters.warehouse
        for name in names:
            ref = TableRef.parse(name)
            wh.create_table(
                ref,
                TableSpec(
                    (SchemaField("game_date", "DATE"), SchemaField("v", "INT64")),
                    time_partitioning={"type": "DAY", "field": "game_date"},
                ),
            )
            wh.execute(
                f"INSERT INTO {ref.dataset}.{ref.table} SELECT DATE '2026-01-01' + i::INT, i FROM range(50) r(i)"
            )
        counting = CountingWarehouse(wh)
        run_health(
            HealthRequest("quick", ("freshness",)), HealthDeps(settings, counting, adapters.store)
        )
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            run_health(HealthRequest("quick", ("freshness",)), HealthDeps(settings, wh, adapters.store),
                       timeout=120)  # fmt: skip
            times.append(time.perf_counter() - t0)
        out[f"quick_ms_{big}"] = round(statistics.median(times) * 1000, 1)
        out[f"warehouse_calls_{big}"] = dict(counting.calls)
        adapters.close()
    out["big"] = big
    return out


def bench_restore(repeats: int) -> dict[str, Any]:
    """The demo's 13 tables: restore (all, concurrently) against their backup, same run."""
    from shared.composition import build_adapters
    from shared.events import BackupRequest
    from shared.services.backup import BackupDeps, run_backup_to_end
    from shared.services.restore import RestoreDeps, restore_run
    from shared.services.seed import demo_tables, seed_demo

    backups, restores, slowest, smallest = [], [], [], []
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            settings = parse_settings({
                "local": {"root": tmp},
                "backups": {"bucket": "bench-bucket", "poll_interval_seconds": 0.05,
                            "tables": [str(t.ref) for t in demo_tables()]},
            })  # fmt: skip
            a = build_adapters(settings, "local")
            seeded = seed_demo(a.warehouse)  # type: ignore[arg-type]
            t0 = time.perf_counter()
            outcome = run_backup_to_end(
                BackupRequest(),
                BackupDeps(settings.backups, a.warehouse, a.store, a.publisher, "local"),
            )
            backups.append(time.perf_counter() - t0)
            assert outcome.manifest is not None and outcome.manifest.status == "complete"
            deps = RestoreDeps(a.warehouse, a.store, "bench-bucket", "backups",
                               max_concurrent=16, poll_interval=0.2)  # fmt: skip
            t0 = time.perf_counter()
            report = restore_run(outcome.run_id, deps, target_dataset=f"restored_{i}")
            restores.append(time.perf_counter() - t0)
            assert report.ok, report
            slowest.append(max(t.seconds or 0 for t in report.tables))
            small = min(report.tables, key=lambda t: t.rows_expected or 0)
            smallest.append(
                (small.source, small.rows_expected, small.seconds, small.elapsed_seconds)
            )
            a.close()
    return {
        "tables": len(seeded),
        "rows": sum(s.rows for s in seeded),
        "backup_s": round(statistics.median(backups), 2),
        "restore_s": round(statistics.median(restores), 2),
        "ratio": round(statistics.median(restores) / statistics.median(backups), 2),
        "slowest_table_own_s": round(statistics.median(slowest), 2),
        "smallest_table": {
            "table": smallest[-1][0],
            "rows": smallest[-1][1],
            "own_s": round(smallest[-1][2] or 0, 3),
            "elapsed_s": round(smallest[-1][3] or 0, 3),
        },
        "repeats": repeats,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--output", default=None)
    p.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    args = p.parse_args()
    quick = args.quick
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    print("orchestration ...", flush=True)
    results["orchestration"] = bench_orchestration(latency=0.5 if quick else 2.0)
    print(results["orchestration"], flush=True)
    print("cold start ...", flush=True)
    results["cold_start"] = [
        bench_cold_start(fn, 3 if quick else 7) for fn in ("backup_export", "health_check")
    ]
    print(results["cold_start"], flush=True)
    print("health ...", flush=True)
    results["health"] = bench_health(100 if quick else 500)
    print(results["health"], flush=True)
    print("restore ...", flush=True)
    results["restore"] = bench_restore(1 if quick else 3)
    print(results["restore"], flush=True)
    print("export speed ...", flush=True)
    results["export"] = bench_export(100_000 if quick else 1_000_000, 1 if quick else 3)
    print(results["export"], flush=True)
    print("export memory ...", flush=True)
    results["memory"] = bench_memory(200_000 if quick else 5_000_000)
    print(results["memory"], flush=True)
    if args.output:
        write_markdown(Path(args.output), results)
    print(json.dumps(results, indent=2))


def write_markdown(path: Path, r: dict[str, Any]) -> None:
    o, e, m = r["orchestration"], r["export"], r["memory"]
    cold = r["cold_start"]
    lines = [
        "# Benchmarks",
        "",
        "Reproduce: `make bench` (runs `python bench/run.py --output BENCHMARKS.md`).",
        f"Last run: {r['when']} on {r['machine']}. Ratios compare two things measured in the",
        "same run (interleaved where repeated), so machine noise affects both sides.",
        "",
        "| benchmark | opsuite | baseline | ratio | goal |",
        "|---|---|---|---|---|",
        f"| backup orchestration, {o['tables']} tables × {o['latency_s']} s simulated extract | "
        f"{o['opsuite_s']} s | {o['sequential_s']} s sequential (the shell script's way) | "
        f"**{o['ratio']} ×** | ≤ 0.15 × |",
        f"| local export, {e['rows']:,} pipeline-like rows → AVRO+SNAPPY | {e['opsuite_export_s']} s | "
        f"{e['fastavro_from_duckdb_s']} s fastavro reading the same table from DuckDB | "
        f"**{e['speed_vs_fastavro_from_duckdb']} × its speed** | ≥ 0.8 × |",
        f"| (same, stricter baseline) | {e['opsuite_export_s']} s | "
        f"{e['fastavro_write_only_s']} s fastavro writing rows already in memory (no read) | "
        f"{e['speed_vs_fastavro_write_only']} × its speed | ≥ 0.8 × not met |",
        f"| local export peak RSS, {m['rows']:,} rows | **{m['peak_rss_mb']} MB** "
        f"({m['files']} files, {m['seconds']} s) | | | ≤ 300 MB |",
    ]
    for c in cold:
        lines.append(
            f"| cold start: `import main` of functions/{c['function']} | {c['import_main_ms']} ms | "
            f"{c['five_clients_ms']} ms importing the five google-cloud clients | **{c['ratio']} ×** | ≤ 0.5 × |"
        )
        lines.append(
            f"| (same, plus the shared core the first event imports) | {c['with_shared_core_ms']} ms | "
            f"{c['five_clients_ms']} ms | {c['with_shared_core_ratio']} × | |"
        )
    rs = r["restore"]
    sm = rs["smallest_table"]
    lines.append(
        f"| restore of the demo's {rs['tables']} tables ({rs['rows']:,} rows), all at once | "
        f"{rs['restore_s']} s | {rs['backup_s']} s backing the same tables up | "
        f"**{rs['ratio']} ×** | ≤ 2 × (was 17–22 s vs ≈ 2 s) |"
    )
    lines.append(
        f"| (recovery time reported per table) | slowest table {rs['slowest_table_own_s']} s own work; "
        f"smallest ({sm['table']}, {sm['rows']} rows) {sm['own_s']} s own, {sm['elapsed_s']} s wall | | | "
        "own work, not others' waits |"
    )
    h = r["health"]
    lines += [
        f"| health quick check, {h['tables']}-table config: metadata calls | "
        f"**{h['warehouse_calls_quick'].get('dataset_metadata', 0)}** `dataset_metadata` calls "
        f"(+{h['warehouse_calls_quick'].get('ping', 0)} ping); on GCP 0 billed queries, "
        f"{h['tables']} free `tables.get` | {h['datasets']} datasets | | one call per dataset, "
        "no billed query |",
        f"| health quick check wall time, local stack | {h['quick_ms_13']} ms for {h['tables']} tables, "
        f"{h['quick_ms_' + str(h['big'])]} ms for {h['big']} tables "
        f"({h['warehouse_calls_' + str(h['big'])].get('dataset_metadata', 0)} `dataset_metadata` calls) | | | |",
    ]
    lines += [
        "",
        "Notes",
        "- Orchestration: a simulated BigQuery whose extract jobs finish after the given latency;",
        "  opsuite runs the real backup service (claim, jobs, polling, verification, manifest)",
        "  with the default `max_concurrent_jobs: 16`; the baseline submits and waits for each",
        "  table in turn with the same polling.",
        "- Export: the local warehouse streams DuckDB in batches (≤ 20,000 rows, sized from the",
        "  bytes per row so shards rotate close to `max_file_bytes`) and pushes DATE and TIMESTAMP",
        "  conversion into SQL. Against fastavro fed rows that are already Python objects it is",
        "  slower: reading 1 M rows out of DuckDB into Python costs about half of fastavro's own",
        "  encoding time, and no thread can overlap it under the GIL (tried: slower). Closing that",
        "  gap needs a columnar Avro encoder or one process per shard range (see the README).",
        "- Memory: the 5 M-row export runs in a fresh process; peak RSS is its `VmHWM` (includes",
        "  DuckDB's buffers). Not `ru_maxrss`: Linux carries the parent's high-water mark across",
        "  fork + exec, which once reported the benchmark driver's own 1.1 GB here.",
        "- Restore: the demo's tables restored all at once into a new dataset (staging table,",
        "  file checks, row check, swap per table) against backing the same tables up, median",
        "  of the repeats. Before this change the same restore took 18.0-21.0 s against a",
        "  2.1-2.4 s backup, its 90-row table reporting 2.6-4.2 s (measured once with the",
        "  previous commit, 46e0448, via `git archive` into /tmp beside this tree): NUMERIC",
        "  columns went through a Python UDF at ~360 us a value under the GIL; now one SQL cast.",
        "- Health on GCP (request level, through the emulator shim): quick mode with 13 tables",
        "  = 0 queries and 14 requests (was 1 billed INFORMATION_SCHEMA query); 1500 tables = 0",
        "  queries and 1501 requests; full mode adds PARTITIONS in queries of <= 1000 tables (1500",
        "  tables: 2 queries; the old single query would be refused past 1000 tables).",
        "- Cold start: median wall time of a fresh interpreter importing the function's `main.py`",
        "  (with `shared/` beside it, as deployed) minus an empty interpreter, against the same for",
        "  the five clients. The function imports google-cloud lazily, on first use.",
        "",
        "Raw results:",
        "",
        "```json",
        json.dumps(r, indent=2),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
