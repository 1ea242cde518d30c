//! Who may write: one instance at a time allocates ids, so that two writers never hand out the
//! same one. Behind a trait so that the standalone elector and the Kubernetes Lease elector
//! ([`crate::lease`]) are interchangeable for the service and the HTTP layer.

/// What this instance may do with a write request right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This instance may append to `_schemas` now.
    Writer,
    /// Another instance is the writer; writes are forwarded to its URL.
    Follower {
        /// The writer's advertised URL, as its Lease names it.
        writer: String,
    },
    /// No instance can take writes now (no writer known, or this one is still reading the
    /// topic to its end after taking over): writes are answered 50003 with this reason.
    Unavailable {
        /// Why, for the client's error message.
        reason: String,
    },
}

/// Decides whether this instance is the writer.
pub trait Elector: Send + Sync {
    /// The role now. `Writer` only while a write started now would finish before this
    /// instance could lose its right to write.
    fn role(&self) -> Role;

    /// The store found this instance fenced (a newer writer initialised the shared
    /// transactional producer): stop being the writer until a new term is won. The standalone
    /// elector has no terms: its store keeps refusing writes until the process restarts.
    fn deposed(&self) {}

    /// True while this instance may append to `_schemas`.
    fn is_writer(&self) -> bool {
        self.role() == Role::Writer
    }
}

/// The elector of a registry run as the only instance: always the writer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Standalone;

impl Elector for Standalone {
    fn role(&self) -> Role {
        Role::Writer
    }
}
