//! The element registry: one static [`Factory`] per element, the single source that parsing,
//! validation, `parallax-inspect`, the DOT export, man pages and completions all read.
//!
//! A factory declares its properties ([`PropSpec`]), pads ([`Pads`]) and execution hints
//! ([`Hints`]); the registry parses and range-checks property values before the factory's
//! `build` runs, so elements only ever see typed, valid [`Props`].

pub mod features;
mod props;

pub use props::{
    format_time, Check, Effect, EnumValue, LiveBool, LiveFloat, LiveUInt, LiveValue, PropKind,
    PropSpec, Props, Role, Value, ValueError,
};

use crate::caps::Caps;
use crate::element::ElementImpl;

/// What an element is for; drives the grouping in `parallax-inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Klass {
    /// Produces buffers.
    Source,
    /// Consumes buffers.
    Sink,
    /// Passes buffers through, possibly changing or dropping them.
    Filter,
    /// Moves buffers between threads or controls their flow.
    Flow,
    /// Splits or merges streams.
    Routing,
}

impl Klass {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Klass::Source => "source",
            Klass::Sink => "sink",
            Klass::Filter => "filter",
            Klass::Flow => "flow",
            Klass::Routing => "routing",
        }
    }
}

/// How many pads of one direction an element has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadPresence {
    /// No pad in this direction.
    None,
    /// Exactly one pad with this name, which must be linked.
    Always(&'static str),
    /// Any number of pads created on request, named from the template (`src_%u`), or from
    /// one of several templates separated by spaces (a demuxer's `video_%u audio_%u`).
    Request(&'static str),
}

impl PadPresence {
    /// The template name (`src`, `src_%u`), if any.
    pub fn template(self) -> Option<&'static str> {
        match self {
            PadPresence::None => None,
            PadPresence::Always(t) | PadPresence::Request(t) => Some(t),
        }
    }

    /// Whether `name` names a pad of this template (`src_3` matches `src_%u`, `video_0_0041`
    /// matches `video_%01x_%04x`).
    pub fn matches(self, name: &str) -> bool {
        match self {
            PadPresence::None => false,
            PadPresence::Always(t) => t == name,
            PadPresence::Request(t) => t.split(' ').any(|t| template_matches(t, name)),
        }
    }
}

/// Whether `name` fits the printf-like pad template `t`: `%u` takes decimal digits, `%x` (or
/// `%04x`) hex digits, everything else itself.
fn template_matches(t: &str, name: &str) -> bool {
    let (mut t, mut name) = (t.as_bytes(), name.as_bytes());
    while let Some((&c, rest)) = t.split_first() {
        if c != b'%' {
            match name.split_first() {
                Some((&n, more)) if n == c => (t, name) = (rest, more),
                _ => return false,
            }
            continue;
        }
        let width = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let Some(&kind) = rest.get(width) else {
            return false;
        };
        let digit: fn(&u8) -> bool = match kind {
            b'u' | b'd' => u8::is_ascii_digit,
            b'x' => u8::is_ascii_hexdigit,
            _ => return false,
        };
        let n = name.iter().take_while(|b| digit(b)).count();
        if n == 0 {
            return false;
        }
        (t, name) = (&rest[width + 1..], &name[n..]);
    }
    name.is_empty()
}

/// How caps cross an element from its sink pads to its src pads (gst's `transform_caps`).
#[derive(Clone, Copy)]
pub enum CapsRule {
    /// What comes out is what went in (queue, tee, identity): bytes are not changed.
    Passthrough,
    /// What comes out is the src template whatever went in (an element that rewrites bytes
    /// declares ANY; wavenc declares `audio/x-wav`).
    Fixed,
    /// What comes out is a function of what went in and of the properties (converters,
    /// capsfilter, sources whose output the properties shape).
    Derived(&'static CapsFns),
}

impl std::fmt::Debug for CapsRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CapsRule::Passthrough => "Passthrough",
            CapsRule::Fixed => "Fixed",
            CapsRule::Derived(_) => "Derived",
        })
    }
}

/// The functions of a [`CapsRule::Derived`] element, each run once, when the description is
/// validated.
pub struct CapsFns {
    /// What may come out, given the (fixed, or ANY) caps that come in; a source gets ANY.
    pub forward: fn(&Caps, &Props) -> Caps,
    /// What may go in, given what downstream takes (ANY when anything).
    pub backward: fn(&Caps, &Props) -> Caps,
    /// Picks the one format that comes out from what may (gst's `fixate_caps`): sources prefer
    /// gst's defaults here (44100 Hz, 320x240 at 30/1).
    pub fixate: fn(Caps, &Props) -> Caps,
}

impl CapsFns {
    /// The forward and backward functions of an element that lets anything through and
    /// fixates with gst's default rule (for [`CapsFns`] built field by field).
    pub fn identity(caps: &Caps, _: &Props) -> Caps {
        caps.clone()
    }

    /// gst's default fixation: first of a list, smallest of a range.
    pub fn default_fixate(caps: Caps, _: &Props) -> Caps {
        caps.fixate()
    }
}

/// The pad templates of an element: one sink side, one src side, with their caps and how caps
/// cross the element.
#[derive(Debug, Clone, Copy)]
pub struct Pads {
    /// Inputs.
    pub sink: PadPresence,
    /// Outputs.
    pub src: PadPresence,
    /// Caps every sink pad accepts, in gst's text form (`ANY` for byte streams).
    pub sink_caps: &'static str,
    /// Caps every src pad may produce, in gst's text form.
    pub src_caps: &'static str,
    /// How the caps that come in become the caps that go out.
    pub rule: CapsRule,
}

impl Pads {
    /// No pads, ANY caps passed through: the base the other constants extend.
    const BYTES: Pads = Pads {
        sink: PadPresence::None,
        src: PadPresence::None,
        sink_caps: "ANY",
        src_caps: "ANY",
        rule: CapsRule::Passthrough,
    };
    /// A filter that rewrites bytes: whatever comes in, untyped bytes (ANY) come out.
    pub const BYTES_TO_BYTES: Pads = Pads {
        rule: CapsRule::Fixed,
        ..Pads::ONE_TO_ONE
    };

    /// These pads with `sink` and `src` template caps.
    pub const fn with_caps(self, sink_caps: &'static str, src_caps: &'static str) -> Pads {
        Pads {
            sink_caps,
            src_caps,
            ..self
        }
    }

    /// These pads with caps crossing by `rule`.
    pub const fn with_rule(self, rule: CapsRule) -> Pads {
        Pads { rule, ..self }
    }

    /// The sink template's caps (ANY when the element has no sink pad).
    pub fn sink_template(&self) -> Caps {
        template(self.sink_caps, self.sink)
    }

    /// The src template's caps (ANY when the element has no src pad).
    pub fn src_template(&self) -> Caps {
        template(self.src_caps, self.src)
    }
}

fn template(text: &str, presence: PadPresence) -> Caps {
    if presence == PadPresence::None {
        return Caps::Any;
    }
    // Every template parses: `every_template_parses` checks each factory's.
    Caps::parse(text).expect("a factory's template caps parse")
}

impl Pads {
    /// A source: one always src pad.
    pub const SOURCE: Pads = Pads {
        sink: PadPresence::None,
        src: PadPresence::Always("src"),
        ..Pads::BYTES
    };
    /// A sink: one always sink pad.
    pub const SINK: Pads = Pads {
        sink: PadPresence::Always("sink"),
        src: PadPresence::None,
        ..Pads::BYTES
    };
    /// A filter: one sink pad, one src pad.
    pub const ONE_TO_ONE: Pads = Pads {
        sink: PadPresence::Always("sink"),
        src: PadPresence::Always("src"),
        ..Pads::BYTES
    };
    /// A fan-out: one sink pad, `src_%u` on request.
    pub const ONE_TO_MANY: Pads = Pads {
        sink: PadPresence::Always("sink"),
        src: PadPresence::Request("src_%u"),
        ..Pads::BYTES
    };
    /// A fan-in: `sink_%u` on request, one src pad.
    pub const MANY_TO_ONE: Pads = Pads {
        sink: PadPresence::Request("sink_%u"),
        src: PadPresence::Always("src"),
        ..Pads::BYTES
    };
}

/// How much an element's code may be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// Built-in, reviewed code.
    Trusted,
    /// Reviewed but parses untrusted input.
    SemiTrusted,
    /// Must run isolated.
    Untrusted,
}

impl Trust {
    /// The values `trust=` accepts, in order.
    pub const NAMES: &'static [&'static str] = &["trusted", "semi-trusted", "untrusted"];

    /// Parses a `trust=` value.
    pub fn parse(text: &str) -> Option<Trust> {
        Some(match text {
            "trusted" => Trust::Trusted,
            "semi-trusted" => Trust::SemiTrusted,
            "untrusted" => Trust::Untrusted,
            _ => return None,
        })
    }
}

/// What bounds an element's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Processing {
    /// Computation.
    Cpu,
    /// Waiting on files, pipes or sockets.
    Io,
    /// Moving memory.
    Memory,
}

/// How quickly an element must respond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Latency {
    /// Audio-callback class.
    UltraLow,
    /// Interactive.
    Low,
    /// Streaming.
    Normal,
    /// Batch.
    Relaxed,
}

impl Latency {
    /// The values `latency=` accepts, in order.
    pub const NAMES: &'static [&'static str] = &["ultra-low", "low", "normal", "relaxed"];

    /// Parses a `latency=` value.
    pub fn parse(text: &str) -> Option<Latency> {
        Some(match text {
            "ultra-low" => Latency::UltraLow,
            "low" => Latency::Low,
            "normal" => Latency::Normal,
            "relaxed" => Latency::Relaxed,
            _ => return None,
        })
    }
}

/// What the planner needs to know to place an element (seed 000, "Automatic Execution
/// Strategy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Hints {
    /// Trust level.
    pub trust: Trust,
    /// What bounds the work.
    pub processing: Processing,
    /// Latency class.
    pub latency: Latency,
    /// Whether the element runs native (FFI) code.
    pub native_code: bool,
    /// Whether the element never blocks, allocates or locks per buffer.
    pub rt_safe: bool,
    /// Whether everything downstream runs on a thread of its own (queue).
    pub thread_boundary: bool,
    /// Whether the element does its I/O through the async traits (`AsyncSource`, `AsyncSink`):
    /// it never blocks a thread, so the planner runs it on the pipeline's tokio runtime.
    pub async_io: bool,
    /// Whether the element acts on time as well as on buffers (a timeout, a batch's age, a
    /// delay): it gets a thread of its own whose wait for input ends at its deadline.
    pub timed: bool,
}

impl Hints {
    /// Cheap, trusted, RT-safe: runs fused in its neighbour's segment.
    pub const FUSABLE: Hints = Hints {
        trust: Trust::Trusted,
        processing: Processing::Memory,
        latency: Latency::Normal,
        native_code: false,
        rt_safe: true,
        thread_boundary: false,
        async_io: false,
        timed: false,
    };
    /// Acts on time: runs on a thread of its own, woken at its deadline.
    pub const TIMED: Hints = Hints {
        rt_safe: false,
        timed: true,
        ..Hints::FUSABLE
    };
    /// A thread boundary: a new segment starts below it.
    pub const BOUNDARY: Hints = Hints {
        thread_boundary: true,
        ..Hints::FUSABLE
    };
    /// Blocks on the OS (files, pipes): trusted, I/O bound.
    pub const BLOCKING_IO: Hints = Hints {
        trust: Trust::Trusted,
        processing: Processing::Io,
        latency: Latency::Normal,
        native_code: false,
        rt_safe: false,
        thread_boundary: false,
        async_io: false,
        timed: false,
    };
    /// Waits on sockets without blocking a thread: trusted, I/O bound, runs in the async domain.
    pub const ASYNC_IO: Hints = Hints {
        async_io: true,
        ..Hints::BLOCKING_IO
    };
}

/// The thread model a factory's code needs: fused threads, or the async runtime. Where an
/// instance runs beyond that (an rt thread, a worker process) is its [`Exec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// Fused into a segment that runs on an OS thread: one direct call per element per buffer.
    Thread,
    /// A task on the pipeline's tokio runtime (one per run, created only when needed), bridged
    /// to the fused threads by bounded kanal channels.
    Async,
}

impl Domain {
    /// Lowercase name, as in `-v`, DOT and `--stats`.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Thread => "thread",
            Domain::Async => "async",
        }
    }
}

/// What `exec=` asks of the planner for one element (every element accepts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exec {
    /// Wherever the element's hints put it.
    #[default]
    Auto,
    /// On the async runtime (elements with an async implementation).
    Async,
    /// On a dedicated thread of its own (SCHED_FIFO with `--rt-priority`).
    Rt,
    /// In a child process (this binary re-executed as a worker), buffers shared, not copied.
    Isolated,
    /// In the pipeline's own process, as a trusted element would run: what a plugin element
    /// (native code, isolated by default) runs as when the user says so.
    Fused,
}

impl Exec {
    /// The values `exec=` accepts.
    pub const NAMES: &'static [&'static str] = &["auto", "async", "rt", "isolated", "fused"];

    /// Parses an `exec=` value.
    pub fn parse(text: &str) -> Option<Exec> {
        Some(match text {
            "auto" => Exec::Auto,
            "async" => Exec::Async,
            "rt" => Exec::Rt,
            "isolated" => Exec::Isolated,
            "fused" => Exec::Fused,
            _ => return None,
        })
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        Exec::NAMES[self as usize]
    }
}

/// How the planner places elements left at `exec=auto` (`--scheduling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduling {
    /// Seed 000's table, from each element's hints: untrusted or native code → isolated;
    /// RT-safe with low latency → rt; async I/O → async; everything else fused.
    #[default]
    Auto,
    /// Fused wherever an element can be: hints move only what must move (untrusted code to a
    /// worker, async-only elements to the runtime).
    Fused,
    /// Every source, sink and one-in-one-out element that can be in a worker process of its
    /// own: the whole pipeline sandboxed element by element.
    Isolated,
    /// Every source and one-in-one-out element that can be on a thread of its own: rt.
    Rt,
}

/// One element factory.
pub struct Factory {
    /// The gst-compatible name (`filesrc`).
    pub name: &'static str,
    /// Other names that reach the same factory (seed names like `nullsink`).
    pub aliases: &'static [&'static str],
    /// What the element is for.
    pub klass: Klass,
    /// One line for listings.
    pub summary: &'static str,
    /// A paragraph for the inspect card and man page.
    pub doc: &'static str,
    /// Pad templates.
    pub pads: Pads,
    /// Properties, in display order.
    pub props: &'static [PropSpec],
    /// Execution hints for the planner.
    pub hints: Hints,
    /// Builds an instance from validated properties.
    pub build: fn(&Props) -> Result<ElementImpl, crate::element::ElementError>,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory").field("name", &self.name).finish()
    }
}

impl Factory {
    /// The property called `name`, if this element has one.
    pub fn prop(&self, name: &str) -> Option<&'static PropSpec> {
        self.props.iter().find(|p| p.name == name)
    }

    /// The domain the planner runs an instance in (seed 000's table, as far as the domains
    /// exist: I/O through the async traits → async; everything else → fused on a thread).
    pub fn domain(&self) -> Domain {
        if self.hints.async_io {
            Domain::Async
        } else {
            Domain::Thread
        }
    }

    /// Whether an instance starts a segment: sources, thread boundaries (queue), fan-ins
    /// (funnel) and async elements (a change of domain is a boundary, like a queue). The planner
    /// and the DOT export both follow this.
    pub fn starts_segment(&self) -> bool {
        self.pads.sink == PadPresence::None
            || self.hints.thread_boundary
            || matches!(self.pads.sink, PadPresence::Request(_))
            || self.domain() != Domain::Thread
    }

    /// Where the planner puts an instance, in words.
    pub fn placement(&self) -> &'static str {
        if self.hints.native_code {
            return "isolated: native code from a plugin runs in a sandboxed worker process that \
                    loads just its library (exec=fused or trust=trusted runs it in this process)";
        }
        if self.domain() == Domain::Async {
            return if self.pads.sink == PadPresence::None {
                "async: a task on the pipeline's tokio runtime (thread px-async); what it \
                 produces crosses to a fused thread (or straight to an async sink) through a \
                 bounded channel"
            } else {
                "async: a task on the pipeline's tokio runtime (thread px-async), fed from the \
                 fused threads through a bounded channel (a full channel holds the sender back)"
            };
        }
        if !self.starts_segment() {
            return "fused: runs in its upstream's thread, one direct call per buffer";
        }
        if self.pads.sink == PadPresence::None {
            "thread: a source starts a thread of its own and pushes from it"
        } else if self.hints.thread_boundary {
            "thread: everything downstream runs on a new thread, fed through a bounded channel"
        } else {
            "thread: a fan-in runs on its own thread, fed by every input through one channel"
        }
    }

    /// Whether an instance can run in a worker process: sources, sinks and one-in-one-out
    /// elements on threads (tee, funnel, queue and async elements cannot).
    pub fn isolatable(&self) -> bool {
        !self.hints.thread_boundary
            && !matches!(self.pads.src, PadPresence::Request(_))
            && !matches!(self.pads.sink, PadPresence::Request(_))
            && self.domain() == Domain::Thread
    }

    /// Whether an instance can run on an rt thread of its own: sources and one-in-one-out
    /// elements on threads.
    pub fn rt_capable(&self) -> bool {
        self.domain() == Domain::Thread
            && !self.hints.thread_boundary
            && matches!(self.pads.src, PadPresence::Always(_))
            && matches!(self.pads.sink, PadPresence::None | PadPresence::Always(_))
    }

    /// Why an instance cannot run with `exec`, or `None` when it can (`auto` always can): the
    /// one rule that the parser, the planner and `parallax-inspect` share.
    pub fn refusal(&self, exec: Exec) -> Option<String> {
        let name = self.name;
        let accepted =
            exec == Exec::Auto || self.exec_choices().iter().any(|(v, _)| *v == exec.as_str());
        if accepted {
            return None;
        }
        Some(match exec {
            Exec::Isolated => format!(
                "a {name} cannot run isolated: only sources, sinks and one-in-one-out elements \
                 on threads can (tee, funnel, queue and async elements cannot)"
            ),
            Exec::Async => format!(
                "a {name} has no async implementation: exec=async runs network elements and \
                 one-in-one-out elements on the runtime"
            ),
            Exec::Rt if self.domain() == Domain::Async => {
                format!("a {name} runs on the async runtime, never on an rt thread")
            }
            _ => format!(
                "a {name} cannot run on an rt thread of its own: only sources and \
                 one-in-one-out elements can (put a queue before a sink to give it a thread)"
            ),
        })
    }

    /// The `exec=` values an instance accepts besides `auto`, with what each does.
    pub fn exec_choices(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        let one_in_one_out = matches!(self.pads.sink, PadPresence::Always(_))
            && matches!(self.pads.src, PadPresence::Always(_))
            && !self.hints.thread_boundary;
        if self.domain() == Domain::Async {
            out.push(("async", "on the pipeline's tokio runtime (its default)"));
            return out;
        }
        if self.hints.native_code {
            // Native code runs isolated unless the user vouches for it: nothing in between.
            out.push((
                "fused",
                "in the pipeline's own process, trusted (native code runs isolated otherwise)",
            ));
            if self.isolatable() {
                out.push((
                    "isolated",
                    "in a sandboxed worker process that loads just its library (the default)",
                ));
            }
            return out;
        }
        if self.isolatable() {
            out.push((
                "isolated",
                "in a worker process; buffers cross as shared-memory references, not copies",
            ));
        }
        if one_in_one_out {
            out.push((
                "async",
                "on the pipeline's tokio runtime, between two bounded channels",
            ));
        }
        if self.rt_capable() {
            out.push((
                "rt",
                "on a thread of its own (SCHED_FIFO with --rt-priority), cycle times under -m",
            ));
        }
        out
    }

    /// Builds an instance from validated properties: `build`, or for a plugin element its
    /// library's `create`.
    pub fn instantiate(&self, props: &Props) -> Result<ElementImpl, crate::element::ElementError> {
        match crate::plugin::instantiate(self, props) {
            Some(built) => built,
            None => (self.build)(props),
        }
    }

    /// Whether `name` is this factory's name or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// Every factory: the built-in ones in listing order, then the plugins' (see
/// [`crate::plugin`]).
pub fn all() -> impl Iterator<Item = &'static Factory> {
    crate::elements::all().chain(crate::plugin::factories())
}

/// The factory called `name` (or aliased so).
/// The typed elements (`typedsrc`, `typed`, `typedsink`) answer too, though `all` leaves them
/// out: they mean something only to a program that builds a typed pipeline.
pub fn find(name: &str) -> Option<&'static Factory> {
    all()
        .chain(crate::typed::FACTORIES.iter().copied())
        .find(|f| f.answers_to(name))
}

/// The candidates closest to `wanted`, best first, for "did you mean" hints.
pub fn suggest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted_lower = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let d = strsim::damerau_levenshtein(&wanted_lower, c);
            let limit = (wanted.len().max(c.len()) / 3).max(2);
            let prefix = c.len() >= 3 && wanted_lower.starts_with(c)
                || wanted_lower.len() >= 3 && c.starts_with(&wanted_lower);
            (d <= limit || prefix).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// GStreamer's element names (see the file's header).
const GST_ELEMENTS: &str = include_str!("gst_elements.txt");

/// GStreamer elements Parallax lacks whose job one of its elements does, and that element.
/// Only these name a replacement: a near spelling of another job would mislead.
const SAME_JOB: &[(&str, &str)] = &[
    ("queue2", "queue"),
    ("multiqueue", "queue"),
    ("fakevideosink", "fakesink"),
    ("fakeaudiosink", "fakesink"),
    ("giosrc", "filesrc"),
    ("giosink", "filesink"),
];

/// Whether `name` is an element of GStreamer (core, base, good or bad plugins).
pub fn is_gst_element(name: &str) -> bool {
    GST_ELEMENTS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l == name)
}

/// The hint for an element name that Parallax does not have: a GStreamer element is said to
/// be one (with the element of Parallax that does the same job, when there is one), anything
/// else gets the nearest spelling or the way to list elements.
pub fn unknown_element_help(wanted: &str) -> String {
    if let Some(f) = features::bringing(wanted).filter(|f| !f.built) {
        return format!(
            "`{wanted}` comes with the `{}` feature, which this build lacks: build with \
             `--features {}`",
            f.name, f.name
        );
    }
    if is_gst_element(wanted) {
        return match SAME_JOB.iter().find(|(gst, _)| *gst == wanted) {
            Some((_, ours)) => format!(
                "`{wanted}` is a GStreamer element Parallax does not have (yet); `{ours}` does the same job"
            ),
            None => format!(
                "`{wanted}` is a GStreamer element Parallax does not have (yet); `parallax-inspect` lists the ones it has"
            ),
        };
    }
    match suggest(wanted, element_names()).first() {
        Some(best) => format!("did you mean `{best}`?"),
        None => "`parallax-inspect` lists every element".to_owned(),
    }
}

/// Names of every element and alias, for suggestions and completions.
pub fn element_names() -> impl Iterator<Item = &'static str> {
    all().flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_templates_match_numbered_pads_only() {
        let t = PadPresence::Request("src_%u");
        assert!(t.matches("src_0") && t.matches("src_12"));
        assert!(!t.matches("src_") && !t.matches("src") && !t.matches("src_x"));
        assert!(PadPresence::Always("src").matches("src"));
        let ts = PadPresence::Request("video_%01x_%04x audio_%01x_%04x");
        assert!(ts.matches("video_0_0041") && ts.matches("audio_0_1fff"));
        assert!(!ts.matches("video_0") && !ts.matches("video_0_") && !ts.matches("audio_0_41g"));
        assert!(!PadPresence::None.matches("src"));
    }

    #[test]
    fn every_template_parses() {
        for f in all() {
            for text in [f.pads.sink_caps, f.pads.src_caps] {
                if let Err(e) = Caps::parse(text) {
                    panic!("{}: template `{text}`: {e} at byte {}", f.name, e.at);
                }
            }
        }
    }

    #[test]
    fn suggest_finds_typos_and_prefixes() {
        let names = ["filesrc", "filesink", "fakesink", "fdsink"];
        assert_eq!(suggest("filesnk", names)[0], "filesink");
        assert_eq!(suggest("flesrc", names)[0], "filesrc");
        assert!(suggest("zzzzzzzz", names).is_empty());
    }

    #[test]
    fn gst_elements_we_lack_are_named_as_such() {
        let help = unknown_element_help("appsink");
        assert!(
            help.contains("GStreamer element Parallax does not have"),
            "{help}"
        );
        assert!(!help.contains("tcpsink"), "{help}");
        assert!(unknown_element_help("queue2").contains("`queue` does the same job"));
        assert!(!unknown_element_help("multifilesink").contains("multiudpsink"));
        assert_eq!(unknown_element_help("filesnk"), "did you mean `filesink`?");
        for (gst, ours) in SAME_JOB {
            assert!(is_gst_element(gst), "{gst}");
            assert!(find(ours).is_some(), "{ours}");
        }
    }
}
