//! Who may call the REST API: anyone (`none`), users proving a password with HTTP basic
//! authentication against the cluster's SCRAM credentials (`basic`), or clients presenting a
//! certificate signed by the client CA (`tls`, see [`crate::tls`]).
//!
//! Basic authentication checks the password the way a broker checks a SCRAM login, without
//! the password ever being stored: the stored key is derived from the given password with the
//! credential's salt and iterations and compared in constant time with the stored one. The
//! credentials are the cluster's one JSON document ([`tributary_crds::scram::Users`], the
//! Secret `<cluster>-scram-credentials` that KafkaUsers and AlterUserScramCredentials write),
//! mounted as a file and re-read when it changes, so new and rotated users work without a
//! restart.
//!
//! A verified client certificate ([`crate::tls`]) authenticates in basic mode too: that is how
//! the operator (KafkaSchemas) and the other instances (forwarded writes) reach a registry
//! whose users log in with passwords.
//!
//! `/` (the kubelet's probes) and `/metrics` (Prometheus; counts only, no schema) stay open
//! in every mode.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use parking_lot::Mutex;
use tributary_crds::scram::{Mechanism, StoredCredential, Users};

use crate::error::ApiError;
use crate::http::router::Route;
use crate::reload::FileBacked;

/// Confluent's code for a request without valid credentials.
pub const UNAUTHORIZED: u32 = 40101;

/// Successful password checks remembered, so a client does not pay the key derivation (4096+
/// HMAC rounds) on every request; cleared when it grows past this.
const REMEMBERED: usize = 4096;

/// Why the credentials document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read.
    #[error("cannot read the SCRAM credentials {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the credentials document.
    #[error("{path} is not a SCRAM credentials document: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

/// Loads the credentials document; an empty or missing file is an empty document (no user
/// yet: the Secret is mounted optional and appears with the first KafkaUser).
pub fn load_users(path: &std::path::Path) -> Result<Users, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(Users::new());
    }
    serde_json::from_str(&text).map_err(|source| AuthError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// How clients authenticate.
pub enum Authentication {
    /// Anonymous.
    None,
    /// HTTP basic against the SCRAM credentials in a file.
    Basic(Basic),
    /// A verified client certificate.
    Tls,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authentication::None => "none",
            Authentication::Basic(_) => "basic",
            Authentication::Tls => "tls",
        })
    }
}

/// HTTP basic authentication's state: the document and the remembered successful checks.
pub struct Basic {
    users: FileBacked<Users, AuthError>,
    remembered: Mutex<HashMap<Vec<u8>, ()>>,
}

impl Basic {
    /// Reads the credentials document at `path` now (unreadable: start-up fails) and again
    /// whenever it changes.
    pub fn new(path: PathBuf) -> Result<Basic, AuthError> {
        let read = path.clone();
        let users = FileBacked::new(
            "the SCRAM credentials",
            vec![path],
            Box::new(move || load_users(&read)),
        )?;
        Ok(Basic {
            users,
            remembered: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `password` is `user`'s (for any of its mechanisms) in the document as it is now.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let users = self.users.get();
        let Some(credentials) = users.get(user) else {
            return false;
        };
        // Remembered by a digest of the user, the password and the credentials it was checked
        // against: a rotated credential is checked afresh.
        let mut key = Vec::new();
        for part in [user.as_bytes(), password.as_bytes()] {
            key.extend_from_slice(&(part.len() as u64).to_be_bytes());
            key.extend_from_slice(part);
        }
        for credential in credentials.values() {
            key.extend_from_slice(credential.stored_key.as_bytes());
        }
        let key = Mechanism::Sha256.hash(&key);
        if self.remembered.lock().contains_key(&key) {
            return true;
        }
        let ok = password_matches(&users, user, password);
        if ok {
            let mut remembered = self.remembered.lock();
            if remembered.len() >= REMEMBERED {
                remembered.clear();
            }
            remembered.insert(key, ());
        }
        ok
    }
}

/// Whether `password` derives the stored key of one of `user`'s credentials (constant-time
/// comparison of the keys).
pub fn password_matches(users: &Users, user: &str, password: &str) -> bool {
    let Some(credentials) = users.get(user) else {
        return false;
    };
    credentials.iter().any(|(mechanism, credential)| {
        let Some(stored) = credential.decode() else {
            return false;
        };
        let Ok(iterations) = u32::try_from(stored.iterations) else {
            return false;
        };
        StoredCredential::derive(*mechanism, password.as_bytes(), &stored.salt, iterations)
            .is_some_and(|derived| constant_time_eq(&derived.stored_key, &stored.stored_key))
    })
}

/// Equality that takes as long whichever byte differs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user and password of an `Authorization: Basic` header; `None` when it is not one.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Paths every mode leaves open: the probes' `/` and Prometheus' `/metrics`.
pub fn is_open(route: &Route) -> bool {
    matches!(route, Route::Root | Route::Metrics)
}

/// A 401 in Confluent's words.
pub fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError {
        status: 401,
        code: UNAUTHORIZED,
        message: message.into(),
    }
}

impl Authentication {
    /// Admits a request to `route` with its `Authorization` header and the principal of its
    /// verified client certificate; the principal it acts as (`None`: anonymous), or a 401.
    pub fn admit(
        &self,
        route: &Route,
        authorization: Option<&str>,
        certificate: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        if is_open(route) {
            return Ok(None);
        }
        match self {
            Authentication::None => Ok(None),
            Authentication::Tls => match certificate {
                Some(principal) => Ok(Some(principal.to_owned())),
                None => Err(unauthorized(
                    "Unauthorized: present a client certificate signed by the registry's client CA",
                )),
            },
            Authentication::Basic(_) if certificate.is_some() => Ok(certificate.map(str::to_owned)),
            Authentication::Basic(basic) => {
                let Some((user, password)) = authorization.and_then(basic_credentials) else {
                    return Err(unauthorized(
                        "Unauthorized: send HTTP basic credentials of a KafkaUser with a SCRAM credential",
                    ));
                };
                if basic.verify(&user, &password) {
                    Ok(Some(format!("User:{user}")))
                } else {
                    Err(unauthorized("Unauthorized: wrong user name or password"))
                }
            }
        }
    }

    /// Whether a 401 asks for basic credentials (`WWW-Authenticate: Basic`).
    pub fn challenges_basic(&self) -> bool {
        matches!(self, Authentication::Basic(_))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tributary_crds::scram::Credential;

    use super::*;

    fn document(user: &str, password: &str) -> String {
        let c = StoredCredential::derive(Mechanism::Sha512, password.as_bytes(), b"salty", 4096)
            .unwrap_or_else(|| panic!("derive"));
        let users = Users::from([(
            user.to_owned(),
            BTreeMap::from([(Mechanism::Sha512, Credential::encode(&c))]),
        )]);
        serde_json::to_string(&users).unwrap_or_else(|e| panic!("{e}"))
    }

    fn header(user: &str, password: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
    }

    #[test]
    fn basic_headers_decode_and_others_do_not() {
        assert_eq!(
            basic_credentials(&header("alice", "a:b")),
            Some(("alice".to_owned(), "a:b".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", BASE64.encode("nocolon"))),
            None
        );
    }

    #[test]
    fn basic_admits_the_right_password_and_answers_40101_otherwise() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, document("alice", "secret")).unwrap_or_else(|e| panic!("{e}"));
        let auth = Authentication::Basic(Basic::new(path).unwrap_or_else(|e| panic!("{e}")));
        let subjects = Route::Subjects;
        let ok = header("alice", "secret");
        assert_eq!(
            auth.admit(&subjects, Some(&ok), None),
            Ok(Some("User:alice".to_owned()))
        );
        // Remembered, and still right.
        assert_eq!(
            auth.admit(&subjects, Some(&ok), None),
            Ok(Some("User:alice".to_owned()))
        );
        for wrong in [header("alice", "Secret"), header("bob", "secret")] {
            let e = auth.admit(&subjects, Some(&wrong), None);
            assert!(
                matches!(
                    e,
                    Err(ApiError {
                        status: 401,
                        code: 40101,
                        ..
                    })
                ),
                "{e:?}"
            );
        }
        assert!(auth.admit(&subjects, None, None).is_err());
        assert_eq!(
            auth.admit(&subjects, None, Some("User:operator")),
            Ok(Some("User:operator".to_owned()))
        );
        assert_eq!(auth.admit(&Route::Metrics, None, None), Ok(None));
        assert_eq!(auth.admit(&Route::Root, None, None), Ok(None));
    }

    #[test]
    fn tls_admits_a_verified_certificate_only() {
        let auth = Authentication::Tls;
        assert_eq!(
            auth.admit(&Route::Subjects, None, Some("User:alice")),
            Ok(Some("User:alice".to_owned()))
        );
        assert!(auth.admit(&Route::Subjects, None, None).is_err());
        assert_eq!(
            Authentication::None.admit(&Route::Subjects, None, None),
            Ok(None)
        );
    }
}
