#!/usr/bin/env python3
"""Topic creation at scale on a three-broker local cluster (`tributary-e2e up --brokers 3`).

Creates `--topics` topics one after another through the Kafka API (confluent-kafka's
AdminClient, librdkafka's CreateTopics, as librdkafka's own regression suite does), each with
`--partitions` partitions at replication factor 3, and prints the creation latency (request to
answer, which the broker gives once every partition is led) per block of `--block` topics:
p50, p99 and max. With a control plane whose per-topic cost does not grow with the number of
topics the blocks stay flat; a cost that grows shows as rising blocks, then as timeouts. A
creation that fails or is not answered within `--timeout` seconds is counted and named.

    cargo build --release -p tributary-broker -p tributary-operator -p tributary-e2e
    python3 broker/bench/topics_bench.py --topics 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from harness import REPO_ROOT  # noqa: E402
from localcluster import LocalCluster  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=30.0, help="per creation, seconds")
    parser.add_argument("--debug", action="store_true", help="debug binaries instead of release")
    parser.add_argument("--bin-dir", type=Path, help="run tributary-e2e, tributary-broker and tributary-operator "
                        "from this directory instead of target/<profile> (to compare two builds)")
    args = parser.parse_args()

    from confluent_kafka.admin import AdminClient, NewTopic

    profile = "debug" if args.debug else "release"
    bin_dir = args.bin_dir or REPO_ROOT / "target" / profile
    binaries = {kind: bin_dir / f"tributary-{kind}" for kind in ("broker", "operator")} if args.bin_dir else None
    (REPO_ROOT / "target").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="topics-bench-", dir=REPO_ROOT / "target"))
    cluster = LocalCluster(bin_dir / "tributary-e2e", state / "up", name="bench", namespace="bench",
                           release=not args.debug, binaries=binaries)
    failures: list[str] = []
    try:
        cluster.start(timeout=300)
        # librdkafka's own log lines (connection notices) would bury the figures.
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
        latencies: list[float] = []
        print(f"{args.topics} topics x {args.partitions} partitions, RF 3, {profile} binaries", flush=True)
        print(f"{'topics':>11}  {'p50 ms':>8}  {'p99 ms':>8}  {'max ms':>8}  failed", flush=True)
        block_failed = 0
        for n in range(args.topics):
            name = f"scale-{n:05d}"
            started = time.monotonic()
            futures = admin.create_topics([NewTopic(name, args.partitions, 3)],
                                          operation_timeout=args.timeout, request_timeout=args.timeout + 5)
            try:
                futures[name].result(timeout=args.timeout + 10)
                latencies.append(time.monotonic() - started)
            except Exception as e:  # noqa: BLE001 (every failure is counted and named)
                failures.append(f"{name}: {e}")
                block_failed += 1
            if (n + 1) % args.block == 0 or n + 1 == args.topics:
                block = latencies[-(args.block - block_failed):] if args.block > block_failed else []
                first = n + 1 - ((n % args.block) + 1) + 1
                if block:
                    print(f"{first:>5}-{n + 1:<5}  {statistics.median(block) * 1e3:8.0f}  "
                          f"{percentile(block, 0.99) * 1e3:8.0f}  {max(block) * 1e3:8.0f}  {block_failed}", flush=True)
                else:
                    print(f"{first:>5}-{n + 1:<5}  {'-':>8}  {'-':>8}  {'-':>8}  {block_failed}", flush=True)
                block_failed = 0
    finally:
        cluster.stop()
    for f in failures[:10]:
        print(f"  failed: {f}")
    print(f"{args.topics - len(failures)} created, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
