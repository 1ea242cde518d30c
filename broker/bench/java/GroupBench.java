import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Consumer-group benchmark phases, each printing one JSON line on stdout (progress on stderr):
 * <pre>
 * stable    --bootstrap B --topic T --members N [--protocol P] [--timeout-s S]
 *           N consumers started together in one JVM, default settings; ms from subscribe until
 *           every partition of a 6-partition topic is owned by exactly one member and every
 *           member owns one (the group Stable)
 * rebalance --bootstrap B --topic T --protocol P [--members N] [--partitions 6] [--rate 2000]
 *           [--record-size 1024] [--warm-s 5] [--quiet-s 8] [--timeout-s 120]
 *           a producer writes R records/s round-robin over the partitions; N members consume,
 *           committing what they processed when partitions are revoked; then a member joins and,
 *           once the group has settled, one of the first members leaves cleanly (close()). For
 *           each event: the group's pause (longest time nothing was consumed although records
 *           were available), the longest such gap of a partition that stayed with its owner and
 *           of one that moved, and the time until the assignment settled. Then the producer
 *           stops, everything produced must be consumed, and the run reports partitions owned by
 *           two members at once (from the rebalance callbacks), records consumed twice and never
 *           consumed, and failed commits.
 * fill      --bootstrap B --topic T --bytes N --record-size S --partitions P
 * consume   --bootstrap B --topic T --bytes N    one group consumer reads N bytes of values
 * </pre>
 * P, the group protocol: {@code classic} (the client's default assignors, range first: eager),
 * {@code cooperative} (classic with the cooperative-sticky assignor) or {@code consumer}
 * (KIP-848, {@code group.protocol=consumer}, the broker's default assignor).
 */
public final class GroupBench {
    static final long T0 = System.nanoTime();

    /** Nanoseconds since the JVM started the bench; never 0, so 0 can mean "not yet". */
    static long now() {
        return System.nanoTime() - T0 + 1;
    }

    static double ms(long ns) {
        return ns / 1e6;
    }

    static void log(String msg) {
        System.err.printf("[%9.3f] %s%n", now() / 1e9, msg);
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 1; i + 1 < argv.length; i += 2) a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        String bootstrap = a.get("bootstrap");
        String topic = a.get("topic");
        String protocol = a.getOrDefault("protocol", "classic");
        int timeoutS = Integer.parseInt(a.getOrDefault("timeout-s", "120"));
        switch (argv[0]) {
            case "stable":
                stable(bootstrap, topic, Integer.parseInt(a.getOrDefault("members", "3")), protocol, timeoutS);
                break;
            case "rebalance":
                new Rebalance(bootstrap, topic, protocol, Integer.parseInt(a.getOrDefault("members", "3")),
                        Integer.parseInt(a.getOrDefault("partitions", "6")), Integer.parseInt(a.getOrDefault("rate", "2000")),
                        Integer.parseInt(a.getOrDefault("record-size", "1024")), Double.parseDouble(a.getOrDefault("warm-s", "5")),
                        Double.parseDouble(a.getOrDefault("quiet-s", "8")), timeoutS).run();
                break;
            case "fill":
                fill(bootstrap, topic, Long.parseLong(a.get("bytes")), Integer.parseInt(a.getOrDefault("record-size", "1024")),
                        Integer.parseInt(a.getOrDefault("partitions", "6")));
                break;
            case "consume": consume(bootstrap, topic, Long.parseLong(a.get("bytes"))); break;
            default: throw new IllegalArgumentException(argv[0]);
        }
    }

    static Properties consumerProps(String bootstrap, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return p;
    }

    /** Group protocol settings; otherwise the client's defaults (heartbeats, session, assignors). */
    static Properties withProtocol(Properties p, String protocol) {
        switch (protocol) {
            case "classic": p.put("group.protocol", "classic"); break;
            case "cooperative":
                p.put("group.protocol", "classic");
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
                break;
            // KIP-848: the broker assigns; partition.assignment.strategy must not be set.
            case "consumer": p.put("group.protocol", "consumer"); break;
            default: throw new IllegalArgumentException("unknown protocol " + protocol);
        }
        return p;
    }

    static void waitFor(BooleanSupplier done, double seconds, String what) throws InterruptedException {
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("timed out after " + seconds + " s waiting for " + what);
            Thread.sleep(20);
        }
    }

    /** Who owns which partition, as the members' rebalance callbacks tell it. */
    static final class Ownership {
        final int[] owner;
        final List<String> overlaps = new ArrayList<>();
        final Map<Integer, Long> lastAssigned = new HashMap<>();
        long lastChange;
        int lostCallbacks;

        Ownership(int partitions) {
            owner = new int[partitions];
            Arrays.fill(owner, -1);
        }

        synchronized void assigned(int member, Collection<TopicPartition> tps) {
            if (tps.isEmpty()) return;
            long t = now();
            for (TopicPartition tp : tps) {
                int p = tp.partition();
                if (owner[p] != -1 && owner[p] != member) {
                    overlaps.add(String.format("partition %d assigned to m%d at %.3f s while m%d owned it", p, member, t / 1e9, owner[p]));
                    log("OVERLAP " + overlaps.get(overlaps.size() - 1));
                }
                owner[p] = member;
            }
            lastChange = t;
            lastAssigned.put(member, t);
            log("m" + member + " assigned " + parts(tps) + " -> " + Arrays.toString(owner));
        }

        synchronized void revoked(int member, Collection<TopicPartition> tps, boolean lost) {
            if (tps.isEmpty()) return;
            if (lost) lostCallbacks++;
            for (TopicPartition tp : tps) if (owner[tp.partition()] == member) owner[tp.partition()] = -1;
            lastChange = now();
            log("m" + member + (lost ? " lost " : " revoked ") + parts(tps) + " -> " + Arrays.toString(owner));
        }

        synchronized int[] snapshot() {
            return owner.clone();
        }

        synchronized long lastChange() {
            return lastChange;
        }

        synchronized long lastAssigned(int member) {
            return lastAssigned.getOrDefault(member, 0L);
        }

        /** Every partition owned by one of `active`, and each of them owning one at least. */
        synchronized boolean complete(Collection<Integer> active) {
            int[] count = new int[64];
            for (int o : owner) {
                if (o < 0 || !active.contains(o)) return false;
                count[o]++;
            }
            for (int m : active) if (count[m] == 0) return false;
            return true;
        }

        static String parts(Collection<TopicPartition> tps) {
            List<Integer> ps = new ArrayList<>();
            for (TopicPartition tp : tps) ps.add(tp.partition());
            Collections.sort(ps);
            return ps.toString();
        }
    }

    static volatile boolean stableStop;

    static void stable(String bootstrap, String topic, int members, String protocol, int timeoutS) throws Exception {
        int partitions = 6;
        createTopic(bootstrap, topic, partitions);
        String group = "stable-" + System.nanoTime();
        Ownership own = new Ownership(partitions);
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < members; i++) ids.add(i);
        stableStop = false;
        Thread[] threads = new Thread[members];
        long start = now();
        for (int i = 0; i < members; i++) {
            int id = i;
            threads[i] = new Thread(() -> {
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(withProtocol(consumerProps(bootstrap, group), protocol))) {
                    c.subscribe(Collections.singletonList(topic), new ConsumerRebalanceListener() {
                        public void onPartitionsRevoked(Collection<TopicPartition> p) { own.revoked(id, p, false); }
                        public void onPartitionsLost(Collection<TopicPartition> p) { own.revoked(id, p, true); }
                        public void onPartitionsAssigned(Collection<TopicPartition> p) { own.assigned(id, p); }
                    });
                    while (!stableStop) c.poll(Duration.ofMillis(50));
                    c.close(Duration.ofSeconds(10));
                }
            });
            threads[i].setDaemon(true);
            threads[i].start();
        }
        try {
            waitFor(() -> own.complete(ids), timeoutS, members + " " + protocol + " members to own every partition");
        } finally {
            stableStop = true;
            for (Thread t : threads) t.join(30_000);
        }
        long ms = (own.lastChange() - start) / 1_000_000;
        System.out.println("{\"phase\":\"stable\",\"protocol\":\"" + protocol + "\",\"members\":" + members + ",\"ms\":" + ms + "}");
    }


    /** Per partition and offset: when the producer's send was acknowledged and when the group first consumed it. */
    static final class Flow {
        final long[][] acked;
        final long[][] consumed;
        final int[][] times;
        final int[] size;
        final AtomicLong ackedTotal = new AtomicLong();
        final AtomicLong consumedOnce = new AtomicLong();

        Flow(int partitions) {
            acked = new long[partitions][1 << 15];
            consumed = new long[partitions][1 << 15];
            times = new int[partitions][1 << 15];
            size = new int[partitions];
        }

        private void ensure(int p, long offset) {
            int need = (int) offset + 1;
            if (need > acked[p].length) {
                int n = Math.max(need, acked[p].length * 2);
                acked[p] = Arrays.copyOf(acked[p], n);
                consumed[p] = Arrays.copyOf(consumed[p], n);
                times[p] = Arrays.copyOf(times[p], n);
            }
            size[p] = Math.max(size[p], need);
        }

        synchronized void acked(int p, long offset, long t) {
            ensure(p, offset);
            acked[p][(int) offset] = t;
            ackedTotal.incrementAndGet();
        }

        synchronized void consumed(int p, long offset, long t) {
            ensure(p, offset);
            int o = (int) offset;
            if (times[p][o]++ == 0) {
                consumed[p][o] = t;
                consumedOnce.incrementAndGet();
            }
        }

        /**
         * Longest gap of partition p within [from, to]: the time between its record o-1 being
         * consumed and record o being consumed, counted from when o was available (acknowledged).
         */
        synchronized long partitionGap(int p, long from, long to) {
            long worst = 0;
            for (int o = 1; o < size[p]; o++) {
                long end = consumed[p][o], prev = consumed[p][o - 1];
                if (end == 0 || prev == 0) continue;
                long start = Math.max(Math.max(prev, acked[p][o]), from);
                worst = Math.max(worst, Math.min(end, to) - start);
            }
            return worst;
        }

        /**
         * Longest time within [from, to] in which the group consumed nothing although some record
         * had been acknowledged and not yet consumed.
         */
        synchronized long groupPause(long from, long to) {
            int n = 0;
            for (int p = 0; p < size.length; p++) for (int o = 0; o < size[p]; o++) if (consumed[p][o] != 0) n++;
            long[][] recs = new long[n][];
            int i = 0;
            for (int p = 0; p < size.length; p++)
                for (int o = 0; o < size[p]; o++) if (consumed[p][o] != 0) recs[i++] = new long[] {consumed[p][o], acked[p][o]};
            Arrays.sort(recs, (x, y) -> Long.compare(x[0], y[0]));
            long[] suffixMinAck = new long[n + 1];
            suffixMinAck[n] = Long.MAX_VALUE;
            for (int k = n - 1; k >= 0; k--) {
                long ack = recs[k][1] == 0 ? recs[k][0] : recs[k][1];
                suffixMinAck[k] = Math.min(suffixMinAck[k + 1], ack);
            }
            long worst = 0;
            for (int k = 0; k + 1 < n; k++) {
                long a = recs[k][0], b = recs[k + 1][0];
                if (b == a) continue;
                // Records consumed after a (from k+1 on): the earliest of them was available at suffixMinAck[k+1].
                long start = Math.max(Math.max(a, suffixMinAck[k + 1]), from);
                worst = Math.max(worst, Math.min(b, to) - start);
            }
            return worst;
        }

        synchronized long duplicates() {
            long d = 0;
            for (int p = 0; p < size.length; p++) for (int o = 0; o < size[p]; o++) if (times[p][o] > 1) d += times[p][o] - 1;
            return d;
        }

        synchronized long neverConsumed() {
            long n = 0;
            for (int p = 0; p < size.length; p++) for (int o = 0; o < size[p]; o++) if (acked[p][o] != 0 && times[p][o] == 0) n++;
            return n;
        }
    }

    static final class Rebalance {
        final String bootstrap, topic, protocol, group;
        final int members, partitions, rate, recordSize, timeoutS;
        final double warmS, quietS;
        final Ownership own;
        final Flow flow;
        final List<Member> all = new ArrayList<>();
        final AtomicLong produceErrors = new AtomicLong();
        final AtomicLong commitFailures = new AtomicLong();
        volatile boolean stopProducer;

        Rebalance(String bootstrap, String topic, String protocol, int members, int partitions, int rate, int recordSize,
                  double warmS, double quietS, int timeoutS) {
            this.bootstrap = bootstrap;
            this.topic = topic;
            this.protocol = protocol;
            this.group = "rebalance-" + protocol + "-" + System.nanoTime();
            this.members = members;
            this.partitions = partitions;
            this.rate = rate;
            this.recordSize = recordSize;
            this.warmS = warmS;
            this.quietS = quietS;
            this.timeoutS = timeoutS;
            this.own = new Ownership(partitions);
            this.flow = new Flow(partitions);
        }

        final class Member extends Thread {
            final int id;
            volatile boolean leaving;
            volatile long closing;
            volatile Throwable error;
            final Map<TopicPartition, Long> next = new HashMap<>();

            Member(int id) {
                super("member-" + id);
                this.id = id;
                setDaemon(true);
            }

            @Override
            public void run() {
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props())) {
                    c.subscribe(Collections.singletonList(topic), new ConsumerRebalanceListener() {
                        public void onPartitionsRevoked(Collection<TopicPartition> tps) {
                            commit(c, tps);
                            own.revoked(id, tps, false);
                        }

                        public void onPartitionsLost(Collection<TopicPartition> tps) {
                            for (TopicPartition tp : tps) next.remove(tp);
                            own.revoked(id, tps, true);
                        }

                        public void onPartitionsAssigned(Collection<TopicPartition> tps) {
                            own.assigned(id, tps);
                        }
                    });
                    while (!leaving) {
                        ConsumerRecords<byte[], byte[]> batch = c.poll(Duration.ofMillis(100));
                        long t = now();
                        for (ConsumerRecord<byte[], byte[]> r : batch) {
                            flow.consumed(r.partition(), r.offset(), t);
                            next.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
                        }
                    }
                    closing = now();
                    log("m" + id + " closing");
                    c.close(Duration.ofSeconds(30));
                } catch (Throwable e) {
                    error = e;
                    log("m" + id + " failed: " + e);
                }
            }

            Properties props() {
                Properties p = withProtocol(consumerProps(bootstrap, group), protocol);
                p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
                p.put(ConsumerConfig.CLIENT_ID_CONFIG, "m" + id);
                return p;
            }

            /** Commits what this member processed of the revoked partitions (commit on revoke). */
            void commit(KafkaConsumer<byte[], byte[]> c, Collection<TopicPartition> tps) {
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (TopicPartition tp : tps) {
                    Long n = next.remove(tp);
                    if (n != null) offsets.put(tp, new OffsetAndMetadata(n));
                }
                if (offsets.isEmpty()) return;
                try {
                    c.commitSync(offsets, Duration.ofSeconds(10));
                } catch (Exception e) {
                    commitFailures.incrementAndGet();
                    log("m" + id + " commit on revoke failed: " + e);
                }
            }
        }

        Thread producer() {
            Thread t = new Thread(() -> {
                Properties p = new Properties();
                p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
                byte[] value = new byte[recordSize];
                for (int i = 0; i < recordSize; i++) value[i] = (byte) ('a' + i % 26);
                try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                    long start = System.nanoTime();
                    long sent = 0;
                    while (!stopProducer) {
                        long due = (long) ((System.nanoTime() - start) / 1e9 * rate);
                        for (; sent < due; sent++) {
                            producer.send(new ProducerRecord<>(topic, (int) (sent % partitions), null, value), (md, e) -> {
                                if (e != null) produceErrors.incrementAndGet();
                                else flow.acked(md.partition(), md.offset(), now());
                            });
                        }
                        Thread.sleep(2);
                    }
                    producer.flush();
                } catch (Exception e) {
                    log("producer failed: " + e);
                    produceErrors.incrementAndGet();
                }
            }, "producer");
            t.setDaemon(true);
            t.start();
            return t;
        }

        Member start(int id) {
            Member m = new Member(id);
            all.add(m);
            m.start();
            return m;
        }

        List<Integer> active() {
            List<Integer> ids = new ArrayList<>();
            for (Member m : all) if (!m.leaving) ids.add(m.id);
            return ids;
        }

        void checkMembers() {
            for (Member m : all) if (m.error != null) throw new IllegalStateException("member m" + m.id + " failed", m.error);
        }

        /** Waits until the active members own every partition and nothing changed for quiet-s; returns the last change. */
        long settle(String what) throws InterruptedException {
            List<Integer> active = active();
            waitFor(() -> {
                checkMembers();
                return own.complete(active) && now() - own.lastChange() >= quietS * 1e9;
            }, timeoutS + quietS, what + " (every partition owned by one of m" + active + " and no change for " + quietS + " s)");
            return own.lastChange();
        }

        Map<String, Object> event(long trigger, long settled, long windowEnd, int[] before, int[] after) {
            long unmoved = -1, moved = -1;
            int nUnmoved = 0;
            for (int p = 0; p < partitions; p++) {
                long gap = flow.partitionGap(p, trigger, windowEnd);
                if (before[p] == after[p]) {
                    unmoved = Math.max(unmoved, gap);
                    nUnmoved++;
                } else {
                    moved = Math.max(moved, gap);
                }
            }
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("pause_ms", ms(flow.groupPause(trigger, windowEnd)));
            r.put("unmoved_gap_ms", unmoved < 0 ? null : ms(unmoved));
            r.put("moved_gap_ms", moved < 0 ? null : ms(moved));
            r.put("unmoved_partitions", nUnmoved);
            r.put("settled_ms", ms(settled - trigger));
            r.put("before", Arrays.toString(before));
            r.put("after", Arrays.toString(after));
            return r;
        }

        void run() throws Exception {
            createTopic(bootstrap, topic, partitions);
            Thread producer = producer();
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("phase", "rebalance");
            out.put("protocol", protocol);
            try {
                long begin = now();
                for (int i = 0; i < members; i++) start(i);
                List<Integer> first = active();
                waitFor(() -> { checkMembers(); return own.complete(first); }, timeoutS, "the first " + members + " members to own every partition");
                out.put("formed_ms", ms(own.lastChange() - begin));
                waitFor(() -> flow.ackedTotal.get() - flow.consumedOnce.get() < rate, timeoutS,
                        "the members to catch up with the producer (less than a second of records behind)");
                long steadyFrom = now();
                Thread.sleep((long) (warmS * 1000));
                checkMembers();

                // A member joins.
                int[] before = own.snapshot();
                long join = now();
                log("m" + members + " joins");
                start(members);
                long settled = settle("the group to settle after m" + members + " joined");
                int[] after = own.snapshot();
                long joinEnd = now();
                out.put("steady_pause_ms", ms(flow.groupPause(steadyFrom, join)));
                Map<String, Object> j = event(join, settled, joinEnd, before, after);
                j.put("share_ms", ms(own.lastAssigned(members) - join));
                out.put("join", j);

                // One of the first members leaves cleanly.
                Member leaver = all.get(0);
                before = own.snapshot();
                leaver.leaving = true;
                waitFor(() -> leaver.closing != 0 || leaver.error != null, 30, "m0 to start closing");
                long leave = leaver.closing;
                settled = settle("the group to settle after m0 left");
                after = own.snapshot();
                out.put("leave", event(leave, settled, now(), before, after));
                leaver.join(60_000);
                if (leaver.isAlive()) throw new IllegalStateException("m0 did not finish closing within 60 s");
            } finally {
                stopProducer = true;
                producer.join(60_000);
            }
            waitFor(() -> { checkMembers(); return flow.consumedOnce.get() >= flow.ackedTotal.get(); }, timeoutS,
                    "the group to consume every record produced (" + flow.ackedTotal.get() + ")");
            for (Member m : all) m.leaving = true;
            for (Member m : all) {
                m.join(60_000);
                if (m.isAlive()) throw new IllegalStateException("m" + m.id + " did not close within 60 s");
            }
            out.put("produced", flow.ackedTotal.get());
            out.put("produce_errors", produceErrors.get());
            out.put("overlaps", own.overlaps.size());
            out.put("overlap_details", own.overlaps.toString());
            out.put("duplicates", flow.duplicates());
            out.put("never_consumed", flow.neverConsumed());
            out.put("commit_failures", commitFailures.get());
            out.put("lost_callbacks", own.lostCallbacks);
            System.out.println(json(out));
        }
    }

    static String json(Map<String, Object> m) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, Object> e : m.entrySet()) {
            if (sb.length() > 1) sb.append(',');
            sb.append('"').append(e.getKey()).append("\":");
            Object v = e.getValue();
            if (v instanceof Map) {
                @SuppressWarnings("unchecked") Map<String, Object> inner = (Map<String, Object>) v;
                sb.append(json(inner));
            } else if (v instanceof String) {
                sb.append('"').append(((String) v).replace("\\", "\\\\").replace("\"", "\\\"")).append('"');
            } else if (v instanceof Double) {
                sb.append(String.format("%.1f", (Double) v));
            } else {
                sb.append(v);
            }
        }
        return sb.append('}').toString();
    }

    static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(Collections.singletonList(new NewTopic(topic, partitions, (short) 1))).all().get(60, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    static void fill(String bootstrap, String topic, long bytes, int size, int partitions) throws Exception {
        createTopic(bootstrap, topic, partitions);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "1");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        byte[] value = new byte[size];
        for (int i = 0; i < size; i++) value[i] = (byte) ('a' + i % 26);
        long n = bytes / size;
        long start = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (long i = 0; i < n; i++) producer.send(new ProducerRecord<>(topic, value));
            producer.flush();
        }
        double s = (System.nanoTime() - start) / 1e9;
        System.out.printf("{\"phase\":\"fill\",\"records\":%d,\"seconds\":%.3f}%n", n, s);
    }

    static void consume(String bootstrap, String topic, long bytes) {
        Properties p = consumerProps(bootstrap, "reader-" + System.nanoTime());
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "2000");
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(50 << 20));
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(4 << 20));
        long got = 0;
        long records = 0;
        long start = System.nanoTime();
        long first = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(Collections.singletonList(topic));
            long deadline = System.currentTimeMillis() + 600_000;
            while (got < bytes && System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> batch = c.poll(Duration.ofMillis(200));
                if (!batch.isEmpty() && first == 0) first = System.nanoTime();
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    got += r.value().length;
                    records++;
                }
            }
        }
        long end = System.nanoTime();
        if (got < bytes) throw new RuntimeException("consumed " + got + " of " + bytes + " bytes");
        double total = (end - start) / 1e9;
        double reading = (end - first) / 1e9;
        System.out.printf("{\"phase\":\"consume\",\"records\":%d,\"bytes\":%d,\"seconds\":%.3f,\"mb_per_s\":%.1f,"
                + "\"reading_seconds\":%.3f,\"reading_mb_per_s\":%.1f}%n",
                records, got, total, got / 1e6 / total, reading, got / 1e6 / reading);
    }
}
