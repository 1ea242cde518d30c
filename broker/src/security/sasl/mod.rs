//! SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners: the mechanisms a listener
//! enables (`sasl.enabled.mechanisms`) and what each checks credentials against, one
//! exchange per mechanism ([`plain`], [`scram`], [`oauth`]), and the per-connection state
//! machine of SaslHandshake/SaslAuthenticate and re-authentication ([`session`]).

pub mod oauth;
pub mod plain;
pub mod scram;
pub mod session;

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::jaas;
use super::jwt::{Expectations, Jwks};
use super::reload::Reloading;
use super::settings::SecurityProps;
use super::Principal;
use crate::security::credentials::ScramCredentials;
use crate::security::tokens::DelegationTokens;

/// What exchanges check credentials against: users' SCRAM credentials and, for a SCRAM
/// login with `tokenauth=true`, the delegation tokens.
#[derive(Debug, Clone, Copy)]
pub struct Stores<'a> {
    /// Users' SCRAM credentials.
    pub scram: &'a ScramCredentials,
    /// Delegation tokens (`None`: token logins fail).
    pub tokens: Option<&'a DelegationTokens>,
}

impl<'a> Stores<'a> {
    /// The stores `scram` and `tokens`.
    pub fn new(scram: &'a ScramCredentials, tokens: Option<&'a DelegationTokens>) -> Stores<'a> {
        Stores { scram, tokens }
    }
}

/// A SASL mechanism this broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mechanism {
    /// PLAIN (RFC 4616) against a JAAS entry's users.
    Plain,
    /// SCRAM-SHA-256 against the stored credentials.
    ScramSha256,
    /// SCRAM-SHA-512 against the stored credentials.
    ScramSha512,
    /// OAUTHBEARER with a JWT checked against a JWKS.
    OAuthBearer,
}

impl Mechanism {
    /// The mechanism named `name` as clients send it.
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }

    /// Its IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// What one step of an exchange produced.
#[derive(Debug)]
pub enum Outcome {
    /// A challenge for the client; the exchange goes on.
    Continue(Vec<u8>),
    /// The client is authenticated.
    Authenticated {
        /// The last server message (SCRAM's server-final, empty otherwise).
        response: Vec<u8>,
        /// Who the client is.
        principal: Principal,
        /// When the credential stops being valid (a token's `exp`), if it does.
        expires_at_ms: Option<i64>,
    },
}

/// A failed exchange: what the client is told and what the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error message in the SaslAuthenticate response.
    pub message: String,
    /// The reason, for the broker's log (may name the user, never a secret).
    pub detail: String,
}

/// Why a listener's SASL settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listener {listener}: {reason}")]
pub struct SaslConfigError {
    listener: String,
    reason: String,
}

/// OAUTHBEARER's validation settings.
#[derive(Debug)]
struct OAuth {
    jwks: Reloading<Jwks>,
    expect: Expectations,
}

/// One SASL listener's mechanisms and what they check against.
#[derive(Debug)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`, in the order configured.
    pub mechanisms: Vec<Mechanism>,
    plain: Option<Reloading<BTreeMap<String, String>>>,
    oauth: Option<OAuth>,
    /// `connections.max.reauth.ms` per mechanism (0: sessions never expire).
    max_reauth_ms: BTreeMap<Mechanism, i64>,
}

impl SaslConfig {
    /// Reads `listener`'s SASL settings and loads the files they name.
    pub fn from_props(
        props: &SecurityProps,
        listener: &str,
    ) -> Result<SaslConfig, SaslConfigError> {
        let bad = |reason: String| SaslConfigError {
            listener: listener.to_string(),
            reason,
        };
        let enabled = props.get(listener, "sasl.enabled.mechanisms").ok_or_else(|| {
            bad("a SASL listener needs sasl.enabled.mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)".into())
        })?;
        let mut mechanisms = Vec::new();
        for name in enabled.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let m = Mechanism::parse(&name.to_ascii_uppercase()).ok_or_else(|| {
                bad(format!("sasl.enabled.mechanisms: {name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER are)"))
            })?;
            if !mechanisms.contains(&m) {
                mechanisms.push(m);
            }
        }
        if mechanisms.is_empty() {
            return Err(bad("sasl.enabled.mechanisms is empty".into()));
        }
        let plain = if mechanisms.contains(&Mechanism::Plain) {
            Some(plain_users(props, listener).map_err(bad)?)
        } else {
            None
        };
        let oauth = if mechanisms.contains(&Mechanism::OAuthBearer) {
            Some(oauth(props, listener).map_err(bad)?)
        } else {
            None
        };
        let mut max_reauth_ms = BTreeMap::new();
        for &m in &mechanisms {
            let ms = match props.get_for_mechanism(listener, m.name(), "connections.max.reauth.ms")
            {
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|ms| *ms >= 0)
                    .ok_or_else(|| {
                        bad(format!(
                            "connections.max.reauth.ms={v}: not a number of milliseconds"
                        ))
                    })?,
                None => 0,
            };
            max_reauth_ms.insert(m, ms);
        }
        Ok(SaslConfig {
            mechanisms,
            plain,
            oauth,
            max_reauth_ms,
        })
    }

    /// The names of the enabled mechanisms, as SaslHandshake lists them.
    pub fn mechanism_names(&self) -> Vec<&'static str> {
        self.mechanisms.iter().map(|m| m.name()).collect()
    }

    /// `connections.max.reauth.ms` for sessions authenticated with `mechanism`.
    pub fn max_reauth_ms(&self, mechanism: Mechanism) -> i64 {
        self.max_reauth_ms.get(&mechanism).copied().unwrap_or(0)
    }

    /// Starts an exchange with `mechanism`.
    pub fn start(&self, mechanism: Mechanism) -> Exchange {
        match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::ScramSha256 => Exchange::Scram(Box::new(scram::ScramServer::new(
                crate::security::credentials::Mechanism::Sha256,
            ))),
            Mechanism::ScramSha512 => Exchange::Scram(Box::new(scram::ScramServer::new(
                crate::security::credentials::Mechanism::Sha512,
            ))),
            Mechanism::OAuthBearer => Exchange::OAuth,
        }
    }
}

/// One exchange in progress.
#[derive(Debug)]
pub enum Exchange {
    /// PLAIN: one message.
    Plain,
    /// SCRAM: two round trips.
    Scram(Box<scram::ScramServer>),
    /// OAUTHBEARER: one message.
    OAuth,
}

impl Exchange {
    /// Answers one client message.
    pub fn step(
        &mut self,
        message: &[u8],
        config: &SaslConfig,
        stores: Stores<'_>,
        now_ms: i64,
    ) -> Result<Outcome, Failure> {
        let unavailable = || Failure {
            message: "Authentication failed: the mechanism is not configured".into(),
            detail: "mechanism not configured".into(),
        };
        match self {
            Exchange::Plain => {
                let users = config.plain.as_ref().ok_or_else(unavailable)?.current();
                plain::authenticate(message, &users)
            }
            Exchange::Scram(server) => {
                let mechanism = server.mechanism();
                server.step_with_tokens(
                    message,
                    |user| stores.scram.lookup(user, mechanism),
                    |token_id| stores.tokens?.login(token_id, mechanism, now_ms),
                    server_nonce,
                )
            }
            Exchange::OAuth => {
                let oauth = config.oauth.as_ref().ok_or_else(unavailable)?;
                oauth::authenticate(message, &oauth.jwks.current(), &oauth.expect, now_ms)
            }
        }
    }
}

/// The server's half of a SCRAM nonce: 128 random bits, printable.
fn server_nonce() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// PLAIN's users: the JAAS entry inline (`listener.name.<l>.plain.sasl.jaas.config`, as
/// Kafka) or in a file (`sasl.plain.credentials.location`, re-read when it changes).
fn plain_users(
    props: &SecurityProps,
    listener: &str,
) -> Result<Reloading<BTreeMap<String, String>>, String> {
    let users_of = |text: &str| -> Result<BTreeMap<String, String>, String> {
        let users = jaas::plain_users(&jaas::options(text).map_err(|e| e.to_string())?);
        if users.is_empty() {
            return Err("the PLAIN JAAS entry defines no user_<name>=\"<password>\"".into());
        }
        Ok(users)
    };
    if let Some(path) =
        props.get_for_mechanism(listener, "plain", "sasl.plain.credentials.location")
    {
        let path = PathBuf::from(path);
        let read = path.clone();
        return Reloading::new(
            "PLAIN credentials",
            vec![path],
            Box::new(move || {
                let text = std::fs::read_to_string(&read)
                    .map_err(|e| format!("{}: {e}", read.display()))?;
                users_of(&text)
            }),
        );
    }
    let text = props
        .get_for_mechanism(listener, "plain", "sasl.jaas.config")
        .ok_or("PLAIN needs listener.name.<listener>.plain.sasl.jaas.config or sasl.plain.credentials.location")?;
    let users = users_of(text)?;
    Reloading::new(
        "PLAIN credentials",
        Vec::new(),
        Box::new(move || Ok(users.clone())),
    )
}

fn oauth(props: &SecurityProps, listener: &str) -> Result<OAuth, String> {
    let get = |key: &str| props.get_for_mechanism(listener, "oauthbearer", key);
    let url = get("sasl.oauthbearer.jwks.endpoint.url")
        .ok_or("OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url (a file:// JWKS)")?;
    let path = url.strip_prefix("file://").ok_or_else(|| {
        format!("sasl.oauthbearer.jwks.endpoint.url={url}: only file:// URLs are supported (mount the JWKS from a Secret or ConfigMap)")
    })?;
    let path = PathBuf::from(path);
    let read = path.clone();
    let jwks = Reloading::new(
        "OAUTHBEARER JWKS",
        vec![path],
        Box::new(move || {
            let bytes = std::fs::read(&read).map_err(|e| format!("{}: {e}", read.display()))?;
            Jwks::parse(&bytes).map_err(|e| e.to_string())
        }),
    )?;
    let mut expect = Expectations::default();
    if let Some(audience) = get("sasl.oauthbearer.expected.audience") {
        expect.audience = audience
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
    }
    expect.issuer = get("sasl.oauthbearer.expected.issuer").map(str::to_string);
    if let Some(claim) = get("sasl.oauthbearer.sub.claim.name") {
        expect.subject_claim = claim.to_string();
    }
    if let Some(skew) = get("sasl.oauthbearer.clock.skew.seconds") {
        expect.clock_skew_s = skew
            .trim()
            .parse()
            .ok()
            .filter(|s: &i64| *s >= 0)
            .ok_or_else(|| {
                format!("sasl.oauthbearer.clock.skew.seconds={skew}: not a number of seconds")
            })?;
    }
    Ok(OAuth { jwks, expect })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_and_their_sources_are_checked() {
        let err = |pairs: &[(&str, &str)]| {
            SaslConfig::from_props(&SecurityProps::from_pairs(pairs), "SASL_SSL")
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[]).contains("sasl.enabled.mechanisms"));
        assert!(err(&[("sasl.enabled.mechanisms", "GSSAPI")]).contains("GSSAPI is not supported"));
        assert!(err(&[("sasl.enabled.mechanisms", "PLAIN")]).contains("plain.sasl.jaas.config"));
        assert!(err(&[("sasl.enabled.mechanisms", "OAUTHBEARER")]).contains("jwks.endpoint.url"));
        assert!(err(&[
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            ("sasl.oauthbearer.jwks.endpoint.url", "https://idp/jwks")
        ])
        .contains("only file://"));
        assert!(err(&[
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            ("connections.max.reauth.ms", "soon")
        ])
        .contains("connections.max.reauth.ms"));
        let config = SaslConfig::from_props(
            &SecurityProps::from_pairs(&[
                (
                    "listener.name.sasl_ssl.sasl.enabled.mechanisms",
                    "SCRAM-SHA-512,PLAIN",
                ),
                (
                    "listener.name.sasl_ssl.plain.sasl.jaas.config",
                    "M required user_a=\"b\";",
                ),
                ("connections.max.reauth.ms", "60000"),
            ]),
            "SASL_SSL",
        )
        .unwrap();
        assert_eq!(config.mechanism_names(), ["SCRAM-SHA-512", "PLAIN"]);
        assert_eq!(config.max_reauth_ms(Mechanism::Plain), 60_000);
        let mut plain = config.start(Mechanism::Plain);
        let creds = ScramCredentials::default();
        assert!(plain
            .step(b"\0a\0b", &config, Stores::new(&creds, None), 0)
            .is_ok());
    }
}
