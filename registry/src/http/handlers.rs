//! Route and method to the operation: parses bodies and parameters, calls the service, and
//! shapes the JSON Confluent's clients expect.

use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::router::{Query, Route};
use crate::error::{ApiError, INVALID_SCHEMA};
use crate::ops::{self, SchemaRequest, VersionSpec};
use crate::records::SchemaValue;
use crate::schema::SchemaType;
use crate::service::Service;
use crate::state::Registry;

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A JSON document.
    Json(Value),
    /// A schema text returned as is (the `/schema` endpoints).
    Text(String),
}

fn body_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::unprocessable(format!("Unrecognized request body: {e}")))
}

fn schema_id(id: &str) -> Result<u32, ApiError> {
    id.parse::<u32>()
        .ok()
        .filter(|id| *id <= i32::MAX as u32)
        .ok_or_else(|| ApiError::schema_id_not_found(id))
}

/// The schema with `id` for `GET /schemas/ids/{id}`. With a `subject` parameter, Confluent
/// looks the id up among that subject's versions only (soft-deleted ones included), so an id
/// the subject never held is 40403 even when another subject holds it.
fn schema_by_id<'a>(
    reg: &'a Registry,
    id: u32,
    subject: Option<&str>,
) -> Result<&'a SchemaValue, ApiError> {
    let found = match subject.filter(|s| !s.is_empty()) {
        None => reg.schema(id),
        Some(subject) => reg.holders(id).into_iter().find(|v| v.subject == subject),
    };
    found.ok_or_else(|| ApiError::schema_id_not_found(id))
}

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

#[derive(Deserialize)]
struct ModeRequest {
    mode: String,
}

/// Handles one request.
pub async fn handle(
    service: &Service,
    method: &Method,
    route: &Route,
    query: &Query,
    body: &[u8],
) -> Result<Reply, ApiError> {
    use Route::*;
    let deleted = query.flag("deleted");
    let normalize = query.flag("normalize");
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let put = *method == Method::PUT;
    let delete = *method == Method::DELETE;
    match route {
        Root if get => Ok(Reply::Json(json!({}))),
        SchemaTypes if get => Ok(Reply::Json(json!(SchemaType::ALL.map(SchemaType::as_str)))),
        SchemaById(id) if get => {
            let id = schema_id(id)?;
            service.read(|reg| {
                let v = schema_by_id(reg, id, query.get("subject"))?;
                let mut out = json!({"schema": v.schema});
                if v.schema_type != SchemaType::Avro {
                    out["schemaType"] = json!(v.schema_type.as_str());
                }
                if !v.references.is_empty() {
                    out["references"] = json!(v.references);
                }
                Ok(Reply::Json(out))
            })
        }
        SchemaByIdText(id) if get => {
            let id = schema_id(id)?;
            service.read(|reg| {
                schema_by_id(reg, id, query.get("subject")).map(|v| Reply::Text(v.schema.clone()))
            })
        }
        SchemaByIdSubjects(id) | SchemaByIdVersions(id) if get => {
            let id = schema_id(id)?;
            let versions = matches!(route, SchemaByIdVersions(_));
            service.read(|reg| {
                let holders: Vec<_> = reg
                    .holders(id)
                    .into_iter()
                    .filter(|v| deleted || !v.deleted)
                    .collect();
                if reg.holders(id).is_empty() {
                    return Err(ApiError::schema_id_not_found(id));
                }
                Ok(Reply::Json(if versions {
                    json!(holders
                        .iter()
                        .map(|v| json!({"subject": v.subject, "version": v.version}))
                        .collect::<Vec<_>>())
                } else {
                    let mut subjects: Vec<&str> =
                        holders.iter().map(|v| v.subject.as_str()).collect();
                    subjects.dedup();
                    json!(subjects)
                }))
            })
        }
        Subjects if get => {
            let prefix = query.get("subjectPrefix").unwrap_or_default().to_string();
            service.read(|reg| {
                let subjects: Vec<&str> = reg
                    .subjects(deleted)
                    .into_iter()
                    .filter(|s| s.starts_with(&prefix))
                    .collect();
                Ok(Reply::Json(json!(subjects)))
            })
        }
        Subject(subject) if post => {
            let req: SchemaRequest = body_json(body)?;
            service
                .read(|reg| ops::lookup(reg, subject, &req, normalize, deleted))
                .map(Reply::Json)
        }
        Subject(subject) if delete => {
            let permanent = query.flag("permanent");
            let versions = service
                .write(|reg| ops::delete_subject(reg, subject, permanent))
                .await?;
            Ok(Reply::Json(json!(versions)))
        }
        SubjectVersions(subject) if get => service.read(|reg| {
            let versions: Vec<u32> = reg
                .versions(subject, deleted)
                .iter()
                .map(|v| v.version)
                .collect();
            if versions.is_empty() {
                return Err(ApiError::subject_not_found(subject));
            }
            Ok(Reply::Json(json!(versions)))
        }),
        SubjectVersions(subject) if post => {
            let req: SchemaRequest = body_json(body)?;
            let id = service
                .write(|reg| ops::register(reg, subject, &req, normalize))
                .await?;
            Ok(Reply::Json(json!({"id": id})))
        }
        SubjectVersion(subject, v) | SubjectVersionText(subject, v) | ReferencedBy(subject, v)
            if get =>
        {
            let spec = VersionSpec::parse(v)?;
            service.read(|reg| {
                let found = ops::get_version(reg, subject, spec, deleted)?;
                Ok(match route {
                    SubjectVersionText(..) => Reply::Text(found.schema.clone()),
                    ReferencedBy(..) => {
                        Reply::Json(json!(reg.referenced_by(subject, found.version)))
                    }
                    _ => Reply::Json(ops::version_json(found)),
                })
            })
        }
        SubjectVersion(subject, v) if delete => {
            let spec = VersionSpec::parse(v)?;
            let permanent = query.flag("permanent");
            let version = service
                .write(|reg| ops::delete_version(reg, subject, spec, permanent))
                .await?;
            Ok(Reply::Json(json!(version)))
        }
        CompatibilityAll(subject) | CompatibilityVersion(subject, _) if post => {
            let spec = match route {
                CompatibilityVersion(_, v) => Some(VersionSpec::parse(v)?),
                _ => None,
            };
            let req: SchemaRequest = body_json(body)?;
            let verbose = query.flag("verbose");
            let messages = match service
                .read(|reg| ops::check_compatibility(reg, subject, spec, &req, normalize))
            {
                Ok(messages) => messages,
                // Asked verbosely, Confluent answers an invalid schema as incompatible, with
                // the reason as its message.
                Err(e) if verbose && e.code == INVALID_SCHEMA => vec![e.message],
                Err(e) => return Err(e),
            };
            let mut out = json!({"is_compatible": messages.is_empty()});
            if verbose {
                out["messages"] = json!(messages);
            }
            Ok(Reply::Json(out))
        }
        Config if get => service.read(|reg| {
            Ok(Reply::Json(
                json!({"compatibilityLevel": reg.global_level().unwrap_or_default().as_str()}),
            ))
        }),
        SubjectConfig(subject) if get => service.read(|reg| {
            let level = match reg.subject_level(subject) {
                Some(level) => level,
                None if query.flag("defaultToGlobal") => reg.global_level().unwrap_or_default(),
                None => {
                    return Err(ApiError::subject_level_compatibility_not_configured(
                        subject,
                    ))
                }
            };
            Ok(Reply::Json(json!({"compatibilityLevel": level.as_str()})))
        }),
        Config | SubjectConfig(_) if put => {
            let req: ConfigRequest = body_json(body)?;
            let level = req
                .compatibility
                .or(req.compatibility_level)
                .ok_or_else(ApiError::invalid_compatibility_level)?;
            let subject = subject_of(route);
            let level = service.write(|_| ops::set_config(subject, &level)).await?;
            Ok(Reply::Json(json!({"compatibility": level.as_str()})))
        }
        Config | SubjectConfig(_) if delete => {
            let subject = subject_of(route);
            let level = service
                .write(|reg| ops::delete_config(reg, subject))
                .await?;
            Ok(Reply::Json(json!({"compatibilityLevel": level.as_str()})))
        }
        Mode if get => service.read(|reg| {
            Ok(Reply::Json(
                json!({"mode": reg.global_mode().unwrap_or_default().as_str()}),
            ))
        }),
        SubjectMode(subject) if get => service.read(|reg| {
            let mode = match reg.subject_mode(subject) {
                Some(mode) => mode,
                None if query.flag("defaultToGlobal") => reg.global_mode().unwrap_or_default(),
                None => return Err(ApiError::subject_level_mode_not_configured(subject)),
            };
            Ok(Reply::Json(json!({"mode": mode.as_str()})))
        }),
        Mode | SubjectMode(_) if put => {
            let req: ModeRequest = body_json(body)?;
            let subject = subject_of(route);
            let force = query.flag("force");
            let mode = service
                .write(|reg| ops::set_mode(reg, subject, &req.mode, force))
                .await?;
            Ok(Reply::Json(json!({"mode": mode.as_str()})))
        }
        Mode | SubjectMode(_) if delete => {
            let subject = subject_of(route);
            let mode = service.write(|reg| ops::delete_mode(reg, subject)).await?;
            Ok(Reply::Json(json!({"mode": mode.as_str()})))
        }
        NotFound | Metrics => Err(ApiError::not_found_path()),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn subject_of(route: &Route) -> Option<&str> {
    match route {
        Route::SubjectConfig(s) | Route::SubjectMode(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(
        service: &Service,
        method: Method,
        path_and_query: &str,
        body: Value,
    ) -> Result<Value, (u16, u32)> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        match handle(
            service,
            &method,
            &Route::parse(path),
            &Query::parse(Some(query)),
            &body,
        )
        .await
        {
            Ok(Reply::Json(v)) => Ok(v),
            Ok(Reply::Text(t)) => Ok(Value::String(t)),
            Err(e) => Err((e.status, e.code)),
        }
    }

    const V1: &str = r#"{"type":"record","name":"U","fields":[{"name":"id","type":"int"}]}"#;
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"U","fields":[{"name":"id","type":"int"},{"name":"n","type":"string"}]}"#;

    #[tokio::test]
    async fn register_is_idempotent_and_versions_are_served() {
        let s = Service::in_memory();
        let id = call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1, "metadata": null, "ruleSet": null}),
        )
        .await;
        assert_eq!(id, Ok(json!({"id": 1})));
        let again = call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1}),
        )
        .await;
        assert_eq!(again, Ok(json!({"id": 1})));
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/subjects/b/versions",
                json!({"schema": V1})
            )
            .await,
            Ok(json!({"id": 1}))
        );
        assert_eq!(
            call(&s, Method::GET, "/subjects/a/versions", Value::Null).await,
            Ok(json!([1]))
        );
        let latest = call(&s, Method::GET, "/subjects/a/versions/latest", Value::Null).await;
        assert_eq!(latest.map(|v| v["version"].clone()), Ok(json!(1)));
        assert_eq!(
            call(&s, Method::GET, "/schemas/ids/1/subjects", Value::Null).await,
            Ok(json!(["a", "b"]))
        );
        assert_eq!(
            call(&s, Method::GET, "/schemas/ids/1/schema", Value::Null)
                .await
                .map(|v| v.is_string()),
            Ok(true)
        );
        let looked = call(&s, Method::POST, "/subjects/a", json!({"schema": V1})).await;
        assert_eq!(looked.map(|v| v["id"].clone()), Ok(json!(1)));
    }

    #[tokio::test]
    async fn a_schema_registered_twice_in_different_forms_with_normalize_gets_one_id() {
        let s = Service::in_memory();
        let namespaced = r#"{"type":"record","name":"U","namespace":"t","fields":[{"name":"id","type":{"type":"int"}}]}"#;
        let full_name = r#"{"name":"t.U","type":"record","fields":[{"type":"int","name":"id","order":"ascending"}]}"#;
        let first = call(
            &s,
            Method::POST,
            "/subjects/a/versions?normalize=true",
            json!({"schema": namespaced}),
        )
        .await;
        assert_eq!(first, Ok(json!({"id": 1})));
        let again = call(
            &s,
            Method::POST,
            "/subjects/a/versions?normalize=true",
            json!({"schema": full_name}),
        )
        .await;
        assert_eq!(again, Ok(json!({"id": 1})));
        assert_eq!(
            call(&s, Method::GET, "/subjects/a/versions", Value::Null).await,
            Ok(json!([1]))
        );
        let looked = call(
            &s,
            Method::POST,
            "/subjects/a?normalize=true",
            json!({"schema": full_name}),
        )
        .await;
        assert_eq!(looked.map(|v| v["id"].clone()), Ok(json!(1)));
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/subjects/a",
                json!({"schema": full_name})
            )
            .await,
            Err((404, 40403))
        );
        let proto_a = "syntax = \"proto3\";\n// a comment\nmessage M {\n  int32 a = 1;\n}\n";
        let proto_b = "syntax=\"proto3\"; message M { int32 a=1; }";
        let mut ids = Vec::new();
        for text in [proto_a, proto_b] {
            let reply = call(
                &s,
                Method::POST,
                "/subjects/p/versions?normalize=true",
                json!({"schema": text, "schemaType": "PROTOBUF"}),
            )
            .await;
            ids.push(reply.map(|v| v["id"].clone()));
        }
        assert_eq!(ids, vec![Ok(json!(2)), Ok(json!(2))]);
    }

    #[tokio::test]
    async fn the_subject_parameter_limits_a_lookup_by_id_to_that_subject() {
        let s = Service::in_memory();
        let registered = call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1}),
        )
        .await;
        assert_eq!(registered, Ok(json!({"id": 1})));
        let by_holder = call(&s, Method::GET, "/schemas/ids/1?subject=a", Value::Null).await;
        assert_eq!(by_holder.map(|v| v["schema"].is_string()), Ok(true));
        assert_eq!(
            call(&s, Method::GET, "/schemas/ids/1?subject=other", Value::Null).await,
            Err((404, 40403))
        );
        assert_eq!(
            call(
                &s,
                Method::GET,
                "/schemas/ids/1/schema?subject=other",
                Value::Null
            )
            .await,
            Err((404, 40403))
        );
        assert_eq!(
            call(&s, Method::GET, "/schemas/ids/1?subject=", Value::Null)
                .await
                .map(|v| v["schema"].is_string()),
            Ok(true)
        );
    }

    #[tokio::test]
    async fn errors_map_to_confluents_codes_and_statuses() {
        let s = Service::in_memory();
        assert_eq!(
            call(&s, Method::GET, "/subjects/x/versions", Value::Null).await,
            Err((404, 40401))
        );
        call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1}),
        )
        .await
        .ok();
        assert_eq!(
            call(&s, Method::GET, "/subjects/a/versions/7", Value::Null).await,
            Err((404, 40402))
        );
        assert_eq!(
            call(&s, Method::GET, "/subjects/a/versions/zero", Value::Null).await,
            Err((422, 42202))
        );
        assert_eq!(
            call(&s, Method::GET, "/schemas/ids/42", Value::Null).await,
            Err((404, 40403))
        );
        assert_eq!(
            call(&s, Method::GET, "/schemas/ids/abc", Value::Null).await,
            Err((404, 40403))
        );
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/subjects/a/versions",
                json!({"schema": V2_NO_DEFAULT})
            )
            .await,
            Err((409, 409))
        );
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/subjects/a/versions",
                json!({"schema": "{"})
            )
            .await,
            Err((422, 42201))
        );
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/subjects/a/versions",
                json!({"schema": "\"int\"", "schemaType": "XML"})
            )
            .await,
            Err((422, 42201))
        );
        assert_eq!(
            call(&s, Method::POST, "/subjects/a/versions", json!({"nope": 1})).await,
            Err((422, 422))
        );
        assert_eq!(
            call(
                &s,
                Method::PUT,
                "/config",
                json!({"compatibility": "SOMETIMES"})
            )
            .await,
            Err((422, 42203))
        );
        assert_eq!(
            call(&s, Method::PUT, "/mode", json!({"mode": "SOMETIMES"})).await,
            Err((422, 42204))
        );
        assert_eq!(
            call(&s, Method::GET, "/associations/subjects/a", Value::Null).await,
            Err((404, 404))
        );
        assert_eq!(
            call(&s, Method::PATCH, "/subjects", Value::Null).await,
            Err((405, 405))
        );
        assert_eq!(
            call(&s, Method::GET, "/config/a", Value::Null).await,
            Err((404, 40408))
        );
        assert_eq!(
            call(&s, Method::GET, "/mode/a", Value::Null).await,
            Err((404, 40409))
        );
    }

    /// Issue 40's schema: `array` used as a type name, where Avro wants
    /// `"type":{"type":"array","items":"string"}`.
    const ARRAY_AS_NAME: &str = r#"{"type":"record","name":"U","fields":[{"name":"id","type":"int"},{"name":"key","type":"array","items":"string"}]}"#;

    #[tokio::test]
    async fn invalid_avro_is_42201_on_register_lookup_and_compatibility() {
        let s = Service::in_memory();
        let v1 = call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1}),
        )
        .await;
        assert_eq!(v1, Ok(json!({"id": 1})));
        let invalid = json!({"schema": ARRAY_AS_NAME});
        for path in [
            "/subjects/a/versions",
            "/subjects/fresh/versions",
            "/subjects/a",
            "/subjects/fresh",
            "/compatibility/subjects/a/versions",
            "/compatibility/subjects/a/versions/latest",
            "/compatibility/subjects/a/versions/1",
            "/compatibility/subjects/fresh/versions/latest",
        ] {
            let answer = call(&s, Method::POST, path, invalid.clone()).await;
            assert_eq!(answer, Err((422, 42201)), "POST {path}");
        }
        assert_eq!(
            call(&s, Method::GET, "/subjects", Value::Null).await,
            Ok(json!(["a"])),
            "nothing was stored"
        );
        // A missing version comes first, as in Confluent.
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/compatibility/subjects/a/versions/7",
                invalid.clone()
            )
            .await,
            Err((404, 40402))
        );
        // Asked verbosely, Confluent answers incompatible with the reason.
        let verbose = call(
            &s,
            Method::POST,
            "/compatibility/subjects/a/versions/latest?verbose=true",
            invalid,
        )
        .await
        .unwrap_or_default();
        assert_eq!(verbose["is_compatible"], json!(false), "{verbose}");
        let message = verbose["messages"][0].as_str().unwrap_or_default();
        assert!(
            message.starts_with(
                "Invalid schema of type AVRO, details: \"array\" is not a defined name"
            ),
            "{verbose}"
        );
    }

    #[tokio::test]
    async fn compatibility_endpoint_reports_messages_when_verbose() {
        let s = Service::in_memory();
        call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1}),
        )
        .await
        .ok();
        let v = call(
            &s,
            Method::POST,
            "/compatibility/subjects/a/versions/latest?verbose=true",
            json!({"schema": V2_NO_DEFAULT}),
        )
        .await;
        let v = v.unwrap_or_default();
        assert_eq!(v["is_compatible"], json!(false));
        assert!(v["messages"].as_array().is_some_and(|m| !m.is_empty()));
        let quiet = call(
            &s,
            Method::POST,
            "/compatibility/subjects/a/versions/1",
            json!({"schema": V1}),
        )
        .await;
        assert_eq!(quiet, Ok(json!({"is_compatible": true})));
    }

    #[tokio::test]
    async fn modes_guard_writes_and_import_takes_explicit_ids() {
        let s = Service::in_memory();
        assert_eq!(
            call(&s, Method::PUT, "/mode", json!({"mode": "READONLY"})).await,
            Ok(json!({"mode": "READONLY"}))
        );
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/subjects/a/versions",
                json!({"schema": V1})
            )
            .await,
            Err((422, 42205))
        );
        call(&s, Method::PUT, "/mode", json!({"mode": "IMPORT"}))
            .await
            .ok();
        let imported = call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1, "id": 50, "version": 3}),
        )
        .await;
        assert_eq!(imported, Ok(json!({"id": 50})));
        let clash = call(
            &s,
            Method::POST,
            "/subjects/b/versions",
            json!({"schema": V2_NO_DEFAULT, "id": 50}),
        )
        .await;
        assert_eq!(clash, Err((422, 42205)));
        call(&s, Method::PUT, "/mode", json!({"mode": "READWRITE"}))
            .await
            .ok();
        let next = call(
            &s,
            Method::POST,
            "/subjects/c/versions",
            json!({"schema": "\"string\""}),
        )
        .await;
        assert_eq!(next, Ok(json!({"id": 51})));
        assert_eq!(
            call(&s, Method::PUT, "/mode", json!({"mode": "IMPORT"})).await,
            Err((422, 42205))
        );
    }

    #[tokio::test]
    async fn soft_then_hard_delete_follow_the_rules() {
        let s = Service::in_memory();
        call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1}),
        )
        .await
        .ok();
        assert_eq!(
            call(
                &s,
                Method::DELETE,
                "/subjects/a?permanent=true",
                Value::Null
            )
            .await,
            Err((404, 40405))
        );
        assert_eq!(
            call(&s, Method::DELETE, "/subjects/a", Value::Null).await,
            Ok(json!([1]))
        );
        assert_eq!(
            call(&s, Method::DELETE, "/subjects/a", Value::Null).await,
            Err((404, 40404))
        );
        assert_eq!(
            call(&s, Method::GET, "/subjects?deleted=true", Value::Null).await,
            Ok(json!(["a"]))
        );
        assert_eq!(
            call(
                &s,
                Method::DELETE,
                "/subjects/a?permanent=true",
                Value::Null
            )
            .await,
            Ok(json!([1]))
        );
        assert_eq!(
            call(&s, Method::GET, "/schemas/ids/1", Value::Null).await,
            Err((404, 40403))
        );
        let next = call(
            &s,
            Method::POST,
            "/subjects/a/versions",
            json!({"schema": V1}),
        )
        .await;
        assert_eq!(
            next,
            Ok(json!({"id": 2})),
            "the hard-deleted schema's id is not reused"
        );
    }
}
