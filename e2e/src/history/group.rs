//! A consumer group reading a topic while a scenario runs: one member of the Java client's
//! group protocol (`GroupCli member`: subscribe, poll, commit after every poll), so failovers,
//! rolls and moves are also judged from a consumer's side. What it read is checked against the
//! producer's history ([`GroupReads::check`]): every acknowledged record read, each read record
//! acknowledged at the offset it was read at, and its committed offsets at the log's end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;

use super::{History, ValueId};
use crate::clients::java_command;

/// One record the member read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRead {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The producer's id in the value, if it holds one.
    pub id: Option<ValueId>,
}

/// What the member's output said so far.
#[derive(Debug, Default, Clone)]
pub struct GroupReads {
    /// Every record read, in order (a record read again after a rebalance appears twice).
    pub reads: Vec<GroupRead>,
    /// The last offset committed per partition (the next to read).
    pub committed: BTreeMap<i32, i64>,
    /// Commits the group refused (a rebalance in between): retried by the next poll.
    pub failed_commits: usize,
    /// Assignments received (the first, and one per rebalance).
    pub assignments: usize,
}

impl GroupReads {
    fn line(&mut self, v: &Value) {
        match v["event"].as_str() {
            Some("record") => {
                let (Some(partition), Some(offset)) = (
                    v["partition"].as_i64().and_then(|p| i32::try_from(p).ok()),
                    v["offset"].as_i64(),
                ) else {
                    return;
                };
                let id = v["value"].as_str().and_then(value_id);
                self.reads.push(GroupRead {
                    partition,
                    offset,
                    id,
                });
            }
            Some("committed") => {
                if let Some(offsets) = v["offsets"].as_object() {
                    for (p, o) in offsets {
                        if let (Ok(p), Some(o)) = (p.parse(), o.as_i64()) {
                            self.committed.insert(p, o);
                        }
                    }
                }
            }
            Some("commit-failed") => self.failed_commits += 1,
            Some("assigned") => self.assignments += 1,
            _ => {}
        }
    }

    /// The problems of these reads against the producer's `history`, where the topic's
    /// partitions end at `ends`: acknowledged records never read, records read that were not
    /// acknowledged at that position, and committed offsets short of the end. Empty when
    /// the group saw exactly what the producer was told.
    pub fn check(&self, history: &History, ends: &BTreeMap<i32, i64>) -> Vec<String> {
        let mut problems = Vec::new();
        let acked: BTreeMap<ValueId, (i32, i64)> = history
            .attempts
            .iter()
            .filter_map(|a| a.ack().map(|p| (a.id, (p.partition, p.offset))))
            .collect();
        let read_ids: BTreeSet<ValueId> = self.reads.iter().filter_map(|r| r.id).collect();
        let unread = acked.keys().filter(|id| !read_ids.contains(id)).count();
        if unread > 0 {
            problems.push(format!(
                "{unread} acknowledged records never read by the group"
            ));
        }
        let misplaced: Vec<&GroupRead> = self
            .reads
            .iter()
            .filter(|r| {
                r.id.is_none_or(|id| acked.get(&id) != Some(&(r.partition, r.offset)))
            })
            .collect();
        if !misplaced.is_empty() {
            problems.push(format!(
                "{} records read that were not acknowledged at that position, first {:?}",
                misplaced.len(),
                misplaced[0]
            ));
        }
        for (p, end) in ends {
            let committed = self.committed.get(p).copied().unwrap_or(0);
            if committed < *end && *end > 0 {
                problems.push(format!(
                    "partition {p}: committed {committed}, log end {end}"
                ));
            }
        }
        problems
    }
}

/// The producer's id a value carries ("<id>" or "<id>:xxx").
fn value_id(value: &str) -> Option<ValueId> {
    value.split(':').next()?.parse().ok()
}

/// A group member running in the background (killed if dropped).
pub struct GroupReader {
    reads: Arc<Mutex<GroupReads>>,
    stdin: Option<ChildStdin>,
    task: JoinHandle<Result<(), String>>,
}

impl GroupReader {
    /// Starts a member of `group` subscribed to `topic` through `bootstrap`.
    pub async fn start(bootstrap: &str, topic: &str, group: &str) -> GroupReader {
        let mut child: Child = java_command("GroupCli")
            .await
            .args([
                "member",
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--group",
                group,
            ])
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the group member: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let reads = Arc::new(Mutex::new(GroupReads::default()));
        let into = reads.clone();
        let task = tokio::spawn(async move {
            let stdout = stdout.ok_or("the member's stdout is not piped")?;
            let mut lines = BufReader::new(stdout).lines();
            while let Some(line) = lines
                .next_line()
                .await
                .map_err(|e| format!("reading the member's output: {e}"))?
            {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    into.lock().unwrap_or_else(PoisonError::into_inner).line(&v);
                }
            }
            let output = child
                .wait_with_output()
                .await
                .map_err(|e| format!("waiting for the member: {e}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "the group member exited with {}:\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        });
        GroupReader { reads, stdin, task }
    }

    /// What it read so far.
    pub fn reads(&self) -> GroupReads {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the group has committed `ends` for every partition, then leaves the group
    /// and returns everything it read; fails the test if that takes longer than `deadline`
    /// or the member failed. Judging the reads is the caller's ([`GroupReads::check`]).
    pub async fn stop_at(mut self, ends: &BTreeMap<i32, i64>, deadline: Duration) -> GroupReads {
        crate::wait_until(
            &format!("the group to commit the log ends {ends:?}"),
            deadline,
            || async {
                let reads = self.reads();
                ends.iter()
                    .all(|(p, end)| reads.committed.get(p).copied().unwrap_or(0) >= *end)
                    .then_some(())
            },
        )
        .await;
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"close\n").await;
        }
        match tokio::time::timeout(Duration::from_secs(60), &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(problem))) => panic!("{problem}"),
            Ok(Err(e)) => panic!("the member's output reader failed: {e}"),
            Err(_) => panic!("the group member did not leave within 60 s"),
        }
        self.reads()
    }
}

impl Drop for GroupReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Attempt;

    fn read(partition: i32, offset: i64, id: u64) -> GroupRead {
        GroupRead {
            partition,
            offset,
            id: Some(id),
        }
    }

    #[test]
    fn reads_are_judged_against_the_acknowledgements() {
        let history = History {
            attempts: vec![Attempt::acked(0, 0, 0), Attempt::acked(1, 0, 1)],
            retries: 0,
        };
        let ends: BTreeMap<i32, i64> = [(0, 2)].into();
        let mut good = GroupReads {
            reads: vec![read(0, 0, 0), read(0, 1, 1), read(0, 1, 1)],
            ..GroupReads::default()
        };
        good.committed.insert(0, 2);
        assert_eq!(good.check(&history, &ends), Vec::<String>::new());

        let mut bad = GroupReads {
            reads: vec![read(0, 0, 0), read(0, 5, 7)],
            ..GroupReads::default()
        };
        bad.committed.insert(0, 1);
        let problems = bad.check(&history, &ends);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn output_lines_are_followed() {
        let mut reads = GroupReads::default();
        for line in [
            r#"{"event":"assigned","partitions":[0]}"#,
            r#"{"event":"record","partition":0,"offset":3,"value":"17:xxxx"}"#,
            r#"{"event":"record","partition":0,"offset":4,"value":"other"}"#,
            r#"{"event":"committed","offsets":{"0":5}}"#,
            r#"{"event":"commit-failed","error":"CommitFailedException"}"#,
        ] {
            reads.line(&serde_json::from_str(line).unwrap_or_default());
        }
        assert_eq!(reads.reads[0], read(0, 3, 17));
        assert_eq!(reads.reads[1].id, None);
        assert_eq!(reads.committed.get(&0), Some(&5));
        assert_eq!((reads.failed_commits, reads.assignments), (1, 1));
    }
}
