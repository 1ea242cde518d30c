//! What the transaction coordinator needs of the rest of the broker: producer ids, markers
//! in the transaction's partitions, and the group coordinator for transactional offsets.
//! A narrow trait, so the coordinator depends on no broker type and tests can stand in.

use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;

use crate::offset_commit::CommitOffset;
use tributary_storage::Marker;

/// How long a marker may take to be committed before the end is retried later.
pub const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// A marker on its way to being committed: appended to a partition this broker leads, or
/// sent to the partition's leader (WriteTxnMarkers), whose answer says it is committed.
pub struct MarkerWrite {
    pending: Pending,
    /// Run once a marker written here is committed.
    then: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for MarkerWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarkerWrite")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// Waits until a marker appended here is committed, or the deadline passes.
pub type LocalWait =
    Box<dyn FnOnce(tokio::time::Instant) -> BoxFuture<'static, Result<(), ResponseError>> + Send>;

enum Pending {
    Local(LocalWait),
    Remote(tokio::task::JoinHandle<Result<(), ResponseError>>),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Local(_) => f.write_str("Local"),
            Pending::Remote(sent) => f.debug_tuple("Remote").field(sent).finish(),
        }
    }
}

impl MarkerWrite {
    /// A marker appended here through the append path; `wait` resolves once it is committed.
    pub fn local(wait: LocalWait) -> MarkerWrite {
        MarkerWrite {
            pending: Pending::Local(wait),
            then: None,
        }
    }

    /// A marker another broker is writing; `sent` ends when it answered.
    pub fn remote(sent: tokio::task::JoinHandle<Result<(), ResponseError>>) -> MarkerWrite {
        MarkerWrite {
            pending: Pending::Remote(sent),
            then: None,
        }
    }

    /// Runs `then` once a marker written here is committed (nothing for one another broker
    /// writes: its own WriteTxnMarkers handler does what follows there).
    pub fn then_here(mut self, then: impl FnOnce() + Send + 'static) -> MarkerWrite {
        if matches!(self.pending, Pending::Local(_)) {
            self.then = Some(Box::new(then));
        }
        self
    }

    /// Returns once the marker is committed and durable.
    pub async fn committed(self, timeout: Duration) -> Result<(), ResponseError> {
        let committed = match self.pending {
            Pending::Local(wait) => wait(tokio::time::Instant::now() + timeout).await,
            Pending::Remote(sent) => match tokio::time::timeout(timeout, sent).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(ResponseError::UnknownServerError),
                Err(_) => Err(ResponseError::RequestTimedOut),
            },
        };
        if let (Ok(()), Some(then)) = (&committed, self.then) {
            then();
        }
        committed
    }
}

/// The broker as the transaction coordinator sees it.
pub trait TxnHost: Send + Sync {
    /// A producer id no other producer has.
    fn next_producer_id(&self) -> BoxFuture<'_, Result<i64, ResponseError>>;

    /// Appends the COMMIT or ABORT marker to the partition and starts making it durable;
    /// `Ok(None)` when the partition no longer exists (nothing is left to mark).
    fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        marker: Marker,
        now_ms: i64,
    ) -> Result<Option<MarkerWrite>, ResponseError>;

    /// Commits offsets sent with a transaction to `group` once the transaction commits.
    fn commit_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: Vec<CommitOffset>,
    ) -> BoxFuture<'a, Result<(), ResponseError>>;
}
