//! [`Buffer`]: a refcounted, sliceable view of bytes plus metadata. Entirely safe code.

use std::sync::Arc;

use super::file::{FileExtent, Window};
use super::peer::{PeerSlotRef, ReadOnlyLoan};
use super::pool::{PoolInner, SlotRef};

/// Buffer flags, as a bit set (gst's GstBufferFlags subset that means something here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BufferFlags(pub u32);

impl BufferFlags {
    /// The first buffer after a gap or a drop upstream.
    pub const DISCONT: BufferFlags = BufferFlags(1);
    /// The last buffer of a datagram or message boundary.
    pub const MARKER: BufferFlags = BufferFlags(2);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: BufferFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// What travels with a buffer besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// Position of this buffer in its source's output, from 0.
    pub sequence: u64,
    /// Presentation time in nanoseconds, when the source knows it.
    pub pts: Option<u64>,
    /// Duration in nanoseconds, when known.
    pub duration: Option<u64>,
    /// Byte offset of the first byte in the source's stream, when meaningful.
    pub offset: Option<u64>,
    /// Flags.
    pub flags: BufferFlags,
    /// Which stream (source) the buffer belongs to.
    pub stream_id: u32,
}

#[derive(Clone)]
enum Storage {
    /// No bytes at all (fakesrc's default empty buffers): no memory is touched.
    Empty,
    /// A slot of a [`super::MemoryPool`]; shareable with another process when memfd-backed.
    Slot(SlotRef),
    /// A slot of another process's arena, mapped writable (trusted peer).
    Peer(PeerSlotRef),
    /// A slot of another process's arena, mapped read-only (untrusted peer).
    ReadOnly(Arc<ReadOnlyLoan>),
    /// Bytes an element built itself.
    Heap(Arc<Vec<u8>>),
    /// A window of a mapped file (zero-copy filesrc).
    File(Arc<Window>),
}

/// A refcounted view of bytes: cloning is an atomic increment, slicing shares the memory.
#[derive(Clone)]
pub struct Buffer {
    storage: Storage,
    offset: usize,
    len: usize,
    /// Metadata; free to change, it is per handle.
    pub meta: Metadata,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.storage {
            Storage::Empty => "empty",
            Storage::Slot(_) => "slot",
            Storage::Peer(_) => "peer slot",
            Storage::ReadOnly(_) => "read-only peer slot",
            Storage::Heap(_) => "heap",
            Storage::File(_) => "file",
        };
        f.debug_struct("Buffer")
            .field("len", &self.len)
            .field("storage", &kind)
            .field("meta", &self.meta)
            .finish()
    }
}

impl Buffer {
    /// A buffer with no bytes.
    pub fn empty() -> Buffer {
        Buffer {
            storage: Storage::Empty,
            offset: 0,
            len: 0,
            meta: Metadata::default(),
        }
    }

    /// A buffer that owns `bytes` on the heap.
    pub fn from_vec(bytes: Vec<u8>) -> Buffer {
        let len = bytes.len();
        Buffer {
            storage: Storage::Heap(Arc::new(bytes)),
            offset: 0,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_slot(slot: SlotRef, len: usize) -> Buffer {
        Buffer::from_slot_range(slot, 0, len)
    }

    pub(super) fn from_peer_slot(slot: PeerSlotRef, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::Peer(slot),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_read_only_loan(loan: ReadOnlyLoan, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::ReadOnly(Arc::new(loan)),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_file_window(window: Arc<Window>, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::File(window),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    pub(super) fn from_slot_range(slot: SlotRef, offset: usize, len: usize) -> Buffer {
        Buffer {
            storage: Storage::Slot(slot),
            offset,
            len,
            meta: Metadata::default(),
        }
    }

    /// The pool this buffer's slot belongs to, when it lives in one of this process's pools.
    pub fn pool(&self) -> Option<super::MemoryPool> {
        match &self.storage {
            Storage::Slot(slot) => Some(super::MemoryPool::of_slot(slot)),
            _ => None,
        }
    }

    /// Turns a buffer this process received from another one back into the reference it came
    /// as, handing its share back with it (for [`super::MemoryPool::adopt`] on the other side).
    /// Other buffers are returned unchanged as the error.
    pub fn into_ipc_ref(self) -> Result<super::IpcRef, Buffer> {
        match self.storage {
            Storage::Peer(slot) => Ok(slot.into_ipc_ref(self.offset, self.len)),
            // A read-only loan goes back whole (the owner's ledger moves it back to the owner);
            // one still shared with another handle here cannot.
            Storage::ReadOnly(loan) => match Arc::try_unwrap(loan) {
                Ok(loan) => Ok(loan.hand_back(self.offset, self.len)),
                Err(loan) => Err(Buffer {
                    storage: Storage::ReadOnly(loan),
                    ..self
                }),
            },
            storage => Err(Buffer { storage, ..self }),
        }
    }

    /// Slot index and byte range when this buffer lives in `pool`.
    pub(super) fn slot_in(&self, pool: &Arc<PoolInner>) -> Option<(u32, usize, usize)> {
        match &self.storage {
            Storage::Slot(slot) => Some((slot.index_in(pool)?, self.offset, self.len)),
            _ => None,
        }
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        let all: &[u8] = match &self.storage {
            Storage::Empty => return &[],
            Storage::Slot(slot) => slot.bytes(),
            Storage::Peer(slot) => slot.bytes(),
            Storage::ReadOnly(loan) => loan.bytes(),
            Storage::Heap(v) => v,
            Storage::File(w) => w.bytes(),
        };
        // offset + len <= backing length is kept by every constructor and by `slice`.
        &all[self.offset..self.offset + self.len]
    }

    /// Where the bytes are in a regular file, for a buffer over a mapped window of one
    /// (`filesrc`'s zero-copy path, and any slice or clone of such a buffer): a sink writing to
    /// a file can then have the kernel copy them from the source file (`copy_file_range`)
    /// instead of writing them from the mapping. `None` for every other kind of memory.
    pub fn file_extent(&self) -> Option<FileExtent<'_>> {
        match &self.storage {
            Storage::File(w) => Some(w.extent(self.offset, self.len)),
            _ => None,
        }
    }

    /// The mapped window of a file-backed buffer, for the file module's tests.
    #[cfg(test)]
    pub(super) fn window(&self) -> Option<&Window> {
        match &self.storage {
            Storage::File(w) => Some(w),
            _ => None,
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new handle on `range` of this buffer's bytes, sharing the memory (no copy).
    /// Returns `None` when the range is out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<Buffer> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        let mut sub = self.clone();
        sub.offset = self.offset + range.start;
        sub.len = range.end - range.start;
        Some(sub)
    }

    /// Whether this process can lend the buffer to a peer with `access` without a copy: it
    /// lives in a slot of one of this process's memfd-backed pools, and, for a read-only peer,
    /// a pool sealed for read-only sharing.
    pub fn is_shareable_with(&self, access: super::PeerAccess) -> bool {
        match &self.storage {
            Storage::Slot(slot) => slot.lendable_to(access),
            _ => false,
        }
    }

    /// Whether this process can lend the buffer to another one without a copy: it lives in a
    /// slot of one of this process's memfd-backed pools. (A buffer received from another
    /// process, a heap pool's, a mapped file's or heap bytes cannot be lent.)
    pub fn is_shareable(&self) -> bool {
        match &self.storage {
            Storage::Slot(slot) => slot.lendable_to(super::PeerAccess::ReadWrite),
            _ => false,
        }
    }

    /// The refcount stored in the shared slot header (all processes), for arena buffers.
    pub fn slot_refcount(&self) -> Option<u32> {
        match &self.storage {
            Storage::Slot(slot) => Some(slot.refcount()),
            Storage::Peer(slot) => Some(slot.refcount()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_and_slice_share_memory() {
        let b = Buffer::from_vec(b"hello world".to_vec());
        let c = b.clone();
        assert_eq!(b.data().as_ptr(), c.data().as_ptr());
        let s = b.slice(6..11).unwrap();
        assert_eq!(s.data(), b"world");
        assert_eq!(s.data().as_ptr(), b.data()[6..].as_ptr());
        assert!(b.slice(5..12).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let bad = b.slice(3..2);
        assert!(bad.is_none());
    }

    #[test]
    fn empty_buffer_has_no_bytes() {
        let b = Buffer::empty();
        assert!(b.is_empty());
        assert_eq!(b.data(), b"");
        assert!(!b.is_shareable());
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Buffer>();
        check::<super::super::MemoryPool>();
        check::<super::super::SharedArenaCache>();
    }

    #[test]
    fn only_buffers_in_this_process_s_memfd_pools_can_be_lent() {
        use crate::memory::{Backing, MemoryPool, PoolConfig};
        let memfd = MemoryPool::new(&PoolConfig::new("t", 1, 64)).unwrap();
        assert!(memfd.try_loan().unwrap().freeze(1).is_shareable());
        let heap = MemoryPool::new(&PoolConfig {
            backing: Backing::Heap,
            ..PoolConfig::new("t", 1, 64)
        })
        .unwrap();
        assert!(!heap.try_loan().unwrap().freeze(1).is_shareable());
        assert!(!Buffer::from_vec(vec![1]).is_shareable());
    }
}
