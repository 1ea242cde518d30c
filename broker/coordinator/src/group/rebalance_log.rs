//! The rebalances a group went through since the metrics last read them: how many started and
//! how long each finished one took. The group notes them as its state changes (pure, no
//! clock of its own); a scrape takes them for the rebalance counters and histograms.

/// Finished rebalances kept between two scrapes, per group (older ones are dropped).
const MAX_KEPT: usize = 64;

/// One group's rebalances not yet read by the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebalanceLog {
    /// When the rebalance under way started (monotonic ms).
    started_at: Option<i64>,
    /// Rebalances started since the last read.
    started: u64,
    /// Durations (ms) of rebalances finished since the last read.
    finished_ms: Vec<i64>,
}

/// What a scrape takes from a [`RebalanceLog`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebalances {
    /// Rebalances started.
    pub started: u64,
    /// Durations (ms) of the rebalances finished.
    pub finished_ms: Vec<i64>,
}

impl RebalanceLog {
    /// A rebalance starts at `now`, unless one is already under way (it just goes on).
    pub fn start(&mut self, now: i64) {
        if self.started_at.is_none() {
            self.started_at = Some(now);
            self.started += 1;
        }
    }

    /// The rebalance under way, if any, finished at `now`: the group is stable again.
    pub fn finish(&mut self, now: i64) {
        if let Some(at) = self.started_at.take() {
            if self.finished_ms.len() < MAX_KEPT {
                self.finished_ms.push((now - at).max(0));
            }
        }
    }

    /// The rebalance under way ended without a stable group (every member left).
    pub fn abandon(&mut self) {
        self.started_at = None;
    }

    /// Takes what happened since the last call.
    pub fn take(&mut self) -> Rebalances {
        Rebalances {
            started: std::mem::take(&mut self.started),
            finished_ms: std::mem::take(&mut self.finished_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebalance_is_counted_once_and_timed_from_its_first_start() {
        let mut log = RebalanceLog::default();
        log.start(100);
        log.start(150);
        log.finish(400);
        log.finish(500);
        assert_eq!(
            log.take(),
            Rebalances {
                started: 1,
                finished_ms: vec![300]
            }
        );
        assert_eq!(log.take(), Rebalances::default(), "taken once");
    }

    #[test]
    fn an_abandoned_rebalance_is_counted_but_not_timed() {
        let mut log = RebalanceLog::default();
        log.start(0);
        log.abandon();
        log.finish(10);
        assert_eq!(log.take().finished_ms, Vec::<i64>::new());
    }

    #[test]
    fn durations_kept_between_reads_are_bounded() {
        let mut log = RebalanceLog::default();
        for t in 0..200 {
            log.start(t);
            log.finish(t + 1);
        }
        let taken = log.take();
        assert_eq!(taken.started, 200);
        assert_eq!(taken.finished_ms.len(), MAX_KEPT);
    }
}
