//! Secrets made up by the operator: generated passwords and SCRAM salts, from the operating
//! system's CSPRNG (ring's `SystemRandom`, the generator rustls already uses here), and the
//! JAAS line Java clients log in with.

use ring::rand::{SecureRandom, SystemRandom};

/// Length of a generated password: 32 alphanumerics carry about 190 bits.
pub const PASSWORD_LENGTH: usize = 32;
/// Length of a generated SCRAM salt, in bytes.
pub const SALT_LENGTH: usize = 24;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The system's random generator failed (no entropy source); nothing can be generated.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// A new random password of [`PASSWORD_LENGTH`] alphanumerics, each equally likely (bytes
/// that would bias the choice are drawn again).
pub fn generate_password() -> Result<String, RandomError> {
    let rng = SystemRandom::new();
    // The largest multiple of the alphabet size that fits a byte: bytes below it map evenly.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(PASSWORD_LENGTH);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LENGTH {
        rng.fill(&mut buf).map_err(|_| RandomError)?;
        for b in buf.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if out.len() == PASSWORD_LENGTH {
                break;
            }
            out.push(char::from(ALPHABET[b % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// A new random SCRAM salt.
pub fn generate_salt() -> Result<Vec<u8>, RandomError> {
    let mut salt = vec![0u8; SALT_LENGTH];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| RandomError)?;
    Ok(salt)
}

/// The `sasl.jaas.config` a Java client logs in as `user` with `password` by, quoted as Java's
/// JAAS parser reads quoted values (backslash escapes).
pub fn jaas_config(user: &str, password: &str) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        quote(user),
        quote(password)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_32_alphanumerics_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
        assert_eq!(generate_salt().unwrap().len(), SALT_LENGTH);
    }

    #[test]
    fn the_jaas_line_is_the_one_java_clients_expect() {
        assert_eq!(
            jaas_config("alice", "s3cret"),
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3cret\";"
        );
        assert!(jaas_config("a", "x\"y").contains(r#"password="x\"y";"#));
    }
}
