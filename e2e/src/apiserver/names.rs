//! ObjectMeta validation every resource gets: name format (DNS subdomain, or DNS label for
//! namespaces and services), label keys and values, annotation keys and total size.

use serde_json::Value;

use super::error::FieldError;
use super::selector::{valid_key, valid_value};

/// RFC 1123 subdomain as Kubernetes checks it (`IsDNS1123Subdomain`): lowercase
/// alphanumerics, `-` and `.`, each dot-separated part starting and ending alphanumeric, at
/// most 253 characters in all. Unlike DNS, Kubernetes sets no 63-character limit per part.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_subdomain_part)
}

fn is_subdomain_part(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_dns_label_part(s: &str) -> bool {
    s.len() <= 63 && is_subdomain_part(s)
}

/// RFC 1123 label (namespaces).
pub(crate) fn is_dns_label(s: &str) -> bool {
    is_dns_label_part(s)
}

/// RFC 1035 label (services): a label that starts with a letter.
fn is_dns1035_label(s: &str) -> bool {
    is_dns_label_part(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

const ANNOTATIONS_MAX: usize = 256 * 1024;

/// Errors in `metadata` of an object of `kind` (group `group`).
pub(crate) fn validate_meta(kind: &str, group: &str, meta: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = meta["name"].as_str().unwrap_or_default();
    let (ok, rule) = match (group, kind) {
        ("", "Namespace") => (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        ("", "Service") => (
            is_dns1035_label(name),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        // RBAC and a few others only forbid path segments; colons are common in RBAC names.
        ("rbac.authorization.k8s.io", _) => (
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']),
            "may not contain '/' or '%'",
        ),
        _ => (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
    };
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if !ok {
        errs.push(FieldError::invalid("metadata.name", &meta["name"], rule));
    }
    if let Some(labels) = meta["labels"].as_object() {
        for (k, v) in labels {
            if !valid_key(k) {
                errs.push(FieldError::invalid(
                    "metadata.labels",
                    &Value::String(k.clone()),
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                ));
            }
            match v.as_str() {
                Some(s) if valid_value(s) => {}
                _ => errs.push(FieldError::invalid(
                    "metadata.labels",
                    v,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                )),
            }
        }
    }
    if let Some(annotations) = meta["annotations"].as_object() {
        let mut total = 0;
        for (k, v) in annotations {
            total += k.len() + v.as_str().map_or(0, str::len);
            if !valid_key(&k.to_lowercase()) {
                errs.push(FieldError::invalid(
                    "metadata.annotations",
                    &Value::String(k.clone()),
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                ));
            }
        }
        if total > ANNOTATIONS_MAX {
            errs.push(FieldError::new(
                super::error::FieldErrorKind::TooLong,
                "metadata.annotations",
                None,
                format!("must have at most {ANNOTATIONS_MAX} bytes"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_the_kind_rules() {
        assert!(validate_meta("ConfigMap", "", &json!({"name": "a.b-c"})).is_empty());
        assert_eq!(
            validate_meta("ConfigMap", "", &json!({"name": "Upper"})).len(),
            1
        );
        assert_eq!(
            validate_meta("Namespace", "", &json!({"name": "a.b"})).len(),
            1
        );
        assert_eq!(
            validate_meta("Service", "", &json!({"name": "1abc"})).len(),
            1
        );
        assert!(validate_meta(
            "ClusterRole",
            "rbac.authorization.k8s.io",
            &json!({"name": "system:x"})
        )
        .is_empty());
        let e = validate_meta("ConfigMap", "", &json!({}));
        assert_eq!(
            e[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn label_keys_and_values_are_checked() {
        let errs = validate_meta(
            "ConfigMap",
            "",
            &json!({"name": "c", "labels": {"ok": "fine", "bad key": "x", "k": "-bad"}}),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn subdomains_have_no_per_part_limit_but_labels_do() {
        let long_part = "rdkafkatest-rnd445fb81946020dd6-0090-idempotence-impl-ack-c9fc1974";
        assert!(long_part.len() > 63);
        assert!(is_dns_subdomain(long_part));
        assert!(!is_dns_label(long_part));
        assert!(is_dns_subdomain(&"a".repeat(253)));
        assert!(!is_dns_subdomain(&"a".repeat(254)));
        assert!(!is_dns_subdomain("a..b") && !is_dns_subdomain("-a"));
    }
}
