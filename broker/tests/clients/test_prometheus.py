"""Monitoring with the real Prometheus (Debian package `prometheus`, installed by
.ci/install-tools.sh): it scrapes a running broker and a running operator every second and
evaluates the chart's alert rules; a real Kafka client produces, and Prometheus' HTTP query API
must show the byte and message counters moved by exactly what was produced and fetched.
`promtool check metrics` runs on both endpoints, `promtool check rules` and `promtool test
rules` on the alert rules the chart renders.

The operator runs without a Kubernetes API (its kubeconfig points at a closed port): it must
still serve /metrics, report itself unready, and keep retrying instead of exiting.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

import pytest
import yaml

import kafkawire
from harness import REPO_ROOT, TOOLS_DIR, BrokerProcess, free_port, wait_until
from pyclients import ck_create_topic, ck_produce

pytestmark = pytest.mark.single_broker(
    "Prometheus here scrapes one broker process and an operator without an API server by their "
    "addresses; on a cluster it finds the pods through the chart's scrape annotations, as the e2e "
    "scenario `prometheus` runs it")

CHART = REPO_ROOT / "charts" / "tributary"
SCRAPE = "1s"
DEADLINE = 60.0

# ---------------------------------------------------------------------------------------------
# Tools (a missing one is a failure, never a skip)
# ---------------------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: run .ci/install-tools.sh (Debian package prometheus)"
    return path


def helm() -> Path:
    path = Path(os.environ.get("HELM", TOOLS_DIR / "helm" / "helm"))
    assert path.is_file(), f"{path} not found: run .ci/install-tools.sh"
    return path


def operator_binary() -> Path:
    path = Path(os.environ.get("TRIBUTARY_OPERATOR_BIN", REPO_ROOT / "target" / "debug" / "tributary-operator"))
    assert path.is_file(), f"{path} not found: run `cargo build -p tributary-operator` (or `make test`)"
    return path


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


class Process:
    """A child process with its output in a file, stopped with SIGTERM at the end."""

    def __init__(self, name: str, cmd: list[str], workdir: Path, env: Optional[dict[str, str]] = None) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        merged = dict(os.environ)
        merged.update(env or {})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=workdir, env=merged)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """The operator with an unreachable Kubernetes API, serving /metrics on a free port."""
    # Its API server's port is bound and never listened on for the fixture's lifetime: nothing
    # else (a broker of another test running alongside) can take it, and connections are refused.
    closed_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed_socket.bind(("127.0.0.1", 0))
    closed = closed_socket.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "unreachable",
        "clusters": [{"name": "unreachable", "cluster": {"server": f"http://127.0.0.1:{closed}"}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "unreachable", "context": {"cluster": "unreachable", "user": "nobody"}}],
    }))
    addr = f"127.0.0.1:{free_port()}"
    proc = Process("operator", [str(operator_binary()), "--metrics-addr", addr, "--apply-crds"], tmp_path,
                   env={"KUBECONFIG": str(kubeconfig), "NO_COLOR": "1", "RUST_LOG": "info"})

    def serving() -> bool:
        assert proc.alive(), f"operator exited without an API server:\n{proc.log_tail()}"
        return http_get(f"http://{addr}/healthz")[0] == 200

    try:
        wait_until(serving, DEADLINE, "the operator's /healthz")
        yield proc, addr
    finally:
        proc.stop()
        closed_socket.close()


class Prometheus:
    """A real Prometheus on a free port with a 1 s scrape interval, queried over HTTP."""

    def __init__(self, workdir: Path, targets: dict[str, str], rule_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": SCRAPE, "scrape_timeout": SCRAPE, "evaluation_interval": SCRAPE},
            "rule_files": [str(rule_file)],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": [target], "labels": {"namespace": "local", "cluster": "local"}}],
                }
                for job, target in targets.items()
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        check = subprocess.run([tool("promtool"), "check", "config", str(config_path)], capture_output=True, text=True)
        assert check.returncode == 0, f"promtool check config:\n{check.stdout}{check.stderr}"
        self.proc = Process("prometheus", [
            tool("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ], workdir)

        def ready() -> bool:
            assert self.proc.alive(), f"prometheus exited:\n{self.proc.log_tail()}"
            return http_get(f"{self.url}/-/ready")[0] == 200

        wait_until(ready, DEADLINE, "Prometheus to be ready")

    def query(self, promql: str) -> list[dict]:
        status, body = http_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert status == 200, f"query {promql!r}: HTTP {status}: {body}"
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, promql: str) -> Optional[float]:
        """The single sample `promql` returns now, or None when it returns nothing."""
        result = self.query(promql)
        assert len(result) <= 1, f"{promql!r} returned several series: {result}"
        return float(result[0]["value"][1]) if result else None

    def wait_for_value(self, promql: str, want: float, what: str) -> None:
        """Polls until `promql` equals `want`; a value beyond it fails at once (over-counting)."""
        def reached() -> bool:
            got = self.value(promql)
            assert got is None or got <= want, f"{what}: {promql} = {got}, more than the {want} produced"
            return got == want

        wait_until(reached, DEADLINE, f"{what}: {promql} == {want}")

    def api(self, path: str) -> dict:
        status, body = http_get(f"{self.url}{path}")
        assert status == 200, f"{path}: HTTP {status}: {body}"
        return json.loads(body)["data"]

    def stop(self) -> None:
        self.proc.stop()


# ---------------------------------------------------------------------------------------------
# The chart's alert rules
# ---------------------------------------------------------------------------------------------


def render_rules(*helm_args: str) -> dict:
    """The rule groups of the PrometheusRule the chart renders, as a Prometheus rule file."""
    out = subprocess.run(
        [str(helm()), "template", "tributary", str(CHART), "--namespace", "kafka",
         "--set", "monitoring.prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml",
         *helm_args],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, f"helm template failed:\n{out.stderr}"
    doc = yaml.safe_load(out.stdout)
    assert doc["kind"] == "PrometheusRule"
    return {"groups": doc["spec"]["groups"]}


def promtool(*args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run([tool("promtool"), *args], input=stdin, capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_prometheus_sees_exact_broker_traffic_and_both_endpoints_pass_promtool(
    request: pytest.FixtureRequest, tmp_path: Path, operator, topic: str
) -> None:
    op_proc, op_addr = operator
    http_addr = f"127.0.0.1:{free_port()}"
    # Our broker only (Prometheus metrics are ours); its HTTP endpoint on a port we know.
    broker = BrokerProcess("tributary", tmp_path / "broker", settings={"auto_create_topics": False},
                           extra_env={"TRIBUTARY_HTTP_LISTENER": http_addr})
    request.node._brokers = [broker]  # the conftest attaches its log to a failure report
    broker.start()
    try:
        rules = tmp_path / "rules.yml"
        rules.write_text(yaml.safe_dump(render_rules()))
        prom = Prometheus(tmp_path, {"tributary-broker": http_addr, "tributary-operator": op_addr}, rules)
        try:
            run_traffic_scenario(prom, broker, http_addr, op_proc, op_addr, topic)
        finally:
            prom.stop()
    finally:
        broker.stop()


def run_traffic_scenario(prom: Prometheus, broker: BrokerProcess, http_addr: str,
                         op_proc: Process, op_addr: str, topic: str) -> None:
    # Both targets are scraped.
    wait_until(lambda: prom.value('up{job="tributary-broker"}') == 1, DEADLINE, "the broker target up")
    wait_until(lambda: prom.value('up{job="tributary-operator"}') == 1, DEADLINE, "the operator target up")

    ck_create_topic(broker.bootstrap, topic, partitions=2)
    sel = f'{{job="tributary-broker", topic="{topic}"}}'

    # First traffic: 30 records to partition 0, 20 to partition 1, a few per batch.
    first = [{"value": f"first-{i}".encode() * (i + 1), "key": str(i).encode(), "partition": 0 if i < 30 else 1}
             for i in range(50)]
    reports = ck_produce(broker.bootstrap, topic, first, config={"linger.ms": 5, "batch.num.messages": 7})
    assert all(r.error is None for r in reports), [r.error for r in reports if r.error]
    prom.wait_for_value(f"kafka_server_brokertopicmetrics_messagesin_total{sel}", 50, "messages in")

    # The broker stores batches exactly as received, so a raw Fetch of each whole partition
    # returns exactly the bytes produced, and itself moves bytes out by exactly that much.
    stored = fetch_all(broker.bootstrap, topic, [0, 1])
    produced_bytes = sum(stored.values())
    assert produced_bytes > 50 * len(b"first-")
    prom.wait_for_value(f"kafka_server_brokertopicmetrics_bytesin_total{sel}", produced_bytes, "bytes in")
    prom.wait_for_value(f"kafka_server_brokertopicmetrics_bytesout_total{sel}", produced_bytes, "bytes out")

    # Second traffic moves the counters by exactly the new amounts.
    second = [{"value": b"x" * 100, "partition": 1} for _ in range(25)]
    reports = ck_produce(broker.bootstrap, topic, second)
    assert all(r.error is None for r in reports)
    prom.wait_for_value(f"kafka_server_brokertopicmetrics_messagesin_total{sel}", 75, "messages in")
    stored_after = fetch_all(broker.bootstrap, topic, [1], offsets={1: 20})
    added = stored_after[1]
    assert added > 25 * 100
    prom.wait_for_value(f"kafka_server_brokertopicmetrics_bytesin_total{sel}", produced_bytes + added, "bytes in")
    prom.wait_for_value(f"kafka_server_brokertopicmetrics_bytesout_total{sel}", produced_bytes + added,
                        "bytes out")
    # Log size per partition is exported for both partitions of the topic.
    sizes = prom.query(f'kafka_log_log_size{{job="tributary-broker", topic="{topic}"}}')
    assert sorted(s["metric"]["partition"] for s in sizes) == ["0", "1"], sizes
    assert all(float(s["value"][1]) > 0 for s in sizes), sizes

    # Request rate and latency histograms per API.
    for api in ("Produce", "Fetch", "Metadata"):
        count = prom.value(f'kafka_network_requestmetrics_requests_total{{job="tributary-broker", request="{api}"}}')
        assert count and count > 0, f"no {api} requests counted"
        buckets = prom.query(
            f'kafka_network_requestmetrics_request_duration_seconds_bucket{{job="tributary-broker", request="{api}"}}')
        assert len(buckets) > 5 and any(b["metric"]["le"] == "+Inf" for b in buckets), buckets
        inf = next(float(b["value"][1]) for b in buckets if b["metric"]["le"] == "+Inf")
        observed = prom.value(
            f'kafka_network_requestmetrics_request_duration_seconds_count{{job="tributary-broker", request="{api}"}}')
        assert inf == observed and observed > 0, (api, inf, observed)
        p99 = prom.value('histogram_quantile(0.99, sum by (le) (kafka_network_requestmetrics_request_duration_seconds'
                         f'_bucket{{job="tributary-broker", request="{api}"}}))')
        assert p99 is not None and 0 < p99 < 30, (api, p99)
        # The same requests' time by phase: the broker's own work, behind earlier responses,
        # and waiting after that.
        for phase in ("local", "queued", "remote"):
            by_phase = f'{{job="tributary-broker", request="{api}", phase="{phase}"}}'
            phase_count = prom.value(f"kafka_network_requestmetrics_phase_seconds_count{by_phase}")
            assert phase_count and phase_count > 0, (api, phase, phase_count)
            phase_p99 = prom.value(
                f"histogram_quantile(0.99, sum by (le) (kafka_network_requestmetrics_phase_seconds_bucket{by_phase}))")
            assert phase_p99 is not None and 0 <= phase_p99 < 30, (api, phase, phase_p99)
    assert prom.value('kafka_server_replicamanager_underreplicatedpartitions{job="tributary-broker"}') == 0
    assert prom.value('kafka_controller_kafkacontroller_offlinepartitionscount{job="tributary-broker"}') == 0

    # The operator serves metrics without an API server: up, not ready, not leading, and
    # still running (it retries instead of exiting).
    assert prom.value('tributary_operator_ready{job="tributary-operator"}') == 0
    assert prom.value('tributary_operator_leader{job="tributary-operator"}') == 0
    assert prom.value('tributary_operator_reconciles_total{job="tributary-operator", controller="kafkacluster"}') == 0
    assert op_proc.alive(), op_proc.log_tail()
    assert http_get(f"http://{op_addr}/readyz")[0] == 503

    # The chart's rules load and evaluate without errors against live data; the operator
    # without an API is already pending as not ready.
    def rules_evaluated() -> bool:
        groups = prom.api("/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert rules, "Prometheus loaded no rules"
        bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") == "err"]
        assert not bad, f"rules failing to evaluate: {bad}"
        return all(r.get("health") == "ok" for r in rules)

    wait_until(rules_evaluated, DEADLINE, "every alert rule evaluated")
    wait_until(
        lambda: any(a["labels"]["alertname"] == "TributaryOperatorNotReady" for a in prom.api("/api/v1/alerts")["alerts"]),
        DEADLINE, "TributaryOperatorNotReady pending",
    )
    firing = {a["labels"]["alertname"] for a in prom.api("/api/v1/alerts")["alerts"]}
    for quiet in ("TributaryBrokerDown", "TributaryOfflinePartitions", "TributaryUnderReplicatedPartitions"):
        assert quiet not in firing, f"{quiet} active on a healthy broker: {firing}"

    # promtool's linter accepts both expositions.
    for name, addr in (("broker", http_addr), ("operator", op_addr)):
        status, text = http_get(f"http://{addr}/metrics")
        assert status == 200
        assert "# TYPE" in text
        check = promtool("check", "metrics", stdin=text)
        assert check.returncode == 0, f"promtool check metrics ({name}):\n{check.stdout}{check.stderr}"


def fetch_all(bootstrap: str, topic: str, partitions: list[int], offsets: Optional[dict[int, int]] = None) -> dict[int, int]:
    """Raw Fetch v4 of each partition from its offset to the end; returns record bytes per
    partition. One request per partition, so bytes out moves by exactly the sum."""
    out = {}
    with kafkawire.Connection(bootstrap) as conn:
        for i, p in enumerate(partitions):
            start = (offsets or {}).get(p, 0)
            resp = conn.request(kafkawire.fetch_request_v4(100 + i, topic, p, start, max_bytes=64 << 20))
            _, fetched = kafkawire.parse_fetch_v4(resp)
            assert len(fetched) == 1 and fetched[0].error_code == 0, fetched
            records = fetched[0].records or b""
            batches = kafkawire.record_batches(records)
            last = batches[-1].base_offset + batches[-1].last_offset_delta + 1 if batches else start
            assert last == fetched[0].high_watermark, f"partition {p}: fetch did not reach the end"
            out[p] = len(records)
    return out


def test_operator_metrics_serve_before_and_without_the_kubernetes_api(operator) -> None:
    proc, addr = operator
    status, text = http_get(f"http://{addr}/metrics")
    assert status == 200
    assert "tributary_operator_ready 0" in text
    assert http_get(f"http://{addr}/readyz")[0] == 503
    # Retries are logged, the process keeps running.
    wait_until(lambda: proc.log_path.read_text(errors="replace").count("not ready to start the controllers") >= 2,
               DEADLINE, "two start-up retries")
    assert proc.alive()
    assert proc.stop() == 0, proc.log_tail()


@pytest.mark.parametrize("values", [[], ["--values", str(CHART / "ci" / "full-values.yaml")]], ids=["default", "full"])
def test_chart_alert_rules_pass_promtool_check(tmp_path: Path, values: list[str]) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(render_rules(*values)))
    check = promtool("check", "rules", str(rules))
    assert check.returncode == 0, f"promtool check rules:\n{check.stdout}{check.stderr}"
    assert "SUCCESS: 13 rules found" in check.stdout, check.stdout


# Unit tests of the alert logic with promtool's rule test runner. Annotations are stripped (the
# check above validates their templates); labels and firing times are what matter here.
RULE_TESTS = [
    {
        "interval": "1m",
        "input_series": [
            {"series": 'kafka_controller_kafkacontroller_offlinepartitionscount{namespace="kafka", cluster="events", pod="events-broker-0"}',
             "values": "0 0 3 3 3 3"},
            {"series": 'kafka_controller_kafkacontroller_offlinepartitionscount{namespace="kafka", cluster="events", pod="events-broker-1"}',
             "values": "0 0 3 3 3 3"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "TributaryOfflinePartitions", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "TributaryOfflinePartitions", "exp_alerts": [
                {"exp_labels": {"severity": "critical", "namespace": "kafka", "cluster": "events"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            {"series": 'kafka_server_replicamanager_underreplicatedpartitions{namespace="kafka", cluster="events", pod="events-broker-2"}',
             "values": "0 2x10"},
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "TributaryUnderReplicatedPartitions", "exp_alerts": []},
            {"eval_time": "7m", "alertname": "TributaryUnderReplicatedPartitions", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "namespace": "kafka", "cluster": "events"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="tributary-broker", namespace="kafka", cluster="events", pod="events-broker-1"}',
             "values": "1 1 0 0 0 0"},
            {"series": 'up{job="tributary-broker", namespace="kafka", cluster="events", pod="events-broker-0"}',
             "values": "1 1 1 1 1 1"},
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "TributaryBrokerDown", "exp_alerts": []},
            {"eval_time": "5m", "alertname": "TributaryBrokerDown", "exp_alerts": [
                {"exp_labels": {"severity": "critical", "job": "tributary-broker", "namespace": "kafka",
                                "cluster": "events", "pod": "events-broker-1"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            # Lag summed over partitions: 6000 + 5000 > 10000 on orders; 100 on audit.
            {"series": 'kafka_consumergroup_lag{namespace="kafka", cluster="events", group="billing", topic="orders", partition="0"}',
             "values": "6000x20"},
            {"series": 'kafka_consumergroup_lag{namespace="kafka", cluster="events", group="billing", topic="orders", partition="1"}',
             "values": "5000x20"},
            {"series": 'kafka_consumergroup_lag{namespace="kafka", cluster="events", group="billing", topic="audit", partition="0"}',
             "values": "100x20"},
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "TributaryConsumerGroupLag", "exp_alerts": []},
            {"eval_time": "11m", "alertname": "TributaryConsumerGroupLag", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "namespace": "kafka", "cluster": "events",
                                "group": "billing", "topic": "orders"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            # Conflicts are normal optimistic-concurrency retries and must not page anyone.
            {"series": 'tributary_operator_reconcile_errors_total{job="tributary-operator", namespace="tributary", controller="kafkatopic", error="conflict"}',
             "values": "0+10x40"},
            {"series": 'tributary_operator_reconcile_errors_total{job="tributary-operator", namespace="tributary", controller="kafkacluster", error="kube"}',
             "values": "0+1x40"},
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "TributaryReconcileErrors", "exp_alerts": []},
            {"eval_time": "25m", "alertname": "TributaryReconcileErrors", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "namespace": "tributary", "controller": "kafkacluster",
                                "error": "kube"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="tributary-operator", namespace="tributary", pod="op-0"}', "values": "1 1 0 0 0 0 0 0 0 0"},
            {"series": 'tributary_operator_leader{job="tributary-operator", namespace="tributary", pod="op-0"}',
             "values": "1 1 _ _ _ _ _ _ _ _"},
        ],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "TributaryOperatorDown", "exp_alerts": []},
            {"eval_time": "8m", "alertname": "TributaryOperatorDown", "exp_alerts": [
                {"exp_labels": {"severity": "critical"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            {"series": 'tributary_operator_leader{job="tributary-operator", namespace="tributary", pod="op-0"}',
             "values": "1x10"},
            {"series": 'tributary_operator_leader{job="tributary-operator", namespace="tributary", pod="op-1"}',
             "values": "0 0 1x8"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "TributaryOperatorSplitBrain", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "TributaryOperatorSplitBrain", "exp_alerts": [
                {"exp_labels": {"severity": "critical", "namespace": "tributary"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            # broker-0: 1.5 GiB waiting over two partitions; broker-1: a few bytes.
            {"series": 'tributary_tiered_upload_lag_bytes{namespace="kafka", cluster="events", pod="events-broker-0", topic="orders", partition="0"}',
             "values": "1073741824x30"},
            {"series": 'tributary_tiered_upload_lag_bytes{namespace="kafka", cluster="events", pod="events-broker-0", topic="orders", partition="1"}',
             "values": "536870912x30"},
            {"series": 'tributary_tiered_upload_lag_bytes{namespace="kafka", cluster="events", pod="events-broker-1", topic="orders", partition="2"}',
             "values": "1000x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "TributaryTieredUploadLagHigh", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "TributaryTieredUploadLagHigh", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "namespace": "kafka", "cluster": "events",
                                "pod": "events-broker-0"}}]},
            # A large but steady lag is not a growing one.
            {"eval_time": "20m", "alertname": "TributaryTieredUploadLagGrowing", "exp_alerts": []},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            # broker-0's lag grows by 1 MB a minute (the bucket is away); broker-1's holds still.
            {"series": 'tributary_tiered_upload_lag_bytes{namespace="kafka", cluster="events", pod="events-broker-0", topic="orders", partition="0"}',
             "values": "0+1000000x60"},
            {"series": 'tributary_tiered_upload_lag_bytes{namespace="kafka", cluster="events", pod="events-broker-1", topic="orders", partition="1"}',
             "values": "5000000x60"},
        ],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "TributaryTieredUploadLagGrowing", "exp_alerts": []},
            {"eval_time": "40m", "alertname": "TributaryTieredUploadLagGrowing", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "namespace": "kafka", "cluster": "events",
                                "pod": "events-broker-0"}}]},
            {"eval_time": "40m", "alertname": "TributaryTieredUploadLagHigh", "exp_alerts": []},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            # broker-0 drops to 5 % free at minute 2; broker-1 stays half free.
            {"series": 'tributary_log_dir_total_bytes{namespace="kafka", cluster="events", pod="events-broker-0", log_dir="/var/lib/tributary/data"}',
             "values": "100000000000x20"},
            {"series": 'tributary_log_dir_usable_bytes{namespace="kafka", cluster="events", pod="events-broker-0", log_dir="/var/lib/tributary/data"}',
             "values": "50000000000 50000000000 5000000000x18"},
            {"series": 'tributary_log_dir_total_bytes{namespace="kafka", cluster="events", pod="events-broker-1", log_dir="/var/lib/tributary/data"}',
             "values": "100000000000x20"},
            {"series": 'tributary_log_dir_usable_bytes{namespace="kafka", cluster="events", pod="events-broker-1", log_dir="/var/lib/tributary/data"}',
             "values": "50000000000x20"},
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "TributaryLogDirNearlyFull", "exp_alerts": []},
            {"eval_time": "9m", "alertname": "TributaryLogDirNearlyFull", "exp_alerts": [
                {"exp_labels": {"severity": "critical", "namespace": "kafka", "cluster": "events",
                                "pod": "events-broker-0", "log_dir": "/var/lib/tributary/data"}}]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            # broker-0 loses 100 MB a minute from 40 GB free (of 100 GB): at that rate the disk
            # is full within 4 h from minute 160 on; broker-1 holds steady.
            {"series": 'tributary_log_dir_total_bytes{namespace="kafka", cluster="events", pod="events-broker-0", log_dir="/d"}',
             "values": "100000000000x300"},
            {"series": 'tributary_log_dir_usable_bytes{namespace="kafka", cluster="events", pod="events-broker-0", log_dir="/d"}',
             "values": "40000000000-100000000x300"},
            {"series": 'tributary_log_dir_total_bytes{namespace="kafka", cluster="events", pod="events-broker-1", log_dir="/d"}',
             "values": "100000000000x300"},
            {"series": 'tributary_log_dir_usable_bytes{namespace="kafka", cluster="events", pod="events-broker-1", log_dir="/d"}',
             "values": "30000000000x300"},
        ],
        "alert_rule_test": [
            {"eval_time": "150m", "alertname": "TributaryLogDirFillingUp", "exp_alerts": []},
            {"eval_time": "200m", "alertname": "TributaryLogDirFillingUp", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "namespace": "kafka", "cluster": "events",
                                "pod": "events-broker-0", "log_dir": "/d"}}]},
            {"eval_time": "200m", "alertname": "TributaryLogDirNearlyFull", "exp_alerts": []},
        ],
    },
]


def test_chart_alerts_fire_when_they_should_and_not_before(tmp_path: Path) -> None:
    rules = render_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": RULE_TESTS,
    }))
    result = subprocess.run([tool("promtool"), "test", "rules", "tests.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool test rules:\n{result.stdout}{result.stderr}"
    assert "SUCCESS" in result.stdout + result.stderr
