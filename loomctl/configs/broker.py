"""What the broker thinks of a service's settings: the bounds it enforces on group members."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from loomctl.errors import BadInput, LoomError

if TYPE_CHECKING:
    from loomctl.configs.store import ChangeResult
    from loomctl.settings import Settings

SESSION_TIMEOUT_BOUNDS = ("group.min.session.timeout.ms", "group.max.session.timeout.ms")


def broker_session_timeout_warning(kafka_properties: Mapping[str, str], session_timeout_ms: int, timeout: float = 5.0) -> str | None:
    """A warning when the broker's group.min/max.session.timeout.ms exclude ``session_timeout_ms``.

    The broker refuses such a member at join time, long after the config was saved. None when
    the timeout fits or the broker cannot be asked (this check is advice, never a failure).
    """
    from loomctl import kafka

    try:
        bounds = kafka.broker_configs(kafka.admin_for(kafka_properties, timeout=timeout), SESSION_TIMEOUT_BOUNDS, timeout=timeout)
        low, high = (int(bounds[name]) for name in SESSION_TIMEOUT_BOUNDS)
    except (LoomError, KeyError, ValueError):
        return None
    if low <= session_timeout_ms <= high:
        return None
    return (
        f"session_timeout_ms={session_timeout_ms} is outside the broker's group.min/max.session.timeout.ms "
        f"({low}..{high}): consumers of this group will fail to join"
    )


def broker_warning(result: "ChangeResult", settings: "Settings") -> str | None:
    """Where a broker is configured and a change sets the session timeout, the broker's objection to it."""
    new = {c.field: c.new for c in result.changes}
    timeout_ms = new.get("session_timeout_ms")  # None too when the change deletes the service
    if not isinstance(timeout_ms, int) or not (settings.bootstrap_servers or settings.kafka_config):
        return None
    try:
        kafka_properties = settings.kafka_properties()
    except BadInput:
        return None
    return broker_session_timeout_warning(kafka_properties, timeout_ms)
