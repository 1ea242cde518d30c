"""Broker processes, tool locations and polling helpers shared by the client tests and the
benchmark. Nothing here knows pytest, so `broker/bench/bench.py` can use it too."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOLS_DIR = REPO_ROOT / ".tools"
CLIENTS_DIR = Path(__file__).resolve().parent
JAVA_SRC_DIR = CLIENTS_DIR / "java"

T = TypeVar("T")


class Timeout(AssertionError):
    """A condition polled with a deadline never came true."""


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Polls `condition` until it returns a truthy value or `timeout` seconds pass.

    Exceptions raised by the condition count as "not yet"; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported below
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# With pytest-xdist every worker process takes its ports from its own block below the kernel's
# ephemeral range (32768-60999 by default; conftest.py calls `use_port_block` in each worker): a
# port one worker has just found free and not yet handed to its broker cannot be taken by
# another worker, nor by any client's outgoing connection. Otherwise (one pytest process, the
# benchmark, a subprocess of a worker) the kernel picks a free port (port 0).
PORT_BLOCK_BASE = 20000
PORT_BLOCK_SIZE = 1500
_port_block: Optional[range] = None
_next_port = 0


# The first port block of the cluster pass's workers: the standalone pass's workers (up to 4)
# take blocks 0-3, the cluster pass's 4-7, as `make test` runs both passes at once.
CLUSTER_PORT_BLOCKS = 4


def port_block_index(broker_kind: str, worker: str) -> Optional[int]:
    """The port block of xdist worker `worker` (gw0, gw1, ...) in a pass against `broker_kind`;
    None outside xdist."""
    if not worker.startswith("gw"):
        return None
    first = CLUSTER_PORT_BLOCKS if broker_kind == "cluster" else 0
    return first + int(worker[2:])


def use_port_block(index: int) -> None:
    """This process takes its ports from block `index` (an xdist worker's number) from now on."""
    global _port_block, _next_port
    first = PORT_BLOCK_BASE + index * PORT_BLOCK_SIZE
    if first + PORT_BLOCK_SIZE > 32768:
        raise RuntimeError(f"no port block {index} below the ephemeral range: run fewer workers")
    _port_block, _next_port = range(first, first + PORT_BLOCK_SIZE), first


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    global _next_port
    if _port_block is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for _ in range(len(_port_block)):
        # Round robin through the block: a port comes back only after the whole block.
        port = _next_port
        _next_port = _port_block.start + (port + 1 - _port_block.start) % len(_port_block)
        if _port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {_port_block.start}-{_port_block.stop - 1}")


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Tool locations (installed by .ci/install-tools.sh; each can be overridden by an env var)
# ---------------------------------------------------------------------------------------------


def tributary_binary(profile: str = "debug") -> Path:
    path = Path(os.environ.get("TRIBUTARY_BROKER_BIN", REPO_ROOT / "target" / profile / "tributary-broker"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `cargo build -p tributary-broker` (or `make test`)")
    return path


def tansu_binary() -> Path:
    path = Path(os.environ.get("TANSU_BIN", TOOLS_DIR / "tansu" / "tansu"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run .ci/install-tools.sh")
    return path


def kafka_java_jars() -> list[Path]:
    lib = Path(os.environ.get("KAFKA_JAVA_LIB", TOOLS_DIR / "kafka-java"))
    jars = sorted(lib.glob("*.jar"))
    if not any(j.name.startswith("kafka-clients") for j in jars):
        raise FileNotFoundError(f"no kafka-clients jar in {lib}: run .ci/install-tools.sh")
    return jars


def kcat_binary() -> str:
    path = shutil.which("kcat")
    if not path:
        raise FileNotFoundError("kcat not installed: run .ci/install-tools.sh")
    return path


# ---------------------------------------------------------------------------------------------
# Broker processes
# ---------------------------------------------------------------------------------------------

BROKER_KINDS = ("tributary", "tansu")


class BrokerProcess:
    """One broker process on a free port, with its stderr in a file.

    `kind` is "tributary" (our binary) or "tansu" (the peer broker, memory storage: it ignores
    the data dir and most settings, and loses everything on restart).
    """

    def __init__(
        self,
        kind: str,
        workdir: Path,
        binary: Optional[Path] = None,
        settings: Optional[dict[str, object]] = None,
        port: Optional[int] = None,
        extra_env: Optional[dict[str, str]] = None,
        data_dir: Optional[Path] = None,
    ) -> None:
        if kind not in BROKER_KINDS:
            raise ValueError(f"unknown broker kind {kind!r}; expected one of {BROKER_KINDS}")
        self.kind = kind
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # `data_dir`: elsewhere than in the work dir (on a small file system, say).
        self.data_dir = Path(data_dir) if data_dir is not None else self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or (tributary_binary() if kind == "tributary" else tansu_binary())
        self.settings = dict(settings or {})
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.extra_env = dict(extra_env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.log_path = self.workdir / "broker.log"
        self.http_address = self.extra_env.get("TRIBUTARY_HTTP_LISTENER") or f"127.0.0.1:{free_port()}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every broker's (host, port): this one's (a cluster kind lists each of its brokers)."""
        return [(self.host, self.port)]

    @property
    def data_dirs(self) -> list[Path]:
        """Every broker's log directory: this one's."""
        return [self.data_dir]

    @property
    def http_addresses(self) -> list[str]:
        """Every broker's /metrics and health endpoint (host:port): this one's."""
        return [self.http_address]

    def scram_storage(self) -> list[str]:
        """What the broker keeps of SCRAM credentials, as text (its file in the data dir)."""
        return [(self.data_dir / "scram-credentials.json").read_text()]

    def command(self) -> list[str]:
        addr = self.bootstrap
        if self.kind == "tansu":
            return [
                str(self.binary),
                "broker",
                "--listener-url", f"tcp://{addr}",
                "--advertised-listener-url", f"tcp://{addr}",
                "--storage-engine", "memory://tansu/",
            ]
        cmd = [
            str(self.binary),
            "--listener", addr,
            "--advertised-listener", addr,
            "--data-dir", str(self.data_dir),
            "--broker-id", "0",
        ]
        for key, value in self.settings.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        return cmd

    def start(self, timeout: float = 30.0) -> "BrokerProcess":
        if self.alive():
            raise RuntimeError("broker already running")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain log lines in test reports
        if self.kind == "tributary":
            # The metrics/health endpoint must not collide between brokers started side by side.
            env["TRIBUTARY_HTTP_LISTENER"] = self.http_address
        env.update(self.extra_env)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
        )
        log.close()

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise BrokerDied(f"broker exited with {self.proc.returncode} during start-up:\n{self.log_tail()}")
            return port_accepts(self.host, self.port)

        try:
            wait_until(ready, timeout, f"{self.kind} broker to accept connections on {self.bootstrap}")
        except BrokerDied:
            raise
        except Timeout as e:
            self.kill()
            raise Timeout(f"{e}\n{self.log_tail()}") from None
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the crash the durability tests simulate."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, hard: bool = False, timeout: float = 30.0) -> "BrokerProcess":
        """Stops (SIGKILL when `hard`) and starts again on the same port and data dir."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)

    def crash(self, broker_id: int, timeout: float = 30.0) -> "BrokerProcess":
        """SIGKILL to broker `broker_id`, the only one here, and a start on the same data dir
        (the cluster kind's `crash` kills one of three)."""
        return self.restart(hard=True, timeout=timeout)

    def shut_down(self, broker_id: int, timeout: float = 30.0) -> "BrokerProcess":
        """SIGTERM to broker `broker_id`, the only one here, and a start on the same data dir
        (the cluster kind's `shut_down` moves one of three brokers' leaderships away)."""
        return self.restart(hard=False, timeout=timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class BrokerDied(AssertionError):
    """The broker process exited when it should have been serving."""


# ---------------------------------------------------------------------------------------------
# The Java client (broker/tests/clients/java)
# ---------------------------------------------------------------------------------------------


def java_build(src_dir: Path, build_dir: Path, jars: Iterable[Path]) -> Path:
    """Compiles every .java file under `src_dir` into `build_dir` unless it is up to date."""
    sources = sorted(src_dir.glob("*.java"))
    if not sources:
        raise FileNotFoundError(f"no Java sources in {src_dir}")
    # Several processes (pytest-xdist workers) build into the same directory: one at a time,
    # so none runs classes another is deleting or half-way writing; the others find it built.
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f".{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _java_build_locked(sources, build_dir, jars)


def _java_build_locked(sources: list[Path], build_dir: Path, jars: Iterable[Path]) -> Path:
    stamp = build_dir / ".stamp"
    newest = max(s.stat().st_mtime for s in sources)
    if stamp.is_file() and stamp.stat().st_mtime >= newest:
        return build_dir
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    cp = os.pathsep.join(str(j) for j in jars)
    subprocess.run(
        ["javac", "-nowarn", "-encoding", "UTF-8", "-d", str(build_dir), "-cp", cp, *map(str, sources)],
        check=True,
        capture_output=False,
    )
    stamp.touch()
    return build_dir


class JavaResult:
    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.lines = []
        for line in stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def events(self, kind: str) -> list[dict]:
        return [l for l in self.lines if l.get("event") == kind]

    def one(self, kind: str) -> dict:
        found = self.events(kind)
        assert len(found) == 1, f"expected one {kind!r} line, got {found}\n{self.describe()}"
        return found[0]

    def describe(self) -> str:
        stderr = "\n".join(l for l in self.stderr.splitlines() if not l.startswith("SLF4J:"))
        return (
            f"$ {' '.join(self.args)}\nexit {self.returncode}\n--- stdout\n{self.stdout[-4000:]}"
            f"\n--- stderr\n{stderr[-4000:]}"
        )


class JavaServer:
    """One `ClientServer` JVM (broker/tests/clients/java/ClientServer.java): runs KafkaCli and
    GroupCli commands one at a time, each as if it were a process of its own."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, encoding="utf-8")
        self.replies: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.replies.put(line)
        self.replies.put(None)

    def call(self, main: str, args: list[str], stdin: str, timeout: float) -> dict:
        """The command's exit code, stdout and stderr; raises TimeoutExpired when it overran
        (the caller must then close this server: the command may still be running)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"main": main, "args": args, "stdin": stdin}) + "\n")
        self.proc.stdin.flush()
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise subprocess.TimeoutExpired([main, *args], timeout) from None
        if line is None:
            raise RuntimeError(f"the Java client server exited ({self.proc.wait()}) during {main} {args}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class JavaClient:
    """Runs `KafkaCli` (broker/tests/clients/java) subcommands; each prints JSON lines.

    The commands run in long-lived JVMs (ClientServer), one per concurrent call: the JVM's
    start and the client's class loading are paid once rather than at each of the suite's
    hundreds of calls. A call that overruns its timeout ends its JVM."""

    MAIN = "KafkaCli"

    def __init__(self, build_dir: Path, jars: list[Path], jvm_flags: Optional[list[str]] = None) -> None:
        self.classpath = os.pathsep.join([str(build_dir), *map(str, jars)])
        # Test workloads are small: the quick C1 compiler alone warms up fastest.
        self.jvm_flags = jvm_flags if jvm_flags is not None else ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss1m"]
        self._idle: list[JavaServer] = []
        self._lock = threading.Lock()

    def run(
        self,
        *args: str,
        stdin: Optional[str] = None,
        timeout: float = 120.0,
        check: bool = True,
    ) -> JavaResult:
        return self.run_main(self.MAIN, *args, stdin=stdin, timeout=timeout, check=check)

    def run_main(
        self,
        main: str,
        *args: str,
        stdin: Optional[str] = None,
        timeout: float = 120.0,
        check: bool = True,
    ) -> JavaResult:
        """`main args...` (KafkaCli or GroupCli) with `stdin`; a non-zero exit fails the test
        unless `check` is False."""
        argv = [str(a) for a in args]
        cmd = ["java", *self.jvm_flags, "-cp", self.classpath, main, *argv]
        with self._lock:
            server = self._idle.pop() if self._idle else None
        if server is None:
            server = JavaServer(["java", *self.jvm_flags, "-cp", self.classpath, "ClientServer"])
        try:
            reply = server.call(main, argv, stdin or "", timeout)
        except BaseException:
            server.close()
            raise
        with self._lock:
            self._idle.append(server)
        result = JavaResult(cmd, reply["exit"], reply["stdout"], reply["stderr"])
        if check and result.returncode != 0:
            raise AssertionError(f"Java client failed\n{result.describe()}")
        return result

    def close(self) -> None:
        """Ends every idle JVM."""
        with self._lock:
            idle, self._idle = self._idle, []
        for server in idle:
            server.close()


def make_temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def metric_texts(broker) -> list[str]:
    """Every broker's /metrics page."""
    texts = []
    for addr in broker.http_addresses:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as resp:
            texts.append(resp.read().decode())
    return texts


def metric_sum(broker, series: str) -> float:
    """The value of one Prometheus series (`name{label="value"}`, written as the broker renders
    it) summed over every broker's /metrics: 0 when no broker has it."""
    pattern = "^" + re.escape(series) + r" (\S+)$"
    return sum(float(v) for text in metric_texts(broker) for v in re.findall(pattern, text, re.M))
