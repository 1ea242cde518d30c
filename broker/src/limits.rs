//! What this process may hold, for limits derived from it: the broker raises its soft file
//! descriptor limit to the hard one at start (as Kafka's packaging asks `ulimit -n` to be
//! high), and sizes the default partition budget (`max.broker.partitions`) from descriptors
//! and memory, so no topic creation can run the broker out of either.

use rustix::process::{getrlimit, setrlimit, Resource};

/// Descriptors one partition holds open: its active segment's log, a closed segment or two
/// awaiting retention, and a share of what its checkpoints and index writes open briefly.
const FDS_PER_PARTITION: u64 = 4;
/// Memory one idle partition costs (its state, the active segment's in-memory indexes, the
/// fetch and write buffers it keeps warm), generously rounded up.
const BYTES_PER_PARTITION: u64 = 1 << 20;
/// Descriptors kept for connections, the journal and everything else, at the least.
const MIN_FD_RESERVE: u64 = 1024;
/// The budget when nothing can be measured.
const FALLBACK_PARTITIONS: usize = 4096;

/// Raises the soft descriptor limit to the hard limit; returns the limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum) {
        if current < maximum {
            limit.current = Some(maximum);
            if let Err(error) = setrlimit(Resource::Nofile, limit) {
                tracing::warn!(%error, current, maximum, "cannot raise the file descriptor limit");
                return Some(current);
            }
            return Some(maximum);
        }
    }
    limit.current
}

/// The default `max.broker.partitions`: what a quarter of the descriptors (the rest stay for
/// connections and segments of busy partitions) and half of the memory allow.
pub fn default_max_broker_partitions() -> usize {
    let fds = getrlimit(Resource::Nofile).current;
    partition_budget(fds, available_memory())
}

/// The budget for `fds` descriptors and `memory` bytes, either unknown (`None`).
pub fn partition_budget(fds: Option<u64>, memory: Option<u64>) -> usize {
    let by_fds = fds.map(|n| n.saturating_sub(MIN_FD_RESERVE.max(n * 3 / 4)) / FDS_PER_PARTITION);
    let by_memory = memory.map(|m| m / 2 / BYTES_PER_PARTITION);
    let budget = match (by_fds, by_memory) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return FALLBACK_PARTITIONS,
    };
    usize::try_from(budget.max(1)).unwrap_or(usize::MAX)
}

/// The memory this process may use: the cgroup's limit where one is set (a container's
/// `resources.limits.memory`), else the machine's.
fn available_memory() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    match (cgroup, total) {
        (Some(c), Some(t)) => Some(c.min(t)),
        (c, t) => c.or(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_scarcer_resource() {
        // 20,000 descriptors: a quarter, 5,000, at 4 per partition.
        assert_eq!(partition_budget(Some(20_000), Some(64 << 30)), 1_250);
        // 1 GiB of memory: half of it at 1 MiB per partition.
        assert_eq!(partition_budget(Some(1 << 20), Some(1 << 30)), 512);
        assert_eq!(partition_budget(None, None), FALLBACK_PARTITIONS);
        // A tiny descriptor limit still allows one partition.
        assert_eq!(partition_budget(Some(100), None), 1);
    }
}
