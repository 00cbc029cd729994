"""The report opened as a person would: headless Chromium, no network.

The page of tests/functional/test_report.py (the demo stack reported through the CLI) is
loaded from file://; every request the page would make is blocked and recorded. It must
render every chart with no console error and no request, and the numbers on screen must be
the data's. The screenshot is kept as an artefact (.local/test-artifacts/report.png).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from shared.services.report import ReportData
from tests.browser import open_page, require_chromium
from tests.functional.test_report import page  # noqa: F401 (fixture)
from tests.functional.test_report_data import demo, report  # noqa: F401 (fixtures)
from tests.helpers import ROOT

ARTIFACTS = ROOT / ".local" / "test-artifacts"


def test_the_report_renders_offline_with_the_datas_numbers(
    page: tuple[Path, str],  # noqa: F811
    report: ReportData,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_chromium()
    path, text = page
    specs = json.loads(re.search(r'id="specs">(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
    shot = tmp_path / "report.png"
    # ready, or a chart failed: either ends the wait at once
    with open_page(path, screenshot=shot, wait_for="body[data-ready], body[data-error]") as shown:
        assert shown.attribute("body", "data-error") is None
        assert shown.attribute("body", "data-ready") == "true"
        # nothing fetched, nothing broken
        assert shown.requests == [] and shown.problems() == []
        # every chart drawn, as SVG
        assert shown.count(".chart svg") == len(specs) == 6
        # the SLO table on screen: the data's compliance, in the data's (urgency) order
        rows = shown.attributes("#slo-table tr[data-slo]", "data-slo")
        assert rows == [r.name for r in report.slos.rows]
        shown_compliance = shown.texts('#slo-table td[data-field="compliance"]')
        expected = [
            "—" if r.compliance is None else f"{r.compliance * 100:.2f} %" for r in report.slos.rows
        ]
        assert shown_compliance == expected
        # the freshness heat strip: one cell per (table, day), each with the data's status
        labels = shown.attributes("#chart-freshness path[aria-label]", "aria-label")
        cells = {
            (m["table"], m["day"]): m["status"] for label in labels if (m := _fields(str(label)))
        }
        assert cells == {
            (t.table, d.day.isoformat()): d.status for t in report.freshness.tables for d in t.days
        }
        # the drill's projection, as written
        drill = report.backups.drill.drill
        assert drill is not None
        assert "within the 8 h SLA" in shown.texts("#drill")[0]
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")


def _fields(label: str) -> dict[str, str] | None:
    """Vega's mark label ``day: 2026-11-03; table: t; status: error; ...`` as a dict."""
    pairs = [part.split(": ", 1) for part in label.split("; ") if ": " in part]
    found = {k.strip(): v.strip() for k, v in pairs}
    return found if {"table", "day", "status"} <= set(found) else None
