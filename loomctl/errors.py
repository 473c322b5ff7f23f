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


class PermissionRefused(LoomError):
    """PostgreSQL refused the statement to the connecting role (insufficient_privilege). ``command`` is the command
    that was refused (``config set``, its path below ``loomctl``), filled in by the CLI to name the role it needs; ``named``: the
    message names it already."""

    def __init__(self, message: str, command: str | None = None, *, named: bool = False) -> None:
        super().__init__(message)
        self.command = command
        self.named = named


class Unsupported(LoomError):
    """The cluster cannot do what was asked: its brokers lack the Kafka API (share groups on Kafka 4.0, streams
    groups before they are enabled), so a caller can say once what the cluster has not got. ``feature`` names it
    in words (``share groups``), ``api`` the request, ``broker_versions`` what the broker offers of it (None: none)."""

    def __init__(self, message: str, *, feature: str = "", api: str = "", broker_versions: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.feature = feature
        self.api = api
        self.broker_versions = broker_versions

    def __reduce__(self) -> tuple[object, ...]:  # the attributes survive pickling (a process pool, a multiprocessing queue)
        return (_unsupported, (str(self), self.feature, self.api, self.broker_versions))


def _unsupported(message: str, feature: str, api: str, broker_versions: tuple[int, int] | None) -> Unsupported:
    return Unsupported(message, feature=feature, api=api, broker_versions=broker_versions)
