//! State every broker of a cluster shares (cluster mode): the ACLs, the SCRAM credentials and
//! the client quotas, each a JSON document kept in Kubernetes ([`crate::kube::document`]) that
//! every broker follows and any broker may change. A standalone broker keeps the same
//! documents in its data directory instead.

use std::sync::Arc;

use futures::future::BoxFuture;

/// A change to a shared document, applied again to a newer version when another writer came
/// first.
pub type Change<'a, T> = &'a (dyn Fn(&mut T) + Send + Sync);

/// A document every broker shares.
pub trait Shared<T>: Send + Sync {
    /// Applies `change` to the stored document, re-reading and re-applying it while other
    /// writers come first; returns the document written.
    fn update<'a>(&'a self, change: Change<'a, T>) -> BoxFuture<'a, Result<T, String>>;

    /// Calls `apply` with the stored document now and after every change, for as long as the
    /// process runs.
    fn follow(self: Arc<Self>, apply: Box<dyn Fn(T) + Send + Sync>);
}

/// Keeps `owner`'s state in `shared` from now on: runs `apply` on `owner` with the stored
/// document now and after every change, for as long as `owner` lives. Owners call it as they
/// are built, with the document they keep for their own writes.
pub fn attach<O, T>(
    owner: &Arc<O>,
    shared: &Arc<dyn Shared<T>>,
    apply: impl Fn(&O, T) + Send + Sync + 'static,
) where
    O: Send + Sync + 'static,
{
    let owner = Arc::downgrade(owner);
    shared.clone().follow(Box::new(move |document| {
        if let Some(owner) = owner.upgrade() {
            apply(&owner, document);
        }
    }));
}
