"""Batch validation with real clients: the fuzz campaign's reproducers, byte for byte, are
refused with Kafka's error codes and store nothing, and the partitions they aimed at stay
readable by kcat (librdkafka) and the Java client; partition creation is bounded and leaves
nothing behind when refused; a real producer's compression bomb is refused."""

import pytest

import kafkawire as kw
from pyclients import ck_create_topic, ck_produce, kcat

# Whole request frames (size prefix included) from the campaign that found the defects.
GZIP_GARBAGE = bytes.fromhex(
    "0000007100000009000000090002667a00000001000013880206667a2d673102000000004e000000000000000000000041"
    "ffffffff02d43bcb570001000000000000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff00000001"
    "0102030405060708090a0b0c0d0e0f10000000")
LYING_COUNT = bytes.fromhex(
    "0000006900000009000000010002667a00000001000013880205667a2d6f02000000004700000000000000000000003a"
    "ffffffff028e1d64a200007ffffffe0000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff7fffffff"
    "10000000026b027600000000")
HUGE_TOPIC = bytes.fromhex("0000002100130005000000050002667a0002046269677fffffff0001010100000075300000")

CORRUPT_MESSAGE, INVALID_TIMESTAMP, INVALID_RECORD, POLICY_VIOLATION = 2, 32, 87, 44


def log_append_time_lying_count() -> bytes:
    """LYING_COUNT (recordCount 0x7fffffff, lastOffsetDelta 0x7ffffffe, one real record) with
    the LogAppendTime timestamp type (attributes 0x0008) and a valid CRC: the one frame that
    aborted the release broker, which sized a list by the claimed record count."""
    start = LYING_COUNT.index(bytes.fromhex("00000000000000000000003affffffff02"))
    assert LYING_COUNT[start + 57:start + 61] == b"\x7f\xff\xff\xff", "recordCount"
    assert LYING_COUNT[start + 23:start + 27] == b"\x7f\xff\xff\xfe", "lastOffsetDelta"
    frame = LYING_COUNT[:start + 21] + b"\x00\x08" + LYING_COUNT[start + 23:]
    return kw.restamp_batch(frame, start)


def send_frame(bootstrap: str, frame: bytes) -> kw.Reader:
    """Sends one whole frame on a fresh connection; returns a reader past the response header
    (flexible: correlation id and tagged fields)."""
    conn = kw.Connection(bootstrap)
    try:
        conn.send(frame)
        body = conn.recv_frame()
    finally:
        conn.close()
    r = kw.Reader(body)
    r.int32()  # correlation id
    r.uvarint()  # tagged fields
    return r


def produce_v9_outcome(r: kw.Reader) -> tuple[int, str]:
    """(error code, error message) of the one partition a Produce v9 response answers."""
    assert r.uvarint() - 1 == 1, "one topic"
    r.compact_string()
    assert r.uvarint() - 1 == 1, "one partition"
    r.int32()  # index
    code = r.int16()
    r.int64(), r.int64(), r.int64()  # base offset, log append time, log start offset
    for _ in range(r.uvarint() - 1):  # record errors
        r.int32()
        r.compact_string()
        r.uvarint()
    return code, r.compact_string() or ""


def readable_by_real_clients(broker, java, topic: str, expected: list[str]) -> None:
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n")
    assert out.stdout.splitlines() == expected, out.stderr
    assert "ERROR" not in out.stderr, out.stderr
    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--max", str(len(expected)))
    assert [r["value"] for r in consumed.events("record")] == expected


# The cluster runs the first frame (CLUSTER PASS in conftest.py): a refused batch is never
# replicated; the others are more of the leader's validation.
SAME_VALIDATION = pytest.mark.same_on_cluster("the leader's batch validation; the cluster runs gzip-garbage, "
                                              "whose refusal leaves the replicated partition the same way")


@pytest.mark.parametrize("aimed_at,frame,code,reason", [
    ("fz-g1", GZIP_GARBAGE, CORRUPT_MESSAGE, "do not decode"),
    pytest.param("fz-o", LYING_COUNT, INVALID_RECORD, "declares 2147483647 records but holds 1",
                 marks=SAME_VALIDATION),
    pytest.param("fz-o", log_append_time_lying_count(), INVALID_TIMESTAMP, "LogAppendTime", marks=SAME_VALIDATION),
], ids=["gzip-garbage", "lying-count", "log-append-time-lying-count"])
def test_a_refused_batch_leaves_the_partition_readable_by_kcat_and_java(broker, java, topic, aimed_at, frame, code,
                                                                        reason):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    before = ck_produce(broker.bootstrap, topic, [{"value": b"before", "partition": 0}])
    assert before[0].error is None and before[0].offset == 0
    # The reproducer's batch byte for byte, in a Produce aimed at this test's topic, sent to
    # the partition's leader.
    frame = kw.retarget_produce_v9(frame, aimed_at, topic)
    got, message = produce_v9_outcome(send_frame(kw.leader_address(broker.bootstrap, topic, 0), frame))
    assert got == code, message
    assert reason in message
    after = ck_produce(broker.bootstrap, topic, [{"value": b"after", "partition": 0}])
    assert after[0].error is None and after[0].offset == 1, "nothing was stored in between"
    readable_by_real_clients(broker, java, topic, ["before", "after"])
    assert "produce refused" in broker.log_text(), "the refusal is logged"


def test_two_billion_partitions_are_refused_and_leave_no_directory(broker):
    got = send_frame(broker.bootstrap, HUGE_TOPIC)
    got.int32()  # throttle time
    assert got.uvarint() - 1 == 1
    assert got.compact_string() == "big"
    code = got.int16()  # v5 has no topic id
    message = got.compact_string() or ""
    assert code == POLICY_VIOLATION, message
    assert "max.partitions.per.request" in message
    assert not any(p.name.startswith("big-") for d in broker.data_dirs for p in d.iterdir())
    assert broker.alive()


def test_the_broker_budget_refuses_creation_and_keeps_serving(broker_factory):
    broker = broker_factory(max_broker_partitions=8)
    ck_create_topic(broker.bootstrap, "fits", partitions=6)
    with pytest.raises(Exception, match="max.broker.partitions"):
        ck_create_topic(broker.bootstrap, "over", partitions=3)
    assert not any(p.name.startswith("over-") for d in broker.data_dirs for p in d.iterdir())
    reports = ck_produce(broker.bootstrap, "fits", [{"value": b"still serving", "partition": 5}])
    assert reports[0].error is None


@pytest.mark.same_on_cluster('the leader refuses the batch before anything is written or replicated')
def test_a_real_producers_compression_bomb_is_refused_as_too_large(broker_factory, java):
    broker = broker_factory(max_uncompressed_batch_bytes=4 << 20)
    ck_create_topic(broker.bootstrap, "bombed", partitions=1)
    bomb = {"value": bytes(16 << 20), "partition": 0}
    reports = ck_produce(broker.bootstrap, "bombed", [bomb],
                         {"compression.type": "zstd", "message.max.bytes": 32 << 20, "message.timeout.ms": 15000})
    assert reports[0].error is not None and "MSG_SIZE_TOO_LARGE" in str(reports[0].error), reports[0].error
    fine = ck_produce(broker.bootstrap, "bombed", [{"value": b"small", "partition": 0}], {"compression.type": "zstd"})
    assert fine[0].error is None and fine[0].offset == 0
    readable_by_real_clients(broker, java, "bombed", ["small"])
