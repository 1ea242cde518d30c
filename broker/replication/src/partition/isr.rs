//! The leader's view of its followers and the decisions taken from it, as pure functions over
//! plain state (fluvio's `compute_hw` style, Kafka's `Partition.maybeExpandIsr`,
//! `getOutOfSyncReplicas` and `maybeIncrementLeaderHW`):
//!
//! - the high watermark is the smallest log end over the in-sync replicas, the leader's own
//!   log end included, and never moves back;
//! - while an ISR change is being written, the high watermark counts over the old and the new
//!   ISR together (KIP-497's maximal ISR), so acks=all never counts on a replica that is not
//!   yet, or no longer certainly, in the committed ISR;
//! - a follower joins when it has every committed record (its log end reaches the high
//!   watermark) and everything of the current leader epoch up to where it began, under the
//!   incarnation the broker is registered with now;
//! - a follower leaves when it has not caught up with the leader's log end for
//!   `replica.lag.time.max.ms`.

use std::collections::BTreeMap;

/// An in-sync replica: the broker and the incarnation that caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsrMember {
    /// Broker id.
    pub broker: i32,
    /// The broker's incarnation when it joined the ISR.
    pub incarnation: i64,
}

/// What the leader knows of one follower, from its fetches (Kafka's `Replica` state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    /// The incarnation of the process that fetched.
    pub incarnation: i64,
    /// The follower's log end: the offset it last asked for.
    pub log_end_offset: i64,
    /// When the follower last had everything the leader had.
    pub last_caught_up_ms: i64,
    /// When the follower last fetched, and the leader's log end then.
    pub last_fetch_ms: i64,
    pub last_fetch_leader_end: i64,
}

impl Follower {
    /// A follower first seen now: caught up "now" so that a leader that just took over gives
    /// every ISR member a full lag period to fetch (Kafka resets remote replicas the same way).
    pub fn new(incarnation: i64, now_ms: i64) -> Follower {
        Follower {
            incarnation,
            log_end_offset: -1,
            last_caught_up_ms: now_ms,
            last_fetch_ms: now_ms,
            last_fetch_leader_end: -1,
        }
    }

    /// Records a fetch from `fetch_offset` when the leader's log ends at `leader_end`. A fetch
    /// from the leader's end means caught up now; one from where the leader ended at the
    /// previous fetch means it was caught up then.
    pub fn on_fetch(&mut self, incarnation: i64, fetch_offset: i64, leader_end: i64, now_ms: i64) {
        if incarnation != self.incarnation {
            *self = Follower::new(incarnation, now_ms);
        }
        if fetch_offset >= leader_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= self.last_fetch_leader_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        self.last_fetch_ms = now_ms;
        self.last_fetch_leader_end = leader_end;
    }
}

/// The followers a leader has heard from, by broker id.
pub type Followers = BTreeMap<i32, Follower>;

/// The high watermark over `isr` (the leader `me` counts with `leader_end`): the smallest log
/// end of its members, a member not heard from under its recorded incarnation counting as
/// nothing; never below `current`. While an ISR change is in flight, pass the committed and
/// the proposed members together (KIP-497's maximal ISR): a member of either counts.
pub fn high_watermark<'a>(
    me: i32,
    leader_end: i64,
    isr: impl IntoIterator<Item = &'a IsrMember>,
    followers: &Followers,
    current: i64,
) -> i64 {
    let lowest = isr
        .into_iter()
        .filter(|m| m.broker != me)
        .map(|m| {
            followers
                .get(&m.broker)
                .filter(|f| f.incarnation == m.incarnation)
                .map_or(-1, |f| f.log_end_offset)
        })
        .fold(leader_end, i64::min);
    lowest.max(current)
}

/// What the leader knows when it decides whether a follower joins.
#[derive(Debug, Clone, Copy)]
pub struct JoinCheck {
    /// The high watermark now.
    pub high_watermark: i64,
    /// First offset of the current leader epoch on the leader.
    pub epoch_start_offset: i64,
    /// The incarnation the follower's broker is registered with now (None: not registered).
    pub registered_incarnation: Option<i64>,
}

/// The ISR with `broker` added, if its follower has caught up (see the module docs) and is
/// not a member yet; an entry of an earlier incarnation is replaced.
pub fn expanded(
    isr: &[IsrMember],
    replicas: &[i32],
    broker: i32,
    follower: &Follower,
    check: JoinCheck,
) -> Option<Vec<IsrMember>> {
    let member = IsrMember {
        broker,
        incarnation: follower.incarnation,
    };
    let caught_up = follower.log_end_offset >= check.high_watermark
        && follower.log_end_offset >= check.epoch_start_offset;
    let current = check.registered_incarnation == Some(follower.incarnation);
    if isr.contains(&member) || !replicas.contains(&broker) || !caught_up || !current {
        return None;
    }
    let mut next: Vec<IsrMember> = isr.iter().filter(|m| m.broker != broker).copied().collect();
    next.push(member);
    next.sort();
    Some(next)
}

/// The ISR without the followers that have not caught up for `max_lag_ms` (never the leader
/// `me`); `None` when nobody lags.
pub fn shrunk(
    me: i32,
    isr: &[IsrMember],
    followers: &Followers,
    now_ms: i64,
    max_lag_ms: i64,
) -> Option<Vec<IsrMember>> {
    let lagging = |m: &IsrMember| {
        m.broker != me
            && followers
                .get(&m.broker)
                .filter(|f| f.incarnation == m.incarnation)
                .is_none_or(|f| now_ms - f.last_caught_up_ms > max_lag_ms)
    };
    if !isr.iter().any(lagging) {
        return None;
    }
    Some(isr.iter().filter(|m| !lagging(m)).copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(broker: i32, incarnation: i64) -> IsrMember {
        IsrMember {
            broker,
            incarnation,
        }
    }

    fn fetched(incarnation: i64, offset: i64, leader_end: i64, now: i64) -> Follower {
        let mut f = Follower::new(incarnation, 0);
        f.on_fetch(incarnation, offset, leader_end, now);
        f
    }

    #[test]
    fn the_high_watermark_is_the_lowest_log_end_in_the_isr_and_never_moves_back() {
        let isr = [member(0, 1), member(1, 1), member(2, 1)];
        let mut followers = Followers::new();
        // Step 1: nobody fetched yet: the leader's writes are not committed.
        assert_eq!(high_watermark(0, 10, &isr, &followers, 0), 0);
        // Step 2: one follower at 7, the other unknown.
        followers.insert(1, fetched(1, 7, 10, 1));
        assert_eq!(high_watermark(0, 10, &isr, &followers, 0), 0);
        // Step 3: both heard from: the lower one bounds it.
        followers.insert(2, fetched(1, 4, 10, 1));
        assert_eq!(high_watermark(0, 10, &isr, &followers, 0), 4);
        // Step 4: a follower of the ISR fetching under a new incarnation does not count.
        followers.insert(2, fetched(2, 10, 10, 2));
        assert_eq!(high_watermark(0, 10, &isr, &followers, 4), 4);
        // Step 5: alone in the ISR, the leader's log end.
        assert_eq!(high_watermark(0, 10, &[member(0, 1)], &followers, 4), 10);
        // Never backwards.
        assert_eq!(high_watermark(0, 3, &[member(0, 1)], &followers, 4), 4);
    }

    #[test]
    fn an_isr_change_in_flight_counts_old_and_new_members() {
        let committed = [member(0, 1), member(1, 1)];
        let pending = [member(0, 1), member(1, 1), member(2, 1)];
        let mut followers = Followers::new();
        followers.insert(1, fetched(1, 8, 10, 1));
        followers.insert(2, fetched(1, 5, 10, 1));
        // The joining member holds the high watermark back until the change is recorded.
        let maximal = committed.iter().chain(&pending);
        assert_eq!(high_watermark(0, 10, maximal, &followers, 0), 5);
        // A shrink in flight: the leaving member still counts.
        let shrink = [member(0, 1)];
        assert_eq!(
            high_watermark(0, 10, committed.iter().chain(&shrink), &followers, 0),
            8
        );
    }

    #[test]
    fn a_follower_joins_once_it_has_the_high_watermark_and_the_epoch_start_under_its_current_incarnation(
    ) {
        let isr = [member(0, 1)];
        let replicas = [0, 1, 2];
        let check = JoinCheck {
            high_watermark: 10,
            epoch_start_offset: 12,
            registered_incarnation: Some(3),
        };
        // Below the high watermark.
        assert_eq!(
            expanded(&isr, &replicas, 1, &fetched(3, 9, 20, 1), check),
            None
        );
        // At the high watermark but before the epoch's start.
        assert_eq!(
            expanded(&isr, &replicas, 1, &fetched(3, 11, 20, 1), check),
            None
        );
        // Both: joins with its incarnation.
        assert_eq!(
            expanded(&isr, &replicas, 1, &fetched(3, 12, 20, 1), check),
            Some(vec![member(0, 1), member(1, 3)])
        );
        // A process of an older incarnation never joins.
        assert_eq!(
            expanded(&isr, &replicas, 1, &fetched(2, 20, 20, 1), check),
            None
        );
        // Not a replica.
        assert_eq!(
            expanded(&isr, &[0, 2], 1, &fetched(3, 20, 20, 1), check),
            None
        );
        // Already a member.
        assert_eq!(
            expanded(
                &[member(0, 1), member(1, 3)],
                &replicas,
                1,
                &fetched(3, 20, 20, 1),
                check
            ),
            None
        );
    }

    #[test]
    fn a_follower_leaves_after_lagging_for_the_max_lag_time() {
        let isr = [member(0, 1), member(1, 1), member(2, 1)];
        let mut followers = Followers::new();
        let mut f1 = Follower::new(1, 0);
        let mut f2 = Follower::new(1, 0);
        // t=1s: both fetch from the leader's end (caught up).
        f1.on_fetch(1, 100, 100, 1_000);
        f2.on_fetch(1, 100, 100, 1_000);
        // t=2s: the leader is at 200; f1 fetches from 100 (caught up as of its last fetch),
        // f2 stops fetching.
        f1.on_fetch(1, 100, 200, 2_000);
        // t=3s: f1 reaches 200 (where the leader was at its previous fetch).
        f1.on_fetch(1, 200, 300, 3_000);
        followers.insert(1, f1);
        followers.insert(2, f2);
        assert_eq!(shrunk(0, &isr, &followers, 20_000, 30_000), None);
        // t=32s: f2 last caught up at 1s: out; f1 caught up at 2s: out only after 32s.
        assert_eq!(
            shrunk(0, &isr, &followers, 31_500, 30_000),
            Some(vec![member(0, 1), member(1, 1)])
        );
        // A member never heard from at all is out once the leader has waited the lag time.
        assert_eq!(
            shrunk(0, &[member(0, 1), member(3, 1)], &followers, 31_500, 30_000),
            Some(vec![member(0, 1)])
        );
        // The leader itself never leaves.
        assert_eq!(shrunk(0, &[member(0, 1)], &followers, 99_000, 30_000), None);
    }
}
