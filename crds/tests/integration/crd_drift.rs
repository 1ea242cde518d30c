//! The CRD YAML checked into `crds/` (and the Helm chart's `crds/`, once it exists) must be
//! exactly what the types generate, and the book's configuration chapter what the key table
//! renders. Regenerate with
//! `cargo run -p tributary-crds --bin crdgen` or `UPDATE_CRDS=1 cargo test -p tributary-crds`.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn checked_in_crds_match_the_types() {
    let root = repo_root();
    let mut dirs = vec![root.join("crds")];
    let chart = root.join("charts/tributary/crds");
    if chart.is_dir() {
        dirs.push(chart);
    }
    let update = std::env::var_os("UPDATE_CRDS").is_some();
    let mut stale = Vec::new();
    let rendered = match tributary_crds::crdgen::rendered() {
        Ok(r) => r,
        Err(e) => panic!("rendering CRDs failed: {e}"),
    };
    for dir in &dirs {
        for (name, yaml) in &rendered {
            let path = dir.join(name);
            if update {
                if let Err(e) = std::fs::write(&path, yaml) {
                    panic!("cannot write {}: {e}", path.display());
                }
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if &on_disk != yaml {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale CRD files: {stale:?}\nregenerate with `UPDATE_CRDS=1 cargo test -p tributary-crds --test integration crd_drift::`"
    );
}

/// The book's configuration chapter lists exactly the keys and checks of the key table.
#[test]
fn the_configuration_chapter_matches_the_key_table() {
    let path = repo_root().join("docs/src/configuration.md");
    let rendered = tributary_crds::config::reference::markdown();
    if std::env::var_os("UPDATE_CRDS").is_some() {
        if let Err(e) = std::fs::write(&path, &rendered) {
            panic!("cannot write {}: {e}", path.display());
        }
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == rendered,
        "{} is stale: regenerate with `UPDATE_CRDS=1 cargo test -p tributary-crds --test integration crd_drift::`",
        path.display()
    );
}
