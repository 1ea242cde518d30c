import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;

/**
 * Client histories for the consistency checker (e2e/src/history): every send attempt of an
 * idempotent acks=all producer with its outcome, and a read-back of the whole topic. Run as
 * {@code KafkaCli history-produce ...} and {@code KafkaCli history-consume ...}.
 *
 * <pre>
 * history-produce --bootstrap B --topic T [--count N] [--duration-ms MS] [--rate R]
 *          [--first-id I] [--value-size S] [--partition P] [--delivery-timeout-ms MS]
 *          [--stdin-stop] [--prop k=v]...
 *          acks=all, enable.idempotence=true, retries unlimited within delivery.timeout.ms.
 *          Values are the ids I, I+1, ... as decimal text (padded "id:xxx" to S bytes); sends
 *          stop after N records (default 1000 unless a duration is given), after MS, or, with
 *          --stdin-stop, when stdin closes. R caps the send rate (records/s).
 *          prints, flushed as they happen, {"event":"start","nanoTime"} (System.nanoTime() at
 *          the start, CLOCK_MONOTONIC on Linux, so another process can place the ms on its
 *          own monotonic clock), then {"event":"ack","id","partition","offset","ms"} or
 *          {"event":"error","id","error","message","definite","ms"} (ms since the start), then
 *          {"event":"done","attempted","acked","errors","retries"} once every outcome is in
 *          ("retries": the client's record-retry-total, sends retried after retriable errors).
 * history-consume --bootstrap B --topic T [--timeout-ms MS] [--idle-ms MS] [--prop k=v]...
 *          reads every partition from the beginning up to the end offsets listed at start
 *          (or until MS passes, or until nothing arrived for idle MS).
 *          prints {"event":"read","partition","offset","leaderEpoch","id"} ("id":null and the
 *          "value" for a value that is no id; "leaderEpoch" of its batch, -1 if unknown), then
 *          {"event":"done","reads","complete","ends":{p:end},"positions":{p:position}}.
 * </pre>
 */
final class HistoryCli {

    private HistoryCli() {}

    /**
     * Errors the broker gives for a record's content or the client's rights, the same on every
     * retry: a record failing with one was never written. Everything else (timeouts,
     * disconnects, NOT_ENOUGH_REPLICAS_AFTER_APPEND, a retriable error on the last of several
     * attempts) may have been written by an earlier attempt, so it is indefinite.
     */
    private static final List<Class<? extends Exception>> DEFINITE = Arrays.asList(
            RecordTooLargeException.class,
            RecordBatchTooLargeException.class,
            InvalidRecordException.class,
            InvalidTopicException.class,
            TopicAuthorizationException.class,
            ClusterAuthorizationException.class,
            SerializationException.class);

    static boolean definite(Exception e) {
        for (Class<? extends Exception> c : DEFINITE) {
            if (c.isInstance(e)) return true;
        }
        return false;
    }

    // ---------------------------------------------------------------------------------------
    // history-produce
    // ---------------------------------------------------------------------------------------

    /** Set by the stdin watcher when stdin closes (with --stdin-stop). */
    private static volatile boolean stopRequested;

    /** The id main() is inside send() for: a callback for it on main's thread failed in send(). */
    private static volatile long sendingId = -1;

    static void produce(KafkaCli.Args args) throws Exception {
        String delivery = args.get("delivery-timeout-ms", "60000");
        Properties props = KafkaCli.producerProps(args.required("bootstrap"));
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.RETRIES_CONFIG, String.valueOf(Integer.MAX_VALUE));
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, delivery);
        // A failover must fit in one delivery timeout: short requests, so a dead leader's
        // in-flight batches are retried on the new one well within it.
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, delivery);
        props.putAll(args.props());
        String topic = args.required("topic");
        Integer partition = args.has("partition") ? Integer.valueOf(args.get("partition")) : null;
        boolean hasDuration = args.has("duration-ms");
        long count = Long.parseLong(args.get("count", hasDuration ? "-1" : "1000"));
        long durationMs = Long.parseLong(args.get("duration-ms", "-1"));
        double rate = Double.parseDouble(args.get("rate", "0"));
        long firstId = Long.parseLong(args.get("first-id", "0"));
        int valueSize = Integer.parseInt(args.get("value-size", "0"));
        if (args.flag("stdin-stop")) watchStdin();

        long start = System.nanoTime();
        KafkaCli.emit(KafkaCli.obj("event", "start", "nanoTime", start));
        Thread main = Thread.currentThread();
        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        long attempted = 0;
        long retries = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            while (!stopRequested && (count < 0 || attempted < count)) {
                long elapsedMs = (System.nanoTime() - start) / 1_000_000;
                if (durationMs >= 0 && elapsedMs >= durationMs) break;
                if (rate > 0) {
                    long due = start + (long) (attempted * 1e9 / rate);
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        LockSupport.parkNanos(wait);
                        continue;
                    }
                }
                final long id = firstId + attempted;
                ProducerRecord<byte[], byte[]> record =
                        new ProducerRecord<>(topic, partition, null, null, value(id, valueSize));
                attempted++;
                sendingId = id;
                try {
                    producer.send(record, (meta, err) -> {
                        long ms = (System.nanoTime() - start) / 1_000_000;
                        if (err == null) {
                            acked.incrementAndGet();
                            KafkaCli.emit(KafkaCli.obj("event", "ack", "id", id,
                                    "partition", meta.partition(), "offset", meta.offset(), "ms", ms));
                        } else {
                            failed.incrementAndGet();
                            // An error delivered on main's thread during this very send() came
                            // from send() itself: the record never reached the accumulator.
                            boolean inSend = Thread.currentThread() == main && sendingId == id;
                            failure(id, err, inSend || definite(err), ms);
                        }
                    });
                } catch (KafkaException e) {
                    // Thrown (not called back) before the record was accepted.
                    failed.incrementAndGet();
                    failure(id, e, true, (System.nanoTime() - start) / 1_000_000);
                } finally {
                    sendingId = -1;
                }
            }
            // Every outstanding record's callback, before the client's counters are read.
            producer.flush();
            retries = retriesOf(producer);
        }
        KafkaCli.emit(KafkaCli.obj("event", "done", "attempted", attempted,
                "acked", acked.get(), "errors", failed.get(), "retries", retries));
    }

    /** The producer's record-retry-total: sends retried after a retriable error. */
    static long retriesOf(KafkaProducer<byte[], byte[]> producer) {
        for (Map.Entry<MetricName, ? extends Metric> e : producer.metrics().entrySet()) {
            MetricName name = e.getKey();
            if (name.name().equals("record-retry-total") && name.group().equals("producer-metrics")) {
                Object value = e.getValue().metricValue();
                if (value instanceof Number) return ((Number) value).longValue();
            }
        }
        return 0;
    }

    static void failure(long id, Exception err, boolean definite, long ms) {
        KafkaCli.emit(KafkaCli.obj("event", "error", "id", id, "error", err.getClass().getSimpleName(),
                "message", String.valueOf(err.getMessage()), "definite", definite, "ms", ms));
    }

    /** The id as decimal text, padded as "id:xxx..." to `size` bytes. */
    static byte[] value(long id, int size) {
        StringBuilder v = new StringBuilder(Long.toString(id));
        if (v.length() < size) {
            v.append(':');
            while (v.length() < size) v.append('x');
        }
        return v.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** Stops the send loop once stdin reaches its end (the test closed it). */
    static void watchStdin() {
        Thread t = new Thread(() -> {
            InputStream in = System.in;
            try {
                while (in.read() >= 0) {
                    // Anything written is ignored; only the end counts.
                }
            } catch (IOException e) {
                // A broken stdin also means the test is gone.
            }
            stopRequested = true;
        }, "stdin-stop");
        t.setDaemon(true);
        t.start();
    }

    // ---------------------------------------------------------------------------------------
    // history-consume
    // ---------------------------------------------------------------------------------------

    static void consume(KafkaCli.Args args) {
        Properties props = KafkaCli.consumerProps(args.required("bootstrap"));
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        props.putAll(args.props());
        String topic = args.required("topic");
        long timeoutMs = Long.parseLong(args.get("timeout-ms", "60000"));
        long idleMs = Long.parseLong(args.get("idle-ms", "-1"));
        long deadline = System.currentTimeMillis() + timeoutMs;

        long reads = 0;
        Map<Integer, Long> ends = new TreeMap<>();
        Map<Integer, Long> positions = new TreeMap<>();
        boolean complete;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs))) {
                tps.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            for (Map.Entry<TopicPartition, Long> e : consumer.endOffsets(tps).entrySet()) {
                ends.put(e.getKey().partition(), e.getValue());
            }
            long lastRecord = System.currentTimeMillis();
            while (true) {
                complete = true;
                for (TopicPartition tp : tps) {
                    long position = consumer.position(tp);
                    positions.put(tp.partition(), position);
                    if (position < ends.get(tp.partition())) complete = false;
                }
                long now = System.currentTimeMillis();
                if (complete || now >= deadline || (idleMs >= 0 && now - lastRecord >= idleMs)) break;
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(200));
                if (!batch.isEmpty()) lastRecord = System.currentTimeMillis();
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    Map<String, Object> o = KafkaCli.obj("event", "read", "partition", r.partition(),
                            "offset", r.offset(), "leaderEpoch", r.leaderEpoch().orElse(-1));
                    Long id = parseId(r.value());
                    o.put("id", id);
                    if (id == null) o.put("value", KafkaCli.string(r.value()));
                    KafkaCli.emit(o);
                    reads++;
                }
            }
        }
        KafkaCli.emit(KafkaCli.obj("event", "done", "reads", reads, "complete", complete,
                "ends", ends, "positions", positions));
    }

    /** The id a history-produce value carries, or null for any other value. */
    static Long parseId(byte[] value) {
        if (value == null) return null;
        String s = new String(value, StandardCharsets.UTF_8);
        int colon = s.indexOf(':');
        try {
            return Long.valueOf(colon < 0 ? s : s.substring(0, colon));
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
