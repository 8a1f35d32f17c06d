//! End to end: the example server (`examples/server.rs`: axum + tower-sessions over memsession)
//! on an ephemeral loopback port, driven by a real HTTP client with a cookie store.

mod e2e_support;

#[path = "../examples/server.rs"]
#[allow(dead_code)] // its `main` and `port` are the example's own
mod server;

use e2e_support::client;
use memsession::tower_sessions::MemStoreSessions;
use memsession::{ManualClock, MemStore};
use reqwest::cookie::Jar;
use reqwest::Client;
use server::MESSAGE;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tower_sessions::session::{Id, Record};
use tower_sessions::{Session, SessionStore};

/// A server on 127.0.0.1:0 over a memstore on a manual clock (no cleanup thread).
struct Server {
    base: String,
    sessions: MemStoreSessions,
    clock: ManualClock,
}

async fn cycle(session: Session) -> Result<&'static str, axum::http::StatusCode> {
    session
        .cycle_id()
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok("cycled")
}

/// The gates of `/slow`: it signals `loaded` once it has loaded the session, then waits for
/// `proceed` before changing it, so a test runs other requests in between.
#[derive(Default)]
struct Gates {
    loaded: Notify,
    proceed: Notify,
}

/// A request that loads the session, waits at the gates, then writes to it (so that
/// tower-sessions saves it when the response goes out).
async fn slow(session: Session, gates: Arc<Gates>) -> Result<&'static str, axum::http::StatusCode> {
    let err = |_| axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    let _: Option<String> = session.get(server::KEY).await.map_err(err)?;
    gates.loaded.notify_one();
    gates.proceed.notified().await;
    session.insert("cart", "one item").await.map_err(err)?;
    Ok("slow")
}

/// A logout: the session's data and its record go.
async fn logout(session: Session) -> Result<&'static str, axum::http::StatusCode> {
    session
        .flush()
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok("logged out")
}

async fn start() -> Server {
    start_with(Arc::default()).await
}

async fn start_with(gates: Arc<Gates>) -> Server {
    let clock = ManualClock::new(SystemTime::now());
    let sessions = MemStoreSessions::from(
        MemStore::builder()
            .clock(clock.clone())
            .cleanup_interval(Duration::ZERO)
            .build(),
    );
    // The example's routes plus `cycle_id`, a logout and a slow request, under the
    // example's layer.
    let app = server::with_sessions(
        server::routes()
            .route("/cycle", axum::routing::get(cycle))
            .route("/logout", axum::routing::get(logout))
            .route(
                "/slow",
                axum::routing::get(move |session: Session| slow(session, gates.clone())),
            ),
        sessions.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base,
        sessions,
        clock,
    }
}

impl Server {
    async fn get(&self, client: &Client, path: &str) -> String {
        e2e_support::get(client, &self.base, path).await
    }

    /// The session id the jar holds for this server.
    fn session_id(&self, jar: &Jar) -> Option<String> {
        e2e_support::session_cookie(jar, &self.base)
    }

    fn live(&self) -> usize {
        self.sessions.store().all().len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_returns_the_message() {
    let s = start().await;
    let (c, jar) = client();
    assert_eq!(s.get(&c, "/get").await, "", "a new session is empty");
    assert_eq!(s.live(), 0, "an empty session is not stored");
    assert_eq!(s.get(&c, "/put").await, "stored");
    assert_eq!(s.get(&c, "/get").await, MESSAGE);
    let id = s.session_id(&jar).expect("a session cookie");
    assert!(
        s.sessions.store().find(&id).is_some(),
        "stored under its id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_does_not_see_the_first_clients_session() {
    let s = start().await;
    let (a, _) = client();
    let (b, b_jar) = client();
    s.get(&a, "/put").await;
    assert_eq!(s.get(&b, "/get").await, "");
    assert_eq!(s.session_id(&b_jar), None, "b got no session");
    assert_eq!(s.get(&a, "/get").await, MESSAGE);
    assert_eq!(s.live(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_reads_as_a_fresh_one() {
    let s = start().await;
    let (c, jar) = client();
    s.get(&c, "/put").await;
    let old = s.session_id(&jar).unwrap();
    // Idle for the whole timeout (the store's clock; the cookie's real-time max-age holds).
    s.clock.advance(Duration::from_secs(
        server::IDLE_TIMEOUT.whole_seconds() as u64 + 1,
    ));
    assert_eq!(s.get(&c, "/get").await, "", "expired: fresh and empty");
    assert_eq!(s.live(), 0);
    assert_eq!(s.sessions.store().cleanup_now(), 1, "reclaimed by cleanup");
    assert_eq!(
        s.session_id(&jar),
        None,
        "the empty session's cookie is removed"
    );
    // tower-sessions stamps `expiry_date` from the system clock: bring the store's clock back
    // to it, or the next session would be born expired.
    s.clock.set(SystemTime::now());
    s.get(&c, "/put").await;
    let new = s.session_id(&jar).unwrap();
    assert_ne!(new, old, "a fresh session gets a fresh id");
    assert_eq!(s.get(&c, "/get").await, MESSAGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycle_id_keeps_the_data_and_invalidates_the_old_id() {
    let s = start().await;
    let (c, jar) = client();
    s.get(&c, "/put").await;
    let old = s.session_id(&jar).unwrap();
    assert_eq!(s.get(&c, "/cycle").await, "cycled");
    let new = s.session_id(&jar).unwrap();
    assert_ne!(new, old);
    assert_eq!(s.get(&c, "/get").await, MESSAGE, "data kept");
    assert_eq!(s.sessions.store().find(&old), None, "old id deleted");
    // A client replaying the old cookie gets a fresh, empty session.
    let replay = Client::new()
        .get(format!("{}/get", s.base))
        .header("cookie", format!("id={old}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(replay, "");
    assert_eq!(s.live(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_session_never_miss_it() {
    // tower-sessions loads and saves each request's copy of the session independently (last
    // save wins); what it promises is that a session that exists is seen by every request,
    // and no request forks it. Overwrites race reads here: none may miss the session.
    let s = start().await;
    let (c, jar) = client();
    s.get(&c, "/put").await;
    let id = s.session_id(&jar).unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let path = if i % 2 == 0 { "/put" } else { "/get" };
        let url = format!("{}{path}", s.base);
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let res = c.get(url).send().await.unwrap();
            assert!(res.status().is_success());
            (path, res.text().await.unwrap())
        }));
    }
    for t in tasks {
        match t.await.unwrap() {
            ("/put", body) => assert_eq!(body, "stored"),
            (_, body) => assert_eq!(body, MESSAGE),
        }
    }
    assert_eq!(s.session_id(&jar).unwrap(), id, "still the same session");
    assert_eq!(s.live(), 1);
}

/// A request in flight when the user logs out: it loaded the session before the logout and
/// saves it after. The session stays logged out: its data (the "authenticated" message) is
/// not brought back under the old id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_racing_a_logout_never_resurrects_the_session() {
    let gates = Arc::new(Gates::default());
    let s = start_with(gates.clone()).await;
    let (c, jar) = client();
    s.get(&c, "/put").await;
    let id = s.session_id(&jar).unwrap();
    let slow = {
        let (c, base) = (c.clone(), s.base.clone());
        tokio::spawn(async move { e2e_support::get(&c, &base, "/slow").await })
    };
    gates.loaded.notified().await;
    assert_eq!(s.get(&c, "/logout").await, "logged out");
    assert_eq!(s.live(), 0, "the logout deleted the session");
    gates.proceed.notify_one();
    assert_eq!(slow.await.unwrap(), "slow");
    assert_eq!(
        s.sessions.store().find(&id),
        None,
        "the slow request's save brought the logged-out session back"
    );
    assert_eq!(s.live(), 0);
    // The client still holds the old id (the slow response set it last): it gets a fresh,
    // empty session, not the logged-out one.
    assert_eq!(s.session_id(&jar).as_deref(), Some(&*id));
    assert_eq!(s.get(&c, "/get").await, "");
    assert_eq!(s.live(), 0);
}

/// A request in flight while another one cycles the session's id (as on a login): the old
/// id, deleted by `cycle_id`, is not brought back with the session's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_racing_cycle_id_never_resurrects_the_old_id() {
    let gates = Arc::new(Gates::default());
    let s = start_with(gates.clone()).await;
    let (c, jar) = client();
    s.get(&c, "/put").await;
    let old = s.session_id(&jar).unwrap();
    let slow = {
        let (c, base) = (c.clone(), s.base.clone());
        tokio::spawn(async move { e2e_support::get(&c, &base, "/slow").await })
    };
    gates.loaded.notified().await;
    assert_eq!(s.get(&c, "/cycle").await, "cycled");
    let new = s.session_id(&jar).unwrap();
    assert_ne!(new, old);
    gates.proceed.notify_one();
    assert_eq!(slow.await.unwrap(), "slow");
    assert_eq!(
        s.sessions.store().find(&old),
        None,
        "the slow request's save brought the old id back"
    );
    assert!(
        s.sessions.store().find(&new).is_some(),
        "the new id holds the session"
    );
    assert_eq!(s.live(), 1);
}

/// `save` replaces only a live session: it never creates one (tower-sessions creates through
/// `create`).
#[tokio::test]
async fn save_replaces_only_a_live_session() {
    let sessions = MemStoreSessions::new();
    let mut r = record(Id::default());
    sessions.save(&r).await.unwrap();
    assert_eq!(
        sessions.load(&r.id).await.unwrap(),
        None,
        "save created a session"
    );
    sessions.create(&mut r).await.unwrap();
    r.data.insert("k".to_owned(), serde_json::json!("changed"));
    sessions.save(&r).await.unwrap();
    assert_eq!(sessions.load(&r.id).await.unwrap(), Some(r.clone()));
    sessions.delete(&r.id).await.unwrap();
    sessions.save(&r).await.unwrap();
    assert_eq!(
        sessions.load(&r.id).await.unwrap(),
        None,
        "save undid a delete"
    );
    assert!(sessions.store().is_empty());
}

fn record(id: Id) -> Record {
    Record {
        id,
        data: [("k".to_owned(), serde_json::json!("v"))].into(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
    }
}

#[tokio::test]
async fn create_draws_a_new_id_on_collision() {
    let sessions = MemStoreSessions::new();
    let taken = Id::default();
    let mut first = record(taken);
    sessions.create(&mut first).await.unwrap();
    assert_eq!(first.id, taken, "a free id is kept");
    let mut second = record(taken);
    second
        .data
        .insert("k".to_owned(), serde_json::json!("second"));
    sessions.create(&mut second).await.unwrap();
    assert_ne!(second.id, taken, "a taken id is replaced");
    assert_eq!(sessions.load(&taken).await.unwrap(), Some(first));
    assert_eq!(sessions.load(&second.id).await.unwrap(), Some(second));
}

#[tokio::test]
async fn expiry_date_is_the_deadline() {
    let clock = ManualClock::new(SystemTime::now());
    let sessions = MemStoreSessions::from(
        MemStore::builder()
            .clock(clock.clone())
            .cleanup_interval(Duration::ZERO)
            .build(),
    );
    let mut r = record(Id::default());
    sessions.create(&mut r).await.unwrap();
    assert_eq!(
        sessions.store().expiry(&r.id.to_string()),
        Some(SystemTime::from(r.expiry_date))
    );
    clock.set(SystemTime::from(r.expiry_date));
    assert_eq!(sessions.load(&r.id).await.unwrap(), None);
    use tower_sessions::ExpiredDeletion;
    sessions.delete_expired().await.unwrap();
    assert!(sessions.store().is_empty());
}

#[tokio::test]
async fn undecodable_data_is_a_typed_error() {
    let sessions = MemStoreSessions::new();
    let id = Id::default();
    let later = SystemTime::now() + Duration::from_secs(60);
    sessions
        .store()
        .commit(&id.to_string(), "not msgpack", later)
        .unwrap();
    assert!(matches!(
        sessions.load(&id).await,
        Err(tower_sessions::session_store::Error::Decode(_))
    ));
}
