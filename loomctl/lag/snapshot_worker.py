"""The collector's Kafka client in a child process of its own.

librdkafka aborts the whole process when a group-coordinator admin request times out while others are in flight
(``rd_kafka_enq_once_del_source_return: Assertion 'eonce->refcnt > 0'``, confluentinc/librdkafka#4605, unfixed in
2.16), a broker connection dropping mid-request included, and a collector must outlive that: the child owns the
AdminClient and takes the snapshots, so only the child dies, and the next request starts a fresh one.

:func:`loomctl.kafka.snapshot` asks in chunks with timeouts that grow with the requests queued, so the abort needs a
coordinator that really does not answer. When the child dies anyway, what it wrote to stderr (librdkafka's assertion
and :mod:`faulthandler`'s stack of every thread) is kept in a file of its own and handed to the collector with the
failure (:class:`SnapshotCrashed`), and the next snapshots ask in smaller chunks with a longer timeout, within
bounds, going back step by step after :data:`RECOVER_AFTER` good ones.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, NoReturn

from loomctl.errors import BackendUnavailable, BadInput, LoomError
from loomctl.lag.live import gc_paused
from loomctl.settings import Settings

CRASH_TEST_ENV = "LOOMCTL_SNAPSHOT_TEST_CRASH"
"""A test hook: with ``abort`` in the environment the child is started with, it calls os.abort() where it would
take a snapshot, as a librdkafka assertion does."""
MAX_TIMEOUT_FACTOR = 4.0
"""After crashes the timeout grows to at most this many times the collector's own."""
MAX_TIMEOUT_S = 60.0
RECOVER_AFTER = 30
"""Good snapshots in a row after which the chunk and the timeout step back towards the defaults."""
PROBE_TOPIC = "__consumer_offsets"
"""The topic whose metadata the child asks for before a snapshot: every cluster with groups has it."""
PROBE_TIMEOUT_S = 5.0
STACK_LIMIT = 16_000
"""Characters of a crash's stack kept for the report."""


class SnapshotCrashed(BackendUnavailable):
    """The snapshot's child process died (a librdkafka abort or a crash); ``stack`` is what it left on stderr."""

    def __init__(self, message: str, stack: str) -> None:
        super().__init__(message)
        self.stack = stack


class SnapshotWorker:
    """A child process that keeps one AdminClient and answers snapshot requests over a pipe.

    If the child dies (a librdkafka abort) or does not answer in time, it is ended, the cycle fails
    with :class:`SnapshotCrashed` (its stack attached), the chunks get smaller and the timeout longer,
    and the next request starts a fresh child.
    """

    def __init__(self, settings: Settings, timeout_s: float, chunk_size: int | None = None) -> None:
        from loomctl.kafka import SNAPSHOT_CHUNK

        self.settings = settings
        self.base_timeout_s = timeout_s
        self.timeout_s = timeout_s
        self.default_chunk = chunk_size or SNAPSHOT_CHUNK
        self.chunk_size = self.default_chunk
        self.crashes = 0
        self._good_in_a_row = 0
        self._process: Any = None
        self._pipe: Any = None
        self._stderr_path: str | None = None

    def _start(self) -> None:
        import multiprocessing
        import tempfile

        self._drop_stderr_file()
        handle, self._stderr_path = tempfile.mkstemp(prefix="loomctl-snapshot-", suffix=".stderr")
        os.close(handle)
        # spawn, not fork: a fresh interpreter, with no inherited threads or sockets
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_worker_main, args=(child, self.settings, self._stderr_path), name="loomctl-kafka-snapshot", daemon=True
        )
        self._process.start()
        child.close()
        self._pipe = parent

    def _limit(self, groups: int) -> float:
        """How long a whole snapshot may take: every chunk's requests with their own timeout, then the metadata and
        the log offsets, and the child's start."""
        from loomctl.kafka import OFFSET_FETCH_CONCURRENCY, queued_timeout

        chunks = max(1, -(-groups // self.chunk_size))
        per_chunk = queued_timeout(self.timeout_s, min(self.chunk_size, groups) + OFFSET_FETCH_CONCURRENCY) + 5
        return chunks * per_chunk + 2 * (self.timeout_s + 5) + 10

    def snapshot(self, group_ids: list[str]) -> Any:
        if self._process is None or not self._process.is_alive():
            self._start()
        limit = self._limit(len(group_ids))
        try:
            self._pipe.send((group_ids, self.chunk_size, self.timeout_s))
            if not self._pipe.poll(limit):
                self._crashed(f"the Kafka client did not answer a snapshot within {limit:g} s", hung=True)
            with gc_paused():  # unpickled: as many objects as the child built
                kind, payload = self._pipe.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            self._crashed("the Kafka client stopped mid-request", hung=False)
        if kind == "ok":
            self._answered()
            return payload
        error_class, message = payload
        # The child's client may still hold requests that timed out: when the broker comes back, their replies can
        # reach librdkafka's freed bookkeeping and abort it (the soak saw it one second after a paused broker went
        # on). So a failed snapshot retires the child at once, killed rather than closed (closing the client with
        # requests in flight is that same path), and the next snapshot starts a fresh one.
        self._retire()
        raise (BadInput if error_class == "BadInput" else BackendUnavailable)(message)

    def _retire(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
            self._process = None
        self._drop_stderr_file()

    def _answered(self) -> None:
        self._good_in_a_row += 1
        if self._good_in_a_row >= RECOVER_AFTER and (
            self.chunk_size < self.default_chunk or self.timeout_s > self.base_timeout_s
        ):
            self.chunk_size = min(self.default_chunk, self.chunk_size * 2)
            self.timeout_s = max(self.base_timeout_s, self.timeout_s / 1.5)
            self._good_in_a_row = 0

    def _crashed(self, what: str, *, hung: bool) -> NoReturn:
        """End the child, keep what it said on stderr, adapt the next snapshots, and raise SnapshotCrashed."""
        import signal

        process = self._process
        if hung and process is not None and process.is_alive():
            # SIGABRT first: faulthandler writes where every thread of the child was stuck, then it dies
            try:
                os.kill(process.pid, signal.SIGABRT)
            except OSError:
                pass
        if process is not None:
            process.join(timeout=5)  # its pipe closes before it is reaped: wait for its exit status
        code = process.exitcode if process is not None else None
        stack = self._read_stderr()
        self.close()
        self.crashes += 1
        self._good_in_a_row = 0
        self.chunk_size = max(_min_chunk(), self.chunk_size // 2)
        longest = min(self.base_timeout_s * MAX_TIMEOUT_FACTOR, MAX_TIMEOUT_S)
        self.timeout_s = max(self.base_timeout_s, min(self.timeout_s * 1.5, longest))
        said = _first_line(stack)
        raise SnapshotCrashed(
            f"{what} ({_exit_text(code)}{': ' + said if said else ''}); starting a new one, "
            f"asking in chunks of {self.chunk_size} groups with a {self.timeout_s:g} s timeout",
            stack,
        ) from None

    def _read_stderr(self) -> str:
        if not self._stderr_path:
            return ""
        try:
            with open(self._stderr_path, encoding="utf-8", errors="replace") as file:
                text = file.read()
        except OSError:
            return ""
        return text if len(text) <= STACK_LIMIT else text[:STACK_LIMIT] + "\n[...]"

    def _drop_stderr_file(self) -> None:
        if self._stderr_path:
            try:
                os.unlink(self._stderr_path)
            except OSError:
                pass
            self._stderr_path = None

    def close(self) -> None:
        if self._pipe is not None:
            try:
                self._pipe.send(None)
            except (OSError, ValueError):
                pass
            self._pipe.close()
            self._pipe = None
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            self._process = None
        self._drop_stderr_file()


def _min_chunk() -> int:
    from loomctl.kafka import MIN_CHUNK

    return MIN_CHUNK


def _exit_text(code: int | None) -> str:
    import signal

    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def _first_line(stack: str) -> str:
    """What the crash says of itself: librdkafka's assertion, else faulthandler's 'Fatal Python error' line."""
    lines = [line.strip() for line in stack.splitlines() if line.strip()]
    for line in lines:
        if "Assertion" in line or "assert" in line:
            return line
    return next((line for line in lines if line.startswith("Fatal Python error")), lines[0] if lines else "")


def _worker_main(pipe: Any, settings: Settings, stderr_path: str) -> None:
    import faulthandler
    import signal

    from loomctl import kafka

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then closes us
    stderr = open(stderr_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the process's life
    os.dup2(stderr.fileno(), 2)  # librdkafka's assertion message goes to fd 2: the parent reads it after a crash
    faulthandler.enable(file=stderr, all_threads=True)
    crash_test = os.environ.get(CRASH_TEST_ENV)
    admin = None
    wire: Any = None
    while True:
        try:
            request = pipe.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        group_ids, chunk_size, timeout_s = request
        try:
            if crash_test == "abort":
                os.abort()
            if admin is None:
                admin = kafka.admin_client(settings, timeout=timeout_s)
            # One metadata request first: with no broker answering, the group requests would all time out together
            # and that is librdkafka's abort (the soak saw a fresh client die 5 s into a cycle while the broker was
            # down); a cluster that does not answer this fails the snapshot before any group request is sent.
            kafka.topic_metadata(admin, [PROBE_TOPIC], min(timeout_s, PROBE_TIMEOUT_S))
            if wire is None:
                wire = _wire(settings, timeout_s)
            kinds = _kinds(wire, group_ids, timeout_s)
            with gc_paused():  # hundreds of thousands of offsets decoded, then pickled
                pipe.send(("ok", kafka.snapshot(admin, group_ids, timeout=timeout_s, chunk_size=chunk_size, wire=wire, **kinds)))
        except LoomError as exc:
            pipe.send(("error", (type(exc).__name__, str(exc))))
        except Exception as exc:  # a bug or an unwrapped client error: say what, rather than dying silently
            pipe.send(("error", ("LoomError", f"{type(exc).__name__}: {exc}")))


def _wire(settings: Settings, timeout_s: float) -> Any:
    """The child's group-types client (:mod:`loomctl.kafka.protocol`), open for the child's life; None when it cannot
    be made (its groups are then read through librdkafka alone, a share or streams group as librdkafka sees it)."""
    from loomctl.kafka import protocol

    try:
        return _KEPT.enter_context(protocol.client(settings, timeout=timeout_s))
    except LoomError:
        return None


_KEPT = contextlib.ExitStack()
"""Holds the child's group-types client open (the child ends without closing it: its sockets go with the process)."""


def _kinds(wire: Any, group_ids: list[str], timeout_s: float) -> dict[str, Any]:
    """What the cluster's listing says of the groups: their types, protocol types and states, for
    :func:`loomctl.kafka.snapshot` to route them (share and streams groups, Connect's, the consumer-protocol groups
    whose descriptions are batched apart) and to skip describing those it calls Empty; nothing when there is no
    listing (an older broker or no client), so every group goes through librdkafka as before."""
    from loomctl.kafka import protocol

    if wire is None:
        return {}
    try:
        listed = protocol.list_every_group(wire, timeout_s)
    except LoomError:
        return {}
    mine = [listed[g] for g in group_ids if g in listed]
    return {
        "known_types": {g.group_id: g.group_type for g in mine},
        "known_protocols": {g.group_id: g.protocol_type for g in mine},
        "known_states": {g.group_id: g.state or "Unknown" for g in mine},
    }
