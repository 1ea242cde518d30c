//! Between rounds: the broker is up, has not panicked, answers /healthz, stays under its
//! memory and descriptor ceilings, and a real client (kcat) can still produce a marker record
//! and consume it back.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::readback::{run_with_timeout, wait_with_timeout};
use super::{CaseRef, Failure};
use crate::broker::Broker;

/// The topic the round trip writes markers to.
pub const MARKER_TOPIC: &str = "fz-marker";

/// Ceilings the broker must stay under.
#[derive(Debug, Clone, Copy)]
pub struct Ceilings {
    /// Most resident memory, MiB.
    pub rss_mib: u64,
    /// Most open descriptors.
    pub fds: usize,
}

/// Peaks seen so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Peaks {
    /// Highest VmRSS, MiB.
    pub rss_mib: u64,
    /// Most open descriptors.
    pub fds: usize,
}

/// Samples memory and descriptors into `peaks`; fails above the ceilings.
pub fn resources(broker: &Broker, ceilings: &Ceilings, peaks: &mut Peaks) -> Vec<Failure> {
    let mut out = Vec::new();
    if let Some(rss) = broker.rss_kib().map(|k| k / 1024) {
        peaks.rss_mib = peaks.rss_mib.max(rss);
        if rss > ceilings.rss_mib {
            out.push(Failure::Memory {
                rss_mib: rss,
                ceiling_mib: ceilings.rss_mib,
            });
        }
    }
    if let Some(fds) = broker.fds() {
        peaks.fds = peaks.fds.max(fds);
        if fds > ceilings.fds {
            out.push(Failure::Descriptors {
                fds,
                ceiling: ceilings.fds,
            });
        }
    }
    out
}

/// Process alive, no panic logged, /healthz 200. `recent` names the frames sent last.
pub fn liveness(broker: &mut Broker, recent: &[CaseRef]) -> Vec<Failure> {
    let mut out = Vec::new();
    if let Some(excerpt) = broker.new_panics() {
        out.push(Failure::Panic {
            excerpt,
            recent: recent.to_vec(),
        });
    }
    if let Some(status) = broker.exited() {
        out.push(Failure::Died {
            status,
            recent: recent.to_vec(),
        });
        return out;
    }
    if let Err(reason) = broker.healthz() {
        out.push(Failure::Unhealthy { reason });
    }
    out
}

/// kcat produces `marker` to the marker topic and must then consume it back.
pub fn round_trip(kcat: &str, bootstrap: &str, marker: &str) -> Option<Failure> {
    let fail = |reason: String| Some(Failure::RoundTrip { reason });
    let child = Command::new(kcat)
        .args([
            "-P",
            "-b",
            bootstrap,
            "-t",
            MARKER_TOPIC,
            "-p",
            "0",
            "-X",
            "message.timeout.ms=20000",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run {kcat}: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        if let Err(e) = writeln!(stdin, "{marker}") {
            return fail(format!("writing to kcat -P: {e}"));
        }
    }
    match wait_with_timeout(child, Duration::from_secs(30)) {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return fail(format!(
                "kcat -P exited {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return fail(format!("kcat -P: {e}")),
    }
    let out = run_with_timeout(
        Command::new(kcat).args([
            "-C",
            "-b",
            bootstrap,
            "-t",
            MARKER_TOPIC,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
        ]),
        Duration::from_secs(30),
    );
    match out {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == marker) =>
        {
            None
        }
        Ok(o) => fail(format!(
            "kcat -C did not read the marker back (exit {}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => fail(format!("kcat -C: {e}")),
    }
}
