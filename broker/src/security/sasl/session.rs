//! One connection's SASL state, as Kafka's `SaslServerAuthenticator` keeps it: ApiVersions and
//! SaslHandshake are the only requests before authentication; SaslAuthenticate steps the
//! chosen mechanism (or, after a v0 handshake, raw size-prefixed tokens do); a failure is
//! answered and closes the connection; and with `connections.max.reauth.ms` a session lasts
//! that long (or until its token expires), after which only re-authentication (KIP-368) keeps
//! the connection open.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::{Exchange, Failure, Mechanism, Outcome, SaslConfig, Stores};
use crate::protocol::{encode_response, RequestPrefix};
use crate::security::Principal;

/// What the connection does with a frame.
#[derive(Debug)]
pub enum Action {
    /// Not a SASL matter: dispatch it as usual.
    Dispatch,
    /// Send this frame and read on.
    Reply(Bytes),
    /// Send this frame, if any, then close the connection for `reason` (logged).
    Close(Option<Bytes>, String),
}

/// The result of one frame: the action and, when this frame completed an authentication,
/// who the client now is.
#[derive(Debug)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// Set when the frame completed an authentication or re-authentication.
    pub authenticated: Option<Principal>,
}

impl Step {
    fn act(action: Action) -> Step {
        Step {
            action,
            authenticated: None,
        }
    }

    fn close(reply: Option<Bytes>, reason: impl Into<String>) -> Step {
        Step::act(Action::Close(reply, reason.into()))
    }
}

/// An authenticated session.
#[derive(Debug, Clone)]
struct Session {
    principal: Principal,
    mechanism: Mechanism,
    /// When the session ends unless re-authenticated.
    expires_at_ms: Option<i64>,
}

#[derive(Debug)]
enum Stage {
    /// Waiting for a SaslHandshake.
    Idle,
    /// Handshake v1 done: SaslAuthenticate requests carry the exchange.
    Authenticating {
        mechanism: Mechanism,
        exchange: Exchange,
    },
    /// Handshake v0 done: the exchange comes as raw size-prefixed tokens.
    RawTokens {
        mechanism: Mechanism,
        exchange: Exchange,
    },
}

/// One connection's SASL state.
#[derive(Debug)]
pub struct SaslSession {
    config: Arc<SaslConfig>,
    stage: Stage,
    session: Option<Session>,
}

impl SaslSession {
    /// A connection that has not authenticated yet.
    pub fn new(config: Arc<SaslConfig>) -> SaslSession {
        SaslSession {
            config,
            stage: Stage::Idle,
            session: None,
        }
    }

    /// Whether the next frame is a raw token (after a v0 handshake) instead of a request.
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.stage, Stage::RawTokens { .. })
    }

    /// Whether the client has authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.session.is_some()
    }

    /// Whether the session has ended without re-authentication at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.session
            .as_ref()
            .and_then(|s| s.expires_at_ms)
            .is_some_and(|at| now_ms >= at)
    }

    /// Decides what to do with request `frame`.
    pub fn on_request(&mut self, frame: &Bytes, stores: Stores<'_>, now_ms: i64) -> Step {
        let Some(prefix) = RequestPrefix::parse(frame) else {
            return Step::act(Action::Dispatch);
        };
        match ApiKey::try_from(prefix.api_key) {
            Ok(ApiKey::SaslHandshake) => self.handshake(frame, prefix),
            Ok(ApiKey::SaslAuthenticate) => self.authenticate(frame, prefix, stores, now_ms),
            api => {
                let name =
                    api.map_or_else(|_| format!("key {}", prefix.api_key), |a| format!("{a:?}"));
                if self.expired(now_ms) {
                    Step::close(
                        None,
                        format!(
                            "session of {} expired without re-authentication ({name} request)",
                            self.principal_name()
                        ),
                    )
                } else if self.session.is_none() && api != Ok(ApiKey::ApiVersions) {
                    Step::close(
                        None,
                        format!("unexpected {name} request before SASL authentication"),
                    )
                } else {
                    Step::act(Action::Dispatch)
                }
            }
        }
    }

    /// Steps the exchange with a raw token (after a v0 handshake).
    pub fn on_raw_token(&mut self, token: &[u8], stores: Stores<'_>, now_ms: i64) -> Step {
        let Stage::RawTokens {
            mechanism,
            mut exchange,
        } = std::mem::replace(&mut self.stage, Stage::Idle)
        else {
            return Step::close(None, "raw SASL token outside a v0 handshake");
        };
        match exchange.step(token, &self.config, stores, now_ms) {
            Ok(Outcome::Continue(challenge)) => {
                self.stage = Stage::RawTokens {
                    mechanism,
                    exchange,
                };
                Step::act(Action::Reply(raw_frame(&challenge)))
            }
            Ok(Outcome::Authenticated {
                response,
                principal,
                expires_at_ms,
            }) => match self.establish(mechanism, principal, expires_at_ms, now_ms) {
                Ok((principal, _)) => Step {
                    action: Action::Reply(raw_frame(&response)),
                    authenticated: Some(principal),
                },
                Err(failure) => Step::close(None, failure.detail),
            },
            Err(failure) => Step::close(
                None,
                format!(
                    "{} authentication failed: {}",
                    mechanism.name(),
                    failure.detail
                ),
            ),
        }
    }

    fn handshake(&mut self, frame: &Bytes, prefix: RequestPrefix) -> Step {
        let version = prefix.api_version;
        let request: SaslHandshakeRequest = match decode(frame, ApiKey::SaslHandshake, version) {
            Ok(r) => r,
            Err(reason) => return Step::close(None, reason),
        };
        let mechanisms: Vec<StrBytes> = self
            .config
            .mechanism_names()
            .into_iter()
            .map(StrBytes::from_static_str)
            .collect();
        let answer = |error: Option<ResponseError>| {
            let response = SaslHandshakeResponse::default()
                .with_error_code(error.map_or(0, |e| e.code()))
                .with_mechanisms(mechanisms.clone());
            encode_response(prefix.correlation_id, version, &response).ok()
        };
        if !matches!(self.stage, Stage::Idle) {
            return Step::close(
                answer(Some(ResponseError::IllegalSaslState)),
                "SaslHandshake in the middle of an exchange",
            );
        }
        let requested = request.mechanism.as_str();
        let Some(mechanism) =
            Mechanism::parse(requested).filter(|m| self.config.mechanisms.contains(m))
        else {
            return Step::close(
                answer(Some(ResponseError::UnsupportedSaslMechanism)),
                format!(
                    "client asked for SASL mechanism {requested:?}, not enabled on this listener"
                ),
            );
        };
        if let Some(session) = &self.session {
            if session.mechanism != mechanism || version == 0 {
                return Step::close(
                    answer(Some(ResponseError::IllegalSaslState)),
                    format!(
                        "re-authentication must use {} with SaslAuthenticate",
                        session.mechanism.name()
                    ),
                );
            }
        }
        let exchange = self.config.start(mechanism);
        self.stage = if version == 0 {
            Stage::RawTokens {
                mechanism,
                exchange,
            }
        } else {
            Stage::Authenticating {
                mechanism,
                exchange,
            }
        };
        match answer(None) {
            Some(frame) => Step::act(Action::Reply(frame)),
            None => Step::close(None, "cannot encode the SaslHandshake response"),
        }
    }

    fn authenticate(
        &mut self,
        frame: &Bytes,
        prefix: RequestPrefix,
        stores: Stores<'_>,
        now_ms: i64,
    ) -> Step {
        let version = prefix.api_version;
        let answer = |error: Option<(ResponseError, String)>, bytes: Vec<u8>, lifetime_ms: i64| {
            let mut response =
                SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes));
            if let Some((code, message)) = error {
                response = response
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message)));
            }
            if version >= 1 {
                response = response.with_session_lifetime_ms(lifetime_ms);
            }
            encode_response(prefix.correlation_id, version, &response).ok()
        };
        let request: SaslAuthenticateRequest =
            match decode(frame, ApiKey::SaslAuthenticate, version) {
                Ok(r) => r,
                Err(reason) => return Step::close(None, reason),
            };
        let Stage::Authenticating {
            mechanism,
            mut exchange,
        } = std::mem::replace(&mut self.stage, Stage::Idle)
        else {
            let message = "Unexpected SaslAuthenticate request without a SaslHandshake".to_string();
            return Step::close(
                answer(
                    Some((ResponseError::IllegalSaslState, message.clone())),
                    Vec::new(),
                    0,
                ),
                message,
            );
        };
        let failed = |failure: Failure| {
            let reply = answer(
                Some((ResponseError::SaslAuthenticationFailed, failure.message)),
                Vec::new(),
                0,
            );
            Step::close(
                reply,
                format!(
                    "{} authentication failed: {}",
                    mechanism.name(),
                    failure.detail
                ),
            )
        };
        match exchange.step(&request.auth_bytes, &self.config, stores, now_ms) {
            Ok(Outcome::Continue(challenge)) => {
                self.stage = Stage::Authenticating {
                    mechanism,
                    exchange,
                };
                match answer(None, challenge, 0) {
                    Some(frame) => Step::act(Action::Reply(frame)),
                    None => Step::close(None, "cannot encode the SaslAuthenticate response"),
                }
            }
            Ok(Outcome::Authenticated {
                response,
                principal,
                expires_at_ms,
            }) => match self.establish(mechanism, principal, expires_at_ms, now_ms) {
                Ok((principal, lifetime_ms)) => match answer(None, response, lifetime_ms) {
                    Some(frame) => Step {
                        action: Action::Reply(frame),
                        authenticated: Some(principal),
                    },
                    None => Step::close(None, "cannot encode the SaslAuthenticate response"),
                },
                Err(failure) => failed(failure),
            },
            Err(failure) => failed(failure),
        }
    }

    /// Records a completed authentication; a re-authentication must keep the principal.
    fn establish(
        &mut self,
        mechanism: Mechanism,
        principal: Principal,
        token_expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(Principal, i64), Failure> {
        if let Some(previous) = &self.session {
            if previous.principal != principal {
                return Err(Failure {
                    message: "Cannot change principals during re-authentication".into(),
                    detail: format!(
                        "re-authentication as {principal} on a connection of {}",
                        previous.principal
                    ),
                });
            }
        }
        let lifetime_ms = session_lifetime_ms(
            self.config.max_reauth_ms(mechanism),
            token_expires_at_ms,
            now_ms,
        );
        self.session = Some(Session {
            principal: principal.clone(),
            mechanism,
            expires_at_ms: (lifetime_ms > 0).then(|| now_ms.saturating_add(lifetime_ms)),
        });
        Ok((principal, lifetime_ms))
    }

    fn principal_name(&self) -> String {
        self.session.as_ref().map_or_else(
            || "an unauthenticated client".into(),
            |s| s.principal.to_string(),
        )
    }
}

/// How long a new session lasts (KIP-368): `connections.max.reauth.ms`, shortened to the
/// credential's own expiry; 0 (no limit) when re-authentication is off.
pub fn session_lifetime_ms(max_reauth_ms: i64, expires_at_ms: Option<i64>, now_ms: i64) -> i64 {
    if max_reauth_ms <= 0 {
        return 0;
    }
    match expires_at_ms {
        Some(at) => at.saturating_sub(now_ms).clamp(1, max_reauth_ms),
        None => max_reauth_ms,
    }
}

fn decode<T: Decodable>(frame: &Bytes, api: ApiKey, version: i16) -> Result<T, String> {
    let mut body = frame.clone();
    RequestHeader::decode(&mut body, api.request_header_version(version))
        .and_then(|_| T::decode(&mut body, version))
        .map_err(|e| format!("malformed {api:?} v{version} request: {e}"))
}

/// A raw token as v0 clients read it: a 4-byte size, then the bytes.
fn raw_frame(token: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(token.len() + 4);
    out.put_u32(u32::try_from(token.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(token);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::credentials::ScramCredentials;
    use crate::security::settings::SecurityProps;
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::Encodable;

    fn config(reauth_ms: &str) -> Arc<SaslConfig> {
        let props = SecurityProps::from_pairs(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                "M required user_alice=\"pw\" user_bob=\"pw2\";",
            ),
            ("connections.max.reauth.ms", reauth_ms),
        ]);
        Arc::new(SaslConfig::from_props(&props, "SASL_PLAINTEXT").unwrap())
    }

    fn request<R: Encodable>(api: ApiKey, version: i16, body: &R) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn handshake(mechanism: &str) -> Bytes {
        request(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into())),
        )
    }

    fn authenticate(bytes: &[u8]) -> Bytes {
        request(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(bytes)),
        )
    }

    fn metadata() -> Bytes {
        request(
            ApiKey::Metadata,
            12,
            &kafka_protocol::messages::MetadataRequest::default(),
        )
    }

    fn authenticate_response(step: &Step) -> SaslAuthenticateResponse {
        let frame = match &step.action {
            Action::Reply(f) => f.clone(),
            Action::Close(Some(f), _) => f.clone(),
            other => panic!("expected a reply, got {other:?}"),
        };
        let mut body = frame.slice(4..);
        kafka_protocol::messages::ResponseHeader::decode(&mut body, 1).unwrap();
        SaslAuthenticateResponse::decode(&mut body, 2).unwrap()
    }

    #[test]
    fn only_api_versions_and_the_handshake_come_before_authentication() {
        let scram = ScramCredentials::default();
        let creds = Stores::new(&scram, None);
        let mut s = SaslSession::new(config("0"));
        let api_versions = request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert!(matches!(
            s.on_request(&api_versions, creds, 0).action,
            Action::Dispatch
        ));
        assert!(matches!(
            s.on_request(&metadata(), creds, 0).action,
            Action::Close(None, _)
        ));
        let mut s = SaslSession::new(config("0"));
        let early = s.on_request(&authenticate(b"\0alice\0pw"), creds, 0);
        assert_eq!(
            authenticate_response(&early).error_code,
            ResponseError::IllegalSaslState.code()
        );
        assert!(matches!(early.action, Action::Close(..)));
    }

    #[test]
    fn a_successful_exchange_sets_the_principal_and_a_failed_one_closes() {
        let scram = ScramCredentials::default();
        let creds = Stores::new(&scram, None);
        let mut s = SaslSession::new(config("0"));
        assert!(matches!(
            s.on_request(&handshake("PLAIN"), creds, 0).action,
            Action::Reply(_)
        ));
        let done = s.on_request(&authenticate(b"\0alice\0pw"), creds, 0);
        assert_eq!(done.authenticated, Some(Principal::user("alice")));
        assert_eq!(authenticate_response(&done).session_lifetime_ms, 0);
        assert!(matches!(
            s.on_request(&metadata(), creds, 0).action,
            Action::Dispatch
        ));

        let mut s = SaslSession::new(config("0"));
        s.on_request(&handshake("PLAIN"), creds, 0);
        let failed = s.on_request(&authenticate(b"\0alice\0nope"), creds, 0);
        let response = authenticate_response(&failed);
        assert_eq!(
            response.error_code,
            ResponseError::SaslAuthenticationFailed.code()
        );
        assert!(response
            .error_message
            .unwrap()
            .contains("Invalid username or password"));
        assert!(matches!(failed.action, Action::Close(Some(_), _)));
    }

    #[test]
    fn unknown_mechanisms_and_garbage_close_the_connection() {
        let scram = ScramCredentials::default();
        let creds = Stores::new(&scram, None);
        let mut s = SaslSession::new(config("0"));
        assert!(matches!(
            s.on_request(&handshake("GSSAPI"), creds, 0).action,
            Action::Close(Some(_), _)
        ));
        let mut s = SaslSession::new(config("0"));
        let garbage = Bytes::from_static(&[0, 17, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff]);
        assert!(matches!(
            s.on_request(&garbage, creds, 0).action,
            Action::Close(None, _)
        ));
    }

    #[test]
    fn sessions_expire_unless_renewed_by_the_same_principal() {
        let scram = ScramCredentials::default();
        let creds = Stores::new(&scram, None);
        let mut s = SaslSession::new(config("1000"));
        s.on_request(&handshake("PLAIN"), creds, 0);
        let done = s.on_request(&authenticate(b"\0alice\0pw"), creds, 0);
        assert_eq!(authenticate_response(&done).session_lifetime_ms, 1000);
        assert!(matches!(
            s.on_request(&metadata(), creds, 999).action,
            Action::Dispatch
        ));
        // Re-authentication at 900 extends the session to 1900.
        s.on_request(&handshake("PLAIN"), creds, 900);
        assert!(s
            .on_request(&authenticate(b"\0alice\0pw"), creds, 900)
            .authenticated
            .is_some());
        assert!(matches!(
            s.on_request(&metadata(), creds, 1500).action,
            Action::Dispatch
        ));
        assert!(matches!(
            s.on_request(&metadata(), creds, 1900).action,
            Action::Close(None, _)
        ));
        // Another principal cannot take the connection over.
        s.on_request(&handshake("PLAIN"), creds, 1000);
        let other = s.on_request(&authenticate(b"\0bob\0pw2"), creds, 1000);
        assert_eq!(
            authenticate_response(&other).error_code,
            ResponseError::SaslAuthenticationFailed.code()
        );
    }

    #[test]
    fn v0_handshakes_switch_to_raw_tokens() {
        let scram = ScramCredentials::default();
        let creds = Stores::new(&scram, None);
        let mut s = SaslSession::new(config("0"));
        let v0 = request(
            ApiKey::SaslHandshake,
            0,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        assert!(matches!(
            s.on_request(&v0, creds, 0).action,
            Action::Reply(_)
        ));
        assert!(s.expects_raw_token());
        let step = s.on_raw_token(b"\0alice\0pw", creds, 0);
        assert!(matches!(&step.action, Action::Reply(f) if f.as_ref() == [0, 0, 0, 0]));
        assert!(s.is_authenticated() && !s.expects_raw_token());
    }

    #[test]
    fn token_expiry_shortens_the_session() {
        assert_eq!(session_lifetime_ms(0, Some(5), 0), 0);
        assert_eq!(session_lifetime_ms(60_000, None, 0), 60_000);
        assert_eq!(session_lifetime_ms(60_000, Some(10_000), 4_000), 6_000);
        assert_eq!(session_lifetime_ms(60_000, Some(1_000), 4_000), 1);
    }
}
