//! Share sessions (KIP-932's ShareSessionCache): per broker, one session per group member,
//! the partitions it fetches and the epoch its next request must carry. Pure decisions; the
//! broker calls them under its own lock and releases the records of the sessions these
//! close.
//!
//! Epoch 0 opens a session (replacing the member's old one) and may not carry
//! acknowledgements; epoch N must equal the session's, which then moves on (past
//! `i32::MAX` to 1); epoch -1 applies the acknowledgements and closes it. ShareAcknowledge may
//! close a session but never open one. A closed connection ends the sessions opened on it.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

/// Epoch of a request opening a session.
pub const OPEN_EPOCH: i32 = 0;
/// Epoch of a request closing its session.
pub const CLOSE_EPOCH: i32 = -1;

/// A topic partition as share requests name it (by topic id).
pub type SharedPartition = (Uuid, i32);

/// Who a session belongs to: a group member.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// Share group id.
    pub group: String,
    /// Member id (made by the client).
    pub member: String,
}

/// Why a share request's session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No session for a request continuing or closing one.
    #[error("no share session for this member")]
    NotFound,
    /// The epoch is not the session's (or ShareAcknowledge tried to open a session).
    #[error("the share session epoch is not the expected one")]
    InvalidEpoch,
    /// The broker holds its maximum of sessions (answered after the request's MaxWaitMs, as
    /// Kafka does, so clients do not spin).
    #[error("the broker holds its maximum of share sessions")]
    LimitReached,
    /// Acknowledgements on a request opening a session, or an epoch below -1.
    #[error("invalid share session request")]
    InvalidRequest,
}

impl SessionError {
    /// The Kafka error the request answers.
    pub fn code(self) -> ResponseError {
        match self {
            SessionError::NotFound => ResponseError::ShareSessionNotFound,
            SessionError::InvalidEpoch => ResponseError::InvalidShareSessionEpoch,
            SessionError::LimitReached => ResponseError::ShareSessionLimitReached,
            SessionError::InvalidRequest => ResponseError::InvalidRequest,
        }
    }
}

/// What a ShareFetch asks of its session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSession {
    /// ShareSessionEpoch.
    pub epoch: i32,
    /// Partitions added to the session (Topics).
    pub added: Vec<SharedPartition>,
    /// Partitions removed from it (ForgottenTopicsData).
    pub forgotten: Vec<SharedPartition>,
    /// Whether the request carries acknowledgements.
    pub acknowledges: bool,
}

/// The session's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The partitions to fetch from (none once closed).
    pub partitions: Vec<SharedPartition>,
    /// The session was closed: the caller releases what the member holds.
    pub closed: bool,
    /// An older session of the member was replaced by this one.
    pub replaced: bool,
}

/// One member's session.
#[derive(Debug, Clone)]
struct Session {
    /// The epoch the next request must carry.
    epoch: i32,
    partitions: BTreeSet<SharedPartition>,
    /// The connection that opened it.
    connection: u64,
}

/// The broker's share sessions.
#[derive(Debug)]
pub struct SessionCache {
    sessions: HashMap<SessionKey, Session>,
    /// `group.share.max.share.sessions`.
    max_sessions: usize,
}

impl SessionCache {
    /// A cache holding at most `max_sessions`.
    pub fn new(max_sessions: usize) -> SessionCache {
        SessionCache {
            sessions: HashMap::new(),
            max_sessions,
        }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The session decision for a ShareFetch of `key` on `connection`.
    pub fn fetch(
        &mut self,
        key: &SessionKey,
        connection: u64,
        request: &FetchSession,
    ) -> Result<Granted, SessionError> {
        match request.epoch {
            OPEN_EPOCH => {
                if request.acknowledges {
                    return Err(SessionError::InvalidRequest);
                }
                let replaced = self.sessions.contains_key(key);
                if !replaced && self.sessions.len() >= self.max_sessions {
                    return Err(SessionError::LimitReached);
                }
                let mut partitions: BTreeSet<SharedPartition> =
                    request.added.iter().copied().collect();
                for p in &request.forgotten {
                    partitions.remove(p);
                }
                let granted = Granted {
                    partitions: partitions.iter().copied().collect(),
                    closed: false,
                    replaced,
                };
                let session = Session {
                    epoch: 1,
                    partitions,
                    connection,
                };
                self.sessions.insert(key.clone(), session);
                Ok(granted)
            }
            CLOSE_EPOCH => self.close(key),
            epoch if epoch < CLOSE_EPOCH => Err(SessionError::InvalidRequest),
            epoch => {
                let session = self.advance(key, epoch)?;
                session.partitions.extend(request.added.iter().copied());
                for p in &request.forgotten {
                    session.partitions.remove(p);
                }
                Ok(Granted {
                    partitions: session.partitions.iter().copied().collect(),
                    closed: false,
                    replaced: false,
                })
            }
        }
    }

    /// The session decision for a ShareAcknowledge of `key` at `epoch`.
    pub fn acknowledge(&mut self, key: &SessionKey, epoch: i32) -> Result<Granted, SessionError> {
        match epoch {
            OPEN_EPOCH => Err(SessionError::InvalidEpoch),
            CLOSE_EPOCH => self.close(key),
            epoch if epoch < CLOSE_EPOCH => Err(SessionError::InvalidRequest),
            epoch => {
                self.advance(key, epoch)?;
                Ok(Granted {
                    partitions: Vec::new(),
                    closed: false,
                    replaced: false,
                })
            }
        }
    }

    /// Ends the sessions opened on `connection` (it closed); the caller releases what their
    /// members hold.
    pub fn close_connection(&mut self, connection: u64) -> Vec<SessionKey> {
        let mut closed: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(k, _)| k.clone())
            .collect();
        closed.sort();
        for key in &closed {
            self.sessions.remove(key);
        }
        closed
    }

    /// Whether some member of `group` has a session here.
    pub fn has_group(&self, group: &str) -> bool {
        self.sessions.keys().any(|k| k.group == group)
    }

    /// The epoch the session of `key` expects next, if it has one.
    pub fn epoch(&self, key: &SessionKey) -> Option<i32> {
        self.sessions.get(key).map(|s| s.epoch)
    }

    fn close(&mut self, key: &SessionKey) -> Result<Granted, SessionError> {
        self.sessions
            .remove(key)
            .map(|_| Granted {
                partitions: Vec::new(),
                closed: true,
                replaced: false,
            })
            .ok_or(SessionError::NotFound)
    }

    /// Checks `epoch` against the session's and moves it on.
    fn advance(&mut self, key: &SessionKey, epoch: i32) -> Result<&mut Session, SessionError> {
        let session = self.sessions.get_mut(key).ok_or(SessionError::NotFound)?;
        if session.epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        session.epoch = next_epoch(epoch);
        Ok(session)
    }
}

/// The epoch after `epoch`: past `i32::MAX` it starts again at 1 (0 opens a session).
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(member: &str) -> SessionKey {
        SessionKey {
            group: "g".into(),
            member: member.into(),
        }
    }

    fn tp(partition: i32) -> SharedPartition {
        (Uuid::from_u128(7), partition)
    }

    fn at(epoch: i32) -> FetchSession {
        FetchSession {
            epoch,
            ..FetchSession::default()
        }
    }

    #[test]
    fn a_session_opens_at_zero_and_follows_its_epoch() {
        let mut cache = SessionCache::new(10);
        let open = FetchSession {
            added: vec![tp(0), tp(1)],
            ..at(OPEN_EPOCH)
        };
        let granted = cache.fetch(&key("a"), 1, &open).expect("opened");
        assert_eq!(granted.partitions, vec![tp(0), tp(1)]);
        assert_eq!(cache.epoch(&key("a")), Some(1));
        let next = FetchSession {
            added: vec![tp(2)],
            forgotten: vec![tp(0)],
            acknowledges: true,
            ..at(1)
        };
        let granted = cache.fetch(&key("a"), 1, &next).expect("continued");
        assert_eq!(granted.partitions, vec![tp(1), tp(2)]);
        assert_eq!(
            cache.fetch(&key("a"), 1, &at(1)),
            Err(SessionError::InvalidEpoch),
            "an epoch is used once"
        );
        assert!(cache.acknowledge(&key("a"), 2).is_ok());
        assert!(cache.fetch(&key("a"), 1, &at(3)).is_ok());
    }

    #[test]
    fn closing_applies_once_and_then_the_session_is_gone() {
        let mut cache = SessionCache::new(10);
        cache.fetch(&key("a"), 1, &at(OPEN_EPOCH)).expect("opened");
        let closed = cache.acknowledge(&key("a"), CLOSE_EPOCH).expect("closed");
        assert!(closed.closed);
        assert_eq!(
            cache.fetch(&key("a"), 1, &at(CLOSE_EPOCH)),
            Err(SessionError::NotFound)
        );
        assert_eq!(
            cache.fetch(&key("a"), 1, &at(2)),
            Err(SessionError::NotFound)
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn misuse_gets_kafkas_codes() {
        let mut cache = SessionCache::new(10);
        let opening_with_acks = FetchSession {
            acknowledges: true,
            ..at(OPEN_EPOCH)
        };
        let cases = [
            (
                cache.fetch(&key("a"), 1, &opening_with_acks),
                ResponseError::InvalidRequest,
            ),
            (
                cache.acknowledge(&key("a"), OPEN_EPOCH),
                ResponseError::InvalidShareSessionEpoch,
            ),
            (
                cache.fetch(&key("a"), 1, &at(-2)),
                ResponseError::InvalidRequest,
            ),
            (
                cache.acknowledge(&key("a"), 5),
                ResponseError::ShareSessionNotFound,
            ),
        ];
        for (outcome, code) in cases {
            assert_eq!(outcome.map_err(SessionError::code).err(), Some(code));
        }
        assert!(cache.is_empty(), "no refused request opened a session");
    }

    #[test]
    fn the_limit_refuses_new_members_but_not_a_reopening() {
        let mut cache = SessionCache::new(1);
        cache.fetch(&key("a"), 1, &at(OPEN_EPOCH)).expect("opened");
        assert_eq!(
            cache.fetch(&key("b"), 2, &at(OPEN_EPOCH)),
            Err(SessionError::LimitReached)
        );
        let again = cache
            .fetch(&key("a"), 3, &at(OPEN_EPOCH))
            .expect("reopened");
        assert!(again.replaced);
        assert_eq!(cache.epoch(&key("a")), Some(1));
    }

    #[test]
    fn a_closed_connection_ends_its_sessions_only() {
        let mut cache = SessionCache::new(10);
        cache.fetch(&key("a"), 1, &at(OPEN_EPOCH)).expect("opened");
        cache.fetch(&key("b"), 1, &at(OPEN_EPOCH)).expect("opened");
        cache.fetch(&key("c"), 2, &at(OPEN_EPOCH)).expect("opened");
        assert_eq!(cache.close_connection(1), vec![key("a"), key("b")]);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.epoch(&key("c")),
            Some(1),
            "another connection's session stays"
        );
    }

    #[test]
    fn the_epoch_wraps_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(1), 2);
    }
}
