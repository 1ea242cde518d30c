//! Server-side assignors (KIP-848): the target assignment as a pure, deterministic function
//! of the members' subscriptions, their current targets and the topics' partition counts.
//! Chosen by name (`group.consumer.assignors`, or a member's `ServerAssignor`).
//!
//! - [`uniform`]: balanced to within one partition where subscriptions allow, sticky.
//! - [`range`]: contiguous ranges per topic, co-partitioned when subscriptions match.

pub mod range;
pub mod uniform;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::assignment::Assignment;

/// One member as an assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    /// Member id.
    pub member_id: String,
    /// Static instance id: range orders static members by it, so a restarted static member
    /// gets the same ranges.
    pub instance_id: Option<String>,
    /// Ids of the subscribed topics that exist.
    pub topics: BTreeSet<Uuid>,
    /// The member's current target (what stickiness keeps).
    pub current: Assignment,
}

/// The input of an assignor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Members, by member id order.
    pub members: Vec<MemberSpec>,
    /// Partition count of each subscribed topic.
    pub partitions: BTreeMap<Uuid, i32>,
}

/// A server-side assignor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Kafka's `uniform`.
    Uniform,
    /// Kafka's `range`.
    Range,
}

impl Assignor {
    /// The assignor called `name`.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "uniform" => Some(Assignor::Uniform),
            "range" => Some(Assignor::Range),
            _ => None,
        }
    }

    /// Its name, as configs and requests spell it.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// The target partitions of every member of `spec` (members with none included).
    pub fn assign(self, spec: &GroupSpec) -> BTreeMap<String, Assignment> {
        match self {
            Assignor::Uniform => uniform::assign(spec),
            Assignor::Range => range::assign(spec),
        }
    }
}

#[cfg(test)]
pub(super) mod test_support {
    use super::*;

    pub(crate) fn topic(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    pub(crate) fn member(id: &str, topics: &[u128], current: Assignment) -> MemberSpec {
        MemberSpec {
            member_id: id.to_string(),
            instance_id: None,
            topics: topics.iter().map(|t| topic(*t)).collect(),
            current,
        }
    }

    pub(crate) fn spec(members: Vec<MemberSpec>, partitions: &[(u128, i32)]) -> GroupSpec {
        GroupSpec {
            members,
            partitions: partitions.iter().map(|(t, n)| (topic(*t), *n)).collect(),
        }
    }

    /// Checks that no partition is given twice, every partition of a topic somebody
    /// subscribes to is given, and only to a subscriber.
    pub(crate) fn assert_valid(spec: &GroupSpec, out: &BTreeMap<String, Assignment>) {
        let mut seen = Assignment::new();
        for m in &spec.members {
            let a = &out[&m.member_id];
            for (t, p) in a.iter() {
                assert!(
                    m.topics.contains(&t),
                    "{} is not subscribed to {t}",
                    m.member_id
                );
                assert!(seen.insert(t, p), "{t}-{p} given twice");
            }
        }
        for (t, n) in &spec.partitions {
            if spec.members.iter().any(|m| m.topics.contains(t)) {
                for p in 0..*n {
                    assert!(seen.contains(*t, p), "{t}-{p} not given");
                }
            }
        }
    }
}
