"""The ``alerting:`` section as Alertmanager's schema: what loads, and errors naming the path."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shared.alerting_config import AlertingSettings, parse_duration

RECEIVERS = [{"name": "default"}, {"name": "slack"}, {"name": "pagerduty"}]


def _settings(text: str, receivers: list[dict[str, Any]] | None = None) -> AlertingSettings:
    data = yaml.safe_load(text) or {}
    data.setdefault("receivers", RECEIVERS if receivers is None else receivers)
    return AlertingSettings.model_validate(data)


def _error(text: str, receivers: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    """The first error as the config loader reports it: (dotted path, message)."""
    with pytest.raises(ValidationError) as caught:
        _settings(text, receivers)
    error = caught.value.errors()[0]
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<root>", error["msg"].removeprefix("Value error, ")


def test_a_full_alertmanager_style_section_loads() -> None:
    settings = _settings(
        """
route:
  receiver: default
  group_by: [alertname, slo]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
  - matchers: ['severity=~"P0|P1"']
    receiver: pagerduty
    continue: true
  - matchers: ['severity=~"P[0-2]"']
    receiver: slack
  - matchers: [severity="P3"]
    receiver: slack
    mute_time_intervals: [quiet-hours]
inhibit_rules:
- source_matchers: [severity="P0", alertname="PipelineDown"]
  target_matchers: [severity="P2"]
  equal: [pipeline]
time_intervals:
- name: quiet-hours
  time_intervals:
  - times:
    - start_time: 22:00
      end_time: 24:00
    - start_time: 00:00
      end_time: 07:00
    location: Europe/Amsterdam
"""
    )
    assert settings.route is not None and settings.route.routes[0].continue_
    interval = settings.time_interval("quiet-hours")
    assert interval is not None
    # unquoted 22:00 is YAML 1.1's sexagesimal 1320: read back as the time it spells
    assert [t.start_time for t in interval.time_intervals[0].times or []] == ["22:00", "00:00"]
    assert interval.time_intervals[0].minute_ranges == ((1320, 1440), (0, 420))
    tree = settings.routing_tree
    assert tree is not None and [r.receiver for r in tree.routes] == ["pagerduty", "slack", "slack"]
    assert settings.inhibit_rules[0].compiled_target_matchers[0].value == "P2"


def test_no_section_is_no_routing() -> None:
    assert AlertingSettings().routing_tree is None


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (
            "route: {receiver: default, routes: [{receiver: slack}, {receiver: pager}]}",
            "route.routes[1].receiver",
            "'pager' is not a configured receiver (receivers: default, pagerduty, slack)",
        ),
        (
            "route: {receiver: nobody}",
            "route.receiver",
            "'nobody' is not a configured receiver",
        ),
        (
            "route: {receiver: default, routes: [{routes: [{mute_time_intervals: [quiet]}]}]}",
            "route.routes[0].routes[0].mute_time_intervals[0]",
            "'quiet' is not a configured time interval (time_intervals: none)",
        ),
        (
            "route: {receiver: default, routes: [{active_time_intervals: [office]}]}",
            "route.routes[0].active_time_intervals[0]",
            "'office' is not a configured time interval",
        ),
        (
            "route: {receiver: default, routes: [{group_wait: 5x}]}",
            "route.routes[0].group_wait",
            "not a valid duration string: '5x'",
        ),
        (
            "route: {receiver: default, repeat_interval: 30m1h}",
            "route.repeat_interval",
            "not a valid duration string: '30m1h'",
        ),
        (
            "route: {receiver: default, group_interval: 0}",
            "route.group_interval",
            "cannot be zero",
        ),
        (
            "route: {receiver: default, routes: [{recevier: slack}]}",
            "route.routes[0].recevier",
            "Extra inputs are not permitted",
        ),
        ("global: {resolve_timeout: 5m}", "global", "Extra inputs are not permitted"),
        (
            "route: {receiver: default, routes: [{matchers: ['a=b', 'foo']}]}",
            "route.routes[0].matchers[1]",
            "bad matcher format: 'foo'",
        ),
        (
            "route: {receiver: default, routes: [{matchers: ['a=~\"(\"']}]}",
            "route.routes[0].matchers[0]",
            "'(' is not a valid regular expression",
        ),
        (
            "route: {receiver: default, routes: [{match_re: {env: 'prod[' }}]}",
            "route.routes[0].match_re.env",
            "'prod[' is not a valid regular expression",
        ),
        (
            "route: {receiver: default, routes: [{match: {'bad-name': x}}]}",
            "route.routes[0].match.bad-name.[key]",
            "invalid label name 'bad-name'",
        ),
        (
            "route: {receiver: default, group_by: ['...', alertname]}",
            "route.group_by",
            "cannot have wildcard group_by (`...`) and other labels at the same time",
        ),
        (
            "route: {receiver: default, group_by: [a, a]}",
            "route.group_by",
            "duplicated label 'a' in group_by",
        ),
        (
            "route: {receiver: default, group_by: [a-b]}",
            "route.group_by",
            "invalid label name 'a-b' in group_by list",
        ),
        (
            "route: {routes: [{receiver: slack}]}",
            "route.receiver",
            "the root route must name a receiver",
        ),
        (
            "route: {receiver: default, matchers: [a=b]}",
            "route",
            "the root route must not have any matchers",
        ),
        (
            "route: {receiver: default, match: {a: b}}",
            "route",
            "the root route must not have any matchers",
        ),
        ("route: {receiver: default, continue: true}", "route.continue", "cannot be set"),
        (
            "{route: {receiver: default, mute_time_intervals: [q]}, time_intervals: [{name: q}]}",
            "route.mute_time_intervals",
            "the root route cannot have mute time intervals",
        ),
        ("{}", "route", "required when receivers are configured"),
        (
            "{route: {receiver: default}, time_intervals: [{name: q}],"
            " mute_time_intervals: [{name: q}]}",
            "mute_time_intervals[0].name",
            "time interval 'q' is not unique",
        ),
        (
            "{route: {receiver: default}, inhibit_rules: [{equal: [a-b]}]}",
            "inhibit_rules[0].equal[0]",
            "invalid label name 'a-b' in equal list",
        ),
        (
            "{route: {receiver: default}, inhibit_rules: [{target_matchers: ['x=\"']}]}",
            "inhibit_rules[0].target_matchers[0]",
            "unescaped double quote",
        ),
    ],
)
def test_errors_name_the_path(text: str, path: str, message: str) -> None:
    found_path, found_message = _error(text)
    assert found_path == path
    assert message in found_message


@pytest.mark.parametrize(
    ("receiver", "message"),
    [
        (
            {"name": "mail", "email_configs": [{"to": "a@b.c"}]},
            "email_configs: not an integration opsuite delivers to",
        ),
        (
            {"name": "ops", "opsgenie_configs": [{}]},
            "opsgenie_configs: not an integration opsuite delivers to",
        ),
        (
            {"name": "s", "slack_configs": [{"api_url": "https://hooks.slack.com/x"}]},
            "api_url: secrets come only from Secret Manager",
        ),
    ],
)
def test_unsupported_integrations_are_config_errors(receiver: dict[str, Any], message: str) -> None:
    path, found = _error(
        f"route: {{receiver: {receiver['name']}}}", receivers=[receiver, {"name": "default"}]
    )
    assert path.startswith("receivers[0]")
    assert message in found


def test_a_receiver_with_only_a_name_is_a_null_receiver() -> None:
    settings = _settings("route: {receiver: blackhole}", receivers=[{"name": "blackhole"}])
    assert settings.receiver("blackhole") is not None


# time_intervals: Alertmanager's timeinterval yamlUnmarshalTestCases, same error texts
@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        (
            "{times: [{start_time: '01:99', end_time: '23:59'}]}",
            "times[0].start_time",
            "couldn't parse timestamp 01:99, invalid format",
        ),
        (
            "{times: [{start_time: '00:00', end_time: '99:99'}]}",
            "times[0].end_time",
            "couldn't parse timestamp 99:99, invalid format",
        ),
        (
            "{times: [{start_time: '16:00', end_time: '09:00'}]}",
            "times[0]",
            "start time cannot be equal or greater than end time",
        ),
        (
            "{times: [{start_time: '12:00', end_time: '12:00'}]}",
            "times[0]",
            "start time cannot be equal or greater than end time",
        ),
        (
            "{times: [{start_time: '12:00'}]}",
            "times[0].end_time",
            "Field required",
        ),
        ("{weekdays: ['friday:monday']}", "weekdays[0]", "start day cannot be before end day"),
        (
            "{weekdays: ['blurgsday:flurgsday']}",
            "weekdays[0]",
            "blurgsday is not a valid weekday",
        ),
        (
            "{days_of_month: ['0']}",
            "days_of_month[0]",
            "0 is not a valid day of the month: out of range",
        ),
        (
            "{days_of_month: ['-50:-20']}",
            "days_of_month[0]",
            "-50 is not a valid day of the month: out of range",
        ),
        (
            "{days_of_month: ['1:50']}",
            "days_of_month[0]",
            "50 is not a valid day of the month: out of range",
        ),
        (
            "{days_of_month: ['-15:5']}",
            "days_of_month[0]",
            "end day must be negative if start day is negative",
        ),
        (
            "{days_of_month: ['10:-25']}",
            "days_of_month[0]",
            "end day -25 is always before start day 10",
        ),
        ("{months: ['martius:june']}", "months[0]", "martius is not a valid month"),
        ("{months: ['march:junius']}", "months[0]", "junius is not a valid month"),
        (
            "{months: ['december:january']}",
            "months[0]",
            "end month january is before start month december",
        ),
        ("{years: ['2022:2020']}", "years[0]", "end year 2020 is before start year 2022"),
        ("{location: 'Invalid/Location'}", "location", "unknown time zone Invalid/Location"),
        ("{location: '../../etc/passwd'}", "location", "unknown time zone"),
        ("{location: Local}", "location", "name an IANA zone"),
        ("{weekday: [monday]}", "weekday", "Extra inputs are not permitted"),
        # unquoted, YAML 1.1 reads 1:5 as the number 65
        ("{days_of_month: [1:5]}", "days_of_month[0]", "quote ranges, e.g. '1:5'"),
        ("{months: [1:3]}", "months[0]", "quote ranges"),
        ("{months: ['1:2:3']}", "months[0]", "couldn't parse range '1:2:3', invalid format"),
    ],
)
def test_time_interval_errors(entry: str, path: str, message: str) -> None:
    text = (
        "{route: {receiver: default}, time_intervals: [{name: t, time_intervals: [" + entry + "]}]}"
    )
    found_path, found_message = _error(text)
    assert found_path == f"time_intervals[0].time_intervals[0].{path}"
    assert message in found_message


@pytest.mark.parametrize(
    ("entry", "check"),
    [
        ("{times: [{start_time: '12:00', end_time: '24:00'}]}", "minute_ranges"),
        ("{days_of_month: ['1:-1']}", "day_of_month_ranges"),
        ("{months: ['January:december']}", "month_ranges"),
        ("{months: [6]}", "month_ranges"),
        ("{years: [2026, '2030:2031']}", "year_ranges"),
        ("{weekdays: ['Monday:FRIDAY', sunday]}", "weekday_ranges"),
    ],
)
def test_time_interval_values_alertmanager_accepts(entry: str, check: str) -> None:
    settings = _settings(
        "{route: {receiver: default}, time_intervals: [{name: t, time_intervals: [" + entry + "]}]}"
    )
    interval = settings.time_interval("t")
    assert interval is not None
    expected = {
        "minute_ranges": ((720, 1440),),
        "day_of_month_ranges": ((1, -1),),
        "month_ranges": ((1, 12),) if "January" in entry else ((6, 6),),
        "year_ranges": ((2026, 2026), (2030, 2031)),
        "weekday_ranges": ((1, 5), (0, 0)),
    }[check]
    assert getattr(interval.time_intervals[0], check) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("4h", timedelta(hours=4)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1y", timedelta(days=365)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d12h", timedelta(days=2, hours=12)),
        ("250ms", timedelta(milliseconds=250)),
        ("1m30s500ms", timedelta(minutes=1, seconds=30, milliseconds=500)),
    ],
)
def test_prometheus_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "1.5h", "30m1h", "5x", "1hh", "-5m", "5 m", "h", "1h1h", "300", "9999999y"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_yaml_scalars_in_match_are_read_as_written() -> None:
    settings = _settings(
        "route: {receiver: default, routes: [{match: {code: 500, paged: true}, receiver: slack}]}"
    )
    assert settings.route is not None
    assert settings.route.routes[0].match == {"code": "500", "paged": "true"}


def test_zones_load_without_a_system_tz_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a runtime with no /usr/share/zoneinfo (zoneinfo then falls back to the tzdata
    # package the functions ship)  WHEN a time interval names a zone
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        settings = _settings(
            "{route: {receiver: default}, time_intervals: [{name: t, time_intervals: "
            "[{location: Australia/Sydney}]}]}"
        )
        interval = settings.time_interval("t")
        # THEN it loads, with the zone's rules (AEDT, +11, on 1 Nov 2021)
        assert interval is not None
        zone = interval.time_intervals[0].zone
        offset = datetime(2021, 11, 1, 9, tzinfo=zone).utcoffset()
        assert offset == timedelta(hours=11)
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def test_every_function_ships_the_tz_database() -> None:
    root = Path(__file__).resolve().parents[2]
    for requirements in sorted(root.glob("functions/*/requirements.txt")):
        pins = requirements.read_text().split()
        assert any(p.startswith("tzdata==") for p in pins), requirements


def test_a_receivers_secret_names_include_the_webhooks_hmac_key() -> None:
    from shared.alerting_config import PagerDutyConfig, Receiver, SlackConfig, WebhookConfig

    hook = Receiver(
        name="hook",
        webhook_configs=[
            WebhookConfig(url_secret="hook-url", hmac_key_secret="hook-key"),
            WebhookConfig(url_secret="plain-url"),
        ],
    )
    page = Receiver(
        name="page",
        slack_configs=[SlackConfig(webhook_url_secret="slack-url")],
        pagerduty_configs=[PagerDutyConfig(routing_key_secret="pd-key")],
    )
    assert hook.secret_names() == ["hook-key", "hook-url", "plain-url"]
    assert page.secret_names() == ["pd-key", "slack-url"]
    assert Receiver(name="null").secret_names() == []
    alerting = AlertingSettings.model_validate(
        {"route": {"receiver": "hook"}, "receivers": [hook.model_dump(), page.model_dump()]}
    )
    assert alerting.secret_names() == sorted(hook.secret_names() + page.secret_names())
