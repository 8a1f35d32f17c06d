//! End to end: the actix example server (`examples/actix_server.rs`: actix-web +
//! actix-session over memsession) on an ephemeral loopback port, driven by a real HTTP client
//! with a cookie store.

mod e2e_support;

#[path = "../examples/actix_server.rs"]
#[allow(dead_code)] // its `main` and `port` are the example's own
mod server;

use actix_session::storage::SessionStore;
use actix_session::Session;
use actix_web::cookie::Key;
use actix_web::{dev::ServerHandle, web, App, HttpServer};
use e2e_support::client;
use memsession::actix_session::MemStoreSessions;
use memsession::{ManualClock, MemStore};
use reqwest::cookie::Jar;
use reqwest::Client;
use server::MESSAGE;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// A server on 127.0.0.1:0 over a memstore on a manual clock (no cleanup thread).
struct Server {
    base: String,
    sessions: MemStoreSessions,
    clock: ManualClock,
    handle: ServerHandle,
}

async fn renew(session: Session) -> &'static str {
    session.renew();
    "renewed"
}

fn start() -> Server {
    let clock = ManualClock::new(SystemTime::now());
    let sessions = MemStoreSessions::from(
        MemStore::builder()
            .clock(clock.clone())
            .cleanup_interval(Duration::ZERO)
            .build(),
    );
    let key = Key::generate();
    let store = sessions.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The example's routes and middleware, plus one route to exercise `renew`.
    let server = HttpServer::new(move || {
        App::new()
            .wrap(server::sessions(store.clone(), key.clone()))
            .configure(server::routes)
            .route("/renew", web::get().to(renew))
    })
    .workers(2)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Server {
        base,
        sessions,
        clock,
        handle,
    }
}

impl Server {
    async fn get(&self, client: &Client, path: &str) -> String {
        e2e_support::get(client, &self.base, path).await
    }

    /// The session cookie's value the jar holds (the key, encrypted: actix-session's default).
    fn cookie(&self, jar: &Jar) -> Option<String> {
        e2e_support::session_cookie(jar, &self.base)
    }

    /// The session keys the store holds live.
    fn keys(&self) -> Vec<String> {
        self.sessions.store().iter().map(|(k, _)| k).collect()
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }
}

#[actix_web::test]
async fn put_then_get_returns_the_message() {
    let s = start();
    let (c, jar) = client();
    assert_eq!(s.get(&c, "/get").await, "", "a new session is empty");
    assert!(s.keys().is_empty(), "an empty session is not stored");
    assert_eq!(s.get(&c, "/put").await, "stored");
    assert_eq!(s.get(&c, "/get").await, MESSAGE);
    let keys = s.keys();
    assert_eq!(keys.len(), 1);
    assert!(
        s.cookie(&jar).is_some(),
        "a session cookie (encrypted: it hides the key)"
    );
    s.stop().await;
}

#[actix_web::test]
async fn a_second_client_does_not_see_the_first_clients_session() {
    let s = start();
    let (a, _) = client();
    let (b, b_jar) = client();
    s.get(&a, "/put").await;
    assert_eq!(s.get(&b, "/get").await, "");
    assert_eq!(s.cookie(&b_jar), None, "b got no session");
    assert_eq!(s.get(&a, "/get").await, MESSAGE);
    assert_eq!(s.keys().len(), 1);
    s.stop().await;
}

#[actix_web::test]
async fn an_expired_session_reads_as_a_fresh_one() {
    let s = start();
    let (c, _) = client();
    s.get(&c, "/put").await;
    let old = s.keys();
    s.clock.advance(Duration::from_secs(
        server::SESSION_TTL.whole_seconds() as u64 + 1,
    ));
    assert_eq!(s.get(&c, "/get").await, "", "expired: fresh and empty");
    assert!(s.keys().is_empty());
    assert_eq!(s.sessions.store().cleanup_now(), 1, "reclaimed by cleanup");
    s.get(&c, "/put").await;
    let new = s.keys();
    assert_eq!(new.len(), 1);
    assert_ne!(new, old, "a fresh session gets a fresh key");
    assert_eq!(s.get(&c, "/get").await, MESSAGE);
    s.stop().await;
}

#[actix_web::test]
async fn renew_keeps_the_data_and_invalidates_the_old_key() {
    let s = start();
    let (c, jar) = client();
    s.get(&c, "/put").await;
    let old_cookie = s.cookie(&jar).unwrap();
    let old = s.keys();
    assert_eq!(s.get(&c, "/renew").await, "renewed");
    let new = s.keys();
    assert_eq!(new.len(), 1, "the old key is deleted");
    assert_ne!(new, old);
    assert_ne!(s.cookie(&jar).unwrap(), old_cookie);
    assert_eq!(s.get(&c, "/get").await, MESSAGE, "data kept");
    // Replaying the old (validly signed) cookie gets a fresh, empty session.
    let replay = Client::new()
        .get(format!("{}/get", s.base))
        .header("cookie", format!("id={old_cookie}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(replay, "");
    s.stop().await;
}

#[actix_web::test]
async fn concurrent_requests_on_one_session_never_miss_it() {
    // actix-session loads and saves each request's copy independently (last save wins); what
    // it promises is that every request sees the existing session and none forks it (an
    // update of a live key keeps the key). Overwrites race reads: none may miss the session.
    let s = start();
    let (c, _) = client();
    s.get(&c, "/put").await;
    let key = s.keys();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let path = if i % 2 == 0 { "/put" } else { "/get" };
        let url = format!("{}{path}", s.base);
        let c = c.clone();
        tasks.push(actix_web::rt::spawn(async move {
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
    assert_eq!(s.keys(), key, "still the same session, under the same key");
    s.stop().await;
}

#[actix_web::test]
async fn store_contract() {
    let clock = ManualClock::new(SystemTime::now());
    let store = MemStoreSessions::from(
        MemStore::builder()
            .clock(clock.clone())
            .cleanup_interval(Duration::ZERO)
            .build(),
    );
    let ttl = actix_web::cookie::time::Duration::minutes(5);
    let state = HashMap::from([("k".to_owned(), "\"v\"".to_owned())]);
    let key = store.save(state.clone(), &ttl).await.unwrap();
    let k: &str = key.as_ref();
    assert_eq!(k.len(), memsession::TOKEN_LEN, "256 bits in base64url");
    assert!(k
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let other = store.save(state.clone(), &ttl).await.unwrap();
    assert_ne!(other, key);
    assert_eq!(store.load(&key).await.unwrap(), Some(state.clone()));

    // update_ttl moves the deadline and keeps the data.
    store
        .update_ttl(&key, &actix_web::cookie::time::Duration::minutes(60))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10 * 60));
    assert_eq!(store.load(&key).await.unwrap(), Some(state.clone()));
    assert_eq!(
        store.load(&other).await.unwrap(),
        None,
        "5 minutes: expired"
    );

    // update of a live key keeps the key; of an expired one saves under a new key.
    let changed = HashMap::from([("k".to_owned(), "\"w\"".to_owned())]);
    let key_str = k.to_owned();
    let same = store.update(key, changed.clone(), &ttl).await.unwrap();
    assert_eq!(AsRef::<str>::as_ref(&same), key_str);
    assert_eq!(store.load(&same).await.unwrap(), Some(changed.clone()));
    let other_str: String = other.into();
    let other = actix_session::storage::SessionKey::try_from(other_str.clone()).unwrap();
    let moved = store.update(other, changed.clone(), &ttl).await.unwrap();
    assert_ne!(AsRef::<str>::as_ref(&moved), other_str);
    assert_eq!(store.load(&moved).await.unwrap(), Some(changed));

    // A deleted key is gone, and update does not bring it back under the same key.
    store.delete(&same).await.unwrap();
    assert_eq!(store.load(&same).await.unwrap(), None);

    // Keys the store cannot hold (cookie keys may be up to 4064 bytes) are misses, not errors.
    let long = actix_session::storage::SessionKey::try_from("x".repeat(1000)).unwrap();
    assert_eq!(store.load(&long).await.unwrap(), None);
    store.update_ttl(&long, &ttl).await.unwrap();
    store.delete(&long).await.unwrap();
    let saved = store.update(long, state, &ttl).await.unwrap();
    assert_eq!(
        AsRef::<str>::as_ref(&saved).len(),
        memsession::TOKEN_LEN,
        "saved under a fresh key"
    );
}

/// A time-to-live of zero or less: `save` and `update` refuse it with a typed error and store
/// nothing (no key for a session that was never stored); `update_ttl` ends the session.
#[actix_web::test]
async fn a_ttl_of_zero_or_less_is_refused_by_save_and_update() {
    use actix_session::storage::{SaveError, UpdateError};
    use memsession::actix_session::TtlNotPositive;
    let store = MemStoreSessions::from(MemStore::with_cleanup_interval(Duration::ZERO));
    let state = HashMap::from([("k".to_owned(), "\"v\"".to_owned())]);
    for ttl in [
        actix_web::cookie::time::Duration::ZERO,
        actix_web::cookie::time::Duration::seconds(-5),
    ] {
        match store.save(state.clone(), &ttl).await {
            Err(SaveError::Other(e)) => {
                assert_eq!(e.downcast_ref(), Some(&TtlNotPositive { ttl }))
            }
            Err(e) => panic!("save, ttl {ttl}: {e:?}"),
            Ok(key) => panic!(
                "save, ttl {ttl}: returned key {:?}; stored: {:?}",
                AsRef::<str>::as_ref(&key),
                store.load(&key).await.unwrap()
            ),
        }
        assert!(
            store.store().is_empty(),
            "save with ttl {ttl} stored a session"
        );
    }
    let five = actix_web::cookie::time::Duration::minutes(5);
    let key = store.save(state.clone(), &five).await.unwrap();
    let key_str = AsRef::<str>::as_ref(&key).to_owned();
    let zero = actix_web::cookie::time::Duration::ZERO;
    let changed = HashMap::from([("k".to_owned(), "\"w\"".to_owned())]);
    match store.update(key, changed, &zero).await {
        Err(UpdateError::Other(e)) => assert!(e.downcast_ref::<TtlNotPositive>().is_some()),
        other => panic!("update with ttl 0: {:?}", other.map(String::from)),
    }
    let key = actix_session::storage::SessionKey::try_from(key_str).unwrap();
    assert_eq!(
        store.load(&key).await.unwrap(),
        Some(state),
        "a refused update changes nothing"
    );
    store.update_ttl(&key, &zero).await.unwrap();
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "update_ttl 0 ends it"
    );
    assert!(store.store().is_empty());
}
