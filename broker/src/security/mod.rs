//! Listener security: which listeners exist and how they are secured ([`listeners`]), TLS
//! ([`tls`]), SASL authentication ([`sasl`]) against the stored SCRAM credentials
//! ([`credentials`]), and the principal a connection authenticates as ([`principal`]), which
//! quotas charge and an authorizer will check.

pub mod credentials;
pub mod jaas;
pub mod jwt;
pub mod listeners;
pub mod peer;
#[cfg(test)]
mod peer_tests;
pub mod principal;
pub mod reload;
pub mod runtime;
pub mod sasl;
pub mod settings;
pub mod tls;
pub mod tokens;
pub mod x509;

pub use principal::Principal;
