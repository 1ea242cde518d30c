//! `trib consume TOPIC`: print records, optionally as a consumer group member that commits
//! what it printed, or as a share group member ([`crate::share_consume`]).

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::args::usage;
use crate::client::{self, check_partitions, find_topic, partition_ids, Settings, TribContext};
use crate::error::{Error, Result};
use crate::output::{write_stdout, Output};
use crate::parse::{parse_offset, parse_partition_list, OffsetSpec, PartitionList};
use crate::share_consume::{AckChoice, ShareOptions};
use crate::template::{Format, Record, TEMPLATE_HELP};

/// Flags of `trib consume`.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("Format escapes: {TEMPLATE_HELP}.\n\n\
    Examples:\n  \
    trib consume orders --from-beginning -e\n  \
    trib consume orders -o -10 -f '%p:%o %k=%v'\n  \
    trib consume orders -g billing --json\n  \
    trib consume orders --share-group workers --ack release -n 10"))]
pub struct ConsumeArgs {
    /// Topic to read
    pub topic: String,
    /// Start at the oldest record (same as --offset oldest)
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Where to start: oldest, newest, N, -N (N records before the end), or @TIME
    /// (@MILLIS, @2024-01-02T03:04:05Z, @-15m) [default: newest, or the group's committed offsets]
    #[arg(short, long, value_parser = parse_offset, allow_hyphen_values = true)]
    pub offset: Option<OffsetSpec>,
    /// Partitions to read, e.g. 0, 0,2 or 0-3 [default: all]
    #[arg(short, long, value_parser = parse_partition_list)]
    pub partition: Option<PartitionList>,
    /// Consume as a member of this group, starting from its committed offsets and committing
    /// what was printed
    #[arg(short, long)]
    pub group: Option<String>,
    /// Consume as a member of this share group (KIP-932): records are shared with the
    /// group's other members, each acknowledged as --ack says
    #[arg(long, value_name = "GROUP", conflicts_with_all = ["group", "offset", "partition", "from_beginning"])]
    pub share_group: Option<String>,
    /// With --share-group: how each printed record is acknowledged (records acquired but not
    /// printed are released)
    #[arg(long, value_enum, default_value = "accept", requires = "share_group")]
    pub ack: AckChoice,
    /// Stop after N records
    #[arg(short = 'n', long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Stop when every partition is read to its end instead of waiting for more (with
    /// --share-group: when a round of fetches acquires nothing)
    #[arg(short, long)]
    pub exit_at_end: bool,
    /// Output: value (default), json, or a template such as '%k=%v' (a newline ends each record)
    #[arg(short, long, value_parser = Format::parse)]
    pub format: Option<Format>,
}

/// How the consumer gets its partitions.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Join the group and let it assign partitions; `reset` is `auto.offset.reset`.
    Subscribe { reset: &'static str },
    /// Read these partitions from these starting points (with a group id, commits too).
    Assign { partitions: Vec<i32>, start: Start },
}

/// Where assigned partitions start.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Start {
    /// The group's committed offsets (falling back to the end).
    Committed,
    /// An explicit spec.
    Spec(OffsetSpec),
}

/// Decides how to consume from the flags: a group without `--partition` subscribes.
fn mode(
    group: Option<&str>,
    partitions: Option<&[i32]>,
    spec: Option<OffsetSpec>,
    all: &[i32],
) -> Result<Mode> {
    match (group, partitions) {
        (Some(_), None) => match spec {
            None | Some(OffsetSpec::Newest) => Ok(Mode::Subscribe { reset: "latest" }),
            Some(OffsetSpec::Oldest) => Ok(Mode::Subscribe { reset: "earliest" }),
            Some(_) => Err(usage(
                "with --group, --offset only picks where a new group starts (oldest or newest); \
                 move a group with `trib group reset-offsets`, or add --partition to read from an \
                 exact offset",
            )),
        },
        (group, partitions) => Ok(Mode::Assign {
            partitions: partitions.map_or_else(|| all.to_vec(), <[i32]>::to_vec),
            start: match (spec, group) {
                (Some(s), _) => Start::Spec(s),
                (None, Some(_)) => Start::Committed,
                (None, None) => Start::Spec(OffsetSpec::Newest),
            },
        }),
    }
}

/// Runs `trib consume`.
pub async fn run(a: ConsumeArgs, settings: &Settings, out: &Output) -> Result<()> {
    let spec = if a.from_beginning {
        Some(OffsetSpec::Oldest)
    } else {
        a.offset
    };
    let format = match (&a.format, out.json) {
        (Some(f), _) => f.clone(),
        (None, true) => Format::json(),
        (None, false) => Format::parse("value").map_err(usage)?,
    };
    if let Some(group) = &a.share_group {
        let options = ShareOptions {
            group: group.clone(),
            ack: a.ack,
            max: a.max_messages,
            exit_when_idle: a.exit_at_end,
        };
        let count = crate::share_consume::run(&a.topic, &options, &format, settings, out).await;
        return match count {
            Ok(count) => {
                if out.stderr_tty && !out.json {
                    out.note(&format!("consumed {count} record(s)"));
                }
                Ok(())
            }
            Err(e) if e.is_broken_pipe() => Ok(()),
            Err(e) => Err(e),
        };
    }
    let group = a.group.as_deref();
    let partitions = a.partition.as_ref().map(|p| p.0.as_slice());
    // Flag conflicts are usage errors, reported before touching the network.
    mode(group, partitions, spec, &[])?;
    let (lookup, md) = client::connect(settings)?;
    let t = find_topic(&md, &a.topic)?;
    if let Some(g) = group {
        client::check_group_support(&lookup, settings, g)?;
    }
    let all = partition_ids(t);
    if let Some(p) = &a.partition {
        check_partitions(t, &p.0)?;
    }
    let mode = mode(group, partitions, spec, &all)?;

    let reset = match &mode {
        Mode::Subscribe { reset } => *reset,
        Mode::Assign { .. } => "latest",
    };
    let mut defaults = vec![
        ("enable.auto.offset.store", "false".to_string()),
        ("enable.auto.commit", a.group.is_some().to_string()),
        ("auto.offset.reset", reset.to_string()),
        ("allow.auto.create.topics", "false".to_string()),
    ];
    if a.exit_at_end {
        defaults.push(("enable.partition.eof", "true".to_string()));
    }
    let group = a.group.clone().unwrap_or_else(client::ephemeral_group);
    let flags = vec![("group.id", group)];
    let consumer: StreamConsumer<TribContext> =
        settings.create(&settings.config_with(&defaults, &flags))?;

    match &mode {
        Mode::Subscribe { .. } => consumer
            .subscribe(&[&a.topic])
            .map_err(|e| Error::kafka(format!("subscribe to '{}'", a.topic), e))?,
        Mode::Assign { partitions, start } => {
            let tpl = start_offsets(&consumer, settings, &a.topic, partitions, *start)?;
            consumer
                .assign(&tpl)
                .map_err(|e| Error::kafka(format!("read '{}'", a.topic), e))?;
        }
    }

    let result = consume_loop(&consumer, &a, &mode, &format, settings, out).await;
    if a.group.is_some() {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                let e = Error::kafka("commit the group's offsets", e);
                return Err(match result {
                    Err(first) if !first.is_broken_pipe() => first,
                    _ => e,
                });
            }
        }
    }
    let count = match result {
        Ok(n) => n,
        Err(e) if e.is_broken_pipe() => return Ok(()),
        Err(e) => return Err(e),
    };
    if out.stderr_tty && !out.json {
        out.note(&format!("consumed {count} record(s)"));
    }
    Ok(())
}

/// The assignment for `partitions` starting at `start`.
fn start_offsets(
    consumer: &StreamConsumer<TribContext>,
    settings: &Settings,
    topic: &str,
    partitions: &[i32],
    start: Start,
) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    let offset = match start {
        Start::Committed => Offset::Stored,
        Start::Spec(OffsetSpec::Oldest) => Offset::Beginning,
        Start::Spec(OffsetSpec::Newest) => Offset::End,
        Start::Spec(OffsetSpec::Absolute(n)) => Offset::Offset(n),
        Start::Spec(OffsetSpec::FromEnd(n)) => Offset::OffsetTail(n),
        Start::Spec(OffsetSpec::Timestamp(ts)) => {
            return offsets_for_time(consumer, settings, topic, partitions, ts)
        }
    };
    for p in partitions {
        tpl.add_partition_offset(topic, *p, offset)
            .map_err(|e| Error::kafka("build the assignment", e))?;
    }
    Ok(tpl)
}

/// The first offset at or after `ts` in each partition (the end where there is none).
pub fn offsets_for_time<C: Consumer<TribContext>>(
    consumer: &C,
    settings: &Settings,
    topic: &str,
    partitions: &[i32],
    ts: i64,
) -> Result<TopicPartitionList> {
    let mut query = TopicPartitionList::new();
    for p in partitions {
        query
            .add_partition_offset(topic, *p, Offset::Offset(ts))
            .map_err(|e| Error::kafka("build the offset query", e))?;
    }
    let found = consumer
        .offsets_for_times(query, settings.timeout)
        .map_err(|e| Error::kafka(format!("look up offsets by time in '{topic}'"), e))?;
    let mut tpl = TopicPartitionList::new();
    for el in found.elements() {
        if let Some(e) = el.error().err() {
            return Err(Error::kafka(
                format!("look up offsets by time in {topic}/{}", el.partition()),
                e,
            ));
        }
        let offset = match el.offset() {
            Offset::Offset(o) if o >= 0 => Offset::Offset(o),
            _ => Offset::End,
        };
        tpl.add_partition_offset(topic, el.partition(), offset)
            .map_err(|e| Error::kafka("build the assignment", e))?;
    }
    Ok(tpl)
}

/// Codes that a running consumer rides out (librdkafka reconnects by itself).
fn is_transient(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::NotLeaderForPartition
            | C::LeaderNotAvailable
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::NetworkException
            | C::Resolve
    )
}

/// Prints records until Ctrl-C, `--max-messages`, or (with `--exit-at-end`) the end of every
/// partition. Returns how many records were printed.
async fn consume_loop(
    consumer: &StreamConsumer<TribContext>,
    a: &ConsumeArgs,
    mode: &Mode,
    format: &Format,
    settings: &Settings,
    out: &Output,
) -> Result<u64> {
    let mut count = 0u64;
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let mut warned = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // A group join can take a while; say so once instead of waiting silently.
    let join_warning = tokio::time::sleep(settings.timeout);
    tokio::pin!(join_warning);
    let mut join_warned = !matches!(mode, Mode::Subscribe { .. });
    let mut headers: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    loop {
        if a.max_messages.is_some_and(|max| count >= max) {
            return Ok(count);
        }
        let msg = tokio::select! {
            _ = &mut ctrl_c => return Ok(count),
            _ = &mut join_warning, if !join_warned => {
                join_warned = true;
                if consumer.assignment().is_ok_and(|a| a.count() == 0) {
                    out.warn(&format!(
                        "still waiting for group '{}' to assign partitions after {}; \
                         the group coordinator may be slow or unavailable",
                        a.group.as_deref().unwrap_or_default(),
                        humantime::format_duration(settings.timeout)
                    ));
                }
                continue;
            }
            m = consumer.recv() => m,
        };
        match msg {
            Ok(m) => {
                at_end.remove(&m.partition());
                headers.clear();
                if let Some(h) = m.headers() {
                    headers.extend(
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))),
                    );
                }
                let record = Record {
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis(),
                    key: m.key(),
                    value: m.payload(),
                    headers: &headers,
                };
                write_stdout(&format.render(&record))?;
                count += 1;
                if a.group.is_some() {
                    consumer
                        .store_offset_from_message(&m)
                        .map_err(|e| Error::kafka("store the consumed offset", e))?;
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                at_end.insert(p);
                if a.exit_at_end && all_at_end(consumer, mode, &a.topic, &at_end) {
                    return Ok(count);
                }
            }
            Err(e) => match e.rdkafka_error_code() {
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ) => {
                    return Err(Error::UnknownTopic {
                        topic: a.topic.clone(),
                    })
                }
                Some(code) if is_transient(code) => {
                    if !warned {
                        out.warn(&format!("{e}; retrying"));
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => return Err(Error::kafka(format!("consume from '{}'", a.topic), e)),
            },
        }
    }
}

/// Whether every partition the consumer reads has reported its end.
fn all_at_end(
    consumer: &StreamConsumer<TribContext>,
    mode: &Mode,
    topic: &str,
    at_end: &BTreeSet<i32>,
) -> bool {
    let assigned: Vec<i32> = match mode {
        Mode::Assign { partitions, .. } => partitions.clone(),
        Mode::Subscribe { .. } => match consumer.assignment() {
            Ok(tpl) => tpl
                .elements_for_topic(topic)
                .iter()
                .map(|e| e.partition())
                .collect(),
            Err(_) => return false,
        },
    };
    !assigned.is_empty() && assigned.iter().all(|p| at_end.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_without_partitions_subscribes() {
        assert_eq!(
            mode(Some("g"), None, None, &[0, 1]).ok(),
            Some(Mode::Subscribe { reset: "latest" })
        );
        assert_eq!(
            mode(Some("g"), None, Some(OffsetSpec::Oldest), &[0]).ok(),
            Some(Mode::Subscribe { reset: "earliest" })
        );
    }

    #[test]
    fn a_group_cannot_start_at_an_exact_offset_when_subscribing() {
        let e = mode(Some("g"), None, Some(OffsetSpec::Absolute(5)), &[0]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("reset-offsets"), "{e}");
    }

    #[test]
    fn without_a_group_every_partition_is_read_from_the_end() {
        assert_eq!(
            mode(None, None, None, &[0, 1]).ok(),
            Some(Mode::Assign {
                partitions: vec![0, 1],
                start: Start::Spec(OffsetSpec::Newest)
            })
        );
    }

    #[test]
    fn a_group_with_partitions_starts_from_its_commits() {
        assert_eq!(
            mode(Some("g"), Some(&[1]), None, &[0, 1]).ok(),
            Some(Mode::Assign {
                partitions: vec![1],
                start: Start::Committed
            })
        );
        assert_eq!(
            mode(
                Some("g"),
                Some(&[1]),
                Some(OffsetSpec::Absolute(3)),
                &[0, 1]
            )
            .ok(),
            Some(Mode::Assign {
                partitions: vec![1],
                start: Start::Spec(OffsetSpec::Absolute(3))
            })
        );
    }
}
