"""The collector's HTTP endpoint under clients that misbehave: resets, crowds, idle and half-sent requests, TLS spoken to
it, methods it does not serve, malformed request lines. A real MonitoringServer in a process of its own
(http_served.py), over real sockets; its stderr must stay empty throughout. No PostgreSQL or Kafka needed."""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_served import ServedEndpoint, published_exporter, start_endpoint
from support import clean_env, wait_for

from loomctl.errors import BadInput, LoomError
from loomctl.lag.http import HANDLERS, HEAD_BYTES, HEAD_SECONDS, REQUEST_LINE_BYTES, REQUESTS_PER_CONNECTION, MonitoringServer

CLOSE_WITHIN = HEAD_SECONDS + 10
"""How long a test waits for the server to close a connection it must close after HEAD_SECONDS (a bound, not a measure)."""


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEndpoint]:
    served = start_endpoint(tmp_path_factory.mktemp("http") / "stderr.log")
    try:
        yield served
    finally:
        counts = served.stop()
        assert served.errors() == "" and counts["failures"] == 0, (served.errors(), counts)


@pytest.fixture(autouse=True)
def _quiet(endpoint: ServedEndpoint) -> Iterator[None]:
    before = len(endpoint.errors())
    yield
    assert endpoint.errors()[before:] == ""  # after every test, not only at the end: the test that made noise fails


def status_of(answer: bytes) -> int | None:
    """The status of the first answer, None when the server closed without one."""
    if not answer:
        return None
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


def head_and_body(answer: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")[1:]
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}, body


def get(endpoint: ServedEndpoint, path: str, method: str = "GET", **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(*endpoint.address, timeout=10)
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def reset(s: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a client that is killed or times out does."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_clients_that_reset_leave_nothing_on_stderr_and_are_counted(tmp_path: Path) -> None:
    served = start_endpoint(tmp_path / "stderr.log", partitions=2000)  # a /metrics of ~3 MB: resets land mid-answer
    try:
        half_sent = 60
        for n in range(3 * half_sent):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the answer cannot all be sent at once
            s.connect(served.address)
            if n % 3 == 0:
                s.sendall(b"GET /metr")  # half a request line
            elif n % 3 == 1:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(100)  # the answer has started
            reset(s)
        assert get(served, "/metrics").status == 200  # the server goes on
    finally:
        counts = served.stop()
    assert served.errors() == ""
    # every half-sent request and every answer cut short is a connection error the server met and counted
    assert 2 * half_sent <= counts["dropped"] <= 3 * half_sent and counts["failures"] == 0, counts


def test_two_hundred_clients_at_once_are_all_answered(endpoint: ServedEndpoint) -> None:
    clients = 200
    start = threading.Barrier(clients)
    statuses: list[int | None] = [None] * clients

    def scrape(i: int) -> None:
        start.wait()
        connection = http.client.HTTPConnection(*endpoint.address, timeout=60)
        connection.request("GET", "/metrics" if i % 2 else "/v3/kafka/eu/consumer/orders/lag")
        response = connection.getresponse()
        body = response.read()
        statuses[i] = response.status if body else None
        connection.close()

    threads = [threading.Thread(target=scrape, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses == [200] * clients


def test_idle_half_sent_and_kept_alive_connections_are_closed_after_the_head_timeout(endpoint: ServedEndpoint) -> None:
    idle = socket.create_connection(endpoint.address, timeout=CLOSE_WITHIN)
    half = socket.create_connection(endpoint.address, timeout=CLOSE_WITHIN)
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head never ends
    kept = http.client.HTTPConnection(*endpoint.address, timeout=CLOSE_WITHIN)
    kept.request("GET", "/healthz")
    answered = kept.getresponse()
    assert (answered.status, answered.read(), answered.getheader("Connection")) == (200, b"ok\n", None)  # kept alive
    try:
        assert idle.recv(1024) == b""  # closed without a word: nothing was asked
        answer = _read_all(half)
        assert status_of(answer) == 408 and json.loads(head_and_body(answer)[1])["error"] is True
        assert kept.sock is not None and kept.sock.recv(1024) == b""  # the kept-alive connection, idle as long, too
    finally:
        idle.close()
        half.close()
        kept.close()


def test_a_request_sent_a_byte_at_a_time_is_cut_at_the_head_timeout(endpoint: ServedEndpoint) -> None:
    """Each byte comes before a per-read timeout would fire; the head's deadline still ends it."""
    interval = HEAD_SECONDS / 10
    with socket.create_connection(endpoint.address, timeout=CLOSE_WITHIN) as s:
        request = b"GET /metrics HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200
        sent = 0
        for byte in request:  # 20 head timeouts' worth of bytes: the server must close long before the last
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            if _readable(s, interval):  # the server answered or closed: stop; else the next byte after the interval
                break
        answer = _read_all(s)
    assert sent < len(request) and status_of(answer) in (408, None), (sent, answer[:200])


def test_tls_spoken_to_the_plain_endpoint_gets_a_400_at_once(endpoint: ServedEndpoint) -> None:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # a TLS handshake record
    answer = endpoint.exchange(hello)
    assert status_of(answer) in (400, None), answer[:200]
    # and a real TLS client fails its handshake, it does not hang
    with socket.create_connection(endpoint.address, timeout=CLOSE_WITHIN) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_head_is_get_without_the_body(endpoint: ServedEndpoint) -> None:
    connection = http.client.HTTPConnection(*endpoint.address, timeout=10)
    try:
        for path, content_type in (("/metrics", "text/plain; version=0.0.4"), ("/v3/kafka/eu/consumer", "application/json"),
                                   ("/nowhere", "application/json")):
            connection.request("HEAD", path)
            head = connection.getresponse()
            assert head.read() == b"" and head.getheader("Content-Type").startswith(content_type)
            connection.request("GET", path)  # the same connection: HEAD left no body on it
            full = connection.getresponse()
            body = full.read()
            assert head.status == full.status and head.getheader("Content-Type") == full.getheader("Content-Type")
            if path != "/metrics":  # the collector's health in /metrics changes between two scrapes
                assert int(head.getheader("Content-Length")) == len(body)
        connection.request("HEAD", "/metrics", headers={"Accept-Encoding": "gzip"})
        compressed = connection.getresponse()
        assert (compressed.status, compressed.getheader("Content-Encoding"), compressed.read()) == (200, "gzip", b"")
        assert int(compressed.getheader("Content-Length")) > 0
    finally:
        connection.close()
    raw = endpoint.exchange(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    headers, body = head_and_body(raw)
    assert status_of(raw) == 200 and int(headers["content-length"]) > 0 and body == b""


@pytest.mark.parametrize("method", ["OPTIONS", "BREW", "POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "PROPFIND", "get"])
def test_every_other_method_answers_405_allowing_get_and_head(endpoint: ServedEndpoint, method: str) -> None:
    target = "localhost:9308" if method == "CONNECT" else ("*" if method == "OPTIONS" else "/metrics")
    answer = endpoint.exchange(f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    headers, body = head_and_body(answer)
    assert status_of(answer) == 405 and headers["allow"] == "GET, HEAD", answer[:300]
    assert headers["content-type"] == "application/json" and json.loads(body)["error"] is True


def test_a_405_with_a_body_keeps_the_connection_and_its_answer(endpoint: ServedEndpoint) -> None:
    connection = http.client.HTTPConnection(*endpoint.address, timeout=10)
    try:
        connection.request("POST", "/v3/kafka", body=b'{"a": 1}')
        refused = connection.getresponse()
        assert (refused.status, refused.getheader("Allow"), json.loads(refused.read())["error"]) == (405, "GET, HEAD", True)
        connection.request("GET", "/healthz")  # the body was read: the next request is not taken for it
        assert connection.getresponse().read() == b"ok\n"
    finally:
        connection.close()


MALFORMED = [
    b"GET /\r\n\r\n",  # HTTP/0.9
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GET  /metrics HTTP/1.1\r\n\r\n",
    b"GET /metrics\tHTTP/1.1\r\n\r\n",
    b"GET /met rics HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.10\r\n\r\n",
    b"GET /metrics FTP/1.1\r\n\r\n",
    b"G(T /metrics HTTP/1.1\r\n\r\n",
    b"GET /me\x00trics HTTP/1.1\r\n\r\n",
    b" GET /metrics HTTP/1.1\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
    b"GET /metrics HTTP/1.1",  # cut short by the client's close
    b"GET http://[/ HTTP/1.1\r\n\r\n",  # an authority urlsplit cannot read
    b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n folded: first\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_requests_answer_400_as_one_json_line(endpoint: ServedEndpoint, request_bytes: bytes) -> None:
    answer = endpoint.exchange(request_bytes)
    headers, body = head_and_body(answer)
    assert status_of(answer) == 400, answer[:300]
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert b"\n" not in body and json.loads(body)["error"] is True


def test_over_long_lines_and_heads_answer_414_and_431(endpoint: ServedEndpoint) -> None:
    assert status_of(endpoint.exchange(b"GET /" + b"a" * REQUEST_LINE_BYTES + b" HTTP/1.1\r\n\r\n")) == 414
    assert status_of(endpoint.exchange(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n")) == 431
    many = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 100) for i in range(HEAD_BYTES // 100))
    assert status_of(endpoint.exchange(b"GET /metrics HTTP/1.1\r\n" + many + b"\r\n")) == 431
    assert status_of(endpoint.exchange(b"\r\n" * (HEAD_BYTES // 2 + 1))) in (431, None)  # blank lines are not free
    assert get(endpoint, "/healthz").status == 200


def test_a_kept_alive_connection_is_closed_after_its_last_request(endpoint: ServedEndpoint) -> None:
    connection = http.client.HTTPConnection(*endpoint.address, timeout=10)
    try:
        closes = []
        for _ in range(REQUESTS_PER_CONNECTION):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert response.read() == b"ok\n"
            closes.append(response.getheader("Connection"))
        assert closes == [None] * (REQUESTS_PER_CONNECTION - 1) + ["close"]
    finally:
        connection.close()


def test_more_idle_clients_than_handlers_make_the_next_one_wait_never_refused(endpoint: ServedEndpoint) -> None:
    """Every handler held by an idle socket: a scrape queues in the backlog and is answered once they time out."""
    idle = [socket.create_connection(endpoint.address, timeout=CLOSE_WITHIN) for _ in range(HANDLERS + 8)]
    try:
        response = get(endpoint, "/metrics")
        assert response.status == 200
    finally:
        for s in idle:
            s.close()


def test_an_address_this_host_does_not_have_is_bad_input_a_taken_port_is_not() -> None:
    exporter = published_exporter(1)
    for host in ("192.0.2.1", "no-such-host.invalid"):  # TEST-NET-1 (RFC 5737): never a local address
        with pytest.raises(BadInput, match="--listen") as refused:
            MonitoringServer(exporter, host, 0)
        assert refused.value.exit_code == 2 and "\n" not in str(refused.value)
    taken = MonitoringServer(exporter, "127.0.0.1", 0).start()
    try:
        with pytest.raises(LoomError, match="cannot listen on") as failed:
            MonitoringServer(exporter, "127.0.0.1", int(taken.address.rpartition(":")[2]))
        assert failed.value.exit_code == 1 and not isinstance(failed.value, BadInput)
    finally:
        taken.close()


def test_the_cli_refuses_an_address_this_host_does_not_have_in_one_line_with_exit_2() -> None:
    """Before any database or broker is reached: the addresses here lead nowhere, and are never tried."""
    argv = [sys.executable, "-m", "loomctl", "--database-url", "postgresql://nobody@127.0.0.1:1/none", "--bootstrap-servers",
            "127.0.0.1:1", "lag", "collect", "--once", "--listen", "192.0.2.1:9308"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=clean_env(NO_COLOR="1"))
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: --listen 192.0.2.1:9308: not an address of this host"), line


def _readable(s: socket.socket, within: float) -> bool:
    """The server answered or closed this socket within ``within`` seconds: something, or the end, is there to read."""
    return bool(select.select([s], [], [], within)[0])


def _read_all(s: socket.socket) -> bytes:
    received = bytearray()
    try:
        while chunk := s.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return bytes(received)


def test_the_endpoint_still_answers_after_all_of_the_above(endpoint: ServedEndpoint) -> None:
    assert wait_for("a scrape", lambda: get(endpoint, "/metrics").status == 200, timeout=CLOSE_WITHIN)
