//! Levels, versions and the namespace labels that choose them, parsed as Kubernetes'
//! `PolicyToEvaluate`: an invalid `enforce` level fails closed (`restricted`), invalid `warn`
//! and `audit` levels fail open (`privileged`), an invalid version means `latest`.

use std::collections::BTreeMap;
use std::fmt;

/// The label prefix of every Pod Security label.
const PREFIX: &str = "pod-security.kubernetes.io/";

/// A Pod Security Standard, from most to least permissive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Unrestricted.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Pod hardening best practices.
    Restricted,
}

impl Level {
    /// Parses a label value; `Err` with Kubernetes' reason when it is none of the three.
    pub fn parse(s: &str) -> Result<Level, String> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err("must be one of privileged, baseline, restricted".into()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A level at a version: `None` is `latest`, `Some(n)` is `v1.n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelVersion {
    /// The standard.
    pub level: Level,
    /// The minor version of the standard; every control is evaluated as at `latest`, the
    /// version is kept for the messages.
    pub version: Option<u32>,
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            None => write!(f, "{}:latest", self.level.name()),
            Some(n) => write!(f, "{}:v1.{n}", self.level.name()),
        }
    }
}

impl LevelVersion {
    const PRIVILEGED: LevelVersion = LevelVersion {
        level: Level::Privileged,
        version: None,
    };

    /// Whether two answer alike (both privileged, or the same level and version).
    pub fn equivalent(&self, other: &LevelVersion) -> bool {
        self == other || (self.level == Level::Privileged && other.level == Level::Privileged)
    }
}

/// Parses a version label: `latest` or `v1.x`.
fn parse_version(s: &str) -> Result<Option<u32>, String> {
    if s == "latest" {
        return Ok(None);
    }
    s.strip_prefix("v1.")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| r#"must be "latest" or "v1.x""#.to_owned())
}

/// A namespace's policy: the three modes and the label errors found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Violations refuse pods.
    pub enforce: LevelVersion,
    /// Violations warn.
    pub warn: LevelVersion,
    /// Violations are recorded for audit.
    pub audit: LevelVersion,
    /// `label=value: reason` for each invalid label.
    pub errors: Vec<String>,
}

impl Policy {
    /// The policy namespace `labels` choose (unlabelled: privileged everywhere).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Policy {
        let mut p = Policy {
            enforce: LevelVersion::PRIVILEGED,
            warn: LevelVersion::PRIVILEGED,
            audit: LevelVersion::PRIVILEGED,
            errors: Vec::new(),
        };
        let mut has_enforce = false;
        let (mut has_warn, mut has_warn_version) = (false, false);
        for (mode, fail_open) in [("enforce", false), ("audit", true), ("warn", true)] {
            let slot = match mode {
                "enforce" => &mut p.enforce,
                "audit" => &mut p.audit,
                _ => &mut p.warn,
            };
            if let Some(v) = labels.get(&format!("{PREFIX}{mode}")) {
                match Level::parse(v) {
                    Ok(l) => {
                        slot.level = l;
                        has_enforce |= mode == "enforce";
                    }
                    Err(e) => {
                        slot.level = if fail_open {
                            Level::Privileged
                        } else {
                            Level::Restricted
                        };
                        p.errors.push(format!("{PREFIX}{mode}={v:?}: {e}"));
                    }
                }
                has_warn |= mode == "warn";
            }
            if let Some(v) = labels.get(&format!("{PREFIX}{mode}-version")) {
                has_warn_version |= mode == "warn";
                match parse_version(v) {
                    Ok(ver) => slot.version = ver,
                    Err(e) => {
                        slot.version = None;
                        p.errors.push(format!("{PREFIX}{mode}-version={v:?}: {e}"));
                    }
                }
            }
        }
        // Without a warn label, warn defaults to a stricter enforce level.
        if !has_warn && has_enforce && p.enforce.level > p.warn.level {
            p.warn.level = p.enforce.level;
            if !has_warn_version {
                p.warn.version = p.enforce.version;
            }
        }
        p
    }

    /// Whether nothing is checked at all.
    pub fn fully_privileged(&self) -> bool {
        self.errors.is_empty()
            && [self.enforce, self.warn, self.audit]
                .iter()
                .all(|lv| lv.level == Level::Privileged)
    }
}
