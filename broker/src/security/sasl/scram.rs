//! The server side of a SCRAM exchange (RFC 5802, RFC 7677) against the credentials the
//! broker stores: two client messages, two answers, no password ever seen.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::{Failure, Outcome};
use crate::security::credentials::{Mechanism, StoredCredential};
use crate::security::tokens::TokenLogin;
use crate::security::Principal;

/// Where an exchange stands.
#[derive(Debug)]
enum State {
    /// Waiting for the client-first message.
    First,
    /// The server-first message was sent; waiting for the client-final message.
    Final(Box<Pending>),
    /// Finished or failed; any further message is a protocol error.
    Done,
}

/// What the client-final message is checked against.
#[derive(Debug)]
struct Pending {
    user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: StoredCredential,
    /// Who the client is once its proof checks: the user, or a token's owner.
    principal: Principal,
    /// When a token's session ends.
    expires_at_ms: Option<i64>,
}

/// One SCRAM authentication in progress.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: Mechanism,
    state: State,
}

impl ScramServer {
    /// An exchange for `mechanism`, waiting for the client's first message.
    pub fn new(mechanism: Mechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::First,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Answers one client message. `lookup` finds a user's stored credential; `server_nonce`
    /// makes the server's part of the nonce (random in the broker, fixed in tests).
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<StoredCredential>,
        server_nonce: impl FnOnce() -> String,
    ) -> Result<Outcome, Failure> {
        self.step_with_tokens(message, lookup, |_| None, server_nonce)
    }

    /// [`ScramServer::step`], where a client-first message with the `tokenauth=true`
    /// extension logs in with a delegation token: `token` finds what the token id (the user
    /// name) checks against, and the session is the token owner's.
    pub fn step_with_tokens(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<StoredCredential>,
        token: impl FnOnce(&str) -> Option<TokenLogin>,
        server_nonce: impl FnOnce() -> String,
    ) -> Result<Outcome, Failure> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::First => {
                let (next, answer) = self.first(message, lookup, token, server_nonce)?;
                self.state = next;
                Ok(Outcome::Continue(answer))
            }
            State::Final(pending) => {
                let Pending {
                    user,
                    gs2_header,
                    client_first_bare,
                    server_first,
                    nonce,
                    credential,
                    principal,
                    expires_at_ms,
                } = *pending;
                let text = utf8(message)?;
                let (without_proof, proof) = text
                    .rsplit_once(",p=")
                    .ok_or_else(|| malformed("client-final message without a proof"))?;
                let attributes = attributes(without_proof)?;
                let binding = attributes
                    .iter()
                    .find(|(k, _)| *k == "c")
                    .map(|(_, v)| *v)
                    .ok_or_else(|| malformed("client-final message without channel binding"))?;
                if binding != BASE64.encode(gs2_header.as_bytes()) {
                    return Err(malformed(
                        "channel binding does not match the first message",
                    ));
                }
                let echoed = attributes.iter().find(|(k, _)| *k == "r").map(|(_, v)| *v);
                if echoed != Some(nonce.as_str()) {
                    return Err(malformed("nonce does not match"));
                }
                let proof = BASE64
                    .decode(proof)
                    .map_err(|_| malformed("proof is not base64"))?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let m = self.mechanism;
                let signature = m
                    .hmac(&credential.stored_key, auth_message.as_bytes())
                    .ok_or_else(|| self.invalid(&user, "unusable stored key"))?;
                if proof.len() != signature.len() {
                    return Err(self.invalid(&user, "proof of the wrong length"));
                }
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                if !constant_time_eq(&m.hash(&client_key), &credential.stored_key) {
                    return Err(self.invalid(&user, "wrong password"));
                }
                let server_signature = m
                    .hmac(&credential.server_key, auth_message.as_bytes())
                    .ok_or_else(|| self.invalid(&user, "unusable server key"))?;
                let answer = format!("v={}", BASE64.encode(server_signature));
                Ok(Outcome::Authenticated {
                    response: answer.into_bytes(),
                    principal,
                    expires_at_ms,
                })
            }
            State::Done => Err(malformed("the exchange is already finished")),
        }
    }

    fn first(
        &self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<StoredCredential>,
        token: impl FnOnce(&str) -> Option<TokenLogin>,
        server_nonce: impl FnOnce() -> String,
    ) -> Result<(State, Vec<u8>), Failure> {
        let text = utf8(message)?;
        // gs2-header: cbind-flag "," [authzid] ","
        let (flag, rest) = text
            .split_once(',')
            .ok_or_else(|| malformed("client-first message without a GS2 header"))?;
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| malformed("client-first message without a GS2 header"))?;
        if flag != "n" && flag != "y" {
            return Err(malformed("channel binding is not supported"));
        }
        let gs2_header = format!("{flag},{authzid},");
        let attributes = attributes(bare)?;
        let user = match attributes.first() {
            Some(("n", name)) => decode_saslname(name)?,
            _ => return Err(malformed("client-first message without a user name")),
        };
        let client_nonce = match attributes.get(1) {
            Some(("r", nonce)) if !nonce.is_empty() => *nonce,
            _ => return Err(malformed("client-first message without a nonce")),
        };
        let token_auth = attributes
            .iter()
            .any(|(k, v)| *k == "tokenauth" && v.eq_ignore_ascii_case("true"));
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if decode_saslname(authzid)? != user {
                return Err(Failure {
                    message: "Authentication failed: Invalid user credentials".into(),
                    detail: format!("authorization id {authzid} differs from user {user}"),
                });
            }
        }
        let (credential, principal, expires_at_ms) = if token_auth {
            let login = token(&user)
                .ok_or_else(|| self.invalid(&user, "unknown or expired delegation token"))?;
            (login.credential, login.principal, Some(login.expires_at_ms))
        } else {
            let credential = lookup(&user).ok_or_else(|| self.invalid(&user, "unknown user"))?;
            (credential, Principal::user(user.clone()), None)
        };
        let nonce = format!("{client_nonce}{}", server_nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let answer = server_first.clone().into_bytes();
        Ok((
            State::Final(Box::new(Pending {
                user,
                gs2_header,
                client_first_bare: bare.to_string(),
                server_first,
                nonce,
                credential,
                principal,
                expires_at_ms,
            })),
            answer,
        ))
    }

    /// Kafka's answer to bad credentials: the same for an unknown user and a wrong password,
    /// so a client cannot probe for user names.
    fn invalid(&self, user: &str, why: &str) -> Failure {
        Failure {
            message: format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                self.mechanism.name()
            ),
            detail: format!("user {user}: {why}"),
        }
    }
}

fn utf8(message: &[u8]) -> Result<&str, Failure> {
    std::str::from_utf8(message).map_err(|_| malformed("message is not UTF-8"))
}

fn malformed(what: &str) -> Failure {
    Failure {
        message: format!("Invalid SCRAM message: {what}"),
        detail: what.to_string(),
    }
}

/// `k=v` attributes separated by commas.
fn attributes(text: &str) -> Result<Vec<(&str, &str)>, Failure> {
    text.split(',')
        .map(|a| {
            a.split_once('=')
                .ok_or_else(|| malformed("attribute without `=`"))
        })
        .collect()
}

/// RFC 5802's saslname: `=2C` is a comma, `=3D` an equals sign, any other `=` is an error.
fn decode_saslname(name: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        match code {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return Err(malformed("badly escaped user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(malformed("empty user name"));
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client side, for inter-broker connections and tests: RFC 5802 messages for `user`
/// with `password`.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: Mechanism,
    user: String,
    password: String,
    client_nonce: String,
    /// Whether it logs in with a delegation token (the `tokenauth=true` extension).
    token: bool,
    state: Option<(String, Vec<u8>)>,
}

impl ScramClient {
    /// A client for `user`, with `client_nonce` (random in use, fixed in tests).
    pub fn new(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        client_nonce: String,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            user: user.to_string(),
            password: password.to_string(),
            client_nonce,
            token: false,
            state: None,
        }
    }

    /// A client logging in with delegation token `token_id` and its base64 HMAC.
    pub fn for_token(
        mechanism: Mechanism,
        token_id: &str,
        hmac_base64: &str,
        client_nonce: String,
    ) -> ScramClient {
        ScramClient {
            token: true,
            ..ScramClient::new(mechanism, token_id, hmac_base64, client_nonce)
        }
    }

    /// client-first-message-bare: the user, the nonce and any extension.
    fn first_bare(&self) -> String {
        let name = self.user.replace('=', "=3D").replace(',', "=2C");
        let extension = if self.token { ",tokenauth=true" } else { "" };
        format!("n={name},r={}{extension}", self.client_nonce)
    }

    /// The client-first message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare()).into_bytes()
    }

    /// The client-final message answering `server_first`, or `None` if it does not parse.
    pub fn last(&mut self, server_first: &[u8]) -> Option<Vec<u8>> {
        let server_first = std::str::from_utf8(server_first).ok()?;
        let attributes = attributes(server_first).ok()?;
        let get = |key: &str| attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let nonce = get("r")?;
        if !nonce.starts_with(&self.client_nonce) {
            return None;
        }
        let salt = BASE64.decode(get("s")?).ok()?;
        let iterations: u32 = get("i")?.parse().ok()?;
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations)?;
        let client_key = m.hmac(&salted, b"Client Key")?;
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare());
        let signature = m.hmac(&stored_key, auth_message.as_bytes())?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key")?;
        self.state = Some((auth_message.clone(), server_key));
        Some(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Whether the server-final message proves the server knows the credential.
    pub fn verify(&self, server_final: &[u8]) -> bool {
        let Some((auth_message, server_key)) = &self.state else {
            return false;
        };
        let Some(expected) = self.mechanism.hmac(server_key, auth_message.as_bytes()) else {
            return false;
        };
        server_final == format!("v={}", BASE64.encode(expected)).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(mechanism: Mechanism, password: &str) -> StoredCredential {
        StoredCredential::derive(mechanism, password.as_bytes(), b"pepper", 4096).unwrap()
    }

    fn run(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        stored: Option<StoredCredential>,
    ) -> Result<Outcome, Failure> {
        let mut client =
            ScramClient::new(mechanism, user, password, "fyko+d2lbbFgONRv9qkxdawL".into());
        let mut server = ScramServer::new(mechanism);
        let first = server.step(&client.first(), |_| stored, || "3rfcNHYJY1ZVvWVs7j".into())?;
        let Outcome::Continue(server_first) = first else {
            panic!("the first step answers a challenge");
        };
        let last = client.last(&server_first).unwrap();
        let done = server.step(&last, |_| None, String::new)?;
        if let Outcome::Authenticated { response, .. } = &done {
            assert!(
                client.verify(response),
                "the server proves it knows the key"
            );
        }
        Ok(done)
    }

    #[test]
    fn the_right_password_authenticates_with_both_mechanisms() {
        for m in [Mechanism::Sha256, Mechanism::Sha512] {
            let outcome = run(m, "alice", "secret", Some(credential(m, "secret"))).unwrap();
            match outcome {
                Outcome::Authenticated { principal, .. } => {
                    assert_eq!(principal.to_string(), "User:alice")
                }
                Outcome::Continue(_) => panic!("not finished"),
            }
        }
    }

    #[test]
    fn rfc_7677_example_exchange() {
        // RFC 7677 section 3: user "user", password "pencil".
        let stored = StoredCredential::derive(
            Mechanism::Sha256,
            b"pencil",
            &BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap(),
            4096,
        )
        .unwrap();
        let mut server = ScramServer::new(Mechanism::Sha256);
        let first = server
            .step(
                b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                |_| Some(stored),
                || "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
            )
            .unwrap();
        let Outcome::Continue(challenge) = first else {
            panic!("expected a challenge")
        };
        assert_eq!(
            challenge,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let done = server
            .step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                |_| None,
                String::new,
            )
            .unwrap();
        let Outcome::Authenticated { response, .. } = done else {
            panic!("expected success")
        };
        assert_eq!(response, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn wrong_passwords_and_unknown_users_fail_alike() {
        let m = Mechanism::Sha512;
        let wrong = run(m, "alice", "guess", Some(credential(m, "secret"))).unwrap_err();
        let unknown = run(m, "mallory", "x", None).unwrap_err();
        assert_eq!(wrong.message, unknown.message);
        assert!(wrong.message.contains("SCRAM-SHA-512"));
        assert!(wrong.detail.contains("wrong password"));
        assert!(unknown.detail.contains("unknown user"));
    }

    #[test]
    fn hostile_client_messages_fail_cleanly_never_panics() {
        use crate::test_support::hostile::{never_panics, unsealed};
        let m = Mechanism::Sha256;
        let stored = credential(m, "pw");
        let samples = vec![
            b"n,,n=alice,r=abc".to_vec(),
            b"n,a=alice,n=alice,r=abc".to_vec(),
            b"c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".to_vec(),
        ];
        never_panics(samples, unsealed, |bytes| {
            let mut first = ScramServer::new(m);
            let _ = first.step(bytes, |_| Some(stored.clone()), || "def".into());
            let mut last = ScramServer::new(m);
            let started = last.step(
                b"n,,n=alice,r=abc",
                |_| Some(stored.clone()),
                || "def".into(),
            );
            assert!(started.is_ok(), "a valid first message starts the exchange");
            let _ = last.step(bytes, |_| None, String::new);
            let _ = super::super::plain::authenticate(bytes, &std::collections::BTreeMap::new());
            let _ = super::super::oauth::bearer_token(bytes);
        });
    }

    #[test]
    fn garbage_is_a_clean_failure() {
        for message in [
            &b""[..],
            b"\xff\xfe",
            b"n,,",
            b"p=tls-unique,,n=a,r=b",
            b"n,,n=a",
            b"n,,n=a=,r=x",
        ] {
            let mut server = ScramServer::new(Mechanism::Sha256);
            assert!(
                server.step(message, |_| None, String::new).is_err(),
                "{message:?}"
            );
        }
        let m = Mechanism::Sha256;
        let mut server = ScramServer::new(m);
        let stored = credential(m, "pw");
        assert!(server
            .step(b"n,,n=alice,r=abc", |_| Some(stored), || "def".into())
            .is_ok());
        assert!(server
            .step(b"c=biws,r=abcdef,p=!!!", |_| None, String::new)
            .is_err());
        assert!(
            server.step(b"anything", |_| None, String::new).is_err(),
            "finished"
        );
    }
}
