//! Fixtures of the registry's process tests: a real standalone broker, registry processes
//! electing their writer through the in-memory Kubernetes API server, and a minimal HTTP/1.1
//! client (one connection per request, as a serializer's first call would). A missing broker
//! binary fails the test with how to build it.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any wait of these tests lasts at most.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A free port on 127.0.0.1 (free when asked; the process binding it may still race another).
pub fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("no free port: {e}"),
    }
}

/// `<target>/debug`, found from this test executable (`<target>/debug/deps/<test>`).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("test executable path: {e}"));
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            panic!(
                "test executable {} is not in <target>/<profile>/deps",
                exe.display()
            )
        })
}

/// The broker binary: `TRIBUTARY_BROKER_BIN`, else `<target>/debug/tributary-broker`.
pub fn broker_binary() -> PathBuf {
    let path = std::env::var_os("TRIBUTARY_BROKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_profile_dir().join("tributary-broker"));
    assert!(
        path.is_file(),
        "the Tributary broker binary is missing at {}: run `cargo build -p tributary-broker`, \
         or set TRIBUTARY_BROKER_BIN",
        path.display()
    );
    path
}

/// A child process killed when dropped, with its log file.
pub struct Proc {
    child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` logging to `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = file.try_clone().unwrap_or_else(|e| panic!("log file: {e}"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc { child, log }
    }

    /// The log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process (SIGKILL: no Lease release, no flush) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it exited, and how.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A standalone broker on a free port with a fresh data directory.
pub struct Broker {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The process.
    pub proc: Proc,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let addr = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(broker_binary());
        cmd.args(["--listener", &addr, "--advertised-listener", &addr])
            .args(["--http-listener", &http, "--broker-id", "0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("TRIBUTARY_COMMIT_JOURNAL_BYTES", (8u64 << 20).to_string());
        let mut proc = Proc::spawn(cmd, dir.path().join("broker.log"));
        let end = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(&addr).is_err() {
            if let Some(status) = proc.exited() {
                panic!("the broker exited with {status}:\n{}", proc.log());
            }
            assert!(
                Instant::now() < end,
                "the broker did not listen on {addr} within {DEADLINE:?}:\n{}",
                proc.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            addr,
            proc,
            _dir: dir,
        }
    }
}

/// One registry process.
pub struct Registry {
    /// `http://127.0.0.1:PORT`, also its advertised URL.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The process.
    pub proc: Proc,
}

impl Registry {
    /// Starts `tributary-schema-registry` against `bootstrap` with `extra` flags, logging into
    /// `dir`.
    pub fn start(
        bootstrap: &str,
        dir: &Path,
        name: &str,
        extra: &[&str],
        envs: &[(&str, &Path)],
    ) -> Registry {
        let addr = format!("127.0.0.1:{}", free_port());
        let url = format!("http://{addr}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary-schema-registry"));
        cmd.args(["--bootstrap", bootstrap, "--listener", &addr])
            .args(["--advertised-url", &url])
            .args(extra)
            .env("RUST_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(cmd, dir.join(format!("{name}.log")));
        Registry { url, addr, proc }
    }

    /// Waits until it answers reads.
    pub async fn wait_ready(&mut self) {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.proc.exited() {
                panic!(
                    "registry {} exited with {status}:\n{}",
                    self.url,
                    self.proc.log()
                );
            }
            if let Ok(r) = request(&self.addr, "GET", "/subjects", None).await {
                if r.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < end,
                "registry {} not ready within {DEADLINE:?}:\n{}",
                self.url,
                self.proc.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body parsed as JSON (Null when it is not JSON).
    pub json: serde_json::Value,
    /// The body as text.
    pub text: String,
}

/// One request on its own connection (`Connection: close`), bounded by 30 s.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP answer: {raw:?}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {head:?}"))?;
        Ok(Answer {
            status,
            json: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
            text: body.to_owned(),
        })
    };
    match tokio::time::timeout(Duration::from_secs(30), exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("{method} {path} on {addr}: no answer within 30s")),
    }
}
