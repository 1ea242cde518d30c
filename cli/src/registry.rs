//! `trib schema`'s registry calls over the shared [`tributary_registry_client`] (HTTP or
//! HTTPS, basic credentials or a client certificate), bounded by `--timeout`, with the
//! registry's `{"error_code", "message"}` errors turned into [`Error::Registry`] with a hint.

use std::time::Duration;

use hyper::Method;
use serde_json::Value;
use tributary_registry_client::{ClientError, RegistryHttp, TlsSettings};

use crate::error::{Error, Result};

/// Where the registry is and how to authenticate to it, as the flags give it.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `http(s)://HOST:PORT[/prefix]`.
    pub url: String,
    /// CA bundle (PEM) for an HTTPS registry.
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for mTLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// HTTP basic user and password.
    pub basic: Option<(String, String)>,
}

/// A registry to call.
#[derive(Debug, Clone)]
pub struct Registry {
    http: RegistryHttp,
    timeout: Duration,
}

/// A registry answer that was not an error.
pub type Answer = Value;

impl Registry {
    /// A client of the registry `access` describes.
    pub fn new(access: &Access, timeout: Duration) -> Result<Registry> {
        let usage = |e: ClientError| Error::Usage(format!("--registry {}: {e}", access.url));
        let tls = match (&access.ca, access.url.starts_with("https://")) {
            (Some(ca), _) => {
                let identity = access
                    .identity
                    .as_ref()
                    .map(|(c, k)| (c.as_slice(), k.as_slice()));
                Some(TlsSettings::new(ca, identity, None).map_err(usage)?)
            }
            (None, true) => {
                return Err(Error::Usage(format!(
                    "--registry {} is https://: give the CA that signed its certificate with --registry-ca",
                    access.url
                )))
            }
            (None, false) => None,
        };
        let mut http = RegistryHttp::new(&access.url, tls, timeout).map_err(usage)?;
        if let Some((user, password)) = &access.basic {
            http = http.with_basic_auth(user, password).map_err(usage)?;
        }
        Ok(Registry { http, timeout })
    }

    /// Sends one request; `action` names it in errors ("register subject orders-value").
    pub async fn call(
        &self,
        action: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer> {
        let unreachable = |detail: String| Error::RegistryUnreachable {
            url: self.http.url().to_owned(),
            detail,
        };
        let answer = match self.http.call(method, path, body).await {
            Ok(answer) => answer,
            Err(ClientError::Timeout { .. }) => {
                return Err(unreachable(format!(
                    "no answer within {} (raise --timeout)",
                    humantime::format_duration(self.timeout)
                )))
            }
            Err(e) => return Err(unreachable(e.to_string())),
        };
        let status = answer.status;
        if (200..300).contains(&status) {
            return Ok(answer.body);
        }
        let json = answer.body;
        let code = json["error_code"].as_i64().unwrap_or(i64::from(status));
        let message = json["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}: {json}"));
        Err(Error::Registry {
            action: action.to_owned(),
            code,
            message,
            hint: hint(code).map(str::to_owned),
        })
    }
}

/// How to fix the registry errors trib knows a fix for.
fn hint(code: i64) -> Option<&'static str> {
    Some(match code {
        40401 => "`trib schema list` lists the subjects",
        40402 => "`trib schema versions SUBJECT` lists its versions",
        40403 => "check the id; `trib schema get SUBJECT` shows a subject's id",
        40404 | 40406 => "it was soft-deleted; delete it again with --permanent to remove it",
        40405 | 40407 => "soft-delete it first (without --permanent)",
        409 => "`trib schema check SUBJECT --file F` explains why; or change the level with `trib schema config SUBJECT --set LEVEL`",
        42201 => "fix the schema text, or pass the right --type",
        42203 => "levels: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE",
        50003 | 50004 => "the registry has no reachable writer right now; retry shortly",
        _ => return None,
    })
}

/// Percent-encodes one path segment (a subject may hold any character).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
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
    fn subjects_are_encoded_as_one_segment() {
        assert_eq!(segment("orders-value"), "orders-value");
        assert_eq!(segment("a/b c:d"), "a%2Fb%20c%3Ad");
    }

    #[test]
    fn https_needs_a_ca_and_urls_a_scheme() {
        let t = Duration::from_secs(1);
        let access = |url: &str| Access {
            url: url.to_owned(),
            ..Access::default()
        };
        assert!(Registry::new(&access("http://127.0.0.1:8081"), t).is_ok());
        assert!(matches!(
            Registry::new(&access("https://r:8081"), t),
            Err(Error::Usage(m)) if m.contains("--registry-ca")
        ));
        assert!(Registry::new(&access("127.0.0.1:8081"), t).is_err());
        let basic = Access {
            basic: Some(("alice".into(), "secret".into())),
            ..access("http://h/prefix/")
        };
        assert!(Registry::new(&basic, t).is_ok());
    }
}
