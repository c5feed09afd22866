//! The progress line of `parallax-launch`: drawn with indicatif on stderr, only when stderr is
//! a terminal and neither `-q` nor `--no-position` is given; never on stdout, and not at all
//! when the pipeline writes its data to a stdout that is the same terminal.
//!
//! The segments publish their counts (see `exec::Progress`); a ticker thread reads them every
//! [`TICK`] and updates the line, so the pipeline's threads never draw and never wait for the
//! terminal. With every source's size known (filesrc) it is a bar over the bytes read, with
//! ETA; otherwise a spinner with the bytes and buffers into the sinks.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::exec::{human_bytes, Console, Progress, ProgressSnapshot};
use crate::graph::Graph;

/// How often the ticker reads the counts.
pub const TICK: Duration = Duration::from_millis(100);

/// Whether a progress line should be drawn: stderr is a terminal and nobody asked for quiet.
pub fn wanted(quiet: bool, no_position: bool) -> bool {
    !quiet && !no_position && std::io::stderr().is_terminal()
}

/// Whether the pipeline writes its data to stdout while stdout is a terminal: then the line
/// would be drawn in the middle of that data, so it is left out.
pub fn data_on_terminal(graph: &Graph) -> bool {
    if !std::io::stdout().is_terminal() {
        return false;
    }
    graph.stdout_writer().is_some()
}

/// A progress line and the ticker that feeds it.
pub struct ProgressLine {
    bar: ProgressBar,
    progress: Arc<Progress>,
    shown: Arc<Shown>,
    /// Between start and finish: only then do console lines hide and redraw the line (a
    /// suspend draws the line afterwards, which must not happen before the run or after it).
    active: Arc<AtomicBool>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

/// The counts the `{sinks}` key renders, stored before the position so that one draw shows
/// one consistent snapshot.
#[derive(Default)]
struct Shown {
    buffers: AtomicU64,
    sink_bytes: AtomicU64,
    /// Whether the sink bytes are worth showing beside the bar (they differ from those read).
    sink_bytes_differ: AtomicBool,
}

impl Default for ProgressLine {
    fn default() -> Self {
        ProgressLine::new()
    }
}

impl ProgressLine {
    /// A line on stderr; nothing is drawn before [`ProgressLine::start`].
    pub fn new() -> ProgressLine {
        ProgressLine::with_progress(Arc::new(Progress::new()))
    }

    /// A line drawn from `progress` (shared with a control socket or a metrics endpoint).
    pub fn with_progress(progress: Arc<Progress>) -> ProgressLine {
        let shown = Arc::new(Shown::default());
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(style(SPINNER, &shown));
        ProgressLine {
            bar,
            progress,
            shown,
            active: Arc::new(AtomicBool::new(false)),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            ticker: None,
        }
    }

    /// What the engine fills in while it runs.
    pub fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }

    /// A console whose lines (messages, taps, logs) hide the progress line while they print.
    pub fn console(&self) -> Console {
        let (bar, active) = (self.bar.clone(), Arc::clone(&self.active));
        Console::with_around(Arc::new(move |write: &mut dyn FnMut()| {
            if active.load(Ordering::SeqCst) {
                bar.suspend(write);
            } else {
                write();
            }
        }))
    }

    /// Starts the ticker. Fails only if no thread can be started; the run goes on without it.
    pub fn start(&mut self) -> std::io::Result<()> {
        self.bar.reset_elapsed();
        self.active.store(true, Ordering::SeqCst);
        let mut painter = Painter {
            bar: self.bar.clone(),
            shown: Arc::clone(&self.shown),
            shape: Shape::Unknown,
        };
        let (progress, stop) = (Arc::clone(&self.progress), Arc::clone(&self.stop));
        let ticker = std::thread::Builder::new()
            .name("px-progress".into())
            .spawn(move || {
                let (lock, cvar) = &*stop;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    painter.draw(progress.snapshot());
                    stopped = cvar
                        .wait_timeout(stopped, TICK)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            })?;
        self.ticker = Some(ticker);
        Ok(())
    }

    /// Stops the ticker and leaves the final state on screen, on a line of its own.
    pub fn finish(mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        let mut painter = Painter {
            bar: self.bar.clone(),
            shown: Arc::clone(&self.shown),
            shape: Shape::Unknown,
        };
        painter.draw(self.progress.snapshot());
        self.bar.finish();
        let was_active = self.active.swap(false, Ordering::SeqCst);
        if was_active && !self.bar.is_hidden() {
            // indicatif leaves the cursor after the last line; what follows starts below it.
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}

/// Which style the line has been given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Unknown,
    Spinner,
    Bar,
}

struct Painter {
    bar: ProgressBar,
    shown: Arc<Shown>,
    shape: Shape,
}

/// `template` with the `{sinks}` key reading `shown`.
fn style(template: &str, shown: &Arc<Shown>) -> ProgressStyle {
    let shown = Arc::clone(shown);
    ProgressStyle::with_template(template)
        .expect("the progress templates are valid")
        .with_key(
            "sinks",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let n = shown.buffers.load(Ordering::Relaxed);
                let _ = std::fmt::Write::write_fmt(
                    w,
                    format_args!("{n} buffer{}", if n == 1 { "" } else { "s" }),
                );
                if shown.sink_bytes_differ.load(Ordering::Relaxed) {
                    let bytes = shown.sink_bytes.load(Ordering::Relaxed) as f64;
                    let _ = std::fmt::Write::write_fmt(
                        w,
                        format_args!(" ({} into sinks)", human_bytes(bytes)),
                    );
                }
            },
        )
        .progress_chars("=> ")
}

impl Painter {
    fn style(&self, template: &str) -> ProgressStyle {
        style(template, &self.shown)
    }

    fn draw(&mut self, s: ProgressSnapshot) {
        if !s.planned {
            return;
        }
        // Style and length first: setting them draws, and the counts are not stored yet.
        match s.total_bytes {
            Some(total) if self.shape != Shape::Bar => {
                self.bar.set_style(self.style(BAR));
                self.bar.set_length(total);
                self.shape = Shape::Bar;
            }
            None if self.shape != Shape::Spinner => {
                self.bar.set_style(self.style(SPINNER));
                self.shape = Shape::Spinner;
            }
            _ => {}
        }
        self.shown.buffers.store(s.sink_buffers, Ordering::Relaxed);
        self.shown.sink_bytes.store(s.sink_bytes, Ordering::Relaxed);
        match s.total_bytes {
            Some(total) => {
                self.shown
                    .sink_bytes_differ
                    .store(s.sink_bytes != s.source_bytes, Ordering::Relaxed);
                self.bar.set_position(s.source_bytes.min(total));
            }
            None => {
                self.bar.set_position(s.sink_bytes);
                self.bar.tick();
            }
        }
    }
}

/// Sources of unknown size: bytes and buffers into the sinks, rate, elapsed.
const SPINNER: &str =
    "{spinner} {elapsed_precise} {binary_bytes} into sinks, {sinks}, {binary_bytes_per_sec}";
/// Every source's size known: the bar over the bytes read, rate, ETA, buffers into the sinks.
const BAR: &str = "{elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {percent}% \
                   {binary_bytes_per_sec} ETA {eta}, {sinks}";
