//! The CLI's integration tests, one binary: each module was a test file of its own, and its
//! tests keep their names under the module's (`tributary::...`). `common` holds the broker and
//! `trib` fixtures.

mod common;
mod schema;
mod tansu;
mod tributary;
mod usage;
