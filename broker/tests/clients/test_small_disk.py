"""A broker whose data directory is on a small file system (a tmpfs mounted by the test; the
tests run as root, and fail, not skip, where mounting is refused): the commit journal is
sized to the space there is at the first start and a leftover of a crashed preparation is
removed at the next, and a disk that fills under acks=all writes (journal off) refuses what it
cannot store, loses no acknowledged record, and serves again once space comes back, with and
without a restart."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka import Producer

from harness import BrokerProcess, wait_until
from pyclients import ck_consume, ck_create_topic, ck_produce

MIB = 1 << 20

pytestmark = pytest.mark.single_broker("mounts a small file system under one broker's data directory")


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def small_filesystem(path: Path, size_mib: int) -> Iterator[Path]:
    """A tmpfs of `size_mib` MiB mounted at `path`, unmounted on the way out."""
    path.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)]
    mounted = subprocess.run(mount, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"`{' '.join(mount)}` failed (this test needs root and mount): "
                    f"{mounted.stderr.strip() or mounted.returncode}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(path)], check=True)


@contextlib.contextmanager
def broker_on_small_disk(request: pytest.FixtureRequest, tmp_path: Path, size_mib: int,
                         **settings: object) -> Iterator[tuple[BrokerProcess, Path]]:
    """A broker whose data directory is on a fresh `size_mib` MiB file system; yields it (not
    started) with the file system's mount point, and stops it before unmounting."""
    with small_filesystem(tmp_path / "disk", size_mib) as disk:
        broker = BrokerProcess("tributary", tmp_path / "broker", settings=settings, data_dir=disk / "data")
        request.node._brokers = [broker]  # its log goes into the report of a failure
        try:
            yield broker, disk
        finally:
            broker.kill()


def journal_outcome(broker: BrokerProcess) -> str:
    """The broker's last word on its commit journal, once it has one."""
    lines = [l for l in broker.log_text().splitlines()
             if "commit journal ready" in l or "no commit journal" in l or "commit journal off" in l
             or "cannot create the commit journal" in l]
    return lines[-1] if lines else ""


def round_trip(bootstrap: str, topic: str, count: int) -> None:
    """An idempotent producer (it needs a producer id) writes `count` records, read back."""
    ck_create_topic(bootstrap, topic, partitions=1)
    values = [f"v{i}".encode() for i in range(count)]
    reports = ck_produce(bootstrap, topic, [{"value": v, "partition": 0} for v in values],
                         {"enable.idempotence": True})
    assert [r.error for r in reports] == [None] * count
    got = ck_consume(bootstrap, topic, [0], expected=count)
    assert [r.value for r in got] == values


def test_a_first_start_on_a_disk_smaller_than_the_journal_sizes_it_to_fit(request, tmp_path, topic,
                                                                         monkeypatch):
    # Default settings: the 128 MiB journal, not the few MiB the suite gives other brokers.
    monkeypatch.delenv("TRIBUTARY_COMMIT_JOURNAL_BYTES", raising=False)
    with broker_on_small_disk(request, tmp_path, 64) as (broker, disk):
        broker.start()
        outcome = wait_until(lambda: journal_outcome(broker), 30, "the commit journal to be prepared")
        assert "commit journal ready" in outcome, outcome
        assert "commit journal sized to the free space" in broker.log_text()
        journal = broker.data_dir / "commit.journal"
        assert journal.stat().st_size <= 16 * MIB
        assert not (broker.data_dir / "commit.tmp").exists()
        assert free_bytes(disk) > 40 * MIB, f"{free_bytes(disk)} bytes free"
        round_trip(broker.bootstrap, topic, 20)

        # A preparation that crashed half way left its file: the next start removes it (and
        # keeps the journal, which still fits).
        broker.stop()
        size = journal.stat().st_size
        (broker.data_dir / "commit.tmp").write_bytes(b"\0" * (30 * MIB))
        broker.start()
        wait_until(lambda: not (broker.data_dir / "commit.tmp").exists(), 30,
                   "the leftover to be removed")
        wait_until(lambda: broker.log_text().count("commit journal ready") == 2, 30,
                   "the journal to be ready again")
        assert journal.stat().st_size == size
        assert free_bytes(disk) > 40 * MIB, f"{free_bytes(disk)} bytes free"
        round_trip(broker.bootstrap, f"{topic}-again", 20)


class Writer:
    """An acks=all producer without retries, so a refusal comes back as the broker's error;
    it remembers every acknowledged record and every refusal."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                                  "message.timeout.ms": 10_000, "linger.ms": 5})
        self.acked: dict[int, bytes] = {}
        self.refused: list[str] = []

    def write(self, tag: str, count: int, value_size: int) -> None:
        def report(err, msg) -> None:
            if err is None:
                self.acked[msg.offset()] = msg.value()
            else:
                self.refused.append(err.name())

        for i in range(count):
            value = f"{tag}-{i}-".encode().ljust(value_size, b".")
            self.producer.produce(self.topic, value=value, partition=0, on_delivery=report)
            self.producer.poll(0)
        assert self.producer.flush(30) == 0, "deliveries still pending after 30 s"


def fill(disk: Path, leave: int) -> Path:
    """A file taking all but `leave` bytes of the file system's free space."""
    balloon = disk / "balloon"
    with open(balloon, "ab") as f:
        chunk = b"\0" * MIB
        while free_bytes(disk) > leave + len(chunk):
            f.write(chunk)
            f.flush()
        f.write(b"\0" * max(0, free_bytes(disk) - leave))
    return balloon


def check_log(bootstrap: str, topic: str, acked: dict[int, bytes]) -> None:
    """Every acknowledged record reads back with its value at its offset, in a log without
    holes."""
    end = max(acked) + 1
    got = ck_consume(bootstrap, topic, [0], expected=end, timeout=60)
    assert [r.offset for r in got] == list(range(end)), "offsets without holes or repeats"
    lost = {o: v for o, v in acked.items() if got[o].value != v}
    assert not lost, f"{len(lost)} acknowledged records lost or changed, e.g. offset {min(lost)}"


def test_a_full_disk_refuses_writes_loses_nothing_acked_and_recovers_when_space_returns(
        request, tmp_path, topic):
    with broker_on_small_disk(request, tmp_path, 32, commit_journal_bytes=0) as (broker, disk):
        broker.start()
        ck_create_topic(broker.bootstrap, topic, partitions=1)
        writer = Writer(broker.bootstrap, topic)
        writer.write("before", 50, 1024)
        assert len(writer.acked) == 50 and not writer.refused

        # The disk fills under the writes: the broker refuses what it cannot store and stays up.
        balloon = fill(disk, 2 * MIB)
        writer.write("filling", 600, 8 * 1024)
        assert writer.refused, "nothing refused on a full disk"
        assert set(writer.refused) <= {"KAFKA_STORAGE_ERROR"}, set(writer.refused)
        assert broker.alive()
        assert any("WARN" in line and "produce refused: storage failed" in line
                   for line in broker.log_text().splitlines()), "the refusals are logged as warnings"

        # Space comes back without a restart: writes succeed again.
        balloon.unlink()
        acked = len(writer.acked)
        wait_until(lambda: writer.write("after", 5, 1024) or len(writer.acked) >= acked + 5, 30,
                   "writes to succeed once space is back")
        check_log(broker.bootstrap, topic, writer.acked)

        # It fills again, the broker is killed, and restarts with space back.
        balloon = fill(disk, 2 * MIB)
        refused = len(writer.refused)
        writer.write("filling-again", 600, 8 * 1024)
        assert len(writer.refused) > refused, "nothing refused on a full disk"
        assert broker.alive()
        broker.kill()
        balloon.unlink()
        broker.start()
        acked = len(writer.acked)
        writer.write("restarted", 5, 1024)
        assert len(writer.acked) == acked + 5, writer.refused[-5:]
        check_log(broker.bootstrap, topic, writer.acked)
