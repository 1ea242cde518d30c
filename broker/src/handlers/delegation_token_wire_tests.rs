//! Delegation tokens through `dispatch` and the SASL exchange: created, renewed, expired and
//! described with Kafka's error codes, swept once expired, kept across a restart, and logged
//! in with over SCRAM as their owner.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::group_wire_tests::{call_as, open_broker, s};
use super::Client;
use crate::acl::{AclBinding, Operation, ResourceType};
use crate::broker::Broker;
use crate::config::Flags;
use crate::security::sasl::scram::ScramClient;
use crate::security::sasl::session::{Action, SaslSession};
use crate::security::sasl::{SaslConfig, Stores};
use crate::security::settings::SecurityProps;
use crate::security::Principal;

const SECRET: &str = "token-secret";

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// A broker with tokens enabled, and any further security settings.
fn broker(dir: &std::path::Path, more: &[(&str, &str)]) -> Arc<Broker> {
    let mut security =
        BTreeMap::from([("delegation.token.secret.key".to_owned(), SECRET.to_owned())]);
    for (k, v) in more {
        security.insert((*k).to_owned(), (*v).to_owned());
    }
    open_broker(
        dir,
        Flags {
            security: Some(security),
            ..Flags::default()
        },
    )
}

/// A client of the SASL_PLAINTEXT listener authenticated as `principal`.
fn sasl_client(principal: Principal) -> Arc<Client> {
    let client = Client::on_listener(Arc::from("/127.0.0.1"), Arc::from("SASL_PLAINTEXT"));
    client.set_principal(principal);
    Arc::new(client)
}

fn user(name: &str) -> Arc<Client> {
    sasl_client(Principal::user(name))
}

async fn create(
    b: &Arc<Broker>,
    client: &Arc<Client>,
    version: i16,
    request: CreateDelegationTokenRequest,
) -> CreateDelegationTokenResponse {
    call_as(b, client, ApiKey::CreateDelegationToken, version, &request).await
}

fn with_renewer(name: &str) -> CreateDelegationTokenRequest {
    CreateDelegationTokenRequest::default().with_renewers(vec![
        create_delegation_token_request::CreatableRenewers::default()
            .with_principal_type(s("User"))
            .with_principal_name(s(name)),
    ])
}

async fn renew(
    b: &Arc<Broker>,
    client: &Arc<Client>,
    hmac: &Bytes,
    period: i64,
) -> RenewDelegationTokenResponse {
    let request = RenewDelegationTokenRequest::default()
        .with_hmac(hmac.clone())
        .with_renew_period_ms(period);
    call_as(b, client, ApiKey::RenewDelegationToken, 2, &request).await
}

async fn expire(
    b: &Arc<Broker>,
    client: &Arc<Client>,
    hmac: &Bytes,
    period: i64,
) -> ExpireDelegationTokenResponse {
    let request = ExpireDelegationTokenRequest::default()
        .with_hmac(hmac.clone())
        .with_expiry_time_period_ms(period);
    call_as(b, client, ApiKey::ExpireDelegationToken, 2, &request).await
}

/// The ids of the tokens `client` sees (all owners).
async fn described(b: &Arc<Broker>, client: &Arc<Client>, version: i16) -> Vec<String> {
    let r: DescribeDelegationTokenResponse = call_as(
        b,
        client,
        ApiKey::DescribeDelegationToken,
        version,
        &DescribeDelegationTokenRequest::default().with_owners(None),
    )
    .await;
    assert_eq!(r.error_code, 0);
    r.tokens.iter().map(|t| t.token_id.to_string()).collect()
}

#[tokio::test]
async fn tokens_are_created_renewed_expired_and_described_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), &[]);
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    for v in 1..=3 {
        let r = create(&b, &alice, v, with_renewer("bob")).await;
        assert_eq!(r.error_code, 0, "v{v}");
        assert_eq!(
            (r.principal_type.as_str(), r.principal_name.as_str()),
            ("User", "alice")
        );
        assert_eq!(
            r.token_requester_principal_name.as_str(),
            if v >= 3 { "alice" } else { "" }
        );
        assert_eq!(
            r.expiry_timestamp_ms - r.issue_timestamp_ms,
            24 * 60 * 60 * 1000
        );
        assert_eq!(
            r.max_timestamp_ms - r.issue_timestamp_ms,
            7 * 24 * 60 * 60 * 1000
        );
        assert_eq!(r.hmac.len(), 64, "HMAC-SHA512");
    }
    let created = create(&b, &alice, 3, with_renewer("bob")).await;
    let hmac = created.hmac.clone();

    for v in 1..=3 {
        assert_eq!(
            described(&b, &alice, v).await.len(),
            4,
            "the owner sees hers"
        );
        assert_eq!(described(&b, &bob, v).await.len(), 4, "a renewer sees them");
        assert_eq!(
            described(&b, &carol, v).await.len(),
            4,
            "without an authorizer anyone may DESCRIBE any token, as in Kafka"
        );
    }
    let only_bob: DescribeDelegationTokenResponse = call_as(
        &b,
        &alice,
        ApiKey::DescribeDelegationToken,
        3,
        &DescribeDelegationTokenRequest::default().with_owners(Some(vec![])),
    )
    .await;
    assert!(
        only_bob.tokens.is_empty(),
        "an empty owner list describes nothing"
    );
    let r: DescribeDelegationTokenResponse = call_as(
        &b,
        &bob,
        ApiKey::DescribeDelegationToken,
        3,
        &DescribeDelegationTokenRequest::default().with_owners(None),
    )
    .await;
    let mine = r
        .tokens
        .iter()
        .find(|t| t.token_id == created.token_id)
        .unwrap();
    assert_eq!(mine.hmac, hmac);
    assert_eq!(mine.token_requester_principal_name.as_str(), "alice");
    assert_eq!(mine.renewers[0].principal_name.as_str(), "bob");

    let renewed = renew(&b, &bob, &hmac, 60_000).await;
    assert_eq!(renewed.error_code, 0);
    assert!(renewed.expiry_timestamp_ms <= crate::clock::now_ms() + 60_000);
    assert_eq!(
        renew(&b, &carol, &hmac, 0).await.error_code,
        code(ResponseError::DelegationTokenOwnerMismatch)
    );
    let unknown = Bytes::from_static(&[1; 64]);
    assert_eq!(
        renew(&b, &alice, &unknown, 0).await.error_code,
        code(ResponseError::DelegationTokenNotFound)
    );
    assert_eq!(
        expire(&b, &alice, &unknown, -1).await.error_code,
        code(ResponseError::DelegationTokenNotFound)
    );
    assert_eq!(
        expire(&b, &carol, &hmac, -1).await.error_code,
        code(ResponseError::DelegationTokenOwnerMismatch)
    );
    let shortened = expire(&b, &alice, &hmac, 0).await;
    assert_eq!(shortened.error_code, 0);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        renew(&b, &alice, &hmac, 0).await.error_code,
        code(ResponseError::DelegationTokenExpired)
    );
    assert_eq!(
        expire(&b, &alice, &hmac, 0).await.error_code,
        code(ResponseError::DelegationTokenExpired)
    );
    assert_eq!(expire(&b, &alice, &hmac, -1).await.error_code, 0);
    assert!(!described(&b, &alice, 3)
        .await
        .contains(&created.token_id.to_string()));
}

#[tokio::test]
async fn token_requests_are_refused_without_sasl_from_token_sessions_and_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), &[]);
    let plaintext = Arc::new(Client::new(Arc::from("/127.0.0.1")));
    let one_way_ssl = Arc::new(Client::on_listener(
        Arc::from("/127.0.0.1"),
        Arc::from("SSL"),
    ));
    let token_session = sasl_client(Principal::token_user("alice"));
    let not_allowed = code(ResponseError::DelegationTokenRequestNotAllowed);
    let hmac = create(&b, &user("alice"), 3, with_renewer("bob"))
        .await
        .hmac;
    for client in [&plaintext, &one_way_ssl, &token_session] {
        let created = create(&b, client, 3, CreateDelegationTokenRequest::default()).await;
        assert_eq!(created.error_code, not_allowed);
        assert_eq!(renew(&b, client, &hmac, 0).await.error_code, not_allowed);
        assert_eq!(expire(&b, client, &hmac, 0).await.error_code, not_allowed);
        let r: DescribeDelegationTokenResponse = call_as(
            &b,
            client,
            ApiKey::DescribeDelegationToken,
            3,
            &DescribeDelegationTokenRequest::default().with_owners(None),
        )
        .await;
        assert_eq!(r.error_code, not_allowed);
    }
    let ssl_with_certificate = Arc::new(Client::on_listener(
        Arc::from("/127.0.0.1"),
        Arc::from("SSL"),
    ));
    ssl_with_certificate.set_principal(Principal::user("CN=alice"));
    let r = create(
        &b,
        &ssl_with_certificate,
        3,
        CreateDelegationTokenRequest::default(),
    )
    .await;
    assert_eq!(r.error_code, 0, "two-way SSL may ask for tokens");
    let bad_renewer = CreateDelegationTokenRequest::default().with_renewers(vec![
        create_delegation_token_request::CreatableRenewers::default()
            .with_principal_type(s("Group"))
            .with_principal_name(s("ops")),
    ]);
    assert_eq!(
        create(&b, &user("alice"), 3, bad_renewer).await.error_code,
        code(ResponseError::InvalidPrincipalType)
    );

    let off_dir = tempfile::tempdir().unwrap();
    let off = open_broker(off_dir.path(), Flags::default());
    let disabled = code(ResponseError::DelegationTokenAuthDisabled);
    let alice = user("alice");
    let r = create(&off, &alice, 3, CreateDelegationTokenRequest::default()).await;
    assert_eq!(r.error_code, disabled);
    assert_eq!(renew(&off, &alice, &hmac, 0).await.error_code, disabled);
    assert_eq!(expire(&off, &alice, &hmac, 0).await.error_code, disabled);
    let r: DescribeDelegationTokenResponse = call_as(
        &off,
        &alice,
        ApiKey::DescribeDelegationToken,
        1,
        &DescribeDelegationTokenRequest::default(),
    )
    .await;
    assert_eq!(r.error_code, disabled);
}

#[tokio::test]
async fn tokens_for_other_owners_and_their_descriptions_follow_the_user_acls() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(
        dir.path(),
        &[
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("super.users", "User:admin"),
        ],
    );
    let (admin, ops, carol) = (user("admin"), user("ops"), user("carol"));
    let for_alice = CreateDelegationTokenRequest::default()
        .with_owner_principal_type(Some(s("User")))
        .with_owner_principal_name(Some(s("alice")));
    assert_eq!(
        create(&b, &ops, 3, for_alice.clone()).await.error_code,
        code(ResponseError::DelegationTokenAuthorizationFailed)
    );
    let grant = |operation, principal: &str| AclBinding {
        resource: tributary_crds::acls::ResourcePattern {
            kind: ResourceType::User,
            name: "User:alice".into(),
            pattern: tributary_crds::acls::PatternType::Literal,
        },
        entry: tributary_crds::acls::AccessEntry {
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: tributary_crds::acls::Permission::Allow,
        },
    };
    let authorizer = b.authorizer.clone().unwrap();
    authorizer
        .create(&[
            grant(Operation::CreateTokens, "User:ops"),
            grant(Operation::DescribeTokens, "User:carol"),
        ])
        .await
        .unwrap();
    let r = create(&b, &ops, 3, for_alice).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.principal_name.as_str(), "alice");
    assert_eq!(r.token_requester_principal_name.as_str(), "ops");
    let id = r.token_id.to_string();
    assert_eq!(
        described(&b, &ops, 3).await,
        vec![id.clone()],
        "the requester sees it"
    );
    assert_eq!(
        described(&b, &carol, 3).await,
        vec![id.clone()],
        "DESCRIBE_TOKENS on the owner"
    );
    assert_eq!(
        described(&b, &admin, 3).await,
        vec![id.clone()],
        "a super user sees all"
    );
    assert!(described(&b, &user("dave"), 3).await.is_empty());
    assert_eq!(
        renew(&b, &ops, &r.hmac, 0).await.error_code,
        code(ResponseError::DelegationTokenOwnerMismatch),
        "the requester is neither owner nor renewer"
    );
}

#[tokio::test]
async fn expired_tokens_are_swept_and_kept_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(
        dir.path(),
        &[("delegation.token.expiry.check.interval.ms", "20")],
    );
    let alice = user("alice");
    let kept = create(&b, &alice, 3, CreateDelegationTokenRequest::default()).await;
    let short = create(&b, &alice, 3, CreateDelegationTokenRequest::default()).await;
    assert_eq!(expire(&b, &alice, &short.hmac, 0).await.error_code, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ids = described(&b, &alice, 3).await;
        if ids == [kept.token_id.to_string()] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not swept: {ids:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        renew(&b, &alice, &short.hmac, 0).await.error_code,
        code(ResponseError::DelegationTokenNotFound),
        "a swept token is gone"
    );
    drop(b);
    let reopened = broker(dir.path(), &[]);
    assert_eq!(
        described(&reopened, &alice, 3).await,
        [kept.token_id.to_string()]
    );
    assert_eq!(renew(&reopened, &alice, &kept.hmac, 0).await.error_code, 0);
}

fn frame<R: Encodable>(api: ApiKey, version: i16, body: &R) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// The SaslAuthenticate answer in `action`.
fn answer_of(action: &Action) -> SaslAuthenticateResponse {
    let reply = match action {
        Action::Reply(reply) | Action::Close(Some(reply), _) => reply.clone(),
        other => panic!("no answer: {other:?}"),
    };
    let mut body = reply.slice(4..);
    ResponseHeader::decode(
        &mut body,
        ApiKey::SaslAuthenticate.response_header_version(2),
    )
    .unwrap();
    SaslAuthenticateResponse::decode(&mut body, 2).unwrap()
}

/// Logs in over SCRAM-SHA-256 with token `id` and `password` at `now_ms`: who the session is,
/// and its lifetime, or the error message.
fn token_login(
    b: &Broker,
    id: &str,
    password: &str,
    now_ms: i64,
) -> Result<(Principal, i64), String> {
    let props = SecurityProps::from_pairs(&[
        ("sasl.enabled.mechanisms", "SCRAM-SHA-256"),
        ("connections.max.reauth.ms", "3600000"),
    ]);
    let config = Arc::new(SaslConfig::from_props(&props, "SASL_PLAINTEXT").unwrap());
    let mut session = SaslSession::new(config);
    let stores = Stores::new(&b.scram, Some(&b.tokens));
    let mechanism = crate::security::credentials::Mechanism::Sha256;
    let mut client = ScramClient::for_token(mechanism, id, password, "clientnonce".into());
    let handshake = SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-256"));
    let step = session.on_request(&frame(ApiKey::SaslHandshake, 1, &handshake), stores, now_ms);
    assert!(matches!(step.action, Action::Reply(_)));
    let auth = |bytes: Vec<u8>| {
        frame(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
        )
    };
    let step = session.on_request(&auth(client.first()), stores, now_ms);
    let first = answer_of(&step.action);
    if first.error_code != 0 {
        return Err(first
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default());
    }
    let last = client.last(&first.auth_bytes).unwrap();
    let step = session.on_request(&auth(last), stores, now_ms);
    let done = answer_of(&step.action);
    if done.error_code != 0 {
        return Err(done
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default());
    }
    assert!(
        client.verify(&done.auth_bytes),
        "the broker knows the token"
    );
    Ok((step.authenticated.unwrap(), done.session_lifetime_ms))
}

#[tokio::test]
async fn a_token_logs_in_over_scram_as_its_owner_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path(), &[]);
    let created = create(
        &b,
        &user("alice"),
        3,
        CreateDelegationTokenRequest::default(),
    )
    .await;
    let id = created.token_id.to_string();
    let password = BASE64.encode(&created.hmac);
    let now = crate::clock::now_ms();
    let (principal, lifetime) = token_login(&b, &id, &password, now).unwrap();
    assert_eq!(principal, Principal::token_user("alice"));
    assert!(lifetime > 0 && lifetime <= 3_600_000);
    let created_by_token = create(
        &b,
        &sasl_client(principal),
        3,
        CreateDelegationTokenRequest::default(),
    )
    .await;
    assert_eq!(
        created_by_token.error_code,
        code(ResponseError::DelegationTokenRequestNotAllowed)
    );

    let wrong = token_login(&b, &id, "not-the-hmac", now).unwrap_err();
    assert!(wrong.contains("invalid credentials"), "{wrong}");
    assert!(token_login(&b, "no-such-token", &password, now).is_err());
    let later = created.expiry_timestamp_ms + 1;
    assert!(
        token_login(&b, &id, &password, later).is_err(),
        "an expired token no longer logs in"
    );
    assert_eq!(
        expire(&b, &user("alice"), &created.hmac, -1)
            .await
            .error_code,
        0
    );
    assert!(
        token_login(&b, &id, &password, now).is_err(),
        "nor an expired one"
    );
}
