"""What Kafka accepts as a name, with nothing else imported: the snapshot's metadata request skips what cannot
be a topic, and loading the config rules of :mod:`loomctl.validation` for that would cost every `lag show`."""

from __future__ import annotations

import re

TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}", re.ASCII)
"""What Kafka accepts as a topic name (and "." or ".." it does not)."""


def is_topic_name(name: str) -> bool:
    return bool(TOPIC_NAME.fullmatch(name)) and name not in (".", "..")
