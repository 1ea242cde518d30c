//! SCRAM credentials as Kafka keeps them (RFC 5802): the salt, the iteration count and the
//! stored and server keys derived from the salted password, never the password; and the
//! credential document brokers share.
//!
//! The brokers of a cluster check logins against one JSON document, [`Users`], in the key
//! [`crate::registration::SCRAM_CREDENTIALS_KEY`] of the Secret
//! [`crate::registration::scram_credentials_name`]. The broker's AlterUserScramCredentials
//! and the operator's KafkaUser reconciler both write it, so the format and the derivation
//! are defined once, here.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's lower bound on iterations, for both mechanisms.
pub const MIN_ITERATIONS: i32 = 4096;
/// Kafka's upper bound on iterations, for both mechanisms.
pub const MAX_ITERATIONS: i32 = 16384;

/// The SCRAM mechanisms Kafka knows, by their protocol codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (code 1).
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512 (code 2).
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl Mechanism {
    /// The mechanism with protocol code `code`.
    pub fn from_code(code: i8) -> Option<Mechanism> {
        match code {
            1 => Some(Mechanism::Sha256),
            2 => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    /// Its protocol code.
    pub fn code(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    /// Its IANA name, as SaslHandshake names it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// HMAC(key, message) with this mechanism's hash.
    pub fn hmac(self, key: &[u8], message: &[u8]) -> Option<Vec<u8>> {
        macro_rules! mac {
            ($hash:ty) => {{
                let mut mac = Hmac::<$hash>::new_from_slice(key).ok()?;
                mac.update(message);
                Some(mac.finalize().into_bytes().to_vec())
            }};
        }
        match self {
            Mechanism::Sha256 => mac!(Sha256),
            Mechanism::Sha512 => mac!(Sha512),
        }
    }

    /// H(data) with this mechanism's hash.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// Hi(password, salt, iterations) of RFC 5802 (PBKDF2 with this mechanism's HMAC).
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &block)?;
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u)?;
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        Some(out)
    }

    /// (stored key, server key) for a salted password (RFC 5802): what a server keeps so it
    /// can check a client's proof and prove itself without knowing the password.
    pub fn keys(self, salted_password: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let client_key = self.hmac(salted_password, b"Client Key")?;
        Some((
            self.hash(&client_key),
            self.hmac(salted_password, b"Server Key")?,
        ))
    }
}

/// One user's credential for one mechanism, as the document stores it (base64 fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Iterations the password is salted with.
    pub iterations: i32,
    /// The salt, base64.
    pub salt: String,
    /// H(ClientKey), base64.
    pub stored_key: String,
    /// ServerKey, base64.
    pub server_key: String,
}

impl Credential {
    /// The stored form of `credential`.
    pub fn encode(credential: &StoredCredential) -> Credential {
        Credential {
            iterations: credential.iterations,
            salt: BASE64.encode(&credential.salt),
            stored_key: BASE64.encode(&credential.stored_key),
            server_key: BASE64.encode(&credential.server_key),
        }
    }

    /// The credential as a SCRAM exchange needs it; `None` when a field is not base64.
    pub fn decode(&self) -> Option<StoredCredential> {
        Some(StoredCredential {
            salt: BASE64.decode(&self.salt).ok()?,
            iterations: self.iterations,
            stored_key: BASE64.decode(&self.stored_key).ok()?,
            server_key: BASE64.decode(&self.server_key).ok()?,
        })
    }
}

/// Every user's credentials by mechanism: the shared SCRAM credential document.
pub type Users = BTreeMap<String, BTreeMap<Mechanism, Credential>>;

/// A user's credential as a SCRAM exchange needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The salt the client salts its password with.
    pub salt: Vec<u8>,
    /// The iteration count it salts with.
    pub iterations: i32,
    /// H(ClientKey): what the client's proof is checked against.
    pub stored_key: Vec<u8>,
    /// The key the server proves itself with.
    pub server_key: Vec<u8>,
}

impl StoredCredential {
    /// The credential for `password` (clients derive the same; tests and tools use it).
    pub fn derive(
        mechanism: Mechanism,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Option<StoredCredential> {
        let salted = mechanism.salted_password(password, salt, iterations)?;
        let (stored_key, server_key) = mechanism.keys(&salted)?;
        Some(StoredCredential {
            salt: salt.to_vec(),
            iterations: i32::try_from(iterations).ok()?,
            stored_key,
            server_key,
        })
    }

    /// Whether a client knowing `password` would log in with this credential: the keys
    /// derived with its salt and iterations are its keys. Lets a writer keep a credential
    /// whose password has not changed instead of re-deriving it with a new salt.
    pub fn verifies(&self, mechanism: Mechanism, password: &[u8]) -> bool {
        let Ok(iterations) = u32::try_from(self.iterations) else {
            return false;
        };
        StoredCredential::derive(mechanism, password, &self.salt, iterations)
            .is_some_and(|derived| derived == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_server_keys_follow_rfc_5802() {
        // RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
        let salted = BASE64
            .decode("xKSVEDI6tPlSysH6mUQZOeeOp01r6B3fcJbodRPcYV0=")
            .unwrap();
        let (stored, server) = Mechanism::Sha256.keys(&salted).unwrap();
        assert_eq!(
            BASE64.encode(stored),
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        );
        assert_eq!(
            BASE64.encode(server),
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        // ... and the salted password is Hi("pencil", salt, 4096).
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        assert_eq!(
            Mechanism::Sha256.salted_password(b"pencil", &salt, 4096),
            Some(salted)
        );
    }

    #[test]
    fn a_credential_verifies_its_password_only_and_round_trips_through_json() {
        let c = StoredCredential::derive(Mechanism::Sha512, b"secret", b"salt", 4096).unwrap();
        assert!(c.verifies(Mechanism::Sha512, b"secret"));
        assert!(!c.verifies(Mechanism::Sha512, b"Secret"));
        assert!(!c.verifies(Mechanism::Sha256, b"secret"));
        let users = Users::from([(
            "alice".to_owned(),
            BTreeMap::from([(Mechanism::Sha512, Credential::encode(&c))]),
        )]);
        let json = serde_json::to_string(&users).unwrap();
        assert!(
            json.starts_with(
                r#"{"alice":{"SCRAM-SHA-512":{"iterations":4096,"salt":"c2FsdA==","stored_key":"#
            ),
            "{json}"
        );
        let back: Users = serde_json::from_str(&json).unwrap();
        assert_eq!(back["alice"][&Mechanism::Sha512].decode(), Some(c));
    }
}
