"""The librdkafka twin of `KafkaCli history-produce` (HistoryCli.java), for the consistency
checker (e2e/src/history): an idempotent acks=all producer through confluent-kafka, with the
same arguments and the same output lines, so one checker judges both clients.

    rdkafka_history.py --bootstrap B --topic T [--count N] [--duration-ms MS] [--rate R]
        [--first-id I] [--value-size S] [--partition P] [--delivery-timeout-ms MS]
        [--stdin-stop] [--prop k=v]...

prints, flushed as they happen, {"event":"ack","id","partition","offset","ms"} or
{"event":"error","id","error","message","definite","ms"} (ms since the start), then
{"event":"done","attempted","acked","errors"} once every outcome is in.
"""

import argparse
import json
import os
import sys
import threading
import time

from confluent_kafka import KafkaError, KafkaException, Producer

# Errors a broker gives for a record's content or the client's rights, the same on every
# retry: a record failing with one was never written. Anything else may have been written by
# an earlier attempt (librdkafka retries internally), so it is indefinite.
DEFINITE = {
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TOPIC_EXCEPTION,
    KafkaError.INVALID_MSG_SIZE,
}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def value(ident, size):
    """The id as decimal text, padded as "id:xxx..." to `size` bytes."""
    text = str(ident)
    if len(text) < size:
        text = (text + ":").ljust(size, "x")
    return text.encode()


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--duration-ms", type=int, default=-1)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--first-id", type=int, default=0)
    p.add_argument("--value-size", type=int, default=0)
    p.add_argument("--partition", type=int, default=None)
    p.add_argument("--delivery-timeout-ms", type=int, default=60000)
    p.add_argument("--stdin-stop", action="store_true")
    p.add_argument("--prop", action="append", default=[])
    args = p.parse_args()
    if args.count is None:
        args.count = -1 if args.duration_ms >= 0 else 1000
    return args


def main():
    args = parse()
    stop = threading.Event()
    if args.stdin_stop:
        def watch():
            # Unbuffered: a buffered reader's lock held by this thread would stall the
            # interpreter's shutdown.
            while os.read(sys.stdin.fileno(), 4096):
                pass
            stop.set()

        threading.Thread(target=watch, name="stdin-stop", daemon=True).start()

    config = {
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "message.timeout.ms": args.delivery_timeout_ms,
        # A failover must fit in one delivery timeout: short requests, so a dead leader's
        # in-flight batches are retried on the new one well within it.
        "request.timeout.ms": 10000,
        "linger.ms": 5,
    }
    for prop in args.prop:
        key, _, val = prop.partition("=")
        config[key] = val
    producer = Producer(config)
    start = time.monotonic()
    counts = {"acked": 0, "errors": 0}

    def elapsed_ms():
        return int((time.monotonic() - start) * 1000)

    def outcome(ident):
        def report(err, msg):
            if err is None:
                counts["acked"] += 1
                emit({"event": "ack", "id": ident, "partition": msg.partition(),
                      "offset": msg.offset(), "ms": elapsed_ms()})
            else:
                counts["errors"] += 1
                emit({"event": "error", "id": ident, "error": err.name(), "message": err.str(),
                      "definite": err.code() in DEFINITE, "ms": elapsed_ms()})
        return report

    attempted = 0
    while not stop.is_set() and (args.count < 0 or attempted < args.count):
        if 0 <= args.duration_ms <= elapsed_ms():
            break
        if args.rate > 0:
            wait = start + attempted / args.rate - time.monotonic()
            if wait > 0:
                producer.poll(min(wait, 0.05))
                continue
        ident = args.first_id + attempted
        extra = {} if args.partition is None else {"partition": args.partition}
        while True:
            try:
                producer.produce(args.topic, value=value(ident, args.value_size),
                                 on_delivery=outcome(ident), **extra)
                break
            except BufferError:
                # The local queue is full: serve callbacks until there is room.
                producer.poll(0.1)
            except KafkaException as e:
                # Refused before the record was queued: it was never sent.
                err = e.args[0]
                counts["errors"] += 1
                emit({"event": "error", "id": ident, "error": err.name(), "message": err.str(),
                      "definite": True, "ms": elapsed_ms()})
                break
        attempted += 1
        producer.poll(0)
    # Every outstanding record's callback comes in before flush returns (message.timeout.ms
    # bounds each).
    while producer.flush(1.0) > 0:
        pass
    emit({"event": "done", "attempted": attempted, "acked": counts["acked"],
          "errors": counts["errors"]})


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    # The stdin watcher may still be blocked in read(); nothing is left to clean up.
    os._exit(0)
