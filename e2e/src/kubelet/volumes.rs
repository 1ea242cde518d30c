//! A pod's volumes on the host, and the mapping of the paths the pod's spec uses inside its
//! containers to those host directories.
//!
//! Each volume is a host directory: `emptyDir`, `configMap`, `secret`, `downwardAPI` and
//! `projected` (of those) under the pod's directory (removed with the pod), a
//! `persistentVolumeClaim` at its bound PersistentVolume's `hostPath` (kept as long as the
//! claim), a `hostPath` at that path. Other volume types fail the pod's start.
//!
//! **What is rewritten.** Containers run as host processes, so the paths their spec names
//! (volumeMounts' `mountPath`, plus `subPath`) do not exist: [`Mounts::rewrite`] replaces every
//! occurrence of a mount path that starts a path (at the start of the text or after a space,
//! `=`, `:`, `,`, `;`, a quote or `(`) and ends one (at the end of the text, or before `/`, a
//! space, `,`, `;`, `:`, a quote or `)`) with its host directory, longest mount path first, in:
//! the container's command and args (after `$(VAR)` expansion), its env values, its
//! `workingDir`, and the UTF-8 text of the files written for `configMap`, `secret` and
//! `projected` volumes (`binaryData` is left alone). Nothing else is: a path a process builds
//! at run time from pieces is not seen. A volume mounted at `/tmp` also becomes the process's
//! `TMPDIR`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume,
};

use super::env::{self, Sources};

/// Why a pod's volumes cannot be set up (the pod waits in ContainerCreating and retries).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A referenced object is missing or not ready.
    #[error("volume {volume:?}: {why}")]
    NotReady {
        /// The volume's name.
        volume: String,
        /// What it waits for.
        why: String,
    },
    /// The volume type is not modelled.
    #[error("volume {0:?}: only emptyDir, configMap, secret, downwardAPI, projected, persistentVolumeClaim and hostPath volumes are supported")]
    Unsupported(String),
    /// Writing its files failed.
    #[error("volume {volume:?}: cannot write {}: {source}", path.display())]
    Io {
        /// The volume's name.
        volume: String,
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// What a pod's volumes read from the API, fetched before they are set up.
#[derive(Default)]
pub(crate) struct Objects {
    pub(crate) config_maps: BTreeMap<String, ConfigMap>,
    pub(crate) secrets: BTreeMap<String, Secret>,
    pub(crate) claims: BTreeMap<String, PersistentVolumeClaim>,
    pub(crate) volumes: BTreeMap<String, PersistentVolume>,
}

/// Mount paths and the host directories they stand for.
#[derive(Clone, Debug, Default)]
pub struct Mounts {
    /// (mount path, host path), longest mount path first.
    entries: Vec<(String, PathBuf)>,
}

/// Characters that may precede a path.
const BEFORE: &[char] = &[' ', '\t', '\n', '=', ':', ',', ';', '"', '\'', '('];
/// Characters that may follow a path.
const AFTER: &[char] = &['/', ' ', '\t', '\n', ',', ';', ':', '"', '\'', ')'];

impl Mounts {
    /// A mapping from (mount path, host path) pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, PathBuf)>) -> Self {
        let mut entries: Vec<(String, PathBuf)> = pairs
            .into_iter()
            .map(|(m, h)| (m.trim_end_matches('/').to_owned(), h))
            .filter(|(m, _)| !m.is_empty())
            .collect();
        entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        entries.dedup_by(|a, b| a.0 == b.0);
        Mounts { entries }
    }

    /// These mounts and `mount_path` mounted from `host`.
    pub fn with(self, mount_path: &str, host: PathBuf) -> Self {
        Mounts::new(
            self.entries
                .into_iter()
                .chain([(mount_path.to_owned(), host)]),
        )
    }

    /// `text` with every mount path that starts and ends a path replaced by its host path.
    pub fn rewrite(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        'scan: while i < text.len() {
            let starts = i == 0 || text[..i].ends_with(BEFORE);
            if starts && text[i..].starts_with('/') {
                for (mount, host) in &self.entries {
                    if text[i..].starts_with(mount.as_str()) {
                        let end = i + mount.len();
                        let ends = end == text.len() || text[end..].starts_with(AFTER);
                        if ends {
                            out.push_str(&host.to_string_lossy());
                            i = end;
                            continue 'scan;
                        }
                    }
                }
            }
            let Some(c) = text[i..].chars().next() else {
                break;
            };
            out.push(c);
            i += c.len_utf8();
        }
        out
    }

    /// The host directory standing for `/tmp`, if a volume is mounted there.
    pub fn tmp(&self) -> Option<&Path> {
        self.entries
            .iter()
            .find(|(m, _)| m == "/tmp")
            .map(|(_, h)| h.as_path())
    }
}

/// The host directory of each of the pod's volumes.
pub(crate) fn host_dirs(
    pod: &Pod,
    volumes_root: &Path,
    objects: &Objects,
) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let mut dirs = BTreeMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let dir = if let Some(claim) = &v.persistent_volume_claim {
            claim_dir(&v.name, &claim.claim_name, objects)?
        } else if let Some(hp) = &v.host_path {
            PathBuf::from(&hp.path)
        } else if v.empty_dir.is_some()
            || v.config_map.is_some()
            || v.secret.is_some()
            || v.downward_api.is_some()
            || v.projected.is_some()
        {
            volumes_root.join(&v.name)
        } else {
            return Err(VolumeError::Unsupported(v.name.clone()));
        };
        dirs.insert(v.name.clone(), dir);
    }
    Ok(dirs)
}

fn claim_dir(volume: &str, claim: &str, objects: &Objects) -> Result<PathBuf, VolumeError> {
    let not_ready = |why: String| VolumeError::NotReady {
        volume: volume.to_owned(),
        why,
    };
    let pvc = objects
        .claims
        .get(claim)
        .ok_or_else(|| not_ready(format!("persistentvolumeclaim {claim:?} not found")))?;
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|_| pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
        .ok_or_else(|| not_ready(format!("persistentvolumeclaim {claim:?} is not bound")))?;
    let pv = objects
        .volumes
        .get(&pv_name)
        .ok_or_else(|| not_ready(format!("persistentvolume {pv_name:?} not found")))?;
    pv.spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| PathBuf::from(&h.path))
        .ok_or_else(|| not_ready(format!("persistentvolume {pv_name:?} has no hostPath")))
}

/// The mounts of the pod's containers (the first container to mount a path wins).
pub(crate) fn mounts(pod: &Pod, dirs: &BTreeMap<String, PathBuf>) -> Mounts {
    let pairs = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter_map(|m| {
            let mut host = dirs.get(&m.name)?.clone();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                host = host.join(sub);
            }
            Some((m.mount_path.clone(), host))
        });
    Mounts::new(pairs)
}

/// Files of one volume: (relative path, bytes, whether it is text to rewrite).
type Files = Vec<(String, Vec<u8>, bool)>;

fn pick(items: Option<&Vec<KeyToPath>>, all: Vec<(String, Vec<u8>, bool)>) -> Files {
    match items {
        None => all,
        Some(items) => items
            .iter()
            .filter_map(|it| {
                let (_, data, text) = all.iter().find(|(k, _, _)| *k == it.key)?;
                Some((it.path.clone(), data.clone(), *text))
            })
            .collect(),
    }
}

/// Where a volume's files come from.
#[derive(Clone, Copy)]
enum Source {
    ConfigMap,
    Secret,
}

/// A ConfigMap's keys as files (`data` is text, `binaryData` is not).
fn config_map_entries(cm: &ConfigMap) -> Files {
    let text = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes(), true));
    let binary = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone(), false));
    text.chain(binary).collect()
}

/// A Secret's keys as files (text when they are UTF-8).
fn secret_entries(secret: &Secret) -> Files {
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone(), std::str::from_utf8(&v.0).is_ok()));
    let strings = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes(), true));
    data.chain(strings).collect()
}

/// The files of ConfigMap or Secret `name` for `volume`: all its keys, or the `items` picked; a
/// missing object is an error unless optional.
fn object_files(
    volume: &str,
    source: Source,
    name: &str,
    items: Option<&Vec<KeyToPath>>,
    optional: bool,
    objects: &Objects,
) -> Result<Files, VolumeError> {
    let (kind, entries) = match source {
        Source::ConfigMap => (
            "configmap",
            objects.config_maps.get(name).map(config_map_entries),
        ),
        Source::Secret => ("secret", objects.secrets.get(name).map(secret_entries)),
    };
    match entries {
        Some(all) => Ok(pick(items, all)),
        None if optional => Ok(Vec::new()),
        None => Err(VolumeError::NotReady {
            volume: volume.to_owned(),
            why: format!("{kind} {name:?} not found"),
        }),
    }
}

fn downward_files(
    volume: &str,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
    src: &Sources<'_>,
) -> Result<Files, VolumeError> {
    items
        .iter()
        .map(|f| {
            let value = match &f.field_ref {
                Some(r) => env::field(src, &r.field_path).map_err(|e| VolumeError::NotReady {
                    volume: volume.to_owned(),
                    why: e.to_string(),
                })?,
                None => return Err(VolumeError::Unsupported(volume.to_owned())),
            };
            Ok((f.path.clone(), value.into_bytes(), false))
        })
        .collect()
}

/// The files a volume holds, or nothing for directories the pod fills itself.
fn files(v: &Volume, objects: &Objects, src: &Sources<'_>) -> Result<Files, VolumeError> {
    let of = |source, name: &str, items: Option<&Vec<KeyToPath>>, optional: Option<bool>| {
        object_files(
            &v.name,
            source,
            name,
            items,
            optional == Some(true),
            objects,
        )
    };
    let downward = |items: Option<&Vec<k8s_openapi::api::core::v1::DownwardAPIVolumeFile>>| {
        downward_files(&v.name, items.map(Vec::as_slice).unwrap_or_default(), src)
    };
    if let Some(cm) = &v.config_map {
        return of(Source::ConfigMap, &cm.name, cm.items.as_ref(), cm.optional);
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        return of(Source::Secret, &name, s.items.as_ref(), s.optional);
    }
    if let Some(d) = &v.downward_api {
        return downward(d.items.as_ref());
    }
    let mut out = Vec::new();
    for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
        if let Some(cm) = &source.config_map {
            out.extend(of(
                Source::ConfigMap,
                &cm.name,
                cm.items.as_ref(),
                cm.optional,
            )?);
        }
        if let Some(s) = &source.secret {
            out.extend(of(Source::Secret, &s.name, s.items.as_ref(), s.optional)?);
        }
        if let Some(d) = &source.downward_api {
            out.extend(downward(d.items.as_ref())?);
        }
    }
    Ok(out)
}

/// Creates every volume directory and writes the files of configMap, secret, downwardAPI and
/// projected volumes (text rewritten through `mounts`).
pub(crate) fn materialize(
    pod: &Pod,
    dirs: &BTreeMap<String, PathBuf>,
    mounts: &Mounts,
    objects: &Objects,
    src: &Sources<'_>,
) -> Result<(), VolumeError> {
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(dir) = dirs.get(&v.name) else {
            continue;
        };
        let io = |path: &Path, source| VolumeError::Io {
            volume: v.name.clone(),
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for (rel, data, text) in files(v, objects, src)? {
            // Keys are file names; a `path` may not climb out of the volume.
            if rel.split('/').any(|seg| seg == "..") || rel.starts_with('/') {
                continue;
            }
            let path = dir.join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            let bytes = match (text, String::from_utf8(data.clone())) {
                (true, Ok(s)) => mounts.rewrite(&s).into_bytes(),
                _ => data,
            };
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

/// Rewrites the files of the pod's configMap, secret and projected volumes whose objects
/// changed, as kubelet's periodic sync does (so a rotated Secret reaches running containers):
/// a changed file is replaced atomically (written beside it, then renamed over it). As in
/// Kubernetes, volumes mounted only through `subPath` are not updated; unlike it, keys removed
/// from an object keep their files, and an object that cannot be read now leaves its files as
/// they were. Returns how many files changed.
pub(crate) fn refresh(
    pod: &Pod,
    dirs: &BTreeMap<String, PathBuf>,
    mounts: &Mounts,
    objects: &Objects,
    src: &Sources<'_>,
) -> Result<usize, VolumeError> {
    let containers = || pod.spec.iter().flat_map(|s| s.containers.iter());
    let mut changed = 0;
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let synced = v.config_map.is_some() || v.secret.is_some() || v.projected.is_some();
        let whole = containers()
            .flat_map(|c| c.volume_mounts.iter().flatten())
            .any(|m| m.name == v.name && m.sub_path.as_deref().is_none_or(str::is_empty));
        let (Some(dir), true, true) = (dirs.get(&v.name), synced, whole) else {
            continue;
        };
        let Ok(files) = files(v, objects, src) else {
            continue;
        };
        let io = |path: &Path, source| VolumeError::Io {
            volume: v.name.clone(),
            path: path.to_owned(),
            source,
        };
        for (rel, data, text) in files {
            if rel.split('/').any(|seg| seg == "..") || rel.starts_with('/') {
                continue;
            }
            let path = dir.join(&rel);
            let bytes = match (text, String::from_utf8(data.clone())) {
                (true, Ok(s)) => mounts.rewrite(&s).into_bytes(),
                _ => data,
            };
            if std::fs::read(&path).is_ok_and(|old| old == bytes) {
                continue;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            let staged = dir.join(format!(".{}.refresh", rel.replace('/', "_")));
            std::fs::write(&staged, &bytes).map_err(|e| io(&staged, e))?;
            std::fs::rename(&staged, &path).map_err(|e| io(&path, e))?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "creds"},
            "data": {"key": base64_of(value)},
        }))
        .unwrap_or_default()
    }

    fn base64_of(value: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(value)
    }

    #[test]
    fn a_changed_secret_reaches_whole_volume_mounts_but_not_sub_path_ones() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "volumeMounts": [
                    {"name": "whole", "mountPath": "/etc/whole"},
                    {"name": "sub", "mountPath": "/etc/sub/key", "subPath": "key"},
                ]}],
                "volumes": [
                    {"name": "whole", "secret": {"secretName": "creds"}},
                    {"name": "sub", "secret": {"secretName": "creds"}},
                ],
            },
        }))
        .unwrap_or_default();
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut objects = Objects::default();
        objects.secrets.insert("creds".to_owned(), secret("old"));
        let dirs = host_dirs(&pod, root.path(), &objects).unwrap_or_else(|e| panic!("{e}"));
        let mounts = mounts(&pod, &dirs);
        let sources = |objects: &Objects| {
            refresh(
                &pod,
                &dirs,
                &mounts,
                objects,
                &Sources {
                    pod: &pod,
                    pod_ip: "10.0.0.1",
                    host_ip: "10.0.0.254",
                    config_maps: &objects.config_maps,
                    secrets: &objects.secrets,
                },
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let src = Sources {
            pod: &pod,
            pod_ip: "10.0.0.1",
            host_ip: "10.0.0.254",
            config_maps: &objects.config_maps,
            secrets: &objects.secrets,
        };
        materialize(&pod, &dirs, &mounts, &objects, &src).unwrap_or_else(|e| panic!("{e}"));
        let read =
            |volume: &str| std::fs::read_to_string(root.path().join(volume).join("key")).ok();
        assert_eq!(sources(&objects), 0, "nothing changed yet");

        objects.secrets.insert("creds".to_owned(), secret("new"));
        assert_eq!(sources(&objects), 1);
        assert_eq!(read("whole").as_deref(), Some("new"));
        assert_eq!(
            read("sub").as_deref(),
            Some("old"),
            "subPath mounts are not updated"
        );

        // An object that cannot be read now leaves the files as they were.
        assert_eq!(sources(&Objects::default()), 0);
        assert_eq!(read("whole").as_deref(), Some("new"));
    }

    #[test]
    fn mount_paths_are_rewritten_only_where_they_start_and_end_a_path() {
        let m = Mounts::new([
            ("/var/lib/tributary".to_owned(), PathBuf::from("/h/pv-1")),
            ("/etc/tributary".to_owned(), PathBuf::from("/h/pod/config")),
            ("/tmp".to_owned(), PathBuf::from("/h/pod/tmp")),
        ]);
        assert_eq!(
            m.rewrite("log.dirs=/var/lib/tributary/data"),
            "log.dirs=/h/pv-1/data"
        );
        assert_eq!(
            m.rewrite("/etc/tributary/server.properties"),
            "/h/pod/config/server.properties"
        );
        assert_eq!(
            m.rewrite("--x=/tmp,/tmpfoo,/tmp"),
            "--x=/h/pod/tmp,/tmpfoo,/h/pod/tmp"
        );
        assert_eq!(m.rewrite("http://host/tmp/x"), "http://host/tmp/x");
        assert_eq!(m.rewrite("PLAIN://0.0.0.0:9092"), "PLAIN://0.0.0.0:9092");
        assert_eq!(m.tmp(), Some(Path::new("/h/pod/tmp")));
    }
}
