//! A tiered replica's log checked against its remote log metadata before it leads. A broker
//! with tiered storage may open a tiered partition whose log is missing, empty or short of
//! what the bucket holds (its directory lost, a new volume, a journal replay that stopped
//! early); leading from it would hand out offsets the bucket already holds, and consumers
//! would read the bucket's records at them. So such a replica does not act as a leader (clients
//! are answered NOT_LEADER_OR_FOLLOWER and retry) until tiered storage has read the manifest
//! and decided (the broker's tiered-storage opening): keep the log, or restart it empty after the
//! remote end with the remote log's leader epochs and producer state, then continue it with
//! the journal's batches that follow.

use std::sync::atomic::Ordering;

use super::{rebuild_producer_state, JournalChain, Partition, Role};
use crate::producer::ProducerSnapshot;
use tributary_storage::StorageError;

/// What tiered storage decided for a log awaiting its remote log check.
#[derive(Debug, Clone, Copy)]
pub enum RemoteCheck<'a> {
    /// The local log reaches the remote end (or nothing is remote): lead from it as it is.
    Keep,
    /// The local log ends before the remote log does: restart it after the remote end.
    Restart(RemoteRestart<'a>),
}

/// A log restarted after its remote log.
#[derive(Debug, Clone, Copy)]
pub struct RemoteRestart<'a> {
    /// The local log end the decision was made on: if the log changed since, the decision
    /// is not applied.
    pub local_end: i64,
    /// Where the log restarts, its local log start and next offset: the remote log's end.
    pub offset: i64,
    /// The remote log's leader epochs (epoch, start offset), oldest first.
    pub epochs: &'a [(i32, i64)],
    /// The producer state as of `offset` (the snapshot of the last remote segment), if the
    /// remote log has one.
    pub producers: Option<&'a ProducerSnapshot>,
}

impl Partition {
    /// Whether the log awaits its check against the remote log metadata (and this replica
    /// does not act as a leader meanwhile).
    pub fn awaits_remote_log(&self) -> bool {
        self.awaits_remote_log.load(Ordering::Acquire)
    }

    /// Ends the wait of a log awaiting its remote log check as `check` says, while this
    /// replica still holds `expected` (the decision read the bucket without the lock): true
    /// once the log no longer waits, false when the role or the log changed meanwhile (check
    /// again). A restarted log continues with the journal's held batches that follow the
    /// remote end, and, as a leader, starts its epoch at its new end (KIP-279).
    pub fn finish_remote_check(
        &self,
        check: RemoteCheck<'_>,
        expected: Role,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let mut state = self.state.lock();
        if !self.awaits_remote_log() {
            return Ok(true);
        }
        if *self.role.read() != expected {
            return Ok(false);
        }
        let restart = match check {
            RemoteCheck::Keep => None,
            RemoteCheck::Restart(restart) if state.log.log_end_offset() == restart.local_end => {
                Some(restart)
            }
            RemoteCheck::Restart(_) => return Ok(false),
        };
        match restart {
            None => {
                let held = std::mem::take(&mut state.held_journal);
                if !held.is_empty() {
                    tracing::warn!(
                        partition = ?self,
                        entries = held.len(),
                        "journaled batches that do not continue the log are dropped"
                    );
                }
            }
            Some(restart) => {
                let first_held = state.held_journal.first().map(|(base, _)| *base);
                let log = &mut state.log;
                let local_end = log.log_end_offset();
                log.truncate_fully_and_start_at(restart_offset(restart.offset, first_held))?;
                log.restore_epochs(restart.epochs)?;
                // Taken only now: a restart that failed above keeps them for the next check.
                let held = std::mem::take(&mut state.held_journal);
                let log = &mut state.log;
                let replayed = log
                    .replay_journaled(held.clone(), now_ms)
                    .and_then(|replayed| {
                        if replayed.appended > 0 {
                            log.flush()?;
                        }
                        Ok(replayed)
                    });
                let replayed = match replayed {
                    Ok(replayed) => replayed,
                    Err(error) => {
                        // Acknowledged records the journal's space may no longer hold: they
                        // stay held for the next check, which restarts the log again.
                        state.held_journal = held;
                        return Err(error);
                    }
                };
                let log = &mut state.log;
                if !replayed.rest.is_empty() {
                    tracing::warn!(
                        partition = ?self,
                        entries = replayed.rest.len(),
                        "journaled batches past a gap in the journal are dropped"
                    );
                }
                let (producers, txns) = rebuild_producer_state(log, restart.producers)?;
                tracing::warn!(
                    partition = ?self,
                    local_end,
                    remote_end = restart.offset,
                    log_end_offset = state.log.log_end_offset(),
                    journaled = replayed.appended,
                    "the local log ended before the remote log: restarted after the remote end"
                );
                state.producers = producers;
                state.txns = txns;
                state.journal = JournalChain {
                    end: state.log.recovery_point(),
                    queued: Vec::new(),
                };
                if let Role::Leader { epoch } = expected {
                    self.start_leading(&mut state, epoch, now_ms);
                }
                let end = state.log.log_end_offset();
                self.advance_durable(end);
            }
        }
        self.awaits_remote_log.store(false, Ordering::Release);
        if expected.is_leader() {
            self.recompute_high_watermark(state);
        } else {
            drop(state);
        }
        Ok(true)
    }
}

/// Where a log restarted after its remote end (`remote_end`) starts: there, unless the
/// journal's held batches begin further on (the journal wrapped past what was lost with the
/// directory), when it starts at them, so those acknowledged records keep their offsets and
/// no offset below them is handed out again. The offsets between are lost with the directory.
fn restart_offset(remote_end: i64, first_held: Option<i64>) -> i64 {
    first_held.map_or(remote_end, |base| base.max(remote_end))
}

#[cfg(test)]
mod tests {
    use tributary_storage::journal::{Entry, FileSystemSpace, Journal, Replay};
    use tributary_storage::test_util::{simple, NOW};
    use tributary_storage::LogConfig;
    use uuid::Uuid;

    use super::{restart_offset, RemoteCheck, RemoteRestart};
    use crate::partition::{Partition, Recovery, Role};

    /// Two-record batches at `base` as the journal holds them; `torn` spoils the CRC.
    fn journaled(base: i64, torn: bool) -> Vec<u8> {
        let mut batch = simple(2, NOW).to_vec();
        batch[..8].copy_from_slice(&base.to_be_bytes());
        if torn {
            let last = batch.len() - 1;
            batch[last] ^= 0xff;
        }
        batch
    }

    #[test]
    fn a_restart_whose_replay_fails_keeps_the_held_batches_for_the_next_check() {
        let (dir, journal_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let path = journal_dir.path().join("journal");
        let topic = ("t", Uuid::from_u128(7));
        // The journal kept batches past a lost stretch (offsets 100 on) of an empty log; the
        // second no longer passes its CRC, so replaying them fails.
        let (good, bad) = (journaled(100, false), journaled(102, true));
        let entry = |base_offset, batch| Entry {
            topic_id: topic.1,
            partition: 0,
            base_offset,
            batches: [batch, &[][..]],
        };
        let mut journal = Journal::prepare(&path, 4 << 20, 0, &FileSystemSpace)
            .unwrap()
            .expect("room for a journal");
        journal
            .commit(&[entry(100, &good[..]), entry(102, &bad[..])])
            .unwrap();
        drop(journal);
        let replay = Replay::scan(&path).unwrap();
        let role = Role::Leader { epoch: 1 };
        let recovery = Recovery {
            replay: &replay,
            awaits_remote_log: true,
        };
        let p = Partition::open(
            dir.path(),
            topic,
            0,
            role,
            LogConfig::default().into(),
            recovery,
        )
        .unwrap();
        let held = || p.state.lock().held_journal.len();
        assert_eq!(held(), 2);
        let restart = RemoteRestart {
            local_end: 0,
            offset: 50,
            epochs: &[(1, 0)],
            producers: None,
        };
        assert!(p
            .finish_remote_check(RemoteCheck::Restart(restart), role, NOW)
            .is_err());
        assert_eq!(held(), 2, "the held batches wait for the next check");
        assert!(p.awaits_remote_log());
    }

    #[test]
    fn a_restart_never_starts_below_the_journaled_batches_it_keeps() {
        assert_eq!(restart_offset(7764, None), 7764, "nothing held");
        assert_eq!(
            restart_offset(7764, Some(7000)),
            7764,
            "held batches overlap the remote log"
        );
        assert_eq!(
            restart_offset(7764, Some(7764)),
            7764,
            "held batches continue it"
        );
        assert_eq!(
            restart_offset(7764, Some(7950)),
            7950,
            "the journal kept only batches past a lost stretch"
        );
    }
}
