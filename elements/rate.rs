//! Rate control: `ratelimiter` holds a stream to a rate by waiting (nothing is lost), `throttle`
//! holds it there by dropping what comes too fast (nothing waits).
//!
//! Both count time on the monotonic clock from the first buffer they see, and both take a
//! byte rate, a buffer rate or both (0 leaves one out). The rates may change while the
//! pipeline runs (the control socket): each buffer reads them anew.

use std::time::{Duration, Instant};

use crate::element::prelude::*;

/// A ratelimiter waits: it is no RT-safe neighbour for a fused segment's other elements.
const WAITS: Hints = Hints {
    rt_safe: false,
    ..Hints::FUSABLE
};

/// The rate properties both elements share.
const BYTES_PER_SECOND: PropSpec = PropSpec::uint(
    "bytes-per-second",
    0,
    0,
    u64::MAX,
    "Bytes let through per second at most (0 = no byte limit; 1M = 1 MiB)",
)
.mutable();
const BUFFERS_PER_SECOND: PropSpec = PropSpec::float(
    "buffers-per-second",
    0.0,
    0.0,
    1e12,
    "Buffers let through per second at most (0 = no buffer limit)",
)
.mutable();

/// The two rates as set now; 0.0 = no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    bytes: f64,
    buffers: f64,
}

/// The two rate properties, read live.
#[derive(Debug, Clone)]
struct LiveRates {
    bytes: LiveUInt,
    buffers: LiveFloat,
}

impl LiveRates {
    fn of(p: &Props) -> Result<LiveRates, ElementError> {
        Ok(LiveRates {
            bytes: p.live_uint("bytes-per-second")?,
            buffers: p.live_float("buffers-per-second")?,
        })
    }

    fn now(&self) -> Rates {
        Rates {
            bytes: self.bytes.get() as f64,
            buffers: self.buffers.get(),
        }
    }
}

impl Rates {
    /// Seconds a buffer of `len` bytes takes at these rates (the slower limit counts).
    fn cost(&self, len: usize) -> f64 {
        let by_bytes = if self.bytes > 0.0 {
            len as f64 / self.bytes
        } else {
            0.0
        };
        let by_count = if self.buffers > 0.0 {
            1.0 / self.buffers
        } else {
            0.0
        };
        by_bytes.max(by_count)
    }
}

// --- ratelimiter ---------------------------------------------------------------------------

pub(crate) static RATELIMITER: Factory = Factory {
    name: "ratelimiter",
    aliases: &[],
    klass: Klass::Flow,
    summary: "Holds the stream to a byte or buffer rate by waiting",
    doc: "Each buffer waits until the ones before it have had their time at the rate: a \
          buffer of n bytes takes n / bytes-per-second and 1 / buffers-per-second seconds, the \
          longer of the two. The first buffer passes at once; time not used while the input was \
          slow is not saved up for a burst. Nothing is dropped: the wait holds back everything \
          upstream (use throttle to drop instead). When the pipeline drains (Ctrl-C), what is \
          still coming passes without waiting.",
    pads: Pads::ONE_TO_ONE,
    props: &[BYTES_PER_SECOND, BUFFERS_PER_SECOND],
    hints: WAITS,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(RateLimiter {
            rates: LiveRates::of(p)?,
            previous: None,
        })))
    },
};

/// ratelimiter's state.
struct RateLimiter {
    rates: LiveRates,
    /// When the previous buffer passed, and its size; `None` before the first.
    previous: Option<(Instant, usize)>,
}

/// The longest single sleep, so a drain or stop is noticed promptly.
const NAP: Duration = Duration::from_millis(20);

impl Transform for RateLimiter {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let arrived = Instant::now();
        let at = loop {
            if cx.is_stopping() {
                return Err(ElementError::Interrupted);
            }
            let now = Instant::now();
            // The previous buffer's time at the rates as they are now, read anew after every
            // nap: a rate changed while running applies to the buffer waiting.
            let at = match self.previous {
                None => arrived,
                Some((passed, len)) => {
                    let cost = Duration::try_from_secs_f64(self.rates.now().cost(len))
                        .unwrap_or(Duration::MAX);
                    passed.checked_add(cost).unwrap_or(now + NAP).max(arrived)
                }
            };
            if now >= at || cx.should_stop() {
                break at.min(now);
            }
            std::thread::sleep((at - now).min(NAP));
        };
        self.previous = Some((at, buf.len()));
        Ok(Flow::Push(buf))
    }
}

// --- throttle ------------------------------------------------------------------------------

pub(crate) static THROTTLE: Factory = Factory {
    name: "throttle",
    aliases: &[],
    klass: Klass::Flow,
    summary: "Holds the stream to a byte or buffer rate by dropping the excess",
    doc: "A token bucket per limit, refilled at the rate and holding one second's worth: a \
          buffer passes when every bucket has room for it (one buffer, its bytes) and is dropped \
          otherwise; it never waits. A buffer larger than a second's worth of bytes passes only \
          when that bucket is full. Dropped buffers show in --stats.",
    pads: Pads::ONE_TO_ONE,
    props: &[BYTES_PER_SECOND, BUFFERS_PER_SECOND],
    hints: Hints::FUSABLE,
    build: |p| {
        let live = LiveRates::of(p)?;
        let rates = live.now();
        Ok(ElementImpl::Transform(Box::new(Throttle {
            bytes: Bucket::new(rates.bytes),
            buffers: Bucket::new(rates.buffers),
            last: None,
            live: Some(live),
        })))
    },
};

/// A token bucket holding up to one second of its rate; a rate of 0 is no limit.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
}

impl Bucket {
    fn new(rate: f64) -> Bucket {
        Bucket { rate, tokens: rate }
    }

    /// A new rate: the bucket now holds one second of it at most (full when it had no limit).
    fn set_rate(&mut self, rate: f64) {
        if rate != self.rate {
            self.tokens = if self.rate == 0.0 {
                rate
            } else {
                self.tokens.min(rate)
            };
            self.rate = rate;
        }
    }

    fn refill(&mut self, seconds: f64) {
        self.tokens = (self.tokens + seconds * self.rate).min(self.rate);
    }

    /// Whether `cost` fits now (a full bucket takes anything).
    fn fits(&self, cost: f64) -> bool {
        self.rate == 0.0 || self.tokens >= cost || self.tokens >= self.rate
    }

    fn take(&mut self, cost: f64) {
        if self.rate > 0.0 {
            self.tokens -= cost;
        }
    }
}

/// throttle's state.
struct Throttle {
    bytes: Bucket,
    buffers: Bucket,
    /// When the buckets were last refilled.
    last: Option<Instant>,
    /// The rates as set now (`None` in unit tests, which set the buckets).
    live: Option<LiveRates>,
}

impl Throttle {
    /// Whether a buffer of `len` bytes passes `elapsed` seconds after the previous one.
    fn admit(&mut self, len: usize, elapsed: f64) -> bool {
        self.bytes.refill(elapsed);
        self.buffers.refill(elapsed);
        let bytes = len as f64;
        if !(self.bytes.fits(bytes) && self.buffers.fits(1.0)) {
            return false;
        }
        self.bytes.take(bytes);
        self.buffers.take(1.0);
        true
    }
}

impl Transform for Throttle {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if let Some(live) = &self.live {
            let rates = live.now();
            self.bytes.set_rate(rates.bytes);
            self.buffers.set_rate(rates.buffers);
        }
        let now = Instant::now();
        let elapsed = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        Ok(if self.admit(buf.len(), elapsed) {
            Flow::Push(buf)
        } else {
            Flow::Drop
        })
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&RATELIMITER, &THROTTLE];

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(bytes: f64, buffers: f64) -> Throttle {
        Throttle {
            bytes: Bucket::new(bytes),
            buffers: Bucket::new(buffers),
            last: None,
            live: None,
        }
    }

    #[test]
    fn a_new_rate_holds_at_most_a_second_of_it() {
        let mut t = throttle(0.0, 100.0);
        assert_eq!((0..1000).filter(|_| t.admit(1, 0.0)).count(), 100);
        t.buffers.set_rate(10.0);
        assert!(!t.admit(1, 0.0), "the bucket was empty, and stays so");
        assert!(t.admit(1, 1.0));
        assert_eq!((0..1000).filter(|_| t.admit(1, 0.0)).count(), 9);
        // From no limit to one: a full bucket.
        let mut free = throttle(0.0, 0.0);
        free.buffers.set_rate(5.0);
        assert_eq!((0..1000).filter(|_| free.admit(1, 0.0)).count(), 5);
    }

    #[test]
    fn throttle_passes_a_seconds_worth_then_the_refill() {
        let mut t = throttle(0.0, 10.0);
        let burst = (0..100).filter(|_| t.admit(1, 0.0)).count();
        assert_eq!(burst, 10);
        // Half a second later, five more fit.
        assert!(t.admit(1, 0.5));
        assert_eq!((0..100).filter(|_| t.admit(1, 0.0)).count(), 4);
    }

    #[test]
    fn throttle_counts_bytes_and_lets_a_big_buffer_through_a_full_bucket() {
        let mut t = throttle(100.0, 0.0);
        assert!(t.admit(60, 0.0));
        assert!(!t.admit(60, 0.0));
        assert!(t.admit(40, 0.0));
        assert!(!t.admit(1, 0.0));
        let mut big = throttle(100.0, 0.0);
        assert!(big.admit(1000, 0.0));
        assert!(!big.admit(1, 5.0), "the debt of 900 bytes takes 9 s to pay");
        assert!(big.admit(1, 5.0));
    }

    #[test]
    fn no_limit_passes_everything() {
        let mut t = throttle(0.0, 0.0);
        assert!((0..1000).all(|_| t.admit(1 << 20, 0.0)));
    }

    #[test]
    fn cost_takes_the_slower_limit() {
        let r = Rates {
            bytes: 1000.0,
            buffers: 10.0,
        };
        assert_eq!(r.cost(10), 0.1);
        assert_eq!(r.cost(1000), 1.0);
        let none = Rates {
            bytes: 0.0,
            buffers: 0.0,
        };
        assert_eq!(none.cost(1 << 30), 0.0);
    }

    #[test]
    fn ratelimiter_passes_every_buffer_in_order() {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let mut p = Props::defaults("ratelimiter", RATELIMITER.props);
        p.set("buffers-per-second", Value::Float(1e9));
        let mut r = RateLimiter {
            rates: LiveRates::of(&p).unwrap(),
            previous: None,
        };
        for i in 0..100u64 {
            let mut b = Buffer::from_vec(vec![0; 3]);
            b.meta.sequence = i;
            match r.process(b, &mut cx).unwrap() {
                Flow::Push(b) => assert_eq!(b.meta.sequence, i),
                other => panic!("{other:?}"),
            }
        }
    }
}
