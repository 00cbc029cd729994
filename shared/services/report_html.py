"""The ops report as one self-contained HTML file (``opsuite report``).

Everything is inline: the vendored Vega-Lite scripts (:mod:`shared.report_assets`), the
styles, the chart specs with their data as ``values``. A Content-Security-Policy forbids
every fetch, so the file opens anywhere without the network and can't leak anything.
Charts render as SVG (each mark carries an ``aria-label`` with its values); the numbers
that matter are also in plain tables (sorted by urgency, as :mod:`shared.services.report`
orders them) whose cells carry ``data-*`` attributes, so a person, a screen reader and a
test read the same values. A section without data says what is missing instead of
drawing an empty chart. Colours: Okabe-Ito (colour-blind safe), dark text on light.

When every chart has rendered, ``<body data-ready="true">``; a chart that fails sets
``data-error``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.services.report import BackupNight, BudgetPoint, ReportData

#: Okabe-Ito: distinguishable with every common colour-vision deficiency
OK, WARN, BAD, NODATA = "#009E73", "#E69F00", "#D55E00", "#BBBBBB"
BLUE, SKY, PURPLE, YELLOW = "#0072B2", "#56B4E9", "#CC79A7", "#F0E442"
_UTC_MINUTES = "utcyearmonthdatehoursminutes"
#: points per SLO in the budget chart: enough for 28 days at hourly resolution
MAX_POINTS = 700


def _csp(scripts: Sequence[str]) -> str:
    """Nothing from anywhere; only the page's own scripts run (by their SHA-256, so an
    injected inline script would not), with 'unsafe-eval' because Vega compiles its
    expressions with Function(); inline styles, which Vega's SVG and vega-embed set."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    )
    return (
        f"default-src 'none'; script-src {hashes} 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1a1a1a; background: #fff; margin: 0 auto;
       max-width: 1200px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.meta { color: #444; margin: 0 0 12px; }
table { border-collapse: collapse; margin: 8px 0 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.missing { background: #f6f6f6; border-left: 4px solid #888; padding: 8px 12px; }
.state { font-weight: 600; padding: 1px 6px; border-radius: 3px; color: #1a1a1a; }
.state-breaching, .state-exhausted, .state-failed, .state-error, .state-open, .state-missed
  { background: #f3c9b0; } /* vermillion, light */
.state-burning, .state-partial, .state-warn, .state-stalled
  { background: #f7ddb0; } /* orange, light */
.state-ok, .state-complete, .state-resolved, .state-green, .state-pass { background: #b8e3d3; }
.chart { margin: 4px 0 8px; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}".rstrip("0").rstrip(".")


#: how each SLI kind's value reads (its unit)
_SLI_UNITS = {
    "freshness": ("h", 1.0),  # the oldest table's age
    "recovery_time": ("h", 1.0),  # the projected full restore
    "detection": ("min", 1.0),
    "availability": ("", 1.0),  # 1 up, 0 down
    "ratio": ("%", 100.0),
}


def _sli(kind: str, value: float | None) -> str:
    if value is None:
        return "—"
    unit, scale = _SLI_UNITS.get(kind, ("", 1.0))
    shown = value * scale
    text = f"{shown:.3g}" if abs(shown) < 1000 else f"{shown:,.0f}"
    return f"{text} {unit}".strip()


def _state(text: str) -> str:
    return f'<span class="state state-{_e(text.replace(" ", "-"))}">{_e(text)}</span>'


def _missing(section: str, why: str) -> str:
    lead = "Could not read it" if why.startswith("could not read") else "No data yet"
    return f'<p class="missing" data-missing="{_e(section)}">{lead}: {_e(why)}</p>'


def _round(value: float | None, digits: int) -> float | None:
    """A chart's value to what it can show (its tooltips show fewer digits)."""
    return None if value is None else round(value, digits)


def _json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (read with JSON.parse, never run; UTF-8
    as the page is, so a glyph is its 3 bytes, not a 6-character escape)."""
    text = json.dumps(
        value, separators=(",", ":"), allow_nan=False, default=str, ensure_ascii=False
    )
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Charts:
    """Vega-Lite specs by element id, embedded once at the end of the page."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}

    def add(self, name: str, spec: dict[str, Any], title: str) -> str:
        spec = {
            "$schema": "https://vega.github.io/schema/vega-lite/v6.json",  # never fetched
            "config": {"font": "sans-serif", "view": {"stroke": None}},
            **spec,
        }
        self.specs[name] = spec
        return (
            f'<div class="chart" id="chart-{_e(name)}" role="img" aria-label="{_e(title)}"></div>'
        )


def _thin(points: Sequence[BudgetPoint], limit: int | None = None) -> list[BudgetPoint]:
    """At most ``limit`` points, in time order: the first and the newest, and the window
    cut into ``(limit - 2) // 2`` spans of as many points each, each span's lowest and
    highest budget kept, so a dip (a burn the budget recovered from) is drawn however
    long the window is. ``limit``: MAX_POINTS."""
    limit = MAX_POINTS if limit is None else limit
    if len(points) <= limit:
        return list(points)
    spans = (limit - 2) // 2
    picked: set[int] = {0, len(points) - 1}
    for i in range(spans):
        own = range(i * len(points) // spans, (i + 1) * len(points) // spans)
        picked.add(min(own, key=lambda j: (_budget_of(points[j]), j)))
        picked.add(max(own, key=lambda j: (_budget_of(points[j]), -j)))
    return [points[j] for j in sorted(picked)]


def _budget_of(point: BudgetPoint) -> float:
    return point.budget_remaining if point.budget_remaining is not None else 0.0


def _slo_table(data: ReportData) -> str:
    section = data.slos
    if section.missing:
        return _missing("slos", section.missing)
    rows = []
    for r in section.rows:
        minutes = (
            "—" if r.budget_remaining_minutes is None else f"{r.budget_remaining_minutes:,.0f}"
        )
        rows.append(
            f'<tr data-slo="{_e(r.name)}">'
            f"<td>{_e(r.name)}</td><td>{_e(r.severity)}</td>"
            f'<td class="num" data-field="objective" data-value="{_e(r.objective)}">'
            f"{_pct(r.objective)}</td>"
            f'<td class="num" data-field="sli" data-value="{_e(r.sli)}">'
            f"{_e(_sli(r.kind, r.sli))}</td>"
            f'<td class="num" data-field="compliance" data-value="{_e(r.compliance)}">'
            f"{_pct(r.compliance)}</td>"
            f'<td class="num" data-field="budget_remaining" data-value="{_e(r.budget_remaining)}">'
            f"{_pct(r.budget_remaining, 1)}</td>"
            f'<td class="num" data-field="budget_remaining_minutes" '
            f'data-value="{_e(r.budget_remaining_minutes)}">{minutes}</td>'
            f'<td class="num" data-field="coverage" data-value="{_e(r.coverage)}">'
            f"{_pct(r.coverage, 1)}</td>"
            f'<td data-field="state">{_state(r.state)}</td>'
            f'<td data-field="burning">{_e(", ".join(r.burning))}</td></tr>'
        )
    return (
        '<table id="slo-table"><thead><tr><th>SLO</th><th>severity</th>'
        '<th class="num">objective</th><th class="num">SLI now</th>'
        '<th class="num">compliance</th><th class="num">budget left</th>'
        '<th class="num">minutes left</th><th class="num">coverage</th><th>state</th>'
        "<th>burning</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _budget(data: ReportData, charts: _Charts) -> str:
    section = data.budget
    if section.missing:
        return _missing("budget", section.missing)
    values = [
        {"slo": b.slo, "at": p.at.isoformat(), "budget": _round(p.budget_remaining, 5)}
        for b in section.slos
        for p in _thin([p for p in b.points if p.budget_remaining is not None])
    ]
    pairs = list(dict.fromkeys(r.pair for b in section.slos for r in b.burn_rates))
    burns = [
        {
            "slo": b.slo,
            "pair": r.pair,
            "window": window,
            "rate": rate,
            # both windows over the threshold fire: shown as each window's rate / threshold
            "of_threshold": max(rate / r.threshold, 0.01) if r.threshold else None,
            "firing": "firing (both windows over)" if r.firing else "not firing",
        }
        for b in section.slos
        for r in b.burn_rates
        for window, rate in (("long", r.long_rate), ("short", r.short_rate))
        if rate is not None
    ]
    unmeasured = sorted(
        {f"{b.slo} {r.pair}" for b in section.slos for r in b.burn_rates if r.long_rate is None}
    )
    out = []
    without = [b for b in section.slos if not any(p.budget_remaining is not None for p in b.points)]
    if values:
        out.append(
            charts.add(
                "budget",
                {
                    "width": 1050,
                    "height": 260,
                    "data": {"values": values},
                    "layer": [
                        {
                            "mark": {"type": "line", "interpolate": "step-after"},
                            "encoding": {
                                "x": {"field": "at", "type": "temporal", "title": None,
                                      "scale": {"type": "utc", **_window(data)},
                                      "axis": {"format": _day_format(data),
                                               "values": _day_ticks(data)}},
                                "y": {"field": "budget", "type": "quantitative",
                                      "title": "error budget left (clamped to ±100 %)",
                                      "axis": {"format": "%"},
                                      "scale": {"domain": [-1, 1], "clamp": True}},
                                "color": {"field": "slo", "type": "nominal", "title": "SLO",
                                          "scale": {"range": [BLUE, "#000000", PURPLE, SKY,
                                                              "#7F7F7F", YELLOW, BAD]}},
                                "strokeDash": {"field": "slo", "type": "nominal",
                                               "legend": None},
                                "tooltip": [{"field": "slo"},
                                            {"field": "at", "type": "temporal",
                                             "timeUnit": _UTC_MINUTES,
                                             "format": "%Y-%m-%d %H:%M UTC"},
                                            {"field": "budget", "format": ".1%"}],
                            },
                        },
                        {"mark": {"type": "rule", "color": "#333", "strokeDash": [4, 3]},
                         "encoding": {"y": {"datum": 0}}},
                    ],
                },
                "error budget left per SLO over the window",
            )
        )  # fmt: skip
    else:
        out.append(_missing("budget", "no evaluation with a budget in the window yet"))
    if values and without:
        out.append(
            '<p class="missing" data-missing="budget-slos">No budget series for '
            + ", ".join(
                f"{_e(b.slo)} ({_e(b.missing or 'evaluated, but no budget: no events yet')})"
                for b in without
            )
            + ".</p>"
        )
    if burns:
        out.append(
            charts.add(
                "burn",
                {
                    "data": {"values": burns},
                    "facet": {"column": {"field": "slo", "type": "nominal", "title": None,
                                         "header": {"labelLimit": 135, "labelFontSize": 10}}},
                    "spacing": 18,
                    "spec": {
                        "width": 150,  # each column's (a facet's own width is ignored)
                        "height": 160,
                        "layer": [
                            {
                                "mark": {"type": "point", "filled": True, "size": 70},
                                "encoding": {
                                    "x": {"field": "pair", "type": "nominal", "title": None,
                                          "sort": pairs},
                                    "y": {"field": "of_threshold", "type": "quantitative",
                                          "title": "burn rate ÷ its threshold",
                                          "scale": {"type": "log"}},
                                    "shape": {"field": "window", "type": "nominal",
                                              "title": "window"},
                                    "color": {"field": "firing", "type": "nominal",
                                              "title": None, "scale": {
                                                  "domain": ["not firing",
                                                             "firing (both windows over)"],
                                                  "range": [BLUE, BAD]}},
                                    "tooltip": [{"field": "slo"}, {"field": "pair"},
                                                {"field": "window"},
                                                {"field": "rate", "format": ".2f"},
                                                {"field": "firing"}],
                                },
                            },
                            {
                                "mark": {"type": "rule", "color": "#000", "strokeDash": [4, 3]},
                                "encoding": {"y": {"datum": 1}},
                            },
                        ]
                    },
                },
                "burn rates per SLO and window pair, divided by their alert thresholds: "
                "over the dashed line is over the threshold",
            )
        )  # fmt: skip
    if unmeasured:
        out.append(
            '<p class="missing" data-missing="burn-pairs">No burn rate yet (its window has '
            f"no evaluation): {_e(', '.join(unmeasured))}.</p>"
        )
    return "".join(out)


def _freshness(data: ReportData, charts: _Charts) -> str:
    section = data.freshness
    if section.missing:
        return _missing("freshness", section.missing)
    strip = [
        (
            t.table,
            [_Cell(d.day, d.status, {"max_age_hours": _round(d.max_age_hours, 2)}) for d in t.days],
        )
        for t in section.tables
    ]
    late = [t for t in section.tables if t.today in ("warn", "error") or t.status != "green"]
    table = "".join(
        f'<tr data-table="{_e(t.table)}"><td>{_e(t.table)}</td>'
        f'<td data-field="now">{_state(t.status)}</td><td>{_state(t.today)}</td>'
        f'<td class="num">{_num(t.age_hours, 1)}</td>'
        f'<td class="num">{_num(t.warn_after_hours, 0)} / {_num(t.error_after_hours, 0)}</td></tr>'
        for t in late
    )
    listing = (
        '<table id="late-tables"><thead><tr><th>late table</th><th>now</th><th>today</th>'
        '<th class="num">age (h)</th><th class="num">warn / error (h)</th></tr></thead>'
        f"<tbody>{table}</tbody></table>"
        if late
        else "<p>No table is late today.</p>"
    )
    chart = _heat_strip(
        charts,
        "freshness",
        strip,
        data.days,
        row="table",
        legend="freshness",
        statuses=("green", "warn", "error", "no data"),
        step=16,
        tooltip=[{"field": "max_age_hours", "title": "oldest (h)"}],
        title="freshness per table",
        combine=_oldest,
        rest=f"{sum(1 for t in section.tables[MAX_ROWS:] if t.status != 'green')} of them "
        "late now, listed above",
    )
    return listing + chart


def _oldest(cells: Sequence[_Cell]) -> dict[str, Any]:
    ages = [c.fields["max_age_hours"] for c in cells if c.fields["max_age_hours"] is not None]
    return {"max_age_hours": max(ages, default=None)}


#: each heat-strip status's glyph, so a cell reads without its colour (good: none)
_GLYPHS = ("", "!", "✕", "–")
#: a week that was good on the days it had data, but not every day had some
_PARTIAL = "·"
#: a longer window is drawn a column per week (a column a day stays readable up to here)
WEEKLY_AFTER_DAYS = 62
#: at most this many rows drawn per heat strip, the most urgent (the caller's order)
MAX_ROWS = 80


@dataclass(frozen=True)
class _Cell:
    day: date
    status: str
    fields: dict[str, Any]


def _label_glyphs(glyph: dict[str, str]) -> str:
    """A Vega expression: a legend label with its glyph before it ("! warn")."""
    cases = {s: f"{g} {s}" for s, g in glyph.items() if g}
    return f"{_json(cases)}[datum.label] || datum.label"


def _weeks(
    cells: Sequence[_Cell],
    statuses: tuple[str, str, str, str],
    combine: Callable[[Sequence[_Cell]], dict[str, Any]],
) -> list[_Cell]:
    """One cell per ISO week (Monday to Sunday; the window's first and last may be
    shorter), dated by its first day: the worst status a day with data had (no data
    only when no day had any: today before its first run, or a pipeline idle at
    weekends, must not grey out a good week; such a week's glyph is "·" instead), the
    fields ``combine``d, and how many days it holds (and with data)."""
    good, warn, bad, none = statuses
    weeks: dict[date, list[_Cell]] = {}
    for cell in cells:
        weeks.setdefault(cell.day - timedelta(days=cell.day.weekday()), []).append(cell)
    out = []
    for own in weeks.values():
        seen = {c.status for c in own}
        status = next((s for s in (bad, warn, good) if s in seen), none)
        fields = {
            **combine(own),
            "days": len(own),
            "days_with_data": sum(1 for c in own if c.status != none),
        }
        out.append(_Cell(min(c.day for c in own), status, fields))
    return out


def _heat_strip(
    charts: _Charts,
    name: str,
    rows: Sequence[tuple[str, Sequence[_Cell]]],
    days: int,
    *,
    row: str,
    legend: str,
    statuses: tuple[str, str, str, str],
    step: int,
    tooltip: list[dict[str, Any]],
    title: str,
    combine: Callable[[Sequence[_Cell]], dict[str, Any]],
    rest: str,
) -> str:
    """Rows (most urgent first) × UTC days, one cell each, coloured by its status (good,
    warn, bad, no data) and marked with its glyph (none, !, ✕, –) for who can't tell the
    colours apart. Past WEEKLY_AFTER_DAYS a column is a week; past MAX_ROWS the rest are
    counted, not drawn: the page stays small and readable for any window and table count."""
    weekly = days > WEEKLY_AFTER_DAYS
    glyph = dict(zip(statuses, _GLYPHS, strict=True))
    drawn = rows[:MAX_ROWS]
    cells = [
        {row: label, "day": c.day.isoformat(), "status": c.status, **c.fields,
         "glyph": glyph.get(c.status, "?")}
        for label, own in drawn
        for c in (_weeks(own, statuses, combine) if weekly else own)
    ]  # fmt: skip
    for cell in cells:  # a good week with a day without data says so, not by colour
        if weekly and cell["status"] == statuses[0] and cell["days_with_data"] < cell["days"]:
            cell["glyph"] = _PARTIAL
    key = ", ".join(f"{g} {s}" if g else s for s, g in zip(statuses, _GLYPHS, strict=True))
    if weekly:
        key += f", {_PARTIAL} some days without data"
    per = "per week (its worst day with data)" if weekly else "per day"
    extra = [{"field": "days_with_data", "title": "days with data"}] if weekly else []
    chart = charts.add(
        name,
        {
            "width": 820,
            "height": {"step": step},
            "data": {"values": cells},
            "encoding": {
                "x": {"field": "day", "type": "ordinal",
                      "title": "week from" if weekly else None,
                      "axis": {"labelAngle": -45}},
                "y": {"field": row, "type": "nominal", "sort": [r for r, _ in drawn],
                      "title": None, "axis": {"labelLimit": 320}},
                "tooltip": [{"field": row}, {"field": "day"}, {"field": "status"}, *tooltip,
                            *extra],
            },
            "layer": [
                {
                    "mark": {"type": "rect", "stroke": "#fff", "strokeWidth": 1},
                    "encoding": {
                        "color": {"field": "status", "type": "nominal", "title": legend,
                                  "scale": {"domain": list(statuses),
                                            "range": [OK, WARN, BAD, NODATA]},
                                  "legend": {"labelExpr": _label_glyphs(glyph)}},
                    },
                },
                {
                    "mark": {"type": "text", "fontSize": min(step - 4, 13),
                             "fontWeight": "bold", "color": "#1a1a1a"},
                    "encoding": {"text": {"field": "glyph"}},
                },
            ],
        },
        f"{title} {per} ({key})",
    )  # fmt: skip
    if len(rows) <= MAX_ROWS:
        return chart
    hidden = len(rows) - MAX_ROWS
    return chart + (
        f'<p class="missing" data-capped="{_e(name)}" data-hidden="{hidden}">Drawn: the '
        f"{MAX_ROWS} most urgent of {len(rows)} {_e(row)}s; the other {hidden} are not drawn "
        f"({_e(rest)}).</p>"
    )


def _backups(data: ReportData, charts: _Charts) -> str:
    section = data.backups
    if section.missing:
        out = [_missing("backups", section.missing)]
    else:
        rows = "".join(
            f'<tr data-run="{_e(n.run_id)}" data-status="{_e(_night_status(n))}">'
            f"<td>{_e(n.run_id)}</td>"
            f'<td data-field="status">{_state(_night_status(n))}</td>'
            f'<td class="num" data-field="tables">{n.tables}</td>'
            f'<td class="num" data-field="rows">{n.rows:,}</td>'
            f'<td class="num" data-field="bytes" data-value="{n.bytes}">'
            f"{n.bytes / 1e6:,.2f} MB</td>"
            f'<td class="num" data-field="files">{n.files}</td>'
            f'<td class="num">{_num(n.duration_seconds, 1)}</td>'
            f"<td>{_e(n.verification)}</td>"
            f'<td data-field="note">{_e(n.note or "")}</td></tr>'
            for n in section.nights
        )
        bars = [
            {
                "night": n.run_id,
                "mb": n.bytes / 1e6,
                "status": _night_status(n),
                "mark": _NIGHT_MARKS.get(_night_status(n), ""),
            }
            for n in section.nights
        ]
        out = [
            '<table id="backup-table"><thead><tr><th>night</th><th>status</th>'
            '<th class="num">tables</th><th class="num">rows</th><th class="num">size</th>'
            '<th class="num">files</th><th class="num">duration (s)</th>'
            "<th>verification</th><th>note</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>",
            charts.add(
                "backups",
                {
                    "width": 1050,
                    "height": 160,
                    "data": {"values": bars},
                    "encoding": {
                        "x": {"field": "night", "type": "ordinal", "title": None,
                              "sort": "ascending"},
                    },
                    "layer": [
                        {
                            "mark": "bar",
                            "encoding": {
                                "y": {"field": "mb", "type": "quantitative",
                                      "title": "MB exported"},
                                "color": {"field": "status", "type": "nominal", "title": None,
                                          "scale": {"domain": list(_NIGHT_COLOURS),
                                                    "range": list(_NIGHT_COLOURS.values())}},
                                "tooltip": [{"field": "night"}, {"field": "status"},
                                            {"field": "mb", "format": ",.2f", "title": "MB"}],
                            },
                        },
                        {
                            # not by colour alone: a glyph under each night that wasn't
                            # complete (a missed night has no bar to colour)
                            "mark": {"type": "text", "baseline": "bottom", "dy": -2,
                                     "fontSize": 13, "fontWeight": "bold"},
                            "encoding": {
                                "y": {"datum": 0},
                                "text": {"field": "mark"},
                                "color": {"value": "#1a1a1a"},
                            },
                        },
                    ],
                },
                "bytes exported per night by status; ✕ missed, ! failed or partial, "
                "… in progress, ⏸ stalled",
            ),
        ]  # fmt: skip
    drill = section.drill
    if drill.missing or drill.drill is None:
        out.append(_missing("drill", drill.missing or "no restore drill recorded"))
    else:
        d = drill.drill
        within = {True: "within", False: "over", None: "unknown against"}[d.within_max_hours]
        out.append(
            f'<p id="drill" data-projected-hours="{_e(d.projected_hours)}" '
            f'data-max-hours="{_e(d.max_hours)}" data-age-hours="{_e(d.age_hours)}">'
            f"Newest restore drill {_e(d.date)} ({_duration(d.age_hours)} ago): "
            f"{_state('pass' if d.passed else 'failed')} — {d.sample_tables} sample table(s), "
            f"{d.sample_bytes / 1e6:,.2f} MB in {d.sample_seconds:,.1f} s "
            f"({_num((d.throughput_bytes_per_second or 0) / 1e6, 2)} MB/s); full restore "
            f"projected at <b>{_duration(d.projected_hours)}</b>, {within} the "
            f"{_num(d.max_hours, 0)} h SLA."
            + (f" Error: {_e(d.error)}." if d.error else "")
            + "</p>"
        )
    return "".join(out)


_NIGHT_COLOURS = {
    "complete": OK,
    "partial": WARN,
    "failed": BAD,
    "in progress": NODATA,
    "stalled": PURPLE,
    "missed": BAD,
}
_NIGHT_MARKS = {"partial": "!", "failed": "!", "in progress": "…", "stalled": "⏸", "missed": "✕"}


def _night_status(night: BackupNight) -> str:
    """Its status, "stalled" for a run in progress for too long (its note says why)."""
    if night.status == "in progress" and night.note:
        return "stalled"
    return night.status


def _phases(data: ReportData, charts: _Charts) -> str:
    section = data.phases
    if section.missing:
        return _missing("phases", section.missing)
    strip = [
        (
            p.phase,
            [
                _Cell(d.day, d.status or "no data",
                      {"ratio": d.ratio, "runs": d.runs, "succeeded": d.succeeded})
                for d in p.days
            ],
        )
        for p in section.phases
    ]  # fmt: skip
    return _heat_strip(
        charts,
        "phases",
        strip,
        data.days,
        row="phase",
        legend="success",
        statuses=("pass", "warn", "fail", "no data"),
        step=22,
        tooltip=[{"field": "ratio", "format": ".1%"}, {"field": "runs"}],
        title="pipeline phase success",
        combine=_runs,
        rest="their success ratios are higher",
    )


def _runs(cells: Sequence[_Cell]) -> dict[str, Any]:
    runs = sum(int(c.fields["runs"] or 0) for c in cells)
    good = sum(int(c.fields["succeeded"] or 0) for c in cells)
    return {"runs": runs, "succeeded": good, "ratio": good / runs if runs else None}


def _incidents(data: ReportData, charts: _Charts) -> str:
    section = data.incidents
    if section.missing:
        return _missing("incidents", section.missing)
    values = [
        {"alert": i.alertname, "opened": _ms(i.opened),
         "until": _ms(i.resolved or data.generated_at), "severity": i.severity,
         "status": i.status}
        for i in section.incidents
    ]  # fmt: skip
    rows = "".join(
        f'<tr data-fingerprint="{_e(i.fingerprint)}"><td>{_e(i.alertname)}</td>'
        f"<td>{_e(i.severity)}</td><td>{_state(i.status)}</td>"
        f"<td>{_e(_at(i.opened))}</td><td>{_e(_at(i.notified))}</td>"
        f"<td>{_e(_at(i.resolved))}</td>"
        f'<td class="num" data-field="detection" data-value="{_e(i.detection_seconds)}">'
        f"{_num(None if i.detection_seconds is None else i.detection_seconds / 60, 1)}</td>"
        f"<td>{_e(', '.join(i.receivers))}</td>"
        f"<td>{_e(', '.join(i.suppressed_receivers))}</td>"
        f"<td>{_e(', '.join(i.failed_receivers))}</td></tr>"
        for i in section.incidents
    )
    chart = charts.add(
        "incidents",
        {
            "width": 1050,
            "height": {"step": 18},
            "data": {"values": values},
            "encoding": {
                "x": {"field": "opened", "type": "temporal", "title": None,
                      "scale": {"type": "utc", **_window(data)},
                      "axis": {"format": _day_format(data), "values": _day_ticks(data)}},
                "y": {"field": "alert", "type": "nominal", "title": None},
                "color": {"field": "severity", "type": "nominal",
                          "scale": {"domain": ["P0", "P1", "P2", "P3"],
                                    "range": [BAD, WARN, BLUE, SKY]}},
                "tooltip": [{"field": "alert"}, {"field": "severity"}, {"field": "status"},
                            {"field": "opened", "type": "temporal", "title": "opened (UTC)",
                             "timeUnit": _UTC_MINUTES, "format": "%Y-%m-%d %H:%M"},
                            {"field": "until", "type": "temporal", "title": "until (UTC)",
                             "timeUnit": _UTC_MINUTES, "format": "%Y-%m-%d %H:%M"}],
            },
            "layer": [
                {
                    "mark": {"type": "bar", "cornerRadius": 2, "clip": True},
                    "encoding": {
                        "x2": {"field": "until"},
                        "opacity": {"field": "status", "type": "ordinal",
                                    "scale": {"domain": ["open", "resolved"],
                                              "range": [1, 0.45]}},
                    },
                },
                {
                    # where it opened, visible however short it was against the window;
                    # its shape says open (▶, still going) or resolved (●)
                    "mark": {"type": "point", "filled": True, "size": 60, "opacity": 1},
                    "encoding": {
                        "shape": {"field": "status", "type": "nominal", "title": "status",
                                  "scale": {"domain": ["open", "resolved"],
                                            "range": ["triangle-right", "circle"]}},
                    },
                },
            ],
        },
        "incidents from opened to resolved (open ones to now)",
    )  # fmt: skip
    table = (
        '<table id="incident-table"><thead><tr><th>alert</th><th>severity</th><th>status</th>'
        "<th>opened</th><th>notified</th><th>resolved</th>"
        '<th class="num">detection (min)</th><th>told</th><th>held back (silence, mute, '
        "inhibition)</th><th>failed</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    return chart + table


def _window(data: ReportData) -> dict[str, int]:
    """The report's window as a time scale's domain: a chart spans all of it, so a gap
    in the data is a gap on the page, not a stretched line. (As domainMin/domainMax: a
    ``domain`` on a bar's x with an x2 makes Vega-Lite 6.5 warn "Conflicting scale
    property" and take the union.)"""
    return {"domainMin": _ms(data.since), "domainMax": _ms(data.generated_at)}


def _day_ticks(data: ReportData) -> list[int]:
    """A tick each UTC midnight of the window, or every few: at most 14, evenly spaced
    (an interval step restarts on each month's 1st, crowding its labels), counted back
    from the newest midnight so the window's newest days are always labelled."""
    step = max(1, -(-data.days // 14))
    newest = datetime(
        data.generated_at.year, data.generated_at.month, data.generated_at.day, tzinfo=UTC
    )
    ticks = []
    moment = newest
    while moment >= data.since:
        ticks.append(_ms(moment))
        moment -= timedelta(days=step)
    return ticks[::-1]


def _day_format(data: ReportData) -> str:
    """Day and month; the year too once the window spans most of one."""
    return "%d %b %Y" if data.days > 300 else "%d %b"


def _ms(moment: datetime) -> int:
    """Epoch milliseconds: what a Vega-Lite temporal scale takes as a domain and as data."""
    return round(moment.timestamp() * 1000)


def _duration(hours: float | None) -> str:
    if hours is None:
        return "—"
    if hours >= 1:
        return f"{hours:,.2f} h"
    if hours * 60 >= 1:
        return f"{hours * 60:,.1f} min"
    return f"{hours * 3600:,.1f} s"


def _at(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def render(data: ReportData, scripts: Sequence[str]) -> str:
    """The report page; ``scripts``: the vendored Vega scripts' bodies, in load order."""
    charts = _Charts()
    body = [
        "<h2>SLOs</h2>",
        _slo_table(data),
        "<h2>Error budget and burn rates</h2>",
        _budget(data, charts),
        "<h2>Freshness</h2>",
        _freshness(data, charts),
        "<h2>Backups and restore drill</h2>",
        _backups(data, charts),
        "<h2>Pipeline phases</h2>",
        _phases(data, charts),
        "<h2>Incidents</h2>",
        _incidents(data, charts),
    ]
    missing = data.missing()
    summary = f"{len(missing)} section(s) without data: {', '.join(missing)}." if missing else ""
    boot = (
        "const specs = JSON.parse(document.getElementById('specs').textContent);"
        "Promise.all(Object.entries(specs).map(([name, spec]) =>"
        " vegaEmbed('#chart-' + name, spec, {renderer: 'svg', actions: false})"
        ".catch((e) => { const el = document.getElementById('chart-' + name);"
        " el.className = 'missing'; el.textContent = 'This chart could not be drawn: ' + e;"
        " throw e; })))"
        ".then(() => { document.body.dataset.ready = 'true'; })"
        ".catch((e) => { document.body.dataset.error = String(e); console.error(e); });"
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp([*scripts, boot])}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>opsuite report {data.generated_at:%Y-%m-%d %H:%M} UTC</title>"
        f"<style>{_STYLE}</style></head>"
        "<body>"
        "<h1>Pipeline operations report</h1>"
        f'<p class="meta">Generated {_e(_at(data.generated_at))} from the {_e(data.backend)} '
        f"backend; the last {data.days} day(s) (since {_e(_at(data.since))}). {_e(summary)}</p>"
        + "".join(body)
        + "".join(f"<script>{body}</script>\n" for body in scripts)
        + f'<script type="application/json" id="specs">{_json(charts.specs)}</script>'
        + f"<script>{boot}</script>"
        + "</body></html>\n"
    )
