//! `parallax-launch`: parse, validate, run, report. Owns the exit codes:
//! 0 end of stream (or drained after Ctrl-C with -e), 1 runtime error, 2 usage or description
//! error, 130 interrupted without -e.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use clap::{CommandFactory as _, FromArgMatches as _};
use parallax::cli::progress::{self, ProgressLine};
use parallax::cli::{logs, verbose, LaunchArgs, MemoryArg, StatsFormat, TapFormatArg};
use parallax::element::ElementError;
use parallax::exec::{Console, Ending, Pipeline, RunControl, RunError, RunOptions, TapFormat};
use parallax::memory::Backing;

/// Set while elements run: their panics are reported by the executor, not by the default hook.
static ELEMENTS_RUNNING: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == parallax::exec::WORKER_ARG)
    {
        // Re-executed by an `exec=isolated` element: serve it over fd 3.
        return ExitCode::from(parallax::exec::worker_main() as u8);
    }
    if let Some(code) = parallax::plugin::probe_if_asked() {
        return ExitCode::from(code);
    }
    // Options may follow the pipeline, as gst-launch's do (`... ! fakesink -e`).
    // One command, built once, both to move the options and to parse.
    let mut cmd = LaunchArgs::command();
    cmd.build();
    let argv = parallax::cli::options_first(&cmd, std::env::args_os().collect());
    let args = match cmd
        .try_get_matches_from_mut(argv)
        .and_then(|m| LaunchArgs::from_arg_matches(&m))
    {
        Ok(args) => args,
        Err(e) => e.format(&mut cmd).exit(),
    };
    for p in &args.plugin_path {
        parallax::plugin::add_search_path(p);
    }
    if args.gst_debug_help {
        print!("{}", logs::HELP);
        return ExitCode::SUCCESS;
    }
    // Decided first, so that log lines already step around the line it will draw.
    // Live per element counts, only when a control socket or a metrics endpoint reads them.
    let live = (args.control.is_some() || args.metrics.is_some())
        .then(|| Arc::new(parallax::exec::Progress::with_elements()));
    let mut line = (progress::wanted(args.quiet, args.no_position) && !args.validate).then(|| {
        live.as_ref().map_or_else(ProgressLine::new, |p| {
            ProgressLine::with_progress(Arc::clone(p))
        })
    });
    let console = line
        .as_ref()
        .map_or_else(Console::default, ProgressLine::console);
    let filter = logs::requested(args.log_flags()).filter(|_| !args.gst_debug_disable);
    if let Some((from, filter)) = filter {
        if let Err(e) = logs::init(&filter, console.clone(), args.log_colour()) {
            // Say where the filter came from: a stale environment variable is easy to miss.
            eprintln!("error: {from}: {e}");
            return ExitCode::from(2);
        }
    }
    if args.verbose {
        for (flag, why) in args.ignored_gst_options() {
            console.write(&format!("note: {flag} accepted and ignored: {why}\n"));
        }
    }
    let description = parallax::parse::join_argv(&args.pipeline);
    let pipeline = match Pipeline::parse_with(&description, args.scheduling.into()) {
        Ok(p) => Arc::new(p),
        Err(d) => {
            eprint!("{}", d.render(&description));
            return ExitCode::from(2);
        }
    };
    // Checked before anything is built: nothing is opened or created by the checks. A run
    // refuses to destroy its own input; --validate also looks for what the build would miss.
    let checked = if args.validate {
        parallax::graph::preflight::resources(pipeline.graph())
    } else {
        parallax::graph::preflight::conflicts(pipeline.graph())
    };
    if let Err(d) = checked {
        eprint!("{}", d.render(&description));
        return ExitCode::from(2);
    }
    // Stdout carries the pipeline's data and nothing else: the graph cannot go there too.
    if let (Some("-"), Some(writer), false) = (
        args.dot.as_deref(),
        pipeline.graph().stdout_writer(),
        args.validate,
    ) {
        eprintln!(
            "error: --dot without a file writes the graph to stdout, where {} writes the \
             pipeline's data\n  = help: give it a file: --dot=graph.dot",
            writer.name
        );
        return ExitCode::from(2);
    }
    if let (Some(_), Some(writer)) = (args.graph, pipeline.graph().stdout_writer()) {
        eprintln!(
            "error: --graph=json writes the graph to stdout, where {} writes the pipeline's \
             data\n  = help: use --control=PATH and its `graph` command, or --dot=FILE",
            writer.name
        );
        return ExitCode::from(2);
    }
    if progress::data_on_terminal(pipeline.graph()) {
        line = None;
    }
    let mut taps = Vec::new();
    for spec in &args.tap {
        match parallax::exec::resolve_tap(pipeline.graph(), spec) {
            Ok(t) => taps.extend(t),
            Err(e) => {
                eprintln!("error: {e}");
                if let Some(help) = &e.help {
                    eprintln!("  = help: {help}");
                }
                return ExitCode::from(2);
            }
        }
    }
    if args.verbose {
        let mut text = verbose::properties_and_links(pipeline.graph(), &args.exclude);
        for planned in pipeline.plan_text(args.bridge_capacity, args.quantum) {
            text.push_str(&planned);
            text.push('\n');
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    if args.validate {
        if args.graph.is_some() {
            println!("{}", parallax::graph::json::to_json(pipeline.graph(), None));
        }
        if let Some(target) = &args.dot {
            let dot = parallax::graph::dot::to_dot(pipeline.graph(), None);
            if let Err(e) = write_dot(target, &dot) {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }

    let control = match RunControl::new() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: cannot set up the pipeline: {e}");
            return ExitCode::from(1);
        }
    };
    install_signal_handler(&control, args.quiet, &console);
    install_panic_hook();

    let mut console = console;
    let mut steering = None;
    if let (Some(path), Some(live)) = (&args.control, &live) {
        let shared = parallax::cli::control::Shared::new(
            Arc::clone(&pipeline),
            Arc::clone(&control),
            Arc::clone(live),
            console.clone(),
            args.verbose,
        );
        let events = Arc::clone(&shared);
        console = console.with_events(Arc::new(move |text: &str| events.console_line(text)));
        match parallax::cli::control::ControlSocket::bind(path, Arc::clone(&shared)) {
            Ok(socket) => steering = Some((socket, shared)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // SIGHUP reloads the plugins whose library was replaced, instead of ending the run. With
    // no plugin found there is nothing to reload, and it is only ignored: the reloading thread
    // would cost every start-up a thread for nothing.
    if parallax::plugin::plugins().is_empty() {
        if let Err(e) = parallax::ipc::ignore_hangup() {
            eprintln!("warning: cannot ignore SIGHUP: {e}");
        }
    } else {
        let console = console.clone();
        let quiet = args.quiet;
        let installed = parallax::ipc::on_hangup(move || {
            parallax::cli::control::reload(&console, quiet);
        });
        if let Err(e) = installed {
            eprintln!("warning: SIGHUP cannot reload plugins: {e}");
        }
    }
    if let (Some(addr), Some(live)) = (&args.metrics, &live) {
        match parallax::cli::metrics::serve(
            addr,
            Arc::clone(&pipeline),
            Arc::clone(live),
            Arc::clone(&control),
        ) {
            Ok(local) => {
                if args.verbose {
                    console.write(&format!("metrics: http://{local}/metrics\n"));
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }

    let options = RunOptions {
        backing: match args.memory {
            MemoryArg::Memfd => Backing::Memfd,
            MemoryArg::Heap => Backing::Heap,
            MemoryArg::Hugepages => Backing::HugePages,
        },
        messages: args.messages,
        rt_priority: args.rt_priority,
        bridge_capacity: args.bridge_capacity,
        quantum: args.quantum,
        console: console.clone(),
        taps,
        tap_format: match args.tap_format {
            TapFormatArg::Text => TapFormat::Text,
            TapFormatArg::Json => TapFormat::Json,
        },
        progress: line.as_ref().map(ProgressLine::progress).or(live.clone()),
    };
    if let Some(l) = &mut line {
        if let Err(e) = l.start() {
            eprintln!("warning: no progress line: {e}");
        }
    }
    ELEMENTS_RUNNING.store(true, Ordering::SeqCst);
    let (mut report, failed) = pipeline.run_reported(Arc::clone(&control), &options);
    ELEMENTS_RUNNING.store(false, Ordering::SeqCst);
    if let Some((_, shared)) = &steering {
        match &failed {
            Some(e) => shared.event("error", serde_json::json!({ "error": e.to_string() })),
            None => shared.event("eos", serde_json::json!({})),
        }
        shared.set_state("ended");
        shared.close();
    }
    if let Some(l) = line {
        l.finish();
    }

    if let Some(e) = &failed {
        eprintln!("error: {e}");
        if args.messages {
            eprintln!("pipeline: stopped on error");
        }
    } else if args.messages && report.ending == Ending::Interrupted {
        // The end of stream itself was an event, printed as it happened.
        eprintln!("pipeline: interrupted, drained to the end");
    }
    // A failed run prints its statistics only when they were asked for: a script needs
    // them most then (the error is in the object), a person has the error line.
    let format = match args.stats {
        Some(f) => f,
        None if args.quiet || failed.is_some() => StatsFormat::None,
        None => StatsFormat::Table,
    };
    if format != StatsFormat::None {
        report.measure_rss();
    }
    let text = match format {
        StatsFormat::Table => report.to_table(),
        StatsFormat::Json => report.to_json() + "\n",
        StatsFormat::None => String::new(),
    };
    let _ = std::io::stderr().write_all(text.as_bytes());
    if args.graph.is_some() {
        let counts: Vec<(u64, u64)> = report
            .elements
            .iter()
            .map(|e| (e.buffers, e.bytes))
            .collect();
        println!(
            "{}",
            parallax::graph::json::to_json(pipeline.graph(), Some(&counts))
        );
    }
    if let Some(target) = &args.dot {
        if let Err(e) = dot_after_run(target, &pipeline, &report) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    match (failed, report.ending) {
        (
            Some(RunError::Element {
                source: ElementError::Config(_),
                ..
            }),
            _,
        ) => ExitCode::from(2),
        (Some(_), _) => ExitCode::from(1),
        // An end of stream asked for on the control socket is the run's normal end.
        (None, Ending::Interrupted)
            if !args.eos_on_shutdown && !steering.as_ref().is_some_and(|(_, s)| s.eos_asked()) =>
        {
            ExitCode::from(130)
        }
        (None, _) => ExitCode::SUCCESS,
    }
}

/// First SIGINT/SIGTERM: drain (EOS at the sources). Second: exit now. (SIGHUP, which the
/// handler takes too, is taken over afterwards: it reloads plugins.)
fn install_signal_handler(control: &Arc<RunControl>, quiet: bool, console: &Console) {
    static SIGNALS: AtomicUsize = AtomicUsize::new(0);
    let control = Arc::clone(control);
    let console = console.clone();
    let installed = ctrlc::set_handler(move || {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
            if !quiet {
                console.write("interrupt: ending the stream at the sources; press Ctrl-C again to stop at once\n");
            }
            control.request_drain();
        } else {
            // The one sanctioned immediate exit: the user asked twice.
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: cannot handle Ctrl-C gracefully: {e}");
    }
}

fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !ELEMENTS_RUNNING.load(Ordering::SeqCst) {
            default(info);
        }
    }));
}

/// Writes DOT to `target` (`-` is stdout).
fn write_dot(target: &str, dot: &str) -> Result<(), String> {
    if target == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(dot.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| format!("writing the graph to stdout: {e}"))
    } else {
        std::fs::write(target, format!("{dot}\n"))
            .map_err(|e| format!("writing the graph to {target}: {e}"))
    }
}

/// The graph annotated with what the run counted.
fn dot_after_run(
    target: &str,
    pipeline: &Pipeline,
    report: &parallax::exec::Report,
) -> Result<(), String> {
    use parallax::graph::dot::{LinkCounts, NodeCounts, RunCounts};
    let counts = RunCounts {
        nodes: report
            .elements
            .iter()
            .map(|e| NodeCounts {
                buffers: e.buffers,
                bytes: e.bytes,
                busy_ns: e.busy_ns,
            })
            .collect(),
        // In edge order, as the report lists them.
        links: report
            .links
            .iter()
            .map(|l| LinkCounts {
                buffers: l.buffers,
                bytes: l.bytes,
            })
            .collect(),
    };
    write_dot(
        target,
        &parallax::graph::dot::to_dot(pipeline.graph(), Some(&counts)),
    )
}
