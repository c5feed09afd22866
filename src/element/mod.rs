//! The element-facing API: what an element implements ([`Source`], [`Transform`], [`Sink`], and
//! for I/O that waits on sockets [`AsyncSource`] and [`AsyncSink`]) and what it may call
//! ([`Ctx`], [`AsyncCtx`]). Element files use only [`prelude`], so that the engine can change
//! behind it.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use crate::caps::Caps;
use crate::memory::{Buffer, LoanedSlot, MemoryError, MemoryPool};

mod lent;
pub use lent::{Lender, LentHead, Opener};

pub mod prelude {
    //! Everything an element file needs.
    #[cfg(test)]
    pub use super::DetachedRun;
    pub use super::{
        ActivePad, AsyncCtx, AsyncSink, AsyncSource, Ctx, ElementError, ElementImpl, FanIn, Flow,
        Leaky, LentHead, PoolRequest, Qos, QueueSettings, Router, Sink, SinkFlow, Source,
        Transform,
    };
    pub use crate::caps::{Caps, CapsError, Fraction, Structure, Value as CapsValue};
    pub use crate::ipc::wire as stream_frame;
    pub use crate::ipc::{
        inherited as inherited_fd, FdKind, Received as StreamItem, StreamError, StreamListener,
        StreamReceiver, StreamSender,
    };
    pub use crate::memory::{
        format_clock, Buffer, BufferFlags, FieldLimits, FieldValue, FileExtent, FileWindows,
        LoanedSlot, MemoryError, MemoryPool, Metadata, PoolConfig, SourceFile,
    };
    pub use crate::registry::{
        CapsFns, CapsRule, EnumValue, Factory, Hints, Klass, LiveBool, LiveFloat, LiveUInt,
        PadPresence, Pads, Processing, PropSpec, Props, Role, Trust,
    };
    #[cfg(test)]
    pub use crate::registry::{Value, ValueError};
}

/// A run with no pipeline around it, for element unit tests and benches: its [`Ctx`] has no
/// pool and is never asked to stop.
pub struct DetachedRun(Instant);

impl Default for DetachedRun {
    fn default() -> DetachedRun {
        DetachedRun::new()
    }
}

impl DetachedRun {
    /// A fresh run.
    pub fn new() -> DetachedRun {
        DetachedRun(Instant::now())
    }

    /// A context to call an element with.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(self, None)
    }
}

impl RunState for DetachedRun {
    fn ends_streams(&self) -> bool {
        false
    }

    fn is_stopping(&self) -> bool {
        false
    }

    fn running_time_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }

    fn wait_running_time(&self, target_ns: u64) -> u64 {
        let now = self.running_time_ns();
        if now >= target_ns {
            return now - target_ns;
        }
        while self.running_time_ns() < target_ns {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        0
    }

    fn wait_readable(&self, _fd: BorrowedFd<'_>) -> Result<bool, ElementError> {
        Ok(true)
    }

    fn drain_or_stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An element's runtime failure. The executor prefixes it with the element's name.
#[derive(Debug, thiserror::Error)]
pub enum ElementError {
    /// An I/O call failed; `what` says on what ("writing /tmp/out").
    #[error("{what}: {source}")]
    Io {
        /// The operation and its object.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The reader at the other end went away (EPIPE): the sink stops quietly.
    #[error("the reader closed the stream")]
    Closed,
    /// The element was configured with something it cannot use.
    #[error("{0}")]
    Config(String),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Failed(String),
    /// The pipeline is stopping; not an error of the element.
    #[error("interrupted")]
    Interrupted,
}

impl ElementError {
    /// An I/O error about `what`, turning EPIPE into [`ElementError::Closed`].
    pub fn io(what: impl Into<String>, source: std::io::Error) -> ElementError {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            ElementError::Closed
        } else {
            ElementError::Io {
                what: what.into(),
                source,
            }
        }
    }
}

/// What a transform did with a buffer.
#[derive(Debug)]
pub enum Flow {
    /// Pass this buffer downstream.
    Push(Buffer),
    /// Nothing goes downstream this time: the buffer was filtered out (counted as dropped).
    Drop,
    /// The element kept the buffer or consumed it into something else (a record being joined,
    /// a batch being filled): only what it passed with [`Ctx::push`] goes downstream.
    Held,
    /// End the stream below this element (gst's EOS from an element), after anything it
    /// passed with [`Ctx::push`].
    Eos,
}

/// What an element that renders against the pipeline clock (`sync=true` sinks, `identity
/// sync=true`, `clocksync`) saw of its timing: gst's QoS counters, shown by `--stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qos {
    /// Buffers rendered against the clock.
    pub synced: u64,
    /// Of those, buffers that came later than [`Qos::LATE_NS`] after their running time.
    pub late: u64,
    /// The latest any buffer came, in ns after its running time.
    pub max_lateness_ns: u64,
}

impl Qos {
    /// How late a buffer may come and still count as on time: gst's video sinks'
    /// `max-lateness` default (20 ms).
    pub const LATE_NS: u64 = 20_000_000;

    /// Counts one buffer rendered `lateness_ns` after its running time (what
    /// [`Ctx::wait_for_pts`] returns); whether it was late.
    pub fn observe(&mut self, lateness_ns: u64) -> bool {
        self.synced += 1;
        self.max_lateness_ns = self.max_lateness_ns.max(lateness_ns);
        let late = lateness_ns > Qos::LATE_NS;
        if late {
            self.late += 1;
        }
        late
    }
}

/// Whether a sink wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFlow {
    /// Keep sending.
    Continue,
    /// Enough (fakesink num-buffers reached): no more buffers, finish now.
    Done,
}

/// Buffers in a source's pool when it does not say: enough to keep a queue and a sink busy.
pub const DEFAULT_POOL_SLOTS: usize = 16;

/// The pool a source asks for: `slots` buffers of up to `slot_size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRequest {
    /// Largest buffer the source produces.
    pub slot_size: usize,
    /// Buffers in flight at most; 0 lets the executor choose.
    pub slots: usize,
}

impl PoolRequest {
    /// The slots the pool gets: as asked, or the executor's default for 0.
    pub fn slots_or_default(&self) -> usize {
        if self.slots == 0 {
            DEFAULT_POOL_SLOTS
        } else {
            self.slots
        }
    }
}

/// Produces buffers. `produce` returns `Ok(None)` at end of stream.
pub trait Source: Send {
    /// The pool this source fills, or `None` when it produces no bytes (empty buffers).
    fn pool_request(&self) -> Option<PoolRequest>;
    /// Total bytes this source will produce, when known (for progress and ETA).
    fn size_hint(&self) -> Option<u64> {
        None
    }
    /// The next buffer, or `None` at end of stream.
    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError>;
}

/// Takes one buffer, passes on zero, one or several (through [`Ctx::push`]).
///
/// A transform that holds buffers back (a record split across inputs, a batch, a delay)
/// releases them in [`Transform::flush`] at end of stream. One whose output depends on time
/// (a timeout, a batch's age) says when it wants to be called next with
/// [`Transform::deadline`]; such an element declares [`Hints::TIMED`](crate::registry::Hints)
/// and gets a thread of its own, so that its timer runs while upstream is silent.
pub trait Transform: Send {
    /// Handles one buffer.
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError>;
    /// End of stream: pass on (with [`Ctx::push`]) whatever is still held.
    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        Ok(())
    }
    /// When the element next wants [`Transform::on_deadline`] called without input; `None`
    /// while it waits for nothing.
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// The deadline passed: pass on (with [`Ctx::push`]) what is due.
    fn on_deadline(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        Ok(())
    }
    /// What the element saw of the clock, when it syncs on it (`identity sync=true`,
    /// `clocksync`): asked once, when the run ends.
    fn qos(&self) -> Qos {
        Qos::default()
    }
    /// The stream's caps change in mid-stream to `caps` (the change travels in order with the
    /// buffers: every buffer after it has the new caps). An element whose output depends on
    /// its format re-reads it here and answers the caps of what it passes on from now on, or
    /// refuses. `None`, the default, lets the engine apply the element's caps rule: a
    /// passthrough element passes the change on, one whose output is untyped bytes keeps it,
    /// and any other refuses it (the run ends with an error naming it and both caps).
    fn caps_changed(&mut self, _caps: &Caps) -> Option<Result<Caps, ElementError>> {
        None
    }
}

/// Picks the src pad of a fan-out element (`output-selector`, `streamiddemux`) for each buffer.
pub trait Router: Send {
    /// The number of the `src_%u` pad this buffer leaves on; a pad that is not linked (or
    /// `None`) drops it, counted.
    fn route(&mut self, buf: &Buffer) -> Option<u32>;
    /// The number [`Router::route`] gives for src pad `pad`: `src_3` is 3 unless the element
    /// names its pads otherwise (a demuxer's `video_0`, `audio_0`).
    fn pad_number(&self, pad: &str) -> Option<u32> {
        ActivePad::parse(pad)
    }
}

/// The pad a selector passes: a number shared between the element and whoever switches it
/// while the pipeline runs.
#[derive(Debug, Clone, Default)]
pub struct ActivePad(crate::registry::LiveValue);

impl ActivePad {
    /// Starts at pad `n`.
    pub fn new(n: u32) -> ActivePad {
        let pad = ActivePad(crate::registry::LiveValue::default());
        pad.set(n);
        pad
    }

    /// Starts at pad `n`, in the shared word of the element's `name` property, so that the
    /// control socket switches it.
    pub fn live(
        props: &crate::registry::Props,
        name: &str,
        n: u32,
    ) -> Result<ActivePad, ElementError> {
        Ok(ActivePad(props.live_word(name, u64::from(n))?))
    }

    /// The pad now active.
    #[inline]
    pub fn get(&self) -> u32 {
        u32::try_from(self.0.bits()).unwrap_or(u32::MAX)
    }

    /// Switches to pad `n`.
    pub fn set(&self, n: u32) {
        self.0.store_bits(u64::from(n));
    }

    /// `sink_3` or `src_3` as 3; `None` for anything else.
    pub fn parse(pad: &str) -> Option<u32> {
        pad.rsplit_once('_')?.1.parse().ok()
    }
}

/// How a fan-in element merges its `sink_%u` pads.
#[derive(Debug, Clone)]
pub enum FanIn {
    /// Every buffer in arrival order (`funnel`).
    Funnel,
    /// Only the active pad's buffers pass; the others are dropped, counted (`input-selector`).
    Select(ActivePad),
    /// One pad after another, in pad order: `sink_1` waits until `sink_0` ended (`concat`).
    Concat,
}

/// Consumes buffers.
pub trait Sink: Send {
    /// Handles one buffer it is lent: a tee renders every branch from the same handle, so a
    /// sink that only reads the bytes costs no refcount traffic at all.
    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError>;
    /// Handles one buffer it is given. A sink that keeps buffers (hands them to a channel or
    /// another process) overrides this, and its `render` clones into it.
    fn render_owned(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        self.render(&buf, cx)
    }
    /// End of stream: flush and sync what needs it.
    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        Ok(())
    }
    /// The run stops on an error elsewhere: write out what this sink already holds (what it
    /// rendered is the stream up to the error, and must not be lost), without end-of-stream
    /// work such as fsync. gst does the same when it tears a failed pipeline down.
    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        Ok(())
    }
    /// Whether the sink gathers small buffers and wants [`Sink::idle`] calls. Asked once.
    fn gathers(&self) -> bool {
        false
    }
    /// Its thread has done all the work one input buffer brought and is about to wait for the
    /// next: write out what was gathered. So a sink may gather the records one read was cut
    /// into (one write instead of thousands) without holding any of them back while it waits.
    fn idle(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        Ok(())
    }
    /// What the sink saw of the clock, when it syncs on it (`sync=true`): asked once, when
    /// the run ends.
    fn qos(&self) -> Qos {
        Qos::default()
    }
    /// The stream's caps change in mid-stream to `caps`, before the next buffer (see
    /// [`Transform::caps_changed`]). `None`, the default, lets the engine decide: a sink
    /// that takes anything (ANY) takes it, any other refuses it.
    fn caps_changed(&mut self, _caps: &Caps) -> Option<Result<(), ElementError>> {
        None
    }
}

/// gst queue's `leaky` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaky {
    /// Block the producer when full.
    No,
    /// Drop the new buffer when full.
    Upstream,
    /// Drop the oldest queued buffer when full.
    Downstream,
}

/// A queue's limits; the executor implements the queue itself as a channel between threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Buffers held at most (0 = no buffer limit).
    pub max_buffers: usize,
    /// Bytes held at most (0 = no byte limit).
    pub max_bytes: u64,
    /// What to do when full.
    pub leaky: Leaky,
}

/// A built element, ready for the planner.
pub enum ElementImpl {
    /// Produces buffers.
    Source(Box<dyn Source>),
    /// One in, zero or one out.
    Transform(Box<dyn Transform>),
    /// Consumes buffers.
    Sink(Box<dyn Sink>),
    /// Hands each buffer to every branch (refcount clones, never copies).
    Tee,
    /// Merges its inputs into one stream.
    Funnel,
    /// Merges its inputs as the rule says (selectors, concat).
    FanIn(FanIn),
    /// Sends each buffer to one of its branches, as the router picks.
    Route(Box<dyn Router>),
    /// A demuxer: a transform whose output buffers are each sent to one of its src pads, as
    /// the router picks (by the stream id the transform stamped on them).
    Demux {
        /// Turns the container's bytes into the streams' buffers.
        imp: Box<dyn Transform>,
        /// Picks each buffer's src pad.
        router: Box<dyn Router>,
    },
    /// A thread boundary with a bounded channel.
    Queue(QueueSettings),
    /// Produces buffers from a task on the pipeline's tokio runtime.
    AsyncSource(Box<dyn DynAsyncSource>),
    /// Consumes buffers in a task on the pipeline's tokio runtime.
    AsyncSink(Box<dyn DynAsyncSink>),
    /// A one-in-one-out element run elsewhere (a worker process, an rt thread): `input` ends
    /// the upstream thread and `output` starts the element's own, so the two overlap.
    Split {
        /// Hands buffers over.
        input: Box<dyn Sink>,
        /// Yields what the element passes on.
        output: Box<dyn Source>,
    },
}

/// What the engine tells an element about the run it is part of. The executor implements it;
/// elements reach it only through [`Ctx`] and [`AsyncCtx`].
pub trait RunState: Send + Sync {
    /// Whether sources should end their stream (Ctrl-C drains, or an error stops the run).
    fn ends_streams(&self) -> bool;
    /// Whether the run is stopping on an error (not a drain).
    fn is_stopping(&self) -> bool;
    /// Holds a source's thread still while the run is paused (see `RunControl`); always false.
    fn hold_while_paused(&self) -> bool {
        false
    }
    /// Nanoseconds the run has been running: the pipeline clock, stopped while paused.
    fn running_time_ns(&self) -> u64;
    /// Waits until the running time reaches `target_ns` or the run stops; how late it was.
    fn wait_running_time(&self, target_ns: u64) -> u64;
    /// Waits until `fd` is readable (`true`) or sources should end (`false`).
    fn wait_readable(&self, fd: BorrowedFd<'_>) -> Result<bool, ElementError>;
    /// Returns once sources should end their stream. Cancel-safe.
    fn drain_or_stop(&self) -> BoxFuture<'_, ()>;
    /// The run's events, when it has any (a detached run does not).
    fn events(&self) -> Option<&crate::exec::events::Events> {
        None
    }
    /// The name of element `el` (an index into the graph), when the run knows it.
    fn element_name(&self, _el: usize) -> Option<&str> {
        None
    }
    /// The executor's own type, for its own code.
    #[doc(hidden)]
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Publishes what an element says: to the run's events, or to the log when the run has none
/// (an element called outside a pipeline).
fn say(
    run: &dyn RunState,
    element: &str,
    event: impl FnOnce(String) -> crate::exec::events::Event,
) {
    use crate::exec::events::Event;
    match run.events() {
        Some(events) => events.publish(event(element.to_owned())),
        None => match event(element.to_owned()) {
            Event::Warning { element, message } => tracing::warn!(%element, "{message}"),
            other => tracing::info!("{other}"),
        },
    }
}

/// Where an element's lines go (`-m` messages, reports), whole lines at a time.
pub trait Lines: Send + Sync {
    /// Writes `text`, a whole line or more.
    fn write_lines(&self, text: &str);
}

/// What an element may ask of the engine while it runs.
pub struct Ctx<'a> {
    pub(crate) run: &'a dyn RunState,
    pub(crate) pool: Option<&'a MemoryPool>,
    /// Bytes this call had the kernel copy file to file, for `--stats` and `-m`.
    pub(crate) kernel_copied: u64,
    /// What the element passed on with [`Ctx::push`], in order; `None` until it pushes, so
    /// that a context that never does (every source and sink call) costs no drop of a vector.
    // One word, not three: the context is built for every call, and most never push.
    // Both boxes sit in `ManuallyDrop` and `Drop` frees them, after one test for the common
    // case of neither: the compiler's own drop glue was an out-of-line call per context.
    #[allow(clippy::box_collection)]
    out: ManuallyDrop<Option<Box<Vec<Buffer>>>>,
    /// Buffers an element run on a thread of its own dropped during this call, for `--stats`.
    pub(crate) dropped: u64,
    /// More buffers of the same burst (the records one read was cut into) follow this one.
    pub(crate) more_coming: bool,
    /// Caps a source announced for the buffer it returns and those after (a change in
    /// mid-stream); `None` nearly always.
    pub(crate) caps: ManuallyDrop<Option<Box<Caps>>>,
    /// The element called (its index in the graph): whom its warnings and messages name.
    pub(crate) el: usize,
}

impl Drop for Ctx<'_> {
    /// A context is made and dropped for every call: the common case (nothing pushed) must
    /// not call out to the vector's drop.
    #[inline]
    fn drop(&mut self) {
        if self.out.is_some() || self.caps.is_some() {
            drop_held(self.out.take(), self.caps.take());
        }
    }
}

/// What a context still held when it was dropped (a stop midway, caps nobody took): off the
/// common path.
#[cold]
#[inline(never)]
fn drop_held<T, U>(out: T, caps: U) {
    drop((out, caps));
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(run: &'a dyn RunState, pool: Option<&'a MemoryPool>) -> Ctx<'a> {
        Ctx {
            run,
            pool,
            kernel_copied: 0,
            out: ManuallyDrop::new(None),
            dropped: 0,
            more_coming: false,
            caps: ManuallyDrop::new(None),
            el: usize::MAX,
        }
    }

    /// A context for element `el` (its index in the graph).
    pub(crate) fn for_element(
        run: &'a dyn RunState,
        pool: Option<&'a MemoryPool>,
        el: usize,
    ) -> Ctx<'a> {
        let mut cx = Ctx::new(run, pool);
        cx.el = el;
        cx
    }

    /// The element's instance name, as its warnings and messages give it.
    pub fn name(&self) -> &str {
        self.run.element_name(self.el).unwrap_or("element")
    }

    /// A warning: data the element lost or worked around on purpose (a frame skipped with
    /// `on-error=drop`, a resync, a client dropped). Printed on stderr as `parallax: warning:
    /// NAME: TEXT` with or without `-m`, and published as an `Event::Warning`. For rare
    /// happenings: it takes a lock.
    pub fn warn(&self, text: impl std::fmt::Display) {
        say(self.run, self.name(), |element| {
            crate::exec::events::Event::Warning {
                element,
                message: text.to_string(),
            }
        });
    }

    /// An element message (`-m`): published only when someone listens, so the text is not even
    /// formatted otherwise.
    pub fn message(&self, text: impl std::fmt::Display) {
        if self.run.events().is_some_and(|e| e.is_subscribed()) {
            say(self.run, self.name(), |element| {
                crate::exec::events::Event::Element {
                    element,
                    message: text.to_string(),
                }
            });
        }
    }

    /// Whether anyone listens to the run's events: an element that would count or format
    /// something only for them asks first.
    #[inline]
    pub fn is_watched(&self) -> bool {
        self.run.events().is_some_and(|e| e.is_subscribed())
    }

    /// gst's QoS message: the element rendered `late` buffers late and dropped `dropped` so
    /// far (call it after the one that was late or dropped). Costs one test of a flag when
    /// nobody listens.
    pub fn post_qos(&self, late: u64, dropped: u64) {
        if self.is_watched() {
            say(self.run, self.name(), |element| {
                crate::exec::events::Event::Qos {
                    element,
                    late,
                    dropped,
                }
            });
        }
    }

    /// [`Ctx::wait_for_pts`] and [`Qos::observe`] in one: waits for the buffer's time, counts
    /// it, and posts a QoS message when it came late.
    pub fn sync_to_pts(&mut self, buf: &Buffer, qos: &mut Qos) {
        let lateness = self.wait_for_pts(buf);
        if qos.observe(lateness) {
            self.post_qos(qos.late, 0);
        }
    }

    /// For a source: the stream's caps change to `caps` from the buffer this call returns on
    /// (a shmsrc whose producer changed format). The change travels downstream in order with
    /// the buffers, and every element below re-reads its format or refuses it.
    pub fn announce_caps(&mut self, caps: Caps) {
        *self.caps = Some(Box::new(caps));
    }

    /// Passes `buf` downstream, after what was pushed before it and before the buffer a
    /// [`Flow::Push`] returns. This is how a transform outputs several buffers for one input
    /// (a split, an unbatch) or outputs at end of stream ([`Transform::flush`]).
    pub fn push(&mut self, buf: Buffer) {
        self.out.get_or_insert_with(Box::default).push(buf);
    }

    /// Takes what the element pushed so far, in order: for element tests and benches that
    /// call an element outside a pipeline.
    pub fn take_pushed(&mut self) -> std::vec::IntoIter<Buffer> {
        self.take_out().into_iter()
    }

    /// Takes what the element pushed, in order (empty if nothing).
    pub(crate) fn take_out(&mut self) -> Vec<Buffer> {
        self.out.take().map(|out| *out).unwrap_or_default()
    }

    /// Takes what the element pushed; `None` when it pushed nothing (no vector was made).
    pub(crate) fn pushed(&mut self) -> Option<Vec<Buffer>> {
        self.out.take().map(|out| *out)
    }

    /// Whether the element pushed anything since the last [`Ctx::take_out`].
    #[inline]
    pub(crate) fn has_pushed(&self) -> bool {
        self.out.is_some()
    }

    /// Counts `bytes` that a sink had the kernel copy from their source file
    /// (`copy_file_range`) rather than writing them itself.
    pub fn count_kernel_copied(&mut self, bytes: u64) {
        self.kernel_copied += bytes;
    }

    /// Nanoseconds since the pipeline started running: a buffer's pts with `do-timestamp`
    /// (the same clock as [`AsyncCtx::running_time_ns`]).
    pub fn running_time_ns(&self) -> u64 {
        self.run.running_time_ns()
    }

    /// Waits until the pipeline clock's running time reaches `ns` (a live source waits for
    /// the end of the buffer it captures), or the run stops; returns how late it was, in ns.
    pub fn wait_until_running_time(&mut self, ns: u64) -> u64 {
        self.run.wait_running_time(ns)
    }

    /// gst's `sync=true`: waits until the pipeline clock's running time reaches the buffer's
    /// pts (a buffer without one renders at once), and returns how late it came, in ns (0 when
    /// it was early and waited): what [`Qos::observe`] counts. The clock stands still while
    /// the run is paused, so a sink waits out a pause too.
    pub fn wait_for_pts(&mut self, buf: &Buffer) -> u64 {
        match buf.meta.pts() {
            Some(pts) => self.run.wait_running_time(pts),
            None => 0,
        }
    }

    /// Whether the pipeline asks sources to end the stream (Ctrl-C, or an error elsewhere).
    pub fn should_stop(&self) -> bool {
        self.run.ends_streams()
    }

    /// For a sink: whether more buffers of the same burst follow this one at once (the other
    /// records one read was cut into), so that gathering them costs no wait. A sink that
    /// gathers writes out at the end of a burst, and in [`Sink::idle`].
    pub fn more_coming(&self) -> bool {
        self.more_coming
    }

    /// Whether the pipeline is stopping on an error elsewhere (not a drain): what a wait for
    /// room to put already-read bytes in gives up on.
    pub fn is_stopping(&self) -> bool {
        self.run.is_stopping()
    }

    /// Loans a buffer slot from this source's pool, waiting while all are in use
    /// (backpressure). Ends with [`ElementError::Interrupted`] when the pipeline stops meanwhile.
    pub fn loan(&mut self) -> Result<LoanedSlot, ElementError> {
        let pool = self.pool.ok_or_else(|| {
            ElementError::Failed("no buffer pool was set up for this element".into())
        })?;
        let run = self.run;
        pool.loan_blocking(&|| run.hold_while_paused() || run.ends_streams())
            .map_err(|e| match e {
                MemoryError::Cancelled => ElementError::Interrupted,
                other => ElementError::Failed(other.to_string()),
            })
    }

    /// Waits until `fd` is readable. Returns `false` instead when the pipeline asks sources to
    /// stop, so a source blocked on a pipe, FIFO or socket still ends at Ctrl-C.
    pub fn wait_readable(&self, fd: BorrowedFd<'_>) -> Result<bool, ElementError> {
        self.run.wait_readable(fd)
    }
}

/// A boxed, sendable future: what the executor holds of an async element's call.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Produces buffers without blocking a thread: the executor runs it as a task on the
/// pipeline's tokio runtime (the async domain) and carries its buffers to the fused threads
/// through a bounded channel, so a full channel holds it back.
///
/// Cancellation: when the pipeline drains (Ctrl-C) or stops, the executor drops the future of
/// the `start` or `produce` call in progress. Both must therefore be cancel-safe: a buffer
/// that was produced is always delivered, and a call that is dropped must not have consumed
/// input it did not return (tokio's `read`, `recv` and `accept` are cancel-safe).
pub trait AsyncSource: Send + 'static {
    /// The pool this source fills, or `None` when it produces no bytes.
    fn pool_request(&self) -> Option<PoolRequest>;
    /// Opens what the source reads from (bind, connect); runs once before `produce`.
    fn start(
        &mut self,
        _cx: &mut AsyncCtx,
    ) -> impl Future<Output = Result<(), ElementError>> + Send {
        async { Ok(()) }
    }
    /// The next buffer, or `None` at end of stream.
    fn produce(
        &mut self,
        cx: &mut AsyncCtx,
    ) -> impl Future<Output = Result<Option<Buffer>, ElementError>> + Send;
}

/// Consumes buffers without blocking a thread, as a task on the pipeline's tokio runtime. A
/// slow `render` holds back the channel that feeds it, and through it the threads upstream:
/// memory stays bounded.
pub trait AsyncSink: Send + 'static {
    /// Opens what the sink writes to (bind, connect); runs once before the first buffer.
    fn start(
        &mut self,
        _cx: &mut AsyncCtx,
    ) -> impl Future<Output = Result<(), ElementError>> + Send {
        async { Ok(()) }
    }
    /// Handles one buffer.
    fn render(
        &mut self,
        buf: Buffer,
        cx: &mut AsyncCtx,
    ) -> impl Future<Output = Result<SinkFlow, ElementError>> + Send;
    /// End of stream: flush and close.
    fn finish(
        &mut self,
        _cx: &mut AsyncCtx,
    ) -> impl Future<Output = Result<(), ElementError>> + Send {
        async { Ok(()) }
    }
}

/// The object-safe form of [`AsyncSource`] that the executor holds; implemented for every
/// `AsyncSource`.
pub trait DynAsyncSource: Send {
    /// See [`AsyncSource::pool_request`].
    fn pool_request_dyn(&self) -> Option<PoolRequest>;
    /// See [`AsyncSource::start`].
    fn start_dyn<'a>(&'a mut self, cx: &'a mut AsyncCtx)
        -> BoxFuture<'a, Result<(), ElementError>>;
    /// See [`AsyncSource::produce`].
    fn produce_dyn<'a>(
        &'a mut self,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<Option<Buffer>, ElementError>>;
}

impl<T: AsyncSource> DynAsyncSource for T {
    fn pool_request_dyn(&self) -> Option<PoolRequest> {
        self.pool_request()
    }

    fn start_dyn<'a>(
        &'a mut self,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<(), ElementError>> {
        Box::pin(self.start(cx))
    }

    fn produce_dyn<'a>(
        &'a mut self,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<Option<Buffer>, ElementError>> {
        Box::pin(self.produce(cx))
    }
}

/// The object-safe form of [`AsyncSink`]; implemented for every `AsyncSink`.
pub trait DynAsyncSink: Send {
    /// See [`AsyncSink::start`].
    fn start_dyn<'a>(&'a mut self, cx: &'a mut AsyncCtx)
        -> BoxFuture<'a, Result<(), ElementError>>;
    /// See [`AsyncSink::render`].
    fn render_dyn<'a>(
        &'a mut self,
        buf: Buffer,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<SinkFlow, ElementError>>;
    /// See [`AsyncSink::finish`].
    fn finish_dyn<'a>(
        &'a mut self,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<(), ElementError>>;
}

impl<T: AsyncSink> DynAsyncSink for T {
    fn start_dyn<'a>(
        &'a mut self,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<(), ElementError>> {
        Box::pin(self.start(cx))
    }

    fn render_dyn<'a>(
        &'a mut self,
        buf: Buffer,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<SinkFlow, ElementError>> {
        Box::pin(self.render(buf, cx))
    }

    fn finish_dyn<'a>(
        &'a mut self,
        cx: &'a mut AsyncCtx,
    ) -> BoxFuture<'a, Result<(), ElementError>> {
        Box::pin(self.finish(cx))
    }
}

/// What an async element may ask of the engine: buffers, messages, counters.
pub struct AsyncCtx {
    pub(crate) run: Arc<dyn RunState>,
    pub(crate) pool: Option<MemoryPool>,
    pub(crate) name: String,
    /// Where its lines go (around a progress line).
    pub(crate) console: Arc<dyn Lines>,
    /// Buffers cut short (datagrams longer than the element's mtu), for `--stats`.
    pub(crate) truncated: u64,
    /// Buffers or messages the element dropped, for `--stats`.
    pub(crate) dropped: u64,
}

impl AsyncCtx {
    pub(crate) fn new(
        run: Arc<dyn RunState>,
        pool: Option<MemoryPool>,
        name: String,
        console: Arc<dyn Lines>,
    ) -> AsyncCtx {
        AsyncCtx {
            run,
            pool,
            name,
            console,
            truncated: 0,
            dropped: 0,
        }
    }

    /// Whether the pipeline asks sources to end the stream (Ctrl-C, or an error elsewhere).
    pub fn should_stop(&self) -> bool {
        self.run.ends_streams()
    }

    /// Whether the pipeline is stopping on an error elsewhere (not a drain).
    pub fn is_stopping(&self) -> bool {
        self.run.is_stopping()
    }

    /// Returns once the pipeline asks sources to end (Ctrl-C) or stops: a sink waiting for a
    /// peer that may never come races its wait against this.
    pub async fn drain_or_stop(&self) {
        self.run.drain_or_stop().await;
    }

    /// Loans a buffer slot from this source's pool. While every slot is in use it waits
    /// (backpressure) on the runtime's blocking pool, never on the runtime's own thread.
    pub async fn loan(&mut self) -> Result<LoanedSlot, ElementError> {
        let pool = self.pool.as_ref().ok_or_else(|| {
            ElementError::Failed("no buffer pool was set up for this element".into())
        })?;
        if let Some(slot) = pool.try_loan() {
            return Ok(slot);
        }
        let (pool, run) = (pool.clone(), Arc::clone(&self.run));
        let waited =
            tokio::task::spawn_blocking(move || pool.loan_blocking(&|| run.ends_streams()))
                .await
                .map_err(|e| ElementError::Failed(format!("waiting for a free buffer: {e}")))?;
        waited.map_err(|e| match e {
            MemoryError::Cancelled => ElementError::Interrupted,
            other => ElementError::Failed(other.to_string()),
        })
    }

    /// The element's instance name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An element message (`message: NAME: TEXT` with `-m`): published only when someone
    /// listens.
    pub fn message(&self, text: impl std::fmt::Display) {
        if self.run.events().is_some_and(|e| e.is_subscribed()) {
            say(self.run.as_ref(), &self.name, |element| {
                crate::exec::events::Event::Element {
                    element,
                    message: text.to_string(),
                }
            });
        }
    }

    /// A warning (`parallax: warning: NAME: TEXT` on stderr, `-m` or not, and an
    /// `Event::Warning`): for data the run loses on purpose (a client dropped by a limit),
    /// which must never go unsaid.
    pub fn warn(&self, text: impl std::fmt::Display) {
        say(self.run.as_ref(), &self.name, |element| {
            crate::exec::events::Event::Warning {
                element,
                message: text.to_string(),
            }
        });
    }

    /// Prints `NAME: PROPERTY = VALUE` on stderr, even with `-q`: for a value the user asked
    /// the system to choose (`port=0`), which is otherwise impossible to learn.
    pub fn report_chosen(&self, property: &str, value: impl std::fmt::Display) {
        self.console
            .write_lines(&format!("{}: {property} = {value}\n", self.name));
    }

    /// Counts one buffer cut short (a datagram longer than the mtu).
    pub fn count_truncated(&mut self) {
        self.truncated += 1;
    }

    /// Counts one input the element dropped (a message of a kind it does not keep).
    pub fn count_dropped(&mut self) {
        self.dropped += 1;
    }

    /// Nanoseconds since the pipeline started running: a buffer's pts with `do-timestamp`.
    pub fn running_time_ns(&self) -> u64 {
        self.run.running_time_ns()
    }
}
