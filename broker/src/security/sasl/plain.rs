//! SASL/PLAIN (RFC 4616) against the users of a JAAS entry (`user_<name>="<password>"`), as
//! Kafka's `PlainLoginModule` configures them.

use std::collections::BTreeMap;

use super::{Failure, Outcome};
use crate::security::Principal;

/// Kafka's answer to a wrong PLAIN user or password.
const INVALID: &str = "Authentication failed: Invalid username or password";

/// Checks one PLAIN message `[authzid] NUL authcid NUL passwd` against `users`.
pub fn authenticate(message: &[u8], users: &BTreeMap<String, String>) -> Result<Outcome, Failure> {
    let malformed = |what: &str| Failure {
        message: format!("Invalid SASL/PLAIN message: {what}"),
        detail: what.to_string(),
    };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected authzid NUL user NUL password"));
    };
    if user.is_empty() {
        return Err(malformed("empty user name"));
    }
    if password.is_empty() {
        return Err(malformed("empty password"));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(Failure {
            message: "Authentication failed: Client requested an authorization id that is different from username".into(),
            detail: format!("authorization id {authzid} differs from user {user}"),
        });
    }
    let Some(expected) = users.get(user) else {
        return Err(Failure {
            message: INVALID.into(),
            detail: format!("user {user}: unknown user"),
        });
    };
    if !constant_time_eq(expected.as_bytes(), password.as_bytes()) {
        return Err(Failure {
            message: INVALID.into(),
            detail: format!("user {user}: wrong password"),
        });
    }
    Ok(Outcome::Authenticated {
        response: Vec::new(),
        principal: Principal::user(user),
        expires_at_ms: None,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        BTreeMap::from([("alice".to_string(), "alice-secret".to_string())])
    }

    #[test]
    fn a_known_user_with_the_right_password_is_authenticated() {
        let outcome = authenticate(b"\0alice\0alice-secret", &users()).unwrap();
        assert!(
            matches!(outcome, Outcome::Authenticated { principal, .. } if principal == Principal::user("alice"))
        );
        assert!(authenticate(b"alice\0alice\0alice-secret", &users()).is_ok());
    }

    #[test]
    fn wrong_passwords_unknown_users_and_garbage_are_refused() {
        let wrong = authenticate(b"\0alice\0guess", &users()).unwrap_err();
        let unknown = authenticate(b"\0bob\0alice-secret", &users()).unwrap_err();
        assert_eq!(wrong.message, INVALID);
        assert_eq!(unknown.message, INVALID);
        assert!(authenticate(b"bob\0alice\0alice-secret", &users()).is_err());
        for garbage in [
            &b""[..],
            b"alice",
            b"\0\0",
            b"\0alice\0",
            b"\xff\0a\0b",
            b"a\0b\0c\0d",
        ] {
            assert!(authenticate(garbage, &users()).is_err(), "{garbage:?}");
        }
    }
}
