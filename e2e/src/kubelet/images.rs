//! The kubelet stand-in's "image store": which local binary runs a container image. An entry
//! maps an image repository (any tag or digest) to a binary on the host and to the image's
//! ENTRYPOINT and CMD, so `command` and `args` keep their Kubernetes meaning: `command`
//! replaces the entrypoint (its first word must be the image's entrypoint path or its file
//! name), `args` replace CMD.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The binary on the host that runs as the image's entrypoint.
    pub binary: PathBuf,
    /// The entrypoint's path inside the image (as in its Dockerfile's ENTRYPOINT).
    pub entrypoint: String,
    /// The image's CMD: arguments used when the container gives neither command nor args.
    pub cmd: Vec<String>,
}

/// Why a container's command cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image is not in the table (the kubelet reports ErrImagePull).
    #[error("image {0:?} is not in the kubelet stand-in's image table (add it with --image REPOSITORY=BINARY)")]
    Unknown(String),
    /// The command names an executable the image does not have.
    #[error("exec: {0:?}: executable file not found in the image")]
    NoExecutable(String),
    /// An entry of `--image` is not `REPOSITORY=BINARY`.
    #[error("image mapping {0:?} is not REPOSITORY=BINARY[:ENTRYPOINT]")]
    BadEntry(String),
}

/// Image repository to local binary.
#[derive(Clone, Debug, Default)]
pub struct ImageTable {
    entries: BTreeMap<String, Image>,
}

/// The chart's images, with the entrypoints of `broker/Dockerfile` and `operator/Dockerfile`,
/// and the schema registry's (`/usr/local/bin/tributary-schema-registry`).
pub const TRIBUTARY_IMAGES: &[(&str, &str)] = &[
    ("ghcr.io/tributary-dev/tributary-broker", "tributary-broker"),
    (
        "ghcr.io/tributary-dev/tributary-operator",
        "tributary-operator",
    ),
    // The schema registry a KafkaCluster's spec.schemaRegistry runs (crate tributary-registry).
    (
        "ghcr.io/tributary-dev/tributary-schema-registry",
        "tributary-schema-registry",
    ),
];

/// An image reference without its tag or digest.
pub fn repository(image: &str) -> &str {
    let no_digest = image.split_once('@').map_or(image, |(r, _)| r);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

impl ImageTable {
    /// The chart's images run from `<bin_dir>/tributary-broker` and
    /// `<bin_dir>/tributary-operator` (e.g. `target/debug`).
    pub fn tributary(bin_dir: &Path) -> Self {
        let mut table = ImageTable::default();
        for (repo, bin) in TRIBUTARY_IMAGES {
            table.insert(
                repo,
                Image {
                    binary: bin_dir.join(bin),
                    entrypoint: format!("/usr/local/bin/{bin}"),
                    cmd: Vec::new(),
                },
            );
        }
        table
    }

    /// Adds or replaces the image of `repository`.
    pub fn insert(&mut self, repository: &str, image: Image) {
        self.entries.insert(repository.to_owned(), image);
    }

    /// Adds `REPOSITORY=BINARY[:ENTRYPOINT]` (the entrypoint defaults to
    /// `/usr/local/bin/<binary file name>`).
    pub fn add_entry(&mut self, entry: &str) -> Result<(), ImageError> {
        let bad = || ImageError::BadEntry(entry.to_owned());
        let (repo, rest) = entry.split_once('=').ok_or_else(bad)?;
        let (binary, entrypoint) = match rest.split_once(':') {
            Some((b, e)) => (PathBuf::from(b), e.to_owned()),
            None => {
                let b = PathBuf::from(rest);
                let file = b
                    .file_name()
                    .ok_or_else(bad)?
                    .to_string_lossy()
                    .into_owned();
                (b, format!("/usr/local/bin/{file}"))
            }
        };
        if repo.is_empty() {
            return Err(bad());
        }
        self.insert(
            repository(repo),
            Image {
                binary,
                entrypoint,
                cmd: Vec::new(),
            },
        );
        Ok(())
    }

    /// The image `reference` runs as.
    pub fn resolve(&self, reference: &str) -> Result<&Image, ImageError> {
        self.entries
            .get(repository(reference))
            .ok_or_else(|| ImageError::Unknown(reference.to_owned()))
    }

    /// The binaries of every image, to build or check before starting.
    pub fn binaries(&self) -> impl Iterator<Item = &Path> {
        self.entries.values().map(|i| i.binary.as_path())
    }
}

impl Image {
    /// The host executable and its arguments for a container's `command` and `args`, as a
    /// container runtime combines them with the image's ENTRYPOINT and CMD.
    pub fn argv(
        &self,
        command: Option<&[String]>,
        args: Option<&[String]>,
    ) -> Result<(PathBuf, Vec<String>), ImageError> {
        let argv: Vec<String> = match (command, args) {
            (Some(c), a) if !c.is_empty() => {
                c.iter().chain(a.unwrap_or_default()).cloned().collect()
            }
            (_, Some(a)) => std::iter::once(self.entrypoint.clone())
                .chain(a.iter().cloned())
                .collect(),
            (_, None) => std::iter::once(self.entrypoint.clone())
                .chain(self.cmd.iter().cloned())
                .collect(),
        };
        let exe = argv.first().cloned().unwrap_or_default();
        let entry_name = Path::new(&self.entrypoint).file_name();
        if exe != self.entrypoint && Path::new(&exe).file_name() != entry_name {
            return Err(ImageError::NoExecutable(exe));
        }
        Ok((self.binary.clone(), argv.into_iter().skip(1).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_drop_tags_and_digests_but_not_registry_ports() {
        assert_eq!(repository("ghcr.io/a/b:0.1.0"), "ghcr.io/a/b");
        assert_eq!(repository("localhost:5000/a/b"), "localhost:5000/a/b");
        assert_eq!(
            repository("localhost:5000/a/b:dev@sha256:00"),
            "localhost:5000/a/b"
        );
    }

    #[test]
    fn command_replaces_the_entrypoint_and_args_the_cmd() {
        let table = ImageTable::tributary(Path::new("/t"));
        let image = table
            .resolve("ghcr.io/tributary-dev/tributary-broker:0.1.0")
            .expect("known");
        let args = vec!["--config".to_owned(), "/etc/x".to_owned()];
        let (bin, argv) = image.argv(None, Some(&args)).expect("runs");
        assert_eq!(bin, Path::new("/t/tributary-broker"));
        assert_eq!(argv, args);
        let cmd = vec!["tributary-broker".to_owned(), "--help".to_owned()];
        assert_eq!(
            image.argv(Some(&cmd), None).expect("by name").1,
            vec!["--help"]
        );
        assert!(image.argv(Some(&["/bin/sh".to_owned()]), None).is_err());
        assert!(table.resolve("busybox:1").is_err());
    }
}
