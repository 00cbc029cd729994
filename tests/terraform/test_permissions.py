"""No service account holds a role its code does not need, and none lacks one it does.

Each function runs through its own entry point (functions/<name>/main.py, as deployed) on
the local stack with the example config, every adapter wrapped in a recorder. A table maps
each adapter call to the permission it needs on GCP (the GCP adapter's client call, from
shared/adapters/gcp/*); the permissions the recorded calls need are compared with the
Terraform grants of that function's service account, both ways.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from functions_framework import create_app

from shared import runtime
from shared.composition import build_adapters
from shared.config import Settings, load_settings
from shared.services.seed import seed_demo
from tests.functional.conftest import cloud_event_poster
from tests.helpers import BUCKET, EXAMPLE_CONFIG, ROOT, pubsub_event
from tests.terraform.test_suite_wiring import _expected
from tests.terraform.test_terraform import IAM_MEMBER_TYPE, resources
from tests.terraform.test_terraform import ROOT as TF_ROOT

# -- what each adapter call needs on GCP -------------------------------------------------
#: warehouse methods that run a query job (jobs.create + tables.getData on the dataset)
WAREHOUSE_QUERIES = {
    "row_count_at",  # SELECT COUNT(*) ... FOR SYSTEM_TIME AS OF
    "newest_value",  # SELECT MAX(loaded_at)
    "run_history",
    "daily_aggregates",
    "run_buckets",
    "load_times",
    "fingerprint",
    "dataset_metadata",  # INFORMATION_SCHEMA.PARTITIONS
}
#: metadata reads: tables.get / tables.list (dataViewer), no job
WAREHOUSE_METADATA = {"list_tables", "get_table", "table_exists", "count_rows"}
#: writes on the dataset (tables.create / updateData / delete; the load and copy are jobs)
WAREHOUSE_WRITES = {"ensure_dataset", "create_table", "delete_table"}
WAREHOUSE_WRITE_JOBS = {"start_load", "replace_table"}
OBJECT_READS = {"read", "read_versioned", "open", "list", "stat"}
OBJECT_WRITES = {"write", "write_once", "write_if_generation", "delete"}

Need = tuple[str, str]  # (capability, scope)


@dataclass
class Recorder:
    calls: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def needs(self, settings: Settings) -> set[Need]:
        """The permissions (capability, scope) the recorded calls need."""
        out: set[Need] = set()
        for port, method, scopes in self.calls:
            out |= _needs(settings, port, method, scopes)
        return out


def _needs(settings: Settings, port: str, method: str, scopes: tuple[str, ...]) -> set[Need]:
    if port == "warehouse":
        if method in WAREHOUSE_QUERIES:
            return {("bq.job", "project"), *(("bq.read", d) for d in scopes)}
        if method in WAREHOUSE_METADATA:
            return {("bq.read", d) for d in scopes}
        if method == "start_extract":  # tables.export on the source, a job
            return {("bq.job", "project"), *(("bq.read", d) for d in scopes)}
        if method == "get_job":
            return {("bq.job", "project")}
        if method in WAREHOUSE_WRITES:
            return {("bq.write", d) for d in scopes}
        if method in WAREHOUSE_WRITE_JOBS:
            return {("bq.job", "project"), *(("bq.write", d) for d in scopes)}
        if method == "ping":  # a dataset listing of the project
            return {("bq.job", "project")}
    if port == "store":
        kind = "gcs.read" if method in OBJECT_READS else "gcs.write"
        assert method in OBJECT_READS | OBJECT_WRITES, method
        return {(kind, s) for s in scopes}  # the object name, or the listed prefix
    if port == "publisher":
        return {("publish", scopes[0])}
    if port == "metrics":
        return {("metrics.write" if method == "write" else "metrics.read", "project")}
    if port == "history":
        ops = settings.slos.history.dataset
        return {("bq.job", "project"), ("bq.write" if method == "append" else "bq.read", ops)}
    if port == "secrets":
        return {("secret", scopes[0])}
    raise AssertionError(f"no permission known for {port}.{method}: add it to the table")


def _scopes(
    port: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, ...]:
    values = [*args, *kwargs.values()]
    if port == "warehouse":
        found: list[str] = []
        for v in values:
            for attr in ("source", "destination", "table", "target"):
                ref = getattr(v, attr, None)
                if ref is not None and hasattr(ref, "dataset"):
                    found.append(ref.dataset)
            if hasattr(v, "dataset") and hasattr(v, "table") and isinstance(v.dataset, str):
                found.append(v.dataset)
        if method in ("ensure_dataset", "list_tables", "dataset_metadata") and isinstance(
            args[0], str
        ):
            found.append(args[0])
        return tuple(dict.fromkeys(found))
    if port == "store":
        return (str(args[1]),)  # (bucket, name or prefix, ...)
    if port in ("publisher", "secrets"):
        return (str(args[0]),)
    return ()


class Recording:
    """An adapter whose calls are recorded (port, method, scopes) before they are made."""

    def __init__(self, port: str, inner: Any, recorder: Recorder) -> None:
        self._port, self._inner, self._recorder = port, inner, recorder

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr) or name in ("close", "release"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            scopes = _scopes(self._port, name, args, kwargs)
            self._recorder.calls.append((self._port, name, scopes))
            return attr(*args, **kwargs)

        return call


# -- what Terraform grants -----------------------------------------------------------
def _granted(sa: str, expected: dict[str, Any], settings: Settings) -> set[Need]:
    """The (capability, scope) the Terraform grants give google_service_account.<sa>."""
    datasets = {
        "${toset(local.backup_datasets)}": expected["backup_datasets"],
        "${toset(local.health_datasets)}": expected["health_datasets"],
        "${toset(local.sla_datasets)}": expected["sla_datasets"],
    }
    single = {
        "${google_bigquery_dataset.drill.dataset_id}": settings.backups.drill.scratch_dataset,
        "${google_bigquery_dataset.ops.dataset_id}": settings.slos.history.dataset,
    }
    topics = {f"${{google_pubsub_topic.{k}.name}}": v for k, v in expected["topics"].items()}
    out: set[Need] = set()
    for rtype, _name, body in resources(TF_ROOT):
        if rtype == "google_bigquery_dataset_access":
            if body["user_by_email"] != f"${{google_service_account.{sa}.email}}":
                continue
            caps = {"READER": ["bq.read"], "WRITER": ["bq.read", "bq.write"]}[body["role"]]
            out |= {(c, d) for c in caps for d in datasets[body["for_each"]]}
            continue
        if not IAM_MEMBER_TYPE.match(rtype):
            continue
        if body["member"] != f"${{google_service_account.{sa}.member}}":
            continue
        role = body["role"]
        if rtype == "google_project_iam_member":
            cap = {"roles/bigquery.jobUser": "bq.job", "roles/monitoring.metricWriter":
                   "metrics.write"}[role]  # fmt: skip
            out.add((cap, "project"))
        elif rtype == "google_bigquery_dataset_iam_member":
            names = (
                datasets[body["for_each"]] if "for_each" in body else [single[body["dataset_id"]]]
            )
            caps = {"roles/bigquery.dataViewer": ["bq.read"],
                    "roles/bigquery.dataEditor": ["bq.read", "bq.write"]}[role]  # fmt: skip
            out |= {(c, d) for c in caps for d in names}
        elif rtype == "google_storage_bucket_iam_member":
            assert body["bucket"] == "${google_storage_bucket.backup.name}", body
            condition = body.get("condition")
            scope = "*"
            if condition:
                expression = (condition[0] if isinstance(condition, list) else condition)[
                    "expression"
                ]
                scope = _condition_scope(expression, settings)
            caps = {"roles/storage.objectViewer": ["gcs.read"],
                    "roles/storage.objectUser": ["gcs.read", "gcs.write"],
                    "roles/storage.objectAdmin": ["gcs.read", "gcs.write"]}[role]  # fmt: skip
            out |= {(c, scope) for c in caps}
        elif rtype == "google_pubsub_topic_iam_member":
            assert role == "roles/pubsub.publisher"
            out.add(("publish", topics[body["topic"]]))
        elif rtype == "google_secret_manager_secret_iam_member":
            assert role == "roles/secretmanager.secretAccessor"
            out |= {("secret", name) for name in expected["secrets"]}
        else:
            raise AssertionError(f"unmapped grant {rtype} {role}")
    return out


def _condition_scope(expression: str, settings: Settings) -> str:
    """``prefixes:P1|P2``: the object-name prefixes an IAM condition allows, each checked
    to be allowed for listing too (objectListPrefix), else the grant can't list them."""
    text = expression.replace('\\"', '"').replace("${local.backup_prefix}", settings.backups.prefix)
    objects = "${local.backup_bucket_objects}/"
    names = re.findall(r'resource\.name\.startsWith\("([^"]+)"\)', text)
    listed = re.findall(r'objectListPrefix", ""\)\.startsWith\("([^"]+)"\)', text)
    assert names and all(n.startswith(objects) for n in names), expression
    prefixes = [n.removeprefix(objects) for n in names]
    assert sorted(prefixes) == sorted(listed), f"names and listing differ: {expression}"
    return "prefixes:" + "|".join(sorted(prefixes))


def _allows(scope: str, name: str) -> bool:
    if scope == "*":
        return True
    return scope.startswith("prefixes:") and any(
        name.startswith(p) for p in scope.removeprefix("prefixes:").split("|")
    )


def _covered(need: Need, granted: set[Need]) -> bool:
    capability, scope = need
    if capability.startswith("gcs."):
        return any(c == capability and _allows(s, scope) for c, s in granted)
    return need in granted


# -- running each function as deployed -------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("permissions")
    body = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    body["local"] = {"root": str(tmp / "local")}
    body["backups"]["bucket"] = BUCKET
    body["backups"]["poll_interval_seconds"] = 0.05
    body["slos"]["time_budget_seconds"] = 5
    config = tmp / "opsuite.yaml"
    config.write_text(yaml.safe_dump(body, sort_keys=False))
    settings = load_settings(config)
    adapters = build_adapters(settings, "local")
    seed_demo(adapters.warehouse)  # type: ignore[arg-type]
    env = pytest.MonkeyPatch()
    env.setenv("OPSUITE_CONFIG", str(config))
    env.setenv("OPSUITE_BACKEND", "local")
    recorders: dict[str, Recorder] = {}

    def as_function(name: str) -> Recorder:
        recorder = recorders.setdefault(name, Recorder())
        wrapped = replace(
            adapters,
            warehouse=Recording("warehouse", adapters.warehouse, recorder),
            store=Recording("store", adapters.store, recorder),
            publisher=Recording("publisher", adapters.publisher, recorder),
            metrics=Recording("metrics", adapters.metrics, recorder),
            history=Recording("history", adapters.history, recorder),
            secrets=Recording("secrets", adapters.secrets, recorder),
        )
        runtime.use(settings, wrapped)  # type: ignore[arg-type]
        return recorder

    def post(function: str, event: dict[str, Any]) -> int:
        as_function(function)
        return int(cloud_event_poster(function)(event).status_code)

    codes = {
        "backup": post("backup_export", pubsub_event({})),
        "drill": post("backup_export", pubsub_event({"action": "restore_drill"}, message_id="2")),
        "sla": post("sla_evaluator", pubsub_event({}, message_id="3")),
    }
    as_function("health_check")
    client = create_app(
        "health_check", str(ROOT / "functions" / "health_check" / "main.py"), "http"
    ).test_client()
    codes["health"] = client.get("/?mode=full").status_code
    # the SLA evaluator's events, delivered to the router; then its tick
    for i, line in enumerate(_bus(settings, settings.slos.alerts_topic)):
        message = json.loads(line)
        data = base64.b64decode(message["data"]) if "data" in message else b"{}"
        event = pubsub_event(raw_data=base64.b64encode(data).decode(),
                             attributes=message.get("attributes") or {},
                             message_id=str(100 + i))  # fmt: skip
        codes[f"alert-{i}"] = post("alert_router", event)
    codes["tick"] = post(
        "alert_router", pubsub_event({}, attributes={"event_type": "alerts.tick"}, message_id="9")
    )
    yield {"settings": settings, "recorders": recorders, "codes": codes}
    runtime.reset()
    env.undo()
    adapters.close()


def _bus(settings: Settings, topic: str) -> list[str]:
    path = Path(settings.local.root) / "pubsub" / f"{topic}.jsonl"
    return path.read_text().splitlines() if path.exists() else []


#: grants the scenario above can't reach, each with the code path that needs it (and the
#: test that exercises that path): kept to the minimum
NOT_REACHED_HERE: dict[tuple[str, str], str] = {
    ("backup_export", "publish:trigger"): (
        "continuations: a run longer than backups.time_budget_seconds republishes to the "
        "trigger topic (shared/services/backup.py; tests/functional/test_backup_export.py::"
        "test_time_budget_hands_over_to_a_continuation_that_resumes)"
    ),
}

FUNCTION_SA = {
    "backup_export": "backup_export",
    "health_check": "health_check",
    "sla_evaluator": "sla_evaluator",
    "alert_router": "alert_router",
}


def test_the_scenario_exercises_every_function(runs: dict[str, Any]) -> None:
    codes = runs["codes"]
    assert codes["backup"] == codes["drill"] == codes["sla"] == 200, codes
    assert codes["health"] in (200, 503), codes  # the demo data is unhealthy on purpose
    assert any(k.startswith("alert-") for k in codes), "the evaluator published no event"
    assert set(runs["recorders"]) == set(FUNCTION_SA)


@pytest.mark.parametrize("function", sorted(FUNCTION_SA))
def test_every_call_a_function_makes_is_granted(runs: dict[str, Any], function: str) -> None:
    settings: Settings = runs["settings"]
    expected = _expected(settings)
    needed = runs["recorders"][function].needs(settings)
    granted = _granted(FUNCTION_SA[function], expected, settings)
    missing = sorted(n for n in needed if not _covered(n, granted))
    assert not missing, f"{function} calls need grants Terraform doesn't make: {missing}"


@pytest.mark.parametrize("function", sorted(FUNCTION_SA))
def test_no_function_holds_a_grant_its_calls_do_not_need(
    runs: dict[str, Any], function: str
) -> None:
    settings: Settings = runs["settings"]
    expected = _expected(settings)
    needed = runs["recorders"][function].needs(settings)
    granted = _granted(FUNCTION_SA[function], expected, settings)
    unused = []
    for capability, scope in sorted(granted):
        if capability.startswith("gcs."):
            used = any(c == capability and _allows(scope, n) for c, n in needed)
        elif capability == "secret":
            used = ("secret", scope) in needed or function == "alert_router"
        else:
            used = (capability, scope) in needed
        key = (
            "publish:trigger"
            if (capability, scope) == ("publish", settings.backups.trigger_topic)
            else f"{capability}:{scope}"
        )
        if not used and (function, key) not in NOT_REACHED_HERE:
            unused.append((capability, scope))
    assert not unused, f"{function} holds grants its code never used here: {unused}"


def test_the_router_reads_every_receiver_secret_it_is_granted(runs: dict[str, Any]) -> None:
    settings: Settings = runs["settings"]
    read = {s for c, s in runs["recorders"]["alert_router"].needs(settings) if c == "secret"}
    assert read == set(_expected(settings)["secrets"])


@pytest.mark.parametrize("function", sorted(FUNCTION_SA))
def test_no_function_may_write_the_whole_bucket(runs: dict[str, Any], function: str) -> None:
    # every write grant on the backup bucket is held to prefixes: the backup can't touch the
    # router's ledger, the router can't touch the exports (a dropped condition fails here)
    settings: Settings = runs["settings"]
    granted = _granted(FUNCTION_SA[function], _expected(settings), settings)
    assert ("gcs.write", "*") not in granted, function
    writes = [s for c, s in granted if c == "gcs.write"]
    for scope in writes:
        prefixes = scope.removeprefix("prefixes:").split("|")
        assert all(p.endswith("/") and p for p in prefixes), scope
