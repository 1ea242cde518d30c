"""Fixtures for the real-client suite: a broker process per test (ours by default, or the peer
broker Tansu with `--broker-kind tansu` to validate the harness itself), or with
`--broker-kind cluster` a three-broker local cluster shared by the session (clusterkind.py);
the compiled Java client, and the brokers' logs attached to every failing test's report."""

from __future__ import annotations

import os
import re
import sys
import uuid
from typing import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clusterkind import ClusterBroker, ClusterPool  # noqa: E402
from harness import (  # noqa: E402
    BROKER_KINDS,
    JAVA_SRC_DIR,
    BrokerProcess,
    JavaClient,
    java_build,
    kafka_java_jars,
    port_block_index,
    use_port_block,
)

JAVA_BUILD_DIR = Path(__file__).resolve().parent / "java" / "build"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker-kind",
        choices=(*BROKER_KINDS, "cluster"),
        default="tributary",
        help="broker under test: tributary (target/debug/tributary-broker), cluster (three of them "
        "through tributary-e2e up) or tansu (peer broker)",
    )
    parser.addoption(
        "--no-peer-xfail",
        action="store_true",
        help="with --broker-kind tansu, report peer_gap tests as plain failures (to see why)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Brokers started by the tests get a few MiB of commit journal instead of the default
    # 128 MiB: a run starts hundreds of them, each preallocating its journal. (The benchmark,
    # run outside pytest, keeps the default.)
    os.environ.setdefault("TRIBUTARY_COMMIT_JOURNAL_BYTES", str(8 << 20))
    # A pytest-xdist worker (gw0, gw1, ...) takes its free ports from its own block, so two
    # workers never hand out the same port (harness.free_port). The cluster pass's workers take
    # the blocks after the standalone pass's, as `make test` runs both passes at once.
    block = port_block_index(
        config.getoption("--broker-kind"), os.environ.get("PYTEST_XDIST_WORKER", "")
    )
    if block is not None:
        use_port_block(block)
    config.addinivalue_line(
        "markers",
        "peer_gap(reason): Kafka behaviour the peer broker Tansu lacks; expected to fail (xfail) "
        "when run with --broker-kind tansu, must pass against ours",
    )
    config.addinivalue_line(
        "markers",
        "single_broker(reason): behaviour of one standalone broker's process and flags that a "
        "cluster cannot show (say why); not run with --broker-kind cluster",
    )
    config.addinivalue_line(
        "markers",
        "same_on_cluster(reason): behaviour the broker that receives the request decides alone, "
        "by the same code on one broker as on one of three (say which); the standalone run "
        "covers it and --broker-kind cluster skips it (see CLUSTER PASS below)",
    )


# CLUSTER PASS. `make test` runs the suite twice: against one standalone broker per test, then
# with --broker-kind cluster against three brokers (RF 3, min.insync.replicas 2). The cluster run
# is for behaviour that can differ on a cluster, and every test runs there unless marked:
#   - runs on the cluster (no marker, the default for a new test): anything touching
#     replication, acks, high watermarks, leadership, metadata or routing across brokers, the
#     group and transaction coordinators, admin operations that go through the controller
#     (topic creation, configs, quotas, SCRAM, reassignment), the ISR, broker kill and restart,
#     producer ids and idempotence, tiered storage across leader changes;
#   - same_on_cluster(reason): behaviour the broker that receives a request decides alone, by the
#     same code whether it is alone or one of three: record and frame codecs, compression
#     codecs beyond one case per client (a follower copies batches whatever their codec),
#     request validation and size limits checked before anything is written or forwarded,
#     protocol parsing and answers of one connection, reads inside one log, the schema
#     registry's REST rules; the standalone run covers each of them;
#   - single_broker(reason): a standalone broker's process, files or flags that a cluster cannot
#     show at all.
# When in doubt, leave a test unmarked: it then runs in both passes.
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--broker-kind") == "cluster":
        for item in items:
            for name, prefix in (("single_broker", "single broker"), ("same_on_cluster", "same on a cluster")):
                marker = item.get_closest_marker(name)
                if marker is not None:
                    reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
                    item.add_marker(pytest.mark.skip(reason=f"{prefix}: {reason}"))
                    break
        return
    if config.getoption("--broker-kind") != "tansu" or config.getoption("--no-peer-xfail"):
        return
    for item in items:
        marker = item.get_closest_marker("peer_gap")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.xfail(reason=f"Tansu: {reason}", strict=False))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, broker in enumerate(getattr(item, "_brokers", [])):
            report.sections.append(
                (f"broker #{i} ({broker.kind} on {broker.bootstrap}) log", broker.log_tail(200))
            )


@pytest.fixture(scope="session")
def broker_kind(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--broker-kind")


@pytest.fixture(scope="session")
def cluster_pool(tmp_path_factory: pytest.TempPathFactory):
    """The `cluster` kind's clusters (one at a time per pytest-xdist worker), stopped at the
    end of the session."""
    pool = ClusterPool(tmp_path_factory.mktemp("clusters"))
    yield pool
    pool.close()


@pytest.fixture
def broker_factory(request: pytest.FixtureRequest, tmp_path: Path, broker_kind: str):
    """Starts brokers of the kind under test: `broker_factory(num_partitions=3, ...)`.

    Keyword arguments are broker settings (`--num-partitions`, `--auto-create-topics`,
    `--message-max-bytes`, ...); Tansu ignores them, the cluster kind runs a cluster configured
    with them. Every broker process is stopped after the test, and its log is attached to the
    report if the test failed.
    """
    started: list = []
    request.node._brokers = started

    def start(**settings: object):
        if broker_kind == "cluster":
            cluster = ClusterBroker(request.getfixturevalue("cluster_pool").get(settings), settings)
            started.append(cluster)
            return cluster
        workdir = tmp_path / f"broker{len(started)}"
        broker = BrokerProcess(broker_kind, workdir, settings=settings)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        if isinstance(broker, BrokerProcess):
            broker.stop()


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    """A broker with default settings (auto-create on)."""
    return broker_factory()


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (legal characters only)."""
    base = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:80]
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def java() -> Iterator[JavaClient]:
    """The Java client (Apache Kafka 3.9.1) test program, compiled once (xdist workers share the
    build: harness.java_build builds under a file lock)."""
    jars = kafka_java_jars()
    build = java_build(JAVA_SRC_DIR, JAVA_BUILD_DIR, jars)
    client = JavaClient(build, jars)
    yield client
    client.close()
