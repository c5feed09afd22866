//! The isolated domain: an element with `exec=isolated` runs in a child process — this same
//! binary re-executed as a worker (`--parallax-worker`) — joined by a SOCK_SEQPACKET socketpair.
//!
//! In the parent the element is replaced by a proxy of the same kind (source, transform or sink).
//! Buffers cross as `IpcRef`s into shared arenas whose memfds travel once by SCM_RIGHTS; frames
//! are rkyv ([`crate::ipc::Frame`]). A buffer the worker passes on unchanged comes back as the
//! same memory (the parent adopts the reference); a buffer the worker makes lives in the worker's
//! own arena, which the parent maps. No payload byte is copied either way, except buffers that
//! are not in shared memory to begin with (a mapped file window, heap bytes), which the proxy
//! copies once into an arena of its own and counts.
//!
//! Faults: a worker that dies (crash, `kill -9`) ends the pipeline with an error naming the
//! element, the pid and the signal; everything it held is reclaimed (the exporter's drop), and it
//! is reaped. Malformed frames are an error and the worker is killed. The worker dies with its
//! parent (PR_SET_PDEATHSIG).

use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::element::Ctx;
use crate::element::{ElementError, ElementImpl, Flow, PoolRequest, Sink, SinkFlow, Source};
use crate::graph::Node;
use crate::ipc::{
    map_announced_arena, recv_frame, send_buffer, send_frame, seqpacket_pair, spawn_worker,
    spin_until_readable, Frame, FrameError, WireMeta, PROTOCOL, SPIN_BEFORE_BLOCKING,
};
use crate::memory::{
    Buffer, Exporter, FieldLimits, IpcRef, MemoryPool, Metadata, PeerAccess, PoolConfig,
    SharedArenaCache,
};
use crate::registry::{Exec, PadPresence, Trust};

use super::RunControl;

/// The hidden first argument that makes `parallax-launch` a worker.
pub const WORKER_ARG: &str = "--parallax-worker";
/// The argument after [`WORKER_ARG`] that tells a worker to enter the seccomp sandbox once its
/// element is built (elements that are not trusted).
const SANDBOX_ARG: &str = "--sandbox";
/// The argument that tells a worker it has a release socket (fd 4): it is lent read-only
/// arenas and says on it which buffers it is done with. Said, not probed: fd 4 may be
/// anything the user's shell left open.
const RELEASES_ARG: &str = "--releases";

/// Buffers through one worker, for the `-m` summary: counters each half bumps without a lock,
/// and round-trip timings, kept (under a lock) only when `-m` asks for them.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    same_memory_back: AtomicU64,
    from_worker_arena: AtomicU64,
    copied: AtomicU64,
    timings: Mutex<Timings>,
}

/// Send-to-answer times of one worker.
#[derive(Debug, Default)]
struct Timings {
    /// When each buffer still in the worker was sent (answers come back in order).
    in_flight: std::collections::VecDeque<std::time::Instant>,
    /// Send-to-answer times, in nanoseconds (the first million).
    round_trips: Vec<u64>,
}

impl Counts {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Timings {
    fn answered(&mut self) {
        if let Some(sent) = self.in_flight.pop_front() {
            if self.round_trips.len() < 1 << 20 {
                self.round_trips.push(sent.elapsed().as_nanos() as u64);
            }
        }
    }

    fn round_trip_summary(&mut self) -> String {
        if self.round_trips.is_empty() {
            return String::new();
        }
        self.round_trips.sort_unstable();
        let at = |q: f64| {
            self.round_trips[((self.round_trips.len() - 1) as f64 * q) as usize] as f64 / 1000.0
        };
        format!(
            "; there and back: median {:.1} µs, p99 {:.1} µs",
            at(0.5),
            at(0.99)
        )
    }
}

/// What a worker is started from: taken from the element's node once, and kept by a plugin
/// element's proxy so that a reload starts its new worker the same way.
#[derive(Clone)]
struct WorkerSpec {
    name: String,
    trust: Trust,
    /// Sockets the element listens at (see [`Link::sockets`]).
    sockets: Vec<std::path::PathBuf>,
    /// The frame that tells the worker what to build.
    start: Frame,
    /// A plugin element's library.
    library: Option<std::path::PathBuf>,
    /// A plugin transform's `processing-deadline`.
    deadline: Option<std::time::Duration>,
}

impl WorkerSpec {
    fn of(node: &Node) -> WorkerSpec {
        let sockets = node
            .props
            .explicit()
            .filter(|(spec, _)| spec.role == crate::registry::Role::ListensAt)
            .filter_map(|(_, value)| match value {
                crate::registry::Value::Str(Some(path)) => Some(path.into()),
                _ => None,
            })
            .collect();
        WorkerSpec {
            name: node.name.clone(),
            trust: node.trust,
            sockets,
            start: Frame::Start {
                factory: node.factory.name.to_owned(),
                name: node.name.clone(),
                props: node.written.clone(),
                caps: (
                    node.props.sink_caps().to_string(),
                    node.props.src_caps().to_string(),
                ),
            },
            library: crate::plugin::library_of(node.factory),
            deadline: crate::plugin::processing_deadline(node.factory, &node.props)
                .filter(|_| node.factory.pads.src != PadPresence::None),
        }
    }
}

/// The watchdog of a plugin element's worker (`processing-deadline`): when the worker holds a
/// buffer it has not answered and has said nothing for longer than the deadline, it is killed
/// and the run ends with an error naming the buffer.
///
/// Every buffer a transform is given is answered by at least one frame (its outputs, or
/// "nothing"), in order. Each answer frame retires the oldest buffer still held, so the count
/// held never exceeds the truth: the watchdog never fires on a worker that is idle. It is exact
/// for elements that output at most one buffer per input (every plugin example); one that
/// outputs several while more input waits may retire a buffer early.
struct Watch {
    deadline: std::time::Duration,
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    /// When each buffer still held by the worker was sent.
    held: std::collections::VecDeque<std::time::Instant>,
    /// Buffers retired so far: the held one the worker is on is number `retired + 1`.
    retired: u64,
    /// When the worker last answered.
    last_answer: Option<std::time::Instant>,
    /// The watchdog killed the worker: why, for the error the run ends with.
    overdue: Option<String>,
}

impl Watch {
    fn sent(&self) {
        Link::lock(&self.state)
            .held
            .push_back(std::time::Instant::now());
    }

    fn answered(&self) {
        let mut state = Link::lock(&self.state);
        let now = std::time::Instant::now();
        state.last_answer = Some(now);
        if state.held.pop_front().is_some() {
            state.retired += 1;
        }
    }

    /// The buffer number (from 1) the worker has been on for longer than the deadline.
    fn overdue(&self) -> Option<u64> {
        let state = Link::lock(&self.state);
        let sent = *state.held.front()?;
        let since = state.last_answer.map_or(sent, |a| a.max(sent));
        (since.elapsed() > self.deadline).then_some(state.retired + 1)
    }
}

/// The watchdog's thread: checks the worker of `link` a few times per deadline and kills it
/// once it is overdue. Ends when the link goes or is done.
fn run_watchdog(link: &std::sync::Weak<Link>, every: std::time::Duration) {
    loop {
        std::thread::sleep(every);
        let Some(link) = link.upgrade() else { return };
        if link.done.load(Ordering::SeqCst) {
            return;
        }
        let Some(watch) = &link.watch else { return };
        let Some(buffer) = watch.overdue() else {
            continue;
        };
        let why = format!(
            "process did not return within {} on buffer {buffer} (processing-deadline); \
             worker process {} was killed",
            crate::registry::format_time(watch.deadline.as_nanos() as i64),
            link.pid
        );
        tracing::error!(element = %link.name, buffer, "A plugin's process is overdue");
        Link::lock(&watch.state).overdue = Some(why);
        // Through `Child`, so a worker already reaped (its pid perhaps reused) is not signalled.
        let _ = Link::lock(&link.child).kill();
        return;
    }
}

/// The parent's side of one worker, shared by the proxy halves (an isolated transform is a
/// segment boundary: one half sends from the upstream thread, the other receives on its own).
struct Link {
    name: String,
    /// Sockets the element listens at: removed here once the worker is gone, for a sandboxed
    /// worker may not remove files.
    sockets: Vec<std::path::PathBuf>,
    sock: OwnedFd,
    pid: u32,
    /// Shared with the release thread, which may have to stop the worker.
    child: Arc<Mutex<Child>>,
    /// Shared with the release thread of a worker that maps its arenas read-only.
    exporter: Arc<Mutex<Exporter>>,
    /// Set by the release thread when it stopped the worker for sending garbage.
    cut_off: Arc<CutOff>,
    counts: Counts,
    /// Where its messages go; `None` when nobody listened as it started (round trips are
    /// then not timed).
    messages: Option<super::events::Events>,
    done: AtomicBool,
    /// The worker was told of a drain (once is enough).
    drain_asked: AtomicBool,
    /// The error the worker reported, once one of the halves read it: it wins over the exit
    /// status that it causes, whichever half sees the worker go first.
    said: Mutex<Option<String>>,
    /// Held while a frame is taken off the socket and, if it is the worker's error, recorded,
    /// so that [`Link::lost`] never misses an error another half is reading.
    reading: Mutex<()>,
    /// How the worker may map what it is lent: read-only unless its code is trusted.
    access: PeerAccess,
    /// A plugin element's watchdog.
    watch: Option<Watch>,
}

/// Buffers that are not in shared memory, or not in memory the peer may see (a writable pool
/// for a read-only peer), are copied into this arena (made on first need).
struct Copies {
    pool: Option<MemoryPool>,
    access: PeerAccess,
}

impl Copies {
    fn new(access: PeerAccess) -> Copies {
        Copies { pool: None, access }
    }

    fn shareable(
        &mut self,
        buf: Buffer,
        name: &str,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(Buffer, bool), ElementError> {
        if buf.is_shareable_with(self.access) {
            return Ok((buf, false));
        }
        let need = buf.len().max(4096);
        if self.pool.as_ref().is_none_or(|p| p.slot_size() < need) {
            let config = PoolConfig {
                peers: self.access,
                ..PoolConfig::new(format!("{name}-ipc"), 8, need.next_power_of_two())
            };
            let pool = MemoryPool::new(&config)
                .map_err(|e| ElementError::Failed(format!("arena for the worker: {e}")))?;
            self.pool = Some(pool);
        }
        let Some(pool) = &self.pool else {
            return Err(ElementError::Failed("no arena for the worker".into()));
        };
        let mut slot = pool
            .loan_blocking(cancelled)
            .map_err(|_| ElementError::Interrupted)?;
        slot.as_mut_slice()[..buf.len()].copy_from_slice(buf.data());
        let mut copy = slot.freeze(buf.len());
        copy.meta = buf.meta.clone();
        Ok((copy, true))
    }
}

/// Applies the releases a read-only worker sends until it goes; a release for something it
/// does not hold is rejected and counted by the pool, and anything else stops the worker
/// (its loans are then reclaimed when it goes).
fn apply_releases(
    sock: &OwnedFd,
    exporter: &Mutex<Exporter>,
    child: &Mutex<Child>,
    cut_off: &CutOff,
) {
    let why = loop {
        match recv_frame(sock) {
            Ok(Some((Frame::Release { at }, _))) => {
                let result = Link::lock(exporter).release(&IpcRef::from(at));
                if let Err(e) = result {
                    tracing::warn!(error = %e, "A worker's release was rejected");
                }
            }
            // The worker is gone: the main socket says how.
            Ok(None) | Err(FrameError::Io(_)) => return,
            Ok(Some((other, _))) => break format!("{other:?} on its release socket"),
            Err(malformed) => break format!("{malformed} on its release socket"),
        }
    };
    // Garbage where releases belong: stop the worker; the main socket then sees it go, and
    // the error says why. Through `Child`, so a worker already reaped (its pid perhaps reused)
    // is not signalled.
    *Link::lock(cut_off) = Some(why);
    let _ = Link::lock(child).kill();
}

/// Why the release thread stopped a worker, for the error the run ends with.
type CutOff = Mutex<Option<String>>;

/// An error text from a worker, fit for the terminal: the worker may run untrusted code, so
/// control characters (escape sequences) are shown escaped and the length is bounded.
fn worker_says(message: &str) -> String {
    const MAX: usize = 1024;
    let mut shown = String::with_capacity(message.len().min(MAX));
    for c in message.chars() {
        if shown.len() >= MAX {
            shown.push('…');
            break;
        }
        if c.is_control() && c != '\n' {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// What the worker answered.
enum Reply {
    Buffer(Buffer),
    Nothing,
    Eos,
}

impl Link {
    /// Starts the worker of `spec`; `pools` is how every worker of the run is lent the
    /// sources' pools. `patience`: how long the worker may take to build its element (a
    /// reload's new library may hang in its constructor; at the start of a run the user sees
    /// the wait and can press Ctrl-C).
    fn start(
        spec: &WorkerSpec,
        pools: PeerAccess,
        events: super::events::Events,
        patience: Option<std::time::Duration>,
    ) -> Result<Arc<Link>, ElementError> {
        let messages = events.is_subscribed().then_some(events);
        let io = |what: &str, e: std::io::Error| ElementError::io(what.to_owned(), e);
        let (ours, theirs) = seqpacket_pair().map_err(|e| io("creating the worker socket", e))?;
        // A program embedding the library points this at a binary that calls `worker_main`.
        let exe = match std::env::var_os("PARALLAX_WORKER_EXE") {
            Some(path) => std::path::PathBuf::from(path),
            None => std::env::current_exe().map_err(|e| io("finding this executable", e))?,
        };
        let sandbox = spec.trust != Trust::Trusted;
        // Code that is not trusted maps what it is lent read-only, so it cannot touch the
        // refcounts: it says what it is done with on a socket of its own, which a thread here
        // applies to the ledger (so a source waiting for a free slot is never waiting on us).
        // A trusted worker is lent the run's pools read-only too once any worker is not
        // trusted (`pools`): it needs the release socket as much, or every buffer it drops or
        // consumes stays on loan and the source stops at the pool's size (issue 21).
        let access = if sandbox {
            PeerAccess::ReadOnly
        } else {
            PeerAccess::ReadWrite
        };
        let releases = if sandbox || pools == PeerAccess::ReadOnly {
            Some(seqpacket_pair().map_err(|e| io("creating the worker's release socket", e))?)
        } else {
            None
        };
        let mut args = vec![WORKER_ARG];
        if sandbox {
            args.push(SANDBOX_ARG);
        }
        if releases.is_some() {
            args.push(RELEASES_ARG);
        }
        // A plugin element's worker loads that one library (before its sandbox closes).
        let library_text = spec
            .library
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        if let Some(path) = &library_text {
            args.push(crate::plugin::WORKER_PLUGIN_ARG);
            args.push(path.as_str());
        }
        let (release_rx, release_tx) = releases.unzip();
        let child = spawn_worker(&exe, &args, theirs, release_tx, sandbox)
            .map_err(|e| io("starting a worker process", e))?;
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        let exporter = Arc::new(Mutex::new(Exporter::new()));
        let cut_off = Arc::new(CutOff::default());
        if let Some(sock) = release_rx {
            let (exporter, child, cut_off) = (
                Arc::clone(&exporter),
                Arc::clone(&child),
                Arc::clone(&cut_off),
            );
            std::thread::Builder::new()
                .name(format!("px-rel-{}", spec.name).chars().take(15).collect())
                .spawn(move || apply_releases(&sock, &exporter, &child, &cut_off))
                .map_err(|e| io("starting the worker's release thread", e))?;
        }
        let link = Arc::new(Link {
            name: spec.name.clone(),
            sockets: spec.sockets.clone(),
            sock: ours,
            pid,
            child,
            exporter,
            cut_off,
            counts: Counts::default(),
            messages,
            done: AtomicBool::new(false),
            drain_asked: AtomicBool::new(false),
            said: Mutex::new(None),
            reading: Mutex::new(()),
            access,
            watch: spec.deadline.map(|deadline| Watch {
                deadline,
                state: Mutex::new(WatchState::default()),
            }),
        });
        if let Some(watch) = &link.watch {
            let weak = Arc::downgrade(&link);
            let every = (watch.deadline / 4).clamp(
                std::time::Duration::from_millis(1),
                std::time::Duration::from_millis(50),
            );
            std::thread::Builder::new()
                .name(format!("px-dog-{}", spec.name).chars().take(15).collect())
                .spawn(move || run_watchdog(&weak, every))
                .map_err(|e| io("starting the worker's watchdog", e))?;
        }
        send_frame(&link.sock, &spec.start, &[]).map_err(|_| link.lost())?;
        if let Some(patience) = patience {
            if !link.readable_within(patience) {
                let _ = Link::lock(&link.child).kill();
                return Err(ElementError::Failed(format!(
                    "worker process {} did not build the element within {} s; it was stopped",
                    link.pid,
                    patience.as_secs()
                )));
            }
        }
        match recv_frame(&link.sock) {
            Ok(Some((Frame::Hello { version }, _))) if version == PROTOCOL => {}
            Ok(Some((Frame::Error { message }, _))) => {
                return Err(ElementError::Failed(format!(
                    "in its worker process: {}",
                    worker_says(&message)
                )))
            }
            // The same words and exit code as the element would give fused (issue 21).
            Ok(Some((Frame::Refused { message }, _))) => {
                return Err(ElementError::Config(worker_says(&message)))
            }
            Ok(Some(_)) => return Err(link.bad("an unexpected greeting")),
            Ok(None) => return Err(link.lost()),
            Err(e) => return Err(link.frame_error(e)),
        }
        if let Some(events) = &link.messages {
            events.publish(super::events::Event::Element {
                element: link.name.clone(),
                message: format!("isolated in worker process {}", link.pid),
            });
        }
        Ok(link)
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one buffer to the worker (copied into shared memory first if it is not there).
    /// `answered`: the worker answers this buffer (a transform), so its round trip is timed.
    fn send(
        &self,
        copies: &mut Copies,
        buf: Buffer,
        answered: bool,
        cx: &Ctx<'_>,
    ) -> Result<(), ElementError> {
        // Metadata the worker would refuse is this element's error, not a lost worker.
        FieldLimits::check(buf.meta.fields()).map_err(|e| {
            ElementError::Failed(format!("cannot hand a buffer to the worker: {e}"))
        })?;
        // Only a stop ends the wait: a drain (Ctrl-C) still delivers what was read. So does
        // the worker being done (let go, finished, failed or gone): nothing will free a slot
        // for it then.
        let stop = || {
            if cx.run.ends_streams() {
                // A drain while the worker holds every slot: its element may be waiting (a
                // shmsink for its first consumer) and must hear of the drain to let go.
                self.ask_drain();
            }
            cx.run.is_stopping() || self.done.load(Ordering::SeqCst)
        };
        let (buf, copied) = copies.shareable(buf, &self.name, &stop)?;
        Counts::bump(&self.counts.sent);
        if copied {
            Counts::bump(&self.counts.copied);
        }
        if answered && self.messages.is_some() {
            Link::lock(&self.counts.timings)
                .in_flight
                .push_back(std::time::Instant::now());
        }
        if let Some(watch) = self.watch.as_ref().filter(|_| answered) {
            watch.sent();
        }
        let sent = send_buffer(&self.sock, &mut Link::lock(&self.exporter), &buf);
        sent.map_err(|e| match e.raw_os_error() {
            Some(_) => self.lost(),
            // Not the socket: the buffer could not be lent (an arena with no peer column
            // left), which is ours to say, not a worker that went.
            None => ElementError::Failed(format!(
                "cannot lend a buffer to worker process {}: {e}",
                self.pid
            )),
        })
    }

    fn send_frame(&self, frame: &Frame) -> Result<(), ElementError> {
        send_frame(&self.sock, frame, &[]).map_err(|_| self.lost())
    }

    /// Waits for the worker's next answer, mapping the arenas it announces on the way.
    /// Ends with `Interrupted` when the pipeline stops, and also on a drain (Ctrl-C) when
    /// `drain_ends` (a source's request may wait on input that never comes).
    fn recv(
        &self,
        cache: &mut SharedArenaCache,
        cx: &Ctx<'_>,
        drain_ends: bool,
    ) -> Result<Reply, ElementError> {
        loop {
            let waiting = spin_until_readable(&self.sock, SPIN_BEFORE_BLOCKING);
            if !waiting
                && !cx.wait_readable(self.sock.as_fd())?
                && (cx.run.is_stopping() || drain_ends)
            {
                return Err(ElementError::Interrupted);
            }
            if let Some(reply) = self.recv_one(cache)? {
                return Ok(reply);
            }
        }
    }

    /// One frame: `None` for an arena announcement (mapped), else the reply.
    fn recv_one(&self, cache: &mut SharedArenaCache) -> Result<Option<Reply>, ElementError> {
        let got = {
            let _reading = Link::lock(&self.reading);
            let got = recv_frame(&self.sock);
            if let Ok(Some((Frame::Error { message }, _))) = &got {
                *Link::lock(&self.said) = Some(worker_says(message));
                self.done.store(true, Ordering::SeqCst);
            }
            got
        };
        let (frame, fds) = match got {
            Ok(Some(f)) => f,
            Ok(None) => return Err(self.lost()),
            Err(e) => return Err(self.frame_error(e)),
        };
        Ok(Some(match frame {
            Frame::Arena {
                peer, read_only, ..
            } => {
                map_announced_arena(cache, peer, read_only, fds).map_err(|e| self.bad(&e))?;
                return Ok(None);
            }
            Frame::Buffer { at, meta } => {
                let r = IpcRef::from(at);
                let adopted = Link::lock(&self.exporter).adopt(r);
                let mut buf = match adopted {
                    Ok(b) => {
                        Counts::bump(&self.counts.same_memory_back);
                        b
                    }
                    // The worker went meanwhile and what it was lent was reclaimed (the other
                    // half saw it go): an answer sent before is moot, and how it went (its
                    // own error, most likely) is the cause, not this reference.
                    Err(_) if self.done.load(Ordering::SeqCst) => return Err(self.lost()),
                    Err(_) => {
                        let b = cache.get_slot(r).map_err(|e| self.bad(&e.to_string()))?;
                        Counts::bump(&self.counts.from_worker_arena);
                        b
                    }
                };
                buf.meta = Metadata::try_from(meta).map_err(|e| self.bad(&e.to_string()))?;
                self.answered();
                Reply::Buffer(buf)
            }
            Frame::Nothing => {
                self.answered();
                Reply::Nothing
            }
            Frame::Eos => Reply::Eos,
            Frame::Error { message } => return Err(ElementError::Failed(worker_says(&message))),
            other => return Err(self.bad(&format!("unexpected frame {other:?}"))),
        }))
    }

    /// The worker sent something that does not hold up: cut it off.
    fn bad(&self, what: &str) -> ElementError {
        let mut child = Link::lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
        self.done.store(true, Ordering::Relaxed);
        ElementError::Failed(format!(
            "worker process {} sent {what}; it was stopped",
            self.pid
        ))
    }

    fn frame_error(&self, e: FrameError) -> ElementError {
        match e {
            FrameError::Io(_) => self.lost(),
            malformed => self.bad(&malformed.to_string()),
        }
    }

    /// The worker is gone: reap it and say how it ended.
    fn lost(&self) -> ElementError {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let status = {
            let mut child = Link::lock(&self.child);
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    _ => {
                        let _ = child.kill();
                        break child.wait().ok();
                    }
                }
            }
        };
        self.done.store(true, Ordering::SeqCst);
        let reclaimed = Link::lock(&self.exporter).reclaim_all();
        // Killed by the watchdog: that is the cause.
        if let Some(why) = self.overdue() {
            return ElementError::Failed(why);
        }
        // A worker that reported an error exits because of it: its words are the cause.
        if let Some(message) = self.last_words() {
            return ElementError::Failed(message);
        }
        // Cloned, not taken: every path that finds the worker gone reports the same cause.
        if let Some(why) = Link::lock(&self.cut_off).clone() {
            return ElementError::Failed(format!(
                "worker process {} sent {why}; it was stopped and {reclaimed} buffers it held \
                 were reclaimed",
                self.pid
            ));
        }
        use std::os::unix::process::ExitStatusExt as _;
        let how = match status {
            Some(s) => match (s.signal(), s.code()) {
                (Some(sig), _) => format!("was killed by signal {sig} ({})", signal_name(sig)),
                (None, Some(code)) => format!("exited with status {code}"),
                _ => "ended".to_owned(),
            },
            None => "vanished".to_owned(),
        };
        ElementError::Failed(format!(
            "worker process {} {how}; {reclaimed} buffers it held were reclaimed",
            self.pid
        ))
    }

    /// Why the watchdog killed the worker, if it did.
    fn overdue(&self) -> Option<String> {
        Link::lock(&self.watch.as_ref()?.state).overdue.clone()
    }

    /// Passes a drain (Ctrl-C) on to the worker, as SIGTERM, which it takes as its own
    /// drain. Through `Child`, so a worker already reaped (its pid perhaps reused) is not
    /// signalled.
    fn ask_drain(&self) {
        if self.drain_asked.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut child = Link::lock(&self.child);
        if let Ok(None) = child.try_wait() {
            if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
    }

    /// The error the worker reported before it went: recorded by a half that read it, or still
    /// on the socket (the worker is gone, so everything it sent is there to read).
    fn last_words(&self) -> Option<String> {
        let _reading = Link::lock(&self.reading);
        if let Some(message) = Link::lock(&self.said).clone() {
            return Some(message);
        }
        while self.readable() {
            match recv_frame(&self.sock) {
                Ok(Some((Frame::Error { message }, _))) => {
                    let message = worker_says(&message);
                    *Link::lock(&self.said) = Some(message.clone());
                    return Some(message);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        None
    }

    /// Nothing downstream wants the worker's answers any more (the element's downstream ended
    /// early, like `fakesink num-buffers=1`): the worker is told by a hang-up, reaped (killed
    /// if it does not go at once), and every buffer it held or had in flight back to us is
    /// reclaimed, so that a source waiting for a free slot gets one and the sending half, which
    /// now sees `done`, ends its thread instead of waiting for answers nobody reads (issue 21).
    fn abandon(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wakes a sending half blocked on a full socket, and the worker (end of input).
        let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Both);
        {
            let mut child = Link::lock(&self.child);
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
            loop {
                match child.try_wait() {
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    Ok(Some(_)) => break,
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        // Gone for good, so nothing it held can still be touched by it.
        let reclaimed = Link::lock(&self.exporter).reclaim_all();
        tracing::debug!(element = %self.name, reclaimed, "Downstream ended early; the worker was let go");
    }

    /// The worker answered a buffer: its round trip is timed when `-m` asked for it.
    fn answered(&self) {
        if let Some(watch) = &self.watch {
            watch.answered();
        }
        if self.messages.is_some() {
            Link::lock(&self.counts.timings).answered();
        }
    }

    /// Whether something to read arrives within `patience`.
    fn readable_within(&self, patience: std::time::Duration) -> bool {
        use rustix::event::{poll, PollFd, PollFlags};
        let deadline = std::time::Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let timeout = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.sock, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => return false,
                Ok(_) => return true,
                Err(rustix::io::Errno::INTR) if !left.is_zero() => {}
                Err(_) => return false,
            }
        }
    }

    /// Whether an answer is waiting (without blocking).
    fn readable(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags};
        let mut fds = [PollFd::new(&self.sock, PollFlags::IN)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(events) = &self.messages {
            let c = &self.counts;
            let trips = Link::lock(&c.timings).round_trip_summary();
            let n = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
            events.publish(super::events::Event::Element {
                element: self.name.clone(),
                message: format!(
                    "worker process {}: {} buffers sent, {} came back as the same memory, {} \
                     from the worker's arena, {} copied{trips}",
                    self.pid,
                    n(&c.sent),
                    n(&c.same_memory_back),
                    n(&c.from_worker_arena),
                    n(&c.copied)
                ),
            });
        }
        // End of stream for a worker still listening (harmless to one that is gone), a moment
        // to exit, then the kill; either way it is reaped.
        {
            let mut child = Link::lock(&self.child);
            let _ = send_frame(&self.sock, &Frame::Eos, &[]);
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
            let mut ended = false;
            while !ended && std::time::Instant::now() < deadline {
                ended = matches!(child.try_wait(), Ok(Some(_)));
                if !ended {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
            if !ended {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // What the worker listened at and could not remove (its sandbox refuses unlink): only
        // a socket, never a file that took its place.
        use std::os::unix::fs::FileTypeExt as _;
        for path in &self.sockets {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        2 => "SIGINT",
        6 => "SIGABRT",
        7 => "SIGBUS",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Workers that took over from the one before, in order, for the receiving half: the sending
/// half queues a new worker here before it ends the old one's stream, so that the old one's
/// end of stream is where the receiving half moves on.
type Successors = Arc<Mutex<std::collections::VecDeque<Arc<Link>>>>;

/// An isolated transform's first half: the end of the upstream thread, sending each buffer to
/// the worker without waiting for its answer (the second half receives those).
struct SendHalf {
    link: Arc<Link>,
    copies: Copies,
    /// A plugin element's reload, when it has one.
    reload: Option<Arc<Reloadable>>,
    successors: Successors,
}

impl SendHalf {
    /// A reload left a new worker ready: it takes over before the next buffer. The old one is
    /// sent end of stream after everything it was given, so it answers all of that first
    /// (and its element's end of stream may output what it held); the receiving half passes
    /// those answers on, then moves to the new worker. Nothing is lost and nothing is given
    /// to both.
    fn take_over(&mut self, reload: &Reloadable) {
        reload.has_ready.store(false, Ordering::SeqCst);
        let Some(next) = Link::lock(&reload.ready).take() else {
            return;
        };
        if self.link.done.load(Ordering::SeqCst) {
            retire(next);
            return;
        }
        Link::lock(&self.successors).push_back(Arc::clone(&next));
        let old = std::mem::replace(&mut self.link, next);
        // An old worker gone meanwhile is the receiving half's to report.
        let _ = old.send_frame(&Frame::Eos);
        self.copies = Copies::new(self.link.access);
    }
}

impl Sink for SendHalf {
    fn caps_changed(&mut self, _caps: &crate::caps::Caps) -> Option<Result<(), ElementError>> {
        Some(Err(ElementError::Failed(
            "it runs in a worker process, which a caps change in mid-stream cannot reach".into(),
        )))
    }

    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        self.render_owned(buf.clone(), cx)
    }

    fn render_owned(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        if let Some(reload) = self.reload.clone() {
            if reload.has_ready.load(Ordering::SeqCst) {
                self.take_over(&reload);
            }
        }
        if self.link.done.load(Ordering::SeqCst) {
            return Ok(SinkFlow::Done);
        }
        match self.link.send(&mut self.copies, buf, true, cx) {
            Ok(()) => Ok(SinkFlow::Continue),
            // The receiving half let the worker go while this buffer was on its way.
            Err(_) if self.link.done.load(Ordering::SeqCst) => Ok(SinkFlow::Done),
            Err(e) => Err(e),
        }
    }

    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if !self.link.done.load(Ordering::Relaxed) {
            self.link.send_frame(&Frame::Eos)?;
        }
        Ok(())
    }
}

/// An isolated transform's second half: a source on its own thread that outputs the worker's
/// answers in order.
struct ReceiveHalf {
    link: Arc<Link>,
    cache: SharedArenaCache,
    successors: Successors,
    /// Buffers output so far, and when the last one was.
    outputs: u64,
    last_output: Option<std::time::Instant>,
    /// A worker took over: (the old one's pid, buffers output before, when the last was), until
    /// the new one's first buffer, for the `-m` line.
    switched: Option<(u32, u64, Option<std::time::Instant>)>,
}

impl ReceiveHalf {
    fn new(link: Arc<Link>, successors: Successors) -> ReceiveHalf {
        ReceiveHalf {
            link,
            cache: SharedArenaCache::new(),
            successors,
            outputs: 0,
            last_output: None,
            switched: None,
        }
    }

    /// The worker ended its stream: the next worker, if one took over, else `None`.
    fn move_on(&mut self) -> Option<()> {
        let next = Link::lock(&self.successors).pop_front()?;
        let old = std::mem::replace(&mut self.link, next);
        old.done.store(true, Ordering::SeqCst);
        self.switched = Some((old.pid, self.outputs, self.last_output));
        // A worker's arenas are its own: the new one numbers them afresh. Buffers still
        // downstream keep their mappings.
        self.cache = SharedArenaCache::new();
        retire(old);
        Some(())
    }

    fn output(&mut self, b: Buffer) -> Buffer {
        let now = std::time::Instant::now();
        if let Some((old_pid, before, last)) = self.switched.take() {
            if let Some(events) = &self.link.messages {
                let pause = last.map_or(String::new(), |at| {
                    format!(
                        "; {:.1} ms between the last buffer of the old and the first of the new",
                        now.duration_since(at).as_secs_f64() * 1000.0
                    )
                });
                events.publish(super::events::Event::Element {
                    element: self.link.name.clone(),
                    message: format!(
                        "reloaded: worker process {} took over from {old_pid} after {before} \
                         buffers{pause}",
                        self.link.pid
                    ),
                });
            }
        }
        self.outputs += 1;
        self.last_output = Some(now);
        b
    }
}

impl Drop for ReceiveHalf {
    /// Its thread ended before the worker's end of stream: downstream wants no more.
    fn drop(&mut self) {
        self.link.abandon();
        for next in Link::lock(&self.successors).drain(..) {
            next.abandon();
        }
    }
}

impl Source for ReceiveHalf {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        loop {
            match self.link.recv(&mut self.cache, cx, false) {
                Ok(Reply::Buffer(b)) => return Ok(Some(self.output(b))),
                Ok(Reply::Nothing) => {}
                Ok(Reply::Eos) => {
                    if self.move_on().is_some() {
                        continue;
                    }
                    self.link.done.store(true, Ordering::Relaxed);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// An isolated sink: buffers go to the worker without waiting for each to be rendered. A
/// thread of its own listens to the worker all the time, so that a worker that fails (a full
/// disk) or dies is heard, reaped and its loans reclaimed even while the source upstream waits
/// for one of the slots it held; the error it reported ends the run at the next buffer, and
/// end of stream waits for the worker to finish.
struct IsolatedSink {
    link: Arc<Link>,
    copies: Copies,
    /// What the listener heard: the worker's sink finished (`Ok`) or failed.
    heard: std::sync::mpsc::Receiver<Result<(), ElementError>>,
    /// The worker's sink finished by itself (it wants no end of stream from us).
    finished: bool,
}

impl IsolatedSink {
    fn new(link: Arc<Link>, access: PeerAccess) -> Result<IsolatedSink, ElementError> {
        let sock = link
            .sock
            .try_clone()
            .map_err(|e| ElementError::io("listening to the worker".to_owned(), e))?;
        let (tx, heard) = std::sync::mpsc::channel();
        let weak = Arc::downgrade(&link);
        std::thread::Builder::new()
            .name(format!("px-hear-{}", link.name).chars().take(15).collect())
            .spawn(move || listen(&weak, &sock, &tx))
            .map_err(|e| ElementError::io("starting the worker's listener".to_owned(), e))?;
        Ok(IsolatedSink {
            link,
            copies: Copies::new(access),
            heard,
            finished: false,
        })
    }

    /// What the worker said so far, without waiting.
    fn heard(&mut self) -> Result<Option<SinkFlow>, ElementError> {
        if self.finished {
            return Ok(Some(SinkFlow::Done));
        }
        match self.heard.try_recv() {
            Ok(Ok(())) => {
                self.finished = true;
                Ok(Some(SinkFlow::Done))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }
}

/// The sink's listener: takes every frame of an isolated sink's worker until it finishes,
/// fails or goes. Holds the link only while it handles a frame, so that dropping the sink
/// still drops the link (whose drop ends the worker, which wakes this thread for good).
fn listen(
    link: &std::sync::Weak<Link>,
    sock: &OwnedFd,
    tx: &std::sync::mpsc::Sender<Result<(), ElementError>>,
) {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut cache = SharedArenaCache::new();
    loop {
        let mut fds = [PollFd::new(sock, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
        let Some(link) = link.upgrade() else {
            return;
        };
        let said = match link.recv_one(&mut cache) {
            Ok(Some(Reply::Eos)) => Ok(()),
            Ok(_) => continue,
            // The worker reported an error and exits because of it: reaped here, so that the
            // slots it held come back to a source that may be waiting for them.
            Err(_) if Link::lock(&link.said).is_some() => Err(link.lost()),
            Err(e) => Err(e),
        };
        link.done.store(true, Ordering::SeqCst);
        let _ = tx.send(said);
        return;
    }
}

impl Sink for IsolatedSink {
    fn caps_changed(&mut self, _caps: &crate::caps::Caps) -> Option<Result<(), ElementError>> {
        Some(Err(ElementError::Failed(
            "it runs in a worker process, which a caps change in mid-stream cannot reach".into(),
        )))
    }

    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        self.render_owned(buf.clone(), cx)
    }

    fn render_owned(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        if let Some(flow) = self.heard()? {
            return Ok(flow);
        }
        match self.link.send(&mut self.copies, buf, false, cx) {
            Ok(()) => Ok(SinkFlow::Continue),
            // The worker failed or went while this buffer waited for a slot or was sent: what
            // it said is the cause (issue 21), once the listener has it.
            Err(e) => loop {
                if let Some(flow) = self.heard()? {
                    break Ok(flow);
                }
                if !self.link.done.load(Ordering::SeqCst) || cx.run.is_stopping() {
                    break Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            },
        }
    }

    fn finish(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.heard()?.is_some() {
            return Ok(());
        }
        if cx.should_stop() {
            // A drain: the worker's element may be waiting (for a consumer, a peer) and read
            // no end of stream until it is told too.
            self.link.ask_drain();
        }
        if !self.link.done.load(Ordering::SeqCst) {
            // A worker gone meanwhile is the listener's to report.
            let _ = self.link.send_frame(&Frame::Eos);
        }
        loop {
            match self
                .heard
                .recv_timeout(std::time::Duration::from_millis(50))
            {
                Ok(said) => {
                    said?;
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !cx.run.is_stopping() => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(ElementError::Interrupted)
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.finished = true;
        let _ = Link::lock(&self.link.child).wait();
        Ok(())
    }
}

/// An isolated source: asks the worker for each buffer.
struct IsolatedSource {
    link: Arc<Link>,
    cache: SharedArenaCache,
}

impl Source for IsolatedSource {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if cx.should_stop() {
            return Ok(None);
        }
        self.link.send_frame(&Frame::Nothing)?;
        let reply = match self.link.recv(&mut self.cache, cx, true) {
            // Ctrl-C while the worker waits for input: end of stream here.
            Err(ElementError::Interrupted) if !cx.run.is_stopping() => return Ok(None),
            other => other?,
        };
        match reply {
            Reply::Buffer(b) => Ok(Some(b)),
            Reply::Eos => Ok(None),
            Reply::Nothing => Err(self.link.bad("nothing for a buffer request")),
        }
    }
}

/// Whether `exec=isolated` or `exec=rt` makes `node` a segment boundary (a one-in-one-out
/// element: its two halves run on either side).
pub fn splits(node: &Node) -> bool {
    let forced_async = node.exec == crate::registry::Exec::Async
        && node.factory.domain() == crate::registry::Domain::Thread;
    (matches!(
        node.exec,
        crate::registry::Exec::Isolated | crate::registry::Exec::Rt
    ) || forced_async
        || node.factory.hints.timed)
        && matches!(node.factory.pads.sink, PadPresence::Always(_))
        && matches!(node.factory.pads.src, PadPresence::Always(_))
        && !node.factory.hints.thread_boundary
}

/// Builds the parent's proxy for an `exec=isolated` element and starts its worker.
/// `pools` is how the run's pools are lent to workers (see `pool_peers`).
pub(super) fn proxy(
    node: &Node,
    pools: PeerAccess,
    events: super::events::Events,
) -> Result<ElementImpl, ElementError> {
    let pads = node.factory.pads;
    if let Some(why) = node.factory.refusal(Exec::Isolated) {
        return Err(ElementError::Config(why));
    }
    let spec = WorkerSpec::of(node);
    let loaded = spec
        .library
        .as_deref()
        .and_then(|f| crate::plugin::FileId::of(f).ok());
    let link = Link::start(&spec, pools, events.clone(), None)?;
    let access = link.access;
    Ok(if pads.sink == PadPresence::None {
        ElementImpl::Source(Box::new(IsolatedSource {
            link,
            cache: SharedArenaCache::new(),
        }))
    } else if pads.src == PadPresence::None {
        ElementImpl::Sink(Box::new(IsolatedSink::new(link, access)?))
    } else {
        let reload = spec.library.is_some().then(|| {
            let version = crate::plugin::version_of(node.factory).unwrap_or_default();
            let r = Arc::new(Reloadable {
                factory: node.factory.name,
                spec: spec.clone(),
                pools,
                events,
                loaded: Mutex::new(loaded),
                version: Mutex::new(version),
                ready: Mutex::new(None),
                has_ready: AtomicBool::new(false),
                reloading: Mutex::new(()),
            });
            Link::lock(&RELOADABLE).push(Arc::downgrade(&r));
            r
        });
        let successors = Successors::default();
        ElementImpl::Split {
            input: Box::new(SendHalf {
                link: Arc::clone(&link),
                copies: Copies::new(access),
                reload,
                successors: Arc::clone(&successors),
            }),
            output: Box::new(ReceiveHalf::new(link, successors)),
        }
    })
}

// --- hot-swap -------------------------------------------------------------------------------

/// How long a reload's new worker may take to load its library and build its element.
const RELOAD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// An isolated plugin transform that a reload can give a new worker.
struct Reloadable {
    factory: &'static str,
    spec: WorkerSpec,
    pools: PeerAccess,
    events: super::events::Events,
    /// The library file as it was when the running worker (or the one ready) was started.
    loaded: Mutex<Option<crate::plugin::FileId>>,
    /// (plugin name, version) of the library running.
    version: Mutex<(String, String)>,
    /// A new worker, started and greeted, waiting to take over at the next buffer.
    ready: Mutex<Option<Arc<Link>>>,
    /// Whether `ready` holds one: the only thing the streaming thread reads per buffer.
    has_ready: AtomicBool,
    /// One reload of this element at a time.
    reloading: Mutex<()>,
}

/// Every plugin transform that runs isolated, in the order built.
static RELOADABLE: Mutex<Vec<std::sync::Weak<Reloadable>>> = Mutex::new(Vec::new());

/// What a reload did for one plugin element.
#[derive(Debug, Clone)]
pub struct Reload {
    /// The element's instance name.
    pub element: String,
    /// Its library.
    pub file: std::path::PathBuf,
    /// What happened.
    pub outcome: Reloaded,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The file is the one running: nothing to do.
    Unchanged,
    /// A new worker runs the new library and takes over at the element's next buffer.
    Ready {
        /// The plugin's name.
        plugin: String,
        /// The version that was running.
        was: String,
        /// The new version.
        version: String,
        /// The new worker's pid.
        pid: u32,
    },
    /// The new file cannot be used: the running version goes on.
    Failed(String),
    /// The element runs in this process (exec=fused): never swapped.
    InProcess,
}

impl Reload {
    /// Whether this outcome deserves a warning.
    pub fn is_warning(&self) -> bool {
        matches!(self.outcome, Reloaded::Failed(_) | Reloaded::InProcess)
    }

    /// The outcome as a stable word: `ready`, `unchanged`, `failed`, `in-process`.
    pub fn kind(&self) -> &'static str {
        match self.outcome {
            Reloaded::Unchanged => "unchanged",
            Reloaded::Ready { .. } => "ready",
            Reloaded::Failed(_) => "failed",
            Reloaded::InProcess => "in-process",
        }
    }
}

impl std::fmt::Display for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (element, file) = (&self.element, self.file.display());
        match &self.outcome {
            Reloaded::Unchanged => write!(f, "{element}: plugin {file} unchanged; not reloaded"),
            Reloaded::Ready {
                plugin,
                was,
                version,
                pid,
            } => write!(
                f,
                "{element}: plugin {file} reloaded ({plugin} {was} -> {version}) in worker \
                 process {pid}; it takes over at the next buffer"
            ),
            Reloaded::Failed(why) => write!(
                f,
                "{element}: plugin {file} cannot be reloaded: {why}; the running version goes on"
            ),
            Reloaded::InProcess => write!(
                f,
                "{element}: plugin {file} changed, but the element runs in this process \
                 (exec=fused), where a library whose code may still run is never swapped; the \
                 running version goes on until the pipeline ends (run it isolated to reload it)"
            ),
        }
    }
}

/// Reloads every plugin element of the running pipelines whose library file was replaced
/// (SIGHUP, or the control socket's `reload`). For an isolated one the new file's descriptor
/// is read in a child first, then a new worker loads it and builds the element with the same
/// properties; it takes over between two buffers. A new version that fails any of that (bad
/// ABI, missing symbol or element, a crash or hang as it loads) leaves the running one
/// alone. Elements running in this process are reported, never swapped. Runs on the caller's
/// thread; the streams only ever see a worker that is ready.
pub fn reload_plugins() -> Vec<Reload> {
    let live: Vec<Arc<Reloadable>> = {
        let mut all = Link::lock(&RELOADABLE);
        all.retain(|r| r.strong_count() > 0);
        all.iter().filter_map(std::sync::Weak::upgrade).collect()
    };
    let mut out: Vec<Reload> = live.iter().map(|r| r.reload()).collect();
    out.extend(
        crate::plugin::in_process_changed()
            .into_iter()
            .map(|(element, file)| Reload {
                element,
                file,
                outcome: Reloaded::InProcess,
            }),
    );
    out
}

impl Reloadable {
    fn reload(&self) -> Reload {
        let _one = Link::lock(&self.reloading);
        let file = self.spec.library.clone().unwrap_or_default();
        let outcome = self.try_reload(&file).unwrap_or_else(Reloaded::Failed);
        if let Reloaded::Failed(why) = &outcome {
            tracing::warn!(element = %self.spec.name, file = %file.display(), why, "A plugin reload failed");
        }
        Reload {
            element: self.spec.name.clone(),
            file,
            outcome,
        }
    }

    fn try_reload(&self, file: &std::path::Path) -> Result<Reloaded, String> {
        let now = crate::plugin::FileId::of(file).map_err(|e| format!("cannot read it: {e}"))?;
        if *Link::lock(&self.loaded) == Some(now) {
            return Ok(Reloaded::Unchanged);
        }
        // Read in a child first: a library that crashes or hangs as it loads costs that child.
        let info = crate::plugin::read_descriptor(file)?;
        if !info.elements.iter().any(|e| e.name == self.factory) {
            return Err(format!("the new version has no element `{}`", self.factory));
        }
        let link = Link::start(
            &self.spec,
            self.pools,
            self.events.clone(),
            Some(RELOAD_PATIENCE),
        )
        .map_err(|e| e.to_string())?;
        *Link::lock(&self.loaded) = Some(now);
        let (plugin, was) = std::mem::replace(
            &mut *Link::lock(&self.version),
            (info.name.clone(), info.version.clone()),
        );
        let pid = link.pid;
        // Two reloads before the next buffer: the later one wins.
        if let Some(stale) = Link::lock(&self.ready).replace(link) {
            retire(stale);
        }
        self.has_ready.store(true, Ordering::SeqCst);
        let plugin = if plugin.is_empty() { info.name } else { plugin };
        Ok(Reloaded::Ready {
            plugin,
            was,
            version: info.version,
            pid,
        })
    }
}

/// Lets a worker that is done with go on another thread: its end may take a moment (it is
/// given half a second to exit), which the stream should not wait for.
fn retire(link: Arc<Link>) {
    let spawned = std::thread::Builder::new()
        .name("px-retire".into())
        .spawn(move || drop(link));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "No thread to let an old worker go; it was let go on this one");
    }
}

/// The worker process: builds the element it is sent and serves the parent until end of stream.
/// Returns the process exit code.
pub fn worker_main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let library = args
        .iter()
        .position(|a| a == crate::plugin::WORKER_PLUGIN_ARG)
        .and_then(|i| args.get(i + 1));
    let loaded = match library {
        Some(path) => crate::plugin::worker_load(std::path::Path::new(path))
            .map_err(|e| format!("plugin {}: {e}", std::path::Path::new(path).display())),
        None => {
            crate::plugin::disable_discovery();
            Ok(())
        }
    };
    let sock = match crate::ipc::worker_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("parallax worker: no socket on fd 3: {e}");
            return 2;
        }
    };
    let served = loaded.map_err(Stop::Failed).and_then(|()| serve(&sock));
    match served {
        Ok(()) => 0,
        Err(Stop::Failed(message)) => {
            let _ = send_frame(&sock, &Frame::Error { message }, &[]);
            1
        }
        Err(Stop::Refused(message)) => {
            let _ = send_frame(&sock, &Frame::Refused { message }, &[]);
            2
        }
    }
}

/// Why a worker stops early.
enum Stop {
    /// A runtime error (exit 1 in the parent).
    Failed(String),
    /// Its element refused its properties (exit 2 in the parent, as when it is fused).
    Refused(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

impl From<&str> for Stop {
    fn from(message: &str) -> Stop {
        Stop::Failed(message.to_owned())
    }
}

fn serve(sock: &OwnedFd) -> Result<(), Stop> {
    let (factory, name, written, caps) = match recv_frame(sock).map_err(|e| e.to_string())? {
        Some((
            Frame::Start {
                factory,
                name,
                props,
                caps,
            },
            _,
        )) => (factory, name, props, caps),
        _ => return Err("expected the element to run".into()),
    };
    // The parent's drain reaches a worker as SIGTERM (or the terminal's Ctrl-C, which the
    // whole process group gets): an element waiting in the worker (shmsink for its first
    // consumer) ends its wait as it would in the parent (issue 21). Installed before the
    // sandbox, which allows no new thread.
    let run = Arc::new(RunControl::new().map_err(|e| e.to_string())?);
    {
        let run = Arc::clone(&run);
        ctrlc::set_handler(move || run.request_drain())
            .map_err(|e| format!("cannot take signals: {e}"))?;
    }
    // SIGHUP asks the parent to reload plugins; `pkill -HUP parallax-launch` reaches workers
    // too, where it means nothing (the Ctrl-C handler above took it as a drain).
    crate::ipc::ignore_hangup().map_err(|e| format!("cannot ignore SIGHUP: {e}"))?;
    // The element's warnings go to the worker's stderr, which is the parent's.
    run.set_names(Arc::new(vec![name.clone()]));
    let _printer = run.events().print_to(super::Console::default(), false);
    let f = crate::registry::find(&factory).ok_or(format!("no element `{factory}`"))?;
    let mut props = crate::registry::Props::defaults(&name, f.props);
    for (k, v) in &written {
        let spec = f.prop(k).ok_or(format!("no property `{k}`"))?;
        let value = spec.parse(v).map_err(|e| format!("property `{k}`: {e}"))?;
        props.set(k, value);
    }
    let parse_caps =
        |text: &str| crate::caps::Caps::parse(text).map_err(|e| format!("caps `{text}`: {e}"));
    props.set_caps(parse_caps(&caps.0)?, parse_caps(&caps.1)?);
    let element = f.instantiate(&props).map_err(|e| match e {
        ElementError::Config(message) => Stop::Refused(message),
        other => Stop::Failed(other.to_string()),
    })?;
    // Built, so it holds what it opened; from here on it gets nothing new (fail closed: an
    // untrusted element never runs outside the sandbox).
    let sandboxed = std::env::args().any(|a| a == SANDBOX_ARG);
    if sandboxed {
        crate::ipc::enter_sandbox().map_err(|e| format!("cannot enter the sandbox: {e}"))?;
    }
    send_frame(sock, &Frame::Hello { version: PROTOCOL }, &[]).map_err(|e| e.to_string())?;
    // Fault injection for the tests of the parent's defences: a worker that misbehaves.
    match std::env::var("PARALLAX_WORKER_FAULT").as_deref() {
        Ok("garbage") => {
            let _ = crate::ipc::send_with_fds(sock, &[0x5a; 48], &[]);
            // Stay around, like a hostile worker would, until the parent hangs up.
            while let Ok(Some(_)) = recv_frame(sock) {}
            return Ok(());
        }
        Ok("escape") => {
            // Tries the ways out the sandbox closes and reports each outcome as its error.
            let tried = [
                (
                    "open /etc/hostname",
                    std::fs::File::open("/etc/hostname").map(drop),
                ),
                (
                    "listen on tcp",
                    std::net::TcpListener::bind("127.0.0.1:0").map(drop),
                ),
                (
                    "run /bin/true",
                    std::process::Command::new("/bin/true").status().map(drop),
                ),
                (
                    "open /etc/hostname via x32",
                    crate::ipc::open_via_x32(c"/etc/hostname"),
                ),
                // Not on the allowlist either (a denylist let it through): looking a path up.
                (
                    "stat /etc/hostname",
                    std::fs::metadata("/etc/hostname").map(drop),
                ),
            ];
            let report: Vec<String> = tried
                .into_iter()
                .map(|(what, r)| match r {
                    Ok(()) => format!("{what}: allowed"),
                    Err(e) => format!("{what}: {}", e.kind()),
                })
                .collect();
            let message = format!("escape attempt: {}", report.join("; "));
            let _ = send_frame(sock, &Frame::Error { message }, &[]);
            // Stay until the parent hangs up, so that what it reads first is the report.
            while let Ok(Some(_)) = recv_frame(sock) {}
            return Ok(());
        }
        Ok("bad-release") if std::env::args().any(|a| a == SANDBOX_ARG) => {
            // Garbage on the release socket, then business as usual until stopped.
            let releases = crate::ipc::release_socket().map_err(|e| e.to_string())?;
            let _ = crate::ipc::send_with_fds(&releases, &[0x5a; 48], &[]);
            while let Ok(Some(_)) = recv_frame(sock) {}
            return Ok(());
        }
        Ok("bad-fields") => {
            // Hands the first buffer back with metadata naming one field twice.
            while let Ok(Some((frame, _))) = recv_frame(sock) {
                if let Frame::Buffer { at, .. } = frame {
                    let field = |n| crate::ipc::WireField {
                        key: "k".into(),
                        value: crate::ipc::WireValue::Int(n),
                    };
                    let meta = WireMeta {
                        fields: vec![field(1), field(2)],
                        ..WireMeta::default()
                    };
                    send_frame(sock, &Frame::Buffer { at, meta }, &[])
                        .map_err(|e| e.to_string())?;
                    break;
                }
            }
            while let Ok(Some(_)) = recv_frame(sock) {}
            return Ok(());
        }
        Ok("bad-ref") => {
            let at = crate::ipc::WireRef {
                arena_id: 1,
                slot: 9999,
                offset: 0,
                len: 1 << 40,
            };
            let _ = recv_frame(sock);
            let frame = Frame::Buffer {
                at,
                meta: WireMeta::default(),
            };
            send_frame(sock, &frame, &[]).map_err(|e| e.to_string())?;
            while let Ok(Some(_)) = recv_frame(sock) {}
            return Ok(());
        }
        _ => {}
    }
    let run: &RunControl = &run;
    let mut side = WorkerSide {
        sock,
        cache: SharedArenaCache::new(),
        exporter: Exporter::new(),
        copies: Copies::new(PeerAccess::ReadWrite),
        // Every sandboxed worker has one (fail closed); a trusted one has one when the run's
        // pools are lent read-only.
        releases: if std::env::args().any(|a| a == RELEASES_ARG) {
            Some(crate::ipc::release_socket().map_err(|e| format!("no release socket: {e}"))?)
        } else if sandboxed {
            return Err("no release socket".into());
        } else {
            None
        },
        name,
    };
    match element {
        ElementImpl::Transform(mut t) => loop {
            // A timed element is called when its deadline passes while no input comes; what
            // it outputs then goes to the parent unasked (the parent reads answers as a stream).
            if let Some(at) = t.deadline() {
                if !side.wait_input(at)? {
                    let mut cx = Ctx::for_element(run, None, 0);
                    t.on_deadline(&mut cx).map_err(|e| e.to_string())?;
                    for out in cx.take_out() {
                        side.reply(out, run)?;
                    }
                    continue;
                }
            }
            let mut cx = Ctx::for_element(run, None, 0);
            let Some(buf) = side.next_buffer()? else {
                t.flush(&mut cx).map_err(|e| e.to_string())?;
                for out in cx.take_out() {
                    side.reply(out, run)?;
                }
                side.send(&Frame::Eos)?;
                return Ok(());
            };
            let flow = t.process(buf, &mut cx).map_err(|e| e.to_string())?;
            let outs = cx.take_out();
            let answered = !outs.is_empty();
            for out in outs {
                side.reply(out, run)?;
            }
            match flow {
                Flow::Push(out) => side.reply(out, run)?,
                Flow::Drop | Flow::Held if !answered => side.send(&Frame::Nothing)?,
                Flow::Drop | Flow::Held => {}
                Flow::Eos => side.send(&Frame::Eos)?,
            }
        },
        ElementImpl::Sink(mut s) => loop {
            let mut cx = Ctx::for_element(run, None, 0);
            let Some(buf) = side.next_buffer()? else {
                s.finish(&mut cx).map_err(|e| e.to_string())?;
                side.send(&Frame::Eos)?;
                return Ok(());
            };
            let rendered = match s.render_owned(buf, &mut cx) {
                // Asked to end while it waited (the parent's drain reached this process): not
                // an error, as in the parent's own loop; the end of stream comes next.
                Err(ElementError::Interrupted) => Ok(SinkFlow::Continue),
                other => other,
            };
            let flow = rendered.map_err(|e| e.to_string())?;
            // Nothing gathers across buffers here: the worker cannot tell when it waits.
            s.idle(&mut cx).map_err(|e| e.to_string())?;
            match flow {
                // No answer per buffer: the parent does not wait for one.
                SinkFlow::Continue => {}
                SinkFlow::Done => {
                    s.finish(&mut cx).map_err(|e| e.to_string())?;
                    side.send(&Frame::Eos)?;
                    // Take in what is still on its way, up to the parent's end of stream.
                    while side.next_buffer()?.is_some() {}
                    return Ok(());
                }
            }
        },
        ElementImpl::Source(mut src) => {
            let pool = match src.pool_request() {
                Some(req) => Some(
                    MemoryPool::new(&PoolConfig::new(
                        side.name.clone(),
                        req.slots_or_default(),
                        req.slot_size,
                    ))
                    .map_err(|e| e.to_string())?,
                ),
                None => None,
            };
            loop {
                spin_until_readable(sock, SPIN_BEFORE_BLOCKING);
                match recv_frame(sock).map_err(|e| e.to_string())? {
                    Some((Frame::Nothing, _)) => {}
                    Some((Frame::Eos, _)) | None => return Ok(()),
                    Some((other, _)) => return Err(format!("unexpected frame {other:?}").into()),
                }
                let mut cx = Ctx::for_element(run, pool.as_ref(), 0);
                match src.produce(&mut cx).map_err(|e| e.to_string())? {
                    Some(buf) => side.reply(buf, run)?,
                    None => {
                        side.send(&Frame::Eos)?;
                        return Ok(());
                    }
                }
            }
        }
        _ => Err(format!("{} cannot run in a worker", side.name).into()),
    }
}

/// The worker's end of the conversation.
struct WorkerSide<'a> {
    sock: &'a OwnedFd,
    cache: SharedArenaCache,
    exporter: Exporter,
    copies: Copies,
    name: String,
    /// Where buffers lent read-only are released (a sandboxed worker).
    releases: Option<OwnedFd>,
}

impl WorkerSide<'_> {
    fn send(&self, frame: &Frame) -> Result<(), String> {
        send_frame(self.sock, frame, &[]).map_err(|e| e.to_string())
    }

    /// Tells the parent which read-only loans this process is done with.
    fn flush_releases(&self) -> Result<(), String> {
        let Some(sock) = &self.releases else {
            return Ok(());
        };
        for r in self.cache.take_releases() {
            send_frame(sock, &Frame::Release { at: r.into() }, &[]).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Waits until the parent sent something or `at` passed: whether input is waiting.
    fn wait_input(&self, at: std::time::Instant) -> Result<bool, String> {
        use rustix::event::{poll, PollFd, PollFlags};
        loop {
            let left = at.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let timeout = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(self.sock, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(format!("waiting for input: {e}")),
            }
        }
    }

    /// The next buffer from the parent, `None` at end of stream.
    fn next_buffer(&mut self) -> Result<Option<Buffer>, String> {
        // What the element dropped since the last buffer goes back first.
        self.flush_releases()?;
        loop {
            spin_until_readable(self.sock, SPIN_BEFORE_BLOCKING);
            match recv_frame(self.sock).map_err(|e| e.to_string())? {
                Some((
                    Frame::Arena {
                        peer, read_only, ..
                    },
                    fds,
                )) => {
                    map_announced_arena(&mut self.cache, peer, read_only, fds)?;
                }
                Some((Frame::Buffer { at, meta }, _)) => {
                    let mut buf = self
                        .cache
                        .get_slot(IpcRef::from(at))
                        .map_err(|e| e.to_string())?;
                    buf.meta = Metadata::try_from(meta).map_err(|e| e.to_string())?;
                    return Ok(Some(buf));
                }
                Some((Frame::Eos, _)) | None => return Ok(None),
                Some((other, _)) => return Err(format!("unexpected frame {other:?}")),
            }
        }
    }

    /// Passes `out` back: the parent's own memory goes back as a reference it adopts; anything
    /// else is exported from this process's arenas.
    fn reply(&mut self, out: Buffer, run: &RunControl) -> Result<(), String> {
        let meta = WireMeta::try_from(&out.meta).map_err(|e| e.to_string())?;
        // Only the parent's own memory goes back as a reference: a buffer from a third
        // process's arena (a shmsrc's producer) is unknown to it (issue 21).
        let out = if self.cache.maps(&out) {
            out.into_ipc_ref()
        } else {
            Err(out)
        };
        match out {
            Ok(r) => self.send(&Frame::Buffer { at: r.into(), meta }),
            Err(out) => {
                let stop = || run.is_stopping();
                let (out, _) = self
                    .copies
                    .shareable(out, &self.name, &stop)
                    .map_err(|e| e.to_string())?;
                send_buffer(self.sock, &mut self.exporter, &out).map_err(|e| e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::worker_says;

    #[test]
    fn a_workers_words_reach_the_terminal_escaped_and_bounded() {
        assert_eq!(
            worker_says("bad\x1b[2Jthing\nnext"),
            "bad\\u{1b}[2Jthing\nnext"
        );
        let long = worker_says(&"x".repeat(5000));
        assert!(long.len() < 1100 && long.ends_with('…'), "{}", long.len());
    }
}
