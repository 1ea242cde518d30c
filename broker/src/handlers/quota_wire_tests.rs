//! Client quotas over the wire: DescribeClientQuotas/AlterClientQuotas and throttled produce
//! and fetch. The test client's id is `wire-test`.

use kafka_protocol::messages::*;

use super::group_wire_tests::{broker, call, s};
use super::wire_tests::{batch, produce_request};

fn entity(pairs: &[(&str, Option<&str>)]) -> Vec<alter_client_quotas_request::EntityData> {
    pairs
        .iter()
        .map(|(kind, name)| {
            alter_client_quotas_request::EntityData::default()
                .with_entity_type(s(kind))
                .with_entity_name(name.map(s))
        })
        .collect()
}

fn set(key: &str, value: f64) -> alter_client_quotas_request::OpData {
    alter_client_quotas_request::OpData::default()
        .with_key(s(key))
        .with_value(value)
}

async fn alter(
    b: &std::sync::Arc<crate::broker::Broker>,
    version: i16,
    entries: Vec<alter_client_quotas_request::EntryData>,
    validate_only: bool,
) -> Vec<i16> {
    let request = AlterClientQuotasRequest::default()
        .with_entries(entries)
        .with_validate_only(validate_only);
    let response: AlterClientQuotasResponse =
        call(b, ApiKey::AlterClientQuotas, version, &request).await;
    response.entries.iter().map(|e| e.error_code).collect()
}

fn entry(
    pairs: &[(&str, Option<&str>)],
    ops: Vec<alter_client_quotas_request::OpData>,
) -> alter_client_quotas_request::EntryData {
    alter_client_quotas_request::EntryData::default()
        .with_entity(entity(pairs))
        .with_ops(ops)
}

/// (entity as (type, name) pairs, values) of every entity the filter finds.
async fn describe(
    b: &std::sync::Arc<crate::broker::Broker>,
    version: i16,
    components: &[(&str, i8, Option<&str>)],
    strict: bool,
) -> Result<Vec<(Vec<(String, Option<String>)>, Vec<(String, f64)>)>, i16> {
    let request = DescribeClientQuotasRequest::default()
        .with_strict(strict)
        .with_components(
            components
                .iter()
                .map(|(kind, match_type, name)| {
                    describe_client_quotas_request::ComponentData::default()
                        .with_entity_type(s(kind))
                        .with_match_type(*match_type)
                        .with_match(name.map(s))
                })
                .collect(),
        );
    let response: DescribeClientQuotasResponse =
        call(b, ApiKey::DescribeClientQuotas, version, &request).await;
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    Ok(response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let entity = e
                .entity
                .into_iter()
                .map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.map(|n| n.to_string()),
                    )
                })
                .collect();
            let values = e
                .values
                .into_iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            (entity, values)
        })
        .collect())
}

#[tokio::test]
async fn client_quotas_are_altered_and_described_as_kafka_filters_them() {
    const INVALID_REQUEST: i16 = 42;
    for version in 0..=1 {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path()).await;
        let codes = alter(
            &b,
            version,
            vec![
                entry(
                    &[("user", Some("alice")), ("client-id", None)],
                    vec![set("producer_byte_rate", 1024.0)],
                ),
                entry(
                    &[("client-id", Some("c"))],
                    vec![set("request_percentage", 12.5)],
                ),
                entry(&[("ip", Some("10.0.0.1")), ("user", None)], vec![]),
                entry(
                    &[("client-id", Some("d"))],
                    vec![set("producer_byte_rate", 1.5)],
                ),
                entry(&[("client-id", Some("d"))], vec![set("no_such_quota", 1.0)]),
            ],
            false,
        )
        .await;
        assert_eq!(
            codes,
            [0, 0, INVALID_REQUEST, INVALID_REQUEST, INVALID_REQUEST]
        );
        let validated = vec![entry(
            &[("ip", None)],
            vec![set("connection_creation_rate", 5.0)],
        )];
        assert_eq!(alter(&b, version, validated, true).await, [0]);

        let all = describe(&b, version, &[], false).await.unwrap();
        assert_eq!(all.len(), 2, "validate_only stored nothing: {all:?}");
        let alice = describe(&b, version, &[("user", 0, Some("alice"))], false)
            .await
            .unwrap();
        assert_eq!(
            alice,
            [(
                vec![
                    ("user".to_string(), Some("alice".to_string())),
                    ("client-id".to_string(), None)
                ],
                vec![("producer_byte_rate".to_string(), 1024.0)]
            )]
        );
        let strict = describe(&b, version, &[("user", 0, Some("alice"))], true).await;
        assert_eq!(strict, Ok(vec![]));
        let default_clients = describe(&b, version, &[("client-id", 1, None)], false).await;
        assert_eq!(default_clients.unwrap().len(), 1);
        let named_clients = describe(&b, version, &[("client-id", 2, None)], true).await;
        assert_eq!(
            named_clients.unwrap()[0].1,
            [("request_percentage".into(), 12.5)]
        );
        let bad_filter = [("ip", 2, None), ("user", 2, None)];
        assert_eq!(
            describe(&b, version, &bad_filter, false).await,
            Err(INVALID_REQUEST)
        );

        let removal = alter_client_quotas_request::OpData::default()
            .with_key(s("request_percentage"))
            .with_remove(true);
        let codes = alter(
            &b,
            version,
            vec![entry(&[("client-id", Some("c"))], vec![removal])],
            false,
        );
        assert_eq!(codes.await, [0]);
        assert_eq!(describe(&b, version, &[], false).await.unwrap().len(), 1);
    }
}

fn fetch() -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(super::group_wire_tests::topic("t"))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])])
}

#[tokio::test]
async fn produce_and_fetch_over_the_client_quota_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let quota = |key: &str, value: f64| {
        let b = b.clone();
        let key = key.to_string();
        async move {
            let entries = vec![entry(
                &[("client-id", Some("wire-test"))],
                vec![set(&key, value)],
            )];
            assert_eq!(alter(&b, 1, entries, false).await, [0]);
        }
    };

    let unlimited: ProduceResponse =
        call(&b, ApiKey::Produce, 9, &produce_request(0, 1, batch(20))).await;
    assert_eq!(unlimited.throttle_time_ms, 0);

    // 10 bytes/s allows 100 bytes in the ten-second window; a batch is more than that.
    quota("producer_byte_rate", 10.0).await;
    let throttled: ProduceResponse =
        call(&b, ApiKey::Produce, 9, &produce_request(0, 1, batch(20))).await;
    let partition = &throttled.responses[0].partition_responses[0];
    assert_eq!(
        partition.error_code, 0,
        "a throttled write is still written"
    );
    assert!(throttled.throttle_time_ms > 0);

    let fetched: FetchResponse = call(&b, ApiKey::Fetch, 11, &fetch()).await;
    assert_eq!(fetched.throttle_time_ms, 0, "no fetch quota yet");
    assert!(fetched.responses[0].partitions[0].records.is_some());
    quota("consumer_byte_rate", 10.0).await;
    let throttled: FetchResponse = call(&b, ApiKey::Fetch, 11, &fetch()).await;
    assert!(throttled.throttle_time_ms > 0);
    assert!(
        throttled.responses.is_empty(),
        "a throttled fetch is answered empty"
    );
}
