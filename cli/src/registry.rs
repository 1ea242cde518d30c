//! A minimal client of the schema registry's REST API: one HTTP/1.1 request per connection
//! (hyper, already in the dependency tree), bounded by `--timeout`, Confluent's media type, and
//! its `{"error_code", "message"}` errors turned into [`Error::Registry`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::{Error, Result};

/// Confluent's media type, sent and accepted.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Where the registry is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `http://HOST:PORT[/prefix]`, as given.
    url: String,
    host: String,
    port: u16,
    prefix: String,
    timeout: Duration,
}

/// A registry answer that was not an error.
pub type Answer = Value;

impl Registry {
    /// A client of the registry at `url` (only `http://`).
    pub fn new(url: &str, timeout: Duration) -> Result<Registry> {
        let bad = |why: &str| Error::Usage(format!("invalid --registry URL {url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(bad(&format!("scheme {other} is not supported, use http"))),
            None => return Err(bad("expected http://HOST:PORT")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        Ok(Registry {
            url: url.trim_end_matches('/').to_owned(),
            host: authority.host().to_owned(),
            port: authority.port_u16().unwrap_or(80),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            timeout,
        })
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
            url: self.url.clone(),
            detail,
        };
        let exchange = self.exchange(method, path, body);
        let (status, bytes) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r.map_err(unreachable)?,
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} (raise --timeout)",
                    humantime::format_duration(self.timeout)
                )))
            }
        };
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let code = json["error_code"].as_i64().unwrap_or(i64::from(status));
        let message = json["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)));
        Err(Error::Registry {
            action: action.to_owned(),
            code,
            message,
            hint: hint(code).map(str::to_owned),
        })
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> std::result::Result<(u16, Bytes), String> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, format!("{}:{}", self.host, self.port))
            .header(header::ACCEPT, format!("{CONTENT_TYPE}, application/json"))
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let answer = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status().as_u16();
        let bytes = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes))
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
    fn only_http_urls_are_accepted() {
        assert!(Registry::new("http://127.0.0.1:8081", Duration::from_secs(1)).is_ok());
        assert!(Registry::new("https://r:8081", Duration::from_secs(1)).is_err());
        assert!(Registry::new("127.0.0.1:8081", Duration::from_secs(1)).is_err());
        let r = Registry::new("http://h/prefix/", Duration::from_secs(1));
        assert_eq!(
            r.map(|r| (r.port, r.prefix)).ok(),
            Some((80, "/prefix".into()))
        );
    }
}
