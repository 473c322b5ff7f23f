"""The collector's HTTP endpoint: Prometheus ``/metrics``, a Burrow-compatible ``/v3/kafka`` API, ``/healthz``, ``/readyz``.

Every answer comes from the :class:`~loomctl.lag.exporter.Exporter`'s memory (the last completed cycle);
no request reaches Kafka or PostgreSQL, so a scrape answers while the broker is down.

The Burrow API follows linkedin/Burrow's v3 answers (core/internal/httpserver, core/protocol), field for field
and in Burrow's key order: ``error``, ``message``, the payload, ``request`` (``url``, ``host``).

- ``/v3/kafka``: ``clusters``, every cluster the exporter holds a snapshot of (by exported name, sorted; before the
  first one, the default cluster's name). ``/v3/kafka/{cluster}`` and everything below answers from that cluster's
  snapshot, and as Burrow does for a cluster it does not know for any other. ``/v3/kafka/{cluster}``: ``module``
  (``class-name``, ``servers``: the brokers the cycle's metadata named, ``client-profile``, ``topic-refresh`` and
  ``offset-refresh``: the cluster's interval in seconds); the profile's ``tls`` and ``sasl`` are null: loomctl never
  shows its client's security settings.
- ``.../topic``: ``topics``; ``.../topic/{topic}``: ``offsets``, the log end offset by partition (-1 where the
  cycle could not read it); ``.../topic/{topic}/consumers``: the listed groups with a commit on it.
- ``.../consumer``: the configured groups that exist on the cluster and have a partition Burrow could judge (a
  commit, a lag, a verdict); a configured service that never ran is not listed, and a group is not listed before
  its first judged partition, so a client that walks the list never meets NOTFOUND's ``totallag`` 0.
- ``.../consumer/{group}``: ``topics``, per topic a list indexed by partition of ``offsets`` (the window's first and
  last stored commit), ``owner``, ``client_id``, ``current-lag``; a partition never committed has no offsets and
  a null ``current-lag``.
- ``.../consumer/{group}/status`` (the partitions that are not OK) and ``/lag`` (all): Burrow's
  ConsumerGroupStatus. A partition is OK, WARN, STOP, STALL or REWIND; the group is OK, WARN or ERR (STOP, STALL,
  REWIND and a partition never committed with data in it fold into ERR, as Burrow folds them).
- ``/burrow/admin`` (``GOOD``) and ``/burrow/admin/ready`` (``READY``, or 503 ``STARTING`` until a recent cycle).

Unknown stays unknown, never 0: a partition loomctl cannot judge (never committed; lag without a stored window
yet, loomctl's "-") is left out of ``partitions``, ``maxlag`` and ``totallag`` and counted in ``partition_count``
with completeness 0, so the group's ``complete`` (the share of partitions whose window is full, as Burrow computes
it) stays below 1. A group with no partition to judge answers 404 with Burrow's NOTFOUND status, as Burrow does
for a group it holds no offsets for. ``current_lag`` is always a number, and clients that read missing numbers as 0
(burrow_exporter) never meet one where unknown would be read.

Whatever a client sends or does, the endpoint answers or closes, and writes nothing on stderr: GET and HEAD are
served, every other method answers 405, a request that is not HTTP/1.x 400 (414, 431 when too long), a head that does
not arrive within :data:`HEAD_SECONDS` 408 or a close; at most :data:`HANDLERS` connections are served at once and
the others wait in a backlog of :data:`BACKLOG`; a client that goes away is counted (``dropped``), not reported.

With a web configuration file (``--web-config``, :mod:`loomctl.lag.webconfig`) the same holds over TLS: each
connection's handshake runs on its own handler, not where connections are accepted, and must end within
:data:`HEAD_SECONDS`, which the first request's head shares with it; a handshake that fails or is refused (no client
certificate, one that does not verify or carries no allowed SAN, a TLS version or cipher outside the file's, a client
too slow) closes the connection and is counted (``refused``), as is plain HTTP on the TLS port, which answers one 400.
With client certificates the handshake applies to every path, the health endpoints' too. Basic auth is asked of every
path (the health endpoints are left open only with ``open_health``) before anything else, the method's 405 included:
401 with ``WWW-Authenticate: Basic``. The file's response headers go on every answer.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import http.client
import io
import json
import math
import re
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from loomctl.errors import BadInput, LoomError
from loomctl.lag.exporter import BURROW_CODES, DEFAULT_LISTEN, Exporter, ExportSnapshot
from loomctl.lag.verdicts import ERR, OK, REWIND, STALL, STOP, WARN

if TYPE_CHECKING:
    from loomctl.lag.live import PartitionLag
    from loomctl.lag.webconfig import WebConfig, WebSettings

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
NOT_FOUND = "NOTFOUND"
PARTITION_STATUSES = (OK, WARN, STOP, STALL, REWIND)
"""What Burrow calls a partition (protocol.StatusConstant); loomctl's ERR and "-" are never shown for one."""
GROUP_STATUSES = (NOT_FOUND, OK, WARN, ERR)
"""What Burrow calls a group: STOP, STALL and REWIND fold into ERR."""
INVALID_REQUEST = b'{"error":true,"message":"invalid request type","result":{}}'
"""Burrow's answer to a path it does not route (no ``request`` object)."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; port 0 picks a free one) as a host and a port."""
    raw = (text or DEFAULT_LISTEN).strip()
    host, sep, port = raw.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535 or any(c.isspace() for c in host):
        raise BadInput(f"--listen {raw!r}: expected HOST:PORT, as in {DEFAULT_LISTEN}")
    return host, int(port)


def judged(p: "PartitionLag") -> bool:
    """Burrow could judge this partition: it has a commit, a lag and a verdict in Burrow's partition vocabulary."""
    return p.committed_offset is not None and p.lag is not None and p.status in PARTITION_STATUSES


def folded_status(statuses: Iterable[str]) -> str:
    """The group's status as Burrow folds its partitions': OK, WARN, or ERR for STOP, STALL, REWIND (and loomctl's
    ERR, a partition never committed while it holds data); loomctl's "-" (no verdict yet) leaves it as it is."""
    code = max((min(BURROW_CODES[s], BURROW_CODES[ERR]) for s in statuses if s in BURROW_CODES), default=BURROW_CODES[OK])
    return GROUP_STATUSES[max(code, BURROW_CODES[OK])]


def _share(value: float) -> float:
    """A share to three decimals, floored: 1.0 only when whole (a group's ``complete`` counts the full windows)."""
    return math.floor(value * 1000) / 1000


def _millis(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _offset(offset: int | None, timestamp: Any, lag: int | None) -> dict[str, Any] | None:
    """Burrow's ConsumerOffset; loomctl observes a commit when it samples it, so ``observedAt`` is the sample's time."""
    if offset is None:
        return None
    at = _millis(timestamp)
    return {"offset": offset, "timestamp": at, "observedAt": at, "lag": lag}


def _window_offsets(snap: ExportSnapshot, p: "PartitionLag") -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
    """The first and last stored commit of the window and its number of samples; the live commit without a window."""
    live = _offset(p.committed_offset, snap.taken_at, p.lag)
    e = snap.evidence.get((p.consumer_group_id, p.topic_name, p.partition))
    if e is None or not e.samples:
        return live, live, 1
    end = _offset(e.last_offset, e.last_timestamp, e.last_lag) or live
    # a window whose first sample had no commit yet starts at its first commit known here: the last one
    start = _offset(e.first_offset, e.first_timestamp, e.first_lag) or end
    return start, end, e.samples


def _partition(snap: ExportSnapshot, p: "PartitionLag", expected_samples: float) -> dict[str, Any]:
    start, end, samples = _window_offsets(snap, p)
    return {
        "topic": p.topic_name,
        "partition": p.partition,
        "owner": p.host or "",
        "client_id": p.client_id or "",
        "status": p.status,
        "start": start,
        "end": end,
        "current_lag": p.lag,
        "complete": _share(min(samples / expected_samples, 1.0)),
    }


def group_status(
    snap: ExportSnapshot,
    group_id: str,
    *,
    show_all: bool,
    rows: list["PartitionLag"] | None = None,
    cluster: str | None = None,
) -> dict[str, Any] | None:
    """Burrow's ConsumerGroupStatus of one group; None (NOTFOUND) when the cycle judged no partition of it.
    ``cluster``: the cluster's exported name (the snapshot's own name without one)."""
    if group_id not in snap.groups:
        return None
    rows = sorted(snap.partitions_of(group_id) if rows is None else rows, key=lambda r: (r.topic_name, r.partition))
    expected = max(snap.window.total_seconds() / max(snap.interval.total_seconds(), 1.0), 1.0)
    partitions = [_partition(snap, p, expected) for p in rows if judged(p)]
    if not partitions:
        return None
    max_lag = None
    for p in partitions:  # the first of the highest, as Burrow picks it
        if max_lag is None or p["current_lag"] > max_lag["current_lag"]:
            max_lag = p
    return {
        "cluster": cluster or snap.cluster_name,
        "group": group_id,
        "status": folded_status(p.status for p in rows),
        "complete": _share(sum(1 for p in partitions if p["complete"] == 1.0) / len(rows)),
        "partitions": partitions if show_all else [p for p in partitions if p["status"] != OK],
        "partition_count": len(rows),
        "maxlag": max_lag,
        "totallag": sum(p["current_lag"] for p in partitions),
    }


def not_found_status(cluster: str, group_id: str) -> dict[str, Any]:
    """What Burrow's evaluator answers for a group it holds no offsets for."""
    return {
        "cluster": cluster,
        "group": group_id,
        "status": NOT_FOUND,
        "complete": 1.0,
        "partitions": [],
        "partition_count": 0,
        "maxlag": None,
        "totallag": 0,
    }


def consumer_detail(
    snap: ExportSnapshot, group_id: str, rows: list["PartitionLag"] | None = None
) -> dict[str, list[dict[str, Any]]] | None:
    """Burrow's ConsumerTopics: per topic, indexed by partition, the window's stored commits (first and last), the
    owner and the lag; None when the group has no commit on the cluster (Burrow holds nothing for it)."""
    rows = snap.partitions_of(group_id) if rows is None else rows
    info = snap.groups.get(group_id)
    if info is None or info.group_state == "Dead" or not any(p.committed_offset is not None for p in rows):
        return None
    by_topic: dict[str, dict[int, PartitionLag]] = {}
    for p in rows:
        by_topic.setdefault(p.topic_name, {})[p.partition] = p
    topics: dict[str, list[dict[str, Any]]] = {}
    for topic, partitions in sorted(by_topic.items()):
        listed = topics[topic] = []
        for number in range(max(partitions) + 1):
            found = partitions.get(number)
            if found is None or found.committed_offset is None:
                owner, client_id = (found.host, found.client_id) if found is not None else (None, None)
                listed.append({"offsets": [], "owner": owner or "", "client_id": client_id or "", "current-lag": None})
                continue
            start, end, _ = _window_offsets(snap, found)
            offsets = [start] if start == end else [start, end]
            listed.append(
                {"offsets": offsets, "owner": found.host or "", "client_id": found.client_id or "", "current-lag": found.lag}
            )
    return topics


class BurrowView:
    """One cluster's snapshot's lists (its consumers, its topics, the consumers of each topic, the topics' offsets),
    built once, on the first request for it, from the packed rows' columns (no row object is made); a group's own
    rows are made when it is asked for. ``cluster``: the cluster's exported name (the snapshot's own name without one)."""

    def __init__(self, snap: ExportSnapshot, cluster: str | None = None) -> None:
        from loomctl.lag.packed import NONE

        self.snap = snap
        self.cluster = cluster or snap.cluster_name
        t = snap.table
        verdicts = [s in PARTITION_STATUSES for s in t.statuses]
        committed, lag, status, topic_of, number_of, log_end = t.committed, t.lag, t.status, t.topic, t.partition, t.log_end
        self.consumers: list[str] = []
        self.consumers_of: dict[str, set[str]] = {}
        for _, group_id, _, _, _ in t.groups:
            rows = t.rows_of(group_id)
            info = snap.groups.get(group_id)
            if not rows or info is None or info.group_state == "Dead":
                continue
            if any(committed[i] != NONE and lag[i] != NONE and verdicts[status[i]] for i in rows):
                self.consumers.append(group_id)
                for i in rows:
                    if committed[i] != NONE:
                        self.consumers_of.setdefault(t.topics[topic_of[i]], set()).add(group_id)
        self.consumers.sort()
        ends: dict[int, dict[int, int | None]] = {}
        for i in range(len(t)):
            known = ends.setdefault(topic_of[i], {})
            if known.get(number_of[i]) is None:
                known[number_of[i]] = None if log_end[i] == NONE else log_end[i]
        self.topics = sorted(t.topics[k] for k in ends)
        self.offsets = {
            t.topics[k]: [e if (e := by_partition.get(i)) is not None else -1 for i in range(max(by_partition) + 1)]
            for k, by_partition in ends.items()
        }

    def status(self, group_id: str, *, show_all: bool) -> dict[str, Any] | None:
        return group_status(self.snap, group_id, show_all=show_all, cluster=self.cluster)

    def detail(self, group_id: str) -> dict[str, list[dict[str, Any]]] | None:
        return consumer_detail(self.snap, group_id)


class Api:
    """The routes, as plain functions of a path: (HTTP status, content type, body)."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.host = socket.gethostname()
        self._views: dict[str, BurrowView] = {}
        """By exported cluster name, each rebuilt when its cluster publishes."""

    def clusters(self) -> dict[str, ExportSnapshot | None]:
        """The clusters the API serves, by exported name: every one with a snapshot; before the first, the default
        cluster without one (its routes answer as empty, as they did before a first cycle)."""
        served: dict[str, ExportSnapshot | None] = dict(self.exporter.snapshots())
        return served or {self.exporter.cluster_name: None}

    def view(self, cluster: str | None = None) -> BurrowView | None:
        """The Burrow view of ``cluster`` (by exported name; None: the default cluster's, or the only one's)."""
        served = self.exporter.snapshots()
        if cluster is None:
            snap = self.exporter.snapshot
            cluster = None if snap is None else self.exporter.exported_name(snap.cluster_name)
        found = None if cluster is None else served.get(cluster)
        return None if cluster is None or found is None else self._view_of(cluster, found, served)

    def _view_of(self, cluster: str, snap: ExportSnapshot, served: Mapping[str, object]) -> BurrowView:
        view = self._views.get(cluster)
        if view is None or view.snap is not snap:
            view = BurrowView(snap, cluster)  # two requests racing here build it twice: harmless
            # a new dict (readers may hold the old one), without the clusters retired since
            self._views = {**{name: v for name, v in self._views.items() if name in served}, cluster: view}
        return view

    def _json(self, code: int, url: str, message: str, payload: dict[str, Any], *, error: bool = False) -> tuple[int, str, bytes]:
        body = {"error": error, "message": message, **payload, "request": {"url": url, "host": self.host}}
        return code, "application/json", json.dumps(body, separators=(",", ":")).encode()

    def _error(self, code: int, url: str, message: str) -> tuple[int, str, bytes]:
        return self._json(code, url, message, {}, error=True)

    def get(self, target: str) -> tuple[int, str, bytes]:
        path = urlsplit(target).path
        if path == "/metrics":
            return 200, METRICS_CONTENT_TYPE, self.exporter.metrics()
        if path in ("/healthz", "/livez"):
            return 200, TEXT_CONTENT_TYPE, b"ok\n"
        if path == "/readyz":
            if self.exporter.ready():
                return 200, TEXT_CONTENT_TYPE, b"ready\n"
            return 503, TEXT_CONTENT_TYPE, b"not ready: no recent successful cycle\n"
        if path == "/burrow/admin":
            return 200, TEXT_CONTENT_TYPE, b"GOOD"
        if path == "/burrow/admin/ready":
            return (200, TEXT_CONTENT_TYPE, b"READY") if self.exporter.ready() else (503, TEXT_CONTENT_TYPE, b"STARTING")
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] != ["v3", "kafka"]:
            return 404, "application/json", INVALID_REQUEST
        return self._burrow(unquote(path), parts[2:])  # Burrow's request url is the decoded path (Go's URL.Path)

    def _burrow(self, url: str, parts: list[str]) -> tuple[int, str, bytes]:
        served = self.clusters()
        if not parts:
            return self._json(200, url, "cluster list returned", {"clusters": sorted(served)})
        known = parts[0] in served
        snap = served.get(parts[0])
        view = self._view_of(parts[0], snap, served) if snap is not None else None
        rest = parts[1:]
        if not rest:
            if not known:
                return self._error(404, url, "cluster module not found")
            seconds = int((view.snap.interval if view else self.exporter.interval).total_seconds())
            profile = {"name": "loomctl", "client-id": "", "kafka-version": "", "tls": None, "sasl": None}
            module = {
                "class-name": "kafka",
                "servers": list(view.snap.brokers) if view else [],
                "client-profile": profile,
                "topic-refresh": seconds,
                "offset-refresh": seconds,
            }
            return self._json(200, url, "cluster module detail returned", {"module": module})
        if rest == ["topic"]:
            if not known:
                return self._error(404, url, "cluster not found")
            return self._json(200, url, "topic list returned", {"topics": view.topics if view else []})
        if len(rest) == 2 and rest[0] == "topic":
            offsets = view.offsets.get(rest[1]) if view else None
            if offsets is None:
                return self._error(404, url, "cluster or topic not found")
            return self._json(200, url, "topic offsets returned", {"offsets": offsets})
        if len(rest) == 3 and rest[0] == "topic" and rest[2] == "consumers":
            if not known:
                return self._error(404, url, "cluster not found")
            consumers = sorted(view.consumers_of.get(rest[1], ())) if view else []
            return self._json(200, url, "consumers of topic returned", {"consumers": consumers})
        if rest == ["consumer"]:
            if not known:
                return self._error(404, url, "cluster not found")
            return self._json(200, url, "consumer list returned", {"consumers": view.consumers if view else []})
        if len(rest) == 2 and rest[0] == "consumer":
            topics = view.detail(rest[1]) if view else None
            if topics is None:
                return self._error(404, url, "cluster or consumer not found")
            return self._json(200, url, "consumer detail returned", {"topics": topics})
        if len(rest) == 3 and rest[0] == "consumer" and rest[2] in ("status", "lag"):
            status = view.status(rest[1], show_all=rest[2] == "lag") if view else None
            if status is None:  # an unknown cluster too: Burrow's evaluator answers NOTFOUND for either
                return self._json(404, url, "consumer status returned", {"status": not_found_status(parts[0], rest[1])})
            return self._json(200, url, "consumer status returned", {"status": status})
        return 404, "application/json", INVALID_REQUEST


BACKLOG = 1024
"""The listen backlog. Connections wait here, in the kernel, at no cost to the collector, while every handler is busy;
a full backlog drops the client's SYN and the client retries 1, 3 and 7 s later (socketserver's default of 5 gave p99
3.3 s with 200 clients at once). The kernel caps it at net.core.somaxconn (4096 on current Linux)."""
HANDLERS = 64
"""At most this many connections are served at once, each on a thread of its own; the next ones wait in the backlog
(never a 503: an answer is copied from memory in a millisecond, so a wait is short, while a refused scrape is a gap in
the figures). A slot held by a slow or idle client comes back within :data:`HEAD_SECONDS`."""
HEAD_SECONDS = 5.0
"""A request's line and headers must arrive within this, counted from when the server starts waiting for them (so a
kept-alive connection idle this long is closed): an idle socket, a request sent a byte at a time or a TLS ClientHello
holds a handler no longer. A scraper that asks every 15 s or more opens a new connection each time, which costs less
than a handler held between its scrapes."""
SEND_SECONDS = 30.0
"""The longest an answer may take to send: a client that stops reading is dropped."""
REQUEST_LINE_BYTES = 8192
"""A longer request line answers 414."""
HEAD_BYTES = 64 * 1024
"""A request line and headers together larger than this answer 431."""
REQUESTS_PER_CONNECTION = 100
"""A kept-alive connection is closed after this many answers (the client opens another)."""
ALLOW = "GET, HEAD"
_REQUEST_LINE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\x00-\x20\x7f]+) HTTP/1\.[0-9]")
"""RFC 9112's request-line: a method token, a target (no space or control character), HTTP/1.x; anything else is 400."""


class _HeadTooLarge(http.client.HTTPException):
    """The request line and headers outgrew :data:`HEAD_BYTES` (http.server answers an HTTPException with 431)."""


class _Wire(io.RawIOBase):
    """The connection as the handler reads it: while a request's head is awaited, each read waits only for what is left
    of :data:`HEAD_SECONDS` and may bring only what is left of :data:`HEAD_BYTES`, so a client that trickles bytes is
    bounded too, not only one that sends none."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline: float | None = None
        self.budget: int | None = None
        self.received = 0

    def readable(self) -> bool:
        return True

    def expect_head(self, budget: int | None = HEAD_BYTES, deadline: float | None = None) -> None:
        """From now on, a head is awaited: within ``deadline`` (a TLS connection's first request shares the time of
        its handshake), else within :data:`HEAD_SECONDS` from now."""
        self.deadline, self.budget, self.received = deadline or time.monotonic() + HEAD_SECONDS, budget, 0

    def head_done(self) -> None:
        self.deadline = self.budget = None
        self.sock.settimeout(SEND_SECONDS)

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request's head did not arrive in time")
            self.sock.settimeout(left)
        view = memoryview(buffer)
        if self.budget is not None:
            if self.budget <= 0:
                raise _HeadTooLarge(f"request head over {HEAD_BYTES} bytes")
            view = view[: self.budget]
        count = self.sock.recv_into(view)
        self.received += count
        if self.budget is not None:
            self.budget -= count
        return count


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for the first one's ACK

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # http.server's reader, replaced by one that bounds the head
        self._wire = _Wire(self.connection)
        self.rfile = io.BufferedReader(self._wire)
        self._answered = 0
        self._first_deadline: float | None = getattr(self.connection, "head_deadline", None)

    def handle_one_request(self) -> None:
        """One request, read within :data:`HEAD_SECONDS` and :data:`HEAD_BYTES`: GET and HEAD are served, any other
        method answers 405, a request that is not HTTP/1.x answers 400; a client that goes away is let go quietly."""
        self.close_connection = True
        # what send_error needs before a request line is parsed; HTTP/1.0 so that the status line is written
        self.command, self.request_version, self.requestline = "", "HTTP/1.0", ""
        self._wire.expect_head(deadline=self._first_deadline)
        self._first_deadline = None
        try:
            line = self.rfile.readline(REQUEST_LINE_BYTES + 1)
            while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: empty lines before a request line are ignored
                line = self.rfile.readline(REQUEST_LINE_BYTES + 1)
            if not line:
                return  # closed (or half-closed) between requests
            if len(line) > REQUEST_LINE_BYTES:
                self.send_error(414, f"request line over {REQUEST_LINE_BYTES} bytes")
                return
            if not line.endswith(b"\n") or not _REQUEST_LINE.fullmatch(line.decode("iso-8859-1").rstrip("\r\n")):
                # a TLS ClientHello, binary junk, HTTP/0.9 or 2.0, a line cut short by the client's close
                self.send_error(400, "not an HTTP/1.x request line")
                return
            self.raw_requestline = line
            if not self.parse_request():  # the headers: parse_request answered (400 or 431) already
                return
            if self.headers.defects or self.headers.get_payload():
                # a line that is no "name: value" (the email parser keeps it, and all after it, as a body)
                self.send_error(400, "malformed header line")
                return
            self._read_body()
        except _HeadTooLarge as exc:  # in the request line (its headers' are answered by parse_request)
            self.send_error(431, str(exc))
            return
        except TimeoutError:
            if self._wire.received:  # half a request: say why it is closed; an idle connection just closes
                self.send_error(408, f"the request's line and headers must arrive within {HEAD_SECONDS:g} s")
            return
        self._wire.head_done()
        self._answered += 1
        if self._answered >= REQUESTS_PER_CONNECTION:
            self.close_connection = True
        if self.server.web is not None and not self._admitted(self.server.web):
            return
        if self.command in ("GET", "HEAD"):
            self._answer(send_body=self.command == "GET")
        else:
            self._refuse()

    def _admitted(self, web: "WebConfig") -> bool:
        """Within the file's rate limit (else 429) and, where basic auth applies, with a user and its password (else
        401 with ``WWW-Authenticate: Basic``), whatever the method: nothing of the endpoint is told before."""
        settings = web.current()
        if not web.allow():
            self._json_error(429, "too many requests: see the web configuration's rate_limit")
            return False
        try:
            path = urlsplit(self.path).path
        except ValueError:
            path = ""
        if web.needs_auth(settings, path) and not web.authorized(settings, self.headers.get("Authorization")):
            self._json_error(401, "unauthorized: basic auth with a user of the web configuration", {"WWW-Authenticate": "Basic"})
            return False
        return True

    def _json_error(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": True, "message": message}).encode()
        self._send(code, {**(headers or {}), "Content-Type": "application/json"}, body, send_body=self.command != "HEAD")

    def _answer(self, *, send_body: bool) -> None:
        gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
        headers: dict[str, str] = {}
        try:
            path = urlsplit(self.path).path
        except ValueError:  # "//[": an authority urlsplit cannot read
            self.send_error(400, "unreadable request target")
            return
        try:
            if gzipped and path == "/metrics":
                # the figures' gzip is kept per cycle: a compressed scrape costs no more than a plain one
                code, content_type, body = 200, METRICS_CONTENT_TYPE, self.server.api.exporter.metrics(compressed=True)
                headers["Content-Encoding"] = "gzip"
            else:
                code, content_type, body = self.server.api.get(self.path)
                if gzipped and len(body) > 4096:
                    body = gzip.compress(body, compresslevel=1)
                    headers["Content-Encoding"] = "gzip"
        except Exception as exc:  # a bug must not take the endpoint down: one JSON line, the server goes on
            self.server._count("failures", 1)
            code, content_type, headers = 500, "application/json", {}
            body = json.dumps({"error": True, "message": f"{type(exc).__name__}: {exc}"}).encode()
        headers["Content-Type"] = content_type
        self._send(code, headers, body, send_body=send_body)

    def _send(self, code: int, headers: dict[str, str], body: bytes, *, send_body: bool = True) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        if self.server.web is not None:
            for name, value in self.server.web.settings.headers:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _read_body(self) -> None:
        """No route takes a body: a small one is read and dropped (closing on unread bytes would reset the connection
        under the answer), any other closes the connection after the answer rather than be read as the next request."""
        length = (self.headers.get("Content-Length") or "0").strip()
        if (self.headers.get("Expect") or "").lower() == "100-continue":
            self.close_connection = True  # the client waits for a word before it sends the body: the answer is that word
        elif self.headers.get("Transfer-Encoding") or not (length.isascii() and length.isdigit() and int(length) <= HEAD_BYTES):
            self.close_connection = True
        elif int(length):
            self._wire.expect_head(budget=None)  # in time as the head is; its size is known
            if len(self.rfile.read(int(length))) < int(length):
                self.close_connection = True

    def handle_expect_100(self) -> bool:
        return True  # no "100 Continue": no route takes a body, so the final answer comes at once (RFC 9110 10.1.1)

    def _refuse(self) -> None:
        """405 for every method but GET and HEAD: OPTIONS and unknown ones too."""
        body = json.dumps({"error": True, "message": f"method {self.command} not allowed: only {ALLOW}"}).encode()
        self._send(405, {"Allow": ALLOW, "Content-Type": "application/json"}, body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error as one JSON line (http.server's is an HTML page), and the connection closed after it."""
        self._wire.head_done()
        self.close_connection = True
        body = json.dumps({"error": True, "message": explain or message or HTTPStatus(code).phrase}).encode()
        headers = {"Content-Type": "application/json"}
        if code == 405:
            headers["Allow"] = ALLOW
        self._send(code, headers, body, send_body=self.command != "HEAD")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_message(self, format: str, *args: Any) -> None:  # requests are not logged: scrapes come every few seconds
        pass


class _Server(ThreadingHTTPServer):
    """http.server's threaded server with a real backlog, at most :data:`HANDLERS` handlers at once, and quiet about
    clients that go away (socketserver prints a traceback on stderr for each)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = BACKLOG
    handlers = HANDLERS
    api: Api
    web: "WebConfig | None" = None

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._slots = threading.BoundedSemaphore(self.handlers)
        self._closing = threading.Event()
        self._counts_lock = threading.Lock()
        self.dropped = 0
        """Connections that ended in an error of the connection: reset or closed by the client mid-request, or an
        answer the client did not read within :data:`SEND_SECONDS` (a head that never came just closes)."""
        self.failures = 0
        """Answers 500 (a bug in a route) and handlers that could not start."""
        self.busy = 0
        """Connections being served now."""
        self.refused = 0
        """TLS connections that did not become one: a handshake that failed, was refused or took too long, a client
        certificate without an allowed SAN, plain HTTP on the TLS port."""
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # waiting for a slot here stops accepting: the next connections wait in the backlog, not on threads
        while not self._slots.acquire(timeout=0.2):
            if self._closing.is_set():
                self.shutdown_request(request)
                return
        self._count("busy", 1)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        self._count("busy", -1)
        self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The handler, over TLS when the web configuration has it: the handshake runs here, on the connection's own
        thread, so a slow one holds its slot (for :data:`HEAD_SECONDS` at most) and no other client."""
        settings = self.web.current() if self.web is not None else None
        if settings is None or settings.tls is None:
            super().finish_request(request, client_address)
            return
        secured = self._secure(request, settings)
        if secured is None:
            return
        try:
            super().finish_request(secured, client_address)
        finally:
            self.shutdown_request(secured)

    def _secure(self, raw: socket.socket, settings: "WebSettings") -> "ssl.SSLSocket | None":
        """The connection after its TLS handshake, or None (counted in ``refused``, closed) when there is none within
        :data:`HEAD_SECONDS`, or the client certificate carries no allowed SAN; plain HTTP answers 400 first."""
        from loomctl.lag.webconfig import certificate_sans

        assert settings.tls is not None
        deadline = time.monotonic() + HEAD_SECONDS
        tls: ssl.SSLSocket | None = None
        try:
            raw.settimeout(HEAD_SECONDS)
            first = raw.recv(1, socket.MSG_PEEK)
            if not first:
                return None  # closed before a word: nothing to refuse
            if first != b"\x16":  # not a TLS handshake record
                self._count("refused", 1)
                _refuse_plain_http(raw)
                return None
            settings.tls.sslsocket_class = _TlsSocket
            tls = settings.tls.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            tls.settimeout(0.0)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no TLS handshake within the time of a request's head")
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    _wait_for(tls, select.POLLIN, left)
                except ssl.SSLWantWriteError:
                    _wait_for(tls, select.POLLOUT, left)
            allowed = settings.allowed_sans
            if allowed is not None and not allowed.intersection(certificate_sans(tls.getpeercert())):
                raise ssl.SSLError("the client certificate carries no allowed SAN")
            assert isinstance(tls, _TlsSocket)
            tls.head_deadline = deadline
            tls.settimeout(HEAD_SECONDS)
            return tls
        except Exception:  # a refusal is the client's failure, never the collector's: counted, not printed
            self._count("refused", 1)
            with contextlib.suppress(OSError):
                (tls or raw).close()
            return None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Counted, never printed: a client that resets or closes its connection is no fault of the collector's."""
        self._count("dropped" if isinstance(sys.exc_info()[1], OSError) else "failures", 1)

    def _count(self, name: str, change: int) -> None:
        with self._counts_lock:
            setattr(self, name, getattr(self, name) + change)

    def shutdown(self) -> None:
        self._closing.set()
        super().shutdown()


def _wait_for(sock: socket.socket, event: int, seconds: float) -> None:
    """Until ``sock`` is ready for ``event`` or ``seconds`` have passed (poll: select's descriptors stop at 1024)."""
    poller = select.poll()
    poller.register(sock, event)
    poller.poll(max(int(seconds * 1000), 1))


class _TlsSocket(ssl.SSLSocket):
    """A server side TLS connection that knows by when its first request's head must have come."""

    head_deadline: float | None = None


_PLAIN_HTTP_ANSWER = json.dumps({"error": True, "message": "an HTTP request to the HTTPS endpoint: use https://"}).encode()


def _refuse_plain_http(raw: socket.socket) -> None:
    """One 400 to a client speaking plain HTTP to the TLS port (what it sent is read first, so that the close does
    not reset the answer away)."""
    with contextlib.suppress(OSError):
        raw.settimeout(0.0)
        with contextlib.suppress(BlockingIOError):
            raw.recv(HEAD_BYTES)
        raw.settimeout(SEND_SECONDS)
        raw.sendall(
            b"HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(_PLAIN_HTTP_ANSWER)}\r\n\r\n".encode()
            + _PLAIN_HTTP_ANSWER
        )


class MonitoringServer:
    """The endpoint on ``host:port``, served from a daemon thread until :meth:`close`."""

    def __init__(self, exporter: Exporter, host: str, port: int, web: "WebConfig | None" = None) -> None:
        """``web``: the web configuration file (TLS, basic auth, headers) read already; None serves plain HTTP to all."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_BoundServer", (_Server,), {"address_family": family})
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            raise _listen_error(host, port, exc) from None
        self._server.api = Api(exporter)
        self._server.web = web
        self._thread = threading.Thread(target=self._server.serve_forever, name="loomctl-http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    @property
    def dropped(self) -> int:
        """Connections that ended in an error of the connection: reset or closed by the client mid-request."""
        return self._server.dropped

    @property
    def failures(self) -> int:
        """Answers 500 (a bug in a route): none is expected, whatever a client sends."""
        return self._server.failures

    @property
    def refused(self) -> int:
        """TLS connections refused at the handshake (see :attr:`_Server.refused`)."""
        return self._server.refused

    @property
    def scheme(self) -> str:
        return "https" if self._server.web is not None and self._server.web.tls else "http"

    @property
    def busy(self) -> int:
        """Connections being served now (kept-alive ones included)."""
        return self._server.busy

    def start(self) -> "MonitoringServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _listen_error(host: str, port: int, exc: OSError) -> LoomError:
    """An address this host does not have (or a name that does not resolve) is bad input (exit 2); a port taken or
    refused to this user is the host's state (exit 1)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return BadInput(f"--listen {where}: no such host ({exc.strerror or exc})")
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return BadInput(f"--listen {where}: not an address of this host ({exc.strerror or exc})")
    return LoomError(f"cannot listen on {where}: {exc.strerror or exc}")


@contextlib.contextmanager
def serving(exporter: Exporter | None, listen: str | None, web: "WebConfig | None" = None) -> Iterator[str | None]:
    """The endpoint for the length of the block (its URL's scheme and address, ``https://HOST:PORT`` with TLS), or
    nothing (None) without an exporter. ``web``: the web configuration file, read already."""
    if exporter is None or listen is None:
        yield None
        return
    server = MonitoringServer(exporter, *parse_listen(listen), web=web).start()
    try:
        yield f"{server.scheme}://{server.address}"
    finally:
        server.close()
