#!/usr/bin/env python3
"""Tiered storage benchmark: consuming from the bucket against consuming from local disk, in
the same run, and the broker's disk use with and without tiering.

One broker with remote storage on an S3-compatible server (moto's server mode, the same
process the tests use) gets two topics with the same records: `bench-local` keeps everything
on disk, `bench-tiered` has `remote.storage.enable=true` and `local.retention.bytes=1`, so once
uploaded only its active segments stay. After the uploads, kcat (librdkafka) reads each topic
from the beginning to the end, alternating local and tiered (`--rounds` of each). Prints
records/s and MB/s per read, the ratio remote/local, the broker's CPU per record, and the
bytes each topic holds on the broker's disk and in the bucket. `make bench BENCH_MODE=tiered`
runs it against the release build. The remote figures include the S3 server's own cost (moto
is a Python process on the same cores), so they are a floor for a real object store.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from harness import REPO_ROOT, BrokerProcess, kcat_binary, metric_sum, wait_until  # noqa: E402
from pyclients import ck_create_topic  # noqa: E402
from s3server import S3Server, broker_settings  # noqa: E402
from workload import cpu_ms, fmt, mean  # noqa: E402

BUCKET = "tributary-bench"
TOPICS = {"local": "bench-local", "tiered": "bench-tiered"}


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def topic_disk_bytes(broker: BrokerProcess, topic: str) -> int:
    return sum(dir_bytes(d) for d in broker.data_dir.glob(f"{topic}-*") if d.is_dir())


def produce(bootstrap: str, topic: str, records: int, size: int, segment_bytes: int, scratch: Path) -> None:
    """`records` records of `size` bytes with kcat, acks=all; fails unless all are delivered.
    Batches stay well under a segment: a batch is never split, so one batch holding a whole
    partition's records would leave it a single, active segment with nothing to upload."""
    lines = scratch / f"{topic}.txt"
    with open(lines, "w") as f:
        for i in range(records):
            stamp = f"{i:010d}-"
            f.write(stamp + "x" * max(size - len(stamp), 0) + "\n")
    proc = subprocess.run([kcat_binary(), "-b", bootstrap, "-P", "-t", topic, "-X", "acks=all",
                           "-X", "linger.ms=5", "-X", f"batch.size={min(1_000_000, segment_bytes // 4)}", "-l", str(lines)],
                          capture_output=True, text=True, timeout=600)
    lines.unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"kcat produce to {topic} failed: {proc.stderr[-2000:]}")


def consume(broker: BrokerProcess, topic: str, records: int, size: int, timeout: float) -> dict:
    """Reads `topic` from the beginning to its end with kcat; rate and the broker's CPU."""
    cpu = cpu_ms(broker.proc.pid)
    started = time.monotonic()
    proc = subprocess.run([kcat_binary(), "-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
                           "-q", "-f", "x", "-X", "fetch.message.max.bytes=4194304"],
                          capture_output=True, timeout=timeout)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"kcat consume of {topic} failed: {proc.stderr.decode()[-2000:]}")
    got = len(proc.stdout)
    if got != records:
        raise RuntimeError(f"consumed {got} records of {topic}, expected {records}")
    return {"records": got, "seconds": seconds, "recordsPerSec": got / seconds,
            "mbPerSec": got * size / seconds / 1e6,
            "cpuUsPerRecord": (cpu_ms(broker.proc.pid) - cpu) * 1000.0 / got}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker-bin", type=Path, default=REPO_ROOT / "target" / "release" / "tributary-broker")
    parser.add_argument("--records", type=int, default=200_000, help="records per topic")
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--segment-bytes", type=int, default=4 << 20)
    parser.add_argument("--rounds", type=int, default=2, help="reads of each topic, alternating")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per wait or read")
    parser.add_argument("--json", type=Path, help="also write raw results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tributary-tiered-bench-") as tmp:
        scratch = Path(tmp)
        s3 = S3Server(scratch).start()
        broker = None
        try:
            s3.create_bucket(BUCKET)
            broker = BrokerProcess("tributary", scratch / "broker", binary=args.broker_bin.resolve(),
                                   settings=broker_settings(s3, BUCKET, "bench")).start()
            base = {"segment.bytes": str(args.segment_bytes)}
            ck_create_topic(broker.bootstrap, TOPICS["local"], partitions=args.partitions, config=base)
            ck_create_topic(broker.bootstrap, TOPICS["tiered"], partitions=args.partitions,
                            config={**base, "remote.storage.enable": "true", "local.retention.bytes": "1"})
            for topic in TOPICS.values():
                produce(broker.bootstrap, topic, args.records, args.record_size, args.segment_bytes, scratch)
            print(f"produced {args.records:,} x {args.record_size} B records to each topic", flush=True)

            # Uploads done and local retention caught up: only the active segments stay.
            tiered = TOPICS["tiered"]
            def series(name: str, p: int) -> str:
                return f'{name}{{partition="{p}",topic="{tiered}"}}'

            # (Keyless records: some partition may get none, so the remote bytes count in sum.)
            def state() -> dict:
                return {p: {"lag": metric_sum(broker, series("tributary_tiered_upload_lag_bytes", p)),
                            "remote": metric_sum(broker, series("tributary_tiered_remote_log_bytes", p)),
                            "segments": sorted((f.name, f.stat().st_size) for f in (broker.data_dir / f"{tiered}-{p}").glob("*.log"))}
                        for p in range(args.partitions)}

            def tiered_done() -> bool:
                now = state()
                return (all(s["lag"] == 0 and len(s["segments"]) == 1 for s in now.values())
                        and sum(s["remote"] for s in now.values()) > 0)

            try:
                wait_until(tiered_done, args.timeout, "the tiered topic's closed segments to be uploaded and deleted locally")
            except Exception:
                print(f"tiered partitions: {state()}\nbroker log:\n{broker.log_tail(80)}", file=sys.stderr)
                raise
            disk = {kind: topic_disk_bytes(broker, topic) for kind, topic in TOPICS.items()}
            client = s3.client()
            bucket_bytes = sum(o["Size"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                               for o in page.get("Contents", []))

            reads: dict[str, list[dict]] = {"local": [], "tiered": []}
            for rnd in range(1, args.rounds + 1):
                for kind, topic in TOPICS.items():
                    r = consume(broker, topic, args.records, args.record_size, args.timeout)
                    reads[kind].append(r)
                    print(f"  round {rnd} {kind:<7} {r['recordsPerSec']:>10,.0f} rec/s {r['mbPerSec']:7.1f} MB/s",
                          flush=True)
        finally:
            if broker is not None:
                broker.stop()
            s3.stop()

    results = {"disk": disk, "bucketBytes": bucket_bytes, "reads": reads,
               "records": args.records, "recordSize": args.record_size}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    local_rate = mean([r["recordsPerSec"] for r in reads["local"]])
    tiered_rate = mean([r["recordsPerSec"] for r in reads["tiered"]])
    print("\n".join([
        "",
        f"Tiered storage: {args.records:,} x {args.record_size} B records per topic, {args.partitions} partitions, "
        f"{args.rounds} alternating reads each (mean shown); remote = moto S3 server on this machine",
        "",
        f"{'read from':<10} {'rec/s':>12} {'MB/s':>8} {'broker CPU us/rec':>18}",
        *(f"{kind:<10} {fmt(mean([r['recordsPerSec'] for r in reads[kind]]), ',.0f'):>12} "
          f"{fmt(mean([r['mbPerSec'] for r in reads[kind]]), '.1f'):>8} "
          f"{fmt(mean([r['cpuUsPerRecord'] for r in reads[kind]]), '.2f'):>18}"
          for kind in ("local", "tiered")),
        f"remote/local consume rate: {tiered_rate / local_rate:.2f}" if local_rate and tiered_rate else "",
        "",
        f"broker disk: {disk['local'] / 1e6:,.1f} MB for the local topic, {disk['tiered'] / 1e6:,.1f} MB for the "
        f"tiered one ({disk['tiered'] / max(disk['local'], 1):.1%}); bucket: {bucket_bytes / 1e6:,.1f} MB",
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
