"""The collector's HTTP endpoint fed arbitrary bytes, and arbitrary request lines, paths, headers and bodies.

What must hold for any input: the server answers with one of the statuses it is allowed to use, or closes; it
never answers 500 (its count of failures stays 0), never writes on stderr, and still serves /metrics afterwards.
Each case is a connection of its own whose writing side the client closes, so a request cut short ends at once
instead of waiting for the head timeout. The default profile runs 1,500 cases in well under a minute;
``LOOM_FUZZ=long`` twenty times as many with fresh random seeds, ``LOOM_FUZZ_SCALE=0.1`` a tenth.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from http_served import CLUSTER, GROUPS, ServedEndpoint, start_endpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LONG = os.environ.get("LOOM_FUZZ") == "long"
SCALE = 20 if LONG else float(os.environ.get("LOOM_FUZZ_SCALE", "1"))
EXAMPLES = {"bytes": 500, "requests": 1000}
"""Cases per suite in the default profile: 1,500 in all."""
ALLOWED = {200, 204, 301, 304, 400, 404, 405, 408, 414, 431, 503}


def fuzz_settings(suite: str) -> Any:
    return settings(
        max_examples=max(1, int(EXAMPLES[suite] * SCALE)), deadline=None, database=None, derandomize=not LONG, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEndpoint]:
    served = start_endpoint(tmp_path_factory.mktemp("http-fuzz") / "stderr.log", partitions=20)
    try:
        yield served
    finally:
        counts = served.stop()
        assert counts["failures"] == 0 and served.errors() == "", (counts, served.errors())


def check(endpoint: ServedEndpoint, data: bytes) -> None:
    answer = endpoint.exchange(data)
    if answer:  # else: closed without a word, which is allowed
        line = answer.split(b"\r\n", 1)[0]
        assert line.startswith(b"HTTP/1.1 ") and int(line[9:12]) in ALLOWED, (data[:300], answer[:300])
    assert endpoint.errors() == "", (data[:300], endpoint.errors())


PATHS = [
    "/metrics", "/healthz", "/livez", "/readyz", "/burrow/admin", "/burrow/admin/ready", "/v3/kafka", f"/v3/kafka/{CLUSTER}",
    f"/v3/kafka/{CLUSTER}/topic", f"/v3/kafka/{CLUSTER}/consumer", f"/v3/kafka/{CLUSTER}/topic/{GROUPS[0]}-t",
    f"/v3/kafka/{CLUSTER}/topic/{GROUPS[0]}-t/consumers", f"/v3/kafka/{CLUSTER}/consumer/{GROUPS[0]}",
    f"/v3/kafka/{CLUSTER}/consumer/{GROUPS[0]}/status", f"/v3/kafka/{CLUSTER}/consumer/{GROUPS[1]}/lag",
    "/v3/kafka/other/consumer/x/lag", "*", "http://host:1/metrics", "http://[", "//[", "/%ff%00%zz", "/metrics?x=1#f", "/../../etc",
]
HEADER_NAMES = ["Host", "Accept-Encoding", "Connection", "Content-Length", "Transfer-Encoding", "Expect", "Upgrade",
                "Content-Type", "X-Forwarded-For", "Authorization"]
HEADER_VALUES = ["gzip", "gzip, deflate", "close", "keep-alive", "0", "5", "-1", "99999999999999999999", "chunked",
                 "100-continue", "h2c", ""]

texts = st.text(max_size=60).map(lambda t: t.encode("utf-8"))
methods = st.one_of(st.sampled_from([b"GET", b"HEAD", b"OPTIONS", b"POST", b"PUT", b"DELETE", b"BREW", b"PRI", b"get", b""]),
                    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=10).map(str.encode))
targets = st.one_of(st.sampled_from(PATHS).map(str.encode), texts.map(lambda t: b"/" + t), st.binary(max_size=80),
                    st.sampled_from(PATHS).map(str.encode).flatmap(lambda p: texts.map(lambda t: p + b"/" + t)))
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/0.9", b"http/1.1", b"", b"HTTP/1.1 HTTP/1.1"])
separators = st.sampled_from([b" ", b"  ", b"\t", b""])
endings = st.sampled_from([b"\r\n", b"\n", b"\r", b""])
headers = st.lists(st.tuples(st.one_of(st.sampled_from(HEADER_NAMES).map(str.encode), texts, st.binary(max_size=20)),
                             st.sampled_from([b": ", b":", b" : ", b""]),
                             st.one_of(st.sampled_from(HEADER_VALUES).map(str.encode), texts, st.binary(max_size=40))),
                   max_size=6)


@st.composite
def requests(draw: Any) -> bytes:
    ending = draw(endings)
    line = draw(methods) + draw(separators) + draw(targets) + draw(separators) + draw(versions)
    head = b"".join(name + colon + value + draw(endings) for name, colon, value in draw(headers))
    return line + ending + head + draw(st.sampled_from([b"\r\n", b"\n", b""])) + draw(st.binary(max_size=30))


@fuzz_settings("bytes")
@given(data=st.one_of(st.binary(max_size=3000), st.binary(max_size=40).map(lambda b: b"GET /metrics HTTP/1.1\r\n" + b)))
def test_any_bytes_get_an_allowed_status_or_a_close(endpoint: ServedEndpoint, data: bytes) -> None:
    check(endpoint, data)


@fuzz_settings("requests")
@given(data=st.one_of(requests(), st.lists(requests(), min_size=2, max_size=3).map(b"".join)))
def test_any_request_line_path_and_headers_get_an_allowed_status_or_a_close(endpoint: ServedEndpoint, data: bytes) -> None:
    check(endpoint, data)


def test_the_endpoint_still_serves_metrics_afterwards(endpoint: ServedEndpoint) -> None:
    answer = endpoint.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and b"loomctl_collector_up" in answer
