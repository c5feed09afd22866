//! The async domain: one tokio runtime per run, on one thread (`px-async`), created only when
//! the plan has an async element, so that other pipelines pay nothing for it.
//!
//! Each async element is a task. An [`AsyncSource`](crate::element::AsyncSource) task sends its
//! buffers into a bounded kanal channel through the channel's async half; a fused thread takes
//! them out through the sync half (the bridge), so a full channel suspends the task, never a
//! thread. An [`AsyncSink`](crate::element::AsyncSink) task receives from a channel that fused
//! threads feed through its sync half, exactly like a queue: a slow peer fills the channel and
//! the thread upstream waits. Memory is bounded by channel capacities and pools either way.
//!
//! Stopping: sources race every call against [`RunControl::drain_or_stop`], so a Ctrl-C ends a
//! source waiting in accept, connect or recv at once (the call's future is dropped; the
//! elements' calls are cancel-safe). Sinks race their `start` (connect, accept) against it too,
//! and the rest only against [`RunControl::stop`]: on a drain they still write out everything
//! that reaches them.
//!
//! Busy time is the time spent inside the elements' polls, not the time their futures were
//! waiting for a socket.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::control::RunControl;
use super::segment::{ElementStats, Item, Level, Outcome, SegmentResult};
use super::RunError;
use crate::element::{AsyncCtx, DynAsyncSink, DynAsyncSource, ElementError, ElementImpl, SinkFlow};
use crate::memory::MemoryPool;

/// The name of the runtime's thread (Linux keeps 15 bytes of a thread name).
pub(super) const THREAD_NAME: &str = "px-async";
/// Threads the runtime may start for blocking work (DNS lookups, waiting for a pool slot).
const MAX_BLOCKING_THREADS: usize = 4;

/// One element of the async domain, wired to its channel.
pub(super) enum AsyncTask {
    Source {
        el: usize,
        src: Box<dyn DynAsyncSource>,
        pool: Option<MemoryPool>,
        /// Into the bridge (or straight into an async sink's channel).
        tx: kanal::AsyncSender<Item>,
        level: Arc<Level>,
        /// Whether this task counts the buffers: a bridge thread counts them as they arrive,
        /// an async sink fed directly counts its own.
        count: bool,
    },
    Sink {
        el: usize,
        sink: Box<dyn DynAsyncSink>,
        rx: kanal::AsyncReceiver<Item>,
        /// EOS to wait for: one per upstream link.
        inputs: usize,
        level: Arc<Level>,
    },
    /// A thread-domain transform forced onto the runtime with `exec=async`: its buffers come
    /// in through one bounded channel and leave through another.
    Transform {
        el: usize,
        imp: Box<dyn crate::element::Transform>,
        rx: kanal::AsyncReceiver<Item>,
        tx: kanal::AsyncSender<Item>,
    },
}

impl AsyncTask {
    fn element(&self) -> usize {
        match self {
            AsyncTask::Source { el, .. }
            | AsyncTask::Sink { el, .. }
            | AsyncTask::Transform { el, .. } => *el,
        }
    }
}

/// What the runtime thread needs besides its tasks.
pub(super) struct DomainContext {
    pub(super) control: Arc<RunControl>,
    pub(super) names: Arc<Vec<String>>,
    /// Where lines go (around a progress line).
    pub(super) console: super::Console,
    /// Where tasks publish their counts as they go, when a control socket or a metrics
    /// endpoint watches.
    pub(super) progress: Option<Arc<super::Progress>>,
}

/// Starts the runtime thread; each task's result goes to `done` when it ends.
pub(super) fn spawn(
    tasks: Vec<AsyncTask>,
    cx: DomainContext,
    done: std::sync::mpsc::Sender<SegmentResult>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || run(tasks, cx, done))
}

fn run(tasks: Vec<AsyncTask>, cx: DomainContext, done: std::sync::mpsc::Sender<SegmentResult>) {
    let elements: Vec<usize> = tasks.iter().map(AsyncTask::element).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("px-async-block")
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            cx.control.fail(RunError::Setup(format!(
                "cannot start the async runtime: {e}"
            )));
            for el in elements {
                let _ = done.send(SegmentResult {
                    stats: vec![(el, ElementStats::default())],
                    links: Vec::new(),
                    outcome: Outcome::Failed,
                });
            }
            return;
        }
    };
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        let mut element_of = HashMap::new();
        for task in tasks {
            let el = task.element();
            let control = Arc::clone(&cx.control);
            let acx = AsyncCtx::new(
                Arc::clone(&control) as Arc<dyn crate::element::RunState>,
                None,
                cx.names[el].clone(),
                Arc::new(cx.console.clone()),
            );
            let live = cx.progress.as_ref().map(|p| (el, p.register()));
            let handle = set.spawn(run_task(task, acx, control, Arc::clone(&cx.names), live));
            element_of.insert(handle.id(), el);
        }
        while let Some(joined) = set.join_next_with_id().await {
            let result = match joined {
                Ok((_, result)) => result,
                Err(e) => {
                    let el = element_of.get(&e.id()).copied().unwrap_or(0);
                    let message = if e.is_panic() {
                        super::segment::panic_message(e.into_panic().as_ref())
                    } else {
                        "the task was cancelled".into()
                    };
                    let err = RunError::Panic {
                        element: cx.names[el].clone(),
                        message,
                    };
                    let how = format!("error: {err}");
                    cx.control.fail(err);
                    publish_message(&cx.control, &cx.names[el], how);
                    SegmentResult {
                        stats: vec![(el, ElementStats::default())],
                        links: Vec::new(),
                        outcome: Outcome::Failed,
                    }
                }
            };
            let _ = done.send(result);
        }
    });
    // A DNS lookup stuck in getaddrinfo must not hold the exit.
    runtime.shutdown_background();
}

/// A task's counts, and where it publishes them after every buffer (nowhere unless watched).
#[derive(Default)]
struct Counting {
    stats: ElementStats,
    live: Option<(usize, Arc<super::observe::LiveCounters>)>,
    /// The sampler's random state (0 before the first buffer).
    iteration: u64,
    /// Buffers until the next sampled one.
    gap: u64,
}

impl Counting {
    /// Puts the time one buffer took inside the element's calls (`busy` ns) into its
    /// processing-time histogram when the buffer is sampled: as on the fused threads, the
    /// first, then one after a random gap of 1 to 63 buffers (one in 32 on average). The calls
    /// are timed anyway (their busy time is exact); sampling keeps the histogram what it is
    /// for the other elements.
    fn sample_time(&mut self, busy: u64) {
        if self.gap > 1 {
            self.gap -= 1;
            return;
        }
        if self.iteration == 0 {
            self.iteration = 0x9E37_79B9_7F4A_7C15;
            self.gap = 1;
        } else {
            let mut x = self.iteration;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.iteration = x;
            self.gap = 1 + x % (2 * super::segment::SAMPLE_EVERY - 1);
        }
        self.stats.times.record(busy);
    }

    fn publish(&self) {
        if let Some((el, live)) = &self.live {
            live.publish_one(*el, &self.stats);
        }
    }
}

impl std::ops::Deref for Counting {
    type Target = ElementStats;
    fn deref(&self) -> &ElementStats {
        &self.stats
    }
}

impl std::ops::DerefMut for Counting {
    fn deref_mut(&mut self) -> &mut ElementStats {
        &mut self.stats
    }
}

/// Publishes an element message, when someone listens.
fn publish_message(control: &RunControl, element: &str, text: String) {
    if control.events().is_subscribed() {
        control.events().publish(super::events::Event::Element {
            element: element.to_owned(),
            message: text,
        });
    }
}

/// Drops a finished element on a blocking thread and waits for that without holding the
/// runtime: a drop may block (the Zenoh elements wait for their own thread to close its
/// session), and the other elements on this runtime go on meanwhile.
async fn drop_aside<T: Send + 'static>(element: T) {
    let _ = tokio::task::spawn_blocking(move || drop(element)).await;
}

/// Runs one element to its end and reports like a segment does.
async fn run_task(
    task: AsyncTask,
    mut cx: AsyncCtx,
    control: Arc<RunControl>,
    names: Arc<Vec<String>>,
    live: Option<(usize, Arc<super::observe::LiveCounters>)>,
) -> SegmentResult {
    let el = task.element();
    publish_message(&control, &names[el], format!("started ({THREAD_NAME})"));
    let mut stats = Counting {
        live,
        ..Counting::default()
    };
    let outcome = match task {
        AsyncTask::Source {
            mut src,
            pool,
            tx,
            level,
            count,
            ..
        } => {
            cx.pool = pool;
            let outcome = run_source(
                src.as_mut(),
                &mut cx,
                &control,
                &tx,
                &level,
                count,
                &mut stats,
            )
            .await;
            drop_aside(src).await;
            outcome
        }
        AsyncTask::Sink {
            mut sink,
            rx,
            inputs,
            level,
            ..
        } => {
            let input = rx.clone();
            let outcome = run_sink(
                sink.as_mut(),
                &mut cx,
                &control,
                rx,
                inputs,
                &level,
                &mut stats,
            )
            .await;
            drop_aside(sink).await;
            // What is still queued will never be read: dropped now, so that its buffers go
            // back to their pools although a sender's thread goes on (issue 21).
            let _ = input.close();
            outcome
        }
        AsyncTask::Transform { imp, rx, tx, .. } => {
            let input = rx.clone();
            let outcome = run_transform(imp, el, &control, rx, tx, &mut stats).await;
            let _ = input.close();
            outcome
        }
    };
    stats.truncated += cx.truncated;
    stats.dropped += cx.dropped;
    stats.publish();
    let (outcome, how) = match outcome {
        Ok(o @ Outcome::Eos) => (o, "end of stream".to_owned()),
        Ok(o) => (o, "stopped".to_owned()),
        Err(source) => {
            let err = RunError::Element {
                element: names[el].clone(),
                source,
            };
            let how = format!("error: {err}");
            control.fail(err);
            (Outcome::Failed, how)
        }
    };
    publish_message(&control, &names[el], how);
    SegmentResult {
        stats: vec![(el, stats.stats)],
        links: Vec::new(),
        outcome,
    }
}

/// Sends buffers until end of stream, a drain, or the receiving side going away. Behind a
/// bridge the thread that takes the buffers out counts them (`count` is false): only time is
/// counted here then.
async fn run_source(
    src: &mut dyn DynAsyncSource,
    cx: &mut AsyncCtx,
    control: &RunControl,
    tx: &kanal::AsyncSender<Item>,
    level: &Level,
    count: bool,
    stats: &mut Counting,
) -> Result<Outcome, ElementError> {
    // One wait for the whole run, not a new subscription per buffer.
    let ended = control.drain_or_stop();
    tokio::pin!(ended);
    let started = tokio::select! {
        biased;
        () = &mut ended => None,
        r = Timed::new(src.start_dyn(cx), &mut stats.busy_ns) => Some(r),
    };
    if let Some(r) = started {
        r?;
        loop {
            let before = stats.busy_ns;
            let produced = tokio::select! {
                biased;
                () = &mut ended => break,
                r = Timed::new(src.produce_dyn(cx), &mut stats.busy_ns) => r,
            };
            match produced {
                Ok(Some(buf)) => {
                    let len = buf.len();
                    if count {
                        stats.count(&buf);
                    }
                    stats.sample_time(stats.busy_ns - before);
                    stats.publish();
                    level.add(len);
                    // Not raced against a drain: a buffer that was read is delivered.
                    if tx.send(Item::Buffer(buf)).await.is_err() {
                        // The consumer is gone (it had enough, or it failed).
                        level.remove(len);
                        break;
                    }
                }
                Ok(None) => break,
                Err(ElementError::Interrupted) => break,
                Err(e) => return Err(e),
            }
        }
    }
    if control.is_stopping() {
        return Ok(Outcome::Stopped);
    }
    let _ = tx.send(Item::Eos).await;
    Ok(Outcome::Eos)
}

/// Runs a sync transform as a task: one `process` call per buffer, between two channels. Its
/// buffers are counted where they come out (the thread after it), its busy time here.
async fn run_transform(
    mut imp: Box<dyn crate::element::Transform>,
    el: usize,
    control: &RunControl,
    rx: kanal::AsyncReceiver<Item>,
    tx: kanal::AsyncSender<Item>,
    stats: &mut Counting,
) -> Result<Outcome, ElementError> {
    use crate::element::{Ctx, Flow};
    let stopped = control.stop();
    tokio::pin!(stopped);
    loop {
        // A timed element is also called when its deadline passes first.
        let deadline = imp.deadline();
        let due = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let item = tokio::select! {
            biased;
            () = &mut stopped => return Ok(Outcome::Stopped),
            r = rx.recv() => Some(r),
            () = due => None,
        };
        let started = Instant::now();
        let buffer = matches!(item, Some(Ok(Item::Buffer(_))));
        let mut cx = Ctx::for_element(control, None, el);
        let flow = match item {
            None => imp.on_deadline(&mut cx).map(|()| Flow::Held),
            Some(Ok(Item::Buffer(buf))) => imp.process(buf, &mut cx),
            // End of stream: what the element still holds goes first.
            Some(Ok(Item::Eos)) => imp.flush(&mut cx).map(|()| Flow::Eos),
            // Handed over only by a thread that refuses caps changes for it (see `Handover`).
            Some(Ok(Item::Caps(_))) => Ok(Flow::Held),
            // The upstream thread went away without end of stream: it stopped.
            Some(Err(_)) => return Ok(Outcome::Stopped),
        };
        let took = started.elapsed().as_nanos() as u64;
        stats.busy_ns += took;
        if buffer {
            stats.sample_time(took);
        }
        stats.dropped += cx.dropped + u64::from(matches!(flow, Ok(Flow::Drop)));
        stats.publish();
        let mut out = cx.take_out();
        let flow = match flow {
            Ok(flow) => flow,
            // Interrupted by a stop: like the fused loop, not an error of its own.
            Err(ElementError::Interrupted) => continue,
            Err(e) => return Err(e),
        };
        let end = match flow {
            Flow::Push(b) => {
                out.push(b);
                false
            }
            Flow::Drop | Flow::Held => false,
            Flow::Eos => true,
        };
        for b in out {
            if tx.send(Item::Buffer(b)).await.is_err() {
                return Ok(Outcome::Eos);
            }
        }
        if end {
            let _ = tx.send(Item::Eos).await;
            return Ok(Outcome::Eos);
        }
    }
}

/// Puts a sync transform on the async runtime (`exec=async`): the upstream thread feeds a
/// channel, the task processes, and a thread of its own takes the output on.
pub(super) fn split(
    el: usize,
    imp: Box<dyn crate::element::Transform>,
    capacity: usize,
) -> (ElementImpl, AsyncTask) {
    let (in_tx, in_rx) = kanal::bounded(capacity);
    let (out_tx, out_rx) = kanal::bounded(capacity);
    (
        ElementImpl::Split {
            input: Box::new(super::rt::Handover { tx: in_tx }),
            output: Box::new(Collect { rx: out_rx }),
        },
        AsyncTask::Transform {
            el,
            imp,
            rx: in_rx.to_async(),
            tx: out_tx.to_async(),
        },
    )
}

/// The downstream thread's end of an async transform.
struct Collect {
    rx: kanal::Receiver<Item>,
}

impl Drop for Collect {
    /// Its thread ended (its sinks were satisfied): what the task already passed on is
    /// dropped now, not when the task goes, which may wait for input for ever while those
    /// buffers are the ones its source waits for (issue 21); the task's next send fails.
    fn drop(&mut self) {
        let _ = self.rx.close();
    }
}

impl crate::element::Source for Collect {
    fn pool_request(&self) -> Option<crate::element::PoolRequest> {
        None
    }

    fn produce(
        &mut self,
        _cx: &mut crate::element::Ctx<'_>,
    ) -> Result<Option<crate::memory::Buffer>, ElementError> {
        loop {
            return Ok(match self.rx.recv() {
                Ok(Item::Buffer(b)) => Some(b),
                // Never sent into a bridge (see `Handover`).
                Ok(Item::Caps(_)) => continue,
                Ok(Item::Eos) | Err(_) => None,
            });
        }
    }
}

/// Renders buffers until every input reached end of stream, then finishes.
async fn run_sink(
    sink: &mut dyn DynAsyncSink,
    cx: &mut AsyncCtx,
    control: &RunControl,
    rx: kanal::AsyncReceiver<Item>,
    inputs: usize,
    level: &Level,
    stats: &mut Counting,
) -> Result<Outcome, ElementError> {
    // Connecting or waiting for a peer may never end: a drain ends it (nothing was taken yet).
    tokio::select! {
        biased;
        () = control.drain_or_stop() => {
            return Ok(if control.is_stopping() { Outcome::Stopped } else { Outcome::Eos });
        }
        r = Timed::new(sink.start_dyn(cx), &mut stats.busy_ns) => r?,
    }
    let mut eos_seen = 0;
    let stopped = control.stop();
    tokio::pin!(stopped);
    loop {
        let item = tokio::select! {
            biased;
            () = &mut stopped => return Ok(Outcome::Stopped),
            r = rx.recv() => r,
        };
        match item {
            Ok(Item::Buffer(buf)) => {
                level.remove(buf.len());
                stats.count(&buf);
                let before = stats.busy_ns;
                let flow = tokio::select! {
                    biased;
                    () = &mut stopped => return Ok(Outcome::Stopped),
                    r = Timed::new(sink.render_dyn(buf, cx), &mut stats.busy_ns) => r,
                };
                stats.sample_time(stats.busy_ns - before);
                stats.publish();
                match flow {
                    Ok(SinkFlow::Continue) => {}
                    Ok(SinkFlow::Done) => break,
                    Err(ElementError::Closed) => return Ok(Outcome::Eos),
                    Err(e) => return Err(e),
                }
            }
            // An async sink writes bytes to a peer: the format of what it sends may change.
            Ok(Item::Caps(_)) => {}
            Ok(Item::Eos) => {
                eos_seen += 1;
                if eos_seen >= inputs {
                    break;
                }
            }
            // Every sender left without EOS: upstream stopped on an error.
            Err(_) => return Ok(Outcome::Stopped),
        }
    }
    // Nothing more is taken: senders upstream see a closed channel instead of waiting.
    drop(rx);
    tokio::select! {
        biased;
        () = &mut stopped => return Ok(Outcome::Stopped),
        r = Timed::new(sink.finish_dyn(cx), &mut stats.busy_ns) => match r {
            Ok(()) | Err(ElementError::Closed) => {}
            Err(e) => return Err(e),
        },
    }
    Ok(Outcome::Eos)
}

/// A future that adds the time spent inside its polls to a counter.
struct Timed<'a, F> {
    inner: F,
    busy_ns: &'a mut u64,
}

impl<'a, F> Timed<'a, F> {
    fn new(inner: F, busy_ns: &'a mut u64) -> Timed<'a, F> {
        Timed { inner, busy_ns }
    }
}

impl<F: Future + Unpin> Future for Timed<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let t = Instant::now();
        let r = Pin::new(&mut self.inner).poll(cx);
        *self.busy_ns += t.elapsed().as_nanos() as u64;
        r
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::element::ElementImpl;
    use crate::graph::Graph;
    use crate::memory::{Backing, PoolConfig};

    /// An element whose drop waits for another task of the runtime to signal it: dropped on the
    /// runtime's own thread, that task could never run.
    struct DropWaits {
        started: Arc<tokio::sync::Notify>,
        signal: std::sync::mpsc::Receiver<()>,
        heard: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Drop for DropWaits {
        fn drop(&mut self) {
            self.started.notify_one();
            let heard = self
                .signal
                .recv_timeout(std::time::Duration::from_secs(30))
                .is_ok();
            self.heard.store(heard, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_finished_element_is_dropped_without_holding_the_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (tx, signal) = std::sync::mpsc::channel();
        let heard = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let started = Arc::new(tokio::sync::Notify::new());
        let element = DropWaits {
            started: Arc::clone(&started),
            signal,
            heard: Arc::clone(&heard),
        };
        rt.block_on(async {
            let dropped = tokio::spawn(drop_aside(element));
            // Signals only once the drop waits: it must run beside it.
            let other = tokio::spawn(async move {
                started.notified().await;
                tx.send(()).unwrap();
            });
            dropped.await.unwrap();
            other.await.unwrap();
        });
        assert!(
            heard.load(std::sync::atomic::Ordering::SeqCst),
            "the other task ran while the drop waited"
        );
    }

    /// Builds the first element of `desc` as an async source.
    fn async_source(desc: &str) -> Box<dyn DynAsyncSource> {
        let g = Graph::from_description(desc).unwrap();
        let node = &g.dag[daggy::NodeIndex::new(0)];
        match node.factory.instantiate(&node.props).unwrap() {
            ElementImpl::AsyncSource(s) => s,
            _ => panic!("{} is not an async source", node.factory.name),
        }
    }

    #[test]
    fn network_buffers_carry_sequence_offset_and_running_time() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut src = async_source(&format!(
            "tcpclientsrc host=127.0.0.1 port={port} do-timestamp=true ! fakesink"
        ));
        let control = Arc::new(RunControl::new().unwrap());
        let pool = MemoryPool::new(&PoolConfig {
            backing: Backing::Heap,
            slot_size: 4096,
            slots: 4,
            name: "test".into(),
            peers: crate::memory::PeerAccess::ReadWrite,
        })
        .unwrap();
        let mut cx = AsyncCtx::new(
            control,
            Some(pool),
            "src".into(),
            Arc::new(crate::exec::Console::default()),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            src.start_dyn(&mut cx).await.unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            let mut metas = Vec::new();
            for part in [&b"abc"[..], b"defg"] {
                peer.write_all(part).unwrap();
                let buf = src.produce_dyn(&mut cx).await.unwrap().unwrap();
                assert_eq!(buf.data(), part);
                metas.push(buf.meta.clone());
            }
            drop(peer);
            assert!(src.produce_dyn(&mut cx).await.unwrap().is_none(), "EOS");
            assert_eq!(metas[0].sequence, 0);
            assert_eq!(metas[1].sequence, 1);
            assert_eq!(metas[0].offset(), Some(0));
            assert_eq!(metas[1].offset(), Some(3));
            let (a, b) = (metas[0].pts().unwrap(), metas[1].pts().unwrap());
            assert!(a <= b, "running time goes forward: {a} then {b}");
        });
    }

    #[test]
    fn a_drain_ends_a_source_waiting_for_its_peer_and_sends_eos() {
        let src = async_source("tcpserversrc host=127.0.0.1 port=0 ! fakesink");
        let control = Arc::new(RunControl::new().unwrap());
        let (tx, rx) = kanal::bounded(4);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut stats = Counting::default();
        let pool = MemoryPool::new(&PoolConfig {
            backing: Backing::Heap,
            slot_size: 4096,
            slots: 4,
            name: "test".into(),
            peers: crate::memory::PeerAccess::ReadWrite,
        })
        .unwrap();
        let mut cx = AsyncCtx::new(
            Arc::clone(&control) as Arc<dyn crate::element::RunState>,
            Some(pool),
            "src".into(),
            Arc::new(crate::exec::Console::default()),
        );
        let level = Level::new(0);
        let outcome = rt.block_on(async {
            let drain = async {
                // Let the source reach accept, then ask for the drain.
                tokio::task::yield_now().await;
                control.request_drain();
            };
            let mut src = src;
            let run = run_source(
                src.as_mut(),
                &mut cx,
                &control,
                tx.as_async(),
                &level,
                false,
                &mut stats,
            );
            let (outcome, ()) = tokio::join!(run, drain);
            outcome
        });
        assert_eq!(outcome.unwrap(), Outcome::Eos);
        assert!(matches!(rx.try_recv(), Ok(Some(Item::Eos))));
    }
}
