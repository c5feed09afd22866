//! `shmsink` and `shmsrc`: buffers between separate `parallax-launch` processes through shared
//! memory, with gst's element and property names.
//!
//! `shmsink` listens on `socket-path` (a SOCK_SEQPACKET unix socket). Every consumer that connects
//! is admitted as a peer of each arena its buffers live in: the arena's memfd goes over the socket
//! once (SCM_RIGHTS), then each buffer is a small rkyv frame naming its slot. No payload byte is
//! copied: the consumer reads the producer's pages. Buffers that are not in a shared arena (a
//! mapped file window, heap bytes) are copied once into the sink's own `shm-size` arena.
//!
//! A consumer that is slow holds its buffers longer, so the producer's pools empty and it waits:
//! backpressure. A consumer that disconnects or dies is noticed by a watcher thread (POLLHUP),
//! and everything it held goes back to the producer's pools; the producer carries on with the
//! others.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{basesink_props, basesrc_props, NO_CLOCK};
use crate::element::prelude::*;

pub(super) static FACTORIES: &[&Factory] = &[&SHMSINK, &SHMSRC];

/// What the sink and its watcher thread share.
#[derive(Default)]
struct Clients {
    /// Consumers that subscribed: they are sent every buffer.
    list: Mutex<Vec<StreamSender>>,
    /// The stream's caps now, told to each consumer as it connects.
    caps: Mutex<String>,
    joined: Condvar,
    stop: AtomicBool,
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StreamSender>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Accepts new consumers and drops the ones that hung up, until told to stop.
fn watch(listener: StreamListener, clients: Arc<Clients>) {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::time::Timespec;
    // Accepted, told the caps, not subscribed yet: a shmsrc being validated reads the caps and
    // goes; one that runs subscribes, and only then counts as connected (it gets every buffer
    // rendered after).
    let mut pending: Vec<StreamSender> = Vec::new();
    while !clients.stop.load(Ordering::Relaxed) {
        if !pending.is_empty() {
            let mut fds: Vec<PollFd<'_>> = pending
                .iter()
                .map(|c| PollFd::new(c, PollFlags::IN))
                .collect();
            if poll(&mut fds, Some(&Timespec::default())).is_ok() {
                let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
                drop(fds);
                let mut still = Vec::new();
                for (client, ready) in pending.drain(..).zip(ready) {
                    if !ready {
                        still.push(client);
                    } else if client.read_subscribe() {
                        clients.lock().push(client);
                        clients.joined.notify_all();
                    }
                }
                pending = still;
            }
        }
        // Each duplicate polled with the raw fd of the client it stands for: the list may
        // change while we wait (the sink drops consumers too), so hang-ups are matched by
        // identity, never by position. Only this thread adds clients, after the retain, so a
        // reused fd number cannot be in the list.
        let socks: Vec<(RawFd, OwnedFd)> = clients
            .lock()
            .iter()
            .filter_map(|c| Some((c.as_fd().as_raw_fd(), c.as_fd().try_clone_to_owned().ok()?)))
            .collect();
        let mut fds: Vec<PollFd<'_>> = std::iter::once(PollFd::new(&listener, PollFlags::IN))
            .chain(
                socks
                    .iter()
                    .map(|(_, s)| PollFd::new(s, PollFlags::empty())),
            )
            .chain(pending.iter().map(|c| PollFd::new(c, PollFlags::IN)))
            .collect();
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        if poll(&mut fds, Some(&timeout)).is_err() {
            continue;
        }
        let accept = fds[0].revents().contains(PollFlags::IN);
        let gone: Vec<RawFd> = fds[1..=socks.len()]
            .iter()
            .zip(&socks)
            .filter(|(f, _)| {
                f.revents()
                    .intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
            })
            .map(|(_, (raw, _))| *raw)
            .collect();
        drop(fds);
        if !gone.is_empty() {
            // Dropping a client's exporter gives back everything it held.
            clients
                .lock()
                .retain(|c| !gone.contains(&c.as_fd().as_raw_fd()));
        }
        if accept {
            let caps = clients
                .caps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Ok(client) = listener.accept(&caps) {
                pending.push(client);
            }
        }
    }
}

pub(crate) static SHMSINK: Factory = Factory {
    name: "shmsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Sends buffers to other processes through shared memory",
    doc: "Listens on `socket-path`; every shmsrc that connects receives every buffer from then \
          on, without a copy: the memfd of each buffer pool travels once over the socket and \
          each buffer is a small frame naming its slot. Buffers that are not in shared memory \
          (a mapped file, heap bytes) are copied once into an arena of `shm-size` bytes. A slow \
          consumer holds buffers longer and so slows the producer (backpressure); one that \
          disconnects or dies gives everything it held back. wait-for-connection=true (the \
          default) holds the stream until the first consumer connects. Each consumer is told \
          the stream's caps (negotiated on the sink pad) when it connects, so that the shmsrc \
          downstream negotiates from them. The socket is removed at the end.",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::string(
            "socket-path",
            None,
            "The path to the control socket used to control the shared memory transport"
        )
        .required()
        .role(Role::ListensAt),
        PropSpec::uint(
            "shm-size",
            64 << 20,
            4096,
            u32::MAX as u64,
            "Size of the shared memory area for buffers that are not already in shared memory"
        ),
        PropSpec::uint(
            "perms",
            0o660,
            0,
            0o7777,
            "Permissions to set on the socket"
        ),
        PropSpec::bool(
            "wait-for-connection",
            true,
            "Block the stream until the shm pipe is connected"
        ),
        PropSpec::time(
            "buffer-time",
            -1,
            -1,
            i64::MAX,
            "Maximum Size of the shm buffer in nanoseconds (-1 to disable)"
        )
        .ignored(NO_CLOCK),
        PropSpec::bool("sync", false, "Sync on the clock").ignored(NO_CLOCK),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let path = PathBuf::from(p.string("socket-path")?.unwrap_or_default());
        // A socket left by a producer that died is taken over; anything else there is refused
        // (and `listen` never replaces what appears meanwhile).
        super::claim(&path).map_err(|e| ElementError::Config(format!("socket-path {e}")))?;
        let perms = p.uint("perms")? as u32;
        let listener = StreamListener::bind(&path, perms).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => ElementError::Config(format!(
                "socket-path {} already exists: remove it or pick another path",
                path.display()
            )),
            _ => ElementError::io(format!("cannot listen on {}", path.display()), e),
        })?;
        let clients = Arc::new(Clients {
            caps: Mutex::new(p.sink_caps().to_string()),
            ..Clients::default()
        });
        let watcher = {
            let clients = Arc::clone(&clients);
            std::thread::Builder::new()
                .name("px-shmsink".into())
                .spawn(move || watch(listener, clients))
                .map_err(|e| ElementError::io("starting the shmsink watcher", e))?
        };
        Ok(ElementImpl::Sink(Box::new(ShmSink {
            path,
            clients,
            watcher: Some(watcher),
            wait: p.bool("wait-for-connection")?,
            shm_size: p.uint("shm-size")? as usize,
            copies: None,
        })))
    },
};

struct ShmSink {
    path: PathBuf,
    clients: Arc<Clients>,
    watcher: Option<std::thread::JoinHandle<()>>,
    wait: bool,
    shm_size: usize,
    /// Where buffers that are not in shared memory are copied, made on first need.
    copies: Option<MemoryPool>,
}

impl ShmSink {
    /// A copy of `buf` in `copies`, for a buffer that does not live in a shared arena.
    fn copy_in(&mut self, buf: &Buffer, cx: &Ctx<'_>) -> Result<Buffer, ElementError> {
        let pool = match &self.copies {
            Some(pool) => pool.clone(),
            None => {
                let slots = 16;
                let config = PoolConfig::new("shmsink", slots, (self.shm_size / slots).max(4096));
                let pool = MemoryPool::new(&config)
                    .map_err(|e| ElementError::Failed(format!("shm-size arena: {e}")))?;
                self.copies = Some(pool.clone());
                pool
            }
        };
        if buf.len() > pool.slot_size() {
            return Err(ElementError::Failed(format!(
                "a buffer of {} bytes does not fit shm-size={} (it is cut in 16 slots)",
                buf.len(),
                self.shm_size
            )));
        }
        // A stop ends the wait; a drain (Ctrl-C) still delivers what was read, but not to
        // consumers that take nothing: one that connected and never reads would hold the run
        // for ever (issue 21). During a drain, a second without a slot coming back cuts every
        // consumer off (a reading one returns slots far sooner).
        let drain_started = std::cell::Cell::new(None::<std::time::Instant>);
        let given_up = || {
            if !cx.should_stop() {
                return false;
            }
            let since = drain_started.get().unwrap_or_else(|| {
                let now = std::time::Instant::now();
                drain_started.set(Some(now));
                now
            });
            since.elapsed() >= DRAIN_PATIENCE
        };
        let loaned = pool.loan_blocking(&|| cx.is_stopping() || given_up());
        let mut slot = match loaned {
            Ok(slot) => slot,
            Err(_) if cx.is_stopping() => return Err(ElementError::Interrupted),
            Err(_) => {
                let mut list = self.clients.lock();
                let message = format!(
                    "shmsink: this consumer is cut off: it took nothing for {} s after the \
                     producer was interrupted",
                    DRAIN_PATIENCE.as_secs()
                );
                for client in list.iter() {
                    client.cut_off(message.clone());
                }
                let n = list.len();
                list.clear();
                drop(list);
                tracing::warn!(
                    consumers = n,
                    "Consumers cut off: they took nothing during the drain"
                );
                return Err(ElementError::Interrupted);
            }
        };
        slot.as_mut_slice()[..buf.len()].copy_from_slice(buf.data());
        let mut copy = slot.freeze(buf.len());
        copy.meta = buf.meta.clone();
        Ok(copy)
    }
}

/// How long a drain waits for a consumer to give back a slot before it cuts consumers off.
const DRAIN_PATIENCE: Duration = Duration::from_secs(1);

impl ShmSink {
    /// Waits until a consumer is connected (`wait-for-connection`); `Interrupted` when the
    /// run ends meanwhile (Ctrl-C).
    fn wait_for_consumer(&mut self, cx: &Ctx<'_>) -> Result<(), ElementError> {
        let mut list = self.clients.lock();
        while list.is_empty() {
            if cx.should_stop() {
                return Err(ElementError::Interrupted);
            }
            list = self
                .clients
                .joined
                .wait_timeout(list, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.wait = false;
        Ok(())
    }
}

impl Sink for ShmSink {
    /// Lends the buffer to every consumer: their shares are counted in the arena (or the
    /// ledger), so the sink needs no handle of its own.
    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        if self.wait {
            self.wait_for_consumer(cx)?;
        }
        // Metadata no consumer would accept is this sink's error, not a reason to cut every
        // consumer off.
        FieldLimits::check(buf.meta.fields()).map_err(|e| {
            ElementError::Failed(format!("cannot send this buffer's metadata: {e}"))
        })?;
        let copy;
        let shared = if buf.is_shareable() {
            buf
        } else {
            copy = self.copy_in(buf, cx)?;
            &copy
        };
        let mut list = self.clients.lock();
        // A consumer that is gone, or that cannot be lent this buffer (every peer column of
        // its arena taken), is told why and dropped; its exporter gives back what it held.
        list.retain_mut(|client| match client.send(shared) {
            Ok(()) => true,
            Err(e) => {
                client.cut_off(format!("shmsink: this consumer is cut off: {e}"));
                false
            }
        });
        Ok(SinkFlow::Continue)
    }

    /// A caps change in mid-stream goes to every consumer, in order with the buffers.
    fn caps_changed(&mut self, caps: &Caps) -> Option<Result<(), ElementError>> {
        let text = caps.to_string();
        *self.clients.caps.lock().unwrap_or_else(|p| p.into_inner()) = text.clone();
        let mut list = self.clients.lock();
        list.retain(|client| client.send_caps(&text).is_ok());
        Some(Ok(()))
    }

    fn finish(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        // An empty stream still waits for its first consumer, which then gets the end of
        // stream rather than a refused connection (issue 21); Ctrl-C ends the wait.
        if self.wait && self.wait_for_consumer(cx).is_err() {
            return Ok(());
        }
        for client in self.clients.lock().iter() {
            client.end();
        }
        Ok(())
    }
}

impl Drop for ShmSink {
    fn drop(&mut self) {
        self.clients.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) static SHMSRC: Factory = Factory {
    name: "shmsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Receives buffers from a shmsink in another process",
    doc: "Connects to the shmsink listening on `socket-path` and outputs every buffer it sends, \
          reading the producer's shared memory in place (no copy). Ends at the producer's end \
          of stream; a producer that goes away before it is an error. Ctrl-C ends a wait for \
          the next buffer. Its caps are the producer's: when the description is validated it \
          asks the shmsink for them (a connection that takes no buffers), so that what follows \
          negotiates from them (gst's shmsrc needs them written by hand). `caps` says them \
          instead, for a producer not running yet; caps that disagree with the producer's are \
          an error naming both, as is a producer that changes its caps in mid-stream.",
    pads: Pads::SOURCE.with_rule(CapsRule::Derived(&SHMSRC_CAPS)),
    props: basesrc_props![
        PropSpec::string(
            "socket-path",
            None,
            "The path to the control socket used to control the shared memory"
        )
        .required(),
        PropSpec::string(
            "caps",
            None,
            "The caps of the stream (default: the ones the shmsink sends)"
        )
        .checked(check_caps),
        PropSpec::bool(
            "is-live",
            false,
            "True if the element cannot produce data in PAUSED"
        )
        .ignored("parallax sources always run"),
        PropSpec::string(
            "shm-area-name",
            None,
            "The name of the shared memory area used to get buffers"
        )
        .read_only(),
        PropSpec::uint(
            "blocksize",
            4096,
            0,
            u32::MAX as u64,
            "Size in bytes to read per buffer"
        )
        .ignored("buffers arrive with the size the producer gave them"),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let path = PathBuf::from(p.string("socket-path")?.unwrap_or_default());
        let stream = StreamReceiver::connect(&path, HELLO_WAIT).map_err(|e| match e {
            StreamError::Io(e) => ElementError::io(
                format!("cannot connect to a shmsink at {}", path.display()),
                e,
            ),
            // A socket that is not a shmsink's may never say anything: the wait is bounded.
            StreamError::NoGreeting(_) => ElementError::Failed(format!(
                "no greeting from {} within {} s: is it a shmsink's socket?",
                path.display(),
                HELLO_WAIT.as_secs()
            )),
            StreamError::NotAProducer => {
                ElementError::Failed(format!("{} did not greet like a shmsink", path.display()))
            }
            StreamError::Protocol { theirs, ours } => ElementError::Failed(format!(
                "the shmsink at {} speaks protocol {theirs}, this shmsrc {ours}",
                path.display()
            )),
            other => {
                ElementError::Failed(format!("from the shmsink at {}: {other}", path.display()))
            }
        })?;
        let theirs = Caps::parse(stream.caps()).map_err(|e| {
            ElementError::Failed(format!(
                "the shmsink at {} sent caps that do not parse: {e}",
                path.display()
            ))
        })?;
        if let Some(given) = given_caps(p) {
            if !theirs.is_any() && theirs.intersect(&given).is_empty() {
                return Err(ElementError::Config(format!(
                    "caps={given} disagree with the shmsink at {}, which sends {theirs}",
                    path.display()
                )));
            }
        } else if !theirs.is_any() && !theirs.is_subset(p.src_caps()) {
            // Negotiated from other caps (the producer was restarted meanwhile).
            return Err(ElementError::Config(format!(
                "the shmsink at {} sends {theirs}, not the {} this pipeline was negotiated for",
                path.display(),
                p.src_caps()
            )));
        }
        stream
            .subscribe()
            .map_err(|e| ElementError::Failed(format!("subscribing to {}: {e}", path.display())))?;
        let num_buffers = u64::try_from(p.int("num-buffers")?).ok();
        Ok(ElementImpl::Source(Box::new(ShmSrc {
            caps: theirs,
            path,
            stream,
            num_buffers,
            received: 0,
            do_timestamp: p.bool("do-timestamp")?,
        })))
    },
};

/// The `caps` property, when given.
fn given_caps(p: &Props) -> Option<Caps> {
    p.string("caps")
        .ok()
        .flatten()
        .and_then(|t| Caps::parse(t).ok())
}

/// A bad caps value is refused where it is written, with the caret at the character.
fn check_caps(text: &str) -> Result<(), (Option<usize>, String)> {
    Caps::parse(text)
        .map(|_| ())
        .map_err(|e| (Some(e.at), e.message))
}

/// How long validation waits for a shmsink to say its caps.
const CAPS_PROBE_WAIT: Duration = Duration::from_secs(1);

/// A shmsrc gives the `caps` property, else what the shmsink at `socket-path` says it sends
/// (asked without subscribing), else ANY (no producer there yet: building it says why).
static SHMSRC_CAPS: CapsFns = CapsFns {
    forward: |_, p| {
        if let Some(given) = given_caps(p) {
            return given;
        }
        let Some(path) = p.string("socket-path").ok().flatten() else {
            return Caps::Any;
        };
        StreamReceiver::connect(std::path::Path::new(path), CAPS_PROBE_WAIT)
            .ok()
            .and_then(|probe| Caps::parse(probe.caps()).ok())
            .unwrap_or(Caps::Any)
    },
    backward: |_, _| Caps::Any,
    fixate: CapsFns::default_fixate,
};

struct ShmSrc {
    /// The caps of the stream now: a change in mid-stream is refused.
    caps: Caps,
    path: PathBuf,
    stream: StreamReceiver,
    num_buffers: Option<u64>,
    received: u64,
    do_timestamp: bool,
}

/// How long a shmsrc waits for the producer's greeting after connecting.
const HELLO_WAIT: Duration = Duration::from_secs(5);

impl ShmSrc {
    fn fail(&self, what: impl std::fmt::Display) -> ElementError {
        ElementError::Failed(format!(
            "from the shmsink at {}: {what}",
            self.path.display()
        ))
    }
}

impl Source for ShmSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if self.num_buffers.is_some_and(|n| self.received >= n) {
            return Ok(None);
        }
        if !cx.wait_readable(self.stream.as_fd())? {
            return Ok(None);
        }
        loop {
            match self.stream.recv() {
                Ok(Some(StreamItem::Buffer(mut buf))) => {
                    if self.do_timestamp {
                        buf.meta.set_pts(Some(cx.running_time_ns()));
                    }
                    self.received += 1;
                    return Ok(Some(buf));
                }
                Ok(Some(StreamItem::Caps(text))) => {
                    let caps = Caps::parse(&text)
                        .map_err(|e| self.fail(format!("caps that do not parse: {e}")))?;
                    if !caps.is_equivalent(&self.caps) {
                        // In order with the buffers: the elements below re-read their format
                        // before the next one, or end the run naming both caps.
                        self.caps = caps.clone();
                        cx.announce_caps(caps);
                    }
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }
}
