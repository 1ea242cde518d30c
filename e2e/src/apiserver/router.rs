//! HTTP requests onto the API: the fixed endpoints (version, health, discovery, OpenAPI), then
//! resource paths by verb, with content negotiation (JSON, YAML and protobuf bodies; Table and
//! PartialObjectMetadata answers; aggregated discovery) and Warning headers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};

use super::authorize;
use super::discovery;
use super::error::{ApiError, ApiResult};
use super::openapi;
use super::openapi_v2;
use super::patch::PatchKind;
use super::protobuf::{self, ProtobufError};
use super::rbac::UserInfo;
use super::rest::{DeleteOptions, FieldValidation, ListOptions, Target, WriteOptions, Written};
use super::reviews;
use super::route::Route;
use super::selector::FieldSelector;
use super::ssa::manager_from_user_agent;
use super::state::State;
use super::table::{self, Include};
use super::token_review;
use super::watch::{self, WatchRequest};
use super::FakeApiServer;

/// Response body: a whole JSON document or a watch stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The Kubernetes version this server reports.
const GIT_VERSION: &str = "v1.34.0";

fn respond(code: u16, content_type: &str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    }
    resp
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    respond(
        code,
        "application/json",
        Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
    )
}

pub(crate) fn error_for(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}

fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = format!("299 - {w:?}");
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

/// Query parameters, percent-decoded.
fn query(uri: &http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
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
                if let Some(b) = hex {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header(headers: &HeaderMap, name: http::header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// How the client wants objects back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    Table,
    Metadata,
}

fn shape(accept: &str) -> Shape {
    let a = accept.replace(' ', "");
    if a.contains("as=Table") {
        Shape::Table
    } else if a.contains("as=PartialObjectMetadata") {
        Shape::Metadata
    } else {
        Shape::Object
    }
}

/// Decodes a request body by its Content-Type.
fn decode_body(content_type: &str, body: &Bytes) -> ApiResult<Option<Value>> {
    if body.is_empty() {
        return Ok(None);
    }
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/vnd.kubernetes.protobuf" => {
            protobuf::decode(body).map(Some).map_err(|e| match e {
                ProtobufError::Unsupported(_) => ApiError::unsupported_media_type(
                    content_type,
                    &["application/json", "application/yaml"],
                ),
                ProtobufError::Malformed(_) => ApiError::bad_request(e.to_string()),
            })
        }
        "application/yaml" | "application/apply-patch+yaml" => serde_yaml::from_slice(body)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}"))),
        ""
        | "application/json"
        | "*/*"
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/apply-patch+json" => serde_json::from_slice(body).map(Some).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        }),
        other => Err(ApiError::unsupported_media_type(
            other,
            &[
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
            ],
        )),
    }
}

/// Answers one request.
pub(crate) async fn handle(server: &FakeApiServer, req: Request<Bytes>) -> Response<Body> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = answer(server, req).await;
    tracing::debug!(%method, %uri, status = resp.status().as_u16(), "request");
    resp
}

async fn answer(server: &FakeApiServer, req: Request<Bytes>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let route = Route::parse(&path);
    let q = query(&parts.uri);
    let asked = authorize::attributes(&parts.method, &path, route.as_ref(), &q);
    let user = match server.with(|st| authorize::check(st, &parts.headers, &asked)) {
        Ok(user) => user,
        Err(e) => return error_for(&e),
    };
    if let Some(resp) = fixed(server, &parts.method, &path, &parts.headers) {
        return resp;
    }
    let Some(route) = route else {
        return error_for(&ApiError::no_route());
    };
    if route.sub.as_deref() == Some("log") && parts.method == Method::GET {
        return pod_log(server, &route, &q).unwrap_or_else(|e| error_for(&e));
    }
    let request = RequestParts {
        method: &parts.method,
        headers: &parts.headers,
        q: &q,
        body: &body,
        user,
    };
    match resource(server, &route, &request) {
        Ok(resp) => resp,
        Err(e) => error_for(&e),
    }
}

/// Version, health, discovery and OpenAPI.
fn fixed(
    server: &FakeApiServer,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if *method != Method::GET {
        return None;
    }
    let accept = header(headers, http::header::ACCEPT);
    let p = path.trim_end_matches('/');
    let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    let doc = server.with(|st| {
        let types = st.registry.all().iter().filter(|t| !st.faults.unserved.contains(&t.group)).cloned().collect::<Vec<_>>();
        match segs.as_slice() {
            ["version"] => Some((json!({
                "major": "1", "minor": "34", "gitVersion": GIT_VERSION, "gitCommit": "tributary-e2e",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64",
            }), None)),
            ["healthz" | "livez" | "readyz", ..] => None,
            ["api"] => Some(match discovery::aggregated_version(accept) {
                Some(v) => (discovery::aggregated(&types, true, v), Some(discovery::aggregated_content_type(v))),
                None => (discovery::api_versions(&server.address()), None),
            }),
            ["apis"] => Some(match discovery::aggregated_version(accept) {
                Some(v) => (discovery::aggregated(&types, false, v), Some(discovery::aggregated_content_type(v))),
                None => (discovery::api_group_list(&types), None),
            }),
            ["api", v] => discovery::api_resource_list(&types, "", v).map(|d| (d, None)),
            ["apis", g] => discovery::api_group_doc(&types, g).map(|d| (d, None)),
            ["apis", g, v] => discovery::api_resource_list(&types, g, v).map(|d| (d, None)),
            ["openapi", "v2"] => Some((openapi_v2::document(&types), None)),
            ["openapi", "v3"] => Some((openapi::root(&types), None)),
            ["openapi", "v3", "api", v] => openapi::group_version(&types, "", v).map(|d| (d, None)),
            ["openapi", "v3", "apis", g, v] => openapi::group_version(&types, g, v).map(|d| (d, None)),
            _ => None,
        }
    });
    if matches!(segs.first(), Some(&("healthz" | "livez" | "readyz"))) {
        return Some(respond(200, "text/plain", Bytes::from_static(b"ok")));
    }
    match doc {
        Some((d, _))
            if segs == ["openapi", "v2"]
                && openapi_v2::PROTOBUF_ACCEPTED
                    .iter()
                    .any(|t| accept.contains(t)) =>
        {
            Some(respond(
                200,
                openapi_v2::PROTOBUF,
                Bytes::from(openapi_v2::encode(&d)),
            ))
        }
        Some((d, content_type)) => {
            let mut resp = json_response(200, &d);
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().insert(http::header::CONTENT_TYPE, ct);
            }
            Some(resp)
        }
        None if matches!(
            segs.as_slice(),
            ["api" | "apis" | "openapi" | "version", ..] | ["swagger-2.0.0.pb-v1"]
        ) =>
        {
            Route::parse(p)
                .is_none()
                .then(|| error_for(&ApiError::no_route()))
        }
        None => None,
    }
}

fn target(st: &State, route: &Route) -> ApiResult<Target> {
    if st.faults.unserved.contains(&route.group) {
        return Err(ApiError::no_route());
    }
    let rt = st
        .registry
        .find(&route.group, &route.version, &route.plural)
        .ok_or_else(ApiError::no_route)?;
    if !rt.namespaced && route.namespace.is_some() {
        return Err(ApiError::no_route());
    }
    if rt.namespaced && route.namespace.is_none() && route.name.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = &route.sub {
        let v = rt.version(&route.version);
        let pod = rt.group.is_empty() && rt.plural == "pods";
        let ok = match sub.as_str() {
            "status" => v.is_some_and(|v| v.status),
            "scale" => v.is_some_and(|v| v.scale.is_some()),
            "binding" | "log" => pod,
            "token" => rt.group.is_empty() && rt.plural == "serviceaccounts",
            _ => false,
        };
        if !ok {
            return Err(ApiError::no_route());
        }
    }
    Ok(Target {
        version: route.version.clone(),
        namespace: route.namespace.clone().unwrap_or_default(),
        name: route.name.clone(),
        sub: route.sub.clone(),
        rt,
    })
}

fn write_options(
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
    user: &UserInfo,
) -> ApiResult<WriteOptions> {
    let manager = q
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .unwrap_or_else(|| manager_from_user_agent(header(headers, http::header::USER_AGENT)));
    Ok(WriteOptions {
        manager,
        validation: FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?,
        dry_run: q.contains_key("dryRun"),
        force: q.get("force").map(String::as_str) == Some("true"),
        user: Some(user.clone()),
    })
}

fn written(w: Written) -> Response<Body> {
    with_warnings(json_response(w.code, &w.object), &w.warnings)
}

/// What a resource request carries besides its route.
struct RequestParts<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    q: &'a BTreeMap<String, String>,
    body: &'a Bytes,
    /// Whom it acts as, authorized for it.
    user: UserInfo,
}

fn resource(
    server: &FakeApiServer,
    route: &Route,
    request: &RequestParts<'_>,
) -> ApiResult<Response<Body>> {
    let (method, headers, q, body, user) = (
        request.method,
        request.headers,
        request.q,
        request.body,
        &request.user,
    );
    let content_type = header(headers, http::header::CONTENT_TYPE);
    let accept = header(headers, http::header::ACCEPT);
    let watching = *method == Method::GET
        && (route.watch || matches!(q.get("watch").map(String::as_str), Some("true" | "1")));
    server.with(|st| {
        let target = target(st, route)?;
        if *method != Method::GET {
            let id = match &target.sub {
                Some(sub) => format!("{}/{sub}", target.rt.id()),
                None => target.rt.id(),
            };
            let of_object = target.name.as_deref().map(|n| super::state::object_key(&id, n));
            let injected = of_object
                .and_then(|key| st.faults.take(&key))
                .or_else(|| st.faults.take(&id));
            if let Some(e) = injected {
                if e.code == 409 {
                    st.faults.conflicts += 1;
                }
                return Err(e);
            }
        }
        if target.rt.create_only {
            return review(st, &target, method, user, content_type, body);
        }
        if watching {
            return watch_response(server, st, target, q, accept);
        }
        let name = target.name.clone();
        let sub = target.sub.clone().unwrap_or_default();
        match (method.clone(), name) {
            (Method::GET, None) => {
                let opts = ListOptions::parse(&target, q)?;
                let list = st.list(&target, &opts)?;
                Ok(json_response(200, &shaped_list(&target, list, accept, q)))
            }
            (Method::GET, Some(name)) if sub == "scale" => Ok(json_response(200, &st.get_scale(&target, &name)?)),
            (Method::GET, Some(name)) => {
                let obj = st.get(&target, &name)?;
                Ok(json_response(200, &shaped_object(&target, obj, accept, q)))
            }
            (Method::POST, Some(name)) if sub == "token" => {
                let req = decode_body(content_type, body)?;
                Ok(written(st.request_token(&target.namespace, &name, req)?))
            }
            (Method::POST, Some(name)) if sub == "binding" => {
                let obj = decode_body(content_type, body)?.ok_or_else(|| ApiError::bad_request("binding needs a body"))?;
                Ok(written(st.bind(&target, &name, &obj)?))
            }
            (Method::POST, None) => {
                let obj = decode_body(content_type, body)?.ok_or_else(|| ApiError::bad_request("create needs a body"))?;
                Ok(written(st.create(&target, obj, &write_options(q, headers, user)?)?))
            }
            (Method::PUT, Some(name)) => {
                let obj = decode_body(content_type, body)?.ok_or_else(|| ApiError::bad_request("update needs a body"))?;
                let opts = write_options(q, headers, user)?;
                if sub == "scale" {
                    return Ok(written(st.write_scale(&target, &name, None, obj, &opts)?));
                }
                Ok(written(st.replace(&target, &name, obj, &opts)?))
            }
            (Method::PATCH, Some(name)) => {
                let kind = PatchKind::from_content_type(content_type).ok_or_else(|| {
                    ApiError::unsupported_media_type(content_type, PatchKind::accepted(target.rt.is_custom()))
                })?;
                let patch = decode_body(content_type, body)?.ok_or_else(|| ApiError::bad_request("patch needs a body"))?;
                let mut opts = write_options(q, headers, user)?;
                if kind == PatchKind::Apply && !q.contains_key("fieldManager") {
                    return Err(ApiError::bad_request("PATCH with apply requires a fieldManager: fieldManager is required for apply requests"));
                }
                if kind != PatchKind::Apply && q.contains_key("force") {
                    return Err(ApiError::bad_request("force: Forbidden: may not be specified for non-apply patch"));
                }
                if kind == PatchKind::Apply {
                    opts.force = q.get("force").map(String::as_str) == Some("true");
                }
                if sub == "scale" {
                    return Ok(written(st.write_scale(&target, &name, Some(kind), patch, &opts)?));
                }
                Ok(written(st.patch(&target, &name, kind, patch, &opts)?))
            }
            (Method::DELETE, Some(name)) => {
                let opts = DeleteOptions::from_request(decode_body(content_type, body)?.as_ref(), q)?;
                Ok(written(st.delete(&target, &name, &opts)?))
            }
            (Method::DELETE, None) => {
                let list = ListOptions::parse(&target, q)?;
                let opts = DeleteOptions::from_request(decode_body(content_type, body)?.as_ref(), q)?;
                Ok(json_response(200, &st.delete_collection(&target, &list, &opts)?))
            }
            (m, _) => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m})"
            ))),
        }
    })
}

/// An access review: only created, answered from the stored RBAC objects for whom the request
/// acts as, never stored.
fn review(
    st: &mut State,
    target: &Target,
    method: &Method,
    user: &UserInfo,
    content_type: &str,
    body: &Bytes,
) -> ApiResult<Response<Body>> {
    if *method != Method::POST || target.name.is_some() || target.sub.is_some() {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        )));
    }
    let obj = decode_body(content_type, body)?
        .ok_or_else(|| ApiError::bad_request("create needs a body"))?;
    let answer = if target.rt.plural == "tokenreviews" {
        let now = st.clock.now();
        token_review::answer(&st.tokens, &st.store, now, target, obj)?
    } else {
        reviews::answer(&st.rbac_policy(), user, target, obj)?
    };
    Ok(json_response(201, &answer))
}

/// GET `pods/<name>/log`: the container's output from the kubelet's [`PodLogs`] (read outside
/// the lock), the last `tailLines` lines when asked; `follow` is answered with what there is.
fn pod_log(
    server: &FakeApiServer,
    route: &Route,
    q: &BTreeMap<String, String>,
) -> ApiResult<Response<Body>> {
    let (namespace, container) = server.with(|st| {
        let target = target(st, route)?;
        let name = target.name.clone().unwrap_or_default();
        let container = st.log_container(&target, &name, q.get("container").map(String::as_str))?;
        Ok::<_, ApiError>((target.namespace, container))
    })?;
    let pod = route.name.clone().unwrap_or_default();
    let previous = matches!(q.get("previous").map(String::as_str), Some("true" | "1"));
    let text = server
        .pod_logs()
        .and_then(|logs| logs.read(&namespace, &pod, &container, previous))
        .ok_or_else(|| {
            let state = if previous {
                "has no previous instance"
            } else {
                "is waiting to start"
            };
            ApiError::bad_request(format!("container {container:?} in pod {pod:?} {state}"))
        })?;
    let text = match q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let mut tail = lines[lines.len().saturating_sub(n)..].join("\n");
            if !tail.is_empty() {
                tail.push('\n');
            }
            tail
        }
        None => text,
    };
    Ok(respond(200, "text/plain", Bytes::from(text)))
}

fn include(q: &BTreeMap<String, String>) -> Include {
    Include::parse(q.get("includeObject").map(String::as_str))
}

fn shaped_list(target: &Target, list: Value, accept: &str, q: &BTreeMap<String, String>) -> Value {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    match shape(accept) {
        Shape::Object => list,
        Shape::Table => table::table(
            &target.rt,
            &target.version,
            &items,
            list["metadata"].clone(),
            include(q),
            true,
        ),
        Shape::Metadata => json!({
            "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": list["metadata"], "items": items.iter().map(table::partial).collect::<Vec<_>>(),
        }),
    }
}

fn shaped_object(target: &Target, obj: Value, accept: &str, q: &BTreeMap<String, String>) -> Value {
    match shape(accept) {
        Shape::Object => obj,
        Shape::Table => table::table(
            &target.rt,
            &target.version,
            &[obj],
            json!({}),
            include(q),
            true,
        ),
        Shape::Metadata => table::partial(&obj),
    }
}

fn watch_response(
    server: &FakeApiServer,
    st: &State,
    mut target: Target,
    q: &BTreeMap<String, String>,
    accept: &str,
) -> ApiResult<Response<Body>> {
    let mut list = ListOptions::parse(&target, q)?;
    if let Some(name) = target.name.take() {
        list.fields = FieldSelector::by_name(&name);
    }
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let req = WatchRequest {
        target,
        list,
        bookmarks: q.get("allowWatchBookmarks").map(String::as_str) == Some("true"),
        send_initial_events: q.get("sendInitialEvents").map(|v| v == "true"),
        timeout,
        bookmark_interval: server.config.bookmark_interval,
        table: (shape(accept) == Shape::Table).then(|| include(q)),
    };
    let out = watch::start(st, req);
    let stream = futures::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), out))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let uri: http::Uri = "/api/v1/pods?labelSelector=a%3Db%2Cc+in+%28x%29&watch=1"
            .parse()
            .expect("uri");
        let q = query(&uri);
        assert_eq!(
            q.get("labelSelector").map(String::as_str),
            Some("a=b,c in (x)")
        );
        assert_eq!(q.get("watch").map(String::as_str), Some("1"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn accept_headers_select_tables_and_metadata() {
        assert!(
            shape("application/json;as=Table;v=v1;g=meta.k8s.io,application/json") == Shape::Table
        );
        assert!(
            shape("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
                == Shape::Metadata
        );
        assert!(shape("application/json") == Shape::Object);
    }
}
