"""Which receivers an alert reaches, whether it is inhibited or muted by time: Alertmanager's
semantics over the ``alerting:`` config, pure (no I/O, no clock: the instant is an argument).

- Routing (dispatch/route.go ``Route.Match``): the root always matches; children are tried
  depth-first in order, the first that matches wins unless it has ``continue: true``; a
  route none of whose children match handles the alert itself.
- Matching: an absent label is the empty string (``foo=""`` matches an alert without
  ``foo``; ``foo!=""`` needs it). Regexes are anchored and were compiled at config load:
  routing an alert compiles nothing.
- Inhibition (inhibit/inhibit.go ``Mutes``): a firing source alert mutes a target when the
  target matches the rule's target matchers, the source its source matchers, and the
  ``equal`` labels have the same values (absent equals absent); when the target matches
  both sides, sources that match both sides are not counted (nothing inhibits itself).
- Time intervals (timeinterval ``ContainsTime``): times are ``[start, end)`` minutes of the
  day in the interval's ``location`` (UTC by default), other ranges inclusive.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.alerting_config import (
    AlertingSettings,
    InhibitRule,
    InvalidMatcher,
    Matcher,
    RouteNode,
    TimeInterval,
    TimeIntervalSpec,
    parse_matchers,
)

__all__ = [
    "Inhibition",
    "InvalidMatcher",
    "Matcher",
    "RouteMatch",
    "group_key",
    "group_labels",
    "in_interval",
    "inhibited",
    "inhibition",
    "labels_match",
    "parse_matchers",
    "receivers_for",
    "route_at",
    "route_for_receiver",
    "routes_for",
    "time_muted",
]

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """One route an alert reached, with the options in force there (inherited ones resolved)."""

    receiver: str
    #: Alertmanager's route ID, e.g. ``{}/{owner="team-A"}/0``: unique in the tree
    route_id: str
    #: Alertmanager's route key, e.g. ``{}/{owner="team-A"}`` (siblings may share one)
    route_key: str
    #: the route's place in the config, e.g. ``route.routes[0].routes[1]``
    path: str
    group_by: tuple[str, ...]
    #: ``group_by: ['...']``: every label of the alert groups
    group_by_all: bool
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    mute_time_intervals: tuple[str, ...]
    active_time_intervals: tuple[str, ...]
    continue_: bool


@dataclass(frozen=True, slots=True)
class Inhibition:
    """Why an alert is inhibited: the rule (its index in ``inhibit_rules``) and the source."""

    rule_index: int
    source_labels: Labels


def labels_match(matchers: Sequence[Matcher], labels: Labels) -> bool:
    """All matchers hold; an absent label is ``""``."""
    for m in matchers:  # noqa: SIM110 (the hot path: a loop beats all() over a generator)
        if not m.matches(labels.get(m.name, "")):
            return False
    return True


def _as_match(node: RouteNode) -> RouteMatch:
    return RouteMatch(
        receiver=node.receiver,
        route_id=node.route_id,
        route_key=node.route_key,
        path=node.path,
        group_by=node.group_by,
        group_by_all=node.group_by_all,
        group_wait=node.group_wait,
        group_interval=node.group_interval,
        repeat_interval=node.repeat_interval,
        mute_time_intervals=node.mute_time_intervals,
        active_time_intervals=node.active_time_intervals,
        continue_=node.continue_,
    )


def _match(node: RouteNode, labels: Labels, found: list[RouteNode]) -> bool:
    if not labels_match(node.matchers, labels):
        return False
    before = len(found)
    for child in node.routes:
        if _match(child, labels, found) and not child.continue_:
            break
    if len(found) == before:  # no child took it: this route handles the alert
        found.append(node)
    return True


def _nodes_for(settings: AlertingSettings, labels: Labels) -> list[RouteNode]:
    tree = settings.routing_tree
    found: list[RouteNode] = []
    if tree is not None:
        _match(tree, labels, found)
    return found


def routes_for(settings: AlertingSettings, labels: Labels) -> list[RouteMatch]:
    """The routes an alert with these labels reaches, in order (empty only without a route)."""
    return [_as_match(node) for node in _nodes_for(settings, labels)]


def receivers_for(settings: AlertingSettings, labels: Labels) -> list[str]:
    """The receiver of each route reached, in order, as ``amtool config routes test``."""
    return [node.receiver for node in _nodes_for(settings, labels)]


def _depth_first(settings: AlertingSettings) -> Iterator[RouteNode]:
    """Every route of the tree, parent before children, in order (Route.Walk)."""
    tree = settings.routing_tree
    stack = [tree] if tree is not None else []
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.routes))


def route_for_receiver(settings: AlertingSettings, receiver: str) -> RouteMatch | None:
    """The first route (depth first) whose receiver is ``receiver``, or None: where a
    resolution goes for a receiver the alert's labels no longer reach (they changed, or
    the config did, since the firing was notified)."""
    node = next((n for n in _depth_first(settings) if n.receiver == receiver), None)
    return None if node is None else _as_match(node)


def route_at(settings: AlertingSettings, path: str) -> RouteMatch | None:
    """The route at ``path`` in the config (``route.routes[0].routes[1]``), or None."""
    node = next((n for n in _depth_first(settings) if n.path == path), None)
    return None if node is None else _as_match(node)


def group_labels(match: RouteMatch, labels: Labels) -> dict[str, str]:
    """The alert's labels that form its group on this route (``group_by``, or all of them
    for ``...``); an empty value counts as absent."""
    if match.group_by_all:
        return {k: v for k, v in sorted(labels.items()) if v}
    return {k: labels[k] for k in match.group_by if labels.get(k)}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'


def group_key(match: RouteMatch, labels: Labels) -> str:
    """The alert's aggregation group: ``<route id>:{label="value", ...}``.

    Alertmanager's group key is ``<route key>:<group labels>``; the route ID used here also
    carries each route's index, so two sibling routes with the same matchers (both reached
    through ``continue``) never share a group.
    """
    found = group_labels(match, labels)
    text = ", ".join(f"{k}={_quote(v)}" for k, v in sorted(found.items()))
    return f"{match.route_id}:{{{text}}}"


def inhibition(
    target_labels: Labels, firing_alerts_labels: Iterable[Labels], rules: Sequence[InhibitRule]
) -> Inhibition | None:
    """The first rule and firing source alert that mute the target, if any."""
    sources = list(firing_alerts_labels)
    for index, rule in enumerate(rules):
        target_side = rule.compiled_target_matchers
        source_side = rule.compiled_source_matchers
        if not labels_match(target_side, target_labels):
            continue
        two_sided = labels_match(source_side, target_labels)
        for source in sources:
            if not labels_match(source_side, source):
                continue
            if any(source.get(n, "") != target_labels.get(n, "") for n in rule.equal):
                continue
            if two_sided and labels_match(target_side, source):
                continue
            return Inhibition(rule_index=index, source_labels=source)
    return None


def inhibited(
    target_labels: Labels, firing_alerts_labels: Iterable[Labels], rules: Sequence[InhibitRule]
) -> bool:
    """Whether any rule lets one of the firing alerts mute the target (see module doc)."""
    return inhibition(target_labels, firing_alerts_labels, rules) is not None


def _in_ranges(value: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(begin <= value <= end for begin, end in ranges)


def _day_in(day: int, days_in_month: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    for first, last in ranges:  # timeinterval.ContainsTime, days_of_month
        begin = days_in_month + first + 1 if first < 0 else first
        end = days_in_month + last + 1 if last < 0 else last
        if begin > days_in_month:  # e.g. "31" in a 30-day month: not this month
            continue
        end = max(-days_in_month, min(end, days_in_month))
        begin = max(-days_in_month, min(begin, days_in_month))
        if begin <= day <= end:
            return True
    return False


def _contains(spec: TimeIntervalSpec, instant: datetime) -> bool:
    local = instant.astimezone(spec.zone)
    minutes = spec.minute_ranges
    if minutes is not None:
        minute = local.hour * 60 + local.minute
        if not any(start <= minute < end for start, end in minutes):
            return False
    days = spec.day_of_month_ranges
    if days is not None:
        days_in_month = calendar.monthrange(local.year, local.month)[1]
        if not _day_in(local.day, days_in_month, days):
            return False
    months = spec.month_ranges
    if months is not None and not _in_ranges(local.month, months):
        return False
    weekdays = spec.weekday_ranges
    if weekdays is not None and not _in_ranges(local.isoweekday() % 7, weekdays):
        return False
    years = spec.year_ranges
    return years is None or _in_ranges(local.year, years)


def in_interval(interval: TimeInterval | TimeIntervalSpec, instant: datetime) -> bool:
    """Whether the instant (timezone-aware) is inside the interval: a named interval when
    any of its entries contains it (none: never), an entry when all its fields do."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("in_interval needs a timezone-aware instant")
    if isinstance(interval, TimeIntervalSpec):
        return _contains(interval, instant)
    return any(_contains(spec, instant) for spec in interval.time_intervals)


def time_muted(settings: AlertingSettings, match: RouteMatch, instant: datetime) -> str | None:
    """Why the route's notifications are muted at this instant, or ``None``: inside one of
    its ``mute_time_intervals``, or outside all of its ``active_time_intervals``."""
    for name in match.mute_time_intervals:
        interval = settings.time_interval(name)
        if interval is not None and in_interval(interval, instant):
            return f"in mute time interval {name!r}"
    if match.active_time_intervals and not any(
        (interval := settings.time_interval(name)) is not None and in_interval(interval, instant)
        for name in match.active_time_intervals
    ):
        return "outside the active time intervals " + ", ".join(
            repr(n) for n in match.active_time_intervals
        )
    return None
