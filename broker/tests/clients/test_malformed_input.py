"""Garbage on the wire must cost the sender its connection at most: the broker logs, closes (or
answers with an error), and keeps serving every other client."""

import os
import random
import socket
import struct

import pytest

import kafkawire as kw
from pyclients import ck_consume, ck_create_topic, ck_produce

pytestmark = pytest.mark.same_on_cluster("frame and request parsing on one connection, decided by the broker "
                                         "that receives the bytes before anything is routed or replicated")


def send_raw(bootstrap: str, data: bytes, close_write: bool = False) -> kw.Connection:
    conn = kw.Connection(bootstrap)
    try:
        conn.send(data)
        if close_write:
            conn.sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return conn


def assert_serves_real_clients(broker, topic: str, tag: str) -> None:
    assert broker.alive(), f"broker died ({tag})"
    reports = ck_produce(broker.bootstrap, topic, [{"key": tag.encode(), "value": f"after {tag}".encode(), "partition": 0}],
                         {"message.timeout.ms": 15000})
    assert reports[0].error is None, f"produce after {tag}: {reports[0].error}"
    got = ck_consume(broker.bootstrap, topic, [0], expected=1, offset=reports[0].offset)
    assert got[0].value == f"after {tag}".encode()


def test_the_broker_survives_malformed_frames_and_keeps_serving(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    # A well-behaved connection opened before the abuse must keep working through it.
    bystander = kw.Connection(broker.bootstrap)
    assert kw.parse_api_versions_v0(bystander.request(kw.api_versions_request(0, 1))).error_code == 0

    rng = random.Random(1234)
    garbage = bytes(rng.getrandbits(8) for _ in range(4096))
    header = kw.request_header(kw.API_API_VERSIONS, 0, 9, "x", flexible=False)
    attacks = {
        "random garbage": garbage,
        "printable garbage": b"GET / HTTP/1.1\r\nHost: kafka\r\n\r\n" * 20,
        "truncated frame": kw.int32(200) + header + b"\x00" * 10,
        "truncated length prefix": b"\x00\x00",
        "2 GB length prefix": kw.int32(0x7FFFFFFF) + header + os.urandom(64),
        "negative length": kw.int32(-5) + header,
        "zero length": kw.int32(0),
        "header shorter than declared": kw.frame(b"\x00\x12"),
        "unknown api key": kw.frame(kw.request_header(32000, 0, 5, "x", flexible=False) + b"\x00" * 16),
        "known key absurd version": kw.frame(kw.request_header(kw.API_METADATA, 3000, 6, "x", flexible=False)),
        "metadata with lying array length": kw.frame(kw.request_header(kw.API_METADATA, 4, 7, "x", flexible=False)
                                                     + kw.int32(1_000_000) + b"\x00\x01a"),
        "client id longer than frame": kw.frame(kw.int16(3) + kw.int16(4) + kw.int32(8) + kw.int16(30000) + b"abc"),
    }
    for tag, data in attacks.items():
        conn = send_raw(broker.bootstrap, data, close_write=(tag == "truncated frame"))
        conn.close()
        assert_serves_real_clients(broker, topic, tag)

    # Many at once, half-open, left dangling.
    dangling = [send_raw(broker.bootstrap, attacks["truncated frame"]) for _ in range(50)]
    assert_serves_real_clients(broker, topic, "50 dangling truncated frames")
    for c in dangling:
        c.close()

    resp = kw.parse_api_versions_v0(bystander.request(kw.api_versions_request(0, 2)))
    assert (resp.correlation_id, resp.error_code) == (2, 0), "a bystander connection was disturbed"
    bystander.close()
    assert broker.alive()


@pytest.mark.peer_gap("Tansu 0.6 keeps reading a frame that declares 2 GB")
def test_a_frame_declaring_2_gb_gets_the_connection_closed(broker):
    # Kafka refuses frames above socket.request.max.bytes by closing the connection; it never
    # waits for (or allocates) the declared size.
    conn = send_raw(broker.bootstrap, kw.int32(0x7FFFFFFF) + os.urandom(32))
    try:
        assert conn.closed_by_peer(timeout=10), "connection left open after a 2 GB length prefix"
    finally:
        conn.close()
    assert broker.alive()


def test_a_negative_frame_size_gets_the_connection_closed(broker):
    conn = send_raw(broker.bootstrap, struct.pack(">i", -1) + b"\x00" * 16)
    try:
        assert conn.closed_by_peer(timeout=10), "connection left open after a negative size"
    finally:
        conn.close()
    assert broker.alive()


def test_an_unknown_api_key_gets_an_error_or_a_close_never_silence(broker):
    conn = kw.Connection(broker.bootstrap)
    try:
        conn.send(kw.frame(kw.request_header(32000, 0, 77, "x", flexible=False) + b"\x00" * 8))
        conn.sock.settimeout(10)
        try:
            size_bytes = conn.recv_exact(4)
        except (ConnectionError, OSError):
            return  # closed: acceptable (Kafka closes on an unparseable header)
        (size,) = struct.unpack(">i", size_bytes)
        body = conn.recv_exact(size)
        assert kw.Reader(body).int32() == 77, "a response must carry the request's correlation id"
    except socket.timeout:
        pytest.fail("no response and no close within 10 s after an unknown API key")
    finally:
        conn.close()
    assert broker.alive()


@pytest.mark.parametrize("api_key,version,body", [
    # Metadata v1 claiming 2^31-1 topics in a 4-byte body.
    (3, 1, struct.pack(">i", 0x7FFFFFFF)),
    # Metadata v9 (flexible) claiming a compact array of 2^31 topics.
    (3, 9, bytes([0x80, 0x80, 0x80, 0x80, 0x08])),
    # Produce v3 claiming 2^31-1 topics.
    (0, 3, struct.pack(">hhii", -1, -1, 1000, 0x7FFFFFFF)),
])
def test_hostile_array_lengths_do_not_bring_the_broker_down(broker, topic, api_key, version, body):
    flexible_header = (api_key == 3 and version >= 9)
    header = struct.pack(">hhih", api_key, version, 1, -1) + (b"\x00" if flexible_header else b"")
    frame = header + body
    conn = send_raw(broker.bootstrap, struct.pack(">i", len(frame)) + frame)
    conn.close()
    assert_serves_real_clients(broker, topic, f"after a hostile length for api {api_key} v{version}")
