//! The campaign: the regression seeds, then rounds of mutated frames with checks between them,
//! then the final read-back. Every step enters a bounded phase the watchdog enforces, and
//! every check runs under [`unwind::catch`]: a panicking check is a reported failure that ends
//! the run, as is a broker found dead.

use std::time::{Duration, Instant};

use super::control::Control;
use super::fault::Fault;
use super::rounds::{send_round, Plan};
use super::send::{case_bound, send_case};
use super::setup::{ensure_topics, Setup};
use super::{harness_panic, lock, record_failures, Options, Progress, Shared};
use crate::broker::Broker;
use crate::checks::{health, readback, CaseRef, Failure};
use crate::mutate::bomb::Arsenal;
use crate::mutate::{Case, Mutator};
use crate::report::CutRound;
use crate::{unwind, Error, Result};

/// How long building the compression bombs may take (about 2 s on a laptop).
const BOMB_BOUND: Duration = Duration::from_secs(120);
/// The least a regression seed's answer is waited for (some take the broker a while to refuse).
const SEED_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the campaign, recording how far it got in `progress` as it goes (so a panic that ends
/// it early still leaves a report of what was done).
pub(super) fn campaign(
    broker: &mut Broker,
    opts: &Options,
    shared: &Shared,
    control: &Control,
    progress: &mut Progress,
) -> Result<()> {
    let began = Instant::now();
    control.enter("setup", opts.check_bound);
    let setup = Setup::prepare(&broker.bootstrap, opts)?;
    progress.corpus = (setup.wide.len(), setup.seeds.len());
    progress.coverage = setup.coverage();
    if !seeds(&setup, opts, shared, control) || !checks(broker, &setup, opts, shared, control, 0) {
        return Ok(());
    }
    eprintln!(
        "tributary-fuzz: regression seeds sent and checked in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    control.enter("building compression bombs", BOMB_BOUND);
    let arsenal = if opts.bombs {
        let building = Instant::now();
        let arsenal = Arsenal::build().map_err(Error::io("building compression bombs"))?;
        eprintln!(
            "tributary-fuzz: compression bombs built in {:.1} s",
            building.elapsed().as_secs_f64()
        );
        arsenal
    } else {
        Arsenal::default()
    };
    let mutator = Mutator {
        seed: opts.seed,
        corpus: &setup.wide,
        served: &setup.served,
        vocab: &setup.vocab,
        arsenal: opts.bombs.then_some(&arsenal),
    };
    let mut plan = Plan::new(opts.budget);
    let mut number = 1;
    while let Some(round) = plan.round(number) {
        number += 1;
        progress.rounds = round.number;
        eprintln!(
            "tributary-fuzz: round {} starts ({:.1} s in)",
            round.number,
            began.elapsed().as_secs_f64()
        );
        control.enter(
            format!("round {}: sending frames", round.number),
            round.bound + case_bound(opts.response_timeout),
        );
        let sent = send_round(&round, &mutator, opts, shared, control);
        plan.finished(&round, sent);
        progress.mutated += sent;
        if control.aborted() {
            return Ok(());
        }
        if let (Some(planned), Some(_)) = (round.planned(), opts.budget.fixed()) {
            if sent < planned && !shared.broker_gone() {
                eprintln!(
                    "tributary-fuzz: WARNING: round {} reached its {} s safety bound after {sent} of {planned} frames",
                    round.number,
                    round.bound.as_secs()
                );
                progress.cut.push(CutRound {
                    round: round.number,
                    sent,
                    planned,
                    bound: round.bound,
                });
            }
        }
        let checking = Instant::now();
        if !checks(broker, &setup, opts, shared, control, round.number) {
            return Ok(());
        }
        eprintln!(
            "tributary-fuzz: round {} done, {} frames sent ({} in all); checks took {:.1} s",
            round.number,
            sent,
            progress.mutated,
            checking.elapsed().as_secs_f64()
        );
        if round.number % opts.readback_every.max(1) == 0
            && plan.round(number).is_some()
            && !readback_pass(broker, opts, shared, control, progress)?
        {
            return Ok(());
        }
    }
    let reading = Instant::now();
    if readback_pass(broker, opts, shared, control, progress)? {
        checks(broker, &setup, opts, shared, control, progress.rounds + 1);
    }
    eprintln!(
        "tributary-fuzz: final read-back and checks took {:.1} s",
        reading.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Round 0: the regression seeds, unmutated, one by one on fresh connections. False when the
/// run must end.
fn seeds(setup: &Setup, opts: &Options, shared: &Shared, control: &Control) -> bool {
    let timeout = opts.response_timeout.max(SEED_TIMEOUT);
    let bound = case_bound(timeout).saturating_mul(setup.seeds.len().max(1) as u32);
    control.enter("round 0: sending the regression seeds", bound);
    for (n, s) in setup.seeds.iter().enumerate() {
        if shared.broker_gone() {
            break; // the checks report the death and the seed that caused it
        }
        let case = Case {
            index: u64::MAX - n as u64,
            frame: s.frame.clone(),
            origin: format!("regression seed {}", s.source),
            mutation: "none".into(),
            fresh_connection: true,
        };
        let sent = unwind::catch(|| send_case(&case, &mut None, timeout, opts, shared));
        if let Err(message) = sent {
            let place = format!("sending regression seed {}", s.source);
            let caseref = Some(CaseRef::of(opts.seed, &case));
            harness_panic(
                shared,
                control,
                place,
                0,
                message,
                Some(case.index),
                caseref,
            );
            return false;
        }
    }
    !control.aborted()
}

/// The checks between rounds (after `round`), bounded by the watchdog and panic-proof. False
/// when the run must end: the broker is gone, or the harness panicked or was stopped.
fn checks(
    broker: &mut Broker,
    setup: &Setup,
    opts: &Options,
    shared: &Shared,
    control: &Control,
    round: u64,
) -> bool {
    control.enter(format!("checks after round {round}"), opts.check_bound);
    let checked = unwind::catch(|| {
        Fault::in_checks(opts.fault, round);
        if round > 0 {
            // Fuzzed DeleteTopics may have removed some; the next round needs them.
            ensure_topics(&broker.bootstrap, &setup.topics).ok();
        }
        between_rounds(broker, opts, shared, round)
    });
    match checked {
        Ok(dead) => !dead && !control.aborted(),
        Err(message) => {
            let place = format!("the checks after round {round}");
            harness_panic(shared, control, place, round, message, None, None);
            false
        }
    }
}

/// Liveness, panics, resources and the kcat round trip; true when the broker is gone.
fn between_rounds(broker: &mut Broker, opts: &Options, shared: &Shared, round: u64) -> bool {
    let recent: Vec<CaseRef> = lock(&shared.recent).iter().cloned().collect();
    let cut_off = lock(&shared.cut_off).clone();
    let mut found = health::liveness(broker, &recent, &cut_off);
    let dead = found.iter().any(|f| matches!(f, Failure::Died { .. }));
    let peaks = *lock(&shared.peaks);
    found.extend(health::resources(
        &peaks,
        &opts.ceilings,
        &mut lock(&shared.reported),
    ));
    if !dead {
        let marker = format!("fz-marker-{}-{round}", opts.seed);
        found.extend(health::round_trip(&opts.kcat, &broker.bootstrap, &marker));
    }
    record_failures(shared, found);
    dead
}

/// Reads every acknowledged partition back. Ok(false) when the run must end (the read-back
/// panicked or the run was stopped).
fn readback_pass(
    broker: &Broker,
    opts: &Options,
    shared: &Shared,
    control: &Control,
    progress: &mut Progress,
) -> Result<bool> {
    let round = progress.rounds;
    control.enter(format!("read-back after round {round}"), opts.check_bound);
    let read = unwind::catch(|| {
        let ledger = lock(&shared.ledger);
        let found = readback::check_all(&broker.bootstrap, &ledger, &opts.limits, &opts.kcat)?;
        let partitions = ledger.touched().len();
        drop(ledger);
        let found = found.into_iter().map(|f| f.in_round(round, opts.seed));
        record_failures(shared, found.collect());
        Ok::<_, Error>(partitions)
    });
    match read {
        Ok(partitions) => {
            progress.readbacks = (progress.readbacks.0 + 1, partitions?);
            Ok(!control.aborted())
        }
        Err(message) => {
            let place = format!("the read-back after round {round}");
            harness_panic(shared, control, place, round, message, None, None);
            Ok(false)
        }
    }
}
