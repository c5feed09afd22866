//! Files: `filesrc` and `filesink`, and the read loop that `fdsrc` shares.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt as _;

use super::{basesink_props, basesrc_props};
use crate::element::prelude::*;

/// Default read size: what `cat` uses (coreutils reads 128 KiB at a time), so that a default
/// `filesrc ! filesink` copies at `cat` speed. gst's default is 4096; see README.
pub(super) const DEFAULT_BLOCKSIZE: u64 = 128 * 1024;

/// Reads a file or stream into pool slots, `blocksize` bytes at a time.
pub(super) struct StreamReader {
    blocksize: usize,
    /// Pipes, FIFOs, sockets and terminals are polled together with the pipeline's wake-up fd,
    /// so Ctrl-C ends a read that would block forever.
    pollable: bool,
    /// Whether `preadv2(RWF_NOWAIT)` works on this fd: then a read that finds data costs one
    /// syscall, and only a read that would block pays for the `poll`.
    nowait: bool,
    num_buffers: Option<u64>,
    do_timestamp: bool,
    offset: u64,
    sequence: u64,
    what: String,
}

impl StreamReader {
    pub(super) fn new(
        fd: BorrowedFd<'_>,
        props: &Props,
        what: String,
    ) -> Result<StreamReader, ElementError> {
        let kind = FdKind::of(fd).map_err(|e| ElementError::io(format!("inspecting {what}"), e))?;
        let blocksize = match props.uint("blocksize")? {
            0 => DEFAULT_BLOCKSIZE,
            n => n,
        };
        let num_buffers = u64::try_from(props.int("num-buffers")?).ok();
        Ok(StreamReader {
            blocksize: usize::try_from(blocksize).unwrap_or(usize::MAX),
            pollable: kind == FdKind::Stream,
            nowait: kind == FdKind::Stream,
            num_buffers,
            do_timestamp: props.bool("do-timestamp")?,
            offset: 0,
            sequence: 0,
            what,
        })
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
        self.num_buffers.is_some_and(|n| self.sequence >= n)
    }

    /// Sets offset, sequence and (with do-timestamp) pts, and advances.
    fn stamp(&mut self, buf: &mut Buffer, cx: &Ctx<'_>) {
        buf.meta.offset = Some(self.offset);
        buf.meta.sequence = self.sequence;
        if self.do_timestamp {
            buf.meta.pts = Some(cx.running_time_ns());
        }
        self.offset += buf.len() as u64;
        self.sequence += 1;
    }
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
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                let _ = rustix::event::poll(&mut fds, None);
            }
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

// --- filesrc -------------------------------------------------------------------------------

pub(crate) static FILESRC: Factory = Factory {
    name: "filesrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Reads a file",
    doc: "Reads the file at `location` in buffers of `blocksize` bytes. A regular file is served \
          zero-copy from a memory mapping (4 MiB windows, at most 4 alive: bounded memory); if \
          another process truncates it meanwhile, the run ends with an error naming the file \
          instead of crashing. use-mmap=false reads into shared-memory buffers instead, as FIFOs \
          and devices always are; a read that waits on a FIFO still ends at Ctrl-C. The default \
          block size is 128 KiB (gst's is 4 KiB).",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::string("location", None, "Location of the file to read").required(),
        PropSpec::uint(
            "blocksize",
            DEFAULT_BLOCKSIZE,
            0,
            u32::MAX as u64,
            "Size in bytes to read per buffer (0 = default)"
        ),
        PropSpec::bool(
            "use-mmap",
            true,
            "Serve a regular file from a memory mapping, without copying it (gst 0.10's property)"
        ),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let path = p.string("location")?.unwrap_or_default().to_owned();
        let file = File::open(&path)
            .map_err(|e| ElementError::io(format!("cannot open {path} for reading"), e))?;
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
            (Some(_), true) => {
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
        let reader = StreamReader::new(file.as_fd(), p, path)?;
        Ok(ElementImpl::Source(Box::new(FileSrc {
            file,
            size,
            reader,
            mapped,
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
          ones are written directly. With sync=true the file is fsync'ed at end of stream. A full \
          disk is an error that names the file.",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::string("location", None, "Location of the file to write").required(),
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
            "fsync the file at end of stream (in gst: sync on the clock, which parallax has not)"
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
        Ok(ElementImpl::Sink(Box::new(FileSink {
            file,
            pending: Vec::with_capacity(capacity.min(1 << 24)),
            capacity,
            fsync: p.bool("sync")?,
            path,
        })))
    },
};

/// An open output file with a gathering buffer for small writes.
struct FileSink {
    file: File,
    pending: Vec<u8>,
    capacity: usize,
    fsync: bool,
    path: String,
}

impl FileSink {
    fn flush(&mut self) -> Result<(), ElementError> {
        if !self.pending.is_empty() {
            write_all(self.file.as_fd(), &self.pending, &self.path)?;
            self.pending.clear();
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn render(&mut self, buf: &Buffer, _cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        let data = buf.data();
        if self.pending.len() + data.len() > self.capacity {
            self.flush()?;
        }
        if data.len() >= self.capacity {
            write_all(self.file.as_fd(), data, &self.path)?;
        } else {
            self.pending.extend_from_slice(data);
        }
        Ok(SinkFlow::Continue)
    }

    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.flush()?;
        if self.fsync {
            self.file
                .sync_all()
                .map_err(|e| ElementError::io(format!("syncing {}", self.path), e))?;
        }
        self.file
            .flush()
            .map_err(|e| ElementError::io(format!("writing {}", self.path), e))
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&FILESRC, &FILESINK];
