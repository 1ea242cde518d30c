#!/usr/bin/env python3
"""The part of Apache Kafka's kafka-topics.sh that librdkafka's tests call (`--create` with
`--partitions`, `--replication-factor` and `--config`), on confluent-kafka's admin client, so
the tests that need KAFKA_PATH run where the Kafka distribution is not installed."""

import argparse
import sys

from confluent_kafka.admin import AdminClient, NewTopic

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap-server", required=True)
parser.add_argument("--create", action="store_true", required=True)
parser.add_argument("--topic", required=True)
parser.add_argument("--partitions", type=int, default=1)
parser.add_argument("--replication-factor", type=int, default=1)
parser.add_argument("--config", action="append", default=[])
args = parser.parse_args()

configs = dict(c.split("=", 1) for c in args.config)
admin = AdminClient({"bootstrap.servers": args.bootstrap_server})
topic = NewTopic(args.topic, args.partitions, args.replication_factor, config=configs)
for name, future in admin.create_topics([topic], operation_timeout=30).items():
    try:
        future.result()
    except Exception as error:  # noqa: BLE001 - reported like kafka-topics.sh does
        print(f"Error while executing topic command : {error}", file=sys.stderr)
        sys.exit(1)
print(f"Created topic {args.topic}.")
