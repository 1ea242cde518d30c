import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Consumer-group front end to the Apache Kafka Java client for the group tests; prints one JSON
 * object per line on stdout, like {@link KafkaCli}.
 *
 * <pre>
 * member  --bootstrap B --topic T --group G [--assignor range|roundrobin|cooperative-sticky|server]
 *         [--session-timeout-ms N] [--instance-id I] [--prop k=v]...
 *         Subscribes and polls until stdin says "close" (leave the group and exit) or closes.
 *         Commits synchronously after every non-empty poll (a commit a rebalance refused is
 *         retried after the next poll for the partitions still owned).
 *         prints {"event":"assigned"|"revoked"|"lost","partitions":[p...],"generation":g,"member":id}
 *                {"event":"record","partition","offset","value"}  {"event":"committed","offsets":{p:o}}
 *                {"event":"commit-failed","error"}  {"event":"closed"}
 * groups  --bootstrap B list [--state S]... | describe --group G... | delete --group G...
 *         | list-offsets --group G | alter-offsets --group G --set topic:partition=offset...
 *         | delete-offsets --group G --topic T --partition P...
 *         prints {"event":...} lines; expected admin failures print {"event":"error","error":class}
 * </pre>
 */
public final class GroupCli {

    public static void main(String[] argv) throws Exception {
        System.exit(run(argv));
    }

    /** One run of a command: its exit code (64 for a usage error); ClientServer runs `groups` in one JVM. */
    static int run(String[] argv) throws Exception {
        if (argv.length == 0) {
            System.err.println("usage: GroupCli member|groups ...");
            return 64;
        }
        KafkaCli.Args args = new KafkaCli.Args(Arrays.copyOfRange(argv, 1, argv.length));
        switch (argv[0]) {
            case "member": member(args); break;
            case "groups": groups(args); break;
            default:
                System.err.println("unknown command " + argv[0]);
                return 64;
        }
        System.out.flush();
        return 0;
    }

    static synchronized void emit(Map<String, Object> o) {
        System.out.println(KafkaCli.Json.write(o));
        System.out.flush();
    }

    static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static List<Integer> partitions(Collection<TopicPartition> tps) {
        List<Integer> out = new ArrayList<>();
        for (TopicPartition tp : tps) out.add(tp.partition());
        Collections.sort(out);
        return out;
    }

    static void member(KafkaCli.Args args) throws Exception {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args.required("bootstrap"));
        props.put(ConsumerConfig.GROUP_ID_CONFIG, args.required("group"));
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        String assignor = args.get("assignor", "range");
        String assignorClass;
        switch (assignor) {
            case "range": assignorClass = "org.apache.kafka.clients.consumer.RangeAssignor"; break;
            case "roundrobin": assignorClass = "org.apache.kafka.clients.consumer.RoundRobinAssignor"; break;
            case "cooperative-sticky": assignorClass = "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"; break;
            // The consumer group protocol (KIP-848): the broker assigns.
            case "server": assignorClass = null; break;
            default: throw new IllegalArgumentException("unknown assignor " + assignor);
        }
        if (assignorClass != null) props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignorClass);
        if (args.has("session-timeout-ms")) {
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, args.get("session-timeout-ms"));
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG,
                    String.valueOf(Math.max(100, Integer.parseInt(args.get("session-timeout-ms")) / 6)));
        }
        if (args.has("instance-id")) props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, args.get("instance-id"));
        props.putAll(args.props());
        String topic = args.required("topic");

        AtomicBoolean closing = new AtomicBoolean(false);
        Thread stdin = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    if (line.trim().equals("close")) break;
                }
            } catch (Exception ignored) {
                // stdin gone: close like a "close" command
            }
            closing.set(true);
        });
        stdin.setDaemon(true);
        stdin.start();

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(Collections.singletonList(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
                    emit(obj("event", "revoked", "partitions", partitions(revoked),
                            "time", System.currentTimeMillis()));
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
                    emit(obj("event", "assigned", "partitions", partitions(assigned),
                            "owned", partitions(consumer.assignment()),
                            "generation", consumer.groupMetadata().generationId(),
                            "member", consumer.groupMetadata().memberId(),
                            "time", System.currentTimeMillis()));
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> lost) {
                    emit(obj("event", "lost", "partitions", partitions(lost),
                            "time", System.currentTimeMillis()));
                }
            });
            // Offsets of a commit a rebalance refused, retried for the partitions still owned:
            // a member that commits only after reading would otherwise leave them uncommitted
            // until more records arrive.
            Map<TopicPartition, OffsetAndMetadata> refused = new LinkedHashMap<>();
            while (!closing.get()) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                Map<TopicPartition, OffsetAndMetadata> next = new LinkedHashMap<>();
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e : refused.entrySet()) {
                    if (consumer.assignment().contains(e.getKey())) next.put(e.getKey(), e.getValue());
                }
                refused.clear();
                if (batch.isEmpty() && next.isEmpty()) continue;
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    emit(obj("event", "record", "partition", r.partition(), "offset", r.offset(),
                            "value", r.value() == null ? null : new String(r.value(), StandardCharsets.UTF_8)));
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                try {
                    consumer.commitSync(next);
                    Map<String, Object> offsets = new LinkedHashMap<>();
                    for (Map.Entry<TopicPartition, OffsetAndMetadata> e : next.entrySet()) {
                        offsets.put(String.valueOf(e.getKey().partition()), e.getValue().offset());
                    }
                    emit(obj("event", "committed", "offsets", offsets));
                } catch (CommitFailedException | RebalanceInProgressException e) {
                    emit(obj("event", "commit-failed", "error", e.getClass().getSimpleName()));
                    refused.putAll(next);
                }
            }
        }
        emit(obj("event", "closed"));
    }

    static void groups(KafkaCli.Args args) throws Exception {
        String op = args.positional(0);
        try (Admin admin = KafkaCli.adminClient(args.required("bootstrap"), args)) {
            try {
                groupOp(admin, op, args);
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                emit(obj("event", "error", "error", cause.getClass().getSimpleName(), "message", String.valueOf(cause.getMessage())));
            }
        }
    }

    static void groupOp(Admin admin, String op, KafkaCli.Args args) throws Exception {
        switch (op) {
            case "list": {
                ListConsumerGroupsOptions options = new ListConsumerGroupsOptions();
                Set<ConsumerGroupState> states = new HashSet<>();
                for (String s : args.all("state")) states.add(ConsumerGroupState.parse(s));
                if (!states.isEmpty()) options.inStates(states);
                for (ConsumerGroupListing g : admin.listConsumerGroups(options).all().get()) {
                    emit(obj("event", "group", "group", g.groupId(), "simple", g.isSimpleConsumerGroup(),
                            "state", g.state().map(ConsumerGroupState::toString).orElse(null)));
                }
                emit(obj("event", "done"));
                break;
            }
            case "describe": {
                Map<String, ConsumerGroupDescription> all = admin.describeConsumerGroups(args.all("group")).all().get();
                for (ConsumerGroupDescription d : all.values()) {
                    List<Object> members = new ArrayList<>();
                    for (MemberDescription m : d.members()) {
                        members.add(obj("member", m.consumerId(), "instance", m.groupInstanceId().orElse(null),
                                "client", m.clientId(), "host", m.host(),
                                "partitions", partitions(m.assignment().topicPartitions())));
                    }
                    emit(obj("event", "description", "group", d.groupId(), "state", d.state().toString(),
                            "assignor", d.partitionAssignor(), "simple", d.isSimpleConsumerGroup(),
                            "coordinator", d.coordinator() == null ? null : d.coordinator().id(),
                            "members", members));
                }
                break;
            }
            case "delete": {
                for (String g : args.all("group")) {
                    try {
                        admin.deleteConsumerGroups(Collections.singletonList(g)).all().get();
                        emit(obj("event", "deleted", "group", g));
                    } catch (ExecutionException e) {
                        emit(obj("event", "error", "group", g, "error", e.getCause().getClass().getSimpleName()));
                    }
                }
                break;
            }
            case "list-offsets": {
                Map<TopicPartition, OffsetAndMetadata> offsets =
                        admin.listConsumerGroupOffsets(args.required("group")).partitionsToOffsetAndMetadata().get();
                Map<String, Object> out = new LinkedHashMap<>();
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
                    out.put(e.getKey().topic() + ":" + e.getKey().partition(),
                            e.getValue() == null ? null : e.getValue().offset());
                }
                emit(obj("event", "offsets", "offsets", out));
                break;
            }
            case "alter-offsets": {
                Map<TopicPartition, OffsetAndMetadata> offsets = new LinkedHashMap<>();
                for (Map.Entry<String, String> e : args.keyValues("set").entrySet()) {
                    int colon = e.getKey().lastIndexOf(':');
                    offsets.put(new TopicPartition(e.getKey().substring(0, colon), Integer.parseInt(e.getKey().substring(colon + 1))),
                            new OffsetAndMetadata(Long.parseLong(e.getValue())));
                }
                admin.alterConsumerGroupOffsets(args.required("group"), offsets).all().get();
                emit(obj("event", "altered"));
                break;
            }
            case "delete-offsets": {
                Set<TopicPartition> tps = new HashSet<>();
                for (String p : args.all("partition")) tps.add(new TopicPartition(args.required("topic"), Integer.parseInt(p)));
                admin.deleteConsumerGroupOffsets(args.required("group"), tps).all().get();
                emit(obj("event", "offsets-deleted"));
                break;
            }
            default:
                throw new IllegalArgumentException("unknown groups operation " + op);
        }
    }
}
