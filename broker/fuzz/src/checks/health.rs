//! Between rounds: the broker is up, has not panicked, answers /healthz, stays under its
//! memory and descriptor ceilings, and a real client (kcat) can still produce a marker record
//! and consume it back.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::tool::{kcat_consume, wait_with_timeout};
use super::{CaseRef, Failure};
use crate::broker::{self, Broker};

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

/// Samples memory and descriptors of `pid` every 50 ms into `peaks` until `stop` is set:
/// a burst (thousands of partitions opened, then closed again) must not slip between rounds.
pub fn sample(pid: u32, stop: &AtomicBool, peaks: &Mutex<Peaks>) {
    while !stop.load(Ordering::Relaxed) {
        let (rss, fds) = (broker::rss_kib(pid).map(|k| k / 1024), broker::fds(pid));
        {
            let mut p = peaks.lock().unwrap_or_else(|e| e.into_inner());
            p.rss_mib = p.rss_mib.max(rss.unwrap_or(0));
            p.fds = p.fds.max(fds.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails when the peaks passed a ceiling (`reported` keeps each from being reported twice).
pub fn resources(peaks: &Peaks, ceilings: &Ceilings, reported: &mut (bool, bool)) -> Vec<Failure> {
    let mut out = Vec::new();
    if peaks.rss_mib > ceilings.rss_mib && !reported.0 {
        reported.0 = true;
        out.push(Failure::Memory {
            rss_mib: peaks.rss_mib,
            ceiling_mib: ceilings.rss_mib,
        });
    }
    if peaks.fds > ceilings.fds && !reported.1 {
        reported.1 = true;
        out.push(Failure::Descriptors {
            fds: peaks.fds,
            ceiling: ceilings.fds,
        });
    }
    out
}

/// Process alive, no panic logged, /healthz 200. `recent` names the frames sent last,
/// `cut_off` those whose exchange a death cut off (see [`Failure::Died`]).
pub fn liveness(broker: &mut Broker, recent: &[CaseRef], cut_off: &[CaseRef]) -> Vec<Failure> {
    let mut out = Vec::new();
    match broker.new_panics() {
        Ok(None) => {}
        Ok(Some(excerpt)) => out.push(Failure::Panic {
            excerpt,
            recent: recent.to_vec(),
        }),
        Err(reason) => out.push(Failure::Panic {
            excerpt: reason,
            recent: Vec::new(),
        }),
    }
    if let Some(status) = broker.exited() {
        out.push(Failure::Died {
            status,
            log_tail: broker.death_excerpt(14),
            cut_off: cut_off.to_vec(),
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
    let out = kcat_consume(
        kcat,
        bootstrap,
        MARKER_TOPIC,
        0,
        &[],
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
