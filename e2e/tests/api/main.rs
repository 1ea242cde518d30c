//! The API server's Kubernetes semantics, through the in-process `kube::Client` and raw
//! requests: each module one area, each test one behaviour a real API server has.

#[path = "../support/mod.rs"]
mod support;

mod aggregation;
mod authentication;
mod crds;
mod discovery;
mod lifecycle;
mod podsecurity;
mod reads;
mod robustness;
mod serviceaccounts;
mod token_review;
mod watch;
mod workloads;
mod writes;
