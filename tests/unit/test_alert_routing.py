"""Routing, matchers, inhibition and time intervals, against Alertmanager's own test cases.

The route trees are Alertmanager's dispatch/route_test.go trees (``TestRouteMatch``,
``TestRouteMatchWithMatchers``, ``TestInheritParentGroupByAll``, ``TestRouteID``) written
as the ``route:`` of an alertmanager.yml, with the answers that test asserts; inhibition
is inhibit/inhibit_test.go (``TestInhibitRuleMatches``, ``TestInhibitRuleMatchers``) and
time intervals timeinterval/timeinterval_test.go (``timeIntervalTestCases``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from shared.alerting_config import (
    AlertingSettings,
    InhibitRule,
    TimeInterval,
    TimeIntervalSpec,
)
from shared.errors import BadInput
from shared.services.alert_routing import (
    InvalidMatcher,
    group_key,
    group_labels,
    in_interval,
    inhibited,
    inhibition,
    labels_match,
    parse_matchers,
    receivers_for,
    route_for_receiver,
    routes_for,
    time_muted,
)


def _load(text: str) -> AlertingSettings:
    """An alertmanager.yml-style document; every receiver it names is a null receiver."""
    data: dict[str, Any] = yaml.safe_load(text)
    named: set[str] = set()

    def walk(route: dict[str, Any]) -> None:
        if route.get("receiver"):
            named.add(route["receiver"])
        for child in route.get("routes", []):
            walk(child)

    walk(data["route"])
    data.setdefault("receivers", [{"name": n} for n in sorted(named)])
    return AlertingSettings.model_validate(data)


DEF_WAIT, DEF_INTERVAL, DEF_REPEAT = timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=4)

# --- Alertmanager's own TestRouteMatch --------------------------------------------------
# Read from prometheus/alertmanager dispatch/route_test.go (TestRouteMatch, TestRouteMatchers,
# TestRouteMatchersAndMatch): each tree is that test's YAML unchanged, indented under
# ``route:``; the cases are that test's label sets with its expected RouteOpts and keys.
# ``continue`` is not in Go's RouteOpts; it is the tree's own ``continue: true`` on
# notify-productionA, asserted here so a route that dropped it would fail.

AM_ROUTE_MATCH_YAML = """
receiver: 'notify-def'

routes:
- match:
    owner: 'team-A'

  receiver: 'notify-A'

  routes:
  - match:
      env: 'testing'

    receiver: 'notify-testing'
    group_by: [...]

  - match:
      env: "production"

    receiver: 'notify-productionA'
    group_wait: 1m

    continue: true

  - match_re:
      env: "produ.*"
      job: ".*"

    receiver: 'notify-productionB'
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 1h
    group_by: ['job']

- match_re:
    owner: 'team-(B|C)'

  group_by: ['foo', 'bar']
  group_wait: 2m
  receiver: 'notify-BC'

- match:
    group_by: 'role'
  group_by: ['role']

  routes:
  - match:
      env: 'testing'
    receiver: 'notify-testing'
    routes:
    - match:
        wait: 'long'
      group_wait: 2m
"""

AM_ROUTE_MATCHERS_YAML = """
receiver: 'notify-def'

routes:
- matchers: ['{owner="team-A"}', '{level!="critical"}']

  receiver: 'notify-A'

  routes:
  - matchers: ['{env="testing"}', '{baz!~".*quux"}']

    receiver: 'notify-testing'
    group_by: [...]

  - matchers: ['{env="production"}']

    receiver: 'notify-productionA'
    group_wait: 1m

    continue: true

  - matchers: [ env=~"produ.*", job=~".*"]

    receiver: 'notify-productionB'
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 1h
    group_by: ['job']


- matchers: [owner=~"team-(B|C)"]

  group_by: ['foo', 'bar']
  group_wait: 2m
  receiver: 'notify-BC'

- matchers: [group_by="role"]
  group_by: ['role']

  routes:
  - matchers: ['{env="testing"}']
    receiver: 'notify-testing'
    routes:
    - matchers: [wait="long"]
      group_wait: 2m
"""

AM_ROUTE_MATCHERS_AND_MATCH_YAML = """
receiver: 'notify-def'

routes:
- matchers: ['{owner="team-A"}', '{level!="critical"}']

  receiver: 'notify-A'

  routes:
  - matchers: ['{env="testing"}', '{baz!~".*quux"}']

    receiver: 'notify-testing'
    group_by: [...]

  - match:
      env: "production"

    receiver: 'notify-productionA'
    group_wait: 1m

    continue: true

  - matchers: [ env=~"produ.*", job=~".*"]

    receiver: 'notify-productionB'
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 1h
    group_by: ['job']

- match_re:
    owner: 'team-(B|C)'

  group_by: ['foo', 'bar']
  group_wait: 2m
  receiver: 'notify-BC'

- matchers: [group_by="role"]
  group_by: ['role']

  routes:
  - matchers: ['{env="testing"}']
    receiver: 'notify-testing'
    routes:
    - matchers: [wait="long"]
      group_wait: 2m
"""

_AM_RECEIVERS = [
    "notify-def",
    "notify-A",
    "notify-testing",
    "notify-productionA",
    "notify-productionB",
    "notify-BC",
]


def _am_settings(route_yaml: str) -> AlertingSettings:
    """The Go test's route YAML as the route of an ``alerting:`` config, receivers by name."""
    route = "\n".join("    " + line if line else "" for line in route_yaml.splitlines())
    receivers = "\n".join(f"    - name: '{name}'" for name in _AM_RECEIVERS)
    document: dict[str, Any] = yaml.safe_load(
        f"alerting:\n  receivers:\n{receivers}\n  route:{route}\n"
    )
    return AlertingSettings.model_validate(document["alerting"])


_M, _S, _H = timedelta(minutes=1), timedelta(seconds=1), timedelta(hours=1)
# (receiver, group_by set, group_by_all, group_wait, group_interval, repeat_interval, continue)
_A = ("notify-A", set[str](), False, DEF_WAIT, DEF_INTERVAL, DEF_REPEAT, False)
_BC = ("notify-BC", {"foo", "bar"}, False, 2 * _M, DEF_INTERVAL, DEF_REPEAT, False)
_TESTING_ALL = ("notify-testing", set[str](), True, DEF_WAIT, DEF_INTERVAL, DEF_REPEAT, False)
_PROD_A = ("notify-productionA", set[str](), False, 1 * _M, DEF_INTERVAL, DEF_REPEAT, True)
_PROD_B = ("notify-productionB", {"job"}, False, 30 * _S, 5 * _M, 1 * _H, False)
_DEF_ROLE = ("notify-def", {"role"}, False, DEF_WAIT, DEF_INTERVAL, DEF_REPEAT, False)
_TESTING_ROLE = ("notify-testing", {"role"}, False, DEF_WAIT, DEF_INTERVAL, DEF_REPEAT, False)
_TESTING_LONG = ("notify-testing", {"role"}, False, 2 * _M, DEF_INTERVAL, DEF_REPEAT, False)

_OWNER_A_MATCH = '{}/{owner="team-A"}'
_OWNER_A_MATCHERS = '{}/{level!="critical",owner="team-A"}'
_BC_MATCH_RE = '{}/{owner=~"^(?:team-(B|C))$"}'
_BC_MATCHERS = '{}/{owner=~"team-(B|C)"}'
_ROLE = '{}/{group_by="role"}'


def _am_cases(
    owner_a: str, bc: str, testing: str, prod_b: str
) -> list[tuple[dict[str, str], list[tuple[Any, ...]], list[str]]]:
    """The eight label sets each of the three Go tests routes, with that test's answers."""
    return [
        ({"owner": "team-A"}, [_A], [owner_a]),
        ({"owner": "team-A", "env": "unset"}, [_A], [owner_a]),
        ({"owner": "team-C"}, [_BC], [bc]),
        ({"owner": "team-A", "env": "testing"}, [_TESTING_ALL], [owner_a + testing]),
        (
            {"owner": "team-A", "env": "production"},
            [_PROD_A, _PROD_B],
            [owner_a + '/{env="production"}', owner_a + prod_b],
        ),
        ({"group_by": "role"}, [_DEF_ROLE], [_ROLE]),
        ({"env": "testing", "group_by": "role"}, [_TESTING_ROLE], [_ROLE + '/{env="testing"}']),
        (
            {"env": "testing", "group_by": "role", "wait": "long"},
            [_TESTING_LONG],
            [_ROLE + '/{env="testing"}/{wait="long"}'],
        ),
    ]


AM_ROUTE_CASES = [
    ("TestRouteMatch", AM_ROUTE_MATCH_YAML, case)
    for case in _am_cases(
        _OWNER_A_MATCH, _BC_MATCH_RE, '/{env="testing"}', '/{env=~"^(?:produ.*)$",job=~"^(?:.*)$"}'
    )
] + [
    (name, tree, case)
    for name, tree in [
        ("TestRouteMatchers", AM_ROUTE_MATCHERS_YAML),
        ("TestRouteMatchersAndMatch", AM_ROUTE_MATCHERS_AND_MATCH_YAML),
    ]
    for case in _am_cases(
        _OWNER_A_MATCHERS,
        _BC_MATCHERS if name == "TestRouteMatchers" else _BC_MATCH_RE,
        '/{baz!~".*quux",env="testing"}',
        '/{env=~"produ.*",job=~".*"}',
    )
]


@pytest.mark.parametrize(
    ("test", "tree", "case"),
    AM_ROUTE_CASES,
    ids=[
        f"{t}-{','.join(f'{k}={v}' for k, v in sorted(c[0].items()))}" for t, _, c in AM_ROUTE_CASES
    ],
)
def test_alertmanager_own_route_match(test: str, tree: str, case: tuple[Any, ...]) -> None:
    # GIVEN the route tree of Alertmanager's `test` under alerting:  WHEN the labels are routed
    labels, expected, keys = case
    settings = _am_settings(tree)
    found = routes_for(settings, labels)
    # THEN the receivers in Alertmanager's order, with its options and route keys
    assert receivers_for(settings, labels) == [e[0] for e in expected]
    assert [
        (
            m.receiver,
            set(m.group_by),
            m.group_by_all,
            m.group_wait,
            m.group_interval,
            m.repeat_interval,
            m.continue_,
        )
        for m in found
    ] == expected
    assert [m.route_key for m in found] == keys


def test_alertmanager_own_route_match_case_count() -> None:
    # Eight label sets in each of the three Go tests; a dropped case would shrink this.
    assert len(AM_ROUTE_CASES) == 24


def _walk(node: Any) -> list[Any]:
    """Depth first, parent before children, as Route.Walk."""
    return [node] + [n for child in node.routes for n in _walk(child)]


def test_alertmanager_own_route_walk() -> None:
    # TestRouteWalk: the TestRouteMatch tree visited depth first, by receiver
    tree = _am_settings(AM_ROUTE_MATCH_YAML).routing_tree
    assert tree is not None
    assert [n.receiver for n in _walk(tree)] == [
        "notify-def",
        "notify-A",
        "notify-testing",
        "notify-productionA",
        "notify-productionB",
        "notify-BC",
        "notify-def",
        "notify-testing",
        "notify-testing",
    ]


def test_alertmanager_own_inherit_parent_group_by_all() -> None:
    # TestInheritParentGroupByAll (plus the root receiver a config needs): child1 inherits
    # ``...``; child2's own group_by replaces it
    tree = _load(
        """
route:
  receiver: default
  routes:
  - match:
      env: 'parent'
    group_by: ['...']

    routes:
    - match:
        env: 'child1'

    - match:
        env: 'child2'
      group_by: ['foo']
"""
    ).routing_tree
    assert tree is not None
    parent = tree.routes[0]
    child1, child2 = parent.routes
    assert (parent.group_by_all, child1.group_by_all, child2.group_by_all) == (True, True, False)
    assert child2.group_by == ("foo",)


def test_alertmanager_own_route_id() -> None:
    # TestRouteID: every route's ID, walking the tree (the Go test compares as a multiset)
    tree = _load(
        """
route:
  receiver: default
  routes:
  - continue: true
    matchers:
    - foo=bar
    receiver: test1
    routes:
    - matchers:
      - bar=baz
  - continue: true
    matchers:
    - foo=bar
    receiver: test1
    routes:
    - matchers:
      - bar=baz
  - continue: true
    matchers:
    - foo=bar
    receiver: test2
    routes:
    - matchers:
      - bar=baz
  - continue: true
    matchers:
    - bar=baz
    receiver: test3
    routes:
    - matchers:
      - baz=qux
    - matchers:
      - qux=corge
  - continue: true
    matchers:
    - qux=~"[a-zA-Z0-9]+"
  - continue: true
    matchers:
    - corge!~"[0-9]+"
"""
    ).routing_tree
    assert tree is not None
    assert sorted(n.route_id for n in _walk(tree)) == sorted(
        [
            "{}",
            '{}/{foo="bar"}/0',
            '{}/{foo="bar"}/0/{bar="baz"}/0',
            '{}/{foo="bar"}/1',
            '{}/{foo="bar"}/1/{bar="baz"}/0',
            '{}/{foo="bar"}/2',
            '{}/{foo="bar"}/2/{bar="baz"}/0',
            '{}/{bar="baz"}/3',
            '{}/{bar="baz"}/3/{baz="qux"}/0',
            '{}/{bar="baz"}/3/{qux="corge"}/1',
            '{}/{qux=~"[a-zA-Z0-9]+"}/4',
            '{}/{corge!~"[0-9]+"}/5',
        ]
    )


def test_paths_and_ids_name_the_routes_reached() -> None:
    found = routes_for(_am_settings(AM_ROUTE_MATCH_YAML), {"owner": "team-A", "env": "production"})
    assert [m.path for m in found] == ["route.routes[0].routes[1]", "route.routes[0].routes[2]"]
    assert [m.continue_ for m in found] == [True, False]
    assert found[0].route_id == '{}/{owner="team-A"}/0/{env="production"}/1'


def test_an_alert_no_route_matches_stays_at_the_root() -> None:
    (found,) = routes_for(
        _am_settings(AM_ROUTE_MATCH_YAML), {"owner": "team-Z", "env": "production"}
    )
    assert (found.receiver, found.path, found.route_key) == ("notify-def", "route", "{}")
    assert (found.group_wait, found.group_interval, found.repeat_interval) == (
        DEF_WAIT,
        DEF_INTERVAL,
        DEF_REPEAT,
    )


def test_children_inherit_what_they_leave_unset() -> None:
    settings = _load(
        """
route:
  receiver: root
  group_by: [alertname]
  group_wait: 10s
  repeat_interval: 1d
  routes:
  - matchers: [team="data"]
    receiver: data
    group_interval: 1h30m
    routes:
    - matchers: [severity="P0"]
      group_by: []                 # empty: unset, as in Alertmanager
    - matchers: [severity="P1"]
      group_by: [table]
      receiver: data-pager
    - matchers: [severity="P2"]
      group_by: ['...']
"""
    )
    p0, p1, p2 = (
        routes_for(settings, {"team": "data", "severity": s})[0] for s in ("P0", "P1", "P2")
    )
    assert (p0.receiver, p0.group_by, p0.group_by_all) == ("data", ("alertname",), False)
    assert (p0.group_wait, p0.group_interval, p0.repeat_interval) == (
        timedelta(seconds=10),
        timedelta(hours=1, minutes=30),
        timedelta(days=1),
    )
    assert (p1.receiver, p1.group_by) == ("data-pager", ("table",))
    assert p2.group_by_all and p2.receiver == "data"


def test_mute_and_active_intervals_are_a_routes_own() -> None:
    settings = _load(
        """
route:
  receiver: root
  routes:
  - matchers: [severity="P3"]
    mute_time_intervals: [quiet]
    routes:
    - matchers: [team="data"]
time_intervals:
  - name: quiet
    time_intervals: [{times: [{start_time: '22:00', end_time: '24:00'}]}]
"""
    )
    (parent,) = routes_for(settings, {"severity": "P3"})
    (child,) = routes_for(settings, {"severity": "P3", "team": "data"})
    assert parent.mute_time_intervals == ("quiet",)
    assert child.mute_time_intervals == ()  # dispatch.NewRoute doesn't inherit them


def test_route_ids_are_unique_where_keys_are_not() -> None:
    # TestRouteID's tree: siblings with equal matchers
    settings = _load(
        """
route:
  receiver: default
  routes:
  - continue: true
    matchers:
    - foo=bar
    routes:
    - matchers:
      - bar=baz
  - continue: true
    matchers:
    - foo=bar
    routes:
    - matchers:
      - bar=baz
  - continue: true
    matchers:
    - foo=bar
  - continue: true
    matchers:
    - bar=baz
    routes:
    - matchers:
      - foo=bar
  - continue: true
    matchers:
    - bar=baz
"""
    )
    found = routes_for(settings, {"foo": "bar", "bar": "baz"})
    assert [m.route_id for m in found] == [
        '{}/{foo="bar"}/0/{bar="baz"}/0',
        '{}/{foo="bar"}/1/{bar="baz"}/0',
        '{}/{foo="bar"}/2',
        '{}/{bar="baz"}/3/{foo="bar"}/0',
        '{}/{bar="baz"}/4',
    ]
    assert found[0].route_key == found[1].route_key == '{}/{foo="bar"}/{bar="baz"}'
    assert len({group_key(m, {"foo": "bar", "bar": "baz"}) for m in found}) == 5


def test_first_match_wins_without_continue() -> None:
    settings = _load(
        """
route:
  receiver: default
  routes:
  - matchers: [severity=~"P0|P1"]
    receiver: pagerduty
    continue: true
  - matchers: ['severity=~"P[0-2]"']
    receiver: slack
  - matchers: [severity="P1"]
    receiver: never
"""
    )
    assert receivers_for(settings, {"severity": "P1"}) == ["pagerduty", "slack"]
    assert receivers_for(settings, {"severity": "P2"}) == ["slack"]
    assert receivers_for(settings, {"severity": "P3"}) == ["default"]
    # anchored: the alternation is inside ^(?:...)$
    assert receivers_for(settings, {"severity": "P10"}) == ["default"]


def test_a_route_whose_children_dont_match_handles_the_alert() -> None:
    settings = _load(
        """
route:
  receiver: default
  routes:
  - matchers: [team="data"]
    receiver: data
    routes:
    - matchers: [severity="P0"]
      receiver: data-pager
  - matchers: [team=~".+"]
    receiver: any-team
"""
    )
    assert receivers_for(settings, {"team": "data", "severity": "P2"}) == ["data"]
    assert receivers_for(settings, {"team": "data", "severity": "P0"}) == ["data-pager"]
    assert receivers_for(settings, {"team": "web"}) == ["any-team"]


def test_alertmanager_docs_example_routes_alike() -> None:
    settings = _load(
        """
route:
  receiver: 'default-receiver'
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  group_by: [cluster, alertname]
  routes:
  - receiver: 'database-pager'
    group_wait: 10s
    matchers:
    - service=~"mysql|cassandra"
  - receiver: 'frontend-pager'
    group_by: [product, environment]
    matchers:
    - team="frontend"
  - receiver: 'dev-pager'
    matchers:
      - service="inhouse-service"
    mute_time_intervals:
      - offhours
      - holidays
    continue: true
  - receiver: 'on-call-pager'
    matchers:
      - service="inhouse-service"
    active_time_intervals:
      - offhours
      - holidays
time_intervals:
- name: offhours
  time_intervals:
  - times:
    - start_time: 20:00
      end_time: 23:59
    - start_time: 00:00
      end_time: 08:00
- name: holidays
  time_intervals:
  - months: ['december']
    days_of_month: ['24:26']
"""
    )
    assert receivers_for(settings, {"service": "mysql"}) == ["database-pager"]
    assert receivers_for(settings, {"service": "mysql-replica"}) == ["default-receiver"]
    (frontend,) = routes_for(settings, {"team": "frontend", "product": "x"})
    assert frontend.group_by == ("environment", "product")
    dev, on_call = routes_for(settings, {"service": "inhouse-service"})
    assert (dev.receiver, on_call.receiver) == ("dev-pager", "on-call-pager")
    night = datetime(2026, 3, 3, 21, 0, tzinfo=UTC)
    day = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    assert time_muted(settings, dev, night) == "in mute time interval 'offhours'"
    assert time_muted(settings, dev, day) is None
    assert time_muted(settings, on_call, night) is None
    assert time_muted(settings, on_call, day) == (
        "outside the active time intervals 'offhours', 'holidays'"
    )
    christmas_noon = datetime(2026, 12, 25, 12, 0, tzinfo=UTC)
    assert time_muted(settings, dev, christmas_noon) == "in mute time interval 'holidays'"
    assert time_muted(settings, on_call, christmas_noon) is None


def test_route_for_receiver_is_the_first_route_reaching_it_depth_first() -> None:
    settings = _am_settings(AM_ROUTE_MATCH_YAML)
    testing = route_for_receiver(settings, "notify-testing")
    assert testing is not None and testing.path == "route.routes[0].routes[0]"
    root = route_for_receiver(settings, "notify-def")
    assert root is not None and root.path == "route"
    assert route_for_receiver(settings, "nobody") is None


def test_no_route_routes_nowhere() -> None:
    assert routes_for(AlertingSettings(), {"a": "b"}) == []


# --- group keys -------------------------------------------------------------------------


def test_group_key_is_the_route_and_the_group_labels() -> None:
    settings = _load(
        """
route:
  receiver: default
  group_by: [alertname, table]
  routes:
  - matchers: [team="all"]
    group_by: ['...']
"""
    )
    (root,) = routes_for(settings, {"alertname": "Stale", "table": "t1", "x": "1"})
    key = group_key(root, {"alertname": "Stale", "table": "t1", "x": "1"})
    assert key == '{}:{alertname="Stale", table="t1"}'
    # the same group whatever the order or the labels outside group_by
    assert group_key(root, {"x": "2", "table": "t1", "alertname": "Stale"}) == key
    assert group_key(root, {"alertname": "Stale", "table": "t2"}) != key
    # absent and empty group labels are one group; quotes can't forge another group
    assert group_key(root, {"alertname": "Stale", "table": ""}) == group_key(
        root, {"alertname": "Stale"}
    )
    assert group_key(root, {"alertname": 'a", table="b'}) != group_key(
        root, {"alertname": "a", "table": "b"}
    )
    labels = {"team": "all", "b": "2", "a": "1"}
    (everything,) = routes_for(settings, labels)
    assert group_labels(everything, labels) == {"a": "1", "b": "2", "team": "all"}
    assert group_key(everything, labels) == '{}/{team="all"}/0:{a="1", b="2", team="all"}'


# --- matchers ---------------------------------------------------------------------------
# Cases beyond Alertmanager's own table (ported below, "Alertmanager's own TestMatchers").


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            r'{quote="She said: \"Hi, ladies! That\'s gender-neutral…\""}',
            [("quote", "=", 'She said: "Hi, ladies! That\\\'s gender-neutral…"')],
        ),
        ('tags=~"^[a-z]+$"', [("tags", "=~", "^[a-z]+$")]),
        ('job=""', [("job", "=", "")]),  # bare `job=` is refused (pkg/labels TestMatchers)
        ("{foo=bar}}", [("foo", "=", "bar}")]),
        ("{foo=bar}},}", [("foo", "=", "bar}}")]),
        (r'nl="a\nb"', [("nl", "=", "a\nb")]),
        (r'spurious="a\qb"', [("spurious", "=", "a\\qb")]),
        ("{}", []),
        ("", []),
    ],
)
def test_parse_matchers_beyond_alertmanagers_table(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert [(m.name, m.op, m.value) for m in parse_matchers(text)] == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("foo", "bad matcher format"),
        ("=bar", "bad matcher format"),
        ("1foo=bar", "bad matcher format"),
        ("foo~bar", "bad matcher format"),
        ("a=b,,c=d", "bad matcher format"),
        ('{foo=bar"},}', "unescaped double quote"),
        ('foo=~"("', "not a valid regular expression"),
        ('foo=~"(?=lookahead)"', "not RE2 syntax"),
        (r'foo=~"(a)\1"', "backreferences"),
        (r'foo=~"\pL+"', "Unicode character classes"),
        ('foo=~"(?U)a+"', "'U' is not supported"),
        ('foo=~"a(?i)b"', "only at the start"),
        ('foo=~"[[:alhpa:]]"', "not a POSIX character class"),
    ],
)
def test_malformed_matchers_are_refused(text: str, error: str) -> None:
    with pytest.raises(InvalidMatcher, match=re.escape(error)) as caught:
        parse_matchers(text)
    assert isinstance(caught.value, BadInput) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('foo=""', {}, True),  # an absent label is the empty string
        ('foo=""', {"foo": "x"}, False),
        ('foo!=""', {}, False),
        ('foo!=""', {"foo": "x"}, True),
        ('foo=~".*"', {}, True),
        ('foo=~".+"', {}, False),
        ('foo!~"x"', {}, True),
        ('foo=~"b"', {"foo": "abc"}, False),  # anchored at both ends
        ('foo=~"prod|staging"', {"foo": "production"}, False),
        ('foo=~"prod|staging"', {"foo": "staging"}, True),
        ('foo=~"ab"', {"foo": "ab\n"}, False),
        ('foo=~"(?i)PROD"', {"foo": "prod"}, True),  # RE2's leading flag group
        ('foo=~"(?i)a|b"', {"foo": "B"}, True),
        ('foo=~"x((?i)a|b)"', {"foo": "xB"}, True),
        ('foo=~"x((?i)a|b)"', {"foo": "XB"}, False),
        ('foo=~"(?s)a.b"', {"foo": "a\nb"}, True),
        ('foo=~"a.b"', {"foo": "a\nb"}, False),
        ('foo=~"[[:digit:]]+"', {"foo": "123"}, True),
        ('foo=~"[[:digit:]]+"', {"foo": "12a"}, False),
        ('foo=~"[^[:space:]]+"', {"foo": "a b"}, False),
        (r'foo=~"\d+"', {"foo": "٣"}, False),  # RE2's \d is ASCII
        (r'foo=~"\x{263a}"', {"foo": "☺"}, True),
        (r'foo=~"(?<name>a)b\z"', {"foo": "ab"}, True),
        ('foo=~"[]a]+"', {"foo": "]a"}, True),
        ('foo=~"[a&&b]+"', {"foo": "&&"}, True),
        ('severity!~"P[0-2]"', {"severity": "P3"}, True),
    ],
)
def test_label_matching_semantics(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_matchers(matcher), labels) is expected


def test_routing_compiles_no_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a tree of regex matchers, loaded (the one place regexes are compiled)
    settings = _load(
        """
route:
  receiver: default
  routes:
"""
        + "".join(
            f"  - matchers: ['table=~\"t{i}_.*\"', 'severity!~\"P[23]\"']\n    receiver: r{i}\n"
            for i in range(20)
        )
    )

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a regex was compiled while routing")

    monkeypatch.setattr(re, "compile", refuse)
    monkeypatch.setattr(re, "_compile", refuse)
    # WHEN alerts are routed THEN nothing is compiled, and the answers are right
    assert receivers_for(settings, {"table": "t19_x", "severity": "P1"}) == ["r19"]
    assert receivers_for(settings, {"table": "t19_x", "severity": "P3"}) == ["default"]


# --- Alertmanager's own TestMatchers (pkg/labels/parse_test.go) -------------------------
# Every case of that table: input → (name, op, value) list, or the start of its error. Our
# regex errors are worded as ours ("not a valid regular expression") where Go prints RE2's.

AM_PARSE_MATCHERS_OK: list[tuple[str, list[tuple[str, str, str]]]] = [
    ('{foo="bar"}', [("foo", "=", "bar")]),
    ('{foo=~"bar.*"}', [("foo", "=~", "bar.*")]),
    ('{foo!="bar"}', [("foo", "!=", "bar")]),
    ('{foo!~"bar.*"}', [("foo", "!~", "bar.*")]),
    ('{foo="bar", baz!="quux"}', [("foo", "=", "bar"), ("baz", "!=", "quux")]),
    ('{foo="bar", baz!~"quux.*"}', [("foo", "=", "bar"), ("baz", "!~", "quux.*")]),
    (
        '{foo="bar",baz!~".*quux", derp="wat"}',
        [("foo", "=", "bar"), ("baz", "!~", ".*quux"), ("derp", "=", "wat")],
    ),
    (
        '{foo="bar", baz!="quux", derp="wat"}',
        [("foo", "=", "bar"), ("baz", "!=", "quux"), ("derp", "=", "wat")],
    ),
    (
        '{foo="bar", baz!~".*quux.*", derp="wat"}',
        [("foo", "=", "bar"), ("baz", "!~", ".*quux.*"), ("derp", "=", "wat")],
    ),
    (
        '{foo="bar", instance=~"some-api.*"}',
        [("foo", "=", "bar"), ("instance", "=~", "some-api.*")],
    ),
    ('{foo=""}', [("foo", "=", "")]),
    ('{foo="bar,quux", job="job1"}', [("foo", "=", "bar,quux"), ("job", "=", "job1")]),
    ('{foo = "bar", dings != "bums", }', [("foo", "=", "bar"), ("dings", "!=", "bums")]),
    ("foo=bar,dings!=bums", [("foo", "=", "bar"), ("dings", "!=", "bums")]),
    (
        r'{quote="She said: \"Hi, ladies! That' + "'" + r's gender-neutral…\""}',
        [("quote", "=", 'She said: "Hi, ladies! That\'s gender-neutral…"')],
    ),
    ('statuscode=~"5.."', [("statuscode", "=~", "5..")]),
    ("tricky=~~~", [("tricky", "=~", "~~")]),
    (r"trickier==\\=\=\"", [("trickier", "=", r'=\=\="')]),
    (
        r'contains_quote != "\"" , contains_comma !~ "foo,bar" , ',
        [("contains_quote", "!=", '"'), ("contains_comma", "!~", "foo,bar")],
    ),
]

AM_PARSE_MATCHERS_ERR: list[tuple[str, str]] = [
    ("job=", "matcher value is not present: job="),
    ('job="value', 'matcher value contains unescaped double quote: "value'),
    ('job=value"', 'matcher value contains unescaped double quote: value"'),
    (r'trickier==\\=\=\""', r'matcher value contains unescaped double quote: =\\=\=\""'),
    (
        'contains_unescaped_quote = foo"bar',
        'matcher value contains unescaped double quote: foo"bar',
    ),
    ('{invalid-name = "valid label"}', "bad matcher format: "),
    ('{foo=~"invalid[regexp"}', "not a valid regular expression"),
    # double-escaped strings
    (r'"{foo=\"bar"}', "bad matcher format: "),
    (r'"foo=\"bar"', "bad matcher format: "),
    (r'"foo=\"bar\""', "bad matcher format: "),
    (r'"foo=\"bar\"', "bad matcher format: "),
    (r'"{foo=\"bar\"}"', "bad matcher format: "),
    ('"foo="bar""', "bad matcher format: "),
]


@pytest.mark.parametrize(("text", "expected"), AM_PARSE_MATCHERS_OK)
def test_alertmanager_own_parse_matchers(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(m.name, m.op, m.value) for m in parse_matchers(text)] == expected


@pytest.mark.parametrize(("text", "error"), AM_PARSE_MATCHERS_ERR)
def test_alertmanager_own_parse_matchers_errors(text: str, error: str) -> None:
    with pytest.raises(InvalidMatcher, match=re.escape(error)):
        parse_matchers(text)


def test_alertmanager_own_parse_matchers_case_count() -> None:
    # TestMatchers has 19 accepted inputs and 13 refused ones.
    assert (len(AM_PARSE_MATCHERS_OK), len(AM_PARSE_MATCHERS_ERR)) == (19, 13)


# --- Alertmanager's own inhibit tests (inhibit/inhibit_test.go) -------------------------
# TestInhibitRuleHasEqual, TestInhibitRuleMatches and TestInhibitRuleMatchers, every case.
# Alertmanager's source cache holds alerts with their EndsAt; the router hands
# ``inhibition`` the alerts firing now (``ends_at`` unset or later), so a resolved source
# is left out here; that the router does leave it out is TestInhibit, ported in
# tests/functional/test_alert_router.py.


def _rules(text: str) -> list[InhibitRule]:
    return [InhibitRule.model_validate(r) for r in yaml.safe_load(text)]


# (source matcher, firing sources, equal, target, inhibited). The Go test calls hasEqual
# directly with its two-sided check off; here a source matcher the target doesn't match
# (so the rule is not two-sided for it) does the same.
@pytest.mark.parametrize(
    ("source", "firing", "equal", "target", "expected"),
    [
        ('a!="b"', [], [], {"a": "b"}, False),  # no source alerts at all
        ('a!="b"', [{}], [], {"a": "b"}, True),  # no equal labels: any source alert will do
        ('c=~".+"', [], ["a", "b"], {"a": "b", "b": "c"}, False),  # matching, both resolved
        ('c=~".+"', [{"a": "b", "c": "f"}], ["a"], {"a": "b"}, True),  # one still firing
        ('c=~".+"', [], ["a"], {"a": "b"}, False),  # equal label differs (and resolved)
        # ours: the same two sources, were they firing: the equal label still differs
        ('c=~".+"', [{"a": "c", "c": "d"}, {"a": "c", "c": "f"}], ["a"], {"a": "b"}, False),
    ],
)
def test_alertmanager_own_inhibit_rule_has_equal(
    source: str,
    firing: list[dict[str, str]],
    equal: list[str],
    target: dict[str, str],
    expected: bool,
) -> None:
    rule = InhibitRule.model_validate({"source_matchers": [source], "equal": equal})
    assert inhibited(target, firing, [rule]) is expected


def test_a_rule_without_matchers_is_two_sided_for_everything() -> None:
    # Mutes() with no matchers: every alert matches both sides, so none mutes another
    rule = InhibitRule.model_validate({"equal": []})
    assert not inhibited({"a": "b"}, [{}, {"a": "b", "c": "f"}], [rule])


SOURCE_1 = {"s1": "1", "t1": "2", "e": "1"}  # matches rule 1's source only
SOURCE_2 = {"s2": "1", "t2": "1", "e": "1"}  # matches rule 2's source and target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"t1": "1", "e": "1"}, True),
        ({"t2": "1", "e": "1"}, True),
        ({"t1": "1", "t3": "1", "e": "1"}, True),
        ({"t1": "1", "t2": "1", "e": "1"}, True),
        ({"t1": "0", "e": "1"}, False),
        ({"s1": "1", "t1": "1", "e": "1"}, True),  # source 1 matches only the source side
        ({"s2": "1", "t2": "1", "e": "1"}, False),  # source 2 matches both sides: not counted
        ({"t1": "1", "e": "0"}, False),
    ],
)
def test_alertmanager_own_inhibit_rule_matches(target: dict[str, str], expected: bool) -> None:
    # TestInhibitRuleMatches
    rules = _rules(
        """
- source_match: {s1: '1'}
  target_match: {t1: '1'}
  equal: [e]
- source_match: {s2: '1'}
  target_match: {t2: '1'}
  equal: [e]
"""
    )
    assert inhibited(target, [SOURCE_1, SOURCE_2], rules) is expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"t1": "1", "e": "1"}, False),
        ({"t2": "1", "e": "1"}, True),
        ({"t1": "1", "t3": "1", "e": "1"}, False),
        ({"t1": "1", "t2": "1", "e": "1"}, True),
        ({"t1": "0", "e": "1"}, True),
        ({"s1": "1", "t1": "1", "e": "1"}, False),
        ({"s2": "1", "t2": "1", "e": "1"}, True),  # rule 1: t1 is absent, so t1!="1"
        ({"t1": "1", "e": "0"}, False),
    ],
)
def test_alertmanager_own_inhibit_rule_matchers(target: dict[str, str], expected: bool) -> None:
    # TestInhibitRuleMatchers: rule 1's target is t1!="1"
    rules = _rules(
        """
- source_matchers: [s1="1"]
  target_matchers: [t1!="1"]
  equal: [e]
- source_matchers: [s2="1"]
  target_matchers: [t2="1"]
  equal: [e]
"""
    )
    assert inhibited(target, [SOURCE_1, SOURCE_2], rules) is expected


# --- inhibition, ours ------------------------------------------------------------------


def test_a_pipeline_down_p0_mutes_the_p2_staleness_alerts_of_its_pipeline() -> None:
    rules = _rules(
        """
- source_matchers: [severity="P0", alertname="PipelineDown"]
  target_matchers: [severity="P2"]
  equal: [pipeline]
"""
    )
    down = {"alertname": "PipelineDown", "severity": "P0", "pipeline": "nba"}
    stale = {"alertname": "TableStale", "severity": "P2", "pipeline": "nba", "table": "t"}
    found = inhibition(stale, [down], rules)
    assert found is not None and (found.rule_index, found.source_labels) == (0, down)
    assert not inhibited({**stale, "pipeline": "other"}, [down], rules)
    assert not inhibited({**stale, "severity": "P1"}, [down], rules)
    assert not inhibited(stale, [], rules)
    assert not inhibited(down, [down], rules)


def test_equal_labels_absent_on_both_sides_are_equal() -> None:
    rules = _rules("[{source_matchers: [a=x], target_matchers: [a=y], equal: [cluster]}]")
    assert inhibited({"a": "y"}, [{"a": "x"}], rules)
    assert not inhibited({"a": "y"}, [{"a": "x", "cluster": "c1"}], rules)
    assert inhibited({"a": "y", "cluster": "c1"}, [{"a": "x", "cluster": "c1"}], rules)


def test_an_alert_matching_both_sides_does_not_inhibit_itself() -> None:
    rules = _rules("[{source_matchers: [team=data], target_matchers: [team=data]}]")
    alert = {"team": "data", "alertname": "A"}
    assert not inhibited(alert, [alert], rules)
    assert not inhibited(alert, [alert, {"team": "data", "alertname": "B"}], rules)


# --- Alertmanager's own time interval tests (timeinterval/timeinterval_test.go) ---------
# Every table of that file: timeIntervalTestCases (TestContainsTime), timeStringTestCases
# (TestParseTimeString), yamlUnmarshalTestCases (TestYamlUnmarshal; its errors are in
# test_alerting_config.py),
# completeTestCases (TestTimeIntervalComplete) and TestIntervener_Mutes. The Go structs
# are written as the YAML they unmarshal from; instants are Go's time.RFC822Z strings.


def _spec(text: str) -> TimeIntervalSpec:
    return TimeIntervalSpec.model_validate(yaml.safe_load(text))


def _at(text: str) -> datetime:
    """Go's time.RFC822Z layout, as timeinterval_test.go writes its instants."""
    return datetime.strptime(text, "%d %b %y %H:%M %z")


_NINE_TO_FIVE = "times: [{start_time: '09:00', end_time: '17:00'}]"

# (interval, valid time strings, invalid time strings)
AM_CONTAINS_TIME: list[tuple[str, list[str], list[str]]] = [
    ("{}", ["02 Jan 06 15:04 +0000", "03 Jan 07 10:04 +0000", "04 Jan 06 09:04 +0000"], []),
    (
        # 9am to 5pm, monday to friday
        "{" + _NINE_TO_FIVE + ", weekdays: ['monday:friday']}",
        ["04 May 20 15:04 +0000", "05 May 20 10:04 +0000", "09 Jun 20 09:04 +0000"],
        ["03 May 20 15:04 +0000", "04 May 20 08:59 +0000", "05 May 20 05:00 +0000"],
    ),
    (
        # Easter 2020
        "{days_of_month: ['4:6'], months: ['april'], years: ['2020']}",
        ["04 Apr 20 15:04 +0000", "05 Apr 20 00:00 +0000", "06 Apr 20 23:05 +0000"],
        [
            "03 May 18 15:04 +0000",
            "03 Apr 20 23:59 +0000",
            "04 Jun 20 23:59 +0000",
            "06 Apr 19 23:59 +0000",
            "07 Apr 20 00:00 +0000",
        ],
    ),
    (
        # negative days of month: the last 3 days of each month
        "{days_of_month: ['-3:-1']}",
        [
            "31 Jan 20 15:04 +0000",
            "30 Jan 20 15:04 +0000",
            "29 Jan 20 15:04 +0000",
            "30 Jun 20 00:00 +0000",
            "29 Feb 20 23:05 +0000",
        ],
        [
            "03 May 18 15:04 +0000",
            "27 Jan 20 15:04 +0000",
            "03 Apr 20 23:59 +0000",
            "04 Jun 20 23:59 +0000",
            "06 Apr 19 23:59 +0000",
            "07 Apr 20 00:00 +0000",
            "01 Mar 20 00:00 +0000",
        ],
    ),
    # out of bound days are clamped to the month's boundaries: the Go struct's -31:31 is
    # refused from YAML by Alertmanager too (test_clamping_range_as_config_is_refused), so
    # its two ends are checked as the ranges a config can hold
    (
        "{months: ['6'], days_of_month: ['1:31']}",
        ["30 Jun 20 00:00 +0000", "01 Jun 20 00:00 +0000"],
        ["31 May 20 00:00 +0000", "1 Jul 20 00:00 +0000"],
    ),
    (
        "{months: ['6'], days_of_month: ['-31:-1']}",
        ["30 Jun 20 00:00 +0000", "01 Jun 20 00:00 +0000"],
        ["31 May 20 00:00 +0000", "1 Jul 20 00:00 +0000"],
    ),
    (
        # another time zone: AEST 9am to 5pm, monday to friday
        "{" + _NINE_TO_FIVE + ", weekdays: ['monday:friday'], location: Australia/Sydney}",
        ["06 Apr 21 13:00 +1000"],
        ["06 Apr 21 13:00 +0000"],
    ),
    (
        # the same zone during daylight saving time (AEDT, +11)
        "{" + _NINE_TO_FIVE + ", weekdays: ['monday:friday'], months: ['11'],"
        " location: Australia/Sydney}",
        ["01 Nov 21 09:00 +1100", "31 Oct 21 22:00 +0000"],
        ["31 Oct 21 21:00 +0000"],
    ),
]


@pytest.mark.parametrize(("spec", "valid", "invalid"), AM_CONTAINS_TIME)
def test_alertmanager_own_contains_time(spec: str, valid: list[str], invalid: list[str]) -> None:
    interval = _spec(spec)
    assert [t for t in valid if not in_interval(interval, _at(t))] == []
    assert [t for t in invalid if in_interval(interval, _at(t))] == []


def test_clamping_range_as_config_is_refused() -> None:
    with pytest.raises(ValidationError, match="end day must be negative if start day is negative"):
        _spec("{days_of_month: ['-31:31']}")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("{'start_time': '00:00', 'end_time': '24:00'}", (0, 1440)),
        ("{'start_time': '01:35', 'end_time': '17:39'}", (95, 1059)),
        ("{'start_time': '09:35', 'end_time': '09:39'}", (575, 579)),
        ("{'start_time': '17:31', 'end_time': '17:31'}", None),  # begin and end the same
        ("{'start_time': '12:30', 'end_time': '24:01'}", None),  # end out of range
        ("{'start_time': '09:30', 'end_time': '07:41'}", None),  # start after end
        ("{'start_time': '24:00', 'end_time': '17:41'}", None),  # start out of range, after end
        ("{'start_time': '14:03'}", None),  # no range
    ],
)
def test_alertmanager_own_parse_time_string(text: str, minutes: tuple[int, int] | None) -> None:
    document = "{times: [" + text + "]}"
    if minutes is None:
        with pytest.raises(ValidationError):
            _spec(document)
        return
    times = _spec(document).times
    assert times is not None and [t.minutes for t in times] == [minutes]


# TestYamlUnmarshal: (YAML list of intervals, contained, excluded)
AM_YAML_UNMARSHAL_OK: list[tuple[str, list[str], list[str]]] = [
    (
        # simple business hours
        "- weekdays: ['monday:friday']\n  " + _NINE_TO_FIVE,
        ["08 Jul 20 09:00 +0000", "08 Jul 20 16:59 +0000"],
        ["08 Jul 20 05:00 +0000", "08 Jul 20 08:59 +0000"],
    ),
    (
        # last week, excluding Saturday, of the first quarter of the year during business
        # hours from 2020 to 2025 and 2030-2035
        """
- weekdays: ['monday:friday', 'sunday']
  months: ['january:march']
  days_of_month: ['-7:-1']
  years: ['2020:2025', '2030:2035']
  times:
    - start_time: '09:00'
      end_time: '17:00'
""",
        [
            "27 Jan 21 09:00 +0000",
            "28 Jan 21 16:59 +0000",
            "29 Jan 21 13:00 +0000",
            "31 Mar 25 13:00 +0000",
            "31 Mar 25 13:00 +0000",
            "31 Jan 35 13:00 +0000",
        ],
        [
            "30 Jan 21 13:00 +0000",  # Saturday
            "01 Apr 21 13:00 +0000",  # 4th month
            "30 Jan 26 13:00 +0000",  # 2026
            "31 Jan 35 17:01 +0000",  # after 5pm
        ],
    ),
    ("- weekdays: ['monday:friday']\n  " + _NINE_TO_FIVE, ["01 Apr 21 13:00 +0000"], []),
    ("- days_of_month: ['1:-1']", [], []),  # negative indices work
    ("- months: ['January:december']", [], []),  # months regardless of case
    ("- years: ['2020:2022']\n  location: 'Australia/Sydney'", [], []),  # zone by location
]


def _named(entries: str) -> TimeInterval:
    return TimeInterval.model_validate({"name": "t", "time_intervals": yaml.safe_load(entries)})


@pytest.mark.parametrize(("entries", "contains", "excludes"), AM_YAML_UNMARSHAL_OK)
def test_alertmanager_own_yaml_unmarshal(
    entries: str, contains: list[str], excludes: list[str]
) -> None:
    interval = _named(entries)
    assert [t for t in contains if not in_interval(interval, _at(t))] == []
    assert [t for t in excludes if in_interval(interval, _at(t))] == []


def test_alertmanager_own_yaml_unmarshal_case_count() -> None:
    # 21 cases in yamlUnmarshalTestCases: the 6 accepted ones here; the 15 refused ones,
    # with their error texts and paths, in test_alerting_config.py::test_time_interval_errors
    assert len(AM_YAML_UNMARSHAL_OK) == 6


def test_alertmanager_own_yaml_unmarshal_reads_the_ranges() -> None:
    # what the accepted cases unmarshal to (the Go test's DeepEqual against its structs)
    quarter = _named(AM_YAML_UNMARSHAL_OK[1][0]).time_intervals[0]
    assert quarter.weekday_ranges == ((1, 5), (0, 0))
    assert quarter.month_ranges == ((1, 3),)
    assert quarter.day_of_month_ranges == ((-7, -1),)
    assert quarter.year_ranges == ((2020, 2025), (2030, 2035))
    assert quarter.minute_ranges == ((540, 1020),)
    sydney = _named(AM_YAML_UNMARSHAL_OK[5][0]).time_intervals[0]
    assert (sydney.year_ranges, str(sydney.zone)) == (((2020, 2022),), "Australia/Sydney")


@pytest.mark.parametrize(
    ("spec", "contains", "excludes"),
    [
        (
            """
weekdays: ['monday:wednesday', 'saturday', 'sunday']
times:
  - start_time: '13:00'
    end_time: '15:00'
days_of_month: ['1', '10', '20:-1']
years: ['2020:2023']
months: ['january:march']
""",
            ["10 Jan 21 13:00 +0000", "30 Jan 21 14:24 +0000"],
            ["09 Jan 21 13:00 +0000", "20 Jan 21 12:59 +0000", "02 Feb 21 13:00 +0000"],
        ),
        (
            # broken clamping: a begin day after the end of the month
            "{days_of_month: ['30:31'], years: ['2020:2023'], months: ['february']}",
            [],
            ["28 Feb 21 13:00 +0000"],
        ),
    ],
)
def test_alertmanager_own_time_interval_complete(
    spec: str, contains: list[str], excludes: list[str]
) -> None:
    interval = _spec(spec)
    assert [t for t in contains if not in_interval(interval, _at(t))] == []
    assert [t for t in excludes if in_interval(interval, _at(t))] == []


_SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.mark.parametrize(
    ("now", "muted_by"),
    [
        (datetime(2024, 1, 1, 0, 0, tzinfo=_SYDNEY), ["evenings"]),  # outside working hours
        (datetime(2024, 1, 1, 9, 0, tzinfo=_SYDNEY), []),  # during working hours
        (datetime(2024, 1, 6, 10, 0, tzinfo=_SYDNEY), ["weekends"]),
        (datetime(2024, 1, 6, 17, 0, tzinfo=_SYDNEY), ["evenings", "weekends"]),
        (datetime(2024, 1, 1, 10, 0, tzinfo=UTC), ["evenings"]),  # 12pm UTC on a weekday
        (datetime(2024, 1, 6, 10, 0, tzinfo=UTC), ["evenings", "weekends"]),  # on a weekend
    ],
)
def test_alertmanager_own_intervener_mutes(now: datetime, muted_by: list[str]) -> None:
    # TestIntervener_Mutes: a route muted by "evenings" and "weekends" (Sydney)
    settings = AlertingSettings.model_validate(
        yaml.safe_load(
            """
receivers: [{name: default}]
route:
  receiver: default
  routes:
  - matchers: [alertname=x]
    mute_time_intervals: [evenings, weekends]
time_intervals:
- name: evenings
  time_intervals:
  - times: [{start_time: '00:00', end_time: '09:00'}, {start_time: '17:00', end_time: '24:00'}]
    location: Australia/Sydney
- name: weekends
  time_intervals:
  - weekdays: [saturday, sunday]
    location: Australia/Sydney
"""
        )
    )
    found = [
        name
        for name in ("evenings", "weekends")
        if in_interval(settings.time_interval(name) or _named("[]"), now)
    ]
    assert found == muted_by
    (route,) = routes_for(settings, {"alertname": "x"})
    reason = time_muted(settings, route, now)
    assert reason == (f"in mute time interval {muted_by[0]!r}" if muted_by else None)


# --- time intervals, ours ---------------------------------------------------------------


def test_times_are_start_inclusive_end_exclusive() -> None:
    interval = _spec("{times: [{start_time: '09:00', end_time: '17:00'}]}")
    day = datetime(2026, 3, 3, tzinfo=UTC)
    assert in_interval(interval, day.replace(hour=9))
    assert not in_interval(interval, day.replace(hour=8, minute=59, second=59))
    assert in_interval(interval, day.replace(hour=16, minute=59, second=59))
    assert not in_interval(interval, day.replace(hour=17))
    to_midnight = _spec("{times: [{start_time: '22:00', end_time: '24:00'}]}")
    assert in_interval(to_midnight, day.replace(hour=23, minute=59))
    assert not in_interval(to_midnight, day)


def test_weekday_ranges_are_inclusive_and_sunday_based() -> None:
    weekdays = _spec("{weekdays: ['monday:friday']}")
    weekend = _spec("{weekdays: [saturday, sunday]}")
    friday, saturday, sunday, monday = (datetime(2026, 3, d, 12, tzinfo=UTC) for d in (6, 7, 8, 9))
    assert in_interval(weekdays, friday) and in_interval(weekdays, monday)
    assert not in_interval(weekdays, saturday) and not in_interval(weekdays, sunday)
    assert in_interval(weekend, saturday) and in_interval(weekend, sunday)
    assert not in_interval(weekend, friday)


def test_negative_days_count_from_the_end_of_each_month() -> None:
    last = _spec("{days_of_month: ['-1']}")
    assert in_interval(last, datetime(2024, 2, 29, tzinfo=UTC))  # leap year
    assert not in_interval(last, datetime(2024, 2, 28, tzinfo=UTC))
    assert in_interval(last, datetime(2026, 2, 28, tzinfo=UTC))
    assert in_interval(last, datetime(2026, 4, 30, tzinfo=UTC))
    thirty_first = _spec("{days_of_month: ['31']}")
    assert not in_interval(thirty_first, datetime(2026, 4, 30, tzinfo=UTC))  # no 31 April
    from_15th = _spec("{days_of_month: ['15:-1']}")
    assert in_interval(from_15th, datetime(2026, 2, 28, tzinfo=UTC))
    assert not in_interval(from_15th, datetime(2026, 2, 14, tzinfo=UTC))


def test_months_by_name_or_number_and_years() -> None:
    spec = _spec("{months: ['January:march', '12'], years: ['2026:2027']}")
    assert in_interval(spec, datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert in_interval(spec, datetime(2027, 12, 1, tzinfo=UTC))
    assert not in_interval(spec, datetime(2026, 4, 1, tzinfo=UTC))
    assert not in_interval(spec, datetime(2028, 1, 1, tzinfo=UTC))


def test_location_follows_the_zones_daylight_saving() -> None:
    office = _spec(
        "{times: [{start_time: '09:00', end_time: '17:00'}], location: Europe/Amsterdam}"
    )
    # 08:30 UTC is 09:30 in Amsterdam in winter (CET) but 10:30 in summer (CEST)
    assert in_interval(office, datetime(2026, 1, 15, 8, 30, tzinfo=UTC))
    assert not in_interval(office, datetime(2026, 1, 15, 16, 30, tzinfo=UTC))  # 17:30 CET
    assert in_interval(office, datetime(2026, 7, 15, 14, 30, tzinfo=UTC))  # 16:30 CEST
    assert not in_interval(office, datetime(2026, 7, 15, 15, 30, tzinfo=UTC))  # 17:30 CEST
    # without a location, UTC, whatever the instant's own offset
    utc = _spec("{times: [{start_time: '09:00', end_time: '17:00'}]}")
    assert not in_interval(utc, _at("15 Jan 26 09:30 +0100"))  # 08:30 UTC


def test_a_named_interval_is_any_of_its_entries() -> None:
    settings = AlertingSettings.model_validate(
        yaml.safe_load(
            """
time_intervals:
- name: quiet-hours
  time_intervals:
  - times: [{start_time: '22:00', end_time: '24:00'}]
  - times: [{start_time: '00:00', end_time: '07:00'}]
- name: never
"""
        )
    )
    quiet, never = settings.time_interval("quiet-hours"), settings.time_interval("never")
    assert quiet is not None and never is not None
    assert in_interval(quiet, datetime(2026, 3, 3, 23, tzinfo=UTC))
    assert in_interval(quiet, datetime(2026, 3, 3, 6, 59, tzinfo=UTC))
    assert not in_interval(quiet, datetime(2026, 3, 3, 7, tzinfo=UTC))
    assert not in_interval(never, datetime(2026, 3, 3, 7, tzinfo=UTC))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        in_interval(_spec("{}"), datetime(2026, 3, 3, 12))
