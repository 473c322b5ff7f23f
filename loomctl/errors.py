"""The one error hierarchy of loomctl: every expected failure is a LoomError with an exit code."""

from __future__ import annotations


class LoomError(Exception):
    """An expected failure, shown to the user as one line; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class BadInput(LoomError):
    """The user asked for something invalid; nothing was changed."""

    exit_code = 2


class NotFound(LoomError):
    exit_code = 3


class Conflict(LoomError):
    """Somebody else changed the thing first, or the request clashes with the current state."""

    exit_code = 4


class BackendUnavailable(LoomError):
    """PostgreSQL, Kafka or a local tool that loomctl needs cannot be reached or is missing."""

    exit_code = 5
