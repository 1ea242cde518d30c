//! `KafkaPartition`: one partition of a topic, the state ZooKeeper's partition znode holds in
//! Apache Kafka (its PartitionRegistration in KRaft). `spec.replicas` is the assignment, written
//! by the operator; `status` is leadership and the in-sync replicas, written by the controller
//! (the active operator) at elections and by the partition's leader when the ISR changes.
//!
//! One object per partition keeps every object small (etcd caps objects at 1.5 MiB) and keeps
//! writes from conflicting across partitions: an ISR change of one partition never retries
//! because another changed. Objects are named `<kafkatopic>-<partition>` and owned by their
//! KafkaTopic, so deleting the topic deletes them.
//!
//! # Who writes what, and how
//!
//! Every write is a replace (or patch) carrying the `resourceVersion` the writer read, and a
//! status write also checks `partitionEpoch`: a writer that read an older epoch re-reads and
//! decides again, never overwrites. Each write raises `partitionEpoch`; elections raise
//! `leaderEpoch` too. Nothing here changes with offsets or high watermarks: the API server is
//! a coordination store, written on transitions only.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::topic::MAX_REPLICATION_FACTOR;

/// Leader id of a partition that has none.
pub const NO_LEADER: i32 = -1;

/// Annotation asking the controller for a leader election of this partition: Kafka's
/// ElectLeaders (KIP-460) as a Kubernetes object. The value is an [`ElectionType`]
/// (`preferred` or `unclean`). A broker serving ElectLeaders sets it with a conditional
/// update, and a human with a patch
/// (`kubectl annotate kp orders-0 tributary.dev/elect-leader=preferred`).
///
/// The contract:
/// - The controller acts on it at its next pass over the partition, once the failover rules
///   leave the partition as it is (a dead or shutting-down leader is replaced first; each status
///   write makes one change, so epochs rise once per change).
/// - `preferred`: if the first replica of `spec.replicas` is alive (the controller has seen its
///   Lease renewed), not shutting down, in the ISR under its current incarnation and not the
///   leader, it becomes the leader (leader and partition epochs + 1, ISR unchanged), whatever
///   `auto.leader.rebalance.enable` and the imbalance threshold say.
/// - `unclean`: if the partition has no leader, the first live replica in assignment order that
///   is not shutting down leads alone in the ISR even if it was not in it (as
///   `unclean.leader.election.enable` would; records acknowledged by the old ISR may be lost).
///   A partition with a leader is left as it is.
/// - Then the controller removes the annotation (a write conditional on the resourceVersion it
///   read, so a request made meanwhile is decided again, not dropped). It removes it too when the
///   request cannot be satisfied or its value is not an [`ElectionType`], with a Warning Event on
///   the KafkaPartition saying why.
/// - The requester waits for the annotation to go, then reads `status`: a `preferred` request
///   succeeded if `status.leader` is the first replica (else Kafka's
///   PREFERRED_LEADER_NOT_AVAILABLE), an `unclean` one if `status.leader` is not -1 (else
///   ELIGIBLE_LEADERS_NOT_AVAILABLE). ELECTION_NOT_NEEDED is for the requester to tell before
///   asking, as Kafka's controller does: the preferred replica already leads, or (unclean) the
///   partition has a leader.
pub const ELECT_LEADER_ANNOTATION: &str = "tributary.dev/elect-leader";

/// The elections [`ELECT_LEADER_ANNOTATION`] asks for, as in Kafka's ElectLeaders request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ElectionType {
    /// Move leadership to the preferred (first) replica if it is an eligible ISR member.
    Preferred,
    /// Elect any live replica of a partition without a leader, in or out of the ISR.
    Unclean,
}

impl ElectionType {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            ElectionType::Preferred => "preferred",
            ElectionType::Unclean => "unclean",
        }
    }

    /// The election an annotation value names, if it names one.
    pub fn parse(value: &str) -> Option<ElectionType> {
        match value {
            "preferred" => Some(ElectionType::Preferred),
            "unclean" => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// A partition's assignment.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaPartition",
    namespaced,
    status = "KafkaPartitionStatus",
    derive = "PartialEq",
    shortname = "kp",
    category = "tributary",
    doc = "One partition of a KafkaTopic: its replicas, leader, epochs and in-sync replicas.",
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(name = "Partition", type_ = "integer", json_path = ".spec.partition"),
    printcolumn(name = "Leader", type_ = "integer", json_path = ".status.leader"),
    printcolumn(name = "Epoch", type_ = "integer", json_path = ".status.leaderEpoch"),
    printcolumn(name = "ISR", type_ = "string", json_path = ".status.isr[*].brokerId"),
    printcolumn(
        name = "Replicas",
        type_ = "string",
        json_path = ".spec.replicas",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaPartitionSpec {
    /// Name of the KafkaCluster (same namespace) hosting the partition.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: String,

    /// Kafka topic name.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("topic is immutable"))]
    pub topic: String,

    /// Kafka topic id (22-character URL-safe base64), from the KafkaTopic's UID.
    #[schemars(length(min = 22, max = 22))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("topicId is immutable"))]
    pub topic_id: String,

    /// Partition number.
    #[schemars(range(min = 0, max = 9999))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("partition is immutable"))]
    pub partition: i32,

    /// Broker ids holding a replica; the first is the preferred leader. While a reassignment
    /// is in progress (see [`Assignment`]): the target replicas, then those being removed.
    #[schemars(length(min = 1, max = 14))]
    #[x_kube(validation = kube::core::Rule::new("self.all(b, b >= 0)").message("broker ids are not negative"))]
    #[x_kube(validation = kube::core::Rule::new("self.all(b, self.exists_one(c, c == b))").message("replicas are distinct brokers"))]
    pub replicas: Vec<i32>,

    /// Replicas a reassignment in progress adds: in `replicas`, not yet in the ISR of the
    /// target (Kafka's addingReplicas, KIP-455). Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub adding_replicas: Vec<i32>,

    /// Replicas a reassignment in progress removes once the target replicas are in sync: the
    /// tail of `replicas` (Kafka's removingReplicas, KIP-455). Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub removing_replicas: Vec<i32>,
}

/// The replica lists of a partition's spec, as a reassignment writes them.
///
/// # The reassignment contract
///
/// How partition reassignments (Kafka's AlterPartitionReassignments, KIP-455) are recorded in
/// a KafkaPartition's spec: the one contract that the Kafka API, scale-out rebalancing,
/// scale-in draining and replication-factor changes all go through.
///
/// - **Start** (any writer with update on `kafkapartitions`: a broker serving
///   AlterPartitionReassignments, the operator's planners, a human): from the replicas `C`
///   read, to target `T` (distinct, registered broker ids), ONE spec write carrying the
///   resourceVersion read: `replicas = T ++ (C − T)`, `addingReplicas = T − C`,
///   `removingReplicas = C − T` ([`KafkaPartitionSpec::start_reassignment`], which checks
///   `T` first). A reassignment
///   already in progress is replaced the same way, from the current `replicas` (which
///   include the previous one's adding replicas), as Kafka's controller does; those of its
///   adding replicas that the new target keeps stay in `addingReplicas`. A target equal
///   to `C` as a set only reorders `replicas` and leaves both lists empty.
/// - **Catching up**: every broker in `replicas` hosts a replica; an adding one follows the
///   leader and joins the ISR by the leader's normal expansion rule. Removing replicas stay
///   in the ISR meanwhile, so the ISR never shrinks below what acknowledged records relied on
///   (KIP-497).
/// - **Completion** (only the controller): once every target replica is in the ISR under
///   its current incarnation and the partition has a leader, first a status write: the ISR
///   loses the removing replicas, and a removed leader is replaced by a target replica of
///   the ISR (leader epoch + 1; partition epoch + 1 in any case); then a spec write:
///   `replicas = T`, both lists cleared. A broker deletes its replica only once `replicas`
///   no longer lists it (Kafka's StopReplica with delete).
/// - **Cancel** (any writer, as for start): `replicas = replicas − addingReplicas`, both lists
///   cleared ([`KafkaPartitionSpec::cancelled`]); the controller then drops the adding
///   replicas from the ISR (and re-elects if one of them led). A cancel that would leave no
///   ISR member among the original replicas is refused by the requester (it would need an
///   unclean election).
/// - Each write is conditional on the resourceVersion read; a writer that loses a race
///   re-reads and decides again, never overwrites ([`crate::update`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    /// `spec.replicas`.
    pub replicas: Vec<i32>,
    /// `spec.addingReplicas`.
    pub adding: Vec<i32>,
    /// `spec.removingReplicas`.
    pub removing: Vec<i32>,
}

impl KafkaPartitionSpec {
    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas once the reassignment in progress (if any) completes, in order.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    /// The replicas before the reassignment in progress (if any), in order.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding_replicas.contains(r))
            .collect()
    }

    /// The lists a reassignment to `target` leaves, once `target` is checked against what a
    /// KafkaPartition may hold; `None` when they are the lists already there (nothing to
    /// write). The one way writers start or replace a reassignment (see [`Assignment`]), so
    /// a target the contract forbids is refused here rather than by the API server.
    pub fn reassignment(&self, target: &[i32]) -> Result<Option<Assignment>, AssignmentError> {
        check_target(target)?;
        let next = self.reassigned_to(target);
        let unchanged = next.replicas == self.replicas
            && next.adding == self.adding_replicas
            && next.removing == self.removing_replicas;
        Ok((!unchanged).then_some(next))
    }

    /// Starts (or replaces) a reassignment to `target` in this spec by
    /// [`KafkaPartitionSpec::reassignment`]; returns whether the spec changed.
    pub fn start_reassignment(&mut self, target: &[i32]) -> Result<bool, AssignmentError> {
        let next = self.reassignment(target)?;
        let changed = next.is_some();
        if let Some(next) = next {
            self.set_assignment(next);
        }
        Ok(changed)
    }

    /// The lists that start a reassignment from the current replicas to `target` (see
    /// [`Assignment`]), unchecked: writers go through [`KafkaPartitionSpec::reassignment`].
    pub fn reassigned_to(&self, target: &[i32]) -> Assignment {
        let current = &self.replicas;
        let removing: Vec<i32> = current
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect();
        // A replica the reassignment being replaced was adding stays an adding one: it may
        // not have caught up yet.
        let adding: Vec<i32> = target
            .iter()
            .copied()
            .filter(|r| !current.contains(r) || self.adding_replicas.contains(r))
            .collect();
        let mut replicas = target.to_vec();
        replicas.extend(&removing);
        Assignment {
            replicas,
            adding,
            removing,
        }
    }

    /// The lists that cancel the reassignment in progress: the original replicas.
    pub fn cancelled(&self) -> Assignment {
        Assignment {
            replicas: self.original_replicas(),
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// Writes `a` into this spec.
    pub fn set_assignment(&mut self, a: Assignment) {
        self.replicas = a.replicas;
        self.adding_replicas = a.adding;
        self.removing_replicas = a.removing;
    }
}

/// Why a reassignment target cannot be recorded in a KafkaPartition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// A partition needs a replica.
    #[error("the replica list is empty")]
    Empty,
    /// More replicas than a partition may have.
    #[error("at most {max} replicas per partition")]
    TooMany {
        /// The most a partition may have.
        max: usize,
    },
    /// A negative number is no broker id.
    #[error("{0} is not a broker id")]
    Negative(i32),
    /// A broker holds at most one replica of a partition.
    #[error("broker {0} is listed twice")]
    Duplicate(i32),
}

/// Checks `target` against what the KafkaPartition schema accepts for a target.
fn check_target(target: &[i32]) -> Result<(), AssignmentError> {
    let max = usize::try_from(MAX_REPLICATION_FACTOR).unwrap_or(usize::MAX);
    if target.is_empty() {
        return Err(AssignmentError::Empty);
    }
    if target.len() > max {
        return Err(AssignmentError::TooMany { max });
    }
    for (i, &b) in target.iter().enumerate() {
        if b < 0 {
            return Err(AssignmentError::Negative(b));
        }
        if target[..i].contains(&b) {
            return Err(AssignmentError::Duplicate(b));
        }
    }
    Ok(())
}

/// A member of the in-sync replica set: the broker and the incarnation that caught up. A
/// broker restarted since (a new incarnation, possibly with an empty disk) is not in sync
/// until it catches up again (KIP-841, KIP-903).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct IsrEntry {
    /// Broker id.
    pub broker_id: i32,
    /// The broker's incarnation epoch when it joined the ISR.
    pub broker_epoch: i64,
}

/// Leadership and in-sync replicas of a partition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaPartitionStatus {
    /// Current leader, or -1.
    pub leader: i32,
    /// Raised at every leadership change; fences requests of older leaders.
    pub leader_epoch: i32,
    /// Raised at every change of this status; writers compare it.
    pub partition_epoch: i32,
    /// In-sync replicas with their incarnations (during a reassignment, up to the target and
    /// the removed replicas together).
    #[serde(default)]
    #[schemars(length(max = 14))]
    pub isr: Vec<IsrEntry>,
}

const _: () = assert!(
    MAX_REPLICATION_FACTOR == 7,
    "keep the schema's max length in step"
);

impl KafkaPartition {
    /// The object name of partition `partition` of the KafkaTopic named `kafka_topic`.
    pub fn object_name(kafka_topic: &str, partition: i32) -> String {
        format!("{kafka_topic}-{partition}")
    }

    /// The value of the [`ELECT_LEADER_ANNOTATION`] request on this partition, if any.
    pub fn election_request(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(ELECT_LEADER_ANNOTATION)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_types_round_trip_through_their_annotation_values() {
        for t in [ElectionType::Preferred, ElectionType::Unclean] {
            assert_eq!(ElectionType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ElectionType::parse("PREFERRED"), None);
        assert_eq!(ElectionType::parse(""), None);
    }

    #[test]
    fn the_election_request_is_read_from_the_annotation() {
        let mut p = KafkaPartition::new(
            "t-0",
            KafkaPartitionSpec {
                cluster_ref: "demo".into(),
                topic: "t".into(),
                topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                partition: 0,
                replicas: vec![0],
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        );
        assert_eq!(p.election_request(), None);
        p.metadata.annotations =
            Some([(ELECT_LEADER_ANNOTATION.to_owned(), "unclean".to_owned())].into());
        assert_eq!(p.election_request(), Some("unclean"));
    }

    fn spec(replicas: &[i32], adding: &[i32], removing: &[i32]) -> KafkaPartitionSpec {
        KafkaPartitionSpec {
            cluster_ref: "demo".into(),
            topic: "t".into(),
            topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            partition: 0,
            replicas: replicas.to_vec(),
            adding_replicas: adding.to_vec(),
            removing_replicas: removing.to_vec(),
        }
    }

    #[test]
    fn a_reassignment_lists_the_target_first_then_the_replicas_it_removes() {
        let settled = spec(&[0, 1, 2], &[], &[]);
        assert!(!settled.is_reassigning());
        let moving = settled.reassigned_to(&[1, 2, 3]);
        assert_eq!(
            moving,
            Assignment {
                replicas: vec![1, 2, 3, 0],
                adding: vec![3],
                removing: vec![0],
            }
        );
        let mut s = settled.clone();
        s.set_assignment(moving);
        assert!(s.is_reassigning());
        assert_eq!(s.target_replicas(), [1, 2, 3]);
        assert_eq!(s.original_replicas(), [1, 2, 0]);
        assert_eq!(s.cancelled().replicas, [1, 2, 0]);

        // Asked again: nothing changes.
        assert_eq!(
            s.reassigned_to(&[1, 2, 3]),
            Assignment {
                replicas: vec![1, 2, 3, 0],
                adding: vec![3],
                removing: vec![0],
            }
        );
        // Replaced while in progress: from the current replicas, adding ones included.
        let again = s.reassigned_to(&[2, 4]);
        assert_eq!(
            again,
            Assignment {
                replicas: vec![2, 4, 1, 3, 0],
                adding: vec![4],
                removing: vec![1, 3, 0],
            }
        );
        // Growing the replication factor removes nothing; reordering adds nothing.
        assert_eq!(
            spec(&[0], &[], &[]).reassigned_to(&[0, 1, 2]),
            Assignment {
                replicas: vec![0, 1, 2],
                adding: vec![1, 2],
                removing: vec![],
            }
        );
        assert_eq!(
            settled.reassigned_to(&[2, 0, 1]),
            Assignment {
                replicas: vec![2, 0, 1],
                ..Assignment::default()
            }
        );
    }

    #[test]
    fn starting_a_reassignment_checks_the_target_and_writes_only_a_change() {
        let mut s = spec(&[0, 1, 2], &[], &[]);
        assert_eq!(s.start_reassignment(&[1, 2, 3]), Ok(true));
        assert_eq!(
            (
                s.replicas.clone(),
                s.adding_replicas.clone(),
                s.removing_replicas.clone()
            ),
            (vec![1, 2, 3, 0], vec![3], vec![0])
        );
        let before = s.clone();
        assert_eq!(s.start_reassignment(&[1, 2, 3]), Ok(false), "asked again");
        assert_eq!(s, before);
        for (target, refused) in [
            (&[][..], AssignmentError::Empty),
            (
                &[0, 1, 2, 3, 4, 5, 6, 7][..],
                AssignmentError::TooMany { max: 7 },
            ),
            (&[1, -1][..], AssignmentError::Negative(-1)),
            (&[1, 2, 1][..], AssignmentError::Duplicate(1)),
        ] {
            assert_eq!(s.start_reassignment(target), Err(refused), "{target:?}");
            assert_eq!(s, before, "a refused target changes nothing");
        }
        assert_eq!(
            AssignmentError::TooMany { max: 7 }.to_string(),
            "at most 7 replicas per partition"
        );
    }

    #[test]
    fn empty_reassignment_lists_are_omitted_from_the_object() {
        let json = serde_json::to_value(spec(&[0, 1], &[], &[])).unwrap_or_default();
        assert!(json.get("addingReplicas").is_none(), "{json}");
        let json = serde_json::to_value(spec(&[1, 0], &[1], &[0])).unwrap_or_default();
        assert_eq!(json["addingReplicas"], serde_json::json!([1]));
        assert_eq!(json["removingReplicas"], serde_json::json!([0]));
    }
}
