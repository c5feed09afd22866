//! A segment: one thread's worth of fused elements. Its input is a source or a channel (queue,
//! funnel); below it, transforms, sinks, tees and the senders into other segments form a tree of
//! [`Op`]s that [`Segment::push`] walks with an explicit stack: one function call per element per
//! buffer, no allocation once the stack has grown, and no recursion, so a 10,000-element chain
//! costs no thread stack.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kanal::Receiver;

use super::control::RunControl;
use super::handoff::{ChanRx, ChanTx, Sent};
use super::observe::{LiveCounters, TapPoint};
use super::RunError;
use crate::caps::Caps;
use crate::element::{
    ActivePad, Ctx, ElementError, Flow, Leaky, QueueSettings, Router, Sink, SinkFlow, Source,
    Transform,
};
use crate::memory::{Buffer, MemoryPool};

/// What travels on a channel between segments.
pub(super) enum Item {
    Buffer(Buffer),
    /// The stream's caps change in mid-stream, before the buffers that follow (rare: boxed, so
    /// that an item is no larger than a buffer handle, and a ring's slots stay small).
    Caps(Box<Caps>),
    Eos,
}

/// What the engine does with a caps change in mid-stream at an element that does not say
/// (see [`Transform::caps_changed`]): what its caps rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChangeRule {
    /// Passthrough (and sinks that take anything): the change goes on.
    Pass,
    /// Its output is untyped bytes whatever comes in: the change stops here.
    Keep,
    /// Its output depends on its input's format: the change ends the run.
    Refuse,
}

/// An element's caps as the thread that runs it knows them: what a change in mid-stream is
/// checked against.
#[derive(Debug, Clone)]
pub(super) struct CapsState {
    pub(super) rule: ChangeRule,
    /// The caps on its input now (negotiated, then as changed).
    pub(super) current: Caps,
}

/// Per-element counters, kept by the thread that runs the element.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ElementStats {
    /// Buffers in (sinks, transforms, queues) or out (sources).
    pub buffers: u64,
    /// Bytes of those buffers.
    pub bytes: u64,
    /// Nanoseconds spent inside the element's calls.
    pub busy_ns: u64,
    /// Buffers dropped (valve, leaky queue).
    pub dropped: u64,
    /// Buffers cut short (datagrams longer than the mtu).
    pub truncated: u64,
    /// Bytes of `bytes` that the kernel copied from their source file (`copy_file_range`)
    /// instead of the element writing them.
    pub kernel_copied: u64,
    /// Buffers rendered against the clock (`sync=true`).
    pub synced: u64,
    /// Of those, the ones that came late (see [`crate::element::Qos`]).
    pub late: u64,
    /// The latest a synced buffer came, in ns after its running time.
    pub max_lateness_ns: u64,
    /// Time per buffer inside the element's calls, on the buffers whose time is sampled (see
    /// `SAMPLE_EVERY`), unscaled.
    pub times: super::stats::TimeHistogram,
}

impl std::ops::AddAssign for ElementStats {
    /// Merges what two ops (or threads) counted for the same element.
    fn add_assign(&mut self, other: ElementStats) {
        self.buffers += other.buffers;
        self.bytes += other.bytes;
        self.busy_ns += other.busy_ns;
        self.dropped += other.dropped;
        self.truncated += other.truncated;
        self.kernel_copied += other.kernel_copied;
        self.synced += other.synced;
        self.late += other.late;
        self.max_lateness_ns = self.max_lateness_ns.max(other.max_lateness_ns);
        self.times += &other.times;
    }
}

impl ElementStats {
    pub(super) fn count(&mut self, buf: &Buffer) {
        self.buffers += 1;
        self.bytes += buf.len() as u64;
    }

    /// Adds what an element saw of the clock (asked once, at the end of the run).
    pub(super) fn add_qos(&mut self, qos: crate::element::Qos) {
        self.synced += qos.synced;
        self.late += qos.late;
        self.max_lateness_ns = self.max_lateness_ns.max(qos.max_lateness_ns);
    }
}

/// What went into a channel, or came out of it: the two halves of a [`Level`], each on its own
/// cache line, so that the writing and the reading thread do not share one for their counts.
#[derive(Default)]
#[repr(align(128))]
struct Counts {
    buffers: AtomicU64,
    bytes: AtomicU64,
}

/// The fill level of a queue or funnel channel, shared by both ends.
pub(super) struct Level {
    pushed: Counts,
    popped: Counts,
    pub(super) high_water: AtomicUsize,
    max_bytes: u64,
    /// The buffer limit when the level enforces it (a channel too large to allocate up
    /// front, see [`Level::with_limits`]); 0 when the channel's own capacity does.
    max_buffers: usize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

impl Level {
    pub(super) fn new(max_bytes: u64) -> Arc<Level> {
        Level::with_limits(max_bytes, 0)
    }

    /// A level that also holds the buffer count under `max_buffers` (0: no such limit), for
    /// a channel that is unbounded so that a large limit costs memory only as it fills.
    pub(super) fn with_limits(max_bytes: u64, max_buffers: usize) -> Arc<Level> {
        Arc::new(Level {
            pushed: Counts::default(),
            popped: Counts::default(),
            max_buffers,
            high_water: AtomicUsize::new(0),
            max_bytes,
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
        })
    }

    /// Buffers and bytes in the channel (bytes only where they are counted).
    fn fill(&self) -> (u64, u64) {
        // What came out is read first: it never runs ahead of what went in.
        let (out, out_bytes) = self.popped();
        let buffers = self.pushed.buffers.load(Ordering::SeqCst);
        let bytes = self.pushed.bytes.load(Ordering::SeqCst);
        (buffers.saturating_sub(out), bytes.saturating_sub(out_bytes))
    }

    /// Whether a limit is exceeded once a buffer was counted in ([`Level::add`]): the byte
    /// limit as soon as it is reached (as before), the buffer limit only past it.
    fn over(&self) -> bool {
        let (buffers, bytes) = self.fill();
        (self.max_bytes != 0 && bytes >= self.max_bytes)
            || (self.max_buffers != 0 && buffers > self.max_buffers as u64)
    }

    /// Whether a limit the level enforces is reached, before a buffer is counted in.
    fn full(&self) -> bool {
        let (buffers, bytes) = self.fill();
        (self.max_bytes != 0 && bytes >= self.max_bytes)
            || (self.max_buffers != 0 && buffers >= self.max_buffers as u64)
    }

    /// Buffers waiting now, and their bytes when the level counts bytes (0 otherwise).
    pub(super) fn now(&self) -> (usize, u64) {
        let (buffers, bytes) = self.fill();
        (usize::try_from(buffers).unwrap_or(usize::MAX), bytes)
    }

    /// The byte limit (0: none).
    pub(super) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// What the reader took so far: buffers and bytes.
    pub(super) fn popped(&self) -> (u64, u64) {
        (
            self.popped.buffers.load(Ordering::Acquire),
            self.popped.bytes.load(Ordering::Acquire),
        )
    }

    /// The counts of a channel's only writer (a ring): it alone writes them.
    pub(super) fn set_pushed(&self, buffers: u64, bytes: u64) {
        self.pushed.bytes.store(bytes, Ordering::Release);
        self.pushed.buffers.store(buffers, Ordering::Release);
    }

    /// The counts of a channel's only reader (a ring): it alone writes them.
    pub(super) fn set_popped(&self, buffers: u64, bytes: u64) {
        self.popped.bytes.store(bytes, Ordering::Release);
        self.popped.buffers.store(buffers, Ordering::Release);
    }

    pub(super) fn raise_high_water(&self, fill: u64) {
        self.high_water.fetch_max(
            usize::try_from(fill).unwrap_or(usize::MAX),
            Ordering::Relaxed,
        );
    }

    pub(super) fn add(&self, len: usize) {
        self.pushed.buffers.fetch_add(1, Ordering::SeqCst);
        if self.max_bytes != 0 {
            self.pushed.bytes.fetch_add(len as u64, Ordering::SeqCst);
        }
        self.raise_high_water(self.fill().0);
    }

    pub(super) fn remove(&self, len: usize) {
        if self.max_bytes != 0 {
            self.popped.bytes.fetch_add(len as u64, Ordering::SeqCst);
        }
        self.popped.buffers.fetch_add(1, Ordering::SeqCst);
        if (self.max_bytes != 0 || self.max_buffers != 0) && self.waiters.load(Ordering::SeqCst) > 0
        {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.room.notify_all();
        }
    }

    /// Waits while a limit the level enforces is reached: [`Room::Stopped`] when the pipeline stops
    /// meanwhile, [`Room::Gone`] when the reader went away (`gone`): what it left unread never
    /// leaves the count, so waiting on would be for ever (a tee branch whose sink was satisfied
    /// early, issue 21).
    fn wait_for_room(&self, run: &RunControl, gone: &dyn Fn() -> bool) -> Room {
        while self.full() {
            if run.is_stopping() {
                return Room::Stopped;
            }
            run.hold_if_paused();
            if gone() {
                return Room::Gone;
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            if self.full() {
                let _unused = self
                    .room
                    .wait_timeout(guard, Duration::from_millis(50))
                    .unwrap_or_else(|p| p.into_inner());
            }
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        Room::Free
    }
}

/// What [`Level::wait_for_room`] found.
enum Room {
    Free,
    Stopped,
    Gone,
}

/// What a fan-in element with a rule (`input-selector`, `concat`) lets through from each of its
/// inputs. The rule is applied where each input sends, so the merging thread itself is a plain
/// funnel, and a held-back input waits in its own thread (backpressure, never a growing queue).
pub(super) struct Gate {
    rule: GateRule,
    lock: Mutex<()>,
    turn: Condvar,
    /// The slot a buffer was last admitted from (`u32::MAX` before the first): inputs whose
    /// caps differ announce theirs when the stream switches to them.
    last: std::sync::atomic::AtomicU32,
}

pub(super) enum GateRule {
    /// Only the active pad's buffers pass (`input-selector`); a slot is a pad's number.
    Select(ActivePad),
    /// One input after another (`concat`); a slot is a pad's rank, and `current` the rank
    /// whose turn it is.
    Concat { current: AtomicUsize },
}

/// What a gate says about one buffer.
pub(super) enum Admit {
    Pass,
    Drop,
    /// The pipeline stops while the input waited for its turn.
    Stopped,
}

impl Gate {
    pub(super) fn new(rule: GateRule) -> Arc<Gate> {
        Arc::new(Gate {
            rule,
            lock: Mutex::new(()),
            turn: Condvar::new(),
            last: std::sync::atomic::AtomicU32::new(u32::MAX),
        })
    }

    /// Whether a buffer from input `slot` goes on (into `tx`); a `concat` input waits for its
    /// turn.
    fn admit(&self, slot: u32, run: &RunControl, tx: &ChanTx) -> Admit {
        match &self.rule {
            GateRule::Select(active) if active.get() == slot => Admit::Pass,
            GateRule::Select(_) => Admit::Drop,
            GateRule::Concat { .. } => {
                if self.wait_turn(slot, run, tx) {
                    Admit::Pass
                } else {
                    Admit::Stopped
                }
            }
        }
    }

    /// Waits until input `slot` may send into `tx` (always at once but for `concat`); false
    /// when the pipeline stops meanwhile, or the merging thread is gone (its output ended).
    fn wait_turn(&self, slot: u32, run: &RunControl, tx: &ChanTx) -> bool {
        let GateRule::Concat { current } = &self.rule else {
            return true;
        };
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        while current.load(Ordering::SeqCst) < slot as usize {
            if run.is_stopping() || tx.is_disconnected() {
                return false;
            }
            guard = self
                .turn
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Whether the stream switches to input `slot` with this buffer (another input, or none,
    /// passed the one before).
    fn switched_to(&self, slot: u32) -> bool {
        self.last.swap(slot, Ordering::SeqCst) != slot
    }

    /// Whether the stream is at input `slot` (its last buffer came from there).
    fn is_current(&self, slot: u32) -> bool {
        self.last.load(Ordering::SeqCst) == slot
    }

    /// The merging thread took one input's end of stream: with `concat`, the next one's turn.
    fn input_ended(&self) {
        if let GateRule::Concat { current } = &self.rule {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            current.fetch_add(1, Ordering::SeqCst);
            self.turn.notify_all();
        }
    }
}

/// Where a segment's buffers come from.
pub(super) enum Input {
    Source {
        el: usize,
        src: Box<dyn Source>,
        pool: Option<MemoryPool>,
        /// The output half of an element run apart (rt thread, worker process, async task):
        /// it relays a stream that a real source upstream starts, pauses and ends, so it
        /// neither parks nor ends on a drain (it ends with upstream's end of stream).
        relay: bool,
    },
    Channel {
        el: usize,
        rx: ChanRx,
        inputs: usize,
        level: Arc<Level>,
        /// The rule of a selector or concat, told of each input's end.
        gate: Option<Arc<Gate>>,
        /// The bridge from an async source: what it read off the wire is written even when the
        /// run stops on an error (a peer that closes with `close-is-error=true`), as a
        /// source's own thread writes what it read. A queue's buffers are dropped, as gst's.
        bridge: bool,
    },
}

impl Drop for Input {
    /// Whatever is still queued for a channel input that ends (its sinks were satisfied, or
    /// the run stops) will never be read: closing the channel drops it now, so that buffers
    /// go back to their pools at once instead of when the last sender goes (a tee goes on
    /// feeding its other branches), and senders see the end instead of waiting (issue 21).
    fn drop(&mut self) {
        if let Input::Channel { rx, .. } = self {
            rx.close();
        }
    }
}

impl Input {
    /// The element the buffers come from.
    fn element(&self) -> usize {
        match self {
            Input::Source { el, .. } | Input::Channel { el, .. } => *el,
        }
    }
}

/// One step below the input.
pub(super) enum Op {
    Transform {
        el: usize,
        imp: Box<dyn Transform>,
        next: usize,
    },
    Sink {
        el: usize,
        imp: Box<dyn Sink>,
        /// False for an isolated element's sending half: the element counts its buffers once,
        /// in its receiving half.
        counted: bool,
    },
    Tee {
        el: usize,
        /// Sink branches first, then the others, each group in pad order (see
        /// [`Segment::new`]).
        branches: Vec<usize>,
        /// How many of `branches` are sinks.
        sinks: usize,
    },
    /// A fan-out that sends each buffer to one branch (`output-selector`, `streamiddemux`).
    Route {
        el: usize,
        router: Box<dyn Router>,
        /// Each linked src pad's number and its op.
        branches: Vec<(u32, usize)>,
    },
    /// Into a queue's or funnel's channel.
    Send {
        tx: ChanTx,
        /// The receiving end, held only by a leaky=downstream queue to drop its oldest buffer.
        rx: Option<Receiver<Item>>,
        queue: Option<QueueSettings>,
        level: Arc<Level>,
        /// The queue or funnel element, for its dropped counter.
        target: usize,
        /// A selector's or concat's rule, and this input's slot in it.
        gate: Option<(Arc<Gate>, u32)>,
        /// The caps of this input of a concat or selector whose inputs differ: announced in
        /// the stream when it switches to this input.
        announce: Option<Box<Caps>>,
        /// The link it carries: upstream element and pad, so that each of a funnel's inputs
        /// is counted on its own (set by the planner once the op is placed).
        link: (usize, String),
    },
    /// `--tap`: shows each buffer, then hands it to `next` untouched. Only there when asked for.
    Tap { point: Box<TapPoint>, next: usize },
}

impl Op {
    fn is_terminal(&self) -> bool {
        matches!(self, Op::Sink { .. } | Op::Send { .. })
    }
}

pub(super) struct OpSlot {
    pub(super) op: Op,
    done: bool,
    stats: ElementStats,
}

impl OpSlot {
    pub(super) fn new(op: Op) -> OpSlot {
        OpSlot {
            op,
            done: false,
            stats: ElementStats::default(),
        }
    }
}

/// How a segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// End of stream reached and passed on.
    Eos,
    /// Stopped because of an error elsewhere.
    Stopped,
    /// Failed; the error went to [`RunControl::fail`].
    Failed,
}

/// What a finished segment hands back.
pub(super) struct SegmentResult {
    pub(super) stats: Vec<(usize, ElementStats)>,
    /// What each channel sender of this segment carried, by link (upstream element, pad).
    pub(super) links: Vec<((usize, String), ElementStats)>,
    pub(super) outcome: Outcome,
}

/// What a segment shows about itself while it runs besides its events: live counts for a
/// progress line, and the element spans for logs. The default shows nothing and costs nothing.
pub(super) struct Observe {
    /// Where the segment publishes its counts, when a progress line is wanted.
    pub(super) live: Option<Arc<LiveCounters>>,
    /// The span of the input element and of each op (by op id; taps get a disabled one).
    pub(super) input_span: tracing::Span,
    pub(super) spans: Vec<tracing::Span>,
    /// Whether a subscriber enabled the spans; otherwise none is ever entered, and the
    /// per-buffer calls take a path with nothing but the call.
    pub(super) spans_on: bool,
    /// Whether a filter may want per-buffer TRACE events (only looked at when `spans_on`).
    pub(super) trace: bool,
    /// The sink ops, whose counts make the progress line.
    pub(super) sinks: Vec<usize>,
}

impl Default for Observe {
    fn default() -> Self {
        Observe {
            live: None,
            input_span: tracing::Span::none(),
            spans: Vec::new(),
            spans_on: false,
            trace: false,
            sinks: Vec::new(),
        }
    }
}

impl Observe {
    /// Enters op `id`'s span when logging is on.
    fn enter(&self, id: usize) -> Option<tracing::span::Entered<'_>> {
        self.spans_on.then(|| self.spans[id].enter())
    }

    fn enter_input(&self) -> Option<tracing::span::Entered<'_>> {
        self.spans_on.then(|| self.input_span.enter())
    }

    /// Runs `call`, op `id`'s work on a buffer of `bytes` bytes and sequence `seq`: bare when
    /// logging is off (one test of a bool), else inside the element's span, with a TRACE line
    /// saying `what` when the filter wants per-buffer events.
    #[inline]
    fn around<R>(
        &self,
        id: usize,
        (bytes, seq): (usize, u64),
        what: &str,
        call: impl FnOnce() -> R,
    ) -> R {
        if !self.spans_on {
            return call();
        }
        let _in = self.spans[id].enter();
        if self.trace {
            tracing::trace!(bytes, seq, "{what}");
        }
        call()
    }
}

/// A fused run of elements on one thread.
pub(super) struct Segment {
    pub(super) name: String,
    pub(super) input: Input,
    pub(super) entry: usize,
    pub(super) ops: Vec<OpSlot>,
    pub(super) names: Arc<Vec<String>>,
    pub(super) obs: Observe,
    input_stats: ElementStats,
    live: usize,
    stack: Vec<(usize, Buffer)>,
    current: usize,
    last: Instant,
    /// The sampler's random state (0 before the first iteration).
    iteration: u64,
    /// Iterations until the next sampled one.
    gap: u64,
    /// What one measured interval counts for: `SAMPLE_EVERY` on sampled buffers, 0 on the
    /// others (no clock read at all), 1 while finishing.
    scale: u64,
    /// Set while timed buffers take longer than [`SLOW_BUFFER`] per element call below the
    /// input: clock reads are then noise, so every buffer is timed (scale 1) and busy times are
    /// measured, not estimated. Sampling slow buffers made a sleeping identity busier than the
    /// run was long.
    exact: bool,
    /// Sink ops that gather small buffers and write them out when the thread is idle.
    idlers: Vec<usize>,
    /// Enclosing bursts (a transform's several outputs) with outputs still to come.
    burst: usize,
    /// Element calls timed in this iteration: a buffer split into thousands of records is
    /// slow as a whole but cheap per call, and must not switch timing to every call.
    timed_calls: u64,
    /// Set once end of stream is being passed on: intervals timed then are flushes, not the
    /// processing of one buffer, and stay out of the time histograms.
    finishing: bool,
    /// By element: the caps each element of this thread takes now, and its rule for a change
    /// (empty: everything passes, as in unit tests).
    pub(super) caps: Vec<CapsState>,
}

/// What a panic said, for the error that names its element.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Busy time is measured on one buffer in this many and scaled up: a clock read per element
/// per buffer would cost more than a fused element itself.
pub(super) const SAMPLE_EVERY: u64 = 32;

/// A buffer whose elements took this long, per element call, makes the segment time every
/// buffer: a clock read (about 25 ns) is then less than a thousandth of the work it measures.
const SLOW_BUFFER: Duration = Duration::from_micros(50);

impl Segment {
    /// The element the segment starts at.
    pub(super) fn root(&self) -> usize {
        self.input.element()
    }

    pub(super) fn new(
        name: String,
        input: Input,
        entry: usize,
        ops: Vec<OpSlot>,
        names: Arc<Vec<String>>,
    ) -> Segment {
        let live = ops.iter().filter(|o| o.op.is_terminal()).count();
        let current = input.element();
        let mut ops = ops;
        let is_sink: Vec<bool> = ops
            .iter()
            .map(|o| matches!(o.op, Op::Sink { .. }))
            .collect();
        for slot in &mut ops {
            if let Op::Tee {
                branches, sinks, ..
            } = &mut slot.op
            {
                // A tee renders its sink branches in one tight loop; stable, so pad order holds.
                branches.sort_by_key(|&b| !is_sink[b]);
                *sinks = branches.iter().filter(|&&b| is_sink[b]).count();
            }
        }
        let idlers = ops
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(&slot.op, Op::Sink { imp, .. } if imp.gathers()))
            .map(|(id, _)| id)
            .collect();
        Segment {
            name,
            input,
            entry,
            ops,
            names,
            obs: Observe::default(),
            input_stats: ElementStats::default(),
            live,
            stack: Vec::new(),
            current,
            last: Instant::now(),
            iteration: 0,
            gap: 0,
            scale: 0,
            exact: false,
            idlers,
            burst: 0,
            timed_calls: 0,
            finishing: false,
            caps: Vec::new(),
        }
    }

    /// Sets what the segment shows; `span_of(el)` gives an element's span.
    pub(super) fn observe(&mut self, mut obs: Observe, span_of: impl Fn(usize) -> tracing::Span) {
        obs.input_span = span_of(self.root());
        obs.spans_on = !obs.input_span.is_disabled();
        obs.trace = tracing::level_filters::LevelFilter::current() >= tracing::Level::TRACE;
        obs.spans = self
            .ops
            .iter()
            .map(|slot| match &slot.op {
                Op::Transform { el, .. }
                | Op::Sink { el, .. }
                | Op::Tee { el, .. }
                | Op::Route { el, .. } => span_of(*el),
                // Pushing into a queue's channel (and waiting for room) is the queue's work.
                Op::Send { target, .. } => span_of(*target),
                Op::Tap { .. } => tracing::Span::none(),
            })
            .collect();
        // A sending half is not a sink: its element counts its buffers where they come out.
        obs.sinks = (0..self.ops.len())
            .filter(|&id| matches!(self.ops[id].op, Op::Sink { counted: true, .. }))
            .collect();
        self.obs = obs;
    }

    /// Stores the counts for the progress line: a few relaxed stores of counters this thread
    /// already keeps for `--stats`. Called on sampled input buffers and before the thread may
    /// wait (see `run`), and only while a progress line is drawn (a terminal watches) or a
    /// control socket or metrics endpoint watches, never under `-q`, a pipe or a benchmark.
    fn publish(&self) {
        let Some(live) = &self.obs.live else {
            return;
        };
        let (mut buffers, mut bytes) = (0, 0);
        for &id in &self.obs.sinks {
            buffers += self.ops[id].stats.buffers;
            bytes += self.ops[id].stats.bytes;
        }
        live.sink_buffers.store(buffers, Ordering::Relaxed);
        live.sink_bytes.store(bytes, Ordering::Relaxed);
        if let Input::Source { relay: false, .. } = self.input {
            live.source_bytes
                .store(self.input_stats.bytes, Ordering::Relaxed);
        }
    }

    /// Calls `f` with what each element counted in this segment (as the run report merges
    /// them) and, for a channel sender, the link it carried buffers over.
    fn visit_stats(
        &self,
        mut f: impl FnMut(usize, ElementStats, Option<(&(usize, String), ElementStats)>),
    ) {
        f(self.root(), self.input_stats, None);
        for slot in &self.ops {
            match &slot.op {
                Op::Sink {
                    el, counted: false, ..
                } => f(
                    *el,
                    ElementStats {
                        busy_ns: slot.stats.busy_ns,
                        ..ElementStats::default()
                    },
                    None,
                ),
                Op::Transform { el, imp, .. } => {
                    let mut s = slot.stats;
                    s.add_qos(imp.qos());
                    f(*el, s, None)
                }
                Op::Sink { el, imp, .. } => {
                    let mut s = slot.stats;
                    s.add_qos(imp.qos());
                    f(*el, s, None)
                }
                Op::Tee { el, .. } | Op::Route { el, .. } => f(*el, slot.stats, None),
                Op::Send { target, link, .. } => f(
                    *target,
                    ElementStats {
                        dropped: slot.stats.dropped,
                        ..ElementStats::default()
                    },
                    Some((link, slot.stats)),
                ),
                Op::Tap { .. } => {}
            }
        }
    }

    /// What each element counted in this segment, and what each channel sender carried, by
    /// link.
    #[allow(clippy::type_complexity)]
    fn element_stats(
        &self,
    ) -> (
        Vec<(usize, ElementStats)>,
        Vec<((usize, String), ElementStats)>,
    ) {
        let (mut stats, mut links) = (Vec::new(), Vec::new());
        self.visit_stats(|el, s, link| {
            stats.push((el, s));
            if let Some((l, ls)) = link {
                links.push((l.clone(), ls));
            }
        });
        (stats, links)
    }

    /// Publishes the per element counts too, when someone watches them: a few relaxed
    /// stores per element, no lock, no allocation after the first time.
    fn publish_all(&mut self) {
        self.publish();
        let Some(Some(elements)) = self.obs.live.as_ref().map(|l| l.elements.as_ref()) else {
            return;
        };
        let slots = elements.get_or_init(|| {
            let mut v = Vec::new();
            self.visit_stats(|el, _, _| v.push((el, super::observe::LiveStats::default())));
            v
        });
        let mut i = 0;
        self.visit_stats(|_, s, _| {
            if let Some((_, slot)) = slots.get(i) {
                slot.store(&s);
            }
            i += 1;
        });
    }

    /// Runs to end of stream, catching a panicking element and naming it.
    pub(super) fn run_guarded(mut self, run: &RunControl) -> SegmentResult {
        tracing::debug!(thread = %self.name, ops = self.ops.len(), "Thread started");
        if matches!(self.input, Input::Source { relay: false, .. }) {
            super::control::mark_source_thread();
        }
        if run.events().is_subscribed() {
            run.events().publish(super::events::Event::Element {
                element: self.name.clone(),
                message: "started".into(),
            });
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(run)));
        if matches!(self.input, Input::Source { relay: false, .. }) {
            run.source_done();
        }
        let outcome = match result {
            Ok(r) => r,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                Err(RunError::Panic {
                    element: self.names[self.current].clone(),
                    message,
                })
            }
        };
        if !matches!(outcome, Ok(Outcome::Eos)) {
            self.flush_sinks(run);
        }
        self.publish_all();
        let (stats, links) = self.element_stats();
        let (outcome, how) = match outcome {
            Ok(o @ Outcome::Eos) => {
                tracing::debug!(thread = %self.name, "Thread reached end of stream");
                (o, "end of stream".to_owned())
            }
            Ok(o) => {
                tracing::debug!(thread = %self.name, "Thread stopped");
                (o, "stopped".to_owned())
            }
            Err(e) => {
                tracing::error!(thread = %self.name, error = %e, "Thread failed");
                let how = format!("error: {e}");
                // The first error recorded wins; it also stops every other segment.
                run.fail(e);
                (Outcome::Failed, how)
            }
        };
        if run.events().is_subscribed() {
            for (el, s) in stats.iter().filter(|(_, s)| s.kernel_copied > 0) {
                run.events().publish(super::events::Event::Element {
                    element: self.names[*el].clone(),
                    message: format!(
                        "{} bytes copied in the kernel (copy_file_range or splice), {} written",
                        s.kernel_copied,
                        s.bytes.saturating_sub(s.kernel_copied)
                    ),
                });
            }
            run.events().publish(super::events::Event::Element {
                element: self.name.clone(),
                message: how,
            });
        }
        SegmentResult {
            stats,
            links,
            outcome,
        }
    }

    /// On an error stop, passes on what an async source's bridge already holds (at most its
    /// capacity): bytes read off the wire before the error reach the sinks.
    fn drain_bridge(&mut self, run: &RunControl) {
        let Input::Channel {
            rx,
            level,
            bridge: true,
            ..
        } = &self.input
        else {
            return;
        };
        let mut taken = Vec::new();
        while let Some(item) = rx.try_recv() {
            if let Item::Buffer(buf) = item {
                level.remove(buf.len());
                taken.push(buf);
            }
        }
        let entry = self.entry;
        for buf in taken {
            self.input_stats.count(&buf);
            if self.push(entry, buf, run).is_err() {
                break;
            }
        }
    }

    /// Whether the live counts should be published before the next input, which may make
    /// this thread wait: a channel with nothing queued, a relay (its element runs apart), a
    /// pause, or a thread that waited since it last published (a source paced by the clock
    /// or reading a pipe waits on every buffer; see [`super::control::take_waited`]).
    fn may_wait(&self, run: &RunControl) -> bool {
        super::control::take_waited()
            | run.is_paused()
            | match &self.input {
                Input::Source { relay, .. } => *relay,
                Input::Channel { level, .. } => level.now().0 == 0,
            }
    }

    /// Whether the next input would make this thread wait: a channel with nothing queued. A
    /// source is taken to wait on every call (a read).
    fn input_idle(&self) -> bool {
        match &self.input {
            Input::Source { .. } => true,
            Input::Channel { rx, .. } => rx.is_empty(),
        }
    }

    /// Lets the gathering sinks write out what they hold: the thread is about to wait.
    fn idle_sinks(&mut self, run: &RunControl) -> Result<(), RunError> {
        for i in 0..self.idlers.len() {
            let id = self.idlers[i];
            if self.ops[id].done {
                continue;
            }
            let Op::Sink { el, imp, .. } = &mut self.ops[id].op else {
                continue;
            };
            self.current = *el;
            let mut cx = Ctx::for_element(run, None, *el);
            let result = imp.idle(&mut cx).map(|()| SinkFlow::Continue);
            self.ops[id].stats.kernel_copied += cx.kernel_copied;
            self.settle(id, result, run)?;
        }
        Ok(())
    }

    /// The run stops on an error (here or elsewhere): every sink of this segment still open
    /// writes out what it already holds, so the output has the whole stream up to the error,
    /// as gst's has. A sink that fails or panics now changes nothing: the first error stands.
    fn flush_sinks(&mut self, run: &RunControl) {
        for id in 0..self.ops.len() {
            let slot = &mut self.ops[id];
            let Op::Sink { el, imp, .. } = &mut slot.op else {
                continue;
            };
            if slot.done {
                continue;
            }
            let el = *el;
            let _in = self.obs.enter(id);
            let flushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut cx = Ctx::for_element(run, None, el);
                let result = imp.flush(&mut cx);
                (result, cx.kernel_copied)
            }));
            match flushed {
                Ok((result, copied)) => {
                    slot.stats.kernel_copied += copied;
                    if let Err(e) = result {
                        tracing::debug!(element = %self.names[el], error = %e, "Could not flush while stopping");
                    }
                }
                Err(_) => {
                    tracing::debug!(element = %self.names[el], "Panicked while flushing on stop");
                }
            }
        }
    }

    fn fail(&self, el: usize, source: ElementError) -> RunError {
        RunError::Element {
            element: self.names[el].clone(),
            source,
        }
    }

    fn run(&mut self, run: &RunControl) -> Result<Outcome, RunError> {
        let mut eos_seen = 0;
        self.last = Instant::now();
        loop {
            if run.is_stopping() {
                self.drain_bridge(run);
                return Ok(Outcome::Stopped);
            }
            if self.live == 0 {
                break;
            }
            self.scale = self.next_scale();
            if self.obs.live.is_some() && ((self.scale != 0) | self.may_wait(run)) {
                // On sampled buffers, and before the thread may wait for the next one, so a
                // slow stream shows its last one; per element counts (a control socket,
                // metrics) too.
                self.publish_all();
            }
            if self.scale != 0 {
                self.last = Instant::now();
            }
            let buf = match &mut self.input {
                Input::Source {
                    el,
                    src,
                    pool,
                    relay,
                } => {
                    let el = *el;
                    if run.is_paused() && !*relay {
                        run.park();
                    }
                    if run.drain_requested() && !*relay {
                        let _in = self.obs.enter_input();
                        tracing::info!("Drain requested: ending the stream at this source");
                        break;
                    }
                    self.current = el;
                    let mut cx = Ctx::for_element(run, pool.as_ref(), el);
                    // Logging off: one test of a bool, no span guard (see `Observe`).
                    let produced = if self.obs.spans_on {
                        let _in = self.obs.input_span.enter();
                        let produced = src.produce(&mut cx);
                        if self.obs.trace {
                            if let Ok(Some(b)) = &produced {
                                tracing::trace!(
                                    bytes = b.len(),
                                    seq = b.meta.sequence,
                                    "Produced a buffer"
                                );
                            }
                        }
                        produced
                    } else {
                        src.produce(&mut cx)
                    };
                    if self.scale != 0 {
                        let now = Instant::now();
                        let took = (now - self.last).as_nanos() as u64;
                        self.input_stats.busy_ns += took * self.scale;
                        if produced.as_ref().is_ok_and(Option::is_some) {
                            self.input_stats.times.record(took);
                        }
                        self.last = now;
                    }
                    self.input_stats.dropped += cx.dropped;
                    let announced = cx.caps.take();
                    drop(cx);
                    match produced {
                        Ok(Some(buf)) => {
                            self.input_stats.count(&buf);
                            if let Some(caps) = announced {
                                let entry = self.entry;
                                self.push_caps(entry, *caps)?;
                            }
                            buf
                        }
                        Ok(None) => {
                            let _in = self.obs.enter_input();
                            tracing::debug!(
                                buffers = self.input_stats.buffers,
                                bytes = self.input_stats.bytes,
                                "Source reached end of stream"
                            );
                            break;
                        }
                        Err(ElementError::Interrupted) if run.is_stopping() => {
                            return Ok(Outcome::Stopped)
                        }
                        Err(ElementError::Interrupted) => break,
                        Err(e) => return Err(self.fail(el, e)),
                    }
                }
                Input::Channel {
                    rx,
                    inputs,
                    level,
                    gate,
                    ..
                } => match rx.recv() {
                    Some(Item::Buffer(buf)) => {
                        if let ChanRx::Shared(_) = rx {
                            level.remove(buf.len());
                        }
                        self.input_stats.count(&buf);
                        if self.scale != 0 {
                            // Time spent waiting for the channel is not the consumer's work.
                            self.last = Instant::now();
                        }
                        buf
                    }
                    Some(Item::Caps(caps)) => {
                        let entry = self.entry;
                        self.push_caps(entry, *caps)?;
                        continue;
                    }
                    Some(Item::Eos) => {
                        eos_seen += 1;
                        if let Some(gate) = gate {
                            gate.input_ended();
                        }
                        tracing::debug!(thread = %self.name, inputs = *inputs, eos_seen, "End of stream from upstream");
                        if eos_seen >= *inputs {
                            break;
                        }
                        continue;
                    }
                    // Every sender left without EOS: upstream stopped on an error.
                    None => return Ok(Outcome::Stopped),
                },
            };
            let entry = self.entry;
            // Re-judged on every timed buffer: a wait (a full queue downstream) makes one buffer
            // slow, not the stream, and must not leave every later buffer timed.
            if self.scale != 0 {
                let pushed = Instant::now();
                self.timed_calls = 0;
                self.push(entry, buf, run)?;
                let took = pushed.elapsed();
                self.exact = took >= SLOW_BUFFER
                    && took / u32::try_from(self.timed_calls.max(1)).unwrap_or(u32::MAX)
                        >= SLOW_BUFFER;
            } else {
                self.push(entry, buf, run)?;
            }
            if !self.idlers.is_empty() && self.input_idle() {
                self.idle_sinks(run)?;
            }
        }
        if run.is_stopping() {
            return Ok(Outcome::Stopped);
        }
        self.finish_from(self.entry, run)?;
        Ok(Outcome::Eos)
    }

    /// Whether this iteration is timed, and what its time counts for: the first always (as
    /// itself), then one after a random gap of 1 to `2 * SAMPLE_EVERY - 1` iterations (mean
    /// `SAMPLE_EVERY`, so the scaled sum is unbiased), so that a period in the stream (an rt
    /// thread's cycle of N buffers) cannot alias with the sampling. Between samples, one
    /// decrement.
    #[inline]
    fn next_scale(&mut self) -> u64 {
        if self.exact {
            return 1;
        }
        if self.gap > 1 {
            self.gap -= 1;
            return 0;
        }
        self.next_sample()
    }

    #[cold]
    fn next_sample(&mut self) -> u64 {
        if self.iteration == 0 {
            self.iteration = 0x9E37_79B9_7F4A_7C15;
            self.gap = 1;
            return 1;
        }
        let mut x = self.iteration;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.iteration = x;
        self.gap = 1 + x % (2 * SAMPLE_EVERY - 1);
        SAMPLE_EVERY
    }

    fn charge(&mut self, id: usize) {
        if self.scale == 0 {
            return;
        }
        self.timed_calls += 1;
        let now = Instant::now();
        let took = (now - self.last).as_nanos() as u64;
        let stats = &mut self.ops[id].stats;
        stats.busy_ns += took * self.scale;
        if !self.finishing {
            stats.times.record(took);
        }
        self.last = now;
    }

    /// Marks terminal op `id` done: nothing more is sent to it.
    fn retire(&mut self, id: usize) {
        if !self.ops[id].done {
            self.ops[id].done = true;
            if self.ops[id].op.is_terminal() {
                self.live -= 1;
            }
        }
    }

    /// Renders `buf` into sink op `id` (already counted), giving the sink the handle.
    fn render(&mut self, id: usize, buf: Buffer, run: &RunControl) -> Result<(), RunError> {
        let about = (buf.len(), buf.meta.sequence);
        self.render_with(id, about, run, |imp, cx| imp.render_owned(buf, cx))
    }

    /// Renders `buf` into sink op `id` (already counted), lending the sink the handle: a tee's
    /// branches share one handle with no refcount traffic.
    fn render_lent(&mut self, id: usize, buf: &Buffer, run: &RunControl) -> Result<(), RunError> {
        let about = (buf.len(), buf.meta.sequence);
        self.render_with(id, about, run, |imp, cx| imp.render(buf, cx))
    }

    #[inline]
    fn render_with(
        &mut self,
        id: usize,
        about: (usize, u64),
        run: &RunControl,
        call: impl FnOnce(&mut dyn Sink, &mut Ctx<'_>) -> Result<SinkFlow, ElementError>,
    ) -> Result<(), RunError> {
        let Op::Sink { el, imp, .. } = &mut self.ops[id].op else {
            unreachable!("op {id} is a sink")
        };
        let el = *el;
        self.current = el;
        let mut cx = Ctx::for_element(run, None, el);
        cx.more_coming = self.burst > 0;
        let flow = self.obs.around(id, about, "Rendering a buffer", || {
            call(imp.as_mut(), &mut cx)
        });
        self.ops[id].stats.kernel_copied += cx.kernel_copied;
        self.charge(id);
        self.settle(id, flow, run)
    }

    /// What sink op `id` answered: anything but "continue" ends the branch or the run.
    fn settle(
        &mut self,
        id: usize,
        flow: Result<SinkFlow, ElementError>,
        run: &RunControl,
    ) -> Result<(), RunError> {
        match flow {
            Ok(SinkFlow::Continue) => {}
            Ok(SinkFlow::Done) => self.finish_from(id, run)?,
            // The reader went away (EPIPE): this branch ends quietly.
            Err(ElementError::Closed) => {
                let _in = self.obs.enter(id);
                tracing::debug!("The reader closed the stream: this branch ends");
                drop(_in);
                self.retire(id);
            }
            // Asked to end while it waited (a drain or a stop): not an error of its own, as in
            // the transform arm.
            Err(ElementError::Interrupted) => {}
            Err(e) => {
                let Op::Sink { el, .. } = self.ops[id].op else {
                    unreachable!("op {id} is a sink")
                };
                return Err(self.fail(el, e));
            }
        }
        Ok(())
    }

    /// Renders `buf` into each live sink of `sinks` (a tee's sink branches), all lent the same
    /// handle: no refcount traffic and no move per branch. Unless this buffer is timed or
    /// logged, each branch costs its count, the call and one test of the answer.
    fn render_branches(
        &mut self,
        sinks: &[usize],
        buf: &Buffer,
        run: &RunControl,
    ) -> Result<(), RunError> {
        if self.scale != 0 || self.obs.spans_on {
            for &b in sinks {
                if !self.ops[b].done {
                    self.ops[b].stats.count(buf);
                    self.render_lent(b, buf, run)?;
                }
            }
            return Ok(());
        }
        let len = buf.len() as u64;
        let mut cx = Ctx::new(run, None);
        cx.more_coming = self.burst > 0;
        for &b in sinks {
            let slot = &mut self.ops[b];
            let Op::Sink { el, imp, .. } = &mut slot.op else {
                unreachable!("op {b} is a sink")
            };
            if slot.done {
                continue;
            }
            slot.stats.buffers += 1;
            slot.stats.bytes += len;
            self.current = *el;
            cx.el = *el;
            let flow = imp.render(buf, &mut cx);
            if cx.kernel_copied != 0 {
                slot.stats.kernel_copied += std::mem::take(&mut cx.kernel_copied);
            }
            match flow {
                // `Ok(Continue)` owns nothing, but the compiler does not see it and dropped every
                // answer out of line (16 of the 80 instructions a branch cost): forgetting it
                // skips only that call.
                Ok(SinkFlow::Continue) => std::mem::forget(flow),
                flow => self.settle(b, flow, run)?,
            }
        }
        Ok(())
    }

    /// Whether this buffer goes unobserved: no sampled time, no span.
    #[inline]
    fn bare(&self) -> bool {
        self.scale == 0 && !self.obs.spans_on
    }

    /// Renders `buf` into sink op `id` (already counted) when nothing observes it: the call, and
    /// one test of the answer.
    #[inline]
    fn render_bare(&mut self, id: usize, buf: Buffer, run: &RunControl) -> Result<(), RunError> {
        let slot = &mut self.ops[id];
        let Op::Sink { el, imp, .. } = &mut slot.op else {
            unreachable!("op {id} is a sink")
        };
        self.current = *el;
        let mut cx = Ctx::new(run, None);
        cx.more_coming = self.burst > 0;
        let flow = imp.render_owned(buf, &mut cx);
        if cx.kernel_copied != 0 {
            slot.stats.kernel_copied += cx.kernel_copied;
        }
        match flow {
            // Owns nothing: forgotten to skip an out-of-line drop (see `render_branches`).
            Ok(SinkFlow::Continue) => {
                std::mem::forget(flow);
                Ok(())
            }
            flow => self.settle(id, flow, run),
        }
    }

    fn push(&mut self, entry: usize, buf: Buffer, run: &RunControl) -> Result<(), RunError> {
        // A source or queue straight into a sink (a copy, a sink thread): no chain to walk.
        let bare = self.bare();
        let slot = &mut self.ops[entry];
        if bare && !slot.done && matches!(slot.op, Op::Sink { .. }) {
            slot.stats.count(&buf);
            return self.render_bare(entry, buf, run);
        }
        // A linear chain never touches the stack: `pending` carries the buffer to the next op.
        let mut pending = Some((entry, buf));
        // One context for every transform call of this push, made at the first.
        let mut shared_cx: Option<Ctx<'_>> = None;
        loop {
            let (id, buf) = match pending.take() {
                Some(next) => next,
                None => match self.stack.pop() {
                    Some(next) => next,
                    None => return Ok(()),
                },
            };
            let bare = self.bare();
            let slot = &mut self.ops[id];
            if slot.done {
                continue;
            }
            slot.stats.count(&buf);
            // The commonest end of a branch: a sink, rendered with nothing in between when
            // nothing observes it.
            if bare && matches!(slot.op, Op::Sink { .. }) {
                self.render_bare(id, buf, run)?;
                continue;
            }
            match &mut self.ops[id].op {
                Op::Transform { el, imp, next } => {
                    let (el, next) = (*el, *next);
                    self.current = el;
                    let cx = shared_cx.get_or_insert_with(|| Ctx::new(run, None));
                    cx.el = el;
                    let about = (buf.len(), buf.meta.sequence);
                    let flow = self
                        .obs
                        .around(id, about, "Processing a buffer", || imp.process(buf, cx));
                    self.charge(id);
                    // One test when the element pushed nothing: the one-in-one-out path stays
                    // bare.
                    if cx.has_pushed() {
                        let out = cx.take_out();
                        self.after_pushes(id, (el, next), flow, out, run)?;
                        continue;
                    }
                    match flow {
                        Ok(Flow::Push(b)) => pending = Some((next, b)),
                        Ok(Flow::Drop) => self.ops[id].stats.dropped += 1,
                        Ok(Flow::Held) => {}
                        Ok(Flow::Eos) => {
                            self.finish_from(next, run)?;
                            self.ops[id].done = true;
                        }
                        Err(ElementError::Interrupted) => {}
                        Err(e) => return Err(self.fail(el, e)),
                    }
                }
                Op::Route {
                    el,
                    router,
                    branches,
                } => {
                    self.current = *el;
                    let target = router.route(&buf).and_then(|pad| {
                        branches.iter().find(|(n, _)| *n == pad).map(|&(_, op)| op)
                    });
                    self.charge(id);
                    match target {
                        Some(op) if !self.ops[op].done => pending = Some((op, buf)),
                        _ => self.ops[id].stats.dropped += 1,
                    }
                }
                Op::Sink { .. } => self.render(id, buf, run)?,
                Op::Tee {
                    el,
                    branches,
                    sinks,
                } => {
                    self.current = *el;
                    let sinks = *sinks;
                    // Sink branches render right here (src_0 first, as gst). The first other
                    // branch carries the buffer on; the rest wait on the stack with a clone,
                    // pushed last-first so that they too run in pad order.
                    let branches = std::mem::take(branches);
                    self.charge(id);
                    let rendered = self.render_branches(&branches[..sinks], &buf, run);
                    let mut onward = None;
                    if rendered.is_ok() {
                        for &b in branches[sinks..].iter().rev() {
                            if self.ops[b].done {
                                continue;
                            }
                            if let Some(later) = onward.replace(b) {
                                self.stack.push((later, buf.clone()));
                            }
                        }
                    }
                    if let Op::Tee { branches: slot, .. } = &mut self.ops[id].op {
                        *slot = branches;
                    }
                    rendered?;
                    if let Some(b) = onward {
                        pending = Some((b, buf));
                    }
                }
                Op::Tap { next, .. } => {
                    let next = *next;
                    if self.ops[next].done {
                        self.ops[id].done = true;
                        continue;
                    }
                    let Op::Tap { point, .. } = &mut self.ops[id].op else {
                        unreachable!("op {id} is a tap")
                    };
                    point.buffer(&buf);
                    pending = Some((next, buf));
                    // The tap's own time is not the next element's work.
                    self.charge(id);
                }
                Op::Send {
                    tx,
                    rx,
                    queue,
                    level,
                    gate,
                    announce,
                    ..
                } => {
                    if let Some((gate, slot)) = gate {
                        match gate.admit(*slot, run, tx) {
                            Admit::Pass => {
                                if let Some(caps) = announce {
                                    if gate.switched_to(*slot) {
                                        let _ = tx.send_event(Item::Caps(caps.clone()));
                                    }
                                }
                            }
                            Admit::Drop => {
                                self.ops[id].stats.dropped += 1;
                                continue;
                            }
                            // Stopping, or the concat's thread ended: nothing more goes in.
                            Admit::Stopped => {
                                self.retire(id);
                                return Ok(());
                            }
                        }
                    }
                    let tx = match tx {
                        ChanTx::Ring(ring) => {
                            match ring.send(Item::Buffer(buf), Some(run)) {
                                Sent::Done => {}
                                Sent::Stopped => return Ok(()),
                                // The other side is gone (it finished or failed).
                                Sent::Gone => self.retire(id),
                            }
                            continue;
                        }
                        ChanTx::Shared(tx) => tx,
                    };
                    let len = buf.len();
                    let mut item = Some(Item::Buffer(buf));
                    let leaky = queue.map_or(Leaky::No, |q| q.leaky);
                    let mut dropped = 0;
                    let sent = match leaky {
                        Leaky::No => match level.wait_for_room(run, &|| tx.is_disconnected()) {
                            Room::Stopped => return Ok(()),
                            Room::Gone => {
                                level.add(len);
                                false
                            }
                            Room::Free => {
                                level.add(len);
                                tx.send(item.take().expect("item is set")).is_ok()
                            }
                        },
                        Leaky::Upstream => {
                            level.add(len);
                            if level.over() {
                                dropped += 1;
                                Ok(true)
                            } else {
                                match tx.try_send_option(&mut item) {
                                    Ok(true) => Ok(true),
                                    Ok(false) => {
                                        dropped += 1;
                                        Ok(true)
                                    }
                                    Err(e) => Err(e),
                                }
                            }
                            .is_ok()
                        }
                        Leaky::Downstream => {
                            level.add(len);
                            let rx = rx
                                .as_ref()
                                .expect("a leaky=downstream sender holds the receiver");
                            // Only our own handle left: the queue's thread is gone.
                            if rx.receiver_count() <= 1 {
                                self.retire(id);
                                return Ok(());
                            }
                            loop {
                                match tx.try_send_option(&mut item) {
                                    Ok(true) if !level.over() => break true,
                                    Ok(true) | Ok(false) => {
                                        // Full: drop the oldest queued buffer and try again.
                                        if let Ok(Some(Item::Buffer(old))) = rx.try_recv() {
                                            level.remove(old.len());
                                            dropped += 1;
                                        }
                                        if item.is_none() {
                                            break true;
                                        }
                                    }
                                    Err(_) => break false,
                                }
                            }
                        }
                    };
                    if let Some(Item::Buffer(_)) = item {
                        // Not sent (dropped by leaky=upstream, or the channel closed).
                        level.remove(len);
                    }
                    self.ops[id].stats.dropped += dropped;
                    if !sent {
                        // The other side is gone (it finished or failed): stop feeding it.
                        self.retire(id);
                    }
                }
            }
        }
    }

    /// Element `el` gets a caps change to `caps`: the caps it was at when they differ (it must
    /// react), `None` when they are what it has (nothing changes below it either).
    fn caps_differ(&mut self, el: usize, caps: &Caps) -> Option<(Caps, ChangeRule)> {
        let state = self.caps.get_mut(el)?;
        if state.current.is_equivalent(caps) {
            return None;
        }
        let old = std::mem::replace(&mut state.current, caps.clone());
        Some((old, state.rule))
    }

    /// Element `el` refused a caps change from `old` to `new` (its own reason, if it gave one).
    fn refused(&self, el: usize, old: &Caps, new: &Caps, why: Option<ElementError>) -> RunError {
        let why = why.map_or(String::new(), |e| format!(": {e}"));
        self.fail(
            el,
            ElementError::Failed(format!(
                "cannot take a caps change in mid-stream from {old} to {new}{why}"
            )),
        )
    }

    /// A caps change in mid-stream, from op `from` down: every element below sees it in order
    /// with the buffers, re-reads its format (or keeps or passes it, as its rule says), and
    /// channels carry it to the next thread. One that cannot take it ends the run.
    #[cold]
    #[inline(never)]
    fn push_caps(&mut self, from: usize, caps: Caps) -> Result<(), RunError> {
        let mut work = vec![(from, caps)];
        while let Some((id, caps)) = work.pop() {
            if self.ops[id].done {
                continue;
            }
            let el = match &self.ops[id].op {
                Op::Transform { el, .. } | Op::Sink { el, .. } => *el,
                _ => usize::MAX,
            };
            let change = if el == usize::MAX {
                None
            } else {
                match self.caps_differ(el, &caps) {
                    Some(change) => Some(change),
                    // Already these caps (or not tracked): nothing to re-read.
                    None if self.caps.get(el).is_some() => continue,
                    None => Some((Caps::Any, ChangeRule::Pass)),
                }
            };
            self.current = if el == usize::MAX { self.current } else { el };
            match &mut self.ops[id].op {
                Op::Transform { imp, next, .. } => {
                    let next = *next;
                    let (old, rule) = change.expect("a transform has a state");
                    let answer = imp.caps_changed(&caps);
                    let out = match (answer, rule) {
                        (Some(Ok(out)), _) => out,
                        (Some(Err(e)), _) => return Err(self.refused(el, &old, &caps, Some(e))),
                        (None, ChangeRule::Pass) => caps,
                        (None, ChangeRule::Keep) => continue,
                        (None, ChangeRule::Refuse) => {
                            return Err(self.refused(el, &old, &caps, None))
                        }
                    };
                    tracing::debug!(element = %self.names[el], caps = %out, "Caps changed in mid-stream");
                    work.push((next, out));
                }
                Op::Sink { imp, .. } => {
                    let (old, rule) = change.expect("a sink has a state");
                    match (imp.caps_changed(&caps), rule) {
                        (Some(Ok(())), _) | (None, ChangeRule::Pass | ChangeRule::Keep) => {}
                        (Some(Err(e)), _) => return Err(self.refused(el, &old, &caps, Some(e))),
                        (None, ChangeRule::Refuse) => {
                            return Err(self.refused(el, &old, &caps, None))
                        }
                    }
                }
                Op::Tee { branches, .. } => {
                    work.extend(branches.iter().rev().map(|&b| (b, caps.clone())));
                }
                Op::Route { branches, .. } => {
                    work.extend(branches.iter().rev().map(|b| (b.1, caps.clone())));
                }
                Op::Tap { next, .. } => work.push((*next, caps)),
                Op::Send {
                    tx, gate, announce, ..
                } => {
                    // Into a concat or selector: this input's caps are what it announces when
                    // the stream switches to it; now, only if the stream is at it.
                    if let Some((gate, slot)) = gate {
                        let now = gate.is_current(*slot);
                        *announce = Some(Box::new(caps.clone()));
                        if !now {
                            continue;
                        }
                    }
                    if !tx.send_event(Item::Caps(Box::new(caps))) {
                        self.retire(id);
                    }
                }
            }
        }
        Ok(())
    }

    /// What transform op `id` (element `el`, feeding op `next`) answered after it pushed `out`:
    /// the pushed buffers go first, then its answer.
    #[cold]
    fn after_pushes(
        &mut self,
        id: usize,
        (el, next): (usize, usize),
        flow: Result<Flow, ElementError>,
        mut out: Vec<Buffer>,
        run: &RunControl,
    ) -> Result<(), RunError> {
        match flow {
            Ok(Flow::Push(b)) => {
                out.push(b);
                self.push_each(next, out, run)
            }
            Ok(Flow::Drop) => {
                self.ops[id].stats.dropped += 1;
                self.push_each(next, out, run)
            }
            Ok(Flow::Held) => self.push_each(next, out, run),
            Ok(Flow::Eos) => {
                self.push_each(next, out, run)?;
                self.finish_from(next, run)?;
                self.ops[id].done = true;
                Ok(())
            }
            Err(ElementError::Interrupted) => Ok(()),
            Err(e) => Err(self.fail(el, e)),
        }
    }

    /// Sends a transform's outputs `out` on to op `next`, each through the whole subtree below
    /// before the next (depth first, so every branch sees them in order).
    fn push_each(
        &mut self,
        next: usize,
        out: Vec<Buffer>,
        run: &RunControl,
    ) -> Result<(), RunError> {
        let last = out.len().saturating_sub(1);
        for (i, b) in out.into_iter().enumerate() {
            // Sinks may gather while more of this burst is on its way.
            let more = i < last;
            self.burst += usize::from(more);
            let pushed = self.push(next, b, run);
            self.burst -= usize::from(more);
            pushed?;
        }
        Ok(())
    }

    /// End of stream for the subtree at `from`: sinks finish, channels get EOS.
    fn finish_from(&mut self, from: usize, run: &RunControl) -> Result<(), RunError> {
        self.scale = 1;
        self.finishing = true;
        self.last = Instant::now();
        let mut work = vec![from];
        while let Some(id) = work.pop() {
            if self.ops[id].done {
                continue;
            }
            match &mut self.ops[id].op {
                Op::Transform { el, imp, next } => {
                    // What the element still holds goes down before its end of stream.
                    let (el, next) = (*el, *next);
                    self.current = el;
                    let mut cx = Ctx::for_element(run, None, el);
                    let flushed = {
                        let _in = self.obs.enter(id);
                        imp.flush(&mut cx)
                    };
                    let out = cx.pushed().unwrap_or_default();
                    self.charge(id);
                    match flushed {
                        Ok(()) | Err(ElementError::Interrupted) => {}
                        Err(e) => return Err(self.fail(el, e)),
                    }
                    for b in out {
                        self.push(next, b, run)?;
                    }
                    work.push(next);
                }
                Op::Tee { branches, .. } => work.extend(branches.iter().rev()),
                Op::Route { branches, .. } => work.extend(branches.iter().rev().map(|b| b.1)),
                Op::Tap { point, next } => {
                    point.eos();
                    work.push(*next);
                }
                Op::Sink { el, imp, .. } => {
                    let el = *el;
                    self.current = el;
                    let mut cx = Ctx::for_element(run, None, el);
                    let result = {
                        let _in = self.obs.enter(id);
                        tracing::debug!("End of stream: finishing");
                        imp.finish(&mut cx)
                    };
                    self.ops[id].stats.kernel_copied += cx.kernel_copied;
                    self.charge(id);
                    match result {
                        Ok(()) | Err(ElementError::Closed) => {}
                        Err(e) => return Err(self.fail(el, e)),
                    }
                }
                Op::Send { tx, gate, .. } => {
                    let _in = self.obs.enter(id);
                    tracing::debug!("End of stream: passing it to the next thread");
                    // A concat input ends in its turn, so the inputs end in pad order.
                    let turn = gate
                        .as_ref()
                        .is_none_or(|(g, slot)| g.wait_turn(*slot, run, tx));
                    if turn {
                        let _ = tx.send_event(Item::Eos);
                    }
                }
            }
            self.retire(id);
            self.ops[id].done = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::element::PoolRequest;
    use crate::memory::PoolConfig;

    /// Produces `left` buffers of 64 bytes from the pool.
    struct Counter {
        left: u32,
    }

    impl Source for Counter {
        fn pool_request(&self) -> Option<PoolRequest> {
            Some(PoolRequest {
                slot_size: 64,
                slots: 4,
            })
        }

        fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
            if self.left == 0 {
                return Ok(None);
            }
            self.left -= 1;
            let mut slot = cx.loan()?;
            slot.as_mut_slice().fill(self.left as u8);
            Ok(Some(slot.freeze(64)))
        }
    }

    /// Records the address of every buffer's bytes.
    struct Recorder(Arc<Mutex<Vec<usize>>>);

    impl Sink for Recorder {
        fn render(&mut self, buf: &Buffer, _cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
            self.0.lock().unwrap().push(buf.data().as_ptr() as usize);
            Ok(SinkFlow::Continue)
        }
    }

    #[test]
    fn tee_branches_see_the_same_memory_not_copies() {
        let pool = MemoryPool::new(&PoolConfig::new("test", 4, 64)).unwrap();
        let (a, b) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let ops = vec![
            OpSlot::new(Op::Tee {
                el: 1,
                branches: vec![1, 2],
                sinks: 0,
            }),
            OpSlot::new(Op::Sink {
                el: 2,
                imp: Box::new(Recorder(Arc::clone(&a))),
                counted: true,
            }),
            OpSlot::new(Op::Sink {
                el: 3,
                imp: Box::new(Recorder(Arc::clone(&b))),
                counted: true,
            }),
        ];
        let names = Arc::new(vec!["src".into(), "tee".into(), "a".into(), "b".into()]);
        let input = Input::Source {
            el: 0,
            src: Box::new(Counter { left: 10 }),
            pool: Some(pool.clone()),
            relay: false,
        };
        let seg = Segment::new("test".into(), input, 0, ops, names);
        let control = RunControl::new().unwrap();
        let result = seg.run_guarded(&control);
        assert_eq!(result.outcome, Outcome::Eos);
        let (a, b) = (a.lock().unwrap().clone(), b.lock().unwrap().clone());
        assert_eq!(a.len(), 10);
        assert_eq!(a, b, "both branches must see the very same bytes");
        // Fused: each buffer is released before the next is loaned, so one slot suffices.
        assert_eq!(pool.stats().high_water, 1);
        assert_eq!(pool.available(), 4);
    }

    /// Switches its shared pad to `to` after `after` buffers (what a control command does).
    struct Switching {
        left: u32,
        after: u32,
        active: ActivePad,
        to: u32,
    }

    impl Source for Switching {
        fn pool_request(&self) -> Option<PoolRequest> {
            None
        }

        fn produce(&mut self, _cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
            if self.left == 0 {
                return Ok(None);
            }
            if self.after == 0 {
                self.active.set(self.to);
            }
            self.after = self.after.saturating_sub(1);
            self.left -= 1;
            Ok(Some(Buffer::empty()))
        }
    }

    /// Routes to the shared active pad, as output-selector does.
    struct ToPad(ActivePad);

    impl Router for ToPad {
        fn route(&mut self, _buf: &Buffer) -> Option<u32> {
            Some(self.0.get())
        }
    }

    #[test]
    fn a_selector_switching_pads_mid_stream_sends_each_buffer_to_the_pad_active_then() {
        let active = ActivePad::new(0);
        let (a, b) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let ops = vec![
            OpSlot::new(Op::Route {
                el: 1,
                router: Box::new(ToPad(active.clone())),
                branches: vec![(0, 1), (1, 2)],
            }),
            OpSlot::new(Op::Sink {
                el: 2,
                imp: Box::new(Recorder(Arc::clone(&a))),
                counted: true,
            }),
            OpSlot::new(Op::Sink {
                el: 3,
                imp: Box::new(Recorder(Arc::clone(&b))),
                counted: true,
            }),
        ];
        let names = Arc::new(vec!["src".into(), "sel".into(), "a".into(), "b".into()]);
        let input = Input::Source {
            el: 0,
            src: Box::new(Switching {
                left: 10,
                after: 4,
                active,
                to: 1,
            }),
            pool: None,
            relay: false,
        };
        let seg = Segment::new("test".into(), input, 0, ops, names);
        let control = RunControl::new().unwrap();
        let result = seg.run_guarded(&control);
        assert_eq!(result.outcome, Outcome::Eos);
        assert_eq!(a.lock().unwrap().len(), 4, "before the switch");
        assert_eq!(b.lock().unwrap().len(), 6, "from the switch on");
    }

    #[test]
    fn a_gate_says_when_the_stream_switches_inputs_so_that_differing_caps_are_announced() {
        let gate = Gate::new(GateRule::Select(ActivePad::new(0)));
        assert!(
            gate.switched_to(0),
            "the first buffer announces its input's caps"
        );
        assert!(!gate.switched_to(0), "later ones of the same input do not");
        assert!(gate.switched_to(1));
        assert!(!gate.switched_to(1));
        assert!(gate.switched_to(0), "switching back announces again");
    }

    #[test]
    fn an_input_selector_switching_pads_passes_the_new_pad_and_drops_the_old() {
        let active = ActivePad::new(0);
        let gate = Gate::new(GateRule::Select(active.clone()));
        let control = RunControl::new().unwrap();
        let (tx, _rx) = kanal::bounded::<Item>(1);
        let tx = ChanTx::Shared(tx);
        assert!(matches!(gate.admit(0, &control, &tx), Admit::Pass));
        assert!(matches!(gate.admit(1, &control, &tx), Admit::Drop));
        active.set(1);
        assert!(matches!(gate.admit(0, &control, &tx), Admit::Drop));
        assert!(matches!(gate.admit(1, &control, &tx), Admit::Pass));
    }
}
