//! The rt domain: an element with `exec=rt` gets a thread of its own (SCHED_FIFO at
//! `--rt-priority N` when the system permits, normal priority with one warning otherwise) and
//! reports how long each of its cycles took.
//!
//! A one-in-one-out element is split like an isolated one: the upstream thread hands buffers over
//! a bounded channel and the element's own thread runs it; a source simply runs on its thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use kanal::{Receiver, Sender};

use super::segment::Item;
use crate::element::{
    Ctx, ElementError, ElementImpl, Flow, PoolRequest, Sink, SinkFlow, Source, Transform,
};
use crate::memory::Buffer;

/// Buffers waiting between the upstream thread and the rt thread, by default.
pub(super) const CAPACITY: usize = 16;

/// Splits `imp` so that it runs on a thread of its own, taking in up to `quantum` waiting
/// buffers per cycle (`--quantum`).
pub(super) fn split(
    name: &str,
    imp: Box<dyn Transform>,
    capacity: usize,
    quantum: usize,
    live: Option<std::sync::Arc<super::observe::LiveHistogram>>,
) -> ElementImpl {
    own_thread(name, imp, capacity, quantum, Some(live))
}

/// Gives a timed element (a timeout, a batch's age) a thread of its own at normal priority,
/// woken by input or by its deadline, whichever comes first.
pub(super) fn timed(name: &str, imp: Box<dyn Transform>, capacity: usize) -> ElementImpl {
    own_thread(name, imp, capacity, 1, None)
}

fn own_thread(
    name: &str,
    imp: Box<dyn Transform>,
    capacity: usize,
    quantum: usize,
    report_cycles: Option<Option<std::sync::Arc<super::observe::LiveHistogram>>>,
) -> ElementImpl {
    let (tx, rx) = kanal::bounded(capacity);
    ElementImpl::Split {
        input: Box::new(Handover { tx }),
        output: Box::new(RtThread {
            name: name.to_owned(),
            rx,
            imp,
            cycles: Cycles::default(),
            quantum: quantum.max(1),
            taken: Vec::with_capacity(quantum.max(1)),
            out: VecDeque::with_capacity(quantum.max(1)),
            ended: false,
            report_cycles: report_cycles.is_some(),
            live: report_cycles.flatten(),
        }),
    }
}

/// The upstream thread's end of an element that runs elsewhere in this process (an rt thread,
/// an async task): hands each buffer over a bounded channel, then end of stream.
pub(super) struct Handover {
    pub(super) tx: Sender<Item>,
}

impl Sink for Handover {
    fn caps_changed(&mut self, _caps: &crate::caps::Caps) -> Option<Result<(), ElementError>> {
        Some(Err(ElementError::Failed(
            "it runs apart (an rt thread or an async task), which a caps change in mid-stream \
             cannot reach"
                .into(),
        )))
    }

    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        self.render_owned(buf.clone(), cx)
    }

    fn render_owned(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        Ok(match self.tx.send(Item::Buffer(buf)) {
            Ok(()) => SinkFlow::Continue,
            // The rt thread ended (end of stream or an error it reports itself).
            Err(_) => SinkFlow::Done,
        })
    }

    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let _ = self.tx.send(Item::Eos);
        Ok(())
    }
}

/// Cycle times kept for the quantiles, at most: memory stays bounded on a long run.
const CYCLE_SAMPLES: usize = 1 << 20;

/// Cycle times of one rt element, in nanoseconds: every cycle is counted and the longest kept,
/// while the quantiles come from a uniform sample of at most [`CYCLE_SAMPLES`] of them
/// (reservoir sampling), so that a long run reports its true count and its late cycles too
/// (issue 21: the count was the sample's size, 1048576 after 30 million cycles).
#[derive(Default)]
struct Cycles {
    samples: Vec<u64>,
    total: u64,
    max: u64,
    /// Every cycle, bucketed.
    histogram: super::stats::TimeHistogram,
    /// xorshift state for the reservoir.
    rng: u64,
}

impl Cycles {
    fn record(&mut self, ns: u64) {
        self.total += 1;
        self.max = self.max.max(ns);
        self.histogram.record(ns);
        if self.samples.len() < CYCLE_SAMPLES {
            self.samples.push(ns);
            return;
        }
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let j = self.rng % self.total;
        if let Some(slot) = self.samples.get_mut(j as usize) {
            *slot = ns;
        }
    }

    fn report(&mut self, element: &str) -> Option<super::CycleReport> {
        if self.total == 0 {
            return None;
        }
        self.samples.sort_unstable();
        let at = |q: f64| self.samples[((self.samples.len() - 1) as f64 * q) as usize];
        Some(super::CycleReport {
            element: element.to_owned(),
            cycles: self.total,
            median_ns: at(0.5),
            p99_ns: at(0.99),
            max_ns: self.max,
            cycle_time: self.histogram,
        })
    }

    fn clear(&mut self) {
        *self = Cycles::default();
    }
}

struct RtThread {
    name: String,
    rx: Receiver<Item>,
    imp: Box<dyn Transform>,
    cycles: Cycles,
    /// Buffers taken in per cycle, at most.
    quantum: usize,
    /// This cycle's input (kept to reuse its allocation).
    taken: Vec<Buffer>,
    /// This cycle's output, handed downstream one by one.
    out: VecDeque<Buffer>,
    /// End of stream came in, or the element asked for it.
    ended: bool,
    /// Whether its cycle times go to the report (an rt element, not a merely timed one).
    report_cycles: bool,
    /// Where its cycle times are published after every cycle, when a metrics endpoint or a
    /// control socket watches.
    live: Option<std::sync::Arc<super::observe::LiveHistogram>>,
}

impl Drop for RtThread {
    /// What is still queued will never be processed: dropped now (see `Input`'s drop), so
    /// that its buffers go back to their pools although the sender's thread goes on.
    fn drop(&mut self) {
        let _ = self.rx.close();
    }
}

impl RtThread {
    /// End of stream: the cycle times go to the report (and `-m`).
    fn finished(&mut self, run: &super::RunControl) {
        if let Some(r) = self.cycles.report(&self.name) {
            if run.events().is_subscribed() {
                run.events().publish(super::events::Event::Element {
                    element: self.name.clone(),
                    message: format!(
                        "rt thread: {} cycles, median {:.2} µs, p99 {:.2} µs, max {:.2} µs",
                        r.cycles,
                        r.median_ns as f64 / 1000.0,
                        r.p99_ns as f64 / 1000.0,
                        r.max_ns as f64 / 1000.0
                    ),
                });
            }
            run.record_cycles(r);
        }
        self.cycles.clear();
    }
}

impl Source for RtThread {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    /// One cycle takes in the buffers waiting, up to the quantum (blocking for the first only,
    /// or until the element's deadline), processes them all, and is timed as a whole; its
    /// output goes downstream one by one.
    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        loop {
            if let Some(out) = self.out.pop_front() {
                return Ok(Some(out));
            }
            if self.ended {
                if let Some(run) = cx.run.as_any().downcast_ref::<super::RunControl>() {
                    if self.report_cycles {
                        self.finished(run);
                    }
                }
                return Ok(None);
            }
            let first = match self.imp.deadline() {
                None => self.rx.recv().ok(),
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(wait) {
                        Ok(item) => Some(item),
                        Err(kanal::ReceiveErrorTimeout::Timeout) => {
                            let started = Instant::now();
                            self.imp.on_deadline(cx)?;
                            self.out.extend(cx.take_out());
                            self.record(started);
                            continue;
                        }
                        Err(_) => None,
                    }
                }
            };
            match first {
                Some(Item::Buffer(b)) => self.taken.push(b),
                // Never handed over (see `Handover`).
                Some(Item::Caps(_)) => {}
                Some(Item::Eos) | None => self.ended = true,
            }
            while !self.ended && self.taken.len() < self.quantum {
                match self.rx.try_recv() {
                    Ok(Some(Item::Buffer(b))) => self.taken.push(b),
                    Ok(Some(Item::Caps(_))) => {}
                    Ok(None) => break,
                    Ok(Some(Item::Eos)) | Err(_) => self.ended = true,
                }
            }
            let started = Instant::now();
            let had_input = !self.taken.is_empty();
            let mut cut = false;
            for buf in self.taken.drain(..) {
                let flow = self.imp.process(buf, cx)?;
                self.out.extend(cx.take_out());
                match flow {
                    Flow::Push(out) => self.out.push_back(out),
                    Flow::Drop => cx.dropped += 1,
                    Flow::Held => {}
                    Flow::Eos => {
                        cut = true;
                        break;
                    }
                }
            }
            if self.ended && !cut {
                // End of stream from upstream: what the element holds goes out first.
                self.imp.flush(cx)?;
                self.out.extend(cx.take_out());
            }
            self.ended |= cut;
            self.taken.clear();
            if had_input {
                self.record(started);
            }
        }
    }
}

impl RtThread {
    /// Times one cycle that began at `started`.
    fn record(&mut self, started: Instant) {
        self.cycles.record(started.elapsed().as_nanos() as u64);
        if let Some(live) = &self.live {
            live.store(&self.cycles.histogram);
        }
    }
}

/// Gives the calling thread SCHED_FIFO at `priority`, or explains (once) why it runs at normal
/// priority.
pub(super) fn enter(name: &str, priority: Option<u8>, events: &super::events::Events) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let why = match priority {
        None => "no --rt-priority was given".to_owned(),
        Some(p) => match crate::ipc::set_realtime(p) {
            Ok(()) => return,
            Err(e) => format!("SCHED_FIFO at priority {p} was refused ({e})"),
        },
    };
    if !WARNED.swap(true, Ordering::Relaxed) {
        events.publish(super::events::Event::Warning {
            element: name.to_owned(),
            message: format!("exec=rt runs on its own thread at normal priority: {why}"),
        });
    }
}
