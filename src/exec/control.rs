//! [`RunControl`]: the flags every thread of a running pipeline watches, the wake-up fd that
//! lets a source blocked on a pipe or socket notice them, and the watch channel that wakes the
//! tasks of the async domain.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use super::RunError;
use crate::element::ElementError;

thread_local! {
    /// Whether this thread runs a source (it parks when the run pauses).
    static SOURCE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether this thread waited (the clock, room in a queue, a free buffer, input on a file
    /// descriptor) since its segment last published its counts.
    static WAITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that the calling thread is about to wait, or waits: its segment publishes its live
/// counts at the next buffer rather than at the next sampled one, so that a watcher sees a
/// stream that waits on every buffer (one paced by the clock, or read from a pipe) exactly.
fn note_wait() {
    WAITED.with(|w| w.set(true));
}

/// Whether the calling thread waited since the last call (see [`note_wait`]).
pub(crate) fn take_waited() -> bool {
    WAITED.with(|w| w.replace(false))
}

/// Marks the calling thread as a source's: a wait on the clock there parks when the run pauses
/// (the element waiting is between two buffers of the source, as a parked source is).
pub(crate) fn mark_source_thread() {
    SOURCE_THREAD.with(|s| s.set(true));
}

/// Shared by every segment thread and the signal handler.
#[derive(Debug)]
pub struct RunControl {
    /// Sources end their stream at the next buffer (Ctrl-C: drain).
    pub(crate) draining: AtomicBool,
    /// Everything stops now (an error happened).
    pub(crate) stopping: AtomicBool,
    /// Readable once draining or stopping is set; never reset.
    wake: OwnedFd,
    /// Bumped after every change of the flags; async tasks await it instead of polling.
    changed: tokio::sync::watch::Sender<()>,
    first_error: Mutex<Option<RunError>>,
    /// Sources hold still at their next buffer while set (a paused session).
    paused: AtomicBool,
    /// (sources parked, sources that may still produce), under one lock for `pause`.
    parking: Mutex<(usize, usize)>,
    parked_changed: std::sync::Condvar,
    /// Cycle-time distributions of rt elements, as they finish.
    cycles: Mutex<Vec<super::CycleReport>>,
    /// When the pipeline started running: the base time, zero of every `do-timestamp` pts and
    /// of every `sync=true` sink's running time.
    started: std::sync::OnceLock<std::time::Instant>,
    /// The clock's pauses: since when it is stopped (paused now), and how long it stood still
    /// before. Running time is monotonic and does not move while paused, as in gst's PAUSED.
    pauses: Mutex<(Option<std::time::Instant>, std::time::Duration)>,
    /// What the run says about itself, for whoever subscribed.
    events: super::events::Events,
    /// The elements' names, by graph index: whom an element's warnings and messages name.
    names: std::sync::OnceLock<std::sync::Arc<Vec<String>>>,
}

impl RunControl {
    /// A fresh control block.
    pub fn new() -> std::io::Result<RunControl> {
        Ok(RunControl {
            draining: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            wake: rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
            changed: tokio::sync::watch::Sender::new(()),
            first_error: Mutex::new(None),
            paused: AtomicBool::new(false),
            parking: Mutex::new((0, 0)),
            parked_changed: std::sync::Condvar::new(),
            cycles: Mutex::new(Vec::new()),
            started: std::sync::OnceLock::new(),
            pauses: Mutex::new((None, std::time::Duration::ZERO)),
            events: super::events::Events::new(),
            names: std::sync::OnceLock::new(),
        })
    }

    /// The same control block publishing to `events` (a session keeps one broadcast across
    /// its runs).
    pub fn with_events(mut self, events: super::events::Events) -> RunControl {
        self.events = events;
        self
    }

    /// The run's events: subscribe to get them as they happen.
    pub fn events(&self) -> &super::events::Events {
        &self.events
    }

    /// Names the elements, by graph index, for what they publish (the first call counts).
    pub(crate) fn set_names(&self, names: std::sync::Arc<Vec<String>>) {
        let _ = self.names.set(names);
    }

    /// Marks the start of the run (the first call counts).
    pub(crate) fn mark_started(&self, at: std::time::Instant) {
        let _ = self.started.set(at);
    }

    /// Nanoseconds since the run started (0 before): one clock for every source's
    /// `do-timestamp`, sync or async.
    pub(crate) fn running_time_ns(&self) -> u64 {
        let Some(base) = self.started.get() else {
            return 0;
        };
        let pauses = self.pauses.lock().unwrap_or_else(|p| p.into_inner());
        // While paused the clock reads the moment it stopped.
        let now = pauses.0.unwrap_or_else(std::time::Instant::now);
        let ran = now
            .saturating_duration_since(*base)
            .saturating_sub(pauses.1);
        ran.as_nanos() as u64
    }

    /// Waits until the running time reaches `target_ns` (a `sync=true` sink's buffer time), or
    /// the run stops. Returns how late the buffer came, in ns: 0 when it was waited for (how
    /// long the last nap overslept is the scheduler's, not the stream's).
    pub(crate) fn wait_running_time(&self, target_ns: u64) -> u64 {
        let mut waited = false;
        loop {
            let now = self.running_time_ns();
            if now >= target_ns {
                return if waited { 0 } else { now - target_ns };
            }
            waited = true;
            if self.is_stopping() {
                return 0;
            }
            if self.hold_if_paused() {
                // The clock stood still: a source's thread waiting on it (a live source, or a
                // sync=true sink fused with its source) held still as a parked source does.
                continue;
            }
            // Short naps, so that a pause (the clock stops) and a stop are seen quickly.
            let left = std::time::Duration::from_nanos(target_ns - now);
            std::thread::sleep(left.min(std::time::Duration::from_millis(20)));
        }
    }

    fn stop_clock(&self) {
        let mut pauses = self.pauses.lock().unwrap_or_else(|p| p.into_inner());
        if pauses.0.is_none() {
            pauses.0 = Some(std::time::Instant::now());
        }
    }

    fn start_clock(&self) {
        let mut pauses = self.pauses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(since) = pauses.0.take() {
            pauses.1 += since.elapsed();
        }
    }

    fn parking(&self) -> std::sync::MutexGuard<'_, (usize, usize)> {
        self.parking.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An rt element's cycle times, for the report.
    pub(crate) fn record_cycles(&self, report: super::CycleReport) {
        self.cycles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(report);
    }

    /// Every rt element's cycle times recorded so far, by element name.
    pub(crate) fn take_cycles(&self) -> Vec<super::CycleReport> {
        let mut all = std::mem::take(&mut *self.cycles.lock().unwrap_or_else(|p| p.into_inner()));
        all.sort_by(|a, b| a.element.cmp(&b.element));
        all
    }

    /// How many sources the run has (set when it starts).
    pub(crate) fn count_sources(&self, n: usize) {
        self.parking().1 = n;
    }

    /// A source finished its stream: it will never park again.
    pub(crate) fn source_done(&self) {
        let mut p = self.parking();
        p.1 = p.1.saturating_sub(1);
        self.parked_changed.notify_all();
    }

    /// Whether sources are asked to hold still.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Called by a source between buffers while paused: waits until resumed or stopped.
    pub(crate) fn park(&self) {
        let mut p = self.parking();
        p.0 += 1;
        self.parked_changed.notify_all();
        while self.is_paused() && !self.is_stopping() && !self.drain_requested() {
            p = self
                .parked_changed
                .wait_timeout(p, std::time::Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        p.0 -= 1;
    }

    /// Parks the calling thread while the run is paused, when it is a source's thread waiting
    /// for something that a pause holds back (the clock, room in a queue whose reader waits on
    /// the clock, a free buffer): it is between two buffers, as a parked source is. True when
    /// it parked.
    /// Every such wait comes here first, on each round: it also notes the wait for the live
    /// counts (see [`take_waited`]).
    pub(crate) fn hold_if_paused(&self) -> bool {
        note_wait();
        if self.is_paused() && SOURCE_THREAD.with(std::cell::Cell::get) {
            self.park();
            true
        } else {
            false
        }
    }

    /// Asks every source to hold still at its next buffer, and waits until all of them do (or
    /// finished) — at most `timeout`. False when a source did not get there in time (it may be
    /// blocked reading; it parks when its read returns).
    pub fn pause(&self, timeout: std::time::Duration) -> bool {
        self.paused.store(true, Ordering::SeqCst);
        self.stop_clock();
        let deadline = std::time::Instant::now() + timeout;
        let mut p = self.parking();
        while p.0 < p.1 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            p = self
                .parked_changed
                .wait_timeout(p, left.min(std::time::Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Lets paused sources go on.
    pub fn resume(&self) {
        self.start_clock();
        self.paused.store(false, Ordering::SeqCst);
        let _p = self.parking();
        self.parked_changed.notify_all();
    }

    /// Asks every source to end its stream; what was read is still written (Ctrl-C).
    pub fn request_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether a drain was requested.
    pub fn drain_requested(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Records `err` if it is the first, and stops everything.
    pub(crate) fn fail(&self, err: RunError) {
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            if self.events.is_subscribed() {
                let (element, message) = match &err {
                    RunError::Element { element, source } => {
                        (Some(element.clone()), source.to_string())
                    }
                    RunError::Panic { element, message } => (
                        Some(element.clone()),
                        format!("element panicked: {message}"),
                    ),
                    RunError::Setup(m) => (None, format!("cannot start the pipeline: {m}")),
                };
                self.events
                    .publish(super::events::Event::Error { element, message });
            }
            *slot = Some(err);
        }
        drop(slot);
        self.stopping.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub(crate) fn take_error(&self) -> Option<RunError> {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Whether sources should end their streams: a drain (Ctrl-C) or a stop.
    pub(crate) fn ends_streams(&self) -> bool {
        self.draining.load(Ordering::Relaxed) || self.is_stopping()
    }

    fn wake(&self) {
        // A full counter (EAGAIN) is still readable, which is all that matters.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        self.changed.send_replace(());
    }

    /// Returns once sources should end their stream: a drain was requested or the pipeline
    /// is stopping. Cancel-safe.
    pub(crate) async fn drain_or_stop(&self) {
        self.until(|c| c.drain_requested() || c.is_stopping()).await;
    }

    /// Returns once the pipeline is stopping on an error. Cancel-safe.
    pub(crate) async fn stop(&self) {
        self.until(RunControl::is_stopping).await;
    }

    async fn until(&self, done: impl Fn(&RunControl) -> bool) {
        // Subscribed before the check: a change between the check and the await is not lost.
        let mut changes = self.changed.subscribe();
        while !done(self) {
            if changes.changed().await.is_err() {
                // The sender lives as long as `self`; never reached.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until `fd` is readable (`Ok(true)`) or the pipeline asks sources to stop
    /// (`Ok(false)`).
    pub(crate) fn wait_readable(&self, fd: BorrowedFd<'_>) -> Result<bool, ElementError> {
        note_wait();
        loop {
            if self.ends_streams() {
                return Ok(false);
            }
            let mut fds = [
                PollFd::new(&fd, PollFlags::IN),
                PollFd::new(&self.wake, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {
                    if !fds[1].revents().is_empty() {
                        return Ok(false);
                    }
                    return Ok(true);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ElementError::io("waiting for input", e.into())),
            }
        }
    }
}

impl crate::element::RunState for RunControl {
    fn ends_streams(&self) -> bool {
        RunControl::ends_streams(self)
    }

    fn is_stopping(&self) -> bool {
        RunControl::is_stopping(self)
    }

    fn running_time_ns(&self) -> u64 {
        RunControl::running_time_ns(self)
    }

    fn hold_while_paused(&self) -> bool {
        self.hold_if_paused();
        false
    }

    fn wait_running_time(&self, target_ns: u64) -> u64 {
        RunControl::wait_running_time(self, target_ns)
    }

    fn wait_readable(&self, fd: BorrowedFd<'_>) -> Result<bool, ElementError> {
        RunControl::wait_readable(self, fd)
    }

    fn drain_or_stop(&self) -> crate::element::BoxFuture<'_, ()> {
        Box::pin(RunControl::drain_or_stop(self))
    }

    fn events(&self) -> Option<&super::events::Events> {
        Some(&self.events)
    }

    fn element_name(&self, el: usize) -> Option<&str> {
        self.names.get()?.get(el).map(String::as_str)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
