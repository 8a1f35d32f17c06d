//! End to end across a restart: the real example server (`examples/server.rs`) runs as a
//! process with `MEMSTORE_SNAPSHOT` set; a client stores a message in its session, the
//! server gets SIGTERM (and saves), a new server process starts from the snapshot, and the
//! same cookie reads the same message. The second one stops on SIGINT (Ctrl-C) and saves too.
#![cfg(unix)]

mod e2e_support;

use e2e_support::{build_server, client_with, Server};
use reqwest::cookie::Jar;
use std::sync::Arc;

const MESSAGE: &str = "Hello from a session!";

#[test]
fn sessions_survive_a_restart_through_the_snapshot() {
    let bin = build_server(&["tower-sessions"]);
    let dir = std::env::temp_dir().join(format!("memstore-e2e-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let snapshot = dir.join("sessions.snap");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jar = Arc::new(Jar::default());

    let (first, said) = Server::start(&bin, &[], Some(&snapshot));
    assert!(
        said.iter().any(|l| l.starts_with("no snapshot at")),
        "{said:?}"
    );
    let (cookie, other_cookie) = rt.block_on(async {
        let c = client_with(&jar);
        assert_eq!(e2e_support::get(&c, &first.base, "/put").await, "stored");
        assert_eq!(e2e_support::get(&c, &first.base, "/get").await, MESSAGE);
        // A second browser whose session must come back as its own.
        let (c2, jar2) = e2e_support::client();
        e2e_support::get(&c2, &first.base, "/put").await;
        (
            e2e_support::session_cookie(&jar, &first.base).unwrap(),
            e2e_support::session_cookie(&jar2, &first.base).unwrap(),
        )
    });
    assert_ne!(cookie, other_cookie);
    let said = first.stop("-TERM");
    assert!(
        said.iter().any(|l| l.starts_with("saved 2 sessions")),
        "{said:?}"
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&snapshot).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode, 0o600);

    let (second, said) = Server::start(&bin, &[], Some(&snapshot));
    assert!(
        said.iter().any(|l| l.starts_with("restored 2 sessions")),
        "{said:?}"
    );
    rt.block_on(async {
        let c = client_with(&jar); // a new connection, the same cookie jar
        assert_eq!(e2e_support::get(&c, &second.base, "/get").await, MESSAGE);
        assert_eq!(
            e2e_support::session_cookie(&jar, &second.base).unwrap(),
            cookie,
            "the same session, not a new one"
        );
        let (fresh, _) = e2e_support::client();
        assert_eq!(e2e_support::get(&fresh, &second.base, "/get").await, "");
    });
    let said = second.stop("-INT");
    assert!(
        said.iter().any(|l| l.starts_with("saved 2 sessions")),
        "{said:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
