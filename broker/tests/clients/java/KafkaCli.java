import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterClientQuotasOptions;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ClientMetricsResourceListing;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateDelegationTokenOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeDelegationTokenOptions;
import org.apache.kafka.clients.admin.ExpireDelegationTokenOptions;
import org.apache.kafka.clients.admin.RenewDelegationTokenOptions;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.security.token.delegation.DelegationToken;
import org.apache.kafka.common.security.token.delegation.TokenInformation;
import org.apache.kafka.common.utils.SecurityUtils;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FeatureUpdate;
import org.apache.kafka.clients.admin.UpdateFeaturesOptions;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.clients.admin.ElectLeadersOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A small command-line front end to the Apache Kafka Java client for the integration tests.
 * Every subcommand prints one JSON object per line on stdout; the tests parse them.
 *
 * <pre>
 * produce  --bootstrap B --topic T [--count N --key-prefix K --keys N --value-prefix V --value-size S]
 *          [--stdin] [--partition P] [--prop k=v]...
 *          stdin lines: {"key":s|null,"value":s|null,"headers":[[k,v|null]...],"partition":n,"timestamp":ms}
 *          prints {"event":"ack","i","partition","offset","timestamp"} or {"event":"error","i","error","message"}
 * consume  --bootstrap B --topic T [--partitions 0,1] [--group G] [--offset N] [--max N]
 *          [--timeout-ms MS] [--prop k=v]...
 *          prints {"event":"record","partition","offset","key","value","headers","timestamp","timestampType"}
 * admin    create-topic --topic T [--partitions N] [--rf R] [--config k=v]... [--validate-only]
 *          list-topics | describe-topics --topic T... | delete-topic --topic T...
 *          create-partitions --topic T --count N | describe-configs --topic T
 *          alter-configs --topic T [--set k=v]... [--delete k]... [--append k=v]...
 *                        [--subtract k=v]... [--legacy]
 *          describe-cluster | describe-log-dirs | abort-hanging --topic T [--partition P]
 *          alter-replica-log-dirs --topic T [--partition P] --dir D
 *          reassign --topic T [--partition P] [--replicas 0,1]
 *          list-reassignments [--topic T --partition P]
 *                        prints {"event":"reassignment","partition","replicas","adding","removing"}
 *          elect-leaders --topic T [--partition P]... [--type preferred|unclean]
 *                        [--all-partitions] [--timeout-ms MS]
 *          alter-quotas --entity type=name... [--set k=v]... [--remove k]... [--validate-only]
 *          describe-quotas [--match type=name|type=<default>|type=<any>]... [--strict]
 *          alter-scram --user U --mechanism M (--iterations N --password P | --drop)
 *          describe-scram [--user U]...
 *          create-token [--owner P] [--renewer P]... [--max-lifetime-ms MS]
 *          renew-token --hmac B64 [--period-ms MS] | expire-token --hmac B64 [--period-ms MS]
 *          describe-tokens [--owner P]...   (P: a principal, User:alice)
 *                        each prints its result, or {"event":"refused","error","message"}
 * offsets  --bootstrap B --topic T --partition P [--time MS]...
 *          prints beginning, end, offsetsForTimes and the admin max-timestamp offset
 * txn      --bootstrap B --topic T --transactional-id X [--transactions N] [--count N]
 *          [--abort-every K] [--offsets-group G --offsets-topic T2] [--hold-ms MS] [--prop k=v]...
 *          N transactions of `count` records each ("t<n>-<i>"), flushed before they end; every
 *          K-th one aborts; with --hold-ms each stays open MS after its flush (printing
 *          {"event":"flushed","n"}), so a test can disturb the cluster meanwhile; with a
 *          group, each transaction also commits offset (n+1)*count of T2 partition 0 for it.
 *          prints {"event":"txn","n","result":"committed"|"aborted"} then {"event":"done"}
 * eos      --bootstrap B --input T1 --output T2 --group G --transactional-id X --count N
 *          consume-transform-produce: reads N records of T1 in group G (read_committed) and
 *          writes each value with "-out" appended to T2, committing output and input offsets
 *          in one transaction per poll (offsets with the consumer's group metadata, KIP-447).
 *          prints {"event":"done","copied":n,"transactions":t}
 * history-produce | history-consume
 *          an idempotent producer's send history and a read-back of a topic, for the
 *          consistency checker: see HistoryCli.java
 * </pre>
 * Errors expected by a test are printed as {"event":"error","error":"ExceptionClass",...}
 * and the exit code stays 0; anything unexpected exits non-zero.
 */
public final class KafkaCli {

    public static void main(String[] argv) throws Exception {
        int code = run(argv);
        System.out.flush();
        // Client threads (e.g. a producer's sender after an error) must not keep us alive.
        System.exit(code);
    }

    /** One run of a subcommand: its exit code (64 for a usage error); ClientServer runs many in one JVM. */
    static int run(String[] argv) throws Exception {
        if (argv.length == 0) {
            System.err.println("usage: KafkaCli produce|consume|admin|offsets|txn|eos|history-produce|history-consume ...");
            return 64;
        }
        Args args = new Args(Arrays.copyOfRange(argv, 1, argv.length));
        switch (argv[0]) {
            case "produce": produce(args); break;
            case "consume": consume(args); break;
            case "admin": admin(args); break;
            case "offsets": offsets(args); break;
            case "txn": txn(args); break;
            case "eos": eos(args); break;
            case "history-produce": HistoryCli.produce(args); break;
            case "history-consume": HistoryCli.consume(args); break;
            default:
                System.err.println("unknown subcommand " + argv[0]);
                return 64;
        }
        return 0;
    }

    // ---------------------------------------------------------------------------------------
    // produce
    // ---------------------------------------------------------------------------------------

    static void produce(Args args) throws Exception {
        Properties props = producerProps(args.required("bootstrap"));
        // Bounded so a broker that keeps refusing fails the test in time, not the suite's timeout.
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        props.putAll(args.props());
        String topic = args.required("topic");
        Integer fixedPartition = args.has("partition") ? Integer.valueOf(args.get("partition")) : null;
        if (args.has("create-partitions")) {
            // Created by the admin client in this process, right before the first send: the
            // producer meets the topic the moment it exists.
            Properties adminProps = new Properties();
            adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args.required("bootstrap"));
            try (Admin admin = Admin.create(adminProps)) {
                NewTopic nt = new NewTopic(topic, Optional.of(Integer.parseInt(args.get("create-partitions"))),
                        replicationFactor(args, "create-rf"));
                admin.createTopics(Collections.singletonList(nt)).all().get();
            }
            emit(obj("event", "created", "topic", topic));
        }

        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        if (args.flag("stdin")) {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) continue;
                @SuppressWarnings("unchecked")
                Map<String, Object> r = (Map<String, Object>) Json.parse(line);
                List<Header> headers = new ArrayList<>();
                Object hs = r.get("headers");
                if (hs != null) {
                    for (Object h : (List<?>) hs) {
                        List<?> kv = (List<?>) h;
                        headers.add(new RecordHeader((String) kv.get(0), bytes((String) kv.get(1))));
                    }
                }
                Integer partition = r.get("partition") != null
                        ? Integer.valueOf(((Number) r.get("partition")).intValue()) : fixedPartition;
                Long ts = r.get("timestamp") != null ? Long.valueOf(((Number) r.get("timestamp")).longValue()) : null;
                records.add(new ProducerRecord<>(topic, partition, ts,
                        bytes((String) r.get("key")), bytes((String) r.get("value")), headers));
            }
        } else {
            int count = Integer.parseInt(args.get("count", "10"));
            String keyPrefix = args.get("key-prefix", null);
            int keys = Integer.parseInt(args.get("keys", "0"));
            String valuePrefix = args.get("value-prefix", "value-");
            int valueSize = Integer.parseInt(args.get("value-size", "0"));
            for (int i = 0; i < count; i++) {
                String key = keyPrefix == null ? null : keyPrefix + (keys > 0 ? i % keys : i);
                StringBuilder value = new StringBuilder(valuePrefix).append(i);
                while (value.length() < valueSize) value.append('x');
                records.add(new ProducerRecord<>(topic, fixedPartition, null, bytes(key), bytes(value.toString())));
            }
        }

        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < records.size(); i++) {
                final int index = i;
                producer.send(records.get(i), (meta, err) -> {
                    Map<String, Object> o = new LinkedHashMap<>();
                    o.put("i", index);
                    if (err == null) {
                        acked.incrementAndGet();
                        o.put("event", "ack");
                        o.put("partition", meta.partition());
                        o.put("offset", meta.offset());
                        o.put("timestamp", meta.timestamp());
                    } else {
                        failed.incrementAndGet();
                        o.put("event", "error");
                        o.put("error", err.getClass().getSimpleName());
                        o.put("message", String.valueOf(err.getMessage()));
                    }
                    emit(o);
                });
            }
            producer.flush();
        }
        emit(obj("event", "done", "acked", acked.get(), "errors", failed.get()));
    }

    // ---------------------------------------------------------------------------------------
    // txn
    // ---------------------------------------------------------------------------------------

    static void txn(Args args) throws Exception {
        Properties props = producerProps(args.required("bootstrap"));
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args.required("transactional-id"));
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        props.putAll(args.props());
        String topic = args.required("topic");
        int transactions = Integer.parseInt(args.get("transactions", "1"));
        int count = Integer.parseInt(args.get("count", "10"));
        int abortEvery = Integer.parseInt(args.get("abort-every", "0"));
        long holdMs = Long.parseLong(args.get("hold-ms", "0"));
        String group = args.get("offsets-group", null);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            for (int n = 0; n < transactions; n++) {
                producer.beginTransaction();
                for (int i = 0; i < count; i++) {
                    producer.send(new ProducerRecord<>(topic, bytes("k" + i), bytes("t" + n + "-" + i)));
                }
                if (group != null) {
                    TopicPartition source = new TopicPartition(args.required("offsets-topic"), 0);
                    producer.sendOffsetsToTransaction(
                            Collections.singletonMap(source, new OffsetAndMetadata((long) (n + 1) * count)),
                            new ConsumerGroupMetadata(group));
                }
                boolean abort = abortEvery > 0 && (n + 1) % abortEvery == 0;
                // Flushed first, so an aborted transaction's records are in the log, not just
                // dropped by the client.
                producer.flush();
                if (holdMs > 0) {
                    emit(obj("event", "flushed", "n", n));
                    Thread.sleep(holdMs);
                }
                if (abort) {
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                }
                emit(obj("event", "txn", "n", n, "result", abort ? "aborted" : "committed"));
            }
        } catch (KafkaException e) {
            emit(obj("event", "error", "error", e.getClass().getSimpleName(), "message", String.valueOf(e.getMessage())));
            return;
        }
        emit(obj("event", "done"));
    }

    static void eos(Args args) throws Exception {
        String bootstrap = args.required("bootstrap");
        Properties cprops = consumerProps(bootstrap);
        cprops.put(ConsumerConfig.GROUP_ID_CONFIG, args.required("group"));
        cprops.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cprops.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cprops.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        // --prop settings are the consumer's (group.protocol=consumer, for one).
        cprops.putAll(args.props());
        Properties pprops = producerProps(bootstrap);
        pprops.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args.required("transactional-id"));
        // --producer-prop settings are the producer's (batching and requests in flight).
        pprops.putAll(args.keyValues("producer-prop"));
        String output = args.required("output");
        long count = Long.parseLong(args.required("count"));
        long deadline = System.currentTimeMillis() + Long.parseLong(args.get("timeout-ms", "60000"));
        long copied = 0;
        int transactions = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cprops);
             KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pprops)) {
            producer.initTransactions();
            consumer.subscribe(Collections.singletonList(args.required("input")));
            while (copied < count && System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
                if (records.isEmpty()) continue;
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    String value = new String(r.value(), StandardCharsets.UTF_8) + "-out";
                    producer.send(new ProducerRecord<>(output, r.key(), value.getBytes(StandardCharsets.UTF_8)));
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    copied++;
                }
                producer.sendOffsetsToTransaction(next, consumer.groupMetadata());
                producer.commitTransaction();
                transactions++;
            }
        } catch (KafkaException e) {
            emit(obj("event", "error", "error", e.getClass().getSimpleName(), "message", String.valueOf(e.getMessage())));
            return;
        }
        emit(obj("event", "done", "copied", copied, "transactions", transactions));
    }

    // ---------------------------------------------------------------------------------------
    // consume
    // ---------------------------------------------------------------------------------------

    static void consume(Args args) {
        Properties props = consumerProps(args.required("bootstrap"));
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        String group = args.get("group", null);
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        } else {
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        }
        props.putAll(args.props());
        String topic = args.required("topic");
        long max = Long.parseLong(args.get("max", "-1"));
        long timeoutMs = Long.parseLong(args.get("timeout-ms", "15000"));

        long count = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            if (group != null) {
                consumer.subscribe(Collections.singletonList(topic));
            } else {
                List<TopicPartition> tps = new ArrayList<>();
                if (args.has("partitions")) {
                    for (String p : args.get("partitions").split(",")) tps.add(new TopicPartition(topic, Integer.parseInt(p)));
                } else {
                    for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs))) {
                        tps.add(new TopicPartition(topic, p.partition()));
                    }
                }
                consumer.assign(tps);
                if (args.has("offset")) {
                    long offset = Long.parseLong(args.get("offset"));
                    for (TopicPartition tp : tps) consumer.seek(tp, offset);
                } else {
                    consumer.seekToBeginning(tps);
                }
            }
            long deadline = System.currentTimeMillis() + timeoutMs;
            while ((max < 0 || count < max) && System.currentTimeMillis() < deadline) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    List<Object> headers = new ArrayList<>();
                    for (Header h : r.headers()) headers.add(Arrays.asList(h.key(), string(h.value())));
                    Map<String, Object> o = new LinkedHashMap<>();
                    o.put("event", "record");
                    o.put("partition", r.partition());
                    o.put("offset", r.offset());
                    o.put("key", string(r.key()));
                    o.put("value", string(r.value()));
                    o.put("headers", headers);
                    o.put("timestamp", r.timestamp());
                    o.put("timestampType", r.timestampType().name);
                    emit(o);
                    count++;
                    if (max >= 0 && count >= max) break;
                }
            }
        }
        emit(obj("event", "done", "count", count));
    }

    // ---------------------------------------------------------------------------------------
    // offsets
    // ---------------------------------------------------------------------------------------

    static void offsets(Args args) throws Exception {
        String bootstrap = args.required("bootstrap");
        TopicPartition tp = new TopicPartition(args.required("topic"), Integer.parseInt(args.get("partition", "0")));
        Properties props = consumerProps(bootstrap);
        props.putAll(args.props());
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("event", "offsets");
        Duration timeout = Duration.ofSeconds(15);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> tps = Collections.singletonList(tp);
            out.put("beginning", consumer.beginningOffsets(tps, timeout).get(tp));
            out.put("end", consumer.endOffsets(tps, timeout).get(tp));
            Map<String, Object> forTimes = new LinkedHashMap<>();
            for (String t : args.all("time")) {
                try {
                    Map<TopicPartition, OffsetAndTimestamp> r =
                            consumer.offsetsForTimes(Collections.singletonMap(tp, Long.parseLong(t)), timeout);
                    OffsetAndTimestamp ot = r.get(tp);
                    forTimes.put(t, ot == null ? null : obj("offset", ot.offset(), "timestamp", ot.timestamp()));
                } catch (RuntimeException e) {
                    // e.g. a broker answering with a negative timestamp for a found offset
                    forTimes.put(t, obj("error", e.getClass().getSimpleName(), "message", String.valueOf(e.getMessage())));
                }
            }
            out.put("forTimes", forTimes);
        }
        try (Admin admin = adminClient(bootstrap, args)) {
            ListOffsetsResult.ListOffsetsResultInfo info =
                    admin.listOffsets(Collections.singletonMap(tp, OffsetSpec.maxTimestamp())).partitionResult(tp).get();
            out.put("maxTimestamp", obj("offset", info.offset(), "timestamp", info.timestamp()));
        } catch (ExecutionException e) {
            out.put("maxTimestamp", obj("error", e.getCause().getClass().getSimpleName()));
        }
        emit(out);
    }

    // ---------------------------------------------------------------------------------------
    // admin
    // ---------------------------------------------------------------------------------------

    static Admin adminClient(String bootstrap, Args args) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.putAll(args.props());
        return Admin.create(props);
    }

    static void admin(Args args) throws Exception {
        String op = args.positional(0);
        try (Admin admin = adminClient(args.required("bootstrap"), args)) {
            try {
                adminOp(admin, op, args);
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                emit(obj("event", "error", "op", op, "error", cause.getClass().getSimpleName(),
                        "message", String.valueOf(cause.getMessage())));
            }
        }
    }

    /** Manual replica assignments written `0=1,2;1=2,0`: partition, then its replicas in order. */
    static Map<Integer, List<Integer>> assignments(String spec) {
        Map<Integer, List<Integer>> out = new TreeMap<>();
        for (String entry : spec.split(";")) {
            String[] parts = entry.split("=", 2);
            List<Integer> replicas = new ArrayList<>();
            for (String id : parts[1].split(",")) replicas.add(Integer.valueOf(id.trim()));
            out.put(Integer.valueOf(parts[0].trim()), replicas);
        }
        return out;
    }

    static ResourcePattern resourcePattern(Args args) {
        return new ResourcePattern(ResourceType.fromString(args.required("resource-type")), args.required("name"),
                PatternType.fromString(args.get("pattern", "LITERAL")));
    }

    static AccessControlEntry accessEntry(Args args) {
        return new AccessControlEntry(args.required("principal"), args.get("host", "*"),
                AclOperation.fromString(args.required("operation")),
                AclPermissionType.fromString(args.get("permission", "ALLOW")));
    }

    static AclBindingFilter aclFilter(Args args) {
        return new AclBindingFilter(
            new ResourcePatternFilter(ResourceType.fromString(args.get("resource-type", "ANY")), args.get("name", null),
                PatternType.fromString(args.get("pattern", "ANY"))),
            new AccessControlEntryFilter(args.get("principal", null), args.get("host", null),
                AclOperation.fromString(args.get("operation", "ANY")),
                AclPermissionType.fromString(args.get("permission", "ANY"))));
    }

    /** A delegation token as the tests read it, its HMAC in base64 (the password it logs in with). */
    static Map<String, Object> tokenJson(String event, DelegationToken token) {
        TokenInformation info = token.tokenInfo();
        List<String> renewers = new ArrayList<>();
        for (KafkaPrincipal r : info.renewers()) renewers.add(r.toString());
        return obj("event", event, "tokenId", info.tokenId(), "hmac", token.hmacAsBase64String(),
                "owner", info.owner().toString(), "requester", info.tokenRequester().toString(),
                "renewers", renewers, "issue", info.issueTimestamp(), "expiry", info.expiryTimestamp(),
                "max", info.maxTimestamp());
    }

    /** Prints why an admin call was refused: the exception's class and message. */
    static void refused(ExecutionException e) {
        emit(obj("event", "refused", "error", e.getCause().getClass().getSimpleName(),
                "message", e.getCause().getMessage()));
    }

    static Map<String, Object> aclJson(AclBinding b) {
        return obj("resourceType", b.pattern().resourceType().name(), "name", b.pattern().name(),
                "pattern", b.pattern().patternType().name(), "principal", b.entry().principal(),
                "host", b.entry().host(), "operation", b.entry().operation().name(),
                "permission", b.entry().permissionType().name());
    }

    /** The replication factor asked for with `--KEY`, else the broker's default (KIP-464). */
    static Optional<Short> replicationFactor(Args args, String key) {
        return args.has(key) ? Optional.of(Short.parseShort(args.get(key))) : Optional.empty();
    }

    @SuppressWarnings("deprecation")
    static void adminOp(Admin admin, String op, Args args) throws Exception {
        switch (op) {
            case "create-topic": {
                String topic = args.required("topic");
                int partitions = Integer.parseInt(args.get("partitions", "1"));
                NewTopic nt = args.has("assignments")
                        ? new NewTopic(topic, assignments(args.get("assignments")))
                        : new NewTopic(topic, Optional.of(partitions), replicationFactor(args, "rf"));
                nt = nt.configs(args.keyValues("config"));
                CreateTopicsOptions opts = new CreateTopicsOptions().validateOnly(args.flag("validate-only"));
                var result = admin.createTopics(Collections.singletonList(nt), opts);
                result.all().get();
                Map<String, Object> o = obj("event", "created", "topic", topic, "validateOnly", args.flag("validate-only"));
                try {
                    o.put("numPartitions", result.numPartitions(topic).get());
                } catch (ExecutionException | UnsupportedOperationException e) {
                    o.put("numPartitions", null);
                }
                emit(o);
                break;
            }
            case "list-topics": {
                emit(obj("event", "topics", "topics", new ArrayList<>(admin.listTopics().names().get())));
                break;
            }
            case "describe-topics": {
                // --page-limit: partitions per DescribeTopicPartitions answer (KIP-966 pagination).
                DescribeTopicsOptions options = new DescribeTopicsOptions();
                if (args.has("page-limit")) options.partitionSizeLimitPerResponse(Integer.parseInt(args.get("page-limit", "")));
                Map<String, TopicDescription> d = admin.describeTopics(args.all("topic"), options).allTopicNames().get();
                for (TopicDescription td : d.values()) {
                    List<Object> parts = new ArrayList<>();
                    for (TopicPartitionInfo p : td.partitions()) {
                        List<Object> replicas = new ArrayList<>();
                        for (Node n : p.replicas()) replicas.add(n.id());
                        List<Object> isr = new ArrayList<>();
                        for (Node n : p.isr()) isr.add(n.id());
                        parts.add(obj("partition", p.partition(), "leader", p.leader() == null ? null : p.leader().id(),
                                "replicas", replicas, "isr", isr));
                    }
                    emit(obj("event", "topic", "topic", td.name(), "topicId", String.valueOf(td.topicId()),
                            "internal", td.isInternal(), "partitions", parts));
                }
                break;
            }
            case "delete-topic": {
                admin.deleteTopics(args.all("topic")).all().get();
                emit(obj("event", "deleted", "topics", args.all("topic")));
                break;
            }
            case "create-partitions": {
                String topic = args.required("topic");
                int count = Integer.parseInt(args.required("count"));
                NewPartitions grown = args.has("assignments")
                        ? NewPartitions.increaseTo(count, new ArrayList<>(assignments(args.get("assignments")).values()))
                        : NewPartitions.increaseTo(count);
                admin.createPartitions(Collections.singletonMap(topic, grown)).all().get();
                emit(obj("event", "partitions-created", "topic", topic, "count", count));
                break;
            }
            case "describe-configs": {
                ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, args.required("topic"));
                Config config = admin.describeConfigs(Collections.singletonList(res)).all().get().get(res);
                Map<String, Object> values = new LinkedHashMap<>();
                Map<String, Object> sources = new LinkedHashMap<>();
                for (ConfigEntry e : config.entries()) {
                    values.put(e.name(), e.value());
                    sources.put(e.name(), e.source().name());
                }
                emit(obj("event", "configs", "configs", values, "sources", sources));
                break;
            }
            case "alter-configs": {
                // --broker ID (empty: every broker) alters dynamic broker configs instead.
                ConfigResource res = args.has("broker")
                    ? new ConfigResource(ConfigResource.Type.BROKER, args.get("broker"))
                    : new ConfigResource(ConfigResource.Type.TOPIC, args.required("topic"));
                if (args.flag("legacy")) {
                    List<ConfigEntry> entries = new ArrayList<>();
                    for (Map.Entry<String, String> e : args.keyValues("set").entrySet()) {
                        entries.add(new ConfigEntry(e.getKey(), e.getValue()));
                    }
                    admin.alterConfigs(Collections.singletonMap(res, new Config(entries))).all().get();
                } else {
                    List<AlterConfigOp> ops = new ArrayList<>();
                    for (Map.Entry<String, String> e : args.keyValues("set").entrySet()) {
                        ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET));
                    }
                    for (String k : args.all("delete")) {
                        ops.add(new AlterConfigOp(new ConfigEntry(k, null), AlterConfigOp.OpType.DELETE));
                    }
                    for (Map.Entry<String, String> e : args.keyValues("append").entrySet()) {
                        ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.APPEND));
                    }
                    for (Map.Entry<String, String> e : args.keyValues("subtract").entrySet()) {
                        ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SUBTRACT));
                    }
                    Map<ConfigResource, Collection<AlterConfigOp>> m = new HashMap<>();
                    m.put(res, ops);
                    admin.incrementalAlterConfigs(m).all().get();
                }
                emit(obj("event", "altered", "topic", res.name(), "legacy", args.flag("legacy")));
                break;
            }
            case "describe-cluster": {
                DescribeClusterResult r = admin.describeCluster();
                List<Object> nodes = new ArrayList<>();
                for (Node n : r.nodes().get()) nodes.add(obj("id", n.id(), "host", n.host(), "port", n.port()));
                Node controller = r.controller().get();
                emit(obj("event", "cluster", "clusterId", r.clusterId().get(),
                        "controller", controller == null ? null : controller.id(), "nodes", nodes));
                break;
            }
            case "describe-features": {
                FeatureMetadata m = admin.describeFeatures().featureMetadata().get();
                Map<String, Object> supported = new TreeMap<>();
                m.supportedFeatures().forEach((k, v) -> supported.put(k, List.of(v.minVersion(), v.maxVersion())));
                Map<String, Object> finalized = new TreeMap<>();
                m.finalizedFeatures().forEach((k, v) -> finalized.put(k, List.of(v.minVersionLevel(), v.maxVersionLevel())));
                emit(obj("event", "features", "supported", supported, "finalized", finalized,
                        "epoch", m.finalizedFeaturesEpoch().orElse(-1L)));
                break;
            }
            case "update-features": {
                // --feature name=level (repeatable), --upgrade-type upgrade|safe_downgrade|
                // unsafe_downgrade, --validate-only: kafka-features.sh upgrade/downgrade.
                FeatureUpdate.UpgradeType type = FeatureUpdate.UpgradeType.valueOf(
                        args.get("upgrade-type", "upgrade").toUpperCase(Locale.ROOT));
                Map<String, FeatureUpdate> updates = new HashMap<>();
                for (Map.Entry<String, String> e : args.keyValues("feature").entrySet()) {
                    updates.put(e.getKey(), new FeatureUpdate(Short.parseShort(e.getValue()), type));
                }
                try {
                    admin.updateFeatures(updates, new UpdateFeaturesOptions().validateOnly(args.flag("validate-only"))).all().get();
                    emit(obj("event", "updated", "features", new TreeMap<>(args.keyValues("feature"))));
                } catch (ExecutionException e) {
                    emit(obj("event", "refused", "error", e.getCause().getClass().getSimpleName(),
                            "message", e.getCause().getMessage()));
                }
                break;
            }
            case "abort-hanging": {
                // What kafka-transactions.sh abort does: find the partition's producers with an
                // open transaction (DescribeProducers) and abort each (WriteTxnMarkers).
                TopicPartition tp = new TopicPartition(args.required("topic"), Integer.parseInt(args.get("partition", "0")));
                List<String> aborted = new ArrayList<>();
                for (ProducerState p : admin.describeProducers(Collections.singletonList(tp)).partitionResult(tp).get().activeProducers()) {
                    if (!p.currentTransactionStartOffset().isPresent()) continue;
                    admin.abortTransaction(new AbortTransactionSpec(tp, p.producerId(), (short) p.producerEpoch(),
                            p.coordinatorEpoch().orElse(0))).all().get();
                    aborted.add(p.producerId() + "@" + p.currentTransactionStartOffset().getAsLong());
                }
                emit(obj("event", "aborted", "transactions", aborted));
                break;
            }
            case "alter-quotas": {
                // --entity type=name (repeatable; an empty name is the type's default),
                // --set key=value and --remove key (repeatable), --validate-only.
                Map<String, String> entity = new HashMap<>();
                for (Map.Entry<String, String> e : args.keyValues("entity").entrySet()) {
                    entity.put(e.getKey(), e.getValue().isEmpty() ? null : e.getValue());
                }
                List<ClientQuotaAlteration.Op> ops = new ArrayList<>();
                for (Map.Entry<String, String> e : args.keyValues("set").entrySet()) {
                    ops.add(new ClientQuotaAlteration.Op(e.getKey(), Double.parseDouble(e.getValue())));
                }
                for (String k : args.all("remove")) ops.add(new ClientQuotaAlteration.Op(k, null));
                admin.alterClientQuotas(
                        Collections.singletonList(new ClientQuotaAlteration(new ClientQuotaEntity(entity), ops)),
                        new AlterClientQuotasOptions().validateOnly(args.flag("validate-only"))).all().get();
                emit(obj("event", "quotas-altered"));
                break;
            }
            case "describe-quotas": {
                // --match type=name, type=<default> or type=<any> (repeatable), --strict.
                List<ClientQuotaFilterComponent> components = new ArrayList<>();
                for (Map.Entry<String, String> e : args.keyValues("match").entrySet()) {
                    switch (e.getValue()) {
                        case "<default>": components.add(ClientQuotaFilterComponent.ofDefaultEntity(e.getKey())); break;
                        case "<any>": components.add(ClientQuotaFilterComponent.ofEntityType(e.getKey())); break;
                        default: components.add(ClientQuotaFilterComponent.ofEntity(e.getKey(), e.getValue()));
                    }
                }
                ClientQuotaFilter filter = args.flag("strict")
                    ? ClientQuotaFilter.containsOnly(components) : ClientQuotaFilter.contains(components);
                List<Object> entries = new ArrayList<>();
                for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e
                        : admin.describeClientQuotas(filter).entities().get().entrySet()) {
                    entries.add(obj("entity", new TreeMap<>(e.getKey().entries()), "values", new TreeMap<>(e.getValue())));
                }
                emit(obj("event", "quotas", "entries", entries));
                break;
            }
            case "alter-scram": {
                // --user U --mechanism SCRAM-SHA-256 (--iterations N --password P | --drop)
                String user = args.required("user");
                ScramMechanism mechanism = ScramMechanism.fromMechanismName(args.required("mechanism"));
                UserScramCredentialAlteration change = args.flag("drop")
                    ? new UserScramCredentialDeletion(user, mechanism)
                    : new UserScramCredentialUpsertion(user,
                        new ScramCredentialInfo(mechanism, Integer.parseInt(args.get("iterations", "8192"))),
                        args.required("password"));
                admin.alterUserScramCredentials(Collections.singletonList(change)).all().get();
                emit(obj("event", "scram-altered", "user", user));
                break;
            }
            case "describe-scram": {
                // --user U (repeatable; none: every user)
                List<String> users = args.all("user");
                Map<String, UserScramCredentialsDescription> found = users.isEmpty()
                    ? admin.describeUserScramCredentials().all().get()
                    : admin.describeUserScramCredentials(users).all().get();
                Map<String, Object> out = new TreeMap<>();
                for (Map.Entry<String, UserScramCredentialsDescription> e : found.entrySet()) {
                    Map<String, Object> infos = new TreeMap<>();
                    for (ScramCredentialInfo info : e.getValue().credentialInfos()) {
                        infos.put(info.mechanism().mechanismName(), info.iterations());
                    }
                    out.put(e.getKey(), infos);
                }
                emit(obj("event", "scram", "users", out));
                break;
            }
            case "create-token": {
                CreateDelegationTokenOptions options = new CreateDelegationTokenOptions();
                List<KafkaPrincipal> renewers = new ArrayList<>();
                for (String r : args.all("renewer")) renewers.add(SecurityUtils.parseKafkaPrincipal(r));
                options.renewers(renewers);
                if (args.has("owner")) options.owner(SecurityUtils.parseKafkaPrincipal(args.get("owner")));
                if (args.has("max-lifetime-ms")) options.maxlifeTimeMs(Long.parseLong(args.get("max-lifetime-ms")));
                try {
                    DelegationToken token = admin.createDelegationToken(options).delegationToken().get();
                    emit(tokenJson("token", token));
                } catch (ExecutionException e) {
                    refused(e);
                }
                break;
            }
            case "renew-token":
            case "expire-token": {
                byte[] hmac = java.util.Base64.getDecoder().decode(args.required("hmac"));
                try {
                    long expiry = op.equals("renew-token")
                        ? admin.renewDelegationToken(hmac, new RenewDelegationTokenOptions()
                            .renewTimePeriodMs(Long.parseLong(args.get("period-ms", "-1")))).expiryTimestamp().get()
                        : admin.expireDelegationToken(hmac, new ExpireDelegationTokenOptions()
                            .expiryTimePeriodMs(Long.parseLong(args.get("period-ms", "-1")))).expiryTimestamp().get();
                    emit(obj("event", op.equals("renew-token") ? "renewed" : "expired", "expiry", expiry));
                } catch (ExecutionException e) {
                    refused(e);
                }
                break;
            }
            case "describe-tokens": {
                DescribeDelegationTokenOptions options = new DescribeDelegationTokenOptions();
                if (args.has("owner")) {
                    List<KafkaPrincipal> owners = new ArrayList<>();
                    for (String o : args.all("owner")) owners.add(SecurityUtils.parseKafkaPrincipal(o));
                    options.owners(owners);
                }
                try {
                    List<Object> tokens = new ArrayList<>();
                    for (DelegationToken t : admin.describeDelegationToken(options).delegationTokens().get()) {
                        tokens.add(tokenJson("token", t));
                    }
                    emit(obj("event", "tokens", "tokens", tokens));
                } catch (ExecutionException e) {
                    refused(e);
                }
                break;
            }
            case "reassign": {
                // --replicas 0,1 moves the partition; without it, cancels its reassignment.
                TopicPartition tp = new TopicPartition(args.required("topic"), Integer.parseInt(args.get("partition", "0")));
                Optional<NewPartitionReassignment> target = Optional.empty();
                if (args.has("replicas")) {
                    List<Integer> replicas = new ArrayList<>();
                    for (String r : args.get("replicas").split(",")) if (!r.isEmpty()) replicas.add(Integer.parseInt(r));
                    target = Optional.of(new NewPartitionReassignment(replicas));
                }
                admin.alterPartitionReassignments(Collections.singletonMap(tp, target)).all().get();
                emit(obj("event", "reassigned", "partition", tp.toString(),
                        "inProgress", admin.listPartitionReassignments().reassignments().get().size()));
                break;
            }
            case "list-reassignments": {
                // kafka-reassign-partitions.sh --verify's call: every reassignment in
                // progress, or only that of --topic/--partition.
                Map<TopicPartition, PartitionReassignment> listed = args.has("topic")
                    ? admin.listPartitionReassignments(Collections.singleton(new TopicPartition(
                            args.required("topic"), Integer.parseInt(args.get("partition", "0"))))).reassignments().get()
                    : admin.listPartitionReassignments().reassignments().get();
                for (Map.Entry<TopicPartition, PartitionReassignment> e : listed.entrySet()) {
                    emit(obj("event", "reassignment", "partition", e.getKey().toString(),
                            "replicas", e.getValue().replicas(),
                            "adding", e.getValue().addingReplicas(),
                            "removing", e.getValue().removingReplicas()));
                }
                emit(obj("event", "listed", "count", listed.size()));
                break;
            }
            case "elect-leaders": {
                // --partition may repeat (default 0); --all-partitions asks for every partition
                // (a null set); one line per partition in the answer.
                ElectionType type = ElectionType.valueOf(args.get("type", "preferred").toUpperCase(Locale.ROOT));
                Set<TopicPartition> asked = null;
                if (!args.flag("all-partitions")) {
                    asked = new HashSet<>();
                    List<String> partitions = args.all("partition");
                    for (String p : partitions.isEmpty() ? List.of("0") : partitions) {
                        asked.add(new TopicPartition(args.required("topic"), Integer.parseInt(p)));
                    }
                }
                ElectLeadersOptions options = new ElectLeadersOptions();
                if (args.has("timeout-ms")) options.timeoutMs(Integer.parseInt(args.get("timeout-ms")));
                Map<TopicPartition, Optional<Throwable>> results =
                    admin.electLeaders(type, asked, options).partitions().get();
                for (Map.Entry<TopicPartition, Optional<Throwable>> r : results.entrySet()) {
                    Optional<Throwable> error = r.getValue();
                    emit(obj("event", "elected", "partition", r.getKey().toString(),
                            "error", error.isPresent() ? error.get().getClass().getSimpleName() : null,
                            "message", error.isPresent() ? String.valueOf(error.get().getMessage()) : null));
                }
                break;
            }
            case "alter-replica-log-dirs": {
                TopicPartitionReplica replica = new TopicPartitionReplica(args.required("topic"),
                        Integer.parseInt(args.get("partition", "0")), Integer.parseInt(args.get("broker", "0")));
                admin.alterReplicaLogDirs(Collections.singletonMap(replica, args.required("dir"))).all().get();
                emit(obj("event", "moved", "replica", replica.toString()));
                break;
            }
            case "create-acl": {
                // --resource-type TOPIC --name N [--pattern LITERAL] --principal User:x [--host *]
                // --operation READ [--permission ALLOW]
                admin.createAcls(Collections.singletonList(new AclBinding(resourcePattern(args), accessEntry(args))))
                    .all().get();
                emit(obj("event", "acl-created"));
                break;
            }
            case "describe-acls": {
                // Filter options as create-acl's, each defaulting to ANY.
                List<Map<String, Object>> acls = new ArrayList<>();
                for (AclBinding b : admin.describeAcls(aclFilter(args)).values().get()) acls.add(aclJson(b));
                emit(obj("event", "acls", "acls", acls));
                break;
            }
            case "delete-acls": {
                List<Map<String, Object>> acls = new ArrayList<>();
                for (AclBinding b : admin.deleteAcls(Collections.singletonList(aclFilter(args))).all().get()) {
                    acls.add(aclJson(b));
                }
                emit(obj("event", "acls-deleted", "acls", acls));
                break;
            }
            case "describe-topic-operations": {
                // The operations the caller may perform on --topic (KIP-430).
                String topic = args.required("topic");
                var d = admin.describeTopics(Collections.singletonList(topic),
                        new DescribeTopicsOptions().includeAuthorizedOperations(true)).allTopicNames().get().get(topic);
                List<String> ops = new ArrayList<>();
                for (AclOperation allowed : d.authorizedOperations()) ops.add(allowed.name());
                Collections.sort(ops);
                emit(obj("event", "operations", "topic", topic, "operations", ops));
                break;
            }
            case "list-client-metrics-resources": {
                // KIP-1000's ListClientMetricsResources: ListConfigResources v0 since KIP-1142.
                List<String> names = new ArrayList<>();
                for (ClientMetricsResourceListing l : admin.listClientMetricsResources().all().get()) names.add(l.name());
                Collections.sort(names);
                emit(obj("event", "client-metrics-resources", "names", names));
                break;
            }
            case "describe-log-dirs": {
                List<Integer> brokers = new ArrayList<>();
                for (Node n : admin.describeCluster().nodes().get()) brokers.add(n.id());
                Map<Integer, Map<String, LogDirDescription>> all = admin.describeLogDirs(brokers).allDescriptions().get();
                for (Map.Entry<Integer, Map<String, LogDirDescription>> b : all.entrySet()) {
                    for (Map.Entry<String, LogDirDescription> d : b.getValue().entrySet()) {
                        Map<String, Object> replicas = new LinkedHashMap<>();
                        for (Map.Entry<TopicPartition, ReplicaInfo> r : d.getValue().replicaInfos().entrySet()) {
                            replicas.put(r.getKey().toString(), r.getValue().size());
                        }
                        LogDirDescription desc = d.getValue();
                        emit(obj("event", "logdir", "broker", b.getKey(), "path", d.getKey(),
                                "error", desc.error() == null ? null : desc.error().getClass().getSimpleName(),
                                "replicas", replicas,
                                "totalBytes", desc.totalBytes().isPresent() ? desc.totalBytes().getAsLong() : null,
                                "usableBytes", desc.usableBytes().isPresent() ? desc.usableBytes().getAsLong() : null));
                    }
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unknown admin operation " + op);
        }
    }

    // ---------------------------------------------------------------------------------------
    // helpers
    // ---------------------------------------------------------------------------------------

    /** A byte-array producer's settings for `bootstrap`; callers add the rest. */
    static Properties producerProps(String bootstrap) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return props;
    }

    /** A byte-array consumer's settings for `bootstrap`; callers add the rest. */
    static Properties consumerProps(String bootstrap) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return props;
    }

    static byte[] bytes(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static String string(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static synchronized void emit(Map<String, Object> o) {
        System.out.println(Json.write(o));
        // Tests follow some runs line by line (acks so far) while they go on.
        System.out.flush();
    }

    /** `--name value` options (repeatable), `--flag` booleans and positional words. */
    static final class Args {
        private final Map<String, List<String>> options = new LinkedHashMap<>();
        private final List<String> positional = new ArrayList<>();
        private static final List<String> FLAGS = Arrays.asList("stdin", "validate-only", "legacy", "strict", "drop", "stdin-stop");

        Args(String[] argv) {
            for (int i = 0; i < argv.length; i++) {
                String a = argv[i];
                if (a.startsWith("--")) {
                    String name = a.substring(2);
                    if (FLAGS.contains(name)) {
                        options.computeIfAbsent(name, k -> new ArrayList<>()).add("true");
                    } else {
                        if (i + 1 >= argv.length) throw new IllegalArgumentException("missing value for " + a);
                        options.computeIfAbsent(name, k -> new ArrayList<>()).add(argv[++i]);
                    }
                } else {
                    positional.add(a);
                }
            }
        }

        boolean has(String name) { return options.containsKey(name); }
        boolean flag(String name) { return has(name); }
        String get(String name) { return required(name); }

        String get(String name, String dflt) {
            List<String> v = options.get(name);
            return v == null ? dflt : v.get(v.size() - 1);
        }

        String required(String name) {
            String v = get(name, null);
            if (v == null) throw new IllegalArgumentException("--" + name + " is required");
            return v;
        }

        List<String> all(String name) { return options.getOrDefault(name, Collections.emptyList()); }

        String positional(int i) {
            if (i >= positional.size()) throw new IllegalArgumentException("missing operation");
            return positional.get(i);
        }

        Map<String, String> keyValues(String name) {
            Map<String, String> m = new LinkedHashMap<>();
            for (String kv : all(name)) {
                int eq = kv.indexOf('=');
                if (eq < 0) throw new IllegalArgumentException("--" + name + " wants key=value, got " + kv);
                m.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
            return m;
        }

        Properties props() {
            Properties p = new Properties();
            p.putAll(keyValues("prop"));
            return p;
        }
    }

    /** Just enough JSON for the records the tests feed in and the lines we print. */
    static final class Json {
        static String write(Object o) {
            StringBuilder sb = new StringBuilder();
            write(sb, o);
            return sb.toString();
        }

        private static void write(StringBuilder sb, Object o) {
            if (o == null) {
                sb.append("null");
            } else if (o instanceof String) {
                sb.append('"');
                for (char c : ((String) o).toCharArray()) {
                    switch (c) {
                        case '"': sb.append("\\\""); break;
                        case '\\': sb.append("\\\\"); break;
                        case '\n': sb.append("\\n"); break;
                        case '\r': sb.append("\\r"); break;
                        case '\t': sb.append("\\t"); break;
                        default:
                            if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                            else sb.append(c);
                    }
                }
                sb.append('"');
            } else if (o instanceof Number || o instanceof Boolean) {
                sb.append(o);
            } else if (o instanceof Map) {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    write(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            } else if (o instanceof Collection) {
                sb.append('[');
                boolean first = true;
                for (Object e : (Collection<?>) o) {
                    if (!first) sb.append(',');
                    first = false;
                    write(sb, e);
                }
                sb.append(']');
            } else if (o instanceof Optional) {
                write(sb, ((Optional<?>) o).orElse(null));
            } else {
                write(sb, o.toString());
            }
        }

        static Object parse(String s) {
            Json p = new Json(s);
            p.ws();
            Object v = p.value();
            p.ws();
            if (p.i != s.length()) throw new IllegalArgumentException("trailing data in JSON: " + s);
            return v;
        }

        private final String s;
        private int i;

        private Json(String s) { this.s = s; }

        private void ws() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

        private Object value() {
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                ws();
                if (s.charAt(i) == '}') { i++; return m; }
                while (true) {
                    ws();
                    String k = (String) value();
                    ws();
                    expect(':');
                    ws();
                    m.put(k, value());
                    ws();
                    if (s.charAt(i) == ',') { i++; continue; }
                    expect('}');
                    return m;
                }
            } else if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                ws();
                if (s.charAt(i) == ']') { i++; return l; }
                while (true) {
                    ws();
                    l.add(value());
                    ws();
                    if (s.charAt(i) == ',') { i++; continue; }
                    expect(']');
                    return l;
                }
            } else if (c == '"') {
                StringBuilder sb = new StringBuilder();
                i++;
                while (true) {
                    char d = s.charAt(i++);
                    if (d == '"') return sb.toString();
                    if (d != '\\') { sb.append(d); continue; }
                    char e = s.charAt(i++);
                    switch (e) {
                        case 'n': sb.append('\n'); break;
                        case 't': sb.append('\t'); break;
                        case 'r': sb.append('\r'); break;
                        case 'b': sb.append('\b'); break;
                        case 'f': sb.append('\f'); break;
                        case 'u': sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                        default: sb.append(e);
                    }
                }
            } else if (s.startsWith("null", i)) {
                i += 4;
                return null;
            } else if (s.startsWith("true", i)) {
                i += 4;
                return Boolean.TRUE;
            } else if (s.startsWith("false", i)) {
                i += 5;
                return Boolean.FALSE;
            } else {
                int start = i;
                while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
                String num = s.substring(start, i);
                if (num.contains(".") || num.contains("e") || num.contains("E")) return Double.valueOf(num);
                return Long.valueOf(num);
            }
        }

        private void expect(char c) {
            if (s.charAt(i) != c) throw new IllegalArgumentException("expected '" + c + "' at " + i + " in " + s);
            i++;
        }
    }
}
