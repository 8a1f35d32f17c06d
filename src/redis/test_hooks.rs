//! Pause points for tests (feature `test-hooks`; not part of the API, compiled out otherwise).
//!
//! `tests/redis_near_cache.rs` uses them to order a race deterministically: an operation that
//! has its reply from Redis is held before its local step (the atomic check-and-store of
//! `coherence`), or just after it, while the test runs a delete, an invalidation or a read,
//! then let go.

use super::cache::NearCache;
use super::coherence::lock;
use super::shared::{Armed, Point, Shared};
use tokio::sync::oneshot;

/// The test's end of a pause point: wait until an operation is held there, then release it.
/// Dropping it releases the operation too.
#[derive(Debug)]
pub struct Pause {
    reached: Option<oneshot::Receiver<()>>,
    release: Option<oneshot::Sender<()>>,
}

impl Pause {
    /// Waits until an operation is held at the pause point.
    pub async fn reached(&mut self) {
        if let Some(reached) = self.reached.take() {
            let _ = reached.await;
        }
    }

    /// Lets the held operation go on.
    pub fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}

/// Holds the next fill (`find` or `expiry` that reads Redis) or write of `token` on `cache`
/// after Redis answered it, before its local step.
pub fn pause_before_local_step(cache: &NearCache, token: &str) -> Pause {
    arm(cache, Point::BeforeLocalStep, token)
}

/// Holds the next fill or write of `token` on `cache` just after its local step (the check
/// and the store it made, or did not make).
pub fn pause_after_local_step(cache: &NearCache, token: &str) -> Pause {
    arm(cache, Point::AfterLocalStep, token)
}

fn arm(cache: &NearCache, point: Point, token: &str) -> Pause {
    let (reached_tx, reached_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    lock(&cache.shared().hooks).push(Armed {
        point,
        token: token.to_owned(),
        reached: reached_tx,
        release: release_rx,
    });
    Pause {
        reached: Some(reached_rx),
        release: Some(release_tx),
    }
}

impl Shared {
    /// A pause point: takes the first pause armed there for `token` (one-shot), if any.
    pub(super) async fn hook(&self, point: Point, token: &str) {
        let armed = {
            let mut hooks = lock(&self.hooks);
            let at = hooks
                .iter()
                .position(|a| a.point == point && a.token == token);
            at.map(|at| hooks.remove(at))
        };
        if let Some(armed) = armed {
            let _ = armed.reached.send(());
            let _ = armed.release.await;
        }
    }
}
