//! Who a connection is: Kafka's `KafkaPrincipal` (`User:alice`), set once the connection is
//! authenticated, and the `ssl.principal.mapping.rules` that turn a certificate subject into
//! one. Quotas charge the principal's name; an authorizer matches ACLs on the whole of it.

use std::fmt;

/// The authenticated identity of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Principal type; Kafka's authenticators always produce `User`.
    pub kind: String,
    /// The name: a SASL user, a token's subject or the mapped certificate subject.
    pub name: String,
    /// Whether it logged in with a delegation token (Kafka's `tokenAuthenticated`): such a
    /// session may not create, renew, expire or describe tokens.
    pub token_authenticated: bool,
}

impl Principal {
    /// Kafka's principal type for every authenticated client.
    pub const USER: &'static str = "User";

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            kind: Principal::USER.to_string(),
            name: name.into(),
            token_authenticated: false,
        }
    }

    /// `User:<name>`, authenticated with one of `name`'s delegation tokens.
    pub fn token_user(name: impl Into<String>) -> Principal {
        Principal {
            token_authenticated: true,
            ..Principal::user(name)
        }
    }

    /// `User:ANONYMOUS`: every client of a PLAINTEXT listener, and of an SSL listener that
    /// presents no certificate.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    /// The distinguished name unchanged.
    Default,
    /// `RULE:pattern/replacement/[L|U]`: applies when the pattern matches the whole name.
    Replace {
        pattern: regex::Regex,
        replacement: String,
        case: Option<Case>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Lower,
    Upper,
}

/// Why `ssl.principal.mapping.rules` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ssl.principal.mapping.rules: {0}")]
pub struct RulesError(String);

/// `ssl.principal.mapping.rules`: the first rule that matches a certificate's distinguished
/// name gives the principal name (Kafka's `SslPrincipalMapper`).
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for PrincipalMapper {
    fn default() -> PrincipalMapper {
        PrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

impl PrincipalMapper {
    /// Parses rules as Kafka writes them: `DEFAULT` and `RULE:pattern/replacement/[LU]`,
    /// separated by commas (which may also appear inside a rule's pattern).
    pub fn parse(text: &str) -> Result<PrincipalMapper, RulesError> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = after
                    .split_once('/')
                    .ok_or_else(|| RulesError(format!("`{rest}` lacks /replacement/")))?;
                let (replacement, after) = after
                    .split_once('/')
                    .ok_or_else(|| RulesError(format!("`{rest}` lacks its closing /")))?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Some(Case::Lower), &after[1..]),
                    Some('U') => (Some(Case::Upper), &after[1..]),
                    _ => (None, after),
                };
                let pattern = regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| RulesError(format!("pattern `{pattern}`: {e}")))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_groups_to_rust(replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(RulesError(format!(
                    "`{rest}` is neither DEFAULT nor RULE:pattern/replacement/[LU]"
                )));
            }
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after.trim_start();
            } else if !rest.is_empty() {
                return Err(RulesError(format!("expected `,` before `{rest}`")));
            }
        }
        if rules.is_empty() {
            return Err(RulesError("no rules".into()));
        }
        Ok(PrincipalMapper { rules })
    }

    /// The principal name for distinguished name `dn`, or `None` when no rule matches (Kafka
    /// then refuses the connection).
    pub fn map(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                let captures = pattern.captures(dn)?;
                let mut name = String::new();
                captures.expand(replacement, &mut name);
                Some(match case {
                    Some(Case::Lower) => name.to_lowercase(),
                    Some(Case::Upper) => name.to_uppercase(),
                    None => name,
                })
            }
        })
    }
}

/// Java writes group references as `$1`; Rust's `$1a` would read group `1a`, so braces are
/// added.
fn java_groups_to_rust(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len() + 4);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            out.push_str(&format!("${{{digits}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_print_as_kafka_does() {
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
        assert_eq!(Principal::user("CN=a,O=b").to_string(), "User:CN=a,O=b");
    }

    #[test]
    fn the_default_rule_keeps_the_distinguished_name() {
        let m = PrincipalMapper::default();
        assert_eq!(
            m.map("CN=client,O=Acme,C=GB").as_deref(),
            Some("CN=client,O=Acme,C=GB")
        );
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(m.map("CN=x").as_deref(), Some("CN=x"));
    }

    #[test]
    fn rules_apply_in_order_with_case_conversion() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=([a-z]+)-(\\d+),O=(.*)$/$1@$3/U,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=Kafka-Admin,OU=ServiceUsers,O=Acme").as_deref(),
            Some("kafka-admin")
        );
        assert_eq!(m.map("CN=app-7,O=acme").as_deref(), Some("APP@ACME"));
        assert_eq!(m.map("CN=other,O=Acme").as_deref(), Some("CN=other,O=Acme"));
        let strict = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/").unwrap();
        assert_eq!(strict.map("O=no-cn"), None);
        assert_eq!(strict.map("CN=ok").as_deref(), Some("ok"));
    }

    #[test]
    fn malformed_rules_are_refused() {
        assert!(PrincipalMapper::parse("RULE:abc").is_err());
        assert!(PrincipalMapper::parse("RULE:(/x/").is_err());
        assert!(PrincipalMapper::parse("SOMETHING").is_err());
        assert!(PrincipalMapper::parse("DEFAULT DEFAULT").is_err());
        assert!(PrincipalMapper::parse("").is_err());
    }
}
