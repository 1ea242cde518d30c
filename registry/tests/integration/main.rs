//! The registry's process tests, one binary: each module was a test file of its own, and its
//! tests keep their names under the module's (`security::...`). `common` holds the broker,
//! registry and election fixtures.

mod common;
mod invalid_avro;
mod lease_election;
mod security;
mod writer_fencing;
