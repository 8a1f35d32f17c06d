//! Where the primary is and how to reach it: a list of nodes or Sentinel ([`Source`]), a
//! connection opened only to a node whose `ROLE` is `master`, a live connection with its
//! generation ([`Live`]), and which errors mean a connection is no good.

use ::redis::aio::MultiplexedConnection;
use ::redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use ::redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, ServerErrorKind, Value};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Where the primary is.
pub(super) enum Source {
    /// Fixed nodes (RESP3 clients), tried in turn from the last one that was primary.
    Nodes {
        clients: Vec<Client>,
        /// Index of the node tried first; only a hint, so `Relaxed`.
        preferred: AtomicUsize,
    },
    /// Redis Sentinel, asked for the current primary of `service` on every (re)connect.
    Sentinel {
        sentinel: Box<tokio::sync::Mutex<Sentinel>>,
        service: String,
        node: SentinelNodeConnectionInfo,
    },
}

impl Source {
    /// A connection to a node that says it is the primary, and the node's address. `timeout`
    /// bounds asking Sentinel (each node's connection has its own timeouts in `config`).
    pub(super) async fn open(
        &self,
        config: &AsyncConnectionConfig,
        timeout: Duration,
    ) -> Result<(MultiplexedConnection, String), RedisError> {
        match self {
            Source::Nodes { clients, preferred } => {
                let start = preferred.load(Relaxed);
                let mut last = None;
                for i in 0..clients.len() {
                    let at = (start + i) % clients.len();
                    match open_primary(&clients[at], config).await {
                        Ok(conn) => {
                            preferred.store(at, Relaxed);
                            return Ok((
                                conn,
                                clients[at].get_connection_info().addr().to_string(),
                            ));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    RedisError::from((ErrorKind::InvalidClientConfig, "no Redis node given"))
                }))
            }
            Source::Sentinel {
                sentinel,
                service,
                node,
            } => {
                let ask = async {
                    let mut sentinel = sentinel.lock().await;
                    sentinel.async_master_for(service, Some(node)).await
                };
                let client = tokio::time::timeout(timeout, ask).await.map_err(|_| {
                    RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
                })??;
                let conn = open_primary(&client, config).await?;
                Ok((conn, client.get_connection_info().addr().to_string()))
            }
        }
    }
}

async fn open_primary(
    client: &Client,
    config: &AsyncConnectionConfig,
) -> Result<MultiplexedConnection, RedisError> {
    let mut conn = client
        .get_multiplexed_async_connection_with_config(config)
        .await?;
    if is_primary(&mut conn).await? {
        Ok(conn)
    } else {
        Err(RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "not the primary (ROLE is not master)",
        )))
    }
}

/// `ROLE`'s first element is `master`.
pub(super) async fn is_primary(conn: &mut MultiplexedConnection) -> Result<bool, RedisError> {
    let role: Vec<Value> = ::redis::cmd("ROLE").query_async(conn).await?;
    Ok(match role.first() {
        Some(Value::BulkString(b)) => b == b"master",
        Some(Value::SimpleString(s)) => s == "master",
        _ => false,
    })
}

/// A connection and its generation: a loss reported by an older connection is ignored.
#[derive(Clone)]
pub(super) struct Live {
    pub(super) gen: u64,
    pub(super) conn: MultiplexedConnection,
}

/// Whether a command's error means this connection is no good: broken, stuck, or to a server
/// that is no longer the primary.
pub(super) fn connection_error(e: &RedisError) -> bool {
    e.is_unrecoverable_error()
        || e.is_connection_dropped()
        || e.is_io_error()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}
