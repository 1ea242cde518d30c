//! Who may write: one instance at a time allocates ids, so that two writers never hand out the
//! same one. Behind a trait so that a Kubernetes Lease elector can replace the standalone one.

/// Decides whether this instance is the writer.
pub trait Elector: Send + Sync {
    /// True while this instance may append to `_schemas`.
    fn is_writer(&self) -> bool;
}

/// The elector of a registry run as the only instance: always the writer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Standalone;

impl Elector for Standalone {
    fn is_writer(&self) -> bool {
        true
    }
}
