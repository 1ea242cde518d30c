"""The Apache Kafka Java client 3.9.1 (KafkaProducer, KafkaConsumer, Admin), through the
KafkaCli program in java/. Its defaults matter: enable.idempotence=true and acks=all."""

import json
import subprocess
import time

import pytest

from pyclients import ck_create_topic, ck_produce

CODECS = ["gzip", "snappy", "lz4", "zstd"]
# One codec runs on the cluster too (CLUSTER PASS in conftest.py); each of the others only on
# one broker: a follower copies batches as they are, whatever their codec.
CLUSTER_CODEC = "zstd"
CODEC_CASES = [c if c == CLUSTER_CODEC else pytest.param(c, marks=pytest.mark.same_on_cluster(
    f"the {c} codec: the cluster runs {CLUSTER_CODEC}, and a follower copies batches whatever their codec"))
               for c in CODECS]


def stdin_records(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_default_producer_is_idempotent_and_keeps_per_key_order(broker, topic, java):
    java.run("admin", "create-topic", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "3")
    produced = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic,
                        "--count", "500", "--key-prefix", "key-", "--keys", "5",
                        "--prop", "linger.ms=5")
    assert produced.one("done") == {"event": "done", "acked": 500, "errors": 0}
    acks = sorted(produced.events("ack"), key=lambda a: a["i"])
    partition_of = {}
    for a in acks:
        assert partition_of.setdefault(a["i"] % 5, a["partition"]) == a["partition"]

    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--max", "500")
    records = consumed.events("record")
    assert len(records) == 500
    assert {(r["partition"], r["offset"]) for r in records} == {(a["partition"], a["offset"]) for a in acks}
    for k in range(5):
        mine = sorted((r for r in records if r["key"] == f"key-{k}"), key=lambda r: r["offset"])
        assert [r["value"] for r in mine] == [f"value-{i}" for i in range(500) if i % 5 == k]
    for p in range(3):
        offsets = sorted(r["offset"] for r in records if r["partition"] == p)
        assert offsets == list(range(len(offsets)))


# The Java client refuses idempotence without acks=all, so that pair is not a case.
@pytest.mark.parametrize("acks,idempotence", [("all", "true"), ("all", "false"), ("1", "false")])
def test_producer_acks_and_idempotence_settings(broker, topic, java, acks, idempotence):
    java.run("admin", "create-topic", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "1")
    produced = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "300",
                        "--prop", f"acks={acks}", "--prop", f"enable.idempotence={idempotence}")
    assert produced.one("done")["acked"] == 300
    assert sorted(a["offset"] for a in produced.events("ack")) == list(range(300))
    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--max", "300")
    assert [r["value"] for r in consumed.events("record")] == [f"value-{i}" for i in range(300)]


@pytest.mark.parametrize("codec", CODEC_CASES)
def test_compression_round_trip(broker, topic, java, codec):
    java.run("admin", "create-topic", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "1")
    produced = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "200",
                        "--value-size", "300", "--prop", f"compression.type={codec}", "--prop", "linger.ms=20")
    assert produced.one("done")["acked"] == 200
    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--max", "200")
    values = [r["value"] for r in consumed.events("record")]
    assert len(values) == 200
    assert all(v.startswith(f"value-{i}") and len(v) == 300 for i, v in enumerate(values))


@pytest.mark.same_on_cluster('record headers and null keys and values: the record codec')
def test_headers_null_keys_and_null_values(broker, topic, java):
    java.run("admin", "create-topic", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "1")
    records = [
        {"key": None, "value": "no key"},
        {"key": "tombstone", "value": None},
        {"key": None, "value": None, "headers": [["only-header", "x"]]},
        {"key": "k", "value": "v", "headers": [["a", "1"], ["nullh", None], ["a", "2"], ["empty", ""]]},
    ]
    produced = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--stdin",
                        stdin=stdin_records(records))
    assert produced.one("done")["acked"] == 4
    got = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--max", "4").events("record")
    assert [(r["key"], r["value"]) for r in got] == [(r["key"], r["value"]) for r in records]
    assert [r["headers"] for r in got] == [[], [], [["only-header", "x"]],
                                           [["a", "1"], ["nullh", None], ["a", "2"], ["empty", ""]]]


@pytest.mark.peer_gap("Tansu 0.6 ignores the timestamp in ListOffsets (and breaks the client on max-timestamp)")
def test_offsets_for_times_beginning_end_and_max_timestamp(broker, topic, java):
    java.run("admin", "create-topic", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "1")
    t0 = int(time.time() * 1000) - 600_000
    # Timestamps out of order: the max-timestamp record is in the middle of the batch.
    stamps = [t0, t0 + 1000, t0 + 9000, t0 + 3000, t0 + 4000]
    produced = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--stdin",
                        "--prop", "linger.ms=50",
                        stdin=stdin_records([{"value": f"r{i}", "partition": 0, "timestamp": ts}
                                             for i, ts in enumerate(stamps)]))
    assert produced.one("done")["acked"] == 5
    out = java.run("offsets", "--bootstrap", broker.bootstrap, "--topic", topic, "--partition", "0",
                   "--time", str(t0 - 5), "--time", str(t0 + 500), "--time", str(t0 + 3500),
                   "--time", str(t0 + 9000), "--time", str(t0 + 9001)).one("offsets")
    assert out["beginning"] == 0
    assert out["end"] == 5
    ft = out["forTimes"]
    assert ft[str(t0 - 5)] == {"offset": 0, "timestamp": t0}
    assert ft[str(t0 + 500)] == {"offset": 1, "timestamp": t0 + 1000}
    # The earliest offset whose timestamp is >= the target (offset 2, ts t0+9000), not offset 4.
    assert ft[str(t0 + 3500)] == {"offset": 2, "timestamp": t0 + 9000}
    assert ft[str(t0 + 9000)] == {"offset": 2, "timestamp": t0 + 9000}
    assert ft[str(t0 + 9001)] is None
    assert out["maxTimestamp"] == {"offset": 2, "timestamp": t0 + 9000}


@pytest.mark.same_on_cluster("a read inside one log's batch")
def test_consume_from_the_middle_of_a_batch(broker, topic, java):
    ck_create_topic(broker.bootstrap, topic, partitions=1)
    reports = ck_produce(broker.bootstrap, topic, [{"value": f"m{i}".encode(), "partition": 0} for i in range(10)],
                         {"linger.ms": 200})
    assert [r.offset for r in reports] == list(range(10))
    got = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "0",
                   "--offset", "5", "--max", "10", "--timeout-ms", "4000").events("record")
    assert [(r["offset"], r["value"]) for r in got] == [(i, f"m{i}") for i in range(5, 10)]


@pytest.mark.peer_gap("Tansu does not implement --message-max-bytes")
@pytest.mark.same_on_cluster('message.max.bytes is checked by the leader before anything is written')
def test_oversized_record_is_rejected_with_record_too_large(broker_factory, topic, java):
    broker = broker_factory(message_max_bytes=4096)
    java.run("admin", "create-topic", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "1")
    big = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "1",
                   "--value-size", "20000", "--prop", "compression.type=none",
                   "--prop", "delivery.timeout.ms=20000", "--prop", "request.timeout.ms=10000")
    errors = big.events("error")
    assert len(errors) == 1 and errors[0]["error"] == "RecordTooLargeException", big.describe()
    small = java.run("produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--count", "3")
    assert small.one("done")["acked"] == 3
    assert sorted(a["offset"] for a in small.events("ack")) == [0, 1, 2]
    assert broker.alive()


@pytest.mark.same_on_cluster("the suite's Java client runner itself: no broker is involved")
def test_the_java_runner_reports_each_command_as_its_own_process_would(java):
    """KafkaCli runs in long-lived JVMs (harness.JavaClient, ClientServer.java): each call must
    still get its own exit code, output and input, and a call that overruns ends its JVM."""
    usage = java.run("no-such-command", check=False)
    assert (usage.returncode, usage.stdout) == (64, "")
    assert "unknown subcommand no-such-command" in usage.stderr
    failed = java.run("produce", "--topic", "t", check=False)
    assert failed.returncode == 1
    assert "IllegalArgumentException: --bootstrap is required" in failed.stderr
    with pytest.raises(AssertionError, match="--bootstrap is required"):
        java.run("produce", "--topic", "t")
    # The call's stdin reaches the command (a bad record fails before any connection).
    bad = java.run("produce", "--bootstrap", "127.0.0.1:1", "--topic", "t", "--stdin",
                   stdin='{"value":"from-stdin"} trailing\n', check=False)
    assert bad.returncode == 1 and 'trailing data in JSON: {"value":"from-stdin"}' in bad.stderr
    (server,) = java._idle
    # Nothing listens on port 1: the consumer waits for its own 15 s deadline; ours is shorter.
    with pytest.raises(subprocess.TimeoutExpired):
        java.run("consume", "--bootstrap", "127.0.0.1:1", "--topic", "t", "--max", "1", timeout=2)
    assert server.proc.poll() is not None, "the JVM of an overrun call was left running"
    assert java._idle == []
    again = java.run("no-such-command", check=False)
    assert again.returncode == 64 and java._idle and java._idle[0] is not server
