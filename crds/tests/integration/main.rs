//! The CRDs' integration tests, one binary: each module was a test file of its own, and its
//! tests keep their names under the module's (`validation::...`). `support` is the
//! client-side stand-in for the apiserver's validation.

mod crd_drift;
mod support;
mod validation;
