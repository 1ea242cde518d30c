//! Client quotas: produce and fetch byte rates per user and client id, and connection creation
//! rates per address, set with AlterClientQuotas (`kafka-configs.sh --entity-type
//! clients|users|ips`) and enforced as Kafka does: a throttle time in the response and a
//! paused connection, or for too many new connections a delayed close.

pub mod entity;
mod rate;
pub mod replication;
pub mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use entity::Entity;
use rate::Rate;
use store::ClientQuotaDocument;
pub use store::{ClientQuotas, QuotaStoreError};

use crate::shared_state::Shared;

/// How often rates of clients gone quiet are dropped.
const PURGE_INTERVAL_MS: i64 = 60_000;

/// The quotas and the measured rates they are enforced against.
#[derive(Debug)]
pub struct Quotas {
    /// The configured quotas (shared with Kubernetes in cluster mode, so every lookup below
    /// sees what any broker or the operator set).
    pub store: Arc<ClientQuotas>,
    rates: Mutex<Rates>,
}

#[derive(Debug, Default)]
struct Rates {
    /// By quota key and the entity the usage is accounted under.
    by_entity: HashMap<(&'static str, Entity), Rate>,
    last_purge_ms: i64,
}

impl Quotas {
    /// The quotas saved in `data_dir`, or with `shared` (cluster mode) those it holds, with no
    /// usage measured yet.
    pub fn open(
        data_dir: &Path,
        shared: Option<Arc<dyn Shared<ClientQuotaDocument>>>,
    ) -> Result<Quotas, QuotaStoreError> {
        Ok(Quotas::new(ClientQuotas::open_shared(data_dir, shared)?))
    }

    /// Quotas from `store`, with no usage measured yet.
    pub fn new(store: Arc<ClientQuotas>) -> Quotas {
        Quotas {
            store,
            rates: Mutex::new(Rates::default()),
        }
    }

    /// Counts `bytes` against the quota `key` of `user` (the authenticated principal's name,
    /// `ANONYMOUS` on PLAINTEXT) and `client_id`, if one applies, and returns how many
    /// milliseconds the client must pause, 0 when it is within its quota.
    pub fn record(
        &self,
        user: &str,
        client_id: &str,
        key: &'static str,
        bytes: usize,
        now_ms: i64,
    ) -> i32 {
        let resolved = self.store.lookup(user, client_id, key);
        self.charge(key, resolved, bytes as f64, now_ms)
    }

    /// Counts a new connection from `ip` against its `connection_creation_rate` and returns
    /// how long to hold it before closing it, 0 when it may be served (Kafka delays the close
    /// of a throttled connection so the client backs off).
    pub fn record_connection(&self, ip: &str, now_ms: i64) -> i32 {
        let key = entity::CONNECTION_CREATION_RATE;
        let resolved = self.store.lookup_ip(ip, key);
        self.charge(key, resolved, 1.0, now_ms)
    }

    fn charge(
        &self,
        key: &'static str,
        resolved: Option<(Entity, f64)>,
        amount: f64,
        now_ms: i64,
    ) -> i32 {
        let Some((entity, quota)) = resolved else {
            return 0;
        };
        let mut rates = self.rates.lock();
        if now_ms - rates.last_purge_ms >= PURGE_INTERVAL_MS {
            rates.by_entity.retain(|_, rate| !rate.is_idle(now_ms));
            rates.last_purge_ms = now_ms;
        }
        let rate = rates.by_entity.entry((key, entity)).or_default();
        rate.record(amount, now_ms);
        i32::try_from(rate.throttle_ms(quota, now_ms)).unwrap_or(i32::MAX)
    }

    /// The most bytes one response may carry without putting an idle client over its quota
    /// `key` (Kafka caps fetches at this so a throttled consumer still makes progress).
    pub fn max_in_window(&self, user: &str, client_id: &str, key: &'static str) -> Option<usize> {
        let (_, quota) = self.store.lookup(user, client_id, key)?;
        Some((quota * rate::MIN_WINDOW_SECONDS).min(usize::MAX as f64) as usize)
    }

    /// Takes back a [`Quotas::record`] whose bytes were not sent after all (a throttled fetch
    /// is answered empty).
    pub fn unrecord(
        &self,
        user: &str,
        client_id: &str,
        key: &'static str,
        bytes: usize,
        now_ms: i64,
    ) {
        let Some((entity, _)) = self.store.lookup(user, client_id, key) else {
            return;
        };
        if let Some(rate) = self.rates.lock().by_entity.get_mut(&(key, entity)) {
            rate.record(-(bytes as f64), now_ms);
        }
    }
}
