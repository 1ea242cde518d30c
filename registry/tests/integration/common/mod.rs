//! Fixtures of the registry's process tests: a real standalone broker, registry processes
//! electing their writer through the in-memory Kubernetes API server ([`Elected`]), and a
//! minimal HTTP/1.1 client (one connection per request, as a serializer's first call would).
//! A missing broker binary fails the test with how to build it.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long any wait of these tests lasts at most.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A free port on 127.0.0.1 (free when asked; the process binding it may still race another).
pub fn free_port() -> u16 {
    // The kernel may hand the port it just freed out again: two instances of one test then
    // shared an address (one never listened, the other answered for both). Never hand out a
    // port twice in one test process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..100 {
        let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(a) => a.port(),
            Err(e) => panic!("no free port: {e}"),
        };
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no port not handed out before in 100 tries")
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

    /// Freezes the process (SIGSTOP), as a long GC pause or a stalled VM would.
    pub fn freeze(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// Resumes a frozen process (SIGCONT).
    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        if let Err(e) = rustix::process::kill_process(pid, signal) {
            panic!("signal {signal:?} to {}: {e}", self.child.id());
        }
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
    /// `http(s)://127.0.0.1:PORT`, also its advertised URL.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The process.
    pub proc: Proc,
    /// How the fixtures reach it (TLS, credentials).
    pub via: Via,
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
        Registry::start_via(bootstrap, dir, name, extra, envs, Via::default())
    }

    /// [`Registry::start`] for a registry reached `via` (https:// when it has TLS).
    pub fn start_via(
        bootstrap: &str,
        dir: &Path,
        name: &str,
        extra: &[&str],
        envs: &[(&str, &Path)],
        via: Via,
    ) -> Registry {
        let addr = format!("127.0.0.1:{}", free_port());
        let scheme = if via.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary-schema-registry"));
        cmd.args(["--bootstrap", bootstrap, "--listener", &addr])
            .args(["--advertised-url", &url])
            .args(extra)
            .env("RUST_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(cmd, dir.join(format!("{name}.log")));
        Registry {
            url,
            addr,
            proc,
            via,
        }
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
            if let Ok(r) = self.via.request(&self.addr, "GET", "/subjects", None).await {
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
    /// The status line and headers.
    pub head: String,
}

/// One request on its own connection (`Connection: close`), bounded by 30 s.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Answer, String> {
    request_within(Duration::from_secs(30), addr, method, path, body).await
}

/// One request on its own connection (`Connection: close`), bounded by `limit`.
pub async fn request_within(
    limit: Duration,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Answer, String> {
    Via::default()
        .request_within(limit, addr, method, path, body)
        .await
}

/// How a request reaches a registry: over TLS with this client configuration, with this
/// `Authorization` header.
#[derive(Clone, Default)]
pub struct Via {
    /// TLS, when the registry serves HTTPS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

impl Via {
    /// One request on its own connection, bounded by 30 s.
    pub async fn request(
        &self,
        addr: &str,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, String> {
        self.request_within(Duration::from_secs(30), addr, method, path, body)
            .await
    }

    /// One request on its own connection (`Connection: close`), bounded by `limit`.
    pub async fn request_within(
        &self,
        limit: Duration,
        addr: &str,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, String> {
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            let auth = self
                .authorization
                .as_ref()
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
                 Content-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let raw = match &self.tls {
                None => exchange(stream, &head, &body).await?,
                Some(config) => {
                    let name = rustls::pki_types::ServerName::try_from("localhost")
                        .map_err(|e| e.to_string())?;
                    let stream = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, stream)
                        .await
                        .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
                    exchange(stream, &head, &body).await?
                }
            };
            answer(&raw)
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "{method} {path} on {addr}: no answer within {limit:?}"
            )),
        }
    }
}

/// Writes `head` and `body`, reads to the end.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &str,
) -> Result<String, String> {
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(body.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw).await {
        Ok(_) => {}
        // A TLS peer closing without close_notify after a whole answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Parses a raw HTTP/1.1 answer.
fn answer(raw: &str) -> Result<Answer, String> {
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
        head: head.to_owned(),
    })
}

/// Short election timings so a takeover fits a test: the writer stops ~2.3 s after its last
/// renewal and followers take over after seeing the Lease unchanged for 5 s.
pub const SHORT_TIMINGS: [&str; 6] = [
    "--lease-duration",
    "5s",
    "--renew-interval",
    "1s",
    "--write-timeout",
    "10s",
];

/// The Lease's namespace in the election tests.
pub const NS: &str = "streaming";
/// The Lease the instances elect their writer with.
pub const LEASE: &str = "demo-schema-registry";

/// A broker, the in-memory API server and registry processes electing their writer with a
/// Lease.
pub struct Elected {
    /// The instances, in start order.
    pub registries: Vec<Registry>,
    /// The Lease API, to see who holds it.
    pub leases: Api<Lease>,
    /// Where the logs and the kubeconfig are.
    pub dir: tempfile::TempDir,
    _served: tributary_e2e::apiserver::Served,
    _api: tributary_e2e::FakeApiServer,
    /// The broker (last: dropped after the registries).
    pub broker: Broker,
}

impl Elected {
    /// Starts `n` instances with `flags` (the Lease flags are added) and waits until they
    /// answer reads and one holds the Lease; returns with the writer's URL.
    pub async fn start(n: usize, flags: &[&str]) -> (Elected, String) {
        Elected::start_via(n, flags, Via::default()).await
    }

    /// [`Elected::start`] for instances reached `via` (TLS, credentials).
    pub async fn start_via(n: usize, flags: &[&str], via: Via) -> (Elected, String) {
        let broker = Broker::start();
        let api = tributary_e2e::FakeApiServer::new();
        api.create_namespace(NS);
        let served = match api.serve().await {
            Ok(s) => s,
            Err(e) => panic!("serve the API server: {e}"),
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let kubeconfig = dir.path().join("kubeconfig");
        if let Err(e) = tributary_e2e::kubeconfig::write(
            &kubeconfig,
            &served.endpoint(),
            NS,
            &tributary_e2e::kubeconfig::Credentials::Token(api.admin_token()),
        ) {
            panic!("write the kubeconfig: {e}");
        }
        let lease_ref = format!("{NS}/{LEASE}");
        let mut all = vec!["--lease", lease_ref.as_str()];
        all.extend_from_slice(flags);
        let envs = [("KUBECONFIG", kubeconfig.as_path())];
        let mut registries: Vec<Registry> = (0..n)
            .map(|i| {
                Registry::start_via(
                    &broker.addr,
                    dir.path(),
                    &format!("registry-{i}"),
                    &all,
                    &envs,
                    via.clone(),
                )
            })
            .collect();
        for r in &mut registries {
            r.wait_ready().await;
        }
        let leases: Api<Lease> = Api::namespaced(api.client(NS), NS);
        let writer =
            tributary_e2e::poll::wait_until("a writer to hold the Lease", DEADLINE, || {
                let leases = leases.clone();
                async move { holder(&leases).await }
            })
            .await;
        assert!(
            registries.iter().any(|r| r.url == writer),
            "the Lease names {writer}, not one of the instances"
        );
        let elected = Elected {
            registries,
            leases,
            dir,
            _served: served,
            _api: api,
            broker,
        };
        (elected, writer)
    }

    /// Every instance's log, for failure messages.
    pub fn logs(&self) -> String {
        self.registries
            .iter()
            .map(|r| format!("{}:\n{}", r.url, r.proc.log()))
            .collect::<Vec<_>>()
            .join("\n-----\n")
    }
}

/// The Lease's holder URL, if any.
pub async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// A distinct Avro record schema for every `i`.
pub fn schema(i: usize) -> serde_json::Value {
    let text = json!({
        "type": "record", "name": format!("R{i}"),
        "fields": [{"name": format!("f{i}"), "type": "string"}],
    });
    json!({ "schema": text.to_string() })
}

/// Registers `schema(i)` under `subject` through `addr`; the id, or the error answer.
pub async fn register(addr: &str, subject: &str, i: usize) -> Result<i64, String> {
    let path = format!("/subjects/{subject}/versions");
    let r = request(addr, "POST", &path, Some(&schema(i))).await?;
    match (r.status, r.json["id"].as_i64()) {
        (200, Some(id)) => Ok(id),
        _ => Err(format!("{} {}", r.status, r.text)),
    }
}

/// Asserts on every instance at `addrs` that each acknowledged subject's version 1 has its
/// id, and that every id up to `last` names exactly one schema (none lost, none given twice).
pub async fn assert_ids_unique_and_readable(
    addrs: &[&str],
    acked: &std::collections::BTreeMap<String, i64>,
    last: i64,
) {
    for addr in addrs {
        for (subject, id) in acked {
            let got = request(
                addr,
                "GET",
                &format!("/subjects/{subject}/versions/1"),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("read {subject}: {e}"));
            assert_eq!(
                got.json["id"].as_i64(),
                Some(*id),
                "{subject} on {addr}: {}",
                got.text
            );
        }
        for id in 1..=last {
            let holders = request(addr, "GET", &format!("/schemas/ids/{id}/versions"), None)
                .await
                .unwrap_or_else(|e| panic!("read id {id}: {e}"));
            assert_eq!(
                holders.json.as_array().map(Vec::len),
                Some(1),
                "id {id} on {addr}: {}",
                holders.text
            );
        }
    }
}
