//! The transaction coordinator's deadlines on the coordinator runtime's timer (Kafka's
//! scheduled abort of timed-out transactions and its retries of unfinished ends): every id
//! whose state calls for the coordinator without a request has an entry, set when the state
//! is made current (a write, or the load of its partition). An open transaction's entry is
//! the first instant it is past its timeout; an end decided but maybe not completed (cut off
//! by a failed marker write, a dropped request or a restart) is tried again at once after a
//! load and a retry interval after anything else. A state that moved on leaves its entry
//! stale: the look finds nothing due and sets the entry the current state calls for. Ids idle
//! past the expiration are looked for on one periodic entry.

use std::sync::{Arc, Weak};

use super::TransactionCoordinator;
use crate::runtime::timer;
use crate::txn::host::TxnHost;
use crate::txn::metadata::{TxnMetadata, TxnState};

/// A key of the transaction coordinator's timer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TxnTimer {
    /// One transactional id's deadline: its transaction's timeout, or a retry of its end.
    Id(String),
    /// The periodic look for ids idle past transactional.id.expiration.ms.
    RemoveExpired,
}

/// How long after an end that did not complete it is tried again (the interval the broker has
/// always retried at).
pub(crate) const RETRY_MS: i64 = 1_000;

/// When `txn` next needs the coordinator without a request: the first instant its open
/// transaction is past its timeout, `retry_at` for an end decided but maybe not completed,
/// `None` when nothing is owed.
pub(crate) fn deadline(txn: &TxnMetadata, retry_at: i64) -> Option<i64> {
    match txn.state {
        TxnState::Ongoing => Some(
            txn.started_ms
                .saturating_add(i64::from(txn.timeout_ms))
                .saturating_add(1),
        ),
        TxnState::PrepareCommit | TxnState::PrepareAbort => Some(retry_at),
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => None,
    }
}

/// Whether the coordinator ends `txn` itself at `now`: a transaction past its timeout, or an
/// end decided and not completed.
pub(crate) fn is_due(txn: &TxnMetadata, now: i64) -> bool {
    txn.is_expired(now) || matches!(txn.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
}

impl TransactionCoordinator {
    /// Fires the deadlines on the runtime's timer until the coordinator is dropped, ending
    /// transactions through `host` (weak: the broker owns the coordinator). Call once, in a
    /// Tokio runtime; entries set before are kept.
    pub fn run_timers(self: &Arc<Self>, host: Weak<dyn TxnHost>) {
        self.timers.schedule(
            self.now()
                .saturating_add(self.config.remove_expired_interval_ms),
            &TxnTimer::RemoveExpired,
        );
        tokio::spawn(timer::run(
            Arc::downgrade(self),
            self.timers.clone(),
            |c| c.now(),
            move |c, key| c.tick(&host, key),
        ));
    }

    /// Starts what `key` calls for; the timer task does not wait on it.
    fn tick(self: &Arc<Self>, host: &Weak<dyn TxnHost>, key: &TxnTimer) {
        let Some(host) = host.upgrade() else {
            return;
        };
        let (coordinator, key) = (self.clone(), key.clone());
        tokio::spawn(async move { coordinator.fire(host.as_ref(), key).await });
    }

    /// Does what `key` calls for now: ends one id's transaction if it is due, or forgets the
    /// ids idle past the expiration and sets the next look for them.
    pub(super) async fn fire(self: &Arc<Self>, host: &dyn TxnHost, key: TxnTimer) {
        match key {
            TxnTimer::Id(id) => {
                let now = self.now();
                {
                    let mut scheduled = self.scheduled.lock();
                    if scheduled.get(&id).is_some_and(|&at| at <= now) {
                        scheduled.remove(&id);
                    }
                }
                self.end_if_due(host, &id).await;
            }
            TxnTimer::RemoveExpired => {
                self.forget_idle().await;
                self.timers.schedule(
                    self.now()
                        .saturating_add(self.config.remove_expired_interval_ms),
                    &TxnTimer::RemoveExpired,
                );
            }
        }
    }

    /// Sets `id`'s entry for `txn` (see [`deadline`]).
    pub(super) fn schedule(&self, id: &str, txn: &TxnMetadata, retry_at: i64) {
        if let Some(at) = deadline(txn, retry_at) {
            self.schedule_at(id, at);
        }
    }

    /// Asks for `id` to be looked at at `at`, unless a look no later is pending already (that
    /// one sets the entry its state then calls for).
    pub(super) fn schedule_at(&self, id: &str, at: i64) {
        let mut scheduled = self.scheduled.lock();
        if scheduled.get(id).is_some_and(|&pending| pending <= at) {
            return;
        }
        scheduled.insert(id.to_string(), at);
        self.timers.schedule(at, &TxnTimer::Id(id.to_string()));
    }

    /// Ends `id`'s transaction if [`is_due`]: aborts one past its timeout (bumping the epoch,
    /// which fences the producer until it re-initializes) or completes a decided end. What is
    /// not due, or not completed now, gets the entry it calls for.
    pub(super) async fn end_if_due(self: &Arc<Self>, host: &dyn TxnHost, id: &str) {
        if self.get(id).is_none() {
            // Not coordinated here (any more): nothing to lock.
            return;
        }
        let _serial = self.lock_id(id).await;
        // Looked at again under the id's lock: a request may have ended it meanwhile.
        let now = self.now();
        let Some(mut txn) = self.get(id) else {
            return;
        };
        if !is_due(&txn, now) {
            self.schedule(id, &txn, now.saturating_add(RETRY_MS));
            return;
        }
        let commit = txn.state == TxnState::PrepareCommit;
        if txn.state == TxnState::Ongoing {
            tracing::info!(transactional_id = %id, "aborting a transaction past its timeout");
            let before = txn.producer_epoch;
            if super::bump_epoch(&mut txn) {
                txn.last_producer_epoch = before;
            }
        }
        let completed = self.finish(host, id, txn, commit).await;
        if let Err(error) = &completed {
            tracing::warn!(transactional_id = %id, ?error, "transaction end not saved");
        }
        if completed != Ok(true) {
            self.schedule_at(id, self.now().saturating_add(RETRY_MS));
        }
    }

    /// The earliest entry on the timer (tests step the clock to it).
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.timers.next()
    }

    /// Fires every entry due at the coordinator's clock now, one after the other, as the timer
    /// task would (tests, with a clock they step).
    #[cfg(test)]
    pub(crate) async fn fire_due(self: &Arc<Self>, host: &dyn TxnHost) {
        for key in self.timers.take_due(self.now()) {
            self.fire(host, key).await;
        }
    }
}

#[cfg(test)]
mod tests;
