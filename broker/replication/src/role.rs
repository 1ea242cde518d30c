//! A replica's role in its partition: leader or follower, at a leader epoch.

/// What this replica does for its partition, and at which leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes writes and serves reads.
    Leader {
        /// The leader epoch batches are stamped with.
        epoch: i32,
    },
    /// Copies the leader's log.
    Follower {
        /// The leader's broker id (-1 when the partition has none).
        leader: i32,
        /// The leader epoch it follows.
        epoch: i32,
    },
}

impl Role {
    /// The leader epoch this role acts at.
    pub fn epoch(self) -> i32 {
        match self {
            Role::Leader { epoch } | Role::Follower { epoch, .. } => epoch,
        }
    }

    /// Whether this replica leads.
    pub fn is_leader(self) -> bool {
        matches!(self, Role::Leader { .. })
    }
}
