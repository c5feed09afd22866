//! The element-facing API: what an element implements ([`Source`], [`Transform`], [`Sink`]) and
//! what it may call ([`Ctx`]). Element files use only [`prelude`], so that the engine can change
//! behind it.

use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use crate::exec::RunControl;
use crate::memory::{Buffer, LoanedSlot, MemoryError, MemoryPool};

pub mod prelude {
    //! Everything an element file needs.
    pub use super::{
        Ctx, ElementError, ElementImpl, Flow, Leaky, PoolRequest, QueueSettings, Sink, SinkFlow,
        Source, Transform,
    };
    pub use crate::ipc::{
        accept as ipc_accept, connect as ipc_connect, inherited as inherited_fd,
        listen as ipc_listen, recv_frame, send_frame, FdKind, Frame, WireMeta, PROTOCOL,
    };
    pub use crate::memory::{
        Buffer, BufferFlags, Exporter, FileWindows, IpcRef, LoanedSlot, MemoryError, MemoryPool,
        Metadata, PeerAccess, PeerId, PoolConfig, SharedArenaCache,
    };
    pub use crate::registry::{
        EnumValue, Factory, Hints, Klass, PadPresence, Pads, PropSpec, Props,
    };
}

/// An element's runtime failure. The executor prefixes it with the element's name.
#[derive(Debug, thiserror::Error)]
pub enum ElementError {
    /// An I/O call failed; `what` says on what ("writing /tmp/out").
    #[error("{what}: {source}")]
    Io {
        /// The operation and its object.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The reader at the other end went away (EPIPE): the sink stops quietly.
    #[error("the reader closed the stream")]
    Closed,
    /// The element was configured with something it cannot use.
    #[error("{0}")]
    Config(String),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Failed(String),
    /// The pipeline is stopping; not an error of the element.
    #[error("interrupted")]
    Interrupted,
}

impl ElementError {
    /// An I/O error about `what`, turning EPIPE into [`ElementError::Closed`].
    pub fn io(what: impl Into<String>, source: std::io::Error) -> ElementError {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            ElementError::Closed
        } else {
            ElementError::Io {
                what: what.into(),
                source,
            }
        }
    }
}

/// What a transform did with a buffer.
#[derive(Debug)]
pub enum Flow {
    /// Pass this buffer downstream.
    Push(Buffer),
    /// Nothing goes downstream this time.
    Drop,
    /// End the stream below this element (gst's EOS from an element).
    Eos,
}

/// Whether a sink wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFlow {
    /// Keep sending.
    Continue,
    /// Enough (fakesink num-buffers reached): no more buffers, finish now.
    Done,
}

/// The pool a source asks for: `slots` buffers of up to `slot_size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRequest {
    /// Largest buffer the source produces.
    pub slot_size: usize,
    /// Buffers in flight at most; 0 lets the executor choose.
    pub slots: usize,
}

/// Produces buffers. `produce` returns `Ok(None)` at end of stream.
pub trait Source: Send {
    /// The pool this source fills, or `None` when it produces no bytes (empty buffers).
    fn pool_request(&self) -> Option<PoolRequest>;
    /// Total bytes this source will produce, when known (for progress and ETA).
    fn size_hint(&self) -> Option<u64> {
        None
    }
    /// The next buffer, or `None` at end of stream.
    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError>;
}

/// Takes one buffer, passes on zero or one.
pub trait Transform: Send {
    /// Handles one buffer.
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError>;
}

/// Consumes buffers.
pub trait Sink: Send {
    /// Handles one buffer.
    fn render(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError>;
    /// End of stream: flush and sync what needs it.
    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        Ok(())
    }
}

/// gst queue's `leaky` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaky {
    /// Block the producer when full.
    No,
    /// Drop the new buffer when full.
    Upstream,
    /// Drop the oldest queued buffer when full.
    Downstream,
}

/// A queue's limits; the executor implements the queue itself as a channel between threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Buffers held at most (0 = no buffer limit).
    pub max_buffers: usize,
    /// Bytes held at most (0 = no byte limit).
    pub max_bytes: u64,
    /// What to do when full.
    pub leaky: Leaky,
}

/// A built element, ready for the planner.
pub enum ElementImpl {
    /// Produces buffers.
    Source(Box<dyn Source>),
    /// One in, zero or one out.
    Transform(Box<dyn Transform>),
    /// Consumes buffers.
    Sink(Box<dyn Sink>),
    /// Hands each buffer to every branch (refcount clones, never copies).
    Tee,
    /// Merges its inputs into one stream.
    Funnel,
    /// A thread boundary with a bounded channel.
    Queue(QueueSettings),
}

/// What an element may ask of the engine while it runs.
pub struct Ctx<'a> {
    pub(crate) run: &'a RunControl,
    pub(crate) pool: Option<&'a MemoryPool>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(run: &'a RunControl, pool: Option<&'a MemoryPool>) -> Ctx<'a> {
        Ctx { run, pool }
    }

    /// Whether the pipeline asks sources to end the stream (Ctrl-C, or an error elsewhere).
    pub fn should_stop(&self) -> bool {
        self.run.draining.load(Ordering::Relaxed) || self.run.stopping.load(Ordering::Relaxed)
    }

    /// Loans a buffer slot from this source's pool, waiting while all are in use
    /// (backpressure). Ends with [`ElementError::Interrupted`] when the pipeline stops meanwhile.
    pub fn loan(&mut self) -> Result<LoanedSlot, ElementError> {
        let pool = self.pool.ok_or_else(|| {
            ElementError::Failed("no buffer pool was set up for this element".into())
        })?;
        let run = self.run;
        pool.loan_blocking(&|| {
            run.draining.load(Ordering::Relaxed) || run.stopping.load(Ordering::Relaxed)
        })
        .map_err(|e| match e {
            MemoryError::Cancelled => ElementError::Interrupted,
            other => ElementError::Failed(other.to_string()),
        })
    }

    /// Waits until `fd` is readable. Returns `false` instead when the pipeline asks sources to
    /// stop, so a source blocked on a pipe, FIFO or socket still ends at Ctrl-C.
    pub fn wait_readable(&self, fd: BorrowedFd<'_>) -> Result<bool, ElementError> {
        self.run.wait_readable(fd)
    }
}
