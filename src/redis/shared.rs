//! What the handles, the heartbeat task and the connection's push handler share
//! ([`Shared`]): the local tier, the connection and its lease, the counters; and the
//! operations' common steps (a read with its fill from Redis, a write's round trip and local
//! step, an invalidation). The connection's life and the lease are in `conn`.

use super::coherence::{Step, Ticket, Tier};
use super::error::{Counters, NearCacheError};
use super::primary::{Live, Source};
use crate::{Bytes, MemStore};
use ::redis::{RedisError, Value};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the handles, the heartbeat task and the connection's push handler share.
pub(super) struct Shared {
    /// The local tier and its conflict tickets (`coherence`).
    pub(super) tier: Tier,
    /// Where the primary is (`primary`).
    pub(super) source: Source,
    pub(super) prefix: String,
    pub(super) max_staleness: Duration,
    pub(super) response_timeout: Duration,
    /// The connection to the primary; `None` while reconnecting. Held only for O(1) steps.
    pub(super) conn: Mutex<Option<Live>>,
    pub(super) next_gen: AtomicU64,
    /// Monotonic origin of `lease`.
    pub(super) origin: Instant,
    /// The staleness lease (see `conn`): 1 + nanoseconds since `origin` at which the last
    /// confirmed heartbeat was sent; 0 while disconnected.
    pub(super) lease: AtomicU64,
    pub(super) wake: tokio::sync::Notify,
    /// The address of the primary last connected to (for the events of a failover).
    pub(super) primary: Mutex<Option<String>>,
    pub(super) counters: Counters,
    #[cfg(feature = "test-hooks")]
    pub(super) hooks: Mutex<Vec<Armed>>,
}

impl Shared {
    pub(super) fn key(&self, token: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + token.len());
        key.push_str(&self.prefix);
        key.push_str(token);
        key
    }

    /// The local tier's verdict on a token that would be sent to Redis.
    pub(super) fn check_token(&self, token: &str) -> Result<(), crate::Error> {
        self.tier.local().check_input(token, 0, UNIX_EPOCH)
    }

    /// Validates a write with the local tier's own checks; the whole-millisecond expiry and
    /// deadline, or `None` when the expiry has already passed.
    pub(super) fn check_write(
        &self,
        token: &str,
        data: &Bytes,
        expiry: SystemTime,
    ) -> Result<Option<(u64, SystemTime)>, NearCacheError> {
        let local = self.tier.local();
        local.check_input(token, data.len(), expiry)?;
        let Ok(since) = expiry.duration_since(UNIX_EPOCH) else {
            return Ok(None); // before the epoch: long past
        };
        // In range: `check_input` accepted it in nanoseconds.
        let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let deadline = UNIX_EPOCH + Duration::from_millis(ms);
        Ok((deadline > local.now()).then_some((ms, deadline)))
    }

    /// An operation's local step (see [`Tier::settle`]), counting a conflict.
    fn settle(&self, ticket: Ticket, token: &str, step: Step) {
        if self.tier.settle(ticket, token, step) {
            Counters::bump(&self.counters.conflicts);
        }
    }

    /// An invalidation pushed by Redis, applied in the connection's reader.
    pub(super) fn invalidate(&self, data: &[Value]) {
        for value in data {
            match value {
                Value::Array(keys) | Value::Set(keys) => {
                    for key in keys {
                        self.invalidate_key(key);
                    }
                }
                Value::Nil => {
                    // FLUSHALL / FLUSHDB
                    self.tier.flush(self.tier.fresh());
                    Counters::bump(&self.counters.flushes);
                }
                key => self.invalidate_key(key),
            }
        }
    }

    fn invalidate_key(&self, key: &Value) {
        let bytes = match key {
            Value::BulkString(b) => b.as_slice(),
            Value::SimpleString(s) => s.as_bytes(),
            _ => return,
        };
        let Some(token) = bytes
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|t| std::str::from_utf8(t).ok())
        else {
            return; // not one of ours (tokens are UTF-8)
        };
        self.tier.invalidate(token);
        Counters::bump(&self.counters.invalidations);
    }

    /// A read (`find`, `expiry`): `local`'s answer from the local tier while the lease holds
    /// and it has one, else `remote`'s from what Redis holds (data and deadline; this fills
    /// the local tier). A token that cannot exist (empty, oversized) is `None`.
    pub(super) async fn read<T>(
        &self,
        token: &str,
        local: impl FnOnce(&MemStore) -> Option<T>,
        remote: impl FnOnce(Bytes, Option<SystemTime>) -> Option<T>,
    ) -> Result<Option<T>, NearCacheError> {
        if self.leased() {
            if let Some(hit) = local(&self.tier.local()) {
                Counters::bump(&self.counters.local_hits);
                return Ok(Some(hit));
            }
        }
        if self.check_token(token).is_err() {
            return Ok(None);
        }
        Ok(self
            .fetch(token)
            .await?
            .and_then(|(data, deadline)| remote(data, deadline)))
    }

    /// `GET` and `PEXPIRETIME` in one transaction; fills the local store (under a ticket).
    async fn fetch(
        &self,
        token: &str,
    ) -> Result<Option<(Bytes, Option<SystemTime>)>, NearCacheError> {
        Counters::bump(&self.counters.redis_reads);
        let ticket = self.tier.begin(token); // before `live`: see `Tier::begin`
        let mut live = self.live()?;
        let key = self.key(token);
        let reply: Result<(Option<Bytes>, i64), RedisError> = ::redis::pipe()
            .atomic()
            .get(&key)
            .cmd("PEXPIRETIME")
            .arg(&key)
            .query_async(&mut live.conn)
            .await;
        let (data, ms) = reply.map_err(|e| self.failed(&live, e))?;
        let (found, step) = match data {
            None => (None, Step::Drop),
            // No expiry: not written by a session store. Served, not cached.
            Some(data) if ms < 0 => (Some((data, None)), Step::Drop),
            Some(data) => {
                let deadline = UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
                if deadline <= self.tier.local().now() {
                    (None, Step::Drop) // expired by our clock
                } else {
                    let step = Step::Store(data.clone(), deadline);
                    (Some((data, Some(deadline))), step)
                }
            }
        };
        #[cfg(feature = "test-hooks")]
        self.hook(Point::BeforeLocalStep, token).await;
        self.settle(ticket, token, step);
        #[cfg(feature = "test-hooks")]
        self.hook(Point::AfterLocalStep, token).await;
        Ok(found)
    }

    /// A write's round trip then its local step, under a ticket. A failed round trip leaves
    /// Redis unknown: the local entry is dropped.
    pub(super) async fn write<T>(
        &self,
        token: &str,
        cmd: ::redis::Cmd,
        step: impl FnOnce(&T) -> Step,
    ) -> Result<T, NearCacheError>
    where
        T: ::redis::FromRedisValue,
    {
        let ticket = self.tier.begin(token); // before `live`: see `Tier::begin`
        let mut live = self.live()?;
        let reply = cmd.query_async::<T>(&mut live.conn).await;
        #[cfg(feature = "test-hooks")]
        self.hook(Point::BeforeLocalStep, token).await;
        let step = match &reply {
            Ok(r) => step(r),
            Err(_) => Step::Drop,
        };
        self.settle(ticket, token, step);
        #[cfg(feature = "test-hooks")]
        self.hook(Point::AfterLocalStep, token).await;
        reply.map_err(|e| self.failed(&live, e))
    }
}

/// Stops the connection task when the last handle goes.
pub(super) struct Handle {
    pub(super) shared: Arc<Shared>,
    pub(super) task: tokio::task::AbortHandle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where an operation (a fill or a write, after Redis answered it) can be held (`test_hooks`).
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Point {
    BeforeLocalStep,
    AfterLocalStep,
}

/// An armed pause point, held by the near-cache until an operation on its token reaches it.
#[cfg(feature = "test-hooks")]
pub(super) struct Armed {
    pub(super) point: Point,
    pub(super) token: String,
    pub(super) reached: tokio::sync::oneshot::Sender<()>,
    pub(super) release: tokio::sync::oneshot::Receiver<()>,
}
