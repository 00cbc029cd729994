"""Builders shared by the test tiers: configs, stacks on tmp dirs, Pub/Sub CloudEvents."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from shared.composition import Adapters, LocalPaths, build_adapters
from shared.config import Settings, load_settings
from shared.manifest import Manifest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"
BUCKET = "test-backups"
FOUR_TABLES = [
    "nba_analytics.player_game_summary",
    "nba_analytics.upcoming_player_game_context",
    "nba_precompute.player_composite_factors",
    "nba_orchestration.processor_run_history",
]


def write_config(tmp_path: Path, **backups: Any) -> Path:
    body: dict[str, Any] = {
        "version": 1,
        "gcp": {"project": "nba-props-platform"},
        "local": {"root": str(tmp_path / "local")},
        "backups": {
            "bucket": BUCKET,
            "prefix": "backups",
            "tables": FOUR_TABLES,
            "poll_interval_seconds": 0.05,
            **backups,
        },
    }
    path = tmp_path / "opsuite.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@dataclass
class Stack:
    config: Path
    settings: Settings
    adapters: Adapters

    @property
    def paths(self) -> LocalPaths:
        return LocalPaths(Path(self.settings.local.root))

    def objects(self, prefix: str = "") -> list[str]:
        return [o.name for o in self.adapters.store.list(BUCKET, prefix)]

    def manifest(self, run_id: str) -> Manifest:
        return Manifest.model_validate_json(
            self.adapters.store.read(BUCKET, f"backups/{run_id}/_manifest.json")
        )

    def messages(self, topic: str) -> list[dict[str, Any]]:
        bus = self.adapters.publisher
        return bus.messages(topic)  # type: ignore[attr-defined,no-any-return]

    def jobs(self) -> list[str]:
        jobs = self.paths.jobs
        return sorted(p.stem for p in jobs.glob("*.json")) if jobs.exists() else []


def make_stack(tmp_path: Path, **backups: Any) -> Stack:
    config = write_config(tmp_path, **backups)
    settings = load_settings(config)
    return Stack(config, settings, build_adapters(settings, "local"))


def pubsub_event(
    body: Any = None,
    *,
    raw_data: str | None = None,
    publish_time: datetime | None = None,
    message_id: str = "9871234560001",
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A messagePublished CloudEvent as Eventarc delivers it (from tests/events)."""
    event = copy.deepcopy(json.loads((EVENTS / "scheduler_nightly.json").read_text()))
    message = event["data"]["message"]
    if raw_data is not None:
        message["data"] = raw_data
    elif body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        message["data"] = base64.b64encode(data).decode()
    stamp = (publish_time or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    message["publishTime"] = message["publish_time"] = stamp
    message["messageId"] = message["message_id"] = message_id
    event["id"] = message_id
    if attributes is not None:
        message["attributes"] = attributes
    return event


def backup_deps(stack: Stack, warehouse: Any = None) -> Any:
    """The backup service's dependencies on a test stack (optionally another warehouse)."""
    from shared.services.backup import BackupDeps

    a = stack.adapters
    return BackupDeps(
        stack.settings.backups, warehouse or a.warehouse, a.store, a.publisher, "local"
    )


def backup_now(stack: Stack) -> str:
    """Run tonight's backup to its end on the stack; the run id of a complete run."""
    from shared.events import BackupRequest
    from shared.services.backup import run_backup_to_end

    outcome = run_backup_to_end(BackupRequest(), backup_deps(stack))
    assert outcome.manifest is not None and outcome.manifest.status == "complete"
    return outcome.run_id


EXAMPLE_CONFIG = ROOT / "config" / "opsuite.example.yaml"


def write_example_config(tmp_path: Path, **slos: Any) -> Path:
    """The shipped example config (13 tables, health, the six SLOs) on a tmp local root."""
    body = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    body["local"] = {"root": str(tmp_path / "local")}
    body["backups"]["bucket"] = BUCKET
    body["backups"]["poll_interval_seconds"] = 0.05
    body["slos"].update(slos)
    path = tmp_path / "opsuite.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def make_example_stack(tmp_path: Path, **slos: Any) -> Stack:
    config = write_example_config(tmp_path, **slos)
    settings = load_settings(config)
    return Stack(config, settings, build_adapters(settings, "local"))
