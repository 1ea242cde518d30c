//! Elections on demand: leadership back to the preferred replica (Kafka's preferred replica
//! election, run by auto leader rebalancing and by ElectLeaders PREFERRED) and the unclean
//! election ElectLeaders UNCLEAN asks for. Pure, like [`election`](super::election), and applied
//! only to partitions the failover rules leave as they are, so each write makes one change.
//!
//! Rules:
//! - The preferred replica is the first of the assignment. It may take over when it is alive
//!   and seen renewing its Lease (not merely within the grace period after this controller took
//!   over, when a dead broker still looks alive), not shutting down, in the ISR under its
//!   current incarnation and not already the leader.
//!   Leadership moves to it with both epochs raised by one and the ISR unchanged: every member
//!   stays in sync, only who leads changes.
//! - An unclean election applies to a partition without a leader only: the first live replica
//!   not shutting down leads, alone in the ISR at its incarnation (the rule
//!   `unclean.leader.election.enable` turns on in [`decide`]).

use tributary_crds::partition::NO_LEADER;
use tributary_crds::KafkaPartitionStatus;

use super::election::{decide, Change, Decision};
use super::liveness::BrokerView;

/// Why an election on demand leaves the partition as it is. The first is no failure; the
/// others are what Kafka answers PREFERRED_LEADER_NOT_AVAILABLE or
/// ELIGIBLE_LEADERS_NOT_AVAILABLE for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotElected {
    /// The partition already has the leader asked for.
    #[error("no election needed: {0}")]
    NotNeeded(&'static str),
    /// The partition has no status yet (no replica has been live since it was created).
    #[error("the partition has no leadership recorded yet")]
    NoStatus,
    /// The preferred replica's Lease is not live.
    #[error("preferred replica {0} is not alive")]
    PreferredNotAlive(i32),
    /// The preferred replica's Lease is unexpired, but this controller has not yet seen it
    /// renewed (it took over, or its watch broke, less than a renew interval ago).
    #[error("preferred replica {0} has not been seen renewing its Lease yet")]
    PreferredNotSeenRenewing(i32),
    /// The preferred replica announced a controlled shutdown.
    #[error("preferred replica {0} is shutting down")]
    PreferredShuttingDown(i32),
    /// The preferred replica is not in the ISR: its leader has not seen it catch up.
    #[error("preferred replica {0} is not in the ISR")]
    PreferredNotInSync(i32),
    /// The preferred replica is in the ISR under an earlier incarnation: it restarted since
    /// and has not caught up again.
    #[error(
        "preferred replica {id} is in the ISR as incarnation {recorded}, but runs as {current} now"
    )]
    PreferredRestarted {
        /// Broker id.
        id: i32,
        /// Incarnation in the ISR entry.
        recorded: i64,
        /// Incarnation in its Lease.
        current: i64,
    },
    /// No replica is alive and not shutting down.
    #[error("no replica is alive to lead")]
    NoLiveReplica,
}

/// Moves leadership to the preferred replica if it may lead (see the module rules).
pub fn elect_preferred(
    replicas: &[i32],
    status: Option<&KafkaPartitionStatus>,
    brokers: &BrokerView,
) -> Result<Decision, NotElected> {
    let status = status.ok_or(NotElected::NoStatus)?;
    let Some(&preferred) = replicas.first() else {
        return Err(NotElected::NotNeeded("the partition has no replicas"));
    };
    if status.leader == preferred {
        return Err(NotElected::NotNeeded("the preferred replica leads"));
    }
    let broker = brokers
        .get(&preferred)
        .ok_or(NotElected::PreferredNotAlive(preferred))?;
    if broker.shutting_down {
        return Err(NotElected::PreferredShuttingDown(preferred));
    }
    if !broker.renewing {
        return Err(NotElected::PreferredNotSeenRenewing(preferred));
    }
    let entry = status
        .isr
        .iter()
        .find(|e| e.broker_id == preferred)
        .ok_or(NotElected::PreferredNotInSync(preferred))?;
    if entry.broker_epoch != broker.incarnation {
        return Err(NotElected::PreferredRestarted {
            id: preferred,
            recorded: entry.broker_epoch,
            current: broker.incarnation,
        });
    }
    Ok(Decision {
        status: KafkaPartitionStatus {
            leader: preferred,
            leader_epoch: status.leader_epoch.saturating_add(1),
            partition_epoch: status.partition_epoch.saturating_add(1),
            isr: status.isr.clone(),
        },
        change: Change::PreferredElection,
    })
}

/// Elects a leader for a partition without one, outside the ISR if need be.
pub fn elect_unclean(
    replicas: &[i32],
    status: Option<&KafkaPartitionStatus>,
    brokers: &BrokerView,
) -> Result<Decision, NotElected> {
    if status.is_some_and(|s| s.leader != NO_LEADER) {
        return Err(NotElected::NotNeeded("the partition has a leader"));
    }
    match decide(replicas, status, brokers, true) {
        Some(d) if d.status.leader != NO_LEADER => Ok(d),
        _ => Err(NotElected::NoLiveReplica),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::{live, st};

    /// What, the recorded status, the live brokers, and the expected new status or refusal.
    type Case = (
        &'static str,
        Option<KafkaPartitionStatus>,
        BrokerView,
        Result<KafkaPartitionStatus, NotElected>,
    );

    #[test]
    fn leadership_returns_to_an_eligible_preferred_replica_and_nowhere_else() {
        let replicas = [0, 1, 2];
        let isr = [(1, 4), (0, 7), (2, 4)];
        let all = [(0, 7, false), (1, 4, false), (2, 4, false)];
        let cases: Vec<Case> = vec![
            (
                "eligible: epochs + 1, ISR unchanged",
                Some(st(1, 3, 8, &isr)),
                live(&all),
                Ok(st(0, 4, 9, &isr)),
            ),
            (
                "already leads",
                Some(st(0, 3, 8, &isr)),
                live(&all),
                Err(NotElected::NotNeeded("the preferred replica leads")),
            ),
            (
                "dead",
                Some(st(1, 3, 8, &isr)),
                live(&[(1, 4, false), (2, 4, false)]),
                Err(NotElected::PreferredNotAlive(0)),
            ),
            (
                "its Lease not yet seen renewed since the controller took over",
                Some(st(1, 3, 8, &isr)),
                {
                    let mut v = live(&all);
                    v.entry(0).and_modify(|b| b.renewing = false);
                    v
                },
                Err(NotElected::PreferredNotSeenRenewing(0)),
            ),
            (
                "shutting down",
                Some(st(1, 3, 8, &isr)),
                live(&[(0, 7, true), (1, 4, false)]),
                Err(NotElected::PreferredShuttingDown(0)),
            ),
            (
                "alive but not caught up",
                Some(st(1, 3, 8, &[(1, 4), (2, 4)])),
                live(&all),
                Err(NotElected::PreferredNotInSync(0)),
            ),
            (
                "in the ISR as an earlier incarnation",
                Some(st(1, 3, 8, &isr)),
                live(&[(0, 8, false), (1, 4, false)]),
                Err(NotElected::PreferredRestarted {
                    id: 0,
                    recorded: 7,
                    current: 8,
                }),
            ),
            ("no status yet", None, live(&all), Err(NotElected::NoStatus)),
        ];
        for (what, status, brokers, want) in cases {
            let got = elect_preferred(&replicas, status.as_ref(), &brokers);
            assert_eq!(got.clone().map(|d| d.status), want, "{what}");
            if let Ok(d) = got {
                assert_eq!(d.change, Change::PreferredElection);
                let v = super::super::election::violations(&replicas, status.as_ref(), &d.status);
                assert!(v.is_empty(), "{what}: {v:?}");
                assert_eq!(
                    decide(&replicas, Some(&d.status), &brokers, false),
                    None,
                    "{what}: the failover rules keep the new leader"
                );
            }
        }
    }

    #[test]
    fn an_unclean_election_only_fills_an_empty_leadership() {
        let replicas = [0, 1, 2];
        let offline = st(-1, 5, 9, &[(0, 1)]);
        assert_eq!(
            elect_unclean(
                &replicas,
                Some(&offline),
                &live(&[(1, 3, true), (2, 3, false)])
            )
            .map(|d| (d.status, d.change)),
            Ok((st(2, 6, 10, &[(2, 3)]), Change::UncleanElection)),
            "the first live replica not shutting down, alone in the ISR"
        );
        assert_eq!(
            elect_unclean(&replicas, Some(&offline), &live(&[(1, 3, true)])),
            Err(NotElected::NoLiveReplica)
        );
        assert_eq!(
            elect_unclean(
                &replicas,
                Some(&st(1, 5, 9, &[(1, 3)])),
                &live(&[(1, 3, false)])
            ),
            Err(NotElected::NotNeeded("the partition has a leader"))
        );
        assert_eq!(
            elect_unclean(&replicas, None, &live(&[])),
            Err(NotElected::NoLiveReplica),
            "no status and nobody alive"
        );
    }
}
