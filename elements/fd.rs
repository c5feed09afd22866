//! File descriptors: `fdsrc` (stdin by default) and `fdsink` (stdout by default).

use super::io::{
    copy_in_kernel, takes_kernel_copies, write_all, CopyStop, KernelCopy, StreamReader,
};
use super::{basesink_props, basesrc_props, BLOCKSIZE};
use crate::element::prelude::*;

// --- fdsrc ---------------------------------------------------------------------------------

pub(crate) static FDSRC: Factory = Factory {
    name: "fdsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Reads from a file descriptor (stdin by default)",
    doc: "Reads blocks of up to `blocksize` bytes from an inherited descriptor. On a pipe, FIFO, \
          socket or terminal a read that waits still ends at Ctrl-C, so `-e` drains cleanly.",
    pads: Pads::SOURCE,
    props: basesrc_props![
        PropSpec::int(
            "fd",
            0,
            0,
            i32::MAX as i64,
            "An open file descriptor to read from"
        ),
        BLOCKSIZE,
        PropSpec::uint(
            "timeout",
            0,
            0,
            u64::MAX,
            "Post a message after timeout microseconds (0 = disabled)"
        )
        .ignored("parallax has no message bus; use -m for events"),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let n = p.int("fd")? as i32;
        let fd = inherited_fd(n).map_err(|e| ElementError::io(format!("fd {n} is not open"), e))?;
        let mut reader = StreamReader::new(fd, p, format!("fd {n}"))?;
        // The head validation read for a typefinder: passed first, then the rest.
        if let Some(lent) = p.attached::<LentHead>() {
            let (head, ended, _duplicate) = lent.take();
            reader.replay_first(head, ended);
        }
        Ok(ElementImpl::Source(Box::new(FdSrc { fd, reader })))
    },
};

/// An inherited descriptor and its read loop.
struct FdSrc {
    fd: std::os::fd::BorrowedFd<'static>,
    reader: StreamReader,
}

impl Source for FdSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(self.reader.pool_request())
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        self.reader.read(self.fd, cx)
    }
}

// --- fdsink --------------------------------------------------------------------------------

pub(crate) static FDSINK: Factory = Factory {
    name: "fdsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Writes to a file descriptor (stdout by default)",
    doc: "Writes every buffer to an inherited descriptor as it arrives, without buffering. When \
          the reader goes away (EPIPE, as with `| head -c 100`) the branch ends quietly and the \
          pipeline exits 0. Into a regular file (`> out`, not `>> out`), buffers that filesrc \
          serves from a mapped file are copied by the kernel (copy_file_range), as filesink does; into a \
          pipe (`| sha256sum`) they are spliced, so the pipe holds the file's own pages and only the \
          reader copies them. A buffer flagged `rewrite` (wavenc's final header, which filesink \
          writes over the file's start) is dropped: a descriptor is written as a stream, so a \
          WAV file keeps its streaming header (sizes 0xFFFFFFFF, which most readers take as \
          \"to the end\").",
    pads: Pads::SINK,
    props: basesink_props![
        PropSpec::int(
            "fd",
            1,
            0,
            i32::MAX as i64,
            "An open file descriptor to write to"
        ),
        PropSpec::bool(
            "sync",
            false,
            "Sync on the clock: write each buffer at its running time (its pts)"
        ),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let n = p.int("fd")? as i32;
        let fd = inherited_fd(n).map_err(|e| ElementError::io(format!("fd {n} is not open"), e))?;
        Ok(ElementImpl::Sink(Box::new(FdSink {
            fd,
            what: format!("fd {n}"),
            kernel_copy: takes_kernel_copies(fd),
            sync: p.bool("sync")?,
            qos: Qos::default(),
            gathered: Vec::new(),
        })))
    },
};

/// An inherited descriptor to write to.
struct FdSink {
    fd: std::os::fd::BorrowedFd<'static>,
    what: String,
    /// How buffers over a mapped file are copied by the kernel (as filesink does), while the
    /// descriptor takes it (a regular file not opened for appending: `> out`, not `>> out`; or
    /// a pipe) and the kernel has not refused yet.
    kernel_copy: Option<KernelCopy>,
    /// Write at the buffer's running time (`sync=true`).
    sync: bool,
    /// How late buffers came, when synced.
    qos: Qos,
    /// Small buffers not yet written: at most [`GATHER_MAX`] bytes, written before the thread
    /// waits for input (see [`Sink::idle`]).
    gathered: Vec<u8>,
}

/// Buffers smaller than this gather in memory until the thread waits for more input.
const GATHER_BELOW: usize = 16 * 1024;
/// Gathered bytes are written out once they reach this much.
const GATHER_MAX: usize = 64 * 1024;

impl FdSink {
    fn write_gathered(&mut self) -> Result<(), ElementError> {
        if !self.gathered.is_empty() {
            let written = write_all(self.fd, &self.gathered, &self.what);
            self.gathered.clear();
            written?;
        }
        Ok(())
    }
}

impl Sink for FdSink {
    fn qos(&self) -> Qos {
        self.qos
    }

    fn render(&mut self, buf: &Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        if buf.meta.flags.contains(BufferFlags::REWRITE) {
            return Ok(SinkFlow::Continue);
        }
        if self.sync {
            cx.sync_to_pts(buf, &mut self.qos);
        }
        let small = buf.len() < GATHER_BELOW && !self.sync;
        if small && buf.file_extent().is_none() && (cx.more_coming() || !self.gathered.is_empty()) {
            // Records cut from one read go out in one write: at the burst's end, or when the
            // thread next waits (idle), whichever comes first.
            if self.gathered.len() + buf.len() > GATHER_MAX {
                self.write_gathered()?;
            }
            self.gathered.extend_from_slice(buf.data());
            if !cx.more_coming() {
                self.write_gathered()?;
            }
            return Ok(SinkFlow::Continue);
        }
        self.write_gathered()?;
        // Bytes of the buffer already in the output.
        let mut skip = 0;
        if let Some(how) = self.kernel_copy {
            if let Some(x) = buf.file_extent() {
                match copy_in_kernel(x.file, x.offset, x.len as u64, self.fd, how, &self.what) {
                    Ok(()) => {
                        cx.count_kernel_copied(x.len as u64);
                        return Ok(SinkFlow::Continue);
                    }
                    Err(CopyStop::Refused { done }) => {
                        cx.count_kernel_copied(done);
                        self.kernel_copy = None;
                        skip = done as usize;
                    }
                    Err(CopyStop::Failed(e)) => return Err(e),
                }
            }
        }
        write_all(self.fd, &buf.data()[skip..], &self.what)?;
        Ok(SinkFlow::Continue)
    }

    fn gathers(&self) -> bool {
        true
    }

    fn idle(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.write_gathered()
    }

    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.write_gathered()
    }

    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.write_gathered()
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&FDSRC, &FDSINK];
