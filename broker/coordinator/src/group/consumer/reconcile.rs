//! Incremental reconciliation (Kafka's `CurrentAssignmentBuilder`): one step of moving a
//! member from what it owns towards its target, never giving it a partition another member
//! still owns. A member first revokes what is no longer in its target (staying at its epoch
//! until it reports them gone), then moves to the target epoch and is given the partitions
//! that are free; the rest it receives later, once their previous owners release them.

use uuid::Uuid;

use super::assignment::Assignment;
use super::member::{Member, MemberState};

/// What one reconciliation step needs besides the member.
pub struct Target<'a, F>
where
    F: Fn(Uuid, i32) -> bool,
{
    /// The epoch of the target assignment.
    pub epoch: i32,
    /// The member's target partitions.
    pub partitions: &'a Assignment,
    /// Whether a partition is owned by some member (including this one, for partitions it
    /// is still revoking).
    pub is_owned: F,
    /// The partitions the member reported owning (`None` when the heartbeat left them out).
    pub owned: Option<&'a Assignment>,
}

/// The member after one reconciliation step (unchanged if it cannot progress).
///
/// A member in [`MemberState::Unknown`] must be fenced before this is called unless it
/// reported owning nothing (see [`must_fence_unknown_state`]).
pub fn reconcile<F>(member: &Member, target: &Target<'_, F>) -> Member
where
    F: Fn(Uuid, i32) -> bool,
{
    match member.state {
        MemberState::Stable if member.member_epoch == target.epoch => member.clone(),
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            next(member, member.member_epoch, target)
        }
        MemberState::UnrevokedPartitions => {
            if still_owns(target.owned, &member.pending_revocation) {
                member.clone()
            } else {
                next(member, member.member_epoch + 1, target)
            }
        }
        MemberState::Unknown => next(member, target.epoch, target),
    }
}

/// Whether a member in an unknown state (written by a newer coordinator) must be fenced:
/// unless it reports owning nothing, it may hold partitions we cannot account for.
pub fn must_fence_unknown_state(member: &Member, owned: Option<&Assignment>) -> bool {
    member.state == MemberState::Unknown && owned.is_none_or(|o| !o.is_empty())
}

/// Whether the member's report still lists any of `revoking` (no report counts as yes).
fn still_owns(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    owned.is_none_or(|o| o.intersects(revoking))
}

/// The step from `epoch` (Kafka's `computeNextAssignment`).
fn next<F>(member: &Member, epoch: i32, target: &Target<'_, F>) -> Member
where
    F: Fn(Uuid, i32) -> bool,
{
    let kept = member.assigned.intersection(target.partitions);
    let revoke = member.assigned.difference(&kept);
    let mut unreleased = false;
    let mut give = Assignment::new();
    for (t, p) in target.partitions.difference(&kept).iter() {
        if (target.is_owned)(t, p) {
            unreleased = true;
        } else {
            give.insert(t, p);
        }
    }
    let mut out = member.clone();
    out.previous_member_epoch = member.member_epoch;
    if !revoke.is_empty() && still_owns(target.owned, &revoke) {
        out.state = MemberState::UnrevokedPartitions;
        out.member_epoch = epoch;
        out.assigned = kept;
        out.pending_revocation = revoke;
        return out;
    }
    let mut assigned = kept;
    assigned.extend(&give);
    out.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    out.member_epoch = target.epoch;
    out.assigned = assigned;
    out.pending_revocation = Assignment::new();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Uuid {
        Uuid::from_u128(1)
    }

    fn parts(ps: &[i32]) -> Assignment {
        Assignment::from_topics([(t(), ps.to_vec())])
    }

    fn member(epoch: i32, state: MemberState, assigned: &[i32], revoking: &[i32]) -> Member {
        Member {
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            state,
            assigned: parts(assigned),
            pending_revocation: parts(revoking),
            ..Member::new("m")
        }
    }

    fn step(
        m: &Member,
        epoch: i32,
        target: &[i32],
        taken: &[i32],
        owned: Option<&[i32]>,
    ) -> Member {
        let target = parts(target);
        let owned = owned.map(parts);
        let taken = parts(taken);
        reconcile(
            m,
            &Target {
                epoch,
                partitions: &target,
                is_owned: |topic: Uuid, p: i32| taken.contains(topic, p),
                owned: owned.as_ref(),
            },
        )
    }

    #[test]
    fn a_reconciled_member_stays_as_it_is() {
        let m = member(3, MemberState::Stable, &[0, 1], &[]);
        assert_eq!(step(&m, 3, &[5], &[], Some(&[0, 1])), m);
    }

    #[test]
    fn free_new_partitions_are_given_with_the_target_epoch() {
        let m = member(3, MemberState::Stable, &[0], &[]);
        let n = step(&m, 4, &[0, 1], &[], Some(&[0]));
        assert_eq!(n.state, MemberState::Stable);
        assert_eq!((n.member_epoch, n.previous_member_epoch), (4, 3));
        assert_eq!(n.assigned, parts(&[0, 1]));
    }

    #[test]
    fn partitions_leaving_the_target_are_revoked_first_at_the_same_epoch() {
        let m = member(3, MemberState::Stable, &[0, 1], &[]);
        let n = step(&m, 4, &[0, 2], &[], Some(&[0, 1]));
        assert_eq!(n.state, MemberState::UnrevokedPartitions);
        assert_eq!(n.member_epoch, 3, "no new epoch before the revocation");
        assert_eq!(n.assigned, parts(&[0]));
        assert_eq!(n.pending_revocation, parts(&[1]));
        assert!(!n.assigned.contains(t(), 2), "nothing new while revoking");

        let still = step(&n, 4, &[0, 2], &[1], Some(&[0, 1]));
        assert_eq!(still, n, "it still reports partition 1");
        let unknown = step(&n, 4, &[0, 2], &[1], None);
        assert_eq!(
            unknown, n,
            "a heartbeat without owned partitions proves nothing"
        );

        let done = step(&n, 4, &[0, 2], &[], Some(&[0]));
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!((done.member_epoch, done.previous_member_epoch), (4, 3));
        assert_eq!(done.assigned, parts(&[0, 2]));
        assert!(done.pending_revocation.is_empty());
    }

    #[test]
    fn a_revocation_the_member_already_made_is_skipped() {
        let m = member(3, MemberState::Stable, &[0, 1], &[]);
        let n = step(&m, 4, &[0], &[], Some(&[0]));
        assert_eq!(n.state, MemberState::Stable);
        assert_eq!(n.member_epoch, 4);
        assert_eq!(n.assigned, parts(&[0]));
    }

    #[test]
    fn partitions_still_owned_elsewhere_wait_until_released() {
        let m = member(3, MemberState::Stable, &[0], &[]);
        let n = step(&m, 4, &[0, 1, 2], &[2], Some(&[0]));
        assert_eq!(n.state, MemberState::UnreleasedPartitions);
        assert_eq!(n.member_epoch, 4);
        assert_eq!(n.assigned, parts(&[0, 1]), "2 is not given while owned");

        let again = step(&n, 4, &[0, 1, 2], &[2], Some(&[0, 1]));
        assert_eq!(again.assigned, n.assigned);
        assert_eq!(again.state, MemberState::UnreleasedPartitions);

        let released = step(&n, 4, &[0, 1, 2], &[], Some(&[0, 1]));
        assert_eq!(released.state, MemberState::Stable);
        assert_eq!(released.assigned, parts(&[0, 1, 2]));
    }

    #[test]
    fn a_member_that_revoked_moves_one_epoch_and_on_to_a_newer_target() {
        let m = member(3, MemberState::UnrevokedPartitions, &[0], &[1]);
        let n = step(&m, 6, &[0, 3], &[], Some(&[0]));
        assert_eq!(n.member_epoch, 6);
        assert_eq!(n.assigned, parts(&[0, 3]));
    }

    #[test]
    fn unknown_states_are_fenced_unless_nothing_is_owned() {
        let m = member(3, MemberState::Unknown, &[0], &[]);
        assert!(must_fence_unknown_state(&m, None));
        assert!(must_fence_unknown_state(&m, Some(&parts(&[0]))));
        assert!(!must_fence_unknown_state(&m, Some(&Assignment::new())));
        let n = step(&m, 5, &[0, 1], &[], Some(&[]));
        assert_eq!((n.state, n.member_epoch), (MemberState::Stable, 5));
    }
}
