//! Certificates kept in Secrets: what a CA Secret and a certificate Secret hold, and the pure
//! decisions about them (create, renew, re-issue, leave alone). The reconcilers read the
//! Secrets, call these with the time, and write what they return.
//!
//! A CA Secret holds `ca.crt` (the current CA certificate first, then the one it replaced
//! until that one expires, so peers that still hold certificates from it keep verifying
//! during a rotation), `ca.key` (the current key only) and the end of each certificate's
//! validity in annotations, so no decision needs to parse a certificate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use sha2::{Digest, Sha256};
use tributary_crds::cluster::CertificateAuthority;
use tributary_crds::registration::{CA_CERT_KEY, CA_KEY_KEY, NOT_AFTER_ANNOTATION};

use crate::builders::security::{TLS_CERT_KEY, TLS_KEY_KEY};
use crate::builders::Names;
use crate::pki::{self, Ca, Issued, PkiError, Usage};

/// Annotation on a CA Secret: `notAfter` (seconds since the epoch) of the previous CA
/// certificate still in `ca.crt`.
pub const PREVIOUS_NOT_AFTER_ANNOTATION: &str = "tributary.dev/previous-not-after";
/// Annotation on a certificate Secret: short hash of the CA certificate that signed it, so a
/// renewed CA is noticed.
pub const ISSUER_ANNOTATION: &str = "tributary.dev/issuer";
/// Annotation on a certificate Secret: the DNS names it was issued for, comma-separated.
pub const DNS_NAMES_ANNOTATION: &str = "tributary.dev/dns-names";
/// The Secret type of certificate Secrets (`tls.crt`, `tls.key`).
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

const DAY: u64 = 86_400;

/// How long certificates live and how early they are renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Validity of a new CA or certificate.
    pub validity: Duration,
    /// Renewal starts this long before the end of validity.
    pub renew_before: Duration,
}

impl Lifetimes {
    /// The lifetimes a KafkaCluster asks for.
    pub fn of(spec: &CertificateAuthority) -> Lifetimes {
        let days = |d: i32| Duration::from_secs(u64::try_from(d).unwrap_or(1).max(1) * DAY);
        Lifetimes {
            validity: days(spec.validity_days),
            renew_before: days(spec.renewal_days),
        }
    }
}

/// A CA certificate replaced by a renewal, kept trusted until it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousCa {
    /// Its certificate, PEM.
    pub cert_pem: String,
    /// Its `notAfter`, seconds since the epoch.
    pub not_after: i64,
}

/// A CA as its Secret holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaState {
    /// The current CA certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// Its `notAfter`, seconds since the epoch.
    pub not_after: i64,
    /// The CA it replaced, while that one is still valid.
    pub previous: Option<PreviousCa>,
}

/// What a stored Secret turned out to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored<T> {
    /// No Secret.
    Missing,
    /// A Secret that cannot be used, and why.
    Unusable(String),
    /// A usable Secret.
    Found(T),
}

impl CaState {
    /// Reads a CA Secret.
    pub fn from_secret(secret: Option<&Secret>) -> Stored<CaState> {
        let Some(secret) = secret else {
            return Stored::Missing;
        };
        let bundle = match text(secret, CA_CERT_KEY) {
            Ok(b) => b,
            Err(why) => return Stored::Unusable(why),
        };
        let key_pem = match text(secret, CA_KEY_KEY) {
            Ok(k) => k,
            Err(why) => return Stored::Unusable(why),
        };
        let Some(not_after) = annotation_i64(secret, NOT_AFTER_ANNOTATION) else {
            return Stored::Unusable(format!("no numeric {NOT_AFTER_ANNOTATION} annotation"));
        };
        let mut certs = pem_certificates(&bundle).into_iter();
        let Some(cert_pem) = certs.next() else {
            return Stored::Unusable(format!("{CA_CERT_KEY} holds no certificate"));
        };
        let previous = match (
            certs.next(),
            annotation_i64(secret, PREVIOUS_NOT_AFTER_ANNOTATION),
        ) {
            (Some(cert_pem), Some(not_after)) => Some(PreviousCa {
                cert_pem,
                not_after,
            }),
            _ => None,
        };
        Stored::Found(CaState {
            cert_pem,
            key_pem,
            not_after,
            previous,
        })
    }

    /// `ca.crt`: the current certificate, then the previous one while it is kept.
    pub fn bundle(&self) -> String {
        match &self.previous {
            Some(p) => format!("{}{}", self.cert_pem, p.cert_pem),
            None => self.cert_pem.clone(),
        }
    }

    /// Short hash of the current certificate, recorded on what it signs.
    pub fn fingerprint(&self) -> String {
        short_hash(&self.cert_pem)
    }

    /// The CA as a signer named `common_name`.
    pub fn signer<'a>(&'a self, common_name: &'a str) -> Ca<'a> {
        Ca {
            common_name,
            key_pem: &self.key_pem,
        }
    }

    /// The Secret `name` holding this CA, owned by the cluster.
    pub fn to_secret(&self, names: &Names, name: &str) -> Secret {
        let mut meta = names.meta(name.to_owned());
        let mut annotations =
            BTreeMap::from([(NOT_AFTER_ANNOTATION.to_owned(), self.not_after.to_string())]);
        if let Some(p) = &self.previous {
            annotations.insert(
                PREVIOUS_NOT_AFTER_ANNOTATION.to_owned(),
                p.not_after.to_string(),
            );
        }
        meta.annotations = Some(annotations);
        Secret {
            metadata: meta,
            data: Some(BTreeMap::from([
                (
                    CA_CERT_KEY.to_owned(),
                    ByteString(self.bundle().into_bytes()),
                ),
                (
                    CA_KEY_KEY.to_owned(),
                    ByteString(self.key_pem.clone().into_bytes()),
                ),
            ])),
            ..Secret::default()
        }
    }
}

/// Why a CA Secret is (re)written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaChange {
    /// There was none.
    Created,
    /// The stored one could not be used (the reason); a new CA replaces it.
    Replaced(String),
    /// It was due: a new CA, the old certificate kept in `ca.crt`.
    Renewed,
    /// The previous certificate expired and leaves `ca.crt`.
    PreviousExpired,
}

/// The CA `common_name` should be at `now`, and why it changed, if it did.
pub fn plan_ca(
    stored: Stored<CaState>,
    common_name: &str,
    lifetimes: Lifetimes,
    now: SystemTime,
) -> Result<(CaState, Option<CaChange>), PkiError> {
    let fresh = |previous: Option<PreviousCa>| -> Result<CaState, PkiError> {
        let Issued {
            cert_pem,
            key_pem,
            not_after,
        } = pki::new_ca(common_name, lifetimes.validity, now)?;
        Ok(CaState {
            cert_pem,
            key_pem,
            not_after,
            previous,
        })
    };
    let now_s = unix(now);
    match stored {
        Stored::Missing => Ok((fresh(None)?, Some(CaChange::Created))),
        Stored::Unusable(why) => Ok((fresh(None)?, Some(CaChange::Replaced(why)))),
        Stored::Found(ca) if pki::due_for_renewal(ca.not_after, lifetimes.renew_before, now) => {
            let previous = (ca.not_after > now_s).then(|| PreviousCa {
                cert_pem: ca.cert_pem.clone(),
                not_after: ca.not_after,
            });
            Ok((fresh(previous)?, Some(CaChange::Renewed)))
        }
        Stored::Found(mut ca) if ca.previous.as_ref().is_some_and(|p| p.not_after <= now_s) => {
            ca.previous = None;
            Ok((ca, Some(CaChange::PreviousExpired)))
        }
        Stored::Found(ca) => Ok((ca, None)),
    }
}

/// A certificate as its Secret holds it, with what it was issued for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafState {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// `ca.crt`: the CA certificates peers of its holder are checked against.
    pub ca_bundle: String,
    /// Its `notAfter`, seconds since the epoch.
    pub not_after: i64,
    /// Fingerprint of the CA certificate that signed it ([`CaState::fingerprint`]).
    pub issuer: String,
    /// Its DNS names.
    pub dns_names: Vec<String>,
}

impl LeafState {
    /// Reads a certificate Secret.
    pub fn from_secret(secret: Option<&Secret>) -> Stored<LeafState> {
        let Some(secret) = secret else {
            return Stored::Missing;
        };
        let read = || -> Result<LeafState, String> {
            Ok(LeafState {
                cert_pem: text(secret, TLS_CERT_KEY)?,
                key_pem: text(secret, TLS_KEY_KEY)?,
                ca_bundle: text(secret, CA_CERT_KEY)?,
                not_after: annotation_i64(secret, NOT_AFTER_ANNOTATION)
                    .ok_or(format!("no numeric {NOT_AFTER_ANNOTATION} annotation"))?,
                issuer: annotation(secret, ISSUER_ANNOTATION)
                    .ok_or(format!("no {ISSUER_ANNOTATION} annotation"))?
                    .to_owned(),
                dns_names: annotation(secret, DNS_NAMES_ANNOTATION)
                    .map(|n| n.split(',').filter(|s| !s.is_empty()).map(str::to_owned))
                    .into_iter()
                    .flatten()
                    .collect(),
            })
        };
        match read() {
            Ok(leaf) => Stored::Found(leaf),
            Err(why) => Stored::Unusable(why),
        }
    }

    /// The `kubernetes.io/tls` Secret `name` holding this certificate, owned by the cluster.
    pub fn to_secret(&self, names: &Names, name: &str) -> Secret {
        let mut meta = names.meta(name.to_owned());
        meta.annotations = Some(BTreeMap::from([
            (NOT_AFTER_ANNOTATION.to_owned(), self.not_after.to_string()),
            (ISSUER_ANNOTATION.to_owned(), self.issuer.clone()),
            (DNS_NAMES_ANNOTATION.to_owned(), self.dns_names.join(",")),
        ]));
        let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
        Secret {
            metadata: meta,
            type_: Some(TLS_SECRET_TYPE.to_owned()),
            data: Some(BTreeMap::from([
                (TLS_CERT_KEY.to_owned(), bytes(&self.cert_pem)),
                (TLS_KEY_KEY.to_owned(), bytes(&self.key_pem)),
                (CA_CERT_KEY.to_owned(), bytes(&self.ca_bundle)),
            ])),
            ..Secret::default()
        }
    }
}

/// What a certificate should be: its subject, names and signer.
#[derive(Clone, Copy, Debug)]
pub struct LeafRequest<'a> {
    /// Subject common name.
    pub common_name: &'a str,
    /// DNS names.
    pub dns_names: &'a [String],
    /// What it is for.
    pub usage: Usage,
    /// The CA that signs it.
    pub ca: &'a CaState,
    /// That CA's common name (its Secret's name).
    pub ca_name: &'a str,
}

/// Why a certificate is issued again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueReason {
    /// There was none.
    Missing,
    /// The stored one could not be used (the reason).
    Unusable(String),
    /// It is within its renewal window, or expired.
    Due,
    /// Its CA was renewed since.
    CaChanged,
    /// It does not cover the DNS names wanted now.
    NamesChanged,
}

/// Why the stored certificate must be issued again, or `None` when it may stay.
pub fn reissue_reason(
    stored: &Stored<LeafState>,
    request: &LeafRequest<'_>,
    lifetimes: Lifetimes,
    now: SystemTime,
) -> Option<IssueReason> {
    let leaf = match stored {
        Stored::Missing => return Some(IssueReason::Missing),
        Stored::Unusable(why) => return Some(IssueReason::Unusable(why.clone())),
        Stored::Found(leaf) => leaf,
    };
    if pki::due_for_renewal(leaf.not_after, lifetimes.renew_before, now) {
        Some(IssueReason::Due)
    } else if leaf.issuer != request.ca.fingerprint() {
        Some(IssueReason::CaChanged)
    } else if leaf.dns_names != request.dns_names {
        Some(IssueReason::NamesChanged)
    } else {
        None
    }
}

/// The certificate Secret's content at `now`: the stored one (with the CA bundle brought up
/// to date), or a new certificate and why it was issued.
pub fn plan_leaf(
    stored: Stored<LeafState>,
    request: &LeafRequest<'_>,
    lifetimes: Lifetimes,
    now: SystemTime,
) -> Result<(LeafState, Option<IssueReason>), PkiError> {
    let reason = reissue_reason(&stored, request, lifetimes, now);
    match (stored, reason) {
        (Stored::Found(mut leaf), None) => {
            leaf.ca_bundle = request.ca.bundle();
            Ok((leaf, None))
        }
        (_, reason) => {
            // Never valid past its CA: a certificate outliving its signer fails anyway.
            let left = u64::try_from(request.ca.not_after.saturating_sub(unix(now))).unwrap_or(0);
            let validity = lifetimes.validity.min(Duration::from_secs(left.max(1)));
            let issued = pki::issue(
                &request.ca.signer(request.ca_name),
                request.common_name,
                request.dns_names,
                request.usage,
                validity,
                now,
            )?;
            let leaf = LeafState {
                cert_pem: issued.cert_pem,
                key_pem: issued.key_pem,
                ca_bundle: request.ca.bundle(),
                not_after: issued.not_after,
                issuer: request.ca.fingerprint(),
                dns_names: request.dns_names.to_vec(),
            };
            Ok((leaf, reason.or(Some(IssueReason::Missing))))
        }
    }
}

/// The PEM certificates in `text`, each with its BEGIN and END lines and a final newline.
pub fn pem_certificates(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[begin..].find(END) else {
            break;
        };
        let stop = begin + end + END.len();
        out.push(format!("{}\n", &rest[begin..stop]));
        rest = &rest[stop..];
    }
    out
}

fn text(secret: &Secret, key: &str) -> Result<String, String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| format!("no {key}"))?;
    String::from_utf8(bytes.0.clone()).map_err(|_| format!("{key} is not PEM text"))
}

fn annotation<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn annotation_i64(secret: &Secret, key: &str) -> Option<i64> {
    annotation(secret, key).and_then(|v| v.trim().parse().ok())
}

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::tests::verify_pem;

    const T0: u64 = 1_800_000_000;

    fn at(days: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + days * DAY)
    }

    fn lifetimes() -> Lifetimes {
        Lifetimes::of(&CertificateAuthority::default())
    }

    fn names() -> Names {
        Names {
            cluster: "demo".to_owned(),
            namespace: "ns".to_owned(),
            owner: Default::default(),
        }
    }

    fn ca_at(days: u64) -> CaState {
        match plan_ca(Stored::Missing, "demo-cluster-ca", lifetimes(), at(days)) {
            Ok((ca, Some(CaChange::Created))) => ca,
            other => panic!("expected a new CA, got {other:?}"),
        }
    }

    fn request<'a>(ca: &'a CaState, dns: &'a [String]) -> LeafRequest<'a> {
        LeafRequest {
            common_name: "demo-broker",
            dns_names: dns,
            usage: Usage::Broker,
            ca,
            ca_name: "demo-cluster-ca",
        }
    }

    /// The Secret round trip: what `to_secret` writes, `from_secret` reads back.
    fn through_secret_ca(ca: &CaState) -> Stored<CaState> {
        CaState::from_secret(Some(&ca.to_secret(&names(), "demo-cluster-ca")))
    }

    #[test]
    fn a_missing_ca_is_created_and_a_valid_one_kept() {
        let ca = ca_at(0);
        assert_eq!(ca.not_after, (T0 + 365 * DAY) as i64);
        assert_eq!(through_secret_ca(&ca), Stored::Found(ca.clone()));
        let (kept, change) = plan_ca(
            through_secret_ca(&ca),
            "demo-cluster-ca",
            lifetimes(),
            at(300),
        )
        .unwrap();
        assert_eq!(change, None);
        assert_eq!(kept, ca);
    }

    #[test]
    fn a_due_ca_is_renewed_and_its_predecessor_trusted_until_it_expires() {
        let old = ca_at(0);
        let (new, change) = plan_ca(
            through_secret_ca(&old),
            "demo-cluster-ca",
            lifetimes(),
            at(336),
        )
        .unwrap();
        assert_eq!(change, Some(CaChange::Renewed));
        assert_ne!(new.key_pem, old.key_pem);
        assert_ne!(new.fingerprint(), old.fingerprint());
        let previous = new.previous.clone().unwrap();
        assert_eq!(previous.cert_pem, old.cert_pem);
        assert_eq!(
            pem_certificates(&new.bundle()),
            [new.cert_pem.clone(), old.cert_pem]
        );
        assert_eq!(through_secret_ca(&new), Stored::Found(new.clone()));
        // Still kept the day before the old one ends; dropped once it has.
        let (same, change) = plan_ca(
            through_secret_ca(&new),
            "demo-cluster-ca",
            lifetimes(),
            at(364),
        )
        .unwrap();
        assert_eq!((same.previous.is_some(), change), (true, None));
        let (dropped, change) = plan_ca(
            through_secret_ca(&new),
            "demo-cluster-ca",
            lifetimes(),
            at(366),
        )
        .unwrap();
        assert_eq!(change, Some(CaChange::PreviousExpired));
        assert_eq!(dropped.previous, None);
        assert_eq!(dropped.key_pem, new.key_pem);
    }

    #[test]
    fn an_unusable_ca_secret_is_replaced_with_the_reason() {
        let mut secret = ca_at(0).to_secret(&names(), "demo-cluster-ca");
        secret.metadata.annotations = None;
        let stored = CaState::from_secret(Some(&secret));
        assert!(matches!(&stored, Stored::Unusable(why) if why.contains(NOT_AFTER_ANNOTATION)));
        let (_, change) = plan_ca(stored, "demo-cluster-ca", lifetimes(), at(1)).unwrap();
        assert!(matches!(change, Some(CaChange::Replaced(_))));
    }

    #[test]
    fn the_broker_certificate_is_issued_again_when_missing_due_ca_changed_or_names_changed() {
        let ca = ca_at(0);
        let dns = vec!["*.demo-brokers.ns.svc".to_owned()];
        let req = request(&ca, &dns);
        let (leaf, reason) = plan_leaf(Stored::Missing, &req, lifetimes(), at(0)).unwrap();
        assert_eq!(reason, Some(IssueReason::Missing));
        verify_pem(&ca.cert_pem, &leaf.cert_pem, at(1)).unwrap();
        assert_eq!(leaf.ca_bundle, ca.cert_pem);
        let secret = leaf.to_secret(&names(), "demo-broker-certs");
        assert_eq!(secret.type_.as_deref(), Some(TLS_SECRET_TYPE));
        let stored = LeafState::from_secret(Some(&secret));
        assert_eq!(stored, Stored::Found(leaf.clone()));

        // Valid and as wanted: kept.
        assert_eq!(reissue_reason(&stored, &req, lifetimes(), at(300)), None);
        // Inside the renewal window.
        assert_eq!(
            reissue_reason(&stored, &req, lifetimes(), at(336)),
            Some(IssueReason::Due)
        );
        // Another CA.
        let other = ca_at(1);
        assert_eq!(
            reissue_reason(&stored, &request(&other, &dns), lifetimes(), at(2)),
            Some(IssueReason::CaChanged)
        );
        // Other names (a new namespace or Service).
        let more = vec![dns[0].clone(), "demo-bootstrap".to_owned()];
        assert_eq!(
            reissue_reason(&stored, &request(&ca, &more), lifetimes(), at(2)),
            Some(IssueReason::NamesChanged)
        );
        let (renamed, _) = plan_leaf(stored, &request(&ca, &more), lifetimes(), at(2)).unwrap();
        assert_eq!(renamed.dns_names, more);
        assert_ne!(renamed.cert_pem, leaf.cert_pem);
    }

    #[test]
    fn a_kept_certificate_follows_the_ca_bundle_and_a_new_one_never_outlives_its_ca() {
        let old = ca_at(0);
        let dns = vec!["*.demo-brokers.ns.svc".to_owned()];
        let (leaf, _) =
            plan_leaf(Stored::Missing, &request(&old, &dns), lifetimes(), at(0)).unwrap();
        // Issued 100 days before the CA ends: valid 100 days, not 365.
        let (late, _) =
            plan_leaf(Stored::Missing, &request(&old, &dns), lifetimes(), at(265)).unwrap();
        assert_eq!(late.not_after, old.not_after);
        // The CA renewed: re-issued by the new CA, which the bundle lists first.
        let (new_ca, _) = plan_ca(
            Stored::Found(old.clone()),
            "demo-cluster-ca",
            lifetimes(),
            at(336),
        )
        .unwrap();
        let (reissued, reason) = plan_leaf(
            Stored::Found(leaf.clone()),
            &request(&new_ca, &dns),
            lifetimes(),
            at(336),
        )
        .unwrap();
        // Capped at its CA's end, the certificate comes due with it.
        assert_eq!(reason, Some(IssueReason::Due));
        verify_pem(&new_ca.cert_pem, &reissued.cert_pem, at(337)).unwrap();
        assert!(verify_pem(&old.cert_pem, &reissued.cert_pem, at(337)).is_err());
        assert_eq!(pem_certificates(&reissued.ca_bundle).len(), 2);
        // Kept certificates get the CA bundle as it is now.
        let (kept, reason) = plan_leaf(
            Stored::Found(reissued.clone()),
            &request(&new_ca, &dns),
            lifetimes(),
            at(340),
        )
        .unwrap();
        assert_eq!(reason, None);
        assert_eq!(kept.cert_pem, reissued.cert_pem);
    }

    #[test]
    fn pem_bundles_split_into_certificates() {
        let a = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
        let b = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----";
        assert_eq!(
            pem_certificates(&format!("{a}{b}\n")),
            [a, &format!("{b}\n")]
        );
        assert!(pem_certificates("garbage").is_empty());
    }
}
