//! Feature levels (KIP-584) through `dispatch`: ApiVersions' supported and finalized features
//! as Kafka 4.x answers each version, UpdateFeatures with Kafka's validation, and the APIs a
//! level switches on and off.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::*;

use super::group_wire_tests::{call, s};
use super::share_group_wire_tests::{broker, join, open};
use crate::broker::Broker;

const NONE: i16 = 0;
const SAFE_DOWNGRADE: i8 = 2;

async fn api_versions(b: &std::sync::Arc<Broker>, version: i16) -> ApiVersionsResponse {
    call(
        b,
        ApiKey::ApiVersions,
        version,
        &ApiVersionsRequest::default(),
    )
    .await
}

fn served(r: &ApiVersionsResponse, api: ApiKey) -> bool {
    r.api_keys.iter().any(|k| k.api_key == api as i16)
}

fn finalized(r: &ApiVersionsResponse) -> Vec<(String, i16, i16)> {
    r.finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
        .collect()
}

fn set(feature: &str, level: i16, upgrade_type: i8) -> FeatureUpdateKey {
    FeatureUpdateKey::default()
        .with_feature(s(feature))
        .with_max_version_level(level)
        .with_upgrade_type(upgrade_type)
}

async fn update(
    b: &std::sync::Arc<Broker>,
    version: i16,
    updates: Vec<FeatureUpdateKey>,
    validate_only: bool,
) -> UpdateFeaturesResponse {
    let req = UpdateFeaturesRequest::default()
        .with_feature_updates(updates)
        .with_validate_only(validate_only);
    call(b, ApiKey::UpdateFeatures, version, &req).await
}

#[tokio::test]
async fn api_versions_lists_features_as_kafka_4_answers_each_version() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    let v4 = api_versions(&b, 4).await;
    let supported: Vec<(String, i16, i16)> = v4
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    assert_eq!(
        supported,
        [
            ("group.version".to_owned(), 0, 1),
            ("share.version".to_owned(), 0, 1),
            ("transaction.version".to_owned(), 0, 2)
        ]
    );
    let levels = [
        ("group.version".to_owned(), 1, 1),
        ("share.version".to_owned(), 1, 1),
        ("transaction.version".to_owned(), 2, 2),
    ];
    assert_eq!(finalized(&v4), levels, "a new cluster's levels");
    assert_eq!(v4.finalized_features_epoch, 0);
    assert!(served(&v4, ApiKey::UpdateFeatures));

    // Below v4 a range starting at 0 is left out (KAFKA-17492); the finalized levels stay.
    let v3 = api_versions(&b, 3).await;
    assert!(
        v3.supported_features.is_empty(),
        "{:?}",
        v3.supported_features
    );
    assert_eq!(finalized(&v3), levels);
}

#[tokio::test]
async fn share_version_0_switches_share_groups_off_until_it_is_raised_again_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    let r = update(&b, 1, vec![set("share.version", 0, SAFE_DOWNGRADE)], false).await;
    assert_eq!((r.error_code, r.error_message.as_deref()), (NONE, None));
    let results: Vec<(String, i16)> = r
        .results
        .iter()
        .map(|f| (f.feature.to_string(), f.error_code))
        .collect();
    assert_eq!(
        results,
        [("share.version".to_owned(), NONE)],
        "v1 lists each"
    );

    let v4 = api_versions(&b, 4).await;
    assert_eq!(v4.finalized_features_epoch, 1);
    assert!(!finalized(&v4).iter().any(|(n, _, _)| n == "share.version"));
    assert!(!served(&v4, ApiKey::ShareFetch) && !served(&v4, ApiKey::ShareGroupHeartbeat));
    assert!(served(&v4, ApiKey::ConsumerGroupHeartbeat));
    let refused: ShareGroupHeartbeatResponse =
        call(&b, ApiKey::ShareGroupHeartbeat, 1, &join("m")).await;
    assert_eq!(
        refused.error_code,
        ResponseError::UnsupportedVersion.code(),
        "a share member is told share groups are not served"
    );
    drop(b);

    // The level is the data directory's, not the process's.
    let b = open(dir.path());
    let v4 = api_versions(&b, 4).await;
    assert_eq!(v4.finalized_features_epoch, 1);
    assert!(!served(&v4, ApiKey::ShareFetch));
    let r = update(&b, 2, vec![set("share.version", 1, 1)], false).await;
    assert_eq!(r.error_code, NONE);
    assert!(r.results.is_empty(), "v2 leaves the list out");
    let v4 = api_versions(&b, 4).await;
    assert_eq!(v4.finalized_features_epoch, 2);
    assert!(served(&v4, ApiKey::ShareFetch));
    let joined: ShareGroupHeartbeatResponse =
        call(&b, ApiKey::ShareGroupHeartbeat, 1, &join("m")).await;
    assert_eq!(joined.error_code, NONE);
}

#[tokio::test]
async fn group_version_0_switches_the_consumer_group_protocol_off() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    // v0 says a downgrade with AllowDowngrade.
    let down = FeatureUpdateKey::default()
        .with_feature(s("group.version"))
        .with_max_version_level(0)
        .with_allow_downgrade(true);
    let r = update(&b, 0, vec![down], false).await;
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    let v4 = api_versions(&b, 4).await;
    assert!(!served(&v4, ApiKey::ConsumerGroupHeartbeat));
    assert!(!served(&v4, ApiKey::ConsumerGroupDescribe));
    assert!(served(&v4, ApiKey::JoinGroup), "classic groups stay");
}

#[tokio::test]
async fn updates_are_refused_whole_with_kafkas_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = broker(dir.path());
    let cases = [
        (
            vec![set("share.version", 0, 1)],
            ResponseError::InvalidUpdateVersion,
            "Invalid update version 0 for feature share.version. Can't downgrade the version \
             of this feature without setting the upgrade type to either safe or unsafe downgrade.",
        ),
        (
            vec![set("metadata.version", 27, 1)],
            ResponseError::InvalidUpdateVersion,
            "Invalid update version 27 for feature metadata.version. This cluster does not \
             support this feature.",
        ),
        (
            vec![
                set("group.version", 0, SAFE_DOWNGRADE),
                set("transaction.version", 3, 1),
            ],
            ResponseError::InvalidUpdateVersion,
            "Invalid update version 3 for feature transaction.version. This cluster only \
             supports versions 0-2.",
        ),
        (
            vec![set("share.version", 1, 1), set("share.version", 0, 2)],
            ResponseError::InvalidRequest,
            "The request updates feature share.version more than once.",
        ),
    ];
    for (updates, code, message) in cases {
        let r = update(&b, 1, updates, false).await;
        assert_eq!(r.error_code, code.code(), "{message}");
        assert_eq!(r.error_message.as_deref(), Some(message));
        assert!(r.results.is_empty(), "a refusal lists no feature");
    }
    // ValidateOnly checks and changes nothing.
    let r = update(&b, 1, vec![set("group.version", 0, SAFE_DOWNGRADE)], true).await;
    assert_eq!(r.error_code, NONE);
    let v4 = api_versions(&b, 4).await;
    assert_eq!(v4.finalized_features_epoch, 0, "nothing changed");
    assert!(served(&v4, ApiKey::ConsumerGroupHeartbeat));
}
