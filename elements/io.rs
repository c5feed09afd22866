//! Files: `filesrc` and `filesink`, and the read loop that `fdsrc` shares.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt as _;

use super::{basesink_props, basesrc_props, blocksize, Stamper, BLOCKSIZE};
use crate::element::prelude::*;

/// Reads a file or stream into pool slots, `blocksize` bytes at a time.
pub(super) struct StreamReader {
    blocksize: usize,
    /// Pipes, FIFOs, sockets and terminals are polled together with the pipeline's wake-up fd,
    /// so Ctrl-C ends a read that would block forever.
    pollable: bool,
    /// Whether `preadv2(RWF_NOWAIT)` works on this fd: then a read that finds data costs one
    /// syscall, and only a read that would block pays for the `poll`.
    nowait: bool,
    stamper: Stamper,
    what: String,
    /// The stream's head, read when the description was validated (see `LentHead`): passed
    /// first, from `replayed` on.
    replay: Vec<u8>,
    replayed: usize,
    /// The stream ended within that head: nothing is read after it.
    ended: bool,
}

impl StreamReader {
    pub(super) fn new(
        fd: BorrowedFd<'_>,
        props: &Props,
        what: String,
    ) -> Result<StreamReader, ElementError> {
        let kind = FdKind::of(fd).map_err(|e| ElementError::io(format!("inspecting {what}"), e))?;
        Ok(StreamReader {
            blocksize: blocksize(props)?,
            pollable: kind == FdKind::Stream,
            nowait: kind == FdKind::Stream,
            stamper: Stamper::new(props)?,
            what,
            replay: Vec::new(),
            replayed: 0,
            ended: false,
        })
    }

    /// Passes `head` before anything read from the descriptor; `ended`: the stream ended
    /// within it.
    pub(super) fn replay_first(&mut self, head: Vec<u8>, ended: bool) {
        self.replay = head;
        self.replayed = 0;
        self.ended = ended;
    }

    pub(super) fn pool_request(&self) -> PoolRequest {
        PoolRequest {
            slot_size: self.blocksize,
            slots: 0,
        }
    }

    pub(super) fn read(
        &mut self,
        fd: BorrowedFd<'_>,
        cx: &mut Ctx<'_>,
    ) -> Result<Option<Buffer>, ElementError> {
        if self.exhausted() {
            return Ok(None);
        }
        let mut slot = cx.loan()?;
        let cap = slot.capacity().min(self.blocksize);
        let data = &mut slot.as_mut_slice()[..cap];
        if self.replayed < self.replay.len() {
            let n = cap.min(self.replay.len() - self.replayed);
            data[..n].copy_from_slice(&self.replay[self.replayed..self.replayed + n]);
            self.replayed += n;
            if self.replayed == self.replay.len() {
                self.replay = Vec::new();
                self.replayed = 0;
            }
            let mut buf = slot.freeze(n);
            self.stamp(&mut buf, cx);
            return Ok(Some(buf));
        }
        if self.ended {
            return Ok(None);
        }
        let n = loop {
            if self.nowait {
                if cx.should_stop() {
                    return Ok(None);
                }
                let mut iov = [std::io::IoSliceMut::new(&mut data[..])];
                match rustix::io::preadv2(
                    fd,
                    &mut iov,
                    u64::MAX,
                    rustix::io::ReadWriteFlags::NOWAIT,
                ) {
                    Ok(n) => break n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(rustix::io::Errno::AGAIN) => {}
                    Err(
                        rustix::io::Errno::OPNOTSUPP
                        | rustix::io::Errno::INVAL
                        | rustix::io::Errno::NOSYS,
                    ) => {
                        self.nowait = false;
                    }
                    Err(e) => {
                        return Err(ElementError::io(format!("reading {}", self.what), e.into()))
                    }
                }
            }
            if self.pollable && !cx.wait_readable(fd)? {
                // Asked to stop while waiting for input: end of stream.
                return Ok(None);
            }
            match rustix::io::read(fd, &mut data[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) if self.pollable => continue,
                Err(e) => return Err(ElementError::io(format!("reading {}", self.what), e.into())),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let mut buf = slot.freeze(n);
        self.stamp(&mut buf, cx);
        Ok(Some(buf))
    }

    /// Whether `num-buffers` buffers went out already.
    fn exhausted(&self) -> bool {
        self.stamper.done()
    }

    /// Sets offset, sequence and (with do-timestamp) pts, and advances.
    fn stamp(&mut self, buf: &mut Buffer, cx: &Ctx<'_>) {
        self.stamper.stamp(buf, || cx.running_time_ns());
    }
}

/// Waits until a non-blocking `fd` that said EAGAIN takes more (a poll error just retries).
fn wait_writable(fd: BorrowedFd<'_>) {
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::OUT,
    )];
    let _ = rustix::event::poll(&mut fds, None);
}

/// Writes every byte of `data` to `fd`, waiting on a non-blocking fd, retrying on EINTR.
pub(super) fn write_all(
    fd: BorrowedFd<'_>,
    mut data: &[u8],
    what: &str,
) -> Result<(), ElementError> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => {
                return Err(ElementError::io(
                    format!("writing {what}"),
                    std::io::ErrorKind::WriteZero.into(),
                ))
            }
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => wait_writable(fd),
            Err(rustix::io::Errno::FAULT) => {
                // The kernel could not read the buffer: its pages were a mapped file's, and the
                // file was truncated meanwhile.
                return Err(ElementError::Failed(format!(
                    "writing {what}: the data vanished (its source file was truncated while being read)"
                )));
            }
            Err(e) => return Err(ElementError::io(format!("writing {what}"), e.into())),
        }
    }
    Ok(())
}

// --- kernel copies -------------------------------------------------------------------------
//
// A buffer over a mapped window of a regular file (filesrc's zero-copy path) knows where its
// bytes are in that file. A sink writing to a regular file can then ask the kernel to copy them
// from the source file with copy_file_range(2), as cp does: no page of the mapping is touched,
// the data never crosses into user space, and a filesystem that can share extents (XFS, btrfs)
// makes a reflink. A sink writing to a pipe splices them instead (splice(2)): the pipe takes
// references to the page cache pages and the reader copies them out. The bytes are the same ones
// a write from the mapping would write: the mapping is the file's page cache, and buffers are
// immutable.

/// Largest single `copy_file_range` request (the kernel caps one call near 2 GiB anyway).
const MAX_COPY: usize = 1 << 30;

/// How the kernel can move a mapped file's bytes to an output, with no copy through user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KernelCopy {
    /// `copy_file_range` into a regular file: the kernel copies page cache to page cache (or
    /// shares the extents, on a filesystem with reflinks).
    FileRange,
    /// `splice` into a pipe: the pipe takes references to the source file's pages, and only
    /// the reader copies them out.
    Splice,
}

/// How the kernel can take file-backed buffers to `fd`, if at all: a regular file opened
/// without O_APPEND (which copy_file_range refuses with EBADF) and without O_SYNC or O_DSYNC
/// (their guarantee is spelled out for write(2), so such outputs keep to it), or a pipe.
pub(super) fn takes_kernel_copies(fd: BorrowedFd<'_>) -> Option<KernelCopy> {
    use rustix::fs::FileType;
    let kind = rustix::fs::fstat(fd)
        .ok()
        .map(|st| FileType::from_raw_mode(st.st_mode))?;
    let refused = rustix::fs::OFlags::APPEND | rustix::fs::OFlags::SYNC | rustix::fs::OFlags::DSYNC;
    match kind {
        FileType::RegularFile => rustix::fs::fcntl_getfl(fd)
            .is_ok_and(|flags| !flags.intersects(refused))
            .then_some(KernelCopy::FileRange),
        FileType::Fifo => Some(KernelCopy::Splice),
        _ => None,
    }
}

/// How a kernel copy ended before its last byte.
pub(super) enum CopyStop {
    /// The kernel cannot copy between these two files (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP) and
    /// said so after `done` bytes: the rest must be written.
    Refused { done: u64 },
    /// A real error, phrased for the user.
    Failed(ElementError),
}

/// Has the kernel copy (`how`) `len` bytes of `from` at `offset` to the current position of
/// `to` (`what` in errors), looping over short copies and EINTR, and waiting on a non-blocking
/// pipe. A copy that finds the end of the source file early means the file was truncated
/// meanwhile, and says so as filesrc would.
pub(super) fn copy_in_kernel(
    from: &SourceFile,
    offset: u64,
    len: u64,
    to: BorrowedFd<'_>,
    how: KernelCopy,
    what: &str,
) -> Result<(), CopyStop> {
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let chunk = usize::try_from(end - at).map_or(MAX_COPY, |n| n.min(MAX_COPY));
        // With an offset for the source, the kernel reads from there and moves `at` on, leaving
        // the file's own position alone; the output is written at (and moves) its position,
        // like write(2).
        let copied = match how {
            KernelCopy::FileRange => {
                rustix::fs::copy_file_range(from, Some(&mut at), to, None, chunk)
            }
            KernelCopy::Splice => {
                let flags = rustix::pipe::SpliceFlags::MOVE;
                rustix::pipe::splice(from, Some(&mut at), to, None, chunk, flags)
            }
        };
        match copied {
            // The end of the source: truncated meanwhile, unless it still holds the bytes and
            // the kernel merely declined (some filesystems answer 0 for "cannot"), in which
            // case the rest is written.
            Ok(0) => {
                let holds = rustix::fs::fstat(from).is_ok_and(|st| st.st_size as u64 > at);
                return Err(if holds {
                    CopyStop::Refused { done: at - offset }
                } else {
                    CopyStop::Failed(truncated(what, from))
                });
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => wait_writable(to),
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::OPNOTSUPP,
            ) => return Err(CopyStop::Refused { done: at - offset }),
            Err(e) => {
                return Err(CopyStop::Failed(ElementError::io(
                    format!("writing {what}"),
                    e.into(),
                )))
            }
        }
    }
    Ok(())
}

/// Writes `len` bytes of `from` at `offset` to `to` with pread and write, through `scratch`:
/// for bytes the kernel would not copy once they are no longer at hand in a mapping.
fn write_from_file(
    from: &SourceFile,
    mut offset: u64,
    len: u64,
    to: BorrowedFd<'_>,
    scratch: &mut Vec<u8>,
    what: &str,
) -> Result<(), ElementError> {
    let end = offset + len;
    scratch.clear();
    scratch.resize(usize::try_from(len).map_or(1 << 20, |n| n.min(1 << 20)), 0);
    while offset < end {
        let want = usize::try_from(end - offset).map_or(scratch.len(), |n| n.min(scratch.len()));
        match rustix::io::pread(from, &mut scratch[..want], offset) {
            Ok(0) => return Err(truncated(what, from)),
            Ok(n) => {
                write_all(to, &scratch[..n], what)?;
                offset += n as u64;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(ElementError::io(
                    format!("reading {}", from.path()),
                    e.into(),
                ))
            }
        }
    }
    scratch.clear();
    Ok(())
}

/// The error for a source file that ended before the bytes a buffer promised: the same words
/// as filesrc's own check.
fn truncated(what: &str, from: &SourceFile) -> ElementError {
    let why = MemoryError::Truncated {
        path: from.path().to_owned(),
    };
    ElementError::Failed(format!("writing {what}: {why}"))
}

// --- filesrc -------------------------------------------------------------------------------

pub(crate) static FILESRC: Factory = Factory {
    name: "filesrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Reads a file",
    doc: "Reads the file at `location` in buffers of `blocksize` bytes. A regular file is served \
          zero-copy from a memory mapping (4 MiB windows, at most 4 alive: bounded memory); if \
          another process truncates it meanwhile, the run ends with an error naming the file \
          instead of crashing. Such buffers remember where they are in the file, so filesink \
          and fdsink into a regular file have the kernel copy them (copy_file_range), into a \
          pipe they splice them, and the mapping is never read. use-mmap=false reads into shared-memory buffers instead, as \
          FIFOs and devices always are; a read that waits on a FIFO still ends at Ctrl-C. The \
          default block size is 128 KiB (gst's is 4 KiB).",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::string("location", None, "Location of the file to read")
            .required()
            .role(Role::ReadsPath),
        BLOCKSIZE,
        PropSpec::bool(
            "use-mmap",
            true,
            "Serve a regular file from a memory mapping, without copying it (gst 0.10's property)"
        ),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let path = p.string("location")?.unwrap_or_default().to_owned();
        // A FIFO is opened without waiting for a writer (a blocking open would hold the
        // build, where Ctrl-C cannot reach it); the first read waits for one instead.
        let fifo = std::fs::metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt as _;
            m.file_type().is_fifo()
        });
        // A pipe or FIFO whose head validation read: it goes on from the file it read.
        let (lent, replay) = match p.attached::<LentHead>().map(|l| l.take()) {
            Some((head, ended, Some(file))) => (Some(file), Some((head, ended))),
            _ => (None, None),
        };
        let file = match lent {
            Some(file) => file,
            None => {
                let mut opts = std::fs::OpenOptions::new();
                opts.read(true);
                if fifo {
                    opts.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
                }
                opts.open(&path)
                    .map_err(|e| ElementError::io(format!("cannot open {path} for reading"), e))?
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| ElementError::io(format!("inspecting {path}"), e))?;
        if meta.is_dir() {
            return Err(ElementError::Failed(format!(
                "{path} is a directory, not a file"
            )));
        }
        let size = meta.is_file().then_some(meta.len());
        let mapped = match (size, p.bool("use-mmap")?) {
            (Some(n), true) if n > 0 && !pseudo_file(&file) => {
                let dup = file
                    .try_clone()
                    .map_err(|e| ElementError::io(format!("cannot open {path} for reading"), e))?;
                Some(FileWindows::new(
                    dup,
                    path.clone(),
                    MMAP_WINDOW,
                    MMAP_WINDOWS,
                ))
            }
            _ => None,
        };
        let mut reader = StreamReader::new(file.as_fd(), p, path)?;
        let await_writer = fifo && replay.is_none();
        if let Some((head, ended)) = replay {
            reader.replay_first(head, ended);
        }
        Ok(ElementImpl::Source(Box::new(FileSrc {
            file,
            size,
            reader,
            mapped,
            await_writer,
        })))
    },
};

/// Bytes mapped per window by the zero-copy path, and windows alive at once: together the
/// bound on what a `filesrc` keeps mapped (16 MiB), however large the file.
const MMAP_WINDOW: usize = 4 << 20;
const MMAP_WINDOWS: usize = 4;

/// An open file and its read loop: zero-copy windows of a mapping for regular files (unless
/// use-mmap=false), read() into pool slots otherwise.
struct FileSrc {
    file: File,
    size: Option<u64>,
    reader: StreamReader,
    mapped: Option<FileWindows>,
    /// A FIFO opened without a writer: until one has written (or come and gone), a read
    /// would say end of stream, so the first read waits for readiness, as Ctrl-C can end.
    await_writer: bool,
}

impl Source for FileSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        self.mapped.is_none().then(|| self.reader.pool_request())
    }

    fn size_hint(&self) -> Option<u64> {
        self.size
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        let Some(windows) = &mut self.mapped else {
            if self.await_writer {
                // Linux reports no hang-up on a FIFO that never had a writer: this returns
                // once one writes or closes, or when the pipeline asks sources to stop.
                if !cx.wait_readable(self.file.as_fd())? {
                    return Ok(None);
                }
                self.await_writer = false;
            }
            return self.reader.read(self.file.as_fd(), cx);
        };
        if self.reader.exhausted() {
            return Ok(None);
        }
        let stop = || cx.should_stop();
        match windows.next_chunk(self.reader.blocksize, &stop) {
            Ok(Some(mut buf)) => {
                self.reader.stamp(&mut buf, cx);
                Ok(Some(buf))
            }
            Ok(None) => Ok(None),
            Err(MemoryError::Cancelled) => Err(ElementError::Interrupted),
            Err(e) => Err(ElementError::Failed(e.to_string())),
        }
    }
}

// --- filesink ------------------------------------------------------------------------------

const BUFFER_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "default",
        value: -1,
        doc: "Default buffering (full)",
    },
    EnumValue {
        nick: "full",
        value: 0,
        doc: "Fully buffered",
    },
    EnumValue {
        nick: "line",
        value: 1,
        doc: "Line buffered (treated as full: buffers carry no lines)",
    },
    EnumValue {
        nick: "unbuffered",
        value: 2,
        doc: "Every buffer is written at once",
    },
];

pub(crate) static FILESINK: Factory = Factory {
    name: "filesink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Writes to a file",
    doc:
        "Writes every buffer to the file at `location`, created or truncated (or appended to with \
          append=true). Small buffers are gathered into `buffer-size` bytes before a write; large \
          ones are written directly. Buffers that filesrc serves from a mapped file are not \
          written but copied by the kernel from that file (copy_file_range, as cp does; a \
          reflink where the filesystem shares extents; spliced when `location` is a FIFO), \
          gathered the same way; not with \
          append=true or o-sync=true, and written instead where the kernel refuses (another \
          filesystem). -m and --stats say how many bytes were copied so. With sync=true each buffer \
          is written at its running time (gst's clock sync) and the file is fsync'ed at end of \
          stream. A full disk is an error that names the file. A buffer flagged `rewrite` (wavenc's \
          final header) is written over the bytes at its offset when `location` is a regular \
          file opened without append=true, and dropped otherwise.",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::string("location", None, "Location of the file to write")
            .required()
            .role(Role::WritesPath),
        PropSpec::bool("append", false, "Append to an already existing file"),
        PropSpec::enumeration(
            "buffer-mode",
            "default",
            BUFFER_MODES,
            "The buffering mode to use"
        ),
        PropSpec::uint(
            "buffer-size",
            65536,
            0,
            u32::MAX as u64,
            "Size of buffer in bytes for full buffer-mode"
        ),
        PropSpec::bool(
            "sync",
            false,
            "Sync on the clock: write each buffer at its running time (and fsync at end of stream)"
        ),
        PropSpec::bool(
            "o-sync",
            false,
            "Open the file with O_SYNC for synchronous IO"
        ),
        PropSpec::time(
            "max-transient-error-timeout",
            0,
            0,
            i32::MAX as i64,
            "Retry up to this time on transient errors"
        )
        .ignored("writes are retried on EINTR and EAGAIN only"),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let path = p.string("location")?.unwrap_or_default().to_owned();
        let append = p.bool("append")?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true);
        if append {
            opts.append(true);
        } else {
            opts.truncate(true);
        }
        if p.bool("o-sync")? {
            opts.custom_flags(rustix::fs::OFlags::SYNC.bits() as i32);
        }
        let file = opts
            .open(&path)
            .map_err(|e| ElementError::io(format!("cannot open {path} for writing"), e))?;
        let capacity = match p.nick("buffer-mode")? {
            "unbuffered" => 0,
            _ => usize::try_from(p.uint("buffer-size")?).unwrap_or(usize::MAX),
        };
        let regular = file.metadata().is_ok_and(|m| m.file_type().is_file());
        Ok(ElementImpl::Sink(Box::new(FileSink {
            kernel_copy: takes_kernel_copies(file.as_fd()),
            rewrites: regular && !append,
            file,
            pending: Vec::with_capacity(capacity.min(1 << 24)),
            pending_run: None,
            capacity,
            fsync: p.bool("sync")?,
            qos: Qos::default(),
            path,
        })))
    },
};

/// An open output file with a gathering buffer for small writes.
///
/// Buffers over a mapped source file are not written but copied by the kernel from that file
/// (see "kernel copies" above); small ones gather into `pending_run` as long as they follow
/// each other in the file, as small buffers of other memory gather into `pending`. At most one
/// of the two holds anything, so bytes reach the file in the order they came.
struct FileSink {
    file: File,
    pending: Vec<u8>,
    pending_run: Option<FileRun>,
    capacity: usize,
    /// How file-backed buffers are copied by the kernel, while the output takes it (see
    /// [`takes_kernel_copies`]) and the kernel has not refused yet.
    kernel_copy: Option<KernelCopy>,
    /// Whether buffers flagged [`BufferFlags::REWRITE`] are written at their offset (a regular
    /// file not opened for appending); otherwise they are dropped (a FIFO, a device).
    rewrites: bool,
    fsync: bool,
    /// How late buffers came, when synced.
    qos: Qos,
    path: String,
}

/// Consecutive bytes of a source file, not yet copied to the output.
struct FileRun {
    file: SourceFile,
    offset: u64,
    len: u64,
}

impl FileSink {
    fn write_pending(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.flush_bytes()?;
        self.flush_run(cx)
    }

    fn flush_bytes(&mut self) -> Result<(), ElementError> {
        if !self.pending.is_empty() {
            write_all(self.file.as_fd(), &self.pending, &self.path)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Copies the pending run. If the kernel refuses, the rest is read and written instead,
    /// and later buffers are written too.
    fn flush_run(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let Some(run) = self.pending_run.take() else {
            return Ok(());
        };
        let out = self.file.as_fd();
        let copied = match self.kernel_copy {
            Some(how) => copy_in_kernel(&run.file, run.offset, run.len, out, how, &self.path),
            // Not reached: a run only gathers while the kernel copies.
            None => Err(CopyStop::Refused { done: 0 }),
        };
        match copied {
            Ok(()) => {
                cx.count_kernel_copied(run.len);
                Ok(())
            }
            Err(CopyStop::Refused { done }) => {
                cx.count_kernel_copied(done);
                tracing::debug!(
                    output = %self.path,
                    source = run.file.path(),
                    "The kernel cannot copy between these files: writing them instead"
                );
                self.kernel_copy = None;
                // `pending` is empty (see the struct), so it serves as scratch space.
                write_from_file(
                    &run.file,
                    run.offset + done,
                    run.len - done,
                    out,
                    &mut self.pending,
                    &self.path,
                )
            }
            Err(CopyStop::Failed(e)) => Err(e),
        }
    }

    /// Writes a [`BufferFlags::REWRITE`] buffer over the bytes at its `meta.offset()` (pwrite, so
    /// the position where the stream goes on is kept), after what is pending; drops it when
    /// the output cannot seek.
    fn rewrite(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        use std::os::unix::fs::FileExt as _;
        let Some(offset) = buf.meta.offset().filter(|_| self.rewrites) else {
            return Ok(SinkFlow::Continue);
        };
        self.write_pending(cx)?;
        self.file
            .write_all_at(buf.data(), offset)
            .map_err(|e| ElementError::io(format!("rewriting {} at {offset}", self.path), e))?;
        Ok(SinkFlow::Continue)
    }

    /// Gathers or copies a buffer the kernel can copy from its source file.
    fn render_extent(&mut self, x: FileExtent<'_>, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.flush_bytes()?;
        let len = x.len as u64;
        match &mut self.pending_run {
            Some(run) if run.file.same_as(x.file) && run.offset + run.len == x.offset => {
                run.len += len;
            }
            _ => {
                self.flush_run(cx)?;
                self.pending_run = Some(FileRun {
                    file: x.file.clone(),
                    offset: x.offset,
                    len,
                });
            }
        }
        if self
            .pending_run
            .as_ref()
            .is_some_and(|r| r.len >= self.capacity as u64)
        {
            self.flush_run(cx)?;
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn qos(&self) -> Qos {
        self.qos
    }

    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        if self.fsync {
            cx.sync_to_pts(buf, &mut self.qos);
        }
        if buf.is_empty() {
            return Ok(SinkFlow::Continue);
        }
        if buf.meta.flags.contains(BufferFlags::REWRITE) {
            return self.rewrite(buf, cx);
        }
        if self.kernel_copy.is_some() {
            if let Some(x) = buf.file_extent() {
                self.render_extent(x, cx)?;
                return Ok(SinkFlow::Continue);
            }
        }
        self.flush_run(cx)?;
        let data = buf.data();
        if self.pending.len() + data.len() > self.capacity {
            self.flush_bytes()?;
        }
        if data.len() >= self.capacity {
            write_all(self.file.as_fd(), data, &self.path)?;
        } else {
            self.pending.extend_from_slice(data);
        }
        Ok(SinkFlow::Continue)
    }

    fn finish(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.write_pending(cx)?;
        if self.fsync {
            self.file
                .sync_all()
                .map_err(|e| ElementError::io(format!("syncing {}", self.path), e))?;
        }
        self.file
            .flush()
            .map_err(|e| ElementError::io(format!("writing {}", self.path), e))
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.write_pending(cx)
    }
}

/// Whether `file` lives on /proc or /sys, whose sizes are not their contents (0, or 4096
/// for a file that cannot be mapped): those are read, never mapped.
fn pseudo_file(file: &std::fs::File) -> bool {
    const PROC_SUPER_MAGIC: u64 = 0x9fa0;
    const SYSFS_MAGIC: u64 = 0x6265_6572;
    rustix::fs::fstatfs(file).is_ok_and(|fs| {
        let kind = fs.f_type as u64;
        kind == PROC_SUPER_MAGIC || kind == SYSFS_MAGIC
    })
}

pub(crate) const FACTORIES: &[&Factory] = &[&FILESRC, &FILESINK];
