"""A local PostgreSQL and Apache Kafka on loopback, without Docker: for `loomctl dev`, demos and tests.

Importing this package is cheap: psycopg and confluent-kafka are imported only when a server is
probed.
"""

from loomctl.devstack.stack import (
    STATE_FILE,
    KafkaInfo,
    PostgresInfo,
    StackInfo,
    default_state_dir,
    down,
    env_lines,
    running,
    status,
    up,
)

__all__ = [
    "STATE_FILE",
    "KafkaInfo",
    "PostgresInfo",
    "StackInfo",
    "default_state_dir",
    "down",
    "env_lines",
    "running",
    "status",
    "up",
]
