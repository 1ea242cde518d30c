//! SASL/OAUTHBEARER (RFC 7628, KIP-255): the client's one message carries a bearer token,
//! validated as a JWT against the listener's JWKS; its subject is the principal and its
//! expiry ends the session.

use super::{Failure, Outcome};
use crate::security::jwt::{self, Expectations, Jwks};
use crate::security::Principal;

/// The bearer token of a client's initial response `gs2-header %x01 auth=Bearer <token>
/// %x01 [key=value %x01]* %x01`.
pub fn bearer_token(message: &[u8]) -> Result<&str, Failure> {
    let malformed = |what: &str| Failure {
        message: format!("Invalid OAUTHBEARER initial response: {what}"),
        detail: what.to_string(),
    };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let (gs2, rest) = text
        .split_once('\u{1}')
        .ok_or_else(|| malformed("no key/value separator"))?;
    if !(gs2.starts_with("n,") || gs2.starts_with("y,")) {
        return Err(malformed("GS2 header must start with n, or y,"));
    }
    let rest = rest
        .strip_suffix("\u{1}\u{1}")
        .ok_or_else(|| malformed("not terminated by two separators"))?;
    let auth = rest
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .ok_or_else(|| malformed("no auth= value"))?;
    let (scheme, token) = auth
        .split_once(' ')
        .ok_or_else(|| malformed("auth= is not `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed("auth= is not `Bearer <token>`"));
    }
    Ok(token.trim())
}

/// Authenticates `message` with the token it carries.
pub fn authenticate(
    message: &[u8],
    jwks: &Jwks,
    expect: &Expectations,
    now_ms: i64,
) -> Result<Outcome, Failure> {
    let token = bearer_token(message)?;
    match jwt::validate(token, jwks, expect, now_ms.div_euclid(1000)) {
        Ok(valid) => Ok(Outcome::Authenticated {
            response: Vec::new(),
            principal: Principal::user(valid.subject),
            expires_at_ms: Some(valid.expires_at_ms),
        }),
        Err(error) => Err(Failure {
            message: format!("Authentication failed: {error}"),
            detail: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_among_the_extensions() {
        assert_eq!(
            bearer_token(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(
            bearer_token(b"n,a=svc,\x01traceId=1\x01auth=bearer t.o.k\x01\x01").unwrap(),
            "t.o.k"
        );
    }

    #[test]
    fn malformed_initial_responses_are_refused() {
        for garbage in [
            &b""[..],
            b"n,,",
            b"p=x,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Bearer t\x01",
            b"n,,\x01auth=Basic t\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01x=y\x01\x01",
            b"\xff\xfe",
        ] {
            assert!(bearer_token(garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn an_invalid_token_fails_with_the_reason() {
        let failure = authenticate(
            b"n,,\x01auth=Bearer a.b.c\x01\x01",
            &Jwks::default(),
            &Expectations::default(),
            0,
        )
        .unwrap_err();
        assert!(failure
            .message
            .starts_with("Authentication failed: malformed token"));
    }
}
