//! Random joins, heartbeats, leaves, restarts and crashes of simulated clients, with a fixed
//! seed so every run sees the same cases. After every step: no partition is owned by two
//! members (as the coordinator sees it) nor consumed by two clients (as the clients see it),
//! epochs never go back, and replaying the records written so far rebuilds the group.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::records::Record;
use super::replay::ConsumerGroups;
use super::*;

/// A small deterministic generator (xorshift64*), so the test needs no randomness crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A consumer as the coordinator's answers leave it.
#[derive(Debug, Clone, Default)]
struct Client {
    /// `None` while not in the group.
    member_id: Option<String>,
    epoch: i32,
    /// The partitions it consumes: the last assignment it was sent.
    owned: Assignment,
    /// Static instance id, for every other client.
    instance: Option<String>,
    incarnation: u32,
}

struct World {
    group: ConsumerGroup,
    topics: TopicsImage,
    config: ConsumerGroupConfig,
    now: i64,
    clients: Vec<Client>,
    log: Vec<Record>,
    /// How often each interesting path was taken, so the test shows it covers them.
    seen: BTreeMap<&'static str, usize>,
}

impl World {
    fn ctx(&self) -> (TopicsImage, ConsumerGroupConfig) {
        (self.topics.clone(), self.config.clone())
    }

    fn send(&mut self, c: usize, req: HeartbeatRequest) {
        let (topics, config) = self.ctx();
        let ctx = Context {
            now: self.now,
            topics: &topics,
            config: &config,
        };
        match self.group.heartbeat(&req, &ctx) {
            Ok(out) => {
                let replaced = out.records.iter().any(|r| {
                    r.value.is_none() && r.key.record_type() == super::records::MEMBER_METADATA
                }) && req.member_epoch == 0;
                if replaced {
                    *self.seen.entry("static member replaced").or_default() += 1;
                }
                self.log.extend(out.records);
                let client = &mut self.clients[c];
                if out.response.member_epoch < 0 {
                    *client = Client {
                        member_id: None,
                        epoch: 0,
                        owned: Assignment::new(),
                        ..client.clone()
                    };
                    return;
                }
                if client.member_id.is_some() && req.member_epoch > 0 {
                    assert!(
                        out.response.member_epoch >= client.epoch,
                        "member epoch went back from {} to {}",
                        client.epoch,
                        out.response.member_epoch
                    );
                }
                client.member_id = Some(out.response.member_id);
                client.epoch = out.response.member_epoch;
                if let Some(a) = out.response.assignment {
                    client.owned = a;
                }
            }
            Err(e) => {
                let kind = match e {
                    HeartbeatError::FencedMemberEpoch { .. } => "fenced member epoch",
                    HeartbeatError::UnknownMemberId { .. } => "unknown member id",
                    HeartbeatError::UnreleasedInstanceId { .. } => "unreleased instance id",
                    HeartbeatError::FencedInstanceId { .. } => "fenced instance id",
                    _ => "other error",
                };
                *self.seen.entry(kind).or_default() += 1;
                // Fenced or unknown: the client gives up its partitions and rejoins later.
                let client = &mut self.clients[c];
                client.member_id = None;
                client.epoch = 0;
                client.owned = Assignment::new();
            }
        }
    }

    fn step(&mut self, rng: &mut Rng) {
        let c = rng.below(self.clients.len());
        let client = self.clients[c].clone();
        match (rng.below(10), &client.member_id) {
            // Join (a static client rejoining with a new member id after a restart).
            (0..=1, None) => {
                let mut names = vec!["orders".to_string()];
                if rng.below(3) == 0 {
                    names.push("payments".into());
                }
                let id = format!("c{c}-{}", client.incarnation);
                self.send(
                    c,
                    HeartbeatRequest {
                        member_id: id,
                        member_epoch: 0,
                        instance_id: client.instance.clone(),
                        rack_id: None,
                        rebalance_timeout_ms: 10_000,
                        subscribed_topic_names: Some(names),
                        subscribed_topic_regex: None,
                        server_assignor: (rng.below(4) == 0).then(|| "range".to_string()),
                        owned: Some(Assignment::new()),
                        client_id: "sim".into(),
                        client_host: "/127.0.0.1".into(),
                    },
                );
            }
            // Heartbeat, reporting what it owns (sometimes not).
            (2..=6, Some(id)) => {
                let owned = (rng.below(5) != 0).then(|| client.owned.clone());
                // Now and then a confused client claims an epoch it was never given.
                let epoch = if rng.below(15) == 0 {
                    client.epoch + 1
                } else {
                    client.epoch
                };
                let req = HeartbeatRequest {
                    member_id: id.clone(),
                    member_epoch: epoch,
                    instance_id: client.instance.clone(),
                    rack_id: None,
                    rebalance_timeout_ms: -1,
                    subscribed_topic_names: (rng.below(8) == 0)
                        .then(|| vec!["orders".to_string(), "payments".to_string()]),
                    subscribed_topic_regex: None,
                    server_assignor: None,
                    owned,
                    client_id: "sim".into(),
                    client_host: "/127.0.0.1".into(),
                };
                self.send(c, req);
            }
            // Leave: for good, or (static) for a restart under a new member id.
            (7, Some(id)) => {
                let epoch = if client.instance.is_some() && rng.below(2) == 0 {
                    -2
                } else {
                    -1
                };
                let req = HeartbeatRequest {
                    member_id: id.clone(),
                    member_epoch: epoch,
                    instance_id: client.instance.clone(),
                    rack_id: None,
                    rebalance_timeout_ms: -1,
                    subscribed_topic_names: None,
                    subscribed_topic_regex: None,
                    server_assignor: None,
                    owned: None,
                    client_id: "sim".into(),
                    client_host: "/127.0.0.1".into(),
                };
                self.send(c, req);
                let client = &mut self.clients[c];
                client.member_id = None;
                client.epoch = 0;
                client.owned = Assignment::new();
                client.incarnation += 1;
            }
            // Crash: the client stops consuming and goes silent; its session will expire.
            (8, Some(_)) => {
                let client = &mut self.clients[c];
                client.member_id = None;
                client.epoch = 0;
                client.owned = Assignment::new();
                client.incarnation += 1;
            }
            // Time passes; expired members are removed. A client whose session expired has
            // lost its partitions (as a real one does when it cannot heartbeat), and learns
            // it was removed from its next heartbeat.
            _ => {
                self.now += rng.below(20_000) as i64;
                let topics = self.topics.clone();
                let (records, expired) = self.group.expire(self.now, &topics);
                self.log.extend(records);
                for (id, _) in expired {
                    for client in &mut self.clients {
                        if client.member_id.as_deref() == Some(id.as_str()) {
                            client.owned = Assignment::new();
                        }
                    }
                }
            }
        }
    }

    fn check(&mut self, previous: (i32, i32)) {
        for m in self.group.members().values() {
            let state = match m.state {
                MemberState::UnrevokedPartitions => "member revoking",
                MemberState::UnreleasedPartitions => "member waiting for a release",
                _ => "member stable",
            };
            *self.seen.entry(state).or_default() += 1;
        }
        // The coordinator's view.
        let mut seen = Assignment::new();
        for m in self.group.members().values() {
            for (t, p) in m.owned().iter() {
                assert!(seen.insert(t, p), "{t}-{p} owned by two members");
            }
        }
        // The clients' view.
        let mut consumed = Assignment::new();
        for c in &self.clients {
            for (t, p) in c.owned.iter() {
                assert!(consumed.insert(t, p), "{t}-{p} consumed by two clients");
            }
        }
        assert!(
            self.group.group_epoch() >= previous.0,
            "group epoch went back"
        );
        assert!(
            self.group.assignment_epoch() >= previous.1,
            "assignment epoch went back"
        );
        assert!(self.group.assignment_epoch() <= self.group.group_epoch());
    }
}

#[test]
fn random_membership_changes_never_give_a_partition_to_two_members() {
    let mut stable_seen = 0;
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for run in 0..60u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (run + 1));
        let clients = (0..6)
            .map(|i| Client {
                instance: (i % 2 == 1).then(|| format!("instance-{i}")),
                ..Client::default()
            })
            .collect();
        let mut world = World {
            group: ConsumerGroup::new("g"),
            topics: TopicsImage::new([
                TopicMetadata {
                    id: Uuid::from_u128(1),
                    name: "orders".into(),
                    partitions: 7,
                },
                TopicMetadata {
                    id: Uuid::from_u128(2),
                    name: "payments".into(),
                    partitions: 3,
                },
            ]),
            config: ConsumerGroupConfig::default(),
            now: 0,
            clients,
            log: Vec::new(),
            seen: BTreeMap::new(),
        };
        for _ in 0..300 {
            let previous = (world.group.group_epoch(), world.group.assignment_epoch());
            world.step(&mut rng);
            world.check(previous);
            if world.group.state() == ConsumerGroupState::Stable {
                stable_seen += 1;
            }
        }

        for (k, v) in &world.seen {
            *seen.entry(k).or_default() += v;
        }

        // Replaying everything written rebuilds the same group.
        let mut groups = ConsumerGroups::new();
        for r in &world.log {
            let (key, value) = r.encode();
            if let Ok(Some(decoded)) = Record::decode(&key, value.as_deref()) {
                groups.replay(&decoded);
            }
        }
        let mut live = world.group.clone();
        live.session_deadlines.clear();
        live.rebalance_deadlines.clear();
        live.metadata_refresh = None;
        match groups.get("g") {
            Some(rebuilt) => assert_eq!(rebuilt, &live, "run {run}"),
            None => assert!(world.log.is_empty()),
        }
    }
    assert!(stable_seen > 0, "the scenarios reach stable groups");
    for path in [
        "static member replaced",
        "fenced member epoch",
        "unknown member id",
        "unreleased instance id",
        "member revoking",
        "member waiting for a release",
    ] {
        assert!(
            seen.get(path).is_some_and(|n| *n > 0),
            "never seen: {path} in {seen:?}"
        );
    }
}

#[test]
fn with_steady_heartbeats_every_member_converges_to_its_target() {
    let mut w = World {
        group: ConsumerGroup::new("g"),
        topics: TopicsImage::new([TopicMetadata {
            id: Uuid::from_u128(1),
            name: "orders".into(),
            partitions: 12,
        }]),
        config: ConsumerGroupConfig::default(),
        now: 0,
        clients: vec![Client::default(); 4],
        log: Vec::new(),
        seen: BTreeMap::new(),
    };
    let mut rng = Rng(7);
    for c in 0..4 {
        w.send(
            c,
            HeartbeatRequest {
                member_id: format!("m{c}"),
                member_epoch: 0,
                instance_id: None,
                rack_id: None,
                rebalance_timeout_ms: 10_000,
                subscribed_topic_names: Some(vec!["orders".into()]),
                subscribed_topic_regex: None,
                server_assignor: None,
                owned: Some(Assignment::new()),
                client_id: "sim".into(),
                client_host: "/127.0.0.1".into(),
            },
        );
    }
    for _ in 0..40 {
        let c = rng.below(4);
        let client = w.clients[c].clone();
        let req = HeartbeatRequest {
            member_id: client.member_id.clone().unwrap_or_default(),
            member_epoch: client.epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: Some(client.owned.clone()),
            client_id: "sim".into(),
            client_host: "/127.0.0.1".into(),
        };
        w.send(c, req);
        w.check((0, 0));
    }
    // Final rounds for everyone: told to revoke, acknowledging, then given what others
    // released.
    for _ in 0..4 {
        for c in 0..4 {
            let client = w.clients[c].clone();
            let req = HeartbeatRequest {
                member_id: client.member_id.clone().unwrap_or_default(),
                member_epoch: client.epoch,
                instance_id: None,
                rack_id: None,
                rebalance_timeout_ms: -1,
                subscribed_topic_names: None,
                subscribed_topic_regex: None,
                server_assignor: None,
                owned: Some(client.owned.clone()),
                client_id: "sim".into(),
                client_host: "/127.0.0.1".into(),
            };
            w.send(c, req);
        }
    }
    assert_eq!(w.group.state(), ConsumerGroupState::Stable);
    let sizes: BTreeMap<String, usize> = w
        .group
        .members()
        .values()
        .map(|m| (m.member_id.clone(), m.assigned.len()))
        .collect();
    assert!(sizes.values().all(|n| *n == 3), "{sizes:?}");
    for c in &w.clients {
        assert_eq!(c.owned.len(), 3);
    }
}
