#!/usr/bin/env python3
"""The part of Apache Kafka's kafka-acls.sh that librdkafka's tests call (`--add` and
`--remove [--force]` of allow or deny entries on topics and groups), on confluent-kafka's admin
client, so those tests run where the Kafka distribution is not installed."""

import argparse
import sys

from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType, ResourceType)

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap-server", required=True)
action = parser.add_mutually_exclusive_group(required=True)
action.add_argument("--add", action="store_true")
action.add_argument("--remove", action="store_true")
parser.add_argument("--force", action="store_true")
parser.add_argument("--allow-principal", action="append", default=[])
parser.add_argument("--deny-principal", action="append", default=[])
parser.add_argument("--allow-host", action="append", default=[])
parser.add_argument("--deny-host", action="append", default=[])
parser.add_argument("--operation", action="append", default=[])
parser.add_argument("--topic", action="append", default=[])
parser.add_argument("--group", action="append", default=[])
parser.add_argument("--resource-pattern-type", default="literal")
args = parser.parse_args()

pattern = ResourcePatternType[args.resource_pattern_type.upper()]
resources = [(ResourceType.TOPIC, t) for t in args.topic] + [(ResourceType.GROUP, g) for g in args.group]
operations = [AclOperation[op.upper().replace("-", "_")] for op in args.operation or ["All"]]
entries = [(p, h, AclPermissionType.ALLOW) for p in args.allow_principal for h in args.allow_host or ["*"]]
entries += [(p, h, AclPermissionType.DENY) for p in args.deny_principal for h in args.deny_host or ["*"]]
if not resources or not entries:
    print("kafka-acls.sh: a resource (--topic/--group) and a principal are required", file=sys.stderr)
    sys.exit(1)

admin = AdminClient({"bootstrap.servers": args.bootstrap_server})
kind = AclBinding if args.add else AclBindingFilter
acls = [kind(rtype, name, pattern, principal, host, op, permission)
        for rtype, name in resources for principal, host, permission in entries for op in operations]
futures = admin.create_acls(acls) if args.add else admin.delete_acls(acls)
for acl, future in futures.items():
    try:
        future.result(30)
    except Exception as error:  # noqa: BLE001 - reported like kafka-acls.sh does
        print(f"Error while executing ACL command: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"{'Adding' if args.add else 'Removing'} ACL {acl}")
