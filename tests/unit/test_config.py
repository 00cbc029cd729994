from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import load_settings, parse_settings, resolve_backend
from shared.errors import ConfigError
from tests.helpers import EXAMPLE_CONFIG, ROOT

BASE = {"backups": {"bucket": "nba-props-backups", "tables": ["nba_analytics.player_game_summary"]}}


def _with(**backups: object) -> dict[str, object]:
    return {"backups": {**BASE["backups"], **backups}}  # type: ignore[dict-item]


def test_the_example_config_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "opsuite.example.yaml")
    assert settings.backups.format == "AVRO"
    assert settings.backups.compression == "SNAPPY"
    assert len(settings.backups.tables) == 5
    assert [d.name for d in settings.backups.datasets] == [
        "nba_precompute", "nba_orchestration", "nba_predictions"
    ]  # fmt: skip


def test_defaults() -> None:
    b = parse_settings(BASE).backups
    assert (b.format, b.compression, b.prefix) == ("AVRO", "SNAPPY", "backups")
    assert b.time_budget_seconds < 540


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_with(bukcet="x"), "backups.bukcet: unknown key"),
        ({"backups": {"tables": ["a.b"]}}, "backups.bucket: required key is missing"),
        (
            _with(tables=["nba_analytics.t", "ds.t; DROP TABLE x"]),
            "backups.tables[1]: 'ds.t; DROP TABLE x'",
        ),
        (_with(tables=["`ds`.t"]), "backups.tables[0]"),
        (_with(tables=["../x.y"]), "backups.tables[0]"),
        (_with(bucket="Bad_Bucket!"), "backups.bucket: 'Bad_Bucket!' is not a valid bucket name"),
        (_with(prefix="../escape"), "backups.prefix"),
        (_with(format="CSV"), "backups.format"),
        (_with(format="AVRO", compression="GZIP"), "compression GZIP is not valid for AVRO"),
        (_with(max_concurrent_jobs=0), "backups.max_concurrent_jobs"),
        (_with(time_budget_seconds=600), "backups.time_budget_seconds"),
        (_with(tables=[], datasets=[]), "configure at least one entry"),
        (_with(datasets=[{"name": "nba-analytics"}]), "backups.datasets[0].name"),
        (
            _with(datasets=[{"name": "ok", "inclde": ["*"]}]),
            "backups.datasets[0].inclde: unknown key",
        ),
        ({**_with(), "gcp": {"project": "X"}}, "gcp.project"),
    ],
)
def test_errors_name_the_path_and_what_was_expected(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data, "opsuite.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("opsuite.yaml: invalid configuration")


def test_dataset_globs_include_and_exclude() -> None:
    selector = parse_settings(
        _with(
            datasets=[
                {"name": "nba_precompute", "include": ["player_*", "ml_*"], "exclude": ["*_tmp"]}
            ]
        )
    ).backups.datasets[0]
    assert selector.selects("player_daily_cache")
    assert selector.selects("ml_feature_store_v2")
    assert not selector.selects("player_cache_tmp")
    assert not selector.selects("team_defense_zone_analysis")


def test_load_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backups: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(listy)


def test_explicit_path_beats_environment(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    settings = load_settings(good, env={"OPSUITE_CONFIG": str(tmp_path / "nope.yaml")})
    assert settings.backups.bucket == "nba-props-backups"
    assert (
        load_settings(None, env={"OPSUITE_CONFIG": str(good)}).backups.bucket == "nba-props-backups"
    )


def test_backend_resolution() -> None:
    assert resolve_backend(None, env={}) == "local"
    assert resolve_backend(None, env={"OPSUITE_BACKEND": "gcp"}) == "gcp"
    assert resolve_backend("local", env={"OPSUITE_BACKEND": "gcp"}) == "local"
    with pytest.raises(ConfigError, match="expected 'local' or 'gcp'"):
        resolve_backend("aws", env={})


def _deployable(tmp_path: Path, edit: Any) -> list[str]:
    from shared.config import deployment_problems

    body = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    edit(body)
    path = tmp_path / "opsuite.yaml"
    path.write_text(yaml.safe_dump(body))
    return deployment_problems(load_settings(path, env={}))


def test_the_example_config_is_deployable(tmp_path: Path) -> None:
    assert _deployable(tmp_path, lambda body: None) == []


def test_a_config_terraform_would_refuse_is_not_deployable(tmp_path: Path) -> None:
    def edit(body: dict[str, Any]) -> None:
        del body["gcp"]
        body["slos"]["cadence_minutes"] = 7
        body["alerting"]["receivers"][1]["pagerduty_configs"].append(
            {"routing_key_secret": "projects/nba-props-platform/secrets/pagerduty-routing-key"}
        )

    problems = _deployable(tmp_path, edit)
    assert problems[0].startswith("gcp: section required")
    assert "cadence_minutes: 7" in problems[1]
    assert len(problems) == 2  # without gcp.project the two spellings can't be compared

    def same_secret_twice(body: dict[str, Any]) -> None:
        body["alerting"]["receivers"][1]["pagerduty_configs"].append(
            {"routing_key_secret": "projects/nba-props-platform/secrets/pagerduty-routing-key"}
        )

    [problem] = _deployable(tmp_path, same_secret_twice)
    assert "name the same secret" in problem
