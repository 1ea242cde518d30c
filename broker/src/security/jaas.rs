//! The options of a JAAS login module entry as Kafka's `sasl.jaas.config` writes them:
//! `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin"
//! password="admin-secret" user_alice="alice-secret";`. Only the `key="value"` options
//! matter here: `user_<name>` entries are PLAIN users, `username`/`password` what this broker
//! presents to others.

use std::collections::BTreeMap;

/// Why a JAAS entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sasl.jaas.config: {0}")]
pub struct JaasError(String);

/// The `key=value` options of one login module entry, in order of appearance.
pub fn options(text: &str) -> Result<BTreeMap<String, String>, JaasError> {
    let mut out = BTreeMap::new();
    let mut chars = text.trim().trim_end_matches(';').chars().peekable();
    // The login module class and the control flag come first, without `=`.
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            // A word without a value: the class name or the control flag.
            continue;
        }
        chars.next();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(JaasError(format!(
                    "the value of {key} lacks its closing quote"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() {
            return Err(JaasError("an option has no name".into()));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// The PLAIN users (`user_<name>="<password>"`) among `options`.
pub fn plain_users(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    options
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_jaas_entries_give_their_options() {
        let text = r#"org.apache.kafka.common.security.plain.PlainLoginModule required
            username="admin" password="admin-secret"
            user_admin="admin-secret" user_alice="al\"ice" user_bob=bob-pw;"#;
        let o = options(text).unwrap();
        assert_eq!(o["username"], "admin");
        assert_eq!(o["password"], "admin-secret");
        let users = plain_users(&o);
        assert_eq!(users.len(), 3);
        assert_eq!(users["alice"], "al\"ice");
        assert_eq!(users["bob"], "bob-pw");
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        assert!(options(r#"X required user_a="oops"#).is_err());
        assert!(options(r#"="v""#).is_err());
        assert!(options("").unwrap().is_empty());
    }
}
