"""Demo data shaped like the NBA stats pipeline, for the local warehouse.

Thirteen tables over four datasets (Phase 3 analytics, Phase 4 precompute,
orchestration, predictions) with the types the backups must carry: DATE
partitions, TIMESTAMP, NUMERIC, REPEATED, RECORD. Rows are generated inside DuckDB
from a reference time (``now``) with ``hash()``, so the data is the same every time for
the same ``now``.

The warehouse holds :data:`DAYS` days of history, enough for the SLA evaluator to
back-fill 28 days of evaluations (every time below is relative to ``now``):

- Loads: each table is loaded in two waves a day (early and late games, 3 h apart, each
  up to 30 min early), so in normal operation no table is ever 22 h old. The newest
  load is ``stale_hours`` before ``now``. Three tables are stale now (> 24 h): the
  upcoming player context (30 h: its job stopped running), shot zones (75 h: their
  processor has failed since) and prediction accuracy (40 h: the grader has failed
  since). Two weeks ago (:data:`LATE_DAY`) team defense zones loaded 10 h late: a 31 h
  gap, the one freshness breach in the past.
- Runs: every processor runs several times a day (:data:`SCHEDULE`); about 2 % fail at
  random (never in the newest 24 h, which the health check reads); the processors in
  :data:`FAILING` fail every run since :data:`FAILING_SINCE_HOURS`; and on
  :data:`EPISODE_DAY` phase 4 hit a quota for about three hours, retried every 30 min.
- Accuracy: the daily mean absolute error drifts from about 4.1 (28 days ago) to 4.8
  (the last days), so the 7-day MAE crosses the 4.5 bound about ten days before ``now``;
  about 4 % of the rows are players who did not play (``actual_points`` NULL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.adapters.local.warehouse import LocalWarehouse, qualified
from shared.identifiers import TableRef
from shared.models import SchemaField, TableSpec

PLAYERS = 180
TEAMS = ["ATL", "BOS", "BKN", "CHA", "CHI", "CLE", "DAL", "DEN", "DET", "GSW", "HOU", "IND",
         "LAC", "LAL", "MEM", "MIA", "MIL", "MIN", "NOP", "NYK", "OKC", "ORL", "PHI", "PHX",
         "POR", "SAC", "SAS", "TOR", "UTA", "WAS"]  # fmt: skip
#: days of history (the SLA evaluator back-fills 28 days and reads 29 days of loads)
DAYS = 30
DAY_SECONDS = 86400

# -- loads ---------------------------------------------------------------------------------
#: hours between a day's two load waves (early games, then late games)
WAVE_GAP_HOURS = 3.0
#: each load instant but the newest comes up to this much earlier than its schedule
WAVE_JITTER_SECONDS = 1800
#: the past freshness breach: that day's loads of :data:`LATE_TABLE` ran LATE_HOURS late
LATE_DAY = 14
LATE_HOURS = 10.0
LATE_TABLE = "team_defense_zone_analysis"
#: games of US date D are played between about 23:00 UTC on D and 04:00 UTC on D+1: a
#: load holds the games finished by then (post-game: the date 28 h before it) or those
#: of tonight (the US date: 6 h before it). 28 h also keeps the newest graded date of the
#: stale prediction_accuracy inside the health check's 3-day lookback.
POST_GAME_LAG_HOURS = 28.0
TONIGHT_LAG_HOURS = 6.0

# -- runs ----------------------------------------------------------------------------------
#: minutes into each "day" (the 24 h ending ``k`` days before ``now``) each processor starts,
#: plus up to 15 min jitter: between 75 and 1375, so no run is within an hour of the edge
#: of the health check's 24 h window and every newest-day run is inside it
SCHEDULE: dict[str, tuple[str, tuple[int, ...]]] = {
    "nbac_gamebook_processor": ("phase_2", tuple(75 + 90 * n for n in range(15))),
    "bdl_boxscores_processor": ("phase_2", tuple(100 + 90 * n for n in range(15))),
    "player_game_summary_processor": ("phase_3", (110, 290, 650, 1190)),
    "team_offense_game_summary_processor": ("phase_3", (115, 295, 655, 1195)),
    "upcoming_player_game_context_processor": ("phase_3", (470, 710, 890, 1070, 1250, 1350)),
    "player_shot_zone_analysis_processor": ("phase_4", (140, 320, 680)),
    "player_daily_cache_processor": ("phase_4", (145, 325, 685)),
    "ml_feature_store_processor": ("phase_4", (150, 330, 690)),
    "prediction_coordinator": ("phase_5", (720, 980, 1130, 1280)),
    "prediction_grader": ("phase_5", (170, 350, 560, 1340)),
}
PROCESSORS = [(name, phase) for name, (phase, _) in SCHEDULE.items()]
#: processors whose recent runs fail in the demo (the "errors" view has something to
#: show): every run since this many hours before ``now``. The grader's newest run is the
#: newest failure, so the health check's recent errors always name it.
FAILING_SINCE_HOURS = {
    "player_shot_zone_analysis_processor": 75.0,
    "prediction_grader": 40.0,
}
FAILING = frozenset(FAILING_SINCE_HOURS)
#: processors that stopped running (a paused job: only freshness can see it)
STOPPED_SINCE_HOURS = {"upcoming_player_game_context_processor": 30.0}
#: random failures: per mille of the runs older than 24 h
RANDOM_FAILURES_PER_MILLE = 20
#: the bad episode: on this day, phase 4 runs scheduled in these minutes fail, and each
#: processor is retried every EPISODE_RETRY_MINUTES until the last retry succeeds
EPISODE_DAY = 9
EPISODE_PHASE = "phase_4"
EPISODE_MINUTES = (135, 300)
EPISODE_RETRY_MINUTES = 30
EPISODE_RETRIES = 6

# -- accuracy ------------------------------------------------------------------------------
#: daily MAE: MAE_OLD from MAE_DRIFT_DAYS + MAE_RECENT_DAYS days ago, linearly up to MAE_NEW
#: MAE_RECENT_DAYS days ago, flat since; per system offsets (they average to zero)
MAE_OLD, MAE_NEW, MAE_RECENT_DAYS, MAE_DRIFT_DAYS = 4.1, 4.8, 2, 26
SYSTEMS = {"xgboost_v1": -0.15, "moving_average": 0.35, "similarity_balanced": 0.05,
           "ensemble_v1": -0.25}  # fmt: skip
#: predictions graded per game date: 120 players x the 4 systems
GRADED_PER_DAY = 120 * len(SYSTEMS)
#: per cent of the graded rows that are players who did not play (no actual points)
DID_NOT_PLAY_PERCENT = 4

Source = Literal["loads", "runs", "events"]


def F(
    name: str, type_: str, mode: str = "NULLABLE", *fields: SchemaField, desc: str = ""
) -> SchemaField:
    return SchemaField(name, type_, mode, tuple(fields), desc or None)


@dataclass(frozen=True)
class DemoTable:
    """One demo table.

    ``source`` "loads": ``per_day`` rows for each of ``days`` days, loaded in ``waves``
    instants a day, the newest ``stale_hours`` before ``now``; a day's ``game_date`` is
    the UTC date ``game_lag_hours`` before its first wave. The column expressions see
    ``i`` (row), ``k`` (days back), ``j`` (row within the day), ``h`` (the row's hash),
    ``game_date``, ``processed_at`` (its load instant) and ``today``, then each of
    ``derived`` in order. "runs" and "events" are the orchestration history
    (:data:`SCHEDULE`); ``per_day`` and ``stale_hours`` are then unused.
    """

    dataset: str
    name: str
    description: str
    per_day: int
    stale_hours: float  # age of the newest load
    columns: tuple[tuple[SchemaField, str], ...]
    partition_field: str | None = "game_date"
    clustering: tuple[str, ...] = ()
    days: int = DAYS
    waves: int = 2
    derived: tuple[tuple[str, str], ...] = ()
    source: Source = "loads"
    #: a day's rows are for the UTC date this long before its first wave (0: the date the
    #: load ran, e.g. an analysis date)
    game_lag_hours: float = 0.0

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
            PLAYERS,
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
            game_lag_hours=POST_GAME_LAG_HOURS,
        ),
        DemoTable(
            "nba_analytics",
            "team_offense_game_summary",
            "Phase 3: team offense per game",
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
            game_lag_hours=POST_GAME_LAG_HOURS,
        ),
        DemoTable(
            "nba_analytics",
            "team_defense_game_summary",
            "Phase 3: team defense per game",
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
            game_lag_hours=POST_GAME_LAG_HOURS,
        ),
        DemoTable(
            "nba_analytics",
            "upcoming_player_game_context",
            "Phase 3: context for tonight's games (stale: its job stopped)",
            90,
            STOPPED_SINCE_HOURS["upcoming_player_game_context_processor"],
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
            game_lag_hours=TONIGHT_LAG_HOURS,
        ),
        DemoTable(
            "nba_analytics",
            "upcoming_team_game_context",
            "Phase 3: team context for tonight's games",
            30,
            5.5,
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (F("team_abbr", "STRING", "REQUIRED"), TEAM),
                (F("is_home", "BOOL"), "h % 2 = 0"),
                (F("back_to_back", "BOOL"), "h % 5 = 0"),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            game_lag_hours=TONIGHT_LAG_HOURS,
        ),
        DemoTable(
            "nba_precompute",
            "player_composite_factors",
            "Phase 4: composite factors",
            120,
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
            "Phase 4: shot zones (stale: its processor fails)",
            60,
            FAILING_SINCE_HOURS["player_shot_zone_analysis_processor"],
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
            30,
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
            90,
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
            120,
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
            0,
            0.0,
            (
                (F("run_id", "STRING", "REQUIRED"), "'run_' || lpad(CAST(i AS VARCHAR), 6, '0')"),
                (F("processor_name", "STRING", "REQUIRED"), "processor_name"),
                (F("phase", "STRING", "REQUIRED"), "phase"),
                (F("data_date", "DATE"), "data_date"),
                (F("status", "STRING", "REQUIRED"), "status"),
                (F("started_at", "TIMESTAMP", "REQUIRED"), "started_at"),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
                (F("duration_seconds", "FLOAT64"), "CAST(duration AS DOUBLE)"),
                (
                    F("records_processed", "INT64"),
                    "CASE WHEN status = 'success' THEN CAST(h % 5000 AS BIGINT) ELSE 0 END",
                ),
                (
                    F("error_message", "STRING"),
                    "CASE WHEN status = 'failed' THEN error_type || ': ' || error_text END",
                ),
                (
                    F(
                        "errors",
                        "RECORD",
                        "REPEATED",
                        F("error_type", "STRING"),
                        F("message", "STRING"),
                    ),
                    "CASE WHEN status = 'failed' THEN "
                    "[{'error_type': error_type, 'message': error_text}] ELSE [] END",
                ),
            ),
            partition_field="data_date",
            clustering=("processor_name",),
            source="runs",
        ),
        DemoTable(
            "nba_orchestration",
            "pipeline_event_log",
            "Orchestration: phase transitions",
            0,
            0.0,
            (
                (F("event_id", "STRING", "REQUIRED"), "'evt_' || CAST(i AS VARCHAR)"),
                (F("event_type", "STRING"), "event_type"),
                (F("phase", "STRING"), "phase"),
                (F("game_date", "DATE"), GAME_DATE),
                (
                    F("payload", "JSON"),
                    '\'{"attempt": \' || CAST(attempt AS VARCHAR) || \', "run_id": "\' '
                    '|| run_id || \'", "processor": "\' || processor_name || \'"}\'',
                ),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            source="events",
        ),
        DemoTable(
            "nba_predictions",
            "prediction_accuracy",
            "Phase 5: graded predictions (stale: the grader fails)",
            GRADED_PER_DAY,
            FAILING_SINCE_HOURS["prediction_grader"],
            (
                (F("game_date", "DATE", "REQUIRED"), GAME_DATE),
                (
                    F("player_lookup", "STRING", "REQUIRED"),
                    f"'player_' || lpad(CAST((j // {len(SYSTEMS)} + 37 * k) % {PLAYERS} "
                    "AS VARCHAR), 3, '0')",
                ),
                (F("system_id", "STRING", "REQUIRED"), _s(list(SYSTEMS), "j")),
                (F("predicted_points", "NUMERIC"), "predicted"),
                (F("actual_points", "INT64"), "CASE WHEN dnp THEN NULL ELSE actual END"),
                (
                    F("absolute_error", "NUMERIC"),
                    "CASE WHEN dnp THEN NULL "
                    "ELSE abs(predicted - CAST(actual AS DECIMAL(38,9))) END",
                ),
                (
                    F("prediction_correct", "BOOL"),
                    "CASE WHEN dnp THEN NULL ELSE (h // 11) % 100 < 56 END",
                ),
                (F("graded_at", "TIMESTAMP"), PROCESSED),
                (F("processed_at", "TIMESTAMP", "REQUIRED"), PROCESSED),
            ),
            clustering=("system_id",),
            derived=_accuracy_derived(),
            game_lag_hours=POST_GAME_LAG_HOURS,
        ),
    ]


def _accuracy_derived() -> tuple[tuple[str, str], ...]:
    """Per graded row: the day's target MAE (drift, system offset, a little daily noise),
    an absolute error drawn so each day's mean is that target, and the points."""
    offsets = ", ".join(str(v) for v in SYSTEMS.values())
    n = GRADED_PER_DAY
    # two permutations of the day's rows (7 and 11 are coprime with n): u1 + u2 averages
    # exactly 1 over a day, so the day's MAE is its target, not its target plus noise
    spread = (
        f"(((j * 7 + k * 13) % {n} + 0.5) / {n}.0 + ((j * 11 + k * 17 + 5) % {n} + 0.5) / {n}.0)"
    )
    return (
        (
            "mae",
            f"{MAE_NEW} - {MAE_NEW - MAE_OLD:.6f} * least(greatest(today - game_date "
            f"- {MAE_RECENT_DAYS}, 0), {MAE_DRIFT_DAYS}) / {MAE_DRIFT_DAYS}.0 "
            f"+ [{offsets}][1 + (j % {len(SYSTEMS)})::INTEGER] "
            "+ (CAST(hash(game_date) % 7 AS INTEGER) - 3) / 100.0",
        ),
        ("err", f"round(mae * {spread}, 1)"),
        ("actual", "CAST((h // 1000) % 36 AS BIGINT)"),
        ("dnp", f"(h // 7) % 100 < {DID_NOT_PLAY_PERCENT}"),
        (
            "predicted",
            "CAST(CASE WHEN actual >= err AND (h // 3) % 2 = 0 THEN actual - err "
            "ELSE actual + err END AS DECIMAL(38,9))",
        ),
    )


#: a scratch table the example config excludes by glob (tmp_*), to show exclusion
SCRATCH = DemoTable("nba_precompute", "tmp_feature_backfill", "Scratch: excluded from backups",
                    20, 2.0, (
    (F("game_date", "DATE"), GAME_DATE),
    (F("note", "STRING"), "'scratch'"),
), partition_field=None, days=5, waves=1)  # fmt: skip


@dataclass(frozen=True)
class SeededTable:
    ref: TableRef
    rows: int
    newest: datetime


def _at(now: datetime) -> str:
    """``now`` as a DuckDB TIMESTAMPTZ literal (whole seconds, UTC)."""
    return f"TIMESTAMPTZ '{now.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')}+00'"


def _ago(now_sql: str, seconds: str) -> str:
    return f"{now_sql} - to_seconds(CAST({seconds} AS BIGINT))"


def _loads_sql(table: DemoTable, now: datetime) -> str:
    """``per_day`` rows a day over ``days`` days, each row in one of the day's waves: day k
    wave w was loaded ``stale_hours + 24 k + WAVE_GAP_HOURS w`` hours before now, up to
    WAVE_JITTER_SECONDS earlier (the newest load exactly on time)."""
    at = _at(now)
    name = table.name
    stale = int(table.stale_hours * 3600)
    late = (
        f"CASE WHEN k = {LATE_DAY} THEN {int(LATE_HOURS * 3600)} ELSE 0 END"
        if name == LATE_TABLE
        else "0"
    )
    age = (
        f"k * {DAY_SECONDS} + {stale} + w * {int(WAVE_GAP_HOURS * 3600)} "
        f"+ CASE WHEN k = 0 AND w = 0 THEN 0 "
        f"ELSE hash(k, w, '{name}') % {WAVE_JITTER_SECONDS} END - {late}"
    )
    earliest = stale + (table.waves - 1) * int(WAVE_GAP_HOURS * 3600) + WAVE_JITTER_SECONDS
    game_day = _ago(at, f"b.k * {DAY_SECONDS} + {earliest + int(table.game_lag_hours * 3600)}")
    return (
        f"SELECT b.*, l.processed_at, CAST({at} AS DATE) AS today, "
        f"CAST({game_day} AS DATE) AS game_date FROM ("
        f"SELECT i, i // {table.per_day} AS k, i % {table.per_day} AS j, hash(i, '{name}') AS h "
        f"FROM range({table.per_day * table.days}) r(i)) b JOIN ("
        f"SELECT k, w, {_ago(at, age)} AS processed_at "
        f"FROM range({table.days}) d(k), range({table.waves}) v(w)) l "
        f"ON l.k = b.k AND l.w = (b.j + b.k) % {table.waves}"
    )


def _values(rows: list[tuple[Any, ...]]) -> str:
    def literal(v: Any) -> str:
        return "'" + v + "'" if isinstance(v, str) else str(int(v))

    return "VALUES " + ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


def _runs_sql(now: datetime) -> str:
    """Every scheduled run of :data:`SCHEDULE` over :data:`DAYS` days, plus the episode's
    retries; a run's status and error follow from when and what it ran."""
    at = _at(now)
    slots = [(p, phase, m) for p, (phase, minutes) in SCHEDULE.items() for m in minutes]
    first, last = EPISODE_MINUTES
    retries = [first + EPISODE_RETRY_MINUTES * (r + 1) for r in range(EPISODE_RETRIES)]
    episode_processors = [p for p, phase in PROCESSORS if phase == EPISODE_PHASE]
    planned = (
        f"SELECT s.processor_name, s.phase, d.k, s.minute, 1 AS attempt "
        f"FROM ({_values(slots)}) s(processor_name, phase, minute), range({DAYS}) d(k) "
        f"UNION ALL SELECT e.processor_name, '{EPISODE_PHASE}', {EPISODE_DAY}, r.minute, "
        f"r.attempt FROM ({_values([(p,) for p in episode_processors])}) e(processor_name), "
        f"({_values([(m, n + 2) for n, m in enumerate(retries)])}) r(minute, attempt)"
    )
    timed = (
        "SELECT *, "
        + _ago(at, f"(k + 1) * {DAY_SECONDS} - minute * 60 - h % 900")
        + " AS started_at, 30 + (h // 900) % 600 AS duration FROM ("
        f"SELECT *, hash(processor_name, k, minute, attempt) AS h FROM ({planned}))"
    )
    stopped = " AND ".join(
        f"NOT (processor_name = '{p}' AND started_at > {_ago(at, str(int(hours * 3600)))})"
        for p, hours in STOPPED_SINCE_HOURS.items()
    )
    failing = " ".join(
        f"WHEN processor_name = '{p}' AND started_at > {_ago(at, str(int(hours * 3600)))} "
        f"THEN '{p}'"
        for p, hours in FAILING_SINCE_HOURS.items()
    )
    cause = (
        f"CASE {failing} WHEN k = {EPISODE_DAY} AND phase = '{EPISODE_PHASE}' "
        f"AND minute >= {first} AND minute < {last} THEN 'episode' "
        f"WHEN started_at < {_ago(at, str(DAY_SECONDS))} "
        f"AND (h // 7) % 1000 < {RANDOM_FAILURES_PER_MILLE} THEN 'random' END"
    )
    today_runs = "('upcoming_player_game_context_processor', 'prediction_coordinator')"
    caused = (
        f"SELECT *, {cause} AS cause, CAST(started_at AS DATE) - CASE WHEN processor_name "
        f"IN {today_runs} THEN 0 ELSE 1 END AS data_date FROM ({timed}) WHERE {stopped}"
    )
    error_type = (
        "CASE cause WHEN 'player_shot_zone_analysis_processor' THEN 'SchemaMismatch' "
        "WHEN 'prediction_grader' THEN 'DependencyNotReady' "
        "WHEN 'episode' THEN 'QuotaExceeded' ELSE "
        + _s(["TransientError", "Timeout", "DependencyNotReady"], "(h // 5)")
        + " END"
    )
    error_text = (
        "CASE cause WHEN 'player_shot_zone_analysis_processor' THEN "
        "'column shot_distance_ft not found in nba_raw.bigdataball_play_by_play' "
        "WHEN 'prediction_grader' THEN 'upstream table nba_raw.nbac_player_boxscores has "
        "no final scores for ' || strftime(data_date, '%Y-%m-%d') "
        "WHEN 'episode' THEN 'BigQuery: your project exceeded quota for concurrent queries' "
        "ELSE ["
        "'BigQuery 503 backendError, the job will be retried', "
        "'the processor exceeded its 540 s deadline', "
        "'upstream partition ' || strftime(data_date, '%Y-%m-%d') || ' is not complete yet'"
        "][1 + ((h // 5) % 3)::INTEGER] END"
    )
    return (
        "SELECT row_number() OVER (ORDER BY started_at, processor_name) AS i, *, "
        "started_at + to_seconds(CAST(duration AS BIGINT)) AS processed_at, "
        "CASE WHEN cause IS NULL THEN 'success' ELSE 'failed' END AS status, "
        f"{error_type} AS error_type, {error_text} AS error_text FROM ({caused})"
    )


#: the runs that mark a phase's start and end in the event log
PHASE_LEADS = (
    "nbac_gamebook_processor",
    "player_game_summary_processor",
    "player_shot_zone_analysis_processor",
    "prediction_coordinator",
    "prediction_grader",
)


def _events_sql(runs: TableRef) -> str:
    """A phase_started and a phase_completed (or phase_failed) event around each run of a
    phase's lead processor, read back from the run history just written."""
    leads = ", ".join(f"'{p}'" for p in PHASE_LEADS)
    source = (
        f"SELECT run_id, processor_name, phase, data_date, status, started_at, processed_at, "
        f"1 + (hash(run_id) % 3)::INTEGER AS attempt "
        f"FROM {qualified(runs)} WHERE processor_name IN ({leads})"
    )
    return (
        "SELECT row_number() OVER (ORDER BY processed_at, event_type DESC, phase) AS i, * "
        "FROM (SELECT 'phase_started' AS event_type, phase, data_date AS game_date, "
        "started_at - INTERVAL 30 SECOND AS processed_at, run_id, processor_name, attempt "
        f"FROM ({source}) UNION ALL SELECT CASE WHEN status = 'success' THEN "
        "'phase_completed' ELSE 'phase_failed' END, phase, data_date, "
        "processed_at + INTERVAL 30 SECOND, run_id, processor_name, attempt "
        f"FROM ({source}))"
    )


def _rows_sql(table: DemoTable, now: datetime) -> str:
    if table.source == "runs":
        sql = _runs_sql(now)
    elif table.source == "events":
        sql = _events_sql(TableRef(table.dataset, "processor_run_history"))
    else:
        sql = _loads_sql(table, now)
    for alias, expr in table.derived:
        sql = f"SELECT *, {expr} AS {alias} FROM ({sql})"
    return sql


def seed_demo(warehouse: LocalWarehouse, now: datetime | None = None) -> list[SeededTable]:
    """(Re)create the demo tables. Idempotent: running it again rebuilds the same data."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
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
        target = qualified(table.ref)
        warehouse.execute(
            f"INSERT INTO {target} ({columns}) SELECT {exprs} FROM ({_rows_sql(table, now)})"
        )
        loaded = any(f.name == PROCESSED for f, _ in table.columns)
        rows, newest = warehouse.execute(
            f"SELECT count(*), {'max(processed_at)' if loaded else 'NULL'} FROM {target}"
        )[0]
        # the table was last modified by its newest load
        modified = newest.astimezone(UTC) if newest else now - timedelta(hours=table.stale_hours)
        warehouse.touch(table.ref, modified)
        seeded.append(SeededTable(table.ref, int(rows), modified))
    return seeded


def describe(seeded: list[SeededTable]) -> list[dict[str, Any]]:
    return [{"table": str(s.ref), "rows": s.rows, "newest": s.newest.isoformat()} for s in seeded]
