//! Container processes: each runs in its own process group (so a signal reaches everything it
//! started), with its output appended to a log file; every live group is recorded so that none
//! outlives the kubelet: [`Groups`] kills them when dropped, and a watchdog process (the
//! `tributary-e2e watchdog` subcommand, in its own process group) kills them when the process
//! that owns the kubelet dies without dropping it (a panic, SIGKILL, the end of a test binary
//! whose statics are never dropped).

use std::collections::BTreeSet;
use std::io::{BufRead, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};

use rustix::process::{kill_process_group, Pid, Signal};

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct ProcessSpec {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    /// Where stdout and stderr go (appended).
    pub(crate) log: PathBuf,
}

/// Starts `spec` in a new process group, its output appended to its log file.
pub(crate) fn spawn(spec: &ProcessSpec) -> std::io::Result<tokio::process::Child> {
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    let err = log.try_clone()?;
    tokio::process::Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
}

/// Sends `signal` to the process group led by `pid`; false when it is gone.
pub(crate) fn signal_group(pid: u32, signal: Signal) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    kill_process_group(pid, signal).is_ok()
}

/// The process groups alive under one kubelet.
pub(crate) struct Groups {
    live: Mutex<BTreeSet<u32>>,
    /// The watchdog's stdin: `+<pgid>` / `-<pgid>` lines; EOF tells it to kill what is left.
    watchdog: Mutex<Option<std::process::ChildStdin>>,
}

impl Groups {
    /// A registry, with a watchdog run from `watchdog` (the `tributary-e2e` binary) that also
    /// removes `cleanup` when it fires.
    pub(crate) fn new(watchdog: Option<&Path>, cleanup: Option<&Path>) -> std::io::Result<Groups> {
        let stdin = match watchdog {
            Some(bin) => {
                let mut child = std::process::Command::new(bin)
                    .arg("watchdog")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()?;
                let mut stdin = child.stdin.take();
                if let (Some(s), Some(dir)) = (stdin.as_mut(), cleanup) {
                    writeln!(s, "rm {}", dir.display())?;
                }
                // It must outlive this process when that dies; while it lives, a thread reaps
                // it once it exits.
                std::thread::spawn(move || child.wait());
                stdin
            }
            None => None,
        };
        Ok(Groups {
            live: Mutex::new(BTreeSet::new()),
            watchdog: Mutex::new(stdin),
        })
    }

    fn tell(&self, line: &str) {
        let mut w = self.watchdog.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stdin) = w.as_mut() {
            if writeln!(stdin, "{line}").is_err() {
                tracing::warn!("the process watchdog is gone");
                *w = None;
            }
        }
    }

    /// Records a started group.
    pub(crate) fn add(&self, pid: u32) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pid);
        self.tell(&format!("+{pid}"));
    }

    /// Forgets a group whose leader was reaped.
    pub(crate) fn remove(&self, pid: u32) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pid);
        self.tell(&format!("-{pid}"));
    }

    /// SIGKILLs every live group.
    pub(crate) fn kill_all(&self) {
        let live: Vec<u32> = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        for pid in live {
            signal_group(pid, Signal::KILL);
        }
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The watchdog: reads `+<pgid>`, `-<pgid>` and `rm <dir>` lines until EOF (its parent is
/// gone or done), then SIGKILLs the groups still recorded and removes the directories.
pub fn watchdog(input: impl BufRead) {
    let mut groups = BTreeSet::new();
    let mut dirs = Vec::new();
    for line in input.lines() {
        let Ok(line) = line else {
            break;
        };
        if let Some(pid) = line.strip_prefix('+').and_then(|p| p.parse::<u32>().ok()) {
            groups.insert(pid);
        } else if let Some(pid) = line.strip_prefix('-').and_then(|p| p.parse::<u32>().ok()) {
            groups.remove(&pid);
        } else if let Some(dir) = line.strip_prefix("rm ") {
            dirs.push(PathBuf::from(dir));
        }
    }
    for pid in &groups {
        signal_group(*pid, Signal::KILL);
    }
    // SIGKILL is delivered asynchronously: wait (bounded) until the groups are gone before
    // removing what they were writing to.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while groups.iter().any(|pid| running(*pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for dir in dirs {
        for _ in 0..3 {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                _ => break,
            }
        }
    }
}

/// Whether process `pid` still runs: it exists and is not a zombie (which has stopped running
/// but stays until its parent, or nobody once the parent is gone, reaps it).
pub fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesized command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}
