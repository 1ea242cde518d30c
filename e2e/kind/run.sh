#!/usr/bin/env bash
# The kind driver of the e2e scenarios (e2e/tests/scenarios): creates a kind cluster, builds the
# broker, operator and schema registry images with their Dockerfiles and loads them into it, routes the pod
# network to the kind node (so clients on this machine reach pods at their IPs, as the scenarios
# and brokers advertising pod IPs expect), helm installs charts/tributary with
# e2e/chart-values.yaml, and runs the scenario module's kind tests one at a time:
#
#   cargo test -p tributary-e2e --features kind --test scenarios kind_driver:: -- --test-threads=1
#
# Needs docker, kind, cargo, java, and sudo for `ip route` unless run as root; installs the rest
# (helm, kubectl, kcat, Prometheus, the Kafka Java client) with .ci/install-tools.sh.
#
# Environment: KIND_CLUSTER (default tributary-e2e), KEEP_CLUSTER=1 keeps the cluster afterwards,
# E2E_ARGS adds test-harness arguments (e.g. a scenario name to run only that one).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${KIND_CLUSTER:-tributary-e2e}"
WORK="target/e2e/kind"
VERSION="$(awk -F'"' '/^appVersion:/ {print $2}' charts/tributary/Chart.yaml)"
BROKER_IMAGE="ghcr.io/tributary-dev/tributary-broker:${VERSION}"
OPERATOR_IMAGE="ghcr.io/tributary-dev/tributary-operator:${VERSION}"
REGISTRY_IMAGE="ghcr.io/tributary-dev/tributary-schema-registry:${VERSION}"

log() { printf 'e2e/kind: %s\n' "$*" >&2; }
die() { printf 'e2e/kind: error: %s\n' "$*" >&2; exit 1; }

for tool in docker kind cargo java; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
[ -n "$VERSION" ] || die "no appVersion in charts/tributary/Chart.yaml"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

./.ci/install-tools.sh
PATH="$PWD/.tools/helm:$PWD/.tools/kubectl:$PATH"
export PATH

mkdir -p "$WORK"
export KUBECONFIG="$PWD/$WORK/kubeconfig"
POD_CIDR=""

cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        log "failed; exporting the cluster's logs to $WORK/logs"
        kind export logs "$WORK/logs" --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
    if [ -n "$POD_CIDR" ]; then
        $SUDO ip route del "$POD_CIDR" >/dev/null 2>&1 || true
    fi
    if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT

log "creating kind cluster $CLUSTER"
kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
kind create cluster --name "$CLUSTER" --config e2e/kind/cluster.yaml --kubeconfig "$KUBECONFIG" --wait 180s

log "building $BROKER_IMAGE, $OPERATOR_IMAGE and $REGISTRY_IMAGE"
docker build -f broker/Dockerfile -t "$BROKER_IMAGE" .
docker build -f operator/Dockerfile -t "$OPERATOR_IMAGE" .
docker build -f registry/Dockerfile -t "$REGISTRY_IMAGE" .
kind load docker-image --name "$CLUSTER" "$BROKER_IMAGE" "$OPERATOR_IMAGE" "$REGISTRY_IMAGE"

NODE="${CLUSTER}-control-plane"
NODE_IP="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$NODE")"
POD_CIDR="$(kubectl get node "$NODE" -o jsonpath='{.spec.podCIDR}')"
if [ -z "$NODE_IP" ] || [ -z "$POD_CIDR" ]; then
    die "cannot find the node's address or pod CIDR"
fi
log "routing $POD_CIDR via $NODE_IP"
$SUDO ip route replace "$POD_CIDR" via "$NODE_IP"

log "installing charts/tributary"
helm install tributary charts/tributary --namespace tributary-system --create-namespace \
    --values e2e/chart-values.yaml --wait --timeout 300s

log "running the scenarios"
export TRIBUTARY_E2E_KUBECONFIG="$KUBECONFIG" TRIBUTARY_E2E_KIND_CLUSTER="$CLUSTER"
# shellcheck disable=SC2086 # E2E_ARGS is a list of arguments.
cargo test -p tributary-e2e --features kind --test scenarios kind_driver:: -- --test-threads=1 ${E2E_ARGS:-}
