//! Every breaker transition is a `tracing` event (target `walden::breaker`, WARN when it
//! opens, INFO otherwise), seen by a subscriber the application installs. Alone in its test
//! binary: tracing caches per-callsite interest process-wide, so a test running beside it
//! without a subscriber could hide events from this one.

use std::path::Path;
use std::sync::{Arc, Mutex};

use walden::{BreakerConfig, CallError, CircuitBreaker, ManualClock, Options, Store};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

fn fresh(config: BreakerConfig) -> (tempfile::TempDir, ManualClock, Store, CircuitBreaker) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let b = store.breaker("dep", config).unwrap();
    (dir, clock, store, b)
}

fn fail(b: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
    b.call(|| Err("down"))
}

/// Records the `walden::breaker` events emitted on this thread: (level, message, `to` field).
struct Recorder(Mutex<Vec<(tracing::Level, String, String)>>);

#[derive(Default)]
struct Fields {
    message: String,
    to: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "to" => self.to = format!("{value:?}"),
            _ => {}
        }
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "walden::breaker" {
            let mut f = Fields::default();
            event.record(&mut f);
            self.0.lock().unwrap().push((*event.metadata().level(), f.message, f.to));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn every_transition_is_a_tracing_event() {
    let (_dir, clock, _store, b) = fresh(BreakerConfig::default());
    let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
    tracing::subscriber::with_default(recorder.clone(), || {
        for _ in 0..3 {
            let _ = fail(&b);
        }
        clock.advance_ns(60 * S);
        b.call(|| Ok::<_, ()>(())).unwrap();
    });
    let events = recorder.0.lock().unwrap();
    let seen: Vec<_> = events.iter().map(|(l, m, to)| (*l, m.as_str(), to.as_str())).collect();
    assert_eq!(
        seen,
        [
            (tracing::Level::WARN, "circuit breaker opened", "Open"),
            (tracing::Level::INFO, "circuit breaker changed state", "HalfOpen"),
            (tracing::Level::INFO, "circuit breaker changed state", "Closed"),
        ]
    );
}
