"""What the HTTP endpoint's tests share: a MonitoringServer in a process of its own, serving a snapshot made here.

The process's stderr goes to a file the tests read (a traceback from a handler thread lands there); on SIGTERM it
closes the server and prints its counts as one JSON line on stdout. No PostgreSQL or Kafka is needed.

Run as ``python tests/lag/http_served.py PARTITIONS``: it prints ``HOST:PORT`` on stdout once it serves.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLUSTER = "eu"
GROUPS = ("orders", "payments")


def published_exporter(partitions: int) -> Any:
    """An exporter that has published one cycle: two groups reading ``partitions`` partitions each (a bigger
    /metrics for a bigger number), fresh enough to stay ready for an hour."""
    from loomctl.lag.exporter import Exporter, ExportSnapshot, GroupInfo
    from loomctl.lag.live import PartitionLag

    now = dt.datetime.now(dt.timezone.utc)
    rows = [
        PartitionLag(service_name=f"{group}-svc", consumer_group_id=group, managed=True, group_state="Stable", topic_name=f"{group}-t",
                     partition=p, committed_offset=100, log_start_offset=0, log_end_offset=100 + p, lag=p, time_lag_ms=p * 10,
                     lost_records=0, member_id="m-1", client_id="c-1", host="10.0.0.9", status="OK" if p % 7 else "WARN")
        for group in GROUPS for p in range(partitions)
    ]
    snapshot = ExportSnapshot(
        cluster_name=CLUSTER, taken_at=now, window=dt.timedelta(minutes=15), interval=dt.timedelta(minutes=30),
        groups={g: GroupInfo(g, f"{g}-svc", None, "Stable", 1) for g in GROUPS}, partitions=rows, brokers=["b1:9092"])
    exporter = Exporter(CLUSTER, interval=dt.timedelta(minutes=30))
    exporter.publish(snapshot, writer=True, duration_s=0.1)
    return exporter


@dataclass
class ServedEndpoint:
    process: subprocess.Popen
    host: str
    port: int
    stderr: Path

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def errors(self) -> str:
        """What the server process wrote on stderr so far: nothing, ever, is what the tests expect."""
        return self.stderr.read_text(errors="replace")

    def exchange(self, data: bytes, timeout: float = 10.0) -> bytes:
        """``data`` sent on a new connection whose writing side is then closed; all the server answered until it closed
        (a reset after an answer keeps what came before it)."""
        received = bytearray()
        with socket.create_connection(self.address, timeout=timeout) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                while chunk := s.recv(65536):
                    received += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass
        return bytes(received)

    def stop(self) -> dict[str, int]:
        """The server's counts (``dropped``, ``failures``) once it has closed; the process must exit 0."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, (self.process.returncode, self.errors())
        return json.loads(out.strip().splitlines()[-1])


def start_endpoint(stderr: Path, partitions: int = 200) -> ServedEndpoint:
    from support import clean_env  # here: the server process runs this file without tests/ on its path

    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, __file__, str(partitions)], stdout=subprocess.PIPE, stderr=stderr.open("w"),
                               cwd=root, env=clean_env(PYTHONPATH=str(root)), text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()  # the address, once it serves (an empty line if it died first)
    if not line:
        process.wait(timeout=30)
        raise AssertionError(f"the endpoint did not start: {stderr.read_text()}")
    host, _, port = line.rpartition(":")
    return ServedEndpoint(process, host, int(port), stderr)


def main(partitions: int) -> None:
    from loomctl.lag.http import MonitoringServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = MonitoringServer(published_exporter(partitions), "127.0.0.1", 0).start()
    print(server.address, flush=True)
    stop.wait()
    server.close()
    deadline = time.monotonic() + 10  # the connections still in hand are counted before the counts are told
    while server.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps({"dropped": server.dropped, "failures": server.failures}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
