//! What the end-to-end tests share. The HTTP client side (both frameworks' tests and the
//! example server's): a reqwest client with its own cookie jar, a GET that asserts success,
//! and the session cookie's value. The example server (`examples/server.rs`) as a process
//! (`e2e_restart.rs`, `e2e_metrics.rs`): built once, started on an ephemeral port, stopped.
#![allow(dead_code)]

use reqwest::cookie::{CookieStore, Jar};
use reqwest::Client;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

/// A client with a cookie jar of its own (one browser).
pub fn client() -> (Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    (client_with(&jar), jar)
}

/// A client (a new connection) on the cookie jar `jar` (the same browser).
pub fn client_with(jar: &Arc<Jar>) -> Client {
    Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap()
}

/// GETs `base` + `path`, asserts a success status, returns the body.
pub async fn get(client: &Client, base: &str, path: &str) -> String {
    let res = client.get(format!("{base}{path}")).send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.text().await.unwrap()
}

/// The value of the `id` cookie the jar holds for `base`.
pub fn session_cookie(jar: &Jar, base: &str) -> Option<String> {
    let cookies = jar.cookies(&base.parse().unwrap())?;
    cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix("id="))
        .map(str::to_owned)
}

/// Builds the example server with the features `required` and those of the library that this
/// test was built with (so cargo reuses the library it already built) and returns the
/// binary's path, from cargo's JSON messages.
pub fn build_server(required: &[&str]) -> PathBuf {
    let mut features = required.to_vec();
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

/// A running example server process; killed if the test ends before stopping it.
pub struct Server {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Where it listens: `http://` and its address.
    pub base: String,
}

impl Server {
    /// Starts `bin` with `args` on an ephemeral loopback port (`PORT=0`), its snapshot file at
    /// `snapshot` (none: `MEMSTORE_SNAPSHOT` unset) and the default store (`SESSION_STORE`
    /// unset), and waits for the line that says where it listens (it prints it once it has
    /// bound). Returns it with the lines printed before that one.
    pub fn start(bin: &Path, args: &[&str], snapshot: Option<&Path>) -> (Server, Vec<String>) {
        let mut command = Command::new(bin);
        command
            .args(args)
            .env("PORT", "0")
            .env_remove("SESSION_STORE");
        match snapshot {
            Some(path) => command.env("MEMSTORE_SNAPSHOT", path),
            None => command.env_remove("MEMSTORE_SNAPSHOT"),
        };
        let mut child = command
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
    pub fn stop(mut self, signal: &str) -> Vec<String> {
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
