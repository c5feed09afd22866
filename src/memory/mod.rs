//! Buffers and the memory they live in.
//!
//! Layers, bottom up: [`sys`] (memfd, huge pages, file mappings: the raw unsafe calls) →
//! [`arena`] (the layout of a shared arena inside one mapping, bounds-checked access) and
//! [`protocol`] (the lock-free refcount and release-ring protocols, model-checked with loom) →
//! [`pool`] (the owner: [`MemoryPool`] loans slots, serves peers) and [`peer`] (the other
//! process: [`SharedArenaCache`] resolves [`IpcRef`]s) → [`buffer`] (the safe, refcounted
//! [`Buffer`] that elements pass around). Nothing above this module touches a raw pointer.
//!
//! Threat model: peers that map an arena may be buggy, killed at any instruction, or hostile.
//! The owner keeps its layout and each slot's loan state in private memory and validates every
//! index read from shared memory; a peer that writes garbage can invalidate its own buffers but
//! cannot make the owner read or write outside the arena, free a slot twice, or panic. Untrusted
//! peers get arenas they can only map read-only, and their releases are checked against a private
//! ledger. Memfds are sealed against shrinking, so no peer can SIGBUS the owner.

mod arena;
mod buffer;
mod export;
mod file;
mod peer;
mod pool;
mod protocol;
mod segment;
mod sigbus;
mod sys;

pub use arena::MAX_PEERS;
pub use buffer::{format_clock, Buffer, BufferFlags, FieldLimits, FieldValue, Metadata};
pub use export::Exporter;
pub use file::{FileExtent, FileWindows, MappedFileSegment, SourceFile};
pub use peer::{IpcRef, SharedArenaCache};
pub use pool::{LoanedSlot, MemoryPool, PeerAccess, PeerId, PeerTicket, PoolConfig, PoolStats};
pub use segment::{HeapSegment, HugePageSegment, MemorySegment};
pub use sys::{page_size, Access, Backing, Mapping, HUGE_PAGE};

/// Errors of the memory layer. They name the size or slot involved.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// `memfd_create`, `ftruncate` or sealing failed.
    #[error("cannot create shared memory: {source}")]
    Memfd {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `mmap` failed.
    #[error("cannot map {len} bytes: {source}")]
    Map {
        /// Requested length.
        len: usize,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A request larger than the pool's slot size.
    #[error("a buffer of {requested} bytes does not fit in a pool slot of {slot_size} bytes")]
    TooLarge {
        /// Bytes asked for.
        requested: usize,
        /// Bytes per slot.
        slot_size: usize,
    },
    /// A pool configuration that cannot be laid out (zero slots, sizes that overflow).
    #[error("invalid pool layout: {0}")]
    Layout(&'static str),
    /// A limit of this process or this machine was reached, or a request made no sense for
    /// the memory at hand; the text says which.
    #[error("{0}")]
    Limit(&'static str),
    /// Waiting for a free slot was cancelled (the pipeline is stopping).
    #[error("waiting for a free buffer was cancelled")]
    Cancelled,
    /// An arena received from another process does not hold up.
    #[error("refusing shared arena: {0}")]
    BadArena(&'static str),
    /// A reference received from another process does not hold up.
    #[error("refusing {r:?}: {why}")]
    BadRef {
        /// The reference as received.
        r: IpcRef,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A release from a peer that does not hold up; counted, never applied.
    #[error("rejected release of slot {slot}: {why}")]
    Rejected {
        /// The slot named.
        slot: u32,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A file to map could not be opened, sized or inspected.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A mapped file shrank while it was being read: what was read past its new end is lost.
    #[error("{path} was truncated while being read; the output is incomplete")]
    Truncated {
        /// The file.
        path: String,
    },
    /// The buffer or pool cannot be shared as asked.
    #[error("cannot share: {0}")]
    NotShareable(&'static str),
}
