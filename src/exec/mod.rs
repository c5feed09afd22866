//! The executor: plans a validated [`Graph`] into segments and runs them.
//!
//! Fuse by default, thread at boundaries (docs/architecture.md): a segment starts at a source, a `queue` or
//! a `funnel` and takes in every element below it up to the next queue or funnel. Within a
//! segment an element's output is the next element's input by a direct call; between segments a
//! bounded kanal channel carries buffers, so memory is bounded by channel capacities and by each
//! source's pool, never by the input size. A tee without queues hands a refcount clone of each
//! buffer to its branches one after the other; with queues each branch gets its own thread.
//!
//! Domains: elements that do their I/O through the async traits run as tasks on one tokio
//! runtime per run (see [`async_domain`]); a change of domain is a segment boundary, bridged by a
//! bounded kanal channel with a sync half on the thread's side and an async half on the task's.
//!
//! Stopping: end of stream flows down from the sources; the first error stops every segment and
//! is reported with the element's name; a panicking element becomes such an error.

mod async_domain;
mod control;
pub mod events;
mod isolated;
pub mod planner;
mod rt;
mod session;
pub use isolated::{
    reload_plugins, splits as isolated_splits, worker_main, Reload, Reloaded, WORKER_ARG,
};
mod handoff;
mod observe;
mod segment;
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daggy::{NodeIndex, Walker as _};

pub use control::RunControl;
pub use observe::{
    resolve_tap, AroundWrite, Console, Progress, ProgressSnapshot, Tap, TapError, TapFormat,
    TAP_HEAD_BYTES,
};
pub use segment::ElementStats;
pub use session::{Session, State};
pub use stats::{
    counted, human_bytes, CycleReport, ElementReport, LinkReport, PoolReport, Report,
    TimeHistogram, TIME_BUCKETS,
};

use crate::element::{ActivePad, ElementError, ElementImpl, FanIn, QueueSettings};
use crate::graph::Graph;
use crate::memory::{Backing, MemoryPool, PeerAccess, PoolConfig};
use crate::parse::Diagnostic;
use crate::registry::Domain;
use crate::registry::Exec;
use async_domain::{AsyncTask, DomainContext};
use handoff::{ChanRx, ChanTx};
use observe::TapPoint;
use segment::{
    CapsState, ChangeRule, Gate, GateRule, Input, Item, Level, Observe, Op, OpSlot, Outcome,
    Segment, SegmentResult,
};

/// A runtime failure; the binary exits 1 with it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An element failed.
    #[error("{element}: {source}")]
    Element {
        /// Instance name.
        element: String,
        /// What went wrong.
        #[source]
        source: ElementError,
    },
    /// An element panicked; caught at its segment.
    #[error("{element}: element panicked: {message}")]
    Panic {
        /// Instance name.
        element: String,
        /// The panic message.
        message: String,
    },
    /// The engine could not set up (threads, memory).
    #[error("cannot start the pipeline: {0}")]
    Setup(String),
}

/// How the run ended, besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ending {
    /// Every source reached end of stream (or every sink was satisfied).
    Eos,
    /// A drain was requested (Ctrl-C) and completed.
    Interrupted,
    /// The run failed; [`Report::error`] says how.
    Error,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What backs the sources' pools.
    pub backing: Backing,
    /// Print every event of the run on stderr as it happens (`-m`): states, each thread's
    /// start and end, element messages, QoS, errors, the end of stream. Warnings are printed
    /// either way.
    pub messages: bool,
    /// SCHED_FIFO priority for `exec=rt` threads (`--rt-priority`).
    pub rt_priority: Option<u8>,
    /// Buffers the channels at domain crossings hold (async bridges, rt hand-overs); `None`
    /// for the defaults (`--bridge-capacity`).
    pub bridge_capacity: Option<usize>,
    /// Buffers an `exec=rt` one-in-one-out element takes in per cycle, at most (`--quantum`;
    /// 1 when `None`).
    pub quantum: Option<usize>,
    /// Where `-m` lines and taps are written.
    pub console: Console,
    /// Links to show every buffer of (`--tap`), from [`resolve_tap`].
    pub taps: Vec<Tap>,
    /// How taps print.
    pub tap_format: TapFormat,
    /// Live totals for a progress line, when one is drawn.
    pub progress: Option<Arc<Progress>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            backing: Backing::Memfd,
            messages: false,
            rt_priority: None,
            bridge_capacity: None,
            quantum: None,
            console: Console::default(),
            taps: Vec::new(),
            tap_format: TapFormat::Text,
            progress: None,
        }
    }
}

/// Buffers a queue with `max-size-buffers=0` may hold; its byte limit or the source's pool
/// usually binds first.
const UNLIMITED_QUEUE_CAPACITY: usize = 1024;
/// The largest channel capacity allocated up front; a larger limit is held by the channel's
/// level over an unbounded channel (see `Channel::new`).
const PREALLOCATED_CAPACITY: usize = 4096;
/// Buffers in flight on a funnel's input channel.
const FUNNEL_CAPACITY: usize = 16;
/// Pool slots per source when it does not ask for a number.
pub(crate) use crate::element::DEFAULT_POOL_SLOTS;
/// Buffers in flight from an async source to the thread that takes its output. Half the
/// default pool: the channel, not the pool, holds a fast source back, and a suspended send
/// costs the runtime nothing.
const BRIDGE_CAPACITY: usize = DEFAULT_POOL_SLOTS / 2;
/// Buffers in flight into an async sink; a full channel holds back the thread that feeds it.
const ASYNC_SINK_CAPACITY: usize = 16;
/// How long to wait for the other threads once one has failed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A validated pipeline, ready to run.
#[derive(Debug)]
pub struct Pipeline {
    graph: Graph,
}

impl Pipeline {
    /// Parses and validates `text`, and places its elements from their hints.
    pub fn parse(text: &str) -> Result<Pipeline, Diagnostic> {
        Pipeline::parse_with(text, crate::registry::Scheduling::Auto)
    }

    /// Parses and validates `text`, placing the elements left at `exec=auto` as `scheduling`
    /// says (`--scheduling`).
    pub fn parse_with(
        text: &str,
        scheduling: crate::registry::Scheduling,
    ) -> Result<Pipeline, Diagnostic> {
        let mut graph = Graph::from_description(text)?;
        planner::place(&mut graph, scheduling)?;
        Ok(Pipeline { graph })
    }

    /// The validated graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Hands the element named `name` something from the program (an `appsrc`'s channel, a
    /// typed stage's closure); its factory's `build` finds it with `Props::attached`.
    pub fn attach(
        &mut self,
        name: &str,
        value: Arc<dyn std::any::Any + Send + Sync>,
    ) -> Result<(), RunError> {
        let node = self
            .graph
            .dag
            .node_weights_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| RunError::Setup(format!("no element named `{name}`")))?;
        node.props.attach(value);
        Ok(())
    }

    /// The program's end of the `appsrc` named `name`: push buffers, end of stream or an
    /// error into it (see `elements::app`). Call before the run; each call attaches a new queue.
    pub fn appsrc(&mut self, name: &str) -> Result<Arc<crate::elements::app::AppQueue>, RunError> {
        self.app_queue(name, "appsrc")
    }

    /// The program's end of the `appsink` named `name`: pull buffers until end of stream.
    pub fn appsink(&mut self, name: &str) -> Result<Arc<crate::elements::app::AppQueue>, RunError> {
        self.app_queue(name, "appsink")
    }

    fn app_queue(
        &mut self,
        name: &str,
        factory: &str,
    ) -> Result<Arc<crate::elements::app::AppQueue>, RunError> {
        match self.factory_of(name) {
            Some(f) if f == factory => {}
            Some(f) => {
                return Err(RunError::Setup(format!(
                    "`{name}` is a {f}, not an {factory}"
                )))
            }
            None => return Err(RunError::Setup(format!("no element named `{name}`"))),
        }
        let queue = crate::elements::app::AppQueue::new();
        self.attach(
            name,
            Arc::clone(&queue) as Arc<dyn std::any::Any + Send + Sync>,
        )?;
        Ok(queue)
    }

    /// The factory name of the element named `name`.
    pub fn factory_of(&self, name: &str) -> Option<&'static str> {
        self.graph
            .dag
            .graph()
            .node_weights()
            .find(|n| n.name == name)
            .map(|n| n.factory.name)
    }

    /// The plan in words, for `-v`: each thread and the async domain with their elements, and
    /// every link that crosses between them with what carries it.
    /// `bridge_capacity` is `--bridge-capacity`, so the sizes shown are the ones the run uses.
    pub fn plan_text(&self, bridge_capacity: Option<usize>, quantum: Option<usize>) -> Vec<String> {
        let async_sink = bridge_capacity.unwrap_or(ASYNC_SINK_CAPACITY);
        let bridge = bridge_capacity.unwrap_or(BRIDGE_CAPACITY);
        let rt = bridge_capacity.unwrap_or(rt::CAPACITY);
        let graph = &self.graph;
        let dag = &graph.dag;
        let (roots, thread_of) = graph.segments();
        let order = graph.topo_order();
        let members = |t: usize| -> String {
            order
                .iter()
                .filter(|n| thread_of[n.index()] == t)
                .map(|n| dag[*n].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = Vec::new();
        for (t, root) in roots.iter().enumerate() {
            let thread = if t == 0 {
                "main thread".to_owned()
            } else {
                format!("px-{}", dag[*root].name).chars().take(15).collect()
            };
            let from = if graph.domain(*root) == Domain::Async {
                format!("output of {}", dag[*root].name)
            } else {
                format!("from {}", dag[*root].name)
            };
            lines.push(format!(
                "plan: thread {t} ({thread}, {from}): {}",
                members(t)
            ));
        }
        if graph.has_async() {
            lines.push(format!(
                "plan: async domain (tokio runtime on {}): {}",
                async_domain::THREAD_NAME,
                members(roots.len())
            ));
        }
        let place = |n: NodeIndex<u32>| match graph.domain(n) {
            Domain::Async => "async".to_owned(),
            Domain::Thread => format!("thread {}", thread_of[n.index()]),
        };
        for e in dag.graph().edge_indices() {
            let (a, b) = dag.edge_endpoints(e).expect("edge exists");
            let carrier = if graph.domain(b) == Domain::Async {
                format!("a bounded channel of {async_sink} buffers")
            } else if graph.domain(a) == Domain::Async {
                format!("a bounded channel of {bridge} buffers")
            } else if isolated::splits(&dag[b]) {
                let how = match dag[b].exec {
                    Exec::Rt => format!(
                        "rt thread (exec=rt, quantum {}), over a bounded channel of {rt} buffers",
                        quantum.unwrap_or(1)
                    ),
                    Exec::Async => format!(
                        "task on the async runtime (exec=async), over bounded channels of {bridge} buffers"
                    ),
                    _ => "worker process (exec=isolated), over a socket".to_owned(),
                };
                format!("{}'s {how}", dag[b].name)
            } else if graph.starts_segment(b) {
                format!("{}'s bounded channel", dag[b].name)
            } else {
                continue;
            };
            let to = place(b);
            let link = &dag[e];
            let how = if graph.domain(a) == Domain::Async && graph.domain(b) == Domain::Async {
                "joins two async tasks".to_owned()
            } else {
                format!("crosses {} -> {to}", place(a))
            };
            lines.push(format!(
                "plan: {}.{} -> {}.{} {how} through {carrier}",
                dag[a].name, link.src_pad, dag[b].name, link.sink_pad,
            ));
        }
        lines
    }

    /// Builds every element, plans the segments and runs them to end of stream. The graph
    /// stays, so that it can be drawn with the run's counts afterwards.
    pub fn run(&self, control: Arc<RunControl>, options: &RunOptions) -> Result<Report, RunError> {
        let (report, error) = self.run_reported(control, options);
        error.map_or(Ok(report), Err)
    }

    /// As [`Pipeline::run`], but a failed run has its report too: what every element counted
    /// until the error (zeros when an element could not even be built), with the error in
    /// [`Report::error`] and [`Ending::Error`], so that `--stats=json` prints it.
    pub fn run_reported(
        &self,
        control: Arc<RunControl>,
        options: &RunOptions,
    ) -> (Report, Option<RunError>) {
        let started = Instant::now();
        // Warnings, and with -m every event, are printed as they are published.
        let _printer = control
            .events()
            .print_to(options.console.clone(), options.messages);
        match self.prepare_with(options, control.events()) {
            Ok(prepared) => {
                control.events().publish(events::Event::StateChanged {
                    from: events::PipelineState::Idle,
                    to: events::PipelineState::Running,
                });
                self.execute_reported(prepared, control, options)
            }
            Err(e) => {
                let graph = &self.graph;
                let mut report = stats::report(
                    graph,
                    &vec![ElementStats::default(); graph.dag.node_count()],
                    &HashMap::new(),
                    &graph.segments().1,
                    &HashMap::new(),
                    &HashMap::new(),
                    &HashMap::new(),
                    Vec::new(),
                    0,
                    started.elapsed(),
                    Ending::Error,
                );
                report.error = Some(e.to_string());
                (report, Some(e))
            }
        }
    }

    /// Builds every element and plans the segments: files are opened, pools mapped, worker
    /// processes started, but nothing runs yet (the Idle state, see [`Session`]).
    pub fn prepare(&self, options: &RunOptions) -> Result<Prepared, RunError> {
        self.prepare_with(options, &events::Events::new())
    }

    /// As [`Pipeline::prepare`], with what the elements say while they are built (a worker
    /// process started) published to `events`.
    pub fn prepare_with(
        &self,
        options: &RunOptions,
        events: &events::Events,
    ) -> Result<Prepared, RunError> {
        let graph = &self.graph;
        let names: Arc<Vec<String>> = Arc::new(
            graph
                .dag
                .graph()
                .node_indices()
                .map(|n| graph.dag[n].name.clone())
                .collect(),
        );
        let (mut impls, forced_async) = build_elements(graph, options, events)?;
        let mut plan = plan(graph, &mut impls, &names, options)?;
        plan.tasks.extend(forced_async);
        Ok(Prepared { names, plan })
    }

    /// Runs what [`Pipeline::prepare`] built to end of stream (or error, or stop).
    pub fn execute(
        &self,
        prepared: Prepared,
        control: Arc<RunControl>,
        options: &RunOptions,
    ) -> Result<Report, RunError> {
        let (report, error) = self.execute_reported(prepared, control, options);
        error.map_or(Ok(report), Err)
    }

    /// As [`Pipeline::execute`], with the report of a failed run too (see
    /// [`Pipeline::run_reported`]).
    pub fn execute_reported(
        &self,
        prepared: Prepared,
        control: Arc<RunControl>,
        options: &RunOptions,
    ) -> (Report, Option<RunError>) {
        let started = Instant::now();
        control.mark_started(started);
        let graph = &self.graph;
        let Prepared { names, plan } = prepared;
        control.set_names(Arc::clone(&names));
        let Plan {
            segments,
            tasks,
            levels,
            bridges,
            pools,
            segment_of,
        } = plan;
        control.count_sources(
            segments
                .iter()
                .filter(|s| matches!(s.input, Input::Source { relay: false, .. }))
                .count(),
        );
        let thread_count = segments.len() + usize::from(!tasks.is_empty());
        let segment_count = segments.len() + tasks.len();
        if let Some(progress) = &options.progress {
            progress.keep_plan(&levels, &bridges, &pools, &segment_of, thread_count);
        }
        tracing::info!(
            elements = names.len(),
            threads = thread_count,
            "Pipeline running"
        );

        let (done_tx, done_rx) = std::sync::mpsc::channel::<SegmentResult>();
        if segment_count == 0 {
            control.fail(RunError::Setup("nothing to run".into()));
        }
        let rt_root = |seg: &Segment| {
            let root = seg.root();
            (graph.dag[NodeIndex::new(root)].exec == Exec::Rt).then(|| names[root].clone())
        };
        let mut segments = segments.into_iter().peekable();
        // The first segment runs on this thread, unless it is an rt one: SCHED_FIFO is inherited
        // by the threads a thread starts, and the caller's thread must not keep it either. Without
        // such a segment (or with an async source feeding an async sink) this thread only waits.
        let first = segments.next_if(|seg| rt_root(seg).is_none());
        let rt_priority = options.rt_priority;
        let mut handles = Vec::new();
        // Results to wait for: the first segment's, and one per thread or task that started.
        // A thread that cannot start stops the run, and the ones already going end with it.
        let mut expected = usize::from(first.is_some());
        for seg in segments {
            let thread_control = Arc::clone(&control);
            let done = done_tx.clone();
            let name = seg.name.clone();
            let rt = rt_root(&seg);
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                if let Some(element) = rt {
                    rt::enter(&element, rt_priority, thread_control.events());
                }
                let _ = done.send(seg.run_guarded(&thread_control));
            });
            match spawned {
                Ok(handle) => {
                    handles.push(handle);
                    expected += 1;
                }
                Err(e) => {
                    control.fail(RunError::Setup(format!("cannot start a thread: {e}")));
                    break;
                }
            }
        }
        if !tasks.is_empty() && !control.is_stopping() {
            let task_count = tasks.len();
            let cx = DomainContext {
                control: Arc::clone(&control),
                names: Arc::clone(&names),
                console: options.console.clone(),
                progress: options.progress.clone(),
            };
            match async_domain::spawn(tasks, cx, done_tx.clone()) {
                Ok(handle) => {
                    handles.push(handle);
                    expected += task_count;
                }
                Err(e) => control.fail(RunError::Setup(format!("cannot start a thread: {e}"))),
            }
        }
        drop(done_tx);

        // The first segment runs on this thread; the others report through `done_rx`.
        let mut results: Vec<SegmentResult> = first
            .into_iter()
            .map(|seg| seg.run_guarded(&control))
            .collect();
        let mut deadline: Option<Instant> = None;
        while results.len() < expected {
            if control.is_stopping() && deadline.is_none() {
                deadline = Some(Instant::now() + STOP_GRACE);
            }
            let got = match deadline {
                None => done_rx.recv_timeout(Duration::from_millis(100)),
                Some(d) => done_rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match got {
                Ok(r) => results.push(r),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        // A thread is stuck in a blocking call; the error is what matters.
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if results.len() == expected {
            for h in handles {
                let _ = h.join();
            }
        }
        let error = control.take_error();
        debug_assert!(error.is_some() || results.iter().all(|r| r.outcome != Outcome::Failed));

        let mut per_element = vec![ElementStats::default(); names.len()];
        let mut per_link: HashMap<(usize, String), ElementStats> = HashMap::new();
        for r in &results {
            for (el, s) in &r.stats {
                per_element[*el] += *s;
            }
            for (link, s) in &r.links {
                *per_link.entry(link.clone()).or_default() += *s;
            }
        }
        let ending = if error.is_some() {
            Ending::Error
        } else if control.drain_requested() {
            Ending::Interrupted
        } else {
            Ending::Eos
        };
        tracing::info!(?ending, wall = ?started.elapsed(), "Pipeline finished");
        if ending != Ending::Error {
            control.events().publish(events::Event::Eos);
        }
        let mut report = stats::report(
            graph,
            &per_element,
            &per_link,
            &segment_of,
            &levels,
            &bridges,
            &pools,
            control.take_cycles(),
            thread_count,
            started.elapsed(),
            ending,
        );
        report.error = error.as_ref().map(ToString::to_string);
        (report, error)
    }
}

/// Builds every element, sources first, so that a source that cannot open its input fails
/// before a sink has created (or truncated) its output.
/// Also returns the async tasks of sync transforms forced onto the runtime with `exec=async`.
fn build_elements(
    graph: &Graph,
    options: &RunOptions,
    events: &events::Events,
) -> Result<(Vec<Option<ElementImpl>>, Vec<AsyncTask>), RunError> {
    let mut forced_async = Vec::new();
    let mut impls: Vec<Option<ElementImpl>> = (0..graph.dag.node_count()).map(|_| None).collect();
    let mut order = graph.topo_order();
    order.sort_by_key(|&n| graph.dag[n].factory.pads.sink != crate::registry::PadPresence::None);
    for n in order {
        let node = &graph.dag[n];
        // The parser refuses these already; a graph built another way meets the same rule.
        let refused = node.factory.refusal(node.exec);
        let built = match node.exec {
            _ if refused.is_some() => Err(ElementError::Config(refused.unwrap_or_default())),
            Exec::Isolated => {
                let proxy = isolated::proxy(node, pool_peers(graph), events.clone());
                if let (Ok(_), Some(progress)) = (&proxy, &options.progress) {
                    progress.worker_started(&node.name);
                }
                proxy
            }
            Exec::Async if isolated::splits(node) => node
                .factory
                .instantiate(&node.props)
                .and_then(|imp| match imp {
                    ElementImpl::Transform(t) => {
                        let capacity = options.bridge_capacity.unwrap_or(BRIDGE_CAPACITY);
                        let (split, task) = async_domain::split(n.index(), t, capacity);
                        forced_async.push(task);
                        Ok(split)
                    }
                    _ => Err(ElementError::Config(format!(
                        "{} cannot run on the async runtime",
                        node.factory.name
                    ))),
                }),
            Exec::Rt if isolated::splits(node) => {
                node.factory
                    .instantiate(&node.props)
                    .and_then(|imp| match imp {
                        ElementImpl::Transform(t) => Ok(rt::split(
                            &node.name,
                            t,
                            options.bridge_capacity.unwrap_or(rt::CAPACITY),
                            options.quantum.unwrap_or(1),
                            options
                                .progress
                                .as_ref()
                                .and_then(|p| p.register_cycles(&node.name)),
                        )),
                        _ => Err(ElementError::Config(format!(
                            "{} cannot run on an rt thread of its own",
                            node.factory.name
                        ))),
                    })
            }
            // A timed element left in the fused domain gets a thread woken at its deadline.
            _ if node.factory.hints.timed => {
                node.factory
                    .instantiate(&node.props)
                    .and_then(|imp| match imp {
                        ElementImpl::Transform(t) => Ok(rt::timed(
                            &node.name,
                            t,
                            options.bridge_capacity.unwrap_or(rt::CAPACITY),
                        )),
                        _ => Err(ElementError::Config(format!(
                            "{} is timed but not a one-in-one-out element",
                            node.factory.name
                        ))),
                    })
            }
            _ => node.factory.instantiate(&node.props),
        }
        .map_err(|source| {
            tracing::error!(element = %node.name, error = %source, "Element failed to build");
            RunError::Element {
                element: node.name.clone(),
                source,
            }
        })?;
        tracing::debug!(element = %node.name, factory = node.factory.name, "Element built");
        impls[n.index()] = Some(built);
    }
    Ok((impls, forced_async))
}

/// A pipeline built and planned but not running: what the Idle state holds.
pub struct Prepared {
    names: Arc<Vec<String>>,
    plan: Plan,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("threads", &self.plan.segments.len())
            .field("pools", &self.plan.pools.len())
            .finish()
    }
}

struct Plan {
    segments: Vec<Segment>,
    /// Elements of the async domain, wired to their channels.
    tasks: Vec<AsyncTask>,
    /// Channel levels of queues, funnels and async sinks, by element.
    levels: HashMap<usize, Arc<Level>>,
    /// Channel levels of the bridges out of async sources, by source.
    bridges: HashMap<usize, Arc<Level>>,
    /// Pools of sources, by element.
    pools: HashMap<usize, MemoryPool>,
    /// Which segment (thread) runs each element.
    segment_of: Vec<usize>,
}

struct Channel {
    tx: kanal::Sender<Item>,
    rx: kanal::Receiver<Item>,
    /// A queue between two threads has a ring instead (see [`handoff`]): its two ends, each
    /// taken once, by the sending op and by the queue's thread.
    ring: (
        std::cell::Cell<Option<handoff::RingTx>>,
        std::cell::Cell<Option<handoff::RingRx>>,
    ),
    level: Arc<Level>,
    queue: Option<QueueSettings>,
    /// A selector's or concat's rule, and each input pad's slot in it.
    gate: Option<(Arc<Gate>, HashMap<String, u32>)>,
    /// A selector's or concat's inputs whose caps differ: each input pad's caps, announced in
    /// the stream when it switches to that input (empty when they all agree).
    announce: HashMap<String, crate::caps::Caps>,
}

impl Channel {
    /// A bounded channel of `capacity` buffers. A bounded kanal channel allocates its whole
    /// capacity at once, so past [`PREALLOCATED_CAPACITY`] the channel is unbounded and its
    /// level holds the limit instead: `queue max-size-buffers=4294967295` costs what it holds,
    /// not 446 GB up front (issue 21).
    fn new(capacity: usize, max_bytes: u64, queue: Option<QueueSettings>) -> Channel {
        let (tx, rx, level) = if capacity <= PREALLOCATED_CAPACITY {
            let (tx, rx) = kanal::bounded(capacity);
            (tx, rx, Level::new(max_bytes))
        } else {
            let (tx, rx) = kanal::unbounded();
            (tx, rx, Level::with_limits(max_bytes, capacity))
        };
        Channel {
            tx,
            rx,
            ring: Default::default(),
            level,
            queue,
            gate: None,
            announce: HashMap::new(),
        }
    }

    /// A queue with one sending thread and no leaks: a ring of `capacity` buffers.
    fn ring(capacity: usize, queue: QueueSettings) -> Channel {
        let mut ch = Channel::new(capacity, queue.max_bytes, Some(queue));
        let (tx, rx) = handoff::ring(capacity, Arc::clone(&ch.level));
        ch.ring = (Some(tx).into(), Some(rx).into());
        ch
    }

    /// The sending end for one more sender.
    fn sender(&self) -> ChanTx {
        match self.ring.0.take() {
            Some(tx) => ChanTx::Ring(tx),
            None => ChanTx::Shared(self.tx.clone()),
        }
    }

    /// The receiving end, for the channel's thread.
    fn receiver(&self) -> ChanRx {
        match self.ring.1.take() {
            Some(rx) => ChanRx::Ring(rx),
            None => ChanRx::Shared(self.rx.clone()),
        }
    }

    /// The gate a sender into pad `sink_pad` passes, with its slot.
    fn gate_for(&self, sink_pad: &str) -> Option<(Arc<Gate>, u32)> {
        let (gate, slots) = self.gate.as_ref()?;
        Some((
            Arc::clone(gate),
            slots.get(sink_pad).copied().unwrap_or(u32::MAX),
        ))
    }
}

/// The caps of each input pad of fan-in `n` when they differ (a concat of two formats, a
/// selector between them); empty when they agree.
fn fan_in_caps(graph: &Graph, n: NodeIndex<u32>) -> HashMap<String, crate::caps::Caps> {
    let links: Vec<_> = graph
        .dag
        .parents(n)
        .iter(&graph.dag)
        .map(|(e, _)| &graph.dag[e])
        .collect();
    let agree = links
        .windows(2)
        .all(|w| w[0].caps.is_equivalent(&w[1].caps));
    if agree {
        return HashMap::new();
    }
    links
        .into_iter()
        .map(|l| (l.sink_pad.clone(), l.caps.clone()))
        .collect()
}

/// What each element does with a caps change in mid-stream when it does not say, and the caps
/// it starts with (its negotiated input), by element.
fn caps_states(graph: &Graph) -> Vec<CapsState> {
    use crate::registry::{CapsRule, PadPresence};
    (0..graph.dag.node_count())
        .map(|i| {
            let node = &graph.dag[NodeIndex::new(i)];
            let pads = &node.factory.pads;
            let rule = if pads.src == PadPresence::None {
                if pads.sink_template().is_any() {
                    ChangeRule::Pass
                } else {
                    ChangeRule::Refuse
                }
            } else {
                match pads.rule {
                    CapsRule::Passthrough => ChangeRule::Pass,
                    CapsRule::Fixed if pads.src_template().is_any() => ChangeRule::Keep,
                    _ => ChangeRule::Refuse,
                }
            };
            CapsState {
                rule,
                current: node.props.sink_caps().clone(),
            }
        })
        .collect()
}

/// The gate of a selector or concat `n`, with the slot of each of its input pads: a pad's
/// number for a selector (as `active-pad` names it), its rank in pad order for concat.
fn fan_in_gate(
    graph: &Graph,
    n: NodeIndex<u32>,
    rule: &FanIn,
) -> Option<(Arc<Gate>, HashMap<String, u32>)> {
    let mut pads: Vec<String> = graph
        .dag
        .parents(n)
        .iter(&graph.dag)
        .map(|(e, _)| graph.dag[e].sink_pad.clone())
        .collect();
    pads.sort_by_key(|p| (ActivePad::parse(p).unwrap_or(u32::MAX), p.clone()));
    let (rule, slots) = match rule {
        FanIn::Funnel => return None,
        FanIn::Select(active) => (
            GateRule::Select(active.clone()),
            pads.iter()
                .map(|p| (p.clone(), ActivePad::parse(p).unwrap_or(u32::MAX)))
                .collect(),
        ),
        FanIn::Concat => (
            GateRule::Concat {
                current: std::sync::atomic::AtomicUsize::new(0),
            },
            pads.iter()
                .enumerate()
                .map(|(rank, p)| (p.clone(), rank as u32))
                .collect(),
        ),
    };
    Some((Gate::new(rule), slots))
}

fn plan(
    graph: &Graph,
    impls: &mut [Option<ElementImpl>],
    names: &Arc<Vec<String>>,
    options: &RunOptions,
) -> Result<Plan, RunError> {
    let (roots, thread_of) = graph.segments();
    let caps_states = caps_states(graph);
    let peers = pool_peers(graph);
    let mut channels: HashMap<usize, Channel> = HashMap::new();
    for &n in &roots {
        match &impls[n.index()] {
            Some(ElementImpl::Queue(q)) => {
                let cap = if q.max_buffers == 0 {
                    UNLIMITED_QUEUE_CAPACITY
                } else {
                    q.max_buffers
                };
                // One sending thread (not an async task) and no leaks: a ring.
                let one_thread = graph.parent_count(n) == 1
                    && graph
                        .dag
                        .parents(n)
                        .iter(&graph.dag)
                        .all(|(_, p)| graph.domain(p) != Domain::Async);
                let ch = if one_thread
                    && q.leaky == crate::element::Leaky::No
                    && cap <= PREALLOCATED_CAPACITY
                {
                    Channel::ring(cap, *q)
                } else {
                    Channel::new(cap, q.max_bytes, Some(*q))
                };
                channels.insert(n.index(), ch);
                tracing::debug!(
                    queue = %names[n.index()],
                    capacity = cap,
                    max_bytes = q.max_bytes,
                    leaky = ?q.leaky,
                    "Planned a queue channel"
                );
            }
            Some(ElementImpl::Funnel) => {
                channels.insert(n.index(), Channel::new(FUNNEL_CAPACITY, 0, None));
            }
            Some(ElementImpl::FanIn(rule)) => {
                let mut ch = Channel::new(FUNNEL_CAPACITY, 0, None);
                ch.gate = fan_in_gate(graph, n, rule);
                ch.announce = fan_in_caps(graph, n);
                channels.insert(n.index(), ch);
            }
            Some(
                ElementImpl::Source(_) | ElementImpl::AsyncSource(_) | ElementImpl::Split { .. },
            ) => {}
            _ => {
                return Err(RunError::Setup(format!(
                    "`{}` starts a thread but is not a source, queue or funnel",
                    names[n.index()]
                )))
            }
        }
    }
    // Async sinks are fed like queues: the threads upstream send into their channel.
    let async_sinks: Vec<NodeIndex<u32>> = graph
        .topo_order()
        .into_iter()
        .filter(|&n| matches!(impls[n.index()], Some(ElementImpl::AsyncSink(_))))
        .collect();
    for &n in &async_sinks {
        let cap = options.bridge_capacity.unwrap_or(ASYNC_SINK_CAPACITY);
        channels.insert(n.index(), Channel::new(cap, 0, None));
    }

    let mut segments = Vec::new();
    let mut tasks = Vec::new();
    let mut levels = HashMap::new();
    let mut bridges = HashMap::new();
    let mut pools = HashMap::new();
    let mut segment_of = vec![0; graph.dag.node_count()];
    // What every source will produce in all, for a progress bar; unknown if one source is.
    // Network sources never know their size.
    let async_source = impls
        .iter()
        .any(|imp| matches!(imp, Some(ElementImpl::AsyncSource(_))));
    let mut total_bytes = (!async_source).then_some(0u64);
    for (seg_no, &root) in roots.iter().enumerate() {
        let el = root.index();
        segment_of[el] = seg_no;
        let input = match impls[el].take() {
            Some(ElementImpl::Source(src)) => {
                let relay = graph.dag[root].factory.pads.sink != crate::registry::PadPresence::None;
                if !relay {
                    let size = src.size_hint();
                    total_bytes = total_bytes.zip(size).map(|(a, b)| a + b);
                    tracing::debug!(source = %names[el], size = ?size, "Source size");
                }
                let pool = source_pool(src.pool_request(), el, names, options, peers, &mut pools)?;
                Input::Source {
                    el,
                    src,
                    pool,
                    relay,
                }
            }
            Some(ElementImpl::AsyncSource(src)) => {
                // The task sends through the async half; this thread takes its output
                // through the sync half and counts the source's buffers as they arrive.
                let pool = source_pool(
                    src.pool_request_dyn(),
                    el,
                    names,
                    options,
                    peers,
                    &mut pools,
                )?;
                let (tx, rx) = kanal::bounded(options.bridge_capacity.unwrap_or(BRIDGE_CAPACITY));
                let level = Level::new(0);
                bridges.insert(el, Arc::clone(&level));
                tasks.push(AsyncTask::Source {
                    el,
                    src,
                    pool,
                    tx: tx.to_async(),
                    level: Arc::clone(&level),
                    count: false,
                });
                Input::Channel {
                    el,
                    rx: ChanRx::Shared(rx),
                    inputs: 1,
                    level,
                    gate: None,
                    bridge: true,
                }
            }
            Some(ElementImpl::Queue(_) | ElementImpl::Funnel | ElementImpl::FanIn(_)) => {
                let ch = &channels[&el];
                levels.insert(el, Arc::clone(&ch.level));
                Input::Channel {
                    el,
                    rx: ch.receiver(),
                    inputs: graph.parent_count(root),
                    level: Arc::clone(&ch.level),
                    gate: ch.gate.as_ref().map(|(g, _)| Arc::clone(g)),
                    bridge: false,
                }
            }
            _ => unreachable!("roots are sources, queues and funnels"),
        };
        let mut ops: Vec<OpSlot> = Vec::new();
        let mut work: Vec<(usize, NodeIndex<u32>)> = Vec::new();
        let (link, child) = graph.children(root)[0];
        let entry = add_op(
            (child, &link.sink_pad),
            impls,
            &channels,
            &mut ops,
            &mut work,
            &mut segment_of,
            seg_no,
        );
        set_link(&mut ops[entry].op, el, &link.src_pad);
        let entry = add_taps(entry, el, &link.src_pad, &mut ops, options);
        while let Some((op, node)) = work.pop() {
            for (link, c) in graph.children(node) {
                let id = add_op(
                    (c, &link.sink_pad),
                    impls,
                    &channels,
                    &mut ops,
                    &mut work,
                    &mut segment_of,
                    seg_no,
                );
                set_link(&mut ops[id].op, node.index(), &link.src_pad);
                let id = add_taps(id, node.index(), &link.src_pad, &mut ops, options);
                match &mut ops[op].op {
                    Op::Transform { next, .. } => *next = id,
                    Op::Tee { branches, .. } => branches.push(id),
                    Op::Route {
                        branches, router, ..
                    } => branches.push((router.pad_number(&link.src_pad).unwrap_or(u32::MAX), id)),
                    _ => unreachable!("only transforms, tees and routers have children here"),
                }
            }
        }
        let name: String = format!("px-{}", names[el]).chars().take(15).collect();
        if tracing::enabled!(tracing::Level::DEBUG) {
            let members: Vec<&str> = (0..graph.dag.node_count())
                .filter(|&e| segment_of[e] == seg_no)
                .map(|e| names[e].as_str())
                .collect();
            tracing::debug!(thread = %name, elements = ?members, "Planned a thread");
        }
        let mut segment = Segment::new(name, input, entry, ops, Arc::clone(names));
        segment.caps = caps_states.clone();
        segment.observe(
            Observe {
                live: options.progress.as_ref().map(|p| p.register()),
                ..Observe::default()
            },
            |el| observe::element_span(graph, el),
        );
        segments.push(segment);
    }
    if let Some(progress) = &options.progress {
        progress.planned(total_bytes);
    }
    // An async source feeding an async sink sends straight into the sink's channel: no
    // thread in between (graph.segments() gives it none).
    for n in graph.topo_order() {
        let el = n.index();
        let Some(ElementImpl::AsyncSource(src)) =
            impls[el].take_if(|imp| matches!(imp, ElementImpl::AsyncSource(_)))
        else {
            continue;
        };
        let sink = graph.children(n)[0].1.index();
        let ch = &channels[&sink];
        let pool = source_pool(
            src.pool_request_dyn(),
            el,
            names,
            options,
            peers,
            &mut pools,
        )?;
        tasks.push(AsyncTask::Source {
            el,
            src,
            pool,
            tx: ch.tx.clone_async(),
            level: Arc::clone(&ch.level),
            count: true,
        });
    }
    for n in async_sinks {
        let el = n.index();
        let Some(ElementImpl::AsyncSink(sink)) = impls[el].take() else {
            unreachable!("collected above as an async sink")
        };
        let ch = &channels[&el];
        levels.insert(el, Arc::clone(&ch.level));
        tasks.push(AsyncTask::Sink {
            el,
            sink,
            rx: ch.rx.clone_async(),
            inputs: graph.parent_count(n),
            level: Arc::clone(&ch.level),
        });
    }
    // Async elements report as the runtime's thread, numbered after the fused ones.
    for (el, of) in segment_of.iter_mut().enumerate() {
        if graph.domain(daggy::NodeIndex::new(el)) == Domain::Async {
            *of = thread_of[el];
        }
    }
    Ok(Plan {
        segments,
        tasks,
        levels,
        bridges,
        pools,
        segment_of,
    })
}

/// How workers may map the pipeline's pools: read-only as soon as one worker runs code that is
/// not trusted (the arenas are sealed; every worker then releases through messages and the
/// owner's ledger), writable otherwise.
fn pool_peers(graph: &Graph) -> PeerAccess {
    let untrusted_worker =
        graph.dag.graph().node_weights().any(|node| {
            node.exec == Exec::Isolated && node.trust != crate::registry::Trust::Trusted
        });
    if untrusted_worker {
        PeerAccess::ReadOnly
    } else {
        PeerAccess::ReadWrite
    }
}

/// The pool a source asked for, registered for `--stats`.
fn source_pool(
    request: Option<crate::element::PoolRequest>,
    el: usize,
    names: &[String],
    options: &RunOptions,
    peers: PeerAccess,
    pools: &mut HashMap<usize, MemoryPool>,
) -> Result<Option<MemoryPool>, RunError> {
    let Some(req) = request else {
        return Ok(None);
    };
    let slots = req.slots_or_default();
    let pool = MemoryPool::new(&PoolConfig {
        backing: options.backing,
        slot_size: req.slot_size,
        slots,
        name: names[el].clone(),
        peers,
    })
    .map_err(|e| RunError::Element {
        element: names[el].clone(),
        source: ElementError::Failed(e.to_string()),
    })?;
    pools.insert(el, pool.clone());
    Ok(Some(pool))
}

/// Puts a tap op in front of op `id` for every `--tap` on the link from element `from`'s pad
/// `src_pad`; returns the op that the link now leads to.
fn add_taps(
    mut id: usize,
    from: usize,
    src_pad: &str,
    ops: &mut Vec<OpSlot>,
    options: &RunOptions,
) -> usize {
    for tap in options
        .taps
        .iter()
        .filter(|t| t.from == from && t.src_pad == src_pad)
    {
        ops.push(OpSlot::new(Op::Tap {
            point: Box::new(TapPoint::new(
                tap.label.clone(),
                options.tap_format,
                options.console.clone(),
            )),
            next: id,
        }));
        id = ops.len() - 1;
    }
    id
}

/// Tells a channel sender which link it carries (upstream element `from`, pad `src_pad`).
fn set_link(op: &mut Op, from: usize, src_pad: &str) {
    if let Op::Send { link, .. } = op {
        *link = (from, src_pad.to_owned());
    }
}

/// Adds the op for `node` (reached from within a segment) and queues it for its children.
fn add_op(
    (node, sink_pad): (NodeIndex<u32>, &str),
    impls: &mut [Option<ElementImpl>],
    channels: &HashMap<usize, Channel>,
    ops: &mut Vec<OpSlot>,
    work: &mut Vec<(usize, NodeIndex<u32>)>,
    segment_of: &mut [usize],
    seg_no: usize,
) -> usize {
    let el = node.index();
    let id = ops.len();
    let op = if let Some(ch) = channels.get(&el) {
        Op::Send {
            tx: ch.sender(),
            rx: ch
                .queue
                .filter(|q| q.leaky == crate::element::Leaky::Downstream)
                .map(|_| ch.rx.clone()),
            queue: ch.queue,
            level: Arc::clone(&ch.level),
            target: el,
            gate: ch.gate_for(sink_pad),
            announce: ch.announce.get(sink_pad).cloned().map(Box::new),
            link: (usize::MAX, String::new()),
        }
    } else {
        segment_of[el] = seg_no;
        match impls[el].take() {
            Some(ElementImpl::Transform(imp)) => {
                work.push((id, node));
                Op::Transform {
                    el,
                    imp,
                    next: usize::MAX,
                }
            }
            Some(ElementImpl::Sink(imp)) => Op::Sink {
                el,
                imp,
                counted: true,
            },
            Some(ElementImpl::Split { input, output }) => {
                // The sending half ends this thread; the receiving half starts the element's
                // own, as its root (the element counts its buffers there, once).
                impls[el] = Some(ElementImpl::Source(output));
                Op::Sink {
                    el,
                    imp: input,
                    counted: false,
                }
            }
            Some(ElementImpl::Tee) => {
                work.push((id, node));
                Op::Tee {
                    el,
                    branches: Vec::new(),
                    sinks: 0,
                }
            }
            Some(ElementImpl::Route(router)) => {
                work.push((id, node));
                Op::Route {
                    el,
                    router,
                    branches: Vec::new(),
                }
            }
            Some(ElementImpl::Demux { imp, router }) => {
                // Two ops: the transform, then the router its outputs go through.
                ops.push(OpSlot::new(Op::Transform {
                    el,
                    imp,
                    next: id + 1,
                }));
                work.push((id + 1, node));
                Op::Route {
                    el,
                    router,
                    branches: Vec::new(),
                }
            }
            _ => unreachable!("validation gives every non-root element exactly one upstream"),
        }
    };
    ops.push(OpSlot::new(op));
    id
}
