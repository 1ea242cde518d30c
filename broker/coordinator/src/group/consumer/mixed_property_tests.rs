//! Random steps of a mixed group, with a fixed seed: consumer-protocol clients heartbeat,
//! classic clients (eager ones revoking everything before they rejoin, cooperative ones
//! reporting what they own) join, sync, heartbeat and leave, some crash, and time passes.
//! After every step no partition is consumed by two clients (as the clients see it) nor owned
//! by two members (as the coordinator sees it), and the records rebuild the group.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::classic::{ClassicJoin, ClassicSync};
use super::embedded::{decode_assignment, encode_subscription};
use super::migration::by_id;
use super::records::Record;
use super::replay::ConsumerGroups;
use super::*;

const ORDERS: Uuid = Uuid::from_u128(1);

/// xorshift64*, as the other property tests use.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Consumer,
    Eager,
    Cooperative,
}

#[derive(Debug, Clone)]
struct Client {
    kind: Kind,
    member_id: Option<String>,
    epoch: i32,
    owned: Assignment,
    incarnation: u32,
}

struct World {
    group: ConsumerGroup,
    topics: TopicsImage,
    config: ConsumerGroupConfig,
    now: i64,
    clients: Vec<Client>,
    log: Vec<Record>,
    seen: BTreeMap<&'static str, usize>,
}

fn names(a: &Assignment) -> Vec<(String, Vec<i32>)> {
    a.topics()
        .map(|(_, ps)| ("orders".to_string(), ps.iter().copied().collect()))
        .collect()
}

impl World {
    fn count(&mut self, what: &'static str) {
        *self.seen.entry(what).or_default() += 1;
    }

    fn forget(&mut self, c: usize) {
        let client = &mut self.clients[c];
        client.member_id = None;
        client.epoch = 0;
        client.owned = Assignment::new();
        client.incarnation += 1;
    }

    fn consumer_beat(&mut self, c: usize, epoch: i32) {
        let client = self.clients[c].clone();
        let id = client
            .member_id
            .clone()
            .unwrap_or_else(|| format!("c{c}-{}", client.incarnation));
        let req = HeartbeatRequest {
            member_id: id,
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(vec!["orders".into()]),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: Some(client.owned.clone()),
            client_id: "sim".into(),
            client_host: "/127.0.0.1".into(),
        };
        let ctx = Context {
            now: self.now,
            topics: &self.topics,
            config: &self.config,
        };
        match self.group.heartbeat(&req, &ctx) {
            Ok(out) => {
                self.log.extend(out.records);
                if epoch < 0 {
                    self.forget(c);
                    return;
                }
                let client = &mut self.clients[c];
                client.member_id = Some(out.response.member_id);
                client.epoch = out.response.member_epoch;
                if let Some(a) = out.response.assignment {
                    client.owned = a;
                }
            }
            Err(_) => {
                self.count("consumer member fenced");
                self.forget(c);
            }
        }
    }

    /// JoinGroup then SyncGroup, as a classic client does them back to back.
    fn classic_rejoin(&mut self, c: usize) {
        let client = self.clients[c].clone();
        if client.kind == Kind::Eager {
            // Eager clients revoke everything before they rejoin.
            self.clients[c].owned = Assignment::new();
        }
        let owned = names(&self.clients[c].owned);
        let id = client
            .member_id
            .clone()
            .unwrap_or_else(|| format!("c{c}-{}", client.incarnation));
        let join = ClassicJoin {
            member_id: id.clone(),
            new_member_id: id.clone(),
            instance_id: None,
            client_id: "sim".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), encode_subscription(1, &["orders"], &owned))],
            require_known_member_id: false,
        };
        let ctx = Context {
            now: self.now,
            topics: &self.topics,
            config: &self.config,
        };
        let generation = match self.group.classic_join(&join, &ctx) {
            Ok((records, joined)) => {
                self.log.extend(records);
                joined.generation
            }
            Err(refused) => {
                assert_eq!(refused.code, ResponseError::GroupMaxSizeReached);
                self.forget(c);
                return;
            }
        };
        self.clients[c].member_id = Some(id.clone());
        self.clients[c].epoch = generation;
        let sync = ClassicSync {
            member_id: &id,
            instance_id: None,
            generation,
            protocol_type: Some("consumer"),
            protocol_name: Some("range"),
        };
        match self.group.classic_sync(&sync, self.now) {
            Ok(bytes) => {
                let assigned = by_id(&decode_assignment(&bytes).unwrap(), &self.topics);
                let client = &mut self.clients[c];
                if !client.owned.difference(&assigned).is_empty() {
                    self.count("classic member revoking");
                }
                // Either protocol: what it consumes now is the new assignment.
                self.clients[c].owned = assigned;
            }
            Err(ResponseError::RebalanceInProgress) => self.count("sync told to rejoin"),
            Err(e) => panic!("sync refused: {e:?}"),
        }
    }

    fn classic_beat(&mut self, c: usize) {
        let client = self.clients[c].clone();
        let Some(id) = client.member_id.clone() else {
            return self.classic_rejoin(c);
        };
        match self
            .group
            .classic_heartbeat(&id, None, client.epoch, self.now)
        {
            Ok(()) => {}
            Err(ResponseError::RebalanceInProgress) => {
                self.count("classic member told to rejoin");
                self.classic_rejoin(c);
            }
            Err(_) => {
                self.count("classic member fenced");
                self.forget(c);
            }
        }
    }

    fn step(&mut self, rng: &mut Rng) {
        let c = rng.below(self.clients.len());
        let client = self.clients[c].clone();
        match (rng.below(10), client.kind, &client.member_id) {
            (0..=6, Kind::Consumer, None) => self.consumer_beat(c, 0),
            (0..=6, Kind::Consumer, Some(_)) => self.consumer_beat(c, client.epoch),
            (0..=6, _, _) => self.classic_beat(c),
            (7, Kind::Consumer, Some(_)) => self.consumer_beat(c, -1),
            (7, _, Some(id)) => {
                let id = id.clone();
                self.clients[c].owned = Assignment::new();
                let topics = self.topics.clone();
                let (records, results) = self.group.classic_leave(&[(id, None)], &topics);
                self.log.extend(records);
                if results[0].is_ok() {
                    self.count("classic member left");
                }
                self.forget(c);
            }
            (8, _, Some(_)) => self.forget(c),
            _ => {
                self.now += rng.below(6_000) as i64;
                let topics = self.topics.clone();
                let (records, expired) = self.group.expire(self.now, &topics);
                self.log.extend(records);
                for (id, _) in expired {
                    self.count("member expired");
                    for client in &mut self.clients {
                        if client.member_id.as_deref() == Some(id.as_str()) {
                            client.owned = Assignment::new();
                        }
                    }
                }
            }
        }
    }

    fn check(&self) {
        let mut consumed = Assignment::new();
        for c in &self.clients {
            for (t, p) in c.owned.iter() {
                assert!(consumed.insert(t, p), "{t}-{p} consumed by two clients");
            }
        }
        let mut owned = Assignment::new();
        for m in self.group.members().values() {
            for (t, p) in m.owned().iter() {
                assert!(owned.insert(t, p), "{t}-{p} owned by two members");
            }
        }
    }
}

#[test]
fn a_mixed_group_never_lets_two_clients_consume_a_partition() {
    let kinds = [
        Kind::Consumer,
        Kind::Eager,
        Kind::Cooperative,
        Kind::Consumer,
        Kind::Eager,
        Kind::Cooperative,
    ];
    let mut world = World {
        group: ConsumerGroup::new("g"),
        topics: TopicsImage::new([TopicMetadata {
            id: ORDERS,
            name: "orders".into(),
            partitions: 8,
        }]),
        config: ConsumerGroupConfig {
            session_timeout_ms: 10_000,
            migration_policy: MigrationPolicy::Upgrade,
            ..ConsumerGroupConfig::default()
        },
        now: 0,
        clients: kinds
            .iter()
            .map(|&kind| Client {
                kind,
                member_id: None,
                epoch: 0,
                owned: Assignment::new(),
                incarnation: 0,
            })
            .collect(),
        log: Vec::new(),
        seen: BTreeMap::new(),
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..6_000 {
        world.step(&mut rng);
        world.check();
    }
    let mut replayed = ConsumerGroups::new();
    for r in &world.log {
        let (key, value) = r.encode();
        replayed.replay(&Record::decode(&key, value.as_deref()).unwrap().unwrap());
    }
    let mut live = world.group.clone();
    live.on_loaded(0, 10_000);
    let mut loaded = replayed
        .get("g")
        .cloned()
        .unwrap_or_else(|| ConsumerGroup::new("g"));
    loaded.on_loaded(0, 10_000);
    assert_eq!(loaded.members(), live.members());
    for path in [
        "classic member told to rejoin",
        "classic member revoking",
        "classic member left",
        "member expired",
    ] {
        assert!(
            world.seen.get(path).is_some_and(|n| *n > 0),
            "{path} never happened: {:?}",
            world.seen
        );
    }
}
