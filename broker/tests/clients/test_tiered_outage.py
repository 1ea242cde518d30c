"""Tiered storage with its bucket gone for a minute under load: producers keep being
acknowledged, the broker keeps every segment the bucket does not hold yet (local retention
never deletes past the uploaded offset), the upload lag shows the backlog, and once the bucket
is back the backlog is uploaded and every acknowledged record reads back from offset 0, in
order, once."""

import json
import time

import pytest

from blackhole import Blackhole
from harness import metric_sum, wait_until
from pyclients import ck_produce, kcat
from s3server import S3Server, broker_settings
from test_tiered_storage import EARLIEST, EARLIEST_LOCAL, LATEST_TIERED, create_tiered_topic, list_offset, value

pytestmark = [
    pytest.mark.peer_gap("Tansu has no KIP-405 tiered storage (remote.storage.enable)"),
    pytest.mark.single_broker("cuts one broker's path to the bucket; the cluster case kills a leader "
                              "during uploads (test_tiered_storage.py)"),
]

BUCKET = "tributary-outage"
OUTAGE_SECONDS = 60
ROUNDS = 12          # producer rounds during the outage, one every OUTAGE_SECONDS / ROUNDS
PER_ROUND = 100


def test_a_minute_without_the_bucket_under_load_loses_nothing(broker_factory, topic, tmp_path):
    s3 = S3Server(tmp_path).start()
    path = Blackhole(s3.port)
    try:
        s3.create_bucket(BUCKET)
        settings = broker_settings(s3, BUCKET, "outage")
        settings["remote_storage_endpoint"] = path.endpoint
        broker = broker_factory(**settings)
        create_tiered_topic(broker.bootstrap, topic)
        produce = {"linger.ms": 0, "batch.num.messages": 20, "enable.idempotence": True, "acks": "all"}
        sent = 0

        def produce_round(count: int) -> None:
            nonlocal sent
            reports = ck_produce(broker.bootstrap, topic,
                                 [{"key": f"k{i}", "value": value(i), "partition": 0}
                                  for i in range(sent, sent + count)], config=produce)
            assert [r.error for r in reports] == [None] * count
            assert [r.offset for r in reports] == list(range(sent, sent + count))
            sent += count

        # Before: uploads run and local retention follows them.
        produce_round(300)
        tiered_before = wait_until(
            lambda: (t := list_offset(broker.bootstrap, topic, LATEST_TIERED)) > 0 and t,
            60, "the first segments to reach the bucket")

        # The outage: the broker's connections to the bucket drop and new ones hang.
        path.cut()
        for _ in range(ROUNDS):
            produce_round(PER_ROUND)
            # Nothing the bucket lacks leaves the disk, at any point of the outage.
            tiered = list_offset(broker.bootstrap, topic, LATEST_TIERED)
            local_start = list_offset(broker.bootstrap, topic, EARLIEST_LOCAL)
            assert local_start <= tiered + 1, (local_start, tiered)
            time.sleep(OUTAGE_SECONDS / ROUNDS)
        assert list_offset(broker.bootstrap, topic, EARLIEST) == 0
        # The backlog shows in the upload lag (reported by the failing passes: each waits
        # out the store's request timeout first).
        lag_series = f'tributary_tiered_upload_lag_segments{{partition="0",topic="{topic}"}}'
        lag = wait_until(lambda: (n := metric_sum(broker, lag_series)) >= 10 and n, 120,
                         "the upload lag to show the outage's backlog (about 15 segments)")
        local_segments = list((broker.data_dirs[0] / f"{topic}-0").glob("*.log"))
        assert len(local_segments) > lag, (len(local_segments), lag)

        # Back: the backlog is uploaded and leaves the disk; more load meanwhile.
        path.restore()
        produce_round(300)
        wait_until(lambda: list_offset(broker.bootstrap, topic, LATEST_TIERED) > tiered_before + ROUNDS * PER_ROUND,
                   120, "the backlog of the outage to be uploaded")
        wait_until(lambda: metric_sum(
            broker, f'tributary_tiered_upload_lag_segments{{partition="0",topic="{topic}"}}') == 0,
            120, "the upload lag to return to zero")
        wait_until(lambda: list_offset(broker.bootstrap, topic, EARLIEST_LOCAL) > tiered_before + ROUNDS * PER_ROUND,
                   120, "local retention to delete what the bucket now holds")
        assert list_offset(broker.bootstrap, topic, EARLIEST) == 0

        # Every acknowledged record, from offset 0, once and in order.
        out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "0", "-e", "-c", str(sent), "-J",
                   timeout=180)
        got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        assert [m["offset"] for m in got] == list(range(sent))
        assert [(m["key"], m["payload"]) for m in got] == [(f"k{i}", value(i)) for i in range(sent)]
    finally:
        path.stop()
        s3.stop()
