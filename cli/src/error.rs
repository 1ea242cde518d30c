//! The errors `trib` reports. Each message says what went wrong and how to fix it; each error
//! maps to an exit code (2 for usage errors, 1 for broker and runtime errors).

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Exit code for errors in how trib was invoked (clap uses the same code).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for errors reported by the broker or the environment.
pub const EXIT_FAILURE: u8 = 1;

/// Everything that can go wrong in a trib command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is inconsistent in a way clap cannot express.
    #[error("{0}")]
    Usage(String),

    /// librdkafka refused a `-X` setting.
    #[error(
        "invalid client setting: {reason}\n\
         hint: check the -X key=value settings; librdkafka's CONFIGURATION.md lists every property"
    )]
    ClientConfig {
        /// librdkafka's description of the problem.
        reason: String,
    },

    /// No bootstrap broker answered.
    #[error(
        "cannot reach a broker at {brokers}: {detail}\n\
         hint: check that the broker is running and reachable, or point trib at it with \
         --brokers HOST:PORT (or TRIB_BROKERS)"
    )]
    Unreachable {
        /// The bootstrap list that was tried.
        brokers: String,
        /// The last connection error librdkafka reported.
        detail: String,
    },

    /// SASL authentication failed.
    #[error(
        "authentication with {brokers} failed: {detail}\n\
         hint: check -X security.protocol, sasl.mechanism, sasl.username and sasl.password"
    )]
    Authentication {
        /// The bootstrap list that was tried.
        brokers: String,
        /// librdkafka's description of the failure.
        detail: String,
    },

    /// The TLS handshake failed.
    #[error(
        "TLS connection to {brokers} failed: {detail}\n\
         hint: check -X security.protocol=SSL (or SASL_SSL) and ssl.ca.location, or drop TLS \
         settings if the listener is plaintext"
    )]
    Tls {
        /// The bootstrap list that was tried.
        brokers: String,
        /// librdkafka's description of the failure.
        detail: String,
    },

    /// The broker refused the operation for lack of permissions.
    #[error(
        "not authorized to {action} ({code})\n\
         hint: ask an administrator for the ACL, or connect as another principal with \
         -X sasl.username=... -X sasl.password=..."
    )]
    NotAuthorized {
        /// What trib was trying to do.
        action: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },

    /// The topic does not exist.
    #[error(
        "topic '{topic}' does not exist\n\
         hint: list topics with `trib topic list`, or create it with `trib topic create {topic}`"
    )]
    UnknownTopic {
        /// The topic name.
        topic: String,
    },

    /// The topic to create already exists.
    #[error(
        "topic '{topic}' already exists\n\
         hint: inspect it with `trib topic describe {topic}`, or pass --if-not-exists"
    )]
    TopicExists {
        /// The topic name.
        topic: String,
    },

    /// A partition number is out of range for the topic.
    #[error(
        "topic '{topic}' has no partition {partition} (it has {count})\n\
         hint: partitions are numbered from 0; add more with `trib topic add-partitions`"
    )]
    UnknownPartition {
        /// The topic name.
        topic: String,
        /// The requested partition.
        partition: i32,
        /// How many partitions the topic has.
        count: usize,
    },

    /// The consumer group does not exist.
    #[error("consumer group '{group}' does not exist\nhint: list groups with `trib group list`")]
    UnknownGroup {
        /// The group id.
        group: String,
    },

    /// The operation needs an empty group but the group has members.
    #[error(
        "consumer group '{group}' is {state} with {members} active member(s)\n\
         hint: stop the group's consumers first; offsets can only be reset, and a group \
         deleted, while it is empty"
    )]
    GroupActive {
        /// The group id.
        group: String,
        /// The group state the broker reported.
        state: String,
        /// How many members the group has.
        members: usize,
    },

    /// The broker did not answer in time.
    #[error(
        "timed out after {} while trying to {action}\n\
         hint: the broker may be overloaded or unreachable; raise --timeout if it is just slow",
        humantime::format_duration(*timeout)
    )]
    Timeout {
        /// What trib was trying to do.
        action: String,
        /// How long trib waited.
        timeout: Duration,
    },

    /// The broker answered with an error code.
    #[error("could not {action}: {code}{}", hint_suffix(hint))]
    Broker {
        /// What trib was trying to do.
        action: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
        /// How to fix it, when trib knows.
        hint: Option<String>,
    },

    /// A broker refused a request trib made over the Kafka protocol itself.
    #[error("could not {action}: {error}")]
    Refused {
        /// What trib was trying to do.
        action: String,
        /// The broker's error, with its code.
        error: String,
    },

    /// A broker's answer to a request trib made itself could not be read.
    #[error("broker {broker} answered in a way trib cannot read: {detail}")]
    Protocol {
        /// The broker.
        broker: String,
        /// What was wrong.
        detail: String,
    },

    /// librdkafka failed in a way not covered above.
    #[error("could not {action}: {source}")]
    Kafka {
        /// What trib was trying to do.
        action: String,
        /// The client error.
        #[source]
        source: KafkaError,
    },

    /// Some records were not acknowledged.
    #[error(
        "{failed} of {total} record(s) were not produced; first error: {first}\n\
         hint: records that failed are listed above; check the topic and partition exist and \
         the broker is healthy"
    )]
    ProduceFailed {
        /// Records that failed.
        failed: u64,
        /// Records attempted.
        total: u64,
        /// The first delivery error.
        first: String,
    },

    /// A benchmark or consumer ran out of records before its target.
    #[error(
        "only {got} of {wanted} records arrived before the consumer was idle for {}\n\
         hint: produce more records first (e.g. `trib bench produce`), or raise --timeout",
        humantime::format_duration(*idle)
    )]
    Incomplete {
        /// Records received.
        got: u64,
        /// Records wanted.
        wanted: u64,
        /// How long trib waited without a record.
        idle: Duration,
    },

    /// The schema registry could not be reached or did not answer in time.
    #[error(
        "cannot reach the schema registry at {url}: {detail}\n\
         hint: check that it is running, or point trib at it with --registry URL (or \
         TRIB_SCHEMA_REGISTRY)"
    )]
    RegistryUnreachable {
        /// The registry URL tried.
        url: String,
        /// What failed.
        detail: String,
    },

    /// The schema registry answered with an error (Confluent's `error_code` and message).
    #[error("could not {action}: {message} (error {code}){}", hint_suffix(hint))]
    Registry {
        /// What trib was trying to do.
        action: String,
        /// The registry's `error_code` (40401, 409, 42201, 50004...).
        code: i64,
        /// The registry's message.
        message: String,
        /// How to fix it, when trib knows.
        hint: Option<String>,
    },

    /// A schema is not compatible with the versions it was checked against (the reasons were
    /// printed).
    #[error("the schema is not compatible with {subject} ({against})")]
    Incompatible {
        /// The subject.
        subject: String,
        /// What it was checked against.
        against: String,
    },

    /// Reading input or writing output failed.
    #[error("{what}: {source}")]
    Io {
        /// What trib was doing.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\nhint: {h}"))
        .unwrap_or_default()
}

/// `Result` with trib's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::ClientConfig { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// A short stable name for the kind of error, used in `--json` error output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::ClientConfig { .. } => "client_config",
            Error::Unreachable { .. } => "unreachable",
            Error::Authentication { .. } => "authentication",
            Error::Tls { .. } => "tls",
            Error::NotAuthorized { .. } => "not_authorized",
            Error::UnknownTopic { .. } => "unknown_topic",
            Error::TopicExists { .. } => "topic_exists",
            Error::UnknownPartition { .. } => "unknown_partition",
            Error::UnknownGroup { .. } => "unknown_group",
            Error::GroupActive { .. } => "group_active",
            Error::Timeout { .. } => "timeout",
            Error::Broker { .. } => "broker",
            Error::Kafka { .. } => "client",
            Error::Refused { .. } => "broker",
            Error::Protocol { .. } => "protocol",
            Error::ProduceFailed { .. } => "produce_failed",
            Error::Incomplete { .. } => "incomplete",
            Error::Io { .. } => "io",
            Error::RegistryUnreachable { .. } => "registry_unreachable",
            Error::Registry { .. } => "registry",
            Error::Incompatible { .. } => "incompatible",
        }
    }

    /// Whether this is a write to a closed pipe (`trib consume | head`), which ends the
    /// command quietly rather than as an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Wraps a client error, turning the common cases into their specific variants.
    pub fn kafka(action: impl Into<String>, source: KafkaError) -> Error {
        let action = action.into();
        match source {
            KafkaError::ClientConfig(_, ref desc, ref key, ref value) => Error::ClientConfig {
                reason: if key.is_empty() {
                    desc.clone()
                } else {
                    format!("{key}={value}: {desc}")
                },
            },
            KafkaError::ClientCreation(ref desc) => Error::ClientConfig {
                reason: desc.clone(),
            },
            KafkaError::AdminOp(code) => Error::code(action, code),
            _ => match source.rdkafka_error_code() {
                Some(code) => Error::code(action, code),
                None => Error::Kafka { action, source },
            },
        }
    }

    /// Turns a broker error code into an error, with a hint for the codes users meet.
    pub fn code(action: impl Into<String>, code: RDKafkaErrorCode) -> Error {
        use RDKafkaErrorCode as C;
        let action = action.into();
        let hint = match code {
            C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::DelegationTokenAuthorizationFailed => {
                return Error::NotAuthorized { action, code };
            }
            C::InvalidReplicationFactor => {
                "the replication factor cannot exceed the number of brokers (see `trib cluster info`)"
            }
            C::InvalidPartitions => {
                "partition counts must be positive and can only grow; see `trib topic describe`"
            }
            C::InvalidConfig => "check the config names and values (`trib topic describe` lists them)",
            C::InvalidTopic => {
                "topic names use letters, digits, '.', '_' and '-', at most 249 characters"
            }
            C::PolicyViolation => "the broker's policy forbids this; ask its administrator",
            C::MessageSizeTooLarge => {
                "the record is larger than the broker or topic allows (max.message.bytes)"
            }
            C::NotEnoughReplicas | C::NotEnoughReplicasAfterAppend => {
                "fewer in-sync replicas than min.insync.replicas; use --acks 1 or fix the replicas"
            }
            C::UnsupportedVersion | C::InvalidRequest | C::UnsupportedFeature => {
                "the broker does not implement the Kafka API this needs"
            }
            C::NonEmptyGroup => "stop the group's consumers first",
            C::OperationTimedOut | C::RequestTimedOut => {
                "the broker did not answer in time; raise --timeout or check the broker"
            }
            C::BrokerTransportFailure | C::AllBrokersDown => {
                "check the broker is running and --brokers is right"
            }
            _ => "",
        };
        Error::Broker {
            action,
            code,
            hint: (!hint.is_empty()).then(|| hint.to_string()),
        }
    }

    /// An I/O error with what trib was doing.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_config_errors_exit_2_everything_else_1() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::ClientConfig { reason: "x".into() }.exit_code(), 2);
        assert_eq!(Error::UnknownTopic { topic: "t".into() }.exit_code(), 1);
        assert_eq!(
            Error::code("create topic", RDKafkaErrorCode::InvalidPartitions).exit_code(),
            1
        );
    }

    #[test]
    fn authorization_codes_become_not_authorized() {
        let e = Error::code("read topic 'x'", RDKafkaErrorCode::TopicAuthorizationFailed);
        assert_eq!(e.kind(), "not_authorized");
        assert!(e.to_string().contains("sasl.username"), "{e}");
    }

    #[test]
    fn messages_carry_a_hint() {
        let e = Error::UnknownTopic {
            topic: "orders".into(),
        };
        assert!(e.to_string().contains("trib topic create orders"), "{e}");
        let e = Error::code(
            "create topic 'x'",
            RDKafkaErrorCode::InvalidReplicationFactor,
        );
        assert!(e.to_string().contains("hint:"), "{e}");
        let e = Error::code("x", RDKafkaErrorCode::Unknown);
        assert!(!e.to_string().contains("hint:"), "{e}");
    }

    #[test]
    fn client_config_errors_from_librdkafka_are_usage_errors() {
        let e = Error::kafka(
            "create client",
            KafkaError::ClientConfig(
                rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
                "No such configuration property".into(),
                "bogus".into(),
                "1".into(),
            ),
        );
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("bogus=1"), "{e}");
    }
}
