//! Prometheus metrics of the registry: requests by endpoint template and status, and the
//! numbers of schemas and subjects, served on `/metrics` of the REST listener.

use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, TextEncoder};

use crate::state::Registry;

/// The registry's metrics, in their own Prometheus registry.
pub struct Metrics {
    registry: prometheus::Registry,
    requests: IntCounterVec,
    schemas: IntGauge,
    subjects: IntGauge,
    skipped: IntGauge,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = prometheus::Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tributary_schema_registry_requests_total",
                "REST requests by endpoint template, method and HTTP status",
            ),
            &["endpoint", "method", "status"],
        )?;
        let schemas = IntGauge::new(
            "tributary_schema_registry_schemas",
            "Distinct live schemas (ids)",
        )?;
        let subjects = IntGauge::new(
            "tributary_schema_registry_subjects",
            "Subjects with a live version",
        )?;
        let skipped = IntGauge::new(
            "tributary_schema_registry_skipped_records",
            "Records of the schemas topic that could not be decoded and were skipped",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(schemas.clone()))?;
        registry.register(Box::new(subjects.clone()))?;
        registry.register(Box::new(skipped.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            schemas,
            subjects,
            skipped,
        })
    }

    /// Counts one request.
    pub fn request(&self, endpoint: &str, method: &str, status: u16) {
        self.requests
            .with_label_values(&[endpoint, method, &status.to_string()])
            .inc();
    }

    /// The text exposition, with the gauges read from the state now.
    pub fn render(&self, state: &Registry) -> String {
        self.schemas
            .set(i64::try_from(state.schema_count()).unwrap_or(i64::MAX));
        self.subjects
            .set(i64::try_from(state.subjects(false).len()).unwrap_or(i64::MAX));
        self.skipped
            .set(i64::try_from(state.skipped()).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
