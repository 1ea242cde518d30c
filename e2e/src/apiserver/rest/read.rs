//! GET and LIST: selectors, resourceVersion semantics (`NotOlderThan`, `Exact`), and
//! consistent pagination (`limit`/`continue`, served from the history at the first page's
//! resourceVersion, 410 Gone once that is compacted).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};

use super::Target;
use crate::apiserver::convert::to_served;
use crate::apiserver::error::{ApiError, ApiResult};
use crate::apiserver::selector::{FieldSelector, LabelSelector};
use crate::apiserver::state::State;
use crate::apiserver::store::Key;

/// LIST and WATCH parameters.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListOptions {
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) resource_version: Option<String>,
    pub(crate) resource_version_match: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) continue_token: Option<String>,
}

impl ListOptions {
    /// Parses the query of a list or watch of `target`.
    pub(crate) fn parse(target: &Target, q: &BTreeMap<String, String>) -> ApiResult<Self> {
        let labels = LabelSelector::parse(
            q.get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )?;
        let fields = FieldSelector::parse(
            q.get("fieldSelector")
                .map(String::as_str)
                .unwrap_or_default(),
            &target.rt.kind,
            &target.rt.group,
        )?;
        let limit = match q.get("limit") {
            None => None,
            Some(l) => Some(
                l.parse::<usize>()
                    .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
            ),
        };
        Ok(ListOptions {
            labels,
            fields,
            resource_version: q.get("resourceVersion").filter(|v| !v.is_empty()).cloned(),
            resource_version_match: q
                .get("resourceVersionMatch")
                .filter(|v| !v.is_empty())
                .cloned(),
            limit: limit.filter(|l| *l > 0),
            continue_token: q.get("continue").filter(|v| !v.is_empty()).cloned(),
        })
    }

    /// Whether a served object passes both selectors.
    pub(crate) fn matches(&self, target: &Target, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(&target.rt.kind, &target.rt.group, obj)
    }
}

fn encode_token(rv: u64, last: &Key) -> String {
    let t = json!({"rv": rv, "ns": last.namespace, "name": last.name});
    base64::engine::general_purpose::STANDARD.encode(t.to_string())
}

fn decode_token(token: &str) -> ApiResult<(u64, String, String)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        v["rv"].as_u64().ok_or_else(bad)?,
        v["ns"].as_str().ok_or_else(bad)?.to_owned(),
        v["name"].as_str().ok_or_else(bad)?.to_owned(),
    ))
}

impl State {
    /// GET of object `name`.
    pub(crate) fn get(&self, target: &Target, name: &str) -> ApiResult<Value> {
        let rt = &target.rt;
        self.store
            .get(&target.key(name))
            .map(|o| to_served(rt, &target.version, o))
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), &rt.group, name))
    }

    /// LIST: the `<Kind>List` of matching objects.
    pub(crate) fn list(&self, target: &Target, opts: &ListOptions) -> ApiResult<Value> {
        let rt = &target.rt;
        let ns = (!target.namespace.is_empty()).then_some(target.namespace.as_str());
        let current = self.store.rv();
        let (rv, after, objects) = if let Some(token) = &opts.continue_token {
            let (rv, tns, tname) = decode_token(token)?;
            let snap = self.store.snapshot(&rt.storage, ns, rv).map_err(|_| {
                ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.")
            })?;
            (rv, Some((tns, tname)), snap)
        } else if opts.resource_version_match.as_deref() == Some("Exact") {
            let rv: u64 = opts
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("resourceVersionMatch=Exact needs a resourceVersion")
                })?;
            let snap = self
                .store
                .snapshot(&rt.storage, ns, rv)
                .map_err(|compacted| {
                    ApiError::expired(format!("too old resource version: {rv} ({compacted})"))
                })?;
            (rv, None, snap)
        } else {
            // Labels are the same in every served version, so a label selector is applied
            // before anything is copied: a selective list costs what it returns, not the store.
            let snap: Vec<(Key, Value)> = self
                .store
                .scan(&rt.storage, ns)
                .filter(|(_, v)| opts.labels.matches(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (current, None, snap)
        };
        let mut items = objects
            .into_iter()
            .filter(|(k, _)| {
                after
                    .as_ref()
                    .is_none_or(|(ans, aname)| (&k.namespace, &k.name) > (ans, aname))
            })
            .map(|(k, o)| (k, to_served(rt, &target.version, &o)))
            .filter(|(_, o)| opts.matches(target, o));
        let mut page = Vec::new();
        let mut last = None;
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        match opts.limit {
            Some(limit) => {
                for (k, o) in items.by_ref().take(limit) {
                    last = Some(k);
                    page.push(o);
                }
                let remaining = items.count();
                if let (true, Some(last)) = (remaining > 0, last) {
                    metadata["continue"] = json!(encode_token(rv, &last));
                    metadata["remainingItemCount"] = json!(remaining);
                }
            }
            None => page.extend(items.map(|(_, o)| o)),
        }
        Ok(json!({
            "apiVersion": target.api_version(),
            "kind": format!("{}List", rt.kind),
            "metadata": metadata,
            "items": page,
        }))
    }
}
