//! Writes the CRD YAML files into a directory (default `crds/`), or prints them with `-`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let target = std::env::args().nth(1).unwrap_or_else(|| "crds".to_owned());
    let files = match tributary_crds::crdgen::rendered() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("crdgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, yaml) in files {
        if target == "-" {
            println!("---\n{yaml}");
            continue;
        }
        let path = PathBuf::from(&target).join(name);
        if let Err(e) = std::fs::write(&path, yaml) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
