//! Pipeline events: what a running pipeline says about itself, as values a program subscribes
//! to (gst's bus messages).
//!
//! [`Events`] is a small broadcast: every subscriber gets its own bounded channel and every
//! event, in the order it was published. Publishing never blocks a streaming thread: a
//! subscriber that does not keep up loses the newest events, and the number it lost is kept
//! ([`Subscription::lost`]). With nobody subscribed, publishing is one atomic load (warnings,
//! which are always printed, take a lock: they are rare).
//!
//! A listener ([`Events::listen`]) is called in the publishing thread instead, in order with
//! everything that thread writes: that is how `-m` ([`RunOptions::messages`]) prints the events,
//! one [`Event::line`] each, and how warnings reach stderr without `-m`. The library exposes the
//! same stream through `RunControl::events`, `Session::subscribe` and a typed pipeline's
//! `Sealed::subscribe`.
//!
//! [`RunOptions::messages`]: super::RunOptions::messages

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
    /// Quality of service: an element rendered buffers late or dropped some to keep up (a
    /// `sync=true` sink behind the clock, an appsink with `drop=true`, videorate).
    Qos {
        /// The element concerned.
        element: String,
        /// Buffers it rendered later than [`crate::element::Qos::LATE_NS`] so far.
        late: u64,
        /// Buffers it dropped so far.
        dropped: u64,
    },
}

impl Event {
    /// The line `-m` prints for the event (with its newline): `pipeline: ...` for the
    /// pipeline's own states and end, `parallax: warning: ...` for a warning (printed with or
    /// without `-m`), `message: ...` for the rest.
    pub fn line(&self) -> String {
        match self {
            Event::StateChanged { from, to } => {
                let state = match (from, to) {
                    (_, PipelineState::Running) => "running",
                    (PipelineState::Running, PipelineState::Idle) => "paused",
                    (_, PipelineState::Idle) => "prepared",
                    (_, PipelineState::Suspended) => "suspended",
                };
                format!("pipeline: {state}\n")
            }
            Event::Eos => "pipeline: end of stream\n".to_owned(),
            Event::Warning { element, message } => {
                format!("parallax: warning: {element}: {message}\n")
            }
            other => format!("message: {other}\n"),
        }
    }
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
            Event::Qos {
                element,
                late,
                dropped,
            } => match (late, dropped) {
                (0, _) => write!(f, "qos: {element}: {dropped} dropped"),
                (_, 0) => write!(f, "qos: {element}: {late} late"),
                _ => write!(f, "qos: {element}: {late} late, {dropped} dropped"),
            },
        }
    }
}

/// What a listener is handed: each event, in the publishing thread.
pub type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

enum Subscriber {
    /// A [`Subscription`]'s channel.
    Queue {
        tx: kanal::Sender<Event>,
        lost: Arc<AtomicU64>,
    },
    /// A listener: every event (`all`), or warnings only.
    Listener { id: u64, all: bool, f: Listener },
}

/// The broadcast of one pipeline's events (cheap to clone: clones share subscribers).
#[derive(Clone, Default)]
pub struct Events {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Someone wants every event (a subscription, or a listener with `all`).
    any: AtomicBool,
    subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
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
        subs.push(Subscriber::Queue {
            tx,
            lost: Arc::clone(&lost),
        });
        self.inner.any.store(true, Ordering::Release);
        Subscription { rx, lost }
    }

    /// Calls `f` with every event (`all`) or with warnings only, in the publishing thread,
    /// until the returned guard is dropped. `f` must be quick (it holds up a streaming thread)
    /// and must not publish.
    pub fn listen(&self, all: bool, f: Listener) -> Listening {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subs = self.lock();
        subs.push(Subscriber::Listener { id, all, f });
        if all {
            self.inner.any.store(true, Ordering::Release);
        }
        Listening {
            events: self.clone(),
            id,
        }
    }

    /// A listener that writes each event's [`Event::line`] to `console`: every event with
    /// `messages` (`-m`), warnings only without.
    pub fn print_to(&self, console: super::Console, messages: bool) -> Listening {
        self.listen(
            messages,
            Arc::new(move |event: &Event| console.write(&event.line())),
        )
    }

    /// Whether anyone wants every event (publishers skip building one when not).
    #[inline]
    pub fn is_subscribed(&self) -> bool {
        self.inner.any.load(Ordering::Acquire)
    }

    /// Hands `event` to every subscriber without waiting (one whose channel is full loses
    /// it), and to every listener that wants it.
    pub fn publish(&self, event: Event) {
        let warning = matches!(event, Event::Warning { .. });
        if !warning && !self.is_subscribed() {
            return;
        }
        let mut subs = self.lock();
        subs.retain(|s| match s {
            Subscriber::Queue { tx, lost } => match tx.try_send(event.clone()) {
                Ok(true) => true,
                Ok(false) => {
                    lost.fetch_add(1, Ordering::Relaxed);
                    true
                }
                // The subscription was dropped.
                Err(_) => false,
            },
            Subscriber::Listener { all, f, .. } => {
                if *all || warning {
                    f(&event);
                }
                true
            }
        });
        self.refresh(&subs);
    }

    fn refresh(&self, subs: &[Subscriber]) {
        let any = subs.iter().any(|s| match s {
            Subscriber::Queue { .. } => true,
            Subscriber::Listener { all, .. } => *all,
        });
        self.inner.any.store(any, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// A listener's registration: dropping it stops the calls.
#[must_use = "the listener is removed when this is dropped"]
pub struct Listening {
    events: Events,
    id: u64,
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening").field("id", &self.id).finish()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut subs = self.events.lock();
        subs.retain(|s| !matches!(s, Subscriber::Listener { id, .. } if *id == self.id));
        self.events.refresh(&subs);
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
            late: 0,
            dropped: 3,
        };
        assert_eq!(e.to_string(), "qos: appsink0: 3 dropped");
        assert_eq!(e.line(), "message: qos: appsink0: 3 dropped\n");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"qos","element":"appsink0","late":0,"dropped":3}"#
        );
        let w = Event::Warning {
            element: "x".into(),
            message: "careful".into(),
        };
        assert_eq!(w.line(), "parallax: warning: x: careful\n");
        assert_eq!(Event::Eos.line(), "pipeline: end of stream\n");
    }

    #[test]
    fn a_listener_gets_events_in_the_publishing_thread_until_its_guard_goes() {
        let events = Events::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&seen);
        let warnings_only = events.listen(
            false,
            Arc::new(move |e: &Event| into.lock().unwrap().push(e.clone())),
        );
        assert!(
            !events.is_subscribed(),
            "a warnings-only listener wants no QoS"
        );
        events.publish(Event::Eos);
        let warning = Event::Warning {
            element: "x".into(),
            message: "careful".into(),
        };
        events.publish(warning.clone());
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            std::slice::from_ref(&warning)
        );
        let all = events.listen(true, Arc::new(|_: &Event| {}));
        assert!(events.is_subscribed());
        drop(all);
        assert!(!events.is_subscribed());
        drop(warnings_only);
        events.publish(warning);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
