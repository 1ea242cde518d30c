"""Group consumers the tests can steer: long-running Java group members (GroupCli member) whose
events are collected from their JSON output, plus the Java AdminClient's group operations."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Callable, Optional

from harness import JavaClient, JavaResult, Timeout, wait_until
from pyclients import ck_produce


class JavaMember:
    """One `GroupCli member` process: a KafkaConsumer in a group, committing after every poll.

    `close()` leaves the group cleanly (KafkaConsumer.close); `kill()` is a SIGKILL, which
    leaves the group only when the coordinator expires the session.
    """

    def __init__(self, java: JavaClient, bootstrap: str, topic: str, group: str, name: str,
                 assignor: str = "range", session_timeout_ms: Optional[int] = None,
                 instance_id: Optional[str] = None, props: Optional[dict[str, str]] = None) -> None:
        self.name = name
        cmd = ["java", *java.jvm_flags, "-cp", java.classpath, "GroupCli", "member",
               "--bootstrap", bootstrap, "--topic", topic, "--group", group, "--assignor", assignor,
               "--prop", f"client.id={name}"]
        if session_timeout_ms is not None:
            cmd += ["--session-timeout-ms", str(session_timeout_ms)]
        if instance_id is not None:
            cmd += ["--instance-id", instance_id]
        for k, v in (props or {}).items():
            cmd += ["--prop", f"{k}={v}"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                with self._lock:
                    self.events.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self._stderr.append(line.rstrip())
                del self._stderr[:-200]

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e.get("event") == kind]

    def owned(self) -> Optional[set[int]]:
        """Partitions owned after the last assignment callback (None before the first)."""
        with self._lock:
            owned: Optional[set[int]] = None
            for e in self.events:
                if e["event"] == "assigned":
                    owned = set(e["owned"])
                elif e["event"] in ("revoked", "lost") and owned is not None:
                    owned -= set(e["partitions"])
            return owned

    def records(self) -> list[tuple[int, int]]:
        return [(e["partition"], e["offset"]) for e in self.of("record")]

    def generation(self) -> int:
        assigned = self.of("assigned")
        return assigned[-1]["generation"] if assigned else -1

    def describe(self) -> str:
        with self._lock:
            tail = "\n".join(json.dumps(e) for e in self.events if e["event"] != "record")[-3000:]
            err = "\n".join(self._stderr[-40:])
        return f"--- member {self.name} events\n{tail}\n--- stderr\n{err}"

    def close(self, timeout: float = 30.0) -> None:
        """Leaves the group (KafkaConsumer.close) and waits for the process to exit."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for_assignment(members: list[JavaMember], partitions: int, timeout: float, what: str) -> None:
    """Waits until the members own every partition exactly once, all in one generation."""

    def settled() -> bool:
        owned = [m.owned() for m in members]
        if any(o is None for o in owned):
            return False
        flat = sorted(p for o in owned for p in o)  # type: ignore[union-attr]
        generations = {m.generation() for m in members}
        return flat == list(range(partitions)) and len(generations) == 1

    try:
        wait_until(settled, timeout, what)
    except Timeout as e:
        raise Timeout(f"{e}\n" + "\n".join(m.describe() for m in members)) from None


def java_groups(java: JavaClient, bootstrap: str, *args: str, timeout: float = 60.0) -> JavaResult:
    """Runs `GroupCli groups ...` (the Java AdminClient) and returns its parsed output."""
    return java.run_main("GroupCli", "groups", *args, "--bootstrap", bootstrap, timeout=timeout)


def poll_until(condition: Callable[[], bool], timeout: float, what: str, members: list[JavaMember]) -> None:
    try:
        wait_until(condition, timeout, what)
    except Timeout as e:
        raise Timeout(f"{e}\n" + "\n".join(m.describe() for m in members)) from None


def unique(seq: list) -> bool:
    return len(seq) == len(set(seq))


def now() -> float:
    return time.monotonic()


class Flow:
    """Produces records round-robin over the partitions in small batches until stopped."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.produced: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            batch = [{"value": f"v{n}".encode(), "partition": n % self.partitions} for n in range(i, i + 20)]
            reports = ck_produce(self.bootstrap, self.topic, batch)
            self.errors += [str(r.error) for r in reports if r.error is not None]
            self.produced += [r["value"].decode() for r in batch]
            i += 20
            self._stop.wait(0.1)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(60)
        assert not self.errors, self.errors[:5]
        return self.produced


def ownership(members: list[JavaMember]) -> dict[int, list[tuple[float, float, str]]]:
    """Per partition, the (from, to, member) intervals of ownership the callbacks show."""
    intervals: dict[int, list[tuple[float, float, str]]] = {}
    for m in members:
        since: dict[int, float] = {}
        for e in list(m.events):
            if e["event"] == "assigned":
                for p in e["partitions"]:
                    since.setdefault(p, e["time"])
            elif e["event"] in ("revoked", "lost"):
                for p in e["partitions"]:
                    if p in since:
                        intervals.setdefault(p, []).append((since.pop(p), e["time"], m.name))
        for p, start in since.items():
            intervals.setdefault(p, []).append((start, float("inf"), m.name))
    return intervals


def assert_never_owned_twice(members: list[JavaMember]) -> dict[int, list[tuple[float, float, str]]]:
    intervals = ownership(members)
    for p, spans in intervals.items():
        spans.sort()
        for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
            assert end <= start, f"partition {p} owned by {a} until {end} and by {b} from {start}"
    return intervals
