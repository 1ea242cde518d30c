//! Service networking (`tributary_e2e::controllers::network`) against the in-process API
//! server, with TCP echo servers on pod-like loopback IPs standing in for pods and the
//! EndpointSlices the endpoints controller would write for them: bytes round-trip through
//! the node IP at a nodePort and through a LoadBalancer's ingress IP (which appears in the
//! Service's status), deleting a Service closes its listeners and releases its address, and an
//! endpoint that stops being ready gets no new connections.
//!
//! Each test has its own addresses, `127.2.T.0/24` for the node and pods and `127.3.T.0/24`
//! for the load balancer, apart from the kubelet's `127.0.0.0/16` and the local cluster's
//! load balancers in `127.1.0.0/16`, so tests run in parallel next to real clusters.

#[path = "../support/mod.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tributary_e2e::controllers::network::{
    AddressPool, NetworkConfig, ServiceNetwork, LOAD_BALANCER_CLASS,
};

use crate::support::{server, wait_until};

const NS: &str = "net";
/// The Service port (and the load balancer's listening port).
const PORT: u16 = 9094;
/// The pods' port, which the Services name as `targetPort: kafka`.
const POD_PORT: u16 = 9092;

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

/// The API server of test `t` with the network stand-ins on node `127.2.t.1`, pool
/// `127.3.t.1-9`.
struct Net {
    client: Client,
    node: Ipv4Addr,
    pool: AddressPool,
    _network: ServiceNetwork,
}

fn net(t: u8) -> Net {
    let (server, client) = server(NS);
    let node = Ipv4Addr::new(127, 2, t, 1);
    let pool = AddressPool::new(Ipv4Addr::new(127, 3, t, 1), Ipv4Addr::new(127, 3, t, 9))
        .unwrap_or_else(|e| panic!("{e}"));
    let network = ServiceNetwork::start(
        &server,
        NetworkConfig {
            node_ip: node,
            pool,
        },
    );
    Net {
        client,
        node,
        pool,
        _network: network,
    }
}

/// A pod's server on `127.2.t.host`: reads a request until the client half-closes, answers
/// `<name>|<request>` and closes.
async fn pod(t: u8, host: u8, name: &'static str) -> Ipv4Addr {
    let ip = Ipv4Addr::new(127, 2, t, host);
    let listener = TcpListener::bind((ip, POD_PORT))
        .await
        .unwrap_or_else(|e| panic!("bind {ip}:{POD_PORT}: {e}"));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                if conn.read_to_end(&mut request).await.is_ok() {
                    let answer = format!("{name}|{}", String::from_utf8_lossy(&request));
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.shutdown().await;
                }
            });
        }
    });
    ip
}

/// Sends `request`, half-closes, and reads the answer; None when the connection is refused,
/// reset or closed without one.
async fn ask(addr: SocketAddr, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(request.as_bytes()).await.ok()?;
    s.shutdown().await.ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.ok()?;
    (!answer.is_empty()).then_some(answer)
}

/// Whether nothing listens on `addr` any more.
async fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Creates Service `name` of `type_` (spec fields in `extra`) and returns it as stored.
async fn service(client: &Client, name: &str, type_: &str, extra: Value) -> Service {
    let mut spec = json!({"type": type_, "selector": {"app": name},
        "ports": [{"name": "kafka", "port": PORT, "targetPort": "kafka"}]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    Api::<Service>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &typed(json!({"metadata": {"name": name}, "spec": spec})),
        )
        .await
        .unwrap_or_else(|e| panic!("create Service {name}: {e}"))
}

/// The node port the API server allocated.
fn node_port(svc: &Service) -> u16 {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref()?.first()?.node_port)
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or_else(|| panic!("no node port in {svc:?}"))
}

/// The endpoints, `(ip, ready)`, as the endpoints controller lists ready and unready pods.
fn endpoints(pods: &[(Ipv4Addr, bool)]) -> Value {
    pods.iter()
        .map(|(ip, ready)| {
            json!({"addresses": [ip.to_string()],
                   "conditions": {"ready": ready, "serving": ready, "terminating": false}})
        })
        .collect()
}

/// Creates the EndpointSlice of Service `svc` as the endpoints controller writes it (the
/// named target port resolved to the pods' port).
async fn slice(client: &Client, svc: &str, pods: &[(Ipv4Addr, bool)]) {
    let slice = json!({
        "metadata": {"name": format!("{svc}-x7k2p"), "labels": {
            "kubernetes.io/service-name": svc,
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "kafka", "port": POD_PORT, "protocol": "TCP"}],
        "endpoints": endpoints(pods),
    });
    Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &typed(slice))
        .await
        .unwrap_or_else(|e| panic!("create the EndpointSlice of {svc}: {e}"));
}

/// Replaces the endpoints of Service `svc`'s slice.
async fn set_endpoints(client: &Client, svc: &str, pods: &[(Ipv4Addr, bool)]) {
    let api = Api::<EndpointSlice>::namespaced(client.clone(), NS);
    let name = format!("{svc}-x7k2p");
    let mut slice = api
        .get(&name)
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"));
    slice.endpoints = Some(typed(endpoints(pods)));
    api.replace(&name, &PostParams::default(), &slice)
        .await
        .unwrap_or_else(|e| panic!("update {name}: {e}"));
}

/// The first ingress IP in the Service's status, once it has one.
async fn ingress_ip(client: &Client, name: &str) -> Option<Ipv4Addr> {
    let svc = Api::<Service>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .ok()?;
    svc.status?
        .load_balancer?
        .ingress?
        .first()?
        .ip
        .as_ref()?
        .parse()
        .ok()
}

async fn delete(client: &Client, name: &str) {
    Api::<Service>::namespaced(client.clone(), NS)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete Service {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_round_trip_through_the_node_ip_at_the_node_port() {
    let n = net(1);
    let a = pod(1, 2, "pod-a").await;
    let svc = service(&n.client, "web", "NodePort", json!({})).await;
    slice(&n.client, "web", &[(a, true)]).await;
    let addr = SocketAddr::from((n.node, node_port(&svc)));
    let answer = wait_until("an answer through the node port", || {
        ask(addr, "hello, half-closed")
    })
    .await;
    assert_eq!(answer, "pod-a|hello, half-closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_balancer_gets_an_ingress_ip_in_status_that_carries_bytes_until_it_is_released() {
    let n = net(2);
    let a = pod(2, 2, "pod-a").await;
    service(
        &n.client,
        "theirs",
        "LoadBalancer",
        json!({"loadBalancerClass": "example.com/elsewhere"}),
    )
    .await;
    let svc = service(&n.client, "lb", "LoadBalancer", json!({})).await;
    slice(&n.client, "lb", &[(a, true)]).await;
    let ip = wait_until("an ingress IP in the status", || {
        ingress_ip(&n.client, "lb")
    })
    .await;
    assert!(n.pool.contains(ip), "{ip} is from the pool");
    let through_lb = SocketAddr::from((ip, PORT));
    let answer = wait_until("an answer through the load balancer", || {
        ask(through_lb, "via lb")
    })
    .await;
    assert_eq!(answer, "pod-a|via lb");
    let through_node = SocketAddr::from((n.node, node_port(&svc)));
    assert_eq!(
        ask(through_node, "via node").await.as_deref(),
        Some("pod-a|via node"),
        "a LoadBalancer is a NodePort Service too"
    );

    delete(&n.client, "lb").await;
    wait_until("the ingress IP to stop listening", || async {
        refused(through_lb).await.then_some(())
    })
    .await;
    service(
        &n.client,
        "next",
        "LoadBalancer",
        json!({"loadBalancerClass": LOAD_BALANCER_CLASS}),
    )
    .await;
    let next = wait_until("an ingress IP for the next Service", || {
        ingress_ip(&n.client, "next")
    })
    .await;
    assert_eq!(next, ip, "the deleted Service's address was released");
    assert_eq!(
        ingress_ip(&n.client, "theirs").await,
        None,
        "a Service of another class is left to its implementation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_service_closes_its_node_port() {
    let n = net(3);
    let a = pod(3, 2, "pod-a").await;
    let svc = service(&n.client, "web", "NodePort", json!({})).await;
    slice(&n.client, "web", &[(a, true)]).await;
    let addr = SocketAddr::from((n.node, node_port(&svc)));
    wait_until("the node port to answer", || ask(addr, "x")).await;
    delete(&n.client, "web").await;
    wait_until("the node port to be closed", || async {
        refused(addr).await.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_stops_being_ready_gets_no_new_connections() {
    let n = net(4);
    let a = pod(4, 2, "pod-a").await;
    let b = pod(4, 3, "pod-b").await;
    let svc = service(&n.client, "web", "NodePort", json!({})).await;
    slice(&n.client, "web", &[(a, true), (b, true)]).await;
    let addr = SocketAddr::from((n.node, node_port(&svc)));
    wait_until("both endpoints to take connections", || async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            seen.extend(ask(addr, "x").await);
        }
        (seen.len() == 2).then_some(())
    })
    .await;

    set_endpoints(&n.client, "web", &[(a, true), (b, false)]).await;
    wait_until("only pod-a to answer", || async {
        for _ in 0..6 {
            if ask(addr, "x").await.as_deref() != Some("pod-a|x") {
                return None;
            }
        }
        Some(())
    })
    .await;

    set_endpoints(&n.client, "web", &[(a, false), (b, false)]).await;
    wait_until("connections to be closed without an answer", || async {
        ask(addr, "x").await.is_none().then_some(())
    })
    .await;
    assert!(
        !refused(addr).await,
        "the node port still listens while its Service exists"
    );
}
