//! CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken and
//! DescribeDelegationToken (KIP-48, KIP-373) over [`crate::security::tokens`], with Kafka's
//! checks: tokens are only handed out over authenticated connections that did not themselves
//! log in with a token, and only to their owner, renewers or whoever the ACLs let see them.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_delegation_token_response::{
    DescribedDelegationToken, DescribedDelegationTokenRenewer,
};
use kafka_protocol::messages::{
    CreateDelegationTokenRequest, CreateDelegationTokenResponse, DescribeDelegationTokenRequest,
    DescribeDelegationTokenResponse, ExpireDelegationTokenRequest, ExpireDelegationTokenResponse,
    RenewDelegationTokenRequest, RenewDelegationTokenResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::security::listeners::SecurityProtocol;
use crate::security::tokens::{NewToken, TokenError, TokenInfo};
use crate::security::Principal;

/// Kafka's timestamp in an error answer.
const ERROR_TIMESTAMP: i64 = -1;

/// The version from which responses name the token's requester (KIP-373).
const REQUESTER_VERSION: i16 = 3;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// `Type:name` split in two (a name alone is a `User`).
fn split(principal: &str) -> (&str, &str) {
    principal
        .split_once(':')
        .unwrap_or((Principal::USER, principal))
}

fn code(error: &TokenError) -> ResponseError {
    match error {
        TokenError::Disabled => ResponseError::DelegationTokenAuthDisabled,
        TokenError::NotFound => ResponseError::DelegationTokenNotFound,
        TokenError::Expired => ResponseError::DelegationTokenExpired,
        TokenError::OwnerMismatch => ResponseError::DelegationTokenOwnerMismatch,
        TokenError::Save(_) => ResponseError::UnknownServerError,
    }
}

/// Kafka's `allowTokenRequests`: not over PLAINTEXT, not over SSL without a client
/// certificate, and not from a session that logged in with a token.
fn allowed(ctx: &RequestContext) -> bool {
    let principal = ctx.client.principal();
    let listener = &ctx.client.listener;
    let protocol = ctx
        .broker
        .config
        .listeners
        .get(listener)
        .map(|l| l.protocol)
        .or_else(|| SecurityProtocol::parse(listener));
    match protocol {
        _ if principal.token_authenticated => false,
        None | Some(SecurityProtocol::Plaintext) => false,
        Some(SecurityProtocol::Ssl) => *principal != Principal::anonymous(),
        Some(_) => true,
    }
}

/// CreateDelegationToken: a token for the requester, or (v3) for another owner when the ACLs
/// grant the requester CREATE_TOKENS on that user.
pub(crate) async fn create(
    ctx: RequestContext,
    request: CreateDelegationTokenRequest,
) -> CreateDelegationTokenResponse {
    let requester = ctx.client.principal().to_string();
    let owner = match request.owner_principal_name.as_deref() {
        Some(name) if !name.is_empty() => {
            let kind = request
                .owner_principal_type
                .as_deref()
                .filter(|k| !k.is_empty())
                .unwrap_or(Principal::USER);
            format!("{kind}:{name}")
        }
        _ => requester.clone(),
    };
    let version = ctx.version();
    // The answer with `error_code` (0: none), naming the owner and (v3) the requester.
    let answer = |error_code: i16| {
        let (kind, name) = split(&owner);
        let mut response = CreateDelegationTokenResponse::default()
            .with_error_code(error_code)
            .with_principal_type(s(kind))
            .with_principal_name(s(name))
            .with_issue_timestamp_ms(ERROR_TIMESTAMP)
            .with_expiry_timestamp_ms(ERROR_TIMESTAMP)
            .with_max_timestamp_ms(ERROR_TIMESTAMP);
        if version >= REQUESTER_VERSION {
            let (kind, name) = split(&requester);
            response = response
                .with_token_requester_principal_type(s(kind))
                .with_token_requester_principal_name(s(name));
        }
        response
    };
    if !allowed(&ctx) {
        return answer(ResponseError::DelegationTokenRequestNotAllowed.code());
    }
    if owner != requester && !ctx.may(Operation::CreateTokens, ResourceType::User, &owner) {
        return answer(ResponseError::DelegationTokenAuthorizationFailed.code());
    }
    if request
        .renewers
        .iter()
        .any(|r| r.principal_type.as_str() != Principal::USER)
    {
        return answer(ResponseError::InvalidPrincipalType.code());
    }
    let new = NewToken {
        owner: owner.clone(),
        requester: requester.clone(),
        renewers: request
            .renewers
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r.principal_type.as_str(),
                    r.principal_name.as_str()
                )
            })
            .collect(),
        max_lifetime_ms: request.max_lifetime_ms,
    };
    match ctx.broker.tokens.create(new, crate::clock::now_ms()).await {
        Ok(created) => {
            tracing::info!(
                token_id = created.info.token_id,
                owner,
                requester,
                "delegation token created"
            );
            answer(0)
                .with_issue_timestamp_ms(created.info.issue_timestamp_ms)
                .with_expiry_timestamp_ms(created.info.expiry_timestamp_ms)
                .with_max_timestamp_ms(created.info.max_timestamp_ms)
                .with_token_id(s(&created.info.token_id))
                .with_hmac(Bytes::from(created.hmac))
        }
        Err(error) => answer(code(&error).code()),
    }
}

/// Which change to a token's expiry a request asks for.
#[derive(Clone, Copy)]
enum Expiry {
    Renew,
    Expire,
}

/// Renews or expires the token with `hmac` for the client, by `period_ms`: the new expiry
/// timestamp, or the error code and Kafka's error timestamp.
async fn change_expiry(
    ctx: &RequestContext,
    hmac: &[u8],
    period_ms: i64,
    change: Expiry,
) -> (i16, i64) {
    if !allowed(ctx) {
        return (
            ResponseError::DelegationTokenRequestNotAllowed.code(),
            ERROR_TIMESTAMP,
        );
    }
    let principal = ctx.client.principal().to_string();
    let (tokens, now) = (&ctx.broker.tokens, crate::clock::now_ms());
    let changed = match change {
        Expiry::Renew => tokens.renew(hmac, &principal, period_ms, now).await,
        Expiry::Expire => tokens.expire(hmac, &principal, period_ms, now).await,
    };
    match changed {
        Ok(expiry) => (0, expiry),
        Err(error) => (code(&error).code(), ERROR_TIMESTAMP),
    }
}

/// RenewDelegationToken: pushes the expiry of the token with this HMAC out, for its owner or
/// renewers.
pub(crate) async fn renew(
    ctx: RequestContext,
    request: RenewDelegationTokenRequest,
) -> RenewDelegationTokenResponse {
    let (error, expiry) =
        change_expiry(&ctx, &request.hmac, request.renew_period_ms, Expiry::Renew).await;
    RenewDelegationTokenResponse::default()
        .with_error_code(error)
        .with_expiry_timestamp_ms(expiry)
}

/// ExpireDelegationToken: brings the expiry of the token with this HMAC forward, or (negative
/// period) removes it at once, for its owner or renewers.
pub(crate) async fn expire(
    ctx: RequestContext,
    request: ExpireDelegationTokenRequest,
) -> ExpireDelegationTokenResponse {
    let period = request.expiry_time_period_ms;
    let (error, expiry) = change_expiry(&ctx, &request.hmac, period, Expiry::Expire).await;
    ExpireDelegationTokenResponse::default()
        .with_error_code(error)
        .with_expiry_timestamp_ms(expiry)
}

/// DescribeDelegationToken: the tokens of the owners asked for (all when none are named; none
/// for an empty list) that the client owns, requested, renews, or may see by the ACLs
/// (DESCRIBE on the token, or DESCRIBE_TOKENS on its owner).
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeDelegationTokenRequest,
) -> DescribeDelegationTokenResponse {
    let refused = |error: ResponseError| {
        DescribeDelegationTokenResponse::default().with_error_code(error.code())
    };
    if !allowed(&ctx) {
        return refused(ResponseError::DelegationTokenRequestNotAllowed);
    }
    if !ctx.broker.tokens.enabled() {
        return refused(ResponseError::DelegationTokenAuthDisabled);
    }
    let owners: Option<Vec<String>> = request.owners.map(|owners| {
        owners
            .iter()
            .map(|o| {
                format!(
                    "{}:{}",
                    o.principal_type.as_str(),
                    o.principal_name.as_str()
                )
            })
            .collect()
    });
    let principal = ctx.client.principal().to_string();
    let eligible = |token: &TokenInfo| {
        if let Some(owners) = &owners {
            if !owners.iter().any(|o| token.owner_or_renewer(o)) {
                return false;
            }
        }
        token.owner_or_renewer(&principal)
            || ctx.sees(
                Operation::Describe,
                ResourceType::DelegationToken,
                &token.token_id,
            )
            || ctx.sees(Operation::DescribeTokens, ResourceType::User, &token.owner)
    };
    let with_requester = ctx.version() >= REQUESTER_VERSION;
    let tokens = ctx
        .broker
        .tokens
        .all()
        .into_iter()
        .filter(|(token, _)| eligible(token))
        .map(|(token, hmac)| described(token, hmac, with_requester))
        .collect();
    DescribeDelegationTokenResponse::default().with_tokens(tokens)
}

fn described(token: TokenInfo, hmac: Vec<u8>, with_requester: bool) -> DescribedDelegationToken {
    let (kind, name) = split(&token.owner);
    let mut out = DescribedDelegationToken::default()
        .with_principal_type(s(kind))
        .with_principal_name(s(name))
        .with_issue_timestamp(token.issue_timestamp_ms)
        .with_expiry_timestamp(token.expiry_timestamp_ms)
        .with_max_timestamp(token.max_timestamp_ms)
        .with_token_id(s(&token.token_id))
        .with_hmac(Bytes::from(hmac))
        .with_renewers(
            token
                .renewers
                .iter()
                .map(|r| {
                    let (kind, name) = split(r);
                    DescribedDelegationTokenRenewer::default()
                        .with_principal_type(s(kind))
                        .with_principal_name(s(name))
                })
                .collect(),
        );
    if with_requester {
        let (kind, name) = split(&token.requester);
        out = out
            .with_token_requester_principal_type(s(kind))
            .with_token_requester_principal_name(s(name));
    }
    out
}

impl Refuse for CreateDelegationTokenRequest {
    type Response = CreateDelegationTokenResponse;
    fn refuse(self, error: ResponseError) -> CreateDelegationTokenResponse {
        CreateDelegationTokenResponse::default().with_error_code(error.code())
    }
}

impl Refuse for RenewDelegationTokenRequest {
    type Response = RenewDelegationTokenResponse;
    fn refuse(self, error: ResponseError) -> RenewDelegationTokenResponse {
        RenewDelegationTokenResponse::default()
            .with_error_code(error.code())
            .with_expiry_timestamp_ms(ERROR_TIMESTAMP)
    }
}

impl Refuse for ExpireDelegationTokenRequest {
    type Response = ExpireDelegationTokenResponse;
    fn refuse(self, error: ResponseError) -> ExpireDelegationTokenResponse {
        ExpireDelegationTokenResponse::default()
            .with_error_code(error.code())
            .with_expiry_timestamp_ms(ERROR_TIMESTAMP)
    }
}

impl Refuse for DescribeDelegationTokenRequest {
    type Response = DescribeDelegationTokenResponse;
    fn refuse(self, error: ResponseError) -> DescribeDelegationTokenResponse {
        DescribeDelegationTokenResponse::default().with_error_code(error.code())
    }
}
