#!/usr/bin/env python3
"""Schema validation benchmark: produce throughput to a topic with
`confluent.value.schema.validation=true` against one without, in the same run.

One broker knows a registry process (`--schema-registry-url`); the same Avro-serialized
records (AvroSerializer's wire format) go with kcat (librdkafka, acks=all) to `bench-plain` and
to `bench-validated`, alternating (`--rounds` of each, after `--warmup` unmeasured ones). Prints
records/s per round, the mean of each, and the ratio validated/plain (the goal: at least 0.9).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from harness import REPO_ROOT, BrokerProcess, kcat_binary, metric_sum  # noqa: E402
from pyclients import ck_create_topic  # noqa: E402
from registryproc import RegistryProcess  # noqa: E402

SCHEMA = json.dumps({"type": "record", "name": "Row", "namespace": "bench",
                     "fields": [{"name": "body", "type": "string"}]})
TOPICS = {"plain": "bench-plain", "validated": "bench-validated"}


def payload(registry: RegistryProcess, topic: str, size: int) -> bytes:
    """One record value in the wire format, about `size` bytes, without a newline byte (kcat
    reads one record a line)."""
    serializer = AvroSerializer(SchemaRegistryClient({"url": registry.url}), SCHEMA)
    for pad in range(size, size + 16):
        value = serializer({"body": "x" * pad}, SerializationContext(topic, MessageField.VALUE))
        if b"\n" not in value:
            return value
    raise RuntimeError("no newline-free payload")


def produce(bootstrap: str, topic: str, lines: Path, records: int) -> float:
    """Produces the file's records with kcat; returns records/s."""
    start = time.monotonic()
    proc = subprocess.run([kcat_binary(), "-b", bootstrap, "-P", "-t", topic, "-X", "acks=all",
                           "-X", "linger.ms=5", "-l", str(lines)], capture_output=True, timeout=600)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"kcat produce to {topic} failed: {proc.stderr[-2000:]!r}")
    return records / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker-bin", type=Path, default=REPO_ROOT / "target" / "release" / "tributary-broker")
    parser.add_argument("--records", type=int, default=200_000, help="records per round")
    parser.add_argument("--record-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each topic, alternating")
    parser.add_argument("--warmup", type=int, default=1,
                        help="unmeasured rounds of each topic first (the first produce to a fresh broker is slower)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tributary-schema-bench-") as tmp:
        scratch = Path(tmp)
        registry = RegistryProcess("", scratch / "registry", "_schemas")
        broker = BrokerProcess("tributary", scratch / "broker", binary=args.broker_bin.resolve(),
                               settings={"schema_registry_url": registry.url}).start()
        try:
            registry.bootstrap = broker.bootstrap
            registry.start()
            ck_create_topic(broker.bootstrap, TOPICS["plain"])
            ck_create_topic(broker.bootstrap, TOPICS["validated"], config={"confluent.value.schema.validation": "true"})
            files = {}
            for kind, topic in TOPICS.items():
                # Each topic's own subject (`<topic>-value`), so both carry a registered id.
                value = payload(registry, topic, args.record_size)
                files[kind] = scratch / f"{kind}.txt"
                files[kind].write_bytes((value + b"\n") * args.records)
            rates: dict[str, list[float]] = {k: [] for k in TOPICS}
            for rnd in range(1 - args.warmup, args.rounds + 1):
                for kind, topic in TOPICS.items():
                    rate = produce(broker.bootstrap, topic, files[kind], args.records)
                    measured = rnd >= 1
                    if measured:
                        rates[kind].append(rate)
                    label = f"round {rnd}" if measured else "warm-up"
                    print(f"  {label:<8} {kind:<9} {rate:>10,.0f} rec/s", flush=True)
            refused = metric_sum(broker, 'tributary_schema_validation_refused_records_total'
                                         f'{{reason="unknown_schema_id",topic="{TOPICS["validated"]}"}}')
            if refused:
                raise RuntimeError(f"{refused} records refused: the bench must produce valid records")
            mean = {k: sum(v) / len(v) for k, v in rates.items()}
            print(f"produce {args.records:,} x ~{args.record_size} B records, acks=all: "
                  f"plain {mean['plain']:,.0f} rec/s, validated {mean['validated']:,.0f} rec/s, "
                  f"ratio {mean['validated'] / mean['plain']:.2f}")
        finally:
            registry.stop()
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
