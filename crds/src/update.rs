//! Conditional updates of Kubernetes objects, the one way the broker and the operator change
//! an object that others change too: read it, decide what it should become with a pure
//! function of what was read ([`Decision`]), write it with a replace carrying the
//! resourceVersion read, and on a 409 Conflict (someone wrote in between) read again and
//! decide again, never force. Attempts are bounded and spaced by jittered exponential
//! backoff ([`RetryPolicy`]), so writers racing for one object spread out instead of
//! retrying in lockstep; running out is a typed error ([`UpdateError::Exhausted`]) naming the
//! object, which callers answer as "try again later".
//!
//! ```no_run
//! # async fn example(api: kube::Api<k8s_openapi::api::core::v1::ConfigMap>) {
//! use tributary_crds::update::{ConditionalUpdate, Decision};
//! let updated = ConditionalUpdate::new(&api, "settings")
//!     .run(|current| match current {
//!         None => Decision::Abort("no such ConfigMap"),
//!         Some(cm) if cm.data.is_some() => Decision::Keep(()),
//!         Some(cm) => {
//!             let mut next = cm.clone();
//!             next.data = Some([("k".to_owned(), "v".to_owned())].into());
//!             Decision::Replace(next, ())
//!         }
//!     })
//!     .await;
//! # let _ = updated;
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use kube::api::PostParams;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

/// What a decision function makes of the object it was shown (`None`: it does not exist).
#[derive(Debug)]
pub enum Decision<K, T, E = Infallible> {
    /// Replace the object with this one (its resourceVersion is set to the one read), or
    /// create it when none exists; `T` is the caller's answer once written.
    Replace(K, T),
    /// Replace the object's status subresource with this one's status (resourceVersion as
    /// for [`Decision::Replace`]); an object that does not exist is
    /// [`UpdateError::Gone`].
    ReplaceStatus(K, T),
    /// Nothing to write; `T` is the caller's answer.
    Keep(T),
    /// Stop without writing, with the caller's reason.
    Abort(E),
}

/// How many times a conditional update tries, and how long it waits between tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Writes tried before giving up (one at least): each lost race costs one.
    pub attempts: u32,
    /// Wait before the first retry, doubled at each retry after it.
    pub first_backoff: Duration,
    /// Longest wait between two tries.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// What every caller uses unless it has a reason not to: enough tries for a handful of
    /// writers racing for one object (backoff spreads them out), and giving up within about
    /// two seconds so a caller with a deadline still answers within it.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts: 10,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(500),
    };

    /// One try: for a caller whose decision must not be remade from a newer copy (it was
    /// planned on a wider view than one object) and that decides again at its next round.
    pub const fn once() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::DEFAULT
        }
    }

    /// The same backoff with `attempts` tries.
    pub const fn with_attempts(self, attempts: u32) -> RetryPolicy {
        RetryPolicy { attempts, ..self }
    }

    /// The wait before retry number `retry` (1 for the first) with `jitter` in `[0, 1]`: the
    /// exponential step (capped), of which the jitter takes away up to half ("equal
    /// jitter": never less than half the step, never more than the step).
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let step = self
            .first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        step.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::DEFAULT
    }
}

/// A completed conditional update.
#[derive(Debug)]
pub struct Updated<K, T> {
    /// The decision function's answer.
    pub value: T,
    /// The object now: the API server's answer to the write, or (nothing written) the copy
    /// the decision was made on; `None` when it does not exist.
    pub object: Option<K>,
    /// Whether anything was written.
    pub written: bool,
    /// Races lost on the way (409 Conflicts answered to our writes).
    pub conflicts: u32,
    /// When the read the final decision was made on was sent (for a copy passed with
    /// [`ConditionalUpdate::starting_from`], when the update began): a Lease renewal counts
    /// its deadline from there.
    pub read_at: Instant,
}

/// Why a conditional update stopped short. Nothing was written, except for
/// [`UpdateError::Write`] errors whose outcome the API server did not tell.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E = Infallible> {
    /// The decision function refused.
    #[error("{0}")]
    Aborted(E),
    /// The object could not be read.
    #[error("cannot read {kind} {name}: {source}")]
    Read {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server refused or failed the write (other than a conflict).
    #[error("cannot write {kind} {name}: {source}")]
    Write {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The object was deleted between the read and the write (or a status write was asked
    /// of an object that does not exist).
    #[error("{kind} {name} does not exist (deleted while being changed?)")]
    Gone {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
    },
    /// Every try lost a race with another writer.
    #[error("{kind} {name} kept changing: {attempts} conditional writes lost a race with other writers; try again")]
    Exhausted {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// Tries made.
        attempts: u32,
    },
    /// The copy decided on has no resourceVersion, so its write could not be conditional.
    #[error("{kind} {name} has no resourceVersion; refusing to write it unconditionally")]
    Unversioned {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
    },
}

impl<E> UpdateError<E> {
    /// Short label for metrics counting failures by kind.
    pub fn metric_label(&self) -> &'static str {
        match self {
            UpdateError::Aborted(_) => "aborted",
            UpdateError::Read { .. } => "read",
            UpdateError::Write { .. } => "write",
            UpdateError::Gone { .. } => "gone",
            UpdateError::Exhausted { .. } => "exhausted",
            UpdateError::Unversioned { .. } => "unversioned",
        }
    }

    /// The client's error behind a failed read or write, if that is what this is.
    pub fn api_error(&self) -> Option<&kube::Error> {
        match self {
            UpdateError::Read { source, .. } | UpdateError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One conditional update of object `name` through `api`: [`ConditionalUpdate::run`] reads,
/// decides, writes and retries.
pub struct ConditionalUpdate<'a, K> {
    api: &'a Api<K>,
    name: &'a str,
    policy: RetryPolicy,
    first: Option<K>,
}

impl<'a, K> ConditionalUpdate<'a, K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    /// An update of `name` with [`RetryPolicy::DEFAULT`].
    pub fn new(api: &'a Api<K>, name: &'a str) -> Self {
        ConditionalUpdate {
            api,
            name,
            policy: RetryPolicy::DEFAULT,
            first: None,
        }
    }

    /// Tries and backoff other than the default.
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Decides the first time on `object` (a watched or listed copy) instead of reading it;
    /// a lost race reads as usual.
    pub fn starting_from(mut self, object: K) -> Self {
        self.first = Some(object);
        self
    }

    /// Reads, decides with `decide`, writes; again after each lost race, within the policy.
    pub async fn run<T, E>(
        mut self,
        mut decide: impl FnMut(Option<&K>) -> Decision<K, T, E>,
    ) -> Result<Updated<K, T>, UpdateError<E>> {
        let attempts = self.policy.attempts.max(1);
        let mut first = self.first.take();
        let mut conflicts = 0;
        loop {
            let read_at = Instant::now();
            let current = match first.take() {
                Some(object) => Some(object),
                None => self.read().await?,
            };
            let (next, status, value) = match decide(current.as_ref()) {
                Decision::Abort(reason) => return Err(UpdateError::Aborted(reason)),
                Decision::Keep(value) => {
                    return Ok(Updated {
                        value,
                        object: current,
                        written: false,
                        conflicts,
                        read_at,
                    })
                }
                Decision::Replace(next, value) => (next, false, value),
                Decision::ReplaceStatus(next, value) => (next, true, value),
            };
            match self.write(current.as_ref(), next, status).await {
                Ok(stored) => {
                    return Ok(Updated {
                        value,
                        object: Some(stored),
                        written: true,
                        conflicts,
                        read_at,
                    })
                }
                Err(Written::Conflict) => {
                    conflicts += 1;
                    if conflicts >= attempts {
                        return Err(UpdateError::Exhausted {
                            kind: kind::<K>(),
                            name: self.name.to_owned(),
                            attempts: conflicts,
                        });
                    }
                    tokio::time::sleep(self.policy.delay(conflicts, jitter())).await;
                }
                Err(Written::Failed(error)) => return Err(error),
            }
        }
    }

    /// The object as stored now, `None` if it does not exist.
    async fn read<E>(&self) -> Result<Option<K>, UpdateError<E>> {
        match self.api.get(self.name).await {
            Ok(object) => Ok(Some(object)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(source) => Err(UpdateError::Read {
                kind: kind::<K>(),
                name: self.name.to_owned(),
                source: Box::new(source),
            }),
        }
    }

    /// Writes `next` conditionally on `current`'s resourceVersion (creates it when there is
    /// no `current`).
    async fn write<E>(
        &self,
        current: Option<&K>,
        mut next: K,
        status: bool,
    ) -> Result<K, Written<E>> {
        let params = PostParams::default();
        let written = match current {
            None if status => return Err(Written::Failed(self.gone())),
            None => self.api.create(&params, &next).await,
            Some(current) => {
                let Some(version) = current.resource_version() else {
                    return Err(Written::Failed(UpdateError::Unversioned {
                        kind: kind::<K>(),
                        name: self.name.to_owned(),
                    }));
                };
                next.meta_mut().resource_version = Some(version);
                if status {
                    self.api.replace_status(self.name, &params, &next).await
                } else {
                    self.api.replace(self.name, &params, &next).await
                }
            }
        };
        written.map_err(|source| match &source {
            // A create that found the object already there lost a race too.
            kube::Error::Api(s) if s.code == 409 => Written::Conflict,
            kube::Error::Api(s) if s.code == 404 && current.is_some() => {
                Written::Failed(self.gone())
            }
            _ => Written::Failed(UpdateError::Write {
                kind: kind::<K>(),
                name: self.name.to_owned(),
                source: Box::new(source),
            }),
        })
    }

    fn gone<E>(&self) -> UpdateError<E> {
        UpdateError::Gone {
            kind: kind::<K>(),
            name: self.name.to_owned(),
        }
    }
}

/// How one write went, short of success.
enum Written<E> {
    /// Someone wrote in between: read and decide again.
    Conflict,
    /// Anything else: stop.
    Failed(UpdateError<E>),
}

fn kind<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).into_owned()
}

/// A number in `[0, 1)` that differs between calls and processes, for backoff jitter only
/// (std's per-process random hash keys, so no random-number crate is needed).
fn jitter() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    // 53 bits: exactly representable.
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::PostParams;
    use tributary_e2e::FakeApiServer;

    use super::*;

    const NS: &str = "ns";
    /// Fast retries, so the tests do not wait for backoff.
    const QUICK: RetryPolicy = RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };

    fn config_map(value: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("c".to_owned());
        cm.data = Some([("k".to_owned(), value.to_owned())].into());
        cm
    }

    fn value(cm: &ConfigMap) -> Option<&str> {
        cm.data.as_ref()?.get("k").map(String::as_str)
    }

    /// A server holding ConfigMap `c` with `k: 1`, and an API for it.
    async fn server() -> (FakeApiServer, Api<ConfigMap>) {
        let server = FakeApiServer::new();
        server.create_namespace(NS);
        let api: Api<ConfigMap> = Api::namespaced(server.client(NS), NS);
        api.create(&PostParams::default(), &config_map("1"))
            .await
            .unwrap_or_else(|e| panic!("create: {e}"));
        (server, api)
    }

    /// Sets `k` to `to` unless it holds it already.
    fn set(
        to: &'static str,
    ) -> impl FnMut(Option<&ConfigMap>) -> Decision<ConfigMap, &'static str> {
        move |current| match current {
            Some(cm) if value(cm) == Some(to) => Decision::Keep("kept"),
            Some(cm) => {
                let mut next = cm.clone();
                next.data = Some([("k".to_owned(), to.to_owned())].into());
                Decision::Replace(next, "written")
            }
            None => Decision::Replace(config_map(to), "created"),
        }
    }

    async fn stored(api: &Api<ConfigMap>) -> ConfigMap {
        api.get("c").await.unwrap_or_else(|e| panic!("get: {e}"))
    }

    #[tokio::test]
    async fn a_lost_race_is_read_again_and_decided_again() {
        let (server, api) = server().await;
        server.fail_next_writes("/configmaps", 1);
        let decided = AtomicU32::new(0);
        let mut decide = set("2");
        let updated = ConditionalUpdate::new(&api, "c")
            .policy(QUICK)
            .run(|current| {
                decided.fetch_add(1, Ordering::Relaxed);
                decide(current)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(updated.value, "written");
        assert!(updated.written);
        assert_eq!(updated.conflicts, 1);
        assert_eq!(
            decided.load(Ordering::Relaxed),
            2,
            "decided again after the conflict"
        );
        assert_eq!(value(&stored(&api).await), Some("2"));
    }

    #[tokio::test]
    async fn a_stale_copy_is_never_forced_over_a_newer_one() {
        let (_server, api) = server().await;
        let stale = stored(&api).await;
        let mut newer = stale.clone();
        newer.data = Some([("k".to_owned(), "3".to_owned())].into());
        api.replace("c", &PostParams::default(), &newer)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Decided on the stale copy first: the write loses, the newer copy is decided on.
        let mut seen = Vec::new();
        let updated = ConditionalUpdate::new(&api, "c")
            .policy(QUICK)
            .starting_from(stale)
            .run(|current| {
                seen.push(current.and_then(value).map(str::to_owned));
                set("2")(current)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen, [Some("1".to_owned()), Some("3".to_owned())]);
        assert_eq!(updated.conflicts, 1);
        assert_eq!(value(&stored(&api).await), Some("2"));
    }

    #[tokio::test]
    async fn running_out_of_tries_names_the_object_and_the_tries() {
        let (server, api) = server().await;
        server.fail_next_writes("/configmaps", 100);
        let error = ConditionalUpdate::new(&api, "c")
            .policy(QUICK)
            .run(set("2"))
            .await
            .err();
        match &error {
            Some(UpdateError::Exhausted {
                kind,
                name,
                attempts,
            }) => {
                assert_eq!(
                    (kind.as_str(), name.as_str(), *attempts),
                    ("ConfigMap", "c", 3)
                );
            }
            other => panic!("expected exhaustion, got {other:?}"),
        }
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("ConfigMap c") && message.contains('3'),
            "{message}"
        );
        assert_eq!(value(&stored(&api).await), Some("1"), "nothing was written");
    }

    #[tokio::test]
    async fn keeping_writes_nothing() {
        let (_server, api) = server().await;
        let before = stored(&api).await.resource_version();
        let updated = ConditionalUpdate::new(&api, "c")
            .run(set("1"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(updated.value, "kept");
        assert!(!updated.written);
        assert_eq!(
            updated.object.and_then(|o| o.resource_version()),
            before.clone()
        );
        assert_eq!(stored(&api).await.resource_version(), before);
    }

    #[tokio::test]
    async fn an_absent_object_is_decided_on_as_none() {
        let (_server, api) = server().await;
        // Created when the decision says so.
        let created = ConditionalUpdate::new(&api, "d")
            .run(|current: Option<&ConfigMap>| {
                assert!(current.is_none());
                let mut cm = config_map("new");
                cm.metadata.name = Some("d".to_owned());
                Decision::<_, _>::Replace(cm, ())
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(created.written);
        // Refused when the decision says so.
        let refused = ConditionalUpdate::new(&api, "e")
            .run(|current: Option<&ConfigMap>| match current {
                None => Decision::<ConfigMap, (), _>::Abort("no such object"),
                Some(_) => Decision::Keep(()),
            })
            .await;
        assert!(matches!(
            refused,
            Err(UpdateError::Aborted("no such object"))
        ));
        // A status write needs an object.
        let gone = ConditionalUpdate::new(&api, "e")
            .run(|_| Decision::<ConfigMap, (), Infallible>::ReplaceStatus(config_map("x"), ()))
            .await;
        assert!(matches!(gone, Err(UpdateError::Gone { .. })), "{gone:?}");
    }

    #[tokio::test]
    async fn an_object_deleted_before_the_write_is_gone() {
        let (_server, api) = server().await;
        let copy = stored(&api).await;
        api.delete("c", &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let result = ConditionalUpdate::new(&api, "c")
            .starting_from(copy)
            .run(set("2"))
            .await;
        assert!(
            matches!(result, Err(UpdateError::Gone { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn other_failures_stop_at_once_with_the_clients_error() {
        let (server, api) = server().await;
        server.fail_next_writes_with("/configmaps", 1, 403);
        let result = ConditionalUpdate::new(&api, "c").run(set("2")).await;
        let code = match result.as_ref().err().and_then(UpdateError::api_error) {
            Some(kube::Error::Api(status)) => status.code,
            _ => 0,
        };
        assert_eq!(code, 403, "{result:?}");
        assert_eq!(value(&stored(&api).await), Some("1"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_takes_at_most_half() {
        let policy = RetryPolicy::DEFAULT;
        let ms = |retry, jitter| policy.delay(retry, jitter).as_millis();
        assert_eq!(
            (1..=8).map(|r| ms(r, 0.0)).collect::<Vec<_>>(),
            [10, 20, 40, 80, 160, 320, 500, 500]
        );
        assert_eq!(ms(1, 1.0), 5);
        assert_eq!(ms(3, 0.5), 30);
        assert_eq!(ms(u32::MAX, 0.0), 500, "no overflow however many retries");
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
