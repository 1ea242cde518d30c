//! The operator's integration tests, one binary (one link, one process start per test under
//! nextest): each module was a test file of its own, and its tests keep their names under the
//! module's (`certificates::...`). `common` holds the shared set-up of the in-memory API tests.

mod certificates;
mod chart;
mod cluster_features;
mod common;
mod controller_elections;
mod controller_handover;
mod controller_loop;
mod decisions;
mod fake_api;
mod golden;
mod kafka_schema;
mod kafka_user;
mod manifest_scan;
mod network_policies;
mod placement;
mod pod_security;
mod rolling_update;
mod startup;
