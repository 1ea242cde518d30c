//! The registry's modes: whether it takes writes, and whether it takes them with the ids and
//! versions the caller gives (IMPORT, used to copy another registry's schemas in).

use serde::{Deserialize, Serialize};

/// A mode, global or per subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Mode {
    /// Normal operation: registrations get new ids and are checked for compatibility.
    #[default]
    #[serde(rename = "READWRITE")]
    ReadWrite,
    /// Registrations and deletes are refused (42205).
    #[serde(rename = "READONLY")]
    ReadOnly,
    /// Registrations give their own id and version and skip compatibility checks.
    #[serde(rename = "IMPORT")]
    Import,
}

impl Mode {
    /// Parses a mode as the REST API spells it; None for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "READWRITE" => Some(Mode::ReadWrite),
            "READONLY" | "READONLY_OVERRIDE" => Some(Mode::ReadOnly),
            "IMPORT" => Some(Mode::Import),
            _ => None,
        }
    }

    /// The name the REST API and the topic use.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }
}
