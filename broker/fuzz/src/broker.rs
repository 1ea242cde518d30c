//! The broker under test: a `tributary-broker` process the harness starts on free loopback
//! ports with a fresh data directory, or one it attaches to. Also what the checks read from
//! it: its log (for panics), `/healthz`, and `/proc` for memory and descriptors.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How to start a broker.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// The `tributary-broker` binary.
    pub binary: PathBuf,
    /// Directory for its data and log (created; must not hold another broker's data).
    pub workdir: PathBuf,
    /// Advertise this address instead of the listener (the capture proxy's).
    pub advertised: Option<String>,
    /// More flags.
    pub extra_args: Vec<String>,
}

/// The process of a broker the harness started, shared with the watchdog so it can kill a
/// broker whose run has overrun while another thread still holds the [`Broker`].
type SharedChild = Arc<Mutex<Option<Child>>>;

/// A broker the harness talks to.
#[derive(Debug)]
pub struct Broker {
    child: SharedChild,
    /// Its process id (for /proc), if known.
    pub pid: Option<u32>,
    /// The Kafka listener, host:port.
    pub bootstrap: String,
    /// The HTTP listener serving /healthz, host:port.
    pub http: String,
    /// Its combined stdout/stderr, if the harness can read it.
    pub log_path: Option<PathBuf>,
    log_read: u64,
}

/// A free loopback port (bound and released; a race with another process is possible but
/// harmless in a test machine's loopback range).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(Error::io("binding a free port"))?;
    Ok(l.local_addr()
        .map_err(Error::io("reading a bound port"))?
        .port())
}

impl Broker {
    /// Starts a broker and waits (up to 60 s) until its listener accepts connections.
    pub fn spawn(opts: &SpawnOptions) -> Result<Broker> {
        let data = opts.workdir.join("data");
        std::fs::create_dir_all(&data)
            .map_err(Error::io(format!("creating {}", data.display())))?;
        let bootstrap = format!("127.0.0.1:{}", free_port()?);
        let http = format!("127.0.0.1:{}", free_port()?);
        let log_path = opts.workdir.join("broker.log");
        let log = std::fs::File::create(&log_path)
            .map_err(Error::io(format!("creating {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(Error::io("duplicating the log handle"))?;
        let advertised = opts.advertised.clone().unwrap_or_else(|| bootstrap.clone());
        let child = Command::new(&opts.binary)
            .args([
                "--listener",
                &bootstrap,
                "--advertised-listener",
                &advertised,
            ])
            .arg("--data-dir")
            .arg(&data)
            .args(["--broker-id", "0", "--http-listener", &http])
            // A small journal and no group join delay: a fuzz run is not a benchmark.
            .args([
                "--commit-journal-bytes",
                "8388608",
                "--group-initial-rebalance-delay-ms",
                "0",
            ])
            .args(&opts.extra_args)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(Error::io(format!("starting {}", opts.binary.display())))?;
        let mut broker = Broker {
            pid: Some(child.id()),
            child: Arc::new(Mutex::new(Some(child))),
            bootstrap,
            http,
            log_path: Some(log_path),
            log_read: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = broker.exited() {
                return Err(Error::Setup(format!(
                    "the broker exited with {status} during start-up:\n{}",
                    broker.log_tail(40)
                )));
            }
            let up = broker.bootstrap.parse().is_ok_and(|addr| {
                TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
            });
            if up {
                return Ok(broker);
            }
            if Instant::now() > deadline {
                return Err(Error::Setup(format!(
                    "the broker did not accept connections on {} within 60 s:\n{}",
                    broker.bootstrap,
                    broker.log_tail(40)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A broker someone else runs.
    pub fn attach(
        bootstrap: String,
        http: String,
        pid: Option<u32>,
        log_path: Option<PathBuf>,
    ) -> Broker {
        Broker {
            child: Arc::new(Mutex::new(None)),
            pid,
            bootstrap,
            http,
            log_path,
            log_read: 0,
        }
    }

    /// A handle that kills this broker (if the harness started it) from another thread.
    pub fn killer(&self) -> Killer {
        Killer(self.child.clone())
    }

    /// A handle that tells from another thread whether this broker is gone.
    pub fn probe(&self) -> Probe {
        Probe {
            child: self.child.clone(),
            pid: self.pid,
        }
    }

    /// The exit status if the process is gone.
    pub fn exited(&mut self) -> Option<String> {
        self.probe().exited()
    }

    /// GET /healthz; Err with what went wrong unless it answers 200.
    pub fn healthz(&self) -> std::result::Result<(), String> {
        let addr = self
            .http
            .parse()
            .map_err(|e| format!("bad HTTP address {}: {e}", self.http))?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http
        )
        .map_err(|e| format!("send: {e}"))?;
        let mut answer = String::new();
        s.take(4096)
            .read_to_string(&mut answer)
            .map_err(|e| format!("read: {e}"))?;
        match answer.lines().next() {
            Some(status) if status.contains(" 200 ") => Ok(()),
            Some(status) => Err(format!("answered {status:?}")),
            None => Err("closed without an answer".into()),
        }
    }

    /// Resident memory in KiB (VmRSS).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid?)
    }

    /// Open file descriptors.
    pub fn fds(&self) -> Option<usize> {
        fds(self.pid?)
    }

    /// The first "panicked at" in what the log gained since the last call, with the lines
    /// after it. Err when the log cannot be read: the panic check must not pass unread.
    pub fn new_panics(&mut self) -> std::result::Result<Option<String>, String> {
        let path = self
            .log_path
            .as_ref()
            .ok_or("no broker log to check for panics")?;
        let unreadable =
            |e: std::io::Error| format!("cannot read the broker log {}: {e}", path.display());
        let mut f = std::fs::File::open(path).map_err(unreadable)?;
        f.seek(SeekFrom::Start(self.log_read)).map_err(unreadable)?;
        let mut bytes = Vec::new();
        let n = f
            .take(64 << 20)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        self.log_read += n as u64;
        let text = String::from_utf8_lossy(&bytes);
        let Some(at) = text.find("panicked at") else {
            return Ok(None);
        };
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        Ok(Some(
            text[start..]
                .lines()
                .take(25)
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }

    /// Why it died, as its log tells: the first fatal line (an allocation failure, a panic, a
    /// runtime abort) and the backtrace lines after it, skipping the other threads' log lines
    /// interleaved with them; the log's last lines when no line is fatal.
    pub fn death_excerpt(&self, lines: usize) -> String {
        const FATAL: [&str; 5] = [
            "memory allocation of",
            "panicked at",
            "fatal runtime error",
            "has overflowed its stack",
            "Aborted",
        ];
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        let Some(at) = all.iter().position(|l| FATAL.iter().any(|f| l.contains(f))) else {
            return self.log_tail(lines);
        };
        // Log records start with a timestamp ("2026-..."); backtrace lines do not.
        let is_record = |l: &str| {
            l.as_bytes()
                .get(..4)
                .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
        };
        std::iter::once(all[at])
            .chain(all[at + 1..].iter().copied().filter(|l| !is_record(l)))
            .take(lines)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Its whole log (empty when it has none or it cannot be read).
    fn log_text(&self) -> String {
        self.log_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops a broker the harness started (SIGKILL after it was checked: nothing to flush).
    pub fn stop(&mut self) {
        self.killer().kill();
    }
}

/// Tells from any thread whether the broker process is gone: a worker whose connection broke
/// asks it, so a round stops at the death and the frames it cut off can be named.
#[derive(Debug, Clone)]
pub struct Probe {
    child: SharedChild,
    pid: Option<u32>,
}

impl Probe {
    /// The exit status if the process is gone.
    pub fn exited(&self) -> Option<String> {
        match &mut *self.child.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("unknown status ({e})")),
            },
            None => self
                .pid
                .filter(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                .map(|pid| format!("process {pid} is gone")),
        }
    }
}

/// Kills the broker the harness started (nothing for an attached one): what the watchdog does
/// to a run that overran, so blocked reads end and no broker outlives the harness.
#[derive(Debug, Clone)]
pub struct Killer(SharedChild);

impl Killer {
    /// SIGKILL and reap; a no-op when the broker was attached or is already gone.
    pub fn kill(&self) {
        if let Some(child) = &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Resident memory of process `pid` in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Open file descriptors of process `pid`.
pub fn fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
