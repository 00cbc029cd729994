"""Files Terraform reads that the code defines: terraform/metrics.json (the metric
descriptors, from shared/metrics.py) and terraform/history_schema.json (the evaluations
table's schema, from shared/adapters/history_schema.py).

``python -m tools.tf_catalog`` rewrites both; ``--check`` exits 1 (and writes nothing)
when a file differs from what the code gives now. The Terraform
(``google_monitoring_metric_descriptor.opsuite`` in terraform/monitoring.tf) iterates over
the file, keyed by metric type, and tests/terraform/test_monitoring.py holds the file equal
to :func:`render`, so the code and the descriptors can't drift apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.adapters.history_schema import HISTORY_SCHEMA
from shared.metrics import METRICS, MetricSpec
from shared.models import SchemaField

CATALOG_PATH = Path(__file__).resolve().parents[1] / "terraform" / "metrics.json"
HISTORY_SCHEMA_PATH = CATALOG_PATH.with_name("history_schema.json")
#: the API's names for the standard SQL types (what BigQuery returns when read back: a
#: schema written with FLOAT64 would show as a perpetual diff against FLOAT)
_LEGACY_TYPES = {"FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "INT64": "INTEGER"}
METRIC_KIND = "GAUGE"  # every suite metric: one point per evaluation instant (shared/metrics.py)
DISPLAY_PREFIX = "opsuite "

#: A descriptor label needs a description; a label added to METRICS without one here is an
#: error, not an undocumented label (labels can never be removed from a descriptor).
LABEL_DESCRIPTIONS: dict[str, str] = {
    "slo": "SLO name (slos.objectives[].name in the suite's configuration)",
    "window": "Burn-rate window (15m, 1h, 6h, 3d: slos.burn_rates' long and short windows)",
    "table": "Freshness table, dataset.table (health.freshness.tables)",
    "phase": "Pipeline phase (the ratio SLI's configured phases)",
}


def descriptor(spec: MetricSpec) -> dict[str, Any]:
    missing = [label for label in spec.labels if label not in LABEL_DESCRIPTIONS]
    if missing:
        raise ValueError(
            f"{spec.type}: no description for label(s) {missing}: add them to "
            "tools/tf_catalog.py LABEL_DESCRIPTIONS"
        )
    return {
        "metric_kind": METRIC_KIND,
        "value_type": spec.value_type,
        "unit": spec.unit,
        "display_name": DISPLAY_PREFIX + spec.name,
        "description": spec.description,
        "labels": {label: LABEL_DESCRIPTIONS[label] for label in spec.labels},
    }


def catalog(metrics: Sequence[MetricSpec] = METRICS) -> dict[str, dict[str, Any]]:
    """Every metric's descriptor, keyed by metric type."""
    out: dict[str, dict[str, Any]] = {}
    for spec in metrics:
        if spec.type in out:
            raise ValueError(f"{spec.type} is declared twice in shared/metrics.py")
        out[spec.type] = descriptor(spec)
    return out


def render(metrics: Sequence[MetricSpec] = METRICS) -> str:
    """The file's exact text (sorted keys, two-space indent, final newline)."""
    return json.dumps(catalog(metrics), indent=2, sort_keys=True) + "\n"


def history_schema(fields: Sequence[SchemaField] = HISTORY_SCHEMA) -> str:
    """The evaluations table's schema as ``google_bigquery_table.schema`` takes it."""
    rows = []
    for f in fields:
        if f.fields:
            raise ValueError(f"{f.name}: nested fields are not supported here")
        rows.append(
            {
                "name": f.name,
                "type": _LEGACY_TYPES.get(f.type, f.type),
                "mode": f.mode or "NULLABLE",
                "description": f.description,
            }
        )
    return json.dumps(rows, indent=2) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tf_catalog", description=__doc__)
    parser.add_argument("--output", type=Path, default=CATALOG_PATH)
    parser.add_argument("--history-output", type=Path, default=HISTORY_SCHEMA_PATH)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    files: list[tuple[Path, str]] = [
        (args.output, render()),
        (args.history_output, history_schema()),
    ]
    if args.check:
        stale = [
            path
            for path, text in files
            if (path.read_text(encoding="utf-8") if path.is_file() else None) != text
        ]
        for path in stale:
            print(f"{path} is stale: run python -m tools.tf_catalog", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
