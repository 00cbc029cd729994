"""Demo data shaped like the NBA stats pipeline, for the local warehouse.

Thirteen tables over four datasets (Phase 3 analytics, Phase 4 precompute,
orchestration, predictions) with the types the backups must carry: DATE
partitions, TIMESTAMP, NUMERIC, REPEATED, RECORD. Rows are generated inside DuckDB
from a reference time, so the data is the same every time for the same ``now``.
Some tables are stale and some processor runs failed, on purpose: the health check
and SLA evaluator have something real to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.local.warehouse import LocalWarehouse, qualified
from shared.identifiers import TableRef
from shared.models import SchemaField, TableSpec

PLAYERS = 180
TEAMS = ["ATL", "BOS", "BKN", "CHA", "CHI", "CLE", "DAL", "DEN", "DET", "GSW", "HOU", "IND",
         "LAC", "LAL", "MEM", "MIA", "MIL", "MIN", "NOP", "NYK", "OKC", "ORL", "PHI", "PHX",
         "POR", "SAC", "SAS", "TOR", "UTA", "WAS"]  # fmt: skip
PROCESSORS = [
    ("nbac_gamebook_processor", "phase_2"),
    ("bdl_boxscores_processor", "phase_2"),
    ("player_game_summary_processor", "phase_3"),
    ("team_offense_game_summary_processor", "phase_3"),
    ("upcoming_player_game_context_processor", "phase_3"),
    ("player_shot_zone_analysis_processor", "phase_4"),
    ("player_daily_cache_processor", "phase_4"),
    ("ml_feature_store_processor", "phase_4"),
    ("prediction_coordinator", "phase_5"),
    ("prediction_grader", "phase_5"),
]
#: processors whose recent runs fail in the demo (the "errors" view has something to show)
FAILING = {"player_shot_zone_analysis_processor", "prediction_grader"}


def F(
    name: str, type_: str, mode: str = "NULLABLE", *fields: SchemaField, desc: str = ""
) -> SchemaField:
    return SchemaField(name, type_, mode, tuple(fields), desc or None)


@dataclass(frozen=True)
class DemoTable:
    dataset: str
    name: str
    description: str
    rows: int
    days: int
    stale_hours: float  # age of the newest row / last modification
    columns: tuple[tuple[SchemaField, str], ...]
    partition_field: str | None = "game_date"
    clustering: tuple[str, ...] = ()

    @property
    def ref(self) -> TableRef:
        return TableRef(self.dataset, self.name)


def _s(values: list[str], key: str = "i") -> str:
    """SQL picking one of ``values`` by a row key."""
    quoted = ", ".join("'" + v + "'" for v in values)
    return f"[{quoted}][1 + ({key} % {len(values)})::INTEGER]"


PLAYER = f"'player_' || lpad(CAST(i % {PLAYERS} AS VARCHAR), 3, '0')"
TEAM = _s(TEAMS)
OPP = _s(TEAMS, "(i + 7)")
GAME_DATE = "game_date"  # computed in the generator
PROCESSED = "processed_at"
GAME_ID = "strftime(game_date, '%Y%m%d') || '_' || " + TEAM + " || '_' || " + OPP
SOURCES = "['nbac_gamebook', 'bdl_boxscores'][1:1 + (h % 2)::INTEGER]"


def demo_tables() -> list[DemoTable]:
    stat = "CAST(h % 35 AS BIGINT)"
    num = "CAST((h % 4000) / 100.0 AS DECIMAL(38,9))"
    return [
        DemoTable(
            "nba_analytics",
            "player_game_summary",
            "Phase 3: one row per player per game",
            PLAYERS * 30,
            30,
            3.0,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("game_id", "STRING", "REQUIRED"), GAME_ID),
                (F("player_lookup", "STRING", "REQUIRED"), PLAYER),
                (F("team_abbr", "STRING"), TEAM),
                (F("points", "INT64"), stat),
                (F("minutes_played", "NUMERIC"), num),
                (F("usage_rate", "FLOAT64"), "(h % 400) / 10.0"),
                (F("data_sources", "STRING", "REPEATED"), SOURCES),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            clustering=("player_lookup", "team_abbr"),
        ),
        DemoTable(
            "nba_analytics",
            "team_offense_game_summary",
            "Phase 3: team offense per game",
            30 * 30,
            30,
            4.0,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("game_id", "STRING"), GAME_ID),
                (F("team_abbr", "STRING", "REQUIRED"), TEAM),
                (F("points_scored", "INT64"), "CAST(90 + h % 45 AS BIGINT)"),
                (
                    F("offensive_rating", "NUMERIC"),
                    "CAST(95 + (h % 3000) / 100.0 AS DECIMAL(38,9))",
                ),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            clustering=("team_abbr",),
        ),
        DemoTable(
            "nba_analytics",
            "team_defense_game_summary",
            "Phase 3: team defense per game",
            30 * 30,
            30,
            4.5,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("game_id", "STRING"), GAME_ID),
                (F("defending_team_abbr", "STRING", "REQUIRED"), TEAM),
                (F("points_allowed", "INT64"), "CAST(90 + h % 45 AS BIGINT)"),
                (
                    F("defensive_rating", "NUMERIC"),
                    "CAST(95 + (h % 3000) / 100.0 AS DECIMAL(38,9))",
                ),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
        ),
        DemoTable(
            "nba_analytics",
            "upcoming_player_game_context",
            "Phase 3: context for tonight's games",
            PLAYERS * 3,
            3,
            30.0,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("player_lookup", "STRING", "REQUIRED"), PLAYER),
                (F("opponent_team_abbr", "STRING"), OPP),
                (F("days_rest", "INT64"), "CAST(h % 4 AS BIGINT)"),
                (F("prop_line", "NUMERIC"), "CAST(5 + (h % 300) / 10.0 AS DECIMAL(38,9))"),
                (
                    F(
                        "injury",
                        "RECORD",
                        "NULLABLE",
                        F("status", "STRING"),
                        F("reported_at", "TIMESTAMP"),
                    ),
                    "CASE WHEN h % 9 = 0 THEN "
                    "{'status': 'questionable', 'reported_at': processed_at} "
                    "ELSE NULL END",
                ),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
        ),
        DemoTable(
            "nba_analytics",
            "upcoming_team_game_context",
            "Phase 3: team context for tonight's games",
            30 * 3,
            3,
            30.0,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("team_abbr", "STRING", "REQUIRED"), TEAM),
                (F("is_home", "BOOL"), "h % 2 = 0"),
                (F("back_to_back", "BOOL"), "h % 5 = 0"),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
        ),
        DemoTable(
            "nba_precompute",
            "player_composite_factors",
            "Phase 4: composite factors",
            PLAYERS * 20,
            20,
            6.0,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("player_lookup", "STRING", "REQUIRED"), PLAYER),
                (F("fatigue_score", "NUMERIC"), num),
                (F("matchup_score", "NUMERIC"), num),
                (
                    F("factors", "RECORD", "REPEATED", F("name", "STRING"), F("value", "FLOAT64")),
                    "[{'name': 'pace', 'value': (h % 100) / 10.0}, "
                    "{'name': 'rest', 'value': (h % 7) * 1.0}]",
                ),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            clustering=("player_lookup",),
        ),
        DemoTable(
            "nba_precompute",
            "player_shot_zone_analysis",
            "Phase 4: shot zones (stale)",
            PLAYERS * 10,
            10,
            75.0,
            (
                (F("analysis_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("player_lookup", "STRING", "REQUIRED"), PLAYER),
                (F("paint_rate", "NUMERIC"), "CAST((h % 1000) / 1000.0 AS DECIMAL(38,9))"),
                (F("three_pt_rate", "NUMERIC"), "CAST((h % 700) / 1000.0 AS DECIMAL(38,9))"),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            partition_field="analysis_date",
        ),
        DemoTable(
            "nba_precompute",
            "team_defense_zone_analysis",
            "Phase 4: team defense zones",
            30 * 10,
            10,
            8.0,
            (
                (F("analysis_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("team_abbr", "STRING", "REQUIRED"), TEAM),
                (F("paint_defense_rating", "NUMERIC"), num),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            partition_field="analysis_date",
        ),
        DemoTable(
            "nba_precompute",
            "player_daily_cache",
            "Phase 4: per-player daily cache",
            PLAYERS * 14,
            14,
            5.0,
            (
                (F("cache_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("player_lookup", "STRING", "REQUIRED"), PLAYER),
                (F("points_avg_last_10", "NUMERIC"), num),
                (
                    F("recent_games", "DATE", "REPEATED"),
                    "[game_date - 2, game_date - 4, game_date - 6]",
                ),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            partition_field="cache_date",
        ),
        DemoTable(
            "nba_precompute",
            "ml_feature_store_v2",
            "Phase 4: model features",
            PLAYERS * 20,
            20,
            7.0,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("player_lookup", "STRING", "REQUIRED"), PLAYER),
                (
                    F("feature_names", "STRING", "REPEATED"),
                    "['points_avg_last_5', 'minutes_avg', 'usage_rate', 'opp_def_rating']",
                ),
                (
                    F("features", "FLOAT64", "REPEATED"),
                    "[(h % 300) / 10.0, (h % 40) * 1.0, (h % 35) / 100.0, 100 + (h % 20) * 1.0]",
                ),
                (F("feature_version", "STRING"), "'v2'"),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            clustering=("player_lookup",),
        ),
        DemoTable(
            "nba_orchestration",
            "processor_run_history",
            "Orchestration: every processor run",
            len(PROCESSORS) * 4 * 13,
            13,  # coprime with the 10 processors: every one runs every day
            1.0,
            (
                (F("run_id", "STRING", "REQUIRED"), "'run_' || lpad(CAST(i AS VARCHAR), 6, '0')"),
                (F("processor_name", "STRING", "REQUIRED"), _s([p for p, _ in PROCESSORS])),
                (F("phase", "STRING", "REQUIRED"), _s([ph for _, ph in PROCESSORS])),
                (F("data_date", "DATE"), GAME_DATE),
                (F("status", "STRING", "REQUIRED"), "status"),
                (
                    F("started_at", "TIMESTAMP", "REQUIRED"),
                    "processed_at - to_seconds(CAST(30 + h % 600 AS BIGINT))",
                ),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
                (F("duration_seconds", "FLOAT64"), "CAST(30 + h % 600 AS DOUBLE)"),
                (
                    F("records_processed", "INT64"),
                    "CASE WHEN status = 'success' THEN CAST(h % 5000 AS BIGINT) ELSE 0 END",
                ),
                (
                    F("error_message", "STRING"),
                    "CASE WHEN status = 'failed' THEN 'DependencyNotReady: upstream table ' || "
                    + _s(
                        ["nba_analytics.player_game_summary", "nba_predictions.prediction_accuracy"]
                    )
                    + " || ' is stale' ELSE NULL END",
                ),
                (
                    F(
                        "errors",
                        "RECORD",
                        "REPEATED",
                        F("error_type", "STRING"),
                        F("message", "STRING"),
                    ),
                    "CASE WHEN status = 'failed' THEN [{'error_type': 'DependencyNotReady', "
                    "'message': 'upstream table ' || "
                    + _s(
                        ["nba_analytics.player_game_summary", "nba_predictions.prediction_accuracy"]
                    )
                    + " || ' is stale'}] ELSE [] END",
                ),
            ),
            partition_field="data_date",
            clustering=("processor_name",),
        ),
        DemoTable(
            "nba_orchestration",
            "pipeline_event_log",
            "Orchestration: phase transitions",
            4 * 14 * 3,
            14,
            1.5,
            (
                (F("event_id", "STRING", "REQUIRED"), "'evt_' || CAST(i AS VARCHAR)"),
                (
                    F("event_type", "STRING"),
                    _s(["phase_started", "phase_completed", "phase_failed"]),
                ),
                (
                    F("phase", "STRING"),
                    _s(["phase_2", "phase_3", "phase_4", "phase_5"], "(i // 3)"),
                ),
                (F("game_date", "DATE"), GAME_DATE),
                (F("payload", "JSON"), "'{\"attempt\": ' || CAST(1 + h % 3 AS VARCHAR) || '}'"),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
        ),
        DemoTable(
            "nba_predictions",
            "prediction_accuracy",
            "Phase 5: graded predictions",
            PLAYERS * 4 * 20,
            20,
            52.0,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("player_lookup", "STRING", "REQUIRED"), PLAYER),
                (
                    F("system_id", "STRING", "REQUIRED"),
                    _s(["xgboost_v1", "moving_average", "similarity_balanced", "ensemble_v1"]),
                ),
                (F("predicted_points", "NUMERIC"), num),
                (F("actual_points", "INT64"), stat),
                (F("absolute_error", "NUMERIC"), "CAST((h % 900) / 100.0 AS DECIMAL(38,9))"),
                (F("prediction_correct", "BOOL"), "h % 100 < 56"),
                (F("graded_at", "TIMESTAMP"), PROCESSED),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            clustering=("system_id",),
        ),
    ]


#: a scratch table the example config excludes by glob (tmp_*), to show exclusion
SCRATCH = DemoTable("nba_precompute", "tmp_feature_backfill", "Scratch: excluded from backups",
                    100, 5, 2.0, (
    (F("game_date", "DATE"), GAME_DATE),
    (F("note", "STRING"), "'scratch'"),
), partition_field=None)  # fmt: skip


@dataclass(frozen=True)
class SeededTable:
    ref: TableRef
    rows: int
    newest: datetime


def _generator(table: DemoTable, now: datetime) -> str:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    stale_seconds = int(table.stale_hours * 3600)
    failing = ", ".join(f"'{p}'" for p in sorted(FAILING))
    names = _s([p for p, _ in PROCESSORS])
    return (
        "SELECT *, CASE WHEN " + names + f" IN ({failing}) AND d < 2 THEN 'failed' "
        "WHEN h % 23 = 0 THEN 'failed' ELSE 'success' END AS status FROM ("
        f"SELECT i, d, h, CAST(TIMESTAMPTZ '{stamp}+00' AS DATE) - CAST(d AS INTEGER) "
        "- CAST(" + str(stale_seconds // 86400) + " AS INTEGER) AS game_date, "
        f"TIMESTAMPTZ '{stamp}+00' - to_seconds(CAST(d * 86400 + {stale_seconds} "
        "+ (CASE WHEN d = 0 THEN 0 ELSE h % 3600 END) AS BIGINT)) AS processed_at "
        f"FROM (SELECT i, i % {table.days} AS d, hash(i * 7919 + {len(table.name)}) AS h "
        f"FROM range({table.rows}) r(i)))"
    )


def seed_demo(warehouse: LocalWarehouse, now: datetime | None = None) -> list[SeededTable]:
    """(Re)create the demo tables. Idempotent: running it again rebuilds the same data."""
    now = now or datetime.now(UTC)
    seeded = []
    for table in [*demo_tables(), SCRATCH]:
        spec = TableSpec(
            schema=tuple(f for f, _ in table.columns),
            time_partitioning=(
                {"type": "DAY", "field": table.partition_field} if table.partition_field else None
            ),
            clustering=table.clustering,
            description=table.description,
            labels={"pipeline": "nba-props", "dataset": table.dataset},
        )
        warehouse.create_table(table.ref, spec, replace=True)
        exprs = ", ".join(expr for _, expr in table.columns)
        columns = ", ".join(f'"{f.name}"' for f, _ in table.columns)
        warehouse.execute(
            f"INSERT INTO {qualified(table.ref)} ({columns}) "
            f"SELECT {exprs} FROM ({_generator(table, now)})"
        )
        newest = now - timedelta(hours=table.stale_hours)
        warehouse.touch(table.ref, newest)
        seeded.append(SeededTable(table.ref, table.rows, newest))
    return seeded


def describe(seeded: list[SeededTable]) -> list[dict[str, Any]]:
    return [{"table": str(s.ref), "rows": s.rows, "newest": s.newest.isoformat()} for s in seeded]
