//! Leader elections on request (Kafka's ElectLeaders, KIP-460). As Kafka's controller does,
//! the broker first tells from its image whether an election is needed at all ([`need`]);
//! only the partitions that need one are handed to the cluster's controller through
//! [`LeaderElections`] (in cluster mode: the KafkaPartition's `tributary.dev/elect-leader`
//! annotation, see `crate::kube::elections`), and the controller's answer is read back as
//! Kafka's outcome ([`outcome`]). A standalone broker has no controller to ask, and needs none:
//! it is the only, and preferred, replica of everything.

use std::time::Duration;

use futures::future::BoxFuture;
pub use tributary_crds::ElectionType;

use super::{BrokerInfo, PartitionState, NO_LEADER};

/// Why a partition's election did not happen (or did not need to); the handler maps each to
/// its Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElectionError {
    /// No such topic or partition.
    #[error("no such topic or partition")]
    UnknownTopicOrPartition,
    /// The partition already has the leader asked for.
    #[error("no election needed: {0}")]
    NotNeeded(String),
    /// A preferred election cannot make the preferred replica the leader now.
    #[error("the preferred replica cannot lead now: {0}")]
    PreferredNotAvailable(String),
    /// An unclean election found no live replica to lead.
    #[error("no replica can lead: {0}")]
    EligibleNotAvailable(String),
    /// The controller did not answer within the request's timeout (the request stays; the
    /// controller still acts on it).
    #[error("the controller did not answer within {0:?}")]
    TimedOut(Duration),
    /// The cluster's metadata store could not be reached or refused the request.
    #[error("cannot ask the controller: {0}")]
    Unavailable(String),
}

/// Whether a partition needs an election, as far as this broker's image tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Ask the controller.
    Elect,
    /// Answer at once.
    Answer(ElectionError),
}

/// Decides from the image whether partition `state` (`None`: unknown) needs an election of
/// `kind`, with `brokers` the registered (live) brokers: as Kafka's controller, a preferred
/// election is not needed when the first replica leads and cannot happen while it is not
/// registered or not in the ISR under its current incarnation; an unclean election is not
/// needed while the partition has a leader and cannot happen while no replica is registered.
pub fn need(
    kind: ElectionType,
    state: Option<&PartitionState>,
    brokers: &std::collections::BTreeMap<i32, BrokerInfo>,
) -> Need {
    let Some(state) = state else {
        return Need::Answer(ElectionError::UnknownTopicOrPartition);
    };
    match kind {
        ElectionType::Preferred => {
            let Some(&preferred) = state.replicas.first() else {
                return Need::Answer(ElectionError::PreferredNotAvailable(
                    "the partition has no replicas".into(),
                ));
            };
            if state.leader == preferred {
                return Need::Answer(ElectionError::NotNeeded(format!(
                    "preferred replica {preferred} already leads"
                )));
            }
            let Some(broker) = brokers.get(&preferred) else {
                return Need::Answer(ElectionError::PreferredNotAvailable(format!(
                    "preferred replica {preferred} is not alive"
                )));
            };
            let in_sync = state
                .isr
                .iter()
                .any(|m| m.broker == preferred && m.incarnation == broker.incarnation);
            if !in_sync {
                return Need::Answer(ElectionError::PreferredNotAvailable(format!(
                    "preferred replica {preferred} is not in the ISR"
                )));
            }
            Need::Elect
        }
        ElectionType::Unclean => {
            if state.leader != NO_LEADER {
                return Need::Answer(ElectionError::NotNeeded(format!(
                    "broker {} leads",
                    state.leader
                )));
            }
            if !state.replicas.iter().any(|r| brokers.contains_key(r)) {
                return Need::Answer(ElectionError::EligibleNotAvailable(
                    "no replica is alive".into(),
                ));
            }
            Need::Elect
        }
    }
}

/// What the controller's answer to an election request of `kind` means, from the partition's
/// leader when the request was made (`asked`) and once the controller answered (`answered`),
/// by the annotation's contract: a preferred election succeeded if the first of `replicas`
/// leads, an unclean one if anyone leads. If that was already so when the request was made,
/// no election was needed after all.
pub fn outcome(
    kind: ElectionType,
    replicas: &[i32],
    asked: i32,
    answered: i32,
) -> Result<(), ElectionError> {
    let wanted = |leader: i32| match kind {
        ElectionType::Preferred => replicas.first() == Some(&leader),
        ElectionType::Unclean => leader != NO_LEADER,
    };
    match (wanted(asked), wanted(answered)) {
        (true, true) => Err(ElectionError::NotNeeded(format!("broker {answered} leads"))),
        (false, true) => Ok(()),
        (_, false) => Err(match kind {
            ElectionType::Preferred => ElectionError::PreferredNotAvailable(format!(
                "the controller kept broker {answered} as leader (the KafkaPartition's Events say why)"
            )),
            ElectionType::Unclean => ElectionError::EligibleNotAvailable(
                "the controller found no live replica to lead (the KafkaPartition's Events say why)"
                    .into(),
            ),
        }),
    }
}

/// One partition to elect a leader for: topic name and index.
pub type ElectedPartition = (String, i32);

/// Where a broker asks for elections: the controller of the cluster.
pub trait LeaderElections: Send + Sync {
    /// Asks for an election of `kind` for every partition in `partitions` (each of which
    /// [`need`] says needs one) and returns each one's outcome, once every one is answered or
    /// `timeout` passed.
    fn elect(
        &self,
        kind: ElectionType,
        partitions: Vec<ElectedPartition>,
        timeout: Duration,
    ) -> BoxFuture<'_, Vec<(ElectedPartition, Result<(), ElectionError>)>>;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::IsrMember;

    fn broker(id: i32, incarnation: i64) -> (i32, BrokerInfo) {
        let info = BrokerInfo {
            id,
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation,
            endpoints: Vec::new(),
        };
        (id, info)
    }

    /// Replicas 0, 1, 2 led by `leader`, with `isr` as (broker, incarnation).
    fn state(leader: i32, isr: &[(i32, i64)]) -> PartitionState {
        PartitionState {
            replicas: vec![0, 1, 2],
            leader,
            leader_epoch: 4,
            partition_epoch: 7,
            isr: isr
                .iter()
                .map(|&(broker, incarnation)| IsrMember {
                    broker,
                    incarnation,
                })
                .collect(),
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// What, the election asked for, the partition in the image, the registered brokers, and
    /// what the broker should do.
    type Case<'a> = (
        &'static str,
        ElectionType,
        Option<PartitionState>,
        &'a BTreeMap<i32, BrokerInfo>,
        Need,
    );

    #[test]
    fn an_election_is_asked_for_only_when_the_image_says_it_is_needed_and_possible() {
        use ElectionType::{Preferred, Unclean};
        let all: BTreeMap<_, _> = [broker(0, 2), broker(1, 1), broker(2, 1)].into();
        let not_0: BTreeMap<_, _> = [broker(1, 1), broker(2, 1)].into();
        let none = BTreeMap::new();
        let isr = [(0, 2), (1, 1), (2, 1)];
        let elect = Need::Elect;
        let not_needed = |m: &str| Need::Answer(ElectionError::NotNeeded(m.into()));
        let preferred_not = |m: &str| Need::Answer(ElectionError::PreferredNotAvailable(m.into()));
        let cases: Vec<Case<'_>> = vec![
            (
                "preferred, led elsewhere, preferred in sync",
                Preferred,
                Some(state(1, &isr)),
                &all,
                elect.clone(),
            ),
            (
                "preferred already leads",
                Preferred,
                Some(state(0, &isr)),
                &all,
                not_needed("preferred replica 0 already leads"),
            ),
            (
                "preferred not alive",
                Preferred,
                Some(state(1, &isr)),
                &not_0,
                preferred_not("preferred replica 0 is not alive"),
            ),
            (
                "preferred not in the ISR",
                Preferred,
                Some(state(1, &[(1, 1), (2, 1)])),
                &all,
                preferred_not("preferred replica 0 is not in the ISR"),
            ),
            (
                "preferred in the ISR as an earlier incarnation",
                Preferred,
                Some(state(1, &[(0, 1), (1, 1), (2, 1)])),
                &all,
                preferred_not("preferred replica 0 is not in the ISR"),
            ),
            (
                "preferred for a partition without a leader",
                Preferred,
                Some(state(-1, &isr)),
                &all,
                elect.clone(),
            ),
            (
                "unclean with a live leader",
                Unclean,
                Some(state(1, &isr)),
                &all,
                not_needed("broker 1 leads"),
            ),
            (
                "unclean without a leader",
                Unclean,
                Some(state(-1, &[(0, 1)])),
                &not_0,
                elect.clone(),
            ),
            (
                "unclean with no replica alive",
                Unclean,
                Some(state(-1, &[(0, 1)])),
                &none,
                Need::Answer(ElectionError::EligibleNotAvailable(
                    "no replica is alive".into(),
                )),
            ),
            (
                "unknown partition",
                Preferred,
                None,
                &all,
                Need::Answer(ElectionError::UnknownTopicOrPartition),
            ),
        ];
        for (what, kind, state, brokers, want) in cases {
            assert_eq!(need(kind, state.as_ref(), brokers), want, "{what}");
        }
    }

    #[test]
    fn the_controllers_answer_reads_as_kafkas_outcome() {
        use ElectionType::{Preferred, Unclean};
        let replicas = [0, 1, 2];
        assert_eq!(outcome(Preferred, &replicas, 1, 0), Ok(()), "moved");
        assert!(matches!(
            outcome(Preferred, &replicas, 1, 1),
            Err(ElectionError::PreferredNotAvailable(_))
        ));
        assert!(
            matches!(
                outcome(Preferred, &replicas, 0, 0),
                Err(ElectionError::NotNeeded(_))
            ),
            "the preferred replica led when asked"
        );
        assert_eq!(outcome(Unclean, &replicas, -1, 2), Ok(()), "elected");
        assert!(matches!(
            outcome(Unclean, &replicas, -1, -1),
            Err(ElectionError::EligibleNotAvailable(_))
        ));
        assert!(matches!(
            outcome(Unclean, &replicas, 1, 1),
            Err(ElectionError::NotNeeded(_))
        ));
    }
}
