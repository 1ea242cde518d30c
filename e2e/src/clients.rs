//! Real clients from the host, for tests: kcat (librdkafka) for the Kafka protocol, the Apache
//! Kafka Java client through `broker/tests/clients/java/KafkaCli.java` (compiled on first use),
//! and plain HTTP for `/metrics`. They panic on what a test cannot go on from (a missing tool,
//! a client that fails), naming how to fix it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tools::{repo_root, target_dir};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

/// Longest a client command may run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// What kcat's `-L -J` says about the cluster behind `bootstrap` (ApiVersions, then Metadata).
pub async fn kcat_metadata(bootstrap: &str) -> Result<Value, String> {
    let run = tokio::process::Command::new("kcat")
        .args(["-L", "-J", "-m", "10", "-b", bootstrap])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CLIENT_TIMEOUT, run)
        .await
        .map_err(|_| "kcat timed out".to_owned())?
        .map_err(|e| format!("kcat (install it with .ci/install-tools.sh): {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("kcat printed no JSON: {e}"))
}

/// `GET http://<addr><path>`: status and body (HTTP/1.0, read to the end).
pub async fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no HTTP status in {head:?}"))?;
        Ok((code, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .map_err(|_| format!("GET {addr}{path} timed out"))?
}

/// Compiles the Java clients now rather than at their first use (javac takes seconds on a
/// busy machine), so a test can overlap that with slower set-up.
pub async fn prepare_java() {
    java_classpath().await;
}

/// The Java client's classpath: the compiled KafkaCli and the jars `.ci/install-tools.sh`
/// unpacks into `.tools/kafka-java`.
async fn java_classpath() -> &'static str {
    static CLASSPATH: OnceCell<String> = OnceCell::const_new();
    CLASSPATH
        .get_or_init(|| async {
            let lib = repo_root().join(".tools/kafka-java");
            let mut jars: Vec<PathBuf> = std::fs::read_dir(&lib)
                .unwrap_or_else(|e| panic!("{}: {e}; run .ci/install-tools.sh", lib.display()))
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jar"))
                .collect();
            assert!(
                jars.iter()
                    .any(|j| j.to_string_lossy().contains("kafka-clients")),
                "no kafka-clients jar in {}: run .ci/install-tools.sh",
                lib.display()
            );
            let src = repo_root().join("broker/tests/clients/java");
            let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
                .expect("java sources")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "java"))
                .collect();
            sources.sort();
            jars.sort();
            let out = compiled_java(&target_dir().join("e2e/java"), &sources, &jars).await;
            let mut all = vec![out];
            all.extend(jars);
            std::env::join_paths(all)
                .expect("classpath")
                .to_string_lossy()
                .into_owned()
        })
        .await
}

/// The classes of `sources` compiled against `jars`, in a directory named by a hash of both:
/// test processes run concurrently (nextest runs each test in its own), so each compiles into
/// a private directory and renames it into place, and no process ever loads a class file that
/// another is still writing.
async fn compiled_java(root: &Path, sources: &[PathBuf], jars: &[PathBuf]) -> PathBuf {
    let out = root.join(format!("{:016x}", java_build_hash(sources, jars)));
    if out.is_dir() {
        return out;
    }
    static BUILDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let build = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let private = root.join(format!("tmp-{}-{build}", std::process::id()));
    std::fs::create_dir_all(&private).expect("java output dir");
    let status = tokio::process::Command::new("javac")
        .args(["-nowarn", "-encoding", "UTF-8", "-d"])
        .arg(&private)
        .arg("-cp")
        .arg(std::env::join_paths(jars).expect("classpath"))
        .args(sources)
        .status()
        .await
        .expect("javac");
    assert!(status.success(), "javac failed");
    // Another process may have put the same classes in place meanwhile: keep theirs.
    if std::fs::rename(&private, &out).is_err() {
        let _ = std::fs::remove_dir_all(&private);
        assert!(
            out.is_dir(),
            "could not move the compiled Java clients to {}",
            out.display()
        );
    }
    out
}

/// FNV-1a over the sources' names and contents and the jars' names: a new source or client
/// version compiles anew.
fn java_build_hash(sources: &[PathBuf], jars: &[PathBuf]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for source in sources {
        feed(source.to_string_lossy().as_bytes());
        feed(&std::fs::read(source).expect("java source"));
    }
    for jar in jars {
        feed(jar.to_string_lossy().as_bytes());
    }
    hash
}

/// `java <class>` from broker/tests/clients/java (compiled on first use) with stdin, stdout
/// and stderr piped and killed when dropped; callers add the arguments and spawn it.
pub(crate) async fn java_command(class: &str) -> tokio::process::Command {
    let classpath = java_classpath().await;
    let mut cmd = tokio::process::Command::new("java");
    cmd.args([
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-cp",
        classpath,
        class,
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    cmd
}

/// Runs `KafkaCli <args>` (see broker/tests/clients/java/KafkaCli.java), returning the JSON
/// lines it printed; a non-zero exit fails the test.
pub async fn java(args: &[&str], stdin: Option<&str>) -> Vec<Value> {
    java_main("KafkaCli", args, stdin).await
}

/// Runs `<class> <args>` from broker/tests/clients/java (`KafkaCli`, `GroupCli`), returning
/// the JSON lines it printed; a non-zero exit fails the test.
pub async fn java_main(class: &str, args: &[&str], stdin: Option<&str>) -> Vec<Value> {
    let mut child = java_command(class).await.args(args).spawn().expect("java");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .await
            .expect("java stdin");
    }
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .expect("the Java client finished in time")
        .expect("java ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{class} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Concurrent test processes once ran javac over one shared directory, so a process could
    /// load a class file another was rewriting ("Truncated class file"). Now the classes are
    /// compiled once per content, put in place whole, and never written again.
    #[tokio::test]
    async fn java_classes_are_put_in_place_whole_and_never_rewritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("Hello.java");
        std::fs::write(
            &source,
            "public class Hello { public static void main(String[] a) {} }",
        )
        .expect("write source");
        let root = dir.path().join("out");
        let sources = [source.clone()];

        let (a, b) = tokio::join!(
            compiled_java(&root, &sources, &[]),
            compiled_java(&root, &sources, &[])
        );
        assert_eq!(a, b, "both builds use one directory");
        let class = a.join("Hello.class");
        let written = std::fs::metadata(&class)
            .expect("Hello.class")
            .modified()
            .expect("mtime");
        let again = compiled_java(&root, &sources, &[]).await;
        assert_eq!(again, a);
        let after = std::fs::metadata(&class)
            .expect("Hello.class")
            .modified()
            .expect("mtime");
        assert_eq!(written, after, "a class file in place was rewritten");
        let leftovers: Vec<_> = std::fs::read_dir(&root)
            .expect("out dir")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().starts_with("tmp-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "private build directories left: {leftovers:?}"
        );

        std::fs::write(&source, "public class Hello { static int x; }").expect("edit source");
        let edited = compiled_java(&root, &sources, &[]).await;
        assert_ne!(edited, a, "an edited source compiles anew");
    }
}
