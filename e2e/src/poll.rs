//! Polling with a deadline, the way every test here waits (never a fixed sleep).

use std::future::Future;
use std::time::Duration;

/// How often a condition is checked.
const INTERVAL: Duration = Duration::from_millis(50);

/// Polls `f` until it yields `Some` and returns that. After `deadline` it panics with `what`,
/// failing the calling test: this crate is test support.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(INTERVAL).await;
    }
}
