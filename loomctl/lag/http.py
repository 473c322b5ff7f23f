"""The collector's HTTP endpoint: Prometheus ``/metrics``, a Burrow-compatible ``/v3/kafka`` API, ``/healthz``, ``/readyz``.

Every answer comes from the :class:`~loomctl.lag.exporter.Exporter`'s memory (the last completed cycle);
no request reaches Kafka or PostgreSQL, so a scrape answers while the broker is down.

Burrow's shapes (linkedin/Burrow, core/internal/httpserver and core/protocol): every answer has ``error``,
``message`` and ``request`` (``url``, ``host``). Served: ``/v3/kafka`` (clusters), ``/v3/kafka/{cluster}``,
``.../topic``, ``.../topic/{topic}`` (log end offsets), ``.../consumer``, ``.../consumer/{group}`` (offsets per
partition), ``.../consumer/{group}/status`` and ``/lag``. ``/status`` lists the partitions that are not OK and
``/lag`` all of them; an unknown cluster is a 404 with ``error: true``; an unknown group a 404 whose
status is ``NOTFOUND``. Differences chosen: the group's ``status`` is its worst partition's, as `lag show`
and `lag status` give it (Burrow folds STOP, STALL and REWIND into ERR at group level); a partition
without a stored window yet is ``UNKNOWN`` (the name Burrow gives a status outside its table), and one
the group never committed to has ``current_lag``, ``start`` and ``end`` null rather than 0.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from loomctl.errors import BadInput, LoomError
from loomctl.lag.exporter import DEFAULT_LISTEN, ExportSnapshot, Exporter, WindowEvidence
from loomctl.lag.status import OK, UNKNOWN

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; port 0 picks a free one) as a host and a port."""
    raw = (text or DEFAULT_LISTEN).strip()
    host, sep, port = raw.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535 or any(c.isspace() for c in host):
        raise BadInput(f"--listen {raw!r}: expected HOST:PORT, as in {DEFAULT_LISTEN}")
    return host, int(port)


def _millis(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _shown(status: str) -> str:
    return "UNKNOWN" if status == UNKNOWN else status


def _offset(offset: int | None, timestamp: Any, lag: int | None, observed: Any) -> dict[str, Any] | None:
    if offset is None:
        return None
    return {"offset": offset, "timestamp": _millis(timestamp), "observedAt": _millis(observed), "lag": lag}


def _partition(snap: ExportSnapshot, p: Any, expected_samples: float) -> dict[str, Any]:
    evidence: WindowEvidence | None = snap.evidence.get((p.consumer_group_id, p.topic_name, p.partition))
    if evidence is not None and evidence.samples:
        start = _offset(evidence.first_offset, evidence.first_timestamp, evidence.first_lag, evidence.first_timestamp)
        end = _offset(evidence.last_offset, evidence.last_timestamp, evidence.last_lag, evidence.last_timestamp)
        samples = evidence.samples
    else:
        start = end = _offset(p.committed_offset, snap.taken_at, p.lag, snap.taken_at)
        samples = 1
    return {
        "topic": p.topic_name,
        "partition": p.partition,
        "owner": p.host or "",
        "client_id": p.client_id or "",
        "status": _shown(p.status),
        "start": start,
        "end": end,
        "current_lag": p.lag,
        "complete": round(min(samples / expected_samples, 1.0), 3),
    }


def group_status(snap: ExportSnapshot, group_id: str, *, show_all: bool) -> dict[str, Any] | None:
    """Burrow's ``status`` object of one group; None when the cycle saw no partition of it (NOTFOUND)."""
    rows = snap.partitions_of(group_id)
    if group_id not in snap.groups or not rows:
        return None
    expected = max(snap.window.total_seconds() / max(snap.interval.total_seconds(), 1.0), 1.0)
    partitions = [_partition(snap, p, expected) for p in rows]
    known = [p for p in partitions if p["current_lag"] is not None]
    max_lag = max(known, key=lambda p: p["current_lag"], default=None)
    return {
        "cluster": snap.cluster_name,
        "group": group_id,
        "status": _shown(snap.group_status(group_id)),
        "complete": round(sum(1 for p in partitions if p["complete"] >= 1.0) / len(partitions), 3),
        "partitions": partitions if show_all else [p for p in partitions if p["status"] != OK],
        "partition_count": len(partitions),
        "maxlag": max_lag,
        "totallag": sum(p["current_lag"] for p in known),
    }


def topic_offsets(snap: ExportSnapshot, topic: str) -> list[int] | None:
    """Burrow's topic detail: the log end offset of each partition, by partition (-1 where unknown)."""
    ends = {p.partition: p.log_end_offset for p in snap.partitions if p.topic_name == topic}
    if not ends:
        return None
    return [ends.get(i) if ends.get(i) is not None else -1 for i in range(max(ends) + 1)]  # type: ignore[misc]


def consumer_detail(snap: ExportSnapshot, group_id: str) -> dict[str, list[dict[str, Any]]] | None:
    """Burrow's consumer detail: per topic, per partition, the window's stored offsets (first and last) and the lag."""
    rows = snap.partitions_of(group_id)
    if group_id not in snap.groups or not rows:
        return None
    topics: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(rows, key=lambda r: (r.topic_name, r.partition)):
        evidence = snap.evidence.get((p.consumer_group_id, p.topic_name, p.partition))
        offsets = [o for o in (
            (_offset(evidence.first_offset, evidence.first_timestamp, evidence.first_lag, evidence.first_timestamp),
             _offset(evidence.last_offset, evidence.last_timestamp, evidence.last_lag, evidence.last_timestamp))
            if evidence is not None else (_offset(p.committed_offset, snap.taken_at, p.lag, snap.taken_at),)) if o is not None]
        topics.setdefault(p.topic_name, []).append(
            {"offsets": offsets, "owner": p.host or "", "client_id": p.client_id or "", "current-lag": p.lag})
    return topics


def not_found_status(cluster: str, group_id: str) -> dict[str, Any]:
    """What Burrow's evaluator answers for a group it does not know."""
    return {"cluster": cluster, "group": group_id, "status": "NOTFOUND", "complete": 1.0, "partitions": [],
            "partition_count": 0, "maxlag": None, "totallag": 0}


class Api:
    """The routes, as plain functions of a path: (HTTP status, content type, body)."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.host = socket.gethostname()

    def _json(self, code: int, path: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
        body = {**body, "request": {"url": path, "host": self.host}}
        return code, "application/json", json.dumps(body, separators=(",", ":")).encode()

    def _error(self, code: int, path: str, message: str) -> tuple[int, str, bytes]:
        return self._json(code, path, {"error": True, "message": message})

    def get(self, target: str) -> tuple[int, str, bytes]:
        path = urlsplit(target).path
        if path == "/metrics":
            return 200, METRICS_CONTENT_TYPE, self.exporter.metrics()
        if path in ("/healthz", "/livez"):
            return 200, "text/plain; charset=utf-8", b"ok\n"
        if path == "/readyz":
            if self.exporter.ready():
                return 200, "text/plain; charset=utf-8", b"ready\n"
            return 503, "text/plain; charset=utf-8", b"not ready: no recent successful cycle\n"
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] != ["v3", "kafka"]:
            return self._error(404, path, "invalid request type")
        return self._burrow(path, parts[2:])

    def _burrow(self, path: str, parts: list[str]) -> tuple[int, str, bytes]:
        cluster = self.exporter.cluster_name
        snap = self.exporter.snapshot
        if not parts:
            return self._json(200, path, {"error": False, "message": "cluster list returned", "clusters": [cluster]})
        if parts[0] != cluster:
            return self._error(404, path, "cluster not found")
        rest = parts[1:]
        if not rest:
            module = {"class-name": "loomctl", "servers": [], "topic-refresh": int(self.exporter.interval.total_seconds()),
                      "offset-refresh": int(self.exporter.interval.total_seconds())}
            return self._json(200, path, {"error": False, "message": "cluster module detail returned", "module": module})
        if rest == ["consumer"]:
            groups = sorted(snap.groups) if snap else []
            return self._json(200, path, {"error": False, "message": "consumer list returned", "consumers": groups})
        if rest == ["topic"]:
            topics = sorted({p.topic_name for p in snap.partitions}) if snap else []
            return self._json(200, path, {"error": False, "message": "topic list returned", "topics": topics})
        if len(rest) == 2 and rest[0] == "topic":
            offsets = topic_offsets(snap, rest[1]) if snap else None
            if offsets is None:
                return self._error(404, path, "cluster or topic not found")
            return self._json(200, path, {"error": False, "message": "topic offsets returned", "offsets": offsets})
        if len(rest) == 2 and rest[0] == "consumer":
            topics = consumer_detail(snap, rest[1]) if snap else None
            if topics is None:
                return self._error(404, path, "cluster or consumer not found")
            return self._json(200, path, {"error": False, "message": "consumer detail returned", "topics": topics})
        if len(rest) == 3 and rest[0] == "consumer" and rest[2] in ("status", "lag"):
            group_id = rest[1]
            status = group_status(snap, group_id, show_all=rest[2] == "lag") if snap else None
            if status is None:
                return self._json(404, path, {"error": False, "message": "consumer status returned",
                                              "status": not_found_status(cluster, group_id)})
            return self._json(200, path, {"error": False, "message": "consumer status returned", "status": status})
        return self._error(404, path, "invalid request type")


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
        headers: dict[str, str] = {}
        try:
            if gzipped and urlsplit(self.path).path == "/metrics":
                # the figures' gzip is kept per cycle: a compressed scrape costs no more than a plain one
                code, content_type, body = 200, METRICS_CONTENT_TYPE, self.server.api.exporter.metrics(compressed=True)
                headers["Content-Encoding"] = "gzip"
            else:
                code, content_type, body = self.server.api.get(self.path)
                if gzipped and len(body) > 4096:
                    body = gzip.compress(body, compresslevel=1)
                    headers["Content-Encoding"] = "gzip"
        except Exception as exc:  # a bug must not take the endpoint down: one JSON line, the server goes on
            code, content_type, headers = 500, "application/json", {}
            body = json.dumps({"error": True, "message": f"{type(exc).__name__}: {exc}"}).encode()
        headers["Content-Type"] = content_type
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self) -> None:
        body = json.dumps({"error": True, "message": "only GET is served"}).encode()
        self.send_response(405)
        self.send_header("Allow", "GET")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # requests are not logged: scrapes come every few seconds
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: Api


class MonitoringServer:
    """The endpoint on ``host:port``, served from a daemon thread until :meth:`close`."""

    def __init__(self, exporter: Exporter, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_BoundServer", (_Server,), {"address_family": family})
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            raise LoomError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._server.api = Api(exporter)
        self._thread = threading.Thread(target=self._server.serve_forever, name="loomctl-http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def start(self) -> "MonitoringServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def serving(exporter: Exporter | None, listen: str | None) -> Iterator[str | None]:
    """The endpoint for the length of the block (its address), or nothing (None) without an exporter."""
    if exporter is None or listen is None:
        yield None
        return
    server = MonitoringServer(exporter, *parse_listen(listen)).start()
    try:
        yield server.address
    finally:
        server.close()
