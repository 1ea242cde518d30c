"""Hand-built Kafka frames for the tests that must control the bytes on the wire (null
client_id, unsupported versions, malformed input, raw Fetch). Only the few messages the tests
need, encoded straight from the protocol guide (https://kafka.apache.org/protocol)."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18

ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_MESSAGE_TOO_LARGE = 10
ERR_INVALID_TOPIC_EXCEPTION = 17
ERR_UNSUPPORTED_VERSION = 35


def int16(v: int) -> bytes:
    return struct.pack(">h", v)


def int32(v: int) -> bytes:
    return struct.pack(">i", v)


def int64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: Optional[str]) -> bytes:
    """A (nullable) STRING: int16 length, -1 for null."""
    if s is None:
        return int16(-1)
    b = s.encode()
    return int16(len(b)) + b


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of RecordBatch v2."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def restamp_batch(frame: bytes, batch_start: int) -> bytes:
    """The frame with the CRC of the v2 batch at `batch_start` made valid again (it covers
    the attributes to the end of the batch)."""
    length = struct.unpack(">i", frame[batch_start + 8:batch_start + 12])[0]
    end = batch_start + 12 + length
    crc = crc32c(frame[batch_start + 21:end])
    return frame[:batch_start + 17] + struct.pack(">I", crc) + frame[batch_start + 21:]


def retarget_produce_v9(frame: bytes, old_topic: str, new_topic: str) -> bytes:
    """A whole Produce v9 frame (size prefix included) sent to `new_topic` instead of
    `old_topic`: the topic name sits before the records, so every batch stays byte for byte
    (and its CRC valid)."""
    old, new = compact_string(old_topic), compact_string(new_topic)
    # size, api key, version, correlation id, client id (int16-length string), tagged fields,
    # transactional id, acks, timeout, topic count: the name is the first field after them.
    client_id_len = struct.unpack(">h", frame[12:14])[0]
    at = 14 + max(client_id_len, 0) + 1
    at += 1 if frame[at] == 0 else len(compact_string(Reader(frame[at:]).compact_string()))
    at += 2 + 4 + 1
    if frame[at:at + len(old)] != old:
        raise ValueError(f"the frame's first topic is not {old_topic!r}")
    body = frame[4:at] + new + frame[at + len(old):]
    return struct.pack(">i", len(body)) + body


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def compact_string(s: Optional[str]) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def request_header(api_key: int, api_version: int, correlation_id: int, client_id: Optional[str], flexible: bool) -> bytes:
    """Request header v1 (v2 when `flexible`: adds an empty tagged-field section)."""
    h = int16(api_key) + int16(api_version) + int32(correlation_id) + string(client_id)
    if flexible:
        h += uvarint(0)
    return h


def frame(payload: bytes) -> bytes:
    return int32(len(payload)) + payload


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"short read: want {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def int16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def int32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def int64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> Optional[str]:
        n = self.int16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self) -> Optional[bytes]:
        n = self.int32()
        return None if n < 0 else self.take(n)

    def uvarint(self) -> int:
        value, shift = 0, 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_string(self) -> Optional[str]:
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def remaining(self) -> int:
        return len(self.data) - self.pos


class Connection:
    """A blocking socket speaking length-prefixed frames."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(size)

    def request(self, payload: bytes) -> bytes:
        self.send(frame(payload))
        return self.recv_frame()

    def closed_by_peer(self, timeout: float) -> bool:
        """True once the peer closes (EOF or reset) within `timeout`; False if it stays open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not data:
                return True
            # A response to something we sent; keep draining until the close.
        return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# ApiVersions
# ---------------------------------------------------------------------------------------------


@dataclass
class ApiVersionsV0:
    correlation_id: int
    error_code: int
    api_keys: dict[int, tuple[int, int]]
    trailing_bytes: int


def api_versions_request(version: int, correlation_id: int, client_id: Optional[str] = "tributary-tests") -> bytes:
    if version >= 3:
        body = compact_string("tributary-tests") + compact_string("1.0") + uvarint(0)
        return request_header(API_API_VERSIONS, version, correlation_id, client_id, flexible=True) + body
    return request_header(API_API_VERSIONS, version, correlation_id, client_id, flexible=False)


def parse_api_versions_v0(response: bytes) -> ApiVersionsV0:
    """Parses a response as ApiVersions v0 (header v0: no tagged fields, even for v3+)."""
    r = Reader(response)
    correlation_id = r.int32()
    error_code = r.int16()
    n = r.int32()
    keys = {}
    for _ in range(max(n, 0)):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        keys[key] = (lo, hi)
    return ApiVersionsV0(correlation_id, error_code, keys, r.remaining())


def parse_api_versions_v1(response: bytes) -> ApiVersionsV0:
    """ApiVersions v1/v2: the v0 body followed by throttle_time_ms."""
    r = Reader(response)
    correlation_id = r.int32()
    error_code = r.int16()
    n = r.int32()
    keys = {}
    for _ in range(max(n, 0)):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        keys[key] = (lo, hi)
    r.int32()  # throttle_time_ms
    return ApiVersionsV0(correlation_id, error_code, keys, r.remaining())


@dataclass
class ApiVersionsFeatures:
    """An ApiVersions v3+ answer: the API table and the feature levels (KIP-584)."""
    error_code: int
    api_keys: dict[int, tuple[int, int]]
    supported: dict[str, tuple[int, int]]
    finalized_epoch: int
    finalized: dict[str, tuple[int, int]]


def parse_api_versions_v3(response: bytes) -> ApiVersionsFeatures:
    """ApiVersions v3/v4 (flexible body after a v0 header): the features are tagged fields 0
    (SupportedFeatures), 1 (FinalizedFeaturesEpoch) and 2 (FinalizedFeatures)."""
    r = Reader(response)
    r.int32()  # correlation id
    error_code = r.int16()
    keys = {}
    for _ in range(r.uvarint() - 1):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        keys[key] = (lo, hi)
        skip_tags(r)
    r.int32()  # throttle_time_ms
    supported, finalized, epoch = {}, {}, -1
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        field = Reader(r.take(size))
        if tag == 0:
            for _ in range(field.uvarint() - 1):
                name = field.compact_string()
                supported[name] = (field.int16(), field.int16())
                skip_tags(field)
        elif tag == 1:
            epoch = field.int64()
        elif tag == 2:
            for _ in range(field.uvarint() - 1):
                name = field.compact_string()
                high, low = field.int16(), field.int16()
                finalized[name] = (low, high)
                skip_tags(field)
    return ApiVersionsFeatures(error_code, keys, supported, epoch, finalized)


def skip_tags(r: Reader) -> None:
    """Skips a flexible structure's tagged fields."""
    for _ in range(r.uvarint()):
        r.uvarint()
        r.take(r.uvarint())


def api_versions_features(address: str, version: int = 4) -> ApiVersionsFeatures:
    """The ApiVersions v3+ answer of the broker at `address` itself."""
    with Connection(address) as conn:
        return parse_api_versions_v3(conn.request(api_versions_request(version, 1)))


# ---------------------------------------------------------------------------------------------
# Metadata v4 (non-flexible; has allow_auto_topic_creation)
# ---------------------------------------------------------------------------------------------


@dataclass
class TopicMetadata:
    error_code: int
    name: str
    partitions: dict[int, int]  # partition -> error code
    leaders: dict[int, int] = field(default_factory=dict)  # partition -> leader id


def metadata_request_v4(correlation_id: int, topics: Optional[list[str]], allow_auto_create: bool,
                        client_id: Optional[str] = "tributary-tests") -> bytes:
    if topics is None:
        body = int32(-1)
    else:
        body = int32(len(topics)) + b"".join(string(t) for t in topics)
    body += b"\x01" if allow_auto_create else b"\x00"
    return request_header(API_METADATA, 4, correlation_id, client_id, flexible=False) + body


API_DESCRIBE_CLIENT_QUOTAS = 48


def describe_client_quotas_request_v0(correlation_id: int, entity_type: str, name: str,
                                      client_id: Optional[str] = "tributary-tests") -> bytes:
    """DescribeClientQuotas v0 of the quotas set exactly on entity `entity_type`=`name`."""
    body = int32(1) + string(entity_type) + b"\x00" + string(name) + b"\x01"
    return request_header(API_DESCRIBE_CLIENT_QUOTAS, 0, correlation_id, client_id, flexible=False) + body


def parse_metadata_v4(response: bytes) -> tuple[int, list[dict], list[TopicMetadata]]:
    r = Reader(response)
    correlation_id = r.int32()
    r.int32()  # throttle
    brokers = []
    for _ in range(r.int32()):
        node, host, port, rack = r.int32(), r.string(), r.int32(), r.string()
        brokers.append({"node_id": node, "host": host, "port": port, "rack": rack})
    r.string()  # cluster id
    r.int32()  # controller id
    topics = []
    for _ in range(r.int32()):
        err, name, _internal = r.int16(), r.string(), r.int8()
        parts, leaders = {}, {}
        for _ in range(r.int32()):
            perr, pidx = r.int16(), r.int32()
            leaders[pidx] = r.int32()
            for _ in range(r.int32()):
                r.int32()  # replicas
            for _ in range(r.int32()):
                r.int32()  # isr
            parts[pidx] = perr
        topics.append(TopicMetadata(err, name, parts, leaders))
    assert r.remaining() == 0, f"{r.remaining()} unexpected trailing bytes in Metadata v4 response"
    return correlation_id, brokers, topics


def leader_address(bootstrap: str, topic: str, partition: int) -> str:
    """host:port of the broker leading `topic`'s `partition` (on a cluster, the one requests for
    that partition must reach; a single broker leads everything)."""
    with Connection(bootstrap) as conn:
        _, brokers, topics = parse_metadata_v4(conn.request(metadata_request_v4(1, [topic], False)))
    leader = topics[0].leaders.get(partition, -1)
    found = [f"{b['host']}:{b['port']}" for b in brokers if b["node_id"] == leader]
    if not found:
        raise LookupError(f"{topic}-{partition} has no leader in Metadata (leader {leader})")
    return found[0]


# ---------------------------------------------------------------------------------------------
# Fetch v4 (non-flexible, read_committed-capable, RecordBatch v2)
# ---------------------------------------------------------------------------------------------


@dataclass
class FetchedPartition:
    partition: int
    error_code: int
    high_watermark: int
    records: Optional[bytes]


def fetch_request_v4(correlation_id: int, topic: str, partition: int, offset: int,
                     max_wait_ms: int = 0, min_bytes: int = 1, max_bytes: int = 1 << 20) -> bytes:
    body = (
        int32(-1)  # replica_id: a consumer
        + int32(max_wait_ms)
        + int32(min_bytes)
        + int32(max_bytes)
        + b"\x00"  # isolation_level: read_uncommitted
        + int32(1) + string(topic)
        + int32(1) + int32(partition) + int64(offset) + int32(max_bytes)
    )
    return request_header(API_FETCH, 4, correlation_id, "tributary-tests", flexible=False) + body


def parse_fetch_v4(response: bytes) -> tuple[int, list[FetchedPartition]]:
    r = Reader(response)
    correlation_id = r.int32()
    r.int32()  # throttle
    out = []
    for _ in range(r.int32()):
        r.string()  # topic
        for _ in range(r.int32()):
            partition, err, hw = r.int32(), r.int16(), r.int64()
            r.int64()  # last stable offset
            n_aborted = r.int32()
            for _ in range(max(n_aborted, 0)):
                r.int64()
                r.int64()
            out.append(FetchedPartition(partition, err, hw, r.bytes_()))
    return correlation_id, out


@dataclass
class BatchHeader:
    base_offset: int
    last_offset_delta: int
    record_count: int
    magic: int


def record_batches(records: bytes) -> list[BatchHeader]:
    """Walks RecordBatch v2 headers in a fetched record set (a trailing partial batch is allowed)."""
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base_offset, batch_length = struct.unpack(">qi", records[pos:pos + 12])
        magic = records[pos + 16]
        last_offset_delta = struct.unpack(">i", records[pos + 23:pos + 27])[0]
        record_count = struct.unpack(">i", records[pos + 57:pos + 61])[0]
        if pos + 12 + batch_length > len(records):
            break
        out.append(BatchHeader(base_offset, last_offset_delta, record_count, magic))
        pos += 12 + batch_length
    return out


# ---------------------------------------------------------------------------------------------
# ListGroups v5 (flexible; states and types filters, KIP-848)
# ---------------------------------------------------------------------------------------------

def list_groups_request_v5(correlation_id: int, types: Iterable[str] = ()) -> bytes:
    """ListGroups v5 with no states filter and `types` as the types filter."""
    types = list(types)
    body = uvarint(1)  # no states filter: an empty compact array
    body += uvarint(len(types) + 1) + b"".join(compact_string(t) for t in types)
    body += uvarint(0)
    return request_header(16, 5, correlation_id, "tributary-tests", True) + body


def parse_list_groups_v5(response: bytes) -> tuple[int, list[tuple[str, str, str]]]:
    """The error code and each group's (id, state, type) of a ListGroups v5 answer."""
    r = Reader(response)
    r.int32()  # correlation id
    skip_tags(r)  # response header v1
    r.int32()  # throttle_time_ms
    error_code = r.int16()
    groups = []
    for _ in range(r.uvarint() - 1):
        group_id = r.compact_string()
        r.compact_string()  # protocol type
        state = r.compact_string()
        group_type = r.compact_string()
        skip_tags(r)
        groups.append((group_id, state, group_type))
    return error_code, groups


def list_groups(address: str, types: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """The groups the broker at `address` coordinates, as (id, state, type)."""
    with Connection(address) as conn:
        error_code, groups = parse_list_groups_v5(conn.request(list_groups_request_v5(1, types)))
    assert error_code == 0, f"ListGroups failed with error {error_code}"
    return groups
