"""Static checks of the Cloud Monitoring Terraform (terraform/monitoring.tf, dashboard.tf).

Only these two files are parsed (copied into a directory of their own), so the tests don't
depend on the rest of the root module. The locals that depend on nothing but the suite's
configuration (SLOs, burn-rate pairs, the drill SLOs) are evaluated by ``terraform console``
against config/opsuite.example.yaml (skipped without the binary: it needs no provider).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import Settings, load_settings
from shared.metrics import METRICS, MetricSpec
from shared.services.sla_assess import duration_label
from tests.helpers import EXAMPLE_CONFIG
from tests.terraform.test_terraform import (
    TF_DIR,
    block,
    blocks,
    load_module,
    resources_of,
    strings,
)
from tools import tf_catalog

MY_FILES = ("monitoring.tf", "dashboard.tf")
TERRAFORM = shutil.which("terraform")

APIS_READY = "${time_sleep.apis_ready}"
DESCRIPTORS = "${google_monitoring_metric_descriptor.opsuite}"
CHANNEL_ID = "${google_monitoring_notification_channel.incidents.id}"
CHANNEL = "${google_monitoring_notification_channel.incidents}"
AGENT_READY = "${time_sleep.monitoring_agent_ready}"
AGENT = (
    "serviceAccount:service-${data.google_project.this.number}"
    "@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
)
SEVERITIES = {"p0": "CRITICAL", "p1": "CRITICAL", "p2": "ERROR", "p3": "WARNING"}
FUNCTIONS = ("backup_export", "health_check", "sla_evaluator", "alert_router")
BUILTIN_TYPES = {
    "run.googleapis.com/request_count",
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
    "monitoring.googleapis.com/uptime_check/check_passed",
}
#: the locals that depend on the configuration only: evaluated by terraform console
PURE_LOCALS = (
    "mon_metric_prefix",
    "mon_severity",
    "mon_slos",
    "mon_cadence_seconds",
    "mon_slo_alignment",
    "mon_period_seconds",
    "mon_default_burn_rates",
    "mon_burn_seconds",
    "mon_burn_tiers",
    "mon_burn_policies",
    "mon_drill_slos",
    "mon_period_hours",
    "mon_backup_warn",
    "mon_backup_warn_hours",
)


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mon(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """monitoring.tf + dashboard.tf alone, merged by the shared helper."""
    directory = tmp_path_factory.mktemp("monitoring-tf")
    for name in MY_FILES:
        shutil.copy(TF_DIR / name, directory / name)
    return load_module(directory)


def locals_of(module: dict[str, list[Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in module.get("locals", []):
        out.update(entry)
    return out


def policies(module: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return resources_of(module, "google_monitoring_alert_policy")


def conditions(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return blocks(policy, "conditions")


def threshold(condition: dict[str, Any]) -> dict[str, Any]:
    return block(condition, "condition_threshold")


def unescape(text: str) -> str:
    """python-hcl2 keeps a quoted string's \\" escapes."""
    return text.replace('\\"', '"')


def settings() -> Settings:
    return load_settings(EXAMPLE_CONFIG, env={})


def log_metric_names(module: dict[str, list[Any]]) -> dict[str, str]:
    return {n: b["name"] for n, b in resources_of(module, "google_logging_metric").items()}


def resolve(text: str, module: dict[str, list[Any]]) -> str:
    """Substitute the references a filter builds metric types from."""
    local = locals_of(module)
    text = unescape(text)
    text = text.replace("${local.mon_metric_prefix}", local["mon_metric_prefix"])
    for name, metric in log_metric_names(module).items():
        text = text.replace(f"${{google_logging_metric.{name}.name}}", metric)
    return text


def metric_types(text: str) -> list[str]:
    return re.findall(r'metric\.type\s*=\s*"([^"]*)"', text)


def allowed_types(module: dict[str, list[Any]]) -> set[str]:
    logged = {f"logging.googleapis.com/user/{n}" for n in log_metric_names(module).values()}
    return {m.type for m in METRICS} | logged | BUILTIN_TYPES


def depends_on(body: dict[str, Any]) -> list[str]:
    value = body.get("depends_on", [])
    return list(value) if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------
# terraform console over the configuration-only locals
# --------------------------------------------------------------------------------------


def console(module: dict[str, list[Any]], config: Path, tmp: Path, expr: str) -> Any:
    if TERRAFORM is None:
        pytest.skip("terraform binary not installed (terraform console needs no provider)")
    local = locals_of(module)
    values: dict[str, Any] = {"config": f'${{yamldecode(file("{config.as_posix()}"))}}'}
    values.update({name: local[name] for name in PURE_LOCALS})
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "locals.tf.json").write_text(json.dumps({"locals": values}), encoding="utf-8")
    result = subprocess.run(
        [TERRAFORM, f"-chdir={tmp}", "console"],
        input=f"jsonencode({expr})\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    return json.loads(json.loads(line))


def expected_burn_policies(config: Settings) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for slo in config.slos.objectives:
        for alert in config.slos.burn_rates:
            long = duration_label(timedelta(seconds=alert.long_window.seconds))
            short = duration_label(timedelta(seconds=alert.short_window.seconds))
            out[f"{slo.name}-{long}-{short}"] = {
                "slo": slo.name,
                "long": long,
                "short": short,
                "rate": alert.rate,
                "urgency": alert.notify,
                "severity": "p3" if alert.notify == "ticket" else slo.severity.lower(),
                "anchor": "fast-burn" if alert.rate >= 10 else "slow-burn",
            }
    return out


CUSTOM_BURN_RATES = """
  burn_rates:
    - {long_window: {count: 2, period: hour}, short_window: {count: 30, period: minute}, rate: 10}
    - {long_window: {count: 1, period: day}, short_window: {count: 120, period: minute}, rate: 2, notify: ticket}
"""


def _custom_config(tmp: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    marker = "  cadence_minutes: 15"
    assert marker in text
    path = tmp / "opsuite.yaml"
    path.write_text(text.replace(marker, marker + CUSTOM_BURN_RATES, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("variant", ["example", "custom_burn_rates"])
def test_each_slo_gets_breach_and_burn_policies(
    mon: dict[str, list[Any]], tmp_path: Path, variant: str
) -> None:
    config_path = EXAMPLE_CONFIG if variant == "example" else _custom_config(tmp_path)
    config = load_settings(config_path, env={})
    assert len(config.slos.objectives) == 6
    names = [s.name for s in config.slos.objectives]
    # static first: they hold without the terraform binary too
    pol = policies(mon)
    assert pol["slo_breach"]["for_each"] == "${local.mon_slos}"
    assert pol["slo_burn"]["for_each"] == "${local.mon_burn_policies}"
    assert pol["restore_drill"]["for_each"] == "${local.mon_drill_slos}"
    # the breach filter, rendered per SLO: one series per SLO, on the evaluator's budget
    breach = unescape(threshold(conditions(pol["slo_breach"])[0])["filter"])
    rendered = {resolve(breach, mon).replace("${each.key}", n) for n in names}
    assert len(rendered) == len(names)
    for name in names:
        text = resolve(breach, mon).replace("${each.key}", name)
        assert metric_types(text) == ["custom.googleapis.com/opsuite/slo/budget_remaining"]
        assert f'metric.labels.slo="{name}"' in text
    got = console(
        mon,
        config_path,
        tmp_path / "tf",
        "{ slos = keys(local.mon_slos), burns = local.mon_burn_policies,"
        " alignment = local.mon_slo_alignment, drill = keys(local.mon_drill_slos) }",
    )
    assert sorted(got["slos"]) == sorted(names)
    assert got["burns"] == expected_burn_policies(config)
    assert got["alignment"] == f"{2 * config.slos.cadence_minutes * 60}s"
    recovery = [s.name for s in config.slos.objectives if s.sli.kind == "recovery_time"]
    assert sorted(got["drill"]) == sorted(recovery)
    if variant == "example":
        assert recovery == ["bigquery_recovery_time"]
        pairs = {(b["long"], b["short"], b["rate"]) for b in got["burns"].values()}
        # the SRE workbook's fast and slow pairs as the evaluator writes them
        assert {("1h", "15m", 14.4), ("6h", "1h", 6)} <= pairs


def test_default_burn_rates_equal_the_codes(mon: dict[str, list[Any]]) -> None:
    from shared.config import _default_burn_rates

    code = [a.model_dump() for a in _default_burn_rates()]
    assert locals_of(mon)["mon_default_burn_rates"] == code


def test_mon_locals_read_the_config(mon: dict[str, list[Any]]) -> None:
    local = locals_of(mon)
    assert local["mon_slos"] == (
        "${{for s in try(local.config.slos.objectives, []) : s.name => s}}"
    )
    assert "local.config.slos.burn_rates" in local["mon_burn_seconds"]
    assert local["mon_severity"] == SEVERITIES


# --------------------------------------------------------------------------------------
# Metric descriptors
# --------------------------------------------------------------------------------------


def test_metrics_json_is_what_the_generator_writes_now() -> None:
    assert (TF_DIR / "metrics.json").read_text(encoding="utf-8") == tf_catalog.render(), (
        "terraform/metrics.json is stale: run python -m tools.tf_catalog"
    )


def test_every_metric_has_a_descriptor() -> None:
    catalog = json.loads((TF_DIR / "metrics.json").read_text(encoding="utf-8"))
    assert set(catalog) == {m.type for m in METRICS}
    for spec in METRICS:
        entry = catalog[spec.type]
        assert entry["metric_kind"] == "GAUGE", spec.type
        assert entry["value_type"] == spec.value_type, spec.type
        assert entry["unit"] == spec.unit, spec.type
        assert entry["description"] == spec.description, spec.type
        assert entry["display_name"], spec.type
        assert set(entry["labels"]) == set(spec.labels), spec.type
        assert all(entry["labels"].values()), f"{spec.type}: a label without description"


def test_descriptor_resource_iterates_over_the_catalog(mon: dict[str, list[Any]]) -> None:
    descriptors = resources_of(mon, "google_monitoring_metric_descriptor")
    assert list(descriptors) == ["opsuite"], "one for_each resource, no hand-written ones"
    body = descriptors["opsuite"]
    assert body["for_each"] == '${jsondecode(file("${path.module}/metrics.json"))}'
    assert body["type"] == "${each.key}"
    for attr in ("metric_kind", "value_type", "unit", "display_name", "description"):
        assert body[attr] == f"${{each.value.{attr}}}", attr
    dynamic = blocks(body, "dynamic")
    assert len(dynamic) == 1 and "labels" in dynamic[0]
    labels = dynamic[0]["labels"]
    assert labels["for_each"] == "${each.value.labels}"
    content = block(labels, "content")
    assert content == {
        "key": "${labels.key}",
        "value_type": "STRING",
        "description": "${labels.value}",
    }
    assert APIS_READY in depends_on(body)


def test_generator_refuses_an_undocumented_label_and_checks_staleness(tmp_path: Path) -> None:
    odd = MetricSpec("x/y", "DOUBLE", "1", ("nope",), "d")
    with pytest.raises(ValueError, match="nope"):
        tf_catalog.catalog((odd,))
    target, schema = tmp_path / "metrics.json", tmp_path / "history_schema.json"
    out = ["--output", str(target), "--history-output", str(schema)]
    assert tf_catalog.main(["--check", *out]) == 1
    assert tf_catalog.main(out) == 0
    assert tf_catalog.main(["--check", *out]) == 0
    assert target.read_text(encoding="utf-8") == tf_catalog.render()
    schema.write_text("[]\n")  # one stale file is enough to fail the check
    assert tf_catalog.main(["--check", *out]) == 1


# --------------------------------------------------------------------------------------
# Alert policies
# --------------------------------------------------------------------------------------

_LITERAL_SEVERITY = re.compile(r'\$\{local\.mon_severity\["(p[0-3])"\]\}')
_EXPR_SEVERITY = {
    # for_each policies: the user label and the Monitoring severity from the same value
    "${lower(each.value.severity)}": "${local.mon_severity[lower(each.value.severity)]}",
    "${each.value.severity}": "${local.mon_severity[each.value.severity]}",
}


def _filters(policy: dict[str, Any]) -> list[str]:
    out: list[Any] = []
    for condition in conditions(policy):
        for kind in ("condition_threshold", "condition_absent"):
            if kind in condition:
                out.append(unescape(block(condition, kind)["filter"]))
    return out


#: policies on what the SLA evaluator already publishes as slo.* events (routed by the alert
#: router): a channel would page twice for one breach under two fingerprints
EVALUATOR_PAGES = {"slo_breach", "slo_burn", "restore_drill"}


def test_every_alert_policy_is_documented_labelled_and_routed(
    mon: dict[str, list[Any]],
) -> None:
    pol = policies(mon)
    assert set(pol) == {
        "slo_breach",
        "slo_burn",
        "restore_drill",
        "backup_age",
        "evaluator_heartbeat",
        "function_5xx",
        "error_lines",
        "trigger_rejected",
        "health_check_uptime",
        "undelivered_messages",
    }
    for name, body in pol.items():
        doc = block(body, "documentation")
        assert doc.get("mime_type") == "text/markdown", name
        content = doc.get("content", "")
        if "`${each.value.first}`" in content:  # per function, from local.mon_functions
            firsts = [f["first"] for f in locals_of(mon)["mon_functions"].values()]
            assert all(f.startswith("opsuite ") for f in firsts), firsts
            content = content.replace("`${each.value.first}`", "`opsuite ...`")
        assert "First:" in content and "`opsuite " in content, f"{name}: no first command"
        links = blocks(doc, "links")
        assert any(
            link.get("display_name") == "Runbook"
            and re.fullmatch(
                r"\$\{var\.runbook_url\}#([a-z0-9-]+|slo-breach-\$\{replace\(each\.key, \"_\", \"-\"\)\}|\$\{each\.value\.anchor\})",
                link.get("url", ""),
            )
            for link in links
        ), f"{name}: no runbook link"
        labels = body.get("user_labels", {})
        severity = labels.get("severity")
        if severity in SEVERITIES:
            match = _LITERAL_SEVERITY.fullmatch(body.get("severity", ""))
            assert match and match.group(1) == severity, f"{name}: severity != {severity}"
        else:
            assert severity in _EXPR_SEVERITY, f"{name}: severity label {severity!r}"
            assert body.get("severity") == _EXPR_SEVERITY[severity], name
        assert labels.get("component"), f"{name}: no component label"
        if name in EVALUATOR_PAGES:  # the evaluator's own slo.* events page: not twice
            assert body.get("notification_channels") == [], name
        else:
            assert body.get("notification_channels") == [CHANNEL_ID], name
        assert body.get("combiner") in ("OR", "AND"), name
        assert block(body, "alert_strategy").get("auto_close"), name
        assert APIS_READY in depends_on(body), name
        custom = any("custom.googleapis.com/" in resolve(f, mon) for f in _filters(body))
        if custom:
            assert DESCRIPTORS in depends_on(body), f"{name}: custom metric before descriptor"


def test_slo_burn_policy_needs_both_windows(mon: dict[str, list[Any]]) -> None:
    body = policies(mon)["slo_burn"]
    assert body["combiner"] == "AND"
    windows = []
    for condition in conditions(body):
        t = threshold(condition)
        text = resolve(t["filter"], mon)
        assert metric_types(text) == ["custom.googleapis.com/opsuite/slo/burn_rate"]
        assert 'metric.labels.slo="${each.value.slo}"' in text
        windows.extend(re.findall(r'metric\.labels\.window="\$\{each\.value\.(\w+)\}"', text))
        assert t["comparison"] == "COMPARISON_GE"
        # written out: checkov's HCL parser refuses 1e-9 (python-hcl2 reads it as 1e-09)
        assert t["threshold_value"] in (
            "${each.value.rate * (1 - 0.000000001)}",
            "${each.value.rate * (1 - 1e-09)}",
        )
    assert sorted(windows) == ["long", "short"]
    assert body["user_labels"]["severity"] == "${each.value.severity}"


def test_breach_policy_is_the_evaluators_exhausted_budget(mon: dict[str, list[Any]]) -> None:
    body = policies(mon)["slo_breach"]
    (condition,) = conditions(body)
    t = threshold(condition)
    assert t["comparison"] == "COMPARISON_LE" and t["threshold_value"] == 0
    assert body["user_labels"] == {
        "severity": "${lower(each.value.severity)}",
        "component": "slo",
        "slo": "${each.key}",
    }


def test_restore_drill_policy_fires_on_a_bad_recovery_evaluation(
    mon: dict[str, list[Any]],
) -> None:
    (condition,) = conditions(policies(mon)["restore_drill"])
    t = threshold(condition)
    text = resolve(t["filter"], mon)
    assert metric_types(text) == ["custom.googleapis.com/opsuite/slo/good"]
    assert 'metric.labels.slo="${each.key}"' in text
    assert t["comparison"] == "COMPARISON_LT" and t["threshold_value"] == 1


def test_backup_age_policy_matches_the_health_warn_threshold(mon: dict[str, list[Any]]) -> None:
    body = policies(mon)["backup_age"]
    (condition,) = conditions(body)
    t = threshold(condition)
    assert metric_types(resolve(t["filter"], mon)) == [
        "custom.googleapis.com/opsuite/backup/hours_since_complete"
    ]
    warn = settings().health.backups.warn_after
    assert warn is not None and warn.seconds / 3600 == 26
    assert t["comparison"] == "COMPARISON_GT"
    # from the config, not a literal: a deployment with another warn_after pages at its own
    assert t["threshold_value"] == "${local.mon_backup_warn_hours}"
    warn_locals = locals_of(mon)
    assert "local.config.health.backups.warn_after" in warn_locals["mon_backup_warn"]
    assert body["user_labels"]["severity"] == "p1"


def test_heartbeat_policy_is_an_absence_of_one_hour(mon: dict[str, list[Any]]) -> None:
    body = policies(mon)["evaluator_heartbeat"]
    (condition,) = conditions(body)
    assert "condition_threshold" not in condition
    absent = block(condition, "condition_absent")
    assert absent["duration"] == "3600s"
    assert metric_types(resolve(absent["filter"], mon)) == [
        "custom.googleapis.com/opsuite/evaluator/heartbeat"
    ]
    assert body["user_labels"]["severity"] == "p1"


def test_function_5xx_policies_cover_the_four_functions(mon: dict[str, list[Any]]) -> None:
    functions = locals_of(mon)["mon_functions"]
    assert sorted(functions) == sorted(FUNCTIONS)
    for key, spec in functions.items():
        assert spec["service"] == f"${{module.{key}.name}}", key
    body = policies(mon)["function_5xx"]
    assert body["for_each"] == "${local.mon_functions}"
    assert body["user_labels"] == {"severity": "p2", "component": "${each.key}"}
    (condition,) = conditions(body)
    t = threshold(condition)
    text = unescape(t["filter"])
    assert metric_types(text) == ["run.googleapis.com/request_count"]
    for part in (
        'resource.type="cloud_run_revision"',
        'resource.labels.service_name="${each.value.service}"',
        'metric.labels.response_code_class="5xx"',
    ):
        assert part in text
    assert t["comparison"] == "COMPARISON_GT" and t["threshold_value"] == 0
    assert block(t, "aggregations")["alignment_period"] == "300s"


def test_log_based_metrics_and_their_policies(mon: dict[str, list[Any]]) -> None:
    local = locals_of(mon)
    base = unescape(local["mon_log_base"])
    assert 'resource.type="cloud_run_revision"' in base
    assert "${local.mon_log_services}" in base
    assert "service_name=" in unescape(local["mon_log_services"])
    metrics = resources_of(mon, "google_logging_metric")
    errors, rejected = metrics["error_lines"], metrics["trigger_rejected"]
    assert "severity>=ERROR" in errors["filter"] and "${local.mon_log_base}" in errors["filter"]
    assert "jsonPayload.trigger_rejected" in rejected["filter"]
    assert "${local.mon_log_base}" in rejected["filter"]
    expected = {
        "error_lines": {"service_name": "EXTRACT(resource.labels.service_name)"},
        "trigger_rejected": {
            "function": "EXTRACT(resource.labels.service_name)",
            "reason": "EXTRACT(jsonPayload.trigger_rejected)",
        },
    }
    for name, body in metrics.items():
        assert body["label_extractors"] == expected[name], name
        descriptor = block(body, "metric_descriptor")
        assert descriptor["metric_kind"] == "DELTA" and descriptor["value_type"] == "INT64"
        declared = {lab["key"] for lab in blocks(descriptor, "labels")}
        assert declared == set(expected[name]), f"{name}: extractors and labels differ"
        assert APIS_READY in depends_on(body)
    pol = policies(mon)
    for policy, metric, severity in (
        ("error_lines", "opsuite_error_lines", "p1"),
        ("trigger_rejected", "opsuite_trigger_rejected", "p2"),
    ):
        (condition,) = conditions(pol[policy])
        assert metric_types(resolve(threshold(condition)["filter"], mon)) == [
            f"logging.googleapis.com/user/{metric}"
        ]
        assert pol[policy]["user_labels"]["severity"] == severity


def test_filters_reference_only_existing_metric_types(mon: dict[str, list[Any]]) -> None:
    allowed = allowed_types(mon)
    seen: set[str] = set()
    for text in strings(mon.get("resource", [])):
        for metric in metric_types(resolve(text, mon)):
            assert metric in allowed, f"unknown metric type {metric!r}"
            seen.add(metric)
    # every policy kind is there: custom, log-based, Cloud Run, uptime
    assert BUILTIN_TYPES <= seen
    assert {"logging.googleapis.com/user/opsuite_error_lines"} <= seen
    assert "custom.googleapis.com/opsuite/evaluator/heartbeat" in seen


# --------------------------------------------------------------------------------------
# Notification channel and IAM
# --------------------------------------------------------------------------------------


def test_notification_channel_publishes_to_the_incidents_topic(
    mon: dict[str, list[Any]],
) -> None:
    channels = resources_of(mon, "google_monitoring_notification_channel")
    assert list(channels) == ["incidents"]
    channel = channels["incidents"]
    assert channel["type"] == "pubsub"
    assert channel["labels"] == {"topic": "${google_pubsub_topic.monitoring_incidents.id}"}
    assert APIS_READY in depends_on(channel)


def _iam(module: dict[str, list[Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    out: list[Any] = []
    for entry in module.get("resource", []):
        for rtype, by_name in entry.items():
            if re.fullmatch(r"google_.*_iam_(member|binding|policy)", rtype):
                out.extend((rtype, name, body) for name, body in by_name.items())
    return out


def test_monitoring_agent_publishes_on_the_incidents_topic_only(
    mon: dict[str, list[Any]],
) -> None:
    publishers = [(t, n, b) for t, n, b in _iam(mon) if b.get("role") == "roles/pubsub.publisher"]
    assert len(publishers) == 1
    rtype, _name, body = publishers[0]
    assert rtype == "google_pubsub_topic_iam_member"
    assert body["topic"] == "${google_pubsub_topic.monitoring_incidents.id}"
    assert body["member"] == AGENT
    assert AGENT_READY in depends_on(body), "the agent exists once a channel does"


def test_monitoring_agent_invokes_the_health_check_only(mon: dict[str, list[Any]]) -> None:
    grants = _iam(mon)
    assert {t for t, _n, _b in grants} <= {
        "google_pubsub_topic_iam_member",
        "google_cloud_run_v2_service_iam_member",
    }, "no project-level, binding or policy IAM here"
    invokers = [(t, n, b) for t, n, b in grants if "invoker" in b.get("role", "")]
    assert len(invokers) == 1
    rtype, _name, body = invokers[0]
    assert rtype == "google_cloud_run_v2_service_iam_member"
    assert body["role"] == "roles/run.invoker"
    assert body["name"] == "${module.health_check.name}"
    assert body["member"] == AGENT
    assert AGENT_READY in depends_on(body)


def test_nothing_public_in_the_monitoring_files() -> None:
    for name in MY_FILES:
        text = (TF_DIR / name).read_text(encoding="utf-8")
        for principal in ("allUsers", "allAuthenticatedUsers"):
            assert principal not in text, f"{name} mentions {principal}"
        assert "checkov:skip" not in text, f"{name}: no checkov check applies here"


# --------------------------------------------------------------------------------------
# Uptime check
# --------------------------------------------------------------------------------------


def test_uptime_check_authenticates_as_the_monitoring_agent(
    mon: dict[str, list[Any]], tmp_path: Path
) -> None:
    checks = resources_of(mon, "google_monitoring_uptime_check_config")
    assert list(checks) == ["health_check"]
    check = checks["health_check"]
    assert check["period"] == "300s" and check["timeout"] == "10s"
    http = block(check, "http_check")
    assert block(http, "service_agent_authentication") == {"type": "OIDC_TOKEN"}
    assert "auth_info" not in http, "no basic auth: the OIDC token of the service agent"
    assert http["use_ssl"] is True and http["validate_ssl"] is True
    assert http["path"] == "/"
    resource = block(check, "monitored_resource")
    assert resource["type"] == "uptime_url"
    host = resource["labels"]["host"]
    assert "module.health_check.uri" in host
    matcher = block(check, "content_matchers")
    assert block(matcher, "json_path_matcher")["json_path"] == "$.status"
    assert "google_cloud_run_v2_service_iam_member.uptime_invoker" in " ".join(depends_on(check))
    # the host expression gives the bare host of a Cloud Run URL
    if TERRAFORM is not None:
        expr = host[2:-1].replace(
            "module.health_check.uri", '"https://health-check-abc-uc.a.run.app/"'
        )
        assert console(mon, EXAMPLE_CONFIG, tmp_path / "tf", expr) == (
            "health-check-abc-uc.a.run.app"
        )


def test_uptime_policy_counts_failing_regions(mon: dict[str, list[Any]]) -> None:
    body = policies(mon)["health_check_uptime"]
    (condition,) = conditions(body)
    t = threshold(condition)
    text = unescape(t["filter"])
    assert metric_types(text) == ["monitoring.googleapis.com/uptime_check/check_passed"]
    assert "${google_monitoring_uptime_check_config.health_check.uptime_check_id}" in text
    assert block(t, "aggregations")["cross_series_reducer"] == "REDUCE_COUNT_FALSE"
    assert body["user_labels"]["severity"] == "p2"


# --------------------------------------------------------------------------------------
# Dashboard
# --------------------------------------------------------------------------------------


def test_dashboard_json_parses_and_uses_only_known_metrics(mon: dict[str, list[Any]]) -> None:
    dashboards = resources_of(mon, "google_monitoring_dashboard")
    assert list(dashboards) == ["opsuite"]
    assert dashboards["opsuite"]["dashboard_json"] == "${jsonencode(local.dash_opsuite)}"
    assert APIS_READY in depends_on(dashboards["opsuite"])
    dashboard = json.loads(json.dumps(locals_of(mon)["dash_opsuite"]))
    assert dashboard["displayName"] == "opsuite"
    layout = dashboard["mosaicLayout"]
    tiles = layout["tiles"]
    cells: set[tuple[int, int]] = set()
    seen: set[str] = set()
    allowed = allowed_types(mon)
    for tile in tiles:
        assert tile["widget"]["title"]
        assert tile["xPos"] + tile["width"] <= layout["columns"]
        area = {
            (x, y)
            for x in range(tile["xPos"], tile["xPos"] + tile["width"])
            for y in range(tile["yPos"], tile["yPos"] + tile["height"])
        }
        assert not area & cells, f"tile {tile['widget']['title']!r} overlaps another"
        cells |= area
        filters = [resolve(text, mon) for text in strings(tile) if "metric.type" in text]
        assert filters, f"tile {tile['widget']['title']!r} has no query"
        for text in filters:
            for metric in metric_types(text):
                assert metric in allowed, f"dashboard: unknown metric type {metric!r}"
                seen.add(metric)
    prefix = "custom.googleapis.com/opsuite/"
    required = {
        prefix + "slo/compliance",
        prefix + "slo/budget_remaining",
        prefix + "slo/burn_rate",
        prefix + "freshness/age_hours",
        prefix + "backup/hours_since_complete",
        prefix + "evaluator/heartbeat",
        "run.googleapis.com/request_count",
        "logging.googleapis.com/user/opsuite_error_lines",
        "logging.googleapis.com/user/opsuite_trigger_rejected",
    }
    assert required <= seen, f"dashboard lacks {sorted(required - seen)}"


# --------------------------------------------------------------------------------------
# Terraform hygiene
# --------------------------------------------------------------------------------------


def test_resources_that_need_an_api_wait_for_it(mon: dict[str, list[Any]]) -> None:
    for entry in mon.get("resource", []):
        for rtype, by_name in entry.items():
            for name, body in by_name.items():
                deps = depends_on(body)
                if rtype.endswith("_iam_member"):
                    assert AGENT_READY in deps, f"{rtype}.{name}: the agent needs a channel first"
                elif rtype == "time_sleep":
                    assert deps, f"{rtype}.{name} waits for nothing"
                else:
                    assert APIS_READY in deps, f"{rtype}.{name} must wait for the APIs"
    # the agent's wait is after the channel; a policy on a log metric waits for the metric
    sleeps = resources_of(mon, "time_sleep")
    assert CHANNEL in depends_on(sleeps["monitoring_agent_ready"])
    for name in ("error_lines", "trigger_rejected"):
        assert f"${{google_logging_metric.{name}}}" in depends_on(sleeps["log_metrics_ready"])
        policy = resources_of(mon, "google_monitoring_alert_policy")[name]
        assert "${time_sleep.log_metrics_ready}" in depends_on(policy), name


def test_terraform_fmt_of_the_monitoring_files() -> None:
    if TERRAFORM is None:
        pytest.skip("terraform binary not installed")
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-diff", *(str(TF_DIR / n) for n in MY_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _runbook_anchors() -> set[str]:
    """GitHub's heading anchors of docs/runbook.md (lower case, punctuation dropped,
    spaces to hyphens)."""
    text = (TF_DIR.parent / "docs" / "runbook.md").read_text(encoding="utf-8")
    anchors = set()
    for line in text.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(slug.replace(" ", "-"))
    return anchors


def test_every_policy_links_a_runbook_section_that_exists(mon: dict[str, list[Any]]) -> None:
    config = load_settings(EXAMPLE_CONFIG, env={})
    anchors = _runbook_anchors()
    links = []
    for body in policies(mon).values():
        for link in blocks(block(body, "documentation"), "links"):
            anchor = link["url"].split("#", 1)[1]
            if anchor == 'slo-breach-${replace(each.key, "_", "-")}':
                links += [f"slo-breach-{s.name.replace('_', '-')}" for s in config.slos.objectives]
            elif anchor == "${each.value.anchor}":
                links += ["fast-burn", "slow-burn"]
            else:
                links.append(anchor)
    missing = sorted(set(links) - anchors)
    assert not missing, f"runbook sections missing in docs/runbook.md: {missing}"


def test_every_slo_runbook_of_the_example_config_exists() -> None:
    # the SLA evaluator's own slo.* events (the pages) link the SLO's runbook
    config = load_settings(EXAMPLE_CONFIG, env={})
    anchors = _runbook_anchors()
    for slo in config.slos.objectives:
        assert slo.runbook, f"{slo.name}: no runbook"
        path, _, anchor = slo.runbook.partition("#")
        assert path == "docs/runbook.md", slo.runbook
        assert anchor in anchors, f"{slo.name}: {slo.runbook} has no section"


@pytest.mark.parametrize(
    ("warn_after", "hours"),
    [(None, 26), ({"count": 30, "period": "hour"}, 30), ({"count": 2, "period": "day"}, 48)],
)
def test_backup_age_threshold_is_the_configs_warn_after(
    mon: dict[str, list[Any]], tmp_path: Path, warn_after: dict[str, Any] | None, hours: float
) -> None:
    body = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    body["health"]["backups"] = {} if warn_after is None else {"warn_after": warn_after}
    config = tmp_path / "opsuite.yaml"
    config.write_text(yaml.safe_dump(body))
    expected = load_settings(config, env={}).health.backups.warn_after
    assert expected is not None and expected.seconds / 3600 == hours
    assert console(mon, config, tmp_path / "tf", "local.mon_backup_warn_hours") == hours


def test_undelivered_messages_page_per_eventarc_subscription(mon: dict[str, list[Any]]) -> None:
    body = policies(mon)["undelivered_messages"]
    (condition,) = conditions(body)
    t = threshold(condition)
    text = resolve(t["filter"], mon)
    assert metric_types(text) == ["pubsub.googleapis.com/subscription/oldest_unacked_message_age"]
    assert 'subscription_id=starts_with("eventarc-")' in text.replace("\\", "")
    assert (t["comparison"], t["threshold_value"]) == ("COMPARISON_GT", 3600)
    assert "cross_series_reducer" not in block(t, "aggregations")  # one incident per trigger
