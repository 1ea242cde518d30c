//! Histories from the Apache Kafka Java client (`KafkaCli history-produce` and
//! `history-consume`, broker/tests/clients/java/HistoryCli.java): an idempotent acks=all
//! producer running in the background while a test disturbs the cluster, and a read-back of
//! the whole topic. The producer can be librdkafka instead
//! (broker/tests/clients/rdkafka_history.py, the same arguments and output). Like
//! [`crate::clients`], these panic on what a test cannot go on from (a
//! client that crashed, a read-back that stopped short), saying why.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::ChildStdin;
use tokio::task::JoinHandle;

use super::{Attempt, History, Outcome, Position, Read, ValueId};
use crate::clients::java_command;

/// What the background producer sends, and how it is bounded.
#[derive(Debug, Clone)]
pub struct Workload {
    /// `host:port[,host:port...]` of any broker of the cluster.
    pub bootstrap: String,
    /// The topic (create it first; a history needs a topic of its own).
    pub topic: String,
    /// How many records to send; None sends until [`Workload::duration`] or
    /// [`Producing::stop`].
    pub count: Option<u64>,
    /// How long to send for.
    pub duration: Option<Duration>,
    /// At most this many records per second (None: as fast as the client goes).
    pub rate: Option<f64>,
    /// The first record's id; later ones count up. Runs into one topic need disjoint ids.
    pub first_id: ValueId,
    /// Values are padded to this many bytes.
    pub value_size: usize,
    /// One partition to send to; None lets the client's partitioner spread them.
    pub partition: Option<i32>,
    /// How long the client retries one record (`delivery.timeout.ms`, also `max.block.ms`):
    /// a failover must fit in it, or its records fail (indefinitely).
    pub delivery_timeout: Duration,
    /// Further producer settings (`--prop k=v`).
    pub props: Vec<(String, String)>,
    /// The run is killed and the test fails if it takes longer than this.
    pub time_limit: Duration,
    /// Which client library produces.
    pub client: Producer,
}

/// The client library of a [`Workload`]: failover handling differs between them (metadata
/// refresh, retries, idempotence epochs), so both are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// The Apache Kafka Java client.
    Java,
    /// librdkafka, through confluent-kafka for Python.
    Librdkafka,
}

impl Workload {
    /// 1000 records of ids 0.. to `topic` through `bootstrap`, unthrottled, with a 60 s
    /// delivery timeout and a 5 minute time limit.
    pub fn new(bootstrap: &str, topic: &str) -> Workload {
        Workload {
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
            count: Some(1000),
            duration: None,
            rate: None,
            first_id: 0,
            value_size: 0,
            partition: None,
            delivery_timeout: Duration::from_secs(60),
            props: Vec::new(),
            time_limit: Duration::from_secs(300),
            client: Producer::Java,
        }
    }

    /// `KafkaCli history-produce`'s arguments for this workload.
    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "history-produce".into(),
            "--bootstrap".into(),
            self.bootstrap.clone(),
            "--topic".into(),
            self.topic.clone(),
            "--count".into(),
            // -1: no limit.
            self.count
                .map_or_else(|| "-1".to_owned(), |c| c.to_string()),
            "--first-id".into(),
            self.first_id.to_string(),
            "--value-size".into(),
            self.value_size.to_string(),
            "--delivery-timeout-ms".into(),
            self.delivery_timeout.as_millis().to_string(),
            "--stdin-stop".into(),
        ];
        if let Some(d) = self.duration {
            args.extend(["--duration-ms".into(), d.as_millis().to_string()]);
        }
        if let Some(r) = self.rate {
            args.extend(["--rate".into(), r.to_string()]);
        }
        if let Some(p) = self.partition {
            args.extend(["--partition".into(), p.to_string()]);
        }
        for (k, v) in &self.props {
            args.extend(["--prop".into(), format!("{k}={v}")]);
        }
        args
    }

    /// Starts the producer in the background.
    pub async fn start(&self) -> Producing {
        let args = self.args();
        let mut command = match self.client {
            Producer::Java => java_command("KafkaCli").await,
            Producer::Librdkafka => python_command("rdkafka_history.py"),
        };
        let mut child = command
            .args(match self.client {
                Producer::Java => &args[..],
                // The script is history-produce itself.
                Producer::Librdkafka => &args[1..],
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {:?} producer: {e}", self.client));
        let stdin = child.stdin.take();
        let progress = Arc::new(Progress::default());
        let run = Run {
            first_id: self.first_id,
            progress: progress.clone(),
            attempts: Vec::new(),
            attempted: None,
            retries: 0,
        };
        let limit = self.time_limit;
        let task = tokio::spawn(async move {
            tokio::time::timeout(limit, run.follow(child))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the producer ran past its time limit of {limit:?} (killed)"
                    ))
                })
        });
        Producing {
            progress,
            stdin,
            task: Some(task),
        }
    }
}

/// Counters the output reader updates as outcomes arrive.
#[derive(Debug, Default)]
struct Progress {
    acked: AtomicU64,
    failed: AtomicU64,
}

/// A producer running in the background (killed if dropped).
#[derive(Debug)]
pub struct Producing {
    progress: Arc<Progress>,
    /// Held open: closing it tells the producer to stop sending.
    stdin: Option<ChildStdin>,
    /// Follows the producer's output; yields its history or what went wrong.
    task: Option<JoinHandle<Result<History, String>>>,
}

impl Producing {
    /// Records acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.progress.acked.load(Ordering::Relaxed)
    }

    /// Records failed so far.
    pub fn failed(&self) -> u64 {
        self.progress.failed.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` records have been acknowledged; fails the test after
    /// `deadline`.
    pub async fn wait_for_acks(&self, n: u64, deadline: Duration) {
        crate::wait_until(&format!("{n} acknowledged records"), deadline, || async {
            (self.acked() >= n).then_some(())
        })
        .await;
    }

    /// Waits for the run to end by itself (its count or duration) and returns its history.
    /// Fails the test if the client failed.
    pub async fn finish(mut self) -> History {
        let Some(task) = self.task.take() else {
            unreachable!("a Producing is finished once, by value");
        };
        match task.await {
            Ok(Ok(history)) => history,
            Ok(Err(problem)) => panic!("history-produce failed: {problem}"),
            Err(e) => panic!("the producer's output reader failed: {e}"),
        }
    }

    /// Stops sending, waits for every outstanding record's outcome and returns the history.
    pub async fn stop(mut self) -> History {
        self.stdin = None;
        self.finish().await
    }
}

impl Drop for Producing {
    fn drop(&mut self) {
        // Dropping the reader drops the child, which kills it.
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// One producer run's output as it is read.
struct Run {
    first_id: ValueId,
    progress: Arc<Progress>,
    /// Outcomes in arrival order.
    attempts: Vec<Attempt>,
    /// From the final `done` line.
    attempted: Option<u64>,
    /// From the final `done` line (absent in older output: 0).
    retries: u64,
}

impl Run {
    /// Reads the child's output to its end, then its exit status.
    async fn follow(mut self, mut child: tokio::process::Child) -> Result<History, String> {
        let stdout = child
            .stdout
            .take()
            .ok_or("the producer's stdout is not piped")?;
        let stderr = child.stderr.take();
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_string(&mut text).await;
            }
            text
        });
        let mut lines = BufReader::new(stdout).lines();
        let mut problem = None;
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| format!("reading the producer's output: {e}"))?
        {
            if let Err(e) = self.line(&line) {
                problem.get_or_insert(e);
            }
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for the producer: {e}"))?;
        let stderr = errors.await.unwrap_or_default();
        if let Some(problem) = problem {
            return Err(format!("{problem}\n{stderr}"));
        }
        if !status.success() {
            return Err(format!("the producer exited with {status}:\n{stderr}"));
        }
        self.history()
            .map_err(|problem| format!("{problem}\n{stderr}"))
    }

    /// Takes in one line of output.
    fn line(&mut self, line: &str) -> Result<(), String> {
        if !line.starts_with('{') {
            return Ok(());
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("bad output line {line:?}: {e}"))?;
        match v["event"].as_str() {
            Some("ack") | Some("error") => {
                let attempt = outcome(&v).ok_or_else(|| format!("bad outcome line {line}"))?;
                let counter = match attempt.outcome {
                    Outcome::Acked(_) => &self.progress.acked,
                    _ => &self.progress.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.attempts.push(attempt);
            }
            Some("done") => {
                self.attempted = Some(
                    v["attempted"]
                        .as_u64()
                        .ok_or_else(|| format!("bad done line {line}"))?,
                );
                self.retries = v["retries"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
        Ok(())
    }

    /// The history: every attempted id in order, with its outcome or [`Outcome::Unknown`].
    fn history(self) -> Result<History, String> {
        let attempted = self
            .attempted
            .ok_or("the producer ended without its done line")?;
        let mut by_id: BTreeMap<ValueId, Attempt> = BTreeMap::new();
        for attempt in self.attempts {
            let id = attempt.id;
            if by_id.insert(id, attempt).is_some() {
                return Err(format!("two outcomes for id {id}"));
            }
        }
        let ids = self.first_id..self.first_id + attempted;
        if let Some(stray) = by_id.keys().find(|id| !ids.contains(id)) {
            return Err(format!("an outcome for id {stray}, which was never sent"));
        }
        let attempts = ids
            .map(|id| by_id.remove(&id).unwrap_or_else(|| Attempt::unknown(id)))
            .collect();
        Ok(History {
            attempts,
            retries: self.retries,
        })
    }
}

/// An `ack` or `error` line as an attempt.
fn outcome(v: &Value) -> Option<Attempt> {
    let id = v["id"].as_u64()?;
    let at = Duration::from_millis(v["ms"].as_u64()?);
    let outcome = if v["event"] == "ack" {
        Outcome::Acked(Position::new(
            i32::try_from(v["partition"].as_i64()?).ok()?,
            v["offset"].as_i64()?,
        ))
    } else {
        Outcome::Failed {
            definite: v["definite"].as_bool()?,
            error: format!(
                "{}: {}",
                v["error"].as_str()?,
                v["message"].as_str().unwrap_or_default()
            ),
        }
    };
    Some(Attempt { id, outcome, at })
}

/// Reads `topic` from the beginning to the end offsets it has when the read starts (with
/// the Java client, `KafkaCli history-consume`), giving up after `timeout`. Fails the test if
/// the client fails, the end is not reached in time, or a value is not a history id.
pub async fn read_back(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<Read> {
    let timeout_ms = timeout.as_millis().to_string();
    let args = [
        "history-consume",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--timeout-ms",
        &timeout_ms,
    ];
    let mut child = java_command("KafkaCli")
        .await
        .args(args)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start java (install a JDK): {e}"));
    // Nothing to say on stdin.
    drop(child.stdin.take());
    // The client's own timeouts come on top of `timeout`.
    let out = tokio::time::timeout(timeout + Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("history-consume of {topic} did not end in time"))
        .unwrap_or_else(|e| panic!("history-consume of {topic}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "history-consume of {topic} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    reads(&stdout).unwrap_or_else(|e| panic!("history-consume of {topic}: {e}"))
}

/// The reads in `history-consume`'s output, if it reached the end and every value is an id.
fn reads(stdout: &str) -> Result<Vec<Read>, String> {
    let mut reads = Vec::new();
    let mut done = None;
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("bad output line {line:?}: {e}"))?;
        match v["event"].as_str() {
            Some("read") => reads.push(read(&v)?),
            Some("done") => done = Some(v),
            _ => {}
        }
    }
    let done = done.ok_or("the consumer ended without its done line")?;
    if done["complete"] != true {
        return Err(format!(
            "stopped short of the end offsets {} at positions {} (partition: offset)",
            done["ends"], done["positions"]
        ));
    }
    Ok(reads)
}

/// A `read` line as a read.
fn read(v: &Value) -> Result<Read, String> {
    let position = v["partition"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .zip(v["offset"].as_i64())
        .ok_or_else(|| format!("bad read line {v}"))?;
    let id = v["id"].as_u64().ok_or_else(|| {
        format!(
            "the record at {}/{} holds {}, not a history id: give the history a topic of its own",
            position.0, position.1, v["value"]
        )
    })?;
    Ok(Read::new(position.0, position.1, id))
}

/// `python3 broker/tests/clients/<script>` with piped stdio, killed on drop.
fn python_command(script: &str) -> tokio::process::Command {
    let path = crate::tools::repo_root()
        .join("broker/tests/clients")
        .join(script);
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first_id: ValueId) -> Run {
        Run {
            first_id,
            progress: Arc::new(Progress::default()),
            attempts: Vec::new(),
            attempted: None,
            retries: 0,
        }
    }

    #[test]
    fn a_producer_run_becomes_a_history_with_unreported_ids_unknown() {
        let mut run = run(10);
        for line in [
            "SLF4J: no binding",
            r#"{"event":"ack","id":11,"partition":2,"offset":0,"ms":40}"#,
            r#"{"event":"error","id":10,"error":"TimeoutException","message":"expired","definite":false,"ms":900}"#,
            r#"{"event":"done","attempted":3,"acked":1,"errors":1}"#,
        ] {
            run.line(line).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(run.progress.acked.load(Ordering::Relaxed), 1);
        assert_eq!(run.progress.failed.load(Ordering::Relaxed), 1);
        let history = run.history().unwrap_or_else(|e| panic!("{e}"));
        let mut ack = Attempt::acked(11, 2, 0);
        ack.at = Duration::from_millis(40);
        let mut timeout = Attempt::failed(10, false, "TimeoutException: expired");
        timeout.at = Duration::from_millis(900);
        assert_eq!(
            history.attempts,
            vec![timeout, ack, Attempt::unknown(12)],
            "in id order"
        );
    }

    #[test]
    fn a_producer_run_without_its_done_line_or_with_stray_ids_is_refused() {
        let mut cut = run(0);
        cut.line(r#"{"event":"ack","id":0,"partition":0,"offset":0,"ms":1}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cut.history(),
            Err("the producer ended without its done line".to_owned())
        );
        let mut stray = run(0);
        for line in [
            r#"{"event":"ack","id":5,"partition":0,"offset":0,"ms":1}"#,
            r#"{"event":"done","attempted":1}"#,
        ] {
            stray.line(line).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            stray.history(),
            Err("an outcome for id 5, which was never sent".to_owned())
        );
        assert!(run(0).line(r#"{"event":"ack","id":"x"}"#).is_err());
    }

    #[test]
    fn a_complete_read_back_becomes_reads_and_an_incomplete_one_is_refused() {
        let out = "{\"event\":\"read\",\"partition\":1,\"offset\":7,\"id\":3}\n\
                   {\"event\":\"done\",\"reads\":1,\"complete\":true,\"ends\":{\"1\":8},\"positions\":{\"1\":8}}\n";
        assert_eq!(reads(out), Ok(vec![Read::new(1, 7, 3)]));
        let short = "{\"event\":\"done\",\"reads\":0,\"complete\":false,\"ends\":{\"0\":5},\"positions\":{\"0\":2}}";
        assert_eq!(
            reads(short),
            Err(
                "stopped short of the end offsets {\"0\":5} at positions {\"0\":2} (partition: offset)"
                    .to_owned()
            )
        );
        let foreign =
            "{\"event\":\"read\",\"partition\":0,\"offset\":0,\"id\":null,\"value\":\"hello\"}";
        assert!(reads(foreign).is_err_and(|e| e.contains("\"hello\", not a history id")));
    }

    #[test]
    fn the_workload_asks_for_an_idempotent_run_stopped_by_stdin() {
        let mut w = Workload::new("127.0.0.1:9092", "h");
        w.count = None;
        w.rate = Some(500.0);
        w.props.push(("linger.ms".into(), "5".into()));
        let args = w.args().join(" ");
        assert_eq!(
            args,
            "history-produce --bootstrap 127.0.0.1:9092 --topic h --count -1 --first-id 0 \
             --value-size 0 --delivery-timeout-ms 60000 --stdin-stop --rate 500 --prop linger.ms=5"
        );
    }
}
