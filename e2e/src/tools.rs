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

/// A debug build of one of our binaries, `<target>/debug/<name>` (`CARGO_TARGET_DIR` honoured).
pub fn debug_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("debug").join(name)
}
