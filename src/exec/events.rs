//! Pipeline events: what a running pipeline says about itself, as values a program subscribes
//! to (gst's bus messages).
//!
//! [`Events`] is a small broadcast: every subscriber gets its own bounded channel and every
//! event, in the order it was published. Publishing never blocks a streaming thread: a
//! subscriber that does not keep up loses the newest events, and the number it lost is kept
//! ([`Subscription::lost`]). With nobody subscribed, publishing is one relaxed atomic load.
//!
//! `parallax-launch -m` prints the same events it would deliver to a subscriber (one
//! `message: ...` line each); the library exposes them through `RunControl::events`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Events one subscriber may have waiting before newer ones are dropped for it.
pub const SUBSCRIBER_CAPACITY: usize = 1024;

/// The states a pipeline moves through (see [`crate::exec::Session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineState {
    /// Nothing allocated.
    Suspended,
    /// Elements built, not moving.
    Idle,
    /// Moving buffers.
    Running,
}

/// One thing a pipeline says about itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The pipeline moved between states.
    StateChanged {
        /// Where it was.
        from: PipelineState,
        /// Where it is.
        to: PipelineState,
    },
    /// Every stream reached its end (the run is over, without error).
    Eos,
    /// The run failed; the pipeline stops.
    Error {
        /// The element that failed, when one did.
        element: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// Something worth saying that does not stop the run.
    Warning {
        /// The element concerned.
        element: String,
        /// What happened.
        message: String,
    },
    /// A message an element or one of the pipeline's threads posts (`-m` lines).
    Element {
        /// The element or thread.
        element: String,
        /// Its text.
        message: String,
    },
    /// Quality of service: an element dropped buffers to keep up (a leaky queue, an appsink
    /// with `drop=true`, a sink that was late).
    Qos {
        /// The element that dropped.
        element: String,
        /// Buffers dropped so far.
        dropped: u64,
    },
}

impl std::fmt::Display for Event {
    /// The `-m` line of the event (without `message: ` and newline).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::StateChanged { from, to } => write!(f, "state changed from {from:?} to {to:?}"),
            Event::Eos => f.write_str("end of stream"),
            Event::Error {
                element: Some(e),
                message,
            } => write!(f, "error: {e}: {message}"),
            Event::Error {
                element: None,
                message,
            } => write!(f, "error: {message}"),
            Event::Warning { element, message } => write!(f, "warning: {element}: {message}"),
            Event::Element { element, message } => write!(f, "{element}: {message}"),
            Event::Qos { element, dropped } => write!(f, "qos: {element}: {dropped} dropped"),
        }
    }
}

struct Subscriber {
    tx: kanal::Sender<Event>,
    lost: Arc<AtomicU64>,
}

/// The broadcast of one pipeline's events (cheap to clone: clones share subscribers).
#[derive(Clone, Default)]
pub struct Events {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    any: AtomicBool,
    subscribers: Mutex<Vec<Subscriber>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("subscribed", &self.inner.any.load(Ordering::Relaxed))
            .finish()
    }
}

impl Events {
    /// A broadcast nobody listens to yet.
    pub fn new() -> Events {
        Events::default()
    }

    /// A new subscriber: it gets every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = kanal::bounded(SUBSCRIBER_CAPACITY);
        let lost = Arc::new(AtomicU64::new(0));
        let mut subs = self.lock();
        subs.push(Subscriber {
            tx,
            lost: Arc::clone(&lost),
        });
        self.inner.any.store(true, Ordering::Release);
        Subscription { rx, lost }
    }

    /// Whether anyone listens (publishers may skip building an event when not).
    pub fn is_subscribed(&self) -> bool {
        self.inner.any.load(Ordering::Acquire)
    }

    /// Hands `event` to every subscriber without waiting; one whose channel is full loses it.
    pub fn publish(&self, event: Event) {
        if !self.is_subscribed() {
            return;
        }
        let mut subs = self.lock();
        subs.retain(|s| match s.tx.try_send(event.clone()) {
            Ok(true) => true,
            Ok(false) => {
                s.lost.fetch_add(1, Ordering::Relaxed);
                true
            }
            // The subscription was dropped.
            Err(_) => false,
        });
        if subs.is_empty() {
            self.inner.any.store(false, Ordering::Release);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// One subscriber's end: events in publication order.
#[derive(Debug)]
pub struct Subscription {
    rx: kanal::Receiver<Event>,
    lost: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event, waiting for it; `None` once the pipeline and its publishers are gone.
    pub fn recv(&self) -> Option<Event> {
        self.rx.recv().ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok().flatten()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Every event waiting now.
    pub fn drain(&self) -> Vec<Event> {
        std::iter::from_fn(|| self.try_recv()).collect()
    }

    /// Events this subscriber lost because it did not keep up.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_gets_every_event_in_order() {
        let events = Events::new();
        events.publish(Event::Eos); // nobody listens: dropped
        let a = events.subscribe();
        let b = events.subscribe();
        events.publish(Event::StateChanged {
            from: PipelineState::Idle,
            to: PipelineState::Running,
        });
        events.publish(Event::Eos);
        for s in [&a, &b] {
            let got = s.drain();
            assert_eq!(got.len(), 2);
            assert_eq!(got[1], Event::Eos);
        }
    }

    #[test]
    fn a_slow_subscriber_loses_events_and_never_blocks_the_publisher() {
        let events = Events::new();
        let s = events.subscribe();
        for _ in 0..SUBSCRIBER_CAPACITY + 10 {
            events.publish(Event::Eos);
        }
        assert_eq!(s.drain().len(), SUBSCRIBER_CAPACITY);
        assert_eq!(s.lost(), 10);
    }

    #[test]
    fn a_dropped_subscription_is_forgotten() {
        let events = Events::new();
        drop(events.subscribe());
        events.publish(Event::Eos);
        assert!(!events.is_subscribed());
    }

    #[test]
    fn events_print_as_messages_and_serialize_tagged() {
        let e = Event::Qos {
            element: "appsink0".into(),
            dropped: 3,
        };
        assert_eq!(e.to_string(), "qos: appsink0: 3 dropped");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"qos","element":"appsink0","dropped":3}"#
        );
    }
}
