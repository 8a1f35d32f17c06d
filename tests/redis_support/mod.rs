//! A throwaway `redis-server` on a free loopback port, started and stopped by the test (or
//! bench) itself, and a delaying TCP proxy on loopback. Shared by `tests/redis_*.rs` and
//! `benches/redis.rs`.

#![allow(dead_code)] // each user takes what it needs

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn find_redis_server() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    })
}

/// The `redis-server` on PATH; a test that needs it fails with this message without it (the
/// near-cache tests are `#[ignore]`d unless asked for, so asking for them without a server is
/// an error, never a silent pass).
pub fn redis_server() -> PathBuf {
    find_redis_server().expect(
        "no redis-server on PATH: the near-cache tests need one \
         (apt-get install redis-server; .ci/run installs it)",
    )
}

/// For the bench: the `redis-server` on PATH, or `None` with a message saying what was
/// skipped; in CI (`CI` set) a missing server is a failure.
pub fn redis_server_or_skip(what: &str) -> Option<PathBuf> {
    let found = find_redis_server();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: no redis-server on PATH, so {what} cannot run (.ci/run installs it)"
        );
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {what}: no redis-server on PATH \
             (apt-get install redis-server, or run .ci/run; in CI this fails)"
        );
    }
    found
}

/// A child `redis-server` with no persistence, bound to 127.0.0.1 only. Killed on drop.
pub struct RedisServer {
    bin: PathBuf,
    pub port: u16,
    args: Vec<String>,
    /// The server's working folder (`--dir`: where a replica keeps the snapshot it syncs, and
    /// a Sentinel its config), its own, removed on drop.
    dir: PathBuf,
    /// A Sentinel's config file (it rewrites it), in `dir`.
    sentinel_conf: Option<PathBuf>,
    child: Option<Child>,
}

/// A fresh working folder for a server on `port`.
fn server_dir(port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memstore-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a working folder for redis-server");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl RedisServer {
    /// Starts a server on a free port and waits (bounded) until it answers.
    pub fn start(bin: PathBuf) -> RedisServer {
        RedisServer::start_with(bin, &[])
    }

    /// Starts a replica of `primary` on a free port (it answers at once; it may still be
    /// syncing).
    pub fn start_replica(bin: PathBuf, primary: &RedisServer) -> RedisServer {
        let port = primary.port.to_string();
        RedisServer::start_with(bin, &["--replicaof", "127.0.0.1", &port])
    }

    fn start_with(bin: PathBuf, args: &[&str]) -> RedisServer {
        let port = free_port();
        let mut server = RedisServer {
            bin,
            port,
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: server_dir(port),
            sentinel_conf: None,
            child: None,
        };
        server.spawn();
        server
    }

    /// Starts a Redis Sentinel (`redis-server --sentinel`) on a free port that monitors
    /// `primary` as `service`, alone (quorum 1), and calls it down after 500 ms.
    pub fn start_sentinel(bin: PathBuf, primary: &RedisServer, service: &str) -> RedisServer {
        let port = free_port();
        let dir = server_dir(port);
        let conf = dir.join("sentinel.conf");
        let primary_port = primary.port;
        std::fs::write(
            &conf,
            format!(
                "sentinel monitor {service} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {service} 500\n\
                 sentinel failover-timeout {service} 10000\n"
            ),
        )
        .expect("write the sentinel's config");
        let mut server = RedisServer {
            bin,
            port,
            args: Vec::new(),
            dir,
            sentinel_conf: Some(conf),
            child: None,
        };
        server.spawn();
        server
    }

    /// A blocking connection for test commands.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("a connection to the test's redis-server")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        // A restarted server starts empty: no snapshot a replica may have left.
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        let mut cmd = Command::new(&self.bin);
        match &self.sentinel_conf {
            Some(conf) => cmd.arg(conf).arg("--sentinel"),
            None => cmd.args(["--save", "", "--appendonly", "no"]),
        };
        let child = cmd
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls until the server answers PING (deadline 10 s).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).expect("url");
        loop {
            if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not come up within 10 s",
                self.port
            );
            // Pacing of a deadline poll, not synchronisation.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the server (its data is gone: no persistence) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy on loopback in front of a server, which can hold back what the server sends by
/// a delay (a slow link one way: requests pass at once, replies and pushes arrive late, in
/// order). Its tasks end with the test's runtime.
pub struct Proxy {
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:upstream`, with no delay.
    pub async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue; // the client sees its connection closed
                };
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                tokio::spawn(relay(client_rx, server_tx, None));
                tokio::spawn(relay(server_rx, client_tx, Some(delay.clone())));
            }
        });
        Proxy {
            port,
            delay_ms,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Holds back every byte the server sends from now on by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to`, each chunk sent `delay` after it arrived, in order.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Option<Arc<AtomicU64>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            // The delay being simulated, not synchronisation.
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let ms = delay.as_ref().map_or(0, |d| d.load(Relaxed));
                let due = tokio::time::Instant::now() + Duration::from_millis(ms);
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
