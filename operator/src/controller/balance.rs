//! Kafka's auto leader rebalance, decided per cluster: every
//! `leader.imbalance.check.interval.seconds`, each broker whose share of the partitions it
//! prefers (it is their first replica) but does not lead exceeds
//! `leader.imbalance.per.broker.percentage` gets those partitions back, where it may lead
//! ([`elect_preferred`](super::preferred::elect_preferred)). Off with
//! `auto.leader.rebalance.enable=false`. The settings are the KafkaCluster's `spec.config`, with
//! Kafka's defaults. Pure: the caller keeps the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tributary_crds::KafkaPartitionStatus;

/// Turns auto leader rebalancing on or off.
pub const AUTO_LEADER_REBALANCE: &str = "auto.leader.rebalance.enable";
/// Percentage of its preferred partitions a broker may fail to lead before a rebalance.
pub const IMBALANCE_PERCENTAGE: &str = "leader.imbalance.per.broker.percentage";
/// Seconds between two imbalance checks.
pub const CHECK_INTERVAL: &str = "leader.imbalance.check.interval.seconds";

/// Kafka's first check comes this long after a controller takes over (or after one interval,
/// if that is shorter), not a whole interval later.
pub const FIRST_CHECK: Duration = Duration::from_secs(5);

/// A cluster's leader balancing settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceConfig {
    /// `auto.leader.rebalance.enable` (default true).
    pub enabled: bool,
    /// `leader.imbalance.per.broker.percentage` (default 10).
    pub percentage: u64,
    /// `leader.imbalance.check.interval.seconds` (default 300).
    pub interval: Duration,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            enabled: true,
            percentage: 10,
            interval: Duration::from_secs(300),
        }
    }
}

impl BalanceConfig {
    /// The settings in a KafkaCluster's `spec.config`. A missing or invalid value counts as
    /// Kafka's default: an invalid one already makes the KafkaCluster Degraded
    /// (`validate_broker_config`), and the controller must keep working meanwhile.
    pub fn of(config: &BTreeMap<String, String>) -> BalanceConfig {
        let default = BalanceConfig::default();
        let get = |key: &str| config.get(key).map(String::as_str);
        BalanceConfig {
            enabled: match get(AUTO_LEADER_REBALANCE) {
                Some("false") => false,
                Some("true") => true,
                _ => default.enabled,
            },
            percentage: get(IMBALANCE_PERCENTAGE)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default.percentage),
            interval: get(CHECK_INTERVAL)
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|s| *s >= 1)
                .map_or(default.interval, Duration::from_secs),
        }
    }

    /// When the next check is due, given when the controller started and the last check.
    pub fn next_check(&self, started: Instant, last: Option<Instant>) -> Instant {
        match last {
            Some(last) => last + self.interval,
            None => started + self.interval.min(FIRST_CHECK),
        }
    }
}

/// One partition as the imbalance check sees it.
#[derive(Clone, Copy, Debug)]
pub struct Led<'a> {
    /// The assignment; its first broker is the preferred leader.
    pub replicas: &'a [i32],
    /// The recorded leadership, if any.
    pub status: Option<&'a KafkaPartitionStatus>,
}

impl Led<'_> {
    /// The preferred replica, and whether it does not lead. A partition without a status has
    /// no leadership to judge: like Kafka, it counts toward its preferred broker's partitions
    /// but not as led elsewhere.
    fn preference(&self) -> Option<(i32, bool)> {
        let preferred = *self.replicas.first()?;
        let elsewhere = self.status.is_some_and(|s| s.leader != preferred);
        Some((preferred, elsewhere))
    }
}

/// Brokers whose imbalance ratio (partitions they prefer but do not lead, over partitions they
/// prefer) exceeds `percentage` percent: Kafka's `checkAndTriggerAutoLeaderRebalance`.
pub fn imbalanced_brokers<'a>(
    partitions: impl IntoIterator<Item = Led<'a>>,
    percentage: u64,
) -> BTreeSet<i32> {
    let mut by_broker: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    for (preferred, elsewhere) in partitions.into_iter().filter_map(|p| p.preference()) {
        let (elsewhere_count, total) = by_broker.entry(preferred).or_default();
        *total += 1;
        *elsewhere_count += u64::from(elsewhere);
    }
    by_broker
        .into_iter()
        // not_led / total > percentage / 100, in integers.
        .filter(|(_, (elsewhere, total))| {
            u128::from(*elsewhere) * 100 > u128::from(percentage) * u128::from(*total)
        })
        .map(|(id, _)| id)
        .collect()
}

/// Whether a partition's recorded leader is not its preferred replica (Kafka's
/// PreferredReplicaImbalanceCount counts these; offline partitions included).
pub fn is_imbalanced(led: Led<'_>) -> bool {
    led.preference().is_some_and(|(_, elsewhere)| elsewhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn settings_default_to_kafkas_and_invalid_values_count_as_unset() {
        assert_eq!(BalanceConfig::of(&config(&[])), BalanceConfig::default());
        assert_eq!(
            BalanceConfig::of(&config(&[
                (AUTO_LEADER_REBALANCE, "false"),
                (IMBALANCE_PERCENTAGE, "0"),
                (CHECK_INTERVAL, "1"),
            ])),
            BalanceConfig {
                enabled: false,
                percentage: 0,
                interval: Duration::from_secs(1),
            }
        );
        assert_eq!(
            BalanceConfig::of(&config(&[
                (AUTO_LEADER_REBALANCE, "no"),
                (IMBALANCE_PERCENTAGE, "-3"),
                (CHECK_INTERVAL, "0"),
            ])),
            BalanceConfig::default()
        );
    }

    #[test]
    fn the_first_check_comes_soon_after_taking_over_then_every_interval() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let default = BalanceConfig::default();
        assert_eq!(default.next_check(t0, None), t0 + FIRST_CHECK);
        assert_eq!(default.next_check(t0, Some(t0 + s(7))), t0 + s(307));
        let fast = BalanceConfig {
            interval: s(1),
            ..default
        };
        assert_eq!(fast.next_check(t0, None), t0 + s(1));
        assert_eq!(fast.next_check(t0, Some(t0 + s(3))), t0 + s(4));
    }

    fn st(leader: i32) -> KafkaPartitionStatus {
        KafkaPartitionStatus {
            leader,
            ..KafkaPartitionStatus::default()
        }
    }

    #[test]
    fn a_broker_is_imbalanced_when_more_than_the_percentage_of_its_partitions_are_led_elsewhere() {
        // Broker 0 prefers ten partitions, broker 1 five, broker 2 one without a status.
        let r0 = [0, 1, 2];
        let r1 = [1, 2, 0];
        let r2 = [2, 0, 1];
        let (led_by_0, led_by_1, led_by_2, offline) = (st(0), st(1), st(2), st(-1));
        let layout = |elsewhere_0: usize, elsewhere_1: usize| -> Vec<Led<'_>> {
            let mut v = Vec::new();
            for i in 0..10 {
                let status = if i < elsewhere_0 {
                    &led_by_1
                } else {
                    &led_by_0
                };
                v.push(Led {
                    replicas: &r0,
                    status: Some(status),
                });
            }
            for i in 0..5 {
                let status = if i < elsewhere_1 { &offline } else { &led_by_1 };
                v.push(Led {
                    replicas: &r1,
                    status: Some(status),
                });
            }
            v.push(Led {
                replicas: &r2,
                status: None,
            });
            v.push(Led {
                replicas: &[],
                status: Some(&led_by_2),
            });
            v
        };
        let cases = [
            ("balanced", 0, 0, 10, vec![]),
            ("exactly 10% is not more than 10%", 1, 0, 10, vec![]),
            ("20% of broker 0's", 2, 0, 10, vec![0]),
            (
                "an offline partition counts as led elsewhere",
                0,
                1,
                10,
                vec![1],
            ),
            ("both", 5, 5, 10, vec![0, 1]),
            ("0%: any partition led elsewhere", 1, 0, 0, vec![0]),
            ("100%: never", 10, 5, 100, vec![]),
        ];
        for (what, e0, e1, pct, want) in cases {
            let got = imbalanced_brokers(layout(e0, e1), pct);
            assert_eq!(got, want.into_iter().collect(), "{what}");
        }
        let count = layout(2, 1)
            .into_iter()
            .filter(|l| is_imbalanced(*l))
            .count();
        assert_eq!(
            count, 3,
            "imbalance count: led elsewhere or offline, not unled"
        );
    }
}
