//! The regression seeds: the reproducer frames of known defects, byte for byte, sent first in every run.

use super::Corpus;
use crate::Result;

/// The seed file, compiled in so a run never lacks it.
pub const SEEDS: &str = include_str!("../../corpus/regressions.txt");

/// The regression seeds and the topics they need.
pub fn seeds() -> Result<Corpus> {
    Corpus::parse(SEEDS, "broker/fuzz/corpus/regressions.txt")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_known_defect_reproducers_are_all_there() {
        let c = super::seeds().unwrap();
        let names: Vec<&str> = c.seeds.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(
            names,
            [
                "gzip-garbage",
                "count-2147483647",
                "create-topics-2147483647-partitions",
                "log-append-time-count-2147483647",
                "decoder-offset-overflow",
                "decoder-timestamp-overflow",
            ]
        );
        assert!(c.topics.contains(&("fz-g1".to_string(), 1)));
        assert!(c.topics.contains(&("fz-o".to_string(), 1)));
        for s in &c.seeds {
            let size = i32::from_be_bytes(s.frame[..4].try_into().unwrap()) as usize;
            assert_eq!(
                size,
                s.frame.len() - 4,
                "{} has an honest size prefix",
                s.source
            );
        }
    }
}
