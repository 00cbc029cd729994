"""``opsuite report``: one self-contained HTML file from the suite's own data.

The demo stack of tests/functional/test_report_data.py (seeded warehouse, a backup, a
drill, two days of SLO history, an evaluation, one alert routed and resolved) is reported
through the real CLI; the rendered numbers are compared with ``opsuite sla status --json``
and the underlying data, and the page is checked to fetch nothing and to escape what it
shows. A browser opens it in tests/functional/test_report_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from shared.cli import main
from shared.report_assets import ASSETS, vega_scripts
from shared.services.report import ReportData
from shared.services.report_html import render
from tests.functional.report_stack import DAYS, Demo
from tests.helpers import make_example_stack


class _Cells(HTMLParser):
    """Every element's attributes, and the text of each element with data-field."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def _elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Cells()
    parser.feed(page)
    return parser.elements


def _cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_the_report_is_one_file_that_fetches_nothing(report_page: tuple[Path, str]) -> None:
    _path, text = report_page
    elements = _elements(text)
    # no external script, stylesheet, image, font or frame: every reference is inline
    for tag, attrs in elements:
        for name in ("src", "href"):
            assert attrs.get(name) is None, (tag, attrs)
    assert not [t for t, _ in elements if t in ("link", "iframe", "img", "object", "embed")]
    [csp] = [a["content"] for t, a in elements if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp is not None and "connect-src 'none'" in csp and "default-src 'none'" in csp
    # only the page's own scripts may run: one hash each, no 'unsafe-inline'
    [script_src] = [d.split()[1:] for d in csp.split(";") if d.split()[0] == "script-src"]
    bodies = re.findall(r"<script>(.*?)</script>", text, re.S)
    assert len(bodies) == 4  # vega, vega-lite, vega-embed, the boot
    assert sorted(script_src) == sorted(
        [
            f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'"
            for b in bodies
        ]
        + ["'unsafe-eval'"]
    )
    # the three vendored scripts, inline and whole
    assert vega_scripts() in text
    assert [a.version for a in ASSETS] == ["6.4.0", "6.5.0", "7.3.0"]
    assert 0.84e6 < len(text.encode()) < 2e6  # the scripts are 0.84 MB of it


class _SloRows(HTMLParser):
    """The SLO table's rows: each ``data-field`` cell's value and text, by SLO."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, tuple[str | None, str]]] = {}
        self._slo: str | None = None
        self._field: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr":
            self._slo = a.get("data-slo")
            if self._slo:
                self.rows[self._slo] = {}
        elif tag == "td" and self._slo and a.get("data-field"):
            self._field, self._text = str(a["data-field"]), []
            self.rows[self._slo][self._field] = (a.get("data-value"), "")

    def handle_data(self, data: str) -> None:
        if self._field is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._slo and self._field is not None:
            value, _ = self.rows[self._slo][self._field]
            self.rows[self._slo][self._field] = (value, "".join(self._text).strip())
            self._field = None


def _value(cell: tuple[str | None, str]) -> float | None:
    return None if cell[0] in (None, "") else float(str(cell[0]))


def test_the_slo_table_shows_what_sla_status_says(
    demo: Demo,
    report_page: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert _cli(demo.stack.config, "sla", "status", "--json") in (0, 1)  # 1: some breach
    status = {s["slo"]: s for s in json.loads(capsys.readouterr().out)}
    _path, text = report_page
    parser = _SloRows()
    parser.feed(text)
    rows = parser.rows
    assert set(rows) == set(status)
    for name, cells in rows.items():
        s = status[name]
        for field, key in (
            ("compliance", "compliance"),
            ("budget_remaining", "budget_remaining"),
            ("budget_remaining_minutes", "budget_remaining_minutes"),
            ("coverage", "coverage"),
            ("sli", "value"),
            ("objective", "objective"),
        ):
            assert _value(cells[field]) == s[key], (name, field)
        # what a person reads: the same numbers, rounded as shown
        assert cells["compliance"][1] == (
            "—" if s["compliance"] is None else f"{s['compliance'] * 100:.2f} %"
        )
        minutes = s["budget_remaining_minutes"]
        assert cells["budget_remaining_minutes"][1] == (
            "—" if minutes is None else f"{minutes:,.0f}"
        )
        state = s["state"]
        expected = (
            "breaching" if state["breaching"] else "exhausted" if state["exhausted"]
            else "burning" if state["burning"] else "unknown" if s["good"] is None else "ok"
        )  # fmt: skip
        assert cells["state"][1] == expected, name
        assert cells["burning"][1] == ", ".join(state["burning"])
    # most urgent first, as the page promises
    shown = [rows[n]["state"][1] for n in rows]
    urgency = ["breaching", "exhausted", "burning", "unknown", "not evaluated", "ok"]
    assert [urgency.index(x) for x in shown] == sorted(urgency.index(x) for x in shown)
    assert "breaching" in shown and "ok" in shown


def test_backups_drill_and_incidents_are_the_data(
    report_page: tuple[Path, str],
    report: ReportData,
) -> None:
    _path, text = report_page
    elements = _elements(text)
    runs = {a["data-run"] for t, a in elements if t == "tr" and a.get("data-run")}
    assert runs == {n.run_id for n in report.backups.nights}
    drill = report.backups.drill.drill
    assert drill is not None
    [(_, attrs)] = [(t, a) for t, a in elements if a.get("id") == "drill"]
    assert float(str(attrs["data-projected-hours"])) == drill.projected_hours
    assert float(str(attrs["data-max-hours"])) == drill.max_hours == 8
    fingerprints = [a["data-fingerprint"] for t, a in elements if a.get("data-fingerprint")]
    assert fingerprints == [i.fingerprint for i in report.incidents.incidents]
    specs = json.loads(re.search(r'id="specs">(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
    assert set(specs) == {"budget", "burn", "freshness", "backups", "phases", "incidents"}
    heat = {(v["table"], v["day"]): v["status"] for v in specs["freshness"]["data"]["values"]}
    expected = {
        (t.table, d.day.isoformat()): d.status for t in report.freshness.tables for d in t.days
    }
    assert heat == expected


def test_missed_and_stalled_nights_read_without_colour(report: ReportData) -> None:
    [done] = report.backups.nights
    missed = replace(
        done, run_id="20260101", status="missed", bytes=0, files=0, note="no run of 2026-01-01"
    )
    stalled = replace(done, run_id="20260102", status="in progress", note="stalled: 5.0 h")
    running = replace(done, run_id="20260103", status="in progress", note=None)
    nights = (running, stalled, missed, done)
    text = render(replace(report, backups=replace(report.backups, nights=nights)), ())
    statuses = {
        a["data-run"]: a["data-status"]
        for t, a in _elements(text)
        if t == "tr" and a.get("data-run")
    }
    assert statuses == {
        "20260103": "in progress", "20260102": "stalled", "20260101": "missed",
        done.run_id: "complete",
    }  # fmt: skip
    assert '<td data-field="note">no run of 2026-01-01</td>' in text
    specs = json.loads(re.search(r'id="specs">(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
    glyphs = {v["night"]: v["mark"] for v in specs["backups"]["data"]["values"]}
    assert glyphs == {"20260103": "…", "20260102": "⏸", "20260101": "✕", done.run_id: ""}


def test_an_empty_store_says_what_is_missing_per_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = make_example_stack(tmp_path)
    output = tmp_path / "empty.html"
    assert _cli(stack.config, "report", "--output", str(output)) == 0
    text = output.read_text(encoding="utf-8")
    missing = {a["data-missing"] for _t, a in _elements(text) if a.get("data-missing")}
    assert missing == {"slos", "budget", "freshness", "backups", "drill", "phases", "incidents"}
    assert text.count("No data yet:") == 7
    assert "opsuite sla evaluate" in text  # says how to get the data
    err = capsys.readouterr().err
    assert err.count("no data:") == 7
    assert 'id="chart-' not in text  # no empty chart drawn


def test_what_the_report_shows_is_escaped(report: ReportData) -> None:
    hostile = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
    incidents = report.incidents
    first = replace(incidents.incidents[0], alertname=hostile)
    data = replace(
        report, incidents=replace(incidents, incidents=(first, *incidents.incidents[1:]))
    )
    text = render(data, ())
    assert "<img src=x" not in text and "<script>alert(2)" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text  # the table cell, escaped
    assert "\\u003cimg src=x" in text  # the chart's data, as JSON that can't close the script


def test_days_must_be_positive(demo: Demo, tmp_path: Path) -> None:
    assert (
        _cli(demo.stack.config, "report", "--days", "0", "--output", str(tmp_path / "r.html")) == 64
    )


def test_a_name_that_is_not_unicode_text_does_not_fail_the_report(
    report: ReportData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.services.report
    from shared.cli.report import write_report

    odd = "phase_\ud800"  # a lone surrogate: not encodable as UTF-8
    phases = report.phases
    first = replace(phases.phases[0], phase=odd)
    data = replace(report, phases=replace(phases, phases=(first, *phases.phases[1:])))
    monkeypatch.setattr(shared.services.report, "gather", lambda *a, **k: data)
    output = tmp_path / "odd.html"
    write_report(None, None, output, DAYS)  # type: ignore[arg-type]
    text = output.read_bytes().decode("utf-8")  # valid UTF-8 throughout
    specs = json.loads(re.search(r'id="specs">(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
    assert odd in {v["phase"] for v in specs["phases"]["data"]["values"]}  # read back as it was
