//! The finalized feature levels (KIP-584) this broker serves by: kept in the data directory
//! (standalone) or in the document every broker of a cluster shares ([`crate::shared_state`]),
//! changed by UpdateFeatures, read by ApiVersions and by every request's version check, which
//! is why each level is also held in an atomic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI16, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tributary_crds::features::{check_updates, FeatureLevels, FeatureUpdate, InvalidUpdate};

pub use tributary_crds::features::{GROUP_VERSION, SHARE_VERSION, TRANSACTION_VERSION};

use crate::shared_state::{attach, Shared};

/// The file a standalone broker keeps its levels in.
const FILE: &str = "features.json";

/// Why the levels could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// The update breaks Kafka's rules (INVALID_UPDATE_VERSION).
    #[error(transparent)]
    Invalid(#[from] InvalidUpdate),
    /// The levels could not be written (FEATURE_UPDATE_FAILED); nothing changed.
    #[error("cannot save the feature levels to {path}: {source}")]
    Save {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The shared document could not be changed (FEATURE_UPDATE_FAILED); nothing changed.
    #[error("changing the shared feature levels: {0}")]
    Shared(String),
    /// The saved levels could not be read.
    #[error(transparent)]
    Load(#[from] crate::fsutil::JsonFileError),
}

/// The cluster's finalized feature levels as this broker knows them.
pub struct Features {
    /// Where they persist on their own (standalone).
    path: Option<PathBuf>,
    /// Where they persist when shared (cluster mode); then the file is not used.
    shared: Option<Arc<dyn Shared<FeatureLevels>>>,
    levels: RwLock<FeatureLevels>,
    /// Each served feature's level, in the order of `tributary_crds::features::FEATURES`.
    fast: Vec<AtomicI16>,
    /// Serializes changes to the file.
    changing: Mutex<()>,
}

impl std::fmt::Debug for Features {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Features")
            .field("levels", &*self.levels.read())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Features {
    /// The levels saved in `data_dir` (a new data directory: a new cluster's), or with
    /// `shared` (cluster mode) those of the shared document from then on.
    pub fn open(
        data_dir: &Path,
        shared: Option<Arc<dyn Shared<FeatureLevels>>>,
    ) -> Result<Arc<Features>, FeatureError> {
        let (path, levels) = match &shared {
            Some(_) => (None, FeatureLevels::default()),
            None => {
                let path = data_dir.join(FILE);
                let levels = crate::fsutil::read_json_or_default(&path)?;
                (Some(path), levels)
            }
        };
        let features = Features::new(path, shared, levels);
        if let Some(shared) = &features.shared {
            attach(&features, shared, |me, levels| me.set(levels));
        }
        Ok(features)
    }

    fn new(
        path: Option<PathBuf>,
        shared: Option<Arc<dyn Shared<FeatureLevels>>>,
        levels: FeatureLevels,
    ) -> Arc<Features> {
        let features = Arc::new(Features {
            path,
            shared,
            levels: RwLock::new(FeatureLevels::default()),
            fast: tributary_crds::features::FEATURES
                .iter()
                .map(|_| AtomicI16::new(0))
                .collect(),
            changing: Mutex::new(()),
        });
        features.set(levels);
        features
    }

    fn set(&self, levels: FeatureLevels) {
        let finalized = levels.finalized();
        for (feature, fast) in tributary_crds::features::FEATURES.iter().zip(&self.fast) {
            let level = finalized.get(feature.name).copied().unwrap_or(0);
            fast.store(level, Ordering::Release);
        }
        *self.levels.write() = levels;
    }

    /// The finalized level of `name` (0: off or not served); cheap enough for every request.
    pub fn level(&self, name: &str) -> i16 {
        tributary_crds::features::FEATURES
            .iter()
            .zip(&self.fast)
            .find(|(feature, _)| feature.name == name)
            .map_or(0, |(_, fast)| fast.load(Ordering::Acquire))
    }

    /// The levels with their epoch.
    pub fn levels(&self) -> FeatureLevels {
        self.levels.read().clone()
    }

    /// Applies `updates` as Kafka's controller does, all or none; with `validate_only` only
    /// checks them. Shared levels are changed in the shared document, checked again against a
    /// newer version when another broker changed it first. Returns the levels now finalized.
    pub async fn update(
        &self,
        updates: &[FeatureUpdate],
        validate_only: bool,
    ) -> Result<FeatureLevels, FeatureError> {
        let changes = check_updates(&self.levels(), updates, false)?;
        if validate_only {
            return Ok(self.levels());
        }
        let Some(shared) = &self.shared else {
            return self.update_file(updates);
        };
        let refused: Mutex<Option<InvalidUpdate>> = Mutex::new(None);
        let written = shared
            .update(&|document: &mut FeatureLevels| {
                // Checked above; a newer version may have pinned or moved a feature since.
                match check_updates(document, updates, false) {
                    Ok(changes) => *document = document.with(&changes),
                    Err(invalid) => *refused.lock() = Some(invalid),
                }
            })
            .await
            .map_err(FeatureError::Shared)?;
        if let Some(invalid) = refused.into_inner() {
            return Err(invalid.into());
        }
        tracing::info!(?changes, epoch = written.epoch, "feature levels changed");
        self.set(written.clone());
        Ok(written)
    }

    fn update_file(&self, updates: &[FeatureUpdate]) -> Result<FeatureLevels, FeatureError> {
        let _changing = self.changing.lock();
        let current = self.levels();
        let changes = check_updates(&current, updates, false)?;
        let next = current.with(&changes);
        if let Some(path) = &self.path {
            crate::fsutil::write_json(path, &next).map_err(|source| FeatureError::Save {
                path: path.clone(),
                source,
            })?;
        }
        tracing::info!(?changes, epoch = next.epoch, "feature levels changed");
        self.set(next.clone());
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_crds::features::UpgradeType;

    fn off(name: &str) -> FeatureUpdate {
        FeatureUpdate {
            name: name.to_owned(),
            level: 0,
            upgrade: UpgradeType::SafeDowngrade,
        }
    }

    #[tokio::test]
    async fn levels_persist_in_the_data_directory_and_validate_only_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let features = Features::open(dir.path(), None).expect("open");
        assert_eq!(features.level(SHARE_VERSION), 1, "a new data directory");
        features
            .update(&[off(SHARE_VERSION)], true)
            .await
            .expect("validated");
        assert_eq!(features.level(SHARE_VERSION), 1);
        let written = features
            .update(&[off(SHARE_VERSION)], false)
            .await
            .expect("changed");
        assert_eq!((written.epoch, features.level(SHARE_VERSION)), (1, 0));
        assert_eq!(features.level(GROUP_VERSION), 1);

        let reopened = Features::open(dir.path(), None).expect("reopen");
        assert_eq!(reopened.level(SHARE_VERSION), 0);
        assert_eq!(reopened.levels().epoch, 1);
    }

    #[tokio::test]
    async fn a_refused_update_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let features = Features::open(dir.path(), None).expect("open");
        let err = features
            .update(
                &[
                    off(GROUP_VERSION),
                    FeatureUpdate {
                        name: SHARE_VERSION.into(),
                        level: 0,
                        upgrade: UpgradeType::Upgrade,
                    },
                ],
                false,
            )
            .await
            .expect_err("refused");
        assert!(matches!(err, FeatureError::Invalid(_)), "{err}");
        assert_eq!(features.level(GROUP_VERSION), 1);
        assert!(!dir.path().join(FILE).exists());
    }
}
