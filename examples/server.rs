//! The seed's example server, in Rust: axum + tower-sessions, sessions kept in memsession.
//!
//! ```sh
//! cargo run --release --features tower-sessions --example server   # PORT=8080 to move it
//! curl -c jar -b jar localhost:4000/put && curl -c jar -b jar localhost:4000/get
//! ```
//!
//! `/put` stores "Hello from a session!" in the session, `/get` returns it (empty for a new
//! session). `SESSION_STORE=tower-memory` runs the same server on tower-sessions' own
//! `MemoryStore`, for comparison. `tests/e2e_axum.rs` builds its servers with [`routes`] and
//! [`with_sessions`] from this file.
//!
//! `MEMSTORE_SNAPSHOT=sessions.snap` keeps sessions across restarts: the server restores
//! them from that file at start (if it exists), and on SIGTERM or Ctrl-C stops accepting,
//! finishes its requests and saves them there before it exits (`tests/e2e_restart.rs`).
//!
//! `--metrics` (or `MEMSTORE_METRICS=1`), with the feature `metrics`, serves the store's
//! figures at `/metrics` in Prometheus's text format, through `metrics-exporter-prometheus`
//! (`tests/e2e_metrics.rs`):
//!
//! ```sh
//! cargo run --release --features tower-sessions,metrics --example server -- --metrics
//! curl localhost:4000/metrics
//! ```

use axum::{http::StatusCode, routing::get, Router};
use memsession::tower_sessions::MemStoreSessions;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

/// The session key `/put` writes and `/get` reads.
pub const KEY: &str = "message";
/// What `/put` stores.
pub const MESSAGE: &str = "Hello from a session!";
/// Sessions end after this long without a request.
pub const IDLE_TIMEOUT: time::Duration = time::Duration::minutes(30);

async fn put(session: Session) -> Result<&'static str, StatusCode> {
    session
        .insert(KEY, MESSAGE)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok("stored")
}

async fn read(session: Session) -> Result<String, StatusCode> {
    let message: Option<String> = session
        .get(KEY)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(message.unwrap_or_default())
}

/// `/put` and `/get`, without sessions: add routes, then wrap with [`with_sessions`].
pub fn routes() -> Router {
    Router::new()
        .route("/put", get(put))
        .route("/get", get(read))
}

/// `router` with tower-sessions over `store`: an idle timeout of [`IDLE_TIMEOUT`], and a
/// cookie that is not `Secure` (this demo serves plain HTTP).
pub fn with_sessions<S: SessionStore + Clone>(router: Router, store: S) -> Router {
    router.layer(
        SessionManagerLayer::new(store)
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(IDLE_TIMEOUT)),
    )
}

/// The port: `PORT`, or 4000.
pub fn port() -> std::io::Result<u16> {
    match std::env::var("PORT") {
        Err(_) => Ok(4000),
        Ok(p) => p.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("PORT={p}: {e}"))
        }),
    }
}

/// Whether `/metrics` was asked for: `--metrics` or `MEMSTORE_METRICS=1`.
pub fn metrics_requested() -> bool {
    std::env::args().skip(1).any(|a| a == "--metrics")
        || std::env::var("MEMSTORE_METRICS").is_ok_and(|v| v == "1")
}

/// `router` and `/metrics`: installs the Prometheus recorder (once per process) and serves
/// its rendering, with `store`'s figures set just before (outside the session layer).
#[cfg(feature = "metrics")]
pub fn with_metrics(router: Router, store: MemStoreSessions) -> std::io::Result<Router> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    let scrape = move || {
        let (handle, store) = (handle.clone(), store.clone());
        async move {
            store.store().record_metrics();
            handle.render()
        }
    };
    Ok(router.merge(Router::new().route("/metrics", get(scrape))))
}

/// Without the feature `metrics` there is nothing to serve: says so.
#[cfg(not(feature = "metrics"))]
pub fn with_metrics(_router: Router, _store: MemStoreSessions) -> std::io::Result<Router> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "/metrics needs the feature `metrics` (--features tower-sessions,metrics)",
    ))
}

/// The snapshot file: `MEMSTORE_SNAPSHOT`, if set.
pub fn snapshot_path() -> Option<std::path::PathBuf> {
    std::env::var_os("MEMSTORE_SNAPSHOT").map(Into::into)
}

/// Resolves on SIGTERM (what service managers and `docker stop` send) or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port()?)).await?;
    if let Ok("tower-memory") = std::env::var("SESSION_STORE").as_deref() {
        let app = with_sessions(routes(), tower_sessions::MemoryStore::default());
        println!("listening on http://{}", listener.local_addr()?);
        return axum::serve(listener, app).await;
    }
    let sessions = MemStoreSessions::new();
    let snapshot = snapshot_path();
    if let Some(path) = &snapshot {
        match sessions.load_snapshot(path) {
            Ok(r) => println!(
                "restored {} sessions from {} ({} expired, {} refused)",
                r.loaded,
                path.display(),
                r.expired,
                r.refused
            ),
            Err(e) if e.is_not_found() => println!("no snapshot at {} yet", path.display()),
            // A damaged file: keep what loaded and serve; the next save replaces it.
            Err(e) => eprintln!("{}: {e}", path.display()),
        }
    }
    let mut app = with_sessions(routes(), sessions.clone());
    if metrics_requested() {
        app = with_metrics(app, sessions.clone())?;
        println!("metrics at /metrics");
    }
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    if let Some(path) = &snapshot {
        let r = sessions
            .save_snapshot(path)
            .map_err(std::io::Error::other)?;
        println!("saved {} sessions to {}", r.records, path.display());
    }
    Ok(())
}
