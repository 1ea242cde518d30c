//! The append path's pure decisions: what each writer's answer waits for. The broker's tests
//! drive the whole path on a standalone broker.

use super::*;
use crate::producer::ProducerRef;

/// The client's check of transactional batches; the tests write none.
struct NoTransactions;

impl TxnCheck for NoTransactions {
    fn check(&self, _: &Partition, _: &BatchIdentity, _: &TxnIndex) -> Result<(), AppendError> {
        Err(AppendError::Transaction(ResponseError::InvalidTxnState))
    }
}

fn client(acks: Acks) -> Origin<'static> {
    Origin::Client {
        acks,
        txn: &NoTransactions,
    }
}

#[test]
fn each_origin_has_its_own_durability_and_fsync() {
    let config = |fsync_acks_all, fsync_acks_one| AckDurability {
        fsync_acks_all,
        fsync_acks_one,
    };
    let committed = |durability| WaitFor::Committed {
        durability,
        min_isr: None,
    };
    let policy = |wait_for, sync_now, journal| Policy {
        wait_for,
        sync_now,
        journal,
    };
    let marker = Origin::TxnMarker(Marker {
        producer: ProducerRef { id: 1, epoch: 0 },
        commit: true,
        transaction_version: 1,
    });
    let defaults = config(true, false);
    let cases = [
        (
            client(Acks::Zero),
            defaults,
            policy(WaitFor::Nothing, false, false),
        ),
        (
            client(Acks::One),
            defaults,
            policy(WaitFor::Nothing, false, false),
        ),
        (
            client(Acks::All),
            defaults,
            policy(committed(Durability::Synced), true, true),
        ),
        (
            Origin::Coordinator,
            defaults,
            policy(committed(Durability::Synced), true, false),
        ),
        (
            marker,
            defaults,
            policy(committed(Durability::Synced), true, false),
        ),
    ];
    for (origin, config, expected) in cases {
        assert_eq!(Policy::of(&origin, config), expected);
    }
    let unsynced = config(false, true);
    let cases = [
        (client(Acks::One), policy(WaitFor::Local, true, true)),
        (
            client(Acks::All),
            policy(committed(Durability::Written), false, false),
        ),
        (
            Origin::Coordinator,
            policy(committed(Durability::Written), true, false),
        ),
        (marker, policy(committed(Durability::Synced), true, false)),
    ];
    for (origin, expected) in cases {
        assert_eq!(Policy::of(&origin, unsynced), expected);
    }
}
