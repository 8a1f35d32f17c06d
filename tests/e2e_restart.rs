//! End to end across a restart: the real example server (`examples/server.rs`) runs as a
//! process with `MEMSTORE_SNAPSHOT` set; a client stores a message in its session, the
//! server gets SIGTERM (and saves), a new server process starts from the snapshot, and the
//! same cookie reads the same message. The second one stops on SIGINT (Ctrl-C) and saves too.
#![cfg(unix)]

mod e2e_support;

use reqwest::cookie::Jar;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

const MESSAGE: &str = "Hello from a session!";

/// Builds the example with the features this test was built with (so cargo reuses the
/// library it already built) and returns the binary's path, from cargo's JSON messages.
fn build_server() -> PathBuf {
    let mut features = vec!["tower-sessions"];
    if cfg!(feature = "actix-session") {
        features.push("actix-session");
    }
    if cfg!(feature = "redis") {
        features.push("redis");
    }
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--example",
            "server",
            "--message-format=json",
            "--features",
        ])
        .arg(features.join(","))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo build");
    assert!(out.status.success(), "cargo build --example server failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "server")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("the example's executable in cargo's messages")
}

/// A running server process; killed if the test fails before stopping it.
struct Server {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    base: String,
}

impl Server {
    /// Starts the server on an ephemeral loopback port (`PORT=0`) and waits for the line
    /// that says where it listens (it prints it once it has bound). Returns it with the lines
    /// printed before that one.
    fn start(bin: &Path, snapshot: &Path) -> (Server, Vec<String>) {
        let mut child = Command::new(bin)
            .env("PORT", "0")
            .env("MEMSTORE_SNAPSHOT", snapshot)
            .env_remove("SESSION_STORE")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut before = Vec::new();
        let base = loop {
            let line = lines.next().expect("server output").unwrap();
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.to_owned();
            }
            before.push(line);
        };
        (Server { child, lines, base }, before)
    }

    /// Sends `signal` and waits for the process to exit; returns what it printed meanwhile.
    fn stop(mut self, signal: &str) -> Vec<String> {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the server exits cleanly on {signal}: {status}"
        );
        self.lines.by_ref().map(Result::unwrap).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(jar: &Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap()
}

#[test]
fn sessions_survive_a_restart_through_the_snapshot() {
    let bin = build_server();
    let dir = std::env::temp_dir().join(format!("memstore-e2e-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let snapshot = dir.join("sessions.snap");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jar = Arc::new(Jar::default());

    let (first, said) = Server::start(&bin, &snapshot);
    assert!(
        said.iter().any(|l| l.starts_with("no snapshot at")),
        "{said:?}"
    );
    let (cookie, other_cookie) = rt.block_on(async {
        let c = client(&jar);
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

    let (second, said) = Server::start(&bin, &snapshot);
    assert!(
        said.iter().any(|l| l.starts_with("restored 2 sessions")),
        "{said:?}"
    );
    rt.block_on(async {
        let c = client(&jar); // a new connection, the same cookie jar
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
