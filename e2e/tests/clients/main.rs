//! The real `kubectl`, `helm` and `tributary-operator` binaries against the API server served
//! over HTTP, through a kubeconfig. The tools come from `<repo>/.tools` (`.ci/install-tools.sh`);
//! a missing tool fails the test.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod cluster;
mod helm;
mod kubectl;
mod kubectl_auth;
mod kubectl_create;
mod kubectl_list;
mod kubectl_rollout;
mod operator;
