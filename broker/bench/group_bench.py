#!/usr/bin/env python3
"""Consumer-group benchmark, Tributary beside the peer broker Tansu, alternating A B A B:

- time for a 3-member Java consumer group to become Stable (all members assigned) with the
  brokers' default settings (Tributary waits group.initial.rebalance.delay.ms = 3 s, as Kafka);
- throughput of one Java group consumer reading `--gib` GiB of 1 KiB records (6 partitions),
  from subscribe to the last byte ("total", which includes joining the group) and from the
  first record to the last ("reading").
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from harness import REPO_ROOT, BrokerProcess, java_build, kafka_java_jars, tansu_binary  # noqa: E402


def phase(classpath: str, *args: str) -> dict:
    cmd = ["java", "-Xms512m", "-Xmx2g", "-cp", classpath, "GroupBench", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(args[:1])} failed: {proc.stderr[-2000:]}")
    return lines[-1]


def one_run(kind: str, binary: Path, classpath: str, gib: float, scratch: Path, n: int) -> dict:
    broker = BrokerProcess(kind, scratch / f"{kind}-{n}", binary=binary)
    broker.start()
    try:
        b = broker.bootstrap
        stable = phase(classpath, "stable", "--bootstrap", b, "--topic", "stable", "--members", "3")
        size = int(gib * (1 << 30))
        phase(classpath, "fill", "--bootstrap", b, "--topic", "data", "--bytes", str(size), "--record-size", "1024")
        consume = phase(classpath, "consume", "--bootstrap", b, "--topic", "data", "--bytes", str(size // 1024 * 1024))
        return {"stable_ms": stable["ms"], "mb_per_s": consume["mb_per_s"], "reading_mb_per_s": consume["reading_mb_per_s"]}
    finally:
        broker.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker-bin", type=Path, default=REPO_ROOT / "target" / "release" / "tributary-broker")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    jars = kafka_java_jars()
    build = java_build(HERE / "java", HERE / "java" / "build", jars)
    classpath = ":".join([str(build), *map(str, jars)])
    binaries = {"tributary": args.broker_bin, "tansu": tansu_binary()}
    runs: dict[str, list[dict]] = {"tributary": [], "tansu": []}
    scratch = Path(tempfile.mkdtemp(prefix="group-bench-"))
    try:
        for n in range(args.rounds):
            for kind in ("tributary", "tansu"):
                r = one_run(kind, binaries[kind], classpath, args.gib, scratch, n)
                print(f"round {n + 1} {kind}: {r}", flush=True)
                runs[kind].append(r)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{'':28}{'tributary':>12}{'tansu':>12}{'ours/peer':>12}")
    for key, label in [("stable_ms", "3 members to Stable (ms)"), ("mb_per_s", "group consume MB/s (total)"),
                       ("reading_mb_per_s", "group consume MB/s (reading)")]:
        ours = statistics.mean(r[key] for r in runs["tributary"])
        peer = statistics.mean(r[key] for r in runs["tansu"])
        print(f"{label:28}{ours:12.1f}{peer:12.1f}{ours / peer:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
