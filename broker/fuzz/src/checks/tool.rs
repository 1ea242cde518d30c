//! Running the real tools the checks use (kcat) with deadlines: a consumer stuck on a bad
//! partition must cost the run a timeout, never hang it.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// kcat consumes `topic`/`partition` from the beginning to its end (`-e -q`), with `extra`
/// flags.
pub fn kcat_consume(
    kcat: &str,
    bootstrap: &str,
    topic: &str,
    partition: i32,
    extra: &[&str],
    timeout: Duration,
) -> Result<Output, String> {
    let partition = partition.to_string();
    let mut cmd = Command::new(kcat);
    cmd.args([
        "-C",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-p",
        &partition,
        "-o",
        "beginning",
        "-e",
        "-q",
    ])
    .args(extra);
    run_with_timeout(&mut cmd, timeout)
}

/// Runs a command to completion or kills it after `timeout`.
pub fn run_with_timeout(
    cmd: &mut Command,
    timeout: Duration,
) -> std::result::Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    wait_with_timeout(child, timeout)
}

/// Waits for a started child, killing it after `timeout`. Its pipes are drained by threads
/// so a chatty child cannot block on a full pipe while we wait.
pub fn wait_with_timeout(
    mut child: std::process::Child,
    timeout: Duration,
) -> std::result::Result<Output, String> {
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    status.map(|status| Output {
        status,
        stdout,
        stderr,
    })
}
