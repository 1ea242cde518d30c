//! What a group subscribes to: the union of its members' topic names and the topics their
//! regular expressions match (resolved by the broker, KIP-848), as metadata; and each
//! member's subscribed topic ids for the assignor. Regular expressions are RE2 syntax, as
//! Kafka's RE2/J, and must match the whole topic name.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use uuid::Uuid;

use super::error::HeartbeatError;
use super::member::Member;
use super::topics::{TopicMetadata, TopicsImage};

/// Compiles a subscription's regular expression to match whole topic names.
pub fn compile(regex: &str) -> Result<Regex, HeartbeatError> {
    Regex::new(&format!("^(?:{regex})$")).map_err(|e| HeartbeatError::InvalidRegularExpression {
        regex: regex.to_string(),
        reason: e.to_string(),
    })
}

/// The metadata of every existing topic `members` subscribe to, by name.
pub fn subscribed_topics<'a>(
    members: impl IntoIterator<Item = &'a Member>,
    topics: &TopicsImage,
) -> BTreeMap<String, TopicMetadata> {
    let mut names = BTreeSet::new();
    let mut regexes = BTreeSet::new();
    for m in members {
        names.extend(m.subscribed_topic_names.iter().cloned());
        if let Some(r) = &m.subscribed_topic_regex {
            regexes.insert(r.clone());
        }
    }
    let mut out: BTreeMap<String, TopicMetadata> = names
        .iter()
        .filter_map(|n| topics.get(n).map(|t| (n.clone(), t.clone())))
        .collect();
    // An expression that no longer compiles (from an older record) matches nothing.
    let compiled: Vec<Regex> = regexes.iter().filter_map(|r| compile(r).ok()).collect();
    if !compiled.is_empty() {
        for t in topics.iter().filter(|t| topics.regex_may_match(&t.name)) {
            if compiled.iter().any(|r| r.is_match(&t.name)) {
                out.insert(t.name.clone(), t.clone());
            }
        }
    }
    out
}

/// The ids of the topics `member` subscribes to among the group's `subscribed` topics.
pub fn member_topics(
    member: &Member,
    subscribed: &BTreeMap<String, TopicMetadata>,
) -> BTreeSet<Uuid> {
    let mut out: BTreeSet<Uuid> = member
        .subscribed_topic_names
        .iter()
        .filter_map(|n| subscribed.get(n).map(|t| t.id))
        .collect();
    if let Some(regex) = member
        .subscribed_topic_regex
        .as_deref()
        .and_then(|r| compile(r).ok())
    {
        out.extend(
            subscribed
                .values()
                .filter(|t| regex.is_match(&t.name))
                .map(|t| t.id),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> TopicsImage {
        TopicsImage::new(
            ["orders", "orders-eu", "payments"]
                .iter()
                .enumerate()
                .map(|(i, n)| TopicMetadata {
                    id: Uuid::from_u128(i as u128 + 1),
                    name: n.to_string(),
                    partitions: 2,
                }),
        )
    }

    #[test]
    fn names_and_whole_name_regexes_are_unioned_and_missing_topics_dropped() {
        let mut a = Member::new("a");
        a.subscribed_topic_names = ["payments".to_string(), "missing".to_string()].into();
        let mut b = Member::new("b");
        b.subscribed_topic_regex = Some("orders".into());
        let subscribed = subscribed_topics([&a, &b], &image());
        assert_eq!(
            subscribed.keys().collect::<Vec<_>>(),
            vec!["orders", "payments"],
            "the regex matches whole names only, so not orders-eu"
        );
        b.subscribed_topic_regex = Some("orders.*".into());
        let subscribed = subscribed_topics([&a, &b], &image());
        assert_eq!(subscribed.len(), 3);
        assert_eq!(
            member_topics(&b, &subscribed),
            [Uuid::from_u128(1), Uuid::from_u128(2)].into()
        );
        assert_eq!(member_topics(&a, &subscribed), [Uuid::from_u128(3)].into());
    }

    #[test]
    fn regexes_match_only_topics_the_member_may_describe_names_resolve_anyway() {
        let mut a = Member::new("a");
        a.subscribed_topic_names = ["orders-eu".to_string()].into();
        let mut b = Member::new("b");
        b.subscribed_topic_regex = Some("orders.*|payments".into());
        let hidden = image().hide_from_regex(|name| name != "orders-eu" && name != "payments");
        let subscribed = subscribed_topics([&a, &b], &hidden);
        assert_eq!(
            subscribed.keys().collect::<Vec<_>>(),
            vec!["orders", "orders-eu"],
            "payments is hidden from the regex; orders-eu is named explicitly"
        );
    }

    #[test]
    fn invalid_regexes_are_typed_errors() {
        assert!(matches!(
            compile("orders("),
            Err(HeartbeatError::InvalidRegularExpression { .. })
        ));
    }
}
