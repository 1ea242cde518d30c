//! Registration in the broker Lease: incarnation epochs, renewal, self-fencing, supersession
//! and release.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use tributary_broker::partition::AppendError;
use tributary_crds::registration::{Registration, INCARNATION_ANNOTATION};

use crate::support::{records, wait_until, ControlPlane, RunningBroker, CLUSTER, LEASE_MS};

async fn registration(plane: &ControlPlane, id: i32) -> Option<Registration> {
    let lease = plane
        .api::<Lease>()
        .get_opt(&format!("{CLUSTER}-broker-{id}"))
        .await
        .ok()??;
    Registration::from_lease(CLUSTER, &lease)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_registers_its_endpoint_and_each_start_is_a_new_incarnation() {
    let plane = ControlPlane::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = RunningBroker::start(&plane, 1, dir.path()).await;
    let registered = registration(&plane, 1).await.expect("registered");
    assert_eq!(registered.id, 1);
    assert_eq!(
        format!("{}:{}", registered.host, registered.port),
        first.address
    );
    assert_eq!(registered.incarnation, 1);
    assert!(!registered.shutting_down);
    let lease = plane
        .api::<Lease>()
        .get("demo-broker-1")
        .await
        .expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("demo-broker-1"));
    assert!(spec.lease_duration_seconds.is_some_and(|s| s >= 1));
    assert_eq!(
        lease
            .metadata
            .labels
            .and_then(|l| l.get(tributary_crds::CLUSTER_LABEL).cloned()),
        Some(CLUSTER.to_string())
    );

    first.shutdown().await;
    let released = plane
        .api::<Lease>()
        .get("demo-broker-1")
        .await
        .expect("lease");
    assert_eq!(
        released.spec.and_then(|s| s.holder_identity),
        None,
        "a clean shutdown releases the Lease so the controller acts at once"
    );
    assert!(registration(&plane, 1).await.is_none());

    let second = RunningBroker::start(&plane, 1, dir.path()).await;
    assert_eq!(
        registration(&plane, 1).await.map(|r| r.incarnation),
        Some(2)
    );
    assert_eq!(
        second.broker.registrar.as_ref().map(|r| r.incarnation()),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_keep_going_and_a_newer_process_fences_the_older_for_good() {
    let plane = ControlPlane::new().await;
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let old = RunningBroker::start(&plane, 2, a.path()).await;
    let renew_time = || async {
        plane
            .api::<Lease>()
            .get("demo-broker-2")
            .await
            .ok()
            .and_then(|l| l.spec?.renew_time)
    };
    let before = renew_time().await.expect("renewTime");
    wait_until("a renewal", || async {
        renew_time().await.filter(|t| *t != before)
    })
    .await;
    assert!(old.broker.is_ready());

    // A second process with the same id (a pod restarted while the old one is cut off).
    let new = RunningBroker::start(&plane, 2, b.path()).await;
    assert_eq!(
        registration(&plane, 2).await.map(|r| r.incarnation),
        Some(2)
    );
    wait_until("the old process to fence itself", || async {
        (!old.broker.is_ready()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3 * LEASE_MS)).await;
    assert!(
        !old.broker.is_ready(),
        "a superseded incarnation stays fenced"
    );
    assert!(new.broker.is_ready());
    let lease = plane
        .api::<Lease>()
        .get("demo-broker-2")
        .await
        .expect("lease");
    assert_eq!(
        lease
            .metadata
            .annotations
            .and_then(|a| a.get(INCARNATION_ANNOTATION).cloned()),
        Some("2".to_string()),
        "the old process never overwrote the newer registration"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_cannot_renew_stops_leading_until_it_renews_again() {
    let plane = ControlPlane::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let running = RunningBroker::start(&plane, 0, dir.path()).await;
    plane.create_topic("orders", 1, 1).await;
    plane.place("orders", 0, &[0], 0, 1).await;
    let partition = wait_until("broker 0 to lead orders-0", || async {
        running
            .broker
            .replicas
            .get("orders", 0)
            .filter(|p| p.acts_as_leader())
    })
    .await;
    partition
        .append(&records(1), 0)
        .expect("append while registered");

    // Every renewal fails from now on (the API server refuses this broker's writes).
    plane
        .server
        .fail_next_writes_with("coordination.k8s.io/leases", usize::MAX, 503);
    let cut = tokio::time::Instant::now();
    wait_until("the broker to fence itself", || async {
        (!running.broker.is_ready()).then_some(())
    })
    .await;
    let fenced_after = cut.elapsed();
    assert!(
        fenced_after < Duration::from_millis(LEASE_MS),
        "fenced after {fenced_after:?}: before its Lease (of {LEASE_MS} ms) can expire"
    );
    assert!(!partition.acts_as_leader());
    assert!(matches!(
        partition.append(&records(1), 0),
        Err(AppendError::Fenced)
    ));

    plane
        .server
        .fail_next_writes_with("coordination.k8s.io/leases", 0, 503);
    wait_until("the broker to renew and lead again", || async {
        running.broker.is_ready().then_some(())
    })
    .await;
    partition
        .append(&records(1), 0)
        .expect("append after renewing");
    assert_eq!(partition.with_log(|l| l.log_end_offset()), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_lists_every_registered_broker_as_metadata_does() {
    use kafka_protocol::messages::{
        ApiKey, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    };

    let plane = ControlPlane::new().await;
    let (_dirs, running) = crate::support::brokers(&plane, 3).await;
    let addresses: Vec<String> = running.iter().map(|b| b.address.clone()).collect();
    for asked in &addresses {
        let described: DescribeClusterResponse = wait_until("all three brokers described", || {
            let asked = asked.clone();
            async move {
                let response: DescribeClusterResponse = crate::support::kafka_call(
                    &asked,
                    ApiKey::DescribeCluster,
                    0,
                    &DescribeClusterRequest::default()
                        .with_include_cluster_authorized_operations(true),
                )
                .await;
                (response.brokers.len() == 3).then_some(response)
            }
        })
        .await;
        let mut listed: Vec<(i32, String)> = described
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        listed.sort();
        let expected: Vec<(i32, String)> = (0..).zip(addresses.iter().cloned()).collect();
        assert_eq!(listed, expected, "asked {asked}");
        let metadata: MetadataResponse = crate::support::kafka_call(
            asked,
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(Vec::new())),
        )
        .await;
        assert_eq!(described.controller_id, metadata.controller_id);
        let me = addresses.iter().position(|a| a == asked);
        assert_eq!(
            usize::try_from(metadata.controller_id.0).ok(),
            me,
            "a registered broker names itself the controller"
        );
        assert_eq!(
            Some(described.cluster_id.to_string()),
            metadata.cluster_id.map(|c| c.to_string())
        );
        assert_ne!(described.cluster_authorized_operations, i32::MIN);
    }

    // A broker that shut down cleanly released its Lease: still registered, fenced (KIP-1073).
    // DescribeCluster v2 lists it only when asked to, marked; Metadata never does.
    let mut running = running;
    running.remove(2).shutdown().await;
    let described = |include: bool| {
        let asked = addresses[0].clone();
        async move {
            let request = DescribeClusterRequest::default().with_include_fenced_brokers(include);
            let response: DescribeClusterResponse =
                crate::support::kafka_call(&asked, ApiKey::DescribeCluster, 2, &request).await;
            let mut listed: Vec<(i32, bool)> = response
                .brokers
                .iter()
                .map(|b| (b.broker_id.0, b.is_fenced))
                .collect();
            listed.sort();
            listed
        }
    };
    wait_until("broker 2 fenced", || async {
        (described(false).await == [(0, false), (1, false)]).then_some(())
    })
    .await;
    assert_eq!(described(true).await, [(0, false), (1, false), (2, true)]);
    let metadata: MetadataResponse = crate::support::kafka_call(
        &addresses[0],
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(Vec::new())),
    )
    .await;
    assert_eq!(metadata.brokers.len(), 2);
}

/// A broker SIGKILLed keeps its Lease until it expires and the image keeps listing it: the
/// others must not name it the controller meanwhile, or an admin client's CreateTopics waits
/// for it until it times out ("Timed out waiting for a node assignment").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broker_is_never_named_the_controller() {
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};

    let plane = ControlPlane::new().await;
    let (_dirs, mut running) = crate::support::brokers(&plane, 3).await;
    let lease = format!("{CLUSTER}-broker-0");
    plane
        .server
        .fail_next_object_writes_with(crate::operated::LEASES, &lease, usize::MAX, 503);
    running.remove(0).kill();
    for survivor in &running {
        let metadata: MetadataResponse = crate::support::kafka_call(
            &survivor.address,
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(Vec::new())),
        )
        .await;
        assert!(
            registration(&plane, 0).await.is_some(),
            "broker 0's Lease is still held"
        );
        assert_eq!(
            metadata.controller_id.0, survivor.broker.config.broker_id,
            "the answering broker, alive, is the controller"
        );
        assert!(
            metadata
                .brokers
                .iter()
                .any(|b| b.node_id == metadata.controller_id),
            "the controller is among the listed brokers"
        );
    }
}
