//! The generic REST storage every resource goes through, as the real server's registry store:
//! decode (unknown fields, defaults), the kind's strategy (status subresource, generation,
//! immutable metadata), validation, field ownership, resourceVersion preconditions, then the
//! write and the controllers that react to it.

mod admission;
mod defaults;
mod delete;
mod escalation;
mod pods;
mod read;
mod scale;
mod service_account;
mod services;
mod strategy;
mod token;
mod write;

use std::sync::Arc;

use serde_json::Value;

pub(crate) use delete::{DeleteOptions, FOREGROUND, ORPHAN};
pub use pods::PodLogs;
pub(crate) use read::ListOptions;
pub(crate) use strategy::has_finalizers;

use super::rbac::UserInfo;
use super::resources::ResourceType;
use super::store::Key;

/// What a request addresses: a resource in one version, a namespace, maybe an object and a
/// subresource.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) rt: Arc<ResourceType>,
    pub(crate) version: String,
    /// Empty for cluster-scoped resources (and for lists across namespaces).
    pub(crate) namespace: String,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
}

impl Target {
    /// The storage key of object `name`.
    pub(crate) fn key(&self, name: &str) -> Key {
        Key::new(&self.rt.storage, &self.namespace, name)
    }

    /// `group/version` of the request.
    pub(crate) fn api_version(&self) -> String {
        self.rt.api_version(&self.version)
    }

    /// The subresource, `""` for the main resource.
    pub(crate) fn subresource(&self) -> &str {
        self.sub.as_deref().unwrap_or_default()
    }

    /// Whether this version has a status subresource.
    pub(crate) fn has_status(&self) -> bool {
        self.rt.version(&self.version).is_some_and(|v| v.status)
    }
}

/// `fieldValidation`: what to do with fields the type does not declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Refuse the request (kubectl's default).
    Strict,
    /// Drop them and warn.
    Warn,
    /// Drop them silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the query value; the real server's default (no parameter) is Warn.
    pub(crate) fn parse(v: Option<&str>) -> Result<Self, super::error::ApiError> {
        match v.unwrap_or("Warn") {
            "Strict" => Ok(FieldValidation::Strict),
            "Warn" | "" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(super::error::ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn, or Strict, got {other:?}"
            ))),
        }
    }
}

/// How a write is made.
#[derive(Clone, Debug)]
pub(crate) struct WriteOptions {
    /// Field manager recorded in managedFields.
    pub(crate) manager: String,
    /// Unknown-field handling.
    pub(crate) validation: FieldValidation,
    /// `dryRun=All`: everything but storing.
    pub(crate) dry_run: bool,
    /// Server-side apply `force`.
    pub(crate) force: bool,
    /// Whom the write acts as; `None` for the server's own writes.
    pub(crate) user: Option<UserInfo>,
}

/// A write's answer.
pub(crate) struct Written {
    /// The object as the client's version serves it.
    pub(crate) object: Value,
    /// HTTP status: 201 for creations, 200 otherwise.
    pub(crate) code: u16,
    /// `Warning` headers (unknown fields under `fieldValidation=Warn`).
    pub(crate) warnings: Vec<String>,
}

impl Written {
    /// An answer without warnings.
    pub(crate) fn new(object: Value, code: u16) -> Self {
        Written {
            object,
            code,
            warnings: Vec::new(),
        }
    }

    /// The answer with `warnings` added.
    pub(crate) fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings.extend(warnings);
        self
    }
}
