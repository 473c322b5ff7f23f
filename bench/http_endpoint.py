"""How long `lag collect --listen` takes to answer when 200 clients ask at once: the endpoint before and after it got a
real backlog, a cap on its handler threads and per-connection deadlines, side by side in one run.

Each server runs in a process of its own (this file with --serve), serving a published snapshot of --partitions
partitions from memory, as the collector does between cycles; no PostgreSQL or Kafka is needed. The clients are
threads of this process: each round, --clients of them are released at once, each opens a connection, asks
GET /metrics (Connection: close) and reads the answer to its end; a client's latency runs from its connect to the
answer's last byte. p50, p99 and max are of the answered clients; the others are counted, with why (TimeoutError:
no answer within the client's 60 s). The rounds alternate between the two servers, so both meet the same load.

- before: the settings this endpoint had until now: socketserver's listen backlog of 5, a thread per connection
  with no cap, http.server's own request loop (no deadline on a request's head, 501 for HEAD) and Nagle left on.
- after: loomctl.lag.http as it is: a backlog of BACKLOG, at most HANDLERS handlers at once (the rest wait in the
  backlog), the head deadline, TCP_NODELAY.

A full backlog drops a client's SYN and the client's kernel resends it 1, 3, 7 s later: that is the tail this
measures. Exit status: never fails on slowness; 1 when a client got no answer from the "after" server.

Usage: python bench/http_endpoint.py [--clients 200] [--rounds 5] [--partitions 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import StreamRequestHandler
from typing import Any

from loomctl.lag import http as endpoint


def exporter(partitions: int) -> Any:
    """An exporter that has published one cycle: one group reading ``partitions`` partitions, ready for an hour."""
    from loomctl.lag.exporter import Exporter, ExportSnapshot, GroupInfo
    from loomctl.lag.live import PartitionLag

    rows = [
        PartitionLag(service_name="svc", consumer_group_id="g", managed=True, group_state="Stable", topic_name="t", partition=p,
                     committed_offset=100, log_start_offset=0, log_end_offset=100 + p, lag=p, time_lag_ms=p, lost_records=0,
                     member_id="m", client_id="c", host="h", status="OK")
        for p in range(partitions)
    ]
    snapshot = ExportSnapshot(cluster_name="bench", taken_at=dt.datetime.now(dt.timezone.utc), window=dt.timedelta(minutes=15),
                              interval=dt.timedelta(hours=1), groups={"g": GroupInfo("g", "svc", None, "Stable", 1)}, partitions=rows)
    published = Exporter("bench", interval=dt.timedelta(hours=1))
    published.publish(snapshot, writer=True, duration_s=0.1)
    return published


class BeforeHandler(endpoint._Handler):
    """The handler as it was: http.server's request loop and reader (no head deadline or size bound), Nagle on."""

    disable_nagle_algorithm = False
    setup = StreamRequestHandler.setup
    handle_one_request = BaseHTTPRequestHandler.handle_one_request
    send_error = BaseHTTPRequestHandler.send_error

    def do_GET(self) -> None:  # noqa: N802
        self._answer(send_body=True)


class BeforeServer(endpoint._Server):
    """The server as it was: socketserver's backlog of 5 and no cap on handler threads."""

    request_queue_size = 5
    handlers = 1_000_000


def serve(kind: str, partitions: int) -> None:
    """--serve: one server on a free port; its address on stdout; until stdin closes."""
    server_class, handler = (BeforeServer, BeforeHandler) if kind == "before" else (endpoint._Server, endpoint._Handler)
    server = server_class(("127.0.0.1", 0), handler)
    server.api = endpoint.Api(exporter(partitions))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


def one_round(address: str, clients: int) -> tuple[list[float], Counter[str]]:
    """Latencies (s) of ``clients`` requests released at once, and why the others got no full answer (a 60 s timeout,
    a reset, another status)."""
    import socket

    host, _, port = address.rpartition(":")
    start = threading.Barrier(clients)
    latencies: list[float] = []
    failed: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        start.wait()
        began = time.perf_counter()
        try:
            with socket.create_connection((host, int(port)), timeout=60) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                answer = bytearray()
                while chunk := s.recv(65536):
                    answer += chunk
            why = "" if answer.startswith(b"HTTP/1.1 200 ") else (answer[9:12].decode() or "closed")
        except OSError as exc:
            why = type(exc).__name__
        took = time.perf_counter() - began
        with lock:
            if why:
                failed[why] += 1
            else:
                latencies.append(took)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=50, help="partitions in the served snapshot (the size of /metrics)")
    parser.add_argument("--serve", choices=["before", "after"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.partitions)
        return 0

    servers = {}
    for kind in ("before", "after"):
        process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", kind, "--partitions", str(args.partitions)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        servers[kind] = (process, process.stdout.readline().strip())
    results: dict[str, tuple[list[float], Counter[str]]] = {kind: ([], Counter()) for kind in servers}
    try:
        for _ in range(args.rounds):
            for kind, (_, address) in servers.items():
                latencies, failed = one_round(address, args.clients)
                results[kind][0].extend(latencies)
                results[kind][1].update(failed)
    finally:
        for process, _ in servers.values():
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=30)

    size = len(exporter(args.partitions).metrics())
    print(f"{args.clients} clients at once x {args.rounds} rounds, GET /metrics ({size / 1000:.0f} kB), one connection each\n")
    print(f"{'':8} {'p50':>9} {'p99':>9} {'max':>9} {'answered':>9} {'failed':>7}  why")
    figures = {}
    for kind, (latencies, failed) in results.items():
        figures[kind] = [statistics.median(latencies), percentile(latencies, 0.99), max(latencies)] if latencies else [float("nan")] * 3
        why = ", ".join(f"{n} {reason}" for reason, n in failed.most_common())
        print(f"{kind:8} " + " ".join(f"{v * 1000:7.1f}ms" for v in figures[kind]) + f" {len(latencies):9} {sum(failed.values()):7}  {why}")
    print(f"{'ratio':8} " + " ".join(f"{b / a:8.1f}x" for b, a in zip(figures["before"], figures["after"], strict=True)) + "   (before / after)")
    print(f"\nafter: backlog {endpoint.BACKLOG}, {endpoint.HANDLERS} handlers, head deadline {endpoint.HEAD_SECONDS:g} s;"
          " before: backlog 5, no cap, no deadline")
    return 1 if sum(results["after"][1].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
