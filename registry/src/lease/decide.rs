//! The registry's side of the election as pure functions of what this instance observed and
//! when (its own monotonic clock, passed in), so that every rule is tested without a clock or
//! an API server: the timings its fencing argument needs ([`Timings`]), what it knows of its
//! term ([`Standing`]) and what role that leaves it in ([`role`]). What to do with the Lease
//! at each look, and when a held one has expired, are the shared elector's
//! ([`tributary_crds::lease`]).

use std::time::{Duration, Instant};

use crate::elector::Role;

/// The election's timings. Only the lease duration and renew interval are chosen; the rest
/// are derived so that the fencing argument holds for any choice that passes [`Timings::new`].
///
/// The argument: a writer's right to write ends at `sent + renew_deadline`, `sent` being when
/// it sent its last successful renewal; it starts a write only while `now + produce_timeout`
/// is before that, and its producer gives every record up after `produce_timeout`. A follower
/// takes over only after seeing the Lease unchanged for a whole `lease_duration`, and the
/// renewal it last saw was stored at or after `sent`. So every record of the old writer was
/// produced or given up `lease_duration - renew_deadline` before the takeover, and the new
/// writer then reads the topic to its end before it allocates an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    lease_duration: Duration,
    renew_interval: Duration,
}

/// Timings that would break the fencing argument or stop writes at every late renewal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "renew interval {renew_interval:?} is too long for lease duration {lease_duration:?}: two \
     renewals must fit in the write window (2/3 of the lease duration minus 1/5 of it), so \
     renew at most every {max:?}"
)]
pub struct TimingsError {
    /// The lease duration asked for.
    pub lease_duration: Duration,
    /// The renew interval asked for.
    pub renew_interval: Duration,
    /// The longest renew interval that lease duration allows.
    pub max: Duration,
}

impl Timings {
    /// Timings from the lease duration (written into the Lease, what followers wait) and the
    /// renew interval. A renewal may fail once without stopping writes.
    pub fn new(lease_duration: Duration, renew_interval: Duration) -> Result<Self, TimingsError> {
        let t = Timings {
            lease_duration,
            renew_interval,
        };
        let window = t.renew_deadline().saturating_sub(t.produce_timeout());
        let max = window / 2;
        if renew_interval.is_zero() || renew_interval > max {
            return Err(TimingsError {
                lease_duration,
                renew_interval,
                max,
            });
        }
        Ok(t)
    }

    /// How long a Lease must be seen unchanged before another instance takes it.
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// How often the holder renews (and followers look).
    pub fn renew_interval(&self) -> Duration {
        self.renew_interval
    }

    /// How long after sending its last successful renewal the holder may still write: 2/3 of
    /// the lease duration, leaving 1/3 of it between the end of the old writer's writes and
    /// the earliest takeover.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }

    /// How long the writer's producer tries a record before giving it up (librdkafka's
    /// `message.timeout.ms`): 1/5 of the lease duration. A write starts only if it fits
    /// before the renew deadline.
    pub fn produce_timeout(&self) -> Duration {
        self.lease_duration / 5
    }
}

/// What this instance knows of the election, kept by the elector's loop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// Raised at every acquisition, so a read-to-end started for an earlier term does not
    /// count for this one.
    pub term: u64,
    /// This process holds the Lease.
    pub holding: bool,
    /// Until when this instance may write: the renew deadline after its last successful
    /// renewal was sent. Never moved back within a term.
    pub valid_until: Option<Instant>,
    /// The term whose read of `_schemas` to its end completed.
    pub caught_up: Option<u64>,
    /// The holder last seen in the Lease.
    pub holder: Option<String>,
}

impl Standing {
    /// This instance took the Lease with a renewal sent at `sent`: a new term, not yet caught
    /// up.
    pub fn acquired(&mut self, me: &str, sent: Instant, timings: &Timings) {
        self.term += 1;
        self.holding = true;
        self.valid_until = sent.checked_add(timings.renew_deadline());
        self.holder = Some(me.to_owned());
    }

    /// A renewal sent at `sent` succeeded: writes may go on until its deadline.
    pub fn renewed(&mut self, sent: Instant, timings: &Timings) {
        let until = sent.checked_add(timings.renew_deadline());
        if until > self.valid_until {
            self.valid_until = until;
        }
    }

    /// A newer writer fenced this instance's producer: its term is over, whatever the Lease
    /// says. It writes nothing more and follows until it wins the Lease again (a new term,
    /// with a fresh producer). Who holds the Lease now is read at the next tick.
    pub fn deposed(&mut self) {
        self.following(None);
        self.caught_up = None;
    }

    /// This instance does not (or no longer) hold the Lease; `holder` does.
    pub fn following(&mut self, holder: Option<String>) {
        self.holding = false;
        self.valid_until = None;
        self.holder = holder;
    }
}

/// Whether a write started at `now` finishes before the right to write ends.
pub fn may_write(now: Instant, valid_until: Option<Instant>, produce_timeout: Duration) -> bool {
    valid_until.is_some_and(|until| now.checked_add(produce_timeout).is_some_and(|t| t < until))
}

/// The role `standing` gives this instance (`me`, its advertised URL) at `now`.
pub fn role(me: &str, standing: &Standing, now: Instant, timings: &Timings) -> Role {
    if standing.holding {
        return if standing.caught_up != Some(standing.term) {
            Role::Unavailable {
                reason: "this instance has just become the writer and is reading the schemas \
                         topic to its end; retry shortly"
                    .to_owned(),
            }
        } else if may_write(now, standing.valid_until, timings.produce_timeout()) {
            Role::Writer
        } else {
            Role::Unavailable {
                reason: "this instance is the writer but could not renew its Lease in time, so \
                         it stopped writing until it renews or another instance takes over; \
                         retry shortly"
                    .to_owned(),
            }
        };
    }
    match standing.holder.as_deref() {
        Some(h) if h == me => Role::Unavailable {
            reason: format!(
                "the writer Lease names this instance's URL {me} from an earlier run; waiting \
                 for it to expire before taking over; retry shortly"
            ),
        },
        Some(h) => Role::Follower {
            writer: h.to_owned(),
        },
        None => Role::Unavailable {
            reason: "no instance holds the writer Lease yet; retry shortly".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use tributary_crds::lease::{decide, Action};

    use super::*;

    const ME: &str = "http://10.0.0.1:8081";
    const OTHER: &str = "http://10.0.0.2:8081";

    fn timings() -> Timings {
        match Timings::new(Duration::from_secs(15), Duration::from_secs(2)) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn held_by(h: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(h.to_owned()),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn writes_stop_before_the_renew_deadline_by_the_produce_timeout() {
        let t = timings();
        assert_eq!(t.renew_deadline(), Duration::from_secs(10));
        assert_eq!(t.produce_timeout(), Duration::from_secs(3));
        let sent = Instant::now();
        let mut s = Standing::default();
        s.acquired(ME, sent, &t);
        // Not a writer until the read to the end of the topic finished for this term.
        assert!(matches!(role(ME, &s, sent, &t), Role::Unavailable { .. }));
        s.caught_up = Some(s.term);
        assert_eq!(role(ME, &s, sent, &t), Role::Writer);
        let last_start = sent + Duration::from_secs(7) - Duration::from_millis(1);
        assert_eq!(role(ME, &s, last_start, &t), Role::Writer);
        assert!(matches!(
            role(ME, &s, sent + Duration::from_secs(7), &t),
            Role::Unavailable { .. }
        ));
        // A renewal moves the deadline on; an older one never moves it back.
        s.renewed(sent + Duration::from_secs(6), &t);
        assert_eq!(
            role(ME, &s, sent + Duration::from_secs(12), &t),
            Role::Writer
        );
        s.renewed(sent + Duration::from_secs(1), &t);
        assert_eq!(
            role(ME, &s, sent + Duration::from_secs(12), &t),
            Role::Writer
        );
    }

    #[test]
    fn a_new_term_needs_its_own_read_to_the_end() {
        let t = timings();
        let now = Instant::now();
        let mut s = Standing::default();
        s.acquired(ME, now, &t);
        s.caught_up = Some(s.term);
        s.following(Some(OTHER.into()));
        assert_eq!(
            role(ME, &s, now, &t),
            Role::Follower {
                writer: OTHER.into()
            }
        );
        s.acquired(ME, now, &t);
        assert!(matches!(role(ME, &s, now, &t), Role::Unavailable { .. }));
    }

    #[test]
    fn a_fenced_writer_stops_at_once_and_waits_out_its_own_lease_for_a_new_term() {
        let t = timings();
        let now = Instant::now();
        let mut s = Standing::default();
        s.acquired(ME, now, &t);
        s.caught_up = Some(s.term);
        assert_eq!(role(ME, &s, now, &t), Role::Writer);
        s.deposed();
        assert!(matches!(role(ME, &s, now, &t), Role::Unavailable { .. }));
        // The Lease still naming this instance is not renewed but waited out like a stranger's.
        let mine = held_by(ME);
        assert_eq!(
            decide(ME, s.holding, Some(&mine), false),
            Action::Follow { holder: ME.into() }
        );
        assert_eq!(decide(ME, s.holding, Some(&mine), true), Action::TakeOver);
        let term = s.term;
        s.acquired(ME, now, &t);
        assert_eq!(s.term, term + 1);
        assert!(matches!(role(ME, &s, now, &t), Role::Unavailable { .. }));
    }

    #[test]
    fn the_old_writer_stops_well_before_anyone_may_take_over() {
        // Worst case: the follower saw the last renewal the instant it was sent.
        let t = timings();
        let sent = Instant::now();
        let last_write_done = sent + t.renew_deadline();
        let earliest_takeover = sent + t.lease_duration();
        assert!(earliest_takeover.duration_since(last_write_done) >= Duration::from_secs(5));
    }

    #[test]
    fn timings_that_break_the_window_are_refused() {
        assert!(Timings::new(Duration::from_secs(15), Duration::from_secs(5)).is_err());
        assert!(Timings::new(Duration::from_secs(15), Duration::ZERO).is_err());
        assert!(Timings::new(Duration::from_secs(5), Duration::from_secs(1)).is_ok());
        assert_eq!(
            Timings::new(Duration::from_millis(4500), Duration::from_millis(500))
                .map(|t| tributary_crds::lease::duration_secs(t.lease_duration())),
            Ok(5)
        );
    }

    #[test]
    fn without_a_known_holder_writes_are_unavailable() {
        let s = Standing::default();
        assert!(matches!(
            role(ME, &s, Instant::now(), &timings()),
            Role::Unavailable { .. }
        ));
    }
}
