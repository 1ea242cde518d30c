//! One partition's offset commit, as both shards hand it over: the group coordinator stores
//! it for OffsetCommit, and the transaction coordinator passes a committed transaction's
//! offsets (TxnOffsetCommit) to the group coordinator through its host.

/// One partition's commit.
#[derive(Debug, Clone)]
pub struct CommitOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch (-1 unknown).
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}
