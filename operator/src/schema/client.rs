//! The operator's client of the schema registry's REST API (Confluent's): the few calls the
//! KafkaSchema reconciler makes (read and set a subject's compatibility, look a schema up,
//! register it, soft-delete the subject), over the shared [`tributary_registry_client`]
//! (HTTP or HTTPS, one connection per call, each bounded by a timeout). The registry's error
//! bodies (`error_code`, `message`) come back as [`RegistryError::Api`] so the reconciler can
//! tell a refused schema from an outage. A registry serving HTTPS is called with
//! [`RegistryTls`]: its certificate checked for the Service's name (the operator calls a pod
//! by IP) and the operator's own client certificate presented, which the registry admits in
//! every authentication mode.

use std::time::Duration;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_registry_client::{ClientError, RegistryHttp};

/// TLS to a registry serving HTTPS (the shared client's settings).
pub type RegistryTls = tributary_registry_client::TlsSettings;
/// How long one call may take, connection included.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Confluent's error code for a subject that does not exist.
pub const SUBJECT_NOT_FOUND: i64 = 40401;
/// Confluent's error code for a schema not found under a subject.
pub const SCHEMA_NOT_FOUND: i64 = 40403;
/// Confluent's error code for a subject without a compatibility level of its own.
pub const SUBJECT_LEVEL_NOT_CONFIGURED: i64 = 40408;
/// Confluent's error code for an incompatible schema.
pub const INCOMPATIBLE: i64 = 409;
/// Confluent's error code for a schema that does not parse.
pub const INVALID_SCHEMA: i64 = 42201;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be called or did not answer.
    #[error("schema registry: {0}")]
    Client(#[from] ClientError),
    /// The registry answered with an error body.
    #[error("schema registry answered {status} (error code {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Confluent's error code.
        code: i64,
        /// The registry's message.
        message: String,
    },
    /// The registry's answer is not what the API documents.
    #[error("schema registry answered {path} with an unreadable body: {source}")]
    Decode {
        /// The path called.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl RegistryError {
    /// Confluent's error code, when the registry answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RegistryError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A schema as the registry's register and lookup calls take it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaBody {
    /// The schema text.
    pub schema: String,
    /// `AVRO`, `JSON` or `PROTOBUF`.
    pub schema_type: String,
    /// References to other subjects' versions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceBody>,
}

/// One reference, as the REST API spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReferenceBody {
    /// Name the schema uses.
    pub name: String,
    /// Referenced subject.
    pub subject: String,
    /// Referenced version.
    pub version: i32,
}

/// Where a schema is registered under a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Registered {
    /// Global schema id.
    pub id: i64,
    /// The subject's version.
    pub version: i32,
}

/// A registry at one base URL (`http://host:port`, or `https://` with [`RegistryTls`]).
#[derive(Clone, Debug)]
pub struct RegistryClient {
    http: RegistryHttp,
}

impl RegistryClient {
    /// A client of the registry at `url`: `http://`, or `https://` with `tls`.
    pub fn new(url: &str, tls: Option<RegistryTls>) -> Result<Self, RegistryError> {
        Ok(RegistryClient {
            http: RegistryHttp::new(url, tls, CALL_TIMEOUT)?,
        })
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        self.http.url()
    }

    /// The subject's own compatibility level; `None` when it has none (the global applies).
    pub async fn subject_compatibility(
        &self,
        subject: &str,
    ) -> Result<Option<String>, RegistryError> {
        let path = format!("/config/{}?defaultToGlobal=false", encode(subject));
        match self.call(Method::GET, &path, None).await {
            Ok(body) => Ok(body
                .get("compatibilityLevel")
                .or_else(|| body.get("compatibility"))
                .and_then(Value::as_str)
                .map(str::to_owned)),
            Err(e)
                if matches!(
                    e.code(),
                    Some(SUBJECT_LEVEL_NOT_CONFIGURED | SUBJECT_NOT_FOUND)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the subject's compatibility level.
    pub async fn set_subject_compatibility(
        &self,
        subject: &str,
        level: &str,
    ) -> Result<(), RegistryError> {
        let path = format!("/config/{}", encode(subject));
        let body = serde_json::json!({ "compatibility": level });
        self.call(Method::PUT, &path, Some(body)).await.map(|_| ())
    }

    /// Where `schema` is registered under `subject`, if it is.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &SchemaBody,
        normalize: bool,
    ) -> Result<Option<Registered>, RegistryError> {
        let path = format!("/subjects/{}?normalize={normalize}", encode(subject));
        match self.call(Method::POST, &path, Some(to_json(schema))).await {
            Ok(body) => decode(&path, body).map(Some),
            Err(e) if matches!(e.code(), Some(SUBJECT_NOT_FOUND | SCHEMA_NOT_FOUND)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers `schema` as the subject's next version (the registry checks compatibility);
    /// returns its id.
    pub async fn register(
        &self,
        subject: &str,
        schema: &SchemaBody,
        normalize: bool,
    ) -> Result<i64, RegistryError> {
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        let path = format!(
            "/subjects/{}/versions?normalize={normalize}",
            encode(subject)
        );
        let body = self
            .call(Method::POST, &path, Some(to_json(schema)))
            .await?;
        decode::<Id>(&path, body).map(|r| r.id)
    }

    /// Soft-deletes the subject; a subject already gone is success.
    pub async fn soft_delete_subject(&self, subject: &str) -> Result<(), RegistryError> {
        let path = format!("/subjects/{}", encode(subject));
        match self.call(Method::DELETE, &path, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(SUBJECT_NOT_FOUND) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One call, bounded by [`CALL_TIMEOUT`]; an error status is [`RegistryError::Api`].
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RegistryError> {
        let answer = self.http.call(method, path, body.as_ref()).await?;
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        if status.is_success() {
            Ok(answer.body)
        } else {
            Err(api_error(status, &answer.body))
        }
    }
}

/// The registry's error body as an error (Confluent's `error_code` and `message`).
fn api_error(status: StatusCode, body: &Value) -> RegistryError {
    RegistryError::Api {
        status: status.as_u16(),
        code: body
            .get("error_code")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| i64::from(status.as_u16())),
        message: body
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| body.to_string(), str::to_owned),
    }
}

fn to_json(schema: &SchemaBody) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, body: Value) -> Result<T, RegistryError> {
    serde_json::from_value(body).map_err(|source| RegistryError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Percent-encodes a subject for a path segment: subjects may hold any character.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_encoded_into_one_path_segment() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn http_urls_and_https_urls_with_tls_are_accepted() {
        let c = RegistryClient::new("http://demo-schema-registry.kafka.svc:8081/", None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.url(), "http://demo-schema-registry.kafka.svc:8081");
        assert!(matches!(
            RegistryClient::new("https://x:8081", None),
            Err(RegistryError::Client(ClientError::BadUrl { .. }))
        ));
        assert!(RegistryClient::new("ftp://x:8081", None).is_err());
        assert!(RegistryClient::new("not a url", None).is_err());
    }

    #[test]
    fn error_bodies_keep_the_registry_code_and_message() {
        let body = serde_json::json!({"error_code": 409, "message": "incompatible: field x"});
        let e = api_error(StatusCode::CONFLICT, &body);
        assert_eq!(e.code(), Some(409));
        assert!(e.to_string().contains("incompatible: field x"));
        let bare = api_error(StatusCode::BAD_GATEWAY, &Value::Null);
        assert_eq!(bare.code(), Some(502));
    }

    #[test]
    fn the_schema_body_is_the_rest_api_shape() {
        let body = SchemaBody {
            schema: "\"string\"".into(),
            schema_type: "AVRO".into(),
            references: vec![],
        };
        assert_eq!(
            to_json(&body),
            serde_json::json!({"schema": "\"string\"", "schemaType": "AVRO"})
        );
    }
}
