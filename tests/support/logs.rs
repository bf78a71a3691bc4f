//! A `tracing` subscriber that keeps every event as text, for tests of what
//! is logged.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Every event's level and fields (`name=value …`), in order. Install it
/// with `tracing::subscriber::set_default(logs.clone())`.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl Logs {
    /// The text of every event, a line each.
    pub fn text(&self) -> String {
        let events = self.0.lock().unwrap();
        events.iter().map(|(_, t)| format!("{t}\n")).collect()
    }

    /// The text of every warning.
    pub fn warnings(&self) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(level, _)| *level == tracing::Level::WARN)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, "{}={value:?} ", field.name());
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, text.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
