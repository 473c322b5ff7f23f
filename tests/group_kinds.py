"""Kafka's own tools as the oracle for every group type, and groups made the way their users make them: shared by the
tests of loomctl.kafka.protocol and of the commands that read those groups (lag show, config drift)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import create_topic, produce, unique

from loomctl.devstack import kafka_tools

CONSUMER_GROUPS = kafka_tools.CONSUMER_GROUP_COMMAND
SHARE_GROUPS = "org.apache.kafka.tools.consumer.group.ShareGroupCommand"
STREAMS_GROUPS = "org.apache.kafka.tools.streams.StreamsGroupCommand"
CONFIGS = "org.apache.kafka.tools.ConfigCommand"
CONSOLE_SHARE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleShareConsumer"


def tool(main_class: str, *args: str) -> str:
    try:
        return kafka_tools.run_tool(main_class, *args, timeout=180)
    except kafka_tools.ToolUnavailable as exc:
        pytest.skip(str(exc))


def table(text: str) -> list[dict[str, str]]:
    """The rows of every table in a tool's output, each cut at its header's column starts: the tools pad a column
    to its widest cell and the header with it. A table ends at a blank line."""
    rows: list[dict[str, str]] = []
    names: list[str] = []
    starts: list[int] = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["GROUP"]:
            names, starts, at = words, [], 0
            for name in words:
                at = line.index(name, at)
                starts.append(at)
                at += len(name)
        elif not words:
            names = []
        elif names:
            cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line) + 1], strict=True)]
            rows.append(dict(zip(names, cells, strict=True)))
    return rows


def share_from_earliest(bootstrap: str, group: str) -> None:
    """What an operator does first: a share group starts at the latest offset unless told otherwise."""
    tool(
        CONFIGS,
        "--bootstrap-server",
        bootstrap,
        "--alter",
        "--entity-type",
        "groups",
        "--entity-name",
        group,
        "--add-config",
        "share.auto.offset.reset=earliest",
    )


class ConnectWorker:
    """A member of a classic group with protocol type ``connect``, joined the way Kafka Connect workers join (a raw
    JoinGroup and SyncGroup), through kafka-python's public network client."""

    def __init__(self, bootstrap: str, group: str) -> None:
        from kafka.net.compat import KafkaNetClient
        from kafka.protocol.consumer.group import JoinGroupRequest, SyncGroupRequest
        from kafka.protocol.metadata import FindCoordinatorRequest

        self.group = group
        self.net = KafkaNetClient(bootstrap_servers=bootstrap, client_id="connect-worker")
        self.net.check_version(timeout_ms=10000)
        found = self.send(
            self.net.least_loaded_node(), FindCoordinatorRequest(key_type=0, coordinator_keys=[group], min_version=4)
        )
        self.coordinator = found.coordinators[0].node_id
        protocols = [JoinGroupRequest.JoinGroupRequestProtocol(name="sessioned", metadata=b"\x00")]
        self.member = ""
        for _ in range(3):  # the first answer is MEMBER_ID_REQUIRED with the member id to join with
            joined = self.send(
                self.coordinator,
                JoinGroupRequest(
                    group_id=group,
                    session_timeout_ms=45000,
                    rebalance_timeout_ms=10000,
                    member_id=self.member,
                    group_instance_id=None,
                    protocol_type="connect",
                    protocols=protocols,
                    reason="test",
                ),
            )
            self.member = joined.member_id
            if joined.error_code == 0:
                break
        assert joined.error_code == 0, joined
        assignment = SyncGroupRequest.SyncGroupRequestAssignment(member_id=self.member, assignment=b"\x00")
        synced = self.send(
            self.coordinator,
            SyncGroupRequest(
                group_id=group,
                generation_id=joined.generation_id,
                member_id=self.member,
                group_instance_id=None,
                protocol_type="connect",
                protocol_name="sessioned",
                assignments=[assignment],
            ),
        )
        assert synced.error_code == 0, synced

    def send(self, node: Any, request: Any) -> Any:
        return self.net.send_and_receive(node, request, timeout_ms=15000)

    def leave(self) -> None:
        from kafka.protocol.consumer.group import LeaveGroupRequest

        member = LeaveGroupRequest.MemberIdentity(member_id=self.member, group_instance_id=None, reason="done")
        try:
            self.send(self.coordinator, LeaveGroupRequest(group_id=self.group, members=[member]))
        finally:
            self.net.close()


@contextlib.contextmanager
def streams_group(bootstrap: str, folder: Path) -> Iterator[tuple[str, str]]:
    """A running Kafka Streams application (loomctl.devstack.streams_app) copying a new topic of two partitions, 10 and
    13 records, to another: its group id and source topic, while it runs. Skips the test without Java or Maven."""
    from loomctl.devstack import streams_app

    group = unique("g-streams")
    source, sink = create_topic(bootstrap, f"{group}-in", 2), create_topic(bootstrap, f"{group}-out", 2)
    produce(bootstrap, source, {0: 10, 1: 13})
    with contextlib.ExitStack() as stack:
        try:
            app = stack.enter_context(streams_app.running(bootstrap, group, source, sink, folder))
        except kafka_tools.ToolUnavailable as exc:
            pytest.skip(str(exc))
        streams_app.wait_running(app)
        yield group, source
