//! End to end: the real example server (`examples/server.rs`) runs as a process with
//! `--metrics`; a real HTTP client scrapes `/metrics` (Prometheus's text format, through
//! `metrics-exporter-prometheus`), stores a session with `/put`, and scrapes again: the
//! session count moved from 0 to 1, and the read counters are there.
#![cfg(unix)]

mod e2e_support;

use e2e_support::{build_server, Server};

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
    let bin = build_server(&["tower-sessions", "metrics"]);
    let (server, said) = Server::start(&bin, &["--metrics"], None);
    assert!(said.iter().any(|l| l == "metrics at /metrics"), "{said:?}");
    let sessions = r#"memstore_sessions{store="default"}"#;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (scraper, _) = e2e_support::client();
        let before = e2e_support::get(&scraper, &server.base, "/metrics").await;
        assert!(
            before.contains("# TYPE memstore_sessions gauge"),
            "{before}"
        );
        assert_eq!(sample(&before, sessions), Some(0.0), "{before}");

        let (browser, _) = e2e_support::client();
        assert_eq!(
            e2e_support::get(&browser, &server.base, "/put").await,
            "stored"
        );
        let after = e2e_support::get(&scraper, &server.base, "/metrics").await;
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
