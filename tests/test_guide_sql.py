"""Every SQL statement of the guide runs, verbatim, against the migrated schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "kafka-consumer-optimization-guide.md"
GUIDE_SERVICES = (
    "moondream-vision-processor", "speech-processor", "problematic-service",
    "slow-ai-processor", "memory-intensive-service",
)


def guide_statements() -> list[str]:
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S):
        if block.lstrip().startswith("-- In Python"):
            continue  # the guide's Python call, labelled sql; the loader's tests run it
        for statement in block.split(";"):
            code = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
            if code.strip():
                statements.append(statement.strip())
    return statements


def test_the_guide_has_the_statements_we_expect():
    statements = guide_statements()
    assert len(statements) >= 20
    assert any("generate_partition_update_script()" in s for s in statements)
    assert any("mark_partition_changes_applied()" in s for s in statements)


@pytest.mark.parametrize("statement", guide_statements(), ids=lambda s: " ".join(s.split())[:60])
def test_guide_statement_runs(db, statement):
    with db.cursor() as cur:
        for name in GUIDE_SERVICES:
            cur.execute(
                "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)",
                (name, f"{name}-group"),
            )
        cur.execute(
            "INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason)"
            " VALUES ('device.audio.raw', 3, 6, 'test')"
        )
        cur.execute(statement)
        if cur.description is not None:
            cur.fetchall()
        if statement.upper().startswith("UPDATE"):
            assert cur.rowcount == 1, "the guide's UPDATE should hit the service's row"
