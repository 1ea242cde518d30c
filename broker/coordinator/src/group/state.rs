//! The classic group states and which transitions between them are legal (Kafka's
//! `GroupState.validPreviousStates`).

use std::fmt;

/// Where a group is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// A rebalance started: members must (re)join before the join phase ends.
    PreparingRebalance,
    /// Join phase done: waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment; heartbeats keep it so.
    Stable,
    /// Removed (deleted or expired); the entry is about to disappear.
    Dead,
}

impl GroupState {
    /// Every state, for filters and tests.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// The name Kafka reports in ListGroups and DescribeGroups.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Parses a state name case-insensitively, as ListGroups' states filter does.
    pub fn parse(name: &str) -> Option<GroupState> {
        GroupState::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether a group may move from `self` to `next`.
    pub fn can_become(self, next: GroupState) -> bool {
        use GroupState::*;
        match next {
            Dead => true,
            PreparingRebalance => matches!(self, Stable | CompletingRebalance | Empty),
            CompletingRebalance => self == PreparingRebalance,
            Stable => self == CompletingRebalance,
            Empty => self == PreparingRebalance,
        }
    }

    /// Whether a rebalance may start from here (`GroupMetadata.canRebalance`).
    pub fn can_rebalance(self) -> bool {
        self.can_become(GroupState::PreparingRebalance)
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState::*;
    use super::*;

    #[test]
    fn transitions_follow_kafka() {
        assert!(Empty.can_become(PreparingRebalance));
        assert!(PreparingRebalance.can_become(CompletingRebalance));
        assert!(PreparingRebalance.can_become(Empty));
        assert!(CompletingRebalance.can_become(Stable));
        assert!(CompletingRebalance.can_become(PreparingRebalance));
        assert!(Stable.can_become(PreparingRebalance));
        for s in GroupState::ALL {
            assert!(s.can_become(Dead));
        }
        assert!(!Empty.can_become(Stable));
        assert!(!Stable.can_become(CompletingRebalance));
        assert!(!PreparingRebalance.can_become(Stable));
        assert!(!Stable.can_become(Empty));
        assert!(!Dead.can_become(PreparingRebalance));
    }

    #[test]
    fn names_round_trip_case_insensitively() {
        for s in GroupState::ALL {
            assert_eq!(GroupState::parse(s.as_str()), Some(s));
            assert_eq!(GroupState::parse(&s.as_str().to_lowercase()), Some(s));
        }
        assert_eq!(GroupState::parse("assigning"), None);
    }
}
