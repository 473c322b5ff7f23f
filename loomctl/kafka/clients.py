"""Kafka clients as loomctl builds them, and the one vocabulary of their errors.

Every client loomctl builds takes :func:`client_properties` (quiet librdkafka logging, bounded socket timeouts, no
topic auto-creation); every other module of :mod:`loomctl.kafka` turns confluent-kafka's exceptions into LoomErrors
through :func:`unreachable` and the error names here, so no caller ever sees a confluent-kafka exception.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from loomctl.errors import BackendUnavailable, BadInput
from loomctl.settings import Settings, redact

if TYPE_CHECKING:
    import logging

    from confluent_kafka.admin import AdminClient

DEFAULT_TIMEOUT_S = 10.0
CHANGE_TIMEOUT_S = 30.0
"""How long a change on the cluster (partitions apply, config push) may take, each request and its verification."""
TopicPartition = tuple[str, int]
T = TypeVar("T")


def quiet_logger() -> "logging.Logger":
    """A logger for librdkafka's own lines (broker connects, shutdown), which would go to stderr."""
    import logging

    quiet = logging.getLogger("loomctl.librdkafka")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def client_properties(kafka_properties: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S, **extra: Any) -> dict[str, Any]:
    """The properties of every client loomctl builds: the cluster's (address, security), bounded
    socket timeouts, quiet librdkafka logging and no topic auto-creation, then ``extra``."""
    props: dict[str, Any] = dict(kafka_properties)
    props.setdefault("socket.timeout.ms", int(timeout * 1000))
    props.setdefault("socket.connection.setup.timeout.ms", int(timeout * 1000))
    props["logger"] = quiet_logger()
    # The AdminClient runs on a producer handle, whose metadata request for a missing topic
    # would create it on brokers with auto.create.topics.enable: a lookup must not do that.
    props.setdefault("allow.auto.create.topics", False)
    props.setdefault("log_level", 4)  # warnings and worse; info lines (BGQUEUE at exit) are noise here
    props.update(extra)
    return props


def admin_client(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_S) -> "AdminClient":
    """An AdminClient for the configured cluster; librdkafka's own log lines are kept quiet."""
    return admin_for(settings.kafka_properties(), timeout=timeout)


def admin_for(kafka_properties: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S) -> "AdminClient":
    """An AdminClient from client properties (a properties file's, or the address alone)."""
    from confluent_kafka.admin import AdminClient

    try:
        return AdminClient(client_properties(kafka_properties, timeout=timeout))
    except Exception as exc:  # KafkaException for a bad property in the properties file
        # librdkafka may quote a property's value in its message: a secret one is masked
        raise BadInput(f"invalid Kafka client configuration: {redact(error_message(exc), dict(kafka_properties))}") from None


class LazyAdmin:
    """An AdminClient built when something first uses it (``make()`` builds it; its BadInput is raised then): a command
    whose every call goes through the group-types client never imports confluent-kafka's admin module or starts
    librdkafka's threads (35-50 ms of `lag show --all-groups`)."""

    def __init__(self, make: Callable[[], "AdminClient"]) -> None:
        self._make = make
        self._admin: AdminClient | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._admin is not None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and the like ask for dunders: this is no AdminClient to them
            raise AttributeError(name)
        with self._lock:  # clusters are read from threads of their own; one client each
            if self._admin is None:
                self._admin = self._make()  # a bad property raises here, each time it is used
        return getattr(self._admin, name)


def enable_faulthandler() -> bool:
    """Have a crash of this process (a librdkafka abort or segfault) leave the Python stack of every thread on
    stderr; for the long-running processes that hold librdkafka clients. False when stderr has no file descriptor
    (the interpreter's own stderr is tried first) and nothing could be enabled."""
    import faulthandler
    import sys

    if faulthandler.is_enabled():
        return True
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                faulthandler.enable(file=stream, all_threads=True)
                return True
        except (AttributeError, ValueError, OSError):  # a replaced stderr (a test runner's) has no fileno
            continue
    return False


def error_message(exc: BaseException) -> str:
    """The first line of a confluent-kafka error's own text (or of any exception's)."""
    error: Any = exc.args[0] if exc.args else None
    text = error.str() if hasattr(error, "str") else str(exc)
    return text.strip().splitlines()[0] if text and text.strip() else type(exc).__name__


def unreachable(exc: BaseException, what: str) -> BackendUnavailable:
    return BackendUnavailable(f"Kafka did not answer {what}: {error_message(exc)}")


def result_within(future: Any, timeout: float, what: str) -> Any:
    import concurrent.futures

    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise BackendUnavailable(f"Kafka did not answer {what} within {timeout:g} s") from None


# The one vocabulary of Kafka errors that are not about the request itself:
# UNREACHABLE_ERRORS say the cluster (or the group's coordinator) did not answer, so a snapshot
# built without that answer would be wrong and fails as a whole; TRANSIENT_ERRORS add the ones
# that may pass on a retry (a leader or controller moving), so a change they hit stays pending.
UNREACHABLE_ERRORS = frozenset(
    {
        "_TRANSPORT",
        "_TIMED_OUT",
        "_ALL_BROKERS_DOWN",
        "_MSG_TIMED_OUT",
        "REQUEST_TIMED_OUT",
        "COORDINATOR_NOT_AVAILABLE",
        "NOT_COORDINATOR",
        "COORDINATOR_LOAD_IN_PROGRESS",
    }
)


TRANSIENT_ERRORS = UNREACHABLE_ERRORS | {"_WAIT_COORD", "_DESTROY", "NOT_CONTROLLER", "LEADER_NOT_AVAILABLE", "NETWORK_EXCEPTION"}


def _error_name(exc: BaseException) -> str | None:
    """The KafkaError's code as confluent_kafka.KafkaError names it (``_TRANSPORT``, ``NOT_CONTROLLER``)."""
    error: Any = exc.args[0] if exc.args else None
    return error.name() if hasattr(error, "name") and hasattr(error, "code") else None


def is_unreachable(exc: BaseException) -> bool:
    return _error_name(exc) in UNREACHABLE_ERRORS


def is_transient(exc: BaseException) -> bool:
    """Whether an error may pass on a retry: the cluster unreachable, a leader moving, or what
    librdkafka calls retriable. An exception that carries no KafkaError counts as transient."""
    error: Any = exc.args[0] if exc.args else None
    if not hasattr(error, "retriable"):
        return True
    return _error_name(exc) in TRANSIENT_ERRORS or bool(error.retriable())


def error_text(exc: BaseException) -> str:
    """``NAME: message`` of a KafkaError (the broker's words), else the exception's own text."""
    error: Any = exc.args[0] if exc.args else None
    if error is not None and hasattr(error, "name") and hasattr(error, "str"):
        return f"{error.name()}: {error.str()}"
    return str(exc) or type(exc).__name__


def bounded(submit: Callable[[T], Any], items: Iterable[T], limit: int, timeout: float, what: str) -> list[tuple[T, Any]]:
    """Submit ``items`` with at most ``limit`` futures in flight; (item, future) pairs in order, all done."""
    gate = threading.BoundedSemaphore(limit)
    pairs: list[tuple[T, Any]] = []
    for item in items:
        if not gate.acquire(timeout=timeout):
            raise BackendUnavailable(f"Kafka did not answer {what} within {timeout:g} s")
        try:
            future = submit(item)
        except BaseException:
            gate.release()
            raise
        future.add_done_callback(lambda _f: gate.release())
        pairs.append((item, future))
    return pairs


def in_background(work: Callable[[], T], name: str) -> Callable[..., T]:
    """Run ``work()`` in a thread named ``name``; the returned callable joins it and gives its result or raises its
    error (``raising=False``: only joins)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller, which raises it in its own thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def result(raising: bool = True) -> Any:
        thread.join()
        if "error" in outcome and raising:
            raise outcome["error"]
        return outcome.get("value")

    return result
