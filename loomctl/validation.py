"""Validation of consumer settings, derived from the field table in consumer_config.

Pure functions: no database, no Kafka. A config that passes `check_settings` satisfies every
CHECK constraint of `pipeline_consumer_configs` and builds a librdkafka consumer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loomctl.consumer_config import DEFAULTS, FIELDS, FIELDS_BY_NAME, PROFILES, RULES, Field
from loomctl.errors import BadInput

SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,248}$")
GROUP_ID_MAX = 249
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


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


def _range_problem(f: Field, value: Any, shown: Any) -> Problem:
    return Problem((f.name,), f"{f.name}={shown!s} is out of range: allowed {f.describe_range()}")


def coerce_value(f: Field, value: Any) -> Any:
    """The typed value of ``value`` (text from the command line, or YAML/JSON scalars) for ``f``."""
    if f.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise InvalidSettings([Problem((f.name,), f"{f.name}={value!s} is not a boolean: allowed true or false")])
    if f.kind is int:
        if isinstance(value, bool):
            raise InvalidSettings([Problem((f.name,), f"{f.name}={value!s} is not a whole number: allowed {f.describe_range()}")])
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = str(value).strip().replace("_", "")
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        raise InvalidSettings([Problem((f.name,), f"{f.name}={value!s} is not a whole number: allowed {f.describe_range()}")])
    if not isinstance(value, str):
        raise InvalidSettings([Problem((f.name,), f"{f.name}={value!s} is not text: allowed {f.describe_range()}")])
    return value.strip()


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """``["max_poll_records=50", ...]`` -> typed settings; unknown keys and bad syntax are BadInput."""
    settings: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"expected key=value, got {item!r}")
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
            problems.append(Problem((name,), f"{name}={value!s} is not a boolean: allowed true or false"))
        elif f.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(Problem((name,), f"{name}={value!s} is not a whole number: allowed {f.describe_range()}"))
        elif f.kind is str and not isinstance(value, str):
            problems.append(Problem((name,), f"{name}={value!s} is not text: allowed {f.describe_range()}"))
        elif f.choices:
            if value not in f.choices:
                why = ""
                if name == "partition_assignment_strategy" and value == "sticky":
                    why = " (librdkafka has no eager sticky assignor; use cooperative-sticky)"
                problems.append(Problem((name,), f"{name}={value} is not allowed: {f.describe_range()}{why}"))
        elif f.kind is int and not (f.minimum <= value <= f.maximum):
            problems.append(_range_problem(f, value, f"{value:,}"))
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


def check_service_name(name: str) -> str:
    if not SERVICE_NAME.fullmatch(name or ""):
        raise BadInput(
            f"invalid service name {name!r}: letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "at most 249 characters"
        )
    return name


def check_group_id(group: str) -> str:
    if not group or len(group) > GROUP_ID_MAX:
        raise BadInput(f"invalid consumer group id {group!r}: 1 to {GROUP_ID_MAX} characters")
    return group


def check_profile(name: str) -> str:
    if name not in PROFILES:
        close = difflib.get_close_matches(name, list(PROFILES), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise BadInput(f"unknown profile {name!r}: {hint}profiles: {', '.join(PROFILES)}")
    return name


_LONGEST_DURATION_S = 3650 * 86400
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, *, option: str = "duration") -> "dt.timedelta":
    """``30s``, ``15m``, ``1h``, ``7d``, ``1h30m`` or plain seconds, as a positive timedelta."""
    import datetime as dt
    import re

    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise BadInput(f"{option}: {text!r} is not a duration (examples: 30s, 15m, 1h, 7d)")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not 0.001 <= seconds <= _LONGEST_DURATION_S:
        raise BadInput(f"{option}: {text!r} must be between 1ms and 3650d")
    return dt.timedelta(seconds=seconds)
