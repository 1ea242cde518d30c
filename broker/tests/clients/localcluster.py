"""A local Tributary cluster as `tributary-e2e up` runs it (the local control plane, the chart
installed with helm, a KafkaCluster of N brokers, each broker a process on a loopback IP of its
own), driven the way an operator of a real cluster would: kubectl against its API server, and
signals to a pod's process as a node would deliver them. The client suite's `cluster` broker
kind and the cluster benchmark both run on it; `stop()` ends every process, on failure too."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from harness import REPO_ROOT, TOOLS_DIR, Timeout, wait_until

KUBECTL = TOOLS_DIR / "kubectl" / "kubectl"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
IMAGES = {"broker": "ghcr.io/tributary-dev/tributary-broker", "operator": "ghcr.io/tributary-dev/tributary-operator"}


class LocalCluster:
    """One `tributary-e2e up` of `brokers` brokers named `name` in `namespace`.

    `config` entries become the KafkaCluster's `spec.config` (beside `up`'s defaults);
    `binaries` maps "broker"/"operator" to the binaries its pods run (default: the profile's
    builds); `lease` is (duration seconds, renew interval seconds) or None for the CRD's;
    `max_restart_period` caps the kubelet's CrashLoopBackOff in seconds (None: its 300).
    """

    def __init__(self, e2e_bin: Path, state_dir: Path, *, name: str = "demo", namespace: str = "kafka",
                 brokers: int = 3, release: bool = False, binaries: Optional[dict[str, Path]] = None,
                 lease: Optional[tuple[int, float]] = None, config: Optional[dict[str, str]] = None,
                 max_restart_period: Optional[int] = None) -> None:
        self.e2e_bin = e2e_bin
        self.state_dir = state_dir
        self.name = name
        self.namespace = namespace
        self.brokers = brokers
        self.release = release
        self.binaries = dict(binaries or {})
        self.lease = lease
        self.config = dict(config or {})
        self.max_restart_period = max_restart_period
        # `up` wipes its state directory at start, so its own log lives beside it.
        self.log_path = state_dir.with_name(state_dir.name + "-up.log")
        self.proc: Optional[subprocess.Popen] = None
        self.bootstrap = ""
        self.kubeconfig = ""

    def start(self, timeout: float) -> "LocalCluster":
        cmd = [str(self.e2e_bin), "up", "--no-build", "--brokers", str(self.brokers), "--name", self.name,
               "--namespace", self.namespace, "--state-dir", str(self.state_dir), "--timeout", str(int(timeout)),
               *(f"--image={IMAGES[kind]}={path}" for kind, path in self.binaries.items()),
               *(f"--config={key}={value}" for key, value in self.config.items())]
        if self.release:
            cmd.append("--release")
        if self.max_restart_period is not None:
            cmd += ["--max-container-restart-period-seconds", str(self.max_restart_period)]
        if self.lease:
            cmd += ["--lease-duration-seconds", str(self.lease[0]),
                    "--lease-renew-interval-seconds", f"{self.lease[1]:g}"]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                                         start_new_session=True)
        # `up` waits at most `timeout` for the KafkaCluster; the timer only guards against a hang
        # elsewhere. It kills `up`'s process group (its pods run in groups of their own; stop()
        # ends those).
        guard = threading.Timer(timeout + 300, os.killpg, (self.proc.pid, signal.SIGKILL))
        guard.start()
        try:
            for line in self.proc.stdout:
                if line.startswith("Kafka bootstrap:"):
                    self.bootstrap = line.split(":", 1)[1].strip()
                elif line.startswith("kubeconfig:"):
                    self.kubeconfig = line.split(":", 1)[1].strip()
                    break
        finally:
            guard.cancel()
        if not (self.bootstrap and self.kubeconfig):
            self.proc.wait(30)
            raise RuntimeError(f"tributary-e2e up failed (exit {self.proc.returncode}):\n{self.log_tail(40)}")
        wait_until(lambda: len(self.broker_pids()) == self.brokers, 60, "every broker pod running")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def broker_logs(self) -> list[Path]:
        return sorted((self.state_dir / "logs").glob(f"{self.namespace}_{self.name}-broker-*/*.log"))

    def broker_log_tail(self, lines: int = 30) -> str:
        """The last `lines` of each broker's log, then of every other pod's (the operator's) and
        of `up`'s own (the control plane's slow requests), without the terminal colours."""
        brokers = self.broker_logs()
        others = [p for p in sorted((self.state_dir / "logs").glob("*/*.log")) if p not in brokers]
        tails = [(p.parent.name, p) for p in brokers + others] + [("tributary-e2e up", self.log_path)]
        return "\n".join(f"--- {name}\n" + ANSI.sub("", "\n".join(p.read_text(errors="replace").splitlines()[-lines:]))
                         for name, p in tails if p.is_file())

    def kubectl(self, *args: str, stdin: Optional[str] = None) -> str:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        out = subprocess.run([str(KUBECTL), *args], input=stdin, env=env, capture_output=True, text=True,
                             timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def get(self, *what: str) -> dict:
        return json.loads(self.kubectl("get", *what, "-n", self.namespace, "-o", "json"))

    def broker_pids(self) -> dict[int, int]:
        """Broker id to the pid of its running process (the pod's container id names it)."""
        pids = {}
        for pod in self.get("pods")["items"]:
            name = pod["metadata"]["name"]
            if not name.startswith(f"{self.name}-broker-"):
                continue
            for c in pod.get("status", {}).get("containerStatuses", []):
                cid = c.get("containerID", "")
                if c["name"] == "broker" and "running" in c.get("state", {}) and cid.startswith("tributary-e2e://"):
                    pids[int(name.rsplit("-", 1)[1])] = int(cid.split("://", 1)[1])
        return pids

    def broker_data_dirs(self) -> list[Path]:
        """Every broker's log directory (the pods' volumes)."""
        return sorted(p for p in (self.state_dir / "volumes").glob("*/data") if p.is_dir())

    def refresh_bootstrap(self, timeout: float) -> None:
        """Re-reads the KafkaCluster's `status.bootstrapServers` once it names every broker pod's
        IP: brokers advertise their pod IP, and a restarted pod gets a new one, so the addresses
        `up` printed are gone after a roll."""
        def current() -> Optional[str]:
            ips = {p.get("status", {}).get("podIP") for p in self.get("pods")["items"]
                   if p["metadata"]["name"].startswith(f"{self.name}-broker-")}
            servers = self.get("kafkacluster", self.name).get("status", {}).get("bootstrapServers", "")
            hosts = {s.rsplit(":", 1)[0] for s in servers.split(",") if s}
            return servers if len(ips) == self.brokers and hosts == ips else None
        self.bootstrap = wait_until(current, timeout, "the KafkaCluster to list every broker's new address")

    def lease_settings(self) -> str:
        """The broker Lease timing the brokers run with (their rendered configuration)."""
        props = self.get("configmap", f"{self.name}-config")["data"]
        text = "\n".join(props.values())
        found = {}
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("broker.lease.duration.ms", "broker.lease.renew.interval.ms"):
                found[key.strip()] = int(value) / 1000
        return (f"lease {found.get('broker.lease.duration.ms', '?'):g} s, "
                f"renew {found.get('broker.lease.renew.interval.ms', '?'):g} s")

    def create_topic(self, topic: str, partitions: int, replication: int, min_isr: int) -> None:
        """Applies a KafkaTopic (the Kubernetes door of topic creation)."""
        self.kubectl("apply", "-f", "-", stdin=json.dumps({
            "apiVersion": "tributary.dev/v1alpha1",
            "kind": "KafkaTopic",
            "metadata": {"name": topic, "namespace": self.namespace},
            "spec": {"clusterRef": self.name, "partitions": partitions, "replicationFactor": replication,
                     "config": {"min.insync.replicas": str(min_isr)}},
        }))

    def partitions(self) -> list[dict]:
        return self.get("kafkapartitions")["items"]

    def partition(self, topic: str, index: int = 0) -> dict:
        for p in self.partitions():
            if p["spec"]["topic"] == topic and p["spec"]["partition"] == index:
                return p
        raise LookupError(f"no KafkaPartition for {topic}-{index} yet")

    def signal_brokers(self, sig: int, ids: Optional[list[int]] = None) -> dict[int, int]:
        """Sends `sig` to the process groups of the given brokers' pods (all when None), as a node
        delivers a crash (SIGKILL) or a shutdown (SIGTERM). Returns the pids signalled."""
        pids = {b: pid for b, pid in self.broker_pids().items() if ids is None or b in ids}
        for pid in pids.values():
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def wait_restarted(self, old: dict[int, int], timeout: float) -> None:
        """Waits until each broker in `old` runs as a new process, and every partition has a
        leader among the running brokers and its whole replica set back in sync."""
        def restarted() -> bool:
            now = self.broker_pids()
            return all(b in now and now[b] != pid for b, pid in old.items())
        wait_until(restarted, timeout, f"brokers {sorted(old)} running again")

        wait_until(self.unsettled_check(False), timeout, "every partition led after the restart")
        wait_until(self.unsettled_check(True), timeout, "every partition's whole ISR back in sync after the restart")

    def unsettled_check(self, whole_isr: bool) -> Callable[[], bool]:
        """A `wait_until` check that every partition has a leader (with its whole ISR when
        `whole_isr`), raising with the first partitions that have not."""
        def check() -> bool:
            unsettled = [f"{p['spec']['topic']}-{p['spec']['partition']} leader {p.get('status', {}).get('leader')} "
                         f"isr {p.get('status', {}).get('isr')} replicas {p['spec'].get('replicas')}"
                         for p in self.partitions() if not settled(p, whole_isr)]
            if unsettled:
                raise AssertionError(f"{len(unsettled)} unsettled, e.g. {unsettled[:3]}")
            return True
        return check

    def balance_leaders(self, timeout: float) -> None:
        """Elects the preferred replica (ElectLeaders, as `kafka-leader-election.sh` does) of
        every partition an earlier restart left led by another replica, and waits until it
        leads: between tests, so no test's group or transaction coordinator moves in the
        middle of a request (the suite's clusters run without the controller's automatic
        rebalancing, which would move them at a moment of its choosing). A partition whose
        preferred replica is not in its ISR cannot be moved by any election yet, and is left
        as it is."""
        from confluent_kafka import ElectionType, KafkaException, TopicPartition
        from confluent_kafka.admin import AdminClient

        def movable() -> list[TopicPartition]:
            return [TopicPartition(p["spec"]["topic"], p["spec"]["partition"]) for p in self.partitions()
                    if electable(p)]
        moved = movable()
        if not moved:
            return
        print(f"  note: electing the preferred leaders of {len(moved)} partitions an earlier restart moved",
              flush=True)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})

        def led_as_preferred() -> bool:
            # Asked again while any is left: the first answer may come from a broker that
            # has not yet seen the preferred replica back in the ISR.
            waiting = movable()
            if not waiting:
                return True
            try:
                admin.elect_leaders(ElectionType.PREFERRED, waiting).result(30)
            except KafkaException as e:
                print(f"  note: preferred leader election: {e}", flush=True)
            return False
        try:
            wait_until(led_as_preferred, timeout, f"the preferred replicas of {len(moved)} partitions to lead")
        except Timeout as e:
            raise Timeout(f"{e}\n{self.broker_log_tail(60)}") from e

    def stop(self) -> None:
        """SIGTERM to `up` (it stops its pods gracefully), SIGKILL if it hangs, then SIGKILL to
        any process still running from the state directory (the watchdog's job, made sure of)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        deadline = time.monotonic() + 15
        while processes_under(self.state_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in processes_under(self.state_dir):
            try:
                os.kill(pid, signal.SIGKILL)
                print(f"  note: SIGKILLed pid {pid}, left running by the cluster", flush=True)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.state_dir, ignore_errors=True)


def settled(partition: dict, whole_isr: bool) -> bool:
    """Whether a KafkaPartition has a leader, and its whole ISR where asked."""
    status, replicas = partition.get("status", {}), partition["spec"].get("replicas", [])
    return status.get("leader", -1) >= 0 and not (whole_isr and len(status.get("isr", [])) != len(replicas))


def electable(partition: dict) -> bool:
    """Whether a KafkaPartition is led by another replica than its preferred one (the first),
    which is in its ISR: a preferred election would move it."""
    status, replicas = partition.get("status", {}), partition["spec"].get("replicas", [])
    leader = status.get("leader", -1)
    in_sync = [e.get("brokerId") for e in status.get("isr", [])]
    return leader >= 0 and bool(replicas) and leader != replicas[0] and replicas[0] in in_sync


def processes_under(state_dir: Path) -> list[int]:
    """Pids of processes whose command line or environment names `state_dir` (the pods'
    processes: their config and kubeconfig live there)."""
    needle = str(state_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes() or needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
