//! Prometheus metrics: reconcile counts, errors by kind, durations per controller, and whether
//! this replica is the leader. Served on `/metrics` by [`crate::http`].

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::{
    Encoder, HistogramOpts, HistogramTimer, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The operator's metrics and readiness flag.
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    /// 1 while this replica holds the leader Lease.
    pub leader: IntGauge,
    /// Mirrors `/readyz` so an alert can see an operator stuck before it can reconcile.
    ready_gauge: IntGauge,
    ready: AtomicBool,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "tributary_operator_reconciles_total",
                "Reconciles started, by controller",
            ),
            &["controller"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "tributary_operator_reconcile_errors_total",
                "Reconciles that failed, by controller and error kind",
            ),
            &["controller", "error"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tributary_operator_reconcile_duration_seconds",
                "Reconcile duration, by controller",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["controller"],
        )?;
        let leader = IntGauge::new(
            "tributary_operator_leader",
            "1 when this replica is the active operator",
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        let ready_gauge = IntGauge::new(
            "tributary_operator_ready",
            "1 when the Kubernetes API answers and the CRDs are installed (same as /readyz)",
        )?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(ready_gauge.clone()))?;
        // Series exist at zero from the start, so `rate()` and `increase()` see the first
        // reconcile instead of treating it as the beginning of the series.
        for controller in [
            crate::cluster::reconcile::CONTROLLER,
            crate::topic::reconcile::CONTROLLER,
        ] {
            reconciles.with_label_values(&[controller]);
            duration.with_label_values(&[controller]);
        }
        Ok(Metrics {
            registry,
            reconciles,
            errors,
            duration,
            leader,
            ready_gauge,
            ready: AtomicBool::new(false),
        })
    }

    /// Counts a reconcile and times it until the returned timer drops.
    pub fn reconcile_started(&self, controller: &str) -> HistogramTimer {
        self.reconciles.with_label_values(&[controller]).inc();
        self.duration.with_label_values(&[controller]).start_timer()
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, controller: &str, error: &crate::Error) {
        self.errors
            .with_label_values(&[controller, error.metric_label()])
            .inc();
    }

    /// Reconciles started so far for `controller` (for tests and logs).
    pub fn reconciles(&self, controller: &str) -> u64 {
        self.reconciles.with_label_values(&[controller]).get()
    }

    /// Failures so far for `controller` and error kind.
    pub fn errors(&self, controller: &str, kind: &str) -> u64 {
        self.errors.with_label_values(&[controller, kind]).get()
    }

    /// Marks the operator ready (CRDs present, loops started or standing by).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        self.ready_gauge.set(i64::from(ready));
    }

    /// Readiness for `/readyz`.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
