//! The corpus: request frames captured from real clients, stored as text so diffs stay
//! readable and the file is the same for the same traffic. Line formats:
//!
//! ```text
//! topic <name> <partitions>          a topic the frames expect to exist
//! frame <api> <version> <source> <hex>   one whole frame (size prefix included)
//! seed <name> <hex>                  a named regression frame, always sent first, unmutated
//! ```
//! `#` starts a comment line.

pub mod regression;
pub mod widen;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::wire::{self, hex};
use crate::{Error, Result};

/// One frame with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// API key of the frame.
    pub api_key: i16,
    /// API version of the frame.
    pub api_version: i16,
    /// Which client sent it (kcat, confluent-kafka, kafka-python, java), or how the harness
    /// made it (`reencoded:<source>`, `synthesized`, a regression seed's name).
    pub source: String,
    /// The whole frame, size prefix included.
    pub frame: Vec<u8>,
}

/// A parsed corpus file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corpus {
    /// Topics to create before sending (name, partitions).
    pub topics: BTreeSet<(String, i32)>,
    /// Captured frames.
    pub frames: Vec<Entry>,
    /// Named regression frames.
    pub seeds: Vec<Entry>,
}

impl Corpus {
    /// Parses corpus text; `path` is only for error messages.
    pub fn parse(text: &str, path: &str) -> Result<Corpus> {
        let mut corpus = Corpus::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| Error::Corpus {
                path: path.to_string(),
                line: i + 1,
                reason: reason.to_string(),
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["topic", name, parts] => {
                    let parts = parts
                        .parse()
                        .map_err(|_| bad("partitions is not a number"))?;
                    corpus.topics.insert((name.to_string(), parts));
                }
                ["frame", api, version, source, hexed] => {
                    let frame = wire::unhex(hexed).ok_or_else(|| bad("frame is not hex"))?;
                    let p =
                        wire::prefix(&frame).ok_or_else(|| bad("frame shorter than a header"))?;
                    let (api, version): (i16, i16) = (
                        api.parse().map_err(|_| bad("api key is not a number"))?,
                        version
                            .parse()
                            .map_err(|_| bad("version is not a number"))?,
                    );
                    if (p.api_key, p.api_version) != (api, version) {
                        return Err(bad("api key/version disagree with the frame's header"));
                    }
                    corpus.frames.push(Entry {
                        api_key: api,
                        api_version: version,
                        source: source.to_string(),
                        frame,
                    });
                }
                ["seed", name, hexed] => {
                    let frame = wire::unhex(hexed).ok_or_else(|| bad("seed is not hex"))?;
                    let p =
                        wire::prefix(&frame).ok_or_else(|| bad("seed shorter than a header"))?;
                    corpus.seeds.push(Entry {
                        api_key: p.api_key,
                        api_version: p.api_version,
                        source: name.to_string(),
                        frame,
                    });
                }
                _ => return Err(bad("expected `topic`, `frame` or `seed` and its fields")),
            }
        }
        Ok(corpus)
    }

    /// Reads a corpus file.
    pub fn load(path: &Path) -> Result<Corpus> {
        let text = std::fs::read_to_string(path)
            .map_err(Error::io(format!("reading corpus {}", path.display())))?;
        Corpus::parse(&text, &path.display().to_string())
    }

    /// The file text: topics, then frames sorted by (api, version, source, bytes), so the same
    /// traffic always gives the same file.
    pub fn format(&self) -> String {
        let mut out = String::from(
            "# tributary-fuzz corpus: request frames captured from real clients through a\n\
             # recording proxy; regenerate with `tributary-fuzz capture`.\n\
             # topic <name> <partitions> | frame <api key> <version> <source client> <hex>\n",
        );
        for (name, parts) in &self.topics {
            let _ = writeln!(out, "topic {name} {parts}");
        }
        let mut frames = self.frames.clone();
        frames.sort();
        frames.dedup();
        for e in &frames {
            let _ = writeln!(
                out,
                "frame {} {} {} {}",
                e.api_key,
                e.api_version,
                e.source,
                hex(&e.frame)
            );
        }
        for s in &self.seeds {
            let _ = writeln!(out, "seed {} {}", s.source, hex(&s.frame));
        }
        out
    }

    /// Adds another corpus's topics, frames and seeds.
    pub fn merge(&mut self, other: Corpus) {
        self.topics.extend(other.topics);
        self.frames.extend(other.frames);
        self.seeds.extend(other.seeds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corpus_round_trips_through_its_text_form_sorted() {
        let text = "# c\ntopic t 3\nframe 18 3 kcat 0000000a00120003000000010000\nframe 3 12 java 0000000a0003000c0000000100ff\nseed fz 0000000a00120003000000010000\n";
        let c = Corpus::parse(text, "x").unwrap();
        assert_eq!(c.topics.len(), 1);
        assert_eq!(c.frames[0].source, "kcat");
        assert_eq!(c.seeds[0].api_key, 18);
        let again = Corpus::parse(&c.format(), "y").unwrap();
        assert_eq!(again.frames[0].api_key, 3, "sorted by api key");
        assert_eq!(again.format(), c.format());
    }

    #[test]
    fn a_frame_line_that_lies_about_its_api_is_refused() {
        let err = Corpus::parse("frame 3 1 kcat 0000000a00120003000000010000\n", "f").unwrap_err();
        assert!(err.to_string().contains("f:1"), "{err}");
    }
}
