//! Tributary's own fuzz harness: structure-aware mutation of a corpus of real clients' request
//! frames, sent to the real `tributary-broker` binary over TCP, with checks that the broker
//! stays up, bounded and correct, and never acknowledges a batch consumers cannot read.
//!
//! Table of contents: [`corpus`] (captured frames, widening, regression seeds), [`capture`]
//! (the recording proxy), [`mutate`] (frame, primitive, typed, batch and bomb mutators),
//! [`run`] (the runner, which can fail but never hang), [`unwind`] (harness panics as
//! findings), [`checks`] (what fails a run), [`report`] (the summary).

pub mod broker;
pub mod capture;
pub mod checks;
pub mod client;
pub mod codec;
pub mod corpus;
pub mod mutate;
pub mod records;
pub mod report;
pub mod rng;
pub mod run;
pub mod unwind;
pub mod wire;

/// Errors of the harness itself (not findings: those are [`checks::Failure`]s).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// kafka-protocol could not encode a request.
    #[error("cannot encode API {api} v{version}: {reason}")]
    Encode {
        /// API key.
        api: i16,
        /// Version.
        version: i16,
        /// The crate's words.
        reason: String,
    },
    /// A corpus file is malformed.
    #[error("corpus {path}:{line}: {reason}; fix the line or re-run `tributary-fuzz capture`")]
    Corpus {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The broker (or a tool the harness runs) misbehaved outside the checks.
    #[error("{0}")]
    Setup(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// Result with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
