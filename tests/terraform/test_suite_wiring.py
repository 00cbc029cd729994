"""Code and Terraform held together: one source of truth, the right topics and triggers,
every environment variable the code reads, every receiver secret and who may read it.

The config-derived locals (terraform/config.tf) are evaluated by the terraform binary
itself (config.tf needs no provider: `terraform apply` of it alone works offline) and
compared with what the suite's own loader reads from the same file, for the example
config and for one that changes every value Terraform takes from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import Settings, load_settings
from shared.services.health import _freshness_tables
from tests.helpers import EXAMPLE_CONFIG
from tests.terraform.test_terraform import (
    FN_MODULE,
    ROOT,
    TF_DIR,
    block,
    event_trigger_of,
    function_calls,
    iam_resources,
    ref,
    resources_of,
)

TERRAFORM = shutil.which("terraform") or ""
needs_terraform = pytest.mark.skipif(
    not TERRAFORM, reason="terraform binary not on PATH: the config locals can't be evaluated"
)
REPO = TF_DIR.parent

#: what config.tf derives, as one output
_DERIVED = """
output "derived" {
  value = {
    project_id          = local.project_id
    location            = local.location
    backup_bucket       = local.backup_bucket
    backup_prefix       = local.backup_prefix
    backup_datasets     = local.backup_datasets
    health_datasets     = local.health_datasets
    sla_datasets        = local.sla_datasets
    drill_dataset       = local.drill_dataset
    ops_dataset         = local.ops_dataset
    ops_table           = local.ops_table
    topics              = local.topics
    backup_cron         = local.backup_cron
    sla_cron            = local.sla_cron
    slos                = local.slos
    secrets             = local.secrets
  }
}
"""


def _custom_config(tmp_path: Path) -> Path:
    """The example with every value Terraform reads changed (and defaults dropped)."""
    body = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    body["gcp"] = {"project": "other-project-42", "location": "EU"}
    body["backups"].update(
        bucket="other-backups",
        prefix="exports/nightly",
        tables=["sales.orders"],
        datasets=[{"name": "crm"}],
        schedule_utc="02:05",
        trigger_topic="t-backup",
        events_topic="t-events",
        drill={"scratch_dataset": "scratch_drill", "table_expiration_hours": 6},
    )
    body["health"]["freshness"]["tables"] = [{"table": "sales.orders", "loaded_at": "ts"}]
    body["health"]["pipeline"]["table"] = "ops_runs.history"
    body["slos"].update(
        cadence_minutes=5,
        trigger_topic="t-sla",
        alerts_topic="t-alerts",
        history={"dataset": "ops2", "table": "evals"},
    )
    for slo in body["slos"]["objectives"]:
        if slo["sli"]["kind"] == "threshold":
            slo["sli"]["table"] = "ml.accuracy"
    body["alerting"]["receivers"].append(
        {
            "name": "hooks",
            "webhook_configs": [
                {
                    "url_secret": "projects/shared-secrets/secrets/hook-url/versions/3",
                    "hmac_key_secret": "hook-hmac",
                }
            ],
        }
    )
    body["alerting"]["allowed_webhook_hosts"] = ["hooks.example.com"]
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _evaluate(config: Path, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(TF_DIR / "config.tf", work / "config.tf")
    (work / "derived.tf").write_text(_DERIVED)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_DATA_DIR": str(work / ".terraform")}

    def run(*args: str) -> str:
        result = subprocess.run(
            [TERRAFORM, f"-chdir={work}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run("init", "-backend=false", "-input=false")
    run("apply", "-auto-approve", "-input=false", "-no-color", f"-var=config_file={config}")
    derived: dict[str, Any] = json.loads(run("output", "-json", "derived"))
    return derived


def _expected(settings: Settings) -> dict[str, Any]:
    backups, health, slos = settings.backups, settings.health, settings.slos
    backup = {t.dataset for t in backups.table_refs} | {d.name for d in backups.datasets}
    # what the code probes (its own functions, not a copy of the HCL's logic)
    probed = {t.ref.dataset for t in _freshness_tables(settings)}
    if health.pipeline is not None:
        probed.add(health.pipeline.ref.dataset)
    sli_tables = {
        str(s.sli.table).split(".")[0] for s in slos.objectives if getattr(s.sli, "table", None)
    }
    hour, minute = (int(p) for p in backups.schedule_utc.split(":"))
    cadence = slos.cadence_minutes
    project = settings.gcp.project
    return {
        "project_id": project,
        "location": settings.gcp.location,
        "backup_bucket": backups.bucket,
        "backup_prefix": backups.prefix,
        "backup_datasets": sorted(backup),
        "health_datasets": sorted(probed),
        "sla_datasets": sorted(probed | sli_tables),
        "drill_dataset": backups.drill.scratch_dataset,
        "ops_dataset": slos.history.dataset,
        "ops_table": slos.history.table,
        "topics": {
            "backup_trigger": backups.trigger_topic,
            "backup_events": backups.events_topic,
            "sla_trigger": slos.trigger_topic,
            "alerts": slos.alerts_topic,
        },
        "backup_cron": f"{minute} {hour} * * *",
        "sla_cron": f"*/{cadence} * * * *" if cadence < 60 else f"0 */{cadence // 60} * * *",
        "slos": [
            {"name": s.name, "objective": s.objective, "severity": s.severity.lower()}
            for s in slos.objectives
        ],
        "secrets": {
            name: {
                "project": name.split("/")[1] if name.startswith("projects/") else project,
                "secret_id": name.split("/")[3] if name.startswith("projects/") else name,
            }
            for name in settings.alerting.secret_names()
        },
    }


def _defaults_config(tmp_path: Path) -> Path:
    """No freshness tables (the code then probes every backup table) and no pipeline check."""
    body = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    body["backups"]["tables"] = ["sales.orders"]
    body["backups"]["datasets"] = []
    body["health"]["freshness"]["tables"] = []
    body["health"]["pipeline"] = None
    body["slos"]["objectives"] = [
        s for s in body["slos"]["objectives"] if s["sli"]["kind"] in ("freshness", "detection")
    ]
    path = tmp_path / "defaults.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@needs_terraform
@pytest.mark.parametrize("variant", ["example", "custom", "defaults"])
def test_terraform_reads_the_config_as_the_code_does(tmp_path: Path, variant: str) -> None:
    # GIVEN a config file  WHEN terraform evaluates config.tf on it and the suite loads it
    config = {
        "example": lambda: EXAMPLE_CONFIG,
        "custom": lambda: _custom_config(tmp_path),
        "defaults": lambda: _defaults_config(tmp_path),
    }[variant]()
    settings = load_settings(config, env={})
    derived = _evaluate(config, tmp_path / "tf")
    # THEN both name the same project, bucket, datasets, topics, schedules, SLOs, secrets
    assert derived == _expected(settings)
    if variant == "custom":  # the custom file really moved every value off the defaults
        assert derived["topics"]["alerts"] == "t-alerts"
        assert derived["secrets"]["projects/shared-secrets/secrets/hook-url/versions/3"] == {
            "project": "shared-secrets",
            "secret_id": "hook-url",
        }
        assert derived["sla_cron"] == "*/5 * * * *"
    if variant == "defaults":  # the backup tables probed, no pipeline dataset
        assert derived["health_datasets"] == derived["sla_datasets"] == ["sales"]


def test_the_packaged_config_must_be_the_deployed_one() -> None:
    obj = resources_of(FN_MODULE, "google_storage_bucket_object")["source"]
    [precondition] = block(obj, "lifecycle")["precondition"]
    assert 'filesha256("${var.source_dir}/opsuite.yaml")' in precondition["condition"]
    assert "var.config_sha256" in precondition["condition"]
    assert "make package" in precondition["error_message"]
    for name, call in function_calls().items():
        assert call["config_sha256"] == "${local.config_sha256}", name
    [local] = [entry for entry in ROOT["locals"] if "config_sha256" in entry]
    assert local["config_sha256"] == "${filesha256(var.config_file)}"


# -- topics: published to, triggered by ---------------------------------------------
#: function → the config's topics its code publishes to (shared/services: continuations and
#: backup events; SLO events)
PUBLISHES = {
    "backup_export": {"backup_trigger", "backup_events"},
    "health_check": set(),
    "sla_evaluator": {"alerts"},
    "alert_router": set(),
}
#: function → the topics it is triggered by (its own trigger first)
TRIGGERED_BY = {
    "backup_export": ["backup_trigger"],
    "health_check": [],
    "sla_evaluator": ["sla_trigger"],
    "alert_router": ["alerts", "backup_events", "monitoring_incidents"],
}


def _topic_of(expr: str) -> str:
    found = re.fullmatch(r"google_pubsub_topic\.(\w+)\.(id|name)", ref(expr) or "")
    assert found, f"not a topic reference: {expr!r}"
    return found.group(1)


def test_every_function_is_triggered_by_exactly_its_topics() -> None:
    calls = function_calls()
    assert set(calls) == set(TRIGGERED_BY)
    for name, call in calls.items():
        trigger = event_trigger_of(call)
        topics = [] if trigger is None else [_topic_of(trigger["pubsub_topic"])]
        extra = call.get("extra_pubsub_topics") or {}
        topics += [_topic_of(v) for v in extra.values()]
        assert topics == TRIGGERED_BY[name], name
        if topics:  # a recreated topic replaces the function (and its extra triggers)
            assert call["replace_on"] == [
                f"${{terraform_data.{t}_topic.id}}" for t in TRIGGERED_BY[name]
            ], name


def test_every_function_publishes_where_its_code_does() -> None:
    for name, topics in PUBLISHES.items():
        granted = {
            _topic_of(body["topic"])
            for _t, _n, body in iam_resources(ROOT)
            if body["role"] == "roles/pubsub.publisher"
            and body["member"] == f"${{google_service_account.{name}.member}}"
        }
        assert granted == topics, name


#: the settings attribute each publish names its topic by → the Terraform topic
TOPIC_SETTINGS = {
    "trigger_topic": "backup_trigger",
    "events_topic": "backup_events",
    "alerts_topic": "alerts",
}


def test_the_code_publishes_only_to_the_topics_its_config_names() -> None:
    # every publish in the services names its topic through one of the settings above: a
    # publish to anything else (a literal topic, a new setting) fails here until mapped
    calls = []
    for path in (REPO / "shared" / "services").glob("*.py"):
        for topic in re.findall(r"publisher\.publish\(\s*([^,]+),", path.read_text()):
            calls.append((path.name, topic.strip()))
    assert calls, "no publish calls found"
    for where, expr in calls:
        attribute = expr.rsplit(".", 1)[-1]
        assert attribute in TOPIC_SETTINGS, f"{where}: publishes to {expr}"
    published = {TOPIC_SETTINGS[e.rsplit(".", 1)[-1]] for _, e in calls}
    assert published == set().union(*PUBLISHES.values())


# -- environment ---------------------------------------------------------------------
#: every OPSUITE_* variable the code reads → the functions that must have it set
ENV_NEEDED = {
    "OPSUITE_CONFIG": {"backup_export", "health_check", "sla_evaluator", "alert_router"},
    "OPSUITE_BACKEND": {"backup_export", "health_check", "sla_evaluator", "alert_router"},
    # the trigger-rejection record of a backup whose config can't be read
    "OPSUITE_BACKUP_BUCKET": {"backup_export"},
    "OPSUITE_PROJECT": {"backup_export"},
}


def test_every_environment_variable_the_code_reads_is_set() -> None:
    read = set()
    for path in [*(REPO / "shared").rglob("*.py"), *(REPO / "functions").rglob("*.py")]:
        read |= set(re.findall(r'"(OPSUITE_[A-Z_]+)"', path.read_text()))
    assert read == set(ENV_NEEDED), "map every OPSUITE_* variable the code reads"
    calls = function_calls()
    for variable, functions in ENV_NEEDED.items():
        for name, call in calls.items():
            env = call["environment_variables"]
            assert isinstance(env, dict), f"{name}: environment_variables must be a literal"
            assert (variable in env) == (name in functions), (name, variable)
    for call in calls.values():
        assert call["environment_variables"]["OPSUITE_BACKEND"] == "gcp"
        assert call["environment_variables"]["OPSUITE_CONFIG"] == "opsuite.yaml"


# -- secrets -------------------------------------------------------------------------
def test_every_receiver_secret_exists_and_only_the_router_reads_it() -> None:
    secrets = resources_of(ROOT, "google_secret_manager_secret")
    assert set(secrets) == {"receiver"}
    assert secrets["receiver"]["for_each"] == "${local.managed_secrets}"
    assert "version" not in json.dumps(secrets), "no secret values in Terraform"
    assert not resources_of(ROOT, "google_secret_manager_secret_version")
    accessors = [
        (name, body)
        for _t, name, body in iam_resources(ROOT)
        if body["role"] == "roles/secretmanager.secretAccessor"
    ]
    assert [n for n, _ in accessors] == ["alert_router_accessor"]
    [(_, grant)] = accessors
    assert grant["member"] == "${google_service_account.alert_router.member}"
    assert grant["for_each"] == "${local.secrets}"  # each secret individually
    assert not resources_of(ROOT, "google_project_iam_member").get("secret_accessor")
    for body in resources_of(ROOT, "google_project_iam_member").values():
        assert "secretmanager" not in body["role"], "no project-wide secret access"


# -- the evaluations table -----------------------------------------------------------
def test_the_evaluations_table_is_the_codes() -> None:
    from shared.adapters.history_schema import HISTORY_SPEC
    from tools import tf_catalog

    text = (TF_DIR / "history_schema.json").read_text(encoding="utf-8")
    assert text == tf_catalog.history_schema(), "stale: run python -m tools.tf_catalog"
    assert [c["name"] for c in json.loads(text)] == [f.name for f in HISTORY_SPEC.schema]
    table = resources_of(ROOT, "google_bigquery_table")["slo_evaluations"]
    assert table["schema"] == '${file("${path.module}/history_schema.json")}'
    partitioning = block(table, "time_partitioning")
    assert HISTORY_SPEC.time_partitioning == {
        "type": partitioning["type"],
        "field": partitioning["field"],
    }
    assert partitioning["expiration_ms"] == "${var.history_retention_days * 86400000}"
    assert tuple(table["clustering"]) == HISTORY_SPEC.clustering
    assert table["dataset_id"] == "${google_bigquery_dataset.ops.dataset_id}"
    assert table["table_id"] == "${local.ops_table}"
    assert table["deletion_protection"] is True


def test_the_provider_lock_file_is_not_ignored() -> None:
    # `terraform init` writes terraform/.terraform.lock.hcl: it pins the providers' hashes
    # and must be committed (init here can't reach the registry to create it)
    probe = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", "terraform/.terraform.lock.hcl"],
        capture_output=True,
        timeout=30,
    )
    assert probe.returncode == 1, "terraform/.terraform.lock.hcl is git-ignored"
