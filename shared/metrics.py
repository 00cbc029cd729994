"""Every custom metric the suite writes, in one place.

Cloud Monitoring metric descriptors (Terraform, issue 10) are declared from this list and
a test holds the two together; the writers refuse a type or a label that is not here, so
nothing unbounded can reach Monitoring (cardinality is billed and capped: gcp-facts.md).
All are GAUGE on the ``global`` resource: one point per evaluation instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from shared.errors import BadInput

PREFIX = "custom.googleapis.com/opsuite/"
ValueType = Literal["DOUBLE", "INT64", "BOOL"]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # below PREFIX, e.g. "slo/sli"
    value_type: ValueType
    unit: str  # UCUM, as Monitoring descriptors take it ("1", "h", "min", "s")
    labels: tuple[str, ...]
    description: str

    @property
    def type(self) -> str:
        return PREFIX + self.name


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("slo/sli", "DOUBLE", "1", ("slo",), "The SLI's value at the evaluation"),
    MetricSpec(
        "slo/good", "INT64", "1", ("slo",), "1 if the evaluation interval was good, 0 if bad"
    ),
    MetricSpec("slo/unknown", "INT64", "1", ("slo",), "1 if the SLI could not be computed"),
    MetricSpec(
        "slo/compliance", "DOUBLE", "1", ("slo",), "Good intervals / intervals in the window"
    ),
    MetricSpec(
        "slo/budget_remaining",
        "DOUBLE",
        "1",
        ("slo",),
        "Error budget left (1 = all, < 0 = overspent)",
    ),
    MetricSpec(
        "slo/budget_remaining_minutes", "DOUBLE", "min", ("slo",), "Error budget left, in minutes"
    ),
    MetricSpec(
        "slo/burn_rate",
        "DOUBLE",
        "1",
        ("slo", "window"),
        "Error ratio / (1 - objective) over a window",
    ),
    MetricSpec(
        "freshness/age_hours", "DOUBLE", "h", ("table",), "Hours since the table was last loaded"
    ),
    MetricSpec(
        "pipeline/phase_success", "DOUBLE", "1", ("phase",), "Successful runs / runs of a phase"
    ),
    MetricSpec(
        "backup/hours_since_complete", "DOUBLE", "h", (), "Hours since the newest complete backup"
    ),
    MetricSpec("evaluator/heartbeat", "INT64", "1", (), "1 per evaluation: alert on its absence"),
)

BY_TYPE = {m.type: m for m in METRICS}


def spec_for(metric_type: str, labels: object) -> MetricSpec:
    """The catalog entry of ``metric_type``; BadInput unless the labels are exactly its own."""
    spec = BY_TYPE.get(metric_type)
    if spec is None:
        raise BadInput(f"{metric_type!r} is not one of the suite's metrics (shared/metrics.py)")
    keys = tuple(sorted(labels)) if isinstance(labels, Mapping) else ()
    if keys != tuple(sorted(spec.labels)):
        raise BadInput(
            f"{metric_type}: labels {list(keys)} (expected exactly {sorted(spec.labels)})"
        )
    return spec
