# The whole test suite is `make test`; CI (.ci/run) calls exactly that.
PYTHON ?= python3
CARGO ?= cargo

.PHONY: test check tools docs nextest build rust-tests client-tests e2e-tests bench librdkafka-tests fuzz \
	fuzz-short fuzz-short-run coordinator-kill-loop flake-hunt pytest-standalone pytest-cluster code-shape

# Installs (or checks) the real tools: kcat, the Python clients, the Kafka Java client, Tansu,
# helm and kubectl, Prometheus and promtool, shellcheck, mdBook, the Node.js clients.
tools:
	./.ci/install-tools.sh

# cargo-nextest, which runs the workspace's Rust tests (`.config/nextest.toml`): installed with
# cargo when `cargo nextest` is missing; a failed install fails the target, never skips tests.
NEXTEST_VERSION ?= 0.9.143
nextest:
	@$(CARGO) nextest --version >/dev/null 2>&1 || \
		$(CARGO) install --locked cargo-nextest --version $(NEXTEST_VERSION)
	@$(CARGO) nextest --version >/dev/null

# mdbook as pip installed it (`tools`): in the interpreter's scripts directory, which need not be
# on PATH (a pyenv interpreter's shims appear only after a rehash).
MDBOOK ?= $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/mdbook

# The book (docs/, mdBook; `mdbook` comes from `tools`): built into target/book/, never into the
# source tree, then every relative link and #anchor of README.md and the book checked (and every
# chapter listed in SUMMARY.md: docs/check_links.py), then the checker's own tests.
docs:
	$(MDBOOK) build docs -d target/book
	$(PYTHON) docs/check_links.py
	$(PYTHON) -m pytest docs/test_check_links.py -q -p no:cacheprovider

# Every Rust test of the workspace, each in a process of its own (nextest; the cluster tests and
# the e2e scenarios one at a time each, a hung test killed with its name, no retries), then the
# doctests, which nextest does not run. NEXTEST_ARGS passes more (`-E 'test(/failover/)'`,
# `--no-capture`); `--profile check` is make check's subset.
rust-tests: nextest
	$(CARGO) nextest run --workspace $(NEXTEST_ARGS)
	$(CARGO) test --doc --workspace

# The quick gate before a commit: the book and its links, formatting, clippy on every target with warnings as errors,
# then every unit and in-process test, that is all but the multi-broker cluster tests
# (broker/tests/cluster) and the e2e scenarios (nextest's `check` profile), and the doctests.
# About 4 minutes warm on 2 cores; prints each step's wall time and a table (.ci/stage).
check: tools nextest
	@./.ci/stage begin
	./.ci/stage docs $(MAKE) --no-print-directory docs
	./.ci/stage fmt $(CARGO) fmt --all --check
	./.ci/stage clippy $(CARGO) clippy --workspace --all-targets -- -D warnings
	./.ci/stage fast-tests $(MAKE) --no-print-directory rust-tests NEXTEST_ARGS="--profile check"
	@./.ci/stage table

# Every target of the workspace in one cargo invocation, as the Rust tests build them: the
# binaries the client tests, the e2e scenarios and the fuzz harness run (broker, operator,
# control plane, registry, fuzz) and every test binary. One invocation resolves features once:
# `cargo build -p ...` of the binaries alone left out the dev-dependencies' features (tokio's
# test-util), so a cold run built tokio and everything above it twice (about 4 minutes on
# 2 cores), and the fuzz harness's own build a third time.
build:
	$(CARGO) test --workspace --no-run -q

# Real clients against target/debug/tributary-broker (and a real Prometheus scraping it and the
# operator); pass PYTEST_ARGS="-k ..." to select, PYTEST_ARGS="--broker-kind cluster" to run
# them against three brokers of a local cluster (`tributary-e2e up`), or
# PYTEST_ARGS="--broker-kind tansu" to validate the harness against the peer broker.
client-tests: tools build
	$(PYTHON) -m pytest broker/tests/clients -q $(PYTEST_ARGS)

# The e2e control plane's tests and the scenarios' local driver (`make test`'s cargo-tests
# stage runs them too); pass E2E_ARGS="--nocapture" to see each scenario's wall time.
e2e-tests: tools build
	$(CARGO) test -p tributary-e2e -- $(E2E_ARGS)

# The Rust tests are `rust-tests` (nextest, then the doctests). The real-client suite runs
# twice, both passes at once: against one standalone broker per test, on three pytest-xdist
# workers (each test starts its own broker on its own ports and data dir), and against
# three-broker local clusters (RF 3, min.insync.replicas 2), one per worker, each worker taking
# whole files so a cluster serves tests in the files' order, where the tests marked
# single_broker or same_on_cluster are skipped with their reason (the rule: CLUSTER PASS in
# broker/tests/clients/conftest.py). A standalone broker listens on 127.0.0.1, each cluster on
# a loopback /24 of its own, and the two passes' workers take their free ports from separate
# blocks (harness.port_block_index), so the passes never meet.
# Each stage prints its wall time, and the run ends with a table of them (.ci/stage).
test:
	@./.ci/stage begin
	./.ci/stage tools $(MAKE) --no-print-directory tools
	./.ci/stage docs $(MAKE) --no-print-directory docs
	./.ci/stage build $(MAKE) --no-print-directory build
	./.ci/stage cargo-tests $(MAKE) --no-print-directory rust-tests
	./.ci/stage client-tests $(MAKE) --no-print-directory -j2 --output-sync=target \
		pytest-standalone pytest-cluster
	./.ci/stage fuzz-short $(MAKE) --no-print-directory fuzz-short-run
	@./.ci/stage table

# The two passes of the real-client suite, which `make test` runs side by side (together they
# keep 2 cores about half busy: the tests mostly wait on timeouts, sessions and clients), each
# printing its output whole when it ends and recording its own row in the stage table.
pytest-standalone:
	@STAGE_PART=1 ./.ci/stage pytest-standalone $(PYTHON) -m pytest broker/tests/clients -q \
		--durations=15 -n 3 -rfE --junitxml=target/junit/pytest-standalone.xml $(PYTEST_ARGS)

pytest-cluster:
	@STAGE_PART=1 ./.ci/stage pytest-cluster $(PYTHON) -m pytest broker/tests/clients -q \
		--durations=15 -n 2 --dist loadfile -rsfE --junitxml=target/junit/pytest-cluster.xml \
		--broker-kind cluster $(PYTEST_ARGS)

# The fuzz harness (broker/fuzz): the regression frames of known defects first, then
# structure-aware mutations of the captured client corpus, with checks (no panic, /healthz,
# a kcat round trip between rounds, memory and descriptor ceilings, no invalid batch ever
# acknowledged, every acknowledged partition read back clean). Exits 1 when a check fails
# (a panic of the harness itself included), 3 when its watchdog had to end a stuck run; it
# never hangs. FUZZ_ARGS passes more flags (`tributary-fuzz run --help`).
FUZZ_SECONDS ?= 300
FUZZ_SEED ?= 20
# The short run of `make test`: the same test on every machine, a fixed seed and a fixed
# budget of 3 rounds x 4000 mutated frames (the cases are a function of the seed and the case
# index alone; as many frames as the 30 s of earlier runs) against the debug broker `build`
# made: about 35 s on a 2-core box, with the seeds, the bombs and the final read-back. Time
# only bounds a round a broken broker slows to a crawl (--round-seconds, a warning in the
# summary); the summary prints the frame count.
FUZZ_SHORT = ./target/debug/tributary-fuzz run \
	--broker-bin target/debug/tributary-broker --seed 1 --rounds 3 --frames-per-round 4000 \
	--round-seconds 60 --readback-every 3

fuzz-short: tools build fuzz-short-run

fuzz-short-run:
	$(FUZZ_SHORT)

# `FUZZ_SECONDS=600 make fuzz`: the release broker for as long as asked (a time budget, in
# rounds of --round-seconds); prints the summary.
fuzz: tools
	$(CARGO) build --release -p tributary-broker -p tributary-fuzz
	./target/release/tributary-fuzz run --broker-bin target/release/tributary-broker \
		--seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED) $(FUZZ_ARGS)

# Side-by-side benchmark: our release build against the peer broker (Tansu), A B A B.
# `make bench BENCH_MODE=cluster`: three release brokers through `tributary-e2e up --release`
# instead (RF 3 against RF 1 acks=all throughput, RF 3 latency, leader-kill failover with the
# default and a tuned broker Lease; broker/bench/bench.py --cluster). `make bench BENCH_MODE=tls`:
# our broker over TLS against plaintext in the same run (bench.py --tls). `make bench
# BENCH_MODE=tiered`: consuming a tiered topic from the bucket (a moto S3 server) against a local
# one, and the disk each uses (tiered_bench.py). `make bench BENCH_MODE=schema`: produce to a
# topic with schema validation on against one without, in the same run (schema_bench.py).
BENCH_MODE ?= standalone
bench: tools
ifeq ($(BENCH_MODE),cluster)
	$(CARGO) build --release -p tributary-broker -p tributary-operator -p tributary-e2e
	$(PYTHON) broker/bench/bench.py --cluster --broker-bin target/release/tributary-broker $(BENCH_ARGS)
else ifeq ($(BENCH_MODE),tls)
	$(CARGO) build --release -p tributary-broker
	$(PYTHON) broker/bench/bench.py --tls --broker-bin target/release/tributary-broker $(BENCH_ARGS)
else ifeq ($(BENCH_MODE),tiered)
	$(CARGO) build --release -p tributary-broker
	$(PYTHON) broker/bench/tiered_bench.py --broker-bin target/release/tributary-broker $(BENCH_ARGS)
else ifeq ($(BENCH_MODE),schema)
	$(CARGO) build --release -p tributary-broker
	$(CARGO) build -p tributary-registry
	$(PYTHON) broker/bench/schema_bench.py --broker-bin target/release/tributary-broker $(BENCH_ARGS)
else ifeq ($(BENCH_MODE),standalone)
	$(CARGO) build --release -p tributary-broker
	$(PYTHON) broker/bench/bench.py --broker-bin target/release/tributary-broker $(BENCH_ARGS)
else
	$(error BENCH_MODE is standalone, cluster, tls or tiered, not $(BENCH_MODE))
endif

# librdkafka's own regression suite (quick mode) against a fresh broker; not part of `make test`
# because it builds librdkafka and its tests first (about 10 minutes on 2 cores).
# `make librdkafka-tests LIBRDKAFKA_MODE=cluster`: against three brokers of `tributary-e2e up`;
# LIBRDKAFKA_GROUP_PROTOCOL=consumer: its consumers with group.protocol=consumer (KIP-848).
LIBRDKAFKA_MODE ?= standalone
LIBRDKAFKA_GROUP_PROTOCOL ?= classic
librdkafka-tests: tools
	LIBRDKAFKA_MODE=$(LIBRDKAFKA_MODE) LIBRDKAFKA_GROUP_PROTOCOL=$(LIBRDKAFKA_GROUP_PROTOCOL) \
		./broker/tests/librdkafka/run.sh

# The coordinator-kill loop (broker/tests/clients/loop_coordinator_kill.py), not part of `make
# test` (about 25 s a round): a classic group's coordinator SIGKILLed, the group resuming, new
# RF 3 topics in sync with the restarted broker; a fresh cluster every 5 rounds keeps the pods'
# restart back-off bounded. `make coordinator-kill-loop ROUNDS=50`.
ROUNDS ?= 50
coordinator-kill-loop: tools build
	TRIBUTARY_COORDINATOR_KILL_ROUNDS=$(ROUNDS) $(PYTHON) -m pytest broker/tests/clients/loop_coordinator_kill.py \
		-q -x -s --broker-kind cluster -o timeout=$$(( $(ROUNDS) * 300 + 600 ))

# Flakes hunted before CI: the cargo tests (nextest's stress mode) and both client-suite kinds
# rerun REPS times with two busy processes competing for the cores; every failure is listed with
# its repetition and log (target/flake-hunt/). FLAKE_PARTS, FLAKE_CARGO_FILTER and
# FLAKE_PYTEST_ARGS narrow it (.ci/flake-hunt). Not part of `make test`: 20 repetitions of
# everything take hours.
REPS ?= 20
flake-hunt: tools nextest build
	./.ci/flake-hunt $(REPS)

# The code's shape: the crate graph, each crate's lines, the import cycles between its
# top-level modules and its long functions (.ci/code-shape; `REPO=dir` for another checkout,
# to compare a before and an after).
code-shape:
	$(PYTHON) .ci/code-shape --edges $(REPO)
