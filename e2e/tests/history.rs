//! The client-history checker (`tributary_e2e::history`) against a real standalone
//! `tributary-broker` and the Apache Kafka Java client: an idempotent acks=all producer's
//! history reads back clean, doctored copies of it are caught, and a broker SIGKILLed and
//! restarted mid-stream loses and duplicates nothing.
//!
//! The broker binary is `TRIBUTARY_BROKER_BIN`, else `target/debug/tributary-broker`, built
//! first when older than its sources.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::OnceCell;
use tributary_e2e::clients::{java, kcat_metadata};
use tributary_e2e::history::{check, read_back, Position, Read, Workload};
use tributary_e2e::tools;

/// How long a broker may take to answer Metadata after it starts.
const READY: Duration = Duration::from_secs(30);
/// How long a read-back may take.
const READ_BACK: Duration = Duration::from_secs(60);
/// The topic's partitions: enough for reads of partitions to interleave.
const PARTITIONS: usize = 3;

/// The broker binary to run, built once per test binary.
async fn broker_binary() -> PathBuf {
    static BINARY: OnceCell<PathBuf> = OnceCell::const_new();
    BINARY
        .get_or_init(|| async {
            if let Some(bin) = std::env::var_os("TRIBUTARY_BROKER_BIN") {
                return PathBuf::from(bin);
            }
            tools::build(&["tributary-broker"])
                .await
                .unwrap_or_else(|e| panic!("build tributary-broker: {e}"));
            tools::debug_binary("tributary-broker")
        })
        .await
        .clone()
}

/// `127.0.0.1:<a free port>`.
fn free_address() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"));
    format!("127.0.0.1:{port}")
}

/// A standalone broker on a data directory it keeps across restarts; killed when dropped.
struct Broker {
    bin: PathBuf,
    dir: tempfile::TempDir,
    addr: String,
    http: String,
    child: Option<tokio::process::Child>,
}

impl Broker {
    async fn start() -> Broker {
        let mut broker = Broker {
            bin: broker_binary().await,
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}")),
            addr: free_address(),
            http: free_address(),
            child: None,
        };
        broker.run().await;
        broker
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// The broker's log so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the process (appending to its log) and waits until it answers Metadata.
    async fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("broker log: {e}"));
        let err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("broker log: {e}"));
        let child = tokio::process::Command::new(&self.bin)
            .args([
                "--listener",
                &self.addr,
                "--advertised-listener",
                &self.addr,
            ])
            .args(["--http-listener", &self.http, "--data-dir"])
            .arg(data_dir(self.dir.path()))
            // The default 128 MiB journal need not be preallocated for a test.
            .env("TRIBUTARY_COMMIT_JOURNAL_BYTES", (8u64 << 20).to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + READY;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("the broker exited with {status}:\n{}", self.log());
            }
            if kcat_metadata(&self.addr).await.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the broker did not answer Metadata within {READY:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, as a crash would, and waits for the process to be gone.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Creates `topic` with [`PARTITIONS`] partitions.
async fn create_topic(bootstrap: &str, topic: &str) {
    let partitions = PARTITIONS.to_string();
    let created = java(
        &[
            "admin",
            "--bootstrap",
            bootstrap,
            "create-topic",
            "--topic",
            topic,
            "--partitions",
            &partitions,
            "--rf",
            "1",
        ],
        None,
    )
    .await;
    assert!(
        created.iter().any(|l| l["event"] == "created"),
        "create {topic}: {created:?}"
    );
}

/// How many partitions `reads` touch.
fn partitions_read(reads: &[Read]) -> usize {
    let mut partitions: Vec<i32> = reads.iter().map(|r| r.position.partition).collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_s_history_reads_back_clean_and_doctored_copies_are_caught() {
    let broker = Broker::start().await;
    create_topic(&broker.addr, "ledger").await;
    let mut workload = Workload::new(&broker.addr, "ledger");
    workload.count = Some(3000);
    // Bigger values fill batches sooner, so the sticky partitioner moves between partitions.
    workload.value_size = 100;
    let producing = workload.start().await;
    producing.wait_for_acks(1, READY).await;
    let history = producing.finish().await;
    let reads = read_back(&broker.addr, "ledger", READ_BACK).await;

    let report = check(&history, &reads);
    eprintln!("{report}");
    report.assert_clean();
    assert_eq!((report.attempted, report.acked), (3000, 3000), "{report}");
    assert_eq!(reads.len(), 3000);
    assert!(
        partitions_read(&reads) > 1,
        "the records spread over partitions"
    );

    // One acknowledged record removed from the read-back: lost.
    let mut removed = reads.clone();
    let gone = removed.remove(1234);
    let report = check(&history, &removed);
    assert_eq!(report.lost.len(), 1, "{report}");
    assert_eq!(report.lost[0].id, gone.id);
    assert_eq!(report.anomalies(), 1, "{report}");

    // One record read again at the end of its partition: a duplicate.
    let mut duplicated = reads.clone();
    let again = reads[42];
    let end = reads
        .iter()
        .filter(|r| r.position.partition == again.position.partition)
        .map(|r| r.position.offset)
        .max()
        .unwrap_or_default();
    duplicated.push(Read {
        position: Position::new(again.position.partition, end + 1),
        id: again.id,
    });
    let report = check(&history, &duplicated);
    assert_eq!(report.duplicates.len(), 1, "{report}");
    assert_eq!(report.duplicates[0].id, again.id);
    assert_eq!(report.anomalies(), 1, "{report}");

    // The same record read twice in a row: non-monotonic.
    let mut reread = reads.clone();
    reread.insert(43, reads[42]);
    let report = check(&history, &reread);
    assert_eq!(report.reorders.len(), 1, "{report}");
    assert_eq!(report.anomalies(), 1, "{report}");

    // A second run whose records the client refuses (larger than max.request.size): each is
    // a definite failure, none is written, and the two runs together still check clean.
    let mut refused = Workload::new(&broker.addr, "ledger");
    refused.count = Some(20);
    refused.first_id = 1_000_000;
    refused.value_size = 4096;
    refused
        .props
        .push(("max.request.size".to_owned(), "1024".to_owned()));
    let mut both = history;
    both.extend(refused.start().await.finish().await);
    let report = check(&both, &read_back(&broker.addr, "ledger", READ_BACK).await);
    report.assert_clean();
    assert_eq!(
        (report.acked, report.definite_failures, report.reads),
        (3000, 20, 3000),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_a_broker_sigkill_and_restart_mid_stream() {
    let mut broker = Broker::start().await;
    create_topic(&broker.addr, "journal").await;
    let mut workload = Workload::new(&broker.addr, "journal");
    workload.count = Some(4000);
    workload.rate = Some(1000.0);
    workload.value_size = 100;
    let producing = workload.start().await;
    producing.wait_for_acks(1000, READY).await;
    broker.kill().await;
    let at_kill = producing.acked();
    assert!(
        at_kill < 4000,
        "the kill came before the last acknowledgement"
    );
    broker.run().await;
    let history = producing.finish().await;
    let reads = read_back(&broker.addr, "journal", READ_BACK).await;

    let report = check(&history, &reads);
    eprintln!(
        "{report}\nlongest wait between acks: {:?}",
        history.longest_ack_gap()
    );
    report.assert_clean();
    assert!(
        report.acked as u64 > at_kill,
        "production resumed after the restart: {report}"
    );
    assert!(
        partitions_read(&reads) > 1,
        "the records spread over partitions"
    );
    drop(broker);
}
