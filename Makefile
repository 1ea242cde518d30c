# The whole test suite is `make test`; CI (.ci/run) calls exactly that.
PYTHON ?= python3
CARGO ?= cargo

.PHONY: test tools build client-tests e2e-tests bench librdkafka-tests

# Installs (or checks) the real tools: kcat, the Python clients, the Kafka Java client, Tansu,
# helm and kubectl, Prometheus and promtool, shellcheck.
tools:
	./.ci/install-tools.sh

# The client tests run the broker; the monitoring test (test_prometheus.py) also the operator;
# the e2e scenarios run both as the local control plane's pods.
build:
	$(CARGO) build -p tributary-broker -p tributary-operator

# Real clients against target/debug/tributary-broker (and a real Prometheus scraping it and the
# operator); pass PYTEST_ARGS="-k ..." to select, or PYTEST_ARGS="--broker-kind tansu" to
# validate the harness against the peer broker.
client-tests: tools build
	$(PYTHON) -m pytest broker/tests/clients -q $(PYTEST_ARGS)

# The e2e control plane's tests and the scenarios' local driver (`cargo test --workspace` in
# `test` runs them too); pass E2E_ARGS="--nocapture" to see each scenario's wall time.
e2e-tests: tools build
	$(CARGO) test -p tributary-e2e -- $(E2E_ARGS)

test: tools build
	$(CARGO) test --workspace
	$(PYTHON) -m pytest broker/tests/clients -q $(PYTEST_ARGS)

# Side-by-side benchmark: our release build against the peer broker (Tansu), A B A B.
bench: tools
	$(CARGO) build --release -p tributary-broker
	$(PYTHON) broker/bench/bench.py --broker-bin target/release/tributary-broker $(BENCH_ARGS)

# librdkafka's own regression suite (quick mode) against a fresh broker; not part of `make test`
# because it builds librdkafka and its tests first (about 10 minutes on 2 cores).
librdkafka-tests: tools
	./broker/tests/librdkafka/run.sh
