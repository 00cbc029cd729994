"""The one YAML configuration file, validated by typed models.

Unknown keys are rejected and every error names the offending path and what was
expected, e.g. ``backups.tables[2]: 'ds.t; DROP TABLE x' is not a valid table id``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from shared import identifiers
from shared.alerting_config import AlertingSettings
from shared.errors import BadInput, ConfigError
from shared.identifiers import TableRef

Backend = Literal["local", "gcp"]
ExportFormat = Literal["AVRO", "PARQUET"]
Compression = Literal["SNAPPY", "DEFLATE", "GZIP", "ZSTD", "NONE"]

ALLOWED_COMPRESSION: dict[str, frozenset[str]] = {
    "AVRO": frozenset({"SNAPPY", "DEFLATE", "NONE"}),
    "PARQUET": frozenset({"SNAPPY", "GZIP", "ZSTD", "NONE"}),
}

DEFAULT_CONFIG_PATH = "config/opsuite.yaml"
CONFIG_ENV = "OPSUITE_CONFIG"
BACKEND_ENV = "OPSUITE_BACKEND"


def _as_value_error(check: Callable[[object], str]) -> Callable[[str], str]:
    """Adapt an identifier check (raises BadInput) into a pydantic validator (ValueError)."""

    def validate(value: str) -> str:
        try:
            return check(value)
        except BadInput as exc:
            raise ValueError(str(exc)) from None

    return validate


DatasetId = Annotated[str, AfterValidator(_as_value_error(identifiers.dataset_id))]
BucketName = Annotated[str, AfterValidator(_as_value_error(identifiers.bucket_name))]
ObjectPrefix = Annotated[str, AfterValidator(_as_value_error(identifiers.object_prefix))]
TopicId = Annotated[str, AfterValidator(_as_value_error(identifiers.topic_id))]
ProjectId = Annotated[str, AfterValidator(_as_value_error(identifiers.project_id))]
TableId = Annotated[str, AfterValidator(_as_value_error(identifiers.table_id))]


def _table_ref(value: str) -> str:
    try:
        return str(TableRef.parse(value))
    except BadInput as exc:
        raise ValueError(str(exc)) from None


TableName = Annotated[str, AfterValidator(_table_ref)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GcpSettings(_Model):
    project: ProjectId
    location: str = "US"


class LocalSettings(_Model):
    root: str = ".local"


class DatasetSelector(_Model):
    """A whole dataset, optionally narrowed by shell-style globs on table names."""

    name: DatasetId
    include: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)

    def selects(self, table: str) -> bool:
        included = any(fnmatch.fnmatchcase(table, pattern) for pattern in self.include)
        excluded = any(fnmatch.fnmatchcase(table, pattern) for pattern in self.exclude)
        return included and not excluded


#: Cloud Functions' limit for an event-driven function (gcp-facts.md).
FUNCTION_TIMEOUT_SECONDS = 540


class DrillSettings(_Model):
    """The restore drill: a sample of the newest complete backup restored into a scratch
    dataset, checked against the source at the backup's instant, then dropped."""

    #: tables to restore (each must be in the backup); empty: the smallest complete table
    #: with rows and the largest under 256 MiB (two sizes: fixed cost and bandwidth apart)
    tables: list[TableName] = Field(default_factory=list)
    scratch_dataset: DatasetId = "opsuite_drill"
    #: the scratch dataset's default table expiration: a drill that dies still cleans up
    table_expiration_hours: int = Field(default=24, ge=1, le=24 * 30)


class BackupSettings(_Model):
    bucket: BucketName
    prefix: ObjectPrefix = "backups"
    tables: list[TableName] = Field(default_factory=list)
    datasets: list[DatasetSelector] = Field(default_factory=list)
    format: ExportFormat = "AVRO"
    compression: Compression = "SNAPPY"
    max_concurrent_jobs: int = Field(default=16, ge=1, le=100)
    time_budget_seconds: float = Field(default=480, gt=0, le=530)
    max_attempts: int = Field(default=3, ge=1, le=10)
    max_continuations: int = Field(default=24, ge=0, le=200)
    poll_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    max_file_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024, le=1_000_000_000)
    verify_avro_bytes_limit: int = Field(default=2 * 1024**3, ge=0)
    max_event_age_seconds: int = Field(default=24 * 3600, ge=60)
    #: The datasets' time-travel window (BigQuery ``max_time_travel_hours``: 48-168, default
    #: 168). A past date is backed up at its scheduled instant only while that instant is
    #: inside the window; an older date is refused as bad input.
    time_travel_hours: int = Field(default=168, ge=48, le=168)
    #: When the nightly run is scheduled (UTC, ``HH:MM``): the instant a past date's backup
    #: reads the tables at, so ``{"date": D}`` holds the data of the night of D.
    #: Terraform schedules the nightly Cloud Scheduler job from it (terraform/config.tf, Etc/UTC).
    schedule_utc: str = Field(default="09:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    trigger_topic: TopicId = "opsuite-backup-trigger"
    events_topic: TopicId = "opsuite-backup-events"
    drill: DrillSettings = Field(default_factory=DrillSettings)

    @model_validator(mode="after")
    def _check(self) -> BackupSettings:
        if not self.tables and not self.datasets:
            raise ValueError("configure at least one entry in 'tables' or 'datasets'")
        if self.compression not in ALLOWED_COMPRESSION[self.format]:
            allowed = ", ".join(sorted(ALLOWED_COMPRESSION[self.format]))
            raise ValueError(
                f"compression {self.compression} is not valid for {self.format} "
                f"(expected one of: {allowed})"
            )
        if len(set(self.tables)) != len(self.tables):
            raise ValueError("'tables' lists a table more than once")
        backed_up = {t.split(".")[0] for t in self.tables} | {d.name for d in self.datasets}
        if self.drill.scratch_dataset in backed_up:
            raise ValueError(
                f"drill.scratch_dataset {self.drill.scratch_dataset!r} is a backed-up dataset: "
                "the drill drops its scratch tables there (choose a dataset of its own)"
            )
        return self

    @property
    def table_refs(self) -> list[TableRef]:
        return [TableRef.parse(name) for name in self.tables]


Period = Literal["minute", "hour", "day"]
_PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class Threshold(_Model):
    """dbt-style ``{count, period}``."""

    count: int = Field(ge=1)
    period: Period

    @property
    def seconds(self) -> int:
        return self.count * _PERIOD_SECONDS[self.period]


ColumnName = Annotated[str, AfterValidator(_as_value_error(identifiers.column_name))]


class FreshnessTable(_Model):
    table: TableName
    loaded_at: ColumnName | None = None  # newest value of this column = last load (full mode)
    partition_field: ColumnName | None = None  # restrict the MAX() to recent partitions
    lookback_days: int = Field(default=3, ge=1, le=400)
    warn_after: Threshold | None = None
    error_after: Threshold | None = None

    @property
    def ref(self) -> TableRef:
        return TableRef.parse(self.table)


class FreshnessSettings(_Model):
    warn_after: Threshold = Threshold(count=24, period="hour")
    error_after: Threshold = Threshold(count=48, period="hour")
    tables: list[FreshnessTable] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> FreshnessSettings:
        for i, t in enumerate(self.tables):
            warn = (t.warn_after or self.warn_after).seconds
            error = (t.error_after or self.error_after).seconds
            if warn >= error:
                raise ValueError(f"tables[{i}] ({t.table}): warn_after must be below error_after")
        if len({t.table for t in self.tables}) != len(self.tables):
            raise ValueError("a table is listed twice under freshness.tables")
        return self


class BackupHealthSettings(_Model):
    warn_after: Threshold = Threshold(count=26, period="hour")
    error_after: Threshold = Threshold(count=50, period="hour")


class PipelineSettings(_Model):
    """Where the orchestration run history lives and how to read it."""

    table: TableName = "nba_orchestration.processor_run_history"
    phase_column: ColumnName = "phase"
    processor_column: ColumnName = "processor_name"
    status_column: ColumnName = "status"
    time_column: ColumnName = "started_at"
    error_column: ColumnName | None = "error_message"
    success_values: list[str] = Field(default_factory=lambda: ["success"], min_length=1)
    window: Threshold = Threshold(count=24, period="hour")
    warn_below: float = Field(default=0.95, ge=0, le=1)
    fail_below: float = Field(default=0.80, ge=0, le=1)
    recent_errors: int = Field(default=5, ge=0, le=50)

    @property
    def ref(self) -> TableRef:
        return TableRef.parse(self.table)


class HealthSettings(_Model):
    freshness: FreshnessSettings = Field(default_factory=FreshnessSettings)
    backups: BackupHealthSettings = Field(default_factory=BackupHealthSettings)
    pipeline: PipelineSettings | None = Field(default_factory=PipelineSettings)
    check_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    cache_max_age_seconds: int = Field(default=30, ge=0, le=3600)


# -- SLOs (issue 8: the SLA evaluator) ---------------------------------------------------
Severity = Literal["P0", "P1", "P2", "P3"]
HealthCheckName = Literal["freshness", "backups", "pipeline", "dependencies"]
_SLO_NAME = r"^[a-z][a-z0-9_]{0,62}$"  # a metric label value and an event attribute: bounded


def _runbook(value: str) -> str:
    """An http(s) URL, or a path in this repository with an optional ``#section``."""
    url = re.fullmatch(r"https?://[^\s<>\"']{1,2000}", value)
    doc = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,300}(#[A-Za-z0-9_-]{1,200})?", value)
    if not (url or doc) or ".." in value.split("#")[0]:
        raise ValueError(f"{value!r} is not an http(s) URL or a repository path like README.md#x")
    return value


RunbookUrl = Annotated[str, AfterValidator(_runbook)]


class FreshnessSli(_Model):
    """Good when every table (default: health.freshness.tables) is younger than ``max_age``."""

    kind: Literal["freshness"]
    tables: list[TableName] = Field(default_factory=list)
    max_age: Threshold = Threshold(count=24, period="hour")


class RatioSli(_Model):
    """Request-based: good runs / runs in the run-history table (``health.pipeline``'s table
    and columns), per phase and overall; the SLO's objective is the ratio to hold."""

    kind: Literal["ratio"]
    phases: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list
    )  # empty: every phase


def _default_checks() -> list[HealthCheckName]:
    return ["freshness", "backups", "dependencies"]


class AvailabilitySli(_Model):
    """An interval is good when none of the named health checks fails."""

    kind: Literal["availability"]
    checks: list[HealthCheckName] = Field(default_factory=_default_checks, min_length=1)


class ThresholdSli(_Model):
    """An aggregate of a column over the last ``days`` compared with ``bound``."""

    kind: Literal["threshold"]
    table: TableName
    column: ColumnName
    time_column: ColumnName
    aggregate: Literal["avg", "max", "min", "sum"] = "avg"
    days: int = Field(default=7, ge=1, le=400)
    bound: float
    good_when: Literal["below", "above"] = "below"
    baseline: float | None = None  # reported beside the value (e.g. the model's 4.27 MAE)
    not_null: ColumnName | None = None  # only rows where this column is set (graded rows)


class RecoveryTimeSli(_Model):
    """The newest restore drill passed, projects a full restore under ``max_hours``, and is
    not older than ``max_drill_age``."""

    kind: Literal["recovery_time"]
    max_hours: float = Field(default=8.0, gt=0)
    max_drill_age: Threshold = Threshold(count=8, period="day")


class DetectionSli(_Model):
    """Minutes from an incident's start to its first notification (filled by the alert
    router's delivery ledger, issue 9): until then every evaluation is unknown."""

    kind: Literal["detection"]
    max_minutes: float = Field(default=30.0, gt=0)


Sli = Annotated[
    FreshnessSli | RatioSli | AvailabilitySli | ThresholdSli | RecoveryTimeSli | DetectionSli,
    Field(discriminator="kind"),
]


class BurnRateAlert(_Model):
    long_window: Threshold
    short_window: Threshold
    rate: float = Field(gt=0)
    #: the SRE workbook's tiers: fast burns page, the slow one (3 d & 6 h) files a ticket;
    #: carried on ``slo.burn_rate`` events as the ``urgency`` attribute
    notify: Literal["page", "ticket"] = "page"

    @model_validator(mode="after")
    def _check(self) -> BurnRateAlert:
        if self.short_window.seconds >= self.long_window.seconds:
            raise ValueError("short_window must be shorter than long_window")
        return self


def _default_burn_rates() -> list[BurnRateAlert]:
    """The SRE workbook's multiwindow, multi-burn-rate alerts (ch. 5)."""
    return [
        BurnRateAlert(
            long_window=Threshold(count=1, period="hour"),
            short_window=Threshold(count=15, period="minute"),
            rate=14.4,
        ),
        BurnRateAlert(
            long_window=Threshold(count=6, period="hour"),
            short_window=Threshold(count=1, period="hour"),
            rate=6.0,
        ),
        BurnRateAlert(
            long_window=Threshold(count=3, period="day"),
            short_window=Threshold(count=6, period="hour"),
            rate=1.0,
            notify="ticket",
        ),
    ]


class Slo(_Model):
    name: Annotated[str, Field(pattern=_SLO_NAME)]
    description: str = Field(min_length=1, max_length=500)
    objective: float = Field(gt=0, lt=1)
    window: Threshold = Threshold(count=28, period="day")
    severity: Severity
    runbook: RunbookUrl | None = None
    sli: Sli


class HistorySettings(_Model):
    """Where every evaluation is recorded: a table partitioned by day in an ops dataset
    (BigQuery; the DuckDB file locally)."""

    dataset: DatasetId = "opsuite_ops"
    table: TableId = "slo_evaluations"

    @property
    def ref(self) -> TableRef:
        return TableRef(self.dataset, self.table)


class SloSettings(_Model):
    cadence_minutes: int = Field(default=15, ge=1, le=1440)
    #: how long an evaluation may take, from the trigger's arrival, before it stops retrying
    #: and asks for redelivery; at most 400 s, so a call in flight at the deadline still
    #: ends inside the 540 s event-function limit
    time_budget_seconds: float = Field(default=300, gt=0, le=400)
    history: HistorySettings = Field(default_factory=HistorySettings)
    trigger_topic: TopicId = "opsuite-sla-trigger"
    alerts_topic: TopicId = "opsuite-alerts"
    #: where repository runbook paths (``README.md#restore``) are published, e.g. the
    #: repository's web URL; events then carry a full link
    runbook_base_url: Annotated[str, Field(pattern=r"^https?://[^\s<>\"']{1,500}$")] | None = None
    burn_rates: list[BurnRateAlert] = Field(default_factory=_default_burn_rates)
    objectives: list[Slo] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SloSettings:
        names = [s.name for s in self.objectives]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"SLO names must be unique: {', '.join(twice)} appears twice")
        cadence = self.cadence_minutes * 60
        for slo in self.objectives:
            if slo.window.seconds < cadence:
                raise ValueError(f"{slo.name}: window is shorter than the cadence")
        for i, alert in enumerate(self.burn_rates):
            if alert.short_window.seconds < cadence:
                raise ValueError(
                    f"burn_rates[{i}]: short_window ({alert.short_window.count} "
                    f"{alert.short_window.period}) is shorter than cadence_minutes "
                    f"({self.cadence_minutes}): a window must hold at least one evaluation"
                )
        return self

    def named(self, names: Sequence[str]) -> list[Slo]:
        """The SLOs called ``names``; BadInput naming the unknown ones and the valid ones."""
        known = {s.name: s for s in self.objectives}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadInput(
                f"unknown SLO {', '.join(map(repr, unknown))} "
                f"(configured: {', '.join(known) or 'none'})"
            )
        return [known[n] for n in names]


class Settings(_Model):
    version: Literal[1] = 1
    gcp: GcpSettings | None = None
    local: LocalSettings = Field(default_factory=LocalSettings)
    backups: BackupSettings
    health: HealthSettings = Field(default_factory=HealthSettings)
    slos: SloSettings = Field(default_factory=SloSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)

    @model_validator(mode="after")
    def _check_slo_tables(self) -> Settings:
        known = {t.table for t in self.health.freshness.tables} or set(self.backups.tables)
        for i, slo in enumerate(self.slos.objectives):
            if isinstance(slo.sli, FreshnessSli):
                unknown = sorted(set(slo.sli.tables) - known)
                if unknown:
                    raise ValueError(
                        f"slos.objectives[{i}] ({slo.name}): freshness tables must be listed "
                        f"under health.freshness.tables: {', '.join(unknown)}"
                    )
            if isinstance(slo.sli, RatioSli) and self.health.pipeline is None:
                raise ValueError(
                    f"slos.objectives[{i}] ({slo.name}): a ratio SLI reads health.pipeline, "
                    "which is disabled"
                )
        return self

    def require_gcp(self) -> GcpSettings:
        if self.gcp is None:
            raise ConfigError("gcp: section required for --backend gcp (expected 'project')")
        return self.gcp


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config/opsuite.example.yaml)"
        elif error["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{path or '<root>'}: {message}")
    return f"{source}: invalid configuration\n  " + "\n  ".join(lines)


def parse_settings(data: object, source: str = "<config>") -> Settings:
    if data is None:
        raise ConfigError(f"{source}: the file is empty (expected a YAML mapping with 'backups')")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a YAML mapping at the top level")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
    except RecursionError:
        raise ConfigError(f"{source}: the configuration is nested too deeply") from None


#: A config is a few KiB; refuse to slurp a wrong path like /dev/zero or a data file.
MAX_CONFIG_BYTES = 1024 * 1024


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key given twice in one mapping.

    PyYAML keeps the last value silently (yaml/constructor.py ``construct_mapping``), so a
    second ``backups:`` block would quietly replace the first.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(
                    problem=f"{key_node.value!r} is defined twice (lines {seen[key]} and {line})",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line out of PyYAML's multi-line message: where, and what."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = ", ".join(p for p in (exc.context, exc.problem) if p)
        return f" (line {mark.line + 1}, column {mark.column + 1}): {what}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f" (character {exc.position}): {str(exc).splitlines()[0]}"
    return f": {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def _read_config_text(chosen: Path) -> str:
    try:
        with chosen.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{chosen}: cannot read config ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{chosen}: larger than {MAX_CONFIG_BYTES} bytes; not a config file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{chosen}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}, "
            f"line {line}); save the file as UTF-8"
        ) from None


def deployment_problems(settings: Settings) -> list[str]:
    """Why this config can't be deployed as it stands (what `terraform plan` would refuse,
    or deploy wrongly), one line each; ``make package`` checks it before packaging."""
    problems = []
    if settings.gcp is None:
        problems.append("gcp: section required to deploy (gcp.project, gcp.location)")
    cadence = settings.slos.cadence_minutes
    if not ((cadence < 60 and 60 % cadence == 0) or (cadence % 60 == 0 and 1440 % cadence == 0)):
        problems.append(
            f"slos.cadence_minutes: {cadence} can't be scheduled evenly: it must divide the "
            "hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) or be whole hours dividing the day"
        )
    project = settings.gcp.project if settings.gcp is not None else None
    seen: dict[tuple[str | None, str], str] = {}
    for name in settings.alerting.secret_names():
        parts = name.split("/")
        key = (parts[1], parts[3]) if name.startswith("projects/") else (project, name)
        if key in seen:
            problems.append(
                f"alerting: {seen[key]!r} and {name!r} name the same secret: use one spelling"
            )
        seen[key] = name
    return problems


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Load the config: an explicit path beats ``$OPSUITE_CONFIG`` beats the default."""
    environ = os.environ if env is None else env
    chosen = Path(path or environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    text = _read_config_text(chosen)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{chosen}: not valid YAML{_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{chosen}: not valid YAML: nested too deeply") from None
    return parse_settings(data, str(chosen))


def resolve_backend(explicit: str | None, env: Mapping[str, str] | None = None) -> Backend:
    environ = os.environ if env is None else env
    value = explicit or environ.get(BACKEND_ENV) or "local"
    if value not in ("local", "gcp"):
        raise ConfigError(f"backend: {value!r} is not valid (expected 'local' or 'gcp')")
    return value  # type: ignore[return-value]
