"""`partitions cancel`: a pending or failed change is cancelled, recorded with who and why; nothing else is."""

from __future__ import annotations

import pytest

from partitions_support import insert_change, rows
from support import unique

pytestmark = pytest.mark.integration


def test_cancel_by_topic_records_who_when_and_why_and_apply_skips_it(cli, pg):
    topic = unique("pt-cancel")
    change_id = insert_change(pg, topic, 1, 3)
    cancelled = cli.json("cancel", topic, "--reason", "traffic fell back")
    assert (cancelled["id"], cancelled["status"], cancelled["cancelled_by"], cancelled["cancel_reason"]) == (
        change_id, "cancelled", "tester", "traffic fell back")
    row = rows(pg, topic)[0]
    assert row["status"] == "cancelled" and row["cancelled_at"] is not None and not row["applied"]
    assert cli.json("plan", topic)["items"] == []
    assert [c["id"] for c in cli.json("list", topic, "--cancelled")] == [change_id]
    assert cli.json("list", topic) == []


def test_cancel_by_id_takes_a_failed_change(cli, pg):
    topic = unique("pt-cancel")
    change_id = insert_change(pg, topic, 1, 3)
    assert cli("apply", topic, "--yes").exit_code == 1  # no such topic: the change fails
    assert rows(pg, topic)[0]["status"] == "failed"
    assert cli.json("cancel", str(change_id), "--reason", "topic retired")["status"] == "cancelled"


@pytest.mark.parametrize(("args", "code", "says"), [
    (["999999999999"], 3, "no partition change 999999999999"),
    (["99999999999999999999999"], 3, "no partition change"),
    (["no-such-topic-for-cancel"], 3, "no pending or failed partition change"),
])
def test_cancel_of_nothing_is_not_found(cli, args, code, says):
    result = cli("cancel", *args, "--reason", "x")
    assert result.exit_code == code and says in result.stderr and result.stderr.count("\n") == 1


def test_a_cancel_needs_a_reason_and_a_cancellable_change_and_changes_nothing_otherwise(cli, pg):
    topic = unique("pt-cancel")
    change_id = insert_change(pg, topic, 1, 3)
    assert cli("cancel", topic).exit_code == 2  # --reason is required
    assert cli("cancel", topic, "--reason", "  ").exit_code == 2
    assert cli("cancel", topic, "--reason", "a\x00b").exit_code == 2
    assert rows(pg, topic)[0]["status"] == "pending"
    assert cli("cancel", topic, "--reason", "first").exit_code == 0
    again = cli("cancel", str(change_id), "--reason", "second")
    assert again.exit_code == 2 and "is cancelled" in again.stderr
    assert rows(pg, topic)[0]["cancel_reason"] == "first"


def test_a_change_an_apply_is_working_on_cannot_be_cancelled(cli, pg, database_url):
    import psycopg

    topic = unique("pt-cancel")
    change_id = insert_change(pg, topic, 1, 3)
    with psycopg.connect(database_url) as holder:  # what `apply` holds while it works: the row lock
        holder.execute("SELECT 1 FROM topic_partition_changes WHERE id = %s FOR UPDATE", [change_id])
        result = cli("cancel", topic, "--reason", "too late")
        assert result.exit_code == 4 and "being applied" in result.stderr
    assert rows(pg, topic)[0]["status"] == "pending"
