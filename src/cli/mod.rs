//! The command lines of both binaries (clap derive). Man pages and completions are generated
//! from these same definitions, so the doc comments here are the user documentation.

use clap::{Parser, ValueEnum};

pub mod control;
pub mod logs;
pub mod metrics;
pub mod progress;
pub mod verbose;

/// The help heading of gst-launch's own `--gst-*` options.
const GST_OPTIONS: &str = "GStreamer options (gst-launch compatibility)";

impl LaunchArgs {
    /// The log filter the flags ask for: `--gst-debug-level`, `--gst-debug` and `-d`
    /// together, in that order (later directives are more specific), with the flag to name in
    /// an error.
    pub fn log_flags(&self) -> Option<(&'static str, String)> {
        let given: Vec<(&'static str, &str)> = [
            ("--gst-debug-level", self.gst_debug_level.as_deref()),
            ("--gst-debug", self.gst_debug.as_deref()),
            ("-d", self.debug.as_deref()),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.map(|v| (flag, v)))
        .collect();
        let (flag, _) = *given.last()?;
        let spec = given.iter().map(|(_, v)| *v).collect::<Vec<_>>().join(",");
        Some((flag, spec))
    }

    /// Whether log lines may be coloured (`None`: when stderr is a terminal).
    pub fn log_colour(&self) -> Option<bool> {
        if self.gst_debug_no_color {
            return Some(false);
        }
        match self.gst_debug_color_mode.as_deref() {
            Some("off" | "disable") => Some(false),
            Some("on") => Some(true),
            _ => None,
        }
    }

    /// gst-launch options that are accepted with no effect here, each with why (`-v` prints
    /// them as notes).
    pub fn ignored_gst_options(&self) -> Vec<(&'static str, &'static str)> {
        const NO_PLUGINS: &str = "parallax loads no plugins";
        const NO_REGISTRY: &str = "parallax has no plugin registry";
        [
            (
                self.gst_fatal_warnings,
                "--gst-fatal-warnings",
                "warnings are never fatal here",
            ),
            (self.gst_plugin_spew, "--gst-plugin-spew", NO_PLUGINS),
            (
                self.gst_plugin_path.is_some(),
                "--gst-plugin-path",
                NO_PLUGINS,
            ),
            (
                self.gst_plugin_load.is_some(),
                "--gst-plugin-load",
                NO_PLUGINS,
            ),
            (
                self.gst_disable_segtrap,
                "--gst-disable-segtrap",
                NO_PLUGINS,
            ),
            (
                self.gst_disable_registry_update,
                "--gst-disable-registry-update",
                NO_REGISTRY,
            ),
            (
                self.gst_disable_registry_fork,
                "--gst-disable-registry-fork",
                NO_REGISTRY,
            ),
            (
                self.force_position,
                "--force-position",
                "the progress line goes to stderr, and only on a terminal",
            ),
            (self.tags, "-t", "parallax streams carry no tags"),
            (self.toc, "-c", "parallax streams carry no TOC"),
            (self.index, "-i", "parallax streams carry no index"),
            (self.no_fault, "-f", "parallax installs no fault handler"),
        ]
        .into_iter()
        .filter(|(set, _, _)| *set)
        .map(|(_, flag, why)| (flag, why))
        .collect()
    }
}

/// gst-launch reads its options anywhere in argv (GOption), so `... ! fakesink -e` and a `-v`
/// at the end work there; clap stops at the pipeline. This moves every word after the
/// pipeline's first one that is one of `command`'s options (with its value, when that is the
/// next word) in front of the pipeline. Words that are not options (`-1`, `!`) stay where they
/// are, and nothing after `--` moves. `cmd` is built ([`clap::Command::build`]) by the caller,
/// which then parses with it: building the command is most of what start-up costs in clap.
pub fn options_first(
    cmd: &clap::Command,
    args: Vec<std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let takes_next = |a: &clap::Arg| {
        a.get_action().takes_values()
            && !a.is_require_equals_set()
            && a.get_num_args().is_none_or(|n| n.min_values() > 0)
    };
    // For an option word: whether its value is the next word; None when it is no option.
    let option = |w: &str| -> Option<bool> {
        if let Some(long) = w.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            let arg = cmd.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            });
            // An unknown --word moves too, so that clap names it as an unknown option.
            return Some(arg.is_some_and(|a| !value && takes_next(a)));
        }
        let shorts = w.strip_prefix('-')?;
        for (i, c) in shorts.char_indices() {
            let arg = cmd.get_arguments().find(|a| a.get_short() == Some(c))?;
            if arg.get_action().takes_values() {
                // The rest of the word is its value, or else the next word is.
                return Some(i + c.len_utf8() == shorts.len() && takes_next(arg));
            }
        }
        (!shorts.is_empty()).then_some(false)
    };
    let mut out = Vec::with_capacity(args.len());
    let mut pipeline = Vec::new();
    let mut words = args.into_iter();
    out.extend(words.next());
    while let Some(word) = words.next() {
        let text = word.to_str().unwrap_or("");
        if text == "--" {
            out.push(word);
            out.append(&mut pipeline);
            out.extend(words);
            return out;
        }
        match option(text) {
            Some(needs_next) => {
                out.push(word);
                if needs_next {
                    out.extend(words.next());
                }
            }
            None => pipeline.push(word),
        }
    }
    out.append(&mut pipeline);
    out
}

/// How to print statistics on exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// An aligned table on stderr.
    Table,
    /// One JSON object on one line of stderr.
    Json,
    /// Nothing.
    None,
}

/// How `--graph` writes the pipeline graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// One JSON object (schema 1).
    Json,
}

/// What backs the sources' buffer pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MemoryArg {
    /// Sealed memfd shared memory: any buffer can cross into another process without a copy.
    Memfd,
    /// Private anonymous memory.
    Heap,
    /// Sealed memfd on 2 MiB huge pages (fewer TLB misses with large buffers); falls back to
    /// memfd with one warning when no huge pages are reserved (sysctl vm.nr_hugepages).
    Hugepages,
}

/// How the planner places elements left at `exec=auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedulingArg {
    /// From each element's hints: untrusted code isolated, RT-safe low-latency elements on rt
    /// threads, network I/O async, everything else fused into its neighbour's thread.
    Auto,
    /// Fused wherever possible: only untrusted code and async-only elements move.
    Fused,
    /// Every source, sink and one-in-one-out element in a sandboxable worker process of its own.
    Isolated,
    /// Every source and one-in-one-out element on an rt thread of its own.
    Rt,
}

impl From<SchedulingArg> for crate::registry::Scheduling {
    fn from(arg: SchedulingArg) -> Self {
        use crate::registry::Scheduling;
        match arg {
            SchedulingArg::Auto => Scheduling::Auto,
            SchedulingArg::Fused => Scheduling::Fused,
            SchedulingArg::Isolated => Scheduling::Isolated,
            SchedulingArg::Rt => Scheduling::Rt,
        }
    }
}

/// How `--tap` prints buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TapFormatArg {
    /// A line per buffer (size and metadata), then its first bytes as a hex dump.
    Text,
    /// One JSON object per buffer, one per line.
    Json,
}

/// Build and run a pipeline, gst-launch-1.0 style.
///
/// The pipeline is written as in gst-launch-1.0: elements with key=value properties, linked by
/// `!`; `name=` names an element and `name.` (or `name.pad`) refers back to it; caps such as
/// `video/x-raw,width=320` may sit between links. It may be given as separate words or as one
/// quoted word.
///
/// Exit status: 0 at end of stream (also after Ctrl-C with -e), 1 on a runtime error, 2 on a
/// usage or pipeline-description error, 130 when interrupted without -e.
///
/// SIGHUP reloads the plugins whose library file was replaced, between two buffers; a new
/// version that cannot be loaded leaves the running one with a warning. With no plugin
/// installed, SIGHUP is ignored.
#[derive(Debug, Parser)]
#[command(name = "parallax-launch", version, about, long_about)]
#[command(
    after_help = "Examples:\n  parallax-launch filesrc location=in.bin ! filesink location=out.bin\n  parallax-launch fdsrc ! tee name=t ! queue ! fdsink t. ! queue ! filesink location=copy.bin\n  parallax-launch fakesrc num-buffers=1000 sizetype=fixed sizemax=4096 ! fakesink"
)]
pub struct LaunchArgs {
    /// Print nothing but errors (no statistics)
    #[arg(short, long)]
    pub quiet: bool,

    /// Also load plugins from these libraries or directories (colon-separated; searched before
    /// PARALLAX_PLUGIN_PATH and ~/.local/share/parallax/plugins)
    #[arg(long, value_name = "PATHS")]
    pub plugin_path: Vec<String>,

    /// On Ctrl-C, end the stream at the sources and exit 0 once it is written out (the drain
    /// happens without -e too, but then the exit status is 130)
    #[arg(short = 'e', long)]
    pub eos_on_shutdown: bool,

    /// Print the properties set on each element, as gst-launch -v does
    /// (`/pipeline0/filesrc0: location = "in.bin"`), the links, and the thread each element
    /// runs in
    #[arg(short, long)]
    pub verbose: bool,

    /// Print the pipeline's events as they happen: states, each thread started and finished
    /// (end of stream, stopped or its error), element messages, QoS, errors, the end of stream
    /// (warnings are printed either way)
    #[arg(short, long)]
    pub messages: bool,

    /// Output tags (accepted for gst-launch compatibility; parallax streams carry no tags)
    #[arg(short, long)]
    pub tags: bool,

    /// Output TOC (accepted for gst-launch compatibility; parallax streams carry no TOC)
    #[arg(short = 'c', long)]
    pub toc: bool,

    /// Output index (accepted for gst-launch compatibility)
    #[arg(short, long)]
    pub index: bool,

    /// With -v, do not print these properties (comma separated)
    #[arg(short = 'X', long, value_name = "PROPERTY", value_delimiter = ',')]
    pub exclude: Vec<String>,

    /// Do not install a fault handler (accepted for gst-launch compatibility; parallax installs none)
    #[arg(short = 'f', long)]
    pub no_fault: bool,

    /// Do not draw the progress line. It is drawn only when stderr is a terminal and -q is not
    /// given: bytes and buffers into the sinks, rate and elapsed time, and a bar with ETA when
    /// every source knows its size (filesrc)
    #[arg(long)]
    pub no_position: bool,

    /// Show every buffer passing ELEMENT (what leaves it; for a sink, what arrives) or the
    /// link at ELEMENT.PAD: size, metadata and its first 32 bytes as hex, on stderr. Does not
    /// change the data. May be repeated
    #[arg(long, value_name = "ELEMENT[.PAD]")]
    pub tap: Vec<String>,

    /// How --tap prints each buffer
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub tap_format: TapFormatArg,

    /// Log filter, like GST_DEBUG: `info`, `info,filesrc=trace` (an element factory or name
    /// selects that element's log lines), `parallax::exec=debug`; gst's `filesrc:5` and
    /// `*:3` work too. Overrides PARALLAX_LOG. Logs go to stderr
    #[arg(short = 'd', long = "debug", value_name = "FILTER")]
    pub debug: Option<String>,

    /// Statistics on exit: per element buffers, bytes and busy time, per link high-water marks,
    /// wall time and throughput. Printed as a table unless -q; `--stats=json` prints one JSON
    /// object (even with -q)
    #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "table", require_equals = true)]
    pub stats: Option<StatsFormat>,

    /// Write the pipeline graph as Graphviz DOT to FILE (stdout when no FILE is given, which is
    /// refused when a sink writes the pipeline's data there): a node per element, an edge per
    /// link, a cluster per thread; after a run, with buffer counts
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    pub dot: Option<String>,

    /// Write the pipeline graph as JSON to stdout (schema 1): elements with their properties,
    /// pads, domain and thread, links with their negotiated caps, and counts. With --validate,
    /// before anything runs; otherwise after the run, with each element's buffer and byte counts
    #[arg(long, value_enum, value_name = "FORMAT", require_equals = true)]
    pub graph: Option<GraphFormat>,

    /// Listen for commands on a Unix socket at PATH while the pipeline runs (mode 0600, removed
    /// at exit; a path where another process listens is refused, a stale socket replaced). One
    /// JSON object per line in, one JSON line out: {"cmd": "get"|"set", "element": NAME,
    /// "property": NAME, "value": V}, {"cmd": "pause"}, "resume", "eos", "stats", "graph",
    /// "reload" (replaced plugins, as SIGHUP), "subscribe" (events: state, property, warning,
    /// message, eos, error). `parallax-top` shows it live
    #[arg(long, value_name = "PATH")]
    pub control: Option<std::path::PathBuf>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics while the pipeline runs: per
    /// element buffers, bytes, busy time and drops, queue levels, link and pool high-water marks
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,

    /// Parse, validate and plan without running anything (exit 0 when the pipeline would run,
    /// 2 with the error otherwise); with --dot, write the graph. A pipe, device or URL that
    /// feeds typefind, decodebin or a demuxer is read up to what decides its type, as before a
    /// run: stdin is then consumed that far
    #[arg(long)]
    pub validate: bool,

    /// What backs buffer pools
    #[arg(long, value_enum, value_name = "KIND", default_value = "memfd")]
    pub memory: MemoryArg,

    /// Run exec=rt threads with SCHED_FIFO at this priority (1-99; needs CAP_SYS_NICE or an
    /// rtprio limit, otherwise one warning and normal priority)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub rt_priority: Option<u8>,

    /// Buffers held by each channel the planner adds where domains meet (async bridges, exec=rt
    /// hand-overs): more smooths bursts, fewer bounds memory and latency (default 8 to 16)
    #[arg(long, value_name = "N", value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..=65536), |n| n as usize))]
    pub bridge_capacity: Option<usize>,

    /// Where elements left at exec=auto run: from their hints (auto), fused wherever possible,
    /// or each in a worker process (isolated) or on an rt thread (rt) of its own where it can.
    /// exec= on an element wins; untrusted code is isolated in every mode
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub scheduling: SchedulingArg,

    /// Buffers an exec=rt one-in-one-out element takes in per cycle, at most: it wakes for
    /// the first, takes what else is waiting up to N, and processes them as one timed cycle
    /// (fewer wake-ups under load; cycle times under -m and --stats) (default 1)
    #[arg(long, value_name = "N", value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..=4096), |n| n as usize))]
    pub quantum: Option<usize>,

    /// Default log level, gst's numbers: 0 none, 1 error, 2 warning, 3-4 info, 5 debug,
    /// 6-9 trace (as `-d LEVEL`)
    #[arg(long, value_name = "LEVEL", help_heading = GST_OPTIONS)]
    pub gst_debug_level: Option<String>,

    /// Log filter, as GST_DEBUG: `filesrc:5,*:2` (added to -d)
    #[arg(long, value_name = "LIST", help_heading = GST_OPTIONS)]
    pub gst_debug: Option<String>,

    /// Logs without colours
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_debug_no_color: bool,

    /// Log colours: on, off, disable, auto or unix (off and disable: no colours)
    #[arg(long, value_name = "MODE", help_heading = GST_OPTIONS)]
    pub gst_debug_color_mode: Option<String>,

    /// No logs, whatever -d, PARALLAX_LOG or GST_DEBUG say
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_debug_disable: bool,

    /// Explain the log filter (-d, --gst-debug) and exit
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_debug_help: bool,

    /// Print the version and exit
    #[arg(long, action = clap::ArgAction::Version, help_heading = GST_OPTIONS)]
    pub gst_version: (),

    /// Accepted and ignored (no effect here; -v says so)
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_fatal_warnings: bool,

    /// Accepted and ignored: parallax loads no plugins
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_plugin_spew: bool,

    /// Accepted and ignored: parallax loads no plugins
    #[arg(long, value_name = "PATHS", help_heading = GST_OPTIONS)]
    pub gst_plugin_path: Option<String>,

    /// Accepted and ignored: parallax loads no plugins
    #[arg(long, value_name = "PLUGINS", help_heading = GST_OPTIONS)]
    pub gst_plugin_load: Option<String>,

    /// Accepted and ignored: parallax loads no plugins
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_disable_segtrap: bool,

    /// Accepted and ignored: parallax has no plugin registry
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_disable_registry_update: bool,

    /// Accepted and ignored: parallax has no plugin registry
    #[arg(long, help_heading = GST_OPTIONS)]
    pub gst_disable_registry_fork: bool,

    /// Accepted and ignored: the progress line is drawn on stderr, and only on a terminal
    #[arg(long)]
    pub force_position: bool,

    /// Print help (as --help)
    #[arg(long, action = clap::ArgAction::Help, hide = true)]
    pub help_all: (),

    /// Print help (as --help)
    #[arg(long, action = clap::ArgAction::Help, hide = true)]
    pub help_gst: (),

    /// The pipeline description
    #[arg(
        value_name = "PIPELINE",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "gst_debug_help"
    )]
    pub pipeline: Vec<String>,
}

/// Describe the built-in elements, gst-inspect-1.0 style.
///
/// Without an argument, lists every element with its class and summary. With an element name
/// (or alias), prints its card: description, pads, properties with types, defaults and ranges,
/// and execution hints.
///
/// Exit status: 0 on success, 1 when the element does not exist (or, with --exists, is absent),
/// 2 on a usage error.
#[derive(Debug, Parser)]
#[command(
    name = "parallax-inspect",
    version,
    long_version = crate::registry::features::long_version(),
    about,
    long_about
)]
pub struct InspectArgs {
    /// List the optional features (codecs) this binary was built with, and the elements each brings
    #[arg(long)]
    pub features: bool,

    /// Exit 0 if the element exists, 1 if not; print nothing
    #[arg(long)]
    pub exists: bool,

    /// Print JSON instead of text (schema: see README, "parallax-inspect --json")
    #[arg(long)]
    pub json: bool,

    /// Only list elements of these classes (source, sink, filter, flow, routing; comma separated)
    #[arg(
        short = 't',
        long = "types",
        value_name = "CLASS",
        value_delimiter = ','
    )]
    pub types: Vec<String>,

    /// Also load plugins from these libraries or directories (colon-separated; searched before
    /// PARALLAX_PLUGIN_PATH and ~/.local/share/parallax/plugins)
    #[arg(long, value_name = "PATHS")]
    pub plugin_path: Vec<String>,

    /// The element to describe, or a plugin library file (a path with a `/`) to describe
    #[arg(value_name = "ELEMENT")]
    pub element: Option<String>,
}

/// How `parallax-top` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopFormat {
    /// An aligned table, redrawn every interval (once with --once).
    Table,
    /// One JSON object per interval, one per line.
    Json,
}

/// Watch a running pipeline, pw-top style: per element buffers/s, bytes/s, busy %, queue
/// fill, drops, late buffers.
///
/// Connects to the control socket of a `parallax-launch --control=PATH` run and asks it for
/// its live statistics every interval. Rates are over the last interval; busy % is the share
/// of it the element spent in its calls (sampled, as --stats); dropped and late (buffers
/// rendered more than 20 ms after their running time) are totals. Elements of every domain
/// (threads, async tasks, rt threads) count live. Exits 0 when the pipeline ends, 1 when the
/// socket cannot be reached.
#[derive(Debug, Parser)]
#[command(name = "parallax-top", version, about, long_about)]
#[command(
    after_help = "Examples:\n  parallax-launch --control=/tmp/px.sock fakesrc ! queue ! fakesink &\n  parallax-top --control=/tmp/px.sock\n  parallax-top --control=/tmp/px.sock --once --format=json"
)]
pub struct TopArgs {
    /// The control socket of the pipeline (parallax-launch --control=PATH)
    #[arg(long, value_name = "PATH")]
    pub control: std::path::PathBuf,

    /// Print one sample (over one interval) and exit
    #[arg(long)]
    pub once: bool,

    /// Seconds between samples
    #[arg(long, value_name = "SECONDS", default_value = "1")]
    pub interval: f64,

    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "table")]
    pub format: TopFormat,
}
