"""The answers loomctl reads from the wire itself, held to kafka-python's own codecs as the oracle: OffsetFetch v8
and ListOffsets v6-v7 (:mod:`loomctl.kafka.bulk`: every committed offset of a batch of groups, every log offset a
broker leads) and a classic consumer's assignment (:func:`loomctl.kafka.protocol.assigned_partitions`). Bytes that
are not such an answer are a ValueError, or no partitions, never another exception."""

from __future__ import annotations

import random

import pytest
from kafka.protocol.consumer import ListOffsetsResponse, OffsetFetchResponse
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment

from loomctl.kafka import bulk
from loomctl.kafka.protocol import assigned_partitions

Group = OffsetFetchResponse.OffsetFetchResponseGroup
Topic = Group.OffsetFetchResponseTopics
Partition = Topic.OffsetFetchResponsePartitions


def _response(rng: random.Random, groups: int) -> OffsetFetchResponse:
    made = []
    for g in range(groups):
        topics = []
        for t in range(rng.randrange(0, 4)):
            partitions = [
                Partition(
                    partition_index=p,
                    committed_offset=rng.choice([-1, 0, rng.randrange(1, 2**40)]),
                    committed_leader_epoch=rng.choice([-1, 7]),
                    # a metadata string of each length class: null, empty, one byte of varint, two bytes of varint
                    metadata=rng.choice([None, "", "m", "x" * rng.randrange(126, 400)]),
                    error_code=rng.choice([0, 0, 0, 0, 79]),  # 79: UNSTABLE_OFFSET_COMMIT
                )
                for p in rng.sample(range(64), rng.randrange(0, 6))
            ]
            topics.append(Topic(name=f"topic-{g % 3}-{t}-é", partitions=partitions))
        made.append(Group(group_id=f"group-{g}-ü" * rng.randrange(1, 3), error_code=rng.choice([0, 0, 0, 30]), topics=topics))
    return OffsetFetchResponse(version=8, throttle_time_ms=rng.randrange(0, 100), groups=made)


def _expected(response: OffsetFetchResponse) -> tuple[int, list[tuple[str, int, dict, dict]]]:
    """What kafka-python reads from the bytes, in loomctl's form."""
    groups = []
    for g in response.groups:
        offsets, errors = {}, {}
        for t in g.topics:
            for p in t.partitions:
                key = (t.name, p.partition_index)
                offsets[key] = None if p.error_code or p.committed_offset < 0 else p.committed_offset
                if p.error_code:
                    errors[key] = p.error_code
        groups.append((g.group_id, g.error_code, offsets, errors))
    return response.throttle_time_ms, groups


@pytest.mark.parametrize("seed", range(25))
def test_offset_fetch_v8_reads_what_kafka_python_reads(seed: int) -> None:
    rng = random.Random(seed)
    data = bytes(_response(rng, rng.randrange(0, 30)).encode())
    mine = bulk.decode_offset_fetch(data)
    theirs = _expected(OffsetFetchResponse[8].decode(data))
    assert (mine.throttle_time_ms, [(g.group_id, g.error_code, g.offsets, g.partition_errors) for g in mine.groups]) == theirs


@pytest.mark.parametrize("seed", range(8))
def test_runs_of_the_common_layout_read_as_kafka_python_reads_them(seed: int) -> None:
    """Most entries have no metadata and no error: they are read in runs. Topics of up to 100 partitions (runs of 32
    and what is left), an entry of another layout anywhere in a topic, and a partition with no commit (-1)."""
    rng = random.Random(seed)
    made = []
    for g in range(rng.randrange(1, 40)):
        topics = []
        for t in range(rng.randrange(1, 4)):
            partitions = [
                Partition(partition_index=p, committed_offset=rng.choice([-1, 0, rng.randrange(1, 2**62)]) if rng.random() < 0.2 else rng.randrange(0, 2**62),
                          committed_leader_epoch=rng.choice([-1, 3]), metadata=rng.choice([None, ""]), error_code=0)
                for p in rng.sample(range(200), rng.randrange(0, 100))
            ]  # fmt: skip
            if partitions and rng.random() < 0.5:  # one entry of another layout: metadata, or an error
                odd = rng.randrange(len(partitions))
                partitions[odd].metadata = rng.choice(["m", "x" * 300, None])
                partitions[odd].error_code = rng.choice([0, 79])
            topics.append(Topic(name=f"t{t}", partitions=partitions))
        made.append(Group(group_id=f"g{g}", error_code=0, topics=topics))
    data = bytes(OffsetFetchResponse(version=8, throttle_time_ms=3, groups=made).encode())
    mine = bulk.decode_offset_fetch(data)
    theirs = _expected(OffsetFetchResponse[8].decode(data))
    assert (mine.throttle_time_ms, [(g.group_id, g.error_code, g.offsets, g.partition_errors) for g in mine.groups]) == theirs


def test_every_cut_of_an_answer_and_any_junk_is_a_value_error() -> None:
    rng = random.Random(5)
    data = bytes(_response(rng, 6).encode())
    for end in range(len(data)):
        with pytest.raises(ValueError, match="an unreadable OffsetFetch v8 answer"):
            bulk.decode_offset_fetch(data[:end])
    with pytest.raises(ValueError, match="left over"):
        bulk.decode_offset_fetch(data + b"\x00")
    for _ in range(2000):
        junk = rng.randbytes(rng.randrange(0, 64))
        try:
            bulk.decode_offset_fetch(junk)
        except ValueError:
            pass


def test_the_request_names_its_own_reader_so_only_this_answer_is_read_by_it() -> None:
    request = bulk.offset_fetch(["a", "b"])
    assert request.API_VERSION == 8 and request.expect_response()
    request.with_header(correlation_id=42, client_id="loomctl")
    assert request.header is not None and request.header.correlation_id == 42
    assert request.header.get_response_class().decode is not None
    assert bytes(request.encode(framed=True, header=True))[4:8] == b"\x00\x09\x00\x08"  # OffsetFetch's key, v8
    assert repr(request) == "OffsetFetchRequest(v8, 2 groups)"
    listed = bulk.list_offsets([("t", 0), ("t", 1), ("u", 0)], bulk.EARLIEST, 7)
    listed.with_header(correlation_id=43)
    assert bytes(listed.encode(framed=True, header=True))[4:8] == b"\x00\x02\x00\x07"  # ListOffsets' key, v7
    assert repr(listed) == "ListOffsetsRequest(v7, 3 partitions at -2)"
    assert listed.header.get_response_class() is not request.header.get_response_class()


@pytest.mark.parametrize("seed", range(12))
def test_the_requests_are_written_byte_for_byte_as_kafka_python_writes_them(seed: int) -> None:
    """loomctl writes the two requests that grow with the groups and the partitions itself: the same bytes as
    kafka-python's codec, names of every varint length and non-ASCII ones included."""
    from kafka.protocol.consumer import ListOffsetsRequest, OffsetFetchRequest

    rng = random.Random(seed)
    ids = [("g" * rng.randrange(0, 300)) + f"ü{i}" for i in range(rng.randrange(0, 300))]
    theirs = OffsetFetchRequest(groups=[OffsetFetchRequest.OffsetFetchRequestGroup(group_id=g, topics=None) for g in ids],
                                require_stable=False, min_version=8, max_version=8)
    theirs.API_VERSION = 8
    mine = bulk.offset_fetch(ids)
    for request in (theirs, mine):
        request.with_header(correlation_id=seed, client_id="loomctl")
    assert mine.encode(framed=True, header=True) == bytes(theirs.encode(framed=True, header=True))
    assert mine.encode() == bytes(theirs.encode())
    part = ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition
    for version in bulk.LIST_OFFSETS_VERSIONS:
        asked = [(f"t{rng.randrange(200)}-é" * rng.randrange(1, 40), rng.randrange(2**31)) for _ in range(rng.randrange(0, 400))]
        at = rng.choice([bulk.LATEST, bulk.EARLIEST])
        by_topic: dict[str, list[int]] = {}
        for topic, partition in asked:
            by_topic.setdefault(topic, []).append(partition)
        theirs = ListOffsetsRequest(
            replica_id=-1, isolation_level=0, min_version=version, max_version=version,
            topics=[ListOffsetsRequest.ListOffsetsTopic(name=t, partitions=[part(partition_index=p, current_leader_epoch=-1, timestamp=at) for p in ps])
                    for t, ps in by_topic.items()])  # fmt: skip
        theirs.API_VERSION = version
        mine = bulk.list_offsets(asked, at, version)
        for request in (theirs, mine):
            request.with_header(correlation_id=seed + 1)
        assert mine.encode(framed=True, header=True) == bytes(theirs.encode(framed=True, header=True))
    with pytest.raises(ValueError, match="v8"):
        bulk.list_offsets(asked, at, 8)  # a version it does not write is refused, not sent in another layout


Listed = ListOffsetsResponse.ListOffsetsTopicResponse
ListedPartition = Listed.ListOffsetsPartitionResponse


@pytest.mark.parametrize("version", [6, 7, 11])
def test_list_offsets_reads_what_kafka_python_reads(version: int) -> None:
    rng = random.Random(version)
    topics = [
        Listed(
            name=f"t{t}-é",
            partitions=[
                ListedPartition(partition_index=p, error_code=rng.choice([0, 0, 0, 6]), timestamp=-1,
                                offset=rng.choice([0, rng.randrange(1, 2**50)]), leader_epoch=rng.choice([-1, 4]))
                for p in rng.sample(range(200), rng.randrange(0, 150))
            ],
        )
        for t in range(rng.randrange(1, 20))
    ]
    data = bytes(ListOffsetsResponse(version=version, throttle_time_ms=9, topics=topics).encode())
    mine = bulk.decode_list_offsets(data)
    theirs = ListOffsetsResponse[version].decode(data)
    assert mine.throttle_time_ms == 9
    assert mine.offsets == {(t.name, p.partition_index): p.offset for t in theirs.topics for p in t.partitions if not p.error_code}
    assert mine.errors == {(t.name, p.partition_index): p.error_code for t in theirs.topics for p in t.partitions if p.error_code}
    for end in range(0, len(data), 7):
        with pytest.raises(ValueError, match="an unreadable ListOffsets v6"):
            bulk.decode_list_offsets(data[:end])


@pytest.mark.parametrize("version", [0, 1, 3])
def test_a_consumers_assignment_reads_as_kafka_python_writes_it(version: int) -> None:
    rng = random.Random(version)
    topics = {f"t{t}-ß": sorted(rng.sample(range(100), rng.randrange(1, 8))) for t in range(rng.randrange(1, 5))}
    data = ConsumerProtocolAssignment(
        version=version,
        assigned_partitions=[ConsumerProtocolAssignment.TopicPartition(topic=t, partitions=ps) for t, ps in topics.items()],
        user_data=rng.choice([None, b"", b"user data"]),
    ).encode(version=version)
    assert assigned_partitions(bytes(data)) == tuple(sorted((t, p) for t, ps in topics.items() for p in ps))
    assert assigned_partitions(memoryview(bytes(data))) == assigned_partitions(bytes(data))


def test_an_assignment_that_is_not_one_has_no_partitions() -> None:
    rng = random.Random(11)
    data = bytes(ConsumerProtocolAssignment(
        version=0, assigned_partitions=[ConsumerProtocolAssignment.TopicPartition(topic="t", partitions=[0, 1])], user_data=None
    ).encode(version=0))
    assert assigned_partitions(None) == assigned_partitions(b"") == ()
    for end in range(len(data) - 4):  # cut anywhere before the user data
        assert assigned_partitions(data[:end]) == ()
    for _ in range(2000):
        found = assigned_partitions(rng.randbytes(rng.randrange(0, 40)))
        assert isinstance(found, tuple)
    assert assigned_partitions(b"\x00\x00\x7f\xff\xff\xff") == ()  # two billion topics announced, none there


def test_an_answer_that_arrives_with_the_close_is_read_before_the_close() -> None:
    """A broker that refuses SASL credentials answers, then closes. When one read finds both, the answer comes first
    and the close at the next read (kafka-python alone dropped the answer: the refusal read as "socket disconnected")."""
    import socket

    from kafka.net.transport import KafkaTCPTransport

    from loomctl.kafka import protocol

    protocol._quiet_kafka_python()
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.sendall(b"the broker's answer")
    broker.close()
    transport = KafkaTCPTransport(None, ours)  # the event loop is not needed to read
    try:
        assert transport._sock_recv() == (b"the broker's answer", None)
        data, err = transport._sock_recv()
        assert data == b"" and "socket disconnected" in str(err)
    finally:
        ours.close()
