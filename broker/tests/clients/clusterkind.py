"""The `cluster` broker kind of the client suite: the tests' broker is a three-broker local
cluster (`tributary-e2e up --brokers 3`, see localcluster.py), shared by every test that asks
for the same broker settings, with topics at replication factor 3 and min.insync.replicas 2.

A test's broker settings (`broker_factory(message_max_bytes=4096)`) become the KafkaCluster's
`spec.config` (`message.max.bytes: "4096"`); a session (each pytest-xdist worker) runs one
cluster at a time, so a test with other settings replaces the running cluster and the next
default test brings a default one back (an `up` takes a few seconds). Workers' clusters never
meet: each `up`'s node claims a loopback /24 of its own for its pods and Services."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from pathlib import Path
from typing import Optional

from harness import REPO_ROOT, wait_until
from localcluster import ANSI, LocalCluster

BROKERS = 3
# What every cluster of the suite runs with: new topics (auto-created, or created with the
# default replication factor as the suite's clients ask) at RF 3, acks=all writes needing two;
# and no automatic leader rebalancing. The pool moves leaderships back to their preferred
# replicas between tests (`balance_leaders`); the controller's own imbalance check, due five
# seconds after it starts and then every `leader.imbalance.check.interval.seconds`, would
# move them at a moment of its choosing, under whichever test runs then: a group coordinator
# moved while librdkafka's committed() asked it, which answers NOT_COORDINATOR unretried.
DEFAULT_CONFIG = {"default.replication.factor": "3", "min.insync.replicas": "2",
                  "auto.leader.rebalance.enable": "false"}
# Broker flags whose configuration key is not the flag with dots.
FLAG_KEYS = {"auto_create_topics": "auto.create.topics.enable",
             "schema_registry_url": "confluent.schema.registry.url"}
# Topics the suite reaches before a cluster is replaced by a fresh one: a long session's
# hundreds of topics would otherwise slow every broker's and the control plane's work.
RECYCLE_AFTER_TESTS = 40
START_TIMEOUT = 120.0
# The kubelet's restart back-off cap (KEP-4603's maxContainerRestartPeriod): a cluster serves
# up to RECYCLE_AFTER_TESTS tests, and with the default back-off (10 s doubling, reset only
# after 10 minutes up) each broker restart would wait longer than the one of the test before,
# so a test's timing would depend on which tests ran before it on the same cluster.
MAX_RESTART_PERIOD = 1
# The brokers' metrics and health port in the chart's pods (operator/src/builders ADMIN_PORT).
ADMIN_PORT = 9644


def cluster_config(settings: dict[str, object]) -> dict[str, str]:
    """The KafkaCluster `spec.config` for a test's broker settings."""
    config = dict(DEFAULT_CONFIG)
    for flag, value in settings.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        config[FLAG_KEYS.get(flag, flag.replace("_", "."))] = str(value)
    return config


def e2e_binary() -> Path:
    path = Path(os.environ.get("TRIBUTARY_E2E_BIN", REPO_ROOT / "target" / "debug" / "tributary-e2e"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `cargo build -p tributary-e2e` (or `make test`)")
    return path


class ClusterPool:
    """Hands each test of a session a running cluster with its settings, one cluster at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.current: Optional[LocalCluster] = None
        self.key: tuple = ()
        self.tests = 0
        self.started = 0

    def get(self, settings: dict[str, object]) -> LocalCluster:
        config = cluster_config(settings)
        key = tuple(sorted(config.items()))
        fresh_needed = (self.current is None or key != self.key or not self.current.alive()
                        or self.tests >= RECYCLE_AFTER_TESTS)
        if fresh_needed:
            self.close()
            self.started += 1
            cluster = LocalCluster(e2e_binary(), self.root / f"cluster{self.started}", brokers=BROKERS,
                                   config=config, max_restart_period=MAX_RESTART_PERIOD)
            try:
                cluster.start(START_TIMEOUT)
            except BaseException:
                cluster.stop()
                raise
            self.current, self.key, self.tests = cluster, key, 0
        else:
            # Each test starts from the cluster a fresh one would be: whatever an earlier
            # test's restarts moved is led by its preferred replica again.
            self.current.balance_leaders(START_TIMEOUT)
        self.tests += 1
        return self.current

    def close(self) -> None:
        """Ends the running cluster; its brokers get SIGKILL first, as nothing of a cluster
        being replaced is kept (a graceful shutdown of every broker would only cost time)."""
        if self.current is not None:
            try:
                self.current.signal_brokers(signal.SIGKILL)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                print(f"  note: the brokers of {self.current.state_dir} were not signalled: {e}", flush=True)
            self.current.stop()
            self.current = None


class ClusterBroker:
    """The suite's view of a cluster as "the broker": its bootstrap list, every broker's
    address, and restarts as a node delivers them (signals to the pods' processes, which
    their pods start again)."""

    kind = "cluster"

    def __init__(self, cluster: LocalCluster, settings: dict[str, object]) -> None:
        self.cluster = cluster
        self.settings = settings
        self.pids_at_stop: dict[int, int] = {}

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every broker's (host, port), in broker id order (the bootstrap list's order)."""
        return [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in self.bootstrap.split(","))]

    @property
    def host(self) -> str:
        return self.addresses[0][0]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def data_dirs(self) -> list[Path]:
        return self.cluster.broker_data_dirs()

    @property
    def http_addresses(self) -> list[str]:
        """Every broker's /metrics endpoint: the pod IP and the chart's admin port."""
        return [f"{host}:{ADMIN_PORT}" for host, _ in self.addresses]

    def scram_storage(self) -> list[str]:
        """What the cluster keeps of SCRAM credentials, as text: its shared Secret's values."""
        secret = self.cluster.get("secret", f"{self.cluster.name}-scram-credentials")
        return [base64.b64decode(v).decode(errors="replace") for v in secret.get("data", {}).values()]

    def log_text(self) -> str:
        """Every broker's whole log."""
        return "\n".join(ANSI.sub("", p.read_text(errors="replace")) for p in self.cluster.broker_logs())

    def alive(self) -> bool:
        return self.cluster.alive() and len(self.cluster.broker_pids()) == BROKERS

    def log_tail(self, lines: int = 200) -> str:
        return self.cluster.broker_log_tail(lines)

    def kill(self) -> None:
        """SIGKILL to every broker's pod process: the whole cluster crashes at once."""
        self.pids_at_stop = self.cluster.signal_brokers(signal.SIGKILL)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to every broker's pod process; waits until each has exited and returns the
        worst exit code (their pods start them again; `start` waits for that)."""
        before = self.containers()
        self.pids_at_stop = self.cluster.signal_brokers(signal.SIGTERM)

        def exit_codes() -> Optional[list[int]]:
            now = self.containers()
            codes = []
            for broker in self.pids_at_stop:
                restarts, state, last = now.get(broker, (0, {}, {}))
                if "terminated" in state:
                    codes.append(state["terminated"].get("exitCode", -1))
                elif restarts > before.get(broker, (0, {}, {}))[0]:
                    codes.append(last.get("terminated", {}).get("exitCode", -1))
            return codes if len(codes) == len(self.pids_at_stop) else None
        return max(wait_until(exit_codes, timeout, "every broker to exit on SIGTERM"))

    def containers(self) -> dict[int, tuple[int, dict, dict]]:
        """Broker id to its container's restart count, state and last state."""
        found = {}
        for pod in self.cluster.get("pods")["items"]:
            name = pod["metadata"]["name"]
            if name.startswith(f"{self.cluster.name}-broker-"):
                for c in pod.get("status", {}).get("containerStatuses", []):
                    if c["name"] == "broker":
                        found[int(name.rsplit("-", 1)[1])] = (c.get("restartCount", 0), c.get("state", {}),
                                                              c.get("lastState", {}))
        return found

    def crash(self, broker_id: int, timeout: float = 120.0) -> "ClusterBroker":
        """SIGKILL to one broker's pod process (its partitions fail over to the others); waits
        until its pod has started it again and every ISR is whole."""
        self.cluster.wait_restarted(self.cluster.signal_brokers(signal.SIGKILL, [broker_id]), timeout)
        return self

    def shut_down(self, broker_id: int, timeout: float = 120.0) -> "ClusterBroker":
        """SIGTERM to one broker's pod process: its controlled shutdown hands its leaderships to
        the others while it still serves, then it exits; waits until its pod has started it
        again and every ISR is whole."""
        self.cluster.wait_restarted(self.cluster.signal_brokers(signal.SIGTERM, [broker_id]), timeout)
        return self

    def start(self, timeout: float = 120.0) -> "ClusterBroker":
        """Waits until the brokers stopped or killed run again and every partition is led with
        its whole ISR."""
        self.cluster.wait_restarted(self.pids_at_stop, timeout)
        self.pids_at_stop = {}
        return self

    def restart(self, hard: bool = False, timeout: float = 120.0) -> "ClusterBroker":
        """Stops every broker (SIGKILL when `hard`) and waits until the cluster serves again."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)
