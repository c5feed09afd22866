//! Buffers and the memory they live in.
//!
//! Layers, bottom up: [`sys`] (memfd and mmap, the raw unsafe calls) → [`pool`] (a mapping cut
//! into fixed-size slots whose refcounts live in the mapping itself) → [`buffer`] (the safe,
//! refcounted [`Buffer`] that elements pass around). Nothing above this module touches a raw
//! pointer.
//!
//! Threat model: this module assumes one process today; the slot headers already live inside the
//! mapping so that another process that maps the same memfd can clone and drop buffers with plain
//! atomics. Every index read back from a slot header is bounds-checked before it is used.

mod buffer;
mod pool;
mod sys;

pub use buffer::{Buffer, BufferFlags, Metadata};
pub use pool::{Pool, PoolConfig, PoolStats, SlotMut};
pub use sys::{page_size, Backing};

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
    /// Waiting for a free slot was cancelled (the pipeline is stopping).
    #[error("waiting for a free buffer was cancelled")]
    Cancelled,
}
