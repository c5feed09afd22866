//! What a running pipeline shows about itself besides its data, all on stderr and all free when
//! not asked for:
//!
//! - [`Console`]: every line the engine prints while running (`-m` events, taps) goes through
//!   it, so that a progress line drawn by the binary can step aside for it.
//! - [`Progress`]: live totals for a progress line. Segments already count buffers and bytes
//!   for `--stats` in plain fields of their own; while a progress line is drawn, each segment
//!   also stores those counts into atomics of its own (relaxed stores by the one writer: no
//!   locked instruction, no shared cache line) on the input buffers whose time is sampled and
//!   before it may wait, and a ticker thread sums them. Without a progress line (`-q`, stderr
//!   not a terminal) nothing is stored.
//! - Taps (`--tap NAME[.PAD]`): [`resolve_tap`] turns a tap point into the links it watches;
//!   the planner puts a [`TapPoint`] op in front of the element below each such link. Without
//!   taps no op is added, so the fused loop is unchanged.
//! - Element spans: one `tracing` span per element, named `element` with fields `name` and
//!   `factory`, entered around the element's calls only when a subscriber enabled it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use daggy::{NodeIndex, Walker as _};

use crate::graph::Graph;
use crate::memory::{format_clock, Buffer, BufferFlags, Metadata};

/// Runs a closure that writes to stderr; the binary uses it to hide its progress line meanwhile.
pub type AroundWrite = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// Gets every text the console writes (a control socket's subscribers).
pub type ConsoleEvents = Arc<dyn Fn(&str) + Send + Sync>;

/// Where the engine's own lines go while a pipeline runs: stderr, one whole line per write.
#[derive(Clone, Default)]
pub struct Console {
    around: Option<AroundWrite>,
    /// Also gets every line written (a control socket's subscribers).
    events: Option<ConsoleEvents>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("around", &self.around.is_some())
            .finish()
    }
}

impl Console {
    /// A console whose writes run inside `around` (to suspend a progress line).
    pub fn with_around(around: AroundWrite) -> Console {
        Console {
            around: Some(around),
            events: None,
        }
    }

    /// The same console, also handing every text written to `events`.
    pub fn with_events(mut self, events: ConsoleEvents) -> Console {
        self.events = Some(events);
        self
    }

    /// Writes `text` to stderr in one call, so lines from several threads do not interleave.
    pub fn write(&self, text: &str) {
        if let Some(events) = &self.events {
            events(text);
        }
        let mut write = || {
            // Nothing sensible is left to do when stderr itself fails.
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        };
        match &self.around {
            Some(around) => around(&mut write),
            None => write(),
        }
    }
}

impl crate::element::Lines for Console {
    fn write_lines(&self, text: &str) {
        self.write(text);
    }
}

/// One segment's published totals. Only the segment's thread writes them.
#[derive(Debug, Default)]
pub(super) struct LiveCounters {
    pub(super) sink_buffers: AtomicU64,
    pub(super) sink_bytes: AtomicU64,
    pub(super) source_bytes: AtomicU64,
    /// Per element counts as the run report has them, when a control socket or a metrics
    /// endpoint watches (`None` otherwise): published with the totals (one input buffer in 32
    /// on average, before the thread may wait, and at its end), by an async task after every
    /// buffer.
    pub(super) elements: Option<std::sync::OnceLock<Vec<(usize, LiveStats)>>>,
}

impl LiveCounters {
    /// Publishes the counts of the one element an async task runs.
    pub(super) fn publish_one(&self, el: usize, s: &super::ElementStats) {
        if let Some(elements) = &self.elements {
            let slots = elements.get_or_init(|| vec![(el, LiveStats::default())]);
            slots[0].1.store(s);
        }
    }
}

/// One element's counts in one segment, as last published by that segment's thread.
#[derive(Debug, Default)]
pub(super) struct LiveStats {
    buffers: AtomicU64,
    bytes: AtomicU64,
    busy_ns: AtomicU64,
    dropped: AtomicU64,
    truncated: AtomicU64,
    kernel_copied: AtomicU64,
    synced: AtomicU64,
    late: AtomicU64,
    max_lateness_ns: AtomicU64,
    times: LiveHistogram,
}

/// A [`super::stats::TimeHistogram`] as last published by the one thread that keeps it.
#[derive(Debug, Default)]
pub(super) struct LiveHistogram {
    buckets: [AtomicU64; super::stats::TIME_BUCKETS + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl LiveHistogram {
    /// Publishes `h`; only when it changed (one load when it did not: most buffers are not
    /// timed).
    pub(super) fn store(&self, h: &super::stats::TimeHistogram) {
        if self.count.load(Ordering::Relaxed) == h.count {
            return;
        }
        for (a, &b) in self.buckets.iter().zip(&h.buckets) {
            a.store(b, Ordering::Relaxed);
        }
        self.sum_ns.store(h.sum_ns, Ordering::Relaxed);
        self.count.store(h.count, Ordering::Relaxed);
    }

    pub(super) fn load(&self) -> super::stats::TimeHistogram {
        let mut h = super::stats::TimeHistogram {
            count: self.count.load(Ordering::Relaxed),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            ..Default::default()
        };
        for (b, a) in h.buckets.iter_mut().zip(&self.buckets) {
            *b = a.load(Ordering::Relaxed);
        }
        h
    }
}

impl LiveStats {
    pub(super) fn store(&self, s: &super::ElementStats) {
        self.buffers.store(s.buffers, Ordering::Relaxed);
        self.bytes.store(s.bytes, Ordering::Relaxed);
        self.busy_ns.store(s.busy_ns, Ordering::Relaxed);
        self.dropped.store(s.dropped, Ordering::Relaxed);
        self.truncated.store(s.truncated, Ordering::Relaxed);
        self.kernel_copied.store(s.kernel_copied, Ordering::Relaxed);
        self.synced.store(s.synced, Ordering::Relaxed);
        self.late.store(s.late, Ordering::Relaxed);
        self.max_lateness_ns
            .store(s.max_lateness_ns, Ordering::Relaxed);
        self.times.store(&s.times);
    }

    fn load(&self) -> super::ElementStats {
        super::ElementStats {
            buffers: self.buffers.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            kernel_copied: self.kernel_copied.load(Ordering::Relaxed),
            synced: self.synced.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            max_lateness_ns: self.max_lateness_ns.load(Ordering::Relaxed),
            times: self.times.load(),
        }
    }
}

/// What the planner leaves for live reports: the channels' levels, the pools and the threads.
#[derive(Default)]
struct LivePlan {
    levels: std::collections::HashMap<usize, Arc<super::segment::Level>>,
    bridges: std::collections::HashMap<usize, Arc<super::segment::Level>>,
    pools: std::collections::HashMap<usize, crate::memory::MemoryPool>,
    segment_of: Vec<usize>,
    threads: usize,
    started: Option<std::time::Instant>,
}

/// Live totals of a running pipeline, for a progress line. Create one, pass it in
/// [`super::RunOptions::progress`], and call [`Progress::snapshot`] from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<ProgressState>,
    /// Whether segments also publish per element counts ([`Progress::with_elements`]).
    per_element: bool,
}

#[derive(Default)]
struct ProgressState {
    segments: Vec<Arc<LiveCounters>>,
    total_bytes: Option<u64>,
    planned: bool,
    plan: LivePlan,
    /// The cycle times of rt elements, by element name.
    cycles: Vec<(String, Arc<LiveHistogram>)>,
    /// Worker processes started for isolated elements, by element name.
    workers: Vec<(String, u64)>,
}

impl std::fmt::Debug for ProgressState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressState")
            .field("segments", &self.segments.len())
            .field("planned", &self.planned)
            .finish()
    }
}

/// What [`Progress::snapshot`] reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Buffers into sinks so far.
    pub sink_buffers: u64,
    /// Bytes into sinks so far (a tee with two sinks counts its bytes twice, as `--stats`).
    pub sink_bytes: u64,
    /// Bytes out of the sources so far.
    pub source_bytes: u64,
    /// What the sources will produce in all, when every source knows its size (filesrc).
    pub total_bytes: Option<u64>,
    /// Whether the planner is done: before that every count is 0 and the total unknown.
    pub planned: bool,
}

impl Progress {
    /// Empty; the planner fills it in.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Also collects per element counts, for live reports ([`Progress::report`]): what a
    /// control socket and a metrics endpoint read.
    pub fn with_elements() -> Progress {
        Progress {
            per_element: true,
            ..Progress::default()
        }
    }

    pub(super) fn register(&self) -> Arc<LiveCounters> {
        let live = Arc::new(LiveCounters {
            elements: self.per_element.then(std::sync::OnceLock::new),
            ..LiveCounters::default()
        });
        self.lock().segments.push(Arc::clone(&live));
        live
    }

    /// Where the rt element `name` publishes its cycle times (`None` when nobody watches).
    pub(super) fn register_cycles(&self, name: &str) -> Option<Arc<LiveHistogram>> {
        if !self.per_element {
            return None;
        }
        let live = Arc::new(LiveHistogram::default());
        self.lock()
            .cycles
            .push((name.to_owned(), Arc::clone(&live)));
        Some(live)
    }

    /// A worker process was started for the isolated element `name`.
    pub(super) fn worker_started(&self, name: &str) {
        let mut state = self.lock();
        match state.workers.iter_mut().find(|(n, _)| n == name) {
            Some((_, starts)) => *starts += 1,
            None => state.workers.push((name.to_owned(), 1)),
        }
    }

    /// Worker processes started so far, by isolated element: one each, as a worker that dies
    /// ends the run rather than being replaced.
    pub fn worker_starts(&self) -> Vec<(String, u64)> {
        let mut all = self.lock().workers.clone();
        all.sort();
        all
    }

    /// The cycle times of the rt elements so far, by element name.
    pub fn cycle_times(&self) -> Vec<(String, super::stats::TimeHistogram)> {
        let mut all: Vec<_> = self
            .lock()
            .cycles
            .iter()
            .map(|(name, h)| (name.clone(), h.load()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub(super) fn planned(&self, total_bytes: Option<u64>) {
        let mut state = self.lock();
        state.total_bytes = total_bytes;
        state.planned = true;
    }

    /// Keeps what a live report needs from the plan.
    pub(super) fn keep_plan(
        &self,
        levels: &std::collections::HashMap<usize, Arc<super::segment::Level>>,
        bridges: &std::collections::HashMap<usize, Arc<super::segment::Level>>,
        pools: &std::collections::HashMap<usize, crate::memory::MemoryPool>,
        segment_of: &[usize],
        threads: usize,
    ) {
        if !self.per_element {
            return;
        }
        self.lock().plan = LivePlan {
            levels: levels.clone(),
            bridges: bridges.clone(),
            pools: pools.clone(),
            segment_of: segment_of.to_vec(),
            threads,
            started: Some(std::time::Instant::now()),
        };
    }

    /// The run report as it stands: what every segment and async task published so far (see
    /// [`LiveCounters::elements`]), with the channels' levels and the pools now. `None` before the run is planned or without [`Progress::with_elements`].
    pub fn report(&self, graph: &Graph) -> Option<super::Report> {
        let state = self.lock();
        let started = state.plan.started?;
        let mut per_element = vec![super::ElementStats::default(); graph.dag.node_count()];
        for live in &state.segments {
            let Some(elements) = live.elements.as_ref().and_then(|e| e.get()) else {
                continue;
            };
            for (el, s) in elements {
                if let Some(slot) = per_element.get_mut(*el) {
                    *slot += s.load();
                }
            }
        }
        let p = &state.plan;
        Some(super::stats::report(
            graph,
            &per_element,
            &std::collections::HashMap::new(),
            &p.segment_of,
            &p.levels,
            &p.bridges,
            &p.pools,
            Vec::new(),
            p.threads,
            started.elapsed(),
            super::Ending::Eos,
        ))
    }

    /// Buffers waiting now in the channel in front of each element that has one (queues,
    /// funnels, async sinks), by element index: (buffers, bytes).
    pub fn queue_levels(&self) -> Vec<(usize, usize, u64)> {
        let state = self.lock();
        let mut out: Vec<(usize, usize, u64)> = state
            .plan
            .levels
            .iter()
            .map(|(el, l)| {
                let (buffers, bytes) = l.now();
                (*el, buffers, bytes)
            })
            .collect();
        out.sort_unstable();
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The totals as last published by every segment.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let state = self.lock();
        let mut s = ProgressSnapshot {
            total_bytes: state.total_bytes,
            planned: state.planned,
            ..ProgressSnapshot::default()
        };
        for live in &state.segments {
            s.sink_buffers += live.sink_buffers.load(Ordering::Relaxed);
            s.sink_bytes += live.sink_bytes.load(Ordering::Relaxed);
            s.source_bytes += live.source_bytes.load(Ordering::Relaxed);
        }
        s
    }
}

/// How tapped buffers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TapFormat {
    /// A line per buffer with its metadata, then the first bytes as a hex dump.
    #[default]
    Text,
    /// One JSON object per line per buffer.
    Json,
}

/// Bytes of each buffer shown by a tap.
pub const TAP_HEAD_BYTES: usize = 32;

/// A link to watch, found by [`resolve_tap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    /// The upstream element of the link (node index).
    pub from: usize,
    /// The upstream pad of the link.
    pub src_pad: String,
    /// What tap lines call this point: `element.pad` as the user named it.
    pub label: String,
}

/// A tap point that names nothing in the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--tap {spec}: {message}")]
pub struct TapError {
    /// The tap point as given.
    pub spec: String,
    /// What is wrong.
    pub message: String,
    /// "did you mean `filesrc0`?"
    pub help: Option<String>,
}

/// Resolves `NAME[.PAD]` to the links it watches. `NAME.PAD` is the link at that pad (a source
/// pad: what leaves through it; a sink pad: what arrives through it). `NAME` alone is what
/// leaves the element through every linked source pad, or, for a sink, what arrives.
pub fn resolve_tap(graph: &Graph, spec: &str) -> Result<Vec<Tap>, TapError> {
    let error = |message: String, help: Option<String>| TapError {
        spec: spec.to_owned(),
        message,
        help,
    };
    let (name, pad) = match spec.split_once('.') {
        Some((n, "")) => (n, None),
        Some((n, p)) => (n, Some(p)),
        None => (spec, None),
    };
    let dag = &graph.dag;
    let Some(node) = dag.graph().node_indices().find(|&n| dag[n].name == name) else {
        let names: Vec<&str> = dag
            .graph()
            .node_indices()
            .map(|n| dag[n].name.as_str())
            .collect();
        let help = did_you_mean(name, names.iter().copied()).or_else(|| {
            Some(format!(
                "elements are named by name= or factory and counter: {}",
                names.join(", ")
            ))
        });
        return Err(error(format!("no element `{name}` in the pipeline"), help));
    };
    let out: Vec<(NodeIndex<u32>, String)> = graph
        .children(node)
        .into_iter()
        .map(|(link, _)| (node, link.src_pad.clone()))
        .collect();
    let incoming: Vec<(NodeIndex<u32>, String, String)> = dag
        .parents(node)
        .iter(dag)
        .map(|(e, p)| (p, dag[e].src_pad.clone(), dag[e].sink_pad.clone()))
        .collect();
    let taps = match pad {
        Some(pad) => {
            if let Some((from, src_pad)) = out.iter().find(|(_, p)| p == pad) {
                vec![(from.index(), src_pad.clone(), format!("{name}.{pad}"))]
            } else if let Some((from, src_pad, _)) = incoming.iter().find(|(_, _, s)| s == pad) {
                vec![(from.index(), src_pad.clone(), format!("{name}.{pad}"))]
            } else {
                let pads: Vec<&str> = out
                    .iter()
                    .map(|(_, p)| p.as_str())
                    .chain(incoming.iter().map(|(_, _, s)| s.as_str()))
                    .collect();
                let help = did_you_mean(pad, pads.iter().copied())
                    .or_else(|| Some(format!("its linked pads: {}", pads.join(", "))));
                return Err(error(format!("`{name}` has no linked pad `{pad}`"), help));
            }
        }
        None if !out.is_empty() => out
            .iter()
            .map(|(from, p)| (from.index(), p.clone(), format!("{name}.{p}")))
            .collect(),
        None => incoming
            .iter()
            .map(|(from, src_pad, sink_pad)| {
                (from.index(), src_pad.clone(), format!("{name}.{sink_pad}"))
            })
            .collect(),
    };
    Ok(taps
        .into_iter()
        .map(|(from, src_pad, label)| Tap {
            from,
            src_pad,
            label,
        })
        .collect())
}

fn did_you_mean<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    crate::registry::suggest(wanted, candidates)
        .first()
        .map(|s| format!("did you mean `{s}`?"))
}

/// A tap in the fused loop: prints every buffer that passes, then hands it on untouched.
pub(super) struct TapPoint {
    label: String,
    format: TapFormat,
    console: Console,
    /// Buffers seen here so far.
    seen: u64,
}

impl TapPoint {
    pub(super) fn new(label: String, format: TapFormat, console: Console) -> TapPoint {
        TapPoint {
            label,
            format,
            console,
            seen: 0,
        }
    }

    pub(super) fn buffer(&mut self, buf: &Buffer) {
        let text = match self.format {
            TapFormat::Text => self.text(buf),
            TapFormat::Json => self.json(buf),
        };
        self.seen += 1;
        self.console.write(&text);
    }

    pub(super) fn eos(&self) {
        let text = match self.format {
            TapFormat::Text => format!(
                "tap {}: end of stream after {} buffer{}\n",
                self.label,
                self.seen,
                if self.seen == 1 { "" } else { "s" }
            ),
            TapFormat::Json => format!(
                "{}\n",
                serde_json::to_string(&TapEos {
                    tap: &self.label,
                    eos: true,
                    buffers: self.seen,
                })
                .expect("a tap line always serialises")
            ),
        };
        self.console.write(&text);
    }

    fn text(&self, buf: &Buffer) -> String {
        let m = &buf.meta;
        let mut s = format!(
            "tap {}: #{} {} bytes, seq {}, offset {}, offset-end {}, pts {}, dts {}, duration {}, \
             flags {}, stream {}",
            self.label,
            self.seen,
            buf.len(),
            m.sequence,
            m.offset().map_or("none".to_owned(), |o| o.to_string()),
            m.offset_end().map_or("none".to_owned(), |o| o.to_string()),
            format_clock(m.pts()),
            format_clock(m.dts()),
            format_clock(m.duration()),
            flag_names(m.flags).join("|"),
            m.stream_id,
        );
        if m.has_fields() {
            s.push_str(", fields");
            for (key, value) in m.fields() {
                let _ = write!(s, " {}={value}", key.escape_debug());
            }
        }
        s.push('\n');
        let head = &buf.data()[..buf.len().min(TAP_HEAD_BYTES)];
        for line in crate::elements::hex_rows(head).lines() {
            let _ = writeln!(s, "  {line}");
        }
        if buf.len() > TAP_HEAD_BYTES {
            let _ = writeln!(s, "  ... {} more bytes", buf.len() - TAP_HEAD_BYTES);
        }
        s
    }

    fn json(&self, buf: &Buffer) -> String {
        let m = &buf.meta;
        let head = &buf.data()[..buf.len().min(TAP_HEAD_BYTES)];
        let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
        let line = TapBuffer {
            tap: &self.label,
            index: self.seen,
            size: buf.len(),
            sequence: m.sequence,
            offset: m.offset(),
            pts: m.pts(),
            duration: m.duration(),
            flags: m.flags.names(),
            stream: m.stream_id,
            head: hex,
            dts: m.dts(),
            offset_end: m.offset_end(),
            fields: Fields(m),
        };
        serde_json::to_string(&line).expect("a tap line always serialises") + "\n"
    }
}

/// One `--tap-format=json` line per buffer (fields in this order, new ones appended;
/// documented in the README).
#[derive(serde::Serialize)]
struct TapBuffer<'a> {
    tap: &'a str,
    index: u64,
    size: usize,
    sequence: u64,
    offset: Option<u64>,
    pts: Option<u64>,
    duration: Option<u64>,
    flags: Vec<&'static str>,
    stream: u32,
    head: String,
    dts: Option<u64>,
    offset_end: Option<u64>,
    fields: Fields<'a>,
}

/// A buffer's user fields as one JSON object, in key order (`{}` when there are none).
struct Fields<'a>(&'a Metadata);

impl serde::Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.fields())
    }
}

/// The `--tap-format=json` line at end of stream.
#[derive(serde::Serialize)]
struct TapEos<'a> {
    tap: &'a str,
    eos: bool,
    buffers: u64,
}

/// The flags' names, or `none`.
fn flag_names(flags: BufferFlags) -> Vec<&'static str> {
    let mut names = flags.names();
    if names.is_empty() {
        names.push("none");
    }
    names
}

/// The span an element's calls run in: `element{name=filesrc0 factory=filesrc}`. At ERROR
/// level so that any enabled filter keeps it, and so gives every event inside it its element.
pub(super) fn element_span(graph: &Graph, el: usize) -> tracing::Span {
    let node = &graph.dag[NodeIndex::new(el)];
    tracing::error_span!("element", name = %node.name, factory = %node.factory.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(text: &str) -> Graph {
        Graph::from_description(text).unwrap()
    }

    #[test]
    fn a_bare_name_taps_what_leaves_a_source_and_what_reaches_a_sink() {
        let g = graph("fakesrc ! identity name=i ! fakesink");
        let t = resolve_tap(&g, "fakesrc0").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].label, "fakesrc0.src");
        assert_eq!(
            resolve_tap(&g, "fakesink0").unwrap()[0].label,
            "fakesink0.sink"
        );
        assert_eq!(resolve_tap(&g, "i.sink").unwrap()[0].src_pad, "src");
        assert_eq!(resolve_tap(&g, "i").unwrap()[0].label, "i.src");
    }

    #[test]
    fn a_bare_tee_taps_every_branch() {
        let g = graph("fakesrc ! tee name=t ! fakesink t. ! fakesink");
        let labels: Vec<String> = resolve_tap(&g, "t")
            .unwrap()
            .into_iter()
            .map(|t| t.label)
            .collect();
        assert_eq!(labels, ["t.src_0", "t.src_1"]);
    }

    #[test]
    fn unknown_names_and_pads_suggest() {
        let g = graph("fakesrc ! fakesink");
        let e = resolve_tap(&g, "fakesrc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--tap fakesrc: no element `fakesrc` in the pipeline"
        );
        assert_eq!(e.help.as_deref(), Some("did you mean `fakesrc0`?"));
        let e = resolve_tap(&g, "fakesrc0.scr").unwrap_err();
        assert_eq!(e.message, "`fakesrc0` has no linked pad `scr`");
        assert_eq!(e.help.as_deref(), Some("did you mean `src`?"));
    }
}
