import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The benchmark workload, run with the Apache Kafka Java client against one broker:
 *
 * <ol>
 *   <li>warm up, not measured: produce to throw-away topics, alternating acks=1 and acks=all,
 *       until the client's JIT has compiled its produce paths (at least W records), then delete
 *       those topics and wait for the JIT to go quiet, so the timed phases measure the broker
 *       rather than the client compiling itself,
 *   <li>produce N records of S bytes with acks=all (the client's default idempotent producer),
 *   <li>produce N more with acks=1,
 *   <li>produce N with acks=1 compressed with lz4, then N with zstd, to a topic of their own:
 *       values of 16 letters drawn at random (about 2:1 compressible, each record different),
 *       so the broker's validation decompresses real work,
 *   <li>consume the 2N uncompressed records back from the beginning (assigned partitions, no
 *       group),
 *   <li>end-to-end latency: R records/s for T seconds with default client settings, measured
 *       from just before send() to the consumer's poll() returning the record (same JVM, so one
 *       monotonic clock).
 * </ol>
 *
 * <p>The warm-up, produce and latency phases may name a replication factor, as
 * {@code warmup@1}, {@code produce-all@3} or {@code latency@3} (the cluster bench): they then
 * use topics of their own with that replication factor and {@code min.insync.replicas} one
 * less (at least 1, whatever the cluster's default), created with the others at the start
 * (the warm-up's as it goes); phases without one use the replication factor 1 topics above,
 * created without configs. The JSON keeps the phase's name with the suffix.
 *
 * Usage: {@code Bench --bootstrap B [--records N] [--record-size S] [--partitions P]
 * [--rate R] [--seconds T] [--warmup-seconds W] [--warmup-records W] [--client-config F]}.
 * Prints one JSON object per phase. {@code --client-config} names a properties file every client
 * gets too (security.protocol, trust store, SASL: the TLS benchmark).
 */
public final class Bench {

    /** Settings every admin, producer and consumer gets (from --client-config). */
    static final Properties CLIENT = new Properties();

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        String bootstrap = req(a, "bootstrap");
        if (a.containsKey("client-config")) {
            try (java.io.Reader r = java.nio.file.Files.newBufferedReader(java.nio.file.Paths.get(a.get("client-config")))) {
                CLIENT.load(r);
            }
        }
        long records = Long.parseLong(a.getOrDefault("records", "200000"));
        int size = Integer.parseInt(a.getOrDefault("record-size", "1024"));
        int partitions = Integer.parseInt(a.getOrDefault("partitions", "6"));
        int rate = Integer.parseInt(a.getOrDefault("rate", "1000"));
        double seconds = Double.parseDouble(a.getOrDefault("seconds", "10"));
        double warmup = Double.parseDouble(a.getOrDefault("warmup-seconds", "1"));
        long warmupRecords = Long.parseLong(a.getOrDefault("warmup-records", "1000000"));
        String phases = a.getOrDefault("phases", "warmup,produce-all,produce-1,consume,latency");
        if (size < 16) throw new IllegalArgumentException("--record-size must be at least 16 (latency stamps)");
        String suffix = Long.toHexString(System.nanoTime());
        String topic = "bench-" + suffix;
        String latencyTopic = "bench-latency-" + suffix;
        String warmupTopic = "bench-warmup-" + suffix;
        String compressedTopic = "bench-compressed-" + suffix;

        createTopics(bootstrap, partitions, topic, latencyTopic, compressedTopic);
        // Topics of the phases that name a replication factor, by "produce@R" or "latency@R".
        Map<String, String> replicated = new HashMap<>();
        for (String phase : phases.split(",")) {
            int at = phase.indexOf('@');
            if (at < 0 || phase.startsWith("warmup")) continue;
            short rf = Short.parseShort(phase.substring(at + 1));
            String kind = phase.startsWith("latency") ? "latency" : "produce";
            String key = kind + "@" + rf;
            if (replicated.containsKey(key)) continue;
            String name = "bench-" + (kind.equals("latency") ? "latency-" : "") + "rf" + rf + "-" + suffix;
            createTopics(bootstrap, partitions, rf, minIsr(rf), name);
            replicated.put(key, name);
        }
        long produced = 0;
        for (String phase : phases.split(",")) {
            int at = phase.indexOf('@');
            if (at >= 0) {
                String base = phase.substring(0, at);
                String rf = phase.substring(at + 1);
                switch (base) {
                    case "warmup":
                        warmUp(bootstrap, partitions, Short.parseShort(rf), warmupTopic, warmupRecords, size, phase);
                        break;
                    case "produce-all":
                    case "produce-1":
                        produce(bootstrap, replicated.get("produce@" + rf), records, size,
                                base.equals("produce-all") ? "all" : "1", phase);
                        break;
                    case "latency":
                        latency(bootstrap, replicated.get("latency@" + rf), rate, seconds, warmup, size, phase);
                        break;
                    default:
                        throw new IllegalArgumentException("phase " + base + " takes no replication factor");
                }
                continue;
            }
            switch (phase) {
                case "warmup":
                    warmUp(bootstrap, partitions, (short) 0, warmupTopic, warmupRecords, size, phase);
                    break;
                case "produce-all":
                    produce(bootstrap, topic, records, size, "all", phase);
                    produced += records;
                    break;
                case "produce-1":
                    produce(bootstrap, topic, records, size, "1", phase);
                    produced += records;
                    break;
                case "produce-lz4":
                case "produce-zstd":
                    produce(bootstrap, compressedTopic, records, size, "1", phase);
                    break;
                case "consume":
                    consume(bootstrap, topic, produced, phase);
                    break;
                case "latency":
                    latency(bootstrap, latencyTopic, rate, seconds, warmup, size, phase);
                    break;
                default:
                    throw new IllegalArgumentException("unknown phase " + phase);
            }
        }
        System.exit(0);
    }

    /** Most warm-up parts, whatever the JIT is doing. */
    static final int MAX_WARMUP_PARTS = 16;

    /**
     * Warms the client up. On a 2-core machine C2 is still compiling the producer's send and
     * response paths after a million records, and a phase measured meanwhile shares the CPU
     * with the compiler (the first measured phase ran 15-25% slower than later ones). So: parts
     * of a quarter of {@code minRecords}, each with a fresh producer and topic as the measured
     * phases have, alternating acks=1 and acks=all and ending on acks=all, until one part after
     * the minimum compiles for under a tenth of its time. The topics are then deleted, so their
     * unsynced pages are never written back under a measured phase, and the JIT left to finish
     * what it queued. An {@code rf} above 0 gives the topics that replication factor and its
     * min.insync.replicas ({@code warmup@R}); 0 creates them as the other phases' (R 1, no configs).
     */
    static void warmUp(String bootstrap, int partitions, short rf, String topicPrefix, long minRecords, int size,
            String phase) throws Exception {
        long part = Math.max(minRecords / 4, 1);
        long records = 0;
        long nanos = 0;
        long jitStart = jitMillis();
        List<String> topics = new ArrayList<>();
        for (int n = 0; n < MAX_WARMUP_PARTS; n++) {
            String topic = topicPrefix + "-" + n;
            if (rf > 0) createTopics(bootstrap, partitions, rf, minIsr(rf), topic);
            else createTopics(bootstrap, partitions, topic);
            topics.add(topic);
            String acks = n % 2 == 0 ? "1" : "all";
            long jit = jitMillis();
            long[] done = produceTimed(bootstrap, topic, part, size, acks, phase);
            records += done[0];
            nanos += done[1];
            boolean compiling = (jitMillis() - jit) * 1_000_000L > done[1] / 10;
            if (acks.equals("all") && records >= minRecords && !compiling) break;
        }
        deleteTopics(bootstrap, topics);
        awaitQuietJit();
        Map<String, Object> o = throughput(phase, records, records * size, nanos, null);
        o.put("parts", topics.size());
        o.put("jitMs", jitMillis() - jitStart);
        emit(o);
    }

    /** Milliseconds the JIT has spent compiling so far. */
    static long jitMillis() {
        return ManagementFactory.getCompilationMXBean().getTotalCompilationTime();
    }

    /** Waits (at most 30 s) until the JIT has compiled nothing for 600 ms. */
    static void awaitQuietJit() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        long last = jitMillis();
        for (int quiet = 0; quiet < 3 && System.nanoTime() < deadline; ) {
            Thread.sleep(200);
            long now = jitMillis();
            quiet = now == last ? quiet + 1 : 0;
            last = now;
        }
    }

    static void deleteTopics(String bootstrap, List<String> topics) throws Exception {
        Properties p = new Properties();
        p.putAll(CLIENT);
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            admin.deleteTopics(topics).all().get(60, TimeUnit.SECONDS);
        }
    }

    /** The topic configs of a replication factor named by a phase: min.insync.replicas R-1, at least 1. */
    static Map<String, String> minIsr(short rf) {
        return Map.of("min.insync.replicas", String.valueOf(Math.max(rf - 1, 1)));
    }

    static void createTopics(String bootstrap, int partitions, String... topics) throws Exception {
        createTopics(bootstrap, partitions, (short) 1, Map.of(), topics);
    }

    static void createTopics(String bootstrap, int partitions, short replicationFactor, Map<String, String> configs,
            String... topics) throws Exception {
        Properties p = new Properties();
        p.putAll(CLIENT);
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            List<NewTopic> nts = new ArrayList<>();
            for (String t : topics) nts.add(new NewTopic(t, partitions, replicationFactor).configs(configs));
            admin.createTopics(nts).all().get(60, TimeUnit.SECONDS);
        }
    }

    static void produce(String bootstrap, String topic, long n, int size, String acks, String phase) throws Exception {
        long jit = jitMillis();
        String base = phase.split("@")[0];
        long[] done = base.startsWith("produce-") && !base.equals("produce-all") && !base.equals("produce-1")
                ? produceTimed(bootstrap, topic, n, size, acks, phase, base.substring("produce-".length()))
                : produceTimed(bootstrap, topic, n, size, acks, phase);
        Map<String, Object> o = throughput(phase, done[0], done[0] * size, done[1], acks);
        o.put("jitMs", jitMillis() - jit);
        emit(o);
    }

    /** Produces n uncompressed records of one repeated byte; see the other overload. */
    static long[] produceTimed(String bootstrap, String topic, long n, int size, String acks, String phase)
            throws Exception {
        byte[] value = new byte[size];
        Arrays.fill(value, (byte) 'x');
        return produceTimed(bootstrap, topic, n, acks, phase, "none", new byte[][] {value});
    }

    /** Produces n records compressed with `codec`, each value different (see the class doc). */
    static long[] produceTimed(String bootstrap, String topic, long n, int size, String acks, String phase,
            String codec) throws Exception {
        SplittableRandom random = new SplittableRandom(42);
        byte[][] values = new byte[1024][size];
        for (byte[] value : values) {
            for (int i = 0; i < size; i++) value[i] = (byte) ('a' + random.nextInt(16));
        }
        return produceTimed(bootstrap, topic, n, acks, phase, codec, values);
    }

    /**
     * Produces n records cycling through `values` and returns {records acknowledged in the timed
     * part, its nanoseconds}.
     */
    static long[] produceTimed(String bootstrap, String topic, long n, String acks, String phase, String codec,
            byte[][] values) throws Exception {
        Properties p = new Properties();
        p.putAll(CLIENT);
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, acks);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        byte[] value = values[0];
        AtomicLong acked = new AtomicLong();
        AtomicReference<Exception> error = new AtomicReference<>();
        long start;
        long end;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            // One record first so metadata and the connection are set up outside the timing.
            producer.send(new ProducerRecord<>(topic, value)).get(60, TimeUnit.SECONDS);
            start = System.nanoTime();
            for (long i = 1; i < n; i++) {
                producer.send(new ProducerRecord<>(topic, values[(int) (i % values.length)]), (m, e) -> {
                    if (e != null) error.compareAndSet(null, e);
                    else acked.incrementAndGet();
                });
            }
            producer.flush();
            end = System.nanoTime();
        }
        if (error.get() != null) throw new RuntimeException(phase + " failed", error.get());
        return new long[] {acked.get(), end - start};
    }

    static KafkaConsumer<byte[], byte[]> consumer(String bootstrap) {
        Properties p = new Properties();
        p.putAll(CLIENT);
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        return new KafkaConsumer<>(p);
    }

    static List<TopicPartition> partitions(KafkaConsumer<?, ?> c, String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(30))) tps.add(new TopicPartition(topic, pi.partition()));
        return tps;
    }

    static void consume(String bootstrap, String topic, long n, String phase) {
        long count = 0;
        long bytes = 0;
        long start;
        long end;
        try (KafkaConsumer<byte[], byte[]> c = consumer(bootstrap)) {
            List<TopicPartition> tps = partitions(c, topic);
            c.assign(tps);
            c.seekToBeginning(tps);
            start = System.nanoTime();
            long deadline = start + TimeUnit.SECONDS.toNanos(300);
            while (count < n && System.nanoTime() < deadline) {
                ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(500));
                for (ConsumerRecord<byte[], byte[]> r : rs) {
                    count++;
                    bytes += r.serializedValueSize();
                }
            }
            end = System.nanoTime();
        }
        if (count < n) throw new RuntimeException(phase + ": consumed " + count + " of " + n);
        emit(throughput(phase, count, bytes, end - start, null));
    }

    static void latency(String bootstrap, String topic, int rate, double seconds, double warmup, int size, String phase)
            throws Exception {
        long total = (long) (rate * seconds);
        long warmupRecords = (long) (rate * warmup);
        long[] latencies = new long[(int) total];
        AtomicLong received = new AtomicLong();
        CountDownLatch ready = new CountDownLatch(1);
        AtomicReference<Throwable> consumerError = new AtomicReference<>();
        Thread reader = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> c = consumer(bootstrap)) {
                List<TopicPartition> tps = partitions(c, topic);
                c.assign(tps);
                c.seekToEnd(tps);
                for (TopicPartition tp : tps) c.position(tp);
                ready.countDown();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos((long) seconds + 60);
                while (received.get() < total && System.nanoTime() < deadline) {
                    ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(100));
                    long now = System.nanoTime();
                    for (ConsumerRecord<byte[], byte[]> r : rs) {
                        byte[] v = r.value();
                        long seq = readLong(v, 0);
                        long sent = readLong(v, 8);
                        if (seq >= 0 && seq < total) latencies[(int) seq] = now - sent;
                        received.incrementAndGet();
                    }
                }
            } catch (Throwable t) {
                consumerError.set(t);
                ready.countDown();
            }
        }, "latency-consumer");
        reader.start();
        if (!ready.await(60, TimeUnit.SECONDS)) throw new RuntimeException("consumer not ready");

        Properties p = new Properties();
        p.putAll(CLIENT);
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        AtomicReference<Exception> error = new AtomicReference<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.partitionsFor(topic);
            long interval = 1_000_000_000L / rate;
            long start = System.nanoTime();
            for (long i = 0; i < total; i++) {
                long due = start + i * interval;
                long wait;
                while ((wait = due - System.nanoTime()) > 0) {
                    if (wait > 200_000) LockSupport.parkNanos(wait - 100_000);
                    else Thread.onSpinWait();
                }
                byte[] v = new byte[size];
                writeLong(v, 0, i);
                writeLong(v, 8, System.nanoTime());
                producer.send(new ProducerRecord<>(topic, v), (m, e) -> {
                    if (e != null) error.compareAndSet(null, e);
                });
            }
            producer.flush();
        }
        reader.join(TimeUnit.SECONDS.toMillis((long) seconds + 90));
        if (error.get() != null) throw new RuntimeException(phase + ": produce failed", error.get());
        if (consumerError.get() != null) throw new RuntimeException(phase + ": consume failed", consumerError.get());
        long got = received.get();
        long[] measured = Arrays.copyOfRange(latencies, (int) Math.min(warmupRecords, total), (int) total);
        Arrays.sort(measured);
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("phase", phase);
        o.put("records", got);
        o.put("expected", total);
        o.put("rate", rate);
        o.put("p50Ms", pct(measured, 0.50));
        o.put("p99Ms", pct(measured, 0.99));
        o.put("p999Ms", pct(measured, 0.999));
        o.put("maxMs", measured.length == 0 ? null : measured[measured.length - 1] / 1e6);
        emit(o);
        if (got < total) throw new RuntimeException(phase + ": received " + got + " of " + total);
    }

    static Double pct(long[] sorted, double q) {
        if (sorted.length == 0) return null;
        int idx = (int) Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
        return sorted[Math.max(idx, 0)] / 1e6;
    }

    static Map<String, Object> throughput(String phase, long records, long bytes, long nanos, String acks) {
        double secs = nanos / 1e9;
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("phase", phase);
        if (acks != null) o.put("acks", acks);
        o.put("records", records);
        o.put("bytes", bytes);
        o.put("seconds", secs);
        o.put("recordsPerSec", records / secs);
        o.put("mbPerSec", bytes / secs / (1024.0 * 1024.0));
        return o;
    }

    static void emit(Map<String, Object> o) {
        StringBuilder sb = new StringBuilder("{");
        boolean first = true;
        for (Map.Entry<String, Object> e : o.entrySet()) {
            if (!first) sb.append(',');
            first = false;
            sb.append('"').append(e.getKey()).append("\":");
            Object v = e.getValue();
            if (v == null) sb.append("null");
            else if (v instanceof Number) sb.append(v);
            else sb.append('"').append(v).append('"');
        }
        System.out.println(sb.append('}'));
        System.out.flush();
    }

    static String req(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) throw new IllegalArgumentException("--" + k + " is required");
        return v;
    }

    static long readLong(byte[] b, int off) {
        long v = 0;
        for (int i = 0; i < 8; i++) v = (v << 8) | (b[off + i] & 0xffL);
        return v;
    }

    static void writeLong(byte[] b, int off, long v) {
        for (int i = 7; i >= 0; i--) {
            b[off + i] = (byte) v;
            v >>>= 8;
        }
    }
}
