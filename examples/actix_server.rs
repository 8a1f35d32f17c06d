//! The seed's example server on actix-web: actix-session, sessions kept in memsession.
//!
//! ```sh
//! cargo run --release --features actix-session --example actix_server   # PORT=8080 to move it
//! curl -c jar -b jar localhost:4000/put && curl -c jar -b jar localhost:4000/get
//! ```
//!
//! `/put` stores "Hello from a session!" in the session, `/get` returns it (empty for a new
//! session). `tests/e2e_actix.rs` builds its servers with [`routes`] and [`sessions`] from
//! this file.

use actix_session::config::PersistentSession;
use actix_session::storage::SessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{time::Duration, Key};
use actix_web::{web, App, HttpServer};
use memsession::actix_session::MemStoreSessions;

/// The session key `/put` writes and `/get` reads.
pub const KEY: &str = "message";
/// What `/put` stores.
pub const MESSAGE: &str = "Hello from a session!";
/// A session's time-to-live in the store (and its cookie's max-age).
pub const SESSION_TTL: Duration = Duration::minutes(30);

async fn put(session: Session) -> actix_web::Result<&'static str> {
    session.insert(KEY, MESSAGE)?;
    Ok("stored")
}

async fn read(session: Session) -> actix_web::Result<String> {
    Ok(session.get::<String>(KEY)?.unwrap_or_default())
}

/// `/put` and `/get`: `App::new().configure(routes)`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/put", web::get().to(put))
        .route("/get", web::get().to(read));
}

/// actix-session over `store`, signing cookies with `key`: sessions live [`SESSION_TTL`], and
/// the cookie is not `Secure` (this demo serves plain HTTP).
pub fn sessions<S: SessionStore + 'static>(store: S, key: Key) -> SessionMiddleware<S> {
    SessionMiddleware::builder(store, key)
        .cookie_secure(false)
        .session_lifecycle(PersistentSession::default().session_ttl(SESSION_TTL))
        .build()
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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let store = MemStoreSessions::new(); // one store; every worker gets a handle
    let key = Key::generate(); // sessions do not survive a restart anyway
    let server = HttpServer::new(move || {
        App::new()
            .wrap(sessions(store.clone(), key.clone()))
            .configure(routes)
    })
    .bind(("127.0.0.1", port()?))?;
    println!("listening on http://{}", server.addrs()[0]);
    server.run().await
}
