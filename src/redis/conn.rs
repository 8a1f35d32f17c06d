//! The connection to the current primary and its staleness lease: connecting (to the node
//! that `primary` finds) with tracking, the heartbeat that renews the lease, and what a lost
//! connection does.
//!
//! # Invariants (kept here)
//! - **The lease proves freshness.** `lease` holds 1 + the monotonic time at which the last
//!   confirmed heartbeat was *sent*, 0 while disconnected. Redis pushes an invalidation before
//!   the reply of the write that caused it and before any later reply on this connection, and
//!   the push handler applies it before that reply is handed out; so a heartbeat reply for a
//!   request sent at *t* proves that every write acknowledged before *t* is applied locally.
//!   Local reads are served only while that proof is younger than `max_staleness`. A slow
//!   heartbeat lets the lease lapse (reads go to Redis); only a failed one, or one over the
//!   response timeout, drops the connection.
//! - **Only a primary is used.** A connection is installed only after `ROLE` says `master`;
//!   each heartbeat is a `ROLE` too, and `READONLY`/`MASTERDOWN` from any command drop the
//!   connection, so a demoted server is left within one heartbeat or one write and the
//!   background task reconnects to whichever node (or whatever Sentinel names) is primary.
//! - **Connection changes and tier swaps go together.** Installing a connection and dropping
//!   one each swap in an empty local tier under `Shared::conn`'s lock (a short critical
//!   section with no await and O(1) work), so nothing cached over a connection that may have
//!   missed invalidations survives it (see `coherence`).
//!
//! # Events (`tracing`)
//! `warn` for a lost connection (with why), a failed reconnect attempt, a failover (the
//! primary moved to another node) and a lapsed lease (a heartbeat slower than
//! `max_staleness`); `info` for a reconnect, naming the primary it reached (a failover's
//! outcome). None on the per-request path beyond the loss a failed request reports.

use super::coherence::lock;
use super::error::{Counters, NearCacheError};
use super::primary::{connection_error, is_primary, Live};
use super::shared::Shared;
use ::redis::aio::{AsyncPushSender, SendError};
use ::redis::{AsyncConnectionConfig, PushInfo, PushKind, RedisError};
use std::sync::atomic::{Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Weak};
use std::time::Duration;

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

impl Shared {
    pub(super) fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the last confirmed heartbeat is fresh enough for local reads.
    pub(super) fn leased(&self) -> bool {
        // Acquire: pairs with the Release stores below, so a reader that sees a lease also
        // sees every invalidation applied before the heartbeat reply that renewed it.
        let lease = self.lease.load(Acquire);
        lease != 0
            && self.now_nanos().saturating_sub(lease - 1)
                <= u64::try_from(self.max_staleness.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The connection, or [`NearCacheError::Disconnected`](NearCacheError) (waking the
    /// reconnecting task).
    pub(super) fn live(&self) -> Result<Live, NearCacheError> {
        match &*lock(&self.conn) {
            Some(live) => Ok(live.clone()),
            None => {
                self.wake.notify_one();
                Err(NearCacheError::Disconnected)
            }
        }
    }

    /// A failed round trip: a broken, stuck or demoted connection is dropped (and the local
    /// tier with it); a plain Redis error is passed on.
    pub(super) fn failed(&self, live: &Live, e: RedisError) -> NearCacheError {
        if connection_error(&e) {
            self.lost(live.gen, &e);
        }
        NearCacheError::Redis(e)
    }

    /// Connection `gen` is gone: stop local reads, swap in an empty tier, wake the task.
    ///
    /// Under the connection lock, lease first and counts last: whoever sees the loss counted
    /// (stats) sees the tier empty, and a reconnect (installed under the same lock) is never
    /// observed before the loss it follows.
    pub(super) fn lost(&self, gen: u64, why: &dyn std::fmt::Display) {
        let fresh = self.tier.fresh(); // allocated outside the lock
        {
            let mut conn = lock(&self.conn);
            if conn.as_ref().map(|l| l.gen) != Some(gen) {
                return;
            }
            *conn = None;
            self.lease.store(0, Release);
            self.tier.flush(fresh);
            Counters::bump(&self.counters.flushes);
            Counters::bump(&self.counters.connection_losses);
        }
        self.wake.notify_one();
        tracing::warn!(
            prefix = %self.prefix,
            primary = self.primary_addr(),
            reason = %why,
            "near-cache lost its Redis connection; local tier emptied, reconnecting"
        );
    }

    fn primary_addr(&self) -> String {
        lock(&self.primary).clone().unwrap_or_default()
    }

    /// Opens a RESP3 connection to the primary with broadcast tracking of the prefix, swaps in
    /// an empty local tier and installs the connection. Returns its generation.
    pub(super) async fn connect(self: &Arc<Self>) -> Result<u64, RedisError> {
        // Unique ids only: `Relaxed`.
        let gen = self.next_gen.fetch_add(1, Relaxed) + 1;
        let config = AsyncConnectionConfig::new()
            .set_push_sender(Invalidator {
                shared: Arc::downgrade(self),
                gen,
            })
            .set_connection_timeout(Some(self.response_timeout))
            .set_response_timeout(Some(self.response_timeout));
        let (mut conn, addr) = self.source.open(&config, self.response_timeout).await?;
        let sent = self.now_nanos();
        ::redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(&self.prefix)
            .arg("NOLOOP")
            .query_async::<()>(&mut conn)
            .await?;
        let fresh = self.tier.fresh(); // allocated outside the lock
        let mut slot = lock(&self.conn);
        // Whatever is local predates this connection's tracking: it may have missed
        // invalidations.
        self.tier.flush(fresh);
        Counters::bump(&self.counters.flushes);
        *slot = Some(Live { gen, conn });
        // Release: see `leased`.
        self.lease.store(sent + 1, Release);
        drop(slot);
        let before = lock(&self.primary).replace(addr.clone());
        if let Some(before) = before.filter(|b| *b != addr) {
            tracing::warn!(
                prefix = %self.prefix,
                from = %before,
                to = %addr,
                "near-cache failover: the primary moved to another node"
            );
        }
        Ok(gen)
    }

    /// One heartbeat (`ROLE`) on connection `gen`: renews the lease if the server is still
    /// the primary. `Err` (why) if the connection is no good (failed, timed out, demoted). A
    /// reply slower than `max_staleness` renews nothing useful: the lease lapses meanwhile.
    async fn heartbeat(&self, gen: u64) -> Result<(), String> {
        let Ok(mut live) = self.live() else {
            return Err("disconnected".to_owned());
        };
        if live.gen != gen {
            return Err("replaced".to_owned());
        }
        let sent = self.now_nanos();
        match is_primary(&mut live.conn).await {
            Ok(true) => {
                {
                    let conn = lock(&self.conn);
                    if conn.as_ref().map(|l| l.gen) == Some(gen) {
                        // Every invalidation sent before this reply has been applied. Release:
                        // see `leased`.
                        self.lease.fetch_max(sent + 1, Release);
                    }
                }
                let took = std::time::Duration::from_nanos(self.now_nanos().saturating_sub(sent));
                if took > self.max_staleness {
                    tracing::warn!(
                        prefix = %self.prefix,
                        primary = self.primary_addr(),
                        took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                        max_staleness_ms =
                            u64::try_from(self.max_staleness.as_millis()).unwrap_or(u64::MAX),
                        "near-cache lease lapsed: a heartbeat took longer than max_staleness; \
                         reads went to Redis meanwhile"
                    );
                }
                Ok(())
            }
            Ok(false) => Err("the server is no longer the primary (ROLE); a failover".to_owned()),
            Err(e) if connection_error(&e) => Err(e.to_string()),
            Err(_) => Ok(()),
        }
    }
}

/// The connection's push handler: applies invalidations and notices the connection's end,
/// inline in the connection's reader (so before any later reply is handed out).
struct Invalidator {
    shared: Weak<Shared>,
    gen: u64,
}

impl AsyncPushSender for Invalidator {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        let shared = self.shared.upgrade().ok_or(SendError)?;
        match info.kind {
            PushKind::Invalidate => shared.invalidate(&info.data),
            PushKind::Disconnection => shared.lost(self.gen, &"the connection closed"),
            _ => {}
        }
        Ok(())
    }
}

/// Keeps the connection: heartbeats while up, reconnects with backoff while down, and runs
/// the local tier's cleanup every `cleanup` (off the runtime's threads).
pub(super) async fn supervise(shared: Arc<Shared>, mut gen: Option<u64>, cleanup: Duration) {
    let heartbeat = (shared.max_staleness / 4).max(Duration::from_millis(1));
    let mut backoff = MIN_BACKOFF;
    let mut next_cleanup = tokio::time::Instant::now() + cleanup;
    loop {
        if !cleanup.is_zero() && tokio::time::Instant::now() >= next_cleanup {
            next_cleanup += cleanup;
            let tier = shared.tier.local_full();
            drop(tokio::task::spawn_blocking(move || tier.cleanup_now()));
        }
        match gen {
            Some(g) => {
                tokio::select! {
                    _ = tokio::time::sleep(heartbeat) => {}
                    _ = shared.wake.notified() => {}
                }
                if let Err(why) = shared.heartbeat(g).await {
                    shared.lost(g, &why);
                    gen = None;
                }
            }
            None => match shared.connect().await {
                Ok(g) => {
                    Counters::bump(&shared.counters.reconnects);
                    gen = Some(g);
                    backoff = MIN_BACKOFF;
                    tracing::info!(
                        prefix = %shared.prefix,
                        primary = shared.primary_addr(),
                        "near-cache reconnected to the primary; local tier starts empty"
                    );
                }
                Err(e) => {
                    tracing::warn!(
                        prefix = %shared.prefix,
                        error = %e,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "near-cache reconnect failed"
                    );
                    // Backoff between attempts; a pacing delay, not synchronisation.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            },
        }
    }
}
