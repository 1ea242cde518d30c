//! JWT validation for SASL/OAUTHBEARER, as Kafka's `OAuthBearerValidatorCallbackHandler` does
//! it (KIP-768): a JWS signed with a key of the configured JWKS, `exp` in the future, `nbf`
//! and `iat` not in it (give or take `sasl.oauthbearer.clock.skew.seconds`), the expected
//! audience and issuer, and the subject claim as the principal name.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use ring::signature;
use serde::Deserialize;

/// Why a token was refused; the text goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The algorithm is not one this broker verifies.
    #[error("unsupported signing algorithm {0} (RS256, RS384, RS512, ES256, ES384 are)")]
    Algorithm(String),
    /// No key of the JWKS fits the token's `kid` and algorithm.
    #[error("no key in the JWKS matches kid {0:?}")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("signature verification failed")]
    Signature,
    /// `exp` is missing or past.
    #[error("token expired or without exp")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// `aud` holds none of the expected audiences.
    #[error("token audience {0:?} is not one of the expected audiences")]
    Audience(Vec<String>),
    /// `iss` is not the expected issuer.
    #[error("token issuer {0:?} is not the expected issuer")]
    Issuer(Option<String>),
    /// The subject claim is missing or empty.
    #[error("token has no {0} claim")]
    Subject(String),
}

/// Why a JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JWKS: {0}")]
pub struct JwksError(String);

/// A verification key of a JWKS.
#[derive(Debug, Clone)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point (0x04 || x || y) and its curve's name.
    Ec {
        point: Vec<u8>,
        curve: String,
    },
}

/// The keys of a JWKS document (RFC 7517), by `kid`.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<(Option<String>, Key)>,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<JwkDocument>,
}

#[derive(Deserialize)]
struct JwkDocument {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Jwks {
    /// Parses a JWKS document; keys of other types or uses are skipped, as Kafka's resolver
    /// skips them.
    pub fn parse(json: &[u8]) -> Result<Jwks, JwksError> {
        let doc: JwksDocument = serde_json::from_slice(json)
            .map_err(|e| JwksError(format!("not a JWKS document: {e}")))?;
        let b64 = |field: &Option<String>, name: &str| -> Result<Vec<u8>, JwksError> {
            let text = field
                .as_deref()
                .ok_or_else(|| JwksError(format!("key without {name}")))?;
            BASE64URL
                .decode(text.trim_end_matches('='))
                .map_err(|_| JwksError(format!("{name} is not base64url")))
        };
        let mut keys = Vec::new();
        for jwk in doc.keys {
            if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let key = match jwk.kty.as_str() {
                "RSA" => {
                    let strip = |v: Vec<u8>| {
                        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
                        v[start..].to_vec()
                    };
                    Key::Rsa {
                        n: strip(b64(&jwk.n, "n")?),
                        e: strip(b64(&jwk.e, "e")?),
                    }
                }
                "EC" => {
                    let mut point = vec![0x04];
                    point.extend(b64(&jwk.x, "x")?);
                    point.extend(b64(&jwk.y, "y")?);
                    Key::Ec {
                        point,
                        curve: jwk.crv.unwrap_or_default(),
                    }
                }
                _ => continue,
            };
            keys.push((jwk.kid, key));
        }
        Ok(Jwks { keys })
    }

    /// How many usable keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// `sasl.oauthbearer.expected.audience`: one of these must be in `aud` (empty: any).
    pub audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer` (unset: any).
    pub issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name` (default `sub`).
    pub subject_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds` (default 30).
    pub clock_skew_s: i64,
}

impl Default for Expectations {
    fn default() -> Expectations {
        Expectations {
            audience: Vec::new(),
            issuer: None,
            subject_claim: "sub".into(),
            clock_skew_s: 30,
        }
    }
}

/// A valid token's principal name and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The subject claim's value.
    pub subject: String,
    /// `exp` in milliseconds since the epoch: the session ends then.
    pub expires_at_ms: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Validates compact JWS `token` against `jwks` and `expect` at `now_s` (seconds since the
/// epoch).
pub fn validate(
    token: &str,
    jwks: &Jwks,
    expect: &Expectations,
    now_s: i64,
) -> Result<Validated, JwtError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    let decode = |part: &str, what: &str| {
        BASE64URL
            .decode(part.trim_end_matches('='))
            .map_err(|_| JwtError::Malformed(format!("{what} is not base64url")))
    };
    let header: Header = serde_json::from_slice(&decode(header_b64, "header")?)
        .map_err(|e| JwtError::Malformed(format!("header: {e}")))?;
    let signature_bytes = decode(signature_b64, "signature")?;
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    verify_signature(&header, signed, &signature_bytes, jwks)?;
    let claims: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&decode(payload_b64, "payload")?)
            .map_err(|e| JwtError::Malformed(format!("payload: {e}")))?;
    check_claims(&claims, expect, now_s)
}

fn verify_signature(
    header: &Header,
    signed: &[u8],
    sig: &[u8],
    jwks: &Jwks,
) -> Result<(), JwtError> {
    let (family, rsa, ec): (
        &str,
        Option<&signature::RsaParameters>,
        Option<(&str, &'static signature::EcdsaVerificationAlgorithm)>,
    ) = match header.alg.as_str() {
        "RS256" => ("RSA", Some(&signature::RSA_PKCS1_2048_8192_SHA256), None),
        "RS384" => ("RSA", Some(&signature::RSA_PKCS1_2048_8192_SHA384), None),
        "RS512" => ("RSA", Some(&signature::RSA_PKCS1_2048_8192_SHA512), None),
        "ES256" => (
            "EC",
            None,
            Some(("P-256", &signature::ECDSA_P256_SHA256_FIXED)),
        ),
        "ES384" => (
            "EC",
            None,
            Some(("P-384", &signature::ECDSA_P384_SHA384_FIXED)),
        ),
        other => return Err(JwtError::Algorithm(other.to_string())),
    };
    let candidates = jwks.keys.iter().filter(|(kid, key)| {
        let kind_fits = match key {
            Key::Rsa { .. } => family == "RSA",
            Key::Ec { curve, .. } => ec.is_some_and(|(c, _)| c == curve),
        };
        kind_fits && (header.kid.is_none() || kid.as_deref() == header.kid.as_deref())
    });
    let mut any = false;
    for (_, key) in candidates {
        any = true;
        let verified = match (key, rsa, ec) {
            (Key::Rsa { n, e }, Some(params), _) => signature::RsaPublicKeyComponents { n, e }
                .verify(params, signed, sig)
                .is_ok(),
            (Key::Ec { point, .. }, _, Some((_, algorithm))) => {
                signature::UnparsedPublicKey::new(algorithm, point)
                    .verify(signed, sig)
                    .is_ok()
            }
            _ => false,
        };
        if verified {
            return Ok(());
        }
    }
    if any {
        Err(JwtError::Signature)
    } else {
        Err(JwtError::UnknownKey(header.kid.clone()))
    }
}

fn check_claims(
    claims: &BTreeMap<String, serde_json::Value>,
    expect: &Expectations,
    now_s: i64,
) -> Result<Validated, JwtError> {
    let seconds = |name: &str| claims.get(name).and_then(serde_json::Value::as_f64);
    let skew = expect.clock_skew_s as f64;
    let now = now_s as f64;
    let exp = seconds("exp").ok_or(JwtError::Expired)?;
    if exp + skew <= now {
        return Err(JwtError::Expired);
    }
    for claim in ["nbf", "iat"] {
        if seconds(claim).is_some_and(|t| t - skew > now) {
            return Err(JwtError::NotYetValid);
        }
    }
    if !expect.audience.is_empty() {
        let audience: Vec<String> = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => vec![a.clone()],
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !audience.iter().any(|a| expect.audience.contains(a)) {
            return Err(JwtError::Audience(audience));
        }
    }
    if let Some(issuer) = &expect.issuer {
        let iss = claims.get("iss").and_then(|v| v.as_str());
        if iss != Some(issuer.as_str()) {
            return Err(JwtError::Issuer(iss.map(str::to_string)));
        }
    }
    let subject = claims
        .get(&expect.subject_claim)
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| JwtError::Subject(expect.subject_claim.clone()))?;
    Ok(Validated {
        subject: subject.to_string(),
        expires_at_ms: (exp * 1000.0) as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    const NOW: i64 = 1_700_000_000;

    struct Signer {
        pair: EcdsaKeyPair,
        kid: &'static str,
    }

    impl Signer {
        fn new(kid: &'static str) -> Signer {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Signer { pair, kid }
        }

        fn jwk(&self) -> serde_json::Value {
            let point = self.pair.public_key().as_ref();
            serde_json::json!({
                "kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                "x": BASE64URL.encode(&point[1..33]), "y": BASE64URL.encode(&point[33..65]),
            })
        }

        fn sign(&self, claims: serde_json::Value) -> String {
            let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
            let signed = format!(
                "{}.{}",
                BASE64URL.encode(header.to_string()),
                BASE64URL.encode(claims.to_string())
            );
            let sig = self
                .pair
                .sign(&SystemRandom::new(), signed.as_bytes())
                .unwrap();
            format!("{signed}.{}", BASE64URL.encode(sig.as_ref()))
        }
    }

    fn jwks(signers: &[&Signer]) -> Jwks {
        let doc = serde_json::json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()});
        Jwks::parse(doc.to_string().as_bytes()).unwrap()
    }

    fn expect() -> Expectations {
        Expectations {
            audience: vec!["kafka".into()],
            issuer: Some("https://issuer.test".into()),
            ..Expectations::default()
        }
    }

    fn claims(exp: i64) -> serde_json::Value {
        serde_json::json!({"sub": "svc-orders", "aud": ["other", "kafka"], "iss": "https://issuer.test", "exp": exp, "iat": NOW - 10})
    }

    #[test]
    fn a_signed_current_token_gives_its_subject() {
        let signer = Signer::new("k1");
        let token = signer.sign(claims(NOW + 600));
        let validated = validate(&token, &jwks(&[&signer]), &expect(), NOW).unwrap();
        assert_eq!(validated.subject, "svc-orders");
        assert_eq!(validated.expires_at_ms, (NOW + 600) * 1000);
    }

    #[test]
    fn expired_future_and_misaddressed_tokens_are_refused() {
        let signer = Signer::new("k1");
        let keys = jwks(&[&signer]);
        let check = |c: serde_json::Value| validate(&signer.sign(c), &keys, &expect(), NOW);
        assert_eq!(check(claims(NOW - 60)), Err(JwtError::Expired));
        let mut no_exp = claims(0);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(no_exp), Err(JwtError::Expired));
        let mut future = claims(NOW + 600);
        future["nbf"] = serde_json::json!(NOW + 300);
        assert_eq!(check(future), Err(JwtError::NotYetValid));
        let mut audience = claims(NOW + 600);
        audience["aud"] = serde_json::json!("billing");
        assert!(matches!(check(audience), Err(JwtError::Audience(_))));
        let mut issuer = claims(NOW + 600);
        issuer["iss"] = serde_json::json!("https://evil.test");
        assert!(matches!(check(issuer), Err(JwtError::Issuer(_))));
        let mut subject = claims(NOW + 600);
        subject.as_object_mut().unwrap().remove("sub");
        assert!(matches!(check(subject), Err(JwtError::Subject(_))));
        // Within the clock skew an expiry just past is still accepted.
        assert!(check(claims(NOW - 5)).is_ok());
    }

    #[test]
    fn wrong_keys_and_bad_signatures_are_refused() {
        let signer = Signer::new("k1");
        let stranger = Signer::new("k1");
        let token = stranger.sign(claims(NOW + 600));
        assert_eq!(
            validate(&token, &jwks(&[&signer]), &expect(), NOW),
            Err(JwtError::Signature)
        );
        let other_kid = Signer::new("k2");
        assert_eq!(
            validate(
                &other_kid.sign(claims(NOW + 600)),
                &jwks(&[&signer]),
                &expect(),
                NOW
            ),
            Err(JwtError::UnknownKey(Some("k2".into())))
        );
        let good = signer.sign(claims(NOW + 600));
        let (signed, sig) = good.rsplit_once('.').unwrap();
        let mut bytes = BASE64URL.decode(sig).unwrap();
        bytes[0] ^= 1;
        let tampered = format!("{signed}.{}", BASE64URL.encode(bytes));
        assert_eq!(
            validate(&tampered, &jwks(&[&signer]), &expect(), NOW),
            Err(JwtError::Signature)
        );
        let none = format!(
            "{}.{}.",
            BASE64URL.encode(r#"{"alg":"none"}"#),
            BASE64URL.encode(claims(NOW + 600).to_string())
        );
        assert!(matches!(
            validate(&none, &jwks(&[&signer]), &expect(), NOW),
            Err(JwtError::Algorithm(_))
        ));
        for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
            assert!(
                validate(garbage, &jwks(&[&signer]), &expect(), NOW).is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn jwks_documents_skip_foreign_keys_and_refuse_garbage() {
        let doc = br#"{"keys":[{"kty":"oct","k":"abc"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},{"kty":"RSA","kid":"r","n":"AAEC","e":"AQAB"}]}"#;
        assert_eq!(Jwks::parse(doc).unwrap().len(), 1);
        assert!(Jwks::parse(b"not json").is_err());
        assert!(Jwks::parse(br#"{"keys":[{"kty":"RSA","n":"***","e":"AQAB"}]}"#).is_err());
    }
}
