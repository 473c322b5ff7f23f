"""The collector's Kafka client in a child process of its own.

librdkafka aborts the whole process when a broker connection drops in the middle of a group-coordinator admin request
(confluentinc/librdkafka#4605, unfixed in 2.16), and a collector must outlive any broker restart: the child owns the
AdminClient and takes the snapshots, so only the child dies, and the next request starts a fresh one.
"""

from __future__ import annotations

from typing import Any

from loomctl.errors import BackendUnavailable, BadInput, LoomError
from loomctl.settings import Settings


class SnapshotWorker:
    """A child process that keeps one AdminClient and answers snapshot requests over a pipe.

    If the child dies (a librdkafka abort) or does not answer in time, it is killed, the cycle
    fails with a one-line BackendUnavailable, and the next request starts a fresh child.
    """

    def __init__(self, settings: Settings, timeout_s: float) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._process: Any = None
        self._pipe: Any = None

    def _start(self) -> None:
        import multiprocessing

        # spawn, not fork: a fresh interpreter, with no inherited threads or sockets
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_worker_main, args=(child, self.settings, self.timeout_s), name="loomctl-kafka-snapshot", daemon=True
        )
        self._process.start()
        child.close()
        self._pipe = parent

    def snapshot(self, group_ids: list[str]) -> Any:
        if self._process is None or not self._process.is_alive():
            self._start()
        limit = 3 * (self.timeout_s + 5) + 10  # describe, offsets and list_offsets, each with its own timeout
        try:
            self._pipe.send(group_ids)
            if not self._pipe.poll(limit):
                self.close()
                raise BackendUnavailable(f"Kafka did not answer a snapshot within {limit:g} s")
            kind, payload = self._pipe.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            code = self._process.exitcode if self._process is not None else None
            self.close()
            raise BackendUnavailable(f"the Kafka client stopped mid-request (exit {code}); starting a new one") from None
        if kind == "ok":
            return payload
        error_class, message = payload
        raise (BadInput if error_class == "BadInput" else BackendUnavailable)(message)

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


def _worker_main(pipe: Any, settings: Settings, timeout_s: float) -> None:
    import os
    import signal

    from loomctl import kafka

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then closes us
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # librdkafka's abort message; the parent reports the failure in one line
    admin = None
    while True:
        try:
            group_ids = pipe.recv()
        except (EOFError, OSError):
            return
        if group_ids is None:
            return
        try:
            if admin is None:
                admin = kafka.admin_client(settings, timeout=timeout_s)
            pipe.send(("ok", kafka.snapshot(admin, group_ids, timeout=timeout_s)))
        except LoomError as exc:
            pipe.send(("error", (type(exc).__name__, str(exc))))
        except Exception as exc:  # a bug or an unwrapped client error: say what, rather than dying silently
            pipe.send(("error", ("LoomError", f"{type(exc).__name__}: {exc}")))
