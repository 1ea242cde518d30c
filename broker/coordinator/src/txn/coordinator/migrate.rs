//! The one-time upgrade of a standalone broker whose transaction state predates
//! `__transaction_state`: the ids of its `transactions.json` are appended to their partitions
//! (so their producers keep their ids and epochs, and prepared ends are still completed),
//! then the file is set aside. Until both are done and durable, every id answers
//! COORDINATOR_LOAD_IN_PROGRESS, so nothing is decided on an incomplete state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::TransactionCoordinator;
use crate::log::{Entry, LogError};
use crate::txn::records::{encode_value, txn_key};
use crate::txn::store::{StoreError, TxnMap, TxnStore};
use crate::Runtime;
use tributary_storage::clock::now_ms;

/// How long to wait before retrying a migration that failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Records per appended batch.
const BATCH_RECORDS: usize = 200;

/// The state a broker kept before `__transaction_state`, still to be moved into it.
#[derive(Debug)]
pub struct Legacy {
    store: TxnStore,
    txns: TxnMap,
}

impl Legacy {
    /// The legacy state in `data_dir`, if any. Only a standalone broker has one (cluster mode
    /// came with the topic); in cluster mode a stray file is left alone with a warning.
    pub fn read(data_dir: &Path, standalone: bool) -> Result<Option<Legacy>, StoreError> {
        let store = TxnStore::new(data_dir);
        let Some(txns) = store.load()? else {
            return Ok(None);
        };
        if !standalone {
            tracing::warn!(
                ids = txns.len(),
                "ignoring transactions.json: cluster mode keeps transactions in __transaction_state"
            );
            return Ok(None);
        }
        Ok(Some(Legacy { store, txns }))
    }
}

/// Moves `legacy` into the topic, retrying until it succeeds or the broker closes, then opens
/// the coordinator.
pub(super) async fn run(coordinator: Arc<TransactionCoordinator>, legacy: Legacy) {
    loop {
        match migrate(&coordinator, &legacy).await {
            Ok(()) => break,
            Err(MigrateError::Log(LogError::Closed)) => return,
            Err(error) => {
                tracing::warn!(%error, "transaction state migration failed; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
    tracing::info!(
        ids = legacy.txns.len(),
        "moved transactions.json into __transaction_state"
    );
    Runtime::release(&coordinator);
}

/// Why one migration attempt failed.
#[derive(Debug, thiserror::Error)]
enum MigrateError {
    /// The topic could not be created or written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The file could not be set aside.
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn migrate(
    coordinator: &TransactionCoordinator,
    legacy: &Legacy,
) -> Result<(), MigrateError> {
    coordinator.runtime.ensure_topic()?;
    let mut by_partition: BTreeMap<i32, Vec<Entry>> = BTreeMap::new();
    for (id, txn) in &legacy.txns {
        by_partition
            .entry(coordinator.partition_for(id))
            .or_default()
            .push((txn_key(id), Some(encode_value(txn))));
    }
    for (partition, entries) in by_partition {
        for batch in entries.chunks(BATCH_RECORDS) {
            let appended = coordinator.runtime.log().append(
                partition,
                batch,
                None,
                now_ms(),
                coordinator.config.write_timeout,
            )?;
            appended.durable.await?;
        }
    }
    // Only once every record is durable: a crash before this migrates the same state again.
    legacy.store.retire()?;
    Ok(())
}
