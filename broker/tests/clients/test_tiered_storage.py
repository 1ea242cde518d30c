"""Tiered storage (KIP-405) against a real S3-compatible server over HTTP (moto's server
mode): produce past local retention, let the broker upload and delete locally, then read
everything from offset 0 with kcat and the Java client and compare record by record. With
`--broker-kind cluster`, the same on a replicated topic of the three-broker local cluster
(the bucket settings reach the brokers through the KafkaCluster's config, rendered into their
server.properties), with the partition leader killed while it uploads."""

import json
import struct

import pytest

from harness import metric_sum, wait_until
from kafkawire import Connection, Reader, compact_string, int16, int32, int64, request_header, uvarint
from pyclients import ck_create_topic, ck_produce, kcat
from s3server import S3Server, broker_settings

pytestmark = pytest.mark.peer_gap("Tansu has no KIP-405 tiered storage (remote.storage.enable)")

single_broker = pytest.mark.single_broker(
    "checks one broker's disk, metrics and topic config answers; the replicated case is "
    "test_a_replicated_tiered_topic_loses_nothing_when_its_leader_dies_during_uploads"
)

BUCKET = "tributary-tiered"
COUNT = 1500
API_LIST_OFFSETS = 2
EARLIEST, LATEST, EARLIEST_LOCAL, LATEST_TIERED = -2, -1, -4, -5


@pytest.fixture
def s3(tmp_path):
    server = S3Server(tmp_path).start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


def create_tiered_topic(bootstrap: str, topic: str) -> None:
    """One partition, tiered, 8 KiB segments, keeping locally only the active one once uploaded."""
    ck_create_topic(bootstrap, topic, partitions=1, config={
        "remote.storage.enable": "true",
        "segment.bytes": "8192",
        "local.retention.bytes": "1",
    })


def value(i: int) -> str:
    return f"tiered-{i:05d}-" + "abcdefghij" * (3 + i % 7)


def list_offset(bootstrap: str, topic: str, timestamp: int) -> int:
    """ListOffsets v9 (KIP-1005's -4 and -5 need v8/v9) for partition 0 at `timestamp`."""
    body = (int32(-1) + bytes([0])                      # replica id, READ_UNCOMMITTED
            + uvarint(2) + compact_string(topic)        # one topic
            + uvarint(2) + int32(0) + int32(-1) + int64(timestamp) + uvarint(0)
            + uvarint(0) + uvarint(0))
    with Connection(bootstrap) as conn:
        r = Reader(conn.request(request_header(API_LIST_OFFSETS, 9, 11, "tiered-test", True) + body))
    assert r.int32() == 11
    r.uvarint()                                         # response header tags
    r.int32()                                           # throttle
    assert r.uvarint() == 2
    assert r.compact_string() == topic
    assert r.uvarint() == 2
    assert r.int32() == 0
    error = r.int16()
    assert error == 0, f"ListOffsets {timestamp}: error {error}"
    r.int64()                                           # timestamp
    return r.int64()


@single_broker
def test_records_past_local_retention_come_back_from_the_bucket_byte_identical(
        broker_factory, topic, java, s3):
    broker = broker_factory(**broker_settings(s3, BUCKET, "cluster-a"))
    create_tiered_topic(broker.bootstrap, topic)
    produced = ck_produce(broker.bootstrap, topic,
                          [{"key": f"k{i}", "value": value(i), "partition": 0} for i in range(COUNT)],
                          config={"linger.ms": 0, "batch.num.messages": 20})
    assert [d.offset for d in produced] == list(range(COUNT))

    # Old segments reach the bucket and leave the disk; the log still starts at 0.
    # local.retention.bytes=1: every closed segment goes once uploaded, the active one stays.
    def mostly_remote():
        start = list_offset(broker.bootstrap, topic, EARLIEST_LOCAL)
        return start if start > COUNT * 3 // 4 else None

    local_start = wait_until(mostly_remote, 60, "local retention to delete uploaded segments")
    assert list_offset(broker.bootstrap, topic, EARLIEST) == 0
    assert list_offset(broker.bootstrap, topic, LATEST) == COUNT
    latest_tiered = list_offset(broker.bootstrap, topic, LATEST_TIERED)
    assert local_start - 1 <= latest_tiered < COUNT
    keys = s3.keys(BUCKET, "cluster-a/")
    assert any(k.endswith("/0/manifest.json") for k in keys), keys
    logs = [k for k in keys if k.endswith(".log")]
    assert logs and all(k.startswith(f"cluster-a/{topic}-") for k in logs), logs
    assert any(k.endswith(".index") for k in keys) and any(k.endswith(".leader-epoch-checkpoint") for k in keys)
    data_dir = broker.data_dirs[0] / f"{topic}-0"
    local_segments = sorted(p.name for p in data_dir.glob("*.log"))
    assert local_segments and local_segments[0] != f"{0:020d}.log", local_segments

    # kcat (librdkafka) from offset 0.
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "0", "-e", "-c", str(COUNT), "-J",
               timeout=120)
    got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [m["offset"] for m in got] == list(range(COUNT))
    assert [(m["key"], m["payload"]) for m in got] == [(f"k{i}", value(i)) for i in range(COUNT)]

    # The Java client from offset 0.
    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "0",
                        "--offset", "0", "--max", str(COUNT), "--timeout-ms", "60000", timeout=180)
    records = consumed.events("record")
    assert [r["offset"] for r in records] == list(range(COUNT))
    assert [r["value"] for r in records] == [value(i) for i in range(COUNT)]

    assert metric_sum(broker, f'tributary_tiered_remote_fetches_total{{topic="{topic}"}}') > 0
    assert metric_sum(broker, f'tributary_tiered_remote_log_bytes{{partition="0",topic="{topic}"}}') > 0


@single_broker
def test_a_topic_cannot_be_tiered_when_compacted_or_keep_more_locally_than_in_total(
        broker_factory, topic, s3):
    from confluent_kafka import KafkaException
    broker = broker_factory(**broker_settings(s3, BUCKET, "cluster-b"))
    for config, reason in [
        ({"remote.storage.enable": "true", "cleanup.policy": "compact"}, "compacted"),
        ({"remote.storage.enable": "true", "retention.ms": "1000", "local.retention.ms": "5000"},
         "local.retention.ms"),
    ]:
        with pytest.raises(KafkaException) as refused:
            ck_create_topic(broker.bootstrap, topic, config=config)
        error = refused.value.args[0]
        assert error.name() == "INVALID_CONFIG", error
        assert reason in error.str(), error


@single_broker
def test_tiering_cannot_be_turned_off_on_a_tiered_topic(broker_factory, topic, s3):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    from pyclients import ck_admin
    broker = broker_factory(**broker_settings(s3, BUCKET, "cluster-c"))
    ck_create_topic(broker.bootstrap, topic, config={"remote.storage.enable": "true"})
    admin = ck_admin(broker.bootstrap)
    change = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("remote.storage.enable", "false", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as refused:
        admin.incremental_alter_configs([change])[change].result(20)
    error = refused.value.args[0]
    assert error.name() == "INVALID_CONFIG", error
    assert "disabling remote storage" in error.str(), error


def leader_of(bootstrap: str, topic: str) -> int:
    from pyclients import ck_admin
    metadata = ck_admin(bootstrap).list_topics(topic, timeout=20)
    return metadata.topics[topic].partitions[0].leader


def at_leader(broker, topic: str) -> str:
    """The address of partition 0's leader, which alone answers ListOffsets (a follower says
    NOT_LEADER_OR_FOLLOWER); the bootstrap list starts with broker 0 whoever leads."""
    host, port = broker.addresses[leader_of(broker.bootstrap, topic)]
    return f"{host}:{port}"


def manifest_states(s3, prefix: str, topic: str) -> list[str]:
    keys = [k for k in s3.keys(BUCKET, prefix) if k.startswith(f"{prefix}{topic}-") and k.endswith("/0/manifest.json")]
    if not keys:
        return []
    body = s3.client().get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    return [segment["state"] for segment in json.loads(body)["segments"]]


def bucket_settings_to_pods(monkeypatch, s3, prefix: str) -> None:
    """Has the local cluster's pods get the bucket settings as TRIBUTARY_* variables."""
    for flag, setting in broker_settings(s3, BUCKET, prefix).items():
        text = ("true" if setting else "false") if isinstance(setting, bool) else str(setting)
        monkeypatch.setenv(f"TRIBUTARY_E2E_POD_ENV_TRIBUTARY_{flag.upper()}", text)


def test_a_replicated_tiered_topic_loses_nothing_when_its_leader_dies_during_uploads(
        broker_factory, broker_kind, topic, s3, monkeypatch):
    if broker_kind != "cluster":
        pytest.skip("needs replicas: run with --broker-kind cluster")
    # KafkaCluster.spec.config does not take the bucket settings (spec.tieredStorage is the
    # operator's, not yet there): the local kubelet passes them to the brokers as TRIBUTARY_*
    # variables (TRIBUTARY_E2E_POD_ENV_ prefix), and a setting of this test's own makes the
    # pool start a cluster for it.
    bucket_settings_to_pods(monkeypatch, s3, "cluster-rf3")
    broker = broker_factory(num_io_threads=7)
    create_tiered_topic(broker.bootstrap, topic)
    half = COUNT // 2
    first = ck_produce(broker.bootstrap, topic,
                       [{"key": f"k{i}", "value": value(i), "partition": 0} for i in range(half)],
                       config={"linger.ms": 0, "batch.num.messages": 20, "acks": "all"})
    assert [d.offset for d in first] == list(range(half))
    wait_until(lambda: list_offset(at_leader(broker, topic), topic, EARLIEST_LOCAL) > half // 2, 60,
               "the leader to upload and delete locally")

    # More records, and the leader is killed while it uploads them.
    leader = leader_of(broker.bootstrap, topic)
    second = ck_produce(broker.bootstrap, topic,
                        [{"key": f"k{i}", "value": value(i), "partition": 0} for i in range(half, COUNT)],
                        config={"linger.ms": 0, "batch.num.messages": 20, "acks": "all"})
    assert [d.offset for d in second] == list(range(half, COUNT))
    broker.crash(leader)

    # The new leader continues the manifest: everything uploaded, no upload left unfinished.
    wait_until(lambda: list_offset(at_leader(broker, topic), topic, EARLIEST_LOCAL) > COUNT * 3 // 4, 90,
               "the new leader to continue uploading")
    wait_until(lambda: (states := manifest_states(s3, "cluster-rf3/", topic))
               and all(state == "COPY_SEGMENT_FINISHED" for state in states), 60,
               "no unfinished upload left in the manifest")
    assert list_offset(at_leader(broker, topic), topic, EARLIEST) == 0

    # Every replica's disk is bounded: followers delete what the bucket holds too.
    def bounded():
        firsts = []
        for data_dir in broker.data_dirs:
            segments = sorted(p.name for p in (data_dir / f"{topic}-0").glob("*.log"))
            if not segments or segments[0] == f"{0:020d}.log":
                return None
            firsts.append(segments[0])
        return firsts
    wait_until(bounded, 60, "every replica to delete uploaded segments locally")

    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "0", "-e", "-c", str(COUNT), "-J",
               timeout=120)
    got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [m["offset"] for m in got] == list(range(COUNT))
    assert [(m["key"], m["payload"]) for m in got] == [(f"k{i}", value(i)) for i in range(COUNT)]


def test_remote_storage_enable_is_refused_by_a_broker_without_remote_storage(broker, topic):
    from confluent_kafka import KafkaException
    with pytest.raises(KafkaException) as refused:
        ck_create_topic(broker.bootstrap, topic, config={"remote.storage.enable": "true"})
    error = refused.value.args[0]
    assert error.name() == "INVALID_CONFIG", error
    assert "remote.log.storage.system.enable" in error.str(), error


def claim_of(cluster, broker_id: int) -> tuple[str, str]:
    """The name and uid of the PersistentVolumeClaim broker `broker_id`'s pod mounts."""
    pod = cluster.get("pod", f"{cluster.name}-broker-{broker_id}")
    names = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert len(names) == 1, pod["spec"]["volumes"]
    claim = cluster.get("pvc", names[0])
    return names[0], claim["metadata"]["uid"]


def volume_dir(cluster, claim: str) -> "Path":
    """The host directory of the PersistentVolume bound to `claim`."""
    from pathlib import Path
    volume = cluster.get("pvc", claim)["spec"]["volumeName"]
    return Path(json.loads(cluster.kubectl("get", "pv", volume, "-o", "json"))["spec"]["hostPath"]["path"])


def test_a_broker_given_an_empty_volume_serves_the_whole_log_as_leader_from_the_bucket(
        broker_factory, broker_kind, topic, s3, java, monkeypatch):
    if broker_kind != "cluster":
        pytest.skip("replaces a broker's volume: run with --broker-kind cluster")
    from confluent_kafka import ElectionType, KafkaException, TopicPartition
    from pyclients import ck_admin
    bucket_settings_to_pods(monkeypatch, s3, "cluster-volume")
    # Settings of this test's own, so the pool starts a cluster with the bucket variables.
    broker = broker_factory(num_io_threads=6)
    cluster = broker.cluster
    create_tiered_topic(broker.bootstrap, topic)
    # Idempotent, as Kafka's clients are by default: a retry of a batch whose answer was lost
    # on the fresh cluster must not write it twice (the offsets are checked record by record).
    produced = ck_produce(broker.bootstrap, topic,
                          [{"key": f"k{i}", "value": value(i), "partition": 0} for i in range(COUNT)],
                          config={"linger.ms": 0, "batch.num.messages": 20, "acks": "all",
                                  "enable.idempotence": True})
    assert [d.offset for d in produced] == list(range(COUNT))
    local_start = wait_until(lambda: (s := list_offset(at_leader(broker, topic), topic, EARLIEST_LOCAL)) > COUNT // 2
                             and s, 90, "the leader to upload and delete locally")

    # The preferred replica loses its volume: its claim is deleted, then its pod; the
    # StatefulSet recreates both, the pod on a new, empty volume.
    preferred = cluster.partition(topic)["spec"]["replicas"][0]
    claim, old_uid = claim_of(cluster, preferred)
    old_dir = volume_dir(cluster, claim)
    assert (old_dir / "data" / f"{topic}-0").is_dir(), old_dir
    pids = cluster.broker_pids()
    cluster.kubectl("delete", "pvc", claim, "-n", cluster.namespace, "--wait=false")
    cluster.kubectl("delete", "pod", f"{cluster.name}-broker-{preferred}", "-n", cluster.namespace, "--wait=false")
    cluster.wait_restarted({preferred: pids[preferred]}, 180)
    cluster.refresh_bootstrap(120)
    new_claim, new_uid = claim_of(cluster, preferred)
    assert new_claim == claim and new_uid != old_uid, "the pod runs on a new claim of the same name"
    new_dir = volume_dir(cluster, claim)
    assert new_dir != old_dir and not old_dir.exists(), (old_dir, new_dir)

    # Back in the ISR, it is elected leader (preferred-replica election). Led means the
    # preferred broker itself answers ListOffsets, which only a leader does: another broker's
    # metadata may name it leader before it has taken the leadership up.
    admin = ck_admin(broker.bootstrap)
    at_preferred = "{}:{}".format(*broker.addresses[preferred])

    def led_by_preferred() -> bool:
        try:
            list_offset(at_preferred, topic, EARLIEST)
            return True
        except (AssertionError, OSError):
            pass
        try:
            admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(30)
        except KafkaException as e:
            print(f"  note: preferred leader election: {e}", flush=True)
        return False
    wait_until(led_by_preferred, 60, f"broker {preferred} to lead again")

    # Everything from offset 0 through it, kcat and the Java client, record by record.
    assert list_offset(at_preferred, topic, EARLIEST) == 0
    expected = [(f"k{i}", value(i)) for i in range(COUNT)]
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "0", "-e", "-c", str(COUNT), "-J",
               timeout=120)
    got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [m["offset"] for m in got] == list(range(COUNT))
    assert [(m["key"], m["payload"]) for m in got] == expected
    consumed = java.run("consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--partitions", "0",
                        "--offset", "0", "--max", str(COUNT), "--timeout-ms", "60000", timeout=180)
    records = consumed.events("record")
    assert [r["offset"] for r in records] == list(range(COUNT))
    assert [r["value"] for r in records] == [value(i) for i in range(COUNT)]

    # Its new volume holds only the local part of the log.
    segments = sorted(p.name for p in (new_dir / "data" / f"{topic}-0").glob("*.log"))
    assert segments and int(segments[0][:20]) >= local_start, (segments, local_start)


@single_broker
def test_java_describe_log_dirs_shows_local_and_remote_bytes_apart(broker_factory, topic, java, s3):
    """AdminClient.describeLogDirs: the data directory with each replica's local bytes, and the
    bucket as a second directory (`remote://bucket/prefix`, capacity unknown) with the tiered
    partition's remote bytes, equal to the broker's remote log gauge."""
    broker = broker_factory(**broker_settings(s3, BUCKET, "logdirs"))
    create_tiered_topic(broker.bootstrap, topic)
    ck_produce(broker.bootstrap, topic,
               [{"key": f"k{i}", "value": value(i), "partition": 0} for i in range(COUNT)],
               config={"linger.ms": 0, "batch.num.messages": 20})
    wait_until(lambda: list_offset(broker.bootstrap, topic, EARLIEST_LOCAL) > COUNT * 3 // 4 or None, 60,
               "local retention to delete uploaded segments")
    gauge = f'tributary_tiered_remote_log_bytes{{partition="0",topic="{topic}"}}'

    def described():
        dirs = {d["path"]: d for d in java.run("admin", "describe-log-dirs", "--bootstrap",
                                                broker.bootstrap).events("logdir")}
        remote = dirs.get(f"remote://{BUCKET}/logdirs")
        # The gauge and the answer read the same manifest; wait until both show the last upload.
        if remote is None or remote["replicas"].get(f"{topic}-0") != metric_sum(broker, gauge):
            return None
        return dirs
    dirs = wait_until(described, 60, "DescribeLogDirs and the remote log gauge to agree")
    remote = dirs.pop(f"remote://{BUCKET}/logdirs")
    assert remote["error"] is None
    # -1 on the wire: the Java client reports an unknown capacity as empty.
    assert (remote["totalBytes"], remote["usableBytes"]) == (None, None), remote
    assert remote["replicas"][f"{topic}-0"] > 0
    assert len(dirs) == 1, dirs
    (local,) = dirs.values()
    assert local["error"] is None and local["totalBytes"] > 0, local
    assert local["replicas"][f"{topic}-0"] < remote["replicas"][f"{topic}-0"], "most bytes are remote"


@single_broker
def test_rotated_credentials_files_reach_a_running_broker_without_restart(
        broker_factory, topic, tmp_path, monkeypatch):
    """Credentials from a directory of files, as a mounted Secret gives them, against a moto
    that checks every request's key and signature (its IAM auth on once the setup is done):
    the broker uploads with key A; the files are swapped for key B the way kubelet updates a
    Secret volume and key A is deleted; the same broker process goes on uploading and reads
    everything back."""
    import boto3
    from s3server import REGION

    # moto serves the next five requests (the setup below) unauthenticated, then checks keys.
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "5")
    server = S3Server(tmp_path).start()
    try:
        iam = boto3.client("iam", endpoint_url=server.endpoint, region_name=REGION,
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="broker")
        iam.put_user_policy(UserName="broker", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key_a = iam.create_access_key(UserName="broker")["AccessKey"]
        key_b = iam.create_access_key(UserName="broker")["AccessKey"]
        server.create_bucket(BUCKET)

        def s3_with(key):
            return boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION,
                                aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        with pytest.raises(Exception, match="InvalidAccessKeyId"):
            server.client().list_objects_v2(Bucket=BUCKET)  # auth is on: unknown keys are refused

        secret_dir = tmp_path / "remote-storage"
        secret_dir.mkdir()

        def mount(generation: int, key) -> None:
            """Writes the files as kubelet updates a Secret volume: a new hidden directory,
            then an atomic swap of the `..data` symlink the visible names point through."""
            version = secret_dir / f"..{generation}"
            version.mkdir()
            (version / "AWS_ACCESS_KEY_ID").write_text(key["AccessKeyId"] + "\n")
            (version / "AWS_SECRET_ACCESS_KEY").write_text(key["SecretAccessKey"])
            tmp_link = secret_dir / "..data_tmp"
            tmp_link.symlink_to(version.name)
            tmp_link.replace(secret_dir / "..data")
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                if not (secret_dir / name).is_symlink():
                    (secret_dir / name).symlink_to(f"..data/{name}")

        mount(1, key_a)
        settings = broker_settings(server, BUCKET, "rotation")
        del settings["remote_storage_access_key_id"], settings["remote_storage_secret_access_key"]
        broker = broker_factory(**settings, remote_storage_credentials_dir=str(secret_dir))
        create_tiered_topic(broker.bootstrap, topic)
        half = COUNT // 2
        ck_produce(broker.bootstrap, topic,
                   [{"key": f"k{i}", "value": value(i), "partition": 0} for i in range(half)],
                   config={"linger.ms": 0, "batch.num.messages": 20})
        wait_until(lambda: list_offset(broker.bootstrap, topic, EARLIEST_LOCAL) > half // 2 or None, 60,
                   "uploads with key A")

        # Rotate: the files now hold key B, and key A stops existing.
        mount(2, key_b)
        s3_with(key_b).list_objects_v2(Bucket=BUCKET)
        iam_b = boto3.client("iam", endpoint_url=server.endpoint, region_name=REGION,
                             aws_access_key_id=key_b["AccessKeyId"], aws_secret_access_key=key_b["SecretAccessKey"])
        iam_b.delete_access_key(UserName="broker", AccessKeyId=key_a["AccessKeyId"])
        with pytest.raises(Exception, match="InvalidAccessKeyId"):
            s3_with(key_a).list_objects_v2(Bucket=BUCKET)

        ck_produce(broker.bootstrap, topic,
                   [{"key": f"k{i}", "value": value(i), "partition": 0} for i in range(half, COUNT)],
                   config={"linger.ms": 0, "batch.num.messages": 20})
        wait_until(lambda: list_offset(broker.bootstrap, topic, EARLIEST_LOCAL) > COUNT * 3 // 4 or None, 60,
                   "uploads with key B after the rotation")
        assert broker.alive(), "the broker was not restarted"
        out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "0", "-e", "-c", str(COUNT), "-J",
                   timeout=120)
        got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        assert [(m["key"], m["payload"]) for m in got] == [(f"k{i}", value(i)) for i in range(COUNT)]
        # (No Prefix parameter: moto's signature check trips over an encoded '/' in it.)
        keys = [o["Key"] for o in s3_with(key_b).list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert any(k.startswith("rotation/") and k.endswith(".log") for k in keys), keys
        assert "S3 credentials changed" in broker.log_text()
    finally:
        server.stop()
