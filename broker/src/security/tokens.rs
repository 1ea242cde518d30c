//! Delegation tokens (KIP-48, KIP-373): short-lived credentials a client authenticated some
//! other way hands to its workers, which log in with SCRAM as the token's owner. Kept as
//! Kafka's controller keeps them: id, owner, requester, renewers and timestamps, never the
//! HMAC, which is derived from `delegation.token.secret.key` whenever it is needed. Saved in
//! `delegation-tokens.json` on a standalone broker, in the SCRAM credential Secret in cluster
//! mode, so every broker knows every token and tokens survive restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::credentials::{Mechanism, StoredCredential};
use super::settings::SecurityProps;
use super::Principal;
use crate::fsutil::JsonFileError;
use crate::shared_state::{attach, Shared};

/// File holding the tokens, in the data directory (readable by the broker only).
const FILE: &str = "delegation-tokens.json";

/// Kafka's default `delegation.token.max.lifetime.ms`: 7 days.
pub const DEFAULT_MAX_LIFETIME_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Kafka's default `delegation.token.expiry.time.ms`: 1 day.
pub const DEFAULT_EXPIRY_TIME_MS: i64 = 24 * 60 * 60 * 1000;
/// Kafka's default `delegation.token.expiry.check.interval.ms`: 1 hour.
pub const DEFAULT_CHECK_INTERVAL_MS: i64 = 60 * 60 * 1000;

/// `delegation.token.secret.key`: the HMAC key; without it tokens are disabled.
pub const SECRET_KEY: &str = "delegation.token.secret.key";
/// The millisecond settings with their defaults, as the broker reads and describes them.
pub const MS_SETTINGS: [(&str, i64); 3] = [
    ("delegation.token.max.lifetime.ms", DEFAULT_MAX_LIFETIME_MS),
    ("delegation.token.expiry.time.ms", DEFAULT_EXPIRY_TIME_MS),
    (
        "delegation.token.expiry.check.interval.ms",
        DEFAULT_CHECK_INTERVAL_MS,
    ),
];

/// One token, as every broker stores it (no HMAC: it follows from the id and the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The token id, the user name a client logs in with.
    pub token_id: String,
    /// Whom the token authenticates as (`User:alice`).
    pub owner: String,
    /// Who created it (KIP-373); the owner unless created on the owner's behalf.
    pub requester: String,
    /// Principals besides the owner that may renew and expire it.
    pub renewers: Vec<String>,
    /// When it was created.
    pub issue_timestamp_ms: i64,
    /// When it stops authenticating unless renewed.
    pub expiry_timestamp_ms: i64,
    /// When it stops authenticating whatever renewals say.
    pub max_timestamp_ms: i64,
}

impl TokenInfo {
    /// Whether it has expired at `now_ms` (Kafka: either timestamp passed).
    pub fn expired(&self, now_ms: i64) -> bool {
        self.max_timestamp_ms < now_ms || self.expiry_timestamp_ms < now_ms
    }

    /// Kafka's `ownerOrRenewer`: the owner, the requester or a renewer.
    pub fn owner_or_renewer(&self, principal: &str) -> bool {
        self.owner == principal
            || self.requester == principal
            || self.renewers.iter().any(|r| r == principal)
    }

    /// Kafka's `allowedToRenew`: the owner or a renewer.
    fn may_renew(&self, principal: &str) -> bool {
        self.owner == principal || self.renewers.iter().any(|r| r == principal)
    }
}

/// Every token, by id: the document stored and shared.
pub type Tokens = BTreeMap<String, TokenInfo>;

/// The `delegation.token.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `delegation.token.secret.key`: the HMAC key; without it tokens are disabled.
    pub secret: Option<String>,
    /// `delegation.token.max.lifetime.ms`: the longest a token lives.
    pub max_lifetime_ms: i64,
    /// `delegation.token.expiry.time.ms`: how long a creation or renewal lasts.
    pub expiry_time_ms: i64,
    /// `delegation.token.expiry.check.interval.ms`: how often expired tokens are removed.
    pub check_interval_ms: i64,
}

impl Default for TokenSettings {
    fn default() -> TokenSettings {
        TokenSettings {
            secret: None,
            max_lifetime_ms: DEFAULT_MAX_LIFETIME_MS,
            expiry_time_ms: DEFAULT_EXPIRY_TIME_MS,
            check_interval_ms: DEFAULT_CHECK_INTERVAL_MS,
        }
    }
}

/// Why a `delegation.token.*` setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value}: expected a positive number of milliseconds")]
pub struct TokenSettingsError {
    key: &'static str,
    value: String,
}

impl TokenSettings {
    /// Reads the settings as Kafka names them (`delegation.token.master.key` is Kafka's
    /// deprecated name for the secret).
    pub fn from_props(props: &SecurityProps) -> Result<TokenSettings, TokenSettingsError> {
        let ms = |(key, default): (&'static str, i64)| match props.global(key) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| TokenSettingsError {
                    key,
                    value: value.to_owned(),
                }),
        };
        let secret = props
            .global(SECRET_KEY)
            .or_else(|| props.global("delegation.token.master.key"))
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(TokenSettings {
            secret,
            max_lifetime_ms: ms(MS_SETTINGS[0])?,
            expiry_time_ms: ms(MS_SETTINGS[1])?,
            check_interval_ms: ms(MS_SETTINGS[2])?,
        })
    }
}

/// Why a token operation is refused; each maps to Kafka's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// DELEGATION_TOKEN_AUTH_DISABLED: no `delegation.token.secret.key`.
    #[error("delegation tokens are disabled: set delegation.token.secret.key")]
    Disabled,
    /// DELEGATION_TOKEN_NOT_FOUND: no token has this HMAC.
    #[error("no delegation token has this HMAC")]
    NotFound,
    /// DELEGATION_TOKEN_EXPIRED.
    #[error("the delegation token has expired")]
    Expired,
    /// DELEGATION_TOKEN_OWNER_MISMATCH: neither the owner nor a renewer asked.
    #[error("only the token's owner or renewers may renew or expire it")]
    OwnerMismatch,
    /// The change could not be saved; nothing changed (UNKNOWN_SERVER_ERROR).
    #[error("saving the delegation tokens failed: {0}")]
    Save(String),
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Whom it authenticates as.
    pub owner: String,
    /// Who asks for it.
    pub requester: String,
    /// Who else may renew and expire it.
    pub renewers: Vec<String>,
    /// The lifetime asked for (≤ 0: `delegation.token.max.lifetime.ms`).
    pub max_lifetime_ms: i64,
}

/// A created token, with its HMAC (the password its users log in with, base64-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The token as stored.
    pub info: TokenInfo,
    /// HMAC-SHA512 of the id under the secret.
    pub hmac: Vec<u8>,
}

/// What a SCRAM login with a token checks against.
#[derive(Debug, Clone)]
pub struct TokenLogin {
    /// The SCRAM credential of the token's HMAC.
    pub credential: StoredCredential,
    /// The session's principal: the owner, marked as token-authenticated.
    pub principal: Principal,
    /// When the token expires, which ends the session (KIP-368).
    pub expires_at_ms: i64,
}

/// Every delegation token, and the settings they are issued under.
#[derive(Default)]
pub struct DelegationTokens {
    settings: TokenSettings,
    /// Where they persist on their own (standalone); `None` keeps them in memory (tests).
    path: Option<PathBuf>,
    /// Where they persist when they are shared (cluster mode); then the file is not used.
    shared: Option<Arc<dyn Shared<Tokens>>>,
    tokens: RwLock<Tokens>,
    /// Serializes changes to the file.
    changing: Mutex<()>,
}

impl std::fmt::Debug for DelegationTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegationTokens")
            .field("tokens", &self.tokens.read().len())
            .field("enabled", &self.settings.secret.is_some())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// What a planned change decides: the next document (`None`: unchanged) and the answer.
type Plan<R> = (Option<Tokens>, Result<R, TokenError>);

impl DelegationTokens {
    /// The tokens saved in `data_dir` (none there with `shared`, cluster mode: then they are
    /// those `shared` holds, and changes are written there).
    pub fn open(
        data_dir: &Path,
        settings: TokenSettings,
        shared: Option<Arc<dyn Shared<Tokens>>>,
    ) -> Result<Arc<DelegationTokens>, JsonFileError> {
        let path = data_dir.join(FILE);
        let tokens = if shared.is_some() {
            Tokens::default()
        } else {
            crate::fsutil::read_json_or_default(&path)?
        };
        let store = Arc::new(DelegationTokens {
            settings,
            path: Some(path),
            shared,
            tokens: RwLock::new(tokens),
            changing: Mutex::new(()),
        });
        if let Some(shared) = &store.shared {
            attach(&store, shared, |me, tokens| *me.tokens.write() = tokens);
        }
        Ok(store)
    }

    /// Whether tokens are enabled (`delegation.token.secret.key` is set).
    pub fn enabled(&self) -> bool {
        self.settings.secret.is_some()
    }

    /// The settings tokens are issued under.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Every token, with its HMAC.
    pub fn all(&self) -> Vec<(TokenInfo, Vec<u8>)> {
        let Some(secret) = &self.settings.secret else {
            return Vec::new();
        };
        self.tokens
            .read()
            .values()
            .map(|t| (t.clone(), hmac(secret, &t.token_id)))
            .collect()
    }

    /// Creates a token (Kafka's controller: the lifetime asked for, capped by the maximum;
    /// the expiry one `delegation.token.expiry.time.ms` away, capped by the maximum).
    pub async fn create(&self, new: NewToken, now_ms: i64) -> Result<Created, TokenError> {
        let secret = self.settings.secret.clone().ok_or(TokenError::Disabled)?;
        let max_lifetime = if new.max_lifetime_ms > 0 {
            new.max_lifetime_ms.min(self.settings.max_lifetime_ms)
        } else {
            self.settings.max_lifetime_ms
        };
        let max_timestamp_ms = now_ms.saturating_add(max_lifetime);
        let info = TokenInfo {
            token_id: uuid::Uuid::new_v4().to_string(),
            owner: new.owner,
            requester: new.requester,
            renewers: new.renewers,
            issue_timestamp_ms: now_ms,
            expiry_timestamp_ms: max_timestamp_ms
                .min(now_ms.saturating_add(self.settings.expiry_time_ms)),
            max_timestamp_ms,
        };
        let created = Created {
            hmac: hmac(&secret, &info.token_id),
            info: info.clone(),
        };
        self.change(&|tokens| {
            let mut next = tokens.clone();
            next.insert(info.token_id.clone(), info.clone());
            (Some(next), Ok(()))
        })
        .await?;
        Ok(created)
    }

    /// Renews the token of `hmac` for `principal`: its expiry becomes `period_ms` (≤ 0 or
    /// beyond `delegation.token.expiry.time.ms`: that) from now, capped by its maximum.
    pub async fn renew(
        &self,
        hmac_bytes: &[u8],
        principal: &str,
        period_ms: i64,
        now_ms: i64,
    ) -> Result<i64, TokenError> {
        let secret = self.settings.secret.clone().ok_or(TokenError::Disabled)?;
        let default_ms = self.settings.expiry_time_ms;
        self.change(&|tokens| {
            let token = match find(tokens, &secret, hmac_bytes) {
                None => return (None, Err(TokenError::NotFound)),
                Some(t) if t.expired(now_ms) => return (None, Err(TokenError::Expired)),
                Some(t) if !t.may_renew(principal) => {
                    return (None, Err(TokenError::OwnerMismatch))
                }
                Some(t) => t,
            };
            let renew_ms = if period_ms > 0 {
                period_ms.min(default_ms)
            } else {
                default_ms
            };
            let expiry = token.max_timestamp_ms.min(now_ms.saturating_add(renew_ms));
            (Some(with_expiry(tokens, token, expiry)), Ok(expiry))
        })
        .await
    }

    /// Expires the token of `hmac` for `principal`: at once (and removed) with a negative
    /// period, else `period_ms` from now, capped by its maximum.
    pub async fn expire(
        &self,
        hmac_bytes: &[u8],
        principal: &str,
        period_ms: i64,
        now_ms: i64,
    ) -> Result<i64, TokenError> {
        let secret = self.settings.secret.clone().ok_or(TokenError::Disabled)?;
        self.change(&|tokens| {
            let token = match find(tokens, &secret, hmac_bytes) {
                None => return (None, Err(TokenError::NotFound)),
                Some(t) if !t.may_renew(principal) => {
                    return (None, Err(TokenError::OwnerMismatch))
                }
                Some(t) => t,
            };
            if period_ms < 0 {
                let mut next = tokens.clone();
                next.remove(&token.token_id);
                return (Some(next), Ok(now_ms));
            }
            if token.expired(now_ms) {
                return (None, Err(TokenError::Expired));
            }
            let expiry = token.max_timestamp_ms.min(now_ms.saturating_add(period_ms));
            (Some(with_expiry(tokens, token, expiry)), Ok(expiry))
        })
        .await
    }

    /// Removes the tokens expired at `now_ms`; returns their ids.
    pub async fn sweep(&self, now_ms: i64) -> Result<Vec<String>, TokenError> {
        self.change(&|tokens| {
            let expired: Vec<String> = tokens
                .values()
                .filter(|t| t.expired(now_ms))
                .map(|t| t.token_id.clone())
                .collect();
            if expired.is_empty() {
                return (None, Ok(expired));
            }
            let mut next = tokens.clone();
            next.retain(|_, t| !t.expired(now_ms));
            (Some(next), Ok(expired))
        })
        .await
    }

    /// Removes expired tokens every `delegation.token.expiry.check.interval.ms`, for as long
    /// as the store lives.
    pub fn start_sweeping(self: &Arc<Self>) {
        if !self.enabled() {
            return;
        }
        let every = std::time::Duration::from_millis(
            u64::try_from(self.settings.check_interval_ms).unwrap_or(u64::MAX),
        );
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { return };
                match store.sweep(crate::clock::now_ms()).await {
                    Ok(removed) => {
                        for id in removed {
                            tracing::info!(token_id = id, "delegation token expired; removed");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "removing expired delegation tokens"),
                }
            }
        });
    }

    /// What a SCRAM login as token `token_id` checks against: `None` for an unknown or
    /// expired token, or when tokens are disabled. The credential is derived afresh, with a
    /// new salt, from the token's HMAC at Kafka's minimum iterations.
    pub fn login(&self, token_id: &str, mechanism: Mechanism, now_ms: i64) -> Option<TokenLogin> {
        let secret = self.settings.secret.as_ref()?;
        let token = self.tokens.read().get(token_id).cloned()?;
        if token.expired(now_ms) {
            return None;
        }
        let password = BASE64.encode(hmac(secret, token_id));
        let salt = uuid::Uuid::new_v4().into_bytes();
        let iterations = u32::try_from(tributary_crds::scram::MIN_ITERATIONS).ok()?;
        let credential =
            StoredCredential::derive(mechanism, password.as_bytes(), &salt, iterations)?;
        let name = token
            .owner
            .split_once(':')
            .map_or(token.owner.as_str(), |(_, name)| name);
        Some(TokenLogin {
            credential,
            principal: Principal::token_user(name),
            expires_at_ms: token.expiry_timestamp_ms,
        })
    }

    /// Applies `plan` to the stored tokens (re-applied to a newer version when another
    /// broker wrote first); nothing is written when it decides no change.
    async fn change<R: Send>(
        &self,
        plan: &(dyn Fn(&Tokens) -> Plan<R> + Send + Sync),
    ) -> Result<R, TokenError> {
        let Some(shared) = &self.shared else {
            let _one_at_a_time = self.changing.lock();
            let current = self.tokens.read().clone();
            let (next, answer) = plan(&current);
            if let (Some(next), Ok(_)) = (next, &answer) {
                self.save(&next)
                    .map_err(|e| TokenError::Save(e.to_string()))?;
                *self.tokens.write() = next;
            }
            return answer;
        };
        // Decided against what this broker last saw first, so refusals write nothing.
        let (next, answer) = plan(&self.tokens.read().clone());
        if next.is_none() || answer.is_err() {
            return answer;
        }
        let decided = Mutex::new(None);
        let written = shared
            .update(&|tokens| {
                let (next, answer) = plan(tokens);
                if let (Some(next), Ok(_)) = (next, &answer) {
                    *tokens = next;
                }
                *decided.lock() = Some(answer);
            })
            .await
            .map_err(TokenError::Save)?;
        *self.tokens.write() = written;
        decided
            .into_inner()
            .unwrap_or_else(|| Err(TokenError::Save("the change was not applied".into())))
    }

    fn save(&self, tokens: &Tokens) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let json = serde_json::to_vec_pretty(tokens)?;
        crate::fsutil::write_atomic_private(path, &json)
    }
}

/// `tokens` with `token`'s expiry set to `expiry`.
fn with_expiry(tokens: &Tokens, token: &TokenInfo, expiry: i64) -> Tokens {
    let mut next = tokens.clone();
    if let Some(t) = next.get_mut(&token.token_id) {
        t.expiry_timestamp_ms = expiry;
    }
    next
}

/// The token whose HMAC is `hmac_bytes`.
fn find<'a>(tokens: &'a Tokens, secret: &str, hmac_bytes: &[u8]) -> Option<&'a TokenInfo> {
    tokens
        .values()
        .find(|t| constant_time_eq(&hmac(secret, &t.token_id), hmac_bytes))
}

/// HMAC-SHA512 of the token id under the secret, as Kafka computes it.
pub fn hmac(secret: &str, token_id: &str) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    match Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(token_id.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; unreachable, and an empty HMAC matches nothing.
        Err(_) => Vec::new(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    !a.is_empty()
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TokenSettings {
        TokenSettings {
            secret: Some("s3cret".into()),
            max_lifetime_ms: 10_000,
            expiry_time_ms: 1_000,
            check_interval_ms: 100,
        }
    }

    fn new_token(owner: &str) -> NewToken {
        NewToken {
            owner: owner.into(),
            requester: owner.into(),
            renewers: vec!["User:bob".into()],
            max_lifetime_ms: 0,
        }
    }

    #[test]
    fn settings_default_as_kafka_and_refuse_nonsense() {
        let none = TokenSettings::from_props(&SecurityProps::default()).unwrap();
        assert_eq!(none, TokenSettings::default());
        let set = TokenSettings::from_props(&SecurityProps::from_pairs(&[
            ("delegation.token.secret.key", "k"),
            ("delegation.token.max.lifetime.ms", "5000"),
        ]))
        .unwrap();
        assert_eq!(set.secret.as_deref(), Some("k"));
        assert_eq!(set.max_lifetime_ms, 5000);
        assert!(TokenSettings::from_props(&SecurityProps::from_pairs(&[(
            "delegation.token.expiry.time.ms",
            "-1"
        )]))
        .is_err());
    }

    #[tokio::test]
    async fn tokens_renew_expire_and_sweep_as_kafkas_controller_decides() {
        let dir = tempfile::tempdir().unwrap();
        let store = DelegationTokens::open(dir.path(), settings(), None).unwrap();
        let created = store.create(new_token("User:alice"), 1_000).await.unwrap();
        assert_eq!(created.info.expiry_timestamp_ms, 2_000);
        assert_eq!(created.info.max_timestamp_ms, 11_000);
        assert_eq!(created.hmac, hmac("s3cret", &created.info.token_id));
        let h = &created.hmac;
        assert_eq!(
            store.renew(h, "User:carol", 0, 1_500).await,
            Err(TokenError::OwnerMismatch)
        );
        assert_eq!(store.renew(h, "User:bob", 500, 1_500).await, Ok(2_000));
        assert_eq!(
            store.renew(b"nope", "User:bob", 500, 1_500).await,
            Err(TokenError::NotFound)
        );
        assert_eq!(
            store.renew(h, "User:alice", 0, 2_001).await,
            Err(TokenError::Expired)
        );
        assert_eq!(
            store.expire(h, "User:alice", 0, 2_001).await,
            Err(TokenError::Expired)
        );
        assert_eq!(store.sweep(1_999).await, Ok(vec![]));
        assert_eq!(
            store.sweep(2_001).await,
            Ok(vec![created.info.token_id.clone()])
        );
        assert!(store.all().is_empty());

        let second = store.create(new_token("User:alice"), 3_000).await.unwrap();
        assert_eq!(
            store.expire(&second.hmac, "User:alice", -1, 3_100).await,
            Ok(3_100)
        );
        assert!(store.all().is_empty(), "a negative period expires at once");
    }

    #[tokio::test]
    async fn tokens_persist_without_their_hmac_and_log_in_as_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = DelegationTokens::open(dir.path(), settings(), None).unwrap();
        let created = store.create(new_token("User:alice"), 1_000).await.unwrap();
        drop(store);
        let reopened = DelegationTokens::open(dir.path(), settings(), None).unwrap();
        assert_eq!(
            reopened.all(),
            vec![(created.info.clone(), created.hmac.clone())]
        );
        let saved = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!saved.contains(&BASE64.encode(&created.hmac)));
        let login = reopened
            .login(&created.info.token_id, Mechanism::Sha256, 1_500)
            .unwrap();
        assert_eq!(login.principal.to_string(), "User:alice");
        assert!(login.principal.token_authenticated);
        assert!(login
            .credential
            .verifies(Mechanism::Sha256, BASE64.encode(&created.hmac).as_bytes()));
        assert!(reopened
            .login(&created.info.token_id, Mechanism::Sha256, 2_001)
            .is_none());

        let disabled = DelegationTokens::open(dir.path(), TokenSettings::default(), None).unwrap();
        assert!(disabled
            .login(&created.info.token_id, Mechanism::Sha256, 1_500)
            .is_none());
        assert_eq!(
            disabled.create(new_token("User:alice"), 0).await,
            Err(TokenError::Disabled)
        );
    }
}
