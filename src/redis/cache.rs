//! [`NearCache`]: the handle and its operations (`commit`, `find`, `delete`, `all`, ...).
//! Connecting is [`NearCacheBuilder`](super::NearCacheBuilder)'s (`builder`).

use super::coherence::{lock, Step};
use super::error::{NearCacheError, NearCacheStats};
use super::shared::{Handle, Shared};
use crate::{Bytes, MemStore};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

const SCAN_COUNT: usize = 512;

/// A session store whose truth is Redis, with a coherent local [`MemStore`] in front: the
/// same contract as [`MemStore`] (`commit`, `find`, `delete`, `all`), async and fallible.
///
/// A cheap [`Clone`] handle; the connection and its heartbeat task live until the last clone
/// is dropped. Needs a tokio runtime. See the [module docs](super) for the coherence
/// guarantees and the staleness bound.
///
/// ```no_run
/// use memsession::redis::NearCache;
/// use std::time::{Duration, SystemTime};
///
/// # async fn demo() -> Result<(), memsession::redis::NearCacheError> {
/// let sessions = NearCache::builder()
///     .prefix("app:sessions:")
///     .max_staleness(Duration::from_millis(500))
///     .connect("redis://127.0.0.1:6379")
///     .await?;
/// let expiry = SystemTime::now() + Duration::from_secs(30 * 60);
/// sessions.commit("token", "data", expiry).await?;
/// assert_eq!(sessions.find("token").await?.as_deref(), Some(&b"data"[..])); // local hit
/// assert_eq!(sessions.stats().local_hits, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NearCache {
    pub(super) handle: Arc<Handle>,
}

impl fmt::Debug for NearCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.handle.shared;
        f.debug_struct("NearCache")
            .field("prefix", &s.prefix)
            .field("max_staleness", &s.max_staleness)
            .field("local", &*s.tier.local())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl NearCache {
    pub(super) fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Inserts `token`'s session or overwrites its data and expiry: `SET` with `PXAT` in
    /// Redis, then the local store. An `expiry` at or before now deletes the session.
    ///
    /// # Errors
    /// [`NearCacheError::Invalid`] for bad input (nothing is written);
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`] if Redis did not confirm
    /// the write (the local entry is dropped; Redis may or may not hold the new data).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) -> Result<(), memsession::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime};
    /// sessions.commit("t", "data", SystemTime::now() + Duration::from_secs(60)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<(), NearCacheError> {
        let s = self.shared();
        let data = data.into();
        let Some((ms, deadline)) = s.check_write(token, &data, expiry)? else {
            return self.delete(token).await;
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token)).arg(&data[..]).arg("PXAT").arg(ms);
        s.write(token, cmd, move |_: &()| Step::Store(data, deadline))
            .await
    }

    /// Inserts `token`'s session only if Redis holds no live session under it
    /// (`SET ... PXAT ... NX`): an insert-if-absent across every instance. Returns whether
    /// this call inserted it. An `expiry` at or before now inserts nothing and returns whether
    /// the token was free.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) -> Result<(), memsession::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime};
    /// let expiry = SystemTime::now() + Duration::from_secs(60);
    /// assert!(sessions.commit_new("fresh", "a", expiry).await?);
    /// assert!(!sessions.commit_new("fresh", "b", expiry).await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit_new(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, NearCacheError> {
        let s = self.shared();
        let data = data.into();
        let Some((ms, deadline)) = s.check_write(token, &data, expiry)? else {
            return Ok(self.find(token).await?.is_none());
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token))
            .arg(&data[..])
            .arg("PXAT")
            .arg(ms)
            .arg("NX");
        let reply: Option<String> = s
            .write(token, cmd, move |r: &Option<String>| match r {
                Some(_) => Step::Store(data, deadline),
                None => Step::Drop, // someone else's session: read it from Redis when asked
            })
            .await?;
        Ok(reply.is_some())
    }

    /// Overwrites `token`'s session only if Redis holds a live session under it
    /// (`SET ... PXAT ... XX`): it never creates one, so a request that saves a session that
    /// another request (a logout, an id cycle) has just deleted does not bring it back, on any
    /// instance. Returns whether it overwrote one. An `expiry` at or before now deletes a live
    /// session (`DEL`) and returns whether there was one.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) -> Result<(), memsession::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime};
    /// let expiry = SystemTime::now() + Duration::from_secs(60);
    /// assert!(!sessions.commit_existing("gone", "x", expiry).await?); // nothing to update
    /// sessions.commit("live", "a", expiry).await?;
    /// assert!(sessions.commit_existing("live", "b", expiry).await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit_existing(
        &self,
        token: &str,
        data: impl Into<Bytes>,
        expiry: SystemTime,
    ) -> Result<bool, NearCacheError> {
        let s = self.shared();
        let data = data.into();
        let Some((ms, deadline)) = s.check_write(token, &data, expiry)? else {
            let mut cmd = ::redis::cmd("DEL");
            cmd.arg(s.key(token));
            let deleted: i64 = s.write(token, cmd, |_: &i64| Step::Drop).await?;
            return Ok(deleted > 0);
        };
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(s.key(token))
            .arg(&data[..])
            .arg("PXAT")
            .arg(ms)
            .arg("XX");
        let reply: Option<String> = s
            .write(token, cmd, move |r: &Option<String>| match r {
                Some(_) => Step::Store(data, deadline),
                None => Step::Drop,
            })
            .await?;
        Ok(reply.is_some())
    }

    /// The session's data, or `None` if it is missing or expired: from the local store when it
    /// holds the token and the last heartbeat is fresh, else from Redis (which fills the local
    /// store). A token that cannot exist (empty, oversized) is `None`.
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`] on a local miss that
    /// Redis could not answer.
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) -> Result<(), memsession::redis::NearCacheError> {
    /// assert_eq!(sessions.find("never-written").await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn find(&self, token: &str) -> Result<Option<Bytes>, NearCacheError> {
        self.shared()
            .read(token, |local| local.find(token), |data, _| Some(data))
            .await
    }

    /// The session's expiry (whole milliseconds), or `None` if it is missing or expired; read
    /// like [`find`](Self::find).
    ///
    /// # Errors
    /// As [`find`](Self::find).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) -> Result<(), memsession::redis::NearCacheError> {
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// let expiry = UNIX_EPOCH + Duration::from_millis(4_000_000_000_000);
    /// sessions.commit("t", "x", expiry).await?;
    /// assert_eq!(sessions.expiry("t").await?, Some(expiry));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn expiry(&self, token: &str) -> Result<Option<SystemTime>, NearCacheError> {
        self.shared()
            .read(token, |local| local.expiry(token), |_, deadline| deadline)
            .await
    }

    /// Removes `token`'s session: `DEL` in Redis, then the local store; every other instance
    /// drops its copy when the invalidation arrives. A missing token is a no-op.
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`] if Redis did not confirm
    /// the delete (the local entry is dropped anyway).
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) -> Result<(), memsession::redis::NearCacheError> {
    /// sessions.delete("token").await?;
    /// assert_eq!(sessions.find("token").await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete(&self, token: &str) -> Result<(), NearCacheError> {
        let s = self.shared();
        if s.check_token(token).is_err() {
            return Ok(()); // no such session can exist
        }
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(s.key(token));
        s.write(token, cmd, |_: &i64| Step::Drop).await.map(drop)
    }

    /// Every live session in Redis under the prefix, token to data (`SCAN` and `MGET`; not a
    /// snapshot: sessions written or deleted meanwhile may or may not appear). Does not fill
    /// the local store.
    ///
    /// # Errors
    /// [`NearCacheError::Redis`] or [`NearCacheError::Disconnected`].
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) -> Result<(), memsession::redis::NearCacheError> {
    /// for (token, data) in sessions.all().await? {
    ///     println!("{token}: {} bytes", data.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn all(&self) -> Result<HashMap<String, Bytes>, NearCacheError> {
        let s = self.shared();
        let mut live = s.live()?;
        let pattern = format!("{}*", glob_escape(&s.prefix));
        let mut out = HashMap::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut live.conn)
                .await
                .map_err(|e| s.failed(&live, e))?;
            if !keys.is_empty() {
                let values: Vec<Option<Bytes>> = ::redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut live.conn)
                    .await
                    .map_err(|e| s.failed(&live, e))?;
                for (key, value) in keys.into_iter().zip(values) {
                    let token = key
                        .strip_prefix(s.prefix.as_bytes())
                        .and_then(|t| std::str::from_utf8(t).ok());
                    if let (Some(token), Some(value)) = (token, value) {
                        out.insert(token.to_owned(), value);
                    }
                }
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// The local tier as it is now: for stats, or to see what this instance holds. A flush
    /// (lost connection, reconnect, `FLUSHALL`) replaces it with a fresh, empty one, so hold
    /// the handle only briefly. Writing to it directly bypasses Redis and breaks coherence;
    /// read only.
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) {
    /// println!("{} sessions cached here", sessions.local().len());
    /// # }
    /// ```
    pub fn local(&self) -> Arc<MemStore> {
        self.shared().tier.local_full()
    }

    /// Counters: local hits, Redis reads, invalidations, flushes, connection losses.
    ///
    /// ```no_run
    /// # async fn demo(sessions: memsession::redis::NearCache) {
    /// let stats = sessions.stats();
    /// assert!(stats.connected || stats.connection_losses > 0);
    /// # }
    /// ```
    pub fn stats(&self) -> NearCacheStats {
        let s = self.shared();
        let connected = lock(&s.conn).is_some();
        s.counters.snapshot(connected)
    }

    /// Sets the near-cache's figures (`memstore_nearcache_*`: [`NearCacheStats`]) and its
    /// local store's ([`MemStore::record_metrics`]) in the installed `metrics` recorder,
    /// labelled `store` with the local store's name ([`NearCacheBuilder::name`](super::NearCacheBuilder::name);
    /// feature `metrics`). Call it before a scrape.
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        let local = self.local();
        local.record_metrics();
        crate::metrics_export::record_near_cache(&local.name, &self.stats());
    }
}

/// Escapes Redis glob characters so the prefix matches literally in `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
