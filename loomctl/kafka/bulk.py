"""The two answers that grow with every partition, read straight into the mappings a snapshot needs: OffsetFetch v8
(every committed offset of a batch of groups) and ListOffsets v6-v7 (the log start or end of every partition a
broker leads).

kafka-python decodes an answer generically, an object per partition entry, which loomctl then walked into its own
mappings: at 2,000 groups x 20 partitions that was most of the batched fetch (about 5 us an entry, 0.27 s of
OffsetFetch where this takes 0.11 s). Here the bytes go straight into one mapping, with the layouts of Kafka's
``OffsetFetchResponse.json`` and ``ListOffsetsResponse.json`` (flexible versions: compact strings and arrays, tagged
fields):

    OffsetFetch v8: ThrottleTimeMs int32, Groups [GroupId, Topics [Name, Partitions [PartitionIndex int32,
    CommittedOffset int64, CommittedLeaderEpoch int32, Metadata nullable string, ErrorCode int16]], ErrorCode int16]

    ListOffsets v6-v11: ThrottleTimeMs int32, Topics [Name, Partitions [PartitionIndex int32, ErrorCode int16,
    Timestamp int64, Offset int64, LeaderEpoch int32]]

kafka-python still owns the connection, the request header, SASL and TLS: :class:`Asked` gives it the body loomctl wrote and
names the reader of the answer. An answer that does not parse is a ValueError, which kafka-python's connection
turns into a protocol error of that request.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat
from sys import intern
from typing import Any

from kafka.protocol.consumer import ListOffsetsRequest, ListOffsetsResponse, OffsetFetchRequest, OffsetFetchResponse

from loomctl.kafka.clients import TopicPartition

OFFSET_FETCH_VERSION = 8
"""The version asked for and read: the first to take many groups (KIP-709), with topics still by name."""
LIST_OFFSETS_VERSIONS = (6, 7)
"""The versions read (flexible, by topic name; v8 to v11 answer in the same layout but add what loomctl never asks)."""
LATEST, EARLIEST = -1, -2
"""ListOffsets' timestamps for the log end and the log start."""

_COMMITTED = struct.Struct(">iqi")  # PartitionIndex, CommittedOffset, CommittedLeaderEpoch
_LISTED = struct.Struct(">ihqqi")  # PartitionIndex, ErrorCode, Timestamp, Offset, LeaderEpoch
_INT16 = struct.Struct(">h")
_RUN = 32
_RUNS = [struct.Struct(">" + "iqiBhB" * n) for n in range(_RUN + 1)]
"""n committed entries of the common layout: PartitionIndex, CommittedOffset, CommittedLeaderEpoch, Metadata (one byte:
null or empty), ErrorCode, no tagged fields (a byte of 0): 20 bytes each."""
_HEAD = struct.Struct(">ib")  # ListOffsets' ReplicaId, IsolationLevel
_ASKED = struct.Struct(">iiqB")  # PartitionIndex, CurrentLeaderEpoch, Timestamp, no tagged fields
_INT32 = struct.Struct(">i")


@dataclass(slots=True)
class FetchedGroup:
    """One group's answer: its error code, committed offset by partition (None where none is stored or the
    partition has an error) and the error code of each partition that has one."""

    group_id: str
    error_code: int
    offsets: dict[TopicPartition, int | None]
    partition_errors: dict[TopicPartition, int]


@dataclass(slots=True)
class FetchedOffsets:
    """What the broker answered, as kafka-python hands it back (it reads ``throttle_time_ms`` of any answer)."""

    throttle_time_ms: int
    groups: list[FetchedGroup]


@dataclass(slots=True)
class ListedOffsets:
    """A ListOffsets answer: the offset of each partition that has one, the error code of each that has an error."""

    throttle_time_ms: int
    offsets: dict[TopicPartition, int]
    errors: dict[TopicPartition, int]


# ---------------------------------------------------------------------------------------------------------- requests


def offset_fetch(group_ids: list[str]) -> Asked:
    """One OffsetFetch v8 for all of ``group_ids`` (every partition of each), answered as :class:`FetchedOffsets`."""
    inner = OffsetFetchRequest(
        groups=[], require_stable=False, min_version=OFFSET_FETCH_VERSION, max_version=OFFSET_FETCH_VERSION
    )
    inner.API_VERSION = OFFSET_FETCH_VERSION
    body = _offset_fetch_body(group_ids)
    return Asked(inner, OffsetFetchResponse, OFFSET_FETCH_VERSION, decode_offset_fetch, f"{len(group_ids)} groups", body)


def list_offsets(partitions: Iterable[TopicPartition], timestamp: int, version: int) -> Asked:
    """One ListOffsets (read uncommitted, as Kafka's tools ask) of ``timestamp`` (:data:`LATEST`, :data:`EARLIEST`)
    for every partition, which one broker must lead; answered as :class:`ListedOffsets`."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    if version not in LIST_OFFSETS_VERSIONS:
        raise ValueError(f"ListOffsets v{version}: loomctl writes v{LIST_OFFSETS_VERSIONS[0]}-v{LIST_OFFSETS_VERSIONS[-1]}")
    inner = ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=[], min_version=version, max_version=version)
    inner.API_VERSION = version
    count = sum(len(ps) for ps in by_topic.values())
    body = _list_offsets_body(by_topic, timestamp)
    return Asked(inner, ListOffsetsResponse, version, decode_list_offsets, f"{count} partitions at {timestamp}", body)


# The two requests that grow with the groups or the partitions are written here, byte for byte as kafka-python would
# (tests/kafka/test_wire_decoding.py holds them equal): kafka-python builds an object per partition and encodes it
# generically, 7 us a partition (70 ms of the 0.1 s that the log offsets of 5,000 partitions took); this takes under 1.


def _offset_fetch_body(group_ids: list[str]) -> bytes:
    """OffsetFetch v8: Groups [GroupId compact string, Topics null (every topic), no tags], RequireStable false, no
    tags."""
    out = [_varint(len(group_ids) + 1)]
    for group_id in group_ids:
        out.append(_compact_string(group_id))
        out.append(b"\x00\x00")  # Topics: null; the group's tagged fields: none
    out.append(b"\x00\x00")  # RequireStable: false; tagged fields: none
    return b"".join(out)


def _list_offsets_body(by_topic: dict[str, list[int]], timestamp: int) -> bytes:
    """ListOffsets v6-v7: ReplicaId -1, IsolationLevel 0, Topics [Name, Partitions [PartitionIndex, CurrentLeaderEpoch
    -1, Timestamp, no tags], no tags], no tags."""
    out = [_HEAD.pack(-1, 0), _varint(len(by_topic) + 1)]
    for topic, partitions in by_topic.items():
        out.append(_compact_string(topic))
        out.append(_varint(len(partitions) + 1))
        out.append(b"".join([_ASKED.pack(p, -1, timestamp, 0) for p in partitions]))
        out.append(b"\x00")
    out.append(b"\x00")
    return b"".join(out)


def _compact_string(text: str) -> bytes:
    raw = text.encode()
    return _varint(len(raw) + 1) + raw


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Asked:
    """A request whose body is written by loomctl and whose answer is read by ``decode``: kafka-python's connection
    asks it for its version, its header (kafka-python's own, from ``inner``) and its bytes, and the header for the
    answer's type."""

    __slots__ = ("_body", "_inner", "_reader", "_what", "header")

    def __init__(self, inner: Any, response: Any, version: int, decode: Callable[[bytes], Any], what: str, body: bytes) -> None:
        self._inner = inner
        self._reader = _reader(response, version, decode)
        self._what = what
        self._body = body
        self.header: _Header | None = None

    @property
    def API_VERSION(self) -> int:  # noqa: N802  (kafka-python's name)
        return int(self._inner.API_VERSION)

    def with_header(self, correlation_id: int = 0, client_id: str = "kafka-python") -> None:
        self._inner.with_header(correlation_id=correlation_id, client_id=client_id)
        self.header = _Header(self._inner.header, self._reader)

    def encode(self, version: int | None = None, header: bool = False, framed: bool = False) -> bytes:
        if version is not None and version != self.API_VERSION:
            raise ValueError(f"{self!r} is written for v{self.API_VERSION} only, not v{version}")
        payload = self._body
        if header:
            if self.header is None:
                raise ValueError("No header found")
            payload = bytes(self._inner.encode_header(flexible=True)) + payload  # both versions are flexible
        return _INT32.pack(len(payload)) + payload if framed else payload

    def expect_response(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"{type(self._inner).__name__.split('_')[0]}(v{self.API_VERSION}, {self._what})"


class _Header:
    """The request's own header, answering the request's reader for the answer's type."""

    __slots__ = ("_inner", "_reader")

    def __init__(self, inner: Any, reader: type) -> None:
        self._inner = inner
        self._reader = reader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_response_class(self) -> type:
        return self._reader


def _reader(response: Any, version: int, decode: Callable[[bytes], Any]) -> type:
    """The type kafka-python's parser calls: the header as kafka-python reads it, the body by ``decode``."""

    class Reader:
        API_KEY = response.API_KEY

        @staticmethod
        def parse_header(data: Any) -> Any:
            return response[version].parse_header(data)

        @staticmethod
        def decode(data: Any) -> Any:
            return decode(data.read() if hasattr(data, "read") else bytes(data))

    return Reader


# ---------------------------------------------------------------------------------------------------------- answers


def decode_offset_fetch(data: bytes) -> FetchedOffsets:
    """An OffsetFetch v8 answer's body (after its header); ValueError when it is not one."""
    return _whole(data, _offset_fetch, f"OffsetFetch v{OFFSET_FETCH_VERSION}")


def decode_list_offsets(data: bytes) -> ListedOffsets:
    """A ListOffsets v6-v11 answer's body (after its header); ValueError when it is not one."""
    return _whole(data, _list_offsets, "ListOffsets v6+")


def _whole(data: bytes, read: Callable[[bytes], tuple[Any, int]], what: str) -> Any:
    try:
        answer, end = read(data)
    except (IndexError, struct.error, ValueError) as exc:  # a UnicodeDecodeError is a ValueError too
        raise ValueError(f"an unreadable {what} answer: {exc}") from None
    if end != len(data):
        raise ValueError(f"an unreadable {what} answer: {len(data) - end} bytes left over")
    return answer


def _offset_fetch(buf: bytes) -> tuple[FetchedOffsets, int]:
    entry = _COMMITTED.unpack_from
    int16 = _INT16.unpack_from
    names: dict[bytes, str] = {}
    size = len(buf)
    (throttle,) = _INT32.unpack_from(buf, 0)
    count, pos = _uvarint(buf, 4)
    groups: list[FetchedGroup] = []
    for _ in range(count - 1):
        group_id, pos = _string(buf, pos)
        offsets: dict[TopicPartition, int | None] = {}
        errors: dict[TopicPartition, int] = {}
        topics, pos = _uvarint(buf, pos)
        for _ in range(topics - 1):
            topic, pos = _name(buf, pos, names)
            partitions, pos = _uvarint(buf, pos)
            left = partitions - 1
            runs = True
            while left > 0:
                # the common run: entries of one layout (metadata null or empty, no tagged field, no error), read
                # :data:`_RUN` at a time by one unpack; each entry is checked as read, so a run is taken only where
                # that layout is the answer's. Once a run is not, the topic's other entries are read one by one.
                n = left if left < _RUN else _RUN
                run = _RUNS[n]
                if runs and pos + run.size <= size:
                    v = run.unpack_from(buf, pos)
                    if max(v[3::6]) <= 1 and not any(v[5::6]) and not any(v[4::6]):
                        committed = v[1::6]
                        keys = zip(repeat(topic, n), v[0::6], strict=False)  # repeat() is endless
                        if min(committed) >= 0:
                            offsets.update(zip(keys, committed, strict=True))
                        else:
                            offsets.update(zip(keys, [c if c >= 0 else None for c in committed], strict=True))
                        pos += run.size
                        left -= n
                        continue
                runs = False
                left -= 1
                partition, committed, _epoch = entry(buf, pos)
                pos += 16
                metadata = buf[pos]  # compact nullable string: length + 1, 0 for null; one byte when under 127
                pos = pos + metadata if metadata < 0x80 and metadata else _skip_string(buf, pos)
                (code,) = int16(buf, pos)
                pos = _skip_tags(buf, pos + 2) if buf[pos + 2] else pos + 3  # no tagged field in Kafka's schema today
                if code:
                    offsets[(topic, partition)] = None
                    errors[(topic, partition)] = code
                else:
                    offsets[(topic, partition)] = committed if committed >= 0 else None
            pos = _skip_tags(buf, pos)
        (code,) = int16(buf, pos)
        pos = _skip_tags(buf, pos + 2)
        groups.append(FetchedGroup(group_id, code, offsets, errors))
    return FetchedOffsets(throttle, groups), _skip_tags(buf, pos)


def _list_offsets(buf: bytes) -> tuple[ListedOffsets, int]:
    entry = _LISTED.unpack_from
    names: dict[bytes, str] = {}
    offsets: dict[TopicPartition, int] = {}
    errors: dict[TopicPartition, int] = {}
    (throttle,) = _INT32.unpack_from(buf, 0)
    topics, pos = _uvarint(buf, 4)
    for _ in range(topics - 1):
        topic, pos = _name(buf, pos, names)
        partitions, pos = _uvarint(buf, pos)
        for _ in range(partitions - 1):
            partition, code, _timestamp, offset, _epoch = entry(buf, pos)
            pos = _skip_tags(buf, pos + 26) if buf[pos + 26] else pos + 27
            if code:
                errors[(topic, partition)] = code
            else:
                offsets[(topic, partition)] = offset
        pos = _skip_tags(buf, pos)
    return ListedOffsets(throttle, offsets, errors), _skip_tags(buf, pos)


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
        shift += 7
        if shift > 28:
            raise ValueError("a varint longer than 5 bytes")


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    size, pos = _uvarint(buf, pos)
    if size == 0:
        raise ValueError("a null string where one is required")
    end = pos + size - 1
    if end > len(buf):
        raise ValueError("a string past the end")
    return buf[pos:end].decode(), end


def _name(buf: bytes, pos: int, names: dict[bytes, str]) -> tuple[str, int]:
    """A topic name, one interned string per name however often the answer repeats it."""
    size, pos = _uvarint(buf, pos)
    end = pos + size - 1
    if size == 0 or end > len(buf):
        raise ValueError("a topic name that is null or past the end")
    raw = buf[pos:end]
    name = names.get(raw)
    if name is None:
        name = names[raw] = intern(raw.decode())
    return name, end


def _skip_string(buf: bytes, pos: int) -> int:
    size, pos = _uvarint(buf, pos)
    return pos + max(size - 1, 0)


def _skip_tags(buf: bytes, pos: int) -> int:
    count, pos = _uvarint(buf, pos)
    for _ in range(count):
        _, pos = _uvarint(buf, pos)
        size, pos = _uvarint(buf, pos)
        pos += size
    if pos > len(buf):
        raise ValueError("tagged fields past the end")
    return pos
