//! Broker liveness from Leases: a broker is registered while its Lease `<cluster>-broker-<id>`
//! has a holder and was renewed within its lease duration (Kafka's ephemeral znode).

use std::collections::BTreeSet;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

/// True when `lease` is held and not expired at `now`.
pub fn lease_is_live(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return false;
    }
    let (Some(renewed), Some(secs)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds)
    else {
        return false;
    };
    renewed.0 + SignedDuration::from_secs(i64::from(secs)) > now
}

/// Parses `<cluster>-broker-<id>` into `(cluster, id)`.
pub fn parse_broker_lease(name: &str) -> Option<(&str, i32)> {
    let (cluster, id) = name.rsplit_once("-broker-")?;
    let id: i32 = id.parse().ok()?;
    (id >= 0 && !cluster.is_empty()).then_some((cluster, id))
}

/// Ids of `cluster`'s brokers holding a live Lease.
pub fn live_brokers(cluster: &str, leases: &[Lease], now: Timestamp) -> BTreeSet<i32> {
    leases
        .iter()
        .filter(|l| lease_is_live(l, now))
        .filter_map(|l| {
            let name = l.name_any();
            let (c, id) = parse_broker_lease(&name)?;
            (c == cluster).then_some(id)
        })
        .collect()
}

/// Time until the first live broker Lease of `cluster` expires: when the controller must look
/// again, because an expiry produces no watch event.
pub fn next_expiry(cluster: &str, leases: &[Lease], now: Timestamp) -> Option<std::time::Duration> {
    leases
        .iter()
        .filter(|l| lease_is_live(l, now))
        .filter(|l| parse_broker_lease(&l.name_any()).is_some_and(|(c, _)| c == cluster))
        .filter_map(|l| {
            let spec = l.spec.as_ref()?;
            let expires = spec.renew_time.as_ref()?.0
                + SignedDuration::from_secs(i64::from(spec.lease_duration_seconds?));
            std::time::Duration::try_from(expires.duration_since(now)).ok()
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

    fn lease(name: &str, holder: Option<&str>, renewed: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(15),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn only_fresh_held_leases_of_the_cluster_count() {
        let now = Timestamp::now();
        let old = now - SignedDuration::from_secs(16);
        let leases = vec![
            lease("demo-broker-0", Some("demo-broker-0"), now),
            lease("demo-broker-1", Some("demo-broker-1"), old),
            lease("demo-broker-2", None, now),
            lease("other-broker-3", Some("x"), now),
            lease("demo-controller", Some("op"), now),
        ];
        assert_eq!(live_brokers("demo", &leases, now), BTreeSet::from([0]));
    }

    #[test]
    fn parses_names_with_dashes() {
        assert_eq!(
            parse_broker_lease("my-kafka-broker-12"),
            Some(("my-kafka", 12))
        );
        assert_eq!(parse_broker_lease("my-kafka-broker-x"), None);
        assert_eq!(parse_broker_lease("-broker-1"), None);
    }
}
