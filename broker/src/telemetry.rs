//! Client telemetry (KIP-714) as Kafka answers it with no metrics receiver configured: the
//! APIs are not advertised, but a client that calls them anyway gets a well-formed
//! subscription that requests no metrics, so it has nothing to push and only asks again after
//! the push interval. Each client instance's request times are kept (bounded) so that pushes
//! and early re-requests get Kafka's errors, not a silent acceptance.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use uuid::Uuid;

/// Kafka's `ClientMetricsConfigs.DEFAULT_INTERVAL_MS`: how often a client asks again.
pub const PUSH_INTERVAL_MS: i32 = 300_000;
/// Kafka's default `telemetry.max.bytes`: the largest metrics payload a push may carry.
pub const TELEMETRY_MAX_BYTES: i32 = 1024 * 1024;
/// The compression types a push may use, in Kafka's order of preference (zstd, lz4, gzip,
/// snappy).
pub const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [4, 3, 1, 2];
/// Kafka's `CACHE_MAX_SIZE`: client instances remembered per broker.
const MAX_INSTANCES: usize = 16_384;
/// Kafka's `DEFAULT_CACHE_EXPIRY_MS`: the least time an idle instance is remembered.
const MIN_EXPIRY_MS: i64 = 60_000;
/// The id Kafka reserves for its metadata topic; never a client instance id.
const METADATA_TOPIC_ID: Uuid = Uuid::from_u128(1);

/// What GetTelemetrySubscriptions answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The client's instance id, assigned here when it sent the zero id.
    pub client_instance_id: Uuid,
    /// The id a push must name: a function of the (empty) metrics set, interval and instance.
    pub subscription_id: i32,
}

/// One client instance's request history (Kafka's `ClientMetricsInstance`).
#[derive(Debug, Clone)]
struct Instance {
    subscription_id: i32,
    last_get_ms: i64,
    last_push_ms: i64,
    terminating: bool,
    last_seen_ms: i64,
}

impl Instance {
    fn new(id: Uuid, now_ms: i64) -> Instance {
        Instance {
            subscription_id: subscription_id(id),
            last_get_ms: 0,
            last_push_ms: 0,
            terminating: false,
            last_seen_ms: now_ms,
        }
    }

    /// Kafka's `maybeUpdateGetRequestTimestamp`: one GetTelemetrySubscriptions per interval.
    fn accept_get(&mut self, now_ms: i64) -> bool {
        let last = self.last_get_ms.max(self.last_push_ms);
        let ok = now_ms - last >= i64::from(PUSH_INTERVAL_MS);
        if ok {
            self.last_get_ms = now_ms;
        }
        ok
    }

    /// Kafka's `maybeUpdatePushRequestTimestamp`: the first push after a get is accepted at
    /// once (clients jitter the interval), later ones once per interval.
    fn accept_push(&mut self, now_ms: i64) -> bool {
        let ok = self.last_get_ms > self.last_push_ms
            || now_ms - self.last_push_ms >= i64::from(PUSH_INTERVAL_MS);
        if ok {
            self.last_push_ms = now_ms;
        }
        ok
    }
}

/// A PushTelemetry request's fields the broker checks.
#[derive(Debug, Clone, Copy)]
pub struct Push {
    /// The instance id the client was given.
    pub client_instance_id: Uuid,
    /// The subscription id the client was given.
    pub subscription_id: i32,
    /// Whether this is the client's last push (it is closing).
    pub terminating: bool,
    /// The compression type of `metrics`.
    pub compression_type: i8,
    /// The size of the metrics payload.
    pub metrics_len: usize,
}

/// The client instances this broker has answered, bounded.
#[derive(Debug, Default)]
pub struct ClientTelemetry {
    instances: Mutex<HashMap<Uuid, Instance>>,
}

impl ClientTelemetry {
    /// GetTelemetrySubscriptions: the subscription of instance `requested` (zero: a new one,
    /// `fresh` is its id), or THROTTLING_QUOTA_EXCEEDED when it asks again within the push
    /// interval.
    pub fn get(
        &self,
        requested: Uuid,
        fresh: Uuid,
        now_ms: i64,
    ) -> Result<Subscription, ResponseError> {
        let id = if requested.is_nil() { fresh } else { requested };
        let mut instances = self.instances.lock();
        let instance = instance(&mut instances, id, now_ms);
        if !instance.accept_get(now_ms) {
            return Err(ResponseError::ThrottlingQuotaExceeded);
        }
        Ok(Subscription {
            client_instance_id: id,
            subscription_id: instance.subscription_id,
        })
    }

    /// PushTelemetry: accepted (and dropped: no receiver is configured) or Kafka's error for
    /// it, checked in Kafka's order.
    pub fn push(&self, push: Push, now_ms: i64) -> Result<(), ResponseError> {
        let id = push.client_instance_id;
        if id.is_nil() || id == METADATA_TOPIC_ID {
            return Err(ResponseError::InvalidRequest);
        }
        let mut instances = self.instances.lock();
        let instance = instance(&mut instances, id, now_ms);
        let checked = check_push(instance, &push, now_ms);
        instance.terminating = push.terminating;
        checked
    }

    /// How many client instances are remembered.
    pub fn len(&self) -> usize {
        self.instances.lock().len()
    }

    /// Whether no client instance is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Kafka's `validatePushRequest`.
fn check_push(instance: &mut Instance, push: &Push, now_ms: i64) -> Result<(), ResponseError> {
    if instance.terminating {
        return Err(ResponseError::InvalidRequest);
    }
    if !instance.accept_push(now_ms) && !push.terminating {
        return Err(ResponseError::ThrottlingQuotaExceeded);
    }
    if push.subscription_id != instance.subscription_id {
        return Err(ResponseError::UnknownSubscriptionId);
    }
    if !(0..=4).contains(&push.compression_type) {
        return Err(ResponseError::UnsupportedCompressionType);
    }
    if push.metrics_len > TELEMETRY_MAX_BYTES as usize {
        return Err(ResponseError::TelemetryTooLarge);
    }
    Ok(())
}

/// Instance `id`, remembered from now on; when the cache is full, instances idle past their
/// expiry go first, then the least recently seen.
fn instance(instances: &mut HashMap<Uuid, Instance>, id: Uuid, now_ms: i64) -> &mut Instance {
    if !instances.contains_key(&id) && instances.len() >= MAX_INSTANCES {
        let expiry = MIN_EXPIRY_MS.max(3 * i64::from(PUSH_INTERVAL_MS));
        instances.retain(|_, i| now_ms - i.last_seen_ms < expiry);
        if instances.len() >= MAX_INSTANCES {
            let oldest = instances
                .iter()
                .min_by_key(|(_, i)| i.last_seen_ms)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                instances.remove(&oldest);
            }
        }
    }
    let instance = instances
        .entry(id)
        .or_insert_with(|| Instance::new(id, now_ms));
    instance.last_seen_ms = now_ms;
    instance
}

/// Kafka's `computeSubscriptionId` for the empty metrics set: CRC-32C of the metrics list and
/// interval as Java prints them, XOR the instance id's Java hash code.
fn subscription_id(id: Uuid) -> i32 {
    let text = format!("[]{PUSH_INTERVAL_MS}");
    let crc = crc32c::crc32c(text.as_bytes()) as i32;
    let (high, low) = id.as_u64_pair();
    let bits = high ^ low;
    crc ^ ((bits >> 32) as i32 ^ bits as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Uuid = Uuid::from_u128(0xfeed);
    /// A wall clock reading (requests carry real times; the first one is never early).
    const T: i64 = 1_700_000_000_000;

    fn push(subscription_id: i32) -> Push {
        Push {
            client_instance_id: ID,
            subscription_id,
            terminating: false,
            compression_type: 0,
            metrics_len: 10,
        }
    }

    #[test]
    fn a_new_client_gets_an_id_and_an_empty_subscription_then_waits_an_interval() {
        let t = ClientTelemetry::default();
        let s = t.get(Uuid::nil(), ID, T + 1_000).expect("first get");
        assert_eq!(s.client_instance_id, ID, "the zero id is replaced");
        assert_eq!(
            t.get(ID, Uuid::from_u128(2), T + 2_000),
            Err(ResponseError::ThrottlingQuotaExceeded),
            "asked again within the push interval"
        );
        let again = t
            .get(
                ID,
                Uuid::from_u128(2),
                T + 1_000 + i64::from(PUSH_INTERVAL_MS),
            )
            .expect("an interval later");
        assert_eq!(again, s, "same instance, same subscription");
    }

    #[test]
    fn pushes_are_checked_in_kafkas_order() {
        let t = ClientTelemetry::default();
        let s = t.get(ID, ID, T + 1_000).expect("get");
        let sub = s.subscription_id;
        assert_eq!(
            t.push(push(sub ^ 1), T + 1_100),
            Err(ResponseError::UnknownSubscriptionId)
        );
        assert_eq!(
            t.push(push(sub), T + 1_200),
            Err(ResponseError::ThrottlingQuotaExceeded),
            "the accepted-after-get slot was used by the refused push"
        );
        let later = T + 2_000 + i64::from(PUSH_INTERVAL_MS);
        let mut bad = push(sub);
        bad.compression_type = 9;
        assert_eq!(
            t.push(bad, later),
            Err(ResponseError::UnsupportedCompressionType)
        );
        let mut big = push(sub);
        big.metrics_len = TELEMETRY_MAX_BYTES as usize + 1;
        big.terminating = true;
        assert_eq!(
            t.push(big, later + 1),
            Err(ResponseError::TelemetryTooLarge)
        );
        assert_eq!(
            t.push(push(sub), later + 2),
            Err(ResponseError::InvalidRequest),
            "nothing after a terminating push"
        );
    }

    #[test]
    fn a_push_right_after_a_get_is_accepted() {
        let t = ClientTelemetry::default();
        let s = t.get(ID, ID, T + 5_000).expect("get");
        assert_eq!(t.push(push(s.subscription_id), T + 5_001), Ok(()));
    }

    #[test]
    fn reserved_instance_ids_are_invalid() {
        let t = ClientTelemetry::default();
        for id in [Uuid::nil(), METADATA_TOPIC_ID] {
            let mut p = push(0);
            p.client_instance_id = id;
            assert_eq!(t.push(p, T + 1), Err(ResponseError::InvalidRequest));
        }
        assert!(t.is_empty(), "refused ids are not remembered");
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_least_recently_seen() {
        let t = ClientTelemetry::default();
        for n in 0..MAX_INSTANCES as u128 + 10 {
            let id = Uuid::from_u128(n + 100);
            t.get(id, id, T + n as i64).expect("get");
        }
        assert_eq!(t.len(), MAX_INSTANCES);
        let first = Uuid::from_u128(100);
        assert!(
            !t.instances.lock().contains_key(&first),
            "the oldest instance was dropped"
        );
    }

    #[test]
    fn subscription_ids_depend_on_the_instance() {
        assert_ne!(subscription_id(ID), subscription_id(Uuid::from_u128(7)));
        assert_eq!(subscription_id(ID), subscription_id(ID));
    }
}
