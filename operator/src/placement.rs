//! Replica placement: which brokers hold each partition of a topic.
//!
//! Pure and deterministic, so it can be property-tested and so two operator replicas (or two
//! reconciles) always agree. Rules, in priority order:
//! 1. every partition gets `replication_factor` distinct live brokers;
//! 2. existing replicas never move; only replicas on brokers that left the cluster
//!    (decommissioned) are replaced;
//! 3. replicas of one partition go to different racks while unused racks remain;
//! 4. a new partition's leader (first replica) is the broker leading the fewest of the topic's
//!    partitions (then of all), its followers the brokers holding the fewest replicas: leader and replica counts stay
//!    within one of each other without racks, or with equal-sized racks and at most one replica
//!    per rack (the property tests pin exactly this), and a topic's leaders spread over the
//!    brokers even when earlier topics left replica counts uneven.

use std::collections::{BTreeMap, BTreeSet};

/// A broker that can take replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// Broker id.
    pub id: i32,
    /// Rack (zone), when rack awareness is on and known.
    pub rack: Option<String>,
}

impl Broker {
    /// The brokers `cluster` keeps (ids `0..spec.brokers`), each with the rack its status
    /// records.
    pub fn of_cluster(cluster: &tributary_crds::KafkaCluster) -> Vec<Broker> {
        let racks: BTreeMap<i32, Option<String>> = cluster
            .status
            .iter()
            .flat_map(|s| s.brokers.iter())
            .map(|b| (b.id, b.rack.clone()))
            .collect();
        (0..cluster.spec.brokers)
            .map(|id| Broker {
                id,
                rack: racks.get(&id).cloned().flatten(),
            })
            .collect()
    }
}

/// Input to [`place`].
#[derive(Clone, Copy, Debug)]
pub struct PlacementRequest<'a> {
    /// Brokers currently in the cluster.
    pub brokers: &'a [Broker],
    /// Desired number of partitions (at least `existing.len()`).
    pub partitions: i32,
    /// Replicas per partition.
    pub replication_factor: i32,
    /// Current replica lists, indexed by partition number.
    pub existing: &'a [Vec<i32>],
    /// The replica lists of the cluster's other topics' partitions: new replicas go where the
    /// whole cluster is least loaded, not only this topic, so topics created one after another
    /// spread over the brokers instead of each starting on the same one (which the rebalance
    /// would then move, under clients' feet).
    pub others: &'a [Vec<i32>],
}

/// Why a placement is impossible.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlacementError {
    /// Fewer brokers than replicas per partition.
    #[error("replication factor {replication_factor} needs at least that many brokers, the cluster has {brokers}")]
    InsufficientBrokers {
        /// Requested replicas per partition.
        replication_factor: i32,
        /// Brokers available.
        brokers: usize,
    },
    /// Partitions can only be added, never removed.
    #[error("topic has {existing} partitions and cannot shrink to {requested}")]
    PartitionsDecrease {
        /// Partitions that exist.
        existing: usize,
        /// Partitions asked for.
        requested: i32,
    },
}

/// Computes the replica list of every partition `0..partitions`.
pub fn place(req: PlacementRequest<'_>) -> Result<Vec<Vec<i32>>, PlacementError> {
    let (rf, ids, wanted) = feasible(&req)?;
    let racks: BTreeMap<i32, Option<&str>> = req
        .brokers
        .iter()
        .map(|b| (b.id, b.rack.as_deref()))
        .collect();
    let mut loads = Loads::default();
    for replicas in req.others {
        loads.count(replicas);
    }

    let mut result = surviving(req.existing, &ids, rf, &mut loads);
    result.resize(wanted, Vec::new());
    // Partitions of this topic each broker leads.
    let mut own_leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for first in result.iter().filter_map(|r| r.first()) {
        *own_leaders.entry(*first).or_default() += 1;
    }

    let ordered: Vec<i32> = ids.iter().copied().collect();
    for (p, replicas) in result.iter_mut().enumerate() {
        if replicas.len() >= rf {
            continue;
        }
        let fresh = replicas.is_empty();
        while replicas.len() < rf {
            let used_racks: Vec<Option<&str>> = replicas
                .iter()
                .map(|id| racks.get(id).copied().flatten())
                .collect();
            let leading = fresh && replicas.is_empty();
            let pick = ordered
                .iter()
                .filter(|id| !replicas.contains(id))
                .min_by_key(|id| {
                    let rack = racks.get(id).copied().flatten();
                    // How many replicas of this partition already sit in the broker's rack.
                    let rack_taken = if rack.is_some() {
                        used_racks.iter().filter(|r| **r == rack).count()
                    } else {
                        0
                    };
                    // A new partition's leader is the broker leading the fewest of this
                    // topic's partitions, then the fewest of all, then the least loaded: a
                    // topic's leaders spread over the brokers as Kafka's round-robin spreads
                    // them, even when earlier topics left replica loads uneven (otherwise every
                    // new partition's leader would be the one broker with fewer replicas).
                    // Followers go where replica load is lowest, then to the brokers leading
                    // the most, which keeps low-leadership brokers free to lead the next ones.
                    let leaders = loads.leaders(**id);
                    let replicas = loads.replicas(**id);
                    let key = if leading {
                        (
                            own_leaders.get(*id).copied().unwrap_or(0),
                            leaders,
                            replicas,
                        )
                    } else {
                        (0, replicas, usize::MAX - leaders)
                    };
                    (rack_taken, key, rotation(**id, p, &ordered))
                })
                .copied();
            let Some(id) = pick else { break };
            replicas.push(id);
            *loads.replicas.entry(id).or_default() += 1;
            if leading {
                *loads.leaders.entry(id).or_default() += 1;
                *own_leaders.entry(id).or_default() += 1;
            }
        }
    }
    Ok(result)
}

/// The replication factor, the brokers and the partition count of a placement that can be
/// made: enough brokers, and no fewer partitions than exist.
fn feasible(req: &PlacementRequest<'_>) -> Result<(usize, BTreeSet<i32>, usize), PlacementError> {
    let rf = usize::try_from(req.replication_factor.max(1)).unwrap_or(1);
    let ids: BTreeSet<i32> = req.brokers.iter().map(|b| b.id).collect();
    if ids.len() < rf {
        return Err(PlacementError::InsufficientBrokers {
            replication_factor: req.replication_factor,
            brokers: ids.len(),
        });
    }
    let wanted = usize::try_from(req.partitions).unwrap_or(0);
    if wanted < req.existing.len() {
        return Err(PlacementError::PartitionsDecrease {
            existing: req.existing.len(),
            requested: req.partitions,
        });
    }
    Ok((rf, ids, wanted))
}

/// Every surviving replica of the existing partitions (on a broker that still exists, at
/// most `rf`, no repeats), counted in `loads`.
fn surviving(
    existing: &[Vec<i32>],
    ids: &BTreeSet<i32>,
    rf: usize,
    loads: &mut Loads,
) -> Vec<Vec<i32>> {
    existing
        .iter()
        .map(|replicas| {
            let mut kept: Vec<i32> = Vec::with_capacity(rf);
            for id in replicas {
                if ids.contains(id) && !kept.contains(id) && kept.len() < rf {
                    kept.push(*id);
                }
            }
            loads.count(&kept);
            kept
        })
        .collect()
}

/// Ties go to brokers in a rotation that starts at a different broker for each partition, so
/// equal loads still spread evenly.
fn rotation(id: i32, partition: usize, ordered: &[i32]) -> usize {
    let n = ordered.len().max(1);
    let pos = ordered.iter().position(|b| *b == id).unwrap_or(0);
    (pos + n - partition % n) % n
}

#[derive(Default)]
struct Loads {
    replicas: BTreeMap<i32, usize>,
    leaders: BTreeMap<i32, usize>,
}

impl Loads {
    fn count(&mut self, replicas: &[i32]) {
        for id in replicas {
            *self.replicas.entry(*id).or_default() += 1;
        }
        if let Some(first) = replicas.first() {
            *self.leaders.entry(*first).or_default() += 1;
        }
    }

    fn replicas(&self, id: i32) -> usize {
        self.replicas.get(&id).copied().unwrap_or(0)
    }

    fn leaders(&self, id: i32) -> usize {
        self.leaders.get(&id).copied().unwrap_or(0)
    }
}
