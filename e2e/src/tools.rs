//! Where the repository and its installed tools are: `helm` and `kubectl` live in
//! `<repo>/.tools/` (installed by `.ci/install-tools.sh`), our binaries in `<repo>/target/`.

use std::path::PathBuf;

/// The repository root (the workspace this crate was built in).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `<repo>/.tools/helm/helm`.
pub fn helm() -> PathBuf {
    repo_root().join(".tools/helm/helm")
}

/// `<repo>/.tools/kubectl/kubectl`.
pub fn kubectl() -> PathBuf {
    repo_root().join(".tools/kubectl/kubectl")
}

/// The cargo target directory (`CARGO_TARGET_DIR`, or `<repo>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// A cargo build profile of our binaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build`, into `<target>/debug` (tests and the development cluster).
    #[default]
    Debug,
    /// `cargo build --release`, into `<target>/release` (benchmarks).
    Release,
}

impl Profile {
    /// Its directory under the target directory.
    pub fn dir(self) -> PathBuf {
        target_dir().join(match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        })
    }
}

/// A debug build of one of our binaries, `<target>/debug/<name>`.
pub fn debug_binary(name: &str) -> PathBuf {
    Profile::Debug.dir().join(name)
}

/// Each of our binaries, the package that builds it, and what it is built from: a binary
/// older than any of these files is rebuilt.
const BINARIES: &[(&str, &str, &[&str])] = &[
    (
        "tributary-broker",
        "tributary-broker",
        &[
            "broker/src",
            "broker/Cargo.toml",
            "broker/storage/src",
            "broker/storage/Cargo.toml",
            "broker/protocol/src",
            "broker/protocol/Cargo.toml",
            "broker/coordinator/src",
            "broker/coordinator/Cargo.toml",
            "broker/replication/src",
            "broker/replication/Cargo.toml",
            "broker/metrics/src",
            "broker/metrics/Cargo.toml",
            "broker/tiered/src",
            "broker/tiered/Cargo.toml",
            "broker/vendor",
            "crds/src",
            "crds/Cargo.toml",
            "registry/client/src",
            "registry/client/Cargo.toml",
            "Cargo.lock",
        ],
    ),
    (
        "tributary-operator",
        "tributary-operator",
        &[
            "operator/src",
            "operator/Cargo.toml",
            "crds/src",
            "crds/Cargo.toml",
            "broker/metrics/src",
            "broker/metrics/Cargo.toml",
            "registry/client/src",
            "registry/client/Cargo.toml",
            "Cargo.lock",
        ],
    ),
    (
        "tributary-schema-registry",
        "tributary-registry",
        &[
            "registry/src",
            "registry/Cargo.toml",
            "crds/src",
            "crds/Cargo.toml",
            "broker/metrics/src",
            "broker/metrics/Cargo.toml",
            "Cargo.lock",
        ],
    ),
];

/// The binaries a cluster's pods run: the broker, the operator and the schema registry.
pub const CLUSTER_BINARIES: &[&str] = &[
    "tributary-broker",
    "tributary-operator",
    "tributary-schema-registry",
];

/// Directories walked for sources at most this deep.
const MAX_DEPTH: usize = 12;

fn newest_under(path: &std::path::Path, depth: usize, newest: &mut std::time::SystemTime) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() && depth < MAX_DEPTH {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            newest_under(&entry.path(), depth + 1, newest);
        }
    } else if let Ok(m) = meta.modified() {
        *newest = (*newest).max(m);
    }
}

/// Whether `<target>/<profile>/<binary>` is missing or older than one of `sources`.
fn stale(profile: Profile, binary: &str, sources: &[&str]) -> bool {
    let root = repo_root();
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for p in sources {
        newest_under(&root.join(p), 0, &mut newest);
    }
    std::fs::metadata(profile.dir().join(binary))
        .and_then(|m| m.modified())
        .map_or(true, |t| t < newest)
}

/// Builds the debug [`CLUSTER_BINARIES`] (`cargo build -p ...`, as `make build` does) when
/// one is missing or older than its sources.
pub async fn build_binaries() -> crate::Result<()> {
    build_profile(Profile::Debug, CLUSTER_BINARIES).await
}

/// Builds the debug `binaries` (names from the list above) when one of them is missing or
/// older than its sources; cargo skips what is up to date. A test needing only the broker
/// need not wait for the operator.
pub async fn build(binaries: &[&str]) -> crate::Result<()> {
    build_profile(Profile::Debug, binaries).await
}

/// [`build`] in `profile`.
pub async fn build_profile(profile: Profile, binaries: &[&str]) -> crate::Result<()> {
    let wanted: Vec<&(&str, &str, &[&str])> = BINARIES
        .iter()
        .filter(|(bin, _, _)| binaries.contains(bin))
        .collect();
    if !wanted
        .iter()
        .any(|(bin, _, sources)| stale(profile, bin, sources))
    {
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut args = vec!["build"];
    if profile == Profile::Release {
        args.push("--release");
    }
    for (_, package, _) in &wanted {
        args.extend(["-p", package]);
    }
    let status = tokio::process::Command::new(&cargo)
        .args(&args)
        .current_dir(repo_root())
        .status()
        .await
        .map_err(|source| crate::Error::Spawn {
            program: cargo.clone(),
            source,
        })?;
    if !status.success() {
        return Err(crate::Error::Tool {
            command: format!("{cargo} {}", args.join(" ")),
            output: status.to_string(),
        });
    }
    Ok(())
}

/// Runs `program` with `args` and the environment `env`, returning its stdout; a failure
/// carries its output.
pub async fn run(
    program: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> crate::Result<String> {
    let shown = program.display().to_string();
    let out = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| crate::Error::Spawn {
            program: shown.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(crate::Error::Tool {
            command: format!("{shown} {}", args.join(" ")),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// The workspace's own crates by package name, and where each lives (root Cargo.toml's
    /// `[workspace.dependencies]` entries with a path).
    fn workspace_paths() -> BTreeMap<String, String> {
        let root = std::fs::read_to_string(repo_root().join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("root Cargo.toml: {e}"));
        root.lines()
            .filter_map(|line| {
                let (name, rest) = line.split_once(" = ")?;
                let path = rest.split("path = \"").nth(1)?.split('"').next()?;
                Some((name.trim().to_owned(), path.to_owned()))
            })
            .collect()
    }

    /// The workspace crates `dir`'s package uses in its `[dependencies]` (not dev ones).
    fn dependencies(dir: &str, crates: &BTreeMap<String, String>) -> Vec<String> {
        let manifest = std::fs::read_to_string(repo_root().join(dir).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{dir}/Cargo.toml: {e}"));
        let mut section = "";
        let mut found = Vec::new();
        for line in manifest.lines() {
            if line.starts_with('[') {
                section = line;
                continue;
            }
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            if section == "[dependencies]" {
                if let Some(path) = crates.get(name) {
                    found.push(path.clone());
                }
            }
        }
        found
    }

    #[test]
    fn each_binary_is_rebuilt_when_any_crate_it_is_built_from_changes() {
        let crates = workspace_paths();
        for (binary, _, sources) in BINARIES {
            let own = sources[0].trim_end_matches("/src");
            let mut needed = BTreeSet::from([own.to_owned()]);
            let mut todo = vec![own.to_owned()];
            while let Some(dir) = todo.pop() {
                for dep in dependencies(&dir, &crates) {
                    if needed.insert(dep.clone()) {
                        todo.push(dep);
                    }
                }
            }
            for dir in needed {
                for part in [format!("{dir}/src"), format!("{dir}/Cargo.toml")] {
                    let covered = sources
                        .iter()
                        .any(|s| part == *s || part.starts_with(&format!("{s}/")));
                    assert!(
                        covered,
                        "{binary} is built from {dir}, but a change to {part} would not rebuild it"
                    );
                }
            }
        }
    }
}
