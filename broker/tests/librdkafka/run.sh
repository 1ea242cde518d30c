#!/usr/bin/env bash
# Runs librdkafka's own regression suite (quick mode, no socket emulation) against a fresh
# standalone broker built from this checkout, or with LIBRDKAFKA_MODE=cluster against three
# brokers of a local cluster (`tributary-e2e up --brokers 3`). The suite's sources ship in the rdkafka-sys
# crate that `trib` already depends on, so nothing is fetched beyond crates.io.
#
#   broker/tests/librdkafka/run.sh [extra test-runner args]    (TESTS=0011,0103 selects tests)
#
# LIBRDKAFKA_GROUP_PROTOCOL=consumer runs the suite's consumers with group.protocol=consumer
# (KIP-848; the suite's TEST_CONSUMER_GROUP_PROTOCOL) against brokers that serve it
# (group.coordinator.rebalance.protocols=classic,consumer).
#
# The suite's default scenario is a 3-broker cluster with auto-created topics of 4 partitions;
# the broker runs with --num-partitions 4, and with an authorizer that lets everyone do what no
# ACL names (allow.everyone.if.no.acl.found), so 0081, 0109, 0115 and 0119 can manage ACLs and deny access with
# kafka-acls.sh. Tests that call the Kafka distribution's kafka-topics.sh and kafka-acls.sh get
# stand-ins on confluent-kafka's admin client (KAFKA_PATH, see kafka-path/). Skipped, because
# this single broker cannot pass them:
#   0052                 also produces with Produce v1 (api.version.request=false,
#                        broker.version.fallback=0.9.0), which this broker does not serve;
#   0103                 creates its topics with replication factor 3.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
work="$root/target/librdkafka-tests"
cd "$root"

src=$(cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if p["name"] == "rdkafka-sys":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "librdkafka"))
        break
')
[ -d "$src/tests" ] || { echo "librdkafka sources not found (rdkafka-sys): $src" >&2; exit 1; }

if [ ! -x "$work/tests/test-runner" ]; then
    rm -rf "$work" && mkdir -p "$work" && cp -r "$src/." "$work/"
    chmod +x "$work/configure" "$work"/mklove/modules/* 2>/dev/null || true
    (cd "$work" && ./configure --disable-gssapi --disable-curl --disable-sasl >/dev/null \
        && make -j"$(nproc)" libs >/dev/null && make -C tests -j"$(nproc)" build >/dev/null)
fi

data=$(mktemp -d)
protocols=classic
if [ "${LIBRDKAFKA_GROUP_PROTOCOL:-classic}" = consumer ]; then
    protocols=classic,consumer
    export TEST_CONSUMER_GROUP_PROTOCOL=consumer
fi
if [ "${LIBRDKAFKA_MODE:-standalone}" = cluster ]; then
    # Three brokers, the operator and the control plane, as `tributary-e2e up` runs them, with
    # the settings of the suite's own clusters (Kafka's default min.insync.replicas of 1: its
    # tests create replication-factor-1 topics and produce with acks=all); the authorizer lets
    # everyone do what no ACL names, as the standalone broker's does.
    # Release builds throughout: the suite creates hundreds of topics, and a debug build of the
    # control plane's API server falls behind (CreateTopics timing out) after a few hundred.
    cargo build -q --release -p tributary-broker -p tributary-operator -p tributary-e2e
    state="$work/up"
    target/release/tributary-e2e up --release --brokers 3 --no-build --replace --state-dir "$state" \
        --config num.partitions=4 --config min.insync.replicas=1 \
        --config allow.everyone.if.no.acl.found=true --authorization \
        --config "group.coordinator.rebalance.protocols=$protocols" \
        >"$data/up.log" 2>&1 &
    up=$!
    # Absolute paths: the suite runs from its own directory, and the trap runs there.
    trap '"$root/target/release/tributary-e2e" down --state-dir "$state" >/dev/null 2>&1; kill $up 2>/dev/null || true; rm -rf "$data" || true' EXIT
    bootstrap=""
    for _ in $(seq 600); do
        bootstrap=$(sed -n 's/^Kafka bootstrap: //p' "$data/up.log")
        [ -n "$bootstrap" ] && break
        kill -0 $up 2>/dev/null || { cat "$data/up.log" >&2; echo "tributary-e2e up exited" >&2; exit 1; }
        sleep 0.5
    done
    [ -n "$bootstrap" ] || { cat "$data/up.log" >&2; echo "the cluster was not ready within 300 s" >&2; exit 1; }
    # Only Produce v1 is beyond the cluster (see above): 0103's replication factor 3 is served.
    export TESTS_SKIP="${TESTS_SKIP:-0052}"
else
    cargo build -q -p tributary-broker
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf '%s\n' 'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer' \
        'allow.everyone.if.no.acl.found=true' "group.coordinator.rebalance.protocols=$protocols" \
        >"$data/broker.properties"
    target/debug/tributary-broker --config "$data/broker.properties" --data-dir "$data/log" \
        --listener "127.0.0.1:$port" --http-listener "127.0.0.1:$http" --num-partitions 4 \
        >"$data/broker.log" 2>&1 &
    broker=$!
    # The broker gets 30 s to stop before its data directory goes (it may still be writing);
    # cleaning up never changes the suite's exit status.
    trap 'kill $broker 2>/dev/null; for _ in $(seq 60); do kill -0 $broker 2>/dev/null || break; sleep 0.5; done
          kill -9 $broker 2>/dev/null; rm -rf "$data" || true' EXIT
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
        sleep 0.2
    done
    bootstrap="127.0.0.1:$port"
    export TESTS_SKIP="${TESTS_SKIP:-0052,0103}"
fi

cd "$work/tests"
echo "metadata.broker.list=$bootstrap" >test.conf
export TEST_KAFKA_VERSION=3.9.0 LD_LIBRARY_PATH=../src:../src-cpp
export KAFKA_PATH="${KAFKA_PATH:-$root/broker/tests/librdkafka/kafka-path}" BROKERS="$bootstrap"
./test-runner -Q -E -p2 "$@"
