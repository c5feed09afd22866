//! Elements that act on time as well as on buffers: `delay`, `timeout` and `debounce`. Each
//! declares [`Hints::TIMED`]: it runs on a thread of its own whose wait for the next buffer ends
//! at the element's deadline, so its timer fires while upstream is silent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::element::prelude::*;

/// `ns` as a duration; the time properties are checked non-negative by their range.
fn nanos(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

// --- delay ---------------------------------------------------------------------------------

pub(crate) static DELAY: Factory = Factory {
    name: "delay",
    aliases: &["asyncdelay"],
    klass: Klass::Filter,
    summary: "Holds each buffer back for a fixed time",
    doc: "Every buffer leaves delay nanoseconds after it arrived, its pts (when set) moved on by \
          the same; buffers that arrive meanwhile are not held up by the ones before them. At \
          end of stream the buffers still held leave at their time, then the stream ends. A \
          held buffer keeps its memory, so upstream's pool bounds how many wait.",
    pads: Pads::ONE_TO_ONE,
    props: &[PropSpec::time(
        "delay",
        0,
        0,
        i64::MAX,
        "How long each buffer is held, in nanoseconds",
    )
    .required()],
    hints: Hints::TIMED,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(Delay {
            delay: nanos(p.time("delay")?),
            held: VecDeque::new(),
        })))
    },
};

struct Delay {
    delay: Duration,
    held: VecDeque<(Instant, Buffer)>,
}

impl Delay {
    /// Passes on every held buffer that is due at `now`.
    fn release_due(&mut self, now: Instant, cx: &mut Ctx<'_>) {
        while self.held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, buf) = self.held.pop_front().expect("checked above");
            cx.push(buf);
        }
    }
}

impl Transform for Delay {
    fn process(&mut self, mut buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let now = Instant::now();
        buf.meta.set_pts(
            buf.meta
                .pts()
                .map(|pts| pts.saturating_add(self.delay.as_nanos() as u64)),
        );
        self.held.push_back((now + self.delay, buf));
        self.release_due(now, cx);
        Ok(Flow::Held)
    }

    fn deadline(&self) -> Option<Instant> {
        self.held.front().map(|(due, _)| *due)
    }

    fn on_deadline(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.release_due(Instant::now(), cx);
        Ok(())
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        while let Some((due, buf)) = self.held.pop_front() {
            // Wait for each one's time, in short steps so that a stop ends the wait.
            loop {
                let left = due.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                if cx.is_stopping() {
                    return Err(ElementError::Interrupted);
                }
                std::thread::sleep(left.min(Duration::from_millis(20)));
            }
            cx.push(buf);
        }
        Ok(())
    }
}

// --- timeout -------------------------------------------------------------------------------

pub(crate) static TIMEOUT: Factory = Factory {
    name: "timeout",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Passes buffers, and a fallback buffer whenever the input is silent too long",
    doc: "Buffers pass unchanged. When no buffer came for timeout nanoseconds (counted from the \
          start, then from the last buffer or fallback), the fallback data leaves as a buffer of \
          its own, marked with the MARKER flag and numbered in a sequence of its own; it repeats \
          every timeout while the silence lasts (repeat=true) or once per silence.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::time(
            "timeout",
            1_000_000_000,
            1,
            i64::MAX,
            "Silence after which the fallback is sent, in nanoseconds",
        ),
        PropSpec::string(
            "fallback",
            Some(""),
            "The fallback buffer's bytes, with C escapes (\\n, \\xHH, ...)",
        )
        .checked(|t| super::unescape_c(t).map(drop)),
        PropSpec::bool(
            "repeat",
            true,
            "Send the fallback again every timeout while the silence lasts",
        ),
    ],
    hints: Hints::TIMED,
    build: |p| {
        let fallback = super::unescape_c(p.string("fallback")?.unwrap_or_default())
            .map_err(|(_, e)| ElementError::Config(format!("fallback: {e}")))?;
        Ok(ElementImpl::Transform(Box::new(Timeout {
            timeout: nanos(p.time("timeout")?),
            fallback: Buffer::from_vec(fallback),
            repeat: p.bool("repeat")?,
            last: std::cell::Cell::new(None),
            armed: true,
            sent: 0,
        })))
    },
};

struct Timeout {
    timeout: Duration,
    /// Shared by every fallback sent: each is a refcount clone.
    fallback: Buffer,
    repeat: bool,
    /// The last buffer or fallback; before any, the first time the thread asked for the
    /// deadline (when it started waiting).
    last: std::cell::Cell<Option<Instant>>,
    /// Whether a silence may still send a fallback (always with repeat).
    armed: bool,
    sent: u64,
}

impl Transform for Timeout {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        self.last.set(Some(Instant::now()));
        self.armed = true;
        Ok(Flow::Push(buf))
    }

    fn deadline(&self) -> Option<Instant> {
        if !self.armed {
            return None;
        }
        let last = self.last.get().unwrap_or_else(|| {
            let now = Instant::now();
            self.last.set(Some(now));
            now
        });
        Some(last + self.timeout)
    }

    fn on_deadline(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let now = Instant::now();
        if self
            .last
            .get()
            .is_some_and(|last| now < last + self.timeout)
        {
            return Ok(());
        }
        let mut out = self.fallback.clone();
        out.meta.sequence = self.sent;
        out.meta.set_pts(Some(cx.running_time_ns()));
        out.meta.flags = BufferFlags::MARKER;
        self.sent += 1;
        self.last.set(Some(now));
        self.armed = self.repeat;
        cx.push(out);
        Ok(())
    }
}

// --- debounce ------------------------------------------------------------------------------

pub(crate) static DEBOUNCE: Factory = Factory {
    name: "debounce",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Passes a buffer only once the input has been quiet for a while",
    doc: "Each buffer replaces the one held before it (which is dropped, counted) and restarts \
          the wait; the held buffer leaves when no other came for quiet nanoseconds, or at end \
          of stream. A burst thus leaves as its last buffer.",
    pads: Pads::ONE_TO_ONE,
    props: &[PropSpec::time(
        "quiet",
        100_000_000,
        0,
        i64::MAX,
        "How long the input must be silent before the last buffer passes, in nanoseconds",
    )],
    hints: Hints::TIMED,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(Debounce {
            quiet: nanos(p.time("quiet")?),
            held: None,
        })))
    },
};

struct Debounce {
    quiet: Duration,
    held: Option<(Instant, Buffer)>,
}

impl Transform for Debounce {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let replaced = self.held.replace((Instant::now() + self.quiet, buf));
        Ok(if replaced.is_some() {
            Flow::Drop
        } else {
            Flow::Held
        })
    }

    fn deadline(&self) -> Option<Instant> {
        self.held.as_ref().map(|(due, _)| *due)
    }

    fn on_deadline(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self
            .held
            .as_ref()
            .is_some_and(|(due, _)| *due <= Instant::now())
        {
            let (_, buf) = self.held.take().expect("checked above");
            cx.push(buf);
        }
        Ok(())
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if let Some((_, buf)) = self.held.take() {
            cx.push(buf);
        }
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&DELAY, &TIMEOUT, &DEBOUNCE];
