//! HTTP routing: Kubernetes REST paths and verbs onto the [`Store`](super::store::Store).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};

use super::patch;
use super::store::{matches, parse_selector, ApiError, Key};
use super::FakeApiServer;

type Body = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A parsed Kubernetes API path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `group/plural`, `/plural` for the core group.
    pub resource: String,
    /// `group/version` or `v1`.
    pub api_version: String,
    /// Namespace, if namespaced.
    pub namespace: Option<String>,
    /// Object name, if the path names one.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`).
    pub sub: Option<String>,
}

impl Route {
    /// Parses `/api/v1/...` and `/apis/<group>/<version>/...`.
    pub fn parse(path: &str) -> Option<Route> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
            _ => (None, rest),
        };
        let (plural, name, sub) = match rest {
            [p] => (*p, None, None),
            [p, n] => (*p, Some((*n).to_owned()), None),
            [p, n, s] => (*p, Some((*n).to_owned()), Some((*s).to_owned())),
            _ => return None,
        };
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(Route {
            resource: format!("{group}/{plural}"),
            api_version,
            namespace,
            name,
            sub,
        })
    }

    fn key(&self) -> Option<Key> {
        Some((
            self.resource.clone(),
            self.namespace.clone().unwrap_or_default(),
            self.name.clone()?,
        ))
    }
}

fn full(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut resp = Response::new(Full::new(bytes).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(e: &ApiError) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": e.message, "reason": e.reason, "code": e.code,
    });
    full(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

fn query(req: &Request<kube::client::Body>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers one request.
pub(super) async fn handle(
    server: &FakeApiServer,
    req: Request<kube::client::Body>,
) -> Response<Body> {
    let Some(route) = Route::parse(req.uri().path()) else {
        return error(&ApiError::new(
            404,
            "NotFound",
            format!("no route for {}", req.uri().path()),
        ));
    };
    let group = route.resource.split('/').next().unwrap_or_default();
    if server.with(|s| s.unserved.contains(group)) {
        return error(&ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({group})"),
        ));
    }
    let q = query(&req);
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(&ApiError::new(
                400,
                "BadRequest",
                format!("cannot read body: {e}"),
            ))
        }
    };
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body).or_else(|_| serde_yaml::from_slice(&body)) {
            Ok(v) => Some(v),
            Err(e) => {
                return error(&ApiError::new(
                    400,
                    "BadRequest",
                    format!("body is not JSON or YAML: {e}"),
                ))
            }
        }
    };
    if method == Method::GET
        && route.name.is_none()
        && matches!(q.get("watch").map(String::as_str), Some("true" | "1"))
    {
        return watch(server, &route, &q);
    }
    let result = server.with(|s| dispatch(s, &route, &method, &q, &content_type, parsed));
    match result {
        Ok(v) => full(StatusCode::OK, &v),
        Err(e) => {
            if e.code == 409 && e.reason == "Conflict" {
                server.with(|s| s.conflicts += 1);
            }
            error(&e)
        }
    }
}

fn dispatch(
    s: &mut super::store::Store,
    route: &Route,
    method: &Method,
    q: &BTreeMap<String, String>,
    content_type: &str,
    body: Option<Value>,
) -> Result<Value, ApiError> {
    let ns = route.namespace.clone().unwrap_or_default();
    let write_target = route.sub.as_ref().map_or_else(
        || route.resource.clone(),
        |sub| format!("{}/{sub}", route.resource),
    );
    if *method != Method::GET {
        if let Some(e) = s.injected_conflict(&write_target) {
            return Err(e);
        }
    }
    let status_only = route.sub.as_deref() == Some("status");
    match (method.clone(), route.key()) {
        (Method::GET, None) => {
            let selector = parse_selector(
                q.get("labelSelector")
                    .map(String::as_str)
                    .unwrap_or_default(),
            );
            let items = s.list(&route.resource, route.namespace.as_deref(), &selector);
            Ok(json!({
                "apiVersion": route.api_version, "kind": "List",
                "metadata": { "resourceVersion": s.resource_version().to_string() },
                "items": items,
            }))
        }
        (Method::GET, Some(key)) => s.get(&key.0, &key.1, &key.2).cloned().ok_or_else(|| {
            ApiError::new(404, "NotFound", format!("{} {:?} not found", key.0, key.2))
        }),
        (Method::POST, None) => {
            let obj =
                body.ok_or_else(|| ApiError::new(400, "BadRequest", "create needs a body"))?;
            s.create(&route.resource, &ns, obj)
        }
        (Method::PUT, Some(key)) => {
            let obj =
                body.ok_or_else(|| ApiError::new(400, "BadRequest", "replace needs a body"))?;
            check_precondition(s, &key, &obj)?;
            s.update(&key, obj, status_only)
        }
        (Method::PATCH, Some(key)) => {
            let p = body.ok_or_else(|| ApiError::new(400, "BadRequest", "patch needs a body"))?;
            patch_object(s, route, &key, q, content_type, &p, status_only)
        }
        (Method::DELETE, Some(key)) => s.delete(&key),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} {}", route.resource),
        )),
    }
}

fn check_precondition(s: &super::store::Store, key: &Key, obj: &Value) -> Result<(), ApiError> {
    let Some(wanted) = obj
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let current = s
        .get(&key.0, &key.1, &key.2)
        .and_then(|o| o["metadata"]["resourceVersion"].as_str().map(str::to_owned));
    match current {
        Some(c) if c != wanted => Err(ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} {:?}: the object has been modified; please apply your changes to the latest version and try again", key.0, key.2),
        )),
        _ => Ok(()),
    }
}

fn patch_object(
    s: &mut super::store::Store,
    route: &Route,
    key: &Key,
    q: &BTreeMap<String, String>,
    content_type: &str,
    p: &Value,
    status_only: bool,
) -> Result<Value, ApiError> {
    check_precondition(s, key, p)?;
    let current = s.get(&key.0, &key.1, &key.2).cloned();
    if content_type.starts_with("application/apply-patch") {
        let manager = q.get("fieldManager").cloned().unwrap_or_default();
        let Some(mut obj) = current else {
            if status_only {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    format!("{} {:?} not found", key.0, key.2),
                ));
            }
            let created = s.create(&key.0, &key.1, p.clone())?;
            s.applied.insert((key.clone(), manager), p.clone());
            return Ok(created);
        };
        let previous = s.applied.get(&(key.clone(), manager.clone())).cloned();
        patch::apply(&mut obj, previous.as_ref(), p);
        s.applied.insert((key.clone(), manager), p.clone());
        return s.update(key, obj, status_only);
    }
    let mut obj = current.ok_or_else(|| {
        ApiError::new(404, "NotFound", format!("{} {:?} not found", key.0, key.2))
    })?;
    if content_type.starts_with("application/json-patch") {
        patch::json(&mut obj, p).map_err(|e| ApiError::new(422, "Invalid", e))?;
    } else {
        patch::merge(&mut obj, p);
    }
    let _ = route;
    s.update(key, obj, status_only)
}

fn watch(server: &FakeApiServer, route: &Route, q: &BTreeMap<String, String>) -> Response<Body> {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let selector = parse_selector(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    );
    let (past, mut rx) = server.with(|s| s.watch_from(from));
    let (tx, out) = tokio::sync::mpsc::channel::<Bytes>(64);
    let resource = route.resource.clone();
    let namespace = route.namespace.clone();
    let wanted = move |e: &super::store::WatchEvent| {
        e.resource == resource
            && namespace.as_ref().is_none_or(|ns| *ns == e.namespace)
            && matches(&e.object, &selector)
    };
    let line = |e: &super::store::WatchEvent| {
        let mut v =
            serde_json::to_vec(&json!({ "type": e.kind, "object": e.object })).unwrap_or_default();
        v.push(b'\n');
        Bytes::from(v)
    };
    tokio::spawn(async move {
        let mut last = from;
        for e in past.iter().filter(|e| wanted(e)) {
            last = e.rv;
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        loop {
            match rx.recv().await {
                Ok(e) if e.rv > last && wanted(&e) => {
                    last = e.rv;
                    if tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Lagging or closed: end the watch; the client re-lists and re-watches.
                Err(_) => return,
            }
        }
    });
    let stream = futures::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), out))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::super::store::has_status_subresource;
    use super::*;

    #[test]
    fn parses_core_and_group_paths() {
        let r = Route::parse("/api/v1/namespaces/ns/pods/p-0/status");
        assert_eq!(
            r,
            Some(Route {
                resource: "/pods".into(),
                api_version: "v1".into(),
                namespace: Some("ns".into()),
                name: Some("p-0".into()),
                sub: Some("status".into())
            })
        );
        let r = Route::parse("/apis/tributary.dev/v1alpha1/kafkatopics");
        assert_eq!(
            r.map(|r| (r.resource, r.namespace)),
            Some(("tributary.dev/kafkatopics".into(), None))
        );
        assert_eq!(percent_decode("a%3Db%2Cc"), "a=b,c");
    }

    #[test]
    fn status_subresource_list_is_consistent() {
        assert!(has_status_subresource("tributary.dev/kafkatopics"));
        assert!(!has_status_subresource("coordination.k8s.io/leases"));
    }
}
