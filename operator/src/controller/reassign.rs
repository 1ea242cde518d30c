//! Completing partition reassignments (the contract is on `tributary_crds::Assignment`):
//! once every target replica is in the ISR under its current incarnation, the removing
//! replicas leave the ISR (and leadership, if one of them leads) by a status write, then the
//! spec drops them. Pure: the writer applies the status write first and the spec write second,
//! each conditional on the resourceVersion read, and plans again from the fresh object after a
//! conflict, which finds the status already written and only the spec write left.
//!
//! Rules (Kafka's `PartitionChangeBuilder` with a target assignment, KIP-455, and KIP-497's
//! "the ISR never shrinks below what acknowledged records relied on"):
//! - Nothing completes while the partition has no leader: failover comes first.
//! - Completion waits for every target replica, not only the adding ones, to be in the ISR
//!   under the incarnation the controller sees now (a replica restarted since has to catch up
//!   again); removing replicas, dead or alive, never hold it back.
//! - The new ISR is the old one without the removing replicas, order kept; it holds every
//!   target replica, so it is never smaller than the target set the records will live on.
//! - A leader that stays keeps the leader epoch; a removed leader is replaced by the first
//!   target replica in assignment order (all are in sync), and the leader epoch rises. The
//!   partition epoch rises with every status write.
//! - Cancelling is the requester's spec write (back to the original replicas); the failover
//!   rules then drop the no-longer-assigned replicas from the ISR, as for any assignment
//!   change.

use tributary_crds::partition::NO_LEADER;
use tributary_crds::{IsrEntry, KafkaPartitionSpec, KafkaPartitionStatus};

use super::election::{Change, Decision};
use super::liveness::BrokerView;

/// The writes that complete a reassignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The status to write first, unless it already is as it should be (a conflict after the
    /// status write, or a reassignment that removes nothing from the ISR).
    pub status: Option<Decision>,
    /// `spec.replicas` to write next, with both reassignment lists cleared.
    pub replicas: Vec<i32>,
}

/// Why a reassignment in progress is not completing yet (for logs and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// No reassignment is in progress.
    Nothing,
    /// The partition has no leader (or no status yet).
    NoLeader,
    /// These target replicas are not in the ISR under their current incarnation.
    NotInSync(Vec<i32>),
    /// The lists leave no target replica (an invalid spec: written by hand, say).
    NoTarget,
}

/// What completing the reassignment of a partition with `spec` and `status` takes now, given
/// the live `brokers`; `Err` says why it waits.
pub fn complete(
    spec: &KafkaPartitionSpec,
    status: Option<&KafkaPartitionStatus>,
    brokers: &BrokerView,
) -> Result<Completion, Waiting> {
    if !spec.is_reassigning() {
        return Err(Waiting::Nothing);
    }
    let target = spec.target_replicas();
    if target.is_empty() {
        return Err(Waiting::NoTarget);
    }
    let Some(old) = status.filter(|s| s.leader != NO_LEADER) else {
        return Err(Waiting::NoLeader);
    };
    let current = |e: &IsrEntry| {
        brokers
            .get(&e.broker_id)
            .is_some_and(|b| b.incarnation == e.broker_epoch)
    };
    let lagging: Vec<i32> = target
        .iter()
        .copied()
        .filter(|t| !old.isr.iter().any(|e| e.broker_id == *t && current(e)))
        .collect();
    if !lagging.is_empty() {
        return Err(Waiting::NotInSync(lagging));
    }
    let isr: Vec<IsrEntry> = old
        .isr
        .iter()
        .copied()
        .filter(|e| target.contains(&e.broker_id))
        .collect();
    let leader = if target.contains(&old.leader) {
        old.leader
    } else {
        // Every target replica is a current ISR member: the first in assignment order leads.
        target[0]
    };
    let status = (isr != old.isr || leader != old.leader).then(|| Decision {
        status: KafkaPartitionStatus {
            leader,
            leader_epoch: if leader == old.leader {
                old.leader_epoch
            } else {
                old.leader_epoch.saturating_add(1)
            },
            partition_epoch: old.partition_epoch.saturating_add(1),
            isr,
        },
        change: Change::Reassignment,
    });
    Ok(Completion {
        status,
        replicas: target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::election::decide;
    use crate::controller::fixtures::{live, st};

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

    fn done(status: Option<(KafkaPartitionStatus, Change)>, replicas: &[i32]) -> Completion {
        Completion {
            status: status.map(|(status, change)| Decision { status, change }),
            replicas: replicas.to_vec(),
        }
    }

    #[test]
    fn a_reassignment_completes_only_once_every_target_replica_is_in_sync_now() {
        // {0,1,2} -> {1,2,3}: broker 0, the leader, is removed; 3 is added.
        let moving = spec(&[1, 2, 3, 0], &[3], &[0]);
        let all = live(&[(0, 1, false), (1, 1, false), (2, 1, false), (3, 1, false)]);
        let cases: Vec<(
            &str,
            KafkaPartitionStatus,
            BrokerView,
            Result<Completion, Waiting>,
        )> = vec![
            (
                "the adding replica still catching up",
                st(0, 4, 7, &[(0, 1), (1, 1), (2, 1)]),
                all.clone(),
                Err(Waiting::NotInSync(vec![3])),
            ),
            (
                "the adding replica in the ISR under an older incarnation",
                st(0, 4, 7, &[(0, 1), (1, 1), (2, 1), (3, 1)]),
                live(&[(0, 1, false), (1, 1, false), (2, 1, false), (3, 2, false)]),
                Err(Waiting::NotInSync(vec![3])),
            ),
            (
                "a staying target replica out of the ISR holds it back too",
                st(0, 4, 7, &[(0, 1), (1, 1), (3, 1)]),
                all.clone(),
                Err(Waiting::NotInSync(vec![2])),
            ),
            (
                "all in sync: the removed leader hands over to the first target replica",
                st(0, 4, 7, &[(0, 1), (1, 1), (2, 1), (3, 1)]),
                all.clone(),
                Ok(done(
                    Some((st(1, 5, 8, &[(1, 1), (2, 1), (3, 1)]), Change::Reassignment)),
                    &[1, 2, 3],
                )),
            ),
            (
                "a leader that stays keeps its epoch; only the ISR shrinks",
                st(2, 4, 7, &[(2, 1), (0, 1), (1, 1), (3, 1)]),
                all.clone(),
                Ok(done(
                    Some((st(2, 4, 8, &[(2, 1), (1, 1), (3, 1)]), Change::Reassignment)),
                    &[1, 2, 3],
                )),
            ),
            (
                "the removing replica died mid-move: it does not hold anything back",
                st(1, 5, 8, &[(1, 1), (2, 1), (3, 1), (0, 1)]),
                live(&[(1, 1, false), (2, 1, false), (3, 1, false)]),
                Ok(done(
                    Some((st(1, 5, 9, &[(1, 1), (2, 1), (3, 1)]), Change::Reassignment)),
                    &[1, 2, 3],
                )),
            ),
            (
                "status already written (a conflict on the spec write): the spec write is left",
                st(1, 5, 8, &[(1, 1), (2, 1), (3, 1)]),
                all.clone(),
                Ok(done(None, &[1, 2, 3])),
            ),
            (
                "offline: failover first",
                st(-1, 5, 8, &[(1, 1)]),
                all.clone(),
                Err(Waiting::NoLeader),
            ),
        ];
        for (what, status, brokers, want) in cases {
            assert_eq!(complete(&moving, Some(&status), &brokers), want, "{what}");
        }
        assert_eq!(
            complete(
                &spec(&[0, 1, 2], &[], &[]),
                Some(&st(0, 1, 1, &[(0, 1)])),
                &all
            ),
            Err(Waiting::Nothing)
        );
        assert_eq!(
            complete(&spec(&[0], &[], &[0]), Some(&st(0, 1, 1, &[(0, 1)])), &all),
            Err(Waiting::NoTarget)
        );
        assert_eq!(complete(&moving, None, &all), Err(Waiting::NoLeader));
    }

    #[test]
    fn growing_the_replication_factor_completes_without_touching_leadership() {
        // RF 1 -> 3: nothing is removed, so once 1 and 2 are in sync only the spec changes.
        let growing = spec(&[0, 1, 2], &[1, 2], &[]);
        let all = live(&[(0, 3, false), (1, 1, false), (2, 1, false)]);
        assert_eq!(
            complete(&growing, Some(&st(0, 2, 5, &[(0, 3), (1, 1)])), &all),
            Err(Waiting::NotInSync(vec![2]))
        );
        assert_eq!(
            complete(
                &growing,
                Some(&st(0, 2, 6, &[(0, 3), (1, 1), (2, 1)])),
                &all
            ),
            Ok(done(None, &[0, 1, 2]))
        );
    }

    #[test]
    fn failover_during_a_move_elects_a_target_replica_and_the_move_then_completes() {
        // Leader 0 (being removed) dies while 3 is still catching up: the failover rules
        // run first and elect from the ISR in assignment order, target replicas first.
        let moving = spec(&[1, 2, 3, 0], &[3], &[0]);
        let survivors = live(&[(1, 1, false), (2, 1, false), (3, 1, false)]);
        let before = st(0, 4, 7, &[(0, 1), (1, 1), (2, 1)]);
        let elected = decide(&moving.replicas, Some(&before), &survivors, false);
        let elected = elected.map(|d| (d.status, d.change));
        assert_eq!(
            elected,
            Some((st(1, 5, 8, &[(1, 1), (2, 1)]), Change::CleanElection))
        );
        // The new leader admits 3 once it caught up; the move then completes, no election.
        let caught_up = st(1, 5, 9, &[(1, 1), (2, 1), (3, 1)]);
        assert_eq!(
            complete(&moving, Some(&caught_up), &survivors),
            Ok(done(None, &[1, 2, 3]))
        );
    }

    #[test]
    fn a_cancelled_move_drops_the_adding_replicas_from_the_isr_by_the_failover_rules() {
        // Cancelled after 3 joined: back to {0,1,2}; 3 is no longer a replica.
        let moving = spec(&[1, 2, 3, 0], &[3], &[0]);
        let cancelled = moving.cancelled();
        assert_eq!(cancelled.replicas, [1, 2, 0]);
        let all = live(&[(0, 1, false), (1, 1, false), (2, 1, false), (3, 1, false)]);
        let status = st(0, 4, 7, &[(0, 1), (1, 1), (2, 1), (3, 1)]);
        let d =
            decide(&cancelled.replicas, Some(&status), &all, false).map(|d| (d.status, d.change));
        assert_eq!(
            d,
            Some((st(0, 4, 8, &[(0, 1), (1, 1), (2, 1)]), Change::IsrShrink))
        );
        // Cancelled while an adding replica led (the originals had died): it is replaced
        // by an original replica of the ISR.
        let status = st(3, 6, 9, &[(3, 1), (1, 1)]);
        let d =
            decide(&cancelled.replicas, Some(&status), &all, false).map(|d| (d.status, d.change));
        assert_eq!(d, Some((st(1, 7, 10, &[(1, 1)]), Change::CleanElection)));
    }
}
