//! Sending one case: on a fresh or the worker's reused connection, waiting for the answer,
//! and recording its outcome, and for a Produce request what it acknowledged.

use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::{lock, record_failures, Options, Shared, RECENT};
use crate::checks::ledger::sent_batches;
use crate::checks::CaseRef;
use crate::mutate::Case;
use crate::report::{error_codes, Outcome};
use crate::wire;

/// Sends one case and records its outcome (and, for Produce, its acknowledgements).
pub(super) fn send_case(
    case: &Case,
    conn: &mut Option<TcpStream>,
    timeout: Duration,
    opts: &Options,
    shared: &Shared,
) {
    let prefix = wire::prefix(&case.frame);
    let key = prefix.map_or(-1, |p| p.api_key);
    let caseref = CaseRef::of(opts.seed, case);
    {
        let mut recent = lock(&shared.recent);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(caseref.clone());
    }
    let sent_at = Instant::now();
    let outcome = exchange(case, conn, timeout, opts, shared, &caseref);
    if matches!(
        outcome,
        Outcome::Closed | Outcome::TimedOut | Outcome::SendFailed
    ) {
        shared.broke(&caseref);
    }
    let elapsed_ms = sent_at.elapsed().as_millis() as u64;
    let mut tallies = lock(&shared.tallies);
    let tally = tallies.entry(key).or_default();
    tally.add(&outcome);
    tally.total_ms += elapsed_ms;
    if outcome == Outcome::Undecodable && tally.first_undecodable.is_none() {
        tally.first_undecodable = Some((
            case.index,
            wire::hex(&case.frame[..case.frame.len().min(512)]),
        ));
    }
}

fn exchange(
    case: &Case,
    reused: &mut Option<TcpStream>,
    timeout: Duration,
    opts: &Options,
    shared: &Shared,
    caseref: &CaseRef,
) -> Outcome {
    let declared = case
        .frame
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64);
    let honest = declared == Some(case.frame.len() as i64 - 4);
    let mut fresh = None;
    let slot = if case.fresh_connection || !honest {
        &mut fresh
    } else {
        reused
    };
    if slot.is_none() {
        let Some(stream) = connect(&shared.bootstrap, timeout) else {
            return Outcome::SendFailed;
        };
        *slot = Some(stream);
    }
    let Some(stream) = slot.as_mut() else {
        return Outcome::SendFailed;
    };
    if wire::send(stream, &case.frame).is_err() {
        *slot = None;
        return Outcome::SendFailed;
    }
    let decoded = wire::decode_request(&case.frame).filter(|_| honest);
    if let Some((_, _, RequestKind::Produce(r))) = &decoded {
        if r.acks == 0 {
            return Outcome::NoResponseDue;
        }
    }
    if !honest {
        // The broker waits for bytes that never come (or reads our tail as a new frame):
        // end our side so it sees EOF instead of waiting out our timeout.
        let _ = stream.shutdown(Shutdown::Write);
    }
    let Some(prefix) = wire::prefix(&case.frame) else {
        // Too short for a header: nothing can answer it; the broker should close.
        return match wire::read_frame(stream, wire::MAX_RESPONSE_BYTES) {
            Ok(_) => Outcome::Undecodable,
            Err(_) => Outcome::Closed,
        };
    };
    let payload = match wire::read_frame(stream, wire::MAX_RESPONSE_BYTES) {
        Ok(p) => p,
        Err(e) => {
            *slot = None;
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Outcome::TimedOut,
                _ => Outcome::Closed,
            };
        }
    };
    let Ok(api) = ApiKey::try_from(prefix.api_key) else {
        return Outcome::Undecodable;
    };
    // An unserved ApiVersions version is answered at v0 (KIP-511).
    let decodes =
        |v: i16| wire::decode_response(api, v, &payload).is_some_and(|r| r.body.is_some());
    let version = if api == ApiKey::ApiVersions && !decodes(prefix.api_version) {
        0
    } else {
        prefix.api_version
    };
    let Some(response) = wire::decode_response(api, version, &payload) else {
        return Outcome::Undecodable;
    };
    let correlation_ok = response.correlation_id == prefix.correlation_id;
    let Some(body) = response.body else {
        return Outcome::Undecodable;
    };
    if let (Some(_), ResponseKind::Produce(r)) = (&decoded, &body) {
        let sent = sent_batches(&case.frame, &opts.limits);
        let found = lock(&shared.ledger).record(caseref, &sent, r);
        record_failures(shared, found);
    }
    Outcome::Answered {
        codes: error_codes(&body),
        correlation_ok,
    }
}

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long writing a frame may block (a broker that stops reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one case can keep a worker when each answer is waited for `response_timeout`:
/// connecting, writing and reading are each bounded. (A read timeout restarts with every byte,
/// so a broker trickling an answer could take longer; the watchdog's margin is for that.)
pub(super) fn case_bound(response_timeout: Duration) -> Duration {
    CONNECT_TIMEOUT + WRITE_TIMEOUT + response_timeout
}

/// A connection whose every step is bounded: a broker that stops reading or answering costs a
/// worker seconds, not the rest of its round.
fn connect(addr: &str, timeout: Duration) -> Option<TcpStream> {
    let addr = addr.parse().ok()?;
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(WRITE_TIMEOUT)).ok()?;
    let _ = s.set_nodelay(true);
    Some(s)
}
