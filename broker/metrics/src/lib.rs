//! The Prometheus scaffolding the broker, the operator and the schema registry share: each
//! process writes its metrics as a table of [`Def`]s and creates them through a [`Registrar`],
//! which registers every metric it makes, so none is created and left out of `/metrics`;
//! [`encode`] renders the registry for a scrape.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// One exported metric: its name, its help text and its label names (none for one series).
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// The exported name.
    pub name: &'static str,
    /// The HELP line.
    pub help: &'static str,
    /// Label names; empty for a metric of one series.
    pub labels: &'static [&'static str],
}

/// Creates metrics from their [`Def`]s and registers them in `registry` in the same step.
pub struct Registrar<'a>(pub &'a Registry);

impl Registrar<'_> {
    /// Registers a metric made by hand (one with const labels, say) and returns it.
    pub fn register<M: Collector + Clone + 'static>(
        &self,
        metric: M,
    ) -> Result<M, prometheus::Error> {
        self.0.register(Box::new(metric.clone()))?;
        Ok(metric)
    }

    /// A counter with the def's labels.
    pub fn counter_vec(&self, def: &Def) -> Result<IntCounterVec, prometheus::Error> {
        self.register(IntCounterVec::new(
            Opts::new(def.name, def.help),
            def.labels,
        )?)
    }

    /// A gauge with the def's labels.
    pub fn gauge_vec(&self, def: &Def) -> Result<IntGaugeVec, prometheus::Error> {
        self.register(IntGaugeVec::new(Opts::new(def.name, def.help), def.labels)?)
    }

    /// A counter of one series.
    pub fn counter(&self, def: &Def) -> Result<IntCounter, prometheus::Error> {
        self.register(IntCounter::new(def.name, def.help)?)
    }

    /// A gauge of one series.
    pub fn gauge(&self, def: &Def) -> Result<IntGauge, prometheus::Error> {
        self.register(IntGauge::new(def.name, def.help)?)
    }

    /// A histogram with the def's labels and these bucket bounds.
    pub fn histogram_vec(
        &self,
        def: &Def,
        buckets: &[f64],
    ) -> Result<HistogramVec, prometheus::Error> {
        let opts = HistogramOpts::new(def.name, def.help).buckets(buckets.to_vec());
        self.register(HistogramVec::new(opts, def.labels)?)
    }

    /// A histogram of one series with these bucket bounds.
    pub fn histogram(&self, def: &Def, buckets: &[f64]) -> Result<Histogram, prometheus::Error> {
        let opts = HistogramOpts::new(def.name, def.help).buckets(buckets.to_vec());
        self.register(Histogram::with_opts(opts)?)
    }
}

/// The Prometheus text exposition of every metric in `registry`.
pub fn encode(registry: &Registry) -> Result<String, prometheus::Error> {
    let mut out = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTS: Def = Def {
        name: "test_requests_total",
        help: "Requests, by kind",
        labels: &["kind"],
    };
    const UP: Def = Def {
        name: "test_up",
        help: "1 when up",
        labels: &[],
    };

    #[test]
    fn every_metric_a_registrar_makes_is_in_the_exposition() {
        let registry = Registry::new();
        let r = Registrar(&registry);
        let requests = r.counter_vec(&REQUESTS).unwrap_or_else(|e| panic!("{e}"));
        let up = r.gauge(&UP).unwrap_or_else(|e| panic!("{e}"));
        requests.with_label_values(&["a"]).inc();
        up.set(1);
        let text = encode(&registry).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains("# HELP test_requests_total Requests, by kind"),
            "{text}"
        );
        assert!(text.contains("test_requests_total{kind=\"a\"} 1"), "{text}");
        assert!(text.contains("test_up 1"), "{text}");
    }

    #[test]
    fn a_name_registered_twice_is_an_error_not_a_second_series() {
        let registry = Registry::new();
        let r = Registrar(&registry);
        assert!(r.gauge(&UP).is_ok());
        assert!(r.gauge(&UP).is_err());
    }
}
