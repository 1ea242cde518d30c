"""Cluster mode of the benchmark (`bench.py --cluster`): three release brokers on this machine,
as `tributary-e2e up --release --brokers 3` runs them (the local control plane, the chart
installed with helm, a KafkaCluster; each broker a process on a loopback IP of its own, data on
the repository's disk under target/bench), measured for

1. produce acks=all throughput to a replication factor 3 topic against a replication factor 1
   topic: java/Bench.java's phases produce-all@3 and produce-all@1, alternating `--rounds`
   times after one warm-up (min.insync.replicas 2 and 1),
2. end-to-end latency at `--rate` records/s to a replication factor 3 topic with acks=all
   (Bench.java's latency phase, latency@3),
3. failover: an idempotent acks=all producer sends to one partition of a 3-partition
   replication factor 3 topic at `--failover-rate` records/s (`KafkaCli history-produce`, the
   Java driver of the e2e consistency tests, printing each acknowledgement as it happens); the
   partition's leader is SIGKILLed (its pod's process group, as a crash), and what a producer
   sees of the failover is the time from the kill to the first acknowledgement of a record the
   new leader wrote (its batch's leader epoch, read back afterwards, is the new one). Watches on
   the KafkaPartitions and the pods split it into kill to election and, where the broker is
   restarted, kill to its pod running it again. `--failovers` kills in each of two modes
   (FAILOVER_MODES: the broker restarted at once by its pod, a new incarnation; or kept down
   until the measurement is over: its followers find its address refusing connections and say
   so in their Leases, or else its Lease's expiry reveals it), each of a leader
   not killed before where there is one, with the KafkaCluster's default broker Lease timing
   (first cluster) and with `--tuned-lease` (a second cluster). Each kill waits until every ISR
   is whole again,
4. a rolling restart: a config change rolls the brokers under an idempotent acks=all producer;
   the time until every broker runs the new revision and is back in every ISR, and the sends
   that failed (by error class) or that the client retried,
5. a scale-out: `--rebalance-partitions` RF 3 partitions with data, `spec.brokers` 3 -> 5, and
   the time until the operator's bounded reassignments have spread the replicas.

Every process is stopped at the end, on failure too: `up` gets SIGTERM (its pods stop with it),
and any process still running from the cluster's state directory is SIGKILLed by its pid.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from harness import JAVA_SRC_DIR, REPO_ROOT, JavaClient, java_build, wait_until
from localcluster import KUBECTL, LocalCluster
from workload import cpu_per_record, fmt, mean, run_workload

NAME = "bench"
NAMESPACE = "bench"
BROKERS = 3
# Bench.java's topics at these replication factors, and the phases run on them.
THROUGHPUT = [("produce-all@1", "produce acks=all RF 1"), ("produce-all@3", "produce acks=all RF 3")]
LATENCY = "latency@3"
# The RF 3 phase run again once followers fsync before acknowledging (`replica.fsync.before.ack`).
FSYNC = "+fsync"
FSYNC_THROUGHPUT = ("produce-all@3", "produce acks=all RF 3, followers fsync")
RF3_TARGET = 0.40
# Kill to first acknowledgement: a killed leader's followers find its address refusing
# connections and say so, whatever the Lease timing (issue 47's goal: under 2 s).
FAILOVER_TARGETS = {"default": 2.0, "tuned": 2.0}


def Cluster(e2e_bin: Path, binaries: dict[str, Path], state_dir: Path,
            lease: Optional[tuple[int, float]]) -> LocalCluster:
    """The bench's cluster: three release brokers running copies of the binaries under test."""
    return LocalCluster(e2e_bin, state_dir, name=NAME, namespace=NAMESPACE, brokers=BROKERS, release=True,
                        binaries=binaries, lease=lease)


class Lines:
    """Follows a process's stdout on a thread, calling `handle(line, arrival monotonic ns)`."""

    def __init__(self, proc: subprocess.Popen, handle: Callable[[str, int], None]) -> None:
        self.proc = proc
        self.thread = threading.Thread(target=self._run, args=(handle,), daemon=True)
        self.thread.start()

    def _run(self, handle: Callable[[str, int], None]) -> None:
        for line in self.proc.stdout:
            handle(line, time.monotonic_ns())


class Acks:
    """The output of `KafkaCli history-produce`: every acknowledgement on this process's
    monotonic clock (the driver prints its System.nanoTime() at start, CLOCK_MONOTONIC as
    Python's time.monotonic_ns(), and each ack's ms since then)."""

    def __init__(self) -> None:
        self.base_ns: Optional[int] = None
        self.acks: list[tuple[int, int]] = []
        self.errors: list[dict] = []
        self.done: Optional[dict] = None

    def line(self, line: str, _arrived: int) -> None:
        if not line.startswith("{"):
            return
        event = json.loads(line)
        kind = event.get("event")
        if kind == "start":
            self.base_ns = event["nanoTime"]
        elif kind == "ack" and self.base_ns is not None:
            self.acks.append((self.base_ns + event["ms"] * 1_000_000, event["offset"]))
        elif kind == "error":
            self.errors.append(event)
        elif kind == "done":
            self.done = event

    def after(self, t_ns: int) -> list[tuple[int, int]]:
        """The acknowledgements stamped after `t_ns`: (monotonic ns, offset), in time order."""
        return sorted(a for a in list(self.acks) if a[0] > t_ns)


class Watch:
    """`kubectl get <kind> -w -o jsonpath=<template>`: each event's fields, split on spaces,
    with the time the line reached us."""

    def __init__(self, cluster: Cluster, kind: str, template: str) -> None:
        env = {**os.environ, "KUBECONFIG": cluster.kubeconfig}
        self.proc = subprocess.Popen(
            [str(KUBECTL), "get", kind, "-n", NAMESPACE, "-w", "-o", f"jsonpath={template}{{\"\\n\"}}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events: list[tuple[int, list[str]]] = []
        self.lock = threading.Lock()
        Lines(self.proc, self.line)

    def line(self, line: str, arrived: int) -> None:
        with self.lock:
            self.events.append((arrived, line.split()))

    def first(self, after_ns: int, match: Callable[[list[str]], bool]) -> Optional[tuple[int, list[str]]]:
        """The first event after `after_ns` whose fields `match`."""
        with self.lock:
            return next(((at, f) for at, f in self.events if at > after_ns and match(f)), None)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


# How a killed leader comes back: "restarted" at once by its pod (a container restart; the
# restarted broker registers as a new incarnation, which is what ends the old one's
# leadership), or "down" until the measurement is over (its pod cannot start it: the binary is
# not executable meanwhile, so the pod waits out a RunContainerError back-off, as when its node
# is lost), where only the broker Lease's expiry tells the controller.
FAILOVER_MODES = ("restarted", "down")


def failover_trials(cluster: Cluster, java: JavaClient, args: argparse.Namespace, label: str,
                    broker_bin: Path) -> dict[str, list[dict]]:
    """SIGKILLs partition leaders of a 3-partition RF 3 topic under an acks=all producer,
    `args.failovers` times per mode; returns each mode's trials."""
    topic = f"failover-{label}"
    cluster.create_topic(topic, BROKERS, 3, 2)

    def partitions() -> Optional[dict[int, dict]]:
        """The topic's partition statuses once each is led with a full ISR."""
        found = {p["spec"]["partition"]: p.get("status") or {} for p in cluster.get("kafkapartitions")["items"]
                 if p["spec"]["topic"] == topic}
        full = len(found) == BROKERS and all(s.get("leader", -1) >= 0 and len(s.get("isr", [])) == BROKERS
                                             for s in found.values())
        return found if full else None

    wait_until(partitions, 120, f"{topic} led with ISRs of {BROKERS}")
    leaders = Watch(cluster, "kafkapartitions",
                    "{.spec.topic} {.spec.partition} {.status.leader} {.status.leaderEpoch}")
    pods = Watch(cluster, "pods", "{.metadata.name} {.status.containerStatuses[0].containerID}")
    kills: dict[int, int] = {}
    results: dict[str, list[dict]] = {}
    try:
        for mode in FAILOVER_MODES:
            results[mode] = []
            for n in range(1, args.failovers + 1):
                statuses = wait_until(partitions, 240, f"{topic}'s ISRs back to {BROKERS} brokers")
                # A leader never killed before if there is one: a pod's second crash within
                # 10 minutes waits out a 10 s back-off before its restart, as in Kubernetes.
                partition = min(statuses, key=lambda p: (kills.get(statuses[p]["leader"], 0), p))
                trial = one_failover(cluster, java, args, topic, partition, statuses[partition], mode, broker_bin,
                                     leaders, pods)
                kills[trial["killed"]] = kills.get(trial["killed"], 0) + 1
                trial["trial"] = n
                results[mode].append(trial)
                back = f", its pod back {trial['restartS']:.2f} s after the kill" if trial["restartS"] else ""
                print(f"  {label} lease, {mode}, trial {n}: killed broker {trial['killed']} (leader of {topic}-"
                      f"{partition}); broker {trial['newLeader']} leads {trial['killToElectionS']:.2f} s later, "
                      f"first ack {trial['killToAckS']:.2f} s after the kill{back}", flush=True)
    finally:
        broker_bin.chmod(0o755)
        leaders.stop()
        pods.stop()
    return results


def one_failover(cluster: Cluster, java: JavaClient, args: argparse.Namespace, topic: str, partition: int,
                 status: dict, mode: str, broker_bin: Path, leaders: Watch, pods: Watch) -> dict:
    """One kill of `partition`'s leader while a producer sends to it. The acknowledgement that
    counts is the first after the kill of a record the new leader wrote: its batch carries a
    later leader epoch (read back afterwards), so an answer the old leader sent just before it
    died is not mistaken for one."""
    acks = Acks()
    errors = tempfile.TemporaryFile("w+")
    cmd = ["java", *java.jvm_flags, "-cp", java.classpath, "KafkaCli", "history-produce",
           "--bootstrap", cluster.bootstrap, "--topic", topic, "--partition", str(partition),
           "--rate", str(args.failover_rate), "--value-size", "100", "--delivery-timeout-ms", "120000",
           "--stdin-stop"]
    producer = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True)
    Lines(producer, acks.line)
    try:
        # Two seconds of acknowledgements at the steady rate first.
        wait_until(lambda: acks.acks, 60, "the producer's first acknowledgement")
        time.sleep(2.0)
        leader, epoch = status["leader"], status["leaderEpoch"]
        pod = f"{NAME}-broker-{leader}"
        pid = cluster.broker_pids()[leader]
        if mode == "down":
            broker_bin.chmod(0o644)
        killed_at = time.monotonic_ns()
        os.killpg(pid, signal.SIGKILL)
        elected = wait_until(
            lambda: leaders.first(killed_at, lambda f: f[:2] == [topic, str(partition)] and len(f) == 4
                                  and int(f[2]) >= 0 and int(f[3]) > epoch),
            120, "the election to be seen")
        # An acknowledgement after the election was seen comes from the new leader.
        wait_until(lambda: acks.after(elected[0]), 120, "an acknowledgement from the new leader")
        restarted = None
        if mode == "restarted":
            restarted = wait_until(
                lambda: pods.first(killed_at, lambda f: len(f) == 2 and f[0] == pod
                                   and f[1] != f"tributary-e2e://{pid}"),
                60, f"{pod} to run again")
        broker_bin.chmod(0o755)
        producer.stdin.close()
        producer.wait(150)
        if producer.returncode != 0 or acks.done is None:
            errors.seek(0)
            raise RuntimeError(f"history-produce failed (exit {producer.returncode}): {errors.read()[-2000:]}")
        if acks.errors:
            print(f"  note: {len(acks.errors)} records failed, first: {acks.errors[0]}", flush=True)
        epochs = {r["offset"]: r["leaderEpoch"] for r in java.run("history-consume", "--bootstrap", cluster.bootstrap,
                                                                   "--topic", topic).events("read")
                  if r["partition"] == partition}
        acked_at = next((at for at, offset in acks.after(killed_at) if epochs.get(offset, -1) > epoch), None)
        if acked_at is None:
            raise RuntimeError(f"no acknowledged record of {topic}-{partition} after the kill reads back with a leader "
                               f"epoch above {epoch}")
        return {
            "mode": mode,
            "partition": partition,
            "killed": leader,
            "newLeader": int(elected[1][2]),
            "killToAckS": (acked_at - killed_at) / 1e9,
            "killToElectionS": (elected[0] - killed_at) / 1e9,
            "restartS": (restarted[0] - killed_at) / 1e9 if restarted else None,
            "producerErrors": len(acks.errors),
        }
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        errors.close()


def throughput_and_latency(cluster: Cluster, classpath: str, args: argparse.Namespace, parts: set[str]) -> list[dict]:
    phases = ["warmup@1"]
    if "throughput" in parts:
        phases += [p for _ in range(args.rounds) for p, _label in THROUGHPUT]
    if "latency" in parts:
        phases.append(LATENCY)
    pids = cluster.broker_pids().values()
    started = time.monotonic()
    results = run_workload(cluster.bootstrap, pids, "the cluster", cluster.broker_log_tail, classpath, args,
                           ",".join(phases))
    for r in results:
        if "recordsPerSec" in r:
            print(f"  {r['phase']:<14} {r['recordsPerSec']:>10,.0f} rec/s  {cpu_per_record(r):6.2f} broker CPU us/rec",
                  flush=True)
        elif "p99Ms" in r:
            print(f"  {r['phase']:<14} p50 {r['p50Ms']:.2f} ms, p99 {r['p99Ms']:.2f} ms, p99.9 {r['p999Ms']:.2f} ms",
                  flush=True)
    print(f"  workload done in {time.monotonic() - started:.0f} s", flush=True)
    return results


def roll_config(cluster: Cluster, key: str, value: str, timeout: float) -> float:
    """Sets `key` in the KafkaCluster's `spec.config` and waits until the operator has rolled
    every broker onto it (the StatefulSet's new revision on every pod, all Ready) and every
    partition's ISR is whole again; returns the seconds that took."""
    name = f"{NAME}-broker"
    before = set(cluster.broker_pids().values())
    started = time.monotonic()
    cluster.kubectl("patch", "kafkacluster", NAME, "-n", NAMESPACE, "--type", "merge", "-p",
                    json.dumps({"spec": {"config": {key: value}}}))

    def rolled() -> bool:
        """Every broker runs as a new process, and the StatefulSet counts them all Ready."""
        now = cluster.broker_pids()
        status = cluster.get("statefulset", name).get("status", {})
        return (len(now) == BROKERS and not before & set(now.values())
                and status.get("readyReplicas") == BROKERS)

    wait_until(rolled, timeout, f"the brokers to roll onto {key}={value}")
    wait_until(lambda: all(p.get("status", {}).get("leader", -1) >= 0
                           and len(p["status"].get("isr", [])) == len(p["spec"]["replicas"])
                           for p in cluster.get("kafkapartitions")["items"]),
               timeout, "every partition led with its whole ISR")
    cluster.refresh_bootstrap(timeout)
    return time.monotonic() - started


def follower_fsync(cluster: Cluster, classpath: str, args: argparse.Namespace) -> list[dict]:
    """RF 3 acks=all throughput and latency again with followers fsyncing before they count
    toward the high watermark; the results' phases are suffixed `+fsync`."""
    took = roll_config(cluster, "replica.fsync.before.ack", "true", args.cluster_timeout)
    print(f"  rolled onto replica.fsync.before.ack=true in {took:.0f} s", flush=True)
    phases = ["warmup@3"] + [FSYNC_THROUGHPUT[0]] * args.rounds + [LATENCY]
    results = run_workload(cluster.bootstrap, cluster.broker_pids().values(), "the cluster",
                           cluster.broker_log_tail, classpath, args, ",".join(phases))
    for r in results:
        r["phase"] += FSYNC
        if "recordsPerSec" in r:
            print(f"  {r['phase']:<20} {r['recordsPerSec']:>10,.0f} rec/s", flush=True)
        elif "p99Ms" in r:
            print(f"  {r['phase']:<20} p50 {r['p50Ms']:.2f} ms, p99 {r['p99Ms']:.2f} ms", flush=True)
    return results


def start_producer(cluster: Cluster, java: JavaClient, topic: str, rate: int) -> tuple[subprocess.Popen, Acks]:
    """An idempotent acks=all `KafkaCli history-produce` at `rate` records/s until its stdin
    closes, past its first acknowledgement."""
    acks = Acks()
    cmd = ["java", *java.jvm_flags, "-cp", java.classpath, "KafkaCli", "history-produce",
           "--bootstrap", cluster.bootstrap, "--topic", topic, "--rate", str(rate), "--value-size", "100",
           "--delivery-timeout-ms", "120000", "--stdin-stop"]
    producer = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
    Lines(producer, acks.line)
    wait_until(lambda: acks.acks, 60, "the producer's first acknowledgement")
    return producer, acks


def stop_producer(producer: subprocess.Popen, acks: Acks) -> dict:
    """Closes the producer's stdin and returns its `done` line (attempted, acked, errors,
    retries)."""
    producer.stdin.close()
    producer.wait(150)
    if producer.returncode != 0 or acks.done is None:
        raise RuntimeError(f"history-produce failed (exit {producer.returncode})")
    return acks.done


def rolling_restart(cluster: Cluster, java: JavaClient, args: argparse.Namespace) -> dict:
    """A config change rolls the three brokers while an idempotent acks=all producer writes to a
    3-partition RF 3 topic (min.insync.replicas 2) at `--failover-rate` records/s: the time from
    the change until every broker runs the new revision and is back in every ISR, and what the
    producer saw (failed sends by error class, sends the client retried)."""
    topic = "roll-load"
    cluster.create_topic(topic, BROKERS, 3, 2)
    wait_until(lambda: sum(1 for p in cluster.get("kafkapartitions")["items"]
                           if p["spec"]["topic"] == topic and len(p.get("status", {}).get("isr", [])) == BROKERS)
               == BROKERS, 120, f"{topic} led with whole ISRs")
    producer, acks = start_producer(cluster, java, topic, args.failover_rate)
    try:
        time.sleep(2.0)
        took = roll_config(cluster, "log.retention.hours", "169", args.cluster_timeout)
        time.sleep(2.0)
        done = stop_producer(producer, acks)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    by_class: dict[str, int] = {}
    for e in acks.errors:
        by_class[e.get("error", "?")] = by_class.get(e.get("error", "?"), 0) + 1
    result = {"rollS": took, "attempted": done.get("attempted"), "acked": done.get("acked"),
              "retries": done.get("retries"), "errors": by_class}
    print(f"  full roll of {BROKERS} brokers under load in {took:.1f} s: {result['acked']:,} of "
          f"{result['attempted']:,} sends acknowledged, failed {by_class or 'none'}, "
          f"{result['retries']} retried by the client", flush=True)
    return result


def scale_out_rebalance(cluster: Cluster, java: JavaClient, args: argparse.Namespace) -> dict:
    """`--rebalance-partitions` RF 3 partitions holding `--rebalance-records` records of 100 B,
    then `spec.brokers` 3 -> 5: the time until the operator's bounded reassignments have
    spread the replicas (none moving, every ISR whole, replica counts within one of each other
    over five brokers), and how many replicas moved."""
    topic = "rebalance"
    partitions = args.rebalance_partitions
    cluster.create_topic(topic, partitions, 3, 2)

    def assigned() -> dict[str, dict]:
        return {p["metadata"]["name"]: p for p in cluster.get("kafkapartitions")["items"]
                if p["spec"]["topic"] == topic}

    wait_until(lambda: len(assigned()) == partitions
               and all(len(p.get("status", {}).get("isr", [])) == 3 for p in assigned().values()),
               300, f"{topic}'s {partitions} partitions led with whole ISRs")
    java.run("history-produce", "--bootstrap", cluster.bootstrap, "--topic", topic, "--count",
             str(args.rebalance_records), "--value-size", "100")
    before = {n: set(p["spec"]["replicas"]) for n, p in assigned().items()}
    started = time.monotonic()
    cluster.kubectl("patch", "kafkacluster", NAME, "-n", NAMESPACE, "--type", "merge", "-p",
                    json.dumps({"spec": {"brokers": 5}}))

    def spread() -> Optional[dict[str, dict]]:
        now = assigned()
        counts: dict[int, int] = {}
        for p in now.values():
            spec, status = p["spec"], p.get("status", {})
            if spec.get("addingReplicas") or spec.get("removingReplicas"):
                return None
            if {m["brokerId"] for m in status.get("isr", [])} != set(spec["replicas"]):
                return None
            for r in spec["replicas"]:
                counts[r] = counts.get(r, 0) + 1
        return now if len(counts) == 5 and max(counts.values()) - min(counts.values()) <= 1 else None

    after = wait_until(spread, args.cluster_timeout * 4, "the replicas to spread over five brokers")
    took = time.monotonic() - started
    moved = sum(len(set(p["spec"]["replicas"]) - before[n]) for n, p in after.items())
    result = {"partitions": partitions, "records": args.rebalance_records, "rebalanceS": took,
              "replicasMoved": moved}
    print(f"  3 -> 5 brokers: {partitions} partitions ({args.rebalance_records:,} records) rebalanced in "
          f"{took:.1f} s, {moved} replicas moved", flush=True)
    return result


def delete_topics(cluster: Cluster, prefix: str) -> None:
    """Deletes the KafkaTopics named `prefix*` and waits (at most 2 minutes) until they are gone."""
    names = [t["metadata"]["name"] for t in cluster.get("kafkatopics")["items"]
             if t["metadata"]["name"].startswith(prefix)]
    if not names:
        return
    cluster.kubectl("delete", "kafkatopics", "-n", NAMESPACE, "--wait=false", *names)
    try:
        wait_until(lambda: not any(t["metadata"]["name"] in names for t in cluster.get("kafkatopics")["items"]),
                   120, "the throughput topics to be deleted")
    except AssertionError as e:
        print(f"  note: {e}", flush=True)


def median(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def report(results: list[dict], failovers: dict[str, dict[str, list[dict]]], leases: dict[str, str],
           operations: dict[str, dict], args: argparse.Namespace, load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    lines = [
        f"Tributary cluster bench: {BROKERS} release brokers (tributary-e2e up --release) on "
        f"{os.cpu_count()} cores; load average {load[0][0]:.2f} at start, {load[1][0]:.2f} at end",
    ]
    by_phase: dict[str, list[dict]] = {}
    for r in results:
        by_phase.setdefault(r["phase"], []).append(r)
    rf = {}
    if any(p in by_phase for p, _ in THROUGHPUT):
        lines += ["", f"{args.records:,} x {args.record_size} B records per produce phase, {args.partitions} "
                      f"partitions, RF 1 and RF 3 alternating, {args.rounds} rounds (mean)",
                  f"{'phase':<24} {'records/s':>10} {'MB/s':>8} {'CPU us/rec (3 brokers)':>24}"]
        for phase, label in THROUGHPUT:
            runs = by_phase.get(phase, [])
            rf[phase] = mean([r["recordsPerSec"] for r in runs])
            mb = mean([r["mbPerSec"] for r in runs])
            lines.append(f"{label:<24} {fmt(rf[phase], ',.0f'):>10} {fmt(mb, '.1f'):>8}"
                         f" {fmt(mean([cpu_per_record(r) for r in runs]), '.2f'):>24}")
        one, three = rf.get("produce-all@1"), rf.get("produce-all@3")
        if one and three:
            verdict = "met" if three / one >= RF3_TARGET else "NOT met"
            lines.append(f"{'RF 3 / RF 1':<24} {three / one:>10.2f}   (target >= {RF3_TARGET:.2f}: {verdict})")
    fsync_phase = FSYNC_THROUGHPUT[0] + FSYNC
    if fsync_phase in by_phase:
        fsynced = mean([r["recordsPerSec"] for r in by_phase[fsync_phase]])
        lat = by_phase.get(LATENCY + FSYNC, [{}])[0]
        lines += ["", "with replica.fsync.before.ack=true (followers fsync before their position counts toward "
                      "the high watermark; the cluster rolled onto it)",
                  f"{FSYNC_THROUGHPUT[1]:<24} {fmt(fsynced, ',.0f'):>10} rec/s"
                  + (f" = {fsynced / rf['produce-all@3']:.2f}x the default RF 3" if fsynced and rf.get('produce-all@3') else ""),
                  f"latency at {args.rate:,} records/s: p50 {fmt(lat.get('p50Ms'), '.2f')} ms   "
                  f"p99 {fmt(lat.get('p99Ms'), '.2f')} ms   p99.9 {fmt(lat.get('p999Ms'), '.2f')} ms"]
    if LATENCY in by_phase:
        lat = by_phase[LATENCY][0]
        lines += ["", f"end-to-end latency, RF 3, acks=all, {args.rate:,} records/s for {args.latency_seconds:g} s "
                      f"(first {args.warmup_seconds:g} s excluded)",
                  f"p50 {lat['p50Ms']:.2f} ms   p99 {lat['p99Ms']:.2f} ms   p99.9 {lat['p999Ms']:.2f} ms   "
                  f"max {fmt(lat.get('maxMs'), '.2f')} ms"]
    if failovers:
        lines += ["", "leader SIGKILL to the first acks=all acknowledgement from the new leader, in seconds "
                      f"({args.failover_rate} records/s to the killed leader's partition, RF 3, min.insync.replicas 2)",
                  f"{'lease':<31} {'broker':<10} {'kill to ack, each trial':<24} {'median':>6} {'max':>6} "
                  f"{'election':>8} {'pod back':>8}  target"]
        for label, modes in failovers.items():
            for mode, trials in modes.items():
                to_ack = [t["killToAckS"] for t in trials]
                target = FAILOVER_TARGETS[label]
                verdict = "met" if to_ack and max(to_ack) < target else "NOT met"
                lines.append(
                    f"{label + ' (' + leases[label] + ')':<31} {mode:<10} {', '.join(f'{v:.2f}' for v in to_ack):<24} "
                    f"{fmt(median(to_ack), '.2f'):>6} {fmt(max(to_ack, default=None), '.2f'):>6} "
                    f"{fmt(median([t['killToElectionS'] for t in trials]), '.2f'):>8} "
                    f"{fmt(median([t['restartS'] for t in trials if t['restartS'] is not None]), '.2f'):>8}  "
                    f"< {target:g} s {verdict}")
        lines += ["(election and pod back: medians from the kill until a kubectl watch saw the partition's new leader,",
                  " and the killed broker's pod running it again; restarted: the pod restarts it at once, a new",
                  " incarnation; down: it stays down, and its followers' refused connections reveal it, not its",
                  " Lease's expiry)"]
    if "roll" in operations:
        r = operations["roll"]
        lines += ["", f"rolling restart of {BROKERS} brokers (a config change) under an idempotent acks=all producer at "
                      f"{args.failover_rate} records/s: {r['rollS']:.1f} s until every broker ran the new revision "
                      f"and was back in every ISR; {r['acked']:,} of {r['attempted']:,} sends acknowledged, failed: "
                      f"{r['errors'] or 'none'}, retried by the client: {r['retries']}"]
    if "rebalance" in operations:
        r = operations["rebalance"]
        lines += ["", f"scale-out 3 -> 5 brokers: {r['partitions']} RF 3 partitions holding {r['records']:,} "
                      f"records of 100 B rebalanced in {r['rebalanceS']:.1f} s ({r['replicasMoved']} replicas "
                      f"moved by bounded reassignments, maxConcurrentMoves 5)"]
    return "\n".join(lines)


def durable_copy(source: Path, target: Path) -> Path:
    """Copies `source` to `target` and fsyncs the copy: left dirty, its hundreds of megabytes
    would be written back by the kernel about 30 s later, in the middle of the measurements,
    and every fsync the brokers make then would queue behind them."""
    shutil.copy2(source, target)
    with open(target, "rb") as copy:
        os.fsync(copy.fileno())
    return target


def run(args: argparse.Namespace, classpath: str, jars: list[Path]) -> int:
    """The cluster bench; prints the table and returns the exit status. `classpath` runs
    Bench.java; KafkaCli is built from the client tests' sources with `jars`."""
    e2e_bin = args.e2e_bin.resolve()
    operator_bin = REPO_ROOT / "target" / "release" / "tributary-operator"
    for path in (e2e_bin, operator_bin):
        if not path.is_file():
            print(f"bench: {path} not found (cargo build --release -p tributary-broker -p tributary-operator "
                  "-p tributary-e2e)", flush=True)
            return 2
    parts = set(args.cluster_parts.split(","))
    java = JavaClient(java_build(JAVA_SRC_DIR, REPO_ROOT / "target" / "bench" / "java-clients", jars), jars)
    scratch_root = REPO_ROOT / "target" / "bench"
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="cluster-", dir=scratch_root))
    duration, renew = args.tuned_lease.split(",")
    duration, renew = int(duration), float(renew)
    results: list[dict] = []
    failovers: dict[str, dict[str, list[dict]]] = {}
    leases: dict[str, str] = {}
    operations: dict[str, dict] = {}
    try:
        # Both clusters, and every broker restart in them, run the binaries as they are now
        # (`make bench` builds them): copies, so a build in the tree meanwhile changes nothing.
        (scratch / "bin").mkdir()
        binaries = {kind: durable_copy(path, scratch / "bin" / path.name) for kind, path in
                    (("broker", args.broker_bin.resolve()),
                     ("operator", operator_bin))}
        load_start = os.getloadavg()
        for label, lease in (("default", None), ("tuned", (duration, renew))):
            wants_workload = label == "default" and parts & {"throughput", "latency"}
            wants_operations = label == "default" and parts & {"roll", "rebalance"}
            if not wants_workload and not wants_operations and "failover" not in parts:
                continue
            print(f"starting 3 brokers ({label} lease)", flush=True)
            cluster = Cluster(e2e_bin, binaries, scratch / label, lease)
            try:
                cluster.start(args.cluster_timeout)
                leases[label] = cluster.lease_settings()
                print(f"  bootstrap {cluster.bootstrap}; {leases[label]}", flush=True)
                # Failover first, on the brokers as configured by default; then what changes
                # them: the roll onto follower fsync, the timed roll, the scale-out.
                if wants_workload:
                    results = throughput_and_latency(cluster, classpath, args, parts)
                    delete_topics(cluster, "bench-")
                if "failover" in parts:
                    failovers[label] = failover_trials(cluster, java, args, label, binaries["broker"])
                if wants_workload and "fsync" in parts:
                    results += follower_fsync(cluster, classpath, args)
                    delete_topics(cluster, "bench-")
                if label == "default" and "roll" in parts:
                    operations["roll"] = rolling_restart(cluster, java, args)
                if label == "default" and "rebalance" in parts:
                    operations["rebalance"] = scale_out_rebalance(cluster, java, args)
            except BaseException:
                print(f"cluster bench failed; tributary-e2e up's log:\n{cluster.log_tail(20)}", flush=True)
                raise
            finally:
                print(f"  stopping the {label} cluster", flush=True)
                cluster.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"workload": results, "failover": failovers, "leases": leases,
                                               "operations": operations}, indent=2))
    print()
    print(report(results, failovers, leases, operations, args, (load_start, os.getloadavg())))
    return 0
