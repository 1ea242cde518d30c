//! Feature levels (KIP-584): the features a cluster runs at, which clients read from
//! ApiVersions, `kafka-features.sh` changes with UpdateFeatures, and a KafkaCluster pins with
//! `spec.features`. The brokers and the operator both decide with this module, so a level one
//! of them accepts is one the other serves.
//!
//! Of the features Kafka 4.3 finalizes, three mean something here. The others are left out,
//! as a broker leaves out a feature it cannot run: `metadata.version` and `kraft.version`
//! version the KRaft metadata log and quorum, which a cluster of Kubernetes objects has not;
//! `eligible.leader.replicas.version` (KIP-966) and `streams.version` (KIP-1071) gate
//! mechanisms not implemented.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One feature this cluster can run, with the levels it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Kafka's name of the feature.
    pub name: &'static str,
    /// The lowest level served (0: the feature can be switched off).
    pub min: i16,
    /// The highest level served.
    pub max: i16,
    /// The level a new cluster starts at, as a new Kafka 4.3 cluster would where the level
    /// is served.
    pub initial: i16,
}

/// `group.version`: 1 serves the consumer group protocol (KIP-848).
pub const GROUP_VERSION: &str = "group.version";
/// `share.version`: 1 serves share groups (KIP-932).
pub const SHARE_VERSION: &str = "share.version";
/// `transaction.version`: 1 is the classic transaction protocol with flexible coordinator
/// records; 2 is transactions v2 (KIP-890 part 2: partitions added by the produce itself, an
/// epoch bump at every transaction end), advertised to clients only at 2.
pub const TRANSACTION_VERSION: &str = "transaction.version";

/// Every feature served, by name.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: GROUP_VERSION,
        min: 0,
        max: 1,
        initial: 1,
    },
    Feature {
        name: SHARE_VERSION,
        min: 0,
        max: 1,
        initial: 1,
    },
    Feature {
        name: TRANSACTION_VERSION,
        min: 0,
        max: 2,
        initial: 2,
    },
];

/// The feature named `name`, if served.
pub fn feature(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.name == name)
}

/// The finalized levels: the document brokers share (cluster) or keep in their data
/// directory (standalone). A level of 0 is not stored (the feature is off), as Kafka leaves
/// it out of the finalized list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureLevels {
    /// Raised by every change, so a client that asked two brokers keeps the newer answer
    /// (ApiVersions' FinalizedFeaturesEpoch). 0: never written, every feature at its initial
    /// level.
    #[serde(default)]
    pub epoch: i64,
    /// Each finalized feature's level, once written.
    #[serde(default)]
    pub levels: BTreeMap<String, i16>,
    /// The features a KafkaCluster's `spec.features` sets: changed only through it.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pinned: BTreeSet<String>,
}

impl FeatureLevels {
    /// Each served feature's finalized level, 0 when off.
    pub fn finalized(&self) -> BTreeMap<&'static str, i16> {
        FEATURES
            .iter()
            .map(|f| {
                let level = if self.epoch == 0 {
                    f.initial
                } else {
                    self.levels.get(f.name).copied().unwrap_or(0)
                };
                (f.name, level)
            })
            .collect()
    }

    /// The finalized level of `name` (0 when off or not served).
    pub fn level(&self, name: &str) -> i16 {
        self.finalized().get(name).copied().unwrap_or(0)
    }

    /// These levels with `changes` applied (levels of 0 dropped) and the epoch raised when
    /// anything changed.
    pub fn with(&self, changes: &BTreeMap<String, i16>) -> FeatureLevels {
        let mut levels: BTreeMap<String, i16> = self
            .finalized()
            .into_iter()
            .map(|(name, level)| (name.to_owned(), level))
            .collect();
        for (name, level) in changes {
            levels.insert(name.clone(), *level);
        }
        levels.retain(|_, level| *level > 0);
        let unchanged = self.epoch > 0 && levels == self.levels;
        FeatureLevels {
            epoch: if unchanged {
                self.epoch
            } else {
                self.epoch + 1
            },
            levels,
            pinned: self.pinned.clone(),
        }
    }
}

/// Holds `document` at a KafkaCluster's `spec.features` (checked with [`check_pinned`]):
/// each named feature at its level, and only those pinned. True when that changed anything.
pub fn pin(document: &mut FeatureLevels, spec: &BTreeMap<String, i16>) -> bool {
    let changes: BTreeMap<String, i16> = spec
        .iter()
        .filter(|(name, level)| document.level(name) != **level)
        .map(|(name, level)| (name.clone(), *level))
        .collect();
    let pinned: BTreeSet<String> = spec.keys().cloned().collect();
    if changes.is_empty() && pinned == document.pinned {
        return false;
    }
    let mut next = document.with(&changes);
    next.pinned = pinned;
    *document = next;
    true
}

/// How an update may move a level (UpdateFeatures' UpgradeType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    /// Only up (or unchanged).
    Upgrade,
    /// Down, losing nothing.
    SafeDowngrade,
    /// Down, possibly losing state.
    UnsafeDowngrade,
    /// A code this cluster does not know.
    Unknown(i8),
}

impl UpgradeType {
    /// The type of UpdateFeatures' code (v1+).
    pub fn from_code(code: i8) -> UpgradeType {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            other => UpgradeType::Unknown(other),
        }
    }
}

/// One requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureUpdate {
    /// The feature's name.
    pub name: String,
    /// The new level; 0 switches it off.
    pub level: i16,
    /// How the level may move.
    pub upgrade: UpgradeType,
}

/// Why an update was refused (Kafka's INVALID_UPDATE_VERSION, with its message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid update version {level} for feature {name}. {reason}")]
pub struct InvalidUpdate {
    /// The feature.
    pub name: String,
    /// The level asked for.
    pub level: i16,
    /// Why not.
    pub reason: String,
}

/// Checks `updates` against `current` as Kafka's controller does (every update or none):
/// a known upgrade type, a level the cluster serves, a downgrade only when the type allows
/// it and a downgrade type only for a lower level, and no feature a KafkaCluster pins.
/// Returns the levels to set.
pub fn check_updates(
    current: &FeatureLevels,
    updates: &[FeatureUpdate],
    allow_pinned: bool,
) -> Result<BTreeMap<String, i16>, InvalidUpdate> {
    let finalized = current.finalized();
    let mut changes = BTreeMap::new();
    for update in updates {
        let refuse = |reason: &str| InvalidUpdate {
            name: update.name.clone(),
            level: update.level,
            reason: reason.to_owned(),
        };
        if let UpgradeType::Unknown(_) = update.upgrade {
            return Err(refuse(
                "The controller does not support the given upgrade type.",
            ));
        }
        if update.level < 0 {
            return Err(refuse("A feature version cannot be less than 0."));
        }
        let Some(feature) = feature(&update.name) else {
            if update.level == 0 {
                // Switching off what is not served changes nothing (Kafka accepts it).
                continue;
            }
            return Err(refuse("This cluster does not support this feature."));
        };
        if update.level < feature.min || update.level > feature.max {
            return Err(refuse(&format!(
                "This cluster only supports versions {}-{}.",
                feature.min, feature.max
            )));
        }
        if !allow_pinned && current.pinned.contains(feature.name) {
            return Err(refuse(
                "The KafkaCluster's spec.features sets this feature: change it there.",
            ));
        }
        let now = finalized.get(feature.name).copied().unwrap_or(0);
        if update.level < now && update.upgrade == UpgradeType::Upgrade {
            return Err(refuse(
                "Can't downgrade the version of this feature without setting the upgrade type \
                 to either safe or unsafe downgrade.",
            ));
        }
        if update.level > now && update.upgrade != UpgradeType::Upgrade {
            return Err(refuse("Can't downgrade to a newer version."));
        }
        changes.insert(feature.name.to_owned(), update.level);
    }
    Ok(changes)
}

/// The problem with a KafkaCluster's `spec.features`, if any: every name served and every
/// level within its range.
pub fn check_pinned(levels: &BTreeMap<String, i16>) -> Result<(), String> {
    for (name, level) in levels {
        let Some(feature) = feature(name) else {
            let served: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
            return Err(format!(
                "spec.features: {name} is not a feature this cluster serves ({})",
                served.join(", ")
            ));
        };
        if *level < feature.min || *level > feature.max {
            return Err(format!(
                "spec.features: {name} must be between {} and {}, not {level}",
                feature.min, feature.max
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, level: i16, upgrade: UpgradeType) -> FeatureUpdate {
        FeatureUpdate {
            name: name.to_owned(),
            level,
            upgrade,
        }
    }

    #[test]
    fn a_new_cluster_runs_every_feature_at_its_initial_level() {
        let fresh = FeatureLevels::default();
        assert_eq!(fresh.level(GROUP_VERSION), 1);
        assert_eq!(fresh.level(SHARE_VERSION), 1);
        assert_eq!(fresh.level(TRANSACTION_VERSION), 2);
        assert_eq!(fresh.level("metadata.version"), 0);
    }

    #[test]
    fn a_downgrade_needs_a_downgrade_type_and_a_downgrade_type_a_lower_level() {
        let fresh = FeatureLevels::default();
        let err = check_updates(
            &fresh,
            &[update(SHARE_VERSION, 0, UpgradeType::Upgrade)],
            false,
        )
        .expect_err("a plain downgrade is refused");
        assert!(err
            .to_string()
            .starts_with("Invalid update version 0 for feature share.version. Can't downgrade"));
        let off = check_updates(
            &fresh,
            &[update(SHARE_VERSION, 0, UpgradeType::SafeDowngrade)],
            false,
        )
        .expect("a safe downgrade");
        let down = fresh.with(&off);
        assert_eq!((down.level(SHARE_VERSION), down.epoch), (0, 1));
        assert!(!down.levels.contains_key(SHARE_VERSION));
        assert_eq!(down.level(GROUP_VERSION), 1, "the others keep their level");

        let err = check_updates(
            &down,
            &[update(SHARE_VERSION, 1, UpgradeType::UnsafeDowngrade)],
            false,
        )
        .expect_err("a downgrade type cannot raise");
        assert!(err.reason.contains("newer version"), "{err}");
        let up = check_updates(
            &down,
            &[update(SHARE_VERSION, 1, UpgradeType::Upgrade)],
            false,
        )
        .expect("an upgrade");
        assert_eq!(down.with(&up).level(SHARE_VERSION), 1);
        assert_eq!(down.with(&up).epoch, 2);
    }

    #[test]
    fn levels_outside_the_served_range_and_unknown_features_are_refused() {
        let fresh = FeatureLevels::default();
        for (name, level, reason) in [
            (SHARE_VERSION, 2, "only supports versions 0-1"),
            (TRANSACTION_VERSION, 3, "only supports versions 0-2"),
            ("metadata.version", 27, "does not support this feature"),
            (GROUP_VERSION, -1, "cannot be less than 0"),
        ] {
            let err = check_updates(&fresh, &[update(name, level, UpgradeType::Upgrade)], false)
                .expect_err(name);
            assert!(err.reason.contains(reason), "{name}: {err}");
        }
        let err = check_updates(
            &fresh,
            &[update(GROUP_VERSION, 1, UpgradeType::Unknown(9))],
            false,
        )
        .expect_err("unknown type");
        assert!(err.reason.contains("upgrade type"), "{err}");
        // Switching off a feature not served changes nothing.
        let none = check_updates(
            &fresh,
            &[update("streams.version", 0, UpgradeType::SafeDowngrade)],
            false,
        )
        .expect("accepted");
        assert!(none.is_empty());
    }

    #[test]
    fn one_bad_update_refuses_all_and_pinned_features_change_only_through_the_spec() {
        let fresh = FeatureLevels::default();
        let err = check_updates(
            &fresh,
            &[
                update(GROUP_VERSION, 0, UpgradeType::SafeDowngrade),
                update(SHARE_VERSION, 5, UpgradeType::Upgrade),
            ],
            false,
        )
        .expect_err("refused whole");
        assert_eq!(err.name, SHARE_VERSION);

        let pinned = FeatureLevels {
            pinned: BTreeSet::from([SHARE_VERSION.to_owned()]),
            ..FeatureLevels::default()
        };
        let down = [update(SHARE_VERSION, 0, UpgradeType::SafeDowngrade)];
        let err = check_updates(&pinned, &down, false).expect_err("pinned");
        assert!(err.reason.contains("spec.features"), "{err}");
        assert!(check_updates(&pinned, &down, true).is_ok());
    }

    #[test]
    fn an_unchanged_write_keeps_the_epoch() {
        let once = FeatureLevels::default().with(&BTreeMap::new());
        assert_eq!(once.epoch, 1, "the first write records the initial levels");
        assert_eq!(once.with(&BTreeMap::new()).epoch, 1);
        assert_eq!(
            once.with(&BTreeMap::from([(GROUP_VERSION.to_owned(), 1)]))
                .epoch,
            1
        );
    }

    #[test]
    fn a_spec_holds_its_features_and_only_those() {
        let mut document = FeatureLevels::default();
        let spec = BTreeMap::from([(SHARE_VERSION.to_owned(), 0)]);
        assert!(pin(&mut document, &spec));
        assert_eq!(document.level(SHARE_VERSION), 0);
        assert_eq!(document.level(GROUP_VERSION), 1);
        assert_eq!(document.epoch, 1);
        assert_eq!(document.pinned, BTreeSet::from([SHARE_VERSION.to_owned()]));
        assert!(!pin(&mut document, &spec), "held already");

        // Unpinned, the level stays where it is and UpdateFeatures may move it again.
        assert!(pin(&mut document, &BTreeMap::new()));
        assert_eq!((document.level(SHARE_VERSION), document.epoch), (0, 1));
        assert!(document.pinned.is_empty());
    }

    #[test]
    fn a_spec_names_only_served_features_at_served_levels() {
        assert!(check_pinned(&BTreeMap::from([(SHARE_VERSION.to_owned(), 0)])).is_ok());
        let err = check_pinned(&BTreeMap::from([("kraft.version".to_owned(), 1)]))
            .expect_err("not served");
        assert!(err.contains("kraft.version"), "{err}");
        let err =
            check_pinned(&BTreeMap::from([(GROUP_VERSION.to_owned(), 3)])).expect_err("range");
        assert!(err.contains("between 0 and 1"), "{err}");
    }
}
