#!/usr/bin/env python3
"""Consumer-group benchmark: Tributary with the classic group protocol beside the consumer group
protocol of Kafka 4 (KIP-848, Java client `group.protocol=consumer`), alternating A B A B.

Every run starts a fresh broker serving `group.coordinator.rebalance.protocols=classic,consumer`
with otherwise default settings, so only the clients' protocol differs. The Java 3.9 client
(java/GroupBench.java) uses its defaults too: classic means its default assignor (range, eager),
consumer the broker's default assignor (uniform); `--protocols classic,cooperative,consumer`
adds classic with the cooperative-sticky assignor, and `--broker-setting` passes a broker flag to
every run (as group-consumer-heartbeat-interval-ms=1000). Per protocol it measures:

- time to stable: a `--members` (3) member group started together, ms until every partition of
  an empty 6-partition topic is owned by exactly one member and every member owns one (classic
  includes the broker's group.initial.rebalance.delay.ms = 3 s, as Kafka);
- a rebalance under load: a producer writes `--rate` (2,000) records/s of `--record-size`
  (1 KiB) round-robin into a `--partitions` (6) partition topic; 3 members consume, with
  auto-commit off and each committing what it processed when partitions are revoked; once they
  keep up, a 4th member joins and, when the assignment has settled (no change for `--quiet-s`),
  one of the first members leaves cleanly (close()). For the join and the leave:
  - pause: the longest interval in which the group as a whole consumed nothing although a
    produced record was waiting;
  - longest gap of a partition that stayed with its owner ("not moved") and of one that moved:
    the longest time a partition's next record waited after its previous one was consumed;
    under the consumer protocol partitions that stay put should keep flowing;
  - the time until the new member owns its share (join) and until the assignment settled;
- correctness over the run, once everything produced has been consumed: partitions owned by two
  members at once (from the rebalance callbacks), records consumed twice, records never
  consumed, failed commits and partitions lost (onPartitionsLost).

The table shows each protocol's mean over the rounds and the ratio consumer/classic (lower is
better for times); per-round figures are printed above it.

`--peer` instead runs the earlier comparison with the peer broker Tansu, also alternating: the
time a 3-member classic group takes to become Stable, and one group consumer reading `--gib`
GiB of 1 KiB records (6 partitions), from subscribe to the last byte ("total", which includes
joining the group) and from the first record to the last ("reading").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from harness import REPO_ROOT, BrokerProcess, java_build, kafka_java_jars, tansu_binary  # noqa: E402
from workload import fmt, mean  # noqa: E402

BUILD_DIR = HERE / "java" / "build"
PROTOCOLS = ("classic", "cooperative", "consumer")


def phase(classpath: str, timeout: float, log: Path, *args: str) -> dict:
    """Runs one GroupBench phase; its JSON line, or an error naming the phase and the log."""
    cmd = ["java", "-Xms256m", "-Xmx1g", "-cp", classpath, "GroupBench", *args]
    with open(log, "ab") as err:
        err.write(f"\n===== {' '.join(args)}\n".encode())
        err.flush()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"GroupBench {args[0]} did not finish within {timeout:.0f} s "
                               f"(killed); its log:\n{tail(log)}") from None
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"GroupBench {args[0]} failed (exit {proc.returncode}); its log:\n{tail(log)}")
    return lines[-1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def protocol_run(protocol: str, binary: Path, classpath: str, args: argparse.Namespace, workdir: Path) -> dict:
    settings = {"group_coordinator_rebalance_protocols": "classic,consumer", **dict(args.broker_setting)}
    broker = BrokerProcess("tributary", workdir, binary=binary, settings=settings)
    broker.start()
    log = workdir / "groupbench.log"
    try:
        b = broker.bootstrap
        stable = phase(classpath, args.timeout, log, "stable", "--bootstrap", b, "--topic", "stable",
                       "--members", str(args.members), "--protocol", protocol, "--timeout-s", "120")
        reb = phase(classpath, args.timeout, log, "rebalance", "--bootstrap", b, "--topic", "load",
                    "--protocol", protocol, "--members", str(args.members), "--partitions", str(args.partitions),
                    "--rate", str(args.rate), "--record-size", str(args.record_size), "--warm-s", str(args.warm_s),
                    "--quiet-s", str(args.quiet_s), "--timeout-s", "120")
        reb["stable_ms"] = stable["ms"]
        return reb
    except Exception:
        print(f"  broker log tail:\n{broker.log_tail(20)}", file=sys.stderr)
        raise
    finally:
        broker.stop()
        shutil.rmtree(workdir / "data", ignore_errors=True)


def summary(r: dict) -> str:
    j, lv = r["join"], r["leave"]
    return (f"stable {r['stable_ms']} ms; join: pause {j['pause_ms']:.0f}, not moved {fmt(j['unmoved_gap_ms'], '.0f')}, "
            f"moved {fmt(j['moved_gap_ms'], '.0f')}, share {j['share_ms']:.0f} ms; leave: pause {lv['pause_ms']:.0f}, "
            f"not moved {fmt(lv['unmoved_gap_ms'], '.0f')}, moved {fmt(lv['moved_gap_ms'], '.0f')}, settled "
            f"{lv['settled_ms']:.0f} ms; overlaps {r['overlaps']}, duplicates {r['duplicates']}, "
            f"never consumed {r['never_consumed']}, commit failures {r['commit_failures']}")


def rows(args: argparse.Namespace) -> list:
    """(label, getter, format, kind) of the table: kind "time" is averaged with a ratio, "count"
    averaged without one, "sum" summed over the rounds."""
    n, parts = args.members, args.partitions
    return [
        (f"time to stable, {n} members (ms)", lambda r: r["stable_ms"], ",.0f", "time"),
        ("group formed under load (ms)", lambda r: r["formed_ms"], ",.0f", "time"),
        ("steady: longest group gap (ms)", lambda r: r["steady_pause_ms"], ",.0f", "time"),
        (f"join {n} -> {n + 1}", None, None, None),
        ("  group pause (ms)", lambda r: r["join"]["pause_ms"], ",.0f", "time"),
        ("  gap, partitions not moved (ms)", lambda r: r["join"]["unmoved_gap_ms"], ",.0f", "time"),
        ("  gap, partitions moved (ms)", lambda r: r["join"]["moved_gap_ms"], ",.0f", "time"),
        (f"  partitions not moved (of {parts})", lambda r: r["join"]["unmoved_partitions"], ".1f", "count"),
        ("  new member owns its share (ms)", lambda r: r["join"]["share_ms"], ",.0f", "time"),
        (f"leave {n + 1} -> {n} (clean close)", None, None, None),
        ("  group pause (ms)", lambda r: r["leave"]["pause_ms"], ",.0f", "time"),
        ("  gap, partitions not moved (ms)", lambda r: r["leave"]["unmoved_gap_ms"], ",.0f", "time"),
        ("  gap, partitions moved (ms)", lambda r: r["leave"]["moved_gap_ms"], ",.0f", "time"),
        (f"  partitions not moved (of {parts})", lambda r: r["leave"]["unmoved_partitions"], ".1f", "count"),
        ("  assignment settled (ms)", lambda r: r["leave"]["settled_ms"], ",.0f", "time"),
        ("correctness (sum over rounds)", None, None, None),
        ("  partitions owned twice at once", lambda r: r["overlaps"], ",.0f", "sum"),
        ("  records consumed twice", lambda r: r["duplicates"], ",.0f", "sum"),
        ("  records never consumed", lambda r: r["never_consumed"], ",.0f", "sum"),
        ("  failed commits", lambda r: r["commit_failures"], ",.0f", "sum"),
        ("  partitions lost (callback)", lambda r: r["lost_callbacks"], ",.0f", "sum"),
        ("  records produced", lambda r: r["produced"], ",.0f", "sum"),
    ]


def ratio(ours: float | None, base: float | None) -> str:
    if ours is None or base is None or base == 0:
        return "n/a"
    return f"{ours / base:.2f}x"


def report(runs: dict[str, list[dict]], args: argparse.Namespace) -> str:
    protocols = list(runs)
    width = 13
    head = f"{'':34}" + "".join(f"{p:>{width}}" for p in protocols)
    if len(protocols) > 1:
        head += f"{protocols[-1] + '/' + protocols[0]:>{max(width, len(protocols[-1]) + len(protocols[0]) + 3)}}"
    lines = [
        f"Tributary, consumer groups by protocol: {args.members} members, {args.partitions} partitions, "
        f"{args.rate:,} records/s of {args.record_size} B, {args.rounds} alternating round(s) each "
        f"(mean shown; sums for correctness)",
        "",
        head,
    ]
    for label, get, spec, kind in rows(args):
        if get is None:
            lines.append(label)
            continue
        values = []
        for p in protocols:
            xs = [get(r) for r in runs[p] if get(r) is not None]
            values.append((sum(xs) if xs else None) if kind == "sum" else mean(xs))
        line = f"{label:34}" + "".join(f"{fmt(v, spec):>{width}}" for v in values)
        if len(protocols) > 1 and kind == "time":
            line += f"{ratio(values[-1], values[0]):>{width}}"
        lines.append(line)
    lines += ["", "pause: longest time the whole group consumed nothing while a record waited; gap: longest time "
                  "a partition's next record waited after its previous one was consumed (in the rebalance's window).",
              "Per-round figures are printed above the table; on a shared machine single rounds vary."]
    return "\n".join(lines)


def protocols_main(args: argparse.Namespace, classpath: str) -> int:
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        print(f"group_bench: unknown protocol(s) {unknown}; choose from {', '.join(PROTOCOLS)}", file=sys.stderr)
        return 2
    binary = args.broker_bin.resolve()
    if not binary.is_file():
        print(f"group_bench: tributary binary {binary} not found (cargo build --release -p tributary-broker)",
              file=sys.stderr)
        return 2
    runs: dict[str, list[dict]] = {p: [] for p in protocols}
    scratch_root = REPO_ROOT / "target" / "bench"
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="group-", dir=scratch_root))
    n = 0
    ok = False
    try:
        for rnd in range(1, args.rounds + 1):
            print(f"round {rnd}/{args.rounds}", flush=True)
            for protocol in protocols:
                n += 1
                t = time.monotonic()
                r = protocol_run(protocol, binary, classpath, args, scratch / f"{n:02d}-{protocol}")
                runs[protocol].append(r)
                print(f"  {protocol:<12} ({time.monotonic() - t:4.0f} s) {summary(r)}", flush=True)
                for detail in r.get("overlap_details", "[]").strip("[]").split(", "):
                    if detail:
                        print(f"    overlap: {detail}", flush=True)
        ok = True
    finally:
        if ok or not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"group_bench: logs kept in {scratch}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    print()
    print(report(runs, args))
    return 0


def peer_run(kind: str, binary: Path, classpath: str, args: argparse.Namespace, workdir: Path) -> dict:
    broker = BrokerProcess(kind, workdir, binary=binary)
    broker.start()
    log = workdir / "groupbench.log"
    try:
        b = broker.bootstrap
        stable = phase(classpath, args.timeout, log, "stable", "--bootstrap", b, "--topic", "stable", "--members", "3")
        size = int(args.gib * (1 << 30))
        phase(classpath, args.timeout, log, "fill", "--bootstrap", b, "--topic", "data", "--bytes", str(size),
              "--record-size", "1024")
        consume = phase(classpath, args.timeout, log, "consume", "--bootstrap", b, "--topic", "data",
                        "--bytes", str(size // 1024 * 1024))
        return {"stable_ms": stable["ms"], "mb_per_s": consume["mb_per_s"], "reading_mb_per_s": consume["reading_mb_per_s"]}
    finally:
        broker.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)


def peer_main(args: argparse.Namespace, classpath: str) -> int:
    binaries = {"tributary": args.broker_bin.resolve(), "tansu": (args.tansu_bin or tansu_binary()).resolve()}
    for kind, path in binaries.items():
        if not path.is_file():
            print(f"group_bench: {kind} binary {path} not found", file=sys.stderr)
            return 2
    runs: dict[str, list[dict]] = {"tributary": [], "tansu": []}
    scratch = Path(tempfile.mkdtemp(prefix="group-bench-"))
    try:
        for n in range(args.rounds):
            for kind in ("tributary", "tansu"):
                r = peer_run(kind, binaries[kind], classpath, args, scratch / f"{kind}-{n}")
                print(f"round {n + 1} {kind}: {r}", flush=True)
                runs[kind].append(r)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    print(f"\n{'':30}{'tributary':>12}{'tansu':>12}{'ours/peer':>12}")
    for key, label in [("stable_ms", "3 members to Stable (ms)"), ("mb_per_s", "group consume MB/s (total)"),
                       ("reading_mb_per_s", "group consume MB/s (reading)")]:
        ours = mean([r[key] for r in runs["tributary"]])
        peer = mean([r[key] for r in runs["tansu"]])
        print(f"{label:30}{fmt(ours, '12.1f')}{fmt(peer, '12.1f')}{ratio(ours, peer):>12}")
    return 0


def setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected FLAG=VALUE, got {text!r}")
    return key.removeprefix("--"), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker-bin", type=Path, default=REPO_ROOT / "target" / "release" / "tributary-broker")
    parser.add_argument("--rounds", type=int, default=2, help="runs per protocol (or broker), alternating A B A B")
    parser.add_argument("--protocols", default="classic,consumer",
                        help=f"group protocols compared, in column order (from {', '.join(PROTOCOLS)}); "
                             "the ratio is last/first")
    parser.add_argument("--members", type=int, default=3, help="members of the group before one joins")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the loaded topic")
    parser.add_argument("--rate", type=int, default=2000, help="records/s the producer writes during the rebalances")
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--warm-s", type=float, default=5, help="steady consumption before the join, in seconds")
    parser.add_argument("--quiet-s", type=float, default=8,
                        help="an assignment counts as settled after this long without change (longer than the "
                             "consumer protocol's 5 s heartbeat interval)")
    parser.add_argument("--broker-setting", action="append", default=[], type=setting, metavar="FLAG=VALUE",
                        help="a tributary-broker flag for every run, as group-consumer-heartbeat-interval-ms=1000 "
                             "(repeatable; default: the broker's defaults)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a Java phase may take before it is killed")
    parser.add_argument("--json", type=Path, help="also write raw results here")
    parser.add_argument("--keep", action="store_true", help="keep broker and client logs of a failed run")
    peer = parser.add_argument_group("peer comparison")
    peer.add_argument("--peer", action="store_true",
                      help="Tributary against Tansu (classic group: time to Stable, group consume throughput) "
                           "instead of the protocol comparison")
    peer.add_argument("--tansu-bin", type=Path, default=None)
    peer.add_argument("--gib", type=float, default=1.0, help="GiB the group consumer reads (--peer)")
    args = parser.parse_args()
    if args.members < 1 or args.partitions < args.members + 1:
        parser.error("need at least one member and more partitions than members")
    # A SIGTERM unwinds like Ctrl-C, so brokers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    jars = kafka_java_jars()
    build = java_build(HERE / "java", BUILD_DIR, jars)
    classpath = os.pathsep.join([str(build), *map(str, jars)])
    return peer_main(args, classpath) if args.peer else protocols_main(args, classpath)


if __name__ == "__main__":
    sys.exit(main())
