//! What the transaction coordinator needs of the rest of the broker: producer ids, markers
//! in the transaction's partitions, and the group coordinator for transactional offsets.
//! A narrow trait, so the coordinator depends on no broker type and tests can stand in.

use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;

use crate::group::coordinator::CommitOffset;
use crate::producer::ProducerRef;
use crate::replica::append::{self, WriteWait};

/// How long a marker may take to be committed before the end is retried later.
pub const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// A marker on its way to being committed: appended to a partition this broker leads, or
/// sent to the partition's leader (WriteTxnMarkers), whose answer says it is committed.
#[derive(Debug)]
pub struct MarkerWrite(Pending);

#[derive(Debug)]
enum Pending {
    Local(WriteWait),
    Remote(tokio::task::JoinHandle<Result<(), ResponseError>>),
}

impl MarkerWrite {
    /// A marker appended here through the append path, whose answer waits for `write`.
    pub fn local(write: WriteWait) -> MarkerWrite {
        MarkerWrite(Pending::Local(write))
    }

    /// A marker another broker is writing; `sent` ends when it answered.
    pub fn remote(sent: tokio::task::JoinHandle<Result<(), ResponseError>>) -> MarkerWrite {
        MarkerWrite(Pending::Remote(sent))
    }

    /// Returns once the marker is committed and durable.
    pub async fn committed(self, timeout: Duration) -> Result<(), ResponseError> {
        match self.0 {
            Pending::Local(write) => {
                let deadline = tokio::time::Instant::now() + timeout;
                append::wait(&write, deadline)
                    .await
                    .map_err(|error| error.code())
            }
            Pending::Remote(sent) => match tokio::time::timeout(timeout, sent).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(ResponseError::UnknownServerError),
                Err(_) => Err(ResponseError::RequestTimedOut),
            },
        }
    }
}

/// The broker as the transaction coordinator sees it.
pub trait TxnHost: Send + Sync {
    /// A producer id no other producer has.
    fn next_producer_id(&self) -> BoxFuture<'_, Result<i64, ResponseError>>;

    /// Appends `producer`'s COMMIT or ABORT marker to the partition and starts making it
    /// durable; `Ok(None)` when the partition no longer exists (nothing is left to mark).
    fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer: ProducerRef,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<MarkerWrite>, ResponseError>;

    /// Commits offsets sent with a transaction to `group` once the transaction commits.
    fn commit_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: Vec<CommitOffset>,
    ) -> BoxFuture<'a, Result<(), ResponseError>>;
}
