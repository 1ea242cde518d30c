//! Pod Security admission, as Kubernetes' pod-security-admission library: the Pod Security
//! Standards (`baseline` and `restricted`, each control at `latest`) evaluated against a pod
//! spec or a workload's pod template, the namespace labels that choose the levels, and the
//! answers (403 for `enforce`, `Warning` headers for `warn`, workloads and namespace labels).

mod admission;
mod baseline;
mod checks;
mod levels;
mod restricted;
#[cfg(test)]
mod tests;

pub(crate) use admission::{admit_namespace, admit_pod, admit_workload};
pub use checks::{evaluate, Violation};
pub use levels::{Level, LevelVersion, Policy};
