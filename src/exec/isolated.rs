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
use std::sync::atomic::Ordering;

use crate::element::Ctx;
use crate::element::{
    ElementError, ElementImpl, Flow, PoolRequest, Sink, SinkFlow, Source, Transform,
};
use crate::graph::Node;
use crate::ipc::{
    recv_frame, send_frame, seqpacket_pair, spawn_worker, Frame, FrameError, WireMeta, PROTOCOL,
};
use crate::memory::{
    Buffer, Exporter, IpcRef, MemoryPool, PeerAccess, PeerId, PoolConfig, SharedArenaCache,
};
use crate::registry::{PadPresence, Trust};

use super::RunControl;

/// The hidden first argument that makes `parallax-launch` a worker.
pub const WORKER_ARG: &str = "--parallax-worker";

/// Buffers through one worker, for the `-m` summary.
#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    same_memory_back: u64,
    from_worker_arena: u64,
    copied: u64,
}

/// The parent's side of one worker.
struct Worker {
    name: String,
    sock: OwnedFd,
    child: Child,
    pid: u32,
    exporter: Exporter,
    cache: SharedArenaCache,
    copies: Copies,
    counts: Counts,
    messages: bool,
    done: bool,
}

/// Buffers that are not in shared memory are copied into this arena (made on first need).
#[derive(Default)]
struct Copies(Option<MemoryPool>);

impl Copies {
    fn shareable(
        &mut self,
        buf: Buffer,
        name: &str,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(Buffer, bool), ElementError> {
        if buf.pool().is_some_and(|p| p.fd().is_some()) {
            return Ok((buf, false));
        }
        let need = buf.len().max(4096);
        if self.0.as_ref().is_none_or(|p| p.slot_size() < need) {
            let config = PoolConfig::new(format!("{name}-ipc"), 8, need.next_power_of_two());
            let pool = MemoryPool::new(&config)
                .map_err(|e| ElementError::Failed(format!("arena for the worker: {e}")))?;
            self.0 = Some(pool);
        }
        let Some(pool) = &self.0 else {
            return Err(ElementError::Failed("no arena for the worker".into()));
        };
        let mut slot = pool
            .loan_blocking(cancelled)
            .map_err(|_| ElementError::Interrupted)?;
        slot.as_mut_slice()[..buf.len()].copy_from_slice(buf.data());
        let mut copy = slot.freeze(buf.len());
        copy.meta = buf.meta;
        Ok((copy, true))
    }
}

/// Sends `buf` (exported through `exporter`, its arena announced on first use) to `sock`.
fn send_buffer(
    sock: &OwnedFd,
    exporter: &mut Exporter,
    buf: &Buffer,
) -> Result<(), std::io::Error> {
    let (at, ticket) = exporter.export(buf).map_err(std::io::Error::other)?;
    if let Some(t) = ticket {
        let arena = Frame::Arena {
            arena_id: at.arena_id,
            peer: t.id.index() as u8,
            read_only: t.access == PeerAccess::ReadOnly,
        };
        send_frame(sock, &arena, &[t.fd.as_fd()])?;
    }
    let frame = Frame::Buffer {
        at: at.into(),
        meta: WireMeta::from(&buf.meta),
    };
    send_frame(sock, &frame, &[])
}

/// Maps an arena announced by the other side.
fn map_arena(
    cache: &mut SharedArenaCache,
    peer: u8,
    read_only: bool,
    mut fds: Vec<OwnedFd>,
) -> Result<(), String> {
    let fd = fds.pop().ok_or("an arena frame without its fd")?;
    let id = PeerId::from_index(peer as usize).ok_or("peer column out of range")?;
    let access = if read_only {
        PeerAccess::ReadOnly
    } else {
        PeerAccess::ReadWrite
    };
    cache.map_arena(fd, access, id).map_err(|e| e.to_string())?;
    Ok(())
}

/// What the worker answered.
enum Reply {
    Buffer(Buffer),
    Nothing,
    Eos,
}

impl Worker {
    fn start(node: &Node, messages: bool) -> Result<Worker, ElementError> {
        let io = |what: &str, e: std::io::Error| ElementError::io(what.to_owned(), e);
        let (ours, theirs) = seqpacket_pair().map_err(|e| io("creating the worker socket", e))?;
        let exe = std::env::current_exe().map_err(|e| io("finding this executable", e))?;
        let sandbox = node.factory.hints.trust != Trust::Trusted;
        let child = spawn_worker(&exe, &[WORKER_ARG], theirs, sandbox)
            .map_err(|e| io("starting a worker process", e))?;
        let pid = child.id();
        let mut worker = Worker {
            name: node.name.clone(),
            sock: ours,
            child,
            pid,
            exporter: Exporter::new(),
            cache: SharedArenaCache::new(),
            copies: Copies::default(),
            counts: Counts::default(),
            messages,
            done: false,
        };
        let start = Frame::Start {
            factory: node.factory.name.to_owned(),
            name: node.name.clone(),
            props: node.written.clone(),
        };
        send_frame(&worker.sock, &start, &[]).map_err(|e| worker.lost(Some(e)))?;
        match recv_frame(&worker.sock) {
            Ok(Some((Frame::Hello { version }, _))) if version == PROTOCOL => {}
            Ok(Some((Frame::Error { message }, _))) => {
                return Err(ElementError::Failed(format!(
                    "in its worker process: {message}"
                )))
            }
            Ok(Some(_)) => return Err(worker.bad("an unexpected greeting")),
            Ok(None) => return Err(worker.lost(None)),
            Err(e) => return Err(worker.frame_error(e)),
        }
        if messages {
            eprintln!("message: {}: isolated in worker process {pid}", worker.name);
        }
        Ok(worker)
    }

    /// Sends one buffer to the worker.
    fn send(&mut self, buf: Buffer, cx: &Ctx<'_>) -> Result<(), ElementError> {
        let stop = || cx.should_stop();
        let (buf, copied) = self.copies.shareable(buf, &self.name, &stop)?;
        self.counts.sent += 1;
        self.counts.copied += u64::from(copied);
        send_buffer(&self.sock, &mut self.exporter, &buf).map_err(|e| self.lost(Some(e)))
    }

    fn send_frame(&mut self, frame: &Frame) -> Result<(), ElementError> {
        send_frame(&self.sock, frame, &[]).map_err(|e| self.lost(Some(e)))
    }

    /// Waits for the worker's answer, mapping the arenas it announces on the way.
    fn recv(&mut self, cx: &Ctx<'_>) -> Result<Reply, ElementError> {
        loop {
            if !cx.wait_readable(self.sock.as_fd())? && cx.run.stopping.load(Ordering::Relaxed) {
                return Err(ElementError::Interrupted);
            }
            let (frame, fds) = match recv_frame(&self.sock) {
                Ok(Some(f)) => f,
                Ok(None) => return Err(self.lost(None)),
                Err(e) => return Err(self.frame_error(e)),
            };
            match frame {
                Frame::Arena {
                    peer, read_only, ..
                } => map_arena(&mut self.cache, peer, read_only, fds).map_err(|e| self.bad(&e))?,
                Frame::Buffer { at, meta } => {
                    let r = IpcRef::from(at);
                    let mut buf = match self.exporter.adopt(r) {
                        Ok(b) => {
                            self.counts.same_memory_back += 1;
                            b
                        }
                        Err(_) => {
                            let b = self
                                .cache
                                .get_slot(r)
                                .map_err(|e| self.bad(&e.to_string()))?;
                            self.counts.from_worker_arena += 1;
                            b
                        }
                    };
                    buf.meta = meta.into();
                    return Ok(Reply::Buffer(buf));
                }
                Frame::Nothing => return Ok(Reply::Nothing),
                Frame::Eos => return Ok(Reply::Eos),
                Frame::Error { message } => return Err(ElementError::Failed(message)),
                other => return Err(self.bad(&format!("unexpected frame {other:?}"))),
            }
        }
    }

    /// The worker sent something that does not hold up: cut it off.
    fn bad(&mut self, what: &str) -> ElementError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.done = true;
        ElementError::Failed(format!(
            "worker process {} sent {what}; it was stopped",
            self.pid
        ))
    }

    fn frame_error(&mut self, e: FrameError) -> ElementError {
        match e {
            FrameError::Io(io) => self.lost(Some(io)),
            malformed => self.bad(&malformed.to_string()),
        }
    }

    /// The worker is gone: reap it and say how it ended.
    fn lost(&mut self, _io: Option<std::io::Error>) -> ElementError {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        self.done = true;
        let reclaimed = self.exporter.reclaim_all();
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
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.messages {
            let c = &self.counts;
            eprintln!(
                "message: {}: worker process {}: {} buffers sent, {} came back as the same \
                 memory, {} from the worker's arena, {} copied",
                self.name, self.pid, c.sent, c.same_memory_back, c.from_worker_arena, c.copied
            );
        }
        if !self.done {
            let _ = send_frame(&self.sock, &Frame::Eos, &[]);
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc_sig::SIGKILL => "SIGKILL",
        libc_sig::SIGSEGV => "SIGSEGV",
        libc_sig::SIGABRT => "SIGABRT",
        libc_sig::SIGTERM => "SIGTERM",
        libc_sig::SIGBUS => "SIGBUS",
        libc_sig::SIGINT => "SIGINT",
        _ => "signal",
    }
}

mod libc_sig {
    pub const SIGINT: i32 = 2;
    pub const SIGABRT: i32 = 6;
    pub const SIGBUS: i32 = 7;
    pub const SIGKILL: i32 = 9;
    pub const SIGSEGV: i32 = 11;
    pub const SIGTERM: i32 = 15;
}

struct IsolatedTransform(Worker);

impl Transform for IsolatedTransform {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        self.0.send(buf, cx)?;
        Ok(match self.0.recv(cx)? {
            Reply::Buffer(b) => Flow::Push(b),
            Reply::Nothing => Flow::Drop,
            Reply::Eos => Flow::Eos,
        })
    }
}

struct IsolatedSink(Worker);

impl Sink for IsolatedSink {
    fn render(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        self.0.send(buf, cx)?;
        Ok(match self.0.recv(cx)? {
            Reply::Eos => SinkFlow::Done,
            _ => SinkFlow::Continue,
        })
    }

    fn finish(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.0.send_frame(&Frame::Eos)?;
        match self.0.recv(cx)? {
            Reply::Eos => {
                self.0.done = true;
                let _ = self.0.child.wait();
                Ok(())
            }
            _ => Err(self.0.bad("something else than end of stream after it")),
        }
    }
}

struct IsolatedSource(Worker);

impl Source for IsolatedSource {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if cx.should_stop() {
            return Ok(None);
        }
        self.0.send_frame(&Frame::Nothing)?;
        match self.0.recv(cx)? {
            Reply::Buffer(b) => Ok(Some(b)),
            Reply::Eos => Ok(None),
            Reply::Nothing => Err(self.0.bad("nothing for a buffer request")),
        }
    }
}

/// Builds the parent's proxy for an `exec=isolated` element and starts its worker.
pub(super) fn proxy(node: &Node, messages: bool) -> Result<ElementImpl, ElementError> {
    let pads = node.factory.pads;
    let fits = node.factory.hints.thread_boundary
        || matches!(pads.src, PadPresence::Request(_))
        || matches!(pads.sink, PadPresence::Request(_))
        || node.factory.domain() != crate::registry::Domain::Thread;
    if fits {
        return Err(ElementError::Config(format!(
            "{} cannot run isolated: only sources, sinks and one-in-one-out elements on threads \
             can (tee, funnel, queue and async elements cannot)",
            node.factory.name
        )));
    }
    let worker = Worker::start(node, messages)?;
    Ok(if pads.sink == PadPresence::None {
        ElementImpl::Source(Box::new(IsolatedSource(worker)))
    } else if pads.src == PadPresence::None {
        ElementImpl::Sink(Box::new(IsolatedSink(worker)))
    } else {
        ElementImpl::Transform(Box::new(IsolatedTransform(worker)))
    })
}

/// The worker process: builds the element it is sent and serves the parent until end of stream.
/// Returns the process exit code.
pub fn worker_main() -> i32 {
    let sock = match crate::ipc::worker_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("parallax worker: no socket on fd 3: {e}");
            return 2;
        }
    };
    match serve(&sock) {
        Ok(()) => 0,
        Err(message) => {
            let _ = send_frame(&sock, &Frame::Error { message }, &[]);
            1
        }
    }
}

fn serve(sock: &OwnedFd) -> Result<(), String> {
    let (factory, name, written) = match recv_frame(sock).map_err(|e| e.to_string())? {
        Some((
            Frame::Start {
                factory,
                name,
                props,
            },
            _,
        )) => (factory, name, props),
        _ => return Err("expected the element to run".into()),
    };
    let f = crate::registry::find(&factory).ok_or(format!("no element `{factory}`"))?;
    let mut props = crate::registry::Props::defaults(&name, f.props);
    for (k, v) in &written {
        let spec = f.prop(k).ok_or(format!("{name}: no property `{k}`"))?;
        let value = spec
            .parse(v)
            .map_err(|e| format!("{name}: property `{k}`: {e}"))?;
        props.set(k, value);
    }
    let element = (f.build)(&props).map_err(|e| format!("{name}: {e}"))?;
    send_frame(sock, &Frame::Hello { version: PROTOCOL }, &[]).map_err(|e| e.to_string())?;
    // Fault injection for the tests of the parent's defences: a worker that misbehaves.
    match std::env::var("PARALLAX_WORKER_FAULT").as_deref() {
        Ok("garbage") => {
            let _ = crate::ipc::send_with_fds(sock, &[0x5a; 48], &[]);
            // Stay around, like a hostile worker would, until the parent hangs up.
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
    let run = RunControl::new().map_err(|e| e.to_string())?;
    let mut side = WorkerSide {
        sock,
        cache: SharedArenaCache::new(),
        exporter: Exporter::new(),
        copies: Copies::default(),
        name,
    };
    match element {
        ElementImpl::Transform(mut t) => loop {
            let Some(buf) = side.next_buffer()? else {
                side.send(&Frame::Eos)?;
                return Ok(());
            };
            let mut cx = Ctx::new(&run, None);
            match t
                .process(buf, &mut cx)
                .map_err(|e| format!("{}: {e}", side.name))?
            {
                Flow::Push(out) => side.reply(out, &run)?,
                Flow::Drop => side.send(&Frame::Nothing)?,
                Flow::Eos => side.send(&Frame::Eos)?,
            }
        },
        ElementImpl::Sink(mut s) => loop {
            let mut cx = Ctx::new(&run, None);
            let Some(buf) = side.next_buffer()? else {
                s.finish(&mut cx)
                    .map_err(|e| format!("{}: {e}", side.name))?;
                side.send(&Frame::Eos)?;
                return Ok(());
            };
            match s
                .render(buf, &mut cx)
                .map_err(|e| format!("{}: {e}", side.name))?
            {
                SinkFlow::Continue => side.send(&Frame::Nothing)?,
                SinkFlow::Done => side.send(&Frame::Eos)?,
            }
        },
        ElementImpl::Source(mut src) => {
            let pool = match src.pool_request() {
                Some(req) => Some(
                    MemoryPool::new(&PoolConfig::new(
                        side.name.clone(),
                        if req.slots == 0 {
                            super::DEFAULT_POOL_SLOTS
                        } else {
                            req.slots
                        },
                        req.slot_size,
                    ))
                    .map_err(|e| e.to_string())?,
                ),
                None => None,
            };
            loop {
                match recv_frame(sock).map_err(|e| e.to_string())? {
                    Some((Frame::Nothing, _)) => {}
                    Some((Frame::Eos, _)) | None => return Ok(()),
                    Some((other, _)) => return Err(format!("unexpected frame {other:?}")),
                }
                let mut cx = Ctx::new(&run, pool.as_ref());
                match src
                    .produce(&mut cx)
                    .map_err(|e| format!("{}: {e}", side.name))?
                {
                    Some(buf) => side.reply(buf, &run)?,
                    None => {
                        side.send(&Frame::Eos)?;
                        return Ok(());
                    }
                }
            }
        }
        _ => Err(format!("{} cannot run in a worker", side.name)),
    }
}

/// The worker's end of the conversation.
struct WorkerSide<'a> {
    sock: &'a OwnedFd,
    cache: SharedArenaCache,
    exporter: Exporter,
    copies: Copies,
    name: String,
}

impl WorkerSide<'_> {
    fn send(&self, frame: &Frame) -> Result<(), String> {
        send_frame(self.sock, frame, &[]).map_err(|e| e.to_string())
    }

    /// The next buffer from the parent, `None` at end of stream.
    fn next_buffer(&mut self) -> Result<Option<Buffer>, String> {
        loop {
            match recv_frame(self.sock).map_err(|e| e.to_string())? {
                Some((
                    Frame::Arena {
                        peer, read_only, ..
                    },
                    fds,
                )) => {
                    map_arena(&mut self.cache, peer, read_only, fds)?;
                }
                Some((Frame::Buffer { at, meta }, _)) => {
                    let mut buf = self
                        .cache
                        .get_slot(IpcRef::from(at))
                        .map_err(|e| e.to_string())?;
                    buf.meta = meta.into();
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
        let meta = WireMeta::from(&out.meta);
        match out.into_ipc_ref() {
            Ok(r) => self.send(&Frame::Buffer { at: r.into(), meta }),
            Err(out) => {
                let stop = || run.stopping.load(Ordering::Relaxed);
                let (out, _) = self
                    .copies
                    .shareable(out, &self.name, &stop)
                    .map_err(|e| e.to_string())?;
                send_buffer(self.sock, &mut self.exporter, &out).map_err(|e| e.to_string())
            }
        }
    }
}
