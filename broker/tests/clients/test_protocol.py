"""Wire-level behaviour that clients rely on, checked with hand-built frames (kafkawire.py):
null client_id, ApiVersions for an unsupported version, pipelining, Metadata auto-creation,
topic name validation, Fetch starting inside a batch and empty record sets."""

import pytest

import kafkawire as kw
from harness import wait_until
from pyclients import ck_create_topic, ck_produce


@pytest.mark.same_on_cluster('request header parsing on one connection')
def test_null_client_id_is_accepted(broker):
    with kw.Connection(broker.bootstrap) as conn:
        resp = kw.parse_api_versions_v1(conn.request(kw.api_versions_request(1, 7, client_id=None)))
        assert resp.correlation_id == 7
        assert resp.error_code == kw.ERR_NONE
        assert kw.API_API_VERSIONS in resp.api_keys and kw.API_METADATA in resp.api_keys
        assert resp.trailing_bytes == 0

        corr, brokers, _ = kw.parse_metadata_v4(conn.request(kw.metadata_request_v4(8, [], False, client_id=None)))
        assert corr == 8
        assert sorted((b["host"], b["port"]) for b in brokers) == sorted(broker.addresses)


@pytest.mark.peer_gap("Tansu 0.6 answers an unsupported ApiVersions version with a flexible body and no error")
@pytest.mark.same_on_cluster('ApiVersions is answered by the broker a client connects to, alone')
def test_api_versions_with_an_unsupported_version_answers_v0_unsupported_version(broker):
    with kw.Connection(broker.bootstrap) as conn:
        resp = kw.parse_api_versions_v0(conn.request(kw.api_versions_request(127, 41)))
        assert resp.correlation_id == 41
        assert resp.error_code == kw.ERR_UNSUPPORTED_VERSION
        # The body is exactly ApiVersions v0, and says which ApiVersions versions to use.
        assert resp.trailing_bytes == 0
        assert kw.API_API_VERSIONS in resp.api_keys
        lo, hi = resp.api_keys[kw.API_API_VERSIONS]
        assert lo == 0 and hi >= 3

        # The connection stays usable: retry at a supported version, as clients do.
        retry = kw.parse_api_versions_v0(conn.request(kw.api_versions_request(0, 42)))
        assert (retry.correlation_id, retry.error_code, retry.trailing_bytes) == (42, kw.ERR_NONE, 0)
        assert len(retry.api_keys) > 5


@pytest.mark.same_on_cluster('ApiVersions is answered by the broker a client connects to, alone')
def test_api_versions_advertises_the_versions_the_clients_need(broker):
    with kw.Connection(broker.bootstrap) as conn:
        resp = kw.parse_api_versions_v0(conn.request(kw.api_versions_request(0, 1)))
    assert resp.error_code == kw.ERR_NONE
    for key in (0, 1, 2, 3, 18, 19, 20):  # Produce, Fetch, ListOffsets, Metadata, ApiVersions, Create/DeleteTopics
        assert key in resp.api_keys, f"API key {key} not advertised"
        lo, hi = resp.api_keys[key]
        assert 0 <= lo <= hi


@pytest.mark.same_on_cluster('the order of answers on one connection')
def test_pipelined_requests_are_answered_in_order(broker):
    with kw.Connection(broker.bootstrap) as conn:
        requests = []
        for corr in range(100, 120):
            if corr % 2:
                requests.append(kw.frame(kw.api_versions_request(0, corr)))
            else:
                requests.append(kw.frame(kw.metadata_request_v4(corr, [], False)))
        conn.send(b"".join(requests))
        for corr in range(100, 120):
            frame = conn.recv_frame()
            assert kw.Reader(frame).int32() == corr, "responses out of order"


@pytest.mark.peer_gap("Tansu has no --num-partitions for auto-created topics")
def test_metadata_auto_creates_a_missing_topic_when_enabled(broker_factory, topic):
    broker = broker_factory(auto_create_topics=True, num_partitions=3)

    def created():
        with kw.Connection(broker.bootstrap) as conn:
            _, _, topics = kw.parse_metadata_v4(conn.request(kw.metadata_request_v4(1, [topic], True)))
        assert len(topics) == 1 and topics[0].name == topic
        # LEADER_NOT_AVAILABLE (5) while the creation is in flight is allowed; then success.
        assert topics[0].error_code in (kw.ERR_NONE, 5), topics[0]
        return topics[0].error_code == kw.ERR_NONE and topics[0]

    t = wait_until(created, 15, "the auto-created topic in Metadata")
    assert sorted(t.partitions) == [0, 1, 2]
    assert all(e == kw.ERR_NONE for e in t.partitions.values())


@pytest.mark.peer_gap("Tansu cannot turn auto-creation off")
@pytest.mark.same_on_cluster('Metadata of a missing topic with auto-creation off is answered by the receiving broker from its metadata, no controller involved')
def test_metadata_for_a_missing_topic_is_unknown_when_auto_create_is_off(broker_factory, topic):
    broker = broker_factory(auto_create_topics=False)
    with kw.Connection(broker.bootstrap) as conn:
        for corr in (1, 2):  # asked twice: the first request must not have created it either
            _, _, topics = kw.parse_metadata_v4(conn.request(kw.metadata_request_v4(corr, [topic], True)))
            assert [(t.name, t.error_code) for t in topics] == [(topic, kw.ERR_UNKNOWN_TOPIC_OR_PARTITION)]
    # Producing to it fails the same way (librdkafka reports it per message).
    reports = ck_produce(broker.bootstrap, topic, [{"value": b"x"}], {"message.timeout.ms": 5000})
    assert reports[0].error is not None


# The cluster runs the first name only (CLUSTER PASS in conftest.py): the others are the same validation.
@pytest.mark.parametrize("name", ["bad name", *(pytest.param(n, marks=pytest.mark.same_on_cluster(
    'topic name validation by the receiving broker; the cluster runs the first name, whose error comes back the same way')) for n in ("x" * 250, "with/slash"))], ids=["space", "too-long", "slash"])
def test_metadata_rejects_invalid_topic_names(broker, name):
    with kw.Connection(broker.bootstrap) as conn:
        _, _, topics = kw.parse_metadata_v4(conn.request(kw.metadata_request_v4(1, [name], True)))
        assert [(t.name, t.error_code) for t in topics] == [(name, kw.ERR_INVALID_TOPIC_EXCEPTION)]
        _, _, listed = kw.parse_metadata_v4(conn.request(kw.metadata_request_v4(2, None, False)))
        assert name not in {t.name for t in listed}


@pytest.mark.peer_gap("Tansu 0.6 answers Fetch v4 with no partitions")
@pytest.mark.same_on_cluster("a read inside one log's batch")
def test_fetch_inside_a_batch_returns_the_whole_batch(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    # A linger far longer than producing ten records takes on any machine: they wait in the
    # producer until its flush, which sends what is queued at once, as one batch (a short linger
    # split them when the first record went out before the others were produced).
    reports = ck_produce(broker.bootstrap, topic, [{"value": f"r{i}".encode(), "partition": 0} for i in range(10)],
                         {"linger.ms": 10_000, "batch.num.messages": 100})
    assert [r.offset for r in reports] == list(range(10))
    with kw.Connection(kw.leader_address(broker.bootstrap, topic, 0)) as conn:
        _, parts = kw.parse_fetch_v4(conn.request(kw.fetch_request_v4(1, topic, 0, 0)))
        batches = kw.record_batches(parts[0].records)
        assert [(b.base_offset, b.last_offset_delta, b.record_count, b.magic) for b in batches] == [(0, 9, 10, 2)], \
            "the flush should have sent the ten lingering records as one batch"

        _, parts = kw.parse_fetch_v4(conn.request(kw.fetch_request_v4(2, topic, 0, 5)))
        assert parts[0].error_code == kw.ERR_NONE and parts[0].high_watermark == 10
        batches = kw.record_batches(parts[0].records)
        # Kafka returns the batch that contains offset 5, from its base offset; clients skip 0..4.
        assert batches and batches[0].base_offset == 0 and batches[0].last_offset_delta == 9


def test_fetch_at_the_log_end_returns_an_empty_record_set_not_null(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    ck_produce(broker.bootstrap, topic, [{"value": b"only", "partition": 0}])
    with kw.Connection(kw.leader_address(broker.bootstrap, topic, 0)) as conn:
        _, parts = kw.parse_fetch_v4(conn.request(kw.fetch_request_v4(1, topic, 0, 1, max_wait_ms=100)))
    assert parts[0].error_code == kw.ERR_NONE
    assert parts[0].high_watermark == 1
    assert parts[0].records == b"", f"expected an empty record set, got {parts[0].records!r}"


@pytest.mark.peer_gap("Tansu 0.6 answers Fetch v4 with no partitions")
def test_fetch_past_the_log_end_is_offset_out_of_range(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    ck_produce(broker.bootstrap, topic, [{"value": b"only", "partition": 0}])
    with kw.Connection(kw.leader_address(broker.bootstrap, topic, 0)) as conn:
        _, parts = kw.parse_fetch_v4(conn.request(kw.fetch_request_v4(1, topic, 0, 50)))
    assert parts[0].error_code == 1  # OFFSET_OUT_OF_RANGE


@pytest.mark.peer_gap("Tansu 0.6 answers Fetch v4 with no partitions")
@pytest.mark.same_on_cluster('a Fetch of a partition that does not exist, refused by the receiving broker')
def test_fetch_of_an_unknown_partition_is_unknown_topic_or_partition(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    with kw.Connection(broker.bootstrap) as conn:
        _, parts = kw.parse_fetch_v4(conn.request(kw.fetch_request_v4(1, topic, 7, 0)))
    assert parts[0].error_code == kw.ERR_UNKNOWN_TOPIC_OR_PARTITION
