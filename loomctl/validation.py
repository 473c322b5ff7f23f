"""Validation of consumer settings, derived from the field table in consumer_config.

Pure functions: no database, no Kafka. A config that passes `check_settings` satisfies every
CHECK constraint of `pipeline_consumer_configs` and builds a librdkafka consumer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loomctl.consumer_config import DEFAULTS, FIELDS, FIELDS_BY_NAME, PROFILES, RULES, Field
from loomctl.errors import BadInput
from loomctl.names import is_topic_name  # TOPIC_NAME: re-exported

if TYPE_CHECKING:
    import datetime as dt

SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,248}$")
GROUP_ID_MAX = 249
DESCRIPTION_MAX = 2000
ACTOR_MAX = 200
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
"""ASCII digits only: ``int()`` takes ``١٢`` and ``１２`` as 12, which nobody means in a config."""
_DIGITS_MAX = 30
"""Longer numbers are out of every range; ``int()`` of over 4,300 digits raises instead of answering."""
_SHOWN_MAX = 40
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(value: Any, limit: int = _SHOWN_MAX) -> str:
    """``value`` as a message may quote it: one line, at most ``limit`` characters, and never an
    attempt to print a number too long for ``str()``."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"a {'negative ' if value < 0 else ''}number of over {limit} digits"
    text = value if isinstance(value, str) else str(value)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_text(what: str, value: Any, *, limit: int, multiline: bool = False) -> str:
    """Text that PostgreSQL stores as given: a string, no NUL or control characters (newlines and
    tabs only with ``multiline``), at most ``limit`` characters."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be text, got {type(value).__name__} {shown(value)}")
    bad = _CONTROL.search(value) if multiline else re.search(r"[\x00-\x1f\x7f]", value)
    if bad:
        raise BadInput(f"{what} {shown(value)} contains a control character ({bad.group()!r})")
    _check_unicode(what, value)
    if len(value) > limit:
        raise BadInput(f"{what} is {len(value):,} characters long: at most {limit:,}")
    return value


class UnknownField(BadInput):
    def __init__(self, key: str) -> None:
        self.key = key
        close = difflib.get_close_matches(key.lower().replace("-", "_").replace(".", "_"), list(FIELDS_BY_NAME), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        super().__init__(f"unknown setting {key!r}: {hint}valid settings: {', '.join(FIELDS_BY_NAME)}")
        self.closest = close[0] if close else None


@dataclass(frozen=True)
class Problem:
    """One reason a config is refused; `fields` are the settings it concerns."""

    fields: tuple[str, ...]
    message: str


class InvalidSettings(BadInput):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def normalize_key(key: str) -> str:
    """Accept the Java and librdkafka spellings too (max.poll.records, fetch.wait.max.ms)."""
    name = key.strip()
    if name in FIELDS_BY_NAME:
        return name
    for f in FIELDS:
        if name in (f.java, f.librdkafka, f.kafkajs):
            return f.name
    snake = name.lower().replace("-", "_").replace(".", "_")
    if snake in FIELDS_BY_NAME:
        return snake
    raise UnknownField(key)


def _range_problem(f: Field, value: Any) -> Problem:
    number = f"{value:,}" if isinstance(value, int) and value.bit_length() <= 3 * _SHOWN_MAX else shown(value)
    return Problem((f.name,), f"{f.name}={number} is out of range: allowed {f.describe_range()}")


def coerce_value(f: Field, value: Any) -> Any:
    """The typed value of ``value`` (text from the command line, or YAML/JSON scalars) for ``f``."""
    if f.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise InvalidSettings([Problem((f.name,), f"{f.name}={shown(value)} is not a boolean: allowed true or false")])
    if f.kind is int:
        not_whole = InvalidSettings(
            [Problem((f.name,), f"{f.name}={shown(value)} is not a whole number: allowed {f.describe_range()}")]
        )
        if isinstance(value, bool):
            raise not_whole
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, str):
            raise not_whole
        text = value.strip().replace("_", "")
        if not _WHOLE_NUMBER.fullmatch(text):
            raise not_whole
        if len(text.lstrip("+-")) > _DIGITS_MAX:
            raise InvalidSettings([Problem((f.name,), f"{f.name}={shown(text)} is out of range: allowed {f.describe_range()}")])
        return int(text)
    if not isinstance(value, str):
        raise InvalidSettings([Problem((f.name,), f"{f.name}={shown(value)} is not text: allowed {f.describe_range()}")])
    return value.strip()


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """``["max_poll_records=50", ...]`` -> typed settings; unknown keys and bad syntax are BadInput."""
    settings: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"expected key=value, got {shown(item)!r}")
        name = normalize_key(key)
        settings[name] = coerce_value(FIELDS_BY_NAME[name], raw)
    return settings


def coerce_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Typed settings from a mapping (an import file); unknown keys are BadInput."""
    typed: dict[str, Any] = {}
    for key, value in settings.items():
        name = normalize_key(str(key))
        typed[name] = coerce_value(FIELDS_BY_NAME[name], value)
    return typed


def field_problems(settings: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for name, value in settings.items():
        f = FIELDS_BY_NAME[name]
        if f.kind is bool and not isinstance(value, bool):
            problems.append(Problem((name,), f"{name}={shown(value)} is not a boolean: allowed true or false"))
        elif f.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(Problem((name,), f"{name}={shown(value)} is not a whole number: allowed {f.describe_range()}"))
        elif f.kind is str and not isinstance(value, str):
            problems.append(Problem((name,), f"{name}={shown(value)} is not text: allowed {f.describe_range()}"))
        elif f.choices:
            if value not in f.choices:
                why = ""
                if name == "partition_assignment_strategy" and value == "sticky":
                    why = " (librdkafka has no eager sticky assignor; use cooperative-sticky)"
                problems.append(Problem((name,), f"{name}={shown(value)} is not allowed: {f.describe_range()}{why}"))
        elif f.kind is int and not (f.minimum <= value <= f.maximum):
            problems.append(_range_problem(f, value))
    return problems


def rule_problems(settings: Mapping[str, Any]) -> list[Problem]:
    return [
        Problem(rule.fields, f"{', '.join(f'{n}={settings[n]}' for n in rule.fields)}: {rule.reason}")
        for rule in RULES
        if not rule.holds(settings)
    ]


def problems(settings: Mapping[str, Any]) -> list[Problem]:
    """Everything wrong with a complete set of settings (every field present)."""
    found = field_problems(settings)
    if found:
        return found  # cross-field rules on out-of-range values only repeat the range problem
    return rule_problems(settings)


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A complete, valid copy of ``settings`` (missing fields take their defaults), or InvalidSettings."""
    full = {**DEFAULTS, **settings}
    unknown = set(full) - set(FIELDS_BY_NAME)
    if unknown:
        raise UnknownField(sorted(unknown)[0])
    found = problems(full)
    if found:
        raise InvalidSettings(found)
    return full


def check_service_name(name: Any) -> str:
    if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
        raise BadInput(
            f"invalid service name {shown(name)!r}: letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "at most 249 characters"
        )
    return name


def check_group_id(group: Any) -> str:
    if not isinstance(group, str) or not group.strip() or len(group) > GROUP_ID_MAX or re.search(r"[\x00-\x1f\x7f]", group):
        # blank too: librdkafka aborts the process on a group id of spaces
        raise BadInput(
            f"invalid consumer group id {shown(group)!r}: 1 to {GROUP_ID_MAX} characters, not all blank, no control characters"
        )
    _check_unicode("consumer group id", group)
    return group


def _check_unicode(what: str, value: str) -> None:
    # a lone surrogate (JSON's "\ud800", or undecodable bytes on the command line) is no character:
    # PostgreSQL cannot store it and no output can print it
    if _SURROGATE.search(value):
        raise BadInput(f"{what} {shown(value)} is not valid Unicode text (it holds a lone surrogate)")


def check_topic(name: Any) -> str:
    if not isinstance(name, str) or not is_topic_name(name):
        raise BadInput(f"invalid topic name {shown(name)!r}: 1 to 249 letters, digits, '.', '_' and '-'")
    return name


def check_description(description: Any) -> str:
    return check_text("description", description, limit=DESCRIPTION_MAX, multiline=True)


def check_profile(name: Any) -> str:
    if not isinstance(name, str) or name not in PROFILES:
        close = difflib.get_close_matches(name, list(PROFILES), n=1) if isinstance(name, str) else []
        hint = f"did you mean {close[0]}? " if close else ""
        raise BadInput(f"unknown profile {shown(name)!r}: {hint}profiles: {', '.join(PROFILES)}")
    return name


_LONGEST_DURATION_S = 3650 * 86400
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, *, option: str = "duration") -> "dt.timedelta":
    """``30s``, ``15m``, ``1h``, ``7d``, ``1h30m`` or plain seconds, as a positive timedelta."""
    import datetime as dt

    value = text.strip().lower()
    number = r"[0-9]{1,12}(?:\.[0-9]{1,9})?"  # ASCII digits, and few enough for a float to hold them
    if re.fullmatch(number, value, re.ASCII):
        seconds = float(value)
    else:
        parts = re.findall(rf"({number})(ms|s|m|h|d|w)", value, re.ASCII)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise BadInput(f"{option}: {shown(text)!r} is not a duration (examples: 30s, 15m, 1h, 7d)")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not 0.001 <= seconds <= _LONGEST_DURATION_S:
        raise BadInput(f"{option}: {shown(text)!r} must be between 1ms and 3650d")
    return dt.timedelta(seconds=seconds)
