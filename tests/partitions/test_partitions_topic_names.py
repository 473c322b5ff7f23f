"""A topic name Kafka cannot have is bad input wherever a command takes one, never a client library's crash."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

BAD_NAMES = ["é" * 300, "bad topic", "..", "x" * 250, "a/b"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command", [["recommend"], ["plan"], ["apply", "--yes"], ["add", "{}", "3", "--reason", "x"]])
def test_a_topic_name_kafka_cannot_have_is_exit_2(cli, command, name):
    args = [a.replace("{}", name) for a in command] if "{}" in command else [*command, name]
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "invalid topic name" in result.stderr and result.stderr.count("\n") == 1
