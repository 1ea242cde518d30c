//! Pod IPs: a kubelet claims a loopback /24, `127.0.S.0/24`, by binding its node address
//! `127.0.S.1` on the kubelet port (10250): binding is atomic across processes and released
//! when the process dies, so concurrent kubelets (parallel tests, a developer's `up` next to
//! `make test`) never share pod IPs. Pods get `127.0.S.2` to `127.0.S.254`, handed out round
//! robin so an address is not reused right after its pod went away. Linux routes all of
//! 127.0.0.0/8 to the loopback interface, so every address is bindable and reachable locally
//! without any configuration.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// The kubelet port, bound on the node address to claim the subnet.
const CLAIM_PORT: u16 = 10250;
/// Third octets tried, in order.
const SUBNETS: std::ops::RangeInclusive<u8> = 1..=254;

/// Why no subnet could be claimed.
#[derive(Debug, thiserror::Error)]
#[error("every loopback subnet 127.0.1-254.0/24 is claimed by another kubelet (port {CLAIM_PORT} bound on its .1 address)")]
pub struct NoSubnet;

/// A claimed /24 and the pod IPs in use in it.
pub(crate) struct PodNetwork {
    subnet: u8,
    in_use: BTreeSet<u8>,
    next: u8,
    /// Held for the kubelet's life: the claim.
    _claim: TcpListener,
}

impl PodNetwork {
    /// Claims the first free subnet.
    pub(crate) fn claim() -> Result<PodNetwork, NoSubnet> {
        for subnet in SUBNETS {
            let addr = SocketAddr::from((Ipv4Addr::new(127, 0, subnet, 1), CLAIM_PORT));
            if let Ok(listener) = TcpListener::bind(addr) {
                return Ok(PodNetwork {
                    subnet,
                    in_use: BTreeSet::new(),
                    next: 2,
                    _claim: listener,
                });
            }
        }
        Err(NoSubnet)
    }

    /// The node's address.
    pub(crate) fn node_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, self.subnet, 1)
    }

    /// The pod CIDR.
    pub(crate) fn cidr(&self) -> String {
        format!("127.0.{}.0/24", self.subnet)
    }

    /// A free pod IP, or None when all 253 are in use.
    pub(crate) fn allocate(&mut self) -> Option<Ipv4Addr> {
        for _ in 2..=254 {
            let host = self.next;
            self.next = if self.next >= 254 { 2 } else { self.next + 1 };
            if self.in_use.insert(host) {
                return Some(Ipv4Addr::new(127, 0, self.subnet, host));
            }
        }
        None
    }

    /// Returns `ip` to the pool.
    pub(crate) fn release(&mut self, ip: Ipv4Addr) {
        let [_, _, subnet, host] = ip.octets();
        if subnet == self.subnet {
            self.in_use.remove(&host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_kubelets_claim_different_subnets_and_addresses_rotate() {
        let mut a = PodNetwork::claim().expect("a subnet");
        let b = PodNetwork::claim().expect("another subnet");
        assert_ne!(a.node_ip(), b.node_ip());
        let first = a.allocate().expect("ip");
        a.release(first);
        let second = a.allocate().expect("ip");
        assert_ne!(
            first, second,
            "a released address is not handed out again at once"
        );
        assert_eq!(first.octets()[3], 2);
    }
}
