"""kcat (Debian's kcat 1.7 on librdkafka 2.0): metadata, produce, consume from the beginning."""

import json

import pytest

from pyclients import ck_create_topic, kcat

pytestmark = pytest.mark.peer_gap(
    "librdkafka 2.0.2 (Debian kcat) cannot parse Tansu 0.6's ApiVersions v3 response (read underflow)"
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# One codec runs on the cluster too (CLUSTER PASS in conftest.py); each of the others only on
# one broker: a follower copies batches as they are, whatever their codec.
CLUSTER_CODEC = "zstd"
CODEC_CASES = [c if c == CLUSTER_CODEC else pytest.param(c, marks=pytest.mark.same_on_cluster(
    f"the {c} codec: the cluster runs {CLUSTER_CODEC}, and a follower copies batches whatever their codec"))
               for c in CODECS]


def consume_json(bootstrap: str, topic: str, count: int) -> list[dict]:
    out = kcat("-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-c", str(count), "-J")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_kcat_metadata_lists_the_brokers_and_a_created_topic(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    out = kcat("-b", broker.bootstrap, "-L", "-J")
    md = json.loads(out.stdout)
    assert sorted(b["name"] for b in md["brokers"]) == sorted(f"{h}:{p}" for h, p in broker.addresses)
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics
    parts = topics[topic]["partitions"]
    assert sorted(p["partition"] for p in parts) == [0, 1, 2]
    assert all(p["leader"] in {b["id"] for b in md["brokers"]} for p in parts)


def test_kcat_produces_keyed_records_and_consumes_them_in_order(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=3)
    lines = [f"user-{i % 4}:event-{i}" for i in range(40)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K:", stdin="\n".join(lines) + "\n")
    got = consume_json(broker.bootstrap, topic, 40)
    assert len(got) == 40
    by_key: dict[str, set] = {}
    for m in got:
        by_key.setdefault(m["key"], set()).add(m["partition"])
    assert all(len(p) == 1 for p in by_key.values()), f"a key spread over partitions: {by_key}"
    for key in by_key:
        values = [m["payload"] for m in sorted(got, key=lambda m: m["offset"]) if m["key"] == key]
        n = int(key.split("-")[1])
        assert values == [f"event-{i}" for i in range(40) if i % 4 == n]


@pytest.mark.parametrize("codec", CODEC_CASES)
def test_kcat_round_trips_each_compression_codec(broker, topic, codec):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    payloads = [f"{codec}-record-{i}-" + "abc" * 50 for i in range(100)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-z", codec, "-X", "linger.ms=50",
         stdin="\n".join(payloads) + "\n")
    got = consume_json(broker.bootstrap, topic, 100)
    assert [m["payload"] for m in got] == payloads
    assert [m["offset"] for m in got] == list(range(100))


@pytest.mark.same_on_cluster('record headers: the record codec')
def test_kcat_produces_headers_and_reads_them_back(broker, topic):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-H", "trace=abc", "-H", "origin=kcat",
         stdin="with-headers\n")
    got = consume_json(broker.bootstrap, topic, 1)
    assert got[0]["payload"] == "with-headers"
    assert got[0]["headers"] == ["trace", "abc", "origin", "kcat"]


def test_kcat_produce_auto_creates_a_topic(broker_factory, topic):
    broker = broker_factory(num_partitions=2, auto_create_topics=True)
    kcat("-b", broker.bootstrap, "-P", "-t", topic, stdin="first\nsecond\n")
    got = consume_json(broker.bootstrap, topic, 2)
    assert sorted(m["payload"] for m in got) == ["first", "second"]
    md = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", topic).stdout)
    assert len(md["topics"][0]["partitions"]) == 2
