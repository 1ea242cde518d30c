//! Failures answered to clients as a `meta.k8s.io/v1` Status, with the codes, reasons and
//! message shapes of the real API server (clients branch on them: `IsNotFound`, `IsConflict`,
//! `IsAlreadyExists`, `IsInvalid`, `IsResourceExpired`).

use serde_json::{json, Value};

/// One field-level validation failure, rendered as Go's `field.Error` renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// What kind of failure (selects the Status cause reason and the message prefix).
    pub kind: FieldErrorKind,
    /// Field path, e.g. `spec.partitions` or `spec.config[min.insync.replicas]`.
    pub field: String,
    /// The offending value as Go prints it (`"abc"`, `5`, `"object"`), if the kind shows one.
    pub value: Option<String>,
    /// The explanation after the value.
    pub detail: String,
}

/// The `field.ErrorType`s the API server reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueTypeInvalid` (a JSON type mismatch).
    TypeInvalid,
    /// `FieldValueNotSupported` (an enum mismatch).
    NotSupported,
    /// `FieldValueTooLong`.
    TooLong,
    /// `FieldValueTooMany`.
    TooMany,
    /// `FieldValueForbidden`.
    Forbidden,
    /// `FieldValueDuplicate`.
    Duplicate,
}

impl FieldErrorKind {
    /// The Status cause `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Duplicate => "Duplicate value",
        }
    }

    /// Maps an `x-kubernetes-validations` `reason` onto a kind (Invalid when absent).
    pub fn from_rule_reason(reason: Option<&str>) -> Self {
        match reason {
            Some("FieldValueRequired") => FieldErrorKind::Required,
            Some("FieldValueForbidden") => FieldErrorKind::Forbidden,
            Some("FieldValueDuplicate") => FieldErrorKind::Duplicate,
            _ => FieldErrorKind::Invalid,
        }
    }
}

impl FieldError {
    /// A failure of `kind` at `field`.
    pub fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl Into<String>) -> Self {
        Self::new(
            FieldErrorKind::Invalid,
            field,
            Some(go_value(value)),
            detail,
        )
    }

    /// `Required value`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }

    /// The message without the field prefix (a Status cause's `message`).
    pub fn body(&self) -> String {
        let mut out = self.kind.label().to_owned();
        if let Some(v) = &self.value {
            out.push_str(": ");
            out.push_str(v);
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.body())
        } else {
            write!(f, "{}: {}", self.field, self.body())
        }
    }
}

/// Renders a JSON value as Go's `%#v`-ish error output does: strings quoted, numbers and
/// booleans bare, composite values by their type name.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Array(_) => "\"array\"".to_owned(),
        Value::Object(_) => "\"object\"".to_owned(),
    }
}

/// Who an error is about, for the Status `details`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// Object name.
    pub name: String,
    /// API group (empty for core).
    pub group: String,
    /// Kind or plural resource name, as the real server puts it in details.
    pub kind: String,
}

/// A failed request: HTTP code, Status reason, message and optional details.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Status `reason` (`NotFound`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message, shaped like the real server's.
    pub message: String,
    /// Object and field-level causes, when the Status carries details.
    pub details: Option<Box<Details>>,
}

/// The `details` of a Status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Details {
    /// Object the error is about.
    pub subject: Option<Subject>,
    /// Field-level causes (validation, field manager conflicts).
    pub causes: Vec<Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// This error about `subject`.
    pub fn with_subject(mut self, subject: Subject) -> Self {
        self.details.get_or_insert_with(Box::default).subject = Some(subject);
        self
    }

    /// This error with field-level `causes`.
    pub fn with_causes(mut self, causes: Vec<Value>) -> Self {
        self.details.get_or_insert_with(Box::default).causes = causes;
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for `<resource> "<name>"`, `resource` being `plural` or `plural.group`.
    pub fn not_found(qualified_resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{qualified_resource} {name:?} not found"),
        )
        .with_subject(Subject {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: plural_of(qualified_resource),
        })
    }

    /// 404 for a path no resource serves.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(qualified_resource: &str, group: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{qualified_resource} {name:?} already exists"),
        )
        .with_subject(Subject {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: plural_of(qualified_resource),
        })
    }

    /// 409 Conflict on a stale resourceVersion or failed precondition.
    pub fn conflict(qualified_resource: &str, group: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified_resource} {name:?}: {why}"),
        )
        .with_subject(Subject {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: plural_of(qualified_resource),
        })
    }

    /// The stale-resourceVersion conflict every optimistic-concurrency client retries on.
    pub fn stale(qualified_resource: &str, group: &str, name: &str) -> Self {
        Self::conflict(
            qualified_resource,
            group,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid listing `errors`, for `<Kind>.<group> "<name>"`.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let list = match errors {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Self::new(
            422,
            "Invalid",
            format!("{qualified} {name:?} is invalid: {list}"),
        )
        .with_subject(Subject {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
        })
        .with_causes(
            errors
                .iter()
                .map(
                    |f| json!({ "reason": f.kind.reason(), "message": f.body(), "field": f.field }),
                )
                .collect(),
        )
    }

    /// 410 Gone with reason Expired: a resourceVersion or continue token older than history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 for a body encoding this server cannot read.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object sent to the client.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = serde_json::Map::new();
            if let Some(s) = &d.subject {
                details.insert("name".into(), json!(s.name));
                if !s.group.is_empty() {
                    details.insert("group".into(), json!(s.group));
                }
                details.insert("kind".into(), json!(s.kind));
            }
            if !d.causes.is_empty() {
                details.insert("causes".into(), Value::Array(d.causes.clone()));
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// `pods` from `pods`, `kafkatopics` from `kafkatopics.tributary.dev`.
fn plural_of(qualified: &str) -> String {
    qualified
        .split_once('.')
        .map_or(qualified, |(p, _)| p)
        .to_owned()
}

/// Result of an API operation.
pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_cause_like_the_real_server() {
        let errs = [
            FieldError::invalid(
                "spec.partitions",
                &json!(0),
                "spec.partitions in body should be greater than or equal to 1",
            ),
            FieldError::required("spec.clusterRef", ""),
        ];
        let e = ApiError::invalid("KafkaTopic", "tributary.dev", "t", &errs);
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "KafkaTopic.tributary.dev \"t\" is invalid: [spec.partitions: Invalid value: 0: \
             spec.partitions in body should be greater than or equal to 1, spec.clusterRef: Required value]"
        );
        let status = e.status();
        assert_eq!(
            status["details"]["causes"][1]["reason"],
            "FieldValueRequired"
        );
        assert_eq!(status["details"]["causes"][1]["field"], "spec.clusterRef");
        assert_eq!(status["details"]["kind"], "KafkaTopic");
    }

    #[test]
    fn not_found_names_the_plural_in_details() {
        let e = ApiError::not_found("kafkatopics.tributary.dev", "tributary.dev", "t");
        assert_eq!(e.message, "kafkatopics.tributary.dev \"t\" not found");
        assert_eq!(e.status()["details"]["kind"], "kafkatopics");
        assert_eq!(e.status()["code"], 404);
    }
}
