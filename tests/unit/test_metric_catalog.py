"""The one list of custom metrics: bounded labels, valid Monitoring names."""

from __future__ import annotations

import re

import pytest

from shared.errors import BadInput
from shared.metrics import METRICS, PREFIX, spec_for


def test_every_metric_has_a_valid_type_and_at_most_a_few_labels() -> None:
    assert len({m.type for m in METRICS}) == len(METRICS)
    for m in METRICS:
        assert re.fullmatch(r"[a-z][a-z0-9_/]*[a-z0-9]", m.name), m.name
        assert m.type.startswith(PREFIX)
        assert len(m.labels) <= 30  # Monitoring's limit per descriptor; ours are config-bounded
        assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,99}", label) for label in m.labels)
    # what the issue asks for at least
    names = {m.name for m in METRICS}
    assert {"slo/sli", "slo/good", "slo/compliance", "slo/budget_remaining", "slo/burn_rate",
            "freshness/age_hours", "pipeline/phase_success", "backup/hours_since_complete",
            "evaluator/heartbeat"} <= names  # fmt: skip


def test_spec_for_refuses_unknown_types_and_labels() -> None:
    assert spec_for(PREFIX + "slo/burn_rate", {"slo": "x", "window": "1h"}).value_type == "DOUBLE"
    with pytest.raises(BadInput, match="not one of the suite's metrics"):
        spec_for("custom.googleapis.com/other/x", {})
    with pytest.raises(BadInput, match="expected exactly"):
        spec_for(PREFIX + "slo/sli", {"slo": "x", "user": "unbounded"})
    with pytest.raises(BadInput, match="expected exactly"):
        spec_for(PREFIX + "slo/burn_rate", {"slo": "x"})
