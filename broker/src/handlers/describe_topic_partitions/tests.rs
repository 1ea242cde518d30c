use std::collections::BTreeMap;

use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::*;

use super::*;
use crate::handlers::group_wire_tests::{broker, call, topic};
use crate::test_support::create_topic;

fn pages_of(topics: &[(&'static str, Option<i32>)], limit: i32) -> Vec<Page<'static>> {
    let mut pages = Vec::new();
    let mut cursor: Option<(&str, i32)> = None;
    loop {
        let after = cursor.map_or("", |(t, _)| t);
        let rest: Vec<_> = topics
            .iter()
            .copied()
            .filter(|(n, _)| *n >= after)
            .collect();
        let p = page(&rest, cursor, limit);
        cursor = p.next;
        pages.push(p);
        if cursor.is_none() || pages.len() > 100 {
            return pages;
        }
    }
}

#[test]
fn a_page_holds_whole_topics_while_they_fit() {
    let p = page(&[("a", Some(2)), ("b", Some(3))], None, 10);
    assert_eq!(
        p.topics,
        vec![
            PageTopic {
                name: "a",
                partitions: Some(0..2)
            },
            PageTopic {
                name: "b",
                partitions: Some(0..3)
            },
        ]
    );
    assert_eq!(p.next, None);
}

#[test]
fn a_topic_cut_short_ends_the_page_with_a_cursor_into_it() {
    let p = page(&[("a", Some(2)), ("b", Some(3)), ("c", Some(1))], None, 4);
    assert_eq!(p.topics.len(), 2);
    assert_eq!(p.topics[1].partitions, Some(0..2));
    assert_eq!(p.next, Some(("b", 2)));
    let rest = page(&[("b", Some(3)), ("c", Some(1))], p.next, 4);
    assert_eq!(rest.topics[0].partitions, Some(2..3));
    assert_eq!(rest.topics[1].partitions, Some(0..1));
    assert_eq!(rest.next, None);
}

#[test]
fn a_page_full_before_a_topic_points_at_its_first_partition() {
    let p = page(&[("a", Some(2)), ("b", Some(3))], None, 2);
    assert_eq!(p.topics.len(), 1);
    assert_eq!(p.next, Some(("b", 0)));
}

#[test]
fn unknown_topics_take_no_room() {
    let p = page(&[("a", None), ("b", Some(1))], None, 1);
    assert_eq!(
        p.topics[0],
        PageTopic {
            name: "a",
            partitions: None
        }
    );
    assert_eq!(p.topics[1].partitions, Some(0..1));
    assert_eq!(p.next, None);
}

#[test]
fn following_cursors_shows_every_partition_once() {
    let topics = [
        ("a", Some(5)),
        ("b", Some(0)),
        ("c", Some(7)),
        ("d", Some(1)),
    ];
    for limit in 1..=14 {
        let mut seen = Vec::new();
        for p in pages_of(&topics, limit) {
            let total: i32 = p
                .topics
                .iter()
                .filter_map(|t| t.partitions.clone())
                .map(|r| r.end - r.start)
                .sum();
            assert!(total <= limit, "limit {limit}: a page of {total}");
            for t in p.topics {
                for i in t.partitions.into_iter().flatten() {
                    seen.push((t.name, i));
                }
            }
        }
        let want: Vec<_> = topics
            .iter()
            .flat_map(|(n, c)| (0..c.unwrap_or(0)).map(move |i| (*n, i)))
            .collect();
        assert_eq!(seen, want, "limit {limit}");
    }
}

#[test]
fn a_cursor_past_a_topic_end_shows_it_empty() {
    let p = page(&[("a", Some(2))], Some(("a", 9)), 5);
    assert_eq!(p.topics[0].partitions, Some(2..2));
    assert_eq!(p.next, None);
}

fn request(
    names: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            names
                .iter()
                .map(|n| TopicRequest::default().with_name(topic(n)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, i)| {
            Cursor::default()
                .with_topic_name(topic(t))
                .with_partition_index(i)
        }))
}

#[tokio::test]
async fn named_topics_come_sorted_with_partitions_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    create_topic(&b, "b-topic", 3, BTreeMap::new());
    let r: DescribeTopicPartitionsResponse = call(
        &b,
        ApiKey::DescribeTopicPartitions,
        0,
        &request(&["t", "b-topic", "missing", "bad name!"], 2000, None),
    )
    .await;
    let names: Vec<(&str, i16, usize)> = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map_or("", |n| n.as_str()),
                t.error_code,
                t.partitions.len(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("b-topic", 0, 3),
            ("bad name!", 17, 0),
            ("missing", 3, 0),
            ("t", 0, 2)
        ]
    );
    let image = b.metadata.image();
    let t = &r.topics[3];
    assert_eq!(t.topic_id, image.topic("t").unwrap().id);
    let p = &t.partitions[1];
    assert_eq!(
        (p.partition_index, p.leader_id.0, p.replica_nodes.len()),
        (1, 0, 1)
    );
    assert!(p.offline_replicas.is_empty());
    assert!(r.next_cursor.is_none());
}

#[tokio::test]
async fn every_topic_is_listed_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    create_topic(&b, "u", 3, BTreeMap::new());
    let mut cursor: Option<(String, i32)> = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let c = cursor.as_ref().map(|(t, i)| (t.as_str(), *i));
        let r: DescribeTopicPartitionsResponse =
            call(&b, ApiKey::DescribeTopicPartitions, 0, &request(&[], 2, c)).await;
        for t in &r.topics {
            for p in &t.partitions {
                seen.push((t.name.as_ref().unwrap().to_string(), p.partition_index));
            }
        }
        cursor = r
            .next_cursor
            .map(|c| (c.topic_name.to_string(), c.partition_index));
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<(String, i32)> = [("t", 0), ("t", 1), ("u", 0), ("u", 1), ("u", 2)]
        .iter()
        .map(|(t, i)| (t.to_string(), *i))
        .collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_cursor_naming_a_topic_not_asked_for_is_an_invalid_request() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let r: DescribeTopicPartitionsResponse = call(
        &b,
        ApiKey::DescribeTopicPartitions,
        0,
        &request(&["t"], 10, Some(("other", 0))),
    )
    .await;
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, ResponseError::InvalidRequest.code());
}

#[test]
fn the_limit_is_capped_by_the_broker() {
    let p = page(&[("wide", Some(2100))], None, limit(i32::MAX));
    assert_eq!(p.topics[0].partitions, Some(0..MAX_PARTITIONS_PER_RESPONSE));
    assert_eq!(p.next, Some(("wide", 2000)));
    assert_eq!(limit(10), 10);
}
