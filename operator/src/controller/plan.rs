//! What one controller pass does to one partition, in order of urgency:
//! 1. the failover rules ([`decide`]): a leader that is dead, shutting down, restarted or no
//!    longer a replica is replaced, and the ISR drops members that cannot be in sync, except
//!    those recorded under an incarnation newer than this controller has seen of their
//!    broker (its Lease watch lags the leader that admitted them; they are judged once it
//!    catches up), so a returning follower is not dropped and re-admitted in a loop;
//! 2. otherwise the completion of a reassignment whose target replicas are all in sync
//!    ([`complete`]): a status write, then a spec write;
//! 3. otherwise an election request ([`ELECT_LEADER_ANNOTATION`], Kafka's ElectLeaders), which
//!    is answered (its annotation removed) whether or not it could be satisfied;
//! 4. otherwise auto leader rebalancing, when this pass's imbalance check picked the partition.
//!
//! One change per write: a request or a rebalance waits for a pass in which failover has
//! nothing to do, so each write raises each epoch at most once and says one thing. Pure; the
//! writer applies the plan and, after a conflict, plans again from the fresh object.

use tributary_crds::{
    ElectionType, IsrEntry, KafkaPartitionSpec, KafkaPartitionStatus, ELECT_LEADER_ANNOTATION,
};

use super::election::{decide, Change, Decision};
use super::liveness::{BrokerView, Incarnations};
use super::preferred::{elect_preferred, elect_unclean, NotElected};
use super::reassign::complete;

/// Everything the plan for one partition depends on.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The assignment (first = preferred leader).
    pub replicas: &'a [i32],
    /// The recorded leadership, if any.
    pub status: Option<&'a KafkaPartitionStatus>,
    /// The live brokers of the partition's cluster.
    pub brokers: &'a BrokerView,
    /// The incarnation each registered broker of the cluster last announced, live or not.
    pub known: &'a Incarnations,
    /// `unclean.leader.election.enable` for the partition's topic.
    pub unclean: bool,
    /// This pass's imbalance check found the partition's preferred broker over the threshold.
    pub rebalance: bool,
    /// The election request annotation's value, if the partition carries one.
    pub request: Option<&'a str>,
    /// The partition's spec while a reassignment is in progress (its `replicas` are
    /// [`Inputs::replicas`]); `None` otherwise.
    pub reassigning: Option<&'a KafkaPartitionSpec>,
}

/// The writes one partition needs; empty when it should stay as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Status to write first.
    pub decision: Option<Decision>,
    /// Election request to answer (its annotation removed) after the status write.
    pub answer: Option<Answer>,
    /// `spec.replicas` completing a reassignment (both lists cleared), written after the
    /// status write.
    pub replicas: Option<Vec<i32>>,
}

impl Plan {
    /// Whether nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.decision.is_none() && self.answer.is_none() && self.replicas.is_none()
    }

    /// Whether the plan changes leadership (such writes go first: they end unavailability).
    pub fn is_election(&self) -> bool {
        self.decision
            .as_ref()
            .is_some_and(|d| d.change.is_election())
    }
}

/// How an election request is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The annotation value as read.
    pub request: String,
    /// What became of it.
    pub outcome: RequestOutcome,
}

/// What became of an election request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The plan's status write performs the election asked for.
    Elected(ElectionType),
    /// The election was not held, and why.
    NotElected(ElectionType, NotElected),
    /// The value names no election.
    Invalid,
}

impl RequestOutcome {
    /// Metric labels: the election type (or `invalid`) and the result.
    pub fn labels(&self) -> (&'static str, &'static str) {
        match self {
            RequestOutcome::Elected(t) => (t.as_str(), "elected"),
            RequestOutcome::NotElected(t, NotElected::NotNeeded(_)) => (t.as_str(), "not_needed"),
            RequestOutcome::NotElected(t, _) => (t.as_str(), "not_possible"),
            RequestOutcome::Invalid => ("invalid", "invalid"),
        }
    }
}

impl Answer {
    /// The answer as reported, once this write already made `written`: after a conflict the
    /// fresh object shows the election done, which the fresh plan calls "not needed"; it was
    /// this write that held it.
    pub fn credited(self, written: Option<Change>) -> Answer {
        let outcome = match (self.outcome, written) {
            (RequestOutcome::NotElected(t, NotElected::NotNeeded(_)), Some(change))
                if change == elected_by(t) =>
            {
                RequestOutcome::Elected(t)
            }
            (outcome, _) => outcome,
        };
        Answer { outcome, ..self }
    }

    /// The Event that tells the requester (and `kubectl describe`) the answer: reason, note,
    /// and whether it is a Warning. `status` is the partition's status after the answer.
    pub fn event(&self, status: Option<&KafkaPartitionStatus>) -> (&'static str, String, bool) {
        match &self.outcome {
            RequestOutcome::Elected(t) => {
                let (leader, epoch) = status.map_or((-1, -1), |s| (s.leader, s.leader_epoch));
                (
                    "ElectedOnRequest",
                    format!(
                        "{} election requested: broker {leader} leads at epoch {epoch}",
                        t.as_str()
                    ),
                    *t == ElectionType::Unclean,
                )
            }
            RequestOutcome::NotElected(t, why @ NotElected::NotNeeded(_)) => (
                "ElectionNotNeeded",
                format!("{} election requested: {why}", t.as_str()),
                false,
            ),
            RequestOutcome::NotElected(t, why) => (
                "ElectionNotPossible",
                format!("{} election requested but not held: {why}", t.as_str()),
                true,
            ),
            RequestOutcome::Invalid => (
                "InvalidElectionRequest",
                format!(
                    "{ELECT_LEADER_ANNOTATION}={:?} names no election (use preferred or unclean); request removed",
                    self.request
                ),
                true,
            ),
        }
    }
}

/// The change an election of type `t` writes.
fn elected_by(t: ElectionType) -> Change {
    match t {
        ElectionType::Preferred => Change::PreferredElection,
        ElectionType::Unclean => Change::UncleanElection,
    }
}

/// `decision` with the ISR entries it dropped put back where they were recorded under an
/// incarnation newer than `known` says their broker has: `None` when that leaves an ISR
/// shrink with nothing to do. Only a shrink or a clean election keeps the ISR's members; the
/// other elections start it afresh.
fn keep_unseen(
    mut decision: Decision,
    status: Option<&KafkaPartitionStatus>,
    replicas: &[i32],
    known: &Incarnations,
) -> Option<Decision> {
    let Some(old) = status else {
        return Some(decision);
    };
    if !matches!(decision.change, Change::IsrShrink | Change::CleanElection) {
        return Some(decision);
    }
    let isr = &mut decision.status.isr;
    let unseen = old.isr.iter().filter(|e| {
        replicas.contains(&e.broker_id)
            && known.get(&e.broker_id).is_some_and(|k| e.broker_epoch > *k)
            && !isr.iter().any(|kept| kept.broker_id == e.broker_id)
    });
    let unseen: Vec<IsrEntry> = unseen.copied().collect();
    if unseen.is_empty() {
        return Some(decision);
    }
    isr.extend(unseen);
    let unchanged = decision.change == Change::IsrShrink
        && isr.len() == old.isr.len()
        && old.isr.iter().all(|e| isr.contains(e));
    (!unchanged).then_some(decision)
}

/// Plans one partition (see the module rules).
pub fn plan(i: &Inputs<'_>) -> Plan {
    if let Some(decision) = decide(i.replicas, i.status, i.brokers, i.unclean)
        .and_then(|d| keep_unseen(d, i.status, i.replicas, i.known))
    {
        return Plan {
            decision: Some(decision),
            ..Plan::default()
        };
    }
    if let Some(Ok(done)) = i.reassigning.map(|s| complete(s, i.status, i.brokers)) {
        return Plan {
            decision: done.status,
            answer: None,
            replicas: Some(done.replicas),
        };
    }
    if let Some(request) = i.request {
        let (decision, outcome) = match ElectionType::parse(request) {
            None => (None, RequestOutcome::Invalid),
            Some(t) => {
                let elected = match t {
                    ElectionType::Preferred => elect_preferred(i.replicas, i.status, i.brokers),
                    ElectionType::Unclean => elect_unclean(i.replicas, i.status, i.brokers),
                };
                match elected {
                    Ok(d) => (Some(d), RequestOutcome::Elected(t)),
                    Err(why) => (None, RequestOutcome::NotElected(t, why)),
                }
            }
        };
        return Plan {
            decision,
            answer: Some(Answer {
                request: request.to_owned(),
                outcome,
            }),
            replicas: None,
        };
    }
    Plan {
        decision: i
            .rebalance
            .then(|| elect_preferred(i.replicas, i.status, i.brokers).ok())
            .flatten(),
        ..Plan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::election::Decision;
    use crate::controller::fixtures;

    /// Brokers `ids`, all at incarnation 1.
    fn live(ids: &[i32]) -> BrokerView {
        let brokers: Vec<(i32, i64, bool)> = ids.iter().map(|&id| (id, 1, false)).collect();
        fixtures::live(&brokers)
    }

    /// A status whose ISR members are all at incarnation 1.
    fn st(leader: i32, le: i32, pe: i32, isr: &[i32]) -> KafkaPartitionStatus {
        let isr: Vec<(i32, i64)> = isr.iter().map(|&id| (id, 1)).collect();
        fixtures::st(leader, le, pe, &isr)
    }

    /// `(status written, change, request outcome)` of a plan, for compact expectations.
    type Summary = (
        Option<(KafkaPartitionStatus, Change)>,
        Option<RequestOutcome>,
    );

    fn summary(p: Plan) -> Summary {
        (
            p.decision.map(|d| (d.status, d.change)),
            p.answer.map(|a| a.outcome),
        )
    }

    /// What, the recorded status, the live brokers, whether the imbalance check picked the
    /// partition, the request annotation, and the expected plan.
    type Case = (
        &'static str,
        KafkaPartitionStatus,
        BrokerView,
        bool,
        Option<&'static str>,
        Summary,
    );

    #[test]
    fn failover_first_then_requests_then_rebalancing() {
        use ElectionType::{Preferred, Unclean};
        let replicas = [0, 1, 2];
        let moved = st(1, 4, 7, &[1, 0, 2]);
        let offline = st(-1, 4, 7, &[0]);
        let all = live(&[0, 1, 2]);
        let not_0 = live(&[1, 2]);
        let cases: Vec<Case> = vec![
            (
                "settled, nothing asked",
                moved.clone(),
                all.clone(),
                false,
                None,
                (None, None),
            ),
            (
                "the imbalance check picked it",
                moved.clone(),
                all.clone(),
                true,
                None,
                (
                    Some((st(0, 5, 8, &[1, 0, 2]), Change::PreferredElection)),
                    None,
                ),
            ),
            (
                "picked, but the preferred replica died: the ISR shrinks, no move",
                moved.clone(),
                not_0.clone(),
                true,
                None,
                (Some((st(1, 4, 8, &[1, 2]), Change::IsrShrink)), None),
            ),
            (
                "asked for the preferred leader, regardless of the check",
                moved.clone(),
                all.clone(),
                false,
                Some("preferred"),
                (
                    Some((st(0, 5, 8, &[1, 0, 2]), Change::PreferredElection)),
                    Some(RequestOutcome::Elected(Preferred)),
                ),
            ),
            (
                "asked while failover has work: failover only, the request waits",
                st(2, 4, 7, &[2, 0, 1]),
                live(&[0, 1]),
                false,
                Some("preferred"),
                (Some((st(0, 5, 8, &[0, 1]), Change::CleanElection)), None),
            ),
            (
                "asked, preferred not in sync: answered with why",
                st(1, 4, 7, &[1, 2]),
                all.clone(),
                false,
                Some("preferred"),
                (
                    None,
                    Some(RequestOutcome::NotElected(
                        Preferred,
                        NotElected::PreferredNotInSync(0),
                    )),
                ),
            ),
            (
                "asked, already led by the preferred replica",
                st(0, 4, 7, &[0]),
                all.clone(),
                false,
                Some("preferred"),
                (
                    None,
                    Some(RequestOutcome::NotElected(
                        Preferred,
                        NotElected::NotNeeded("the preferred replica leads"),
                    )),
                ),
            ),
            (
                "unclean asked for an offline partition",
                offline.clone(),
                not_0.clone(),
                false,
                Some("unclean"),
                (
                    Some((st(1, 5, 8, &[1]), Change::UncleanElection)),
                    Some(RequestOutcome::Elected(Unclean)),
                ),
            ),
            (
                "unclean asked, nobody alive",
                offline,
                live(&[]),
                false,
                Some("unclean"),
                (
                    None,
                    Some(RequestOutcome::NotElected(
                        Unclean,
                        NotElected::NoLiveReplica,
                    )),
                ),
            ),
            (
                "unclean asked for a led partition",
                moved.clone(),
                all.clone(),
                false,
                Some("unclean"),
                (
                    None,
                    Some(RequestOutcome::NotElected(
                        Unclean,
                        NotElected::NotNeeded("the partition has a leader"),
                    )),
                ),
            ),
            (
                "a value that names no election",
                moved,
                all,
                true,
                Some("leader-please"),
                (None, Some(RequestOutcome::Invalid)),
            ),
        ];
        for (what, status, brokers, rebalance, request, want) in cases {
            let got = plan(&Inputs {
                replicas: &replicas,
                status: Some(&status),
                brokers: &brokers,
                known: &Incarnations::new(),
                unclean: false,
                rebalance,
                request,
                reassigning: None,
            });
            assert_eq!(
                got.answer.as_ref().map(|a| a.request.as_str()),
                want.1.as_ref().and(request),
                "{what}: the value read is kept"
            );
            assert_eq!(summary(got), want, "{what}");
        }
    }

    #[test]
    fn reassignments_complete_after_failover_and_before_election_requests() {
        // {0,1,2} -> {1,2,3}, leader 0 removed.
        let spec = KafkaPartitionSpec {
            cluster_ref: "demo".into(),
            topic: "t".into(),
            topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            partition: 0,
            replicas: vec![1, 2, 3, 0],
            adding_replicas: vec![3],
            removing_replicas: vec![0],
        };
        let known = Incarnations::new();
        let inputs = |status, brokers, request| Inputs {
            replicas: &spec.replicas,
            status: Some(status),
            brokers,
            known: &known,
            unclean: false,
            rebalance: true,
            request,
            reassigning: Some(&spec),
        };
        let all = live(&[0, 1, 2, 3]);
        let in_sync = st(0, 4, 7, &[0, 1, 2, 3]);
        let done = Plan {
            decision: Some(Decision {
                status: st(1, 5, 8, &[1, 2, 3]),
                change: Change::Reassignment,
            }),
            answer: None,
            replicas: Some(vec![1, 2, 3]),
        };
        assert_eq!(plan(&inputs(&in_sync, &all, None)), done);
        assert!(
            done.is_election(),
            "a completion that moves leadership goes first"
        );
        assert_eq!(
            plan(&inputs(&in_sync, &all, Some("preferred"))),
            done,
            "an election request waits for the completion, then is decided on the new replicas"
        );
        // The leader being removed dies: failover elects a target replica first (the
        // assignment lists them first), and the move completes at a later pass.
        let not_0 = live(&[1, 2, 3]);
        let failover = plan(&inputs(&in_sync, &not_0, Some("preferred")));
        assert_eq!(
            summary(failover),
            (Some((st(1, 5, 8, &[1, 2, 3]), Change::CleanElection)), None)
        );
        let after = st(1, 5, 8, &[1, 2, 3]);
        assert_eq!(
            plan(&inputs(&after, &not_0, None)),
            Plan {
                replicas: Some(vec![1, 2, 3]),
                ..Plan::default()
            }
        );
        // Still catching up: nothing for the move; the request is answered as usual.
        let catching_up = st(0, 4, 7, &[0, 1, 2]);
        let waiting = plan(&inputs(&catching_up, &all, Some("preferred")));
        assert_eq!(waiting.replicas, None);
        assert!(waiting.answer.is_some());
    }

    #[test]
    fn a_write_that_held_the_election_is_credited_after_a_conflict() {
        let not_needed = |t| Answer {
            request: "preferred".into(),
            outcome: RequestOutcome::NotElected(t, NotElected::NotNeeded("done")),
        };
        assert_eq!(
            not_needed(ElectionType::Preferred)
                .credited(Some(Change::PreferredElection))
                .outcome,
            RequestOutcome::Elected(ElectionType::Preferred)
        );
        assert_eq!(
            not_needed(ElectionType::Preferred).credited(None).outcome,
            not_needed(ElectionType::Preferred).outcome,
            "someone else held it"
        );
        assert_eq!(
            not_needed(ElectionType::Unclean)
                .credited(Some(Change::PreferredElection))
                .outcome,
            not_needed(ElectionType::Unclean).outcome,
            "a different election"
        );
        assert_eq!(
            RequestOutcome::NotElected(ElectionType::Unclean, NotElected::NoLiveReplica).labels(),
            ("unclean", "not_possible")
        );
    }

    #[test]
    fn answers_become_events_that_say_what_happened_and_why() {
        let answer = |request: &str, outcome| Answer {
            request: request.into(),
            outcome,
        };
        let led = st(0, 5, 9, &[0]);
        let cases = [
            (
                answer("preferred", RequestOutcome::Elected(ElectionType::Preferred)),
                ("ElectedOnRequest", "preferred election requested: broker 0 leads at epoch 5", false),
            ),
            (
                answer("unclean", RequestOutcome::Elected(ElectionType::Unclean)),
                ("ElectedOnRequest", "unclean election requested: broker 0 leads at epoch 5", true),
            ),
            (
                answer(
                    "preferred",
                    RequestOutcome::NotElected(
                        ElectionType::Preferred,
                        NotElected::PreferredNotInSync(2),
                    ),
                ),
                (
                    "ElectionNotPossible",
                    "preferred election requested but not held: preferred replica 2 is not in the ISR",
                    true,
                ),
            ),
            (
                answer(
                    "unclean",
                    RequestOutcome::NotElected(
                        ElectionType::Unclean,
                        NotElected::NotNeeded("the partition has a leader"),
                    ),
                ),
                (
                    "ElectionNotNeeded",
                    "unclean election requested: no election needed: the partition has a leader",
                    false,
                ),
            ),
            (
                answer("now", RequestOutcome::Invalid),
                (
                    "InvalidElectionRequest",
                    "tributary.dev/elect-leader=\"now\" names no election (use preferred or unclean); request removed",
                    true,
                ),
            ),
        ];
        for (a, (reason, note, warning)) in cases {
            assert_eq!(a.event(Some(&led)), (reason, note.to_owned(), warning));
        }
    }

    #[test]
    fn isr_members_of_an_incarnation_this_controller_has_not_seen_stay() {
        use fixtures::{live, st};
        let replicas = [0, 1, 2];
        // Broker 2 came back as incarnation 2 and its leader admitted it, but this
        // controller's Lease watch still has it at incarnation 1, expired.
        let status = st(0, 3, 6, &[(0, 1), (1, 1), (2, 2)]);
        let decided = |brokers: &BrokerView, known: &[(i32, i64)]| {
            let known: Incarnations = known.iter().copied().collect();
            plan(&Inputs {
                replicas: &replicas,
                status: Some(&status),
                brokers,
                known: &known,
                unclean: false,
                rebalance: false,
                request: None,
                reassigning: None,
            })
            .decision
            .map(|d| (d.status, d.change))
        };
        let two = live(&[(0, 1, false), (1, 1, false)]);
        assert_eq!(decided(&two, &[(0, 1), (1, 1), (2, 1)]), None, "kept");
        // Seen at incarnation 2 and dead, or no longer registered: it leaves.
        let shrunk = Some((st(0, 3, 7, &[(0, 1), (1, 1)]), Change::IsrShrink));
        assert_eq!(decided(&two, &[(0, 1), (1, 1), (2, 2)]), shrunk);
        assert_eq!(decided(&two, &[(0, 1), (1, 1)]), shrunk);
        // A clean election keeps it too; an unclean one would start the ISR afresh.
        let one = live(&[(1, 1, false)]);
        assert_eq!(
            decided(&one, &[(0, 1), (1, 1), (2, 1)]),
            Some((st(1, 4, 7, &[(1, 1), (2, 2)]), Change::CleanElection))
        );
    }
}
