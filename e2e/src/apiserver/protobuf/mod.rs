//! Reading the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`) for the
//! few kinds client-go's typed clients send that way to us: since client-go 1.32 they prefer
//! protobuf request bodies, so helm's release Secrets, `--create-namespace` and typed deletes
//! arrive in it, as do `kubectl create serviceaccount|role|clusterrole|rolebinding|
//! clusterrolebinding` and `kubectl auth can-i|whoami`'s access reviews, and `kubectl create
//! token`'s TokenRequest, and `kubectl create deployment|job|cronjob|service|
//! poddisruptionbudget`'s workloads ([`workloads`]). Other kinds answer 415, as a real server
//! does for custom resources.

mod workloads;

use base64::Engine as _;
use serde_json::{json, Map, Value};

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// How a field's bytes become JSON.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// Base64 in JSON (`[]byte`).
    Bytes,
    Int,
    Bool,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
    /// `map<string, ExtraValue>`: each value a message of repeated strings (field 1).
    MapStrList,
    Time,
    /// `FieldsV1`: a message whose field 1 holds raw JSON.
    RawJson,
    /// `IntOrString`: `type` (1: string), `intVal`, `strVal`; a number or a string in JSON.
    IntOrStr,
    /// `map<string, Quantity>`: each value a message whose field 1 is the quantity's text.
    MapQuantity,
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
    /// A Go value field (not a pointer) with `omitempty`: Go's protobuf sends its zero value
    /// (`false`, `0`) as it sends any other, but its JSON, and so what clients read back and
    /// compare (a Deployment's template against its ReplicaSets'), leaves it out.
    omit_zero: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
        omit_zero: false,
    }
}

/// A field whose zero value is left out (see [`Field::omit_zero`]).
const fn z(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        omit_zero: true,
        ..f(num, name, ty)
    }
}

const fn rep(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        repeated: true,
        ..f(num, name, ty)
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const MANAGED_FIELDS_ENTRY: &[Field] = &[
    f(1, "manager", Ty::Str),
    f(2, "operation", Ty::Str),
    f(3, "apiVersion", Ty::Str),
    f(4, "time", Ty::Time),
    f(6, "fieldsType", Ty::Str),
    f(7, "fieldsV1", Ty::RawJson),
    f(8, "subresource", Ty::Str),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    z(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(10, "deletionGracePeriodSeconds", Ty::Int),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    rep(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    rep(14, "finalizers", Ty::Str),
    rep(17, "managedFields", Ty::Msg(MANAGED_FIELDS_ENTRY)),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const NAMESPACE_SPEC: &[Field] = &[rep(1, "finalizers", Ty::Str)];
const NAMESPACE_STATUS: &[Field] = &[f(1, "phase", Ty::Str)];
const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
    f(3, "status", Ty::Msg(NAMESPACE_STATUS)),
];

const PRECONDITIONS: &[Field] = &[f(1, "uid", Ty::Str), f(2, "resourceVersion", Ty::Str)];
const DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Ty::Int),
    f(2, "preconditions", Ty::Msg(PRECONDITIONS)),
    f(3, "orphanDependents", Ty::Bool),
    f(4, "propagationPolicy", Ty::Str),
    rep(5, "dryRun", Ty::Str),
];

const LABEL_SELECTOR_REQUIREMENT: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    rep(3, "values", Ty::Str),
];
const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", Ty::MapStr),
    rep(2, "matchExpressions", Ty::Msg(LABEL_SELECTOR_REQUIREMENT)),
];

const POLICY_RULE: &[Field] = &[
    rep(1, "verbs", Ty::Str),
    rep(2, "apiGroups", Ty::Str),
    rep(3, "resources", Ty::Str),
    rep(4, "resourceNames", Ty::Str),
    rep(5, "nonResourceURLs", Ty::Str),
];
const AGGREGATION_RULE: &[Field] = &[rep(1, "clusterRoleSelectors", Ty::Msg(LABEL_SELECTOR))];
const ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "rules", Ty::Msg(POLICY_RULE)),
];
const CLUSTER_ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "rules", Ty::Msg(POLICY_RULE)),
    f(3, "aggregationRule", Ty::Msg(AGGREGATION_RULE)),
];
const SUBJECT: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiGroup", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "namespace", Ty::Str),
];
const ROLE_REF: &[Field] = &[
    f(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];
/// RoleBinding and ClusterRoleBinding.
const BINDING: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];
const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Ty::Str)];
const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    rep(3, "imagePullSecrets", Ty::Msg(LOCAL_OBJECT_REFERENCE)),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

/// Field and label selector attributes of a ResourceAttributes (their requirements share the
/// LabelSelectorRequirement shape).
const SELECTOR_ATTRIBUTES: &[Field] = &[
    f(1, "rawSelector", Ty::Str),
    rep(2, "requirements", Ty::Msg(LABEL_SELECTOR_REQUIREMENT)),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
    f(8, "fieldSelector", Ty::Msg(SELECTOR_ATTRIBUTES)),
    f(9, "labelSelector", Ty::Msg(SELECTOR_ATTRIBUTES)),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
const EXTRA_VALUE: &[Field] = &[rep(1, "items", Ty::Str)];
const SELF_SUBJECT_ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];
/// The spec of SubjectAccessReview and LocalSubjectAccessReview.
const SUBJECT_ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
    f(3, "user", Ty::Str),
    rep(4, "groups", Ty::Str),
    f(5, "extra", Ty::MapStrList),
    f(6, "uid", Ty::Str),
];
const SELF_SUBJECT_RULES_REVIEW_SPEC: &[Field] = &[f(1, "namespace", Ty::Str)];
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
];
const SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SUBJECT_ACCESS_REVIEW_SPEC)),
];
const SELF_SUBJECT_RULES_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SELF_SUBJECT_RULES_REVIEW_SPEC)),
];
/// A SelfSubjectReview request carries only its metadata.
const SELF_SUBJECT_REVIEW: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META))];

const BOUND_OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiVersion", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
];
const TOKEN_REQUEST_SPEC: &[Field] = &[
    rep(1, "audiences", Ty::Str),
    f(3, "boundObjectRef", Ty::Msg(BOUND_OBJECT_REFERENCE)),
    f(4, "expirationSeconds", Ty::Int),
];
/// What `kubectl create token` sends.
const TOKEN_REQUEST: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(TOKEN_REQUEST_SPEC)),
];

const QUANTITY: &[Field] = &[f(1, "string", Ty::Str)];

const TYPE_META: &[Field] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtobufError {
    /// Not a Kubernetes protobuf envelope, or truncated.
    #[error("malformed protobuf body: {0}")]
    Malformed(&'static str),
    /// A kind this server has no protobuf schema for.
    #[error("protobuf bodies of kind {0:?} are not supported; send JSON")]
    Unsupported(String),
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or(ProtobufError::Malformed("truncated varint"))?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtobufError::Malformed("varint too long"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len =
            usize::try_from(self.varint()?).map_err(|_| ProtobufError::Malformed("length"))?;
        if len > self.buf.len() {
            return Err(ProtobufError::Malformed("truncated field"));
        }
        let (b, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(b)
    }

    fn skip(&mut self, wire: u64) -> Result<(), ProtobufError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            _ => Err(ProtobufError::Malformed("unknown wire type")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), ProtobufError> {
        if n > self.buf.len() {
            return Err(ProtobufError::Malformed("truncated fixed field"));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

fn decode_message(buf: &[u8], fields: &[Field]) -> Result<Map<String, Value>, ProtobufError> {
    let mut r = Reader { buf };
    let mut out = Map::new();
    while !r.buf.is_empty() {
        let tag = r.varint()?;
        let (num, wire) = (tag >> 3, tag & 7);
        let Some(field) = fields.iter().find(|f| f.num == num) else {
            r.skip(wire)?;
            continue;
        };
        let value = match field.ty {
            Ty::Int => Value::from(r.varint()? as i64),
            Ty::Bool => Value::Bool(r.varint()? != 0),
            Ty::Str => Value::String(String::from_utf8_lossy(r.bytes()?).into_owned()),
            Ty::Bytes => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?))
            }
            Ty::Msg(sub) => Value::Object(decode_message(r.bytes()?, sub)?),
            Ty::Time => {
                let t = decode_message(r.bytes()?, &[f(1, "seconds", Ty::Int)])?;
                let secs = t.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                // Go sends the zero time (a template's creationTimestamp) as an empty
                // Timestamp, which it reads back as no time at all.
                if secs == 0 {
                    continue;
                }
                k8s_openapi::jiff::Timestamp::from_second(secs)
                    .map(|ts| Value::String(ts.to_string()))
                    .unwrap_or(Value::Null)
            }
            Ty::IntOrStr => {
                let v = decode_message(
                    r.bytes()?,
                    &[
                        f(1, "type", Ty::Int),
                        f(2, "intVal", Ty::Int),
                        f(3, "strVal", Ty::Str),
                    ],
                )?;
                if v.get("type").and_then(Value::as_i64) == Some(1) {
                    v.get("strVal").cloned().unwrap_or(json!(""))
                } else {
                    v.get("intVal").cloned().unwrap_or(json!(0))
                }
            }
            Ty::RawJson => {
                let raw = decode_message(r.bytes()?, &[f(1, "raw", Ty::Str)])?;
                raw.get("raw")
                    .and_then(Value::as_str)
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(Value::Null)
            }
            Ty::MapStr | Ty::MapBytes | Ty::MapStrList | Ty::MapQuantity => {
                let value_ty = match field.ty {
                    Ty::MapStr => Ty::Str,
                    Ty::MapBytes => Ty::Bytes,
                    Ty::MapQuantity => Ty::Msg(QUANTITY),
                    _ => Ty::Msg(EXTRA_VALUE),
                };
                let entry = decode_message(r.bytes()?, &[f(1, "k", Ty::Str), f(2, "v", value_ty)])?;
                let k = entry
                    .get("k")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let v = match (field.ty, entry.get("v")) {
                    (Ty::MapStrList, Some(v)) => v.get("items").cloned().unwrap_or(json!([])),
                    (Ty::MapStrList, None) => json!([]),
                    (Ty::MapQuantity, v) => v
                        .and_then(|q| q.get("string"))
                        .cloned()
                        .unwrap_or(json!("0")),
                    (_, v) => v.cloned().unwrap_or(Value::String(String::new())),
                };
                let map = out.entry(field.name).or_insert_with(|| json!({}));
                if let Some(m) = map.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
        };
        // Go's protobuf encoding sends a plain string field even when empty; its JSON leaves
        // an empty optional string out, as the objects' JSON here does.
        if !field.repeated && value.as_str() == Some("") {
            continue;
        }
        if field.omit_zero && (value == json!(false) || value == json!(0)) {
            continue;
        }
        if field.repeated {
            let list = out.entry(field.name).or_insert_with(|| json!([]));
            if let Some(items) = list.as_array_mut() {
                items.push(value);
            }
        } else {
            out.insert(field.name.to_owned(), value);
        }
    }
    Ok(out)
}

fn schema_of(kind: &str) -> Option<&'static [Field]> {
    Some(match kind {
        "Secret" => SECRET,
        "ConfigMap" => CONFIG_MAP,
        "Namespace" => NAMESPACE,
        "DeleteOptions" => DELETE_OPTIONS,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Role" => ROLE,
        "ClusterRole" => CLUSTER_ROLE,
        "RoleBinding" | "ClusterRoleBinding" => BINDING,
        "SelfSubjectAccessReview" => SELF_SUBJECT_ACCESS_REVIEW,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => SUBJECT_ACCESS_REVIEW,
        "SelfSubjectRulesReview" => SELF_SUBJECT_RULES_REVIEW,
        "SelfSubjectReview" => SELF_SUBJECT_REVIEW,
        "TokenRequest" => TOKEN_REQUEST,
        "Deployment" => workloads::DEPLOYMENT,
        "Job" => workloads::JOB,
        "CronJob" => workloads::CRON_JOB,
        "Service" => workloads::SERVICE,
        "PodDisruptionBudget" => workloads::POD_DISRUPTION_BUDGET,
        _ => return None,
    })
}

/// Decodes a protobuf request body into the JSON object it encodes.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::Malformed("missing k8s magic"))?;
    let unknown = decode_message(
        envelope,
        &[f(1, "typeMeta", Ty::Msg(TYPE_META)), f(2, "raw", Ty::Bytes)],
    )?;
    let kind = unknown["typeMeta"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let api_version = unknown["typeMeta"]["apiVersion"].clone();
    let schema = schema_of(&kind).ok_or_else(|| ProtobufError::Unsupported(kind.clone()))?;
    let raw = unknown
        .get("raw")
        .and_then(Value::as_str)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let mut obj = decode_message(&raw, schema)?;
    obj.insert("apiVersion".into(), api_version);
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(num: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        field(1, k.as_bytes(), &mut e);
        field(2, v, &mut e);
        e
    }

    #[test]
    fn decodes_a_helm_release_secret() {
        let mut meta = Vec::new();
        field(1, b"sh.helm.release.v1.demo.v1", &mut meta);
        field(3, b"ns", &mut meta);
        field(11, &entry("owner", b"helm"), &mut meta);
        let mut secret = Vec::new();
        field(1, &meta, &mut secret);
        field(2, &entry("release", b"\x00\x01"), &mut secret);
        field(3, b"helm.sh/release.v1", &mut secret);
        let mut type_meta = Vec::new();
        field(1, b"v1", &mut type_meta);
        field(2, b"Secret", &mut type_meta);
        let mut body = MAGIC.to_vec();
        field(1, &type_meta, &mut body);
        field(2, &secret, &mut body);
        let v = decode(&body).expect("decodes");
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "sh.helm.release.v1.demo.v1");
        assert_eq!(v["metadata"]["labels"]["owner"], "helm");
        assert_eq!(v["data"]["release"], "AAE=");
        assert_eq!(v["type"], "helm.sh/release.v1");
    }

    fn envelope(api_version: &[u8], kind: &[u8], object: &[u8]) -> Vec<u8> {
        let mut type_meta = Vec::new();
        field(1, api_version, &mut type_meta);
        field(2, kind, &mut type_meta);
        let mut body = MAGIC.to_vec();
        field(1, &type_meta, &mut body);
        field(2, object, &mut body);
        body
    }

    #[test]
    fn decodes_what_kubectl_create_token_sends() {
        let mut bound = Vec::new();
        field(1, b"Pod", &mut bound);
        field(2, b"v1", &mut bound);
        field(3, b"p-0", &mut bound);
        let mut spec = Vec::new();
        field(
            1,
            b"https://kubernetes.default.svc.cluster.local",
            &mut spec,
        );
        field(3, &bound, &mut spec);
        varint(4 << 3, &mut spec);
        varint(7200, &mut spec);
        let mut request = Vec::new();
        field(1, b"", &mut request);
        field(2, &spec, &mut request);
        let v = decode(&envelope(
            b"authentication.k8s.io/v1",
            b"TokenRequest",
            &request,
        ))
        .expect("decodes");
        assert_eq!(v["kind"], "TokenRequest");
        assert_eq!(v["spec"]["expirationSeconds"], 7200);
        assert_eq!(
            v["spec"]["audiences"],
            json!(["https://kubernetes.default.svc.cluster.local"])
        );
        assert_eq!(v["spec"]["boundObjectRef"]["name"], "p-0");
        assert_eq!(v["spec"]["boundObjectRef"]["apiVersion"], "v1");
    }

    #[test]
    fn decodes_what_kubectl_create_clusterrolebinding_sends() {
        let mut meta = Vec::new();
        field(1, b"crb1", &mut meta);
        field(2, b"", &mut meta);
        let mut subject = Vec::new();
        field(1, b"User", &mut subject);
        field(2, b"rbac.authorization.k8s.io", &mut subject);
        field(3, b"alice", &mut subject);
        let mut group = Vec::new();
        field(1, b"Group", &mut group);
        field(3, b"devs", &mut group);
        let mut role_ref = Vec::new();
        field(1, b"rbac.authorization.k8s.io", &mut role_ref);
        field(2, b"ClusterRole", &mut role_ref);
        field(3, b"view", &mut role_ref);
        let mut binding = Vec::new();
        field(1, &meta, &mut binding);
        field(2, &subject, &mut binding);
        field(2, &group, &mut binding);
        field(3, &role_ref, &mut binding);
        let body = envelope(
            b"rbac.authorization.k8s.io/v1",
            b"ClusterRoleBinding",
            &binding,
        );
        let v = decode(&body).expect("decodes");
        assert_eq!(
            v,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "crb1"},
                "subjects": [
                    {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                    {"kind": "Group", "name": "devs"}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}})
        );
    }

    #[test]
    fn decodes_a_subject_access_review_with_extras() {
        let mut attrs = Vec::new();
        field(1, b"kafka", &mut attrs);
        field(2, b"list", &mut attrs);
        field(5, b"pods", &mut attrs);
        let mut items = Vec::new();
        field(1, b"a", &mut items);
        field(1, b"b", &mut items);
        let mut extra = Vec::new();
        field(1, b"scopes", &mut extra);
        field(2, &items, &mut extra);
        let mut spec = Vec::new();
        field(1, &attrs, &mut spec);
        field(3, b"alice", &mut spec);
        field(4, b"devs", &mut spec);
        field(5, &extra, &mut spec);
        let mut review = Vec::new();
        field(2, &spec, &mut review);
        let body = envelope(b"authorization.k8s.io/v1", b"SubjectAccessReview", &review);
        let v = decode(&body).expect("decodes");
        assert_eq!(
            v["spec"],
            json!({"resourceAttributes": {"namespace": "kafka", "verb": "list", "resource": "pods"},
                "user": "alice", "groups": ["devs"], "extra": {"scopes": ["a", "b"]}})
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_are_errors() {
        assert!(matches!(decode(b"nope"), Err(ProtobufError::Malformed(_))));
        let mut type_meta = Vec::new();
        field(2, b"Pod", &mut type_meta);
        let mut body = MAGIC.to_vec();
        field(1, &type_meta, &mut body);
        assert!(matches!(decode(&body), Err(ProtobufError::Unsupported(k)) if k == "Pod"));
        let truncated = [MAGIC, &[0x0a, 0x50]].concat();
        assert!(decode(&truncated).is_err());
    }

    /// A varint field `num` holding `n`.
    fn number(num: u64, n: u64, out: &mut Vec<u8>) {
        varint(num << 3, out);
        varint(n, out);
    }

    #[test]
    fn decodes_int_or_string_quantities_and_a_zero_template_time() {
        let mut max_unavailable = Vec::new();
        number(1, 1, &mut max_unavailable);
        field(3, b"25%", &mut max_unavailable);
        let mut max_surge = Vec::new();
        number(2, 1, &mut max_surge);
        let mut rolling = Vec::new();
        field(1, &max_unavailable, &mut rolling);
        field(2, &max_surge, &mut rolling);
        let mut strategy = Vec::new();
        field(2, &rolling, &mut strategy);

        let mut quantity = Vec::new();
        field(1, b"500m", &mut quantity);
        let mut resources = Vec::new();
        field(1, &entry("cpu", &quantity), &mut resources);
        let mut container = Vec::new();
        field(1, b"web", &mut container);
        field(8, &resources, &mut container);
        let mut pod_spec = Vec::new();
        field(2, &container, &mut pod_spec);
        let mut template_meta = Vec::new();
        field(8, b"", &mut template_meta);
        let mut template = Vec::new();
        field(1, &template_meta, &mut template);
        field(2, &pod_spec, &mut template);

        let mut spec = Vec::new();
        field(3, &template, &mut spec);
        field(4, &strategy, &mut spec);
        let mut object = Vec::new();
        field(2, &spec, &mut object);
        let got = decode(&envelope(b"apps/v1", b"Deployment", &object)).expect("decodes");
        let spec = &got["spec"];
        assert_eq!(
            spec["strategy"]["rollingUpdate"],
            json!({"maxUnavailable": "25%", "maxSurge": 1})
        );
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "500m"}})
        );
        assert_eq!(spec["template"]["metadata"], json!({}), "no 1970 timestamp");
    }

    #[test]
    fn zero_values_of_go_value_fields_are_left_out_as_in_go_json_but_pointers_kept() {
        let mut container = Vec::new();
        field(1, b"web", &mut container);
        number(16, 0, &mut container);
        number(17, 0, &mut container);
        number(18, 1, &mut container);
        let mut pod_spec = Vec::new();
        field(2, &container, &mut pod_spec);
        number(11, 0, &mut pod_spec);
        number(21, 0, &mut pod_spec);
        let mut template_meta = Vec::new();
        number(7, 0, &mut template_meta);
        let mut template = Vec::new();
        field(1, &template_meta, &mut template);
        field(2, &pod_spec, &mut template);
        let mut spec = Vec::new();
        field(3, &template, &mut spec);
        number(5, 0, &mut spec);
        number(7, 0, &mut spec);
        let mut object = Vec::new();
        field(2, &spec, &mut object);
        let got = decode(&envelope(b"apps/v1", b"Deployment", &object)).expect("decodes");
        assert_eq!(
            got["spec"],
            json!({"template": {"metadata": {}, "spec": {
                "containers": [{"name": "web", "tty": true}],
                "automountServiceAccountToken": false,
            }}})
        );
    }
}
