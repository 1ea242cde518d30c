#!/usr/bin/env python3
"""Side-by-side benchmark: Tributary against the peer broker Tansu on this machine.

Starts each broker in turn, alternating A B A B (`--rounds` of each), and drives both with the
same Java-client workload (java/Bench.java): after an unmeasured warm-up produce that lasts until
the client's JIT has compiled its produce paths, 1 KiB records to a 6-partition topic with
acks=all and then acks=1, lz4 and zstd compressed produce (acks=1) to a topic of their own, a
consume-back of the uncompressed records, and an end-to-end latency run at a fixed
1,000 records/s. Prints records/s, MB/s and p50/p99/p999 latency per broker and the ratio
ours/peer. `make bench` runs it against the release build.

`--cluster` (`make bench BENCH_MODE=cluster`) measures three release brokers instead, started
by `tributary-e2e up --release` (see cluster.py): produce acks=all throughput at replication
factor 3 against 1 (same records, record size and partitions), end-to-end latency at
replication factor 3 and `--rate` records/s, and the time from SIGKILL of a partition leader to
the first acks=all acknowledgement the new leader gives, with the default broker Lease and a
tuned one (`--tuned-lease`), the killed broker restarted at once by its pod and kept down.
`--cluster-parts` picks throughput, latency, fsync (RF 3 again once the brokers rolled onto
`replica.fsync.before.ack=true`), failover, roll (a config change rolls the brokers under an
acks=all producer: the time and the producer's errors) and rebalance (3 -> 5 brokers with
`--rebalance-partitions` partitions: the time until replicas are spread).

`--tls` (`make bench BENCH_MODE=tls`) measures our broker alone, over TLS against plaintext in
the same run: a broker with a PLAINTEXT and an SSL listener (certificates made for the run),
the same workload through each in alternating rounds, and the ratio TLS/plaintext.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from harness import REPO_ROOT, BrokerProcess, java_build, kafka_java_jars, tansu_binary  # noqa: E402
from workload import cpu_per_record, fmt, mean, run_workload  # noqa: E402

import cluster  # noqa: E402

BUILD_DIR = HERE / "java" / "build"
THROUGHPUT_PHASES = [
    ("produce-all", "produce acks=all"),
    ("produce-1", "produce acks=1"),
    ("produce-lz4", "produce lz4 acks=1"),
    ("produce-zstd", "produce zstd acks=1"),
    ("consume", "consume"),
]


def one_run(kind: str, binary: Path, classpath: str, args: argparse.Namespace, scratch: Path, n: int) -> dict:
    workdir = scratch / f"{n:02d}-{kind}"
    settings = {}
    broker = BrokerProcess(kind, workdir, binary=binary, settings=settings)
    broker.start()
    try:
        t = time.monotonic()
        phases = run_workload(broker.bootstrap, [broker.proc.pid], broker.kind, lambda: broker.log_tail(30),
                              classpath, args, args.phases)
        results = {r["phase"]: r for r in phases}
        print(f"  {kind:<10} round done in {time.monotonic() - t:5.1f}s: " + ", ".join(
            f"{p} {r['recordsPerSec']:,.0f} rec/s" for p, r in results.items() if "recordsPerSec" in r)
            + (f", latency p99 {results['latency']['p99Ms']:.2f} ms" if "latency" in results else ""),
            flush=True)
        return results
    finally:
        broker.stop()
        if broker.proc is not None and broker.proc.returncode not in (0, None, -15):
            print(f"  note: {kind} exited with {broker.proc.returncode}", flush=True)
        shutil.rmtree(workdir / "data", ignore_errors=True)


def tls_run(binary: Path, classpath: str, args: argparse.Namespace, scratch: Path) -> int:
    """TLS against plaintext on one broker binary, alternating, and the ratio of each phase."""
    from secmaterial import make_pki  # noqa: E402 (needs the cryptography package)
    from harness import free_port  # noqa: E402

    pki = make_pki(scratch / "pki")
    client = scratch / "client-ssl.properties"
    client.write_text(f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={pki.ca}\n")
    runs: dict[str, list[dict]] = {"plaintext": [], "tls": []}
    n = 0
    for rnd in range(1, args.rounds + 1):
        print(f"round {rnd}/{args.rounds}", flush=True)
        for mode in ("plaintext", "tls"):
            n += 1
            workdir = scratch / f"{n:02d}-{mode}"
            workdir.mkdir(parents=True)
            port, tls_port = free_port(), free_port()
            config = workdir / "broker.yaml"
            config.write_text(json.dumps({
                "listeners": f"PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{tls_port}",
                "security": {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.server)},
            }))
            broker = BrokerProcess("tributary", workdir, binary=binary, settings={"config": config}, port=port)
            broker.start()
            try:
                bootstrap = broker.bootstrap if mode == "plaintext" else f"127.0.0.1:{tls_port}"
                phases = run_workload(bootstrap, [broker.proc.pid], f"tributary ({mode})", lambda: broker.log_tail(30),
                                      classpath, args, args.phases,
                                      client_config=client if mode == "tls" else None)
                results = {r["phase"]: r for r in phases}
                runs[mode].append(results)
                print(f"  {mode:<10} " + ", ".join(f"{p} {r['recordsPerSec']:,.0f} rec/s"
                                                   for p, r in results.items() if "recordsPerSec" in r), flush=True)
            finally:
                broker.stop()
                shutil.rmtree(workdir / "data", ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    lines = ["", f"Tributary over TLS against plaintext: {args.records:,} x {args.record_size} B records per "
                 f"produce phase, {args.partitions} partitions, {args.rounds} alternating rounds each (mean shown)",
             "", f"{'phase':<18} {'plaintext rec/s':>16} {'MB/s':>8} {'TLS rec/s':>12} {'MB/s':>8} {'TLS/plain':>10}"
                 f" {'CPU us/rec plain':>17} {'TLS':>8}"]
    for phase, label in THROUGHPUT_PHASES:
        p_rec = mean([r[phase]["recordsPerSec"] for r in runs["plaintext"] if phase in r])
        t_rec = mean([r[phase]["recordsPerSec"] for r in runs["tls"] if phase in r])
        if p_rec is None and t_rec is None:
            continue
        p_mb = mean([r[phase]["mbPerSec"] for r in runs["plaintext"] if phase in r])
        t_mb = mean([r[phase]["mbPerSec"] for r in runs["tls"] if phase in r])
        p_cpu = mean([cpu_per_record(r[phase]) for r in runs["plaintext"] if phase in r])
        t_cpu = mean([cpu_per_record(r[phase]) for r in runs["tls"] if phase in r])
        lines.append(f"{label:<18} {fmt(p_rec, ',.0f'):>16} {fmt(p_mb, '.1f'):>8} {fmt(t_rec, ',.0f'):>12} "
                     f"{fmt(t_mb, '.1f'):>8} {ratio(t_rec, p_rec):>10} {fmt(p_cpu, '.2f'):>17} {fmt(t_cpu, '.2f'):>8}")
    print("\n".join(lines))
    return 0


def ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer == 0:
        return "n/a"
    r = ours / peer
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"


def report(runs: dict[str, list[dict]], args: argparse.Namespace) -> str:
    ours, peer = runs["tributary"], runs["tansu"]
    lines = [
        f"Tributary vs Tansu: {args.records:,} x {args.record_size} B records per produce phase, "
        f"{args.partitions} partitions, {args.rounds} alternating rounds each (mean shown)",
        "",
        f"{'phase':<18} {'tributary rec/s':>16} {'MB/s':>8} {'tansu rec/s':>14} {'MB/s':>8} {'ours/peer':>10}"
        f" {'CPU us/rec ours':>16} {'peer':>8}",
    ]
    for phase, label in THROUGHPUT_PHASES:
        o_rec = mean([r[phase]["recordsPerSec"] for r in ours if phase in r])
        o_mb = mean([r[phase]["mbPerSec"] for r in ours if phase in r])
        p_rec = mean([r[phase]["recordsPerSec"] for r in peer if phase in r])
        p_mb = mean([r[phase]["mbPerSec"] for r in peer if phase in r])
        if o_rec is None and p_rec is None:
            continue
        o_cpu = mean([cpu_per_record(r[phase]) for r in ours if phase in r])
        p_cpu = mean([cpu_per_record(r[phase]) for r in peer if phase in r])
        lines.append(f"{label:<18} {fmt(o_rec, ',.0f'):>16} {fmt(o_mb, '.1f'):>8} {fmt(p_rec, ',.0f'):>14} "
                     f"{fmt(p_mb, '.1f'):>8} {ratio(o_rec, p_rec):>10} {fmt(o_cpu, '.2f'):>16} {fmt(p_cpu, '.2f'):>8}")
    if any("latency" in r for r in ours + peer):
        lines += ["", f"end-to-end latency at {args.rate:,} records/s for {args.latency_seconds:g} s "
                      f"(default client settings; first {args.warmup_seconds:g} s excluded)",
                  f"{'percentile':<18} {'tributary ms':>16} {'tansu ms':>14} {'ours/peer':>10}  (lower is better)"]
        for key, label in (("p50Ms", "p50"), ("p99Ms", "p99"), ("p999Ms", "p99.9")):
            o = mean([r["latency"][key] for r in ours if "latency" in r])
            p = mean([r["latency"][key] for r in peer if "latency" in r])
            lines.append(f"{label:<18} {fmt(o, '.2f'):>16} {fmt(p, '.2f'):>14} {ratio(o, p):>10}")
    lines += ["", "Per-round figures are printed above the table; on a shared machine single rounds vary."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker-bin", type=Path, default=REPO_ROOT / "target" / "release" / "tributary-broker")
    parser.add_argument("--tansu-bin", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=2, help="runs per broker, alternating A B A B")
    parser.add_argument("--records", type=int, default=400_000, help="records per produce phase")
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rate", type=int, default=1000, help="latency run: records per second")
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--warmup-seconds", type=float, default=1)
    parser.add_argument("--warmup-records", type=int, default=1_000_000,
                        help="unmeasured records produced first at least (acks=1 and acks=all), more while the "
                             "client's JIT is still compiling")
    parser.add_argument("--phases", default="warmup,produce-all,produce-1,produce-lz4,produce-zstd,consume,latency")
    parser.add_argument("--only", choices=["tributary", "tansu"], help="run one broker only (no ratios)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per workload run")
    parser.add_argument("--json", type=Path, help="also write raw results here")
    parser.add_argument("--tls", action="store_true", help="our broker over TLS against plaintext (no peer)")
    cluster_args = parser.add_argument_group("cluster mode")
    cluster_args.add_argument("--cluster", action="store_true",
                              help="three brokers through tributary-e2e up --release instead of the side-by-side run")
    cluster_args.add_argument("--rebalance-partitions", type=int, default=100,
                              help="RF 3 partitions the rebalance part spreads from 3 to 5 brokers")
    cluster_args.add_argument("--rebalance-records", type=int, default=10_000,
                              help="records of 100 B written to them first")
    cluster_args.add_argument("--cluster-parts", default="throughput,latency,fsync,failover,roll,rebalance",
                              help="which cluster measurements to run (comma-separated)")
    cluster_args.add_argument("--e2e-bin", type=Path, default=REPO_ROOT / "target" / "release" / "tributary-e2e")
    cluster_args.add_argument("--failovers", type=int, default=3, help="leader kills per lease setting")
    cluster_args.add_argument("--failover-rate", type=int, default=50,
                              help="records/s of the acks=all producer during the kills")
    cluster_args.add_argument("--tuned-lease", default="2,0.5", metavar="DURATION,RENEW",
                              help="the tuned KafkaCluster spec.coordination: leaseDurationSeconds and the "
                                   "renew interval in seconds (fractions become renewIntervalMilliseconds)")
    cluster_args.add_argument("--cluster-timeout", type=float, default=300,
                              help="seconds a cluster may take to become Ready")
    args = parser.parse_args()

    if args.cluster:
        if not args.broker_bin.resolve().is_file():
            print(f"bench: tributary binary {args.broker_bin} not found", file=sys.stderr)
            return 2
        # A SIGTERM unwinds like Ctrl-C, so the clusters are stopped on the way out.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        jars = kafka_java_jars()
        build = java_build(HERE / "java", BUILD_DIR, jars)
        return cluster.run(args, ":".join([str(build), *map(str, jars)]), jars)

    binaries = {
        "tributary": args.broker_bin.resolve(),
        "tansu": (args.tansu_bin or tansu_binary()).resolve(),
    }
    for kind, path in binaries.items():
        if not path.is_file() and args.only in (None, kind) and not (args.tls and kind == "tansu"):
            print(f"bench: {kind} binary {path} not found", file=sys.stderr)
            return 2
    jars = kafka_java_jars()
    build = java_build(HERE / "java", BUILD_DIR, jars)
    classpath = ":".join([str(build), *map(str, jars)])

    if args.tls:
        scratch_root = REPO_ROOT / "target" / "bench"
        scratch_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="tls-", dir=scratch_root))
        try:
            return tls_run(binaries["tributary"], classpath, args, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    kinds = [args.only] if args.only else ["tributary", "tansu"]
    runs: dict[str, list[dict]] = {"tributary": [], "tansu": []}
    # Broker data on the repo's disk (target/ is ignored), never a tmpfs that would make fsync free.
    scratch_root = REPO_ROOT / "target" / "bench"
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=scratch_root))
    n = 0
    try:
        for rnd in range(1, args.rounds + 1):
            print(f"round {rnd}/{args.rounds}", flush=True)
            for kind in kinds:
                n += 1
                runs[kind].append(one_run(kind, binaries[kind], classpath, args, scratch, n))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    print()
    if args.only:
        print(json.dumps(runs[args.only], indent=2))
    else:
        print(report(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
