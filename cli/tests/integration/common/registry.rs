//! A real `tributary-schema-registry` process against a broker, for `trib schema` tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, target_profile_dir, Broker};

/// A registry process; killed when dropped.
pub struct SchemaRegistry {
    /// `http(s)://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The registry binary: `TRIBUTARY_SCHEMA_REGISTRY_BIN`, else
/// `<target>/debug/tributary-schema-registry`.
pub fn registry_binary() -> PathBuf {
    let path = std::env::var_os("TRIBUTARY_SCHEMA_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_profile_dir().join("tributary-schema-registry"));
    assert!(
        path.is_file(),
        "the schema registry binary is missing at {}: run `cargo build -p tributary-registry`, \
         or set TRIBUTARY_SCHEMA_REGISTRY_BIN",
        path.display()
    );
    path
}

impl SchemaRegistry {
    /// Starts a registry on `broker` and waits until it answers.
    pub fn start(broker: &Broker) -> SchemaRegistry {
        SchemaRegistry::start_with(broker, &[])
    }

    /// [`SchemaRegistry::start`] with more flags (`https://` when they hold `--tls-cert`).
    pub fn start_with(broker: &Broker, extra: &[String]) -> SchemaRegistry {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.path().join("registry.log");
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let child = Command::new(registry_binary())
            .args(["--bootstrap", &broker.addr, "--listener", &addr])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the schema registry: {e}"));
        let mut registry = SchemaRegistry {
            url: if extra.iter().any(|a| a == "--tls-cert") {
                format!("https://{addr}")
            } else {
                format!("http://{addr}")
            },
            child,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("the registry exited with {status}:\n{}", registry.log());
            }
            if std::net::TcpStream::connect(&addr).is_ok() {
                return registry;
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not listen on {addr} within 60s:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
