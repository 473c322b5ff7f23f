"""Run Apache Kafka's own command-line tools from the jars that `loomctl dev` caches, and read their output.

The benchmarks and integration tests compare loomctl with what Kafka's tools say about the same
cluster. The tools run from the same jars as the local broker (``loomctl.devstack.kafka.libs_dir()``: the release
of LOOM_DEV_KAFKA_VERSION, else the pom's, unless a call names another), with the JVM options of Kafka's own
launcher scripts, so they start as an operator's ``kafka-consumer-groups.sh`` does. Their log4j output is kept to
errors on stderr.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import subprocess
import tempfile
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
FEATURE_COMMAND = "org.apache.kafka.tools.FeatureCommand"
"""``kafka-features``: the feature levels a cluster finalized (metadata.version, group.version, share.version, ...)."""

# What bin/kafka-run-class.sh passes (KAFKA_JVM_PERFORMANCE_OPTS) and the -Xmx512M that
# bin/kafka-consumer-groups.sh sets: the tool as operators run it, neither slowed nor tuned.
TOOL_JVM_FLAGS = (
    "-Xmx512M",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

_LOG4J2_ERRORS_ONLY = """\
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ERROR
rootLogger.appenderRef.stderr.ref = STDERR
"""


class ToolUnavailable(RuntimeError):
    """No Java or no cached Kafka jars: the comparison cannot run here."""


class ToolFailed(RuntimeError):
    """The tool exited non-zero; the message carries its last output lines."""


@functools.cache
def _log4j2_config() -> Path:
    handle, name = tempfile.mkstemp(prefix="loomctl-kafka-tools-", suffix=".log4j2.properties")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(_LOG4J2_ERRORS_ONLY)
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    return Path(name)


def tool_argv(main_class: str, *args: str, kafka_version: str | None = None) -> list[str]:
    """The command line that runs ``main_class`` of the cached jars of ``kafka_version`` (default: the devstack's
    release, ``kafka.version()``); raises ToolUnavailable."""
    from loomctl.devstack import kafka

    java = kafka.find_java()
    if java is None:
        raise ToolUnavailable("no java on PATH (or in $JAVA_HOME): apt-get install openjdk-17-jre-headless")
    libs = kafka.libs_dir(kafka_version)
    if not libs.is_dir():
        raise ToolUnavailable(f"no Kafka jars in {libs}: `loomctl dev up` fetches them once")
    return [
        java,
        *TOOL_JVM_FLAGS,
        f"-Dlog4j2.configurationFile={_log4j2_config()}",
        "-cp",
        f"{libs}{os.sep}*",
        main_class,
        *args,
    ]


def run_tool(main_class: str, *args: str, timeout: float = 600.0, kafka_version: str | None = None) -> str:
    """Run a Kafka tool (of ``kafka_version``'s jars, see :func:`tool_argv`) to completion and return its stdout;
    raises ToolFailed on a non-zero exit."""
    argv = tool_argv(main_class, *args, kafka_version=kafka_version)
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{main_class} did not finish within {timeout:g} s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr + result.stdout).strip().splitlines()[-15:])
        raise ToolFailed(f"{main_class} exited {result.returncode}:\n{tail}")
    return result.stdout


def describe_features(bootstrap_servers: str, *, timeout: float = 120.0, kafka_version: str | None = None) -> dict[str, str]:
    """The finalized level of each feature ``kafka-features describe`` prints (see :func:`parse_features`)."""
    return parse_features(
        run_tool(
            FEATURE_COMMAND, "--bootstrap-server", bootstrap_servers, "describe", timeout=timeout, kafka_version=kafka_version
        )
    )


_FEATURE_LINE = re.compile(r"^Feature:\s*(\S+)\s.*?\bFinalizedVersionLevel:\s*(\S+)")


def parse_features(text: str) -> dict[str, str]:
    """``{"metadata.version": "4.0-IV3", "group.version": "1", ...}`` from ``kafka-features describe`` lines
    (``Feature: NAME  SupportedMinVersion: ..  SupportedMaxVersion: ..  FinalizedVersionLevel: LEVEL  Epoch: ..``,
    tab-separated up to 4.0, padded with spaces later); a feature the cluster did not finalize is absent, as the tool
    leaves it out."""
    return {m.group(1): m.group(2) for m in map(_FEATURE_LINE.match, text.splitlines()) if m}


DESCRIBE_TIMEOUT_MS = 120_000
"""kafka-consumer-groups waits 5 s by default for its describe, and past a few thousand groups on a busy broker it
then leaves groups out (each with a timeout on stderr): an operator at that scale raises it, and so do we."""


def _describe_args(bootstrap_servers: str, groups: Sequence[str] | None) -> list[str]:
    selection = ["--all-groups"] if groups is None else [arg for g in groups for arg in ("--group", g)]
    return ["--bootstrap-server", bootstrap_servers, "--describe", *selection, "--timeout", str(DESCRIBE_TIMEOUT_MS)]


def describe_groups_argv(bootstrap_servers: str, groups: Sequence[str] | None = None) -> list[str]:
    """``kafka-consumer-groups --describe`` for ``groups``, or ``--all-groups`` when None."""
    return tool_argv(CONSUMER_GROUP_COMMAND, *_describe_args(bootstrap_servers, groups))


def describe_groups(
    bootstrap_servers: str, groups: Sequence[str] | None = None, *, timeout: float = 600.0
) -> list["DescribedOffset"]:
    """The rows ``kafka-consumer-groups --describe`` prints for ``groups`` (all groups when None)."""
    return parse_describe(run_tool(CONSUMER_GROUP_COMMAND, *_describe_args(bootstrap_servers, groups), timeout=timeout))


@dataclass(frozen=True)
class DescribedOffset:
    """One row of ``kafka-consumer-groups --describe``; None where the tool prints ``-``."""

    group: str
    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int | None
    lag: int | None
    consumer_id: str | None
    host: str | None
    client_id: str | None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.group, self.topic, self.partition)


_COLUMNS = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")


def parse_describe(text: str) -> list[DescribedOffset]:
    """Rows of every offsets table in ``--describe`` output (one table per group, or one for all).

    The tool left-pads each column to a width computed for the table, and prints the header with
    the same widths, so the header's word positions cut every row: a value holding a space (a
    client id, a group name) stays whole. A table ends at a blank line or at a line whose
    PARTITION cell is not a number (``Consumer group 'g' has no active members.``); lines
    outside tables are skipped.
    """
    rows: list[DescribedOffset] = []
    starts: list[int] | None = None
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["GROUP"] and "CURRENT-OFFSET" in words:
            if tuple(words) != _COLUMNS:
                raise ValueError(f"unexpected kafka-consumer-groups header: {line!r}")
            starts = [line.index(f"{name} ") for name in _COLUMNS[:-1]] + [line.rindex(_COLUMNS[-1])]
            continue
        if starts is None:
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line) + 1], strict=True)]
        if not words or not cells[2].isdigit():
            starts = None
            continue
        rows.append(
            DescribedOffset(
                group=cells[0],
                topic=cells[1],
                partition=int(cells[2]),
                current_offset=_number(cells[3]),
                log_end_offset=_number(cells[4]),
                lag=_number(cells[5]),
                consumer_id=_text(cells[6]),
                host=_text(cells[7]),
                client_id=_text(cells[8]),
            )
        )
    return rows


def _number(cell: str) -> int | None:
    return None if cell in ("-", "") else int(cell)


def _text(cell: str) -> str | None:
    return None if cell in ("-", "") else cell


@dataclass
class Comparison:
    """How `loomctl lag show -o json` rows and kafka-consumer-groups rows of the same groups compare."""

    compared: int = 0
    """Rows both tools show, matched on (group, topic, partition)."""
    mismatches: list[str] = field(default_factory=list)
    """A figure (committed offset, log end offset, lag) differs on a row both show."""
    loomctl_only_unknown: int = 0
    """Rows only loomctl shows, all without a commit: a partition of a topic the group consumes that
    it never committed on. kafka-consumer-groups lists only committed partitions of a group without
    members, so these are expected."""
    loomctl_only_known: list[str] = field(default_factory=list)
    """Rows only loomctl shows that do have a committed offset: the tool should have shown them."""
    tool_only: list[str] = field(default_factory=list)
    """Rows only kafka-consumer-groups shows: loomctl missed them."""
    duplicates: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not (self.mismatches or self.loomctl_only_known or self.tool_only or self.duplicates)

    def problems(self) -> list[str]:
        return [*self.mismatches, *self.loomctl_only_known, *self.tool_only, *self.duplicates]


def compare_lag(
    loomctl_rows: Iterable[Mapping[str, Any]], tool_rows: Iterable[DescribedOffset], groups: Container[str]
) -> Comparison:
    """Compare the per-partition figures of ``groups``; ``-`` and null are the same (unknown)."""
    result = Comparison()
    ours: dict[tuple[str, str, int], Mapping[str, Any]] = {}
    for row in loomctl_rows:
        key = (row["consumer_group_id"], row["topic_name"], int(row["partition"]))
        if key[0] not in groups:
            continue
        if key in ours:
            result.duplicates.append(f"loomctl shows {key} twice")
        ours[key] = row
    theirs: dict[tuple[str, str, int], DescribedOffset] = {}
    for described in tool_rows:
        if described.group not in groups:
            continue
        if described.key in theirs:
            result.duplicates.append(f"kafka-consumer-groups shows {described.key} twice")
        theirs[described.key] = described
    for key in sorted(ours.keys() | theirs.keys()):
        loomctl_row, tool_row = ours.get(key), theirs.get(key)
        if loomctl_row is None:
            result.tool_only.append(f"{key}: only kafka-consumer-groups shows it ({tool_row})")
        elif tool_row is None:
            if loomctl_row["committed_offset"] is None and loomctl_row["lag"] is None:
                result.loomctl_only_unknown += 1
            else:
                result.loomctl_only_known.append(f"{key}: only loomctl shows it, with a commit ({dict(loomctl_row)})")
        else:
            result.compared += 1
            pairs = (
                ("committed offset", loomctl_row["committed_offset"], tool_row.current_offset),
                ("log end offset", loomctl_row["log_end_offset"], tool_row.log_end_offset),
                ("lag", loomctl_row["lag"], tool_row.lag),
            )
            for name, mine, tool in pairs:
                if mine != tool:
                    result.mismatches.append(f"{key}: {name} loomctl {mine} != kafka-consumer-groups {tool}")
    return result
