//! `trib schema`: register, get, list, check compatibility, delete and configure schemas in a
//! Confluent-compatible schema registry (Tributary's `tributary-schema-registry` or any other).
//! Request bodies and the text output are pure functions of their inputs.

use std::path::{Path, PathBuf};

use hyper::Method;
use serde_json::{json, Value};

use crate::client::Settings;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::registry::{segment, Registry};

/// The registry flags every `trib schema` command takes.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// The schema registry's URL (https:// needs --registry-ca)
    #[arg(
        long,
        env = "TRIB_SCHEMA_REGISTRY",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub registry: String,
    /// CA bundle (PEM) the registry's HTTPS certificate is checked against
    #[arg(long, env = "TRIB_SCHEMA_REGISTRY_CA", global = true)]
    pub registry_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a registry requiring mTLS
    #[arg(
        long,
        env = "TRIB_SCHEMA_REGISTRY_CERT",
        global = true,
        requires = "registry_key"
    )]
    pub registry_cert: Option<PathBuf>,
    /// Its private key (PEM)
    #[arg(
        long,
        env = "TRIB_SCHEMA_REGISTRY_KEY",
        global = true,
        requires = "registry_cert"
    )]
    pub registry_key: Option<PathBuf>,
    /// HTTP basic credentials, USER:PASSWORD (Confluent's basic.auth.user.info)
    #[arg(
        long,
        env = "TRIB_SCHEMA_REGISTRY_USER",
        global = true,
        hide_env_values = true
    )]
    pub user: Option<String>,
}

/// A schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum SchemaType {
    /// Apache Avro.
    Avro,
    /// JSON Schema.
    Json,
    /// Protocol Buffers.
    Protobuf,
}

impl SchemaType {
    fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

/// `trib schema` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SchemaCommand {
    /// Register a schema under a subject (a new version unless it is already there)
    Register {
        /// The subject, e.g. orders-value
        subject: String,
        /// The schema file
        #[arg(long, short)]
        file: PathBuf,
        /// The schema type [default: PROTOBUF for .proto files, else AVRO]
        #[arg(long = "type", short = 't', value_enum)]
        schema_type: Option<SchemaType>,
        /// A reference to another subject's version (repeatable)
        #[arg(long = "reference", value_name = "NAME=SUBJECT:VERSION", value_parser = parse_reference)]
        references: Vec<Reference>,
        /// Normalize the schema before registering
        #[arg(long)]
        normalize: bool,
    },
    /// Show a subject's version, or the schema with an id
    #[command(disable_version_flag = true)]
    Get {
        /// The subject (omit with --id)
        #[arg(required_unless_present = "id", conflicts_with = "id")]
        subject: Option<String>,
        /// The version: a number or latest
        #[arg(long, default_value = "latest")]
        version: String,
        /// A schema id instead of a subject
        #[arg(long)]
        id: Option<u32>,
    },
    /// List the subjects
    List {
        /// Include soft-deleted subjects
        #[arg(long)]
        deleted: bool,
    },
    /// List a subject's versions
    Versions {
        /// The subject
        subject: String,
        /// Include soft-deleted versions
        #[arg(long)]
        deleted: bool,
    },
    /// Check a schema's compatibility with a subject (exit code 1 when incompatible)
    #[command(disable_version_flag = true)]
    Check {
        /// The subject
        subject: String,
        /// The schema file
        #[arg(long, short)]
        file: PathBuf,
        /// Check against this version (a number or latest) [default: the versions the
        /// subject's compatibility level names]
        #[arg(long)]
        version: Option<String>,
        /// The schema type [default: PROTOBUF for .proto files, else AVRO]
        #[arg(long = "type", short = 't', value_enum)]
        schema_type: Option<SchemaType>,
        /// A reference to another subject's version (repeatable)
        #[arg(long = "reference", value_name = "NAME=SUBJECT:VERSION", value_parser = parse_reference)]
        references: Vec<Reference>,
    },
    /// Delete a subject or one version (soft; --permanent removes it for good)
    #[command(disable_version_flag = true)]
    Delete {
        /// The subject
        subject: String,
        /// Only this version (a number or latest)
        #[arg(long)]
        version: Option<String>,
        /// Remove for good (soft-deletes first if needed)
        #[arg(long)]
        permanent: bool,
    },
    /// Show or set the compatibility level, globally or of a subject
    Config {
        /// The subject (omit for the global level)
        subject: Option<String>,
        /// Set the level: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE,
        /// FULL, FULL_TRANSITIVE
        #[arg(long)]
        set: Option<String>,
    },
}

/// A `--reference name=subject:version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The name the schema uses for it (an Avro full name, a .proto import, a JSON $ref).
    pub name: String,
    /// The referenced subject.
    pub subject: String,
    /// Its version (-1 for latest).
    pub version: i64,
}

/// Parses `name=subject:version` (the version may be `latest`).
pub fn parse_reference(s: &str) -> std::result::Result<Reference, String> {
    let bad = || format!("expected NAME=SUBJECT:VERSION, got {s:?}");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (subject, version) = rest.rsplit_once(':').ok_or_else(bad)?;
    if name.is_empty() || subject.is_empty() {
        return Err(bad());
    }
    let version = if version.eq_ignore_ascii_case("latest") {
        -1
    } else {
        version
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(bad)?
    };
    Ok(Reference {
        name: name.to_owned(),
        subject: subject.to_owned(),
        version,
    })
}

/// The type a file's schema is, when not given: PROTOBUF for `.proto`, else AVRO.
pub fn infer_type(file: &Path, given: Option<SchemaType>) -> SchemaType {
    given.unwrap_or_else(|| {
        if file.extension().is_some_and(|e| e == "proto") {
            SchemaType::Protobuf
        } else {
            SchemaType::Avro
        }
    })
}

/// The body of a register or compatibility request.
pub fn schema_body(text: &str, schema_type: SchemaType, references: &[Reference]) -> Value {
    let mut body = json!({ "schema": text });
    if schema_type != SchemaType::Avro {
        body["schemaType"] = json!(schema_type.as_str());
    }
    if !references.is_empty() {
        body["references"] = json!(references
            .iter()
            .map(|r| json!({"name": r.name, "subject": r.subject, "version": r.version}))
            .collect::<Vec<_>>());
    }
    body
}

fn version_segment(v: &str) -> Result<String> {
    if v.eq_ignore_ascii_case("latest") || v.parse::<u32>().is_ok_and(|n| n >= 1) {
        Ok(segment(v))
    } else {
        Err(Error::Usage(format!(
            "invalid version {v:?}: expected a number from 1 or latest"
        )))
    }
}

fn read_file(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).map_err(|e| Error::io(format!("read {}", file.display()), e))
}

/// How to reach the registry, from the flags (files read now).
fn registry_access(args: &RegistryArgs) -> Result<crate::registry::Access> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))
    };
    let ca = args.registry_ca.as_ref().map(read).transpose()?;
    let identity = match (&args.registry_cert, &args.registry_key) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        _ => None,
    };
    let basic = match &args.user {
        None => None,
        Some(info) => match info.split_once(':') {
            Some((user, password)) => Some((user.to_owned(), password.to_owned())),
            None => return Err(Error::Usage("--user takes USER:PASSWORD".to_owned())),
        },
    };
    Ok(crate::registry::Access {
        url: args.registry.clone(),
        ca,
        identity,
        basic,
    })
}

/// Runs a `trib schema` subcommand.
pub async fn run(
    args: RegistryArgs,
    cmd: SchemaCommand,
    settings: &Settings,
    out: &Output,
) -> Result<()> {
    let registry = Registry::new(&registry_access(&args)?, settings.timeout)?;
    match cmd {
        SchemaCommand::Register {
            subject,
            file,
            schema_type,
            references,
            normalize,
        } => {
            let text = read_file(&file)?;
            let body = schema_body(&text, infer_type(&file, schema_type), &references);
            let query = if normalize { "?normalize=true" } else { "" };
            let s = segment(&subject);
            let action = format!("register a schema under {subject}");
            let id = registry
                .call(
                    &action,
                    Method::POST,
                    &format!("/subjects/{s}/versions{query}"),
                    Some(&body),
                )
                .await?;
            // The version it got: a lookup of the same schema under the subject.
            let found = registry
                .call(
                    &action,
                    Method::POST,
                    &format!("/subjects/{s}{query}"),
                    Some(&body),
                )
                .await?;
            let answer = json!({"subject": subject, "id": id["id"], "version": found["version"]});
            if out.json {
                return out.print_json(&answer);
            }
            out.print_fields(&[
                ("subject", subject),
                ("version", found["version"].to_string()),
                ("id", id["id"].to_string()),
            ])
        }
        SchemaCommand::Get {
            subject,
            version,
            id,
        } => match (subject, id) {
            (_, Some(id)) => get_id(&registry, id, out).await,
            (Some(subject), None) => {
                let v = version_segment(&version)?;
                let path = format!("/subjects/{}/versions/{v}", segment(&subject));
                let action = format!("get version {version} of {subject}");
                let answer = registry.call(&action, Method::GET, &path, None).await?;
                if out.json {
                    return out.print_json(&answer);
                }
                print_version(&answer, out)
            }
            (None, None) => Err(Error::Usage("give a SUBJECT or --id".into())),
        },
        SchemaCommand::List { deleted } => {
            let path = if deleted {
                "/subjects?deleted=true"
            } else {
                "/subjects"
            };
            let answer = registry
                .call("list subjects", Method::GET, path, None)
                .await?;
            print_list(&answer, out, "no subjects")
        }
        SchemaCommand::Versions { subject, deleted } => {
            let query = if deleted { "?deleted=true" } else { "" };
            let path = format!("/subjects/{}/versions{query}", segment(&subject));
            let action = format!("list the versions of {subject}");
            let answer = registry.call(&action, Method::GET, &path, None).await?;
            print_list(&answer, out, "no versions")
        }
        SchemaCommand::Check {
            subject,
            file,
            version,
            schema_type,
            references,
        } => {
            let text = read_file(&file)?;
            let body = schema_body(&text, infer_type(&file, schema_type), &references);
            let (path, against) = match &version {
                Some(v) => (
                    format!(
                        "/compatibility/subjects/{}/versions/{}",
                        segment(&subject),
                        version_segment(v)?
                    ),
                    format!("version {v}"),
                ),
                None => (
                    format!("/compatibility/subjects/{}/versions", segment(&subject)),
                    "the versions its compatibility level names".to_owned(),
                ),
            };
            let action = format!("check compatibility with {subject}");
            let answer = registry
                .call(
                    &action,
                    Method::POST,
                    &format!("{path}?verbose=true"),
                    Some(&body),
                )
                .await?;
            let compatible = answer["is_compatible"].as_bool().unwrap_or(false);
            if out.json {
                out.print_json(&answer)?;
            } else {
                let verdict = if compatible {
                    out.green("compatible")
                } else {
                    out.red("incompatible")
                };
                let mut text = format!("{verdict}\n");
                for m in answer["messages"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "  {}\n",
                        m.as_str().map_or_else(|| m.to_string(), str::to_owned)
                    ));
                }
                crate::output::write_stdout(text.as_bytes())?;
            }
            if compatible {
                Ok(())
            } else {
                Err(Error::Incompatible { subject, against })
            }
        }
        SchemaCommand::Delete {
            subject,
            version,
            permanent,
        } => delete(&registry, &subject, version.as_deref(), permanent, out).await,
        SchemaCommand::Config { subject, set } => {
            config(&registry, subject.as_deref(), set, out).await
        }
    }
}

async fn get_id(registry: &Registry, id: u32, out: &Output) -> Result<()> {
    let action = format!("get schema id {id}");
    let schema = registry
        .call(&action, Method::GET, &format!("/schemas/ids/{id}"), None)
        .await?;
    let versions = registry
        .call(
            &action,
            Method::GET,
            &format!("/schemas/ids/{id}/versions"),
            None,
        )
        .await?;
    let mut answer = schema.clone();
    answer["id"] = json!(id);
    answer["versions"] = versions;
    if out.json {
        return out.print_json(&answer);
    }
    let used_by: Vec<String> = answer["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            format!(
                "{} v{}",
                v["subject"].as_str().unwrap_or_default(),
                v["version"]
            )
        })
        .collect();
    out.print_fields(&[
        ("id", id.to_string()),
        (
            "type",
            schema["schemaType"].as_str().unwrap_or("AVRO").to_owned(),
        ),
        ("used by", used_by.join(", ")),
    ])?;
    print_schema_text(&schema, out)
}

fn print_version(v: &Value, out: &Output) -> Result<()> {
    let references: Vec<String> = v["references"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{}={}:{}",
                r["name"].as_str().unwrap_or_default(),
                r["subject"].as_str().unwrap_or_default(),
                r["version"]
            )
        })
        .collect();
    let mut fields = vec![
        (
            "subject",
            v["subject"].as_str().unwrap_or_default().to_owned(),
        ),
        ("version", v["version"].to_string()),
        ("id", v["id"].to_string()),
        (
            "type",
            v["schemaType"].as_str().unwrap_or("AVRO").to_owned(),
        ),
    ];
    if !references.is_empty() {
        fields.push(("references", references.join(", ")));
    }
    out.print_fields(&fields)?;
    print_schema_text(v, out)
}

/// The schema text, pretty-printed when it is JSON (Avro, JSON Schema).
fn print_schema_text(v: &Value, out: &Output) -> Result<()> {
    let text = v["schema"].as_str().unwrap_or_default();
    let pretty = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|j| serde_json::to_string_pretty(&j).ok())
        .unwrap_or_else(|| text.to_owned());
    out.print_section("schema", false)?;
    crate::output::write_stdout(format!("{pretty}\n").as_bytes())
}

/// A JSON array, one element a line (or as JSON with `--json`).
fn print_list(answer: &Value, out: &Output, empty: &str) -> Result<()> {
    if out.json {
        return out.print_json(answer);
    }
    let items: Vec<String> = answer
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    if items.is_empty() {
        out.note(&out.dim(empty));
        return Ok(());
    }
    crate::output::write_stdout(format!("{}\n", items.join("\n")).as_bytes())
}

async fn delete(
    registry: &Registry,
    subject: &str,
    version: Option<&str>,
    permanent: bool,
    out: &Output,
) -> Result<()> {
    let base = match version {
        Some(v) => format!(
            "/subjects/{}/versions/{}",
            segment(subject),
            version_segment(v)?
        ),
        None => format!("/subjects/{}", segment(subject)),
    };
    let what = match version {
        Some(v) => format!("version {v} of {subject}"),
        None => format!("subject {subject}"),
    };
    let action = format!("delete {what}");
    let soft = registry.call(&action, Method::DELETE, &base, None).await;
    let answer = match (soft, permanent) {
        (Ok(a), false) => a,
        // Already soft-deleted: a permanent delete goes on.
        (
            Err(Error::Registry {
                code: 40404 | 40406,
                ..
            }),
            true,
        )
        | (Ok(_), true) => {
            registry
                .call(
                    &action,
                    Method::DELETE,
                    &format!("{base}?permanent=true"),
                    None,
                )
                .await?
        }
        (Err(e), _) => return Err(e),
    };
    if out.json {
        return out
            .print_json(&json!({"subject": subject, "deleted": answer, "permanent": permanent}));
    }
    let versions = match &answer {
        Value::Array(a) => a
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let how = if permanent {
        "permanently deleted"
    } else {
        "soft-deleted"
    };
    crate::output::write_stdout(format!("{how} {subject}: version(s) {versions}\n").as_bytes())
}

async fn config(
    registry: &Registry,
    subject: Option<&str>,
    set: Option<String>,
    out: &Output,
) -> Result<()> {
    let path = match subject {
        Some(s) => format!("/config/{}", segment(s)),
        None => "/config".to_owned(),
    };
    let scope = subject.map_or_else(|| "global".to_owned(), |s| format!("subject {s}"));
    let level = match set {
        Some(level) => {
            let body = json!({ "compatibility": level.to_ascii_uppercase() });
            let action = format!("set the {scope} compatibility level");
            let answer = registry
                .call(&action, Method::PUT, &path, Some(&body))
                .await?;
            answer["compatibility"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
        None => {
            let query = if subject.is_some() {
                "?defaultToGlobal=true"
            } else {
                ""
            };
            let action = format!("get the {scope} compatibility level");
            let answer = registry
                .call(&action, Method::GET, &format!("{path}{query}"), None)
                .await?;
            answer["compatibilityLevel"]
                .as_str()
                .or_else(|| answer["compatibility"].as_str())
                .unwrap_or_default()
                .to_owned()
        }
    };
    if out.json {
        return out.print_json(&json!({"scope": scope, "compatibility": level}));
    }
    out.print_fields(&[("scope", scope), ("compatibility", level)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_numbers_or_latest() {
        assert_eq!(
            parse_reference("com.acme.Id=ids-value:2"),
            Ok(Reference {
                name: "com.acme.Id".into(),
                subject: "ids-value".into(),
                version: 2
            })
        );
        assert_eq!(
            parse_reference("a.proto=a:latest").map(|r| r.version),
            Ok(-1)
        );
        // A subject may hold a colon: the version is after the last one.
        assert_eq!(
            parse_reference("n=ns:subject:3").map(|r| r.subject),
            Ok("ns:subject".into())
        );
        for bad in ["n", "n=s", "=s:1", "n=:1", "n=s:0", "n=s:x"] {
            assert!(parse_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_name_the_type_and_references_only_when_needed() {
        assert_eq!(
            schema_body("\"string\"", SchemaType::Avro, &[]),
            json!({"schema": "\"string\""})
        );
        let r = Reference {
            name: "a.proto".into(),
            subject: "a".into(),
            version: -1,
        };
        assert_eq!(
            schema_body("syntax", SchemaType::Protobuf, &[r]),
            json!({"schema": "syntax", "schemaType": "PROTOBUF",
                   "references": [{"name": "a.proto", "subject": "a", "version": -1}]})
        );
    }

    #[test]
    fn proto_files_default_to_protobuf() {
        assert_eq!(infer_type(Path::new("x.proto"), None), SchemaType::Protobuf);
        assert_eq!(infer_type(Path::new("x.avsc"), None), SchemaType::Avro);
        assert_eq!(
            infer_type(Path::new("x.proto"), Some(SchemaType::Json)),
            SchemaType::Json
        );
    }

    #[test]
    fn versions_are_numbers_or_latest() {
        assert_eq!(version_segment("latest").ok(), Some("latest".into()));
        assert_eq!(version_segment("3").ok(), Some("3".into()));
        assert!(version_segment("0").is_err());
        assert!(version_segment("x").is_err());
    }
}
