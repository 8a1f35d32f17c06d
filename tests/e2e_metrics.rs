//! End to end: the real example server (`examples/server.rs`) runs as a process with
//! `--metrics`; a real HTTP client scrapes `/metrics` (Prometheus's text format, through
//! `metrics-exporter-prometheus`), stores a session with `/put`, and scrapes again: the
//! session count moved from 0 to 1, and the read counters are there.
#![cfg(unix)]

mod e2e_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Builds the example with the features this test was built with (so cargo reuses the
/// library it already built) and returns the binary's path, from cargo's JSON messages.
fn build_server() -> PathBuf {
    let mut features = vec!["tower-sessions", "metrics"];
    for (on, f) in [
        (cfg!(feature = "actix-session"), "actix-session"),
        (cfg!(feature = "redis"), "redis"),
        (cfg!(feature = "hash-index"), "hash-index"),
        (cfg!(feature = "test-hooks"), "test-hooks"),
    ] {
        if on {
            features.push(f);
        }
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

/// The server process; killed when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the sample `name{labels}` in a Prometheus text rendering.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn metrics_show_the_session_count_move_after_a_put() {
    let bin = build_server();
    let mut child = Command::new(&bin)
        .arg("--metrics")
        .env("PORT", "0")
        .env_remove("MEMSTORE_SNAPSHOT")
        .env_remove("SESSION_STORE")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = Server(child);
    let mut said = Vec::new();
    let base = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.to_owned();
        }
        said.push(line);
    };
    assert!(said.iter().any(|l| l == "metrics at /metrics"), "{said:?}");
    let sessions = r#"memstore_sessions{store="default"}"#;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (scraper, _) = e2e_support::client();
        let before = e2e_support::get(&scraper, &base, "/metrics").await;
        assert!(
            before.contains("# TYPE memstore_sessions gauge"),
            "{before}"
        );
        assert_eq!(sample(&before, sessions), Some(0.0), "{before}");

        let (browser, _) = e2e_support::client();
        assert_eq!(e2e_support::get(&browser, &base, "/put").await, "stored");
        let after = e2e_support::get(&scraper, &base, "/metrics").await;
        assert_eq!(sample(&after, sessions), Some(1.0), "{after}");
        assert!(
            sample(&after, r#"memstore_bytes{store="default"}"#).unwrap() > 0.0,
            "{after}"
        );
        assert!(
            after.contains("# TYPE memstore_hits_total counter"),
            "{after}"
        );
    });
    drop(server);
}
