//! Service networking for NodePort and LoadBalancer Services, so that traffic from outside
//! the cluster reaches pods as it would through kube-proxy and a bare-metal load balancer:
//!
//! - [`load_balancer`]: a MetalLB-like allocator giving LoadBalancer Services an ingress IP
//!   from a loopback [`AddressPool`], written to `status.loadBalancer.ingress`;
//! - kube-proxy's stand-in: for every TCP port of a NodePort or LoadBalancer Service, a
//!   listener on the node IP at the port's nodePort, and for a LoadBalancer one on each
//!   ingress IP at the Service port, each forwarding connections round robin to the ready
//!   endpoints of the EndpointSlices (which listeners, to where: `routes`; the sockets:
//!   `proxy`).
//!
//! Both run in one level-triggered loop, like the workload controllers, woken by changes to
//! Services and EndpointSlices (and every second). They run per node rather than with the
//! workload controllers because kube-proxy is a node component: it needs the node's IP,
//! which the kubelet claims.
//!
//! Not modelled: cluster IPs (nothing listens on `10.96.x.x`: in-cluster clients use pod IPs),
//! `externalIPs`, UDP and SCTP ports, session affinity, source ranges, traffic policies (one
//! node: every endpoint is local), health-check node ports, and the client's address (the
//! backend sees the proxy's, as with SNAT).

pub mod load_balancer;
mod proxy;
mod routes;

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::load_balancer::{AddressPool, InvalidPool, LOAD_BALANCER_CLASS};

use self::proxy::Proxy;
use super::{list, next_pass};
use crate::FakeApiServer;

/// The resources whose changes start a pass.
const WATCHED: &[&str] = &["/services", "discovery.k8s.io/endpointslices", "*"];

/// Where Service traffic enters the node.
#[derive(Clone, Copy, Debug)]
pub struct NetworkConfig {
    /// The node's IP (`status.hostIP` of its pods): node ports listen on it, as kube-proxy's
    /// `--nodeport-addresses` limits them to the node's address.
    pub node_ip: Ipv4Addr,
    /// Where LoadBalancer ingress IPs come from.
    pub pool: AddressPool,
}

impl NetworkConfig {
    /// Node ports on `node_ip`, load balancers from its [`AddressPool::for_node`].
    pub fn for_node(node_ip: Ipv4Addr) -> NetworkConfig {
        NetworkConfig {
            node_ip,
            pool: AddressPool::for_node(node_ip),
        }
    }
}

/// The running network stand-ins; dropping this closes every listener and forwarded
/// connection.
pub struct ServiceNetwork {
    task: Option<JoinHandle<()>>,
    /// Asks the loop to finish its pass and close its listeners.
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for ServiceNetwork {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl ServiceNetwork {
    /// Starts the load balancer and the proxy against `server` (in-process client).
    pub fn start(server: &FakeApiServer, config: NetworkConfig) -> ServiceNetwork {
        let client = server.client("default");
        let mut changes = server.changes();
        let (shutdown, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut proxy = Proxy::new();
            loop {
                pass(&client, &config, &mut proxy).await;
                let more = tokio::select! {
                    more = next_pass(&mut changes, WATCHED) => more,
                    _ = &mut stopped => false,
                };
                if !more {
                    break;
                }
            }
            proxy.close().await;
        });
        ServiceNetwork {
            task: Some(task),
            shutdown: Some(shutdown),
        }
    }

    /// Stops them and waits until every listener is closed.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// One pass: load-balancer addresses first, then the listeners for what the pass read (new
/// addresses are listened on at the pass their status write wakes).
async fn pass(client: &Client, config: &NetworkConfig, proxy: &mut Proxy) {
    let read = async {
        let services: Vec<Service> = list(client).await?;
        let slices: Vec<EndpointSlice> = list(client).await?;
        Ok::<_, kube::Error>((services, slices))
    };
    let (services, slices) = match read.await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("service network: cannot read the cluster: {e}");
            return;
        }
    };
    let updates = load_balancer::plan(&config.pool, &services);
    load_balancer::write(client, &services, updates).await;
    proxy
        .apply(routes::routes(config.node_ip, &services, &slices))
        .await;
}
