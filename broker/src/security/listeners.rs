//! Kafka's listener settings: `listeners`, `advertised.listeners`,
//! `listener.security.protocol.map` and `inter.broker.listener.name`, checked as Kafka checks
//! them, so a `server.properties` written for Kafka configures the same sockets here.

use std::collections::BTreeMap;

/// How a listener's connections are secured: the one definition the operator renders too.
pub use tributary_crds::listener::SecurityProtocol;

/// One configured listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its name, upper case as Kafka normalises it (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// How its connections are secured.
    pub protocol: SecurityProtocol,
    /// host:port the socket binds (`0.0.0.0` for an empty host).
    pub bind: String,
    /// Host clients of this listener are told to connect to.
    pub advertised_host: String,
    /// Port clients of this listener are told to connect to.
    pub advertised_port: i32,
}

/// The raw listener settings, each as Kafka writes it.
#[derive(Debug, Clone, Default)]
pub struct ListenerSettings<'a> {
    /// `listeners`: `NAME://host:port,...`.
    pub listeners: &'a str,
    /// `advertised.listeners`; listeners it does not name advertise their bind address.
    pub advertised: Option<&'a str>,
    /// `listener.security.protocol.map`: `NAME:PROTOCOL,...` (default: each protocol maps to
    /// the listener of the same name).
    pub protocol_map: Option<&'a str>,
    /// `inter.broker.listener.name` (default: `PLAINTEXT` if there is one, else the first).
    pub inter_broker: Option<&'a str>,
    /// Host advertised for a listener bound to every interface without an advertised address.
    pub default_host: &'a str,
}

/// Every listener of the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    /// In the order `listeners` names them.
    pub all: Vec<Listener>,
    /// Index in `all` of the listener other brokers reach this one through.
    pub inter_broker: usize,
}

impl Listeners {
    /// The listener other brokers connect to.
    pub fn inter_broker(&self) -> &Listener {
        // `resolve` only builds indexes into `all`, which is never empty.
        &self.all[self.inter_broker.min(self.all.len().saturating_sub(1))]
    }

    /// The listener named `name`.
    pub fn get(&self, name: &str) -> Option<&Listener> {
        self.all.iter().find(|l| l.name == name)
    }
}

/// Why the listener settings were refused; each names the setting to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerError {
    /// `listeners` names no listener.
    #[error("listeners: at least one listener is required")]
    Empty,
    /// An entry is not `NAME://host:port`.
    #[error("{setting}: `{entry}` is not NAME://host:port")]
    Malformed {
        setting: &'static str,
        entry: String,
    },
    /// Two listeners share a name.
    #[error("{setting}: listener {name} is named twice")]
    DuplicateName { setting: &'static str, name: String },
    /// Two listeners bind the same port.
    #[error(
        "listeners: {first} and {second} both bind port {port}; each listener needs its own port"
    )]
    DuplicatePort {
        first: String,
        second: String,
        port: u16,
    },
    /// The protocol map has no entry for a listener, or an unknown protocol.
    #[error("listener.security.protocol.map: no security protocol for listener {name} (use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)")]
    NoProtocol { name: String },
    /// The protocol map entry is not `NAME:PROTOCOL` or names an unknown protocol.
    #[error("listener.security.protocol.map: `{entry}` is not NAME:PROTOCOL with PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")]
    BadMapEntry { entry: String },
    /// `advertised.listeners` or `inter.broker.listener.name` names an unknown listener.
    #[error("{setting}: {name} is not one of the listeners ({known})")]
    UnknownListener {
        setting: &'static str,
        name: String,
        known: String,
    },
}

/// Checks the settings and builds the listeners from them.
pub fn resolve(settings: &ListenerSettings<'_>) -> Result<Listeners, ListenerError> {
    let map = match settings.protocol_map {
        Some(text) => parse_protocol_map(text)?,
        None => default_protocol_map(),
    };
    let endpoints = parse_endpoints("listeners", settings.listeners)?;
    if endpoints.is_empty() {
        return Err(ListenerError::Empty);
    }
    let advertised = match settings.advertised {
        Some(text) => parse_endpoints("advertised.listeners", text)?,
        None => Vec::new(),
    };
    let known = || {
        endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for a in &advertised {
        if !endpoints.iter().any(|e| e.name == a.name) {
            return Err(ListenerError::UnknownListener {
                setting: "advertised.listeners",
                name: a.name.clone(),
                known: known(),
            });
        }
    }
    let mut all: Vec<Listener> = Vec::with_capacity(endpoints.len());
    for endpoint in &endpoints {
        let protocol = *map
            .get(&endpoint.name)
            .ok_or_else(|| ListenerError::NoProtocol {
                name: endpoint.name.clone(),
            })?;
        if let Some(other) = all.iter().find(|l| {
            endpoint.port != 0
                && l.bind.rsplit_once(':').map(|(_, p)| p) == Some(&endpoint.port.to_string())
        }) {
            return Err(ListenerError::DuplicatePort {
                first: other.name.clone(),
                second: endpoint.name.clone(),
                port: endpoint.port,
            });
        }
        let bind_host = if endpoint.host.is_empty() {
            "0.0.0.0".to_string()
        } else {
            endpoint.host.clone()
        };
        let (advertised_host, advertised_port) =
            match advertised.iter().find(|a| a.name == endpoint.name) {
                Some(a) => (a.host.clone(), a.port),
                None if endpoint.host.is_empty() || endpoint.host == "0.0.0.0" => {
                    (settings.default_host.to_string(), endpoint.port)
                }
                None => (endpoint.host.clone(), endpoint.port),
            };
        all.push(Listener {
            name: endpoint.name.clone(),
            protocol,
            bind: join_host_port(&bind_host, endpoint.port),
            advertised_host,
            advertised_port: i32::from(advertised_port),
        });
    }
    let inter_broker = match settings.inter_broker {
        Some(name) => {
            let name = name.trim().to_ascii_uppercase();
            all.iter().position(|l| l.name == name).ok_or_else(|| {
                ListenerError::UnknownListener {
                    setting: "inter.broker.listener.name",
                    name,
                    known: known(),
                }
            })?
        }
        None => all.iter().position(|l| l.name == "PLAINTEXT").unwrap_or(0),
    };
    Ok(Listeners { all, inter_broker })
}

/// One `NAME://host:port` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    name: String,
    host: String,
    port: u16,
}

fn parse_endpoints(setting: &'static str, text: &str) -> Result<Vec<Endpoint>, ListenerError> {
    let mut out: Vec<Endpoint> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let malformed = || ListenerError::Malformed {
            setting,
            entry: entry.to_string(),
        };
        let (name, address) = entry.split_once("://").ok_or_else(malformed)?;
        let name = name.trim().to_ascii_uppercase();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(malformed());
        }
        let (host, port) = address.rsplit_once(':').ok_or_else(malformed)?;
        let port: u16 = port.parse().map_err(|_| malformed())?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if out.iter().any(|e| e.name == name) {
            return Err(ListenerError::DuplicateName { setting, name });
        }
        out.push(Endpoint { name, host, port });
    }
    Ok(out)
}

fn parse_protocol_map(text: &str) -> Result<BTreeMap<String, SecurityProtocol>, ListenerError> {
    let mut map = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || ListenerError::BadMapEntry {
            entry: entry.to_string(),
        };
        let (name, protocol) = entry.split_once(':').ok_or_else(bad)?;
        let protocol = SecurityProtocol::parse(protocol.trim()).ok_or_else(bad)?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(bad());
        }
        if map.insert(name.clone(), protocol).is_some() {
            return Err(ListenerError::DuplicateName {
                setting: "listener.security.protocol.map",
                name,
            });
        }
    }
    Ok(map)
}

/// Kafka's default map: each protocol names its own listener.
fn default_protocol_map() -> BTreeMap<String, SecurityProtocol> {
    [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .map(|p| (p.name().to_string(), p))
    .collect()
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(listeners: &str) -> ListenerSettings<'_> {
        ListenerSettings {
            listeners,
            default_host: "broker-0.local",
            ..ListenerSettings::default()
        }
    }

    #[test]
    fn kafka_style_listeners_resolve_with_the_default_protocol_map() {
        let resolved = resolve(&ListenerSettings {
            advertised: Some("SSL://kafka.example.com:19093"),
            ..settings("PLAINTEXT://:9092, ssl://127.0.0.1:9093,SASL_SSL://[::1]:9094")
        })
        .unwrap();
        let names: Vec<_> = resolved
            .all
            .iter()
            .map(|l| (l.name.as_str(), l.protocol))
            .collect();
        assert_eq!(
            names,
            [
                ("PLAINTEXT", SecurityProtocol::Plaintext),
                ("SSL", SecurityProtocol::Ssl),
                ("SASL_SSL", SecurityProtocol::SaslSsl)
            ]
        );
        assert_eq!(resolved.all[0].bind, "0.0.0.0:9092");
        assert_eq!(resolved.all[0].advertised_host, "broker-0.local");
        assert_eq!(resolved.all[1].advertised_host, "kafka.example.com");
        assert_eq!(resolved.all[1].advertised_port, 19093);
        assert_eq!(resolved.all[2].bind, "[::1]:9094");
        assert_eq!(resolved.inter_broker().name, "PLAINTEXT");
    }

    #[test]
    fn custom_names_need_the_protocol_map() {
        let text = "INTERNAL://:9092,EXTERNAL://:9093";
        assert_eq!(
            resolve(&settings(text)),
            Err(ListenerError::NoProtocol {
                name: "INTERNAL".into()
            })
        );
        let resolved = resolve(&ListenerSettings {
            protocol_map: Some("INTERNAL:SSL,external:SASL_SSL"),
            inter_broker: Some("internal"),
            ..settings(text)
        })
        .unwrap();
        assert_eq!(resolved.inter_broker().name, "INTERNAL");
        assert_eq!(
            resolved.get("EXTERNAL").unwrap().protocol,
            SecurityProtocol::SaslSsl
        );
    }

    #[test]
    fn mistakes_are_named() {
        let err = |s: ListenerSettings<'_>| resolve(&s).unwrap_err().to_string();
        assert!(err(settings("")).contains("at least one"));
        assert!(err(settings("PLAINTEXT:9092")).contains("NAME://host:port"));
        assert!(err(settings("PLAINTEXT://:port")).contains("NAME://host:port"));
        assert!(err(settings("PLAINTEXT://:9092,PLAINTEXT://:9093")).contains("named twice"));
        assert!(err(settings("PLAINTEXT://:9092,SSL://:9092")).contains("own port"));
        assert!(err(ListenerSettings {
            protocol_map: Some("PLAINTEXT:TLS"),
            ..settings("PLAINTEXT://:9092")
        })
        .contains("NAME:PROTOCOL"));
        assert!(err(ListenerSettings {
            advertised: Some("SSL://x:1"),
            ..settings("PLAINTEXT://:9092")
        })
        .contains("advertised.listeners: SSL is not one of the listeners (PLAINTEXT)"));
        assert!(err(ListenerSettings {
            inter_broker: Some("REPLICATION"),
            ..settings("PLAINTEXT://:9092")
        })
        .contains("inter.broker.listener.name"));
        // Port 0 (any free port) may repeat.
        assert!(resolve(&settings("PLAINTEXT://:0,SSL://:0")).is_ok());
    }
}
