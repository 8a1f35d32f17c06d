//! A `tracing` layer that keeps every event of the test process, for tests that assert the
//! crate's events. Installed once, process-wide (the store's events come from its own
//! threads, so a thread-local subscriber would miss them); tests pick their own events out
//! by a field that names their store (or their Redis server).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// One captured event: its level, target, message and fields (as text).
#[derive(Debug, Clone)]
pub struct Captured {
    pub level: Level,
    pub target: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Captured {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());
/// Notified after every captured event.
static ARRIVED: Condvar = Condvar::new();

struct Capture;

struct Fields<'a>(&'a mut Captured);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.0.fields.insert(field.name().to_owned(), text);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.message = value.to_owned();
        } else {
            self.0
                .fields
                .insert(field.name().to_owned(), value.to_owned());
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut c = Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Fields(&mut c));
        EVENTS.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        ARRIVED.notify_all();
    }
}

/// Installs the capturing layer as the process's subscriber (once).
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::registry()
            .with(Capture)
            .try_init()
            .expect("no other subscriber in this test binary");
    });
}

/// The events captured so far that `keep` selects.
pub fn events(keep: impl Fn(&Captured) -> bool) -> Vec<Captured> {
    EVENTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|e| keep(e))
        .cloned()
        .collect()
}

/// The events of the store named `store`.
pub fn of_store(store: &str) -> Vec<Captured> {
    events(|e| e.field("store") == Some(store))
}

/// Blocks until an event that `keep` selects has been captured (it returns the first), or
/// panics after `patience` (a hang detector, not a pacing delay).
pub fn wait_for(what: &str, patience: Duration, keep: impl Fn(&Captured) -> bool) -> Captured {
    let deadline = Instant::now() + patience;
    let mut events = EVENTS.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(e) = events.iter().find(|e| keep(e)) {
            return e.clone();
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("no event {what} within {patience:?}"));
        events = ARRIVED
            .wait_timeout(events, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}
