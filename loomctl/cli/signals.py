"""Stopping long-running commands cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def stop_on_signals(*, second_interrupts: bool = False) -> Iterator[threading.Event]:
    """An event that SIGINT and SIGTERM set, for the long-running commands to stop cleanly at;
    with ``second_interrupts`` a second signal raises KeyboardInterrupt (stop now, mid-step).
    The previous handlers are back when the block ends. A crash meanwhile (librdkafka's abort or segfault) leaves
    the Python stack of every thread on stderr."""
    import signal

    from loomctl.kafka.clients import enable_faulthandler

    enable_faulthandler()

    stop = threading.Event()

    def request_stop(*_: Any) -> None:
        if second_interrupts and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
