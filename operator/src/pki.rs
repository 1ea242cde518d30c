//! The certificates the operator issues: a cluster's CAs and the certificates signed by them.
//!
//! Like Strimzi, a KafkaCluster has two CAs the operator creates and renews: the *cluster CA*
//! signs the brokers' server certificates (clients trust its `ca.crt`), the *clients CA* signs
//! KafkaUsers' client certificates (brokers trust it on listeners with TLS authentication).
//! Everything here is a pure function of its inputs and the clock it is given; keeping the
//! results in Secrets is the reconcilers' job.
//!
//! Keys are ECDSA P-256. A CA is kept as its PEM certificate and key; signing rebuilds the
//! issuer from the key and the CA's subject, which gives the same issuer name and key
//! identifier as the stored certificate, so what it signs verifies against that certificate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The stored CA key is not a PEM private key.
    #[error("the CA key is not a valid PEM private key: {0}")]
    CaKey(rcgen::Error),
    /// Generating or signing failed (an invalid name, a clock outside the encodable range).
    #[error("cannot issue the certificate for {subject}: {source}")]
    Issue {
        /// The certificate's common name.
        subject: String,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// A time that does not fit a certificate's validity fields.
    #[error("time {0} seconds after the epoch cannot be a certificate date")]
    Time(i64),
}

/// A certificate and its private key, PEM encoded, with the end of its validity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
}

/// A CA able to sign: its subject common name and private key.
#[derive(Clone, Debug)]
pub struct Ca<'a> {
    /// The CA certificate's subject common name (the only part of its subject).
    pub common_name: &'a str,
    /// The CA's private key, PEM.
    pub key_pem: &'a str,
}

/// What a leaf certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A broker: server authentication to clients, client authentication to other brokers.
    Broker,
    /// A client (a KafkaUser): client authentication only.
    Client,
}

/// Backdating of `notBefore`, so a peer whose clock is a little behind accepts a fresh
/// certificate.
const BACKDATE: Duration = Duration::from_secs(300);

/// A new self-signed CA named `common_name`, valid for `validity` from `now`.
pub fn new_ca(common_name: &str, validity: Duration, now: SystemTime) -> Result<Issued, PkiError> {
    let issue = |source| PkiError::Issue {
        subject: common_name.to_owned(),
        source,
    };
    let key = KeyPair::generate().map_err(issue)?;
    let mut params = ca_params(common_name);
    let not_after = set_validity(&mut params, now, validity)?;
    params.serial_number = Some(serial(now));
    let cert = params.self_signed(&key).map_err(issue)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// A certificate for `common_name` with DNS names (or IP addresses) `dns_names`, signed by `ca`, valid for
/// `validity` from `now`, with a fresh key.
pub fn issue(
    ca: &Ca<'_>,
    common_name: &str,
    dns_names: &[String],
    usage: Usage,
    validity: Duration,
    now: SystemTime,
) -> Result<Issued, PkiError> {
    let issue = |source| PkiError::Issue {
        subject: common_name.to_owned(),
        source,
    };
    let ca_key = KeyPair::from_pem(ca.key_pem).map_err(PkiError::CaKey)?;
    let issuer = ca_params(ca.common_name)
        .self_signed(&ca_key)
        .map_err(issue)?;
    let key = KeyPair::generate().map_err(issue)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(common_name);
    // An address is named as one (an IP SAN), anything else as a DNS name.
    params.subject_alt_names = dns_names
        .iter()
        .map(|name| match name.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => name.clone().try_into().map(SanType::DnsName).map_err(issue),
        })
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = match usage {
        Usage::Broker => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial(now));
    let not_after = set_validity(&mut params, now, validity)?;
    let cert = params.signed_by(&key, &issuer, &ca_key).map_err(issue)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// Whether a certificate valid until `not_after` (seconds since the epoch) is due for renewal
/// at `now`: within `renew_before` of its end, or past it.
pub fn due_for_renewal(not_after: i64, renew_before: Duration, now: SystemTime) -> bool {
    let renew_at = not_after.saturating_sub(secs(renew_before));
    unix_seconds(now) >= renew_at
}

/// The subject and constraints of a CA named `common_name`, the same every time so a CA
/// rebuilt from its key signs as the stored certificate.
fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn subject(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Sets `notBefore` (backdated) and `notAfter`; returns `notAfter` in seconds.
fn set_validity(
    params: &mut CertificateParams,
    now: SystemTime,
    validity: Duration,
) -> Result<i64, PkiError> {
    let start = unix_seconds(now).saturating_sub(secs(BACKDATE));
    let end = unix_seconds(now).saturating_add(secs(validity));
    params.not_before = date(start)?;
    params.not_after = date(end)?;
    Ok(end)
}

fn date(seconds: i64) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| PkiError::Time(seconds))
}

/// A serial unique enough for certificates issued by one operator: the issue time in
/// nanoseconds, with the high bit clear so it encodes as a positive integer.
fn serial(now: SystemTime) -> SerialNumber {
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let bytes = (nanos & (u128::MAX >> 1)).to_be_bytes();
    SerialNumber::from_slice(&bytes)
}

fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => secs(after),
        Err(before) => -secs(before.duration()),
    }
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn a_ca_signs_leaves_that_name_it_as_issuer() {
        let ca = new_ca("demo-cluster-ca", 365 * DAY, now()).unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(ca.not_after, 1_800_000_000 + 365 * 86_400);
        let leaf = issue(
            &Ca {
                common_name: "demo-cluster-ca",
                key_pem: &ca.key_pem,
            },
            "demo-broker",
            &["*.demo-brokers.ns.svc".to_owned()],
            Usage::Broker,
            30 * DAY,
            now(),
        )
        .unwrap();
        assert_eq!(leaf.not_after, 1_800_000_000 + 30 * 86_400);
        assert_ne!(leaf.key_pem, ca.key_pem);
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        let at = now() + DAY;
        verify(&ca, &leaf, webpki::KeyUsage::server_auth(), at).unwrap();
        verify(&ca, &leaf, webpki::KeyUsage::client_auth(), at).unwrap();
        assert!(verify(
            &ca,
            &leaf,
            webpki::KeyUsage::server_auth(),
            now() + 31 * DAY
        )
        .is_err());
        let other = new_ca("demo-cluster-ca", 365 * DAY, now()).unwrap();
        assert!(verify(&other, &leaf, webpki::KeyUsage::server_auth(), at).is_err());
    }

    #[test]
    fn addresses_are_named_as_ip_addresses_and_verify_for_them() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, ServerName};
        let ca = new_ca("demo-cluster-ca", 365 * DAY, now()).unwrap();
        let names = ["203.0.113.9".to_owned(), "kafka-0.example.com".to_owned()];
        let ca_ref = Ca {
            common_name: "demo-cluster-ca",
            key_pem: &ca.key_pem,
        };
        let leaf = issue(
            &ca_ref,
            "demo-broker",
            &names,
            Usage::Broker,
            30 * DAY,
            now(),
        )
        .unwrap();
        let der = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
        let cert = webpki::EndEntityCert::try_from(&der).unwrap();
        for name in ["203.0.113.9", "kafka-0.example.com"] {
            let server = ServerName::try_from(name).unwrap();
            cert.verify_is_valid_for_subject_name(&server).unwrap();
        }
        let other = ServerName::try_from("203.0.113.10").unwrap();
        assert!(cert.verify_is_valid_for_subject_name(&other).is_err());
    }

    #[test]
    fn client_certificates_are_for_clients_only() {
        let ca = new_ca("demo-clients-ca", 365 * DAY, now()).unwrap();
        let ca_ref = Ca {
            common_name: "demo-clients-ca",
            key_pem: &ca.key_pem,
        };
        let leaf = issue(&ca_ref, "alice", &[], Usage::Client, 30 * DAY, now()).unwrap();
        let at = now() + DAY;
        verify(&ca, &leaf, webpki::KeyUsage::client_auth(), at).unwrap();
        assert!(verify(&ca, &leaf, webpki::KeyUsage::server_auth(), at).is_err());
    }

    /// Verifies `leaf` against `ca` as a TLS peer does.
    fn verify(
        ca: &Issued,
        leaf: &Issued,
        usage: webpki::KeyUsage,
        at: SystemTime,
    ) -> Result<(), webpki::Error> {
        verify_pem_for(&ca.cert_pem, &leaf.cert_pem, usage, at)
    }

    /// Verifies the PEM certificate `leaf_pem` as a TLS server certificate issued by the CA
    /// certificate `ca_pem`, at `at`.
    pub(crate) fn verify_pem(
        ca_pem: &str,
        leaf_pem: &str,
        at: SystemTime,
    ) -> Result<(), webpki::Error> {
        verify_pem_for(ca_pem, leaf_pem, webpki::KeyUsage::server_auth(), at)
    }

    fn verify_pem_for(
        ca_pem: &str,
        leaf_pem: &str,
        usage: webpki::KeyUsage,
        at: SystemTime,
    ) -> Result<(), webpki::Error> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, UnixTime};
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
        let anchor = webpki::anchor_from_trusted_cert(&ca_der)?;
        let leaf_der = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).unwrap();
        let cert = webpki::EndEntityCert::try_from(&leaf_der)?;
        let time = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap());
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            time,
            usage,
            None,
            None,
        )
        .map(|_| ())
    }

    #[test]
    fn a_damaged_ca_key_is_an_error_not_a_panic() {
        let ca = Ca {
            common_name: "x",
            key_pem: "not a key",
        };
        let result = issue(&ca, "u", &[], Usage::Client, DAY, now());
        assert!(matches!(result, Err(PkiError::CaKey(_))));
    }

    #[test]
    fn renewal_is_due_inside_the_window_and_after_expiry() {
        let end = 1_800_000_000 + 100 * 86_400;
        assert!(!due_for_renewal(end, 30 * DAY, now()));
        assert!(!due_for_renewal(end, 30 * DAY, now() + 69 * DAY));
        assert!(due_for_renewal(end, 30 * DAY, now() + 70 * DAY));
        assert!(due_for_renewal(end, 30 * DAY, now() + 200 * DAY));
    }
}
