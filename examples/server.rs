//! The seed's example server, in Rust: axum + tower-sessions, sessions kept in memstore.
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

use axum::{http::StatusCode, routing::get, Router};
use memstore::tower_sessions::MemStoreSessions;
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = match std::env::var("SESSION_STORE").as_deref() {
        Ok("tower-memory") => with_sessions(routes(), tower_sessions::MemoryStore::default()),
        _ => with_sessions(routes(), MemStoreSessions::new()),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port()?)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
