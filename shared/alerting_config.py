"""The ``alerting:`` section: Alertmanager's routing schema, our receivers, secrets by name.

People paste what they know from Alertmanager (``route``, ``inhibit_rules``,
``time_intervals``, ``receivers`` with ``*_configs`` lists). Receivers are ours: Slack,
PagerDuty, a generic webhook, and the local file / console; an Alertmanager integration we
don't support is a clear error. Secrets (webhook URLs, routing keys, HMAC keys) are never
values here, only Secret Manager names (``*_secret``); a literal one is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta, tzinfo
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.errors import BadInput

_RECEIVER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
#: Secret Manager: a short secret id (latest version in the configured project) or a full
#: ``projects/P/secrets/S[/versions/V]`` resource name
_NAME_PATTERN = (
    r"^(?:[A-Za-z0-9_-]{1,255}|projects/[a-z0-9-]{1,63}/secrets/[A-Za-z0-9_-]{1,255}"
    r"(?:/versions/(?:latest|[0-9]{1,20}))?)$"
)
SecretName = Annotated[str, Field(pattern=_NAME_PATTERN)]

#: Alertmanager integrations we don't deliver to: named in the error, never ignored
UNSUPPORTED_INTEGRATIONS = (
    "email_configs",
    "opsgenie_configs",
    "wechat_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "webex_configs",
    "discord_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "jira_configs",
    "rocketchat_configs",
)
#: literal secrets as Alertmanager spells them: refused with the *_secret to use instead
LITERAL_SECRETS = {
    "api_url": "webhook_url_secret",
    "api_url_file": "webhook_url_secret",
    "routing_key": "routing_key_secret",
    "routing_key_file": "routing_key_secret",
    "service_key": "routing_key_secret",
    "url": "url_secret",
    "url_file": "url_secret",
}


def _host(value: str) -> str:
    if not re.fullmatch(
        r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", value
    ):
        raise ValueError(f"{value!r} is not a DNS host name (lower case, no scheme, no port)")
    return value


HostName = Annotated[str, AfterValidator(_host)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, instead in LITERAL_SECRETS.items():
                if key in data and instead in cls.model_fields:
                    raise ValueError(
                        f"{key}: secrets come only from Secret Manager; give {instead} "
                        "(the secret's name) instead"
                    )
        return data


class SlackConfig(_Model):
    """Incoming webhook: Block Kit messages; a resolved message when the group resolves."""

    webhook_url_secret: SecretName
    channel: str | None = Field(default=None, max_length=80)  # shown only; the webhook decides
    send_resolved: bool = True


class PagerDutyConfig(_Model):
    """Events API v2: trigger / resolve with dedup_key = the alert's fingerprint."""

    routing_key_secret: SecretName
    send_resolved: bool = True


class WebhookConfig(_Model):
    """Alertmanager's webhook JSON (version 4), signed with HMAC-SHA256 when a key is given."""

    url_secret: SecretName
    hmac_key_secret: SecretName | None = None
    send_resolved: bool = True
    max_alerts: int = Field(default=0, ge=0, le=1000)  # 0: all, as in Alertmanager


class FileConfig(_Model):
    """Local: one JSON line per notification (the embedded default and the demo)."""

    path: str = Field(default="alerts/notifications.jsonl", min_length=1, max_length=500)
    send_resolved: bool = True


class ConsoleConfig(_Model):
    send_resolved: bool = True


class Receiver(_Model):
    """A receiver with only a ``name`` is a valid null receiver, as in Alertmanager."""

    name: Annotated[str, Field(pattern=_RECEIVER_NAME)]
    slack_configs: list[SlackConfig] = Field(default_factory=list)
    pagerduty_configs: list[PagerDutyConfig] = Field(default_factory=list)
    webhook_configs: list[WebhookConfig] = Field(default_factory=list)
    file_configs: list[FileConfig] = Field(default_factory=list)
    console_configs: list[ConsoleConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in UNSUPPORTED_INTEGRATIONS:
                if key in data:
                    raise ValueError(
                        f"{key}: not an integration opsuite delivers to (supported: "
                        "slack_configs, pagerduty_configs, webhook_configs, file_configs, "
                        "console_configs)"
                    )
        return data

    def secret_names(self) -> list[str]:
        """Every ``*_secret`` this receiver's integrations name (``hmac_key_secret`` too)."""
        names = set()
        for kind in ("slack_configs", "pagerduty_configs", "webhook_configs"):
            for integration in getattr(self, kind):
                for key, value in integration.model_dump().items():
                    if key.endswith("_secret") and value:
                        names.add(str(value))
        return sorted(names)


# --------------------------------------------------------------------------------------
# Label matchers: Alertmanager's pkg/labels (the classic parser its "fallback" compat
# mode accepts), regexes anchored as ``^(?:re)$`` and compiled once, at load.
# --------------------------------------------------------------------------------------

MatchOp = Literal["=", "!=", "=~", "!~"]

#: Prometheus' (legacy) label name rule: group_by, equal, match / match_re keys
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: the classic matcher parser's own expression (pkg/labels/parse.go), used with fullmatch;
#: ``=~`` comes before ``=`` so that ``~`` is not read as part of the value
_MATCHER_RE = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*", re.DOTALL)


_OPS: dict[str, MatchOp] = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}


class InvalidMatcher(BadInput, ValueError):
    """A matcher (or its regex) Alertmanager would refuse. A ``ValueError`` too, so a config
    validator reports it with its path; ``BadInput`` for matchers typed on the command line."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One ``name op value`` condition on an alert's labels; an absent label is ``""``."""

    name: str
    op: MatchOp
    value: str
    #: the compiled, anchored regex of ``=~`` / ``!~`` (``None`` for ``=`` / ``!=``)
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern is None and self.op in ("=~", "!~"):
            object.__setattr__(self, "pattern", compile_regex(self.value))

    def matches(self, value: str) -> bool:
        op = self.op
        if op == "=":
            return value == self.value
        if op == "!=":
            return value != self.value
        found = self.pattern.fullmatch(value) is not None  # type: ignore[union-attr]
        return found if op == "=~" else not found

    def __str__(self) -> str:  # Alertmanager's Matcher.String (openMetricsEscape)
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    @property
    def is_regex(self) -> bool:
        return self.op in ("=~", "!~")


def _sort_key(m: Matcher) -> tuple[str, str, bool, str]:
    # labels.Matchers.Less: name, then value, then equality before regex (then the operator,
    # so that the order Go leaves to chance is fixed here)
    return (m.name, m.value, m.is_regex, m.op)


def sorted_matchers(matchers: Iterable[Matcher]) -> tuple[Matcher, ...]:
    return tuple(sorted(matchers, key=_sort_key))


def matchers_text(matchers: Sequence[Matcher]) -> str:
    """Alertmanager's ``Matchers.String()``: ``{a="b",c=~"d"}``."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


# RE2 (Go) spelling → Python ``re``. Both are Perl-like; what differs is translated here or
# refused, never silently read another way: a flag group ``(?i)`` (Python 3.11 refuses
# global flags inside our anchoring group), ``(?<name>``, ``[[:alpha:]]``, ``\z``,
# ``\x{263a}``. Refused as RE2 refuses them: look-arounds, backreferences, conditionals;
# refused because Python lacks them: ``\pL`` / ``\p{Greek}``, ``\Q…\E``, the ``U`` flag.
# Compiled with re.ASCII: RE2's ``\d \w \s \b`` are ASCII-only (so is case folding here,
# where RE2 folds Unicode letters under ``(?i)``).
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_HEX_BRACED = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")


def _escape(source: str, i: int) -> tuple[str, int]:
    """The escape at ``source[i]`` (a backslash) as Python spells it, and where it ends."""
    nxt = source[i + 1 : i + 2]
    if nxt in ("p", "P"):
        raise ValueError(r"Unicode character classes (\p, \P) are not supported")
    if nxt == "Q":
        raise ValueError(r"\Q...\E quoting is not supported: escape the characters instead")
    if nxt in "123456789" and nxt:
        raise ValueError(
            "backreferences and octal escapes (\\1 ... \\9) are not supported "
            "(RE2 refuses backreferences): use \\x.. for a character code"
        )
    if nxt == "z":
        return "\\Z", i + 2
    braced = _HEX_BRACED.match(source, i)
    if braced:
        code = int(braced.group(1), 16)
        if code > 0x10FFFF:
            raise ValueError(f"\\x{{{braced.group(1)}}} is not a Unicode code point")
        return f"\\U{code:08x}", braced.end()
    return source[i : i + 2], i + 2


def _char_class(source: str, i: int) -> tuple[str, int]:
    """The bracket expression starting at ``source[i]``, translated, and where it ends."""
    out = ["["]
    j = i + 1
    if source.startswith("^", j):
        out.append("^")
        j += 1
    if source.startswith("]", j):  # a leading ']' is a literal in both syntaxes
        out.append("\\]")
        j += 1
    while j < len(source):
        c = source[j]
        if c == "]":
            out.append("]")
            return "".join(out), j + 1
        if c == "\\":
            text, j = _escape(source, j)
            out.append(text)
            continue
        if source.startswith("[:", j):
            end = source.find(":]", j + 2)
            if end != -1:
                name = source[j + 2 : end]
                if name.startswith("^"):
                    raise ValueError(f"negated POSIX classes ([:{name}:]) are not supported")
                if name not in _POSIX_CLASSES:
                    raise ValueError(f"[:{name}:] is not a POSIX character class")
                out.append(_POSIX_CLASSES[name])
                j = end + 2
                continue
        # literals to Go that Python reads as (future) set operations or nested sets
        out.append("\\" + c if c in "[&~|" else c)
        j += 1
    raise ValueError("missing closing ] of a character class")


def _translate_re2(source: str) -> str:
    out: list[str] = []
    closes = [0]  # per open group: scoped-flag groups to close with it (0: the whole regex)
    at_group_start = True
    i = 0
    while i < len(source):
        c = source[i]
        if c == "\\":
            text, i = _escape(source, i)
            out.append(text)
            at_group_start = False
        elif c == "[":
            text, i = _char_class(source, i)
            out.append(text)
            at_group_start = False
        elif c == "(":
            flags = _FLAG_GROUP.match(source, i)
            named = _NAMED_GROUP.match(source, i)
            if flags:
                on, off, kind = flags.group(1), flags.group(2) or "", flags.group(3)
                bad = sorted(set(on + off) - set("ims"))
                if bad:
                    raise ValueError(
                        f"flag {''.join(bad)!r} is not supported (RE2's i, m and s are; U is not)"
                    )
                scoped = f"(?{on}-{off}:" if off else f"(?{on}:"
                out.append(scoped)
                i = flags.end()
                if kind == ")":  # (?i)...: flags to the end of the group, as a scoped group
                    if not at_group_start:
                        raise ValueError(
                            "a flag group like (?i) is supported only at the start of the "
                            "regex or of a group; use (?i:...) around the part it applies to"
                        )
                    closes[-1] += 1
                else:
                    closes.append(0)
                    at_group_start = True
            elif named:
                out.append(f"(?P<{named.group(1)}>")
                i = named.end()
                closes.append(0)
                at_group_start = True
            elif source.startswith("(?", i):
                raise ValueError(
                    f"{source[i : i + 4]!r}...: look-arounds, backreferences, comments and "
                    "conditionals are not RE2 syntax"
                )
            else:
                out.append("(")
                i += 1
                closes.append(0)
                at_group_start = True
        elif c == ")":
            if len(closes) > 1:
                out.append(")" * closes.pop())
            out.append(")")
            i += 1
            at_group_start = False
        else:
            out.append(c)
            i += 1
            at_group_start = False
    out.append(")" * closes[0])
    return "".join(out)


def compile_regex(source: str) -> re.Pattern[str]:
    """Alertmanager's anchored regex ``^(?:source)$`` (use with ``fullmatch``)."""
    try:
        return re.compile(f"(?:{_translate_re2(source)})", re.ASCII)
    except (re.error, ValueError, RecursionError, OverflowError) as exc:
        raise InvalidMatcher(f"{source!r} is not a valid regular expression: {exc}") from None


def new_matcher(name: str, op: MatchOp, value: str) -> Matcher:
    """A matcher; a regex one is compiled here (:class:`InvalidMatcher` when it can't be)."""
    return Matcher(name=name, op=op, value=value)


def parse_matcher(text: str) -> Matcher:
    """One matcher: ``name="value"``, ``name=value``, with ``=``, ``!=``, ``=~``, ``!~``.

    Quoted values take the escapes ``\\"``, ``\\\\`` and ``\\n`` (any other backslash is
    literal), as Alertmanager's classic parser does.
    """
    found = _MATCHER_RE.fullmatch(text)
    if found is None:
        raise InvalidMatcher(
            f'bad matcher format: {text!r} (expected name="value", with =, !=, =~ or !~)'
        )
    name, op, raw = found.group(1), found.group(2), found.group(3)
    if not raw:  # pkg/labels ParseMatcher: ``job=`` is refused; ``job=""`` is the empty value
        raise InvalidMatcher(f"matcher value is not present: {text}")
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    value: list[str] = []
    escaped = False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            if ch == "n":
                value.append("\n")
            elif ch in '"\\':
                value.append(ch)
            else:  # a spurious escape: the backslash is literal
                value.append("\\" + ch)
            continue
        if ch == "\\":
            if i < len(raw) - 1:
                escaped = True
                continue
            value.append("\\")
        elif ch == '"':
            if not quoted or i < len(raw) - 1:
                raise InvalidMatcher(
                    f"matcher value contains unescaped double quote: {found.group(3)}"
                )
            quoted = False
        else:
            value.append(ch)
    if quoted:
        raise InvalidMatcher(f"matcher value contains unescaped double quote: {found.group(3)}")
    return new_matcher(name, _OPS[op], "".join(value))


def parse_matchers(text: str) -> list[Matcher]:
    """A comma-separated list, optionally in braces: ``{a="b", c=~"d.*"}``, ``a=b,c!=d``.

    Commas inside double quotes don't separate; a trailing comma is allowed; ``{}`` or an
    empty string is no matcher at all (pkg/labels ParseMatchers).
    """
    text = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = escaped = False
    for ch in text:
        if ch == ",":
            if not inside_quotes:
                tokens.append("".join(token))
                token = []
                continue
        elif ch == '"':
            if not escaped:
                inside_quotes = not inside_quotes
            else:
                escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(ch)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return [parse_matcher(t) for t in tokens]


# --------------------------------------------------------------------------------------
# Durations (Prometheus' model.ParseDuration): 30s, 5m, 4h, 1d, 1w, 1y, 1h30m, 250ms, 0
# --------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?"
    r"(?:([0-9]+)s)?(?:([0-9]+)ms)?"
)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_MAX_DURATION_MS = (2**63 - 1) // 1_000_000  # Go's time.Duration


def parse_duration(text: str) -> timedelta:
    """A Prometheus duration: units y w d h m s ms, largest first, each at most once."""
    if text == "0":
        return timedelta(0)
    if text == "":
        raise ValueError("empty duration string")
    found = _DURATION.fullmatch(text)
    if found is None:
        raise ValueError(f"not a valid duration string: {text!r} (e.g. 30s, 5m, 4h, 1d, 1w, 1h30m)")
    ms = sum(int(v) * unit for v, unit in zip(found.groups(), _UNIT_MS, strict=True) if v)
    if ms > _MAX_DURATION_MS:
        raise ValueError(f"duration out of range: {text!r}")
    return timedelta(milliseconds=ms)


def _duration_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return "0"  # YAML's bare 0; any other bare number lacks its unit
    return value


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, BeforeValidator(_duration_text), AfterValidator(_check_duration)]


def _positive_duration(value: str) -> str:
    if parse_duration(value) == timedelta(0):
        raise ValueError("cannot be zero")
    return value


NonZeroDuration = Annotated[Duration, AfterValidator(_positive_duration)]


# --------------------------------------------------------------------------------------
# Config values as Alertmanager reads them
# --------------------------------------------------------------------------------------


def _label_name(value: str) -> str:
    if not LABEL_NAME.fullmatch(value):
        raise ValueError(f"invalid label name {value!r}")
    return value


LabelName = Annotated[str, AfterValidator(_label_name)]


def _scalar_text(value: Any) -> Any:
    """YAML scalars Go reads into a string as written: ``code: 500`` is ``"500"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value


LabelValue = Annotated[str, BeforeValidator(_scalar_text)]


def _matcher_text(value: str) -> str:
    parse_matchers(value)
    return value


#: one ``matchers:`` item: a matcher, or several (``a="b", c=~"d"``, ``{a="b"}``)
MatcherText = Annotated[str, AfterValidator(_matcher_text)]


def _regex_text(value: str) -> str:
    compile_regex(value)
    return value


RegexText = Annotated[LabelValue, AfterValidator(_regex_text)]


def _legacy_matchers(
    match: Mapping[str, str], match_re: Mapping[str, str], matchers: Sequence[str]
) -> tuple[Matcher, ...]:
    """``match`` → ``=``; ``match_re`` → ``=~`` whose value is the anchored regex (as
    Alertmanager builds it from config.Regexp: the route key shows ``^(?:re)$``)."""
    found = [new_matcher(k, "=", v) for k, v in match.items()]
    found += [new_matcher(k, "=~", f"^(?:{v})$") for k, v in match_re.items()]
    for text in matchers:
        found += parse_matchers(text)
    return sorted_matchers(found)


# --------------------------------------------------------------------------------------
# route, inhibit_rules, time_intervals
# --------------------------------------------------------------------------------------

DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)


def _group_by(value: list[str]) -> list[str]:
    labels = [v for v in value if v != "..."]
    for name in labels:
        if not LABEL_NAME.fullmatch(name):
            raise ValueError(f"invalid label name {name!r} in group_by list")
    if labels and len(labels) != len(value):
        raise ValueError("cannot have wildcard group_by (`...`) and other labels at the same time")
    twice = sorted({n for n in labels if labels.count(n) > 1})
    if twice:
        raise ValueError(f"duplicated label {twice[0]!r} in group_by")
    return value


class Route(_Model):
    """Alertmanager's ``<route>``. Unset options are inherited from the parent route (for
    the root: group_wait 30s, group_interval 5m, repeat_interval 4h, no grouping).

    As in Alertmanager: ``group_by: []`` is "unset" (inherits); ``mute_time_intervals``
    and ``active_time_intervals`` are a route's own and are not inherited.
    """

    receiver: str | None = None
    group_by: Annotated[list[str], AfterValidator(_group_by)] | None = None
    continue_: bool = Field(default=False, alias="continue")
    #: legacy: label → value (equality), label → regex (anchored)
    match: dict[LabelName, LabelValue] = Field(default_factory=dict)
    match_re: dict[LabelName, RegexText] = Field(default_factory=dict)
    matchers: list[MatcherText] = Field(default_factory=list)
    group_wait: Duration | None = None
    group_interval: NonZeroDuration | None = None
    repeat_interval: NonZeroDuration | None = None
    mute_time_intervals: list[str] = Field(default_factory=list)
    active_time_intervals: list[str] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)

    _matchers: tuple[Matcher, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _compile(self) -> Route:
        self._matchers = _legacy_matchers(self.match, self.match_re, self.matchers)
        return self

    @property
    def all_matchers(self) -> tuple[Matcher, ...]:
        """match, match_re and matchers together, compiled and sorted as Alertmanager does."""
        return self._matchers


def _equal_label(value: str) -> str:
    if not LABEL_NAME.fullmatch(value):
        raise ValueError(f"invalid label name {value!r} in equal list")
    return value


EqualLabel = Annotated[str, AfterValidator(_equal_label)]


class InhibitRule(_Model):
    """A firing alert matching the source matchers mutes the alerts matching the target
    matchers whose ``equal`` labels have the same values (absent equals absent)."""

    source_matchers: list[MatcherText] = Field(default_factory=list)
    target_matchers: list[MatcherText] = Field(default_factory=list)
    #: legacy spellings
    source_match: dict[LabelName, LabelValue] = Field(default_factory=dict)
    source_match_re: dict[LabelName, RegexText] = Field(default_factory=dict)
    target_match: dict[LabelName, LabelValue] = Field(default_factory=dict)
    target_match_re: dict[LabelName, RegexText] = Field(default_factory=dict)
    equal: list[EqualLabel] = Field(default_factory=list)

    _source: tuple[Matcher, ...] = PrivateAttr(default=())
    _target: tuple[Matcher, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _compile(self) -> InhibitRule:
        self._source = _legacy_matchers(
            self.source_match, self.source_match_re, self.source_matchers
        )
        self._target = _legacy_matchers(
            self.target_match, self.target_match_re, self.target_matchers
        )
        return self

    @property
    def compiled_source_matchers(self) -> tuple[Matcher, ...]:
        return self._source

    @property
    def compiled_target_matchers(self) -> tuple[Matcher, ...]:
        return self._target


# time_intervals (Alertmanager's timeinterval package): the same texts, the same errors

_TIME_OF_DAY = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


def _time_of_day(value: Any) -> Any:
    # PyYAML reads YAML 1.1, where an unquoted 17:00 is the sexagesimal number 1020
    # (17 × 60 + 0): exactly the minute of the day meant, so it is taken back as 17:00.
    # (Quoted '17:00' is the text; Alertmanager's docs quote them.)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 1440:
            raise ValueError(
                f"couldn't parse timestamp {value}, invalid format (quote it: 'HH:MM')"
            )
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


def _check_time_of_day(value: str) -> str:
    if not _TIME_OF_DAY.fullmatch(value):
        raise ValueError(f"couldn't parse timestamp {value}, invalid format")
    return value


TimeOfDay = Annotated[str, BeforeValidator(_time_of_day), AfterValidator(_check_time_of_day)]


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class TimeRange(_Model):
    """``[start_time, end_time)`` in minutes of the day, ``HH:MM``, ``end_time`` up to 24:00."""

    start_time: TimeOfDay
    end_time: TimeOfDay

    @model_validator(mode="after")
    def _order(self) -> TimeRange:
        if _minutes(self.start_time) >= _minutes(self.end_time):
            raise ValueError("start time cannot be equal or greater than end time")
        return self

    @property
    def minutes(self) -> tuple[int, int]:
        return _minutes(self.start_time), _minutes(self.end_time)


def _split_range(value: str) -> tuple[str, str]:
    text = value.lower()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 2:
            raise ValueError(f"couldn't parse range {value!r}, invalid format")
        return parts[0], parts[1]
    return text, text


def _weekday(value: str) -> tuple[int, int]:
    begin, end = (_weekday_number(p) for p in _split_range(value))
    if begin > end:
        raise ValueError("start day cannot be before end day")
    return begin, end


def _weekday_number(text: str) -> int:
    if text not in WEEKDAYS:
        raise ValueError(f"{text} is not a valid weekday")
    return WEEKDAYS.index(text)


def _int_member(text: str, what: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", text):
        raise ValueError(f"{text} is not a valid {what}")
    return int(text)


def _day_of_month(value: str) -> tuple[int, int]:
    begin, end = (_int_member(p, "day of the month") for p in _split_range(value))
    for day in (begin, end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{day} is not a valid day of the month: out of range")
    if begin < 0 < end:
        raise ValueError("end day must be negative if start day is negative")
    # a negative day can't be placed without the month: check against the shortest one
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise ValueError(f"end day {end} is always before start day {begin}")
    return begin, end


def _month_number(text: str) -> int:
    if text in MONTHS:
        return MONTHS.index(text) + 1
    if re.fullmatch(r"[0-9]{1,2}", text) and 1 <= int(text) <= 12:
        return int(text)
    raise ValueError(f"{text} is not a valid month")


def _month(value: str) -> tuple[int, int]:
    begin, end = (_month_number(p) for p in _split_range(value))
    if begin > end:
        raise ValueError(f"end month {MONTHS[end - 1]} is before start month {MONTHS[begin - 1]}")
    return begin, end


def _year(value: str) -> tuple[int, int]:
    begin, end = (_int_member(p, "year") for p in _split_range(value))
    for year in (begin, end):
        if not 1 <= year <= 9999:
            raise ValueError(f"{year} is not a valid year")
    if begin > end:
        raise ValueError(f"end year {end} is before start year {begin}")
    return begin, end


def _yaml_number(what: str, low: int, high: int) -> Any:
    def validate(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a valid {what}")
        if isinstance(value, int):
            if not low <= value <= high:
                # YAML 1.1 reads an unquoted 1:5 as the sexagesimal number 65
                raise ValueError(
                    f"{value} is not a valid {what}: out of range (quote ranges, e.g. "
                    f"'1:5': unquoted, YAML reads 1:5 as the number 65)"
                )
            return str(value)
        return value

    return validate


def _checked(parse: Any) -> Any:
    def validate(value: str) -> str:
        parse(value)
        return value

    return validate


WeekdayRange = Annotated[str, AfterValidator(_checked(_weekday))]
DayOfMonthRange = Annotated[
    str, BeforeValidator(_yaml_number("day of the month", -31, 31)),
    AfterValidator(_checked(_day_of_month)),
]  # fmt: skip
MonthRange = Annotated[
    str, BeforeValidator(_yaml_number("month", 1, 12)), AfterValidator(_checked(_month))
]
YearRange = Annotated[
    str, BeforeValidator(_yaml_number("year", 1, 9999)), AfterValidator(_checked(_year))
]


def load_zone(name: str) -> tzinfo:
    """An IANA time zone (``Europe/Amsterdam``); ``UTC`` needs no tz database."""
    if name == "UTC":
        return UTC
    if name == "Local":
        raise ValueError(
            "location 'Local' depends on the machine the function runs on: name an IANA "
            "zone, e.g. 'Europe/Amsterdam'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name}") from None


def _zone_name(value: str) -> str:
    load_zone(value)
    return value


class TimeIntervalSpec(_Model):
    """One entry of a named interval's ``time_intervals``. Every field given must match
    (an unset one matches anything); within a list, any entry. Ranges are inclusive;
    weekdays and months by name (months by number too), days of the month may count
    from the end (-1 is the last day). ``location`` defaults to UTC."""

    times: list[TimeRange] | None = None
    weekdays: list[WeekdayRange] | None = None
    days_of_month: list[DayOfMonthRange] | None = None
    months: list[MonthRange] | None = None
    years: list[YearRange] | None = None
    location: Annotated[str, AfterValidator(_zone_name)] | None = None

    _weekdays: tuple[tuple[int, int], ...] | None = PrivateAttr(default=None)
    _days: tuple[tuple[int, int], ...] | None = PrivateAttr(default=None)
    _months: tuple[tuple[int, int], ...] | None = PrivateAttr(default=None)
    _years: tuple[tuple[int, int], ...] | None = PrivateAttr(default=None)
    _zone: tzinfo = PrivateAttr(default=UTC)

    @model_validator(mode="after")
    def _parse(self) -> TimeIntervalSpec:
        def ranges(
            values: list[str] | None, parse: Callable[[str], tuple[int, int]]
        ) -> tuple[tuple[int, int], ...] | None:
            return None if values is None else tuple(parse(v) for v in values)

        self._weekdays = ranges(self.weekdays, _weekday)
        self._days = ranges(self.days_of_month, _day_of_month)
        self._months = ranges(self.months, _month)
        self._years = ranges(self.years, _year)
        self._zone = UTC if self.location is None else load_zone(self.location)
        return self

    @property
    def minute_ranges(self) -> tuple[tuple[int, int], ...] | None:
        return None if self.times is None else tuple(t.minutes for t in self.times)

    @property
    def weekday_ranges(self) -> tuple[tuple[int, int], ...] | None:
        """Inclusive, Sunday = 0 … Saturday = 6 (Go's time.Weekday)."""
        return self._weekdays

    @property
    def day_of_month_ranges(self) -> tuple[tuple[int, int], ...] | None:
        return self._days

    @property
    def month_ranges(self) -> tuple[tuple[int, int], ...] | None:
        return self._months

    @property
    def year_ranges(self) -> tuple[tuple[int, int], ...] | None:
        return self._years

    @property
    def zone(self) -> tzinfo:
        return self._zone


class TimeInterval(_Model):
    """A named interval (``time_intervals:``): active when any of its entries is."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    time_intervals: list[TimeIntervalSpec] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RouteNode:
    """A route of the tree as loaded: matchers compiled, options resolved (inherited)."""

    #: Alertmanager's route ID: ``{}`` for the root, then ``/{matchers}/<index>`` per level
    route_id: str
    #: Alertmanager's route key: ``{}`` then ``/{matchers}`` per level (siblings may share it)
    route_key: str
    #: where it is in the config: ``route``, ``route.routes[1].routes[0]``
    path: str
    matchers: tuple[Matcher, ...]
    receiver: str
    group_by: tuple[str, ...]
    group_by_all: bool
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    mute_time_intervals: tuple[str, ...]
    active_time_intervals: tuple[str, ...]
    continue_: bool
    routes: tuple[RouteNode, ...]


def _resolve(route: Route, parent: RouteNode | None, index: int, path: str) -> RouteNode:
    matchers = route.all_matchers
    group_by: tuple[str, ...]
    if parent is None:
        route_id = route_key = matchers_text(matchers)
        receiver, group_by, group_by_all = "", (), False
        wait, interval, repeat = DEFAULT_GROUP_WAIT, DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL
    else:
        route_key = f"{parent.route_key}/{matchers_text(matchers)}"
        route_id = f"{parent.route_id}/{matchers_text(matchers)}/{index}"
        receiver, group_by, group_by_all = parent.receiver, parent.group_by, parent.group_by_all
        wait, interval, repeat = parent.group_wait, parent.group_interval, parent.repeat_interval
    # dispatch.NewRoute, faithfully: real labels replace the parent's (and clear "..."),
    # "..." alone sets group-by-all, an empty list inherits both
    labels = tuple(sorted(n for n in route.group_by or () if n != "..."))
    if labels:
        group_by, group_by_all = labels, False
    elif route.group_by:
        group_by_all = True
    node = RouteNode(
        route_id=route_id,
        route_key=route_key,
        path=path,
        matchers=matchers,
        receiver=route.receiver or receiver,
        group_by=group_by,
        group_by_all=group_by_all,
        group_wait=wait if route.group_wait is None else parse_duration(route.group_wait),
        group_interval=(
            interval if route.group_interval is None else parse_duration(route.group_interval)
        ),
        repeat_interval=(
            repeat if route.repeat_interval is None else parse_duration(route.repeat_interval)
        ),
        mute_time_intervals=tuple(route.mute_time_intervals),
        active_time_intervals=tuple(route.active_time_intervals),
        continue_=route.continue_,
        routes=(),
    )
    children = tuple(
        _resolve(child, node, i, f"{path}.routes[{i}]") for i, child in enumerate(route.routes)
    )
    return replace(node, routes=children)


Loc = tuple[str | int, ...]


def located_error(loc: Loc, message: str, value: Any) -> ValidationError:
    """A config error at ``loc`` (relative to the model being validated).

    Raised from a model validator, pydantic-core merges a ValidationError's line errors
    with the outer location (function validators' ``convert_err``), so a cross-reference
    found after the fields are parsed is still reported where it is, e.g.
    ``alerting.route.routes[1].receiver``, not at the enclosing section."""
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", "{reason}", {"reason": message}),
        loc=loc,
        input=value,
    )
    return ValidationError.from_exception_data("AlertingSettings", [detail])


class AlertingSettings(_Model):
    """The ``alerting:`` section: receivers, where webhooks may go, and Alertmanager's
    ``route`` / ``inhibit_rules`` / ``time_intervals``, checked and compiled at load."""

    receivers: list[Receiver] = Field(default_factory=list)
    #: hosts a generic webhook may be delivered to (https only); Slack's and PagerDuty's
    #: documented hosts are always allowed for their own receivers
    allowed_webhook_hosts: list[HostName] = Field(default_factory=list)
    #: the routing tree; required once receivers are configured (Alertmanager: "no routes
    #: provided"); without receivers and route nothing is routed
    route: Route | None = None
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    time_intervals: list[TimeInterval] = Field(default_factory=list)
    #: the deprecated top-level spelling of time_intervals, still read by Alertmanager
    mute_time_intervals: list[TimeInterval] = Field(default_factory=list)

    _tree: RouteNode | None = PrivateAttr(default=None)
    _intervals: dict[str, TimeInterval] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> AlertingSettings:
        names = [r.name for r in self.receivers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"receiver names must be unique: {', '.join(twice)}")
        intervals: dict[str, TimeInterval] = {}
        for key, listed in (
            ("time_intervals", self.time_intervals),
            ("mute_time_intervals", self.mute_time_intervals),
        ):
            for i, interval in enumerate(listed):
                if interval.name in intervals:
                    raise located_error(
                        (key, i, "name"),
                        f"time interval {interval.name!r} is not unique",
                        interval.name,
                    )
                intervals[interval.name] = interval
        self._intervals = intervals
        if self.route is None:
            if self.receivers:
                raise located_error(
                    ("route",),
                    "required when receivers are configured: the root route names the "
                    "receiver every alert reaches when no other route matches",
                    None,
                )
            return self
        _check_root(self.route)
        _check_references(self.route, ("route",), set(names), set(intervals))
        self._tree = _resolve(self.route, None, 0, "route")
        return self

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)

    def secret_names(self) -> list[str]:
        """Every ``*_secret`` the receivers name (Terraform creates one secret each)."""
        return sorted({name for r in self.receivers for name in r.secret_names()})

    @property
    def routing_tree(self) -> RouteNode | None:
        """The route tree with matchers compiled and options inherited (``None``: no route)."""
        return self._tree

    def time_interval(self, name: str) -> TimeInterval | None:
        return self._intervals.get(name)


def _check_root(route: Route) -> None:
    """config.go's checks on the root route."""
    if not route.receiver:
        raise located_error(
            ("route", "receiver"),
            "the root route must name a receiver (where alerts go when no other route matches)",
            route.receiver,
        )
    if route.all_matchers:
        raise located_error(
            ("route",),
            "the root route must not have any matchers (match, match_re, matchers): every "
            "alert enters the tree there",
            None,
        )
    if route.continue_:
        raise located_error(
            ("route", "continue"), "cannot be set on the root route", route.continue_
        )
    for key in ("mute_time_intervals", "active_time_intervals"):
        if getattr(route, key):
            raise located_error(
                ("route", key),
                f"the root route cannot have {key.replace('_', ' ')}",
                getattr(route, key),
            )


def _check_references(route: Route, loc: Loc, receivers: set[str], intervals: set[str]) -> None:
    if route.receiver and route.receiver not in receivers:
        known = ", ".join(sorted(receivers)) or "none"
        raise located_error(
            (*loc, "receiver"),
            f"{route.receiver!r} is not a configured receiver (receivers: {known})",
            route.receiver,
        )
    for key in ("mute_time_intervals", "active_time_intervals"):
        for i, name in enumerate(getattr(route, key)):
            if name not in intervals:
                known = ", ".join(sorted(intervals)) or "none"
                raise located_error(
                    (*loc, key, i),
                    f"{name!r} is not a configured time interval (time_intervals: {known})",
                    name,
                )
    for i, child in enumerate(route.routes):
        _check_references(child, (*loc, "routes", i), receivers, intervals)
