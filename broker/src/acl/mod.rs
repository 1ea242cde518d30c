//! The authorizer (`authorizer.class.name` set): Kafka's ACLs, created, listed and deleted by
//! CreateAcls, DescribeAcls and DeleteAcls (`kafka-acls.sh`, the Admin client), saved in
//! `acls.json` in the data directory (in cluster mode, shared by every broker through
//! Kubernetes: [`Authorizer::open_shared`]), and checked by the request handlers through
//! [`crate::handlers::RequestContext`]. Without it every client may do everything, as in
//! Kafka without an authorizer.

pub mod decide;
pub mod model;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::shared_state::{attach, Change, Shared};

pub use decide::{Access, Policy};
pub use model::{AclBinding, AclFilter, Operation, ResourceType, CLUSTER_NAME};

/// File holding the ACLs in the data directory.
const FILE: &str = "acls.json";

/// The authorizer cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The saved ACLs are unreadable.
    #[error(transparent)]
    Load(#[from] crate::fsutil::JsonFileError),
    /// A setting has a value Kafka would refuse.
    #[error("{key}={value:?}: expected true or false")]
    Setting {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
    },
}

/// A change could not be saved; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Writing `acls.json` failed.
    #[error("cannot save the ACLs: {0}")]
    Io(#[from] std::io::Error),
    /// The shared store refused or failed the write.
    #[error("cannot save the ACLs: {0}")]
    Shared(String),
}

/// Every ACL, as the shared store holds them (the format is the shared document's).
pub use tributary_crds::acls::AclSet;

/// The authorizer the settings ask for: `None` unless `authorizer.class.name` names one (any
/// Kafka authorizer class selects this one), with `super.users` (`User:a;User:b`) and
/// `allow.everyone.if.no.acl.found` (default false). Its ACLs are those in `data_dir`, or
/// those `shared` holds (cluster mode).
pub fn from_settings(
    settings: &crate::security::settings::SecurityProps,
    data_dir: &Path,
    shared: Option<Arc<dyn Shared<AclSet>>>,
) -> Result<Option<Arc<Authorizer>>, AclError> {
    let enabled = settings
        .global("authorizer.class.name")
        .is_some_and(|c| !c.trim().is_empty());
    if !enabled {
        return Ok(None);
    }
    let super_users = settings
        .global("super.users")
        .unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    const OPEN: &str = "allow.everyone.if.no.acl.found";
    let allow_if_no_acl = match settings.global(OPEN).map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AclError::Setting {
                key: OPEN,
                value: other.to_owned(),
            })
        }
    };
    let policy = Policy {
        super_users,
        allow_if_no_acl,
    };
    Authorizer::open_shared(data_dir, policy, shared).map(Some)
}

/// The ACLs and the policy they are checked under.
pub struct Authorizer {
    policy: Policy,
    /// Where they persist on their own (standalone).
    path: PathBuf,
    /// Where they persist when they are shared (cluster mode); then the file is not used.
    shared: Option<Arc<dyn Shared<AclSet>>>,
    /// Replaced whole on every change, so a check reads a consistent set without a lock held
    /// while it decides.
    acls: RwLock<Arc<Vec<AclBinding>>>,
    /// Serializes changes to the file (read, change, save, publish).
    changing: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("policy", &self.policy)
            .field("shared", &self.shared.is_some())
            .field("acls", &self.current().len())
            .finish()
    }
}

impl Authorizer {
    /// Loads the ACLs saved in `data_dir`, if any.
    pub fn open(data_dir: &Path, policy: Policy) -> Result<Authorizer, AclError> {
        let path = data_dir.join(FILE);
        let acls: Vec<AclBinding> = crate::fsutil::read_json_or_default(&path)?;
        Ok(Authorizer {
            policy,
            path,
            shared: None,
            acls: RwLock::new(Arc::new(acls)),
            changing: parking_lot::Mutex::new(()),
        })
    }

    /// The ACLs checked under `policy`: those saved in `data_dir`, or with `shared` (cluster
    /// mode) those it holds from then on (the data directory's file is no longer read or
    /// written, and changes are written there).
    pub fn open_shared(
        data_dir: &Path,
        policy: Policy,
        shared: Option<Arc<dyn Shared<AclSet>>>,
    ) -> Result<Arc<Authorizer>, AclError> {
        let authorizer = Arc::new(Authorizer {
            shared,
            ..Authorizer::open(data_dir, policy)?
        });
        if let Some(shared) = &authorizer.shared {
            attach(&authorizer, shared, |me, acls| {
                me.publish(acls.into_iter().collect());
            });
        }
        Ok(authorizer)
    }

    fn publish(&self, acls: Vec<AclBinding>) {
        *self.acls.write() = Arc::new(acls);
    }

    fn current(&self) -> Arc<Vec<AclBinding>> {
        self.acls.read().clone()
    }

    /// Whether `access` is allowed.
    pub fn authorize(&self, access: Access<'_>) -> bool {
        decide::authorize(&self.current(), &self.policy, access)
    }

    /// Whether `principal` may perform `operation` on some resource of type `kind`.
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        kind: ResourceType,
    ) -> bool {
        decide::authorize_any(
            &self.current(),
            &self.policy,
            principal,
            host,
            operation,
            kind,
        )
    }

    /// The `authorizedOperations` bit field of a resource.
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: &str,
        kind: ResourceType,
        name: &str,
    ) -> i32 {
        decide::authorized_operations(&self.current(), &self.policy, principal, host, kind, name)
    }

    /// The bindings `filter` matches.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.current()
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Adds `bindings` (one already present is left as it is) and saves.
    pub async fn create(&self, bindings: &[AclBinding]) -> Result<(), StoreError> {
        self.change(&|all| {
            for b in bindings {
                all.insert(b.clone());
            }
        })
        .await
    }

    /// Removes the bindings each filter matches and saves; returns them per filter (a binding
    /// two filters match is reported under both, as Kafka does).
    pub async fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, StoreError> {
        let matched = parking_lot::Mutex::new(Vec::new());
        self.change(&|all| {
            *matched.lock() = filters
                .iter()
                .map(|f| all.iter().filter(|b| f.matches(b)).cloned().collect())
                .collect();
            all.retain(|b| !filters.iter().any(|f| f.matches(b)));
        })
        .await?;
        Ok(matched.into_inner())
    }

    /// Applies `change` where the ACLs are kept, then publishes the result; nothing changes
    /// if saving fails.
    async fn change(&self, change: Change<'_, AclSet>) -> Result<(), StoreError> {
        match &self.shared {
            Some(shared) => {
                let written = shared.update(change).await.map_err(StoreError::Shared)?;
                self.publish(written.into_iter().collect());
                Ok(())
            }
            None => self.change_file(change),
        }
    }

    fn change_file(&self, change: Change<'_, AclSet>) -> Result<(), StoreError> {
        let _one_at_a_time = self.changing.lock();
        let mut all: AclSet = self.current().iter().cloned().collect();
        change(&mut all);
        let list: Vec<AclBinding> = all.into_iter().collect();
        crate::fsutil::write_json(&self.path, &list)?;
        self.publish(list);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::model::{PatternType, Permission};
    use super::*;

    fn binding(name: &str, op: Operation) -> AclBinding {
        AclBinding::new(
            ResourceType::Topic.code(),
            name,
            PatternType::Literal.code(),
            "User:alice",
            "*",
            op.code(),
            Permission::Allow.code(),
        )
        .expect("valid")
    }

    fn any_on(name: &str) -> AclFilter {
        AclFilter {
            kind: ResourceType::Topic,
            name: Some(name.to_owned()),
            pattern: PatternType::Any,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    #[tokio::test]
    async fn acls_persist_in_the_data_directory_and_deletes_report_what_they_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = Authorizer::open(dir.path(), Policy::default()).expect("open");
        let (read, write) = (
            binding("a", Operation::Read),
            binding("b", Operation::Write),
        );
        auth.create(&[read.clone(), write.clone(), read.clone()])
            .await
            .expect("create");
        assert_eq!(auth.describe(&any_on("a")), vec![read.clone()]);

        let reopened = Authorizer::open(dir.path(), Policy::default()).expect("reopen");
        assert_eq!(reopened.describe(&any_on("b")), vec![write.clone()]);
        let removed = reopened
            .delete(&[any_on("a"), any_on("a"), any_on("c")])
            .await
            .expect("delete");
        assert_eq!(removed, vec![vec![read.clone()], vec![read], vec![]]);

        let again = Authorizer::open(dir.path(), Policy::default()).expect("reopen");
        assert!(again.describe(&any_on("a")).is_empty());
        assert_eq!(again.describe(&any_on("b")), vec![write]);
    }
}
