//! The harness can fail but never hang. Each test runs the real `tributary-fuzz` binary against
//! a fake broker (it answers ApiVersions and CreateTopics, closes the connection on anything
//! else, serves /healthz) and a fake kcat, with a fault injected into the harness itself, and
//! waits for it with a bound: a regression that hangs fails the test instead of hanging it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, RequestHeader,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};

/// How long any one run may take before the test calls it a hang. The runs below take
/// seconds; the bound only has to be finite and far above them.
const RUN_BOUND: Duration = Duration::from_secs(180);

/// The served table of the fake broker.
const SERVED: [(ApiKey, i16, i16); 4] = [
    (ApiKey::Produce, 3, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 5),
];

/// A fake broker on loopback: its Kafka and HTTP addresses. Its threads end with the test
/// process.
struct Fake {
    kafka: String,
    http: String,
}

fn fake_broker() -> Fake {
    let kafka = TcpListener::bind("127.0.0.1:0").expect("bind the fake Kafka listener");
    let http = TcpListener::bind("127.0.0.1:0").expect("bind the fake HTTP listener");
    let fake = Fake {
        kafka: kafka.local_addr().expect("address").to_string(),
        http: http.local_addr().expect("address").to_string(),
    };
    thread::spawn(move || {
        for conn in kafka.incoming().flatten() {
            thread::spawn(move || serve_kafka(conn));
        }
    });
    thread::spawn(move || {
        for mut conn in http.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            // The whole request (it may arrive in pieces), then the answer.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    fake
}

/// Answers ApiVersions and CreateTopics; closes the connection on anything else.
fn serve_kafka(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    loop {
        let mut size = [0u8; 4];
        if conn.read_exact(&mut size).is_err() {
            return;
        }
        let Ok(len) = usize::try_from(i32::from_be_bytes(size)) else {
            return;
        };
        if len > 1 << 20 {
            return;
        }
        let mut payload = vec![0u8; len];
        if conn.read_exact(&mut payload).is_err() {
            return;
        }
        let Some(answer) = answer(&payload) else {
            return;
        };
        let mut framed = (answer.len() as i32).to_be_bytes().to_vec();
        framed.extend(answer);
        if conn.write_all(&framed).is_err() {
            return;
        }
    }
}

fn answer(payload: &[u8]) -> Option<Vec<u8>> {
    let api = ApiKey::try_from(i16::from_be_bytes([*payload.first()?, *payload.get(1)?])).ok()?;
    let version = i16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]);
    let &(_, lo, hi) = SERVED.iter().find(|(a, _, _)| *a == api)?;
    if !(lo..=hi).contains(&version) {
        return None;
    }
    let mut buf = Bytes::copy_from_slice(payload);
    let header = RequestHeader::decode(&mut buf, api.request_header_version(version)).ok()?;
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut out, api.response_header_version(version))
        .ok()?;
    match api {
        ApiKey::ApiVersions => ApiVersionsResponse::default()
            .with_api_keys(
                SERVED
                    .iter()
                    .map(|&(key, min, max)| {
                        ApiVersion::default()
                            .with_api_key(key as i16)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect(),
            )
            .encode(&mut out, version)
            .ok()?,
        ApiKey::CreateTopics => {
            let request = CreateTopicsRequest::decode(&mut buf, version).ok()?;
            CreateTopicsResponse::default()
                .with_topics(
                    request
                        .topics
                        .into_iter()
                        .map(|t| CreatableTopicResult::default().with_name(t.name))
                        .collect(),
                )
                .encode(&mut out, version)
                .ok()?
        }
        _ => return None,
    }
    Some(out.to_vec())
}

/// A kcat stand-in: `-V` succeeds, `-P` appends stdin to a file, `-C` prints the file, so the
/// round trip between rounds passes.
fn fake_kcat(dir: &Path) -> PathBuf {
    let path = dir.join("kcat");
    let store = dir.join("marker-topic");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  -V) echo fake kcat ;;\n  -P) cat >> '{0}' ;;\n  -C) cat '{0}' 2>/dev/null ;;\n  *) exit 1 ;;\nesac\n",
        store.display()
    );
    std::fs::write(&path, script).expect("write the fake kcat");
    let chmod = Command::new("chmod").arg("+x").arg(&path).status();
    assert!(chmod.is_ok_and(|s| s.success()), "chmod the fake kcat");
    path
}

/// What a run of the binary did.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `tributary-fuzz run` against a fresh fake broker with a fixed budget of 2 rounds x 40
/// frames and `extra` flags; kills it and fails the test if it runs past [`RUN_BOUND`].
fn run_fuzz(extra: &[&str]) -> Ran {
    let fake = fake_broker();
    let dir = tempfile::tempdir().expect("a scratch directory");
    let kcat = fake_kcat(dir.path());
    let log = dir.path().join("broker.log");
    std::fs::write(&log, "").expect("an empty broker log");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/captured.corpus");
    let pid = std::process::id().to_string();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary-fuzz"))
        .arg("run")
        .args(["--attach", &fake.kafka, "--attach-http", &fake.http])
        .args(["--attach-pid", &pid])
        .arg("--attach-log")
        .arg(&log)
        .arg("--kcat")
        .arg(&kcat)
        .arg("--corpus")
        .arg(&corpus)
        .args(["--seed", "1", "--rounds", "2", "--frames-per-round", "40"])
        .args(["--round-seconds", "60", "--workers", "2", "--no-bombs"])
        .args(["--response-timeout-ms", "2000"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary-fuzz");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll tributary-fuzz") {
            break status;
        }
        if started.elapsed() > RUN_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default(),
            );
            panic!(
                "tributary-fuzz {extra:?} did not end within {} s: it hangs\nstdout:\n{out}\nstderr:\n{err}",
                RUN_BOUND.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        took: started.elapsed(),
    }
}

fn describe(ran: &Ran) -> String {
    format!(
        "exit {} after {:.1} s\nstdout:\n{}\nstderr:\n{}",
        ran.status,
        ran.took.as_secs_f64(),
        ran.stdout,
        ran.stderr
    )
}

#[test]
fn a_clean_run_against_the_fake_broker_passes_with_its_fixed_frame_count() {
    let ran = run_fuzz(&[]);
    assert_eq!(ran.status.code(), Some(0), "{}", describe(&ran));
    assert!(
        ran.stdout
            .contains("mutated frames: 80 of a fixed budget of 2 rounds x 40"),
        "{}",
        describe(&ran)
    );
    assert!(ran.stdout.contains("VERDICT: PASS"), "{}", describe(&ran));
}

#[test]
fn a_panicking_worker_ends_the_run_with_a_reported_failure() {
    // Case 45 belongs to round 2 (cases 40..80).
    let ran = run_fuzz(&["--inject-fault", "worker-panic:45"]);
    assert_eq!(ran.status.code(), Some(1), "{}", describe(&ran));
    let out = &ran.stdout;
    for expected in [
        "FAIL [HARNESS PANICKED] the harness panicked in a worker handling case 45 (round 2)",
        "injected fault: the worker handling case 45 panics",
        "case: seed 1 index 45",
        "frame (",
        "harness: no panic, no overrun ............ FAIL (1)",
    ] {
        assert!(
            out.contains(expected),
            "{expected:?} missing: {}",
            describe(&ran)
        );
    }
}

#[test]
fn a_panicking_check_ends_the_run_with_a_reported_failure() {
    let ran = run_fuzz(&["--inject-fault", "check-panic:1"]);
    assert_eq!(ran.status.code(), Some(1), "{}", describe(&ran));
    assert!(
        ran.stdout
            .contains("the harness panicked in the checks after round 1 (round 1)"),
        "{}",
        describe(&ran)
    );
    assert!(
        ran.stdout.contains("frames in 1 rounds"),
        "no round after the panic: {}",
        describe(&ran)
    );
}

#[test]
fn a_hanging_check_is_ended_by_the_watchdog() {
    let ran = run_fuzz(&[
        "--inject-fault",
        "check-hang:1",
        "--check-seconds",
        "10",
        "--watchdog-margin-seconds",
        "3",
    ]);
    assert_eq!(ran.status.code(), Some(3), "{}", describe(&ran));
    for expected in [
        "WATCHDOG: checks after round 1 has run",
        "past its 10 s bound and the 3 s margin",
        "exiting with status 3",
        "FAIL [WATCHDOG: PHASE OVERRAN] checks after round 1",
    ] {
        assert!(
            ran.stderr.contains(expected),
            "{expected:?} missing: {}",
            describe(&ran)
        );
    }
}
