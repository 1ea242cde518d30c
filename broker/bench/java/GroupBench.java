import java.time.Duration;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Consumer-group benchmark phases, each printing one JSON line:
 * <pre>
 * stable   --bootstrap B --topic T --members N   N consumers started together in one JVM, default
 *          settings; ms from subscribe until every member has its assignment (group Stable)
 * fill     --bootstrap B --topic T --bytes N --record-size S --partitions P
 * consume  --bootstrap B --topic T --bytes N    one group consumer reads N bytes of values
 * </pre>
 */
public final class GroupBench {
    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 1; i + 1 < argv.length; i += 2) a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        String bootstrap = a.get("bootstrap");
        String topic = a.get("topic");
        switch (argv[0]) {
            case "stable": stable(bootstrap, topic, Integer.parseInt(a.getOrDefault("members", "3"))); break;
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

    static void stable(String bootstrap, String topic, int members) throws Exception {
        createTopic(bootstrap, topic, 6);
        String group = "stable-" + System.nanoTime();
        CountDownLatch assigned = new CountDownLatch(members);
        AtomicBoolean stop = new AtomicBoolean(false);
        Thread[] threads = new Thread[members];
        long start = System.nanoTime();
        for (int i = 0; i < members; i++) {
            threads[i] = new Thread(() -> {
                try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(bootstrap, group))) {
                    AtomicBoolean counted = new AtomicBoolean(false);
                    c.subscribe(Collections.singletonList(topic), new ConsumerRebalanceListener() {
                        public void onPartitionsRevoked(Collection<TopicPartition> p) {}
                        public void onPartitionsAssigned(Collection<TopicPartition> p) {
                            if (!p.isEmpty() && counted.compareAndSet(false, true)) assigned.countDown();
                        }
                    });
                    while (!stop.get()) c.poll(Duration.ofMillis(50));
                }
            });
            threads[i].start();
        }
        boolean ok = assigned.await(120, TimeUnit.SECONDS);
        long ms = (System.nanoTime() - start) / 1_000_000;
        stop.set(true);
        for (Thread t : threads) t.join();
        if (!ok) throw new RuntimeException("group did not become stable");
        System.out.println("{\"phase\":\"stable\",\"members\":" + members + ",\"ms\":" + ms + "}");
    }

    static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(Collections.singletonList(new NewTopic(topic, partitions, (short) 1))).all().get();
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
