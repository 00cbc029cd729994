"""Static checks of the Terraform in terraform/ (no provider, no network).

Every .tf file is parsed with python-hcl2 and the security / DR invariants of the suite are
asserted on the parsed configuration. `terraform fmt` and the variable validations are
exercised with the terraform binary when it is installed (skipped otherwise): neither needs
the google provider.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2  # python-hcl2 (pinned in requirements-dev.lock); a missing install must fail, not skip
import pytest

TF_DIR = Path(__file__).resolve().parents[2] / "terraform"
FUNCTION_MODULE_DIR = TF_DIR / "modules" / "function"
FUNCTION_MODULE_SOURCE = "./modules/function"

PUBLIC_PRINCIPALS = ("allUsers", "allAuthenticatedUsers")
FORBIDDEN_ROLES = {
    "roles/owner",
    "roles/editor",
    "roles/viewer",
    "roles/bigquery.admin",
    "roles/storage.admin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.securityAdmin",
    "roles/resourcemanager.projectIamAdmin",
}
# Authoritative IAM resources would silently remove grants made outside this config.
AUTHORITATIVE_IAM_TYPES = re.compile(r"^google_.*_iam_(policy|binding)$")
IAM_MEMBER_TYPE = re.compile(r"^google_.*_iam_member$")
# Project-wide grants allowed at all (anything else must be granted on a resource).
# roles/run.builder: the build service account's (Cloud Build writes logs and images project-wide)
ALLOWED_PROJECT_ROLES = {
    "roles/bigquery.jobUser",
    "roles/monitoring.metricWriter",
    "roles/run.builder",
    # the roles a service agent created on request doesn't get by itself (main.tf)
    "roles/eventarc.serviceAgent",
    "roles/pubsub.serviceAgent",
}
SERVICE_AGENT_ROLES = {
    "roles/eventarc.serviceAgent": "gcp-sa-eventarc",
    "roles/pubsub.serviceAgent": "gcp-sa-pubsub",
}

EVENT_MAX_TIMEOUT = 540
HTTP_MAX_TIMEOUT = 3600
INGRESS_VALUES = {"ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"}
DEFAULT_DATASETS = ["nba_analytics", "nba_precompute", "nba_orchestration", "nba_predictions"]
# Roles that only read. The health check (a probe) may hold nothing else.
READ_ONLY_ROLES = {
    "READER",  # a dataset access entry: dataViewer
    "roles/bigquery.jobUser",  # runs (query) jobs; writes no table without a data role
    "roles/bigquery.dataViewer",
    "roles/bigquery.metadataViewer",
    "roles/storage.objectViewer",
}
WRITE_ROLE = re.compile(
    r"admin|editor|owner|creator|writer|publisher|objectUser|dataEditor|dataOwner"
    r"|secretAccessor|tokenCreator|serviceAccountUser",
    re.IGNORECASE,
)
PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"

REQUIRED_APIS = {
    "bigquery.googleapis.com",
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "storage.googleapis.com",
    "secretmanager.googleapis.com",
    "monitoring.googleapis.com",
}


# --------------------------------------------------------------------------------------
# Parsing helpers. python-hcl2 8.x keeps the quotes of string literals and block labels
# ('"backup"') and adds "__is_block__"/"__comments__" keys; older releases do neither.
# normalise() gives the same plain structure for both.
# --------------------------------------------------------------------------------------


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def normalise(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            _unquote(key): normalise(value)
            for key, value in node.items()
            if not (isinstance(key, str) and key.startswith("__"))
        }
    if isinstance(node, list):
        return [normalise(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def tf_files(directory: Path = TF_DIR) -> list[Path]:
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


def parse_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = normalise(hcl2.load(handle))
    return parsed


def load_module(directory: Path) -> dict[str, list[Any]]:
    """Merge the top-level blocks of every .tf file directly in `directory`."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for key, blocks in parse_file(path).items():
            merged.setdefault(key, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def resources(module: dict[str, list[Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for entry in module.get("resource", []):
        for rtype, by_name in entry.items():
            for name, body in by_name.items():
                yield rtype, name, body


def resources_of(module: dict[str, list[Any]], rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for t, name, body in resources(module) if t == rtype}


def variables(module: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in module.get("variable", []):
        out.update(entry)
    return out


def module_calls(module: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in module.get("module", []):
        out.update(entry)
    return out


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a resource body ({} when absent)."""
    value = body.get(name)
    if isinstance(value, list):
        assert len(value) == 1, f"expected one {name} block, found {len(value)}"
        first: dict[str, Any] = value[0]
        return first
    return value or {}


def blocks(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = body.get(name, [])
    return value if isinstance(value, list) else [value]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def ref(expr: Any) -> str | None:
    """'${google_x.y.email}' -> 'google_x.y.email'; None for anything else."""
    if isinstance(expr, str):
        match = re.fullmatch(r"\$\{([^{}]+)\}", expr.strip())
        if match:
            return match.group(1).strip()
    return None


def as_int(value: Any) -> int:
    assert isinstance(value, (int, float)), f"not a literal number: {value!r}"
    assert not isinstance(value, bool), f"not a literal number: {value!r}"
    return int(value)


ROOT = load_module(TF_DIR)
FN_MODULE = load_module(FUNCTION_MODULE_DIR)
FN_VARS = variables(FN_MODULE)
ROOT_VARS = variables(ROOT)


def function_calls() -> dict[str, dict[str, Any]]:
    """Every call of the function module, with the module's defaults filled in."""
    calls = {}
    for name, args in module_calls(ROOT).items():
        if args.get("source") != FUNCTION_MODULE_SOURCE:
            continue
        effective = {var: spec.get("default") for var, spec in FN_VARS.items()}
        effective.update({k: v for k, v in args.items() if k not in ("source", "depends_on")})
        calls[name] = effective
    return calls


def event_trigger_of(call: dict[str, Any]) -> dict[str, Any] | None:
    trigger = call.get("event_trigger")
    if trigger is None:
        return None
    trigger = trigger[0] if isinstance(trigger, list) else trigger
    assert isinstance(trigger, dict), f"event_trigger must be an object literal, got {trigger!r}"
    return trigger


def require_trigger(call: dict[str, Any]) -> dict[str, Any]:
    trigger = event_trigger_of(call)
    assert trigger is not None, "expected an event-driven function"
    return trigger


def iam_resources(module: dict[str, list[Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(t, n, b) for t, n, b in resources(module) if IAM_MEMBER_TYPE.match(t)]


def all_modules() -> dict[str, dict[str, list[Any]]]:
    return {"root": ROOT, "modules/function": FN_MODULE}


# --------------------------------------------------------------------------------------
# Files and parsing
# --------------------------------------------------------------------------------------


def test_expected_files_exist() -> None:
    expected = [
        "versions.tf",
        "variables.tf",
        "outputs.tf",
        "README.md",
        "terraform.tfvars.example",
        "modules/function/main.tf",
        "modules/function/variables.tf",
        "modules/function/outputs.tf",
    ]
    missing = [p for p in expected if not (TF_DIR / p).is_file()]
    assert not missing, f"missing files in terraform/: {missing}"


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TF_DIR)))
def test_tf_file_parses(path: Path) -> None:
    parsed = parse_file(path)
    assert parsed, f"{path} parsed to nothing"


def test_required_versions_pinned() -> None:
    for label, module in all_modules().items():
        terraform = module["terraform"][0]
        assert re.fullmatch(r">=\s*1\.(5|[6-9]|\d\d)(\.\d+)?", terraform["required_version"]), label
        providers = block(terraform, "required_providers")
        assert providers["google"]["source"] == "hashicorp/google", label
        assert re.fullmatch(r"~>\s*\d+\.\d+", providers["google"]["version"]), (
            f"{label}: google provider must be pinned to one major (~> X.Y)"
        )
        assert providers["archive"]["source"] == "hashicorp/archive", label
        assert re.fullmatch(r"~>\s*\d+\.\d+", providers["archive"]["version"]), label
    root_google = block(ROOT["terraform"][0], "required_providers")["google"]["version"]
    mod_google = block(FN_MODULE["terraform"][0], "required_providers")["google"]["version"]
    assert root_google.split(".")[0] == mod_google.split(".")[0], (
        "root and module pin different google majors"
    )


# --------------------------------------------------------------------------------------
# Variables
# --------------------------------------------------------------------------------------


def _all_variables() -> list[Any]:
    return [
        pytest.param(label, name, spec, id=f"{label}:{name}")
        for label, module in all_modules().items()
        for name, spec in variables(module).items()
    ]


@pytest.mark.parametrize(("label", "name", "spec"), _all_variables())
def test_variable_has_description_and_type(label: str, name: str, spec: dict[str, Any]) -> None:
    description = spec.get("description")
    assert isinstance(description, str), f"{label}: var.{name} has no description"
    assert description.strip(), f"{label}: var.{name} has an empty description"
    assert spec.get("type"), f"{label}: var.{name} has no type"


def test_root_variable_defaults() -> None:
    v = ROOT_VARS
    assert v["backup_retention_days"]["default"] == 90
    assert v["noncurrent_version_retention_days"]["default"] == 7
    assert v["soft_delete_retention_days"]["default"] == 7
    assert v["health_check_ingress"]["default"] == "ALLOW_ALL"
    assert v["python_runtime"]["default"] == "python311"
    assert v["invoker_members"]["default"] == []
    # a choice, not a default: adopting in a new project fails, creating in an existing one too
    assert "default" not in v["adopt_existing_datasets"]
    assert v["backup_project_id"]["default"] is None
    # one source of truth: project, bucket, datasets, topics and schedules come from the
    # config file, which is required (no silent example config)
    assert "default" not in v["config_file"], "var.config_file must be required"
    for gone in ("project_id", "backup_bucket_name", "backup_datasets", "health_datasets",
                 "backup_schedule", "backup_time_zone", "location", "backup_prefix"):  # fmt: skip
        assert gone not in v, f"var.{gone} repeats what opsuite.yaml says"


def test_sensitive_variables_are_validated() -> None:
    for name in (
        "config_file",
        "region",
        "backup_retention_days",
        "noncurrent_version_retention_days",
        "soft_delete_retention_days",
        "ops_history_retention_days",
        "history_retention_days",
        "backup_project_id",
        "invoker_members",
        "drill_schedule",
        "health_check_ingress",
        "api_propagation_wait",
        "runbook_url",
    ):
        assert ROOT_VARS[name].get("validation"), f"var.{name} has no validation block"


def test_tfvars_example_only_sets_declared_variables() -> None:
    example = TF_DIR / "terraform.tfvars.example"
    with example.open(encoding="utf-8") as handle:
        values = normalise(hcl2.load(handle))
    assert values, "terraform.tfvars.example sets nothing"
    undeclared = set(values) - set(ROOT_VARS)
    assert not undeclared, f"terraform.tfvars.example sets undeclared variables: {undeclared}"
    required = {name for name, spec in ROOT_VARS.items() if "default" not in spec}
    assert required <= set(values), f"example misses required variables {required - set(values)}"


# --------------------------------------------------------------------------------------
# No public access anywhere
# --------------------------------------------------------------------------------------


def test_no_public_principals_in_any_resource_or_module_call() -> None:
    offenders = []
    for label, module in all_modules().items():
        for rtype, name, body in resources(module):
            for text in strings(body):
                if any(p in text for p in PUBLIC_PRINCIPALS):
                    offenders.append(f"{label}: {rtype}.{name}: {text}")
        for name, args in module_calls(module).items():
            for text in strings(args):
                if any(p in text for p in PUBLIC_PRINCIPALS):
                    offenders.append(f"{label}: module.{name}: {text}")
        for name, spec in variables(module).items():
            for text in strings(spec.get("default")):
                if any(p in text for p in PUBLIC_PRINCIPALS):
                    offenders.append(f"{label}: var.{name} default: {text}")
    assert not offenders, "public principals granted:\n" + "\n".join(offenders)


def test_invoker_variables_reject_public_principals() -> None:
    for label, spec in (
        ("root", ROOT_VARS["invoker_members"]),
        ("module", FN_VARS["invoker_members"]),
    ):
        conditions = " ".join(v["condition"] for v in spec.get("validation", []))
        assert "regex" in conditions, (
            f"{label}: invoker_members must be validated against a principal regex"
        )


def test_no_authoritative_iam_resources() -> None:
    found = [
        f"{label}: {t}.{n}"
        for label, m in all_modules().items()
        for t, n, _ in resources(m)
        if AUTHORITATIVE_IAM_TYPES.match(t)
    ]
    assert not found, f"authoritative IAM resources would clobber existing grants: {found}"


def test_no_forbidden_roles_anywhere() -> None:
    offenders = []
    for label, module in all_modules().items():
        for rtype, name, body in resources(module):
            role = body.get("role")
            if role in FORBIDDEN_ROLES or (isinstance(role, str) and role.endswith(".admin")):
                offenders.append(f"{label}: {rtype}.{name} role={role}")
        for text in strings(module.get("resource", [])):
            for forbidden in FORBIDDEN_ROLES:
                if re.search(re.escape(forbidden) + r"\b", text):
                    offenders.append(f"{label}: mentions {forbidden}")
    assert not offenders, "\n".join(offenders)


def test_project_level_grants_are_allowlisted() -> None:
    for label, module in all_modules().items():
        for name, body in resources_of(module, "google_project_iam_member").items():
            assert body["role"] in ALLOWED_PROJECT_ROLES, (
                f"{label}: project-wide {body['role']} in {name}"
            )
            agent = SERVICE_AGENT_ROLES.get(body["role"])
            if agent:  # a service agent's own role, to that agent only
                assert body["member"] == (
                    "serviceAccount:service-${data.google_project.this.number}"
                    f"@{agent}.iam.gserviceaccount.com"
                ), name
    waited = resources_of(ROOT, "time_sleep")["apis_ready"]["depends_on"]
    for name in ("eventarc_agent", "pubsub_agent"):
        assert f"${{google_project_iam_member.{name}}}" in waited, name


def test_iam_members_reference_service_accounts_or_variables() -> None:
    """Every grant names a managed service account, a service agent, or a variable-fed member."""
    for label, module in all_modules().items():
        for rtype, name, body in iam_resources(module):
            member = body["member"]
            assert (
                re.fullmatch(r"\$\{google_service_account\.\w+\.member\}", member)
                or re.fullmatch(
                    r"serviceAccount:\$\{(google_service_account\.\w+\.email|var\.[\w.]+)\}", member
                )
                or member == "${each.value}"
                or re.fullmatch(
                    r"serviceAccount:service-\$\{data\.google_project\.\w+\.number\}@gcp-sa-[a-z-]+\.iam\.gserviceaccount\.com",
                    member,
                )
            ), f"{label}: {rtype}.{name} grants to unexpected member {member!r}"
            if member == "${each.value}":
                assert "var.invoker_members" in body.get("for_each", ""), (
                    f"{label}: {rtype}.{name}: for_each members must come from var.invoker_members"
                )


# --------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------


def test_function_module_wiring() -> None:
    fns = resources_of(FN_MODULE, "google_cloudfunctions2_function")
    assert len(fns) == 1, "the function module must define exactly one function"
    fn = next(iter(fns.values()))
    service = block(fn, "service_config")
    assert service["service_account_email"] == "${var.service_account_email}"
    assert service["ingress_settings"] == "${var.ingress_settings}"
    assert service["timeout_seconds"] == "${var.timeout_seconds}"
    assert service["max_instance_count"] == "${var.max_instance_count}"
    assert service["min_instance_count"] == "${var.min_instance_count}"
    assert FN_VARS["min_instance_count"]["default"] == 0
    assert service["all_traffic_on_latest_revision"] is True
    # The runtime identity is required: no silent fallback to the default compute SA.
    assert "default" not in FN_VARS["service_account_email"]
    assert FN_VARS["ingress_settings"]["default"] == "ALLOW_INTERNAL_ONLY"

    dynamic = [d["event_trigger"] for d in blocks(fn, "dynamic") if "event_trigger" in d]
    assert len(dynamic) == 1, "event_trigger must be a dynamic block driven by var.event_trigger"
    content = block(dynamic[0], "content")
    assert content["event_type"] == PUBSUB_EVENT_TYPE
    assert content["retry_policy"] == "${event_trigger.value.retry_policy}"
    assert content["service_account_email"] == "${event_trigger.value.service_account_email}"
    assert content["pubsub_topic"] == "${event_trigger.value.pubsub_topic}"
    assert "trigger_region" in content
    assert 'optional(string, "RETRY_POLICY_RETRY")' in FN_VARS["event_trigger"]["type"]

    preconditions = blocks(block(fn, "lifecycle"), "precondition")
    assert any(
        str(EVENT_MAX_TIMEOUT) in p["condition"] and "var.event_trigger" in p["condition"]
        for p in preconditions
    ), "the module must refuse event-driven timeouts above 540 s"
    assert any(str(HTTP_MAX_TIMEOUT) in p["condition"] for p in preconditions), (
        "the module must refuse HTTP timeouts above 3600 s"
    )


def test_function_source_is_content_addressed() -> None:
    archives = [
        e["archive_file"]
        for e in ROOT.get("data", []) + FN_MODULE.get("data", [])
        if "archive_file" in e
    ]
    assert archives, "no archive_file data source"
    archive = next(iter(archives[0].values()))
    assert archive["type"] == "zip"
    assert archive["source_dir"] == "${var.source_dir}"
    obj = resources_of(FN_MODULE, "google_storage_bucket_object")["source"]
    assert "data.archive_file.source.output_md5" in obj["name"], (
        "the zip's MD5 must be part of the object name"
    )
    fn = next(iter(resources_of(FN_MODULE, "google_cloudfunctions2_function").values()))
    storage = block(block(block(fn, "build_config"), "source"), "storage_source")
    assert storage["object"] == "${google_storage_bucket_object.source.name}"


def test_there_are_functions_and_no_function_bypasses_the_module() -> None:
    assert function_calls(), "no function module calls in terraform/"
    assert not resources_of(ROOT, "google_cloudfunctions2_function"), (
        "declare functions through modules/function so the invariants below apply"
    )


def test_each_function_has_its_own_service_account() -> None:
    service_accounts = resources_of(ROOT, "google_service_account")
    assert {"backup_export", "health_check"} <= set(function_calls())
    seen: dict[str, str] = {}
    trigger_sas = set()
    for name, call in function_calls().items():
        sa_ref = ref(call["service_account_email"])
        assert sa_ref, f"module.{name}: service_account_email must reference a resource"
        assert re.fullmatch(r"google_service_account\.\w+\.email", sa_ref), (
            f"module.{name}: service_account_email must reference a google_service_account"
        )
        sa = sa_ref.split(".")[1]
        assert sa in service_accounts, f"module.{name}: google_service_account.{sa} is not declared"
        assert sa not in seen, (
            f"module.{name} shares google_service_account.{sa} with module.{seen[sa]}"
        )
        seen[sa] = name
        trigger = event_trigger_of(call)
        if trigger:
            trigger_sas.add(str(ref(trigger["service_account_email"])).split(".")[1])
    assert not trigger_sas & set(seen), (
        "a function's runtime identity must not be the event trigger identity"
    )
    account_ids = [body["account_id"] for body in service_accounts.values()]
    assert len(account_ids) == len(set(account_ids)), "duplicate service account ids"


def _ingress_choices(call: dict[str, Any]) -> set[str]:
    """Every ingress value the call can take: the literal, or what its root variable allows."""
    ingress = call["ingress_settings"]
    variable = re.fullmatch(r"var\.(\w+)", ref(ingress) or "")
    if not variable:
        assert ingress in INGRESS_VALUES, f"unknown ingress {ingress!r}"
        return {ingress}
    spec = ROOT_VARS[variable.group(1)]
    conditions = " ".join(v["condition"] for v in spec.get("validation", []))
    allowed = set(re.findall(r"ALLOW_[A-Z_]+", conditions))
    assert allowed and allowed <= INGRESS_VALUES, (
        f"var.{variable.group(1)} must be validated against the ingress values"
    )
    assert spec.get("default") in allowed, f"var.{variable.group(1)} default is not allowed"
    return allowed


def test_event_functions_ingress_internal_only() -> None:
    for name, call in function_calls().items():
        if event_trigger_of(call):
            assert call["ingress_settings"] == "ALLOW_INTERNAL_ONLY", (
                f"module.{name} is event-driven yet reachable from outside"
            )


def test_externally_reachable_functions_are_iam_only_http_functions() -> None:
    """Ingress beyond the VPC is acceptable only for HTTP functions invoked with IAM."""
    external = {
        name
        for name, call in function_calls().items()
        if _ingress_choices(call) - {"ALLOW_INTERNAL_ONLY"}
    }
    assert external == {"health_check"}, f"functions reachable from outside: {external}"
    for name in external:
        call = function_calls()[name]
        assert event_trigger_of(call) is None, f"module.{name}"
        assert call["invoker_members"] == "${var.invoker_members}", (
            f"module.{name}: invokers must come from var.invoker_members only"
        )


def test_ingress_scanner_suppression_is_scoped_to_health_check() -> None:
    """checkov's CKV_GCP_124 (permissive ingress) may be skipped for module.health_check only.

    A skip inside modules/function would silence it for every function, event-driven ones too.
    """
    hits = [
        (path.relative_to(TF_DIR), line)
        for path in tf_files()
        for line in path.read_text(encoding="utf-8").splitlines()
        if "checkov:skip=CKV_GCP_124" in line
    ]
    assert [str(p) for p, _ in hits] in ([], ["functions.tf"]), hits
    text = (TF_DIR / "functions.tf").read_text(encoding="utf-8")
    for match in re.finditer(r"checkov:skip=CKV_GCP_124", text):
        enclosing = re.findall(r'^module "(\w+)"', text[: match.start()], re.MULTILINE)
        assert enclosing and enclosing[-1] == "health_check", (
            "CKV_GCP_124 skipped outside health_check"
        )


def test_health_check_ingress_variable() -> None:
    spec = ROOT_VARS["health_check_ingress"]
    assert "string" in spec["type"]
    assert _ingress_choices(function_calls()["health_check"]) == INGRESS_VALUES


def test_event_functions_timeout_and_retry() -> None:
    event_calls = {n: c for n, c in function_calls().items() if event_trigger_of(c)}
    assert event_calls, "no event-driven function"
    for name, call in event_calls.items():
        assert as_int(call["timeout_seconds"]) <= EVENT_MAX_TIMEOUT, (
            f"module.{name}: timeout > {EVENT_MAX_TIMEOUT}"
        )
        trigger = require_trigger(call)
        assert trigger.get("retry_policy", "RETRY_POLICY_RETRY") == "RETRY_POLICY_RETRY", (
            f"module.{name}"
        )
        sa_ref = ref(trigger["service_account_email"])
        assert sa_ref, f"module.{name}: the trigger identity must reference a resource"
        assert re.fullmatch(r"google_service_account\.\w+\.email", sa_ref), (
            f"module.{name}: the trigger must run as a dedicated service account"
        )
        topic_ref = ref(trigger["pubsub_topic"])
        assert topic_ref, f"module.{name}: pubsub_topic must reference a topic"
        assert re.fullmatch(r"google_pubsub_topic\.\w+\.id", topic_ref), f"module.{name}"


def test_http_functions_have_no_trigger_and_an_http_timeout() -> None:
    http_calls = {n: c for n, c in function_calls().items() if not event_trigger_of(c)}
    assert set(http_calls) == {"health_check"}, f"HTTP functions: {set(http_calls)}"
    for name, call in http_calls.items():
        assert "event_trigger" not in module_calls(ROOT)[name], f"module.{name}"
        assert as_int(call["timeout_seconds"]) <= HTTP_MAX_TIMEOUT, (
            f"module.{name}: timeout > {HTTP_MAX_TIMEOUT}"
        )


def test_invoker_members_only_reach_http_functions() -> None:
    for name, call in function_calls().items():
        members = call["invoker_members"]
        if event_trigger_of(call):
            assert members == [], f"module.{name}: an event-driven function takes no invokers"
        else:
            assert members == "${var.invoker_members}", (
                f"module.{name}: invokers must be exactly var.invoker_members"
            )


def test_health_check_function() -> None:
    call = function_calls()["health_check"]
    assert call["name"] == "health-check"
    assert call["entry_point"] == "health_check"
    assert call["runtime"] == "${var.python_runtime}"
    assert call["source_dir"] == "${local.function_source_dir}/health_check"
    assert event_trigger_of(call) is None, "health_check is an HTTP function: no event_trigger"
    assert as_int(call["timeout_seconds"]) == 60
    assert call["available_memory"] == "512Mi"
    assert as_int(call["max_instance_count"]) == 3
    assert as_int(call["min_instance_count"]) == 0
    assert call["ingress_settings"] == "${var.health_check_ingress}"
    assert call["invoker_members"] == "${var.invoker_members}"
    env = call["environment_variables"]
    assert env == {"OPSUITE_BACKEND": "gcp", "OPSUITE_CONFIG": "opsuite.yaml"}
    assert call["service_account_email"] == "${google_service_account.health_check.email}"
    assert call["build_service_account"] == "${google_service_account.build.id}"
    assert (
        resources_of(ROOT, "google_service_account")["health_check"]["account_id"]
        == "opsuite-health-check"
    )


def test_backup_export_function() -> None:
    call = function_calls()["backup_export"]
    assert call["name"] == "backup-export"
    assert call["entry_point"] == "backup_export"
    assert call["runtime"] == "${var.python_runtime}"
    assert call["source_dir"].endswith("/backup_export")
    assert "local.function_source_dir" in call["source_dir"]
    assert as_int(call["timeout_seconds"]) == 540
    assert call["available_memory"] == "1Gi"
    assert as_int(call["max_instance_count"]) == 3
    env = call["environment_variables"]
    assert env == {
        "OPSUITE_BACKEND": "gcp",
        "OPSUITE_CONFIG": "opsuite.yaml",
        "OPSUITE_BACKUP_BUCKET": "${google_storage_bucket.backup.name}",
        "OPSUITE_PROJECT": "${local.project_id}",
    }
    assert call["service_account_email"] == "${google_service_account.backup_export.email}"
    trigger = require_trigger(call)
    assert trigger["pubsub_topic"] == "${google_pubsub_topic.backup_trigger.id}"
    assert trigger["service_account_email"] == "${google_service_account.event_trigger.email}"
    assert (
        resources_of(ROOT, "google_service_account")["backup_export"]["account_id"]
        == "opsuite-backup-export"
    )
    local_default = "".join(strings(ROOT.get("locals", [])))
    assert "path.module}/../build" in local_default, (
        "function_source_dir must default to <terraform>/../build"
    )


# --------------------------------------------------------------------------------------
# IAM, per identity
# --------------------------------------------------------------------------------------


def _grant_resources(sa: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every grant to google_service_account.<sa>: IAM members, and dataset access entries
    (the pipeline's datasets: *_iam_member there would drop their authorized views)."""
    return [
        (rtype, name, body)
        for module in all_modules().values()
        for rtype, name, body in resources(module)
        if (IAM_MEMBER_TYPE.match(rtype) and f"google_service_account.{sa}." in body["member"])
        or (
            rtype == "google_bigquery_dataset_access"
            and body.get("user_by_email") == f"${{google_service_account.{sa}.email}}"
        )
    ]


def _grants_to(sa: str) -> set[tuple[str, str, str]]:
    """(resource type, role, target) of every grant whose member is google_service_account.<sa>."""
    grants: set[tuple[str, str, str]] = set()
    for rtype, _name, body in _grant_resources(sa):
        target = (
            body.get("dataset_id")
            or body.get("bucket")
            or body.get("topic")
            or body.get("service")
            or body.get("service_account_id")
            or body.get("project")
        )
        grants.add((rtype, str(body["role"]), str(target)))
    return grants


_DATA_DATASET = "${google_bigquery_dataset.data[each.value].dataset_id}"


def test_backup_export_roles_are_exactly_the_expected_set() -> None:
    assert _grants_to("backup_export") == {
        ("google_project_iam_member", "roles/bigquery.jobUser", "${local.project_id}"),
        ("google_bigquery_dataset_access", "READER", _DATA_DATASET),
        (
            "google_bigquery_dataset_iam_member",
            "roles/bigquery.dataEditor",
            "${google_bigquery_dataset.drill.dataset_id}",
        ),
        (
            "google_storage_bucket_iam_member",
            "roles/storage.objectAdmin",
            "${google_storage_bucket.backup.name}",
        ),
        (
            "google_pubsub_topic_iam_member",
            "roles/pubsub.publisher",
            "${google_pubsub_topic.backup_trigger.name}",
        ),
        (
            "google_pubsub_topic_iam_member",
            "roles/pubsub.publisher",
            "${google_pubsub_topic.backup_events.name}",
        ),
    }
    viewers = [
        b for t, _n, b in _grant_resources("backup_export") if t == "google_bigquery_dataset_access"
    ]
    assert [b["for_each"] for b in viewers] == ["${toset(local.backup_datasets)}"], (
        "dataViewer must be granted per backed-up dataset (from the config), nothing wider"
    )


def test_health_check_roles_are_exactly_the_expected_set() -> None:
    grants = _grant_resources("health_check")
    assert len(grants) == 3, [f"{t}.{n}" for t, n, _ in grants]
    assert _grants_to("health_check") == {
        ("google_project_iam_member", "roles/bigquery.jobUser", "${local.project_id}"),
        ("google_bigquery_dataset_access", "READER", _DATA_DATASET),
        (
            "google_storage_bucket_iam_member",
            "roles/storage.objectViewer",
            "${google_storage_bucket.backup.name}",
        ),
    }
    viewers = [b for t, _n, b in grants if t.startswith("google_bigquery_")]
    assert [b["for_each"] for b in viewers] == ["${toset(local.health_datasets)}"], (
        "dataViewer must be granted per probed dataset (from the config), nothing wider"
    )
    # No grant on any service account (no impersonation) and none on a topic or secret.
    assert not [
        t
        for t, _n, _b in grants
        if t.startswith(("google_service_account_", "google_pubsub_", "google_secret_"))
    ]


def test_health_check_has_no_write_role() -> None:
    roles = {str(body["role"]) for _t, _n, body in _grant_resources("health_check")}
    assert roles <= READ_ONLY_ROLES, (
        f"health_check holds non-read-only roles {roles - READ_ONLY_ROLES}"
    )
    writes = {r for r in roles if WRITE_ROLE.search(r)}
    assert not writes, f"health_check holds write roles {writes}"


def test_event_trigger_identity_only_invokes_function_services() -> None:
    assert _grants_to("event_trigger") == set(), (
        "the trigger identity must get no grant in the root module"
    )
    trigger_grants = [
        body
        for rtype, _n, body in iam_resources(FN_MODULE)
        if "var.event_trigger.service_account_email" in body["member"]
    ]
    assert len(trigger_grants) == 1
    grant = trigger_grants[0]
    assert grant["role"] == "roles/run.invoker"
    assert grant["service"] == "${google_cloudfunctions2_function.this.name}"


def test_pubsub_service_agent_token_creator_is_scoped_to_trigger_sa() -> None:
    grants = resources_of(ROOT, "google_service_account_iam_member")
    token = [b for b in grants.values() if b["role"] == "roles/iam.serviceAccountTokenCreator"]
    assert len(token) == 1
    assert token[0]["service_account_id"] == "${google_service_account.event_trigger.name}"
    assert "@gcp-sa-pubsub.iam.gserviceaccount.com" in token[0]["member"]


MONITORING_AGENT = (
    "serviceAccount:service-${data.google_project.this.number}"
    "@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
)


def test_invoker_grants_come_only_from_invoker_members() -> None:
    # roles/cloudfunctions.invoker grants nothing on a 2nd gen function: never used
    for label, module in all_modules().items():
        for rtype, name, body in iam_resources(module):
            assert body["role"] != "roles/cloudfunctions.invoker", f"{label}: {rtype}.{name}"
            if body["role"] != "roles/run.invoker":
                continue
            from_variable = (
                body["member"] == "${each.value}"
                and body.get("for_each") == "${toset(var.invoker_members)}"
            )
            trigger = body["member"] == "serviceAccount:${var.event_trigger.service_account_email}"
            # the uptime check's service agent, on the health check only (monitoring.tf)
            uptime = (
                label == "root"
                and body["member"] == MONITORING_AGENT
                and "module.health_check" in str(body.get("service", body.get("name", "")))
            )
            assert from_variable or trigger or uptime, (
                f"{label}: {rtype}.{name} grants {body['role']} to {body['member']}"
            )
            if label != "root":
                assert "google_cloudfunctions2_function.this.name" in body.get("service", ""), (
                    f"{label}: {rtype}.{name} must be scoped to the function, not the project"
                )
    roles = {
        b["role"] for _t, _n, b in iam_resources(FN_MODULE) if b.get("member") == "${each.value}"
    }
    assert roles == {"roles/run.invoker"}, "HTTP invokers get roles/run.invoker"


# --------------------------------------------------------------------------------------
# Outputs and docs
# --------------------------------------------------------------------------------------


def _outputs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in ROOT.get("output", []):
        out.update(entry)
    return out


def test_health_check_url_output() -> None:
    outputs = _outputs()
    assert outputs["health_check_url"]["value"] == "${module.health_check.uri}"
    assert outputs["health_check_url"].get("description")
    assert outputs["service_accounts"]["value"]["health_check"] == (
        "${google_service_account.health_check.email}"
    )


def test_readme_documents_invoking_the_health_check() -> None:
    readme = (TF_DIR / "README.md").read_text(encoding="utf-8")
    assert "## Invoking the health check" in readme
    section = readme.split("## Invoking the health check", 1)[1].split("\n## ", 1)[0]
    assert 'curl -H "Authorization: Bearer $(gcloud auth print-identity-token)"' in section
    assert '"$(terraform output -raw health_check_url)?mode=full"' in section
    assert "roles/run.invoker" in section
    assert "invoker_members" in section
    assert "group:oncall@example.com" in section


# --------------------------------------------------------------------------------------
# Buckets
# --------------------------------------------------------------------------------------


def _delete_rules(bucket: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block(r, "condition")
        for r in blocks(bucket, "lifecycle_rule")
        if block(r, "action").get("type") == "Delete"
    ]


def test_every_bucket_is_private() -> None:
    buckets = resources_of(ROOT, "google_storage_bucket")
    assert {"backup", "function_source"} <= set(buckets)
    for name, bucket in buckets.items():
        assert bucket.get("uniform_bucket_level_access") is True, name
        assert bucket.get("public_access_prevention") == "enforced", name
        assert bucket.get("force_destroy", False) is False, name
        assert not block(bucket, "retention_policy").get("is_locked"), (
            f"{name}: locked retention policy"
        )


def test_backup_bucket_dr_settings() -> None:
    bucket = resources_of(ROOT, "google_storage_bucket")["backup"]
    assert bucket["name"] == "${local.backup_bucket}"
    assert bucket["location"] == "${local.location}"
    assert bucket["project"] == "${coalesce(var.backup_project_id, local.project_id)}"
    assert block(bucket, "versioning").get("enabled") is True
    assert "retention_policy" not in bucket, (
        "no retention policy: BigQuery may rewrite export files"
    )
    # soft delete >= 7 days: a writer that deletes exports can't make them unrecoverable
    retention = block(bucket, "soft_delete_policy").get("retention_duration_seconds")
    assert retention == "${var.soft_delete_retention_days * 86400}"
    assert (
        "var.soft_delete_retention_days >= 7"
        in ROOT_VARS["soft_delete_retention_days"]["validation"][0]["condition"]
    )
    assert block(bucket, "lifecycle").get("prevent_destroy") is True
    assert bucket.get("labels"), "backup bucket must be labelled"
    rules = _delete_rules(bucket)
    assert any(c.get("age") == "${var.backup_retention_days}" for c in rules), (
        "no delete at var.backup_retention_days"
    )
    assert any(
        c.get("days_since_noncurrent_time") == "${var.noncurrent_version_retention_days}"
        for c in rules
    ), "noncurrent versions must expire after var.noncurrent_version_retention_days"


# the suite's state the code manages itself: no lifecycle rule may age it out
_MANAGED_STATE = ("_opsuite/alerts/silences/", "_opsuite/alerts/active/",
                  "_opsuite/alerts/groups/", "_opsuite/slo/announced/")  # fmt: skip


def test_live_objects_age_out_only_under_their_own_prefixes() -> None:
    # a 60-day silence deleted by a 30-day backup rule would lift silently
    bucket = resources_of(ROOT, "google_storage_bucket")["backup"]
    live = [c for c in _delete_rules(bucket) if c.get("with_state") != "ARCHIVED"]
    assert live, "no delete rule for live objects"
    for condition in live:
        prefixes = condition.get("matches_prefix")
        assert prefixes, f"a live-object delete rule without matches_prefix: {condition}"
        for managed in _MANAGED_STATE:
            assert not any(managed.startswith(p) or p.startswith(managed) for p in prefixes), (
                f"{condition} would delete {managed}"
            )
    by_age = {c["age"]: c["matches_prefix"] for c in live}
    assert by_age["${var.backup_retention_days}"] == ["${local.backup_prefix}/"]
    assert "_opsuite/alerts/ledger/" in by_age["${var.ops_history_retention_days}"]


def test_delete_rules_without_age_do_not_match_everything() -> None:
    """Without send_age_if_zero = false the provider adds age = 0, matching every object."""
    for name, bucket in resources_of(ROOT, "google_storage_bucket").items():
        for condition in _delete_rules(bucket):
            if "age" not in condition:
                assert condition.get("send_age_if_zero") is False, (
                    f"{name}: delete rule {condition} would match age >= 0"
                )


# --------------------------------------------------------------------------------------
# Pub/Sub, Scheduler, APIs
# --------------------------------------------------------------------------------------


def test_topics() -> None:
    topics = resources_of(ROOT, "google_pubsub_topic")
    assert set(topics) == {
        "backup_trigger",
        "backup_events",
        "sla_trigger",
        "alerts",
        "monitoring_incidents",
    }
    for name, body in topics.items():
        assert re.fullmatch(r"\d+s", body.get("message_retention_duration", "")), (
            f"{name}: message_retention_duration"
        )
        if name != "monitoring_incidents":  # infrastructure's own: the code never names it
            assert body["name"] == f"${{local.topics.{name}}}", f"{name}: not from the config"


def _jobs() -> dict[str, dict[str, Any]]:
    return resources_of(ROOT, "google_cloud_scheduler_job")


def test_scheduler_jobs_target_their_topics() -> None:
    jobs = _jobs()
    assert set(jobs) == {"backup", "restore_drill", "sla", "alert_tick"}
    expected = {
        "backup": ("backup_trigger", '${base64encode("{}")}', "${local.backup_cron}"),
        "restore_drill": (
            "backup_trigger",
            '${base64encode(jsonencode({action = "restore_drill"}))}',
            "${var.drill_schedule}",
        ),
        "sla": ("sla_trigger", '${base64encode("{}")}', "${local.sla_cron}"),
        "alert_tick": ("alerts", '${base64encode("{}")}', "*/5 * * * *"),
    }
    for name, (topic, data, schedule) in expected.items():
        job = jobs[name]
        target = block(job, "pubsub_target")
        assert target["topic_name"] == f"${{google_pubsub_topic.{topic}.id}}", name
        assert target["data"].replace(" ", "") == data.replace(" ", ""), (name, target["data"])
        assert job["schedule"] == schedule, name
        assert job["time_zone"] == "Etc/UTC", name
    assert block(jobs["alert_tick"], "pubsub_target")["attributes"] == {"event_type": "alerts.tick"}
    # the backup and the drill retry (an unacknowledged publish is retried by Scheduler)
    retry = next(iter(local for local in ROOT["locals"] if "scheduler_retry" in local))
    assert as_int(retry["scheduler_retry"]["retry_count"]) >= 1
    for name in ("backup", "restore_drill"):
        count = block(jobs[name], "retry_config")["retry_count"]
        assert count == "${local.scheduler_retry.retry_count}", name


def test_the_tick_attribute_is_the_routers() -> None:
    from shared.services.alert_event import TICK_EVENT

    tick = block(_jobs()["alert_tick"], "pubsub_target")["attributes"]["event_type"]
    assert tick == TICK_EVENT


def test_required_apis_enabled_and_never_disabled() -> None:
    services = resources_of(ROOT, "google_project_service")
    assert len(services) == 1
    service = next(iter(services.values()))
    assert service["disable_on_destroy"] is False
    assert service["for_each"] == "${local.required_apis}"
    apis = set()
    for local in ROOT.get("locals", []):
        if "required_apis" in local:
            apis = set(re.findall(r"[a-z]+\.googleapis\.com", local["required_apis"]))
    missing = REQUIRED_APIS - apis
    assert not missing, f"APIs not enabled: {missing}"


# --------------------------------------------------------------------------------------
# terraform binary (works offline: neither command needs the google provider)
# --------------------------------------------------------------------------------------

TERRAFORM = shutil.which("terraform") or ""
needs_terraform = pytest.mark.skipif(
    not TERRAFORM,
    reason="terraform binary not on PATH: skipping `terraform fmt` and variable validation checks",
)


@needs_terraform
def test_terraform_fmt() -> None:
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        "terraform fmt -check failed; run `terraform fmt -recursive terraform`\n"
        f"{result.stdout}{result.stderr}"
    )


@pytest.fixture(scope="module")
def variables_only_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """terraform/variables.tf and config.tf (var.config_file and what it derives) alone:
    planning them needs no provider, so the validations run offline."""
    work = tmp_path_factory.mktemp("tfvars")
    shutil.copy(TF_DIR / "variables.tf", work / "variables.tf")
    shutil.copy(TF_DIR / "config.tf", work / "config.tf")
    (work / "outputs.tf").write_text(
        'output "ok" {\n  value = [var.region, local.project_id]\n}\n', encoding="utf-8"
    )
    result = _terraform(work, "init", "-backend=false", "-input=false")
    assert result.returncode == 0, result.stdout + result.stderr
    return work


def _terraform(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TF_IN_AUTOMATION": "1",
        "TF_DATA_DIR": str(work / ".terraform"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [TERRAFORM, f"-chdir={work}", *args, *([] if args[0] == "init" else ["-no-color"])],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


EXAMPLE_CONFIG_FILE = TF_DIR.parent / "config" / "opsuite.example.yaml"
GOOD_VARS = [f"-var=config_file={EXAMPLE_CONFIG_FILE}", "-var=adopt_existing_datasets=true"]


@needs_terraform
@pytest.mark.parametrize(
    ("extra", "accepted"),
    [
        ([], True),
        (['-var=invoker_members=["group:oncall@example.com"]'], True),
        (['-var=invoker_members=["allUsers"]'], False),
        (['-var=invoker_members=["allAuthenticatedUsers"]'], False),
        (["-var=noncurrent_version_retention_days=0"], False),
        (["-var=backup_retention_days=0"], False),
        (["-var=soft_delete_retention_days=6"], False),  # soft delete is at least 7 days
        (["-var=soft_delete_retention_days=91"], False),
        (["-var=soft_delete_retention_days=7"], True),
        (["-var=ops_history_retention_days=30"], False),
        (["-var=history_retention_days=10"], False),
        (["-var=region=us-central1-a"], False),
        (["-var=health_check_ingress=ALLOW_INTERNAL_AND_GCLB"], True),
        (["-var=health_check_ingress=ALLOW_INTERNAL_ONLY"], True),
        (["-var=health_check_ingress=ALLOW_PUBLIC"], False),
        (["-var=health_check_ingress=allow_all"], False),
        (["-var=drill_schedule=0 11 * * 1"], True),
        (["-var=drill_schedule=0  11 * * 1"], False),  # a double space
        (["-var=drill_schedule=weekly"], False),
        (["-var=backup_project_id=nba-backups-dr"], True),
        (["-var=backup_project_id=Bad_Project"], False),
        (["-var=runbook_url=http://example.com/runbook"], False),
        (["-var=api_propagation_wait=2m"], True),
        (["-var=api_propagation_wait=soon"], False),
        (["-var=config_file=opsuite.json"], False),  # not a YAML file
    ],
)
def test_variable_validation(
    variables_only_workspace: Path, extra: list[str], accepted: bool
) -> None:
    args = [*GOOD_VARS, *extra]
    # Later -var flags win, so a bad value in `extra` overrides the good default above.
    result = _terraform(
        variables_only_workspace, "plan", "-input=false", "-lock=false", "-refresh=false", *args
    )
    output = result.stdout + result.stderr
    if accepted:
        assert result.returncode == 0, output
    else:
        assert result.returncode != 0, output
        assert "Invalid value for variable" in output, output
