//! What a run sends, prepared once before the first frame: the served versions, the corpus and
//! the regression seeds, their topics, and the corpus widened to every served version. All of
//! it is a function of the corpus files and the broker's ApiVersions answer, never of time or
//! thread interleaving, so the same seed generates the same cases on every machine.

use std::collections::BTreeSet;

use kafka_protocol::messages::RequestKind;

use super::Options;
use crate::checks::health::MARKER_TOPIC;
use crate::corpus::widen::{widen, Served};
use crate::corpus::{regression, Corpus, Entry};
use crate::mutate::typed::Vocabulary;
use crate::{client, wire, Error, Result};

/// What the run sends, prepared once.
pub(super) struct Setup {
    pub(super) served: Served,
    pub(super) topics: Vec<(String, i32)>,
    pub(super) vocab: Vocabulary,
    pub(super) wide: Vec<Entry>,
    pub(super) seeds: Vec<Entry>,
}

impl Setup {
    /// How many served (API, version) pairs the widened corpus has a frame for, of how many.
    pub(super) fn coverage(&self) -> (usize, usize) {
        let have: BTreeSet<(i16, i16)> = self
            .wide
            .iter()
            .map(|e| (e.api_key, e.api_version))
            .collect();
        let served: Vec<(i16, i16)> = self
            .served
            .iter()
            .flat_map(|&(api, lo, hi)| (lo..=hi).map(move |v| (api as i16, v)))
            .collect();
        (
            served.iter().filter(|k| have.contains(k)).count(),
            served.len(),
        )
    }

    /// Served versions, corpus and regression seeds, their topics created, the corpus widened.
    pub(super) fn prepare(bootstrap: &str, opts: &Options) -> Result<Setup> {
        let served = client::served(bootstrap)?;
        let mut corpus = Corpus::load(&opts.corpus)?;
        corpus.merge(regression::seeds()?);
        for name in &opts.skip_seeds {
            if !corpus.seeds.iter().any(|s| &s.source == name) {
                let names: Vec<&str> = corpus.seeds.iter().map(|s| s.source.as_str()).collect();
                return Err(Error::Setup(format!(
                    "--skip-seed {name}: no such regression seed (there are {})",
                    names.join(", ")
                )));
            }
        }
        corpus
            .seeds
            .retain(|s| !opts.skip_seeds.contains(&s.source));
        let mut topics: Vec<(String, i32)> = corpus.topics.iter().cloned().collect();
        topics.push((MARKER_TOPIC.to_string(), 1));
        ensure_topics(bootstrap, &topics)?;
        let vocab = Vocabulary {
            topics: topics.iter().map(|(t, _)| t.clone()).collect(),
            groups: groups_of(&corpus.frames),
        };
        let topic = topics.first().map_or("fz-g1", |(t, _)| t.as_str());
        let group = vocab.groups.first().map_or("fz-group", |g| g.as_str());
        let wide = widen(&corpus.frames, &served, topic, group);
        if wide.is_empty() {
            return Err(Error::Setup(
                "the corpus is empty: run `tributary-fuzz capture` first".into(),
            ));
        }
        Ok(Setup {
            served,
            topics,
            vocab,
            wide,
            seeds: corpus.seeds,
        })
    }
}

/// Creates the topics the corpus expects (again after fuzzed DeleteTopics removed some).
pub(super) fn ensure_topics(bootstrap: &str, topics: &[(String, i32)]) -> Result<()> {
    let errors = client::create_topics(bootstrap, topics)?;
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Setup(format!(
            "creating the corpus topics failed: {errors:?}"
        ))),
    }
}

/// Consumer groups named in the corpus (JoinGroup, OffsetCommit), for typed mutation.
fn groups_of(frames: &[Entry]) -> Vec<String> {
    let mut groups: Vec<String> = frames
        .iter()
        .filter_map(|e| match wire::decode_request(&e.frame)?.2 {
            RequestKind::JoinGroup(r) => Some(r.group_id.0.to_string()),
            RequestKind::OffsetCommit(r) => Some(r.group_id.0.to_string()),
            _ => None,
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups
}
