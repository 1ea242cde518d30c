//! SCRAM credentials (`kafka-configs.sh --entity-type users --add-config SCRAM-SHA-256=...`,
//! `Admin.alterUserScramCredentials`), kept as Kafka keeps them: the salt, the iteration count
//! and the stored and server keys derived from the salted password (RFC 5802), never the
//! password. Checked as Kafka's controller checks them; saved in `scram-credentials.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::shared_state::{attach, Shared};

use crate::fsutil::JsonFileError;
pub use tributary_crds::scram::{Credential, Mechanism, StoredCredential, Users};
use tributary_crds::scram::{MAX_ITERATIONS, MIN_ITERATIONS};

/// File holding the credentials, in the data directory (readable by the broker only).
const FILE: &str = "scram-credentials.json";

/// Why a user's part of a request is refused; each maps to Kafka's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// UNSUPPORTED_SASL_MECHANISM.
    #[error("Unknown SCRAM mechanism")]
    UnknownMechanism,
    /// UNACCEPTABLE_CREDENTIAL.
    #[error("{0}")]
    Unacceptable(&'static str),
    /// DUPLICATE_RESOURCE.
    #[error("{0}")]
    Duplicate(&'static str),
    /// RESOURCE_NOT_FOUND.
    #[error("{0}")]
    NotFound(&'static str),
    /// The file could not be written; nothing changed (UNKNOWN_SERVER_ERROR).
    #[error("saving the credentials failed: {0}")]
    Save(String),
}

/// A deletion: (user, mechanism code).
pub type Deletion = (String, i8);

/// An upsertion: user, mechanism code, iterations, salt and salted password.
#[derive(Debug, Clone)]
pub struct Upsertion {
    /// The user.
    pub user: String,
    /// Mechanism code.
    pub mechanism: i8,
    /// Iterations the client salted with.
    pub iterations: i32,
    /// The salt.
    pub salt: Vec<u8>,
    /// Hi(password, salt, iterations).
    pub salted_password: Vec<u8>,
}

/// A user's (mechanism, iterations) pairs, or why they cannot be described.
pub type Described = Result<Vec<(Mechanism, i32)>, Refusal>;

/// Every user's SCRAM credentials.
#[derive(Default)]
pub struct ScramCredentials {
    /// Where they persist on their own (standalone); `None` keeps them in memory (tests).
    path: Option<PathBuf>,
    /// Where they persist when they are shared (cluster mode); then the file is not used.
    shared: Option<Arc<dyn Shared<Users>>>,
    users: RwLock<Users>,
    /// Serializes changes to the file.
    changing: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("users", &self.users.read().len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl ScramCredentials {
    /// Loads the credentials saved in `data_dir`, if any.
    pub fn open(data_dir: &Path) -> Result<ScramCredentials, JsonFileError> {
        let path = data_dir.join(FILE);
        let users = crate::fsutil::read_json_or_default(&path)?;
        Ok(ScramCredentials {
            path: Some(path),
            users: RwLock::new(users),
            ..ScramCredentials::default()
        })
    }

    /// The broker's credentials: those saved in `data_dir`, or with `shared` (cluster mode)
    /// those it holds from then on (the data directory's file is no longer read or written,
    /// and changes are written there).
    pub fn open_shared(
        data_dir: &Path,
        shared: Option<Arc<dyn Shared<Users>>>,
    ) -> Result<Arc<ScramCredentials>, JsonFileError> {
        let credentials = Arc::new(ScramCredentials {
            shared,
            ..ScramCredentials::open(data_dir)?
        });
        if let Some(shared) = &credentials.shared {
            attach(&credentials, shared, |me, users| *me.users.write() = users);
        }
        Ok(credentials)
    }

    /// (mechanism, iterations) of each named user, or of every user when `users` is empty.
    pub fn describe(&self, users: &[String]) -> Vec<(String, Described)> {
        let all = self.users.read();
        let infos = |creds: &BTreeMap<Mechanism, Credential>| {
            creds.iter().map(|(m, c)| (*m, c.iterations)).collect()
        };
        if users.is_empty() {
            return all
                .iter()
                .map(|(user, creds)| (user.clone(), Ok(infos(creds))))
                .collect();
        }
        let mut seen = std::collections::BTreeSet::new();
        let duplicated: std::collections::BTreeSet<&String> =
            users.iter().filter(|u| !seen.insert(*u)).collect();
        let mut answered = std::collections::BTreeSet::new();
        users
            .iter()
            .filter(|u| answered.insert(*u))
            .map(|user| {
                let result = if duplicated.contains(user) {
                    Err(Refusal::Duplicate(
                        "Cannot describe SCRAM credentials for the same user twice in a single request",
                    ))
                } else {
                    all.get(user).map(infos).ok_or(Refusal::NotFound(
                        "Attempt to describe a user credential that does not exist",
                    ))
                };
                (user.clone(), result)
            })
            .collect()
    }

    /// `user`'s credential for `mechanism`, if it has one.
    pub fn lookup(&self, user: &str, mechanism: Mechanism) -> Option<StoredCredential> {
        self.users.read().get(user)?.get(&mechanism)?.decode()
    }

    /// Applies the deletions and upsertions, all of a user's or none of them, and returns
    /// each user's outcome in order of first mention.
    pub async fn alter(&self, deletions: &[Deletion], upsertions: &[Upsertion]) -> Outcomes {
        let Some(shared) = &self.shared else {
            return self.alter_file(deletions, upsertions);
        };
        let outcomes = parking_lot::Mutex::new(Vec::new());
        let written = shared
            .update(&|users| {
                let (next, decided) = plan_alter(users, deletions, upsertions);
                *users = next;
                *outcomes.lock() = decided;
            })
            .await;
        let mut outcomes = outcomes.into_inner();
        match written {
            Ok(users) => *self.users.write() = users,
            Err(error) => failed(&mut outcomes, &error),
        }
        outcomes
    }

    fn alter_file(&self, deletions: &[Deletion], upsertions: &[Upsertion]) -> Outcomes {
        let _one_at_a_time = self.changing.lock();
        let current = self.users.read().clone();
        let (next, mut outcomes) = plan_alter(&current, deletions, upsertions);
        if next != current {
            if let Err(error) = self.save(&next) {
                failed(&mut outcomes, &error.to_string());
                return outcomes;
            }
            *self.users.write() = next;
        }
        outcomes
    }

    fn save(&self, users: &Users) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let json = serde_json::to_vec_pretty(users)?;
        crate::fsutil::write_atomic_private(path, &json)
    }
}

/// Each user's outcome of an alteration, in order of first mention.
pub type Outcomes = Vec<(String, Result<(), Refusal>)>;

/// Marks every successful outcome failed: nothing was saved.
fn failed(outcomes: &mut Outcomes, error: &str) {
    for outcome in outcomes.iter_mut().filter(|o| o.1.is_ok()) {
        outcome.1 = Err(Refusal::Save(error.to_owned()));
    }
}

/// The credentials after the deletions and upsertions (all of a user's or none of them), and
/// each user's outcome.
fn plan_alter(
    users: &Users,
    deletions: &[Deletion],
    upsertions: &[Upsertion],
) -> (Users, Outcomes) {
    let mut next = users.clone();
    let mut outcomes: Outcomes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let ops = deletions
        .iter()
        .map(|(user, m)| (user, *m, None))
        .chain(upsertions.iter().map(|u| (&u.user, u.mechanism, Some(u))));
    let mut changes = Vec::new();
    for (user, code, upsert) in ops {
        let index = match outcomes.iter().position(|(u, _)| u == user) {
            Some(i) => i,
            None => {
                outcomes.push((user.clone(), Ok(())));
                outcomes.len() - 1
            }
        };
        match check(users, user, code, upsert, &mut seen) {
            Ok(change) => changes.push((index, user.clone(), change)),
            Err(refusal) => {
                if outcomes[index].1.is_ok() {
                    outcomes[index].1 = Err(refusal);
                }
            }
        }
    }
    for (index, user, (mechanism, credential)) in changes {
        if outcomes[index].1.is_err() {
            continue;
        }
        let creds = next.entry(user.clone()).or_default();
        match credential {
            Some(credential) => creds.insert(mechanism, credential),
            None => creds.remove(&mechanism),
        };
        if creds.is_empty() {
            next.remove(&user);
        }
    }
    (next, outcomes)
}

/// Checks one operation against the current credentials; the change it makes (`None`
/// credential: a deletion).
fn check(
    users: &Users,
    user: &str,
    code: i8,
    upsert: Option<&Upsertion>,
    seen: &mut std::collections::BTreeSet<(String, i8)>,
) -> Result<(Mechanism, Option<Credential>), Refusal> {
    if user.is_empty() {
        return Err(Refusal::Unacceptable("Username must not be empty"));
    }
    let mechanism = Mechanism::from_code(code).ok_or(Refusal::UnknownMechanism)?;
    if !seen.insert((user.to_string(), code)) {
        return Err(Refusal::Duplicate(
            "A user credential cannot be altered twice in the same request",
        ));
    }
    let Some(upsert) = upsert else {
        let exists = users.get(user).is_some_and(|c| c.contains_key(&mechanism));
        if !exists {
            return Err(Refusal::NotFound(
                "Attempt to delete a user credential that does not exist",
            ));
        }
        return Ok((mechanism, None));
    };
    if upsert.iterations < MIN_ITERATIONS {
        return Err(Refusal::Unacceptable("Too few iterations"));
    }
    if upsert.iterations > MAX_ITERATIONS {
        return Err(Refusal::Unacceptable("Too many iterations"));
    }
    if upsert.salt.is_empty() || upsert.salted_password.is_empty() {
        return Err(Refusal::Unacceptable(
            "Salt and salted password must not be empty",
        ));
    }
    let (stored_key, server_key) = mechanism
        .keys(&upsert.salted_password)
        .ok_or(Refusal::Unacceptable("Unusable salted password"))?;
    Ok((
        mechanism,
        Some(Credential::encode(&StoredCredential {
            salt: upsert.salt.clone(),
            iterations: upsert.iterations,
            stored_key,
            server_key,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;

    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Upsertion {
        Upsertion {
            user: user.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: vec![7; 32],
        }
    }

    #[tokio::test]
    async fn credentials_are_checked_per_user_and_persist_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let creds = ScramCredentials::open(dir.path()).unwrap();
        let outcomes = creds
            .alter(
                &[("ghost".into(), 1)],
                &[
                    upsert("alice", 1, 8192),
                    upsert("alice", 2, 4096),
                    upsert("bob", 1, 100),
                    upsert("carol", 3, 8192),
                    upsert("", 1, 8192),
                    upsert("dave", 1, 8192),
                    upsert("dave", 1, 8192),
                ],
            )
            .await;
        let codes: Vec<_> = outcomes
            .iter()
            .map(|(u, r)| (u.as_str(), r.clone()))
            .collect();
        assert_eq!(
            codes,
            [
                (
                    "ghost",
                    Err(Refusal::NotFound(
                        "Attempt to delete a user credential that does not exist"
                    ))
                ),
                ("alice", Ok(())),
                ("bob", Err(Refusal::Unacceptable("Too few iterations"))),
                ("carol", Err(Refusal::UnknownMechanism)),
                ("", Err(Refusal::Unacceptable("Username must not be empty"))),
                (
                    "dave",
                    Err(Refusal::Duplicate(
                        "A user credential cannot be altered twice in the same request"
                    ))
                ),
            ]
        );
        let reopened = ScramCredentials::open(dir.path()).unwrap();
        let all = reopened.describe(&[]);
        assert_eq!(
            all,
            [(
                "alice".to_string(),
                Ok(vec![(Mechanism::Sha256, 8192), (Mechanism::Sha512, 4096)])
            )]
        );
        let saved = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "readable by the broker only");
        }
        assert!(
            !saved.contains(&BASE64.encode([7u8; 32])),
            "no salted password saved"
        );

        let named = reopened.describe(&["alice".into(), "zed".into(), "zed".into()]);
        assert!(named[0].1.is_ok());
        assert!(matches!(named[1].1, Err(Refusal::Duplicate(_))));
        assert_eq!(
            reopened
                .alter(&[("alice".into(), 1), ("alice".into(), 2)], &[])
                .await[0]
                .1,
            Ok(())
        );
        assert!(reopened.describe(&[]).is_empty());
    }
}
