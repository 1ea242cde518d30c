//! The REST API's errors: Confluent's numeric codes and messages, which clients match on, kept
//! apart from internal errors and mapped once at the HTTP boundary.

use serde_json::json;

/// Confluent's code for an invalid schema or schema type (42201).
pub const INVALID_SCHEMA: u32 = 42201;

/// Confluent's code for a write this instance could not forward to the writer (50003).
pub const FORWARD_FAILED: u32 = 50003;

/// Confluent's code for a write with no writer known ("unknown leader", 50004).
pub const UNKNOWN_WRITER: u32 = 50004;

/// An error answered to a REST client as `{"error_code":..,"message":..}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Confluent's error code (40401, 409, 42201...).
    pub code: u32,
    /// What went wrong, in Confluent's words where clients show them.
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error_code": self.code, "message": self.message})
    }

    /// 404 for a path the API does not have.
    pub fn not_found_path() -> Self {
        Self::new(404, 404, "HTTP 404 Not Found")
    }

    /// 405 for a method the path does not take.
    pub fn method_not_allowed() -> Self {
        Self::new(405, 405, "HTTP 405 Method Not Allowed")
    }

    /// 40401.
    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }

    /// 40402.
    pub fn version_not_found(version: impl std::fmt::Display) -> Self {
        Self::new(404, 40402, format!("Version {version} not found."))
    }

    /// 40403 for an id.
    pub fn schema_id_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(404, 40403, format!("Schema {id} not found"))
    }

    /// 40403 for a lookup by content.
    pub fn schema_not_found() -> Self {
        Self::new(404, 40403, "Schema not found")
    }

    /// 40404.
    pub fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(
            404,
            40404,
            format!(
                "Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"
            ),
        )
    }

    /// 40405.
    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            404,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }

    /// 40406.
    pub fn version_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            404,
            40406,
            format!("Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"),
        )
    }

    /// 40407.
    pub fn version_not_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            404,
            40407,
            format!("Subject '{subject}' Version {version} was not deleted first before being permanently deleted"),
        )
    }

    /// 40408.
    pub fn subject_level_compatibility_not_configured(subject: &str) -> Self {
        Self::new(
            404,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }

    /// 40409.
    pub fn subject_level_mode_not_configured(subject: &str) -> Self {
        Self::new(
            404,
            40409,
            format!("Subject '{subject}' does not have subject-level mode configured"),
        )
    }

    /// 409 with the incompatibilities found.
    pub fn incompatible(subject: &str, messages: &[String]) -> Self {
        Self::new(
            409,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                messages.join(", ")
            ),
        )
    }

    /// 42201.
    pub fn invalid_schema(message: impl std::fmt::Display) -> Self {
        Self::new(422, INVALID_SCHEMA, message.to_string())
    }

    /// 42202.
    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            422,
            42202,
            format!("The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
        )
    }

    /// 42203.
    pub fn invalid_compatibility_level() -> Self {
        Self::new(
            422,
            42203,
            "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive",
        )
    }

    /// 42204.
    pub fn invalid_mode() -> Self {
        Self::new(
            422,
            42204,
            "Invalid mode. Valid values are READWRITE, READONLY, IMPORT",
        )
    }

    /// 42205.
    pub fn not_permitted(message: impl Into<String>) -> Self {
        Self::new(422, 42205, message)
    }

    /// 42206.
    pub fn reference_exists(message: impl Into<String>) -> Self {
        Self::new(422, 42206, message)
    }

    /// 422 for a body that is not the expected JSON.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, 422, message)
    }

    /// 400 for a body too large or unreadable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, 400, message)
    }

    /// 50001.
    pub fn store(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            50001,
            format!("Error in the backend data store: {message}"),
        )
    }

    /// 50002.
    pub fn store_timeout(message: impl std::fmt::Display) -> Self {
        Self::new(500, 50002, format!("Operation timed out: {message}"))
    }

    /// 50003: this instance is a follower and the write was not (or could not be) forwarded
    /// to the writer. The HTTP layer forwards such writes; this reaches clients only when
    /// forwarding failed.
    pub fn not_writer(message: impl Into<String>) -> Self {
        Self::new(500, FORWARD_FAILED, message)
    }

    /// 50004: no writer is known (none elected yet, or the new one is still reading the topic
    /// to its end).
    pub fn unknown_writer(message: impl Into<String>) -> Self {
        Self::new(500, UNKNOWN_WRITER, message)
    }

    /// Whether this instance refused a write for not being the writer.
    pub fn is_not_writer(&self) -> bool {
        self.code == FORWARD_FAILED || self.code == UNKNOWN_WRITER
    }
}
