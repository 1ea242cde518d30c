//! Controlled shutdown (Kafka's `controlled.shutdown.enable`): before a broker stops serving
//! it marks its Lease as shutting down and waits, serving all the while, until the controller
//! has moved every partition it leads to an in-sync follower (or taken offline those with no
//! other in-sync replica), so clients see retriable leader changes rather than timeouts.

use std::sync::Arc;
use std::time::Duration;

use super::registration::Registrar;

/// Longest a broker waits for its leaderships to move before it stops anyway.
pub const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// A broker that may be registered in a cluster. The broker implements it, so the shutdown
/// needs no broker type; a standalone broker has no registration.
pub trait Registered {
    /// This broker's registration in cluster mode.
    fn registrar(&self) -> Option<&Registrar>;
}

impl<T: Registered + ?Sized> Registered for Arc<T> {
    fn registrar(&self) -> Option<&Registrar> {
        (**self).registrar()
    }
}

/// Hands this broker's leaderships over; returns once it leads nothing or `timeout` passed.
/// A standalone broker has nothing to hand over.
pub async fn controlled_shutdown(broker: &impl Registered, timeout: Duration) {
    let Some(registrar) = broker.registrar() else {
        return;
    };
    if let Err(error) = registrar.begin_shutdown().await {
        tracing::warn!(%error, "could not announce the shutdown; the next renewal retries");
    }
    let me = registrar.broker_id();
    let mut applied = registrar.metadata().subscribe_applied();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let led = applied
            .borrow_and_update()
            .replicas_of(me)
            .filter(|(_, _, p)| p.leader == me)
            .count();
        if led == 0 {
            tracing::info!("controlled shutdown: this broker leads nothing any more");
            return;
        }
        match tokio::time::timeout_at(deadline, applied.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!(
                    led,
                    "controlled shutdown: leaderships did not all move in time; stopping anyway"
                );
                return;
            }
        }
    }
}
