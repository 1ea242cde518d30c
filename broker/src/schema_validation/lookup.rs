//! Asking the schema registry what an id is (`GET /schemas/ids/{id}` for the schema and its
//! record name, `GET /schemas/ids/{id}/versions` for the subjects holding it), through the
//! cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use prometheus::{IntCounter, IntCounterVec};
use tributary_registry_client::{ClientError, RegistryHttp};

use super::access::{registry_client, AccessError};
use super::cache::FactsCache;
use super::{record_names, SchemaFacts};
use crate::security::reload::Reloading;
use crate::security::settings::SecurityProps;

/// Ids the cache keeps.
const CACHE_CAPACITY: usize = 10_000;
/// How long a cached answer is trusted.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// How long one registry call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the registry gave no usable answer; the batch is refused with a retriable error.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The broker has no registry to ask.
    #[error("schema validation is on for this topic, but the broker has no schema registry (set --schema-registry-url or confluent.schema.registry.url)")]
    NoRegistry,
    /// The registry could not be reached.
    #[error("the schema registry is unreachable: {0}")]
    Unreachable(#[from] ClientError),
    /// The registry answered with an error status or a body that is not its API's.
    #[error("the schema registry answered {path} with status {status}")]
    BadAnswer {
        /// What was asked.
        path: String,
        /// The status.
        status: u16,
    },
}

/// The metrics of the lookups.
#[derive(Debug, Clone)]
pub struct LookupMetrics {
    /// Registry calls by outcome (`found`, `unknown`, `error`).
    pub lookups: IntCounterVec,
    /// Ids answered from the cache.
    pub cache_hits: IntCounter,
}

/// The broker's way to the registry, with its cache.
#[derive(Debug)]
pub struct Schemas {
    registry: Option<Reloading<RegistryHttp>>,
    cache: FactsCache,
    metrics: LookupMetrics,
}

impl Schemas {
    /// A client of the registry at `url` (none: every validated batch is refused), reached
    /// as `props` say ([`super::access`]).
    pub fn new(
        url: Option<&str>,
        props: &SecurityProps,
        metrics: LookupMetrics,
    ) -> Result<Schemas, AccessError> {
        let registry = url
            .map(|url| registry_client(url, props, CALL_TIMEOUT))
            .transpose()?;
        Ok(Schemas {
            registry,
            cache: FactsCache::new(CACHE_CAPACITY, CACHE_TTL),
            metrics,
        })
    }

    /// What the registry says of `id`: `None` when it does not know the id (not cached, so a
    /// schema registered later is seen at once).
    pub async fn facts(&self, id: i32) -> Result<Option<Arc<SchemaFacts>>, LookupError> {
        if let Some(facts) = self.cache.get(id, Instant::now()) {
            self.metrics.cache_hits.inc();
            return Ok(Some(facts));
        }
        let outcome = self.ask(id).await;
        let label = match &outcome {
            Ok(Some(_)) => "found",
            Ok(None) => "unknown",
            Err(_) => "error",
        };
        self.metrics.lookups.with_label_values(&[label]).inc();
        let facts = outcome?.map(Arc::new);
        if let Some(facts) = &facts {
            self.cache.insert(id, facts.clone(), Instant::now());
        }
        Ok(facts)
    }

    async fn ask(&self, id: i32) -> Result<Option<SchemaFacts>, LookupError> {
        let registry = self
            .registry
            .as_ref()
            .ok_or(LookupError::NoRegistry)?
            .current();
        let path = format!("/schemas/ids/{id}");
        let schema = registry.call(Method::GET, &path, None).await?;
        match schema.status {
            200 => {}
            404 => return Ok(None),
            status => return Err(LookupError::BadAnswer { path, status }),
        }
        let versions_path = format!("/schemas/ids/{id}/versions");
        let versions = registry.call(Method::GET, &versions_path, None).await?;
        match versions.status {
            200 => {}
            404 => return Ok(None),
            status => {
                return Err(LookupError::BadAnswer {
                    path: versions_path,
                    status,
                })
            }
        }
        let bad = |path: &str| LookupError::BadAnswer {
            path: path.to_owned(),
            status: 200,
        };
        let text = schema
            .body
            .get("schema")
            .and_then(|s| s.as_str())
            .ok_or_else(|| bad(&path))?;
        let kind = schema
            .body
            .get("schemaType")
            .and_then(|s| s.as_str())
            .unwrap_or("AVRO");
        let subjects = versions
            .body
            .as_array()
            .ok_or_else(|| bad(&versions_path))?
            .iter()
            .filter_map(|v| v.get("subject")?.as_str().map(str::to_owned))
            .collect();
        Ok(Some(SchemaFacts {
            subjects,
            names: record_names(kind, text),
        }))
    }
}
