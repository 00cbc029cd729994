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
import struct
from datetime import timedelta
from pathlib import Path

import pytest

from shared.services.report import ReportData
from tests.browser import open_page, require_chromium
from tests.helpers import ROOT
from tools import report_screenshot

ARTIFACTS = ROOT / ".local" / "test-artifacts"


def test_the_report_renders_offline_with_the_datas_numbers(
    report_page: tuple[Path, str],
    report: ReportData,
    tmp_path: Path,
) -> None:
    require_chromium()
    path, text = report_page
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
        # ... and, not by colour alone, each cell's glyph: ✕ error, ! warn, – no data
        glyphs = shown.evaluate(
            "() => [...document.querySelectorAll('#chart-freshness .mark-text text')]"
            ".map((t) => t.textContent)"
        )
        statuses = [d.status for t in report.freshness.tables for d in t.days]
        for glyph, status in (("✕", "error"), ("!", "warn"), ("–", "no data")):
            assert glyphs.count(glyph) == statuses.count(status), status
        assert statuses.count("error") > 0
        # the budget chart spans the window: a tick each midnight in it, none outside
        ticks = shown.evaluate(
            "() => [...document.querySelectorAll('#chart-budget .role-axis-label text')]"
            ".map((t) => t.textContent).filter((t) => !t.endsWith('%'))"
        )
        midnights = [report.since.date() + timedelta(days=i + 1) for i in range(report.days)]
        assert ticks == [f"{d:%d %b}" for d in midnights]
        assert shown.count("#chart-budget .mark-line path") == len(
            [b for b in report.budget.slos if any(p.budget_remaining is not None for p in b.points)]
        )
        # each burn rate point: the data's rate, for its SLO, pair and window
        points = [
            _pairs(str(label))
            for label in shown.attributes("#chart-burn path[aria-label]", "aria-label")
        ]
        assert sorted((p["slo"], p["pair"], p["window"], p["rate"]) for p in points) == sorted(
            (b.slo, r.pair, window, f"{rate:.2f}")
            for b in report.budget.slos
            for r in b.burn_rates
            for window, rate in (("long", r.long_rate), ("short", r.short_rate))
            if rate is not None
        )
        # one bar per incident, with its alert, severity and status
        bars = [
            _pairs(str(label))
            for label in shown.attributes(
                "#chart-incidents .mark-rect path[aria-label]", "aria-label"
            )
        ]
        assert sorted((b["alert"], b["severity"], b["status"]) for b in bars) == sorted(
            (i.alertname, i.severity, i.status) for i in report.incidents.incidents
        )
        # the drill's projection, as written
        drill = report.backups.drill.drill
        assert drill is not None
        assert "within the 8 h SLA" in shown.texts("#drill")[0]
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")


def _pairs(label: str) -> dict[str, str]:
    """Vega's mark label ``day: 2026-11-03; table: t; status: error; ...`` as a dict."""
    pairs = [part.split(": ", 1) for part in label.split("; ") if ": " in part]
    return {k.strip(): v.strip() for k, v in pairs}


def _fields(label: str) -> dict[str, str] | None:
    found = _pairs(label)
    return found if {"table", "day", "status"} <= set(found) else None


def test_the_readme_screenshot_is_the_whole_page_and_refuses_a_broken_one(
    report_page: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_chromium()
    path, text = report_page
    out = tmp_path / "report.png"
    assert report_screenshot.main([str(path), str(out)]) == 0
    width, height = struct.unpack(">II", out.read_bytes()[16:24])  # the PNG's IHDR
    printed = capsys.readouterr().out
    page_width, page_height = (int(n) for n in re.findall(r"(\d+)×(\d+) px", printed)[0])
    assert (width, height) == (page_width, page_height) and height > 2000  # not a viewport
    # a page whose chart fails (here: a spec Vega-Lite rejects) is not kept
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace('"mark":"bar"', '"mark":"no-such-mark"', 1), encoding="utf-8")
    kept = out.read_bytes()
    assert report_screenshot.main([str(broken), str(out)]) == 1
    assert out.read_bytes() == kept  # the screenshot kept is the good one, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.html", "report.png"]
    assert "not a screenshot to keep" in capsys.readouterr().err


def test_a_long_window_of_many_tables_renders_weekly_and_capped(tmp_path: Path) -> None:
    require_chromium()
    from shared.report_assets import vega_script_bodies
    from shared.services.report import FreshnessSection
    from shared.services.report_html import MAX_ROWS, render
    from tests.unit.test_report_html import _data, _table

    statuses = ["green", "warn", "error", "no data"]
    rows = tuple(
        _table(f"d.t_{i:03}", [statuses[(i + d) % 4] for d in range(120)]) for i in range(150)
    )
    path = tmp_path / "long.html"
    page = render(_data(120, freshness=FreshnessSection(("f",), rows)), vega_script_bodies())
    path.write_text(page, encoding="utf-8")
    with open_page(path, wait_for="body[data-ready], body[data-error]") as shown:
        assert shown.attribute("body", "data-error") is None
        assert shown.requests == [] and shown.problems() == []
        labels = shown.attributes("#chart-freshness path[aria-label]", "aria-label")
        cells = [m for label in labels if (m := _fields(str(label)))]
        weeks = {m["day"] for m in cells}
        assert len(cells) == MAX_ROWS * len(weeks) and 17 <= len(weeks) <= 19
        assert shown.count('[data-capped="freshness"]') == 1
